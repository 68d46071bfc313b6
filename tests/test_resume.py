"""Epoch checkpoints: a training run killed after an epoch resumes after it and ends bit
for bit as the uninterrupted run — the plain loop with a distillation hook (shuffled
control, plateau schedule, early stopping) and a ``crysgnn-dgl bench`` sweep."""

from __future__ import annotations

import json

import pytest
import torch

from _predictor_fixtures import mp_rows, single_thread  # noqa: F401
from crysgnn_dgl import attach_teacher, load_teacher
from crysgnn_dgl.bench import sweep
from crysgnn_dgl.cli import main
from crysgnn_dgl.distill import DistillSettings
from crysgnn_dgl.models.cgcnn import CGCNN, CGCNNSettings
from crysgnn_dgl.training import (
    CrystalGraphDataset,
    EpochCheckpoint,
    TargetNormalizer,
    TrainingSettings,
    split_indices,
    subset,
    train_predictor,
)
from crysgnn_dgl.training.resume import CheckpointMismatchError

from test_bench import TINY, user_csv  # noqa: F401 - the shared tiny CSV fixture

pytestmark = [pytest.mark.usefixtures("single_thread"), pytest.mark.filterwarnings("ignore::UserWarning")]
SETTINGS = TrainingSettings(epochs=40, batch_size=8, lr=0.05, schedule="plateau", plateau_patience=1,
                            plateau_factor=0.5, early_stopping=4)


class Killed(BaseException):
    """Stands for the process being killed (not an Exception: nothing may catch it)."""


def _kill_after(epochs: int):
    seen = []

    def log(line: str) -> None:
        seen.append(line)
        if len(seen) == epochs:
            raise Killed

    return log


@pytest.fixture(scope="module")
def parts():
    rows = mp_rows(40)
    dataset = CrystalGraphDataset(rows.cif, rows.formation_energy_per_atom, ids=rows.material_id)
    split = split_indices(len(dataset), 0.25, 0.25, seed=2)
    return (*(subset(dataset, part) for part in (split.train, split.val, split.test)),
            TargetNormalizer(dataset.targets[split.train]))


def _distilled_run(parts, checkpoint_path=None, log=None, restore_hook=True):
    train, val, test, normalizer = parts
    torch.manual_seed(0)
    model = CGCNN(CGCNNSettings(atom_fea_len=16, n_conv=2, h_fea_len=16))
    hook = attach_teacher(model, load_teacher(), settings=DistillSettings.from_kd_weight(30.0, shuffle_targets=True))
    checkpoint = None
    if checkpoint_path is not None:
        checkpoint = EpochCheckpoint(checkpoint_path, hook.state_dict, hook.load_state_dict if restore_hook else None)
    torch.manual_seed(1)
    result = train_predictor(model, train, val, test, SETTINGS, normalizer, log=log, checkpoint=checkpoint)
    return result, hook.kd_mean


def _without_seconds(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_a_killed_loop_resumes_bit_for_bit(parts, tmp_path):
    whole, whole_kd = _distilled_run(parts)
    assert 4 < whole.epochs < SETTINGS.epochs and whole.best_epoch == whole.epochs - 4  # early stopping ran
    assert min(row["lr"] for row in whole.history) < SETTINGS.lr  # the plateau schedule acted
    path = tmp_path / "run.pt"
    with pytest.raises(Killed):
        _distilled_run(parts, path, log=_kill_after(3))
    resumed, resumed_kd = _distilled_run(parts, path)
    assert resumed.resumed_after == 3 and resumed.previous_seconds > 0
    assert _without_seconds(resumed.history) == _without_seconds(whole.history)
    assert (resumed.best_epoch, resumed.epochs, resumed.best_val_mae) == (whole.best_epoch, whole.epochs, whole.best_val_mae)
    assert torch.equal(resumed.test_predictions, whole.test_predictions)
    assert resumed_kd == whole_kd
    # a finished run resumed from its last checkpoint trains nothing more and tests the same weights
    again, _ = _distilled_run(parts, path)
    assert again.resumed_after == whole.epochs and torch.equal(again.test_predictions, whole.test_predictions)


def test_the_hook_state_is_part_of_the_resume(parts, tmp_path):
    """Without the hook's state (the shuffled control's permutation stream) the resumed run
    differs: the test above depends on restoring it."""
    whole, _ = _distilled_run(parts)
    path = tmp_path / "run.pt"
    with pytest.raises(Killed):
        _distilled_run(parts, path, log=_kill_after(3))
    resumed, _ = _distilled_run(parts, path, restore_hook=False)
    assert _without_seconds(resumed.history)[:3] == _without_seconds(whole.history)[:3]
    assert _without_seconds(resumed.history)[3:] != _without_seconds(whole.history)[3:]


def test_a_checkpoint_of_other_settings_is_refused(parts, tmp_path):
    train, val, test, normalizer = parts
    path = tmp_path / "run.pt"
    model = CGCNN(CGCNNSettings(atom_fea_len=16, n_conv=1, h_fea_len=16))
    train_predictor(model, train, val, test, TrainingSettings(epochs=1, batch_size=8), normalizer,
                    checkpoint=EpochCheckpoint(path))
    with pytest.raises(CheckpointMismatchError, match=r"run\.pt: written with other training settings \(batch_size: 8"):
        train_predictor(model, train, val, test, TrainingSettings(epochs=1, batch_size=16), normalizer,
                        checkpoint=EpochCheckpoint(path))
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointMismatchError, match=r"run\.pt: not a readable epoch checkpoint"):
        train_predictor(model, train, val, test, TrainingSettings(epochs=1, batch_size=8), normalizer,
                        checkpoint=EpochCheckpoint(path))


def test_a_killed_sweep_resumes_its_run_after_the_last_epoch(user_csv, tmp_path, monkeypatch):  # noqa: F811
    path, _, _ = user_csv
    grid = ["bench", "--dataset", str(path), *TINY, "--seeds", "1", "--epochs", "6", "--early-stopping", "6",
            "--modes", "shuffled-teacher"]

    def record(out):
        (run,) = (out / "runs").glob("*.json")
        return json.loads(run.read_text())

    assert main([*grid, "--out", str(tmp_path / "whole")]) == 0
    whole = record(tmp_path / "whole")
    reporter = sweep._epoch_reporter
    monkeypatch.setattr(sweep, "_epoch_reporter", lambda spec, verbose: (_kill_after(2), lambda: None))
    with pytest.raises(Killed):
        main([*grid, "--out", str(tmp_path / "killed")])
    (partial,) = (tmp_path / "killed" / sweep.PARTIAL).glob("*.pt")
    assert partial.stem == whole["key"]
    monkeypatch.setattr(sweep, "_epoch_reporter", reporter)
    assert main([*grid, "--out", str(tmp_path / "killed")]) == 0
    resumed = record(tmp_path / "killed")
    assert resumed["resumed_after_epoch"] == 2 and not partial.exists()
    for field in ("history", "test_predictions", "val_mae", "test_mae", "best_epoch", "epochs", "kd_mean"):
        assert resumed[field] == whole[field], field
