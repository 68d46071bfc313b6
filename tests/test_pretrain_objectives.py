"""The four pre-training objectives: values against direct computations, and switches."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from _pretrain_fixtures import corpus_csv, small_cache  # noqa: F401

from crysgnn_dgl import CrysGNN
from crysgnn_dgl.graph import connectivity_targets
from crysgnn_dgl.pretrain import GraphCache, ObjectiveSettings, collate_records, nt_xent_loss, pretraining_losses
from crysgnn_dgl.pretrain.objectives import OBJECTIVES, crystal_system_of_space_group


def nt_xent_by_loops(vectors: torch.Tensor, labels: list[int], temperature: float) -> float:
    """Supervised NT-Xent written out pair by pair in double precision."""
    unit = [v / v.norm() for v in vectors.double()]
    terms = []
    for a in range(len(unit)):
        negatives = [b for b in range(len(unit)) if labels[b] != labels[a]]
        for p in range(len(unit)):
            if p == a or labels[p] != labels[a]:
                continue
            positive = math.exp(float(unit[a] @ unit[p]) / temperature)
            denominator = positive + sum(math.exp(float(unit[a] @ unit[n]) / temperature) for n in negatives)
            terms.append(-math.log(positive / denominator))
    return sum(terms) / len(terms)


@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_nt_xent_matches_pairwise_loops(temperature):
    generator = torch.Generator().manual_seed(0)
    vectors = torch.randn(11, 8, generator=generator)
    labels = [0, 1, 1, 2, 0, 6, 6, 6, 3, 1, 0]
    got = nt_xent_loss(vectors, torch.tensor(labels), temperature)
    assert float(got) == pytest.approx(nt_xent_by_loops(vectors, labels, temperature), rel=1e-5)


def test_nt_xent_without_positive_pairs_is_zero_with_gradient():
    vectors = torch.randn(4, 8, requires_grad=True)
    loss = nt_xent_loss(vectors, torch.arange(4), 0.07)
    loss.backward()
    assert float(loss) == 0.0 and vectors.grad is not None


def test_crystal_system_of_every_space_group():
    from pymatgen.symmetry.groups import SpaceGroup
    from crysgnn_dgl.graph import CRYSTAL_SYSTEMS

    numbers = torch.arange(230)
    systems = crystal_system_of_space_group(numbers).tolist()
    for number in (1, 2, 3, 15, 16, 74, 75, 142, 143, 167, 168, 194, 195, 230):
        expected = SpaceGroup.from_int_number(number).crystal_system
        assert CRYSTAL_SYSTEMS[systems[number - 1]] == expected, number


@pytest.fixture(scope="module")
def batch(small_cache):
    cache = GraphCache(small_cache)
    return collate_records([cache[p] for p in range(12)], cache.graph_settings)


def test_losses_equal_direct_formulas(batch):
    torch.manual_seed(0)
    model = CrysGNN()
    graph, labels = batch
    losses = pretraining_losses(model, graph, labels, ObjectiveSettings())
    out = model(graph)
    feature = F.binary_cross_entropy_with_logits(out.feature_logits, graph.ndata["atom_features"])
    src, dst = graph.edges()
    targets = connectivity_targets(src, dst, graph.batch_num_nodes())
    picked = -out.connectivity_log_probs[torch.arange(len(targets)), targets]
    weights = torch.tensor([0.1, 1, 1, 1, 1, 1])[targets]
    connectivity = (weights * picked).sum() / weights.sum()
    space_group = -out.space_group_log_probs[torch.arange(12), labels["space_group"]].mean()
    contrastive = nt_xent_by_loops(out.graph_embedding.detach(), labels["crystal_system"].tolist(), 0.07)
    assert float(losses["feature"]) == pytest.approx(float(feature), rel=1e-5)
    assert float(losses["connectivity"]) == pytest.approx(float(connectivity), rel=1e-5)
    assert float(losses["space_group"]) == pytest.approx(float(space_group), rel=1e-5)
    assert float(losses["contrastive"]) == pytest.approx(contrastive, rel=1e-4)
    total = 0.25 * (feature + connectivity + space_group) + 0.25 * contrastive
    assert float(losses["total"]) == pytest.approx(float(total), rel=1e-5)


HEAD_OF = {
    "feature": "fc_atom_feature.weight",
    "connectivity": "fc_adj.weight",
    "space_group": "fc_sg.weight",
}


@pytest.mark.parametrize("switched_off", OBJECTIVES)
def test_each_objective_switches_off(batch, switched_off):
    torch.manual_seed(0)
    model = CrysGNN()
    graph, labels = batch
    settings = ObjectiveSettings(**{f"{switched_off}_weight": 0.0})
    losses = pretraining_losses(model, graph, labels, settings)
    assert switched_off not in losses
    assert set(OBJECTIVES) - {switched_off} <= set(losses)
    kept = sum(0.25 * losses[name] for name in OBJECTIVES if name != switched_off)
    assert float(losses["total"]) == pytest.approx(float(kept), rel=1e-6)
    losses["total"].backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    for objective, head in HEAD_OF.items():
        if objective == switched_off:
            assert grads[head] is None, head
        else:
            assert grads[head] is not None and grads[head].abs().sum() > 0, head
    assert grads["convs.0.fc_full.weight"].abs().sum() > 0


def test_all_objectives_off_is_refused(batch):
    settings = ObjectiveSettings(0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="switched off"):
        pretraining_losses(CrysGNN(), *batch, settings)


def test_pair_subsampling(batch):
    torch.manual_seed(0)
    model = CrysGNN()
    graph, labels = batch
    only = {"feature_weight": 0.0, "space_group_weight": 0.0, "contrastive_weight": 0.0}
    full = pretraining_losses(model, graph, labels, ObjectiveSettings(**only))["connectivity"]
    largest = int(graph.batch_num_nodes().max())
    roomy = ObjectiveSettings(**only, max_pairs_per_crystal=largest**2)
    assert float(pretraining_losses(model, graph, labels, roomy)["connectivity"]) == pytest.approx(float(full))
    capped = ObjectiveSettings(**only, max_pairs_per_crystal=4)
    draws = [
        float(pretraining_losses(model, graph, labels, capped, torch.Generator().manual_seed(s))["connectivity"])
        for s in range(3)
    ]
    assert draws[0] != draws[1]
    again = pretraining_losses(model, graph, labels, capped, torch.Generator().manual_seed(0))["connectivity"]
    assert float(again) == draws[0]
