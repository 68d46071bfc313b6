"""Settings of a distillation run (same dataclass style as :mod:`crysgnn_dgl.config`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import SettingsBase

PROJECTIONS = ("identity", "linear", "mlp")
MODES = ("backward", "explicit")
TARGET_NORMS = ("l2", "none", "standardize")
KD_LOSSES = ("mse", "cosine")


@dataclass(frozen=True)
class DistillSettings(SettingsBase):
    """How the KD term is formed and added.

    The student's own loop optimises ``L + λ·KD`` with ``λ = (1 − δ) / δ``: the paper's
    ``δ·L + (1 − δ)·KD`` divided by ``δ``. The supervised loss ``L`` is never rescaled
    (the loop owns it), so ``δ`` only sets the KD weight; ``δ = 0.5`` gives ``λ = 1``.

    Attributes:
        delta: ``0 < δ ≤ 1``; ``δ = 1`` switches the KD term off (``λ = 0``).
        projection: ``"linear"`` (default), ``"mlp"``, or ``"identity"`` (no head; the
            student's width must equal the teacher's, as in the released CrysGNN code).
        mlp_hidden: hidden width of the MLP head.
        normalize: L2-normalise the projected student embeddings; ``None`` (default): only
            when the targets are L2-normalised (``target_norm="l2"``).
        mode: ``"backward"`` adds ``λ·KD`` through the backward pass of whatever loss the
            loop computes; ``"explicit"`` adds nothing by itself (use ``hook.kd_loss()``).
        target_norm: the teacher targets: ``"l2"`` (the teacher's L2-normalised
            embeddings), ``"none"`` (its embeddings before that normalisation) or
            ``"standardize"`` (the L2-normalised embeddings standardised per dimension over
            the crystals given to :meth:`DistillHook.warm`, which must run first).
        loss: ``"mse"`` (mean squared difference per atom) or ``"cosine"`` (``1 − cos``).
        shuffle_targets: a *control*, not a recipe: each training batch pairs the student's
            atoms with the teacher rows of randomly permuted atoms of the same batch (the
            target distribution is kept, the correspondence destroyed).
        shuffle_seed: seed of those permutations (a generator of the hook's own).
        warn_after: training forwards after which a KD term that never reached a backward
            pass (or a head that never changes) triggers a warning.
    """

    delta: float = 0.5
    projection: Literal["identity", "linear", "mlp"] = "linear"
    mlp_hidden: int = 128
    normalize: bool | None = None
    mode: Literal["backward", "explicit"] = "backward"
    target_norm: Literal["l2", "none", "standardize"] = "l2"
    loss: Literal["mse", "cosine"] = "mse"
    shuffle_targets: bool = False
    shuffle_seed: int = 0
    warn_after: int = 8

    def validate(self) -> None:
        self._require_number("delta", low=0.0, high=1.0, low_open=True)
        self._require_int("mlp_hidden", "warn_after", least=1)
        self._require_int("shuffle_seed", least=0)
        self._require_bool("shuffle_targets")
        self._require_bool("normalize", optional=True)

    @classmethod
    def from_kd_weight(cls, kd_weight: float, **values) -> DistillSettings:
        """Settings with ``λ = kd_weight`` (``δ = 1 / (1 + λ)``); ``λ = 0`` switches KD off."""
        if not kd_weight >= 0:
            raise ValueError(f"kd_weight must be >= 0, got {kd_weight!r}")
        return cls(delta=1.0 / (1.0 + kd_weight), **values)

    @property
    def normalize_student(self) -> bool:
        """Whether projected student embeddings are L2-normalised (see ``normalize``)."""
        return self.target_norm == "l2" if self.normalize is None else self.normalize

    @property
    def kd_weight(self) -> float:
        """``λ = (1 − δ) / δ``."""
        return (1.0 - self.delta) / self.delta
