"""Paired statistics of a sweep: for each cell (task, predictor, size, teacher, recipe)
and mode, the relative gain over a reference mode of the same seeds, its mean, a 95 %
confidence interval (Student t over seeds) and the two-sided paired-test p-value."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CELL = ("task", "predictor", "train_size")


@dataclass(frozen=True)
class PairedGain:
    """``gain_s = (MAE_reference,s − MAE_mode,s) / MAE_reference,s`` over the paired seeds
    (positive: the mode is better). ``ci`` is the 95 % interval of the mean."""

    seeds: tuple[int, ...]
    gains: tuple[float, ...]
    mean: float
    ci: tuple[float, float]
    p_value: float

    @property
    def wins(self) -> int:
        return sum(g > 0 for g in self.gains)


def paired_gain(reference: dict[int, float], other: dict[int, float]) -> PairedGain | None:
    """Paired gain of ``other`` over ``reference`` (``seed -> MAE``); ``None`` without a
    common seed."""
    from scipy import stats

    seeds = tuple(sorted(set(reference) & set(other)))
    if not seeds:
        return None
    gains = tuple((reference[s] - other[s]) / reference[s] for s in seeds)
    mean = sum(gains) / len(gains)
    if len(gains) < 2:
        return PairedGain(seeds, gains, mean, (math.nan, math.nan), math.nan)
    sd = math.sqrt(sum((g - mean) ** 2 for g in gains) / (len(gains) - 1))
    half = stats.t.ppf(0.975, len(gains) - 1) * sd / math.sqrt(len(gains))
    p_value = float(stats.ttest_1samp(gains, 0.0).pvalue) if sd > 0 else (0.0 if mean else 1.0)
    return PairedGain(seeds, gains, mean, (mean - half, mean + half), p_value)


def cells(results: Sequence[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    """Results grouped by ``(task, predictor, train_size)``."""
    grouped: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for record in results:
        grouped[tuple(record[k] for k in CELL)].append(record)
    return dict(grouped)


def arm(record: dict[str, Any]) -> tuple[str, str, str]:
    """What distinguishes runs within a cell: ``(mode, teacher, recipe)``."""
    return record["mode"], record["teacher"], record["recipe"]


def by_seed(records: Sequence[dict[str, Any]], metric: str) -> dict[tuple, dict[int, float]]:
    """``arm -> {seed: metric}``."""
    table: dict[tuple, dict[int, float]] = defaultdict(dict)
    for record in records:
        table[arm(record)][int(record["seed"])] = float(record[metric])
    return dict(table)
