"""Per-epoch checkpoints: the versioned crysgnn_dgl weights and Lightning's resume state."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

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

    * ``checkpoints/epoch_XXX.pt``, ``checkpoints/last.pt`` and ``checkpoints/best.pt``
      (lowest ``val/total``): weights-only crysgnn_dgl checkpoints with the epoch's
      metrics and the run settings under ``training``;
    * ``lightning_last.ckpt``: Lightning's full state (optimiser, schedule, loops) so a
      killed run resumes from the last finished epoch;
    * one line per epoch in ``history.jsonl``.
    """

    def __init__(self, folder: str | Path, run_settings: dict[str, Any], keep_every_epoch: bool = True):
        self.folder = Path(folder)
        self.run_settings = run_settings
        self.keep_every_epoch = keep_every_epoch
        self.best = math.inf

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = float(state_dict.get("best", math.inf))

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
        # Lightning's state first: every rank takes part, rank 0 writes.
        state = self.folder / LIGHTNING_STATE
        temporary = state.with_name(f".{state.name}.tmp")
        trainer.save_checkpoint(temporary, weights_only=False)
        if trainer.is_global_zero:
            os.replace(temporary, state)
            model = pl_module.model
            folder = self.folder / "checkpoints"
            if self.keep_every_epoch:
                save_checkpoint(folder / f"epoch_{epoch:03d}.pt", model, training)
            save_checkpoint(folder / "last.pt", model, training)
            if improved:
                save_checkpoint(folder / "best.pt", model, training)
            with open(self.folder / "history.jsonl", "a") as handle:
                handle.write(json.dumps({"epoch": epoch, "global_step": trainer.global_step, **metrics}) + "\n")


def read_history(folder: str | Path) -> list[dict[str, Any]]:
    """Per-epoch metrics of a run (the last record of each epoch wins after a resume)."""
    path = Path(folder) / "history.jsonl"
    if not path.is_file():
        return []
    records: dict[int, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            records[record["epoch"]] = record
    return [records[e] for e in sorted(records)]


class EpochPrinter(pl.Callback):
    """One line per epoch (duration, total and per-objective losses, accuracies) on rank 0,
    for logs where a progress bar is off."""

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        import time

        self._start = time.time()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        import time

        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = epoch_metrics(trainer)
        shown = " ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))
        print(f"epoch {trainer.current_epoch} ({time.time() - self._start:.0f} s, step {trainer.global_step}): {shown}", flush=True)
