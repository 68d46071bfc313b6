"""Where a module's parameters live: its device and floating-point dtype (lazy,
uninitialised parameters are skipped)."""

from __future__ import annotations

import torch
from torch import nn


def _initialised(module: nn.Module):
    return (p for p in module.parameters() if not isinstance(p, nn.parameter.UninitializedParameter))


def device_of(module: nn.Module) -> torch.device:
    """The device of ``module``'s first initialised parameter (CPU when it has none)."""
    return next((p.device for p in _initialised(module)), torch.device("cpu"))


def dtype_of(module: nn.Module) -> torch.dtype:
    """The dtype of ``module``'s first floating-point parameter (torch's default when none)."""
    return next((p.dtype for p in _initialised(module) if p.is_floating_point()), torch.get_default_dtype())
