"""MMPT on the CrysGNN encoder: masks, targets and losses against computations written out
here, padding edges, switches, gradients, the command line and a two-step run."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _objective_fixtures import real_batch, two_step_run  # noqa: F401

from crysgnn_dgl import CrysGNN
from crysgnn_dgl.checkpoint import read_checkpoint
from crysgnn_dgl.pretrain.barlow_twins import barlow_twins_loss
from crysgnn_dgl.pretrain.heads import PretrainHeads
from crysgnn_dgl.pretrain.mmpt import centroid_distances, mutex_masks
from crysgnn_dgl.pretrain.niggli import NIGGLI_MEAN, NIGGLI_STD, crystal_lattices, standardised_niggli_targets
from crysgnn_dgl.pretrain.objectives import pretraining_losses
from crysgnn_dgl.pretrain.periodic import direction_classes, same_cell
from crysgnn_dgl.pretrain.settings import (
    CRYSGNN_OBJECTIVES,
    MMPT_OBJECTIVES,
    MMPT_PAPER_WEIGHTS,
    ObjectiveSettings,
)

CRYSGNN_OFF = {f"{name}_weight": 0.0 for name in CRYSGNN_OBJECTIVES}
MMPT_ONLY = ObjectiveSettings(**CRYSGNN_OFF).with_mmpt()
SIGNS = list(itertools.product((-1, 0, 1), repeat=3))


def test_paper_weights_are_named_and_off_by_default():
    assert MMPT_PAPER_WEIGHTS == {
        "mmpt_atom_type": 5.0, "mmpt_coordinate": 1.0, "mmpt_lattice": 1.0, "mmpt_barlow_twins": 0.5,
        "mmpt_direction": 1.0, "mmpt_same_cell": 1.0, "mmpt_distance": 1.0,
    }
    assert all(ObjectiveSettings().weight(name) == 0.0 for name in MMPT_OBJECTIVES)
    assert all(MMPT_ONLY.weight(name) == MMPT_PAPER_WEIGHTS[name] for name in MMPT_OBJECTIVES)
    assert list(PretrainHeads(ObjectiveSettings()).parameters()) == []


def test_direction_and_same_cell_classes_by_loop(real_batch):
    image = real_batch[0].edata["image"]
    expected_direction, expected_same = [], []
    for offset in image.tolist():
        signs = tuple(0 if k == 0 else (1 if k > 0 else -1) for k in offset)
        expected_direction.append(SIGNS.index(signs))
        expected_same.append(int(signs == (0, 0, 0)))
    assert direction_classes(image).tolist() == expected_direction
    assert same_cell(image).tolist() == expected_same
    assert len(set(expected_direction)) > 5 and 0 < sum(expected_same) < len(expected_same)


@pytest.mark.parametrize("seed", [0, 1])
def test_mutex_masks_hide_half_of_each_crystal_and_views_are_complementary(seed):
    sizes = torch.tensor([1, 2, 5, 6, 7, 12])
    masked = mutex_masks(sizes, torch.Generator().manual_seed(seed))
    start = 0
    for n in sizes.tolist():
        assert int(masked[start : start + n].sum()) == n // 2
        start += n
    heads = PretrainHeads(MMPT_ONLY).mmpt
    with torch.no_grad():
        heads.mask_token.copy_(torch.full((64,), -7.0))
    node = torch.rand(int(sizes.sum()), 64)
    views = heads.views(node, masked)
    hidden = [(views[:, v] == -7.0).all(dim=1) for v in range(2)]
    assert torch.equal(hidden[0], masked) and torch.equal(hidden[1], ~masked)  # disjoint, cover all
    assert torch.equal(views[~masked, 0], node[~masked]) and torch.equal(views[masked, 1], node[masked])
    other = mutex_masks(sizes, torch.Generator().manual_seed(seed + 10))
    assert not torch.equal(masked, other)


def barlow_twins_by_loops(a: torch.Tensor, b: torch.Tensor, lam: float, eps: float = 1e-5) -> float:
    rows, dim = a.shape
    a, b = a.double().tolist(), b.double().tolist()

    def standardised(x, j):
        column = [x[r][j] for r in range(rows)]
        mean = sum(column) / rows
        var = sum((v - mean) ** 2 for v in column) / rows
        return [(v - mean) / math.sqrt(var + eps) for v in column]

    za = [standardised(a, j) for j in range(dim)]
    zb = [standardised(b, j) for j in range(dim)]
    loss = 0.0
    for i in range(dim):
        for j in range(dim):
            c = sum(za[i][r] * zb[j][r] for r in range(rows)) / rows
            loss += (1 - c) ** 2 if i == j else lam * c**2
    return loss


@pytest.mark.parametrize("lam", [5e-3, 1.0])
def test_barlow_twins_matches_double_loop(lam):
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(10, 5, generator=generator)
    b = a + 0.5 * torch.randn(10, 5, generator=generator)
    assert float(barlow_twins_loss(a, b, lam)) == pytest.approx(barlow_twins_by_loops(a, b, lam), rel=1e-5)


def test_niggli_targets_match_pymatgen_and_are_invariant(mp_structures):
    from pymatgen.core import Lattice, Structure

    from _objective_fixtures import batch_of

    structures = [mp_structures[i] for i in ("mp-1", "mp-10000", "mp-1002063", "mp-1008626")]
    skewed = structures[1].copy()
    skewed = Structure(  # the same crystal in another basis: a₁ + a₂, a₂, a₃
        Lattice(np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1]]) @ skewed.lattice.matrix),
        skewed.species, skewed.cart_coords, coords_are_cartesian=True,
    )
    graph, _ = batch_of([*structures, skewed])
    got = standardised_niggli_targets(graph).double().numpy() * NIGGLI_STD + NIGGLI_MEAN
    for row, matrix in enumerate(crystal_lattices(graph).double().numpy()):
        reduced = Lattice(matrix).get_niggli_reduced_lattice()
        assert np.allclose(got[row], [*reduced.abc, *reduced.angles], atol=1e-4), row
    assert np.allclose(got[-1], got[1], atol=1e-3)  # the skewed basis reduces to the same cell


def test_centroid_distances_by_loop(real_batch):
    graph, _ = real_batch
    got = centroid_distances(graph).double().numpy()
    frac, lattice = graph.ndata["frac_coords"].double().numpy(), graph.ndata["lattice"].double().numpy()
    start = 0
    for n in graph.batch_num_nodes().tolist():
        positions = [frac[i] @ lattice[i] for i in range(start, start + n)]
        centre = sum(positions) / n
        for i, p in enumerate(positions):
            assert got[start + i] == pytest.approx(np.linalg.norm(p - centre), abs=1e-4)
        start += n


def direct_terms(heads, graph, node, pooled, masked) -> dict[str, float]:
    """Every MMPT term from the decoded views, with loops over views and numpy targets."""
    real = ~graph.edata["padding"]
    src, dst = graph.edges()
    views = heads.views(node, masked)
    decoded = heads.decoder(graph, views)
    hidden = [masked, ~masked]
    numbers = graph.ndata["atomic_number"]
    terms = {"mmpt_lattice": float(((heads.lattice(pooled) - standardised_niggli_targets(graph)) ** 2).mean())}
    atom, coordinate, direction, same, distance = [], [], [], [], []
    for v in range(2):
        p = decoded[:, v]
        h = hidden[v]
        if h.any():
            atom.append(float(F.cross_entropy(heads.atom_type(p[h]), numbers[h])))
            coordinate.append(float((heads.coordinate(p[h]).squeeze(1) - centroid_distances(graph)[h]).abs().mean()))
        pairs = torch.cat([p[dst], p[src]], dim=1)[real]
        image = graph.edata["image"][real]
        direction.append(float(F.cross_entropy(heads.direction(pairs), direction_classes(image))))
        same.append(float(F.cross_entropy(heads.same_cell(pairs), same_cell(image))))
        distance.append(float((heads.distance(pairs).squeeze(1) - graph.edata["distance"][real]).abs().mean()))
    terms.update(
        mmpt_atom_type=np.mean(atom), mmpt_coordinate=np.mean(coordinate), mmpt_direction=np.mean(direction),
        mmpt_same_cell=np.mean(same), mmpt_distance=np.mean(distance),
        mmpt_barlow_twins=barlow_twins_by_loops(decoded[:, 0], decoded[:, 1], 5e-3),
    )
    return terms


def test_terms_equal_direct_computation_and_total(real_batch):
    torch.manual_seed(0)
    graph, labels = real_batch
    model, heads = CrysGNN(), PretrainHeads(MMPT_ONLY)
    model.eval()
    losses = pretraining_losses(model, graph, labels, MMPT_ONLY, torch.Generator().manual_seed(5), heads)
    with torch.no_grad():
        out = model(graph, with_connectivity=False)
        masked = mutex_masks(graph.batch_num_nodes(), torch.Generator().manual_seed(5))
        expected = direct_terms(heads.mmpt, graph, out.node_embedding, out.graph_embedding, masked)
    for name in MMPT_OBJECTIVES:
        assert float(losses[name].detach()) == pytest.approx(expected[name], rel=1e-4), name
    total = sum(MMPT_PAPER_WEIGHTS[name] * expected[name] for name in MMPT_OBJECTIVES)
    assert float(losses["total"]) == pytest.approx(total, rel=1e-4)
    assert 0.0 <= float(losses["mmpt_atom_type_accuracy"]) <= 1.0


def test_padding_edges_take_no_part(real_batch):
    torch.manual_seed(0)
    graph, labels = real_batch
    model, heads = CrysGNN(), PretrainHeads(MMPT_ONLY)
    model.eval()
    padding = graph.edata["padding"]
    assert bool(padding.any())
    before = pretraining_losses(model, graph, labels, MMPT_ONLY, torch.Generator().manual_seed(2), heads)
    changed = graph.clone()
    changed.edata["image"] = torch.where(padding.view(-1, 1), torch.full_like(changed.edata["image"], 3.0),
                                         changed.edata["image"])
    after = pretraining_losses(model, changed, labels, MMPT_ONLY, torch.Generator().manual_seed(2), heads)
    for name in ("mmpt_direction", "mmpt_same_cell", "mmpt_distance", "mmpt_atom_type", "mmpt_barlow_twins"):
        assert float(after[name]) == float(before[name]), name


@pytest.mark.parametrize("term", MMPT_OBJECTIVES)
def test_each_term_switches_alone_and_trains_the_encoder(real_batch, term):
    torch.manual_seed(0)
    graph, labels = real_batch
    settings = ObjectiveSettings(**CRYSGNN_OFF, **{f"{term}_weight": 2.0})
    model, heads = CrysGNN(), PretrainHeads(settings)
    losses = pretraining_losses(model, graph, labels, settings, torch.Generator().manual_seed(0), heads)
    assert set(losses) & set(MMPT_OBJECTIVES) == {term}
    assert float(losses["total"]) == pytest.approx(2.0 * float(losses[term]))
    losses["total"].backward()
    assert model.embedding.weight.grad.abs().sum() > 0
    assert model.convs[0].fc_full.weight.grad.abs().sum() > 0
    for name, parameter in heads.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert (heads.mmpt.decoder is None) == (term == "mmpt_lattice")


def test_command_line_options_and_config_keys(tmp_path):
    from crysgnn_dgl.cli import build_parser
    from crysgnn_dgl.cli.config_file import apply_config
    from crysgnn_dgl.cli.pretrain import add_arguments

    args = build_parser().parse_args(["pretrain", "x.cif", "--out", "run", "--mmpt-lattice-weight", "0.5"])
    for name, default, _ in ObjectiveSettings.cli_fields():
        assert getattr(args, name) == (0.5 if name == "mmpt_lattice_weight" else default), name
    config = tmp_path / "run.toml"
    config.write_text("denoising_weight = 1.5\nmmpt_atom_type_weight = 5\n")
    args = build_parser().parse_args(["pretrain", "x.cif", "--out", "run", "--config", str(config)])
    args = apply_config(args, add_arguments)
    assert (args.denoising_weight, args.mmpt_atom_type_weight) == (1.5, 5.0)


def test_two_step_run_records_the_settings(real_structures, tmp_path):
    settings = ObjectiveSettings().with_mmpt()
    folder = two_step_run(settings, list(real_structures.values()), tmp_path)
    checkpoint = read_checkpoint(folder / "checkpoints" / "last.pt")
    recorded = checkpoint.training["objectives"]
    assert all(recorded[f"{name}_weight"] == MMPT_PAPER_WEIGHTS[name] for name in MMPT_OBJECTIVES)
    assert all(np.isfinite(checkpoint.training["metrics"][f"train/{name}"]) for name in MMPT_OBJECTIVES)
    state = torch.load(folder / "lightning_last.ckpt", map_location="cpu", weights_only=False)
    assert any(key.startswith("heads.mmpt.decoder.") for key in state["state_dict"])


def test_command_line_run_with_denoising_and_mmpt(tmp_path):
    """End to end: ``crysgnn-dgl pretrain`` on eight real crystals (graph cache, two steps)."""
    from _pretrain_fixtures import write_corpus_csv

    from crysgnn_dgl.cli import main

    corpus = write_corpus_csv(tmp_path / "corpus.csv.xz", rows=8, bad=False)
    out = tmp_path / "run"
    weights = {"denoising_weight": 1.0, **{f"{name}_weight": w for name, w in MMPT_PAPER_WEIGHTS.items()}}
    options = [item for name, w in weights.items() for item in ("--" + name.replace("_", "-"), str(w))]
    assert main([
        "pretrain", str(corpus), "--out", str(out), "--epochs", "1", "--batch-size", "4", "--val-fraction", "0",
        "--accelerator", "cpu", "--cache-workers", "0", "--no-progress", *options,
    ]) == 0
    checkpoint = read_checkpoint(out / "checkpoints" / "last.pt")
    assert checkpoint.training["global_step"] == 2
    assert all(checkpoint.training["objectives"][name] == w for name, w in weights.items())
    assert all(np.isfinite(checkpoint.training["metrics"][f"train/{name[:-7]}"]) for name in weights)
    resolved = (out / "config.toml").read_text()
    assert "denoising_weight = 1.0\n" in resolved and "mmpt_atom_type_weight = 5.0\n" in resolved
