"""ALIGNN adapter: alignn's DGL ``ALIGNN`` and ``ALIGNNAtomWise`` (installed package).

Per-atom embeddings: output[0] of ``gcn_layers[-1]`` (of ``alignn_layers[-1]`` when the
model has no gated-GCN layers). The teacher's graphs are rebuilt from what alignn's
batches carry: ``g.ndata["atom_features"]`` (92-d CGCNN features, alignn's
``atom_features="cgcnn"``), ``g.ndata["frac_coords"]`` and the lattice tensor passed as the
last element of the input list ``[g, lg, lattice]``. Teachers that read structures get
the atomic numbers from ``g.ndata["atomic_number"]`` when the graphs carry it (alignn's own
``StructureDataset`` stores it as ``(atoms, 1)`` floats; the benchmark's graphs as integers),
else from the CGCNN features (refused for the elements whose feature rows coincide, e.g.
La/Ce).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from crysgnn_dgl.distill.targets import CrystalBatch

from .base import (
    Adapter,
    AdapterError,
    HookPoint,
    batch_from_arrays,
    check_cgcnn_features,
    class_names,
    graph_settings_of,
    reads_crysgnn_graphs,
)

ALIGNN_CLASSES = {
    "alignn.models.alignn.ALIGNN",
    "alignn.models.alignn_atomwise.ALIGNNAtomWise",
}


def _split_inputs(args: tuple, kwargs: dict) -> tuple[Any, torch.Tensor | None]:
    inputs = kwargs.get("g", args[0] if args else None)
    if inputs is None:
        raise AdapterError("ALIGNN's forward was called without its graph input")
    if isinstance(inputs, (list, tuple)):
        graph = inputs[0]
        lattice = inputs[-1] if len(inputs) >= 2 and isinstance(inputs[-1], torch.Tensor) else None
        return graph, lattice
    return inputs, None


class ALIGNNAdapter(Adapter):
    """alignn.models.alignn.ALIGNN and alignn.models.alignn_atomwise.ALIGNNAtomWise."""

    name = "alignn"

    @classmethod
    def matches(cls, model: Any) -> bool:
        return bool(ALIGNN_CLASSES & class_names(model))

    def hook_point(self, student: nn.Module) -> HookPoint:
        if len(student.gcn_layers):
            return HookPoint(student.gcn_layers[-1], f"gcn_layers.{len(student.gcn_layers) - 1}", "output", 0)
        if len(student.alignn_layers):
            return HookPoint(student.alignn_layers[-1], f"alignn_layers.{len(student.alignn_layers) - 1}", "output", 0)
        raise AdapterError("this ALIGNN has neither gcn_layers nor alignn_layers: no per-atom embeddings to distil")

    def student_width(self, student: nn.Module) -> int | None:
        return int(student.config.hidden_features)

    def check_teacher(self, student: nn.Module, teacher: Any) -> None:
        super().check_teacher(student, teacher)
        if not reads_crysgnn_graphs(teacher):
            return
        width = int(student.config.atom_input_features)
        if width != 92:
            raise AdapterError(
                f"this ALIGNN reads {width}-d atom features; the teacher needs alignn's 92-d CGCNN "
                "features (atom_features='cgcnn', atom_input_features=92)"
            )

    def crystal_batch(self, student: nn.Module, args: tuple, kwargs: dict, teacher: Any) -> CrystalBatch:
        graph, lattice = _split_inputs(args, kwargs)
        for needed in ("atom_features", "frac_coords"):
            if needed not in graph.ndata:
                raise AdapterError(f"the ALIGNN batch graph has no ndata[{needed!r}]; the teacher's graphs cannot be rebuilt")
        if lattice is None:
            raise AdapterError(
                "the ALIGNN batch carries no lattice tensor (pass [g, lg, lattice] as alignn's "
                "collate_line_graph does); the teacher's graphs cannot be rebuilt"
            )
        features = graph.ndata["atom_features"]
        numbers = graph.ndata["atomic_number"] if "atomic_number" in graph.ndata else None
        if reads_crysgnn_graphs(teacher) or numbers is None:
            check_cgcnn_features(features, "ALIGNN batch")
        return batch_from_arrays(
            features, graph.ndata["frac_coords"], lattice, graph.batch_num_nodes().tolist(),
            graph_settings_of(teacher), atomic_numbers=numbers, structures=not reads_crysgnn_graphs(teacher),
        )
