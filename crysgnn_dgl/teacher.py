"""The frozen CrysGNN teacher used as a distillation target."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .backend import dgl
from .checkpoint import Checkpoint, CheckpointError, model_from_checkpoint
from .config import GraphSettings, ModelSettings
from .graph.builder import build_graph
from .graph.consistency import require_settings
from .models.crysgnn import CrysGNN

DEFAULT_TEACHER_FILE = "crysgnn_default_teacher.pt"


def _stay_in_eval(module: torch.nn.Module, mode: bool = True) -> torch.nn.Module:
    """Replacement for ``nn.Module.train`` on the frozen model: always evaluation mode."""
    for child in module.modules():
        child.training = False
    return module


class _FrozenCrysGNN(CrysGNN):
    """A :class:`CrysGNN` whose ``train()`` keeps evaluation mode (a module-level class, so
    the frozen model still pickles and deep-copies, e.g. into ``spawn`` workers)."""

    def train(self, mode: bool = True) -> _FrozenCrysGNN:
        return _stay_in_eval(self)


class FrozenTeacher:
    """A CrysGNN in evaluation mode with every parameter frozen.

    Deliberately *not* an ``nn.Module``: assigning it to a student's attribute never
    registers it as a submodule, so it can neither appear in ``student.parameters()`` /
    ``state_dict()`` nor be switched to training mode by ``student.train()`` or Lightning.
    ``train()`` is accepted and ignored.
    """

    def __init__(self, model: CrysGNN, checkpoint: Checkpoint | None = None, source: str = ""):
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        _stay_in_eval(model)
        if type(model) is CrysGNN:
            model.__class__ = _FrozenCrysGNN  # same layout; only ``train`` differs
        elif not isinstance(model, _FrozenCrysGNN):
            # An instance attribute shadows nn.Module.train, also for recursive calls.
            object.__setattr__(model, "train", functools.partial(_stay_in_eval, model))
        self._model = model
        self.checkpoint = checkpoint
        self.source = source

    @property
    def graph_settings(self) -> GraphSettings:
        """Featuriser settings the teacher was trained with (graphs must match them)."""
        return self._model.graph_settings

    @property
    def model_settings(self) -> ModelSettings:
        return self._model.model_settings

    @property
    def embedding_dim(self) -> int:
        """Width of the per-atom embeddings (64 for the release architecture)."""
        return self._model.model_settings.hidden_dim

    @property
    def training(self) -> bool:
        return False

    @property
    def device(self) -> torch.device:
        return self._model.embedding.weight.device

    def train(self, mode: bool = True) -> FrozenTeacher:
        """Ignored: the teacher always stays in evaluation mode."""
        return self

    def eval(self) -> FrozenTeacher:
        return self

    def to(self, device: str | torch.device) -> FrozenTeacher:
        self._model.to(device)
        return self

    @torch.no_grad()
    def embed(self, graph: dgl.DGLGraph, normalized: bool = True) -> torch.Tensor:
        """Per-atom embeddings ``(N_atoms, 64)`` of a (batched) graph, in node order:
        L2-normalised (the distillation target), or before that normalisation.

        Raises :class:`~crysgnn_dgl.graph.consistency.GraphSettingsMismatch` when the graph
        visibly was built with other featuriser settings (neighbour slots, radius, padding,
        edge-feature width) than :attr:`graph_settings`."""
        require_settings(graph, self.graph_settings, "the teacher")
        _stay_in_eval(self._model)  # even if a submodule was switched by hand
        graph = graph.to(self.device)
        return self._model.embed(graph) if normalized else self._model.encode(graph)

    def embed_structures(self, items: Iterable[Any], ids: Iterable[str] | None = None) -> list[torch.Tensor]:
        """Per-atom embeddings of each structure (any input :func:`build_graph` accepts)."""
        id_list = list(ids) if ids is not None else None
        graphs = [
            build_graph(item, self.graph_settings, structure_id=id_list[i] if id_list else None)
            for i, item in enumerate(items)
        ]
        if not graphs:
            return []
        batched = dgl.batch(graphs)
        sizes = batched.batch_num_nodes().tolist()
        return list(torch.split(self.embed(batched).cpu(), sizes))

    __call__ = embed

    def __repr__(self) -> str:
        m = self.model_settings
        return (
            f"FrozenTeacher(hidden_dim={m.hidden_dim}, num_conv={m.num_conv}, "
            f"source={self.source!r})"
        )


def default_teacher_path() -> Path:
    """Location of the teacher checkpoint bundled with the package."""
    return Path(str(resources.files("crysgnn_dgl").joinpath("data", DEFAULT_TEACHER_FILE)))


def load_teacher(
    path: str | os.PathLike | None = None,
    graph_settings: GraphSettings | None = None,
    device: str | torch.device = "cpu",
) -> FrozenTeacher:
    """Load a frozen teacher from a checkpoint (either format), or the bundled default.

    Args:
        path: checkpoint file; ``None`` loads the teacher shipped with the package.
        graph_settings: the featuriser settings the caller will use; refused if the
            checkpoint was trained with different ones.
        device: where the teacher runs.
    """
    if path is None:
        path = default_teacher_path()
        if not path.is_file():
            raise CheckpointError(
                path,
                "this installation has no bundled default teacher; pass a checkpoint path "
                "(crysgnn_dgl or CrysGNN release format) or pre-train one with "
                "`crysgnn-dgl pretrain`",
            )
    model, checkpoint = model_from_checkpoint(path, graph_settings=graph_settings)
    return FrozenTeacher(model.to(device), checkpoint, source=str(path))
