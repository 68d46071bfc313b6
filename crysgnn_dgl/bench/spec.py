"""One benchmark run, fully described: task, predictor, mode, teacher, KD recipe,
training protocol, training-set size and seed. Its key (a hash of everything that can
change the result) names the stored result, so a repeated sweep reruns nothing."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from ..config import SettingsBase
from ..distill.settings import DistillSettings
from ..training.loop import TrainingSettings
from .defaults import RECIPE, TRAINING
from .tasks import TaskSpec

MODES = ("vanilla", "distilled", "random-teacher", "shuffled-teacher", "finetune")
KD_MODES = ("distilled", "random-teacher", "shuffled-teacher")
#: modes that may distil a CrysGNN teacher at a chosen depth (``teacher_depth``)
DEPTH_MODES = ("distilled", "shuffled-teacher")
DECAYS = ("none", "linear", "cosine")

#: the training protocol of every benchmark run (see ``docs/benchmarks.md``)
DEFAULT_TRAINING = TrainingSettings(**TRAINING)


@dataclass(frozen=True)
class KDRecipe(SettingsBase):
    """How the KD term is formed (see :class:`~crysgnn_dgl.distill.DistillSettings`).

    Attributes:
        kd_weight: ``λ``; ``None``: the teacher's recommended ``λ`` (its
            ``recommended_kd_weight``, which :func:`~crysgnn_dgl.attach_teacher` uses too),
            filled in by :class:`RunSpec` so that run keys always hold the number.
        projection, target_norm, loss: as in ``DistillSettings``.
        decay: KD weight over training: constant (``"none"``), or decaying to 0 at the
            epoch budget linearly or along a half cosine.
    """

    kd_weight: float | None = None
    projection: Literal["identity", "linear", "mlp"] = RECIPE["projection"]
    target_norm: Literal["l2", "none", "standardize"] = RECIPE["target_norm"]
    loss: Literal["mse", "cosine"] = RECIPE["loss"]
    decay: Literal["none", "linear", "cosine"] = RECIPE["decay"]

    def __post_init__(self) -> None:
        if self.kd_weight is not None:  # 10 and 10.0 are one recipe, with one key
            object.__setattr__(self, "kd_weight", float(self.kd_weight))
        if self.decay not in DECAYS:
            raise ValueError(f"decay must be one of {DECAYS}, got {self.decay!r}")
        (self if self.kd_weight is not None else replace(self, kd_weight=1.0)).distill_settings()  # validates

    def distill_settings(self, shuffle: bool = False, seed: int = 0) -> DistillSettings:
        if self.kd_weight is None:
            raise ValueError("λ is not set: a RunSpec fills in the teacher's recommended λ")
        return DistillSettings.from_kd_weight(
            self.kd_weight, projection=self.projection, target_norm=self.target_norm,
            loss=self.loss, shuffle_targets=shuffle, shuffle_seed=seed,
        )

    @property
    def label(self) -> str:
        parts = ["λ=recommended" if self.kd_weight is None else f"λ={self.kd_weight:g}", self.projection, self.target_norm, self.loss]
        if self.decay != "none":
            parts.append(f"decay={self.decay}")
        return " ".join(parts)


@lru_cache(maxsize=16)
def _loaded_teacher(teacher: str | None) -> Any:
    """A teacher loaded once per process for its digest and its recommended λ."""
    from ..teacher import load_teacher

    return load_teacher(teacher)


@lru_cache(maxsize=32)
def teacher_digest(teacher: str) -> str:
    """Short hex digest of what a teacher computes: its weights, architecture, featuriser
    and distilled depth (:meth:`fingerprint` plus, for a CrysGNN checkpoint, its model
    settings). ``teacher`` is a teacher name (``m3gnet``, ``crysgnn-denoise``) or a
    checkpoint path. Not the file's bytes: metadata stored beside the weights (the
    recommended λ, training records) can change without re-keying stored runs."""
    from ..teacher import FrozenTeacher

    loaded = _loaded_teacher(teacher)
    fingerprint = bytes(loaded.fingerprint())
    if isinstance(loaded, FrozenTeacher):
        settings = json.dumps(loaded.model_settings.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(fingerprint + settings).hexdigest()[:16]
    return fingerprint.hex()[:16]


@lru_cache(maxsize=32)
def recommended_kd_weight(teacher: str | None) -> float:
    """The ``λ`` a teacher recommends (``None``: the default teacher)."""
    return float(getattr(_loaded_teacher(teacher), "recommended_kd_weight", 1.0))


#: modes that need the CrysGNN teacher's own architecture (a re-initialised or fine-tuned copy)
CRYSGNN_ONLY_MODES = ("random-teacher", "finetune")


@dataclass(frozen=True)
class RunSpec:
    """Everything one run depends on. ``teacher`` is a CrysGNN checkpoint path or bundled
    CrysGNN teacher (``crysgnn-multitask``; ``None``: the default teacher) or a teacher
    name (``m3gnet``, ``m3gnet:gc_2``, ``chgnet``); vanilla
    runs ignore the teacher and the recipe. ``train_size`` 0: the task's whole training
    part. With ``source``, the predictor is first trained on ``source_size`` crystals of the
    source task (same mode), then on this task (transfer, the CrysGNN paper's Table 5)."""

    task: TaskSpec
    predictor: str
    mode: str
    train_size: int
    seed: int
    teacher: str | None = None
    recipe: KDRecipe = field(default_factory=KDRecipe)
    training: TrainingSettings = DEFAULT_TRAINING
    source: TaskSpec | None = None
    source_size: int = 1000
    teacher_depth: int | None = None

    def __post_init__(self) -> None:
        from .predictors import predictor

        predictor(self.predictor)  # known name, or a clear error
        if self.mode in KD_MODES and self.recipe.kd_weight is None:
            object.__setattr__(self, "recipe", replace(self.recipe, kd_weight=recommended_kd_weight(self.teacher)))
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose from {MODES}")
        if self.train_size < 0 or self.train_size == 1:
            raise ValueError(f"train_size must be >= 2 (or 0: all), got {self.train_size}")
        if self.source is not None and self.source_size < 2:
            raise ValueError(f"source_size must be >= 2, got {self.source_size}")
        if self.teacher_depth is not None and (self.named_teacher or self.mode not in DEPTH_MODES):
            raise ValueError("teacher_depth applies to a CrysGNN teacher in the distilled and shuffled-teacher modes, "
                             f"not to {self.mode!r} with teacher {self.teacher or 'the default'!r}")
        if self.named_teacher and self.mode in CRYSGNN_ONLY_MODES:
            raise ValueError(
                f"mode {self.mode!r} needs a CrysGNN teacher (checkpoint or the bundled one), not {self.teacher!r}; "
                "use vanilla, distilled or shuffled-teacher with it"
            )

    @property
    def task_label(self) -> str:
        """The task's name, with the source task of a transfer run and a non-default loss
        (runs under different losses are different cells of the report)."""
        label = self.task.label if self.source is None else f"{self.task.label}←{self.source.label} {self.source_size}"
        return label if self.training.loss == "mse" else f"{label} ({self.training.loss} loss)"

    def source_run(self) -> RunSpec:
        """The source phase of a transfer run as a run of its own: same predictor, mode,
        seed, teacher, recipe and training, on ``source_size`` crystals of the source task.
        Its key names the trained source model, which every target fraction shares."""
        if self.source is None:
            raise ValueError(f"{self.task_label} is not a transfer run (no source task)")
        return replace(self, task=self.source, train_size=self.source_size, source=None)

    @property
    def recipe_label(self) -> str:
        """The KD recipe's label in results and reports (empty for modes without KD)."""
        return self.recipe.label if self.mode in KD_MODES else ""

    @property
    def uses_teacher(self) -> bool:
        return self.mode != "vanilla"

    @property
    def named_teacher(self) -> bool:
        """Whether ``teacher`` names a registered teacher (``m3gnet``) rather than a file."""
        from ..teachers.registry import is_teacher_name

        return is_teacher_name(self.teacher)

    def teacher_digest(self) -> str:
        """Digest of the teacher's weights and settings (:func:`teacher_digest`)."""
        return teacher_digest(self.teacher if self.named_teacher else self.teacher_path())

    @property
    def teacher_label(self) -> str:
        if not self.uses_teacher:
            return ""
        if self.mode == "random-teacher":
            return "random-init"
        from ..teacher import BUNDLED_TEACHERS, DEFAULT_TEACHER

        # (runs stored before crysgnn-denoise became the default say "bundled": crysgnn-multitask)
        label = self.teacher or DEFAULT_TEACHER
        if label not in BUNDLED_TEACHERS:
            label = Path(label).name
        return label if self.teacher_depth is None else f"{label} (conv{self.teacher_depth})"

    def teacher_path(self) -> str:
        from ..teacher import checkpoint_path

        return str(checkpoint_path(self.teacher))

    def to_dict(self) -> dict:
        values: dict[str, Any] = {
            "task": self.task.to_dict(), "predictor": self.predictor, "mode": self.mode,
            "train_size": self.train_size, "seed": self.seed,
            "teacher": self.teacher_label,
            "teacher_sha256": self.teacher_digest() if self.uses_teacher else "",
            "recipe": self.recipe.to_dict() if self.mode in KD_MODES else {},
            "training": self.training.to_dict(),
        }
        if values["training"]["loss"] == "mse":  # absent from the keys of runs with the default loss
            del values["training"]["loss"]
        from .predictors import predictor

        hyper = predictor(self.predictor).hyper
        if hyper:  # the predictor's recorded hyper-parameters (the ports have none: their defaults)
            values["hyper"] = hyper
        if self.source is not None:  # absent from the keys of runs without a source
            values["source"] = {"task": self.source.to_dict(), "size": self.source_size}
        if self.teacher_depth is not None:  # likewise
            values["teacher_depth"] = self.teacher_depth
        return values

    def key(self) -> str:
        """Hash of :meth:`to_dict` (what the result depends on)."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:20]
