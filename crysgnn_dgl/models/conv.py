"""CGCNN graph convolution (Xie & Grossman 2018, Eq. 5) on DGL graphs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..backend import dgl


class CGCNNConv(nn.Module):
    """Gated CGCNN convolution with the released layer names (``fc_full``, ``bn1``, ``bn2``).

    For every edge j → i: ``z = W [h_i ‖ h_j ‖ e_ij] + b``, batch-normalised; the message is
    ``σ(z_gate) ⊙ softplus(z_core)``; messages are summed per centre, batch-normalised, and
    ``h_i' = softplus(h_i + Σ)``. The weight is applied to node and edge blocks separately
    (the same affine map, computed per node instead of per edge where possible).
    """

    def __init__(self, node_dim: int, edge_dim: int):
        super().__init__()
        self.node_dim = node_dim
        self.fc_full = nn.Linear(2 * node_dim + edge_dim, 2 * node_dim)
        self.bn1 = nn.BatchNorm1d(2 * node_dim)
        self.bn2 = nn.BatchNorm1d(node_dim)

    def forward(self, graph: dgl.DGLGraph, node: torch.Tensor, edge: torch.Tensor) -> torch.Tensor:
        d = self.node_dim
        weight = self.fc_full.weight
        src, dst = graph.edges()
        per_center = node @ weight[:, :d].T
        per_neighbor = node @ weight[:, d : 2 * d].T
        gated = per_center[dst] + per_neighbor[src] + F.linear(edge, weight[:, 2 * d :], self.fc_full.bias)
        gated = self.bn1(gated)
        gate, core = gated.chunk(2, dim=1)
        message = torch.sigmoid(gate) * F.softplus(core)
        summed = dgl.ops.copy_e_sum(graph, message)
        return F.softplus(node + self.bn2(summed))
