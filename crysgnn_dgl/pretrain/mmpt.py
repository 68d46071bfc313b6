"""MMPT (Yu et al., "A Crystal-Specific Pre-Training Framework for Crystal Material
Property Prediction") on the CrysGNN encoder.

The paper's structure encoder is a multi-graph attention layer plus DimeNet++; here it is
the CrysGNN (CGCNN) encoder, whose per-atom output (the L2-normalised embedding, the same
pass the CrysGNN objectives use) is masked. Mutex masks: a random half (``⌊n/2⌋``) of each
crystal's atoms is replaced by a learned [MASK] vector in view 1, the complement in view 2;
a GIN decoder (:class:`~crysgnn_dgl.pretrain.mmpt_heads.GINDecoder`) decodes both views.
The terms (names of :data:`~crysgnn_dgl.pretrain.settings.MMPT_OBJECTIVES`, weights of
Eq. 7 in :data:`~crysgnn_dgl.pretrain.settings.MMPT_PAPER_WEIGHTS`):

* ``mmpt_atom_type`` (Eq. 8): cross-entropy of the atomic number (119 classes) of each
  view's masked atoms, averaged over them, then over the two views;
* ``mmpt_coordinate`` (Eq. 9): L1 error of the distance of each view's masked atoms from
  their crystal's centroid (Cartesian, as the cell's coordinates are stored);
* ``mmpt_lattice`` (Eq. 10): MSE of the six Niggli parameters, standardised
  (:mod:`~crysgnn_dgl.pretrain.niggli`), predicted from the pooled encoder vector;
* ``mmpt_barlow_twins`` (Eq. 11): Barlow Twins between the two views' decoded atom vectors;
* ``mmpt_direction``, ``mmpt_same_cell``, ``mmpt_distance`` (Eqs. 12–14): per real edge,
  from both views, the 27-class sign pattern of the neighbour's image offset (CE), whether
  it is the centre's own cell (2-class CE) and the distance in Å (L1), each averaged over
  edges and views.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..backend import dgl
from .barlow_twins import barlow_twins_loss
from .mmpt_heads import MMPTHeads
from .niggli import standardised_niggli_targets
from .periodic import (
    cartesian_positions,
    crystal_of_nodes,
    direction_classes,
    real_edges,
    require_fields,
    same_cell,
    segment_sum,
)
from .settings import ObjectiveSettings

_FIELDS = {
    "mmpt_atom_type": (("atomic_number",), ()),
    "mmpt_coordinate": (("frac_coords", "lattice"), ()),
    "mmpt_lattice": (("lattice",), ()),
    "mmpt_direction": ((), ("image",)),
    "mmpt_same_cell": ((), ("image",)),
    "mmpt_distance": ((), ("distance",)),
}


def mutex_masks(batch_num_nodes: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(N,)`` bool: ``⌊n/2⌋`` atoms of each crystal drawn uniformly without replacement
    (view 1's masked atoms; view 2 masks the complement). Drawn on the CPU."""
    sizes = batch_num_nodes.detach().cpu().to(torch.int64)
    crystal = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
    order = torch.argsort(torch.rand(int(sizes.sum()), generator=generator))
    order = order[torch.argsort(crystal[order], stable=True)]  # by crystal, random within
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order)) - (torch.cumsum(sizes, 0) - sizes)[crystal]
    return rank < (sizes // 2)[crystal]


def _mean_over_hidden(per_atom: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """Mean of ``(N, 2)`` values over each view's hidden atoms, then over the views that
    hide any atom (a batch of one-atom crystals hides none in view 1)."""
    means = [per_atom[:, v][hidden[:, v]].mean() for v in range(2) if bool(hidden[:, v].any())]
    return torch.stack(means).mean()


def centroid_distances(graph: dgl.DGLGraph) -> torch.Tensor:
    """``(N,)`` distance (Å) of each atom from its crystal's mean Cartesian position."""
    positions = cartesian_positions(graph)
    crystal = crystal_of_nodes(graph)
    sizes = graph.batch_num_nodes().to(positions.device).to(positions.dtype).view(-1, 1)
    centroid = segment_sum(positions, crystal, graph.batch_size) / sizes
    return (positions - centroid[crystal]).norm(dim=1)


def _edge_terms(heads: MMPTHeads, graph: dgl.DGLGraph, decoded: torch.Tensor) -> dict[str, torch.Tensor]:
    """Direction, same-cell and distance terms over the real edges, from both views."""
    src, dst = graph.edges()
    real = real_edges(graph)
    candidates = {"mmpt_direction": heads.direction, "mmpt_same_cell": heads.same_cell, "mmpt_distance": heads.distance}
    parts = {name: part for name, part in candidates.items() if part is not None}
    if not bool(real.any()):  # no neighbour anywhere: zero terms that keep the graph
        return {name: decoded.sum() * 0.0 for name in parts}
    pairs = torch.cat([decoded[dst], decoded[src]], dim=-1)[real]  # (E_real, 2, 2d)
    terms: dict[str, torch.Tensor] = {}
    for name, part in parts.items():
        output = part(pairs).float()  # (E_real, 2, outputs): both views of every edge
        if name == "mmpt_distance":
            distance = graph.edata["distance"][real].float().view(-1, 1)
            terms[name] = (output.squeeze(-1) - distance).abs().mean()
            continue
        image = graph.edata["image"][real]
        target = direction_classes(image) if name == "mmpt_direction" else same_cell(image)
        terms[name] = F.cross_entropy(output.flatten(0, 1), target.repeat_interleave(2))
    return terms


def mmpt_losses(
    heads: MMPTHeads,
    graph: dgl.DGLGraph,
    node_embedding: torch.Tensor,
    graph_embedding: torch.Tensor,
    settings: ObjectiveSettings,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """The switched-on MMPT terms (unweighted) of one batch, and ``mmpt_atom_type_accuracy``
    (detached) when atom types are reconstructed. ``node_embedding`` and
    ``graph_embedding`` are the encoder's outputs for ``graph``."""
    on = settings.switched_on()
    for term in on:
        if term in _FIELDS:
            require_fields(graph, term, *_FIELDS[term])
    terms: dict[str, torch.Tensor] = {}
    if heads.lattice is not None:
        predicted = heads.lattice(graph_embedding).float()
        terms["mmpt_lattice"] = F.mse_loss(predicted, standardised_niggli_targets(graph))
    if heads.decoder is None:
        return terms
    masked = mutex_masks(graph.batch_num_nodes(), generator).to(node_embedding.device)
    decoded = heads.decoder(graph, heads.views(node_embedding, masked))  # (N, 2, d)
    hidden = torch.stack([masked, ~masked], dim=1)
    if heads.atom_type is not None:
        logits = heads.atom_type(decoded).float()
        numbers = graph.ndata["atomic_number"].long().view(-1, 1).expand(-1, 2)
        per_atom = F.cross_entropy(logits.permute(0, 2, 1), numbers, reduction="none")
        terms["mmpt_atom_type"] = _mean_over_hidden(per_atom, hidden)
        with torch.no_grad():
            right = (logits.argmax(dim=-1) == numbers).float()
            terms["mmpt_atom_type_accuracy"] = _mean_over_hidden(right, hidden)
    if heads.coordinate is not None:
        error = (heads.coordinate(decoded).squeeze(-1).float() - centroid_distances(graph).view(-1, 1)).abs()
        terms["mmpt_coordinate"] = _mean_over_hidden(error, hidden)
    if "mmpt_barlow_twins" in on:
        terms["mmpt_barlow_twins"] = barlow_twins_loss(
            decoded[:, 0], decoded[:, 1], settings.mmpt_barlow_twins_lambda
        )
    terms.update(_edge_terms(heads, graph, decoded))
    return terms
