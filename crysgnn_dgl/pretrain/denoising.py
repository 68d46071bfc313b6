"""CDSSL denoising (New et al., "Self-supervised learning for crystal property prediction
via denoising"): recover a crystal's edge distances from a noised copy of it.

Every atom's Cartesian position gets Gaussian noise ``N(0, σ² I)`` (σ = 0.5 Å by default,
the paper's); the edges stay those of the clean crystal (same atom pairs, same periodic
images), their distances — and so the Gaussian edge features the encoder reads — are
recomputed from the noised positions. From the noised graph the CrysGNN encoder and an
edge head predict each edge's *clean* distance, z-scored over the real edges of its
crystal (Eq. 2; 0 for a crystal whose edges all have one length); the loss is the squared
error averaged over real edges. Padding edges keep their pad distance, are not noised and
take part in no statistic or loss.

The noised pass runs the encoder in the module's mode: in training it also updates the
BatchNorm running statistics, with noised crystals.
"""

from __future__ import annotations

import torch
from torch import nn

from ..backend import dgl
from ..models.crysgnn import CrysGNN
from .periodic import (
    cartesian_positions,
    crystal_of_edges,
    edge_distances,
    real_edges,
    require_fields,
    zscore_per_crystal,
)


class DenoisingHead(nn.Module):
    """Edge head: ``MLP([h_u + h_v, h_u ⊙ h_v, e_uv])`` → one scalar per edge.

    ``h`` are the encoder's atom embeddings of the two end atoms, combined symmetrically
    (a distance does not depend on the edge's direction), and ``e_uv`` the Gaussian
    expansion of the edge's (noised) distance: the atom embeddings alone cannot tell apart
    two edges joining the same atoms through different periodic images.
    """

    def __init__(self, hidden_dim: int, edge_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2 * hidden_dim + edge_dim, hidden_dim), nn.Softplus(), nn.Linear(hidden_dim, 1)
        )

    def forward(self, node: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, edge: torch.Tensor) -> torch.Tensor:
        u, v = node[src], node[dst]
        return self.mlp(torch.cat([u + v, u * v, edge.to(u.dtype)], dim=1)).squeeze(1)


def noised_distances(
    graph: dgl.DGLGraph, sigma: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``(E,)`` edge distances after noising every position with ``N(0, σ²)`` per axis;
    padding edges keep their stored distance. The noise is drawn on the CPU from
    ``generator`` (reproducible on any device)."""
    positions = cartesian_positions(graph)
    noise = torch.randn(positions.shape, generator=generator, dtype=torch.float32)
    distance = edge_distances(graph, positions + sigma * noise.to(positions.device))
    return torch.where(real_edges(graph), distance, graph.edata["distance"].to(distance.dtype))


def denoising_targets(graph: dgl.DGLGraph) -> torch.Tensor:
    """``(E,)`` clean edge distances z-scored per crystal over its real edges (0 on padding)."""
    return zscore_per_crystal(
        graph.edata["distance"], crystal_of_edges(graph), real_edges(graph), graph.batch_size
    ).float()


def denoising_loss(
    model: CrysGNN,
    head: DenoisingHead,
    graph: dgl.DGLGraph,
    sigma: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean over real edges of ``(ê − ē)²``: ``ê`` predicted from the noised graph, ``ē``
    the :func:`denoising_targets` of the clean one."""
    require_fields(graph, "denoising", ndata=("frac_coords", "lattice"), edata=("image", "distance"))
    noised = noised_distances(graph, sigma, generator)
    features = model.edge_expansion(noised)
    with graph.local_scope():
        graph.edata["distance"] = noised
        if "edge_features" in graph.edata:  # pre-expanded features would be the clean ones
            graph.edata["edge_features"] = features
        node = model.embed(graph)
    src, dst = graph.edges()
    prediction = head(node, src, dst, features).float()
    real = real_edges(graph)
    if not bool(real.any()):
        return prediction.sum() * 0.0
    return (prediction - denoising_targets(graph))[real].pow(2).mean()
