"""Pre-training labels: space group, crystal system and the connectivity target."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from .errors import StructureError

CRYSTAL_SYSTEMS = (
    "triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic",
)
MAX_CONNECTIVITY = 5  # slot counts above this share the last class


@dataclass(frozen=True)
class CrystalLabels:
    """Graph-level labels: space group number − 1 (0..229), crystal system index (0..6)."""

    space_group: int
    crystal_system: int


def crystal_labels(
    structure: Structure, structure_id: str, symprec: float = 0.01, angle_tolerance: float = 5.0
) -> CrystalLabels:
    """Space group and crystal system from spglib (pymatgen's defaults, as the release)."""
    try:
        analyzer = SpacegroupAnalyzer(structure, symprec=symprec, angle_tolerance=angle_tolerance)
        number = analyzer.get_space_group_number()
        system = analyzer.get_crystal_system()
    except Exception as exc:
        raise StructureError(structure_id, f"symmetry analysis failed: {exc}") from exc
    return CrystalLabels(space_group=int(number) - 1, crystal_system=CRYSTAL_SYSTEMS.index(system))


def pair_index(batch_num_nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All ordered atom pairs ``(i, j)`` *within* each crystal of a batch, as global node ids.

    Pairs are listed crystal by crystal, row-major (i slow, j fast).
    """
    n = batch_num_nodes.to(torch.int64)
    node_offset = torch.cumsum(n, 0) - n
    pairs_per_graph = n * n
    graph_of_pair = torch.repeat_interleave(torch.arange(n.numel(), device=n.device), pairs_per_graph)
    pair_offset = torch.cumsum(pairs_per_graph, 0) - pairs_per_graph
    local = torch.arange(int(pairs_per_graph.sum()), device=n.device) - pair_offset[graph_of_pair]
    size = n[graph_of_pair]
    base = node_offset[graph_of_pair]
    return base + local // size, base + local % size


def connectivity_targets(
    src: torch.Tensor, dst: torch.Tensor, batch_num_nodes: torch.Tensor, cap: int = MAX_CONNECTIVITY
) -> torch.Tensor:
    """Connectivity class of every pair from :func:`pair_index`, counted from graph edges.

    Edges run neighbour → centre, so pair (i, j) counts edges with ``dst == i, src == j``.
    """
    n = batch_num_nodes.to(torch.int64)
    node_offset = torch.cumsum(n, 0) - n
    pair_offset = torch.cumsum(n * n, 0) - n * n
    graph_of_node = torch.repeat_interleave(torch.arange(n.numel(), device=n.device), n)
    g = graph_of_node[dst]
    local_i = dst - node_offset[g]
    local_j = src - node_offset[g]
    pair = pair_offset[g] + local_i * n[g] + local_j
    counts = torch.bincount(pair, minlength=int((n * n).sum()))
    return counts.clamp(max=cap)
