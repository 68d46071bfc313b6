"""CDSSL denoising: noised distances, per-crystal z-scored targets and the loss, each
against a computation written out here; padding edges; gradients; a two-step run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _objective_fixtures import real_batch, two_step_run  # noqa: F401

from crysgnn_dgl import CrysGNN
from crysgnn_dgl.checkpoint import read_checkpoint
from crysgnn_dgl.pretrain.denoising import DenoisingHead, denoising_loss, denoising_targets, noised_distances
from crysgnn_dgl.pretrain.heads import PretrainHeads
from crysgnn_dgl.pretrain.objectives import pretraining_losses
from crysgnn_dgl.pretrain.periodic import cartesian_positions, edge_distances
from crysgnn_dgl.pretrain.settings import CRYSGNN_OBJECTIVES, ObjectiveSettings

DENOISING_ONLY = ObjectiveSettings(**{f"{name}_weight": 0.0 for name in CRYSGNN_OBJECTIVES}, denoising_weight=1.0)


def per_edge_numpy(graph, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(noised distance, clean distance, real)`` per edge, one edge at a time in float64."""
    frac = graph.ndata["frac_coords"].double().numpy()
    lattice = graph.ndata["lattice"].double().numpy()
    image = graph.edata["image"].double().numpy()
    src, dst = (t.numpy() for t in graph.edges())
    noised, clean = [], []
    for e in range(graph.num_edges()):
        cell = lattice[dst[e]]
        neighbour, centre = frac[src[e]] @ cell + image[e] @ cell, frac[dst[e]] @ cell
        clean.append(np.linalg.norm(neighbour - centre))
        noised.append(np.linalg.norm(neighbour + noise[src[e]] - centre - noise[dst[e]]))
    return np.asarray(noised), np.asarray(clean), ~graph.edata["padding"].numpy()


def zscores_numpy(graph) -> np.ndarray:
    """Clean distances z-scored crystal by crystal over real edges (0 on padding)."""
    distance = graph.edata["distance"].double().numpy()
    real = ~graph.edata["padding"].numpy()
    crystal = np.repeat(np.arange(graph.batch_size), graph.batch_num_nodes().numpy())[graph.edges()[1].numpy()]
    out = np.zeros_like(distance)
    for b in range(graph.batch_size):
        chosen = (crystal == b) & real
        d = distance[chosen]
        out[chosen] = 0.0 if d.std() <= 1e-4 else (d - d.mean()) / d.std()
    return out


def test_graph_has_padding_edges(real_batch):
    assert bool(real_batch[0].edata["padding"].any())


def test_clean_positions_give_the_stored_distances(real_batch):
    graph, _ = real_batch
    real = ~graph.edata["padding"]
    recomputed = edge_distances(graph, cartesian_positions(graph))
    assert torch.allclose(recomputed[real], graph.edata["distance"][real], atol=1e-4)


@pytest.mark.parametrize("sigma", [0.0, 0.5])
def test_noised_distances_match_an_edge_by_edge_computation(real_batch, sigma):
    graph, _ = real_batch
    got = noised_distances(graph, sigma, torch.Generator().manual_seed(3))
    noise = sigma * torch.randn((graph.num_nodes(), 3), generator=torch.Generator().manual_seed(3)).double().numpy()
    noised, clean, real = per_edge_numpy(graph, noise)
    assert np.allclose(got.numpy()[real], noised[real], atol=1e-4)
    assert np.array_equal(got.numpy()[~real], graph.edata["distance"].numpy()[~real])  # padding untouched
    if sigma == 0.0:
        assert np.allclose(noised[real], clean[real], atol=1e-9)
    else:
        assert np.abs(noised[real] - clean[real]).mean() > 0.1


def test_targets_are_distances_zscored_per_crystal(real_batch):
    graph, _ = real_batch
    assert np.allclose(denoising_targets(graph).numpy(), zscores_numpy(graph), atol=1e-5)


def test_crystal_with_one_edge_length_gets_zero_targets():
    from pymatgen.core import Lattice, Structure
    from _objective_fixtures import batch_of

    fcc = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.61), ["Cu"], [[0, 0, 0]])  # 12 equal neighbours
    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    graph, _ = batch_of([fcc, rocksalt])
    targets = denoising_targets(graph)
    first = int(graph.batch_num_edges()[0])
    assert torch.all(targets[:first] == 0)
    assert float(targets[first:].abs().max()) > 0.5


def test_loss_is_mean_squared_error_over_real_edges(real_batch):
    torch.manual_seed(0)
    graph, _ = real_batch
    model, head = CrysGNN(), DenoisingHead(64, 41)
    model.eval()  # the same BatchNorm statistics for both passes
    got = denoising_loss(model, head, graph, 0.5, torch.Generator().manual_seed(1))

    noise = 0.5 * torch.randn((graph.num_nodes(), 3), generator=torch.Generator().manual_seed(1)).double().numpy()
    noised, _, real = per_edge_numpy(graph, noise)
    noised = np.where(real, noised, graph.edata["distance"].numpy())
    noisy_graph = graph.clone()
    noisy_graph.edata["distance"] = torch.as_tensor(noised, dtype=torch.float32)
    with torch.no_grad():
        node = model.embed(noisy_graph)
        src, dst = graph.edges()
        prediction = head(node, src, dst, model.edge_expansion(noisy_graph.edata["distance"])).double().numpy()
    expected = np.mean((prediction[real] - zscores_numpy(graph)[real]) ** 2)
    assert float(got.detach()) == pytest.approx(expected, rel=1e-4)


def test_gradients_reach_encoder_and_head(real_batch):
    torch.manual_seed(0)
    graph, labels = real_batch
    model, heads = CrysGNN(), PretrainHeads(DENOISING_ONLY)
    losses = pretraining_losses(model, graph, labels, DENOISING_ONLY, torch.Generator().manual_seed(0), heads)
    assert set(losses) >= {"denoising", "total"} and "feature" not in losses
    assert float(losses["total"]) == pytest.approx(float(losses["denoising"]))
    losses["total"].backward()
    for name, parameter in [*model.named_parameters(), *heads.named_parameters()]:
        if name.startswith(("fc_", "fc1")):  # CrysGNN's own heads: switched off
            continue
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_switched_on_without_heads_or_fields_is_refused(real_batch):
    graph, labels = real_batch
    with pytest.raises(ValueError, match="no head"):
        pretraining_losses(CrysGNN(), graph, labels, DENOISING_ONLY)
    stripped = graph.clone()
    stripped.edata.pop("image")
    with pytest.raises(ValueError, match=r"edata\['image'\]"):
        pretraining_losses(CrysGNN(), stripped, labels, DENOISING_ONLY, heads=PretrainHeads(DENOISING_ONLY))


def test_off_by_default_and_no_parameters_added():
    settings = ObjectiveSettings()
    assert settings.denoising_weight == 0.0 and settings.denoising_sigma == 0.5
    assert list(PretrainHeads(settings).parameters()) == []


def test_two_step_run_records_the_settings(real_structures, tmp_path):
    settings = ObjectiveSettings(denoising_weight=2.0, denoising_sigma=0.3)
    folder = two_step_run(settings, list(real_structures.values()), tmp_path)
    checkpoint = read_checkpoint(folder / "checkpoints" / "last.pt")
    recorded = checkpoint.training["objectives"]
    assert recorded["denoising_weight"] == 2.0 and recorded["denoising_sigma"] == 0.3
    assert np.isfinite(checkpoint.training["metrics"]["train/denoising"])
    state = torch.load(folder / "lightning_last.ckpt", map_location="cpu", weights_only=False)
    assert state["hyper_parameters"]["objective_settings"]["denoising_weight"] == 2.0
    assert any(key.startswith("heads.denoising.") for key in state["state_dict"])
    assert not any(key.startswith("heads") for key in checkpoint.state_dict)  # the export is CrysGNN's
