"""Target normalisation (zero mean, unit standard deviation on the training targets)."""

from __future__ import annotations

import torch


class TargetNormalizer:
    """``(y - mean) / std`` with statistics taken from training targets."""

    def __init__(self, targets: torch.Tensor):
        targets = torch.as_tensor(targets, dtype=torch.float32)
        if targets.numel() == 0:
            raise ValueError("cannot normalise an empty set of targets")
        self.mean = targets.mean()
        std = targets.std() if targets.numel() > 1 else torch.tensor(0.0)
        self.std = std if float(std) > 0 else torch.tensor(1.0)

    def norm(self, values: torch.Tensor) -> torch.Tensor:
        return (values - self.mean.to(values)) / self.std.to(values)

    def denorm(self, values: torch.Tensor) -> torch.Tensor:
        return values * self.std.to(values) + self.mean.to(values)

    def state_dict(self) -> dict[str, float]:
        return {"mean": float(self.mean), "std": float(self.std)}
