"""The trainable parts MMPT adds to the CrysGNN encoder: the [MASK] vector, a graph decoder
and one small head per switched-on term (see :mod:`crysgnn_dgl.pretrain.mmpt`)."""

from __future__ import annotations

import torch
from torch import nn

from ..backend import dgl
from .periodic import real_edges
from .settings import ObjectiveSettings

NUM_ATOM_TYPES = 119  # atomic numbers 0..118, the paper's Q
NUM_DIRECTIONS = 27
NUM_LATTICE_PARAMETERS = 6
DECODER_TERMS = (
    "mmpt_atom_type", "mmpt_coordinate", "mmpt_barlow_twins",
    "mmpt_direction", "mmpt_same_cell", "mmpt_distance",
)


def mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """``Linear → ReLU → Linear``."""
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim))


class GINDecoder(nn.Module):
    """Graph isomorphism layers ``x_i ← MLP((1 + ε) x_i + Σ_{j→i} x_j)`` over the real edges
    (padding edges carry no message), ReLU between layers.

    Inputs ``(N, V, d)`` decode ``V`` views of the same atoms in one pass. A decoder that
    sees neighbours is needed: a per-atom map of a [MASK] vector would be the same for
    every masked atom. It reads no edge features, so the edge targets are not inputs.
    """

    def __init__(self, dim: int, num_layers: int = 2):
        super().__init__()
        self.layers = nn.ModuleList(mlp(dim, dim, dim) for _ in range(num_layers))
        self.eps = nn.Parameter(torch.zeros(num_layers))

    def forward(self, graph: dgl.DGLGraph, views: torch.Tensor) -> torch.Tensor:
        num_nodes, num_views, dim = views.shape
        src, dst = graph.edges()
        keep = real_edges(graph).to(views.dtype).view(-1, 1)
        x = views
        for number, layer in enumerate(self.layers):
            flat = x.reshape(num_nodes, num_views * dim)
            summed = torch.zeros_like(flat).index_add_(0, dst, flat[src] * keep)
            x = layer((1.0 + self.eps[number]) * x + summed.view(num_nodes, num_views, dim))
            if number < len(self.layers) - 1:
                x = torch.relu(x)
        return x


class MMPTHeads(nn.Module):
    """[MASK] vector (zeros at start, as GraphMAE), decoder and heads of the switched-on
    MMPT terms; parts no switched-on term uses are not built (``None``).

    Atom heads read one decoded atom vector, edge heads the centre's and the neighbour's
    decoded vectors concatenated ``[p_centre ‖ p_neighbour]`` (direction is not symmetric),
    the lattice head the crystal's pooled encoder vector.
    """

    def __init__(self, hidden_dim: int, settings: ObjectiveSettings):
        super().__init__()
        on = set(settings.switched_on())
        uses_decoder = bool(on & set(DECODER_TERMS))
        self.mask_token = nn.Parameter(torch.zeros(hidden_dim)) if uses_decoder else None
        self.decoder = GINDecoder(hidden_dim) if uses_decoder else None
        h = hidden_dim

        def head(term: str, in_dim: int, out_dim: int) -> nn.Sequential | None:
            return mlp(in_dim, h, out_dim) if term in on else None

        self.atom_type = head("mmpt_atom_type", h, NUM_ATOM_TYPES)
        self.coordinate = head("mmpt_coordinate", h, 1)
        self.lattice = head("mmpt_lattice", h, NUM_LATTICE_PARAMETERS)
        self.direction = head("mmpt_direction", 2 * h, NUM_DIRECTIONS)
        self.same_cell = head("mmpt_same_cell", 2 * h, 2)
        self.distance = head("mmpt_distance", 2 * h, 1)

    def views(self, node: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """``(N, 2, d)``: view 0 with the ``masked`` atoms replaced by [MASK], view 1 with
        the complement replaced."""
        if self.mask_token is None:
            raise RuntimeError("no MMPT term that masks atoms is switched on")
        token = self.mask_token.to(node.dtype)
        hide = masked.view(-1, 1)
        return torch.stack([torch.where(hide, token, node), torch.where(hide, node, token)], dim=1)
