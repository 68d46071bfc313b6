"""Shared parts of the package's adapters (the interface itself is
:class:`crysgnn_dgl.distill.adapter.Adapter`).

Teacher inputs come as CrysGNN graphs for the CrysGNN teacher and, for teachers that read
structures (M3GNet), atomic numbers, fractional coordinates and lattices. Builders for the
two common cases live here: rebuilding teacher graphs from features + fractional
coordinates + lattices, and handing over a graph that already is a CrysGNN graph; and
:class:`PortAdapter`, the base of the adapters of the package's own DGL ports.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from crysgnn_dgl.backend import dgl
from crysgnn_dgl.config import GraphSettings
from crysgnn_dgl.distill.adapter import (  # noqa: F401 - re-exported for the adapters
    Adapter,
    AdapterError,
    HookPoint,
    reads_crysgnn_graphs,
    require_release_features,
)
from crysgnn_dgl.distill.keys import KeyField
from crysgnn_dgl.distill.targets import CrystalBatch
from crysgnn_dgl.graph.atom_features import FEATURE_DIM, atom_feature_table
from crysgnn_dgl.graph.builder import graph_from_arrays


def class_names(model: Any) -> set[str]:
    """``module.Class`` of every class in the model's MRO."""
    return {f"{c.__module__}.{c.__name__}" for c in type(model).__mro__}


def graph_settings_of(teacher: Any) -> GraphSettings:
    """The featuriser of the teacher's CrysGNN graphs (the release one for other teachers)."""
    return teacher.graph_settings if reads_crysgnn_graphs(teacher) else GraphSettings()


@lru_cache(maxsize=1)
def _feature_lookup() -> tuple[torch.Tensor, torch.Tensor]:
    """The CGCNN feature table (float64, NaN as -1) and which of its rows several elements share."""
    table = torch.from_numpy(np.nan_to_num(atom_feature_table(), nan=-1.0)).to(torch.float64)
    return table, (torch.cdist(table, table) < 1e-6).sum(dim=1) > 1


def numbers_from_features(features: torch.Tensor) -> torch.Tensor:
    """Atomic numbers of 92-d CGCNN feature rows; ``-1`` where the row is not in the table
    or is shared by several elements (La/Ce, Sm/Gd, ...)."""
    table, shared = _feature_lookup()
    rows = features.detach().to("cpu", torch.float64)
    if rows.dim() != 2 or rows.shape[1] != table.shape[1]:
        return torch.full((rows.shape[0],), -1, dtype=torch.long)
    distance, numbers = torch.cdist(rows, table).min(dim=1)
    numbers[(distance > 1e-4) | shared[numbers]] = -1
    return numbers


def require_same_settings(student_settings: GraphSettings, teacher: Any, what: str) -> None:
    """A port built for one featuriser cannot feed a teacher trained with another."""
    differences = student_settings.differences(teacher.graph_settings)
    if differences:
        listed = ", ".join(f"{k}: student {a!r} vs teacher {b!r}" for k, (a, b) in differences.items())
        raise AdapterError(
            f"{what} was built for featuriser {student_settings} but the teacher uses "
            f"{teacher.graph_settings} ({listed})"
        )


def check_cgcnn_features(features: torch.Tensor, where: str) -> None:
    """Atom features must be the 92-d CGCNN table (0/1 entries)."""
    if features.dim() != 2 or features.shape[1] != FEATURE_DIM:
        raise AdapterError(
            f"{where}: atom features have shape {tuple(features.shape)}; the teacher needs the "
            f"{FEATURE_DIM}-d CGCNN features (e.g. alignn's atom_features='cgcnn')"
        )


def formula_of(features: torch.Tensor) -> str:
    """A readable composition for error messages (elements guessed from CGCNN rows)."""
    table = torch.from_numpy(np.nan_to_num(atom_feature_table(), nan=-1.0))
    rows = features.detach().to("cpu", torch.float32)
    numbers = torch.cdist(rows, table).argmin(dim=1).tolist()
    from pymatgen.core.periodic_table import Element

    counts: dict[str, int] = {}
    for z in numbers:
        symbol = Element.from_Z(z).symbol if z > 0 else "?"
        counts[symbol] = counts.get(symbol, 0) + 1
    return "".join(f"{s}{n if n > 1 else ''}" for s, n in counts.items())


def crystal_namer(features: torch.Tensor, counts: Sequence[int]):
    """``names(i)`` for :class:`CrystalBatch`: batch position, formula and atom count."""
    offsets = np.concatenate([[0], np.cumsum(np.asarray(counts, dtype=np.int64))])

    def name(i: int) -> str:
        rows = features[offsets[i] : offsets[i + 1]]
        return f"crystal #{i} of the batch ({formula_of(rows) if len(rows) else 'empty'}, {counts[i]} atoms)"

    return name


def atomic_numbers_of(values: torch.Tensor, atoms: int) -> torch.Tensor:
    """``(atoms,)`` int64 atomic numbers from a graph's per-atom field as students keep it:
    ``(atoms,)`` integers, or ``(atoms, 1)`` floats as alignn's ``StructureDataset`` stores
    ``ndata["atomic_number"]``; AdapterError for any other shape or a non-integral value."""
    flat = values.detach().reshape(-1) if values.dim() == 2 and values.shape[1] == 1 else values.detach()
    if flat.dim() != 1 or flat.shape[0] != atoms:
        raise AdapterError(f"the batch's atomic numbers have shape {tuple(values.shape)}; expected ({atoms},) "
                           f"or ({atoms}, 1), one per atom")
    numbers = flat.round().long()
    if flat.is_floating_point() and not torch.equal(numbers.to(flat.dtype), flat):
        raise AdapterError("the batch's atomic numbers are not whole numbers (is it an atom-feature field?)")
    return numbers


def batch_from_arrays(
    features: torch.Tensor,
    frac_coords: torch.Tensor,
    lattices: torch.Tensor,
    counts: Sequence[int],
    settings: GraphSettings,
    atomic_numbers: torch.Tensor | None = None,
    structures: bool = True,
) -> CrystalBatch:
    """Crystal batch whose teacher graphs are rebuilt from features, fractional coordinates
    and one 3×3 lattice (rows = vectors) per crystal; its atomic numbers are
    ``atomic_numbers`` or, when not given, read back from the 92-d CGCNN features (only
    with ``structures``: a CrysGNN teacher reads the features, not the elements)."""
    counts = [int(c) for c in counts]
    features = features.detach()
    frac_coords = frac_coords.detach()
    lattices = lattices.detach().reshape(-1, 3, 3)
    names = crystal_namer(features, counts)
    if lattices.shape[0] != len(counts):
        raise AdapterError(
            f"the batch carries {lattices.shape[0]} lattice(s) for {len(counts)} crystals; "
            "the teacher's graphs cannot be rebuilt"
        )
    if frac_coords.shape[0] != sum(counts):
        raise AdapterError(f"the batch carries {frac_coords.shape[0]} fractional coordinates for {sum(counts)} atoms")
    offsets = np.concatenate([[0], np.cumsum(counts)])

    def build(indices: list[int]) -> dgl.DGLGraph:  # only for the crystals the cache misses
        feats_np = features.to("cpu", torch.float32).numpy()
        frac_np = frac_coords.to("cpu", torch.float64).numpy()
        lat_np = lattices.to("cpu", torch.float64).numpy()
        graphs = []
        for i in indices:
            a, b = offsets[i], offsets[i + 1]
            if not np.isfinite(lat_np[i]).all() or abs(np.linalg.det(lat_np[i])) < 1e-6:
                raise AdapterError(f"{names(i)}: the lattice {lat_np[i].tolist()} is missing or singular")
            graphs.append(graph_from_arrays(feats_np[a:b], frac_np[a:b], lat_np[i], settings, names(i)))
        return dgl.batch(graphs)

    fields = [
        KeyField(features, counts, decimals=4),
        KeyField(frac_coords, counts, decimals=4),
        KeyField(lattices, [1] * len(counts), decimals=3),
    ]
    missing = ""
    if atomic_numbers is not None:
        atomic_numbers = atomic_numbers_of(atomic_numbers, sum(counts))
    if atomic_numbers is None and structures:
        atomic_numbers = numbers_from_features(features)
        missing = ("the batch carries CGCNN features only, which do not tell some elements apart (La/Ce, Sm/Gd, "
                   "...); add g.ndata['atomic_number'] to the student's graphs")
    elif atomic_numbers is None:
        missing = "the adapter extracted no atomic numbers for a teacher that reads CrysGNN graphs"
    return CrystalBatch(counts, fields, build, atom_features=features, names=names,
                        atomic_numbers=atomic_numbers,
                        frac_coords=frac_coords, lattices=lattices, structure_missing=missing)


def batch_from_crysgnn_graph(graph: dgl.DGLGraph, structures: bool = True) -> CrystalBatch:
    """Crystal batch for a student whose graph already is the teacher's (same featuriser):
    handed over as it is, or sliced to the crystals the cache misses; with the crystals'
    structures (for teachers that read them) unless ``structures=False``."""
    for needed in ("atom_features",):
        if needed not in graph.ndata:
            raise AdapterError(f"the student's graph has no ndata[{needed!r}]; it is not a crysgnn_dgl graph")
    edge_key = "edge_features" if "edge_features" in graph.edata else "distance"
    if edge_key not in graph.edata:
        raise AdapterError("the student's graph has neither edata['distance'] nor edata['edge_features']")
    nodes, edge_counts = graph.batch_num_nodes(), graph.batch_num_edges()
    counts = nodes.tolist()
    features = graph.ndata["atom_features"]
    src, dst = graph.edges()
    node_offsets = torch.repeat_interleave(torch.cumsum(nodes, 0) - nodes, edge_counts)
    edge_value = graph.edata[edge_key].detach().reshape(src.shape[0], -1).to(torch.float32)
    local = (torch.stack((src, dst), 1) - node_offsets.unsqueeze(1)).to(torch.float32)  # per-crystal atom indices
    edges = torch.cat([local, edge_value], 1)
    every = list(range(len(counts)))

    def build(indices: list[int]) -> dgl.DGLGraph:
        if indices == every:
            return graph
        return dgl.batch([dgl.slice_batch(graph, i) for i in indices])

    fields = [KeyField(features, counts, decimals=4), KeyField(edges, edge_counts.tolist(), decimals=4)]
    batch = CrystalBatch(counts, fields, build, atom_features=features, names=crystal_namer(features, counts))
    return with_graph_structures(batch, graph) if structures else batch


def with_graph_structures(batch: CrystalBatch, graph: dgl.DGLGraph) -> CrystalBatch:
    """``batch`` with the atomic numbers, fractional coordinates and lattices a crysgnn_dgl
    graph carries (``ndata`` ``atomic_number``, ``frac_coords``, ``lattice``), or the reason
    they are missing."""
    absent = [k for k in ("atomic_number", "frac_coords", "lattice") if k not in graph.ndata]
    if absent:
        batch.structure_missing = (
            f"the student's graphs have no ndata {absent} (graphs built by an older crysgnn_dgl, or by "
            "hand: rebuild them with crysgnn_dgl.build_graph)"
        )
        return batch
    first_atoms = torch.cumsum(graph.batch_num_nodes(), 0) - graph.batch_num_nodes()
    batch.atomic_numbers = graph.ndata["atomic_number"].detach().long()
    batch.frac_coords = graph.ndata["frac_coords"].detach()
    batch.lattices = graph.ndata["lattice"].detach()[first_atoms.to(graph.device)].reshape(-1, 3, 3)
    return batch


def first_tensor_arg(args: tuple, kwargs: dict, name: str, position: int) -> Any:
    """Argument ``name`` of a forward call, given positionally or by keyword."""
    if name in kwargs:
        return kwargs[name]
    if len(args) > position:
        return args[position]
    raise AdapterError(f"the student's forward was called without {name!r}")


class PortAdapter(Adapter):
    """Base of the adapters of the package's own DGL ports (``model(graph)`` on a
    crysgnn_dgl graph): the graph is the teacher's featurisation, handed over as it is.

    Subclasses set ``port`` (``module.Class`` of the port) and implement
    :meth:`hook_point` (and :meth:`student_width`).
    """

    port = ""

    @classmethod
    def matches(cls, model: Any) -> bool:
        return cls.port in class_names(model)

    def check_teacher(self, student: nn.Module, teacher: Any) -> None:
        if not reads_crysgnn_graphs(teacher):
            return  # a structure teacher reads ndata atomic_number, frac_coords, lattice
        settings = cast(GraphSettings, student.graph_settings)
        require_same_settings(settings, teacher, f"the {type(student).__name__} port")
        require_release_features(teacher)

    def crystal_batch(self, student: nn.Module, args: tuple, kwargs: dict, teacher: Any) -> CrystalBatch:
        graph = first_tensor_arg(args, kwargs, "graph", 0)
        return batch_from_crysgnn_graph(graph, structures=not reads_crysgnn_graphs(teacher))
