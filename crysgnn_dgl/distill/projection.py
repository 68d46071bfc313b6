"""Projection heads from the student's per-atom width to the teacher's."""

from __future__ import annotations

from torch import nn


def make_projection(kind: str, student_dim: int | None, teacher_dim: int, hidden: int = 128) -> nn.Module:
    """``"identity"`` (equal widths only), ``"linear"`` or ``"mlp"`` head; ``student_dim=None`` defers the input width to the
    first forward (lazy layers), for students whose width is known only then."""

    def first(out_features: int) -> nn.Module:
        if student_dim is None:
            return nn.LazyLinear(out_features)
        return nn.Linear(student_dim, out_features)

    if kind == "identity":
        if student_dim is not None and student_dim != teacher_dim:
            raise ValueError(
                f"projection 'identity' needs the student's width ({student_dim}) to equal the "
                f"teacher's ({teacher_dim}); use 'linear' or 'mlp'"
            )
        return nn.Identity()
    if kind == "linear":
        return first(teacher_dim)
    if kind == "mlp":
        return nn.Sequential(first(hidden), nn.SiLU(), nn.Linear(hidden, teacher_dim))
    raise ValueError(f"unknown projection {kind!r}; use 'identity', 'linear' or 'mlp'")
