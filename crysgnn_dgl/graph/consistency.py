"""Does a (batched) graph look built with given featuriser settings? What can be told from
the graph alone: neighbour slots per atom, bond lengths, padding and edge-feature width."""

from __future__ import annotations

import torch

from ..backend import dgl
from ..config import GraphSettings

DISTANCE_TOLERANCE = 1e-3  # Å; float32 storage of bond lengths


class GraphSettingsMismatch(ValueError):
    """Graphs were built with other featuriser settings than the model reading them."""


def settings_mismatch(graph: dgl.DGLGraph, settings: GraphSettings) -> list[str]:
    """What in ``graph`` contradicts ``settings`` (empty when nothing does)."""
    problems: list[str] = []
    if graph.num_nodes() == 0:
        return problems
    k = settings.max_neighbors
    degree = graph.in_degrees()
    most, least = int(degree.max()), int(degree.min())
    if most > k:
        problems.append(f"atoms have up to {most} neighbour slots, max_neighbors is {k}")
    elif settings.pad and least < k:
        problems.append(f"atoms have as few as {least} neighbour slots, but pad=True fills all {k}")
    edges = graph.edata
    if "distance" in edges:
        distance = edges["distance"].float()
        padding = edges["padding"].bool() if "padding" in edges else torch.zeros_like(distance, dtype=torch.bool)
        real, padded = distance[~padding], distance[padding]
        if real.numel() and float(real.max()) > settings.radius + DISTANCE_TOLERANCE:
            problems.append(f"bonds up to {float(real.max()):.3f} Å long, radius is {settings.radius} Å")
        off = (padded - settings.pad_distance).abs() > DISTANCE_TOLERANCE
        if bool(off.any()):
            problems.append(
                f"padding slots at {float(padded[off][0]):.3f} Å, this featuriser pads at "
                f"{settings.pad_distance} Å (radius + 1)"
            )
    if "edge_features" in edges and edges["edge_features"].shape[-1] != settings.num_gaussians:
        problems.append(
            f"edge features have {edges['edge_features'].shape[-1]} columns, "
            f"the Gaussian grid has {settings.num_gaussians}"
        )
    return problems


def require_settings(graph: dgl.DGLGraph, settings: GraphSettings, reader: str) -> None:
    """Raise :class:`GraphSettingsMismatch` if ``graph`` contradicts ``settings``."""
    problems = settings_mismatch(graph, settings)
    if problems:
        raise GraphSettingsMismatch(
            f"the graphs given to {reader} were not built with its featuriser settings "
            f"({'; '.join(problems)}); build them with {reader}'s graph_settings: {settings}"
        )
