"""CrysGNN (Das et al., AAAI 2023) in DGL: CGCNN encoder plus four pre-training heads."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..backend import dgl
from ..config import GraphSettings, ModelSettings
from .base import CrystalGraphModel
from .conv import CGCNNConv
from .heads import pair_bilinear_scores


@dataclass
class CrysGNNOutput:
    """Everything one forward pass produces.

    Attributes:
        node_embedding: per-atom L2-normalised embeddings ``(N, hidden)``, the
            distillation target.
        graph_embedding: mean of ``node_embedding`` per crystal ``(B, hidden)``.
        feature_logits: atom-feature reconstruction logits ``(N, 92)``.
        space_group_log_probs: ``(B, 230)``.
        contrastive: graph vectors fed to NT-Xent ``(B, hidden)``.
        connectivity_log_probs: ``(Σ n², 6)`` over all ordered pairs, or None when not asked.
    """

    node_embedding: torch.Tensor
    graph_embedding: torch.Tensor
    feature_logits: torch.Tensor
    space_group_log_probs: torch.Tensor
    contrastive: torch.Tensor
    connectivity_log_probs: torch.Tensor | None


class CrysGNN(CrystalGraphModel):
    """CrysGNN with the released parameter names, so release checkpoints load as they are.

    Graphs come from :func:`crysgnn_dgl.build_graph` with the same ``graph_settings``.
    """

    def __init__(self, model_settings: ModelSettings | None = None, graph_settings: GraphSettings | None = None):
        super().__init__(graph_settings)
        self.model_settings = model_settings or ModelSettings()
        m, g = self.model_settings, self.graph_settings
        self.embedding = nn.Linear(m.atom_input_dim, m.hidden_dim, bias=False)
        self.convs = nn.ModuleList(
            CGCNNConv(m.hidden_dim, g.num_gaussians) for _ in range(m.num_conv)
        )
        self.fc_adj = nn.Bilinear(m.hidden_dim, m.hidden_dim, m.num_connectivity_classes)
        self.fc1 = nn.Linear(m.num_connectivity_classes, m.num_connectivity_classes)
        self.fc_atom_feature = nn.Linear(m.hidden_dim, m.atom_input_dim)
        self.fc_sg = nn.Linear(m.hidden_dim, m.num_space_groups)
        self.fc_contrastive = (
            nn.Linear(m.hidden_dim, m.hidden_dim) if m.contrastive_projection else None
        )

    def embed(self, graph: dgl.DGLGraph, depth: int | None = None) -> torch.Tensor:
        """Per-atom L2-normalised embeddings ``(N_atoms, hidden)`` in the graph's node order
        (of the first ``depth`` convolutions when given)."""
        return F.normalize(self.encode(graph, depth), p=2, dim=1)

    def encode(self, graph: dgl.DGLGraph, depth: int | None = None) -> torch.Tensor:
        """Per-atom output of the last convolution (of the first ``depth`` convolutions
        when given), before the L2 normalisation.

        Edge features are ``edata["edge_features"]`` when the graph carries them already
        expanded (e.g. CGCNN's ``nbr_fea``), else the Gaussian expansion of ``distance``.
        """
        node = self.embedding(graph.ndata["atom_features"])
        if "edge_features" in graph.edata:
            edge = graph.edata["edge_features"]
        else:
            edge = self.edge_expansion(graph.edata["distance"])
        for conv in list(self.convs)[:depth]:
            node = conv(graph, node, edge)
        return node

    def connectivity_log_probs(
        self, node_embedding: torch.Tensor, batch_num_nodes: torch.Tensor
    ) -> torch.Tensor:
        """Connectivity-class log-probabilities of all ordered pairs within each crystal."""
        scores = pair_bilinear_scores(node_embedding, batch_num_nodes, self.fc_adj)
        return F.log_softmax(self.fc1(scores), dim=-1)

    def forward(self, graph: dgl.DGLGraph, with_connectivity: bool = True) -> CrysGNNOutput:
        node = self.embed(graph)
        with graph.local_scope():
            graph.ndata["_z"] = node
            pooled = dgl.mean_nodes(graph, "_z")
        contrastive = self.fc_contrastive(pooled) if self.fc_contrastive is not None else pooled
        connectivity = (
            self.connectivity_log_probs(node, graph.batch_num_nodes()) if with_connectivity else None
        )
        return CrysGNNOutput(
            node_embedding=node,
            graph_embedding=pooled,
            feature_logits=self.fc_atom_feature(node),
            space_group_log_probs=F.log_softmax(self.fc_sg(pooled), dim=-1),
            contrastive=contrastive,
            connectivity_log_probs=connectivity,
        )
