"""Predictor training toolkit: dataset (skip and report), batching, splits, normalisation,
the training loop on real crystals, the parity plot."""

from __future__ import annotations

import math

import pytest
import torch

from _predictor_fixtures import mp_rows, single_thread, teacher_checkpoint  # noqa: F401
from crysgnn_dgl import StructureError
from crysgnn_dgl.models.cgcnn import CGCNN, CGCNNSettings
from crysgnn_dgl.training import (
    CrystalGraphDataset,
    TargetNormalizer,
    TrainingSettings,
    collate_graphs,
    deterministic_algorithms,
    parity_plot,
    predict,
    split_indices,
    subset,
    train_predictor,
)

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def rows():
    return mp_rows(40)


@pytest.fixture(scope="module")
def dataset(rows):
    return CrystalGraphDataset(rows.cif, rows.formation_energy_per_atom, ids=rows.material_id)


def test_dataset_skips_and_reports_bad_items(rows):
    cifs = list(rows.cif[:5]) + ["data_broken\n_cell_length_a 3.0\n", ""]
    targets = [*rows.formation_energy_per_atom[:5], -1.0, -2.0]
    targets[2] = float("nan")
    ids = [*rows.material_id[:5], "broken-cif", "empty-cif"]
    built = CrystalGraphDataset(cifs, targets, ids=ids)
    skipped = dict(built.skipped)
    assert set(skipped) == {ids[2], "broken-cif", "empty-cif"}
    assert "finite" in skipped[ids[2]] and "CIF" in skipped["broken-cif"] and "empty" in skipped["empty-cif"]
    assert built.ids == [ids[i] for i in (0, 1, 3, 4)]
    expected = torch.tensor([float(targets[i]) for i in (0, 1, 3, 4)])
    torch.testing.assert_close(built.targets, expected)
    graph, target = built[2]
    assert graph.num_nodes() == len(__import__("crysgnn_dgl").build_graph(cifs[3]).nodes())
    assert float(target) == pytest.approx(float(targets[3]))
    assert "broken-cif" in built.skip_summary()


def test_dataset_input_errors(rows):
    with pytest.raises(ValueError, match="unique"):
        CrystalGraphDataset(rows.cif[:2], [0.0, 1.0], ids=["same", "same"])
    with pytest.raises(ValueError, match="targets"):
        CrystalGraphDataset(rows.cif[:2], [0.0])


def test_from_table_names_missing_target_column():
    from _predictor_fixtures import require_mp_table

    path = require_mp_table()
    with pytest.raises(StructureError, match="no_such_column"):
        CrystalGraphDataset.from_table(path, "no_such_column", limit=3)
    table = CrystalGraphDataset.from_table(path, "band_gap", limit=4)
    assert table.ids == list(mp_rows(4).material_id)
    torch.testing.assert_close(table.targets, torch.tensor(mp_rows(4).band_gap.values, dtype=torch.float32))


def test_collate_batches_graphs_and_targets(dataset):
    graph, targets = collate_graphs([dataset[i] for i in range(4)])
    assert graph.batch_size == 4
    assert graph.batch_num_nodes().tolist() == [dataset[i][0].num_nodes() for i in range(4)]
    torch.testing.assert_close(targets, dataset.targets[:4])


def test_splits_are_deterministic_disjoint_and_complete():
    a, b = split_indices(100, seed=3), split_indices(100, seed=3)
    assert a == b
    assert sorted(a.train + a.val + a.test) == list(range(100))
    assert (len(a.train), len(a.val), len(a.test)) == (80, 10, 10)
    assert split_indices(100, seed=4).test != a.test
    limited = split_indices(100, seed=3, train_limit=20)
    assert limited.train == a.train[:20] and limited.test == a.test
    with pytest.raises(ValueError):
        split_indices(100, val_fraction=0.6, test_fraction=0.5)


def test_normalizer_round_trip():
    values = torch.tensor([-2.0, -1.0, 0.5, 3.0])
    normalizer = TargetNormalizer(values)
    normed = normalizer.norm(values)
    assert float(normed.mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(normed.std()) == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(normalizer.denorm(normed), values)
    assert TargetNormalizer(torch.tensor([1.0, 1.0])).std == 1.0


def test_training_loop_decreases_loss_on_real_crystals(dataset):
    split = split_indices(len(dataset), 0.1, 0.2, seed=0)
    torch.manual_seed(0)
    model = CGCNN(CGCNNSettings(atom_fea_len=32, n_conv=2, h_fea_len=32))
    settings = TrainingSettings(epochs=12, batch_size=8, lr=0.01)
    result = train_predictor(model, subset(dataset, split.train), subset(dataset, split.val), subset(dataset, split.test), settings)
    losses = [record["train_loss"] for record in result.history]
    assert len(losses) == 12
    assert losses[-1] < 0.5 * losses[0]
    assert 1 <= result.best_epoch <= 12
    assert result.best_val_mae == pytest.approx(min(r["val_mae"] for r in result.history))
    # The model holds the best-validation weights; its test predictions are the reported ones.
    normalizer = TargetNormalizer(dataset.targets[split.train])
    predictions, targets = predict(model, subset(dataset, split.test), normalizer)
    torch.testing.assert_close(predictions, result.test_predictions)
    assert result.test_mae == pytest.approx(float((predictions - targets).abs().mean()), rel=1e-6)
    assert math.isfinite(result.test_mae)


def test_same_seed_gives_identical_runs(dataset):
    split = split_indices(len(dataset), seed=1)
    runs = []
    for _ in range(2):
        torch.manual_seed(5)
        model = CGCNN(CGCNNSettings(atom_fea_len=16, n_conv=1, h_fea_len=16))
        # Multi-threaded scatter-adds are only reproducible in deterministic mode.
        with deterministic_algorithms():
            result = train_predictor(model, subset(dataset, split.train), None, subset(dataset, split.test),
                                     TrainingSettings(epochs=2, batch_size=8, seed=7))
        runs.append(result)
    torch.testing.assert_close(runs[0].test_predictions, runs[1].test_predictions)
    assert runs[0].best_epoch == 2  # no validation set: the last epoch is tested


def test_loop_trains_an_attached_distillation_head(dataset, tmp_path):
    """The loop knows nothing about distillation: a teacher attached beforehand still
    gets its projection head trained and its KD term into the gradients."""
    from crysgnn_dgl.distill import attach_teacher

    split = split_indices(len(dataset), seed=0)
    train, test = subset(dataset, split.train[:16]), subset(dataset, split.test)
    torch.manual_seed(0)
    model = CGCNN(CGCNNSettings(atom_fea_len=32, n_conv=2, h_fea_len=32))
    hook = attach_teacher(model, str(teacher_checkpoint(tmp_path)), adapter="cgcnn")
    head_before = [p.detach().clone() for p in hook.parameters()]
    try:
        train_predictor(model, train, None, test, TrainingSettings(epochs=2, batch_size=8))
        assert hook.last_kd is not None and hook.last_kd > 0
        assert any(not torch.equal(a, b) for a, b in zip(head_before, hook.parameters()))
    finally:
        hook.remove()


def test_parity_plot_writes_a_png(tmp_path):
    from matplotlib.image import imread

    targets = torch.linspace(-2, 1, 30)
    path = parity_plot([("a", targets + 0.1, targets), ("b", targets * 0.9, targets)], tmp_path / "sub" / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.shape[1] > 1.6 * image.shape[0] > 300  # two square panels side by side
    assert image[..., :3].std() > 0.05  # not blank
    with pytest.raises(ValueError):
        parity_plot([], tmp_path / "empty.png")


def test_comparison_runs_differ_only_by_the_kd_term(dataset, tmp_path):
    """With δ = 1 (λ = 0) the distilled run must reproduce the vanilla run exactly: same
    initial weights, batches and budget. With δ = 0.5 the KD term changes the result."""
    from crysgnn_dgl.training import ComparisonSettings, compare_distillation

    teacher = str(teacher_checkpoint(tmp_path))
    factory = lambda: CGCNN(CGCNNSettings(atom_fea_len=16, n_conv=2, h_fea_len=16))  # noqa: E731
    training = TrainingSettings(epochs=2, batch_size=8)
    same = compare_distillation(factory, dataset, training, ComparisonSettings(delta=1.0), teacher, adapter="cgcnn")
    torch.testing.assert_close(same.vanilla.test_predictions, same.distilled.test_predictions, rtol=0, atol=0)
    assert same.relative_gain == 0.0
    assert len(same.split.train) == 32 and len(same.split.test) == 4
    weighted = compare_distillation(factory, dataset, training, ComparisonSettings(delta=0.5), teacher, adapter="cgcnn")
    torch.testing.assert_close(weighted.vanilla.test_predictions, same.vanilla.test_predictions, rtol=0, atol=0)
    assert not torch.equal(weighted.vanilla.test_predictions, weighted.distilled.test_predictions)
    assert weighted.kd_mean is not None and weighted.kd_mean > 0
    assert "vanilla" in weighted.table() and "relative gain" in weighted.table()


def test_early_stopping_and_plateau_schedule(dataset):
    """Stops ``early_stopping`` epochs after the best validation epoch, halves the
    learning rate after ``plateau_patience`` epochs without improvement, restores the best
    weights for the test (its MAE recomputed independently from those weights)."""
    split = split_indices(len(dataset), 0.25, 0.25, seed=1)
    train_set, val_set, test_set = (subset(dataset, part) for part in (split.train, split.val, split.test))
    normalizer = TargetNormalizer(dataset.targets[split.train])
    settings = TrainingSettings(epochs=60, batch_size=8, lr=0.05, schedule="plateau", plateau_patience=1,
                                plateau_factor=0.5, early_stopping=3)
    torch.manual_seed(0)
    model = CGCNN(CGCNNSettings(atom_fea_len=16, n_conv=1, h_fea_len=16))
    result = train_predictor(model, train_set, val_set, test_set, settings, normalizer)
    val = [row["val_mae"] for row in result.history]
    best = 1 + min(range(len(val)), key=val.__getitem__)
    assert result.best_epoch == best and result.best_val_mae == pytest.approx(min(val))
    assert result.epochs == len(result.history) == best + 3 < 60
    lrs = [row["lr"] for row in result.history]
    assert lrs[0] == pytest.approx(0.05) and min(lrs) < 0.05 and all(a >= b for a, b in zip(lrs, lrs[1:]))
    predictions, targets = predict(model, test_set, normalizer)
    assert result.test_mae == pytest.approx(float((predictions - targets).abs().mean()), rel=1e-6)
    validation, _ = predict(model, val_set, normalizer)
    assert float((validation - _).abs().mean()) == pytest.approx(result.best_val_mae, rel=1e-5)


def test_supervised_loss_is_the_chosen_one(dataset):
    """``loss="l1"``: the epoch's training loss is exactly its MAE over the target scale
    (MSE would square the residuals); Huber with δ = 1 is at most half the MSE."""
    split = split_indices(len(dataset), 0.1, 0.2, seed=0)
    train_set, test_set = subset(dataset, split.train), subset(dataset, split.test)
    scale = float(TargetNormalizer(dataset.targets[split.train]).std)
    losses = {}
    for loss in ("l1", "mse", "huber"):
        torch.manual_seed(0)
        model = CGCNN(CGCNNSettings(atom_fea_len=16, n_conv=1, h_fea_len=16))
        result = train_predictor(model, train_set, None, test_set, TrainingSettings(epochs=1, batch_size=8, lr=1e-12, loss=loss))
        losses[loss] = result.history[0]
    assert losses["l1"]["train_loss"] * scale == pytest.approx(losses["l1"]["train_mae"], rel=1e-5)
    assert losses["mse"]["train_loss"] * scale != pytest.approx(losses["mse"]["train_mae"], rel=1e-2)
    assert losses["huber"]["train_loss"] <= 0.5 * losses["mse"]["train_loss"] + 1e-6
    with pytest.raises(ValueError, match="loss"):
        TrainingSettings(loss="hinge")


def test_settings_validate_the_schedule():
    with pytest.raises(ValueError, match="schedule"):
        TrainingSettings(schedule="linear")
    with pytest.raises(ValueError, match="early_stopping"):
        TrainingSettings(early_stopping=0)
