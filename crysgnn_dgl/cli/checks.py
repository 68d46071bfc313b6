"""Checks of command-line options made before a command reads or writes anything."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UsageError


def require_at_least(name: str, value: int | float | None, least: int | float) -> None:
    """``--name`` must be ``>= least`` (``None``: not given, fine)."""
    if value is not None and value < least:
        raise UsageError(f"{name} must be >= {least}, got {value}")


def require_fraction(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise UsageError(f"{name} must be in [0, 1), got {value}")


def require_device(name: str, option: str = "--device") -> None:
    """A torch device that exists on this machine (``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise UsageError(f"{option} {name!r} is not a device name (e.g. cpu, cuda, cuda:1): {error}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(
                f"{option} {name}: CUDA is not available on this machine (torch {torch.__version__}); "
                f"use {option} cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"{option} {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"{option} {name}: MPS is not available on this machine; use {option} cpu")


def require_accelerator(name: str) -> None:
    """A Lightning accelerator that exists here (``auto`` and ``cpu`` always do)."""
    aliases = {"gpu": "cuda", "cuda": "cuda", "mps": "mps"}
    if name in aliases:
        require_device(aliases[name], "--accelerator")


def require_inputs(paths: list[str]) -> None:
    """Every input path exists (all named at once)."""
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise UsageError(f"input(s) not found: {', '.join(missing)}; check the path(s)")


def require_writable_folder(folder: Path, option: str) -> None:
    """``folder`` exists or can be created, and files can be written into it."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {folder}: a file is in the way (a folder is needed)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"{option} {folder}: cannot create the folder ({error.strerror or error})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {folder}: the folder is not writable")
