"""Batched pair scoring for CrysGNN's connectivity head."""

from __future__ import annotations

import torch
from torch import nn


def pair_bilinear_scores(
    node: torch.Tensor, batch_num_nodes: torch.Tensor, bilinear: nn.Bilinear
) -> torch.Tensor:
    """``bilinear(z_i, z_j)`` for every ordered pair within each crystal of a batch.

    Returns ``(Σ n², out_features)`` in :func:`crysgnn_dgl.graph.pair_index` order. Crystals
    are padded within size buckets (powers of two), so the bilinear form runs as a few
    dense batched products rather than a Python loop over crystals.
    """
    n = batch_num_nodes.to(device=node.device, dtype=torch.int64)
    node_offset = torch.cumsum(n, 0) - n
    pair_offset = torch.cumsum(n * n, 0) - n * n
    bucket = torch.ceil(torch.log2(n.clamp(min=1).to(torch.float64))).to(torch.int64)
    values, positions = [], []
    for b in torch.unique(bucket).tolist():
        graphs = torch.nonzero(bucket == b).squeeze(1)
        size = n[graphs]
        width = int(size.max())
        slot = torch.arange(width, device=node.device)
        present = slot.unsqueeze(0) < size.unsqueeze(1)  # (G, width)
        index = (node_offset[graphs].unsqueeze(1) + slot).clamp(max=node.shape[0] - 1)
        padded = node[index] * present.unsqueeze(-1)  # (G, width, dim)
        projected = torch.einsum("gnd,kde->gkne", padded, bilinear.weight)
        scores = projected @ padded.transpose(1, 2).unsqueeze(1)  # (G, k, width, width)
        scores = scores.permute(0, 2, 3, 1)
        valid = present.unsqueeze(2) & present.unsqueeze(1)  # (G, width, width)
        values.append(scores[valid])
        first = pair_offset[graphs].view(-1, 1, 1) + slot.view(1, -1, 1) * size.view(-1, 1, 1)
        positions.append((first + slot.view(1, 1, -1))[valid])
    order = torch.argsort(torch.cat(positions))
    scores = torch.cat(values)[order]
    return scores + bilinear.bias if bilinear.bias is not None else scores
