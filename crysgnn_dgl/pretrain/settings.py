"""Settings of a pre-training run (same dataclass style as :mod:`crysgnn_dgl.config`).

Plain Python (no torch import): the command line takes its defaults from here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

from ..config import SettingsBase


@dataclass(frozen=True)
class OptimizerSettings(SettingsBase):
    """Adam and its learning-rate schedule.

    The CrysGNN release used Adam with lr 0.03; with batch normalisation and 64-wide
    layers that is unstable here, so the default is 1e-3 with cosine decay over the run.

    Attributes:
        learning_rate: peak learning rate.
        weight_decay: Adam's L2 penalty.
        schedule: ``"cosine"`` (decay to ``final_lr_fraction`` × lr at ``max_epochs``)
            or ``"constant"``.
        final_lr_fraction: end of the cosine schedule relative to ``learning_rate``.
    """

    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    schedule: Literal["cosine", "constant"] = "cosine"
    final_lr_fraction: float = 0.05

    def validate(self) -> None:
        self._require_number("learning_rate", low=0.0, low_open=True)
        self._require_number("weight_decay", low=0.0)
        self._require_number("final_lr_fraction", low=0.0, high=1.0)


@dataclass(frozen=True)
class PretrainSettings(SettingsBase):
    """Everything about a run that is not the model, the objectives or the optimiser.

    Attributes:
        max_epochs: epochs to train (a resumed run continues up to this number).
        batch_size: crystals per batch (per process under DDP).
        validation_fraction: share of the cache held out (seeded random slice).
        seed: seeds weights, the split, batch order and pair sub-sampling.
        num_workers: DataLoader worker processes (0: load in the training process).
        accelerator, devices, strategy, num_nodes: passed to Lightning (``strategy="ddp"``
            with ``devices=N`` trains on N GPUs).
        precision: Lightning precision, e.g. ``"32-true"``, ``"16-mixed"``, ``"bf16-mixed"``;
            ``"auto"`` picks ``16-mixed`` on a GPU and ``32-true`` otherwise.
        num_threads: torch CPU threads (``None``: leave torch's default).
        shuffle_window: shards whose crystals are shuffled together into batches.
        max_loaded_shards: cache shards kept in memory per process (``None``: the
            shuffle window plus one).
        log_every_n_steps: Lightning's logging interval.
        limit_train_batches: train on at most this many batches per epoch (``None``: all).
    """

    max_epochs: int = 20
    batch_size: int = 128
    validation_fraction: float = 0.05
    seed: int = 0
    num_workers: int = 0
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "auto"
    num_threads: int | None = None
    shuffle_window: int = 16
    max_loaded_shards: int | None = None
    log_every_n_steps: int = 50
    limit_train_batches: int | None = None

    def validate(self) -> None:
        self._require_int("max_epochs", "batch_size", "num_nodes", "shuffle_window", "log_every_n_steps", least=1)
        self._require_int("seed", "num_workers", least=0)
        self._require_int("num_threads", "max_loaded_shards", "limit_train_batches", least=1, optional=True)
        self._require_number("validation_fraction", low=0.0, high=1.0, high_open=True)
        if not (isinstance(self.devices, str) or (isinstance(self.devices, int) and self.devices >= 1)):
            raise self._invalid("devices", "an integer >= 1 or a string such as 'auto'")


@dataclass(frozen=True)
class ObjectiveSettings(SettingsBase):
    """Weights and details of the pre-training loss.

    Attributes:
        feature_weight, connectivity_weight, space_group_weight, contrastive_weight: the
            paper's α, β, γ, λ; a weight of 0 switches that objective off (not computed).
        temperature: NT-Xent temperature.
        connectivity_class_weights: NLL class weights of the connectivity classes 0..5.
        max_pairs_per_crystal: score at most this many randomly drawn ordered pairs per
            crystal for the connectivity loss (``None``: all n² pairs, as the release).
    """

    feature_weight: float = 0.25
    connectivity_weight: float = 0.25
    space_group_weight: float = 0.25
    contrastive_weight: float = 0.25
    temperature: float = 0.07
    connectivity_class_weights: tuple[float, ...] = (0.1, 1.0, 1.0, 1.0, 1.0, 1.0)
    max_pairs_per_crystal: int | None = None

    def validate(self) -> None:
        self._require_number(
            "feature_weight", "connectivity_weight", "space_group_weight", "contrastive_weight", low=0.0
        )
        self._require_number("temperature", low=0.0, low_open=True)
        self._require_int("max_pairs_per_crystal", least=1, optional=True)
        weights = self.connectivity_class_weights
        if not weights or not all(isinstance(w, (int, float)) and w >= 0 for w in weights):
            raise self._invalid("connectivity_class_weights", "a non-empty sequence of numbers >= 0")

    def weight(self, objective: str) -> float:
        return float(getattr(self, f"{objective}_weight"))

    @classmethod
    def from_dict(cls, values: dict) -> ObjectiveSettings:  # tuples may arrive as lists
        values = dict(values)
        if "connectivity_class_weights" in values:
            values["connectivity_class_weights"] = tuple(values["connectivity_class_weights"])
        return super().from_dict(values)


def __getattr__(name: str) -> Any:
    if name == "TrainingSettings":  # renamed: it clashed with crysgnn_dgl.training.TrainingSettings
        warnings.warn(
            "crysgnn_dgl.pretrain.settings.TrainingSettings is deprecated; use PretrainSettings",
            DeprecationWarning, stacklevel=2,
        )
        return PretrainSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
