"""The KD objective between projected student rows and teacher rows: target
standardisation, the per-atom loss, and the shuffled-target control."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class TargetStatistics:
    """Per-dimension mean and standard deviation of teacher rows, accumulated over the
    crystals given to :meth:`DistillHook.warm` (float64 sums, so the order of batches
    changes the result only at rounding level)."""

    def __init__(self) -> None:
        self._count = 0
        self._sum: torch.Tensor | None = None
        self._square: torch.Tensor | None = None
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None

    def update(self, rows: torch.Tensor) -> None:
        rows = rows.detach().to(torch.float64).cpu()
        if self._sum is None:
            self._sum = torch.zeros(rows.shape[1], dtype=torch.float64)
            self._square = torch.zeros_like(self._sum)
        assert self._square is not None  # set together with _sum
        self._sum += rows.sum(dim=0)
        self._square += rows.pow(2).sum(dim=0)
        self._count += rows.shape[0]

    def finish(self, floor: float = 1e-6) -> None:
        """Fix ``mean`` and ``std`` from everything seen (``std`` at least ``floor``)."""
        if not self._count:
            raise ValueError("no teacher rows were seen: warm() received no crystals")
        assert self._sum is not None and self._square is not None  # set by update()
        mean = self._sum / self._count
        variance = (self._square / self._count - mean.pow(2)).clamp_min(0.0)
        self.mean, self.std = mean.float(), variance.sqrt().clamp_min(floor).float()

    @property
    def ready(self) -> bool:
        return self.mean is not None

    def apply(self, rows: torch.Tensor) -> torch.Tensor:
        assert self.mean is not None and self.std is not None
        return (rows - self.mean.to(rows.device, rows.dtype)) / self.std.to(rows.device, rows.dtype)


def per_atom_loss(projected: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """``(N,)`` loss of each atom: mean squared difference over dimensions, or ``1 − cos``."""
    if kind == "cosine":
        return 1.0 - F.cosine_similarity(projected, target, dim=1, eps=1e-8)
    return (projected - target).pow(2).mean(dim=1)


def shuffled_rows(target: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The rows of ``target`` in a random order (a permutation drawn from ``generator``)."""
    order = torch.randperm(target.shape[0], generator=generator)
    return target[order.to(target.device)]
