"""Composition-based global attention (GATGNN) and the composition vector it reads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..backend import dgl

COMPOSITION_DIM = 103  # elements Z = 1..103, as in the original global feature vector


def composition_fractions(graph: dgl.DGLGraph, dim: int = COMPOSITION_DIM) -> torch.Tensor:
    """Fractional element amounts of each crystal in a (batched) graph, ``(B, dim)``.

    Column ``Z - 1`` holds the fraction of atoms with atomic number ``Z``; rows sum to 1.
    Needs ``ndata["atomic_number"]`` (set by :func:`crysgnn_dgl.build_graph`).
    """
    if "atomic_number" not in graph.ndata:
        raise KeyError(
            "composition attention needs ndata['atomic_number']; build the graph with "
            "crysgnn_dgl.build_graph or pass atomic_numbers to graph_from_arrays"
        )
    numbers = graph.ndata["atomic_number"].long()
    if numbers.numel() and (int(numbers.min()) < 1 or int(numbers.max()) > dim):
        raise ValueError(f"atomic numbers must lie in 1..{dim}, got {numbers.min()}..{numbers.max()}")
    counts = graph.batch_num_nodes().to(numbers.device)
    crystal = torch.repeat_interleave(torch.arange(len(counts), device=numbers.device), counts)
    amounts = torch.zeros(len(counts), dim, device=numbers.device)
    amounts.index_put_((crystal, numbers - 1), torch.ones_like(numbers, dtype=amounts.dtype), accumulate=True)
    return amounts / counts.clamp(min=1).unsqueeze(1).to(amounts.dtype)


class CompositionAttention(nn.Module):
    """Per-atom weights from the atom's features and its crystal's composition.

    ``w = softmax_{atoms of the crystal}(atten_layer(softplus(node_layer1([h ‖ c]))))``;
    the weights of each crystal sum to 1. Called as ``attention(graph, node)``; returns
    ``(N, 1)``.
    """

    def __init__(self, node_dim: int, hidden_dim: int = 32, composition_dim: int = COMPOSITION_DIM):
        super().__init__()
        self.composition_dim = composition_dim
        self.node_layer1 = nn.Linear(node_dim + composition_dim, hidden_dim)
        self.atten_layer = nn.Linear(hidden_dim, 1)

    def forward(self, graph: dgl.DGLGraph, node: torch.Tensor) -> torch.Tensor:
        composition = composition_fractions(graph, self.composition_dim).to(node.dtype)
        per_atom = torch.repeat_interleave(composition, graph.batch_num_nodes().to(node.device), dim=0)
        score = self.atten_layer(F.softplus(self.node_layer1(torch.cat([node, per_atom], dim=1))))
        with graph.local_scope():
            graph.ndata["_score"] = score
            return dgl.softmax_nodes(graph, "_score")
