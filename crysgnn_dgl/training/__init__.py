"""Training predictors on crystal graphs: datasets, splits, a plain loop, comparisons.

Public names load on first use, so that command-line parsers can import the option
definitions in :mod:`crysgnn_dgl.training.options` without importing torch.
"""

from __future__ import annotations

from typing import Any

from .._lazy import lazy_attributes

_PUBLIC = {
    "Comparison": "compare",
    "ComparisonSettings": "compare",
    "compare_distillation": "compare",
    "deterministic_algorithms": "compare",
    "CrystalGraphDataset": "dataset",
    "collate_graphs": "dataset",
    "TrainingResult": "loop",
    "TrainingSettings": "loop",
    "predict": "loop",
    "train_predictor": "loop",
    "TargetNormalizer": "normalizer",
    "EpochCheckpoint": "resume",
    "parity_plot": "parity",
    "Split": "splits",
    "split_indices": "splits",
    "subset": "splits",
}

__all__ = [
    "Comparison",
    "ComparisonSettings",
    "CrystalGraphDataset",
    "EpochCheckpoint",
    "Split",
    "TargetNormalizer",
    "TrainingResult",
    "TrainingSettings",
    "collate_graphs",
    "compare_distillation",
    "deterministic_algorithms",
    "parity_plot",
    "predict",
    "split_indices",
    "subset",
    "train_predictor",
]


_load = lazy_attributes(__name__, _PUBLIC)


def __getattr__(name: str) -> Any:
    return _load(name)
