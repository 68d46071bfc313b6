"""Training predictors on crystal graphs: datasets, splits, a plain loop, comparisons."""

from .compare import Comparison, ComparisonSettings, compare_distillation, deterministic_algorithms
from .dataset import CrystalGraphDataset, collate_graphs
from .loop import TrainingResult, TrainingSettings, predict, train_predictor
from .normalizer import TargetNormalizer
from .parity import parity_plot
from .splits import Split, split_indices, subset

__all__ = [
    "Comparison",
    "ComparisonSettings",
    "CrystalGraphDataset",
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
