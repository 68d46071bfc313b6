"""GATGNN adapter: the package's DGL port (``crysgnn_dgl.models.gatgnn.GATGNN``).

Per-atom embeddings: the node features entering ``model.global_attention(graph, node)``
(after the last AGAT layer). The port's graph is the teacher's featurisation, so it is
handed to the teacher as it is.
"""

from __future__ import annotations

from torch import nn

from .base import AdapterError, HookPoint, PortAdapter


class GATGNNAdapter(PortAdapter):
    """crysgnn_dgl.models.gatgnn.GATGNN (DGL port, called as ``model(graph)``)."""

    name = "gatgnn"
    port = "crysgnn_dgl.models.gatgnn.GATGNN"

    def hook_point(self, student: nn.Module) -> HookPoint:
        attention = getattr(student, "global_attention", None)
        if not isinstance(attention, nn.Module):
            raise AdapterError("the GATGNN port has no 'global_attention' module to take per-atom features from")
        return HookPoint(attention, "global_attention", "input", 1)

    def student_width(self, student: nn.Module) -> int | None:
        return int(student.settings.neurons)
