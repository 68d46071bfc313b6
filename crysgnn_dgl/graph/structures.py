"""Turn the crystal inputs users have into validated pymatgen ``Structure`` objects.

Accepted: pymatgen ``Structure``, a pymatgen structure dict (``Structure.as_dict()``, as
JSON tables hold them), jarvis ``Atoms``, ASE ``Atoms``, a path to a CIF file, or CIF
text. This is the one parser of every reader and command (CIFs are read with
``merge_tol=0``: sites are never merged). Every failure is a :class:`StructureError`
naming the item.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

from .atom_features import max_atomic_number
from .errors import StructureError

MIN_VOLUME_PER_ATOM = 1e-3  # Å³; below this a lattice is treated as degenerate
DEFAULT_MIN_DISTANCE = 0.5  # Å; closer sites are reported as overlapping


def _looks_like_cif_text(text: str) -> bool:
    """Multi-line text is CIF text; a single line is a file path (CIF needs several lines,
    a path never contains a line break)."""
    return "\n" in text or "\r" in text


def describe(item: Any) -> str:
    """A short, human-readable name for an input item, used when no id is given."""
    if isinstance(item, os.PathLike) or (isinstance(item, str) and not _looks_like_cif_text(item)):
        return str(item)
    if isinstance(item, str):
        lines = [line.strip() for line in item.splitlines() if line.strip()]
        if not lines:
            return "<empty CIF text>"
        block = next((line for line in lines if line.startswith("data_")), lines[0])
        return f"CIF text {block[:60]}"
    if isinstance(item, Structure):
        return item.composition.reduced_formula
    return type(item).__name__


_GENERIC_CIF_NOTES = ("Issues encountered while parsing CIF", "No structure parsed for section")


def _cif_notes(caught: list[warnings.WarningMessage]) -> list[str]:
    """pymatgen's specific reasons (occupancy, singular cell, ...) from its parser warnings."""
    notes: list[str] = []
    for warning in caught:
        for line in str(warning.message).splitlines():
            line = line.strip()
            if line and not line.startswith(_GENERIC_CIF_NOTES) and line not in notes:
                notes.append(line[:200])
    return notes


def _parse_cif(text: str, structure_id: str) -> Structure:
    if not text.strip():
        raise StructureError(structure_id, "empty CIF")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return Structure.from_str(text, fmt="cif", merge_tol=0.0)
        except Exception as exc:  # pymatgen raises many types for malformed CIFs
            error = exc
    notes = _cif_notes(caught)
    detail = f"; {'; '.join(notes[:3])}" if notes else ""
    raise StructureError(structure_id, f"malformed CIF ({type(error).__name__}: {error}{detail})") from error


def _from_dict(item: dict, structure_id: str) -> Structure:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Structure.from_dict(item)
    except Exception as exc:  # any malformed dict is reported by id
        raise StructureError(
            structure_id, f"not a pymatgen structure dict ({type(exc).__name__}: {exc})"
        ) from exc


def to_structure(item: Any, structure_id: str | None = None) -> Structure:
    """Convert one input item to a pymatgen ``Structure`` (not yet validated)."""
    sid = structure_id if structure_id is not None else describe(item)
    if isinstance(item, Structure):
        return item
    if isinstance(item, dict):
        return _from_dict(item, sid)
    if isinstance(item, (str, os.PathLike)):
        text = str(item)
        if isinstance(item, str) and _looks_like_cif_text(text):
            return _parse_cif(text, sid)
        if not text.strip():
            raise StructureError(sid, "empty CIF")
        path = Path(text)
        try:
            content = path.read_text(errors="replace")
        except FileNotFoundError:
            raise StructureError(sid, "not an existing CIF file nor CIF text") from None
        except OSError as exc:
            raise StructureError(sid, f"cannot read CIF file ({exc.strerror or exc})") from exc
        return _parse_cif(content, sid)
    module = type(item).__module__
    if module.startswith("jarvis"):
        try:
            return item.pymatgen_converter()
        except Exception as exc:
            raise StructureError(sid, f"cannot convert jarvis Atoms: {exc}") from exc
    if module.startswith("ase"):
        from pymatgen.io.ase import AseAtomsAdaptor

        try:
            return AseAtomsAdaptor.get_structure(item)
        except Exception as exc:
            raise StructureError(sid, f"cannot convert ASE Atoms: {exc}") from exc
    raise StructureError(
        sid,
        f"unsupported input type {type(item).__name__}; expected a pymatgen Structure or "
        "structure dict, jarvis Atoms, ASE Atoms, a CIF path or CIF text",
    )


def validate_cell(lattice: Any, frac_coords: Any, structure_id: str) -> None:
    """Check a periodic cell given as arrays: finite 3×3 lattice with non-zero volume and
    finite ``(N, 3)`` fractional coordinates, N ≥ 1. Raises :class:`StructureError`."""
    matrix = np.asarray(lattice, dtype=float)
    frac = np.asarray(frac_coords, dtype=float)
    if matrix.shape != (3, 3):
        raise StructureError(structure_id, f"lattice must be 3×3, got shape {matrix.shape}")
    if frac.ndim != 2 or frac.shape[1] != 3 or frac.shape[0] == 0:
        raise StructureError(structure_id, f"coordinates must be (N ≥ 1, 3), got shape {frac.shape}")
    if not np.all(np.isfinite(matrix)):
        raise StructureError(structure_id, "lattice contains NaN or infinite values")
    volume = abs(float(np.linalg.det(matrix)))
    if not np.isfinite(volume) or volume < MIN_VOLUME_PER_ATOM * len(frac):
        raise StructureError(structure_id, f"zero-volume or singular lattice (volume {volume:.3g} Å³)")
    if not np.all(np.isfinite(frac)):
        bad = sorted(set(np.nonzero(~np.isfinite(frac))[0].tolist()))
        raise StructureError(structure_id, f"NaN or infinite coordinates at site(s) {bad[:5]}")


def validate_structure(structure: Structure, structure_id: str) -> np.ndarray:
    """Check that ``structure`` can be featurised; return its atomic numbers.

    Raises :class:`StructureError` for: no sites, partial occupancy or disorder, elements
    outside the CGCNN atom table (Z = 1..100), non-finite coordinates or lattice, and a
    singular (zero-volume) lattice. Overlapping sites are checked by the neighbour search.
    """
    if len(structure) == 0:
        raise StructureError(structure_id, "structure has no sites")
    if not structure.is_ordered:
        disordered = [i for i, site in enumerate(structure) if not site.is_ordered]
        raise StructureError(
            structure_id,
            f"partial occupancy / disordered site(s) {disordered[:5]}: order the structure first "
            "(e.g. pymatgen's OrderDisorderedStructureTransformation)",
        )
    validate_cell(structure.lattice.matrix, structure.frac_coords, structure_id)
    numbers = []
    for index, site in enumerate(structure):
        specie = site.specie
        z = getattr(specie, "Z", None)
        if z is None or not 1 <= int(z) <= max_atomic_number():
            raise StructureError(
                structure_id,
                f"site {index} is {specie}: element outside the atom feature table "
                f"(Z = 1..{max_atomic_number()})",
            )
        numbers.append(int(z))
    return np.asarray(numbers, dtype=np.int64)
