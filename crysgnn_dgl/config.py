"""Settings objects: one dataclass style for every configurable part.

Each settings object converts to and from a plain ``dict`` of built-in types, which is
how it is stored in checkpoints (loadable weights-only) and printed in model cards.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, fields
from typing import Any, TypeVar

T = TypeVar("T", bound="SettingsBase")


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class SettingsBase:
    """Shared dict conversion for the settings dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[T], values: dict[str, Any]) -> T:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown setting(s) {unknown}")
        return cls(**values)

    def differences(self, other: SettingsBase) -> dict[str, tuple[Any, Any]]:
        """Fields whose values differ between ``self`` and ``other``: name -> (self, other)."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {k: (mine[k], theirs.get(k)) for k in mine if mine[k] != theirs.get(k)}


@dataclass(frozen=True)
class GraphSettings(SettingsBase):
    """How a crystal becomes a CrysGNN graph (the released CrysGNN's featurisation).

    Attributes:
        radius: neighbour search radius in Å, periodic images included.
        max_neighbors: neighbours kept per atom, nearest first.
        pad: pad atoms with fewer than ``max_neighbors`` neighbours with edges from
            atom 0 at distance ``radius + 1`` (the reference behaviour).
        gaussian_start, gaussian_stop, gaussian_step: centres of the Gaussian distance
            expansion (inclusive grid).
        gaussian_width: width ``σ`` in ``exp(-(d - μ)² / σ²)``.
        tie_decimals: distances are compared at this many decimals when ordering
            neighbours, so that equal distances tie deterministically.
    """

    radius: float = 8.0
    max_neighbors: int = 12
    pad: bool = True
    gaussian_start: float = 0.0
    gaussian_stop: float = 8.0
    gaussian_step: float = 0.2
    gaussian_width: float = 0.2
    tie_decimals: int = 6

    def __post_init__(self) -> None:
        for name in ("radius", "gaussian_step", "gaussian_width"):
            value = getattr(self, name)
            if not _is_real(value) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"GraphSettings.{name} must be a finite number > 0, got {value!r}")
        for name, least in (("max_neighbors", 1), ("tie_decimals", 0)):
            value = getattr(self, name)
            if not _is_real(value) or not isinstance(value, numbers.Integral) or value < least:
                raise ValueError(f"GraphSettings.{name} must be an integer >= {least}, got {value!r}")
        if self.pad not in (True, False):
            raise ValueError(f"GraphSettings.pad must be True or False, got {self.pad!r}")
        start, stop = self.gaussian_start, self.gaussian_stop
        if not (_is_real(start) and _is_real(stop) and math.isfinite(start) and math.isfinite(stop)) or stop <= start:
            raise ValueError(
                f"GraphSettings.gaussian_stop ({stop!r}) must be finite and above gaussian_start ({start!r})"
            )

    @property
    def pad_distance(self) -> float:
        return self.radius + 1.0

    @property
    def num_gaussians(self) -> int:
        span = self.gaussian_stop - self.gaussian_start
        return int(round(span / self.gaussian_step)) + 1


@dataclass(frozen=True)
class ModelSettings(SettingsBase):
    """CrysGNN architecture.

    Attributes:
        atom_input_dim: width of the atom feature table (92 for CGCNN features).
        hidden_dim: width of the atom embeddings (64 in the release).
        num_conv: number of CGCNN convolution layers.
        num_connectivity_classes: classes of the connectivity target (0..5).
        num_space_groups: classes of the space-group head.
        contrastive_projection: add a linear projection before NT-Xent; the released
            model applies NT-Xent to the pooled graph vector directly (``False``).
    """

    atom_input_dim: int = 92
    hidden_dim: int = 64
    num_conv: int = 5
    num_connectivity_classes: int = 6
    num_space_groups: int = 230
    contrastive_projection: bool = False
