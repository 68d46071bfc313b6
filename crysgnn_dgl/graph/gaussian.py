"""Gaussian expansion of interatomic distances (the released CrysGNN's edge features)."""

from __future__ import annotations

import torch
from torch import nn

from ..config import GraphSettings


def gaussian_centers(settings: GraphSettings) -> torch.Tensor:
    """Centres ``start, start + step, ..., stop`` (41 for the default grid)."""
    steps = torch.arange(settings.num_gaussians, dtype=torch.float64)
    return (settings.gaussian_start + steps * settings.gaussian_step).to(torch.float32)


class GaussianExpansion(nn.Module):
    """``exp(-(d - μ_k)² / σ²)`` for every centre ``μ_k``; no trainable parameters."""

    centers: torch.Tensor  # registered buffer

    def __init__(self, settings: GraphSettings):
        super().__init__()
        self.width = settings.gaussian_width
        self.register_buffer("centers", gaussian_centers(settings), persistent=False)

    def forward(self, distance: torch.Tensor) -> torch.Tensor:
        diff = distance.unsqueeze(-1).to(self.centers.dtype) - self.centers
        return torch.exp(-(diff**2) / self.width**2)
