"""Build CrysGNN graphs (DGL) from crystal structures, one at a time or in batches."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from pymatgen.core import Structure

from ..backend import dgl
from ..config import GraphSettings
from .atom_features import atom_features
from .errors import StructureError
from .labels import CrystalLabels, connectivity_targets, crystal_labels
from .neighbors import NeighborTable, neighbor_table
from .structures import (
    DEFAULT_MIN_DISTANCE,
    describe,
    to_structure,
    validate_cell,
    validate_structure,
)

DEFAULT_SETTINGS = GraphSettings()


def graph_from_arrays(
    atom_features: np.ndarray,
    frac_coords: np.ndarray,
    lattice: np.ndarray,
    settings: GraphSettings = DEFAULT_SETTINGS,
    structure_id: str = "structure",
    atomic_numbers: np.ndarray | None = None,
    min_distance: float = DEFAULT_MIN_DISTANCE,
) -> dgl.DGLGraph:
    """CrysGNN multigraph from raw arrays (what a predictor's batch carries).

    Nodes follow the given atom order and carry ``atom_features``, ``frac_coords``, the
    crystal's ``lattice`` (a ``(3, 3)`` copy per node, rows = lattice vectors, so that it
    survives batching; teachers that read structures use it) and ``atomic_number`` when given. Edges run neighbour → centre, grouped by centre
    (node order) and nearest first, and carry ``distance`` (Å), ``image`` (periodic image
    of the neighbour) and ``padding`` (True for pad slots).
    Raises :class:`StructureError` naming ``structure_id`` for a singular or non-finite
    cell, non-finite coordinates, or overlapping sites.
    """
    validate_cell(lattice, frac_coords, structure_id)
    if len(atom_features) != len(frac_coords):
        raise StructureError(
            structure_id,
            f"{len(atom_features)} atom feature rows for {len(frac_coords)} sites",
        )
    table = neighbor_table(lattice, frac_coords, settings, structure_id, min_distance=min_distance)
    return graph_from_table(table, atom_features, frac_coords, lattice, settings.pad, atomic_numbers)


def graph_from_table(
    table: NeighborTable,
    atom_features: np.ndarray,
    frac_coords: np.ndarray,
    lattice: np.ndarray,
    pad: bool,
    atomic_numbers: np.ndarray | None = None,
) -> dgl.DGLGraph:
    """The DGL graph of a neighbour table (see :func:`graph_from_arrays` for its data):
    the one place edges are made, for single crystals and for the pre-training cache's
    batches (whose tables hold several crystals, ``lattice`` then being one per node).

    ``lattice`` is ``(3, 3)`` or ``(num_atoms, 3, 3)``; ``pad=False`` drops pad slots.
    """
    num_atoms, k = table.index.shape
    dst = np.repeat(np.arange(num_atoms, dtype=np.int64), k)
    keep = np.ones(num_atoms * k, dtype=bool) if pad else table.real.ravel()
    src = table.index.ravel()[keep].astype(np.int64)
    graph = dgl.graph((torch.from_numpy(src), torch.from_numpy(dst[keep])), num_nodes=num_atoms)
    if atomic_numbers is not None:
        graph.ndata["atomic_number"] = torch.as_tensor(atomic_numbers, dtype=torch.int64)
    graph.ndata["atom_features"] = torch.as_tensor(atom_features, dtype=torch.float32)
    graph.ndata["frac_coords"] = torch.as_tensor(frac_coords, dtype=torch.float32)
    cells = np.broadcast_to(np.asarray(lattice, dtype=np.float32).reshape(-1, 3, 3), (num_atoms, 3, 3))
    graph.ndata["lattice"] = torch.from_numpy(cells.copy())
    graph.edata["distance"] = torch.from_numpy(table.distance.ravel()[keep].astype(np.float32))
    graph.edata["image"] = torch.from_numpy(table.image.reshape(-1, 3)[keep].astype(np.float32))
    graph.edata["padding"] = torch.from_numpy(~table.real.ravel()[keep])
    return graph


def graph_from_structure(
    structure: Structure,
    settings: GraphSettings = DEFAULT_SETTINGS,
    structure_id: str = "structure",
    min_distance: float = DEFAULT_MIN_DISTANCE,
) -> dgl.DGLGraph:
    """CrysGNN multigraph of a validated pymatgen structure (see :func:`graph_from_arrays`)."""
    numbers = validate_structure(structure, structure_id)
    return graph_from_arrays(
        atom_features(numbers),
        structure.frac_coords,
        structure.lattice.matrix,
        settings,
        structure_id,
        atomic_numbers=numbers,
        min_distance=min_distance,
    )


def build_graph(
    item: Any,
    settings: GraphSettings = DEFAULT_SETTINGS,
    structure_id: str | None = None,
    with_labels: bool = False,
) -> dgl.DGLGraph | tuple[dgl.DGLGraph, dict[str, torch.Tensor]]:
    """Graph of one crystal given as a Structure, jarvis/ASE Atoms, CIF path or CIF text.

    With ``with_labels=True`` returns ``(graph, labels)`` where ``labels`` holds
    ``space_group`` (0..229), ``crystal_system`` (0..6) and ``connectivity`` (N×N, 0..5).
    Raises :class:`StructureError` naming ``structure_id`` (or a description of the item).
    """
    sid = structure_id if structure_id is not None else describe(item)
    structure = to_structure(item, sid)
    graph = graph_from_structure(structure, settings, sid)
    if not with_labels:
        return graph
    return graph, graph_labels(graph, structure, sid)


def graph_labels(graph: dgl.DGLGraph, structure: Structure, structure_id: str) -> dict[str, torch.Tensor]:
    """Pre-training labels of a single (unbatched) graph built from ``structure``."""
    symmetry: CrystalLabels = crystal_labels(structure, structure_id)
    num_atoms = graph.num_nodes()
    src, dst = graph.edges()
    matrix = connectivity_targets(src, dst, torch.tensor([num_atoms])).view(num_atoms, num_atoms)
    return {
        "space_group": torch.tensor(symmetry.space_group),
        "crystal_system": torch.tensor(symmetry.crystal_system),
        "connectivity": matrix,
    }


@dataclass
class BuildReport:
    """Outcome of a batch build: graphs and ids of the structures that worked, and the
    ``(id, reason)`` of every item that was skipped."""

    graphs: list = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    labels: list[dict[str, torch.Tensor]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        text = f"built {len(self.graphs)} graph(s), skipped {len(self.skipped)}"
        return text + "".join(f"\n  skipped {sid}: {why}" for sid, why in self.skipped)


def build_graphs(
    items: Iterable[Any],
    settings: GraphSettings = DEFAULT_SETTINGS,
    ids: Iterable[str] | None = None,
    with_labels: bool = False,
    on_error: str = "skip",
) -> BuildReport:
    """Build graphs for many crystals; bad items are skipped and reported (or raised).

    Args:
        items: structures in any form :func:`build_graph` accepts.
        ids: one name per item (default: a description of each item, with its position);
            a count that differs from the items' is refused before anything is built.
        on_error: ``"skip"`` (record and continue) or ``"raise"``.
    """
    if on_error not in {"skip", "raise"}:
        raise ValueError(f"on_error must be 'skip' or 'raise', not {on_error!r}")
    names: list[str] | None = None
    if ids is not None:
        items = items if isinstance(items, Sequence) else list(items)
        names = [str(name) for name in ids]
        if len(names) != len(items):
            raise ValueError(
                f"build_graphs: {len(names)} id(s) for {len(items)} item(s); pass one id per "
                "item, or ids=None to name items by position"
            )
    report = BuildReport()
    for position, item in enumerate(items):
        sid = names[position] if names is not None else f"#{position} {describe(item)}"
        try:
            result = build_graph(item, settings, structure_id=sid, with_labels=with_labels)
        except StructureError as exc:
            if on_error == "raise":
                raise
            report.skipped.append((sid, exc.reason))
            continue
        if with_labels:
            graph, labels = result
            report.labels.append(labels)
        else:
            graph = result
        report.graphs.append(graph)
        report.ids.append(sid)
    return report
