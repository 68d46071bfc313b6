"""Finish what a killed pre-training run left undone before it resumes.

Lightning's ``lightning_last.ckpt`` is written first at the end of every epoch (see
:class:`~crysgnn_dgl.pretrain.callbacks.EpochCheckpoint`) and carries the callback's
record of that epoch; the project's files (``epoch_XXX.pt``, ``best.pt``, ``last.pt``,
``history.jsonl``) follow. A kill in between leaves the epoch committed but its files
missing: :func:`complete_interrupted_epoch` writes them from the committed state, so a
resumed run, even one with nothing left to train, ends with every file in place.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

import torch

from ..config import GraphSettings, ModelSettings
from ..models.crysgnn import CrysGNN
from .callbacks import LIGHTNING_STATE, EpochCheckpoint, read_history, write_epoch_files

log = logging.getLogger(__name__)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete temporary files a killed writer left (``.<name>.tmp*``); return them."""
    stale = [*folder.glob(f".{LIGHTNING_STATE}.tmp*"), *(folder / "checkpoints").glob(".*.tmp-*")]
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return stale


def _recorded_epoch(path: Path) -> int | None:
    """Epoch stored in a crysgnn_dgl checkpoint, ``None`` if it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["training"]["epoch"])
    except Exception:  # noqa: BLE001 - a damaged file is rewritten
        return None


def _model_of(state: dict[str, Any]) -> CrysGNN:
    hyper = state["hyper_parameters"]
    model = CrysGNN(
        ModelSettings.from_dict(hyper.get("model_settings") or {}),
        GraphSettings.from_dict(hyper.get("graph_settings") or {}),
    )
    weights = {k.removeprefix("model."): v for k, v in state["state_dict"].items() if k.startswith("model.")}
    model.load_state_dict(weights)
    return model


def missing_files(folder: Path, record: dict[str, Any], keep_every_epoch: bool = True) -> tuple[str, ...]:
    """Which of the committed epoch's files (``epoch``, ``best``, ``last``, ``history``)
    are absent or older than the epoch."""
    epoch, checkpoints = record["epoch"], folder / "checkpoints"
    missing = []
    if keep_every_epoch and _recorded_epoch(checkpoints / f"epoch_{epoch:03d}.pt") != epoch:
        missing.append("epoch")
    if record["improved"] and _recorded_epoch(checkpoints / "best.pt") != epoch:
        missing.append("best")
    if _recorded_epoch(checkpoints / "last.pt") != epoch:
        missing.append("last")
    if all(line["epoch"] != epoch for line in read_history(folder)):
        missing.append("history")
    return tuple(missing)


def complete_interrupted_epoch(folder: str | os.PathLike, keep_every_epoch: bool = True) -> tuple[str, ...]:
    """Write the files of the last committed epoch that a kill prevented; return which."""
    folder = Path(folder)
    remove_stale_temporaries(folder)
    path = folder / LIGHTNING_STATE
    if not path.is_file():
        return ()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - named in the one-line error below
        raise ValueError(
            f"{path}: cannot read the resume state ({type(error).__name__}: {str(error)[:200]}); "
            "delete it to restart this run from its first epoch, or use another --out"
        ) from error
    record = (state.get("callbacks") or {}).get(EpochCheckpoint.__qualname__, {}).get("record")
    if not record:
        return ()
    missing = missing_files(folder, record, keep_every_epoch)
    if missing:
        log.warning("completing epoch %d of %s: writing %s", record["epoch"], folder, ", ".join(missing))
        write_epoch_files(folder, _model_of(state), record, keep_every_epoch, which=missing)
    return missing
