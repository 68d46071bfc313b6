"""Turn a pre-training checkpoint into a compact, shippable teacher file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import model_from_checkpoint, save_checkpoint


def export_teacher(
    source: str | os.PathLike, destination: str | os.PathLike, extra: dict[str, Any] | None = None
) -> Path:
    """Copy ``source``'s weights (float32; integer buffers kept) and its training record,
    minus machine-specific paths, to ``destination`` in the versioned format."""
    model, checkpoint = model_from_checkpoint(source)
    model = model.to(torch.float32)
    training = {k: v for k, v in checkpoint.training.items() if k != "cache"}
    training.update(extra or {})
    return save_checkpoint(destination, model, training)
