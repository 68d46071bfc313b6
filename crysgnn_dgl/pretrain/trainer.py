"""Run pre-training on a graph cache with Lightning (resumable, per-epoch checkpoints)."""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from ..config import ModelSettings
from .callbacks import LIGHTNING_STATE, EpochCheckpoint, EpochPrinter, StderrProgressBar, epoch_metrics
from .dataset import CacheCollate, GraphCache, ShardBatchSampler
from .module import PretrainModule
from .recovery import complete_interrupted_epoch
from .settings import ObjectiveSettings, OptimizerSettings, PretrainSettings

log = logging.getLogger(__name__)


@dataclass
class PretrainResult:
    """Where a finished (or stopped) run left its files."""

    folder: Path
    last_checkpoint: Path
    best_checkpoint: Path
    epochs_completed: int
    metrics: dict[str, float]


def _precision(training: PretrainSettings) -> str:
    if training.precision != "auto":
        return training.precision
    gpu = torch.cuda.is_available() and training.accelerator in {"auto", "gpu", "cuda"}
    return "16-mixed" if gpu else "32-true"


def make_loaders(cache: GraphCache, training: PretrainSettings) -> tuple[DataLoader, DataLoader | None]:
    """Streaming train / validation loaders over a cache (seeded split)."""
    train_positions, val_positions = cache.split(training.validation_fraction, training.seed)
    collate = CacheCollate(cache.graph_settings)
    common: dict[str, Any] = {"collate_fn": collate, "num_workers": training.num_workers}
    train = DataLoader(
        cache,
        batch_sampler=ShardBatchSampler(
            cache, train_positions, training.batch_size, shuffle=True, seed=training.seed,
            shuffle_window=training.shuffle_window,
        ),
        **common,
    )
    if len(val_positions) == 0:
        return train, None
    val = DataLoader(
        cache,
        batch_sampler=ShardBatchSampler(
            cache, val_positions, training.batch_size, shuffle=True, seed=training.seed,
            shuffle_window=training.shuffle_window, same_every_epoch=True,
        ),
        **common,
    )
    return train, val


def _crystals(loader: DataLoader) -> int:
    """Crystals a loader of :func:`make_loaders` visits per epoch."""
    sampler = loader.batch_sampler
    assert isinstance(sampler, ShardBatchSampler)  # make_loaders builds every loader with one
    return len(sampler.positions)


def _loggers(folder: Path) -> list[Any]:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    loggers: list[Any] = [CSVLogger(save_dir=str(folder), name="logs")]
    if importlib.util.find_spec("tensorboard") is not None:
        loggers.append(TensorBoardLogger(save_dir=str(folder), name="tensorboard"))
    return loggers


def pretrain(
    cache_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    model_settings: ModelSettings | None = None,
    objectives: ObjectiveSettings | None = None,
    optimizer: OptimizerSettings | None = None,
    training: PretrainSettings | None = None,
    resume: bool = True,
    progress_bar: bool = True,
    verbose: bool = False,
    extra_callbacks: list[pl.Callback] | None = None,
) -> PretrainResult:
    """Pre-train CrysGNN on a graph cache; resumes from ``output_folder`` when it holds a run.

    Writes ``checkpoints/epoch_XXX.pt``, ``last.pt``, ``best.pt`` (crysgnn_dgl format),
    ``lightning_last.ckpt`` (resume state), ``history.jsonl`` and Lightning logs. On
    resume, files of the last finished epoch that a kill prevented are written first.
    A cache without crystals, or without training crystals, is refused. ``progress_bar``
    shows Lightning's progress bar on stderr; ``verbose`` prints a line per epoch.
    """
    model_settings = model_settings or ModelSettings()
    objectives = objectives or ObjectiveSettings()
    optimizer = optimizer or OptimizerSettings()
    training = training or PretrainSettings()
    folder = Path(output_folder)
    folder.mkdir(parents=True, exist_ok=True)
    if training.num_threads is not None:
        torch.set_num_threads(training.num_threads)
    pl.seed_everything(training.seed, workers=True, verbose=False)

    loaded = training.max_loaded_shards or training.shuffle_window + 1
    cache = GraphCache(Path(cache_folder), max_loaded_shards=loaded)
    if len(cache) == 0:
        raise ValueError(
            f"graph cache {cache.folder} holds no crystals: every input was skipped or none was "
            f"found (reasons in {cache.folder / 'report.tsv'}); check the inputs"
        )
    train_loader, val_loader = make_loaders(cache, training)
    if _crystals(train_loader) == 0:
        raise ValueError(
            f"all {len(cache)} crystal(s) of {cache.folder} went to validation "
            f"(validation_fraction {training.validation_fraction}); lower it or add crystals"
        )
    module = PretrainModule(
        model_settings=model_settings.to_dict(),
        graph_settings=cache.graph_settings.to_dict(),
        objective_settings=objectives.to_dict(),
        optimizer_settings=optimizer.to_dict(),
        seed=training.seed,
    )
    run_settings = {
        "cache": str(Path(cache_folder).resolve()),
        "num_train_crystals": _crystals(train_loader),
        "num_val_crystals": _crystals(val_loader) if val_loader else 0,
        "objectives": objectives.to_dict(),
        "optimizer": optimizer.to_dict(),
        "run": training.to_dict(),
    }
    checkpointer = EpochCheckpoint(folder, run_settings)
    trainer = pl.Trainer(
        default_root_dir=str(folder),
        max_epochs=training.max_epochs,
        accelerator=training.accelerator,
        devices=training.devices,
        strategy=training.strategy,
        num_nodes=training.num_nodes,
        # ignored arg-type: a user's string, which Lightning checks against its literal choices
        precision=_precision(training),  # type: ignore[arg-type]
        logger=_loggers(folder),
        callbacks=[
            checkpointer,
            *([StderrProgressBar()] if progress_bar else []),
            *([EpochPrinter()] if verbose else []),
            *(extra_callbacks or []),
        ],
        enable_checkpointing=False,
        use_distributed_sampler=False,
        log_every_n_steps=training.log_every_n_steps,
        enable_progress_bar=progress_bar,
        num_sanity_val_steps=0,
        limit_train_batches=training.limit_train_batches if training.limit_train_batches is not None else 1.0,
        deterministic=False,
    )
    state = folder / LIGHTNING_STATE
    if resume and _is_first_process():
        complete_interrupted_epoch(folder, checkpointer.keep_every_epoch)
    ckpt_path = str(state) if resume and state.is_file() else None
    if ckpt_path:
        log.info("resuming from %s", ckpt_path)
    trainer.fit(module, train_loader, val_loader, ckpt_path=ckpt_path, weights_only=True if ckpt_path else None)

    last = folder / "checkpoints" / "last.pt"
    return PretrainResult(
        folder=folder,
        last_checkpoint=last,
        best_checkpoint=folder / "checkpoints" / "best.pt",
        epochs_completed=trainer.current_epoch,
        metrics=epoch_metrics(trainer) or _recorded_metrics(last),
    )


def _is_first_process() -> bool:
    """Rank 0 of a (possibly launched) distributed job, before Lightning sets it up."""
    return all(int(os.environ.get(name, "0")) == 0 for name in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def _recorded_metrics(checkpoint: Path) -> dict[str, float]:
    """Metrics stored in a run's ``last.pt`` (a resumed run with nothing left to train)."""
    if not checkpoint.is_file():
        return {}
    return dict(torch.load(checkpoint, map_location="cpu", weights_only=True)["training"].get("metrics", {}))
