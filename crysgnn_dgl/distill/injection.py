"""Adding ``λ·KD`` to a loss the student's loop computes, through the backward pass.

The forward hook returns the hooked tensor wrapped in :class:`InjectKD`. Its forward is
the identity; its backward passes the incoming gradient through unchanged and, the first
time only, also seeds ``λ`` (times the loss scale of a registered ``GradScaler``) into the
separately computed KD scalar, so autograd adds ``λ·∇KD`` to every parameter the KD term
depends on (student layers up to the hooked one, and the projection head).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch


@dataclass
class StepState:
    """One training forward's KD term and what happened to it.

    Attributes:
        kd: KD scalar (with autograd history) of this forward.
        weight: ``λ``.
        scale: returns the loss-scale factor the loop applied before ``backward()``.
        injected: the backward pass has seeded ``λ·KD`` already (never twice).
        explicit: ``hook.kd_loss()`` was taken for this step; the backward seeds nothing.
        armed: the student's forward has returned. Backward passes run *inside* the
            forward (e.g. ALIGNNAtomWise computing forces with ``torch.autograd.grad``)
            pass through without the KD seed, so they are not contaminated by it.
        on_inject: called once, with this state, when the KD gradient is seeded.
    """

    kd: torch.Tensor
    weight: float
    scale: Callable[[], float] = lambda: 1.0
    injected: bool = False
    explicit: bool = False
    armed: bool = False
    on_inject: Callable[[StepState], None] | None = field(default=None, repr=False)


class InjectKD(torch.autograd.Function):
    """Identity on ``hooked``; backward seeds ``λ·scale`` into ``kd`` once per forward."""

    @staticmethod
    def forward(ctx, hooked: torch.Tensor, kd: torch.Tensor, state: StepState) -> torch.Tensor:
        ctx.state = state
        ctx.kd_meta = (kd.dtype, kd.device)
        return hooked.view_as(hooked)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        state: StepState = ctx.state
        dtype, device = ctx.kd_meta
        if state.injected or state.explicit or not state.armed:
            seed = torch.zeros((), dtype=dtype, device=device)
        else:
            state.injected = True
            seed = torch.full((), state.weight * float(state.scale()), dtype=dtype, device=device)
            if state.on_inject is not None:
                state.on_inject(state)
        return grad_output, seed, None


def inject(hooked: torch.Tensor, state: StepState) -> torch.Tensor:
    """``hooked`` unchanged in value, carrying ``state``'s KD term into the backward pass."""
    return InjectKD.apply(hooked, state.kd, state)
