"""GATGNN (Louis et al., PCCP 2020) as a DGL predictor on crysgnn_dgl graphs.

Node and edge embeddings, ``n_layers`` AGAT attention layers (each followed by batch
norm and a functional softplus), composition-based global attention weighting every
atom, sum pooling of the weighted atoms, and an MLP head. Defaults follow the original
training script: 64 neurons, 3 layers, 4 heads, extra hidden layers on, composition
attention. The per-atom final node features are the ``node`` argument of
``model.global_attention(graph, node)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..backend import dgl
from ..config import GraphSettings, SettingsBase
from ..layers.agat import AGATConv
from ..layers.composition import COMPOSITION_DIM, CompositionAttention, composition_fractions
from .base import CrystalGraphModel


@dataclass(frozen=True)
class GATGNNSettings(SettingsBase):
    """GATGNN hyper-parameters.

    Attributes:
        atom_input_dim: width of the atom feature table.
        neurons: width of node and edge embeddings.
        n_layers: number of AGAT layers.
        heads: attention heads per AGAT layer (averaged, as in the original).
        extra_layers: two softplus hidden layers before the output (``linear1``, ``linear2``).
        concat_comp: concatenate an embedding of the composition to the pooled vector.
        attention_hidden: hidden width of the composition attention.
        attention_dropout: dropout on the AGAT attention coefficients.
        negative_slope: leaky-ReLU slope of the edge (and composition) embeddings.
        classification: two-class logits instead of a regression output.
        num_classes: classes of the classification head.
    """

    atom_input_dim: int = 92
    neurons: int = 64
    n_layers: int = 3
    heads: int = 4
    extra_layers: bool = True
    concat_comp: bool = False
    attention_hidden: int = 32
    attention_dropout: float = 0.0
    negative_slope: float = 0.2
    classification: bool = False
    num_classes: int = 2

    def validate(self) -> None:
        self._require_int("atom_input_dim", "neurons", "n_layers", "heads", "attention_hidden", "num_classes", least=1)
        self._require_number("attention_dropout", low=0.0, high=1.0, high_open=True)
        self._require_number("negative_slope", low=0.0)
        self._require_bool("extra_layers", "concat_comp", "classification")


class GATGNN(CrystalGraphModel):
    """Global-attention graph network on graphs from :func:`crysgnn_dgl.build_graph`.

    ``model(graph)`` returns ``(B,)`` predictions (``(B, num_classes)`` logits with
    ``classification=True``). Graphs must carry ``ndata["atomic_number"]`` (for the
    composition) and ``edata["distance"]`` (Gaussian-expanded by ``graph_settings``).
    """

    def __init__(self, settings: GATGNNSettings | None = None, graph_settings: GraphSettings | None = None):
        super().__init__(graph_settings)
        self.settings = settings or GATGNNSettings()
        s, width = self.settings, self.settings.neurons
        self.embed_n = nn.Linear(s.atom_input_dim, width)
        self.embed_e = nn.Linear(self.graph_settings.num_gaussians, width)
        self.node_att = nn.ModuleList(
            AGATConv(width, width, width, s.heads, dropout=s.attention_dropout)
            for _ in range(s.n_layers)
        )
        self.batch_norm = nn.ModuleList(nn.BatchNorm1d(width) for _ in range(s.n_layers))
        self.global_attention = CompositionAttention(width, s.attention_hidden, COMPOSITION_DIM)
        self.embed_comp = nn.Linear(COMPOSITION_DIM, width) if s.concat_comp else None
        head_width = 2 * width if s.concat_comp else width
        self.linear1 = nn.Linear(head_width, head_width) if s.extra_layers else None
        self.linear2 = nn.Linear(head_width, head_width) if s.extra_layers else None
        self.out = nn.Linear(head_width, s.num_classes if s.classification else 1)

    def atom_embeddings(self, graph: dgl.DGLGraph) -> torch.Tensor:
        """Per-atom features after the last attention layer ``(N_atoms, neurons)``."""
        slope = self.settings.negative_slope
        node = self.embed_n(graph.ndata["atom_features"])
        edge = F.leaky_relu(self.embed_e(self.edge_expansion(graph.edata["distance"])), slope)
        for attention, norm in zip(self.node_att, self.batch_norm):
            node = F.softplus(norm(attention(graph, node, edge)))
        return node

    def forward(self, graph: dgl.DGLGraph) -> torch.Tensor:
        node = self.atom_embeddings(graph)
        weights = self.global_attention(graph, node)
        with graph.local_scope():
            graph.ndata["_weighted"] = node * weights
            crystal = dgl.sum_nodes(graph, "_weighted")
        if self.embed_comp is not None:
            composition = composition_fractions(graph, COMPOSITION_DIM).to(crystal.dtype)
            embedded = F.leaky_relu(self.embed_comp(composition), self.settings.negative_slope)
            crystal = torch.cat([crystal, embedded], dim=1)
        if self.linear1 is not None and self.linear2 is not None:  # both or neither
            crystal = F.softplus(self.linear2(F.softplus(self.linear1(crystal))))
        out = self.out(crystal)
        return out if self.settings.classification else out.squeeze(-1)
