"""DistillHook: the frozen teacher attached to a predictor through module hooks.

Per training forward (student in training mode, gradients enabled):

1. a pre-hook on the student's forward hands its inputs to the adapter, which extracts
   the crystals (features, coordinates, lattices — whatever the batch carries);
2. a hook on the adapter's layer captures the per-atom embeddings ``s``, looks the
   teacher embeddings ``t`` up in the cache (running the teacher, without gradients, on
   its own graphs of the missing crystals), and forms
   ``KD = mean_crystals mean_atoms mean_dims (P(s) − t)²`` (``P`` the projection head,
   followed by L2 normalisation unless ``normalize=False``);
3. in ``"backward"`` mode the layer's output is replaced by an identity autograd node
   that seeds ``λ·KD`` into the backward pass of whatever loss the loop computes.

Eval-mode or ``no_grad`` forwards do nothing at all (no teacher work, no state).

Caching: teacher rows are kept per crystal under a 128-bit content key (what the teacher
consumes, rounded; salted with the teacher's weights), in memory or in an SQLite file
(``cache=path``) that later runs, and several processes at the same time, can share.

Distributed data parallel: attach to the bare model *before* wrapping it in
``DistributedDataParallel``, in every process; each process keeps its own hook, head
and in-memory cache (or points at one shared cache file), and the KD gradient is
all-reduced with the rest because it flows through the ordinary backward pass.

``torch.compile``: attach *before* compiling. Module hooks registered on a model that
has already been compiled are not seen by the compiled graph (the KD term would silently
be missing). With the hook registered first, dynamo traces through it: the teacher look-up
(NumPy, DGL, Python) is not traceable, so the graph breaks at the hooked layer and that
part runs eagerly; the rest of the student stays compiled.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..placement import device_of, dtype_of
from ..threads import torch_threads
from .adapter import Adapter
from .cache import EmbeddingCache
from .injection import StepState, inject
from .keys import teacher_salt
from .objective import TargetStatistics, per_atom_loss, shuffled_rows
from .projection import make_projection
from .settings import DistillSettings
from .targets import CrystalBatch, teacher_targets

HEAD_NAME = "crysgnn_distill_head"

# the hooks run eagerly under torch.compile (graph break at the hooked layer): teacher
# look-up and graph building use NumPy, DGL and Python containers dynamo cannot trace
_eager = torch.compiler.disable


class DistillHook:
    """Handle of an attached teacher (see :func:`crysgnn_dgl.attach_teacher`).

    Attributes:
        teacher: the frozen teacher (a :class:`~crysgnn_dgl.teachers.Teacher`, e.g. the CrysGNN
            :class:`~crysgnn_dgl.FrozenTeacher`; never registered on the student).
        head: the projection head, registered on the student as ``crysgnn_distill_head``.
        cache: the teacher-embedding cache (``None`` if disabled).
        teacher_calls: teacher forward passes run so far.
        teacher_crystals: crystals the teacher embedded so far (cache misses).
        grad_scaler: a ``torch.amp.GradScaler`` whose scale multiplies the injected KD seed
            (the loop scales its own loss; see :meth:`kd_loss` for the alternative).
    """

    def __init__(self, model: Any, teacher: Any, adapter: Adapter, settings: DistillSettings,
                 cache: EmbeddingCache | None = None, grad_scaler: Any = None):
        self.model = model
        self.teacher = teacher
        self.adapter = adapter
        self.settings = settings
        self.cache = cache
        self.grad_scaler = grad_scaler
        self.student: nn.Module = adapter.student(model)
        adapter.check_teacher(self.student, teacher)
        self.point = adapter.hook_point(self.student)
        if hasattr(self.student, HEAD_NAME):
            raise RuntimeError(f"{type(self.student).__name__} already has a teacher attached")
        self.teacher_calls = 0
        self.teacher_crystals = 0
        self._salt = teacher_salt(teacher, raw=settings.target_norm == "none")
        self.target_statistics = TargetStatistics()
        self._shuffle = torch.Generator().manual_seed(settings.shuffle_seed)
        self.kd_scale = 1.0
        self._step: StepState | None = None
        self._batch: CrystalBatch | None = None
        self._layer_ran = False
        self._forwards = 0
        self._injections = 0
        self._kd_sum = 0.0
        self._kd_count = 0
        self.last_kd: float | None = None
        self.last_batch_size = 0
        self._head_snapshot: list[torch.Tensor] | None = None
        self._head_checked = False
        self._warned: set[str] = set()
        width = adapter.student_width(self.student)
        self.head = make_projection(settings.projection, width, teacher.embedding_dim, settings.mlp_hidden)
        self.head.to(device_of(self.student), dtype_of(self.student))
        self.student.add_module(HEAD_NAME, self.head)
        self._handles = [
            self.student.register_forward_pre_hook(self._before_forward, with_kwargs=True),
            self.student.register_forward_hook(self._after_forward),
        ]
        if self.point.position == "output":
            self._handles.append(self.point.module.register_forward_hook(self._on_layer_output))
        else:
            self._handles.append(self.point.module.register_forward_pre_hook(self._on_layer_input))
        try:
            adapter.on_attach(model, self)
        except BaseException:
            for handle in self._handles:  # leave the model as it was
                handle.remove()
            delattr(self.student, HEAD_NAME)
            raise
        self.removed = False

    # ----------------------------------------------------------------- public API
    @property
    def kd_weight(self) -> float:
        """``λ = (1 − δ) / δ``, times :attr:`kd_scale` (1 unless a schedule changes it)."""
        return self.settings.kd_weight * self.kd_scale

    @torch.no_grad()
    def warm(self, batches: Any, threads: int | None = None) -> int:
        """Embed every crystal of ``batches`` with the teacher before training, with
        ``threads`` torch threads (default: every core; the caller's setting is restored).

        ``batches`` yields the student's forward inputs, each a tuple of positional
        arguments (a one-element tuple for a model called as ``model(graph)``) or a dict of
        keyword arguments, e.g. the training loader without its targets; batches larger
        than the training ones make the teacher's pass cheaper. Fills the cache (so that
        the first epoch is warm) and, with ``target_norm="standardize"``, fixes the
        per-dimension statistics of the targets from these crystals. Returns the number
        of crystals seen.
        """
        seen = 0
        statistics = TargetStatistics()
        with torch_threads(threads):
            for item in batches:
                args, kwargs = ((), item) if isinstance(item, dict) else ((item if isinstance(item, tuple) else (item,)), {})
                batch = self.adapter.crystal_batch(self.student, args, kwargs, self.teacher)
                rows, embedded = self._targets(batch, int(sum(batch.counts)), torch.device("cpu"))
                self.teacher_crystals += embedded
                statistics.update(rows)
                seen += len(batch.counts)
        if self.settings.target_norm == "standardize":
            statistics.finish()
            self.target_statistics = statistics
        return seen

    @property
    def kd_mean(self) -> float | None:
        """Mean KD over the training steps since the last :meth:`reset_kd_mean`."""
        return self._kd_sum / self._kd_count if self._kd_count else None

    def reset_kd_mean(self) -> None:
        self._kd_sum, self._kd_count = 0.0, 0

    def state_dict(self) -> dict[str, Any]:
        """The hook's training state that the model's ``state_dict`` does not hold (the head
        is the student's submodule and is there): the shuffled control's permutation stream,
        the KD running mean, the KD scale, the target statistics and the counters. Save it
        with an epoch checkpoint so that a resumed run continues bit for bit."""
        statistics = self.target_statistics
        return {
            "shuffle": self._shuffle.get_state(), "kd_sum": self._kd_sum, "kd_count": self._kd_count,
            "kd_scale": self.kd_scale, "teacher_calls": self.teacher_calls, "teacher_crystals": self.teacher_crystals,
            "target_mean": statistics.mean, "target_std": statistics.std,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self._shuffle.set_state(state["shuffle"])
        self._kd_sum, self._kd_count = float(state["kd_sum"]), int(state["kd_count"])
        self.kd_scale = float(state["kd_scale"])
        self.teacher_calls, self.teacher_crystals = int(state["teacher_calls"]), int(state["teacher_crystals"])
        if state["target_mean"] is not None:
            self.target_statistics = TargetStatistics()
            self.target_statistics.mean, self.target_statistics.std = state["target_mean"], state["target_std"]

    def parameters(self):
        """Parameters of the projection head (add them to an optimiser built before attaching)."""
        return self.head.parameters()

    def kd_loss(self) -> torch.Tensor:
        """``λ·KD`` of the latest training forward, for ``loss = loss + hook.kd_loss()``.

        Taking it disables the backward-pass injection for that forward, so the term is
        never counted twice. Zero (no graph) when the latest forward was not a training one.
        """
        step = self._step
        if step is None:
            return torch.zeros((), device=device_of(self.student))
        step.explicit = True
        self._record(step)
        return step.weight * step.kd

    def remove(self) -> None:
        """Detach: hooks and head removed, ``state_dict()`` keys as before attaching."""
        if self.removed:
            return
        for handle in self._handles:
            handle.remove()
        self.adapter.on_remove(self.model, self)
        delattr(self.student, HEAD_NAME)
        self._step = self._batch = None
        if self.cache is not None:
            self.cache.flush()
        self.removed = True

    def __repr__(self) -> str:
        return (
            f"DistillHook(adapter={self.adapter.name!r}, layer={self.point.name!r}, "
            f"lambda={self.kd_weight:g}, last_kd={self.last_kd}, cache={self.cache!r})"
        )

    # ------------------------------------------------------------------ internals
    def _active(self) -> bool:
        return self.student.training and torch.is_grad_enabled() and self.kd_weight > 0

    @_eager
    def _before_forward(self, module: nn.Module, args: tuple, kwargs: dict):
        self._step = None
        self._batch = None
        self._layer_ran = False
        if not self._active():
            return None
        self._forwards += 1
        self._check_progress()
        self._batch = self.adapter.crystal_batch(self.student, args, kwargs, self.teacher)
        return None

    @_eager
    def _after_forward(self, module: nn.Module, args: tuple, output: Any):
        if self._batch is not None and not self._layer_ran:
            self._batch = None
            raise RuntimeError(
                f"the distillation layer {self.point.name!r} never ran during "
                f"{type(self.student).__name__}.forward; choose an adapter whose layer is used"
            )
        self._batch = None
        if self._step is not None:
            self._step.armed = True
        return None

    @_eager
    def _on_layer_output(self, module: nn.Module, args: tuple, output: Any):
        if self._batch is None:
            return None
        index = self.point.index
        hooked = output if index is None else output[index]
        replaced = self._process(hooked)
        if replaced is None:
            return None
        if index is None:
            return replaced
        items = list(output)
        items[index] = replaced
        return type(output)(items) if isinstance(output, tuple) else items

    @_eager
    def _on_layer_input(self, module: nn.Module, args: tuple):
        if self._batch is None:
            return None
        index = self.point.index or 0
        replaced = self._process(args[index])
        if replaced is None:
            return None
        items = list(args)
        items[index] = replaced
        return tuple(items)

    def _process(self, hooked: torch.Tensor) -> torch.Tensor | None:
        batch, self._batch = self._batch, None
        self._layer_ran = True
        if batch is None:
            raise RuntimeError(
                f"layer {self.point.name!r} ran without a batch from the model's forward "
                "(called twice in one forward, or outside it): the hook cannot tell its crystals"
            )
        if hooked.dim() != 2:
            raise RuntimeError(
                f"layer {self.point.name!r} gave a tensor of shape {tuple(hooked.shape)}; "
                "per-atom embeddings (atoms × features) were expected"
            )
        target, embedded = self._targets(batch, hooked.shape[0], hooked.device)
        self.teacher_crystals += embedded
        self.last_batch_size = len(batch.counts)
        self._warn_amp(hooked)
        if self.settings.shuffle_targets:
            target = shuffled_rows(target, self._shuffle)
        kd = self._kd(hooked, target, batch)
        self._step = StepState(kd=kd, weight=self.kd_weight, scale=self._scale, on_inject=self._record)
        if self.settings.mode == "explicit":
            return None
        return inject(hooked, self._step)

    def _targets(self, batch: CrystalBatch, num_rows: int, device: torch.device) -> tuple[torch.Tensor, int]:
        """Teacher rows of ``batch`` (cached or computed), L2-normalised unless the recipe
        asks for the raw embeddings."""
        normalize = self.settings.target_norm != "none"

        def embed(indices: list[int]) -> list[torch.Tensor]:
            self.teacher_calls += 1
            rows = self.teacher.embed_batch(batch, indices)
            if not normalize or not rows:
                return rows
            return list(torch.split(F.normalize(torch.cat(rows), p=2, dim=1), [len(r) for r in rows]))

        return teacher_targets(batch, num_rows, embed, self.cache, self._salt, device,
                               fields=self.teacher.key_fields(batch))

    def _kd(self, hooked: torch.Tensor, target: torch.Tensor, batch: CrystalBatch) -> torch.Tensor:
        projected = self.head(hooked)
        if projected.shape[1] != target.shape[1]:
            raise RuntimeError(
                f"the projection head gives {projected.shape[1]} features per atom, the teacher "
                f"{target.shape[1]}: projection 'identity' needs equal widths"
            )
        target = target.to(projected.dtype)
        if self.settings.target_norm == "standardize":
            if not self.target_statistics.ready:
                raise RuntimeError(
                    "target_norm='standardize' needs the teacher statistics of the training "
                    "crystals: call hook.warm(batches) before training"
                )
            target = self.target_statistics.apply(target)
        if self.settings.normalize_student:
            projected = F.normalize(projected, p=2, dim=1)
        per_atom = per_atom_loss(projected, target, self.settings.loss)
        # mean over crystals of the mean over each crystal's atoms, as one weighted sum
        counts = np.asarray(batch.counts, dtype=np.float64)
        per_crystal = np.repeat(1.0 / (np.maximum(counts, 1.0) * len(counts)), counts.astype(np.int64))
        weights = torch.from_numpy(per_crystal).to(hooked.device, per_atom.dtype)
        if batch.rows is not None:
            by_row = torch.empty_like(weights)
            by_row[batch.rows.to(hooked.device)] = weights
            weights = by_row
        return (per_atom * weights).sum()

    def _scale(self) -> float:
        scaler = self.grad_scaler
        if scaler is not None and scaler.is_enabled():
            return float(scaler.get_scale())
        return 1.0

    def _record(self, step: StepState) -> None:
        value = float(step.kd.detach())
        self.last_kd = value
        self._kd_sum += value
        self._kd_count += 1
        self._injections += 1

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, RuntimeWarning, stacklevel=4)

    def _warn_amp(self, hooked: torch.Tensor) -> None:
        kind = hooked.device.type
        if self.grad_scaler is None and torch.is_autocast_enabled(kind) and torch.get_autocast_dtype(kind) == torch.float16:
            self._warn_once(
                "amp",
                "float16 autocast is active but no grad_scaler was given to attach_teacher: if the "
                "loop scales its loss (GradScaler), the injected KD term is divided by the scale; "
                "pass grad_scaler=... or use hook.kd_loss()",
            )

    def _check_progress(self) -> None:
        after = self.settings.warn_after
        if self._forwards > after and self._injections == 0:
            self._warn_once(
                "never",
                f"the KD term of {self._forwards - 1} training forwards never reached a backward pass: "
                f"the loss does not depend on {self.point.name!r}'s output; add hook.kd_loss() explicitly",
            )
        if self._head_checked:
            return
        params = [p for p in self.head.parameters() if not isinstance(p, nn.parameter.UninitializedParameter)]
        if self._injections and self._head_snapshot is None and params:
            self._head_snapshot = [p.detach().clone() for p in params]
        elif self._head_snapshot is not None and self._injections > after:
            self._head_checked = True
            if all(torch.equal(p, q) for p, q in zip(params, self._head_snapshot)):
                self._warn_once(
                    "head",
                    "the projection head receives gradients but never changes: add hook.parameters() "
                    "to the optimiser (it was built before attach_teacher)",
                )
            self._head_snapshot = None

