"""Niggli-reduced lattice parameters of the crystals of a batched graph (MMPT's lattice target).

The parameters come from pymatgen's ``Lattice.get_niggli_reduced_lattice()`` applied to
the lattice stored in the graph (``ndata["lattice"]``, float32 as cached, widened to
float64), so they are exactly pymatgen's for that matrix. Each distinct matrix is reduced
once per process (≈ 1 ms) and remembered.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from pymatgen.core import Lattice

from ..backend import dgl

#: per-parameter mean and std of (a, b, c in Å; α, β, γ in degrees) of the Niggli cells of
#: the first 600 crystals of mp_cgcnn36k, used to standardise the regression target
NIGGLI_MEAN = (4.5, 4.9, 5.9, 86.0, 84.0, 85.0)
NIGGLI_STD = (1.6, 1.9, 3.4, 19.0, 17.0, 18.0)


@lru_cache(maxsize=1 << 20)
def _reduced_parameters(matrix: bytes) -> tuple[float, ...]:
    lattice = Lattice(np.frombuffer(matrix, dtype=np.float64).reshape(3, 3))
    reduced = lattice.get_niggli_reduced_lattice()
    return (*reduced.abc, *reduced.angles)


def niggli_parameters(lattices: np.ndarray) -> np.ndarray:
    """``(B, 6)`` float64 ``(a, b, c, α, β, γ)`` of the Niggli cells of ``(B, 3, 3)`` matrices."""
    matrices = np.ascontiguousarray(lattices, dtype=np.float64).reshape(-1, 3, 3)
    return np.asarray([_reduced_parameters(m.tobytes()) for m in matrices], dtype=np.float64).reshape(-1, 6)


def crystal_lattices(graph: dgl.DGLGraph) -> torch.Tensor:
    """``(B, 3, 3)`` lattice of each crystal of a batch (that of its first atom)."""
    sizes = graph.batch_num_nodes().to(graph.device)
    first = torch.cumsum(sizes, 0) - sizes
    return graph.ndata["lattice"][first]


def standardised_niggli_targets(graph: dgl.DGLGraph) -> torch.Tensor:
    """``(B, 6)`` float32 Niggli parameters standardised with :data:`NIGGLI_MEAN`/``STD``."""
    parameters = niggli_parameters(crystal_lattices(graph).detach().cpu().numpy())
    scaled = (parameters - np.asarray(NIGGLI_MEAN)) / np.asarray(NIGGLI_STD)
    return torch.as_tensor(scaled, dtype=torch.float32, device=graph.device)
