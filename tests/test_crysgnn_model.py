"""CrysGNN forward pass: shapes, heads against direct per-crystal computations, gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from crysgnn_dgl import CrysGNN, ModelSettings, build_graph
from crysgnn_dgl.backend import dgl
from crysgnn_dgl.graph import GaussianExpansion

IDS = ["mp-10003", "mp-1", "perov5:18517", "carbon24:C-130499-1826-45", "mp-1008626"]


@pytest.fixture(scope="module")
def graphs(real_structures):
    return [build_graph(real_structures[sid], structure_id=sid) for sid in IDS]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return CrysGNN().eval()


def test_parameter_names_follow_the_release(model):
    names = set(model.state_dict())
    expected = {"embedding.weight", "fc_adj.weight", "fc_adj.bias", "fc1.weight", "fc1.bias",
                "fc_atom_feature.weight", "fc_atom_feature.bias", "fc_sg.weight", "fc_sg.bias"}
    for k in range(5):
        expected |= {f"convs.{k}.fc_full.weight", f"convs.{k}.fc_full.bias"}
        for bn in ("bn1", "bn2"):
            expected |= {f"convs.{k}.{bn}.{p}" for p in
                         ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    assert names == expected
    assert model.embedding.bias is None
    assert model.convs[0].fc_full.weight.shape == (128, 2 * 64 + 41)
    assert model.fc_adj.weight.shape == (6, 64, 64)


def test_output_shapes_and_pooling(model, graphs):
    batched = dgl.batch(graphs)
    sizes = [g.num_nodes() for g in graphs]
    with torch.no_grad():
        out = model(batched)
    n, b = sum(sizes), len(graphs)
    assert out.node_embedding.shape == (n, 64)
    torch.testing.assert_close(out.node_embedding.norm(dim=1), torch.ones(n))
    expected_pool = torch.stack([z.mean(0) for z in torch.split(out.node_embedding, sizes)])
    torch.testing.assert_close(out.graph_embedding, expected_pool)
    assert torch.equal(out.contrastive, out.graph_embedding)  # release: no projection
    assert out.feature_logits.shape == (n, 92)
    torch.testing.assert_close(out.feature_logits, model.fc_atom_feature(out.node_embedding))
    assert out.space_group_log_probs.shape == (b, 230)
    torch.testing.assert_close(
        out.space_group_log_probs, F.log_softmax(model.fc_sg(expected_pool), dim=-1)
    )
    assert out.connectivity_log_probs.shape == (sum(s * s for s in sizes), 6)
    with torch.no_grad():
        assert model(batched, with_connectivity=False).connectivity_log_probs is None


def test_connectivity_head_vs_per_crystal_loop(model, graphs):
    batched = dgl.batch(graphs)
    with torch.no_grad():
        out = model(batched)
        expected = []
        for z in torch.split(out.node_embedding, batched.batch_num_nodes().tolist()):
            n = z.shape[0]
            left = z.repeat_interleave(n, dim=0)  # pair (i, j): i slow, j fast
            right = z.repeat(n, 1)
            scores = F.bilinear(left, right, model.fc_adj.weight, model.fc_adj.bias)
            expected.append(F.log_softmax(model.fc1(scores), dim=-1))
    torch.testing.assert_close(out.connectivity_log_probs, torch.cat(expected), atol=1e-5, rtol=1e-5)


def test_batch_equals_single_graphs(model, graphs):
    with torch.no_grad():
        batched = model.embed(dgl.batch(graphs))
        singles = torch.cat([model.embed(g) for g in graphs])
    torch.testing.assert_close(batched, singles, atol=1e-5, rtol=0)


def test_pre_expanded_edge_features_give_same_embedding(model, graphs):
    graph = graphs[0]
    expanded = graph.clone()
    expanded.edata["edge_features"] = GaussianExpansion(model.graph_settings)(graph.edata["distance"])
    with torch.no_grad():
        torch.testing.assert_close(model.embed(expanded), model.embed(graph))
        expanded.edata["edge_features"] = expanded.edata["edge_features"] * 0.5
        assert not torch.allclose(model.embed(expanded), model.embed(graph))


def test_all_parameters_receive_gradients(graphs):
    torch.manual_seed(1)
    model = CrysGNN(ModelSettings(contrastive_projection=True)).train()
    out = model(dgl.batch(graphs))
    loss = (
        out.feature_logits.square().mean()
        + out.space_group_log_probs.mean()
        + out.connectivity_log_probs.mean()
        + out.contrastive.square().mean()
    )
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_train_mode_uses_batch_statistics(graphs):
    torch.manual_seed(2)
    model = CrysGNN().train()
    before = model.convs[0].bn1.running_mean.clone()
    model.embed(dgl.batch(graphs))
    assert not torch.equal(before, model.convs[0].bn1.running_mean)
    model.eval()
    with torch.no_grad():
        first = model.embed(graphs[0])
        second = model.embed(graphs[0])
    assert torch.equal(first, second)
