"""Settings of a pre-training run (same dataclass style as :mod:`crysgnn_dgl.config`)."""

from __future__ import annotations

from dataclasses import dataclass

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
    schedule: str = "cosine"
    final_lr_fraction: float = 0.05


@dataclass(frozen=True)
class TrainingSettings(SettingsBase):
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

    def __post_init__(self) -> None:
        least = {
            "max_epochs": 1, "batch_size": 1, "num_workers": 0, "num_nodes": 1, "num_threads": 1,
            "shuffle_window": 1, "max_loaded_shards": 1, "log_every_n_steps": 1, "limit_train_batches": 1,
        }
        for name, minimum in least.items():
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
                raise ValueError(f"TrainingSettings.{name} must be an integer >= {minimum}, got {value!r}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(
                f"TrainingSettings.validation_fraction must be in [0, 1), got {self.validation_fraction!r}"
            )
