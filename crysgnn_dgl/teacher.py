"""The frozen CrysGNN teacher used as a distillation target (one implementation of the
:class:`~crysgnn_dgl.teachers.Teacher` protocol), and :func:`load_teacher` for every teacher."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
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
from .teachers.protocol import stay_in_eval as _stay_in_eval
from .teachers.registry import is_teacher_name, load_named_teacher

#: CrysGNN teachers shipped with the package: name -> checkpoint file in ``crysgnn_dgl/data``
#: (each described by a model card there)
BUNDLED_TEACHERS = {
    "crysgnn-denoise": "crysgnn_denoise_teacher.pt",
    "crysgnn-multitask": "crysgnn_multitask_teacher.pt",
}
#: the teacher ``load_teacher()`` gives with no argument (the earlier default,
#: ``crysgnn-multitask``, stays loadable by name)
DEFAULT_TEACHER = "crysgnn-denoise"


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
    ``train()`` is accepted and ignored. With ``depth``, the embeddings are the output of
    the first ``depth`` convolutions instead of the last one (an earlier layer may keep
    information the last one loses: ``docs/benchmarks.md``). ``depth=None`` takes the
    depth the checkpoint recommends (its ``training["distillation"]["depth"]``), else all.

    Attributes:
        recommended_kd_weight: the ``λ`` the checkpoint recommends (its
            ``training["distillation"]["kd_weight"]``, chosen on validation), else 1.
    """

    def __init__(self, model: CrysGNN, checkpoint: Checkpoint | None = None, source: str = "",
                 depth: int | None = None):
        recommended = dict((checkpoint.training if checkpoint else {}).get("distillation") or {})
        if depth is None:
            depth = recommended.get("depth")
        num_conv = model.model_settings.num_conv
        if depth is not None and not (isinstance(depth, int) and 1 <= depth <= num_conv):
            raise ValueError(f"depth must be a whole number of convolutions from 1 to {num_conv}, got {depth!r}")
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
        self.depth = depth
        self.recommended_kd_weight = float(recommended.get("kd_weight", 1.0))

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
        return self._model.embed(graph, self.depth) if normalized else self._model.encode(graph, self.depth)

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

    # ------------------------------------------------ the Teacher protocol
    def fingerprint(self) -> bytes:
        """Digest of the weights and featuriser settings (the salt of the cache keys)."""
        from .distill.keys import teacher_fingerprint

        settings = self.graph_settings.to_dict()
        if self.depth is not None:  # absent for the full depth: the keys of earlier caches hold
            settings["teacher_depth"] = self.depth
        return teacher_fingerprint(self._model.state_dict(), settings)

    def key_fields(self, batch: Any) -> Sequence[Any]:
        """What the teacher reads of a :class:`~crysgnn_dgl.distill.CrystalBatch`: the
        atom features and the neighbour lists or the coordinates its graphs come from."""
        return batch.key_fields

    def embed_batch(self, batch: Any, indices: Sequence[int]) -> list[torch.Tensor]:
        """Per-atom embeddings (before L2 normalisation) of crystals ``indices`` of
        ``batch``, from the CrysGNN graphs the batch builds (atom order checked)."""
        from .distill.targets import crysgnn_rows

        return crysgnn_rows(batch, indices, functools.partial(self.embed, normalized=False))

    def __repr__(self) -> str:
        m = self.model_settings
        return (
            f"FrozenTeacher(hidden_dim={m.hidden_dim}, num_conv={m.num_conv}, "
            + (f"depth={self.depth}, " if self.depth is not None else "")
            + f"source={self.source!r})"
        )


def bundled_teacher_path(name: str = DEFAULT_TEACHER) -> Path:
    """Location of a CrysGNN teacher shipped with the package (see :data:`BUNDLED_TEACHERS`)."""
    if name not in BUNDLED_TEACHERS:
        raise ValueError(f"no bundled teacher called {name!r}; choose from {sorted(BUNDLED_TEACHERS)}")
    return Path(str(resources.files("crysgnn_dgl").joinpath("data", BUNDLED_TEACHERS[name])))


def default_teacher_path() -> Path:
    """Location of the default teacher (:data:`DEFAULT_TEACHER`)."""
    return bundled_teacher_path(DEFAULT_TEACHER)


def checkpoint_path(teacher: str | os.PathLike | None) -> Path:
    """The CrysGNN checkpoint file ``teacher`` means: a bundled teacher's name, a path, or
    ``None`` for the default."""
    if teacher is None:
        return default_teacher_path()
    if isinstance(teacher, str) and teacher in BUNDLED_TEACHERS:
        return bundled_teacher_path(teacher)
    return Path(teacher)


def load_teacher(
    path: str | os.PathLike | None = None,
    graph_settings: GraphSettings | None = None,
    device: str | torch.device = "cpu",
    depth: int | None = None,
    **options: Any,
) -> Any:
    """Load a frozen teacher: a CrysGNN checkpoint (either format), a CrysGNN teacher
    shipped with the package (``"crysgnn-denoise"``, the default, or the earlier
    ``"crysgnn-multitask"``), or a named teacher (``"m3gnet"``, ``"m3gnet:gc_2"``; see
    :func:`~crysgnn_dgl.teachers.teacher_names`).

    Args:
        path: checkpoint file or teacher name (a name wins; write ``./m3gnet`` for a file
            called so); ``None`` loads :data:`DEFAULT_TEACHER`.
        graph_settings: the featuriser settings the caller will use; refused if the
            checkpoint was trained with different ones (CrysGNN checkpoints only).
        device: where the teacher runs.
        depth: CrysGNN teachers only: distil the output of the first ``depth``
            convolutions (``None``: the depth the checkpoint recommends, else all).
        options: settings of a named teacher (e.g. ``block="gc_2"`` for M3GNet).
    """
    if is_teacher_name(path):
        if depth is not None:
            raise TypeError(f"depth applies to CrysGNN checkpoints only; {path!r} has its own variants")
        return load_named_teacher(str(path), device=device, **options)
    if options:
        raise TypeError(f"options {sorted(options)} apply to named teachers only, not to CrysGNN checkpoints")
    model, checkpoint, source = load_crysgnn(path, graph_settings)
    return FrozenTeacher(model.to(device), checkpoint, source=str(source), depth=depth)


def load_crysgnn(
    path: str | os.PathLike | None = None, graph_settings: GraphSettings | None = None,
) -> tuple[CrysGNN, Checkpoint, Path]:
    """The trainable CrysGNN a checkpoint holds (a bundled teacher's name, a path, or
    ``None`` for :data:`DEFAULT_TEACHER`), its checkpoint, and the file it came from."""
    if is_teacher_name(path):
        raise ValueError(f"{path!r} is not a CrysGNN teacher; give a CrysGNN checkpoint or one of "
                         f"{sorted(BUNDLED_TEACHERS)}")
    bundled = path is None or path in BUNDLED_TEACHERS
    file = checkpoint_path(path)
    if bundled and not file.is_file():
        raise CheckpointError(
            file,
            "this installation does not ship this teacher; pass a checkpoint path "
            "(crysgnn_dgl or CrysGNN release format) or pre-train one with "
            "`crysgnn-dgl pretrain`",
        )
    model, checkpoint = model_from_checkpoint(file, graph_settings=graph_settings)
    return model, checkpoint, file
