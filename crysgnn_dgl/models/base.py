"""What every network on crysgnn_dgl graphs keeps: its featuriser settings and edge expansion."""

from __future__ import annotations

from torch import nn

from ..config import GraphSettings
from ..graph.gaussian import GaussianExpansion


class CrystalGraphModel(nn.Module):
    """Base of the models on graphs from :func:`crysgnn_dgl.build_graph`.

    Holds ``graph_settings`` (the featuriser the model was built for; default
    :class:`~crysgnn_dgl.config.GraphSettings`) and ``edge_expansion``, the Gaussian
    expansion of ``edata["distance"]`` those settings define (no trainable parameters).
    """

    def __init__(self, graph_settings: GraphSettings | None = None):
        super().__init__()
        self.graph_settings = graph_settings or GraphSettings()
        self.edge_expansion = GaussianExpansion(self.graph_settings)
