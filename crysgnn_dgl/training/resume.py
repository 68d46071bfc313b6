"""Epoch checkpoints of :func:`~crysgnn_dgl.training.train_predictor`: the loop's whole
state after each finished epoch, so that a killed run continues from its last finished
epoch and ends exactly (bit for bit) as the uninterrupted run would have."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

#: raised whenever the layout of the saved state changes (older files are refused)
FORMAT = 1


class CheckpointMismatchError(ValueError):
    """An epoch checkpoint belongs to another run (other settings or an unknown format)."""


@dataclass
class EpochCheckpoint:
    """Where :func:`train_predictor` keeps its state after every epoch.

    The file holds the model's and optimiser's state, the learning-rate schedule, the
    early-stopping record (best weights included), the history, torch's RNG state and
    whatever ``extra_state`` returns (e.g. :meth:`DistillHook.state_dict`, state that
    lives outside the model). It is replaced atomically after each epoch, so a kill
    leaves the previous epoch's file intact; the loop never deletes it (delete it once
    the run's result is stored, or keep it: a finished run resumed from it only tests).

    Attributes:
        path: the state file.
        extra_state: returns extra state to save with each epoch.
        load_extra_state: restores what ``extra_state`` returned.
    """

    path: Path
    extra_state: Callable[[], dict[str, Any]] | None = None
    load_extra_state: Callable[[dict[str, Any]], None] | None = None

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` (plus the extra state) atomically."""
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        extra = self.extra_state() if self.extra_state is not None else {}
        partial = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        torch.save({"format": FORMAT, **state, "extra": extra}, partial)
        os.replace(partial, path)

    def load(self, settings: dict[str, Any]) -> dict[str, Any] | None:
        """The saved state (its extra state already restored), or ``None`` when there is no
        file. Refuses, in one line, a file written with other training ``settings``."""
        path = Path(self.path)
        state = self._read()
        if state is None:
            return None
        changed = sorted(k for k in set(settings) | set(state["settings"])
                         if settings.get(k) != state["settings"].get(k))
        if changed:
            first = changed[0]
            raise CheckpointMismatchError(
                f"{path}: written with other training settings ({first}: {state['settings'].get(first)!r} there, "
                f"{settings.get(first)!r} now); delete it to start over"
            )
        if self.load_extra_state is not None:
            self.load_extra_state(state["extra"])
        return state

    def last_epoch(self) -> int | None:
        """The last finished epoch the file holds (``None``: no file), restoring nothing;
        refuses, in one line, a file that is not an epoch checkpoint."""
        state = self._read()
        return None if state is None else int(state["epoch"])

    def _read(self) -> dict[str, Any] | None:
        path = Path(self.path)
        if not path.exists():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated or foreign file: say which one
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CheckpointMismatchError(f"{path}: not a readable epoch checkpoint ({reason})") from exc
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise CheckpointMismatchError(f"{path}: not an epoch checkpoint of format {FORMAT}; delete it to start over")
        return state
