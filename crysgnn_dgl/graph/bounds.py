"""Up-front bounds on the periodic neighbour search, so that a degenerate cell is refused
in microseconds instead of making the search enumerate millions of periodic images.

Two checks, both from the cell alone:

* **density**: ``N`` sites at least ``d`` apart need a volume of at least ``d³/√2`` each
  (the densest sphere packing), so a smaller volume per atom proves that sites overlap;
* **periodic images**: the search visits about ``N · Π_i (2⌈r / h_i⌉ + 1)`` atom images,
  ``h_i`` the perpendicular heights of the cell; a nearly flat cell makes this explode.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import StructureError

#: most atom images (atoms × periodic images) the neighbour search may visit; real
#: crystals need < 10⁴ (1 331 at most in 3 000 Materials Project cells at 8 Å)
MAX_ATOM_IMAGES = 10**8
AXES = ("a", "b", "c")


def perpendicular_heights(lattice: np.ndarray) -> np.ndarray:
    """Distance between consecutive lattice planes spanned by each pair of vectors:
    ``h_a = V / |b × c|`` and so on (Å)."""
    matrix = np.asarray(lattice, dtype=float)
    volume = abs(float(np.linalg.det(matrix)))
    areas = np.array([np.linalg.norm(np.cross(matrix[(i + 1) % 3], matrix[(i + 2) % 3])) for i in range(3)])
    return volume / np.maximum(areas, 1e-300)


def periodic_images(lattice: np.ndarray, radius: float) -> float:
    """Number of periodic images a search of ``radius`` Å around the cell visits."""
    heights = perpendicular_heights(lattice)
    return float(np.prod([2 * math.ceil(radius / h) + 1 for h in heights]))


def check_search_size(
    lattice: np.ndarray, num_atoms: int, radius: float, min_distance: float, structure_id: str
) -> None:
    """Raise :class:`StructureError` naming ``structure_id`` and the figure at fault when
    the cell is too dense (sites must overlap) or too flat (the search would not finish)."""
    matrix = np.asarray(lattice, dtype=float)
    volume = abs(float(np.linalg.det(matrix)))
    per_atom = volume / max(num_atoms, 1)
    densest = min_distance**3 / math.sqrt(2.0)
    if per_atom < densest:
        raise StructureError(
            structure_id,
            f"volume per atom {per_atom:.3g} Å³ is below {densest:.3g} Å³, the least that sites "
            f"{min_distance} Å apart need: sites overlap (check the lattice and coordinates)",
        )
    heights = perpendicular_heights(matrix)
    work = num_atoms * periodic_images(matrix, radius)
    if work > MAX_ATOM_IMAGES:
        axis = int(np.argmin(heights))
        raise StructureError(
            structure_id,
            f"near-flat cell: its lattice planes along {AXES[axis]} are {heights[axis]:.3g} Å apart, "
            f"so a {radius:g} Å neighbour search would visit {work:.3g} atom images "
            f"(limit {MAX_ATOM_IMAGES:.0e}); check the lattice vectors",
        )
