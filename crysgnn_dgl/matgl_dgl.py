"""matgl (< 4, DGL backend) helpers shared by the MEGNet predictor and the M3GNet teacher."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import torch

from .optional import MissingDependencyError, require


def import_matgl(purpose: str = "this feature") -> ModuleType:
    """matgl with its DGL backend (set before the first import), or a one-line error."""
    os.environ.setdefault("MATGL_BACKEND", "DGL")
    from .backend import dgl  # noqa: F401 - the graphbolt guard before matgl imports DGL

    matgl = require("matgl", purpose, "crysgnn_dgl[matgl]")
    if getattr(matgl.config, "BACKEND", "DGL") != "DGL":
        raise MissingDependencyError(
            f"{purpose} needs matgl's DGL backend, but matgl was imported with {matgl.config.BACKEND}: "
            "set MATGL_BACKEND=DGL before importing matgl (and use matgl < 4)"
        )
    return matgl


def place_lattice(graph: Any, lattice: torch.Tensor) -> None:
    """Per-edge lattice, periodic-image shifts and Cartesian positions of a batch graph from
    its ``(B, 3, 3)`` lattices, as matgl's ``ModelLightningModule.forward`` does before
    calling the model."""
    graph.edata["lattice"] = torch.repeat_interleave(lattice, graph.batch_num_edges(), dim=0)
    graph.edata["pbc_offshift"] = (graph.edata["pbc_offset"].unsqueeze(-1) * graph.edata["lattice"]).sum(dim=1)
    node_lattice = torch.repeat_interleave(lattice, graph.batch_num_nodes(), dim=0)
    graph.ndata["pos"] = (graph.ndata["frac_coords"].unsqueeze(-1) * node_lattice).sum(dim=1)
