"""Temporarily change torch's intra-op thread count."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(count: int | None = None) -> Iterator[int]:
    """Run the block with ``count`` torch threads (``None``: every core of the machine),
    restoring the caller's setting afterwards; yields the count used."""
    used = count if count is not None else (os.cpu_count() or 1)
    if used < 1:
        raise ValueError(f"threads must be >= 1, got {count}")
    before = torch.get_num_threads()
    torch.set_num_threads(used)
    try:
        yield used
    finally:
        torch.set_num_threads(before)
