"""GATGNN adapter: the package's DGL port (``crysgnn_dgl.models.gatgnn.GATGNN``).

Per-atom embeddings: the node features entering ``model.global_attention(graph, node)``
(after the last AGAT layer). The port's graph is the teacher's featurisation, so it is
handed to the teacher as it is.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from crysgnn_dgl.distill.targets import CrystalBatch

from .base import (
    Adapter,
    AdapterError,
    HookPoint,
    batch_from_crysgnn_graph,
    class_names,
    first_tensor_arg,
    reads_crysgnn_graphs,
    require_release_features,
    require_same_settings,
)


class GATGNNAdapter(Adapter):
    """crysgnn_dgl.models.gatgnn.GATGNN (DGL port, called as ``model(graph)``)."""

    name = "gatgnn"

    @classmethod
    def matches(cls, model: Any) -> bool:
        return "crysgnn_dgl.models.gatgnn.GATGNN" in class_names(model)

    def hook_point(self, student: nn.Module) -> HookPoint:
        attention = getattr(student, "global_attention", None)
        if not isinstance(attention, nn.Module):
            raise AdapterError("the GATGNN port has no 'global_attention' module to take per-atom features from")
        return HookPoint(attention, "global_attention", "input", 1)

    def student_width(self, student: nn.Module) -> int | None:
        return int(student.settings.neurons)

    def check_teacher(self, student: nn.Module, teacher: Any) -> None:
        if not reads_crysgnn_graphs(teacher):
            return  # a structure teacher reads ndata atomic_number, frac_coords, lattice
        require_same_settings(student.graph_settings, teacher, "the GATGNN port")
        require_release_features(teacher.graph_settings, teacher)

    def crystal_batch(self, student: nn.Module, args: tuple, kwargs: dict, teacher: Any) -> CrystalBatch:
        return batch_from_crysgnn_graph(first_tensor_arg(args, kwargs, "graph", 0))
