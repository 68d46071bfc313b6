"""The grid of a sweep: task × predictor × mode × recipe × training-set size × seed."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..training.loop import TrainingSettings
from .spec import DEFAULT_TRAINING, DEPTH_MODES, KD_MODES, KDRecipe, RunSpec
from .tasks import TaskSpec


@dataclass(frozen=True)
class Grid:
    """Every combination of the lists; recipes apply to the KD modes only (vanilla and
    finetune runs are shared by all recipes of a seed)."""

    tasks: Sequence[TaskSpec]
    predictors: Sequence[str] = ("cgcnn",)
    modes: Sequence[str] = ("vanilla", "distilled")
    train_sizes: Sequence[int] = (1000,)
    seeds: Sequence[int] = (0, 1, 2, 3, 4)
    recipes: Sequence[KDRecipe] = field(default_factory=lambda: (KDRecipe(),))
    teacher: str | None = None
    training: TrainingSettings = DEFAULT_TRAINING
    source: TaskSpec | None = None
    source_size: int = 1000
    teacher_depth: int | None = None

    def specs(self) -> list[RunSpec]:
        """The runs, seeds outermost (a partial sweep has whole seeds first), then sizes,
        without duplicates."""
        runs: dict[str, RunSpec] = {}
        for seed, size, task, predictor, mode in itertools.product(
            self.seeds, self.train_sizes, self.tasks, self.predictors, self.modes
        ):
            for recipe in self.recipes if mode in KD_MODES else (KDRecipe(),):
                spec = RunSpec(task, predictor, mode, size, seed, self.teacher, recipe, self.training,
                               self.source, self.source_size,
                               self.teacher_depth if mode in DEPTH_MODES else None)
                runs.setdefault(spec.key(), spec)
        return list(runs.values())
