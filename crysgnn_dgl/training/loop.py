"""A plain PyTorch training loop for crystal property predictors (CGCNN ``main.py`` style).

MSE (or L1 / Huber) on normalised targets, validation MAE after each epoch, a learning-rate schedule
(step milestones, reduce-on-plateau or cosine), optional early stopping on validation
MAE, the best-validation weights restored for the final test. The loop only calls
``model(graph)``, ``loss.backward()`` and ``optimizer.step()``; anything attached to the
model that acts through the forward or backward pass takes part without the loop
knowing about it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sized
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..config import SettingsBase
from ..placement import device_of
from .dataset import collate_graphs
from .normalizer import TargetNormalizer
from .resume import EpochCheckpoint


#: supervised losses of :attr:`TrainingSettings.loss`, on normalised targets
LOSSES: dict[str, type[nn.Module]] = {"mse": nn.MSELoss, "l1": nn.L1Loss, "huber": nn.HuberLoss}


@dataclass(frozen=True)
class TrainingSettings(SettingsBase):
    """Optimisation settings (defaults: Adam as in CGCNN's ``--optim Adam``).

    Attributes:
        epochs: number of passes over the training set.
        batch_size: crystals per step.
        lr: learning rate.
        weight_decay: L2 penalty of the optimiser.
        optimizer: ``"Adam"`` or ``"SGD"`` (momentum 0.9, the original default).
        schedule: ``"multistep"`` (×0.1 at ``lr_milestones``; none: constant),
            ``"plateau"`` (×``plateau_factor`` after ``plateau_patience`` epochs without a
            better validation MAE, down to ``min_lr``) or ``"cosine"`` (to ``min_lr`` at
            ``epochs``).
        lr_milestones: epochs at which the learning rate is multiplied by 0.1 (multistep).
        plateau_patience, plateau_factor, min_lr: see ``schedule``.
        early_stopping: stop after this many epochs without a better validation MAE
            (``None``: train all ``epochs``).
        seed: seed of the shuffling order (the model's initial weights are the caller's).
        loss: supervised loss on normalised targets: ``"mse"``, ``"l1"`` (robust to
            heavy-tailed targets) or ``"huber"`` (quadratic below 1 standard deviation).
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.01
    weight_decay: float = 0.0
    optimizer: Literal["Adam", "SGD"] = "Adam"
    schedule: Literal["multistep", "plateau", "cosine"] = "multistep"
    lr_milestones: tuple[int, ...] = ()
    plateau_patience: int = 5
    plateau_factor: float = 0.5
    min_lr: float = 1e-5
    early_stopping: int | None = None
    seed: int = 0
    loss: Literal["mse", "l1", "huber"] = "mse"

    def validate(self) -> None:
        self._require_int("epochs", "batch_size", least=1)
        self._require_int("plateau_patience", "seed", least=0)
        self._require_int("early_stopping", least=1, optional=True)
        self._require_number("lr", low=0.0, low_open=True)
        self._require_number("weight_decay", "min_lr", low=0.0)
        self._require_number("plateau_factor", low=0.0, high=1.0, low_open=True, high_open=True)
        if not all(isinstance(m, int) and m >= 1 for m in self.lr_milestones):
            raise self._invalid("lr_milestones", "a tuple of integers >= 1")


@dataclass
class TrainingResult:
    """What a training run produced (MAEs in target units). ``seconds`` counts every
    process's training time; a run resumed from an epoch checkpoint records the epoch it
    resumed after and the ``previous_seconds`` spent before (0 when it was not resumed)."""

    history: list[dict[str, float]] = field(default_factory=list)
    epochs: int = 0
    best_epoch: int = 0
    best_val_mae: float = float("nan")
    test_mae: float = float("nan")
    test_predictions: torch.Tensor | None = None
    test_targets: torch.Tensor | None = None
    seconds: float = 0.0
    resumed_after: int = 0
    previous_seconds: float = 0.0


def _loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int, collate: Callable = collate_graphs) -> DataLoader:
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=generator)


def _scheduler(optimizer: torch.optim.Optimizer, settings: TrainingSettings) -> Any:
    if settings.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=settings.plateau_factor,
            patience=settings.plateau_patience, min_lr=settings.min_lr,
        )
    if settings.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings.epochs, eta_min=settings.min_lr)
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, list(settings.lr_milestones), gamma=0.1)


def _to(inputs: Any, device: torch.device) -> Any:
    if isinstance(inputs, tuple):
        return tuple(_to(item, device) for item in inputs)
    return inputs.to(device) if hasattr(inputs, "to") else inputs


def _call(model: nn.Module, inputs: Any) -> torch.Tensor:
    return model(*inputs) if isinstance(inputs, tuple) else model(inputs)


def _optimizer(model: nn.Module, settings: TrainingSettings) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if settings.optimizer == "SGD":
        return torch.optim.SGD(params, settings.lr, momentum=0.9, weight_decay=settings.weight_decay)
    return torch.optim.Adam(params, settings.lr, weight_decay=settings.weight_decay)


@torch.no_grad()
def predict(
    model: nn.Module, dataset: Dataset, normalizer: TargetNormalizer, batch_size: int = 256,
    collate: Callable = collate_graphs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions (denormalised) and targets of ``dataset`` in evaluation mode."""
    model.eval()
    device = device_of(model)
    predictions, targets = [], []
    for inputs, target in _loader(dataset, batch_size, shuffle=False, seed=0, collate=collate):
        predictions.append(normalizer.denorm(_call(model, _to(inputs, device)).reshape(-1)).cpu())
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
    collate: Callable = collate_graphs,
    on_epoch_start: Callable[[int], None] | None = None,
    checkpoint: EpochCheckpoint | None = None,
) -> TrainingResult:
    """Train ``model`` on ``train_set`` and report the test MAE.

    ``collate`` turns a list of ``(inputs, target)`` items into ``(inputs, targets)``;
    the model is called as ``model(inputs)`` (``model(*inputs)`` for a tuple) and returns
    ``(B,)`` predictions. The optimiser is built from ``model.parameters()`` when training
    starts. ``on_epoch_start(epoch)`` runs before each epoch (e.g. a KD-weight schedule).
    Without a validation set the weights after the last epoch are tested.

    With ``checkpoint`` the loop's state is saved after every epoch (before ``log`` sees
    it) and, when the file exists, training continues after its last epoch: the result
    equals the uninterrupted run's bit for bit (same settings, data and model required).
    """
    settings = settings or TrainingSettings()
    if normalizer is None:
        # map-style datasets have a length (torch's Dataset type does not declare __len__)
        normalizer = TargetNormalizer(torch.stack([train_set[i][1] for i in range(len(cast(Sized, train_set)))]))
    device = device_of(model)
    optimizer = _optimizer(model, settings)
    scheduler = _scheduler(optimizer, settings)
    criterion = LOSSES[settings.loss]()
    result = TrainingResult()
    best_state, start, stale, stopped, first = None, time.perf_counter(), 0, False, 1
    saved = checkpoint.load(settings.to_dict()) if checkpoint is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        result.history, result.epochs = saved["history"], saved["epoch"]
        result.best_epoch, result.best_val_mae = saved["best_epoch"], saved["best_val_mae"]
        best_state, stale, stopped = saved["best_state"], saved["stale"], saved["stopped"]
        result.resumed_after, result.previous_seconds = saved["epoch"], saved["seconds"]
        first = saved["epoch"] + 1
        torch.set_rng_state(saved["rng"])
        if device.type == "cuda":
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
    for epoch in range(first, settings.epochs + 1):
        if stopped:
            break
        epoch_start = time.perf_counter()
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        model.train()
        total_loss = total_abs = count = 0.0
        for inputs, target in _loader(train_set, settings.batch_size, True, settings.seed + epoch, collate):
            inputs, target = _to(inputs, device), target.to(device)
            output = _call(model, inputs).reshape(-1)
            loss = criterion(output, normalizer.norm(target))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach()) * len(target)
            total_abs += float((normalizer.denorm(output.detach()) - target).abs().sum())
            count += len(target)
        record = {"epoch": epoch, "train_loss": total_loss / count, "train_mae": total_abs / count,
                  "lr": optimizer.param_groups[0]["lr"]}
        if val_set is not None and len(cast(Sized, val_set)):
            predictions, targets = predict(model, val_set, normalizer, collate=collate)
            record["val_mae"] = float((predictions - targets).abs().mean())
            stale += 1
            if best_state is None or record["val_mae"] < result.best_val_mae:
                result.best_val_mae, result.best_epoch, stale = record["val_mae"], epoch, 0
                best_state = copy.deepcopy(model.state_dict())
        if settings.schedule == "plateau":
            scheduler.step(record.get("val_mae", record["train_loss"]))
        else:
            scheduler.step()
        record["seconds"] = time.perf_counter() - epoch_start
        result.history.append(record)
        result.epochs = epoch
        stopped = settings.early_stopping is not None and best_state is not None and stale >= settings.early_stopping
        if checkpoint is not None:
            checkpoint.save({
                "settings": settings.to_dict(), "epoch": epoch, "stopped": stopped, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "history": result.history, "best_epoch": result.best_epoch, "best_val_mae": result.best_val_mae,
                "best_state": best_state, "stale": stale, "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "seconds": result.previous_seconds + time.perf_counter() - start,
            })
        if log is not None:
            log(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()))
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        result.best_epoch = result.epochs
    predictions, targets = predict(model, test_set, normalizer, collate=collate)
    result.test_predictions, result.test_targets = predictions, targets
    result.test_mae = float((predictions - targets).abs().mean())
    result.seconds = result.previous_seconds + time.perf_counter() - start
    return result
