"""Settings objects: one dataclass style for every configurable part.

Each settings object converts to and from a plain ``dict`` of built-in types, which is
how it is stored in checkpoints (loadable weights-only) and printed in model cards.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from dataclasses import dataclass, fields
from typing import Any, TypeVar

T = TypeVar("T", bound="SettingsBase")


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _bounds(low: float, high: float, low_open: bool, high_open: bool) -> str:
    """`` > 0``, `` in [0, 1)`` and the like (empty without bounds)."""
    if math.isinf(low) and math.isinf(high):
        return ""
    if math.isinf(high):
        return f" {'>' if low_open else '>='} {low:g}"
    if math.isinf(low):
        return f" {'<' if high_open else '<='} {high:g}"
    return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


_LITERAL_FIELDS: dict[type, tuple[tuple[str, tuple[Any, ...]], ...]] = {}


def _literal_fields(cls: type) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """``(name, allowed values)`` of the fields of ``cls`` typed ``Literal[...]`` (cached)."""
    if cls not in _LITERAL_FIELDS:
        hints = typing.get_type_hints(cls)
        _LITERAL_FIELDS[cls] = tuple(
            (f.name, typing.get_args(hints[f.name]))
            for f in fields(cls)
            if typing.get_origin(hints[f.name]) is typing.Literal
        )
    return _LITERAL_FIELDS[cls]


class SettingsBase:
    """Shared validation and dict conversion of the settings dataclasses.

    On construction every field typed ``Literal[...]`` is checked against its values,
    then :meth:`validate` (overridden by subclasses) checks the rest; every problem is a
    one-line ``ValueError`` naming ``Class.field`` and the value.
    """

    def __post_init__(self) -> None:
        for name, allowed in _literal_fields(type(self)):
            value = getattr(self, name)
            if value not in allowed:
                raise self._invalid(name, f"one of {list(allowed)}")
        self.validate()

    def validate(self) -> None:
        """Check field values beyond their ``Literal`` types (subclasses override)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

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

    def _invalid(self, name: str, expected: str) -> ValueError:
        value = getattr(self, name)
        return ValueError(f"{type(self).__name__}.{name} must be {expected}, got {value!r}")

    def _require_int(self, *names: str, least: int = 0, optional: bool = False) -> None:
        """Each of ``names`` is an integer ``>= least`` (or ``None`` when ``optional``)."""
        for name in names:
            value = getattr(self, name)
            if optional and value is None:
                continue
            if not _is_int(value) or value < least:
                raise self._invalid(name, f"an integer >= {least}" + (" or None" if optional else ""))

    def _require_number(
        self, *names: str, low: float = -math.inf, high: float = math.inf,
        low_open: bool = False, high_open: bool = False, optional: bool = False,
    ) -> None:
        """Each of ``names`` is a finite number in the interval ``low .. high`` (or ``None``
        with ``optional``)."""
        for name in names:
            value = getattr(self, name)
            if optional and value is None:
                continue
            ok = _is_real(value) and math.isfinite(value)
            ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
            if not ok:
                raise self._invalid(name, "a finite number" + _bounds(low, high, low_open, high_open))

    def _require_bool(self, *names: str, optional: bool = False) -> None:
        """Each of ``names`` is ``True`` or ``False`` (or ``None`` when ``optional``)."""
        for name in names:
            value = getattr(self, name)
            if not (value is True or value is False or (optional and value is None)):
                raise self._invalid(name, "True or False" + (" or None" if optional else ""))

@dataclass(frozen=True)
class GraphSettings(SettingsBase):
    """How a crystal becomes a CrysGNN graph (the released CrysGNN's featurisation)."""

    radius: float = 8.0
    """Neighbour search radius in Å, periodic images included."""
    max_neighbors: int = 12
    """Neighbours kept per atom, nearest first."""
    pad: bool = True
    """Pad atoms with fewer than ``max_neighbors`` neighbours with edges from atom 0 at
    distance ``radius + 1`` (the reference behaviour)."""
    gaussian_start: float = 0.0
    """First centre of the Gaussian distance expansion (inclusive grid)."""
    gaussian_stop: float = 8.0
    """Last centre of the Gaussian distance expansion (inclusive)."""
    gaussian_step: float = 0.2
    """Spacing of the Gaussian centres."""
    gaussian_width: float = 0.2
    """Width ``σ`` in ``exp(-(d - μ)² / σ²)``."""
    tie_decimals: int = 6
    """Distances are compared at this many decimals when ordering neighbours, so that
    equal distances tie deterministically."""

    def validate(self) -> None:
        self._require_number("radius", "gaussian_step", "gaussian_width", low=0.0, low_open=True)
        self._require_int("max_neighbors", least=1)
        self._require_int("tie_decimals", least=0)
        self._require_bool("pad")
        self._require_number("gaussian_start")
        self._require_number("gaussian_stop", low=self.gaussian_start, low_open=True)

    @property
    def pad_distance(self) -> float:
        return self.radius + 1.0

    @property
    def num_gaussians(self) -> int:
        span = self.gaussian_stop - self.gaussian_start
        return int(round(span / self.gaussian_step)) + 1


@dataclass(frozen=True)
class ModelSettings(SettingsBase):
    """CrysGNN architecture."""

    atom_input_dim: int = 92
    """Width of the atom feature table (92 for CGCNN features)."""
    hidden_dim: int = 64
    """Width of the atom embeddings (64 in the release)."""
    num_conv: int = 5
    """Number of CGCNN convolution layers (5 in the release); the last one's output,
    L2-normalised, is the per-atom embedding a student distils."""
    num_connectivity_classes: int = 6
    """Classes of the connectivity target (0..5)."""
    num_space_groups: int = 230
    """Classes of the space-group head."""
    contrastive_projection: bool = False
    """Add a linear projection before NT-Xent; the released model applies NT-Xent to the
    pooled graph vector directly (``False``)."""

    def validate(self) -> None:
        self._require_int("atom_input_dim", "hidden_dim", "num_conv", least=1)
        self._require_int("num_connectivity_classes", "num_space_groups", least=2)
        self._require_bool("contrastive_projection")
