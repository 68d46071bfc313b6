"""Per-epoch checkpoints: the versioned crysgnn_dgl weights and Lightning's resume state."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm
from tqdm import tqdm

from ..checkpoint import save_checkpoint

LIGHTNING_STATE = "lightning_last.ckpt"


def epoch_metrics(trainer: pl.Trainer) -> dict[str, float]:
    """Epoch-level metrics Lightning has collected (``train/*`` epoch means and ``val/*``)."""
    metrics = {}
    for name, value in trainer.callback_metrics.items():
        if name.endswith("_step"):
            continue
        metrics[name.removesuffix("_epoch")] = float(value)
    return metrics


class EpochCheckpoint(pl.Callback):
    """After every epoch (validation included) write, atomically:

    * ``lightning_last.ckpt``: Lightning's full state (optimiser, schedule, loops, and
      this callback's record of the epoch), written first: it is the commit point;
    * ``checkpoints/epoch_XXX.pt``, ``checkpoints/best.pt`` (lowest ``val/total``) and
      ``checkpoints/last.pt``: weights-only crysgnn_dgl checkpoints with the epoch's
      metrics and the run settings under ``training``;
    * one line per epoch in ``history.jsonl``.

    A run killed after the commit point is completed by
    :func:`~crysgnn_dgl.pretrain.recovery.complete_interrupted_epoch` when it resumes;
    one killed before it repeats the epoch.
    """

    def __init__(self, folder: str | Path, run_settings: dict[str, Any], keep_every_epoch: bool = True):
        self.folder = Path(folder)
        self.run_settings = run_settings
        self.keep_every_epoch = keep_every_epoch
        self.best = math.inf
        self.record: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "record": self.record}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = float(state_dict.get("best", math.inf))
        self.record = state_dict.get("record")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        epoch = trainer.current_epoch
        metrics = epoch_metrics(trainer)
        validation = metrics.get("val/total", metrics.get("train/total", math.inf))
        improved = validation < self.best
        if improved:
            self.best = validation
        training = {
            **self.run_settings,
            "epoch": epoch,
            "epochs_completed": epoch + 1,
            "global_step": trainer.global_step,
            "metrics": metrics,
        }
        self.record = {"epoch": epoch, "improved": improved, "training": training}
        # Lightning's state first (the commit point): every rank takes part, rank 0 writes.
        state = self.folder / LIGHTNING_STATE
        temporary = state.with_name(f".{state.name}.tmp")
        trainer.save_checkpoint(temporary, weights_only=False)
        if trainer.is_global_zero:
            os.replace(temporary, state)
            write_epoch_files(self.folder, pl_module.model, self.record, self.keep_every_epoch)


def history_line(record: dict[str, Any]) -> dict[str, Any]:
    """The ``history.jsonl`` entry of an epoch record."""
    training = record["training"]
    return {"epoch": record["epoch"], "global_step": training["global_step"], **training["metrics"]}


def write_epoch_files(
    folder: Path, model: Any, record: dict[str, Any], keep_every_epoch: bool = True,
    which: tuple[str, ...] = ("epoch", "best", "last", "history"),
) -> None:
    """Write the project's files of one finished epoch (``which`` of them)."""
    checkpoints = folder / "checkpoints"
    epoch, training = record["epoch"], record["training"]
    if "epoch" in which and keep_every_epoch:
        save_checkpoint(checkpoints / f"epoch_{epoch:03d}.pt", model, training)
    if "best" in which and record["improved"]:
        save_checkpoint(checkpoints / "best.pt", model, training)
    if "last" in which:
        save_checkpoint(checkpoints / "last.pt", model, training)
    if "history" in which:
        with open(folder / "history.jsonl", "a") as handle:
            handle.write(json.dumps(history_line(record)) + "\n")


def read_history(folder: str | Path) -> list[dict[str, Any]]:
    """Per-epoch metrics of a run (the last record of each epoch wins after a resume; a
    line cut short by a kill is ignored)."""
    path = Path(folder) / "history.jsonl"
    if not path.is_file():
        return []
    records: dict[int, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "epoch" in record:
            records[record["epoch"]] = record
    return [records[e] for e in sorted(records)]


class EpochPrinter(pl.Callback):
    """One line per epoch (duration, total and per-objective losses, accuracies) on rank 0,
    on stdout (written around any progress bar)."""

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        import time

        self._start = time.time()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        import time

        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = epoch_metrics(trainer)
        shown = " ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))
        line = f"epoch {trainer.current_epoch} ({time.time() - self._start:.0f} s, step {trainer.global_step}): {shown}"
        tqdm.write(line, file=sys.stdout)
        sys.stdout.flush()


class StderrProgressBar(TQDMProgressBar):
    """Lightning's progress bars on stderr rather than stdout (which keeps the results)."""

    def init_train_tqdm(self) -> Tqdm:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_train_tqdm()

    def init_validation_tqdm(self) -> Tqdm:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_validation_tqdm()
