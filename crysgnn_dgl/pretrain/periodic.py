"""Periodic geometry of batched crystal graphs, as the pre-training objectives read it.

Graphs are those of :func:`crysgnn_dgl.graph.builder.graph_from_arrays`: nodes carry
``frac_coords`` and ``lattice`` (a ``(3, 3)`` copy per node, rows = lattice vectors),
edges run neighbour → centre and carry ``distance`` (Å), ``image`` (the periodic image of
the neighbour, in lattice vectors) and ``padding`` (True for pad slots, which are no
neighbour and take part in no loss).
"""

from __future__ import annotations

import torch

from ..backend import dgl


def require_fields(
    graph: dgl.DGLGraph, objective: str, ndata: tuple[str, ...] = (), edata: tuple[str, ...] = ()
) -> None:
    """Raise ``ValueError`` naming every node/edge field ``objective`` needs and lacks."""
    missing = [f"ndata[{k!r}]" for k in ndata if k not in graph.ndata]
    missing += [f"edata[{k!r}]" for k in edata if k not in graph.edata]
    if missing:
        raise ValueError(
            f"the {objective} objective needs graph fields the batch lacks: {', '.join(missing)} "
            "(graphs from crysgnn_dgl.build_graph carry them)"
        )


def real_edges(graph: dgl.DGLGraph) -> torch.Tensor:
    """``(E,)`` bool: the edges that are actual neighbours (not padding slots)."""
    if "padding" not in graph.edata:
        return torch.ones(graph.num_edges(), dtype=torch.bool, device=graph.device)
    return ~graph.edata["padding"].bool()


def crystal_of_nodes(graph: dgl.DGLGraph) -> torch.Tensor:
    """``(N,)`` index of each node's crystal in the batch."""
    sizes = graph.batch_num_nodes().to(graph.device)
    return torch.repeat_interleave(torch.arange(len(sizes), device=graph.device), sizes)


def crystal_of_edges(graph: dgl.DGLGraph) -> torch.Tensor:
    """``(E,)`` index of each edge's crystal (that of its centre atom)."""
    return crystal_of_nodes(graph)[graph.edges()[1]]


def cartesian_positions(graph: dgl.DGLGraph) -> torch.Tensor:
    """``(N, 3)`` Cartesian positions (Å): ``frac_coords @ lattice`` per node."""
    return torch.einsum("ni,nij->nj", graph.ndata["frac_coords"].float(), graph.ndata["lattice"].float())


def edge_distances(graph: dgl.DGLGraph, positions: torch.Tensor) -> torch.Tensor:
    """``(E,)`` length of ``x_src + image · L − x_dst`` for given node ``positions`` (the
    stored ``distance`` of real edges when ``positions`` are :func:`cartesian_positions`)."""
    src, dst = graph.edges()
    image = graph.edata["image"].to(positions.dtype)
    shift = torch.einsum("ei,eij->ej", image, graph.ndata["lattice"][dst].to(positions.dtype))
    return (positions[src] + shift - positions[dst]).norm(dim=1)


def direction_classes(image: torch.Tensor) -> torch.Tensor:
    """``(E,)`` class 0..26 of the signs ``(s₁, s₂, s₃) ∈ {−1, 0, 1}³`` of the image offsets:
    ``9 (s₁ + 1) + 3 (s₂ + 1) + (s₃ + 1)``; 13 is the same cell."""
    signs = torch.sign(image).to(torch.int64) + 1
    return signs[:, 0] * 9 + signs[:, 1] * 3 + signs[:, 2]


def same_cell(image: torch.Tensor) -> torch.Tensor:
    """``(E,)`` int64: 1 where the neighbour lies in the centre's cell (offset all zero)."""
    return (image == 0).all(dim=1).to(torch.int64)


def segment_sum(values: torch.Tensor, segment: torch.Tensor, count: int) -> torch.Tensor:
    """Sum of ``values`` (first dimension) per segment index ``0..count-1``."""
    out = values.new_zeros((count, *values.shape[1:]))
    return out.index_add_(0, segment, values)


def zscore_per_crystal(
    values: torch.Tensor, crystal: torch.Tensor, keep: torch.Tensor, num_crystals: int,
    tolerance: float = 1e-4,
) -> torch.Tensor:
    """``(v − mean) / std`` with mean and (population) std over each crystal's kept entries.

    A crystal whose kept values all agree (std ≤ ``tolerance``) gets 0 for every entry, as
    CDSSL's Eq. 2 prescribes; entries not kept are returned as 0. Computed in float64.
    """
    weight = keep.to(torch.float64)
    values = values.to(torch.float64)
    count = segment_sum(weight, crystal, num_crystals).clamp(min=1.0)
    mean = segment_sum(values * weight, crystal, num_crystals) / count
    centred = values - mean[crystal]
    std = (segment_sum(centred**2 * weight, crystal, num_crystals) / count).sqrt()[crystal]
    flat = std <= tolerance
    return torch.where(flat | ~keep, torch.zeros_like(centred), centred / std.clamp(min=tolerance))
