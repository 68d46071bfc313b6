"""Vectorised k-nearest-neighbour tables with periodic images (pymatgen's neighbour list)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from pymatgen.optimization.neighbors import find_points_in_spheres

from ..config import GraphSettings
from .bounds import check_search_size
from .errors import StructureError
from .structures import DEFAULT_MIN_DISTANCE


class PaddingWarning(UserWarning):
    """Some atoms had fewer neighbours than requested and were padded."""


@dataclass(frozen=True)
class NeighborTable:
    """Neighbour slots of every atom, nearest first.

    ``index``, ``distance`` and ``image`` have shape ``(num_atoms, max_neighbors)`` (and
    ``(..., 3)`` for ``image``); ``real`` marks slots holding an actual neighbour (False
    for padding slots, which point to atom 0 at ``radius + 1``).
    """

    index: np.ndarray
    distance: np.ndarray
    image: np.ndarray
    real: np.ndarray

    @property
    def num_padded_atoms(self) -> int:
        return int((~self.real.all(axis=1)).sum())


def neighbor_table(
    lattice: np.ndarray,
    frac_coords: np.ndarray,
    settings: GraphSettings,
    structure_id: str,
    min_distance: float = DEFAULT_MIN_DISTANCE,
) -> NeighborTable:
    """Nearest ``settings.max_neighbors`` neighbours of each site within ``settings.radius``.

    ``lattice`` is the 3×3 matrix with lattice vectors as rows (Å), ``frac_coords`` the
    ``(N, 3)`` fractional coordinates; the crystal is periodic in all three directions.

    Neighbours are ordered by distance (compared at ``settings.tie_decimals`` decimals),
    ties broken by neighbour index and then periodic image, so the table is deterministic.
    Raises :class:`StructureError` if two sites are closer than ``min_distance`` Å, or
    (before searching) if the cell is too dense or too flat to search in bounded time
    (:func:`~crysgnn_dgl.graph.bounds.check_search_size`).
    """
    lattice = np.ascontiguousarray(lattice, dtype=float)
    cart = np.ascontiguousarray(np.asarray(frac_coords, dtype=float) @ lattice)
    num_atoms = cart.shape[0]
    check_search_size(lattice, num_atoms, settings.radius, min_distance, structure_id)
    k = settings.max_neighbors
    centers, neighbors, images, distances = find_points_in_spheres(
        cart, cart, r=settings.radius, pbc=np.ones(3, dtype=np.int64), lattice=lattice, tol=1e-8
    )
    not_self = ~((centers == neighbors) & (distances <= 1e-8))
    centers = centers[not_self].astype(np.int64)
    neighbors = neighbors[not_self].astype(np.int64)
    images, distances = images[not_self], distances[not_self]
    if distances.size and distances.min() < min_distance:
        where = int(np.argmin(distances))
        raise StructureError(
            structure_id,
            f"overlapping sites {centers[where]} and {neighbors[where]} "
            f"({distances[where]:.3f} Å apart, minimum {min_distance} Å)",
        )
    rounded = np.round(distances, settings.tie_decimals)
    order = np.lexsort(
        (images[:, 2], images[:, 1], images[:, 0], neighbors, rounded, centers)
    )
    centers, neighbors, images, distances = (
        centers[order], neighbors[order], images[order], distances[order],
    )
    counts = np.bincount(centers, minlength=num_atoms)
    group_start = np.cumsum(counts) - counts
    rank = np.arange(centers.size) - group_start[centers]
    keep = rank < k
    centers, neighbors, images, distances, rank = (
        centers[keep], neighbors[keep], images[keep], distances[keep], rank[keep],
    )

    index = np.zeros((num_atoms, k), dtype=np.int64)
    distance = np.full((num_atoms, k), settings.pad_distance, dtype=np.float64)
    image = np.zeros((num_atoms, k, 3), dtype=np.float64)
    real = np.zeros((num_atoms, k), dtype=bool)
    index[centers, rank] = neighbors
    distance[centers, rank] = distances
    image[centers, rank] = images
    real[centers, rank] = True
    table = NeighborTable(index=index, distance=distance, image=image, real=real)
    if table.num_padded_atoms:
        isolated = int((~real.any(axis=1)).sum())
        detail = f", {isolated} with none" if isolated else ""
        action = "padded as the reference CrysGNN does" if settings.pad else "left unpadded"
        warnings.warn(
            f"structure {structure_id!r}: {table.num_padded_atoms} atom(s) have fewer than "
            f"{k} neighbours within {settings.radius} Å{detail}; {action}",
            PaddingWarning,
            stacklevel=3,
        )
    return table
