"""CGCNN (Xie & Grossman, PRL 2018) as a DGL predictor on crysgnn_dgl graphs.

The architecture, hyper-parameter defaults and parameter names follow the original
``CrystalGraphConvNet``: ``embedding`` (92 → 64), ``convs`` (3 gated convolutions),
mean pooling, ``conv_to_fc`` with softplus, ``n_h - 1`` further hidden layers ``fcs``,
and ``fc_out`` (regression, or log-softmax classification with dropout). A state dict
of the original model therefore loads into this one (the original's activation modules
carry no parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..backend import dgl
from ..config import GraphSettings, SettingsBase
from .base import CrystalGraphModel
from .conv import CGCNNConv


@dataclass(frozen=True)
class CGCNNSettings(SettingsBase):
    """CGCNN hyper-parameters (defaults are the original ``main.py`` defaults).

    Attributes:
        atom_input_dim: width of the atom feature table (``orig_atom_fea_len``).
        atom_fea_len: hidden atom feature width in the convolutions.
        n_conv: number of convolution layers.
        h_fea_len: width of the hidden layers after pooling.
        n_h: number of hidden layers after pooling (``conv_to_fc`` plus ``n_h - 1`` ``fcs``).
        classification: classification head (log-probabilities) instead of regression.
        num_classes: classes of the classification head (2 in the original).
        dropout: dropout probability before the hidden layers (classification only).
    """

    atom_input_dim: int = 92
    atom_fea_len: int = 64
    n_conv: int = 3
    h_fea_len: int = 128
    n_h: int = 1
    classification: bool = False
    num_classes: int = 2
    dropout: float = 0.5

    def validate(self) -> None:
        self._require_int("atom_input_dim", "atom_fea_len", "n_conv", "h_fea_len", "n_h", "num_classes", least=1)
        self._require_number("dropout", low=0.0, high=1.0, high_open=True)
        self._require_bool("classification")


class CGCNN(CrystalGraphModel):
    """Crystal graph convolutional network on graphs from :func:`crysgnn_dgl.build_graph`.

    ``model(graph)`` returns ``(B,)`` predictions for a batch of ``B`` crystals, or
    ``(B, num_classes)`` log-probabilities with ``classification=True``. Edge features
    are the Gaussian expansion of ``edata["distance"]`` defined by ``graph_settings``
    (the featuriser the model was built for). Per-atom embeddings are the output of
    ``model.convs[-1]``.
    """

    def __init__(self, settings: CGCNNSettings | None = None, graph_settings: GraphSettings | None = None):
        super().__init__(graph_settings)
        self.settings = settings or CGCNNSettings()
        s = self.settings
        self.embedding = nn.Linear(s.atom_input_dim, s.atom_fea_len)
        self.convs = nn.ModuleList(
            CGCNNConv(s.atom_fea_len, self.graph_settings.num_gaussians) for _ in range(s.n_conv)
        )
        self.conv_to_fc = nn.Linear(s.atom_fea_len, s.h_fea_len)
        self.fcs = nn.ModuleList(nn.Linear(s.h_fea_len, s.h_fea_len) for _ in range(s.n_h - 1))
        self.fc_out = nn.Linear(s.h_fea_len, s.num_classes if s.classification else 1)
        self.dropout = nn.Dropout(s.dropout) if s.classification else None

    def atom_embeddings(self, graph: dgl.DGLGraph) -> torch.Tensor:
        """Per-atom features after the last convolution ``(N_atoms, atom_fea_len)``."""
        node = self.embedding(graph.ndata["atom_features"])
        edge = self.edge_expansion(graph.edata["distance"])
        for conv in self.convs:
            node = conv(graph, node, edge)
        return node

    def forward(self, graph: dgl.DGLGraph) -> torch.Tensor:
        node = self.atom_embeddings(graph)
        with graph.local_scope():
            graph.ndata["_atom"] = node
            crystal = dgl.mean_nodes(graph, "_atom")
        # The original applies softplus both before and after ``conv_to_fc``.
        crystal = F.softplus(self.conv_to_fc(F.softplus(crystal)))
        if self.dropout is not None:
            crystal = self.dropout(crystal)
        for fc in self.fcs:
            crystal = F.softplus(fc(crystal))
        out = self.fc_out(crystal)
        if self.settings.classification:
            return F.log_softmax(out, dim=1)
        return out.squeeze(-1)
