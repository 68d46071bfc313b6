"""A plain PyTorch training loop for crystal property predictors (CGCNN ``main.py`` style).

MSE on normalised targets, a fixed number of epochs, validation MAE after each epoch,
the best-validation weights restored for the final test. The loop only calls
``model(graph)``, ``loss.backward()`` and ``optimizer.step()``; anything attached to the
model that acts through the forward or backward pass takes part without the loop
knowing about it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..config import SettingsBase
from .dataset import collate_graphs
from .normalizer import TargetNormalizer


@dataclass(frozen=True)
class TrainingSettings(SettingsBase):
    """Optimisation settings (defaults: Adam as in CGCNN's ``--optim Adam``).

    Attributes:
        epochs: number of passes over the training set.
        batch_size: crystals per step.
        lr: learning rate.
        weight_decay: L2 penalty of the optimiser.
        optimizer: ``"Adam"`` or ``"SGD"`` (momentum 0.9, the original default).
        lr_milestones: epochs at which the learning rate is multiplied by 0.1.
        seed: seed of the shuffling order (the model's initial weights are the caller's).
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.01
    weight_decay: float = 0.0
    optimizer: str = "Adam"
    lr_milestones: tuple[int, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs and batch_size must be >= 1 and lr > 0")
        if self.optimizer not in ("Adam", "SGD"):
            raise ValueError(f"optimizer must be 'Adam' or 'SGD', not {self.optimizer!r}")


@dataclass
class TrainingResult:
    """What a training run produced (MAEs in target units)."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_mae: float = float("nan")
    test_mae: float = float("nan")
    test_predictions: torch.Tensor | None = None
    test_targets: torch.Tensor | None = None
    seconds: float = 0.0


def _loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=collate_graphs, generator=generator)


def _optimizer(model: nn.Module, settings: TrainingSettings) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if settings.optimizer == "SGD":
        return torch.optim.SGD(params, settings.lr, momentum=0.9, weight_decay=settings.weight_decay)
    return torch.optim.Adam(params, settings.lr, weight_decay=settings.weight_decay)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def predict(model: nn.Module, dataset: Dataset, normalizer: TargetNormalizer, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions (denormalised) and targets of ``dataset`` in evaluation mode."""
    model.eval()
    device = _device(model)
    predictions, targets = [], []
    for graph, target in _loader(dataset, batch_size, shuffle=False, seed=0):
        predictions.append(normalizer.denorm(model(graph.to(device))).cpu())
        targets.append(target)
    return torch.cat(predictions), torch.cat(targets)


def train_predictor(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None,
    test_set: Dataset,
    settings: TrainingSettings | None = None,
    normalizer: TargetNormalizer | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainingResult:
    """Train ``model`` (``model(graph) -> (B,)``) on ``train_set`` and report the test MAE.

    The optimiser is built from ``model.parameters()`` when training starts. Without a
    validation set the weights after the last epoch are tested.
    """
    settings = settings or TrainingSettings()
    if normalizer is None:
        normalizer = TargetNormalizer(torch.stack([train_set[i][1] for i in range(len(train_set))]))
    device = _device(model)
    optimizer = _optimizer(model, settings)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(settings.lr_milestones), gamma=0.1)
    criterion = nn.MSELoss()
    result = TrainingResult()
    best_state, start = None, time.perf_counter()
    for epoch in range(1, settings.epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        total_loss = total_abs = count = 0.0
        for graph, target in _loader(train_set, settings.batch_size, True, settings.seed + epoch):
            graph, target = graph.to(device), target.to(device)
            output = model(graph)
            loss = criterion(output, normalizer.norm(target))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach()) * len(target)
            total_abs += float((normalizer.denorm(output.detach()) - target).abs().sum())
            count += len(target)
        scheduler.step()
        record = {"epoch": epoch, "train_loss": total_loss / count, "train_mae": total_abs / count}
        if val_set is not None and len(val_set):
            predictions, targets = predict(model, val_set, normalizer)
            record["val_mae"] = float((predictions - targets).abs().mean())
            if best_state is None or record["val_mae"] < result.best_val_mae:
                result.best_val_mae, result.best_epoch = record["val_mae"], epoch
                best_state = copy.deepcopy(model.state_dict())
        record["seconds"] = time.perf_counter() - epoch_start
        result.history.append(record)
        if log is not None:
            log(" ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()))
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        result.best_epoch = settings.epochs
    predictions, targets = predict(model, test_set, normalizer)
    result.test_predictions, result.test_targets = predictions, targets
    result.test_mae = float((predictions - targets).abs().mean())
    result.seconds = time.perf_counter() - start
    return result
