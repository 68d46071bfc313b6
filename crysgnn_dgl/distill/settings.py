"""Settings of a distillation run (same dataclass style as :mod:`crysgnn_dgl.config`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import SettingsBase

PROJECTIONS = ("linear", "mlp")
MODES = ("backward", "explicit")


@dataclass(frozen=True)
class DistillSettings(SettingsBase):
    """How the KD term is formed and added.

    The student's own loop optimises ``L + λ·KD`` with ``λ = (1 − δ) / δ``: the paper's
    ``δ·L + (1 − δ)·KD`` divided by ``δ``. The supervised loss ``L`` is never rescaled
    (the loop owns it), so ``δ`` only sets the KD weight; ``δ = 0.5`` gives ``λ = 1``.

    Attributes:
        delta: ``0 < δ ≤ 1``; ``δ = 1`` switches the KD term off (``λ = 0``).
        projection: ``"linear"`` (default) or ``"mlp"`` head from the student's width to
            the teacher's.
        mlp_hidden: hidden width of the MLP head.
        normalize: L2-normalise the projected student embeddings, like the teacher's.
        mode: ``"backward"`` adds ``λ·KD`` through the backward pass of whatever loss the
            loop computes; ``"explicit"`` adds nothing by itself (use ``hook.kd_loss()``).
        warn_after: training forwards after which a KD term that never reached a backward
            pass (or a head that never changes) triggers a warning.
    """

    delta: float = 0.5
    projection: str = "linear"
    mlp_hidden: int = 128
    normalize: bool = True
    mode: str = "backward"
    warn_after: int = 8

    def __post_init__(self) -> None:
        if not 0.0 < self.delta <= 1.0:
            raise ValueError(f"delta must be in (0, 1], got {self.delta!r}")
        if self.projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {PROJECTIONS}, got {self.projection!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")

    @property
    def kd_weight(self) -> float:
        """``λ = (1 − δ) / δ``."""
        return (1.0 - self.delta) / self.delta
