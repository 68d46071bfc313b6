"""Augmented graph attention with edge features (GATGNN's AGAT layer, Louis et al. 2020)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..backend import dgl


class AGATConv(nn.Module):
    """Multi-head graph attention whose messages and scores see the edge features.

    For every edge j → i (neighbour → centre) and head h:
    ``x_i = softplus([h_i ‖ e_ij] W)``, ``x_j = softplus([h_j ‖ e_ij] W)``,
    ``s = softplus(a_h · [x_i ‖ x_j])``, ``α = softmax_{j→i}(softplus(BN(s)))`` over the
    incoming edges of i, and ``h_i' = mean_h Σ_j α_h x_j,h + b`` (or the heads
    concatenated with ``concat=True``). Parameter names follow the original layer
    (``W``, ``att``, ``bn1``, ``bias``).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        edge_dim: int,
        heads: int,
        concat: bool = False,
        dropout: float = 0.0,
        bias: bool = True,
    ):
        super().__init__()
        self.in_dim, self.out_dim, self.heads = in_dim, out_dim, heads
        self.concat = concat
        self.dropout = dropout
        self.W = nn.Parameter(torch.empty(in_dim + edge_dim, heads * out_dim))
        self.att = nn.Parameter(torch.empty(1, heads, 2 * out_dim))
        self.bn1 = nn.BatchNorm1d(heads)
        width = heads * out_dim if concat else out_dim
        self.bias = nn.Parameter(torch.zeros(width)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for weight in (self.W, self.att):
            bound = math.sqrt(6.0 / (weight.shape[-2] + weight.shape[-1]))  # Glorot uniform
            nn.init.uniform_(weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(
        self,
        graph: dgl.DGLGraph,
        node: torch.Tensor,
        edge: torch.Tensor,
        return_attention: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """New node features ``(N, out)``; with ``return_attention`` also ``α`` ``(E, heads)``."""
        src, dst = graph.edges()
        heads, width = self.heads, self.out_dim
        # [h ‖ e] W computed as h W_node + e W_edge (the same affine map, fewer products).
        node_part = node @ self.W[: self.in_dim]
        edge_part = edge @ self.W[self.in_dim :]
        x_center = F.softplus(node_part[dst] + edge_part).view(-1, heads, width)
        x_neighbor = F.softplus(node_part[src] + edge_part).view(-1, heads, width)
        score = (x_center * self.att[..., :width]).sum(-1) + (x_neighbor * self.att[..., width:]).sum(-1)
        score = F.softplus(self.bn1(F.softplus(score)))
        alpha = dgl.ops.edge_softmax(graph, score)
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        message = (x_neighbor * alpha.unsqueeze(-1)).reshape(-1, heads * width)
        summed = dgl.ops.copy_e_sum(graph, message).view(-1, heads, width)
        out = summed.reshape(-1, heads * width) if self.concat else summed.mean(dim=1)
        if self.bias is not None:
            out = out + self.bias
        return (out, alpha) if return_attention else out
