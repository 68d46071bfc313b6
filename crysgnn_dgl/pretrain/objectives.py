"""The pre-training objectives and their weighted sum.

The four CrysGNN objectives:

* feature reconstruction: BCE-with-logits of the 92-d atom features from node embeddings;
* connectivity reconstruction: class-weighted NLL of the neighbour-slot count class of
  ordered atom pairs within each crystal (weights ``[0.1, 1, 1, 1, 1, 1]``);
* space-group classification: NLL over 230 classes from the pooled graph vector;
* NT-Xent over crystal systems: supervised NT-Xent on graph vectors (temperature 0.07),
  crystals of the same crystal system being positives.

and, off by default, CDSSL denoising (:mod:`.denoising`) and the MMPT terms (:mod:`.mmpt`),
whose trainable parts are a :class:`~crysgnn_dgl.pretrain.heads.PretrainHeads`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..backend import dgl
from ..graph.labels import connectivity_targets, pair_index
from ..models.crysgnn import CrysGNN
from .denoising import denoising_loss
from .heads import PretrainHeads
from .mmpt import mmpt_losses
from .settings import CRYSGNN_OBJECTIVES, MMPT_OBJECTIVES, ObjectiveSettings

OBJECTIVES = CRYSGNN_OBJECTIVES

# first space-group number of each crystal system (triclinic ... cubic), 1-based
_SYSTEM_FIRST_GROUP = (1, 3, 16, 75, 143, 168, 195)


def nt_xent_loss(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """Supervised NT-Xent: mean over positive pairs ``(a, p)`` (same label, ``a ≠ p``) of
    ``-log(exp(s_ap/τ) / (exp(s_ap/τ) + Σ_n exp(s_an/τ)))``, ``n`` over ``a``'s negatives
    (different label), ``s`` the cosine similarity. Zero when no positive pair exists."""
    unit = F.normalize(embeddings.float(), p=2, dim=1)
    logits = unit @ unit.T / temperature
    same = labels.view(-1, 1) == labels.view(1, -1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = same & ~eye
    negative = ~same
    if not bool(positive.any()):
        return logits.sum() * 0.0
    shift = logits.detach().max(dim=1, keepdim=True).values
    exp_logits = torch.exp(logits - shift)
    negative_sum = (exp_logits * negative).sum(dim=1, keepdim=True)
    # entry (a, p): log of exp(s_ap) / (exp(s_ap) + Σ_n exp(s_an)), all shifted by a's max
    log_ratio = (logits - shift) - torch.log(exp_logits + negative_sum)
    return -log_ratio[positive].mean()


def crystal_system_of_space_group(space_group_index: torch.Tensor) -> torch.Tensor:
    """Crystal system (0..6) of 0-based space-group indices."""
    firsts = torch.tensor(_SYSTEM_FIRST_GROUP, device=space_group_index.device) - 1
    return torch.bucketize(space_group_index, firsts, right=True) - 1


def _connectivity_loss(
    model: CrysGNN,
    graph: dgl.DGLGraph,
    node: torch.Tensor,
    settings: ObjectiveSettings,
    generator: torch.Generator | None,
) -> torch.Tensor:
    sizes = graph.batch_num_nodes()
    src, dst = graph.edges()
    targets = connectivity_targets(src, dst, sizes)
    class_weights = torch.tensor(settings.connectivity_class_weights, device=node.device, dtype=torch.float32)
    cap = settings.max_pairs_per_crystal
    if cap is None or bool(((sizes * sizes) <= cap).all()):
        log_probs = model.connectivity_log_probs(node, sizes)
        return F.nll_loss(log_probs.float(), targets, weight=class_weights)
    first, second = pair_index(sizes)
    pairs_per_graph = (sizes * sizes).to(node.device)
    keep_probability = (cap / pairs_per_graph.float()).clamp(max=1.0)
    graph_of_pair = torch.repeat_interleave(torch.arange(len(sizes), device=node.device), pairs_per_graph)
    draw = torch.rand(len(first), generator=generator, device="cpu").to(node.device)
    chosen = draw < keep_probability[graph_of_pair]
    scores = model.fc_adj(node[first[chosen]], node[second[chosen]])
    log_probs = F.log_softmax(model.fc1(scores), dim=-1)
    return F.nll_loss(log_probs.float(), targets[chosen], weight=class_weights)


def pretraining_losses(
    model: CrysGNN,
    graph: dgl.DGLGraph,
    labels: dict[str, torch.Tensor],
    settings: ObjectiveSettings,
    generator: torch.Generator | None = None,
    heads: PretrainHeads | None = None,
) -> dict[str, torch.Tensor]:
    """Per-objective losses of one batch (only the switched-on ones), ``total`` (the
    weighted sum) and, detached, ``space_group_accuracy`` and ``crystal_system_accuracy``
    (the crystal system implied by the predicted space group), plus
    ``mmpt_atom_type_accuracy`` when MMPT reconstructs atom types.

    The denoising and MMPT objectives need ``heads`` built for the same ``settings``.
    ``generator`` draws pair sub-samples, denoising noise and MMPT masks, in that order.
    """
    output = model(graph, with_connectivity=False)
    losses: dict[str, torch.Tensor] = {}
    if settings.feature_weight:
        losses["feature"] = F.binary_cross_entropy_with_logits(
            output.feature_logits.float(), graph.ndata["atom_features"].float()
        )
    if settings.connectivity_weight:
        losses["connectivity"] = _connectivity_loss(model, graph, output.node_embedding, settings, generator)
    if settings.space_group_weight:
        losses["space_group"] = F.nll_loss(output.space_group_log_probs.float(), labels["space_group"])
    if settings.contrastive_weight:
        losses["contrastive"] = nt_xent_loss(output.contrastive, labels["crystal_system"], settings.temperature)
    if settings.denoising_weight:
        if heads is None or heads.denoising is None:
            raise _missing_head("denoising")
        losses["denoising"] = denoising_loss(model, heads.denoising, graph, settings.denoising_sigma, generator)
    if settings.switched_on(MMPT_OBJECTIVES):
        if heads is None or heads.mmpt is None:
            raise _missing_head("MMPT")
        losses.update(mmpt_losses(
            heads.mmpt, graph, output.node_embedding, output.graph_embedding, settings, generator
        ))
    switched_on = settings.switched_on()
    if not switched_on:
        raise ValueError("every pre-training objective is switched off (all weights are 0)")
    total = torch.stack([settings.weight(name) * losses[name] for name in switched_on]).sum()
    with torch.no_grad():
        predicted = output.space_group_log_probs.argmax(dim=1)
        losses["space_group_accuracy"] = (predicted == labels["space_group"]).float().mean()
        losses["crystal_system_accuracy"] = (
            crystal_system_of_space_group(predicted) == labels["crystal_system"]
        ).float().mean()
    losses["total"] = total
    return losses


def _missing_head(objective: str) -> ValueError:
    return ValueError(
        f"the {objective} objective is switched on but has no head: pass "
        "heads=PretrainHeads(settings, ...) built with the same objective settings"
    )
