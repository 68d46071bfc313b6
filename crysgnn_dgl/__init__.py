"""crysgnn_dgl: pre-train CrysGNN on unlabeled crystals and distil it into predictors.

Importing the package registers the DGL compatibility guard (cheap, no torch import);
the public names are loaded on first use.
"""

from __future__ import annotations

from typing import Any

from ._dgl_guard import install_placeholder as _install_dgl_guard
from ._lazy import lazy_attributes
from ._version import __version__

_install_dgl_guard()

_PUBLIC = {
    "CrysGNN": "crysgnn_dgl.models.crysgnn",
    "CGCNN": "crysgnn_dgl.models.cgcnn",
    "GATGNN": "crysgnn_dgl.models.gatgnn",
    "CrysGNNOutput": "crysgnn_dgl.models.crysgnn",
    "GraphSettings": "crysgnn_dgl.config",
    "ModelSettings": "crysgnn_dgl.config",
    "build_graph": "crysgnn_dgl.graph.builder",
    "build_graphs": "crysgnn_dgl.graph.builder",
    "BuildReport": "crysgnn_dgl.graph.builder",
    "StructureError": "crysgnn_dgl.graph.errors",
    "read_cif_table": "crysgnn_dgl.graph.io",
    "FrozenTeacher": "crysgnn_dgl.teacher",
    "Teacher": "crysgnn_dgl.teachers.protocol",
    "StructureTeacher": "crysgnn_dgl.teachers.protocol",
    "register_teacher": "crysgnn_dgl.teachers.registry",
    "load_teacher": "crysgnn_dgl.teacher",
    "CheckpointError": "crysgnn_dgl.checkpoint",
    "save_checkpoint": "crysgnn_dgl.checkpoint",
    "read_checkpoint": "crysgnn_dgl.checkpoint",
    "attach_teacher": "crysgnn_dgl.distill.attach",
    "Adapter": "crysgnn_dgl.distill.adapter",
    "register_adapter": "crysgnn_dgl.distill.adapter",
    "DistillHook": "crysgnn_dgl.distill.hook",
    "DistillSettings": "crysgnn_dgl.distill.settings",
    "finetune_model": "crysgnn_dgl.finetune",
    "CrysGNNRegressor": "crysgnn_dgl.finetune",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


_load = lazy_attributes(__name__, _PUBLIC)


def __getattr__(name: str) -> Any:
    return _load(name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
