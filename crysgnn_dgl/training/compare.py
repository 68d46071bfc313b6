"""Vanilla vs distilled: the same predictor trained twice with equal seed, data and budget.

The only difference between the two runs is :func:`crysgnn_dgl.attach_teacher` called
on the second model before training; the training loop is the same function, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import SettingsBase
from .dataset import CrystalGraphDataset
from .loop import TrainingResult, TrainingSettings, train_predictor
from .normalizer import TargetNormalizer
from .splits import Split, split_indices, subset


@dataclass(frozen=True)
class ComparisonSettings(SettingsBase):
    """How the data is split and how the teacher is weighted.

    Attributes:
        val_fraction, test_fraction: parts of the dataset held out (seeded split).
        train_limit: use at most this many training crystals (``None``: all).
        split_seed: seed of the split.
        model_seed: seed set before building each of the two models (same initial weights).
        delta: distillation ``δ`` (``λ = (1 − δ)/δ``; 0.5 → 1; ``None``: the teacher's
            recommended weight).
        deterministic: run both trainings with ``torch.use_deterministic_algorithms``, so
            that multi-threaded scatter-adds cannot make the runs differ by more than the
            teacher's contribution.
    """

    val_fraction: float = 0.1
    test_fraction: float = 0.1
    train_limit: int | None = None
    split_seed: int = 0
    model_seed: int = 0
    delta: float | None = None
    deterministic: bool = True

    def validate(self) -> None:
        self._require_number("val_fraction", "test_fraction", low=0.0, high=1.0, high_open=True)
        if self.val_fraction + self.test_fraction >= 1.0:
            raise self._invalid("test_fraction", f"below 1 - val_fraction ({1.0 - self.val_fraction:g})")
        self._require_int("train_limit", least=1, optional=True)
        self._require_int("split_seed", "model_seed", least=0)
        self._require_number("delta", low=0.0, high=1.0, low_open=True, optional=True)
        self._require_bool("deterministic")


@contextmanager
def deterministic_algorithms(enabled: bool = True) -> Iterator[None]:
    """Temporarily switch ``torch.use_deterministic_algorithms`` (restored on exit)."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(enabled or previous)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


@dataclass
class Comparison:
    """Both runs' results and the split they shared."""

    vanilla: TrainingResult
    distilled: TrainingResult
    split: Split
    training: TrainingSettings
    kd_mean: float | None = None
    teacher_source: str = ""

    @property
    def relative_gain(self) -> float:
        """``(MAE_vanilla − MAE_distilled) / MAE_vanilla`` (positive: distillation helped)."""
        return (self.vanilla.test_mae - self.distilled.test_mae) / self.vanilla.test_mae

    def table(self, unit: str = "eV/atom") -> str:
        """A fixed-width text table of the two runs."""
        header = f"{'model':<12}{'test MAE (' + unit + ')':>22}{'best epoch':>12}{'epochs':>8}{'train':>7}{'test':>6}{'time (s)':>10}"
        rows = [header, "-" * len(header)]
        for name, run in (("vanilla", self.vanilla), ("distilled", self.distilled)):
            rows.append(
                f"{name:<12}{run.test_mae:>22.4f}{run.best_epoch:>12d}{self.training.epochs:>8d}"
                f"{len(self.split.train):>7d}{len(self.split.test):>6d}{run.seconds:>10.1f}"
            )
        rows.append("-" * len(header))
        rows.append(f"relative gain of distillation: {100 * self.relative_gain:+.1f} % (lower MAE is better)")
        return "\n".join(rows)


def compare_distillation(
    model_factory: Callable[[], nn.Module],
    dataset: CrystalGraphDataset,
    training: TrainingSettings | None = None,
    settings: ComparisonSettings | None = None,
    teacher: Any = None,
    adapter: Any = "auto",
    log: Callable[[str], None] | None = None,
) -> Comparison:
    """Train ``model_factory()`` without and with the teacher attached; same everything else.

    Args:
        model_factory: builds a fresh predictor (``model(graph) -> (B,)``); called once per
            run right after ``torch.manual_seed(settings.model_seed)``.
        dataset: labelled graphs; split with ``settings``.
        teacher: a FrozenTeacher, a checkpoint path, or ``None`` for the bundled teacher.
        adapter: passed to :func:`crysgnn_dgl.attach_teacher` (``"auto"``: detected).
        log: receives progress lines.
    """
    from ..distill import attach_teacher, resolve_teacher

    training = training or TrainingSettings()
    settings = settings or ComparisonSettings()
    frozen = resolve_teacher(teacher)
    split = split_indices(len(dataset), settings.val_fraction, settings.test_fraction, settings.split_seed, settings.train_limit)
    train_set, val_set, test_set = (subset(dataset, part) for part in (split.train, split.val, split.test))
    normalizer = TargetNormalizer(dataset.targets[split.train])
    say = log or (lambda message: None)

    with deterministic_algorithms(settings.deterministic):
        say(f"vanilla: {len(split.train)} train / {len(split.val)} val / {len(split.test)} test crystals")
        torch.manual_seed(settings.model_seed)
        vanilla = train_predictor(model_factory(), train_set, val_set, test_set, training, normalizer, log)

        torch.manual_seed(settings.model_seed)
        student = model_factory()
        hook = attach_teacher(student, frozen, adapter=adapter, delta=settings.delta)
        say(f"distilled (teacher {getattr(frozen, 'source', '') or 'given'}, KD weight {hook.kd_weight:g})")
        try:
            distilled = train_predictor(student, train_set, val_set, test_set, training, normalizer, log)
            kd_mean = hook.kd_mean
        finally:
            hook.remove()
    return Comparison(vanilla, distilled, split, training, kd_mean, str(getattr(frozen, "source", "")))
