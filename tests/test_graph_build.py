"""Graph tensors against an independent, per-atom featuriser in the style of the release."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from crysgnn_dgl import GraphSettings, build_graph
from crysgnn_dgl.backend import dgl
from crysgnn_dgl.graph import GaussianExpansion, PaddingWarning, graph_from_arrays

SETTINGS = GraphSettings()


def _as_table(graph, k: int):
    """(N, k) neighbour / distance / padding tables from a padded graph's edge lists."""
    n = graph.num_nodes()
    src, dst = (t.numpy() for t in graph.edges())
    assert np.array_equal(dst, np.repeat(np.arange(n), k)), "edges not grouped by centre"
    return (
        src.reshape(n, k),
        graph.edata["distance"].numpy().reshape(n, k),
        graph.edata["padding"].numpy().reshape(n, k),
    )


def _reference_gaussians(distance: np.ndarray) -> np.ndarray:
    centres = np.arange(0.0, 8.0 + 0.2, 0.2)[:41]  # release: np.arange(dmin, dmax + step, step)
    assert centres.shape == (41,) and abs(centres[-1] - 8.0) < 1e-9
    return np.exp(-((distance[..., None] - centres) ** 2) / 0.2**2)


def _check_against_reference(graph, structure, settings, reference_featuriser, atom_init_table):
    k = settings.max_neighbors
    ref_index, ref_dist, ref_real = reference_featuriser(
        structure, settings.radius, k, settings.tie_decimals
    )
    index, dist, padding = _as_table(graph, k)
    np.testing.assert_array_equal(index, ref_index)
    np.testing.assert_allclose(dist, ref_dist, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(padding, ~ref_real)

    gaussians = GaussianExpansion(settings)(graph.edata["distance"]).numpy()
    assert gaussians.shape == (graph.num_edges(), 41)
    np.testing.assert_allclose(gaussians, _reference_gaussians(ref_dist).reshape(-1, 41), atol=1e-5)

    numbers = [site.specie.Z for site in structure]
    expected_features = np.stack([atom_init_table[z] for z in numbers])
    assert graph.ndata["atom_features"].shape == (len(structure), 92)
    np.testing.assert_array_equal(graph.ndata["atom_features"].numpy(), expected_features)
    np.testing.assert_array_equal(graph.ndata["atomic_number"].numpy(), numbers)
    np.testing.assert_allclose(graph.ndata["frac_coords"].numpy(), structure.frac_coords, atol=1e-6)


def test_graphs_match_reference_featuriser(real_structures, reference_featuriser, atom_init_table):
    assert len(real_structures) >= 10
    for sid, structure in real_structures.items():
        graph = build_graph(structure, structure_id=sid)
        assert graph.num_nodes() == len(structure)
        assert graph.num_edges() == 12 * len(structure)
        _check_against_reference(graph, structure, SETTINGS, reference_featuriser, atom_init_table)


def test_padded_graph_matches_reference(padded_structure, reference_featuriser, atom_init_table):
    with pytest.warns(PaddingWarning):
        graph = build_graph(padded_structure, structure_id="VTe2 stretched")
    _check_against_reference(graph, padded_structure, SETTINGS, reference_featuriser, atom_init_table)
    padding = graph.edata["padding"].numpy().reshape(3, 12)
    assert padding.sum(axis=1).tolist() == [0, 3, 3]  # V keeps 12, each Te 9 real + 3 pad
    src = graph.edges()[0].numpy().reshape(3, 12)
    assert (src[padding] == 0).all()
    np.testing.assert_allclose(graph.edata["distance"].numpy().reshape(3, 12)[padding], 9.0)


@pytest.mark.parametrize(
    "settings", [GraphSettings(radius=6.0, max_neighbors=8), GraphSettings(tie_decimals=3)]
)
def test_settings_are_honoured(settings, mp_structures, reference_featuriser, atom_init_table):
    for sid in ("mp-10000", "mp-10003"):
        structure = mp_structures[sid]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PaddingWarning)
            graph = build_graph(structure, settings, structure_id=sid)
        _check_against_reference(graph, structure, settings, reference_featuriser, atom_init_table)


def test_unpadded_graph_drops_pad_slots(padded_structure, reference_featuriser):
    settings = GraphSettings(pad=False)
    with pytest.warns(PaddingWarning, match="left unpadded"):
        graph = build_graph(padded_structure, settings, structure_id="VTe2 stretched")
    _, ref_dist, ref_real = reference_featuriser(padded_structure, 8.0, 12, 6)
    assert graph.num_edges() == int(ref_real.sum()) == 12 + 9 + 9
    assert not graph.edata["padding"].any()
    assert graph.in_degrees().tolist() == [12, 9, 9]
    np.testing.assert_allclose(graph.edata["distance"].numpy(), ref_dist[ref_real], atol=1e-5)


def test_graph_from_arrays_equals_build_graph(mp_structures):
    structure = mp_structures["mp-10003"]
    graph = build_graph(structure, structure_id="mp-10003")
    from_arrays = graph_from_arrays(
        graph.ndata["atom_features"].numpy(), structure.frac_coords, structure.lattice.matrix
    )
    for a, b in zip(graph.edges(), from_arrays.edges()):
        assert torch.equal(a, b)
    for key in ("distance", "image", "padding"):
        assert torch.equal(graph.edata[key], from_arrays.edata[key])
    assert "atomic_number" not in from_arrays.ndata


def test_images_reproduce_distances(carbon_structures):
    """``image`` is the periodic image of the neighbour: |x_j + image·L − x_i| = distance."""
    for sid, structure in carbon_structures.items():
        graph = build_graph(structure, structure_id=sid)
        src, dst = (t.numpy() for t in graph.edges())
        lattice = structure.lattice.matrix
        frac = structure.frac_coords
        vectors = (frac[src] + graph.edata["image"].numpy()) @ lattice - frac[dst] @ lattice
        np.testing.assert_allclose(
            np.linalg.norm(vectors, axis=1), graph.edata["distance"].numpy(), atol=1e-5
        )


def test_batching_keeps_order(real_structures):
    ids = list(real_structures)[:4]
    graphs = [build_graph(real_structures[sid], structure_id=sid) for sid in ids]
    batched = dgl.batch(graphs)
    assert batched.batch_num_nodes().tolist() == [g.num_nodes() for g in graphs]
    assert torch.equal(
        batched.ndata["atomic_number"], torch.cat([g.ndata["atomic_number"] for g in graphs])
    )
    for original, unbatched in zip(graphs, dgl.unbatch(batched)):
        assert torch.equal(original.edges()[0], unbatched.edges()[0])
        assert torch.equal(original.edata["distance"], unbatched.edata["distance"])
