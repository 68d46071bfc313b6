"""Barlow Twins loss (Zbontar et al., ICML 2021) between two views of the same items."""

from __future__ import annotations

import torch


def batch_standardise(features: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``(z − mean) / sqrt(var + eps)`` per feature over the batch (biased variance), i.e.
    ``BatchNorm1d(affine=False)`` in training mode, as the reference implementation."""
    centred = features - features.mean(dim=0, keepdim=True)
    return centred / torch.sqrt(centred.pow(2).mean(dim=0, keepdim=True) + eps)


def barlow_twins_loss(first: torch.Tensor, second: torch.Tensor, off_diagonal_weight: float) -> torch.Tensor:
    """``Σ_i (1 − c_ii)² + λ Σ_{i≠j} c_ij²`` for the cross-correlation ``c = z₁ᵀ z₂ / B``
    of the batch-standardised views ``z₁, z₂`` (rows: the ``B`` items, columns: features).

    MMPT's Eq. 11 writes the off-diagonal term without the square; this is the standard
    (squared) form of the Barlow Twins paper. Computed in float32 at least.
    """
    dtype = torch.promote_types(first.dtype, torch.float32)
    z1, z2 = batch_standardise(first.to(dtype)), batch_standardise(second.to(dtype))
    correlation = z1.T @ z2 / first.shape[0]
    diagonal = torch.diagonal(correlation)
    off_diagonal = correlation.pow(2).sum() - diagonal.pow(2).sum()
    return (1.0 - diagonal).pow(2).sum() + off_diagonal_weight * off_diagonal
