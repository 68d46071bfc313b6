"""The DGL GATGNN port: a dense reference forward, attention normalisation, invariances."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from _predictor_fixtures import (
    single_thread,  # noqa: F401
    batch_norm,
    batched_graph,
    original_batch,
    permuted_largest,
    randomise_running_stats,
    untied_structures,
)
from crysgnn_dgl import build_graph
from crysgnn_dgl.backend import dgl
from crysgnn_dgl.layers import composition_fractions
from crysgnn_dgl.models.gatgnn import GATGNN, GATGNNSettings

pytestmark = pytest.mark.usefixtures("single_thread")


def pymatgen_composition(structure) -> torch.Tensor:
    vector = torch.zeros(103)
    for element, fraction in structure.composition.fractional_composition.items():
        vector[element.Z - 1] = fraction
    return vector


def dense_agat(layer, atom, edge, nbr_idx, training):
    """One AGAT layer on padded N×M neighbour tensors, softmax over each atom's M slots."""
    n, m = nbr_idx.shape
    heads, width = layer.heads, layer.out_dim
    center = torch.cat([atom.unsqueeze(1).expand(n, m, atom.shape[1]), edge], dim=2)
    neighbor = torch.cat([atom[nbr_idx], edge], dim=2)
    x_i = F.softplus(center @ layer.W).view(n, m, heads, width)
    x_j = F.softplus(neighbor @ layer.W).view(n, m, heads, width)
    alpha = F.softplus((torch.cat([x_i, x_j], dim=-1) * layer.att).sum(-1))
    alpha = F.softplus(batch_norm(alpha.view(-1, heads), layer.bn1, training)).view(n, m, heads)
    alpha = torch.softmax(alpha, dim=1)
    return (x_j * alpha.unsqueeze(-1)).sum(1).mean(1) + layer.bias


def dense_gatgnn(model: GATGNN, batch: dict, compositions: torch.Tensor, training: bool):
    atom = model.embed_n(batch["atom_fea"])
    edge = F.leaky_relu(model.embed_e(batch["nbr_fea"]), 0.2)
    for layer, norm in zip(model.node_att, model.batch_norm):
        atom = F.softplus(batch_norm(dense_agat(layer, atom, edge, batch["nbr_fea_idx"], training), norm, training))
    attention = model.global_attention
    pooled, weights = [], []
    for c, idx in enumerate(batch["crystal_atom_idx"]):
        chunk = torch.cat([atom[idx], compositions[c].expand(len(idx), -1)], dim=1)
        score = attention.atten_layer(F.softplus(attention.node_layer1(chunk)))
        w = torch.softmax(score, dim=0)
        weights.append(w)
        pooled.append((atom[idx] * w).sum(0))
    crystal = torch.stack(pooled)
    crystal = F.softplus(model.linear2(F.softplus(model.linear1(crystal))))
    return model.out(crystal).squeeze(1), torch.cat(weights)


@pytest.fixture(scope="module")
def structures():
    return untied_structures(6)


@pytest.mark.parametrize("training", [True, False])
def test_forward_matches_dense_reference(structures, training):
    torch.manual_seed(0)
    model = GATGNN()
    randomise_running_stats(model)
    model.train(training)
    graph = batched_graph(structures)
    compositions = torch.stack([pymatgen_composition(s) for _, s in structures])
    with torch.no_grad():
        ours = model(graph)
        reference, _ = dense_gatgnn(model, original_batch([s for _, s in structures]), compositions, training)
    assert ours.shape == (len(structures),)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)


def test_composition_matches_pymatgen(structures):
    graph = batched_graph(structures)
    expected = torch.stack([pymatgen_composition(s) for _, s in structures])
    torch.testing.assert_close(composition_fractions(graph), expected)


def test_attention_sums_to_one_over_incoming_edges(structures):
    torch.manual_seed(1)
    model = GATGNN()
    graph = batched_graph(structures)
    node = model.embed_n(graph.ndata["atom_features"])
    edge = F.leaky_relu(model.embed_e(model.edge_expansion(graph.edata["distance"])), 0.2)
    _, alpha = model.node_att[0](graph, node, edge, return_attention=True)
    assert alpha.shape == (graph.num_edges(), model.settings.heads)
    assert (alpha >= 0).all()
    per_node = dgl.ops.copy_e_sum(graph, alpha)
    torch.testing.assert_close(per_node, torch.ones_like(per_node))


def test_global_attention_contract_and_normalisation(structures):
    """``model.global_attention(graph, node)`` receives the final per-atom features and
    returns weights that sum to 1 within each crystal."""
    torch.manual_seed(2)
    model = GATGNN()
    model.eval()
    graph = batched_graph(structures)
    seen = {}
    model.global_attention.register_forward_hook(
        lambda module, args, output: seen.update(graph=args[0], node=args[1], weights=output)
    )
    with torch.no_grad():
        model(graph)
        expected_nodes = model.atom_embeddings(graph)
    assert seen["graph"] is graph
    torch.testing.assert_close(seen["node"], expected_nodes)
    weights = seen["weights"]
    assert weights.shape == (graph.num_nodes(), 1)
    sums = torch.stack([w.sum() for w in torch.split(weights, graph.batch_num_nodes().tolist())])
    torch.testing.assert_close(sums, torch.ones(len(structures)))


def test_gradients_reach_every_parameter(structures):
    torch.manual_seed(3)
    model = GATGNN(GATGNNSettings(concat_comp=True))
    model.train()
    (model(batched_graph(structures)) ** 2).mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        if name == "global_attention.atten_layer.bias":
            # A per-crystal softmax ignores a shared shift: zero gradient by construction.
            assert parameter.grad.abs().max() < 1e-6
        else:
            assert parameter.grad.abs().sum() > 0, name


def test_prediction_invariant_to_atom_order(structures):
    torch.manual_seed(4)
    model = GATGNN()
    randomise_running_stats(model)
    model.eval()
    sid, structure, order, permuted = permuted_largest(structures)
    with torch.no_grad():
        original = model(build_graph(structure, structure_id=sid))
        shuffled = model(build_graph(permuted, structure_id=sid))
    torch.testing.assert_close(original, shuffled, rtol=1e-5, atol=1e-5)


def test_classification_output_shape(structures):
    model = GATGNN(GATGNNSettings(classification=True, extra_layers=False))
    model.eval()
    with torch.no_grad():
        out = model(batched_graph(structures))
    assert out.shape == (len(structures), 2)


def test_missing_atomic_numbers_is_a_clear_error(structures):
    graph = build_graph(structures[0][1], structure_id=structures[0][0])
    del graph.ndata["atomic_number"]
    with pytest.raises(KeyError, match="atomic_number"):
        GATGNN()(graph)
