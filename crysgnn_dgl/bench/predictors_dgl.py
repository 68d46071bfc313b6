"""matgl's DGL MEGNet and alignn's DGL ALIGNN as benchmark predictors (``megnet``, ``alignn``).

Both are reduced in size for a CPU budget (every setting is in the spec's ``hyper``), read
their own graphs (matgl's ``Structure2Graph``, alignn's ``Graph.atom_dgl_multigraph``) and
are batched by their own collate functions. A :class:`FlatOutput` wrapper makes
``model(*inputs)`` return ``(B,)`` predictions; the teacher is attached to the wrapped model.
matgl and alignn are imported only when a factory, featuriser or collate function runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from ..graph.errors import StructureError
from ..matgl_dgl import import_matgl, place_lattice
from .predictors import PredictorSpec, register_predictor

#: reduced MEGNet (matgl's defaults: 3 blocks, 100 Gaussians, hidden 64; see :func:`small_megnet`)
MEGNET_SIZE: dict[str, Any] = {"blocks": 2, "node_embedding": 16, "edge_embedding": 40, "hidden": 32,
                               "state_embedding": 2, "cutoff": 4.0}


def megnet_layers(hidden: int) -> dict[str, tuple[int, ...]]:
    """MLP widths of :func:`small_megnet`: the node features are ``hidden/2`` wide."""
    return {"hidden_layer_sizes_input": (hidden, hidden // 2),
            "hidden_layer_sizes_conv": (hidden, hidden, hidden // 2),
            "hidden_layer_sizes_output": (hidden // 2, hidden // 4)}


MEGNET_HYPER: dict[str, Any] = {
    "model": "matgl.models.MEGNet (DGL backend)", **MEGNET_SIZE,
    **{k: list(v) for k, v in megnet_layers(MEGNET_SIZE["hidden"]).items()},
    "matgl_defaults": {"nlayers_set2set": 1, "niters_set2set": 2, "activation_type": "softplus2", "dropout": 0.0,
                       "gauss_width": 0.5, "include_state": True},
    "element_types": "H..Fm (Z = 1..100)", "state_attr": [0.0, 0.0], "graph": "matgl Structure2Graph(cutoff)",
}
#: reduced ALIGNN (alignn's defaults: 4 + 4 layers, width 256, 80 / 40 RBF features)
ALIGNN_MODEL: dict[str, Any] = {
    "alignn_layers": 1, "gcn_layers": 1, "atom_input_features": 92, "edge_input_features": 40,
    "triplet_input_features": 20, "embedding_features": 64, "hidden_features": 64, "output_features": 1,
}
#: alignn's graph builder settings (those of ALIGNN's training config)
ALIGNN_GRAPH: dict[str, Any] = {
    "neighbor_strategy": "k-nearest", "cutoff": 8.0, "max_neighbors": 12, "atom_features": "cgcnn",
    "use_canonize": True,
}


class FlatOutput(nn.Module):
    """Calls ``model(*inputs)`` and returns its predictions as a ``(B,)`` tensor (MEGNet
    and ALIGNN squeeze theirs: a batch of one would give a 0-d tensor)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *inputs: Any) -> torch.Tensor:
        return self.model(*inputs).reshape(-1)


def wrapped_model(model: nn.Module) -> nn.Module:
    """The module inside :class:`FlatOutput` (the one the adapters recognise)."""
    assert isinstance(model, FlatOutput)  # what the megnet and alignn predictors build
    return model.model


def checked_structure(item: Any, structure_id: str) -> Any:
    """A validated pymatgen ``Structure`` of a table's structure input (elements Z = 1..100,
    ordered, finite, non-singular), else :class:`StructureError`."""
    from ..graph.structures import to_structure, validate_structure

    structure = to_structure(item, structure_id)
    validate_structure(structure, structure_id)
    return structure


@contextlib.contextmanager
def foreign_failure(structure_id: str, what: str) -> Iterator[None]:
    """Any exception raised inside becomes a :class:`StructureError` naming ``what``."""
    try:
        yield
    except StructureError:
        raise
    except Exception as exc:  # noqa: BLE001 - a foreign builder fails in many ways; skip by id
        raise StructureError(structure_id, f"{what} failed ({type(exc).__name__}: {exc})") from exc


# ---------------------------------------------------------------- MEGNet (matgl, DGL backend)


def _matgl() -> Any:
    return import_matgl("the megnet predictor")


@lru_cache(maxsize=1)
def megnet_elements() -> tuple[str, ...]:
    """``element_types`` of the MEGNet predictor: every element the teacher knows (Z = 1..100),
    so that node types mean the same for every task."""
    from pymatgen.core.periodic_table import Element

    from ..graph.atom_features import max_atomic_number

    return tuple(Element.from_Z(z).symbol for z in range(1, max_atomic_number() + 1))


def small_megnet(
    element_types: tuple[str, ...], cutoff: float, blocks: int, node_embedding: int, edge_embedding: int,
    hidden: int, state_embedding: int = 2,
) -> nn.Module:
    """matgl's DGL ``MEGNet`` with the MLP widths of :func:`megnet_layers`; other settings
    are matgl's defaults."""
    _matgl()
    from matgl.models import MEGNet

    return MEGNet(
        dim_node_embedding=node_embedding, dim_edge_embedding=edge_embedding, dim_state_embedding=state_embedding,
        # (ignored arg-type: mypy checks a **dict[str, tuple] against every MEGNet parameter,
        # not only the three hidden_layer_sizes_* keys megnet_layers() returns)
        nblocks=blocks, element_types=element_types, cutoff=cutoff, **megnet_layers(hidden),  # type: ignore[arg-type]
    )


def _megnet() -> nn.Module:
    return FlatOutput(small_megnet(megnet_elements(), **MEGNET_SIZE))


@lru_cache(maxsize=2)
def _megnet_converter(cutoff: float) -> Any:
    _matgl()
    from matgl.ext.pymatgen import Structure2Graph

    return Structure2Graph(element_types=megnet_elements(), cutoff=cutoff)


def megnet_features(item: Any, structure_id: str) -> tuple:
    """``(graph, lattice (1, 3, 3), state_attr)`` from matgl's ``Structure2Graph`` with the
    model's cutoff. A crystal without any bond within the cutoff is refused (its lattice
    could not travel in the batch graph that the MEGNet adapter reads)."""
    structure = checked_structure(item, structure_id)
    cutoff = MEGNET_SIZE["cutoff"]
    with foreign_failure(structure_id, "matgl's Structure2Graph"):
        graph, lattice, state_attr = _megnet_converter(cutoff).get_graph(structure)
    if graph.num_edges() == 0:
        raise StructureError(structure_id, f"no neighbours within the MEGNet cutoff of {cutoff} Å")
    return graph, lattice, torch.as_tensor(state_attr, dtype=_matgl().float_th)


def megnet_collate(samples: list) -> tuple:
    """``((graph, state_attr), targets)`` batched by matgl's ``collate_fn_graph``; the
    model is called as ``MEGNet(graph, state_attr)``."""
    from matgl.graph.data import collate_fn_graph

    graph, lattice, state_attr, targets = collate_fn_graph(
        [(*inputs, {"target": target}) for inputs, target in samples]
    )
    place_lattice(graph, lattice.reshape(-1, 3, 3))
    return (graph, state_attr), targets


# ---------------------------------------------------------------- ALIGNN (alignn, DGL)


def _alignn() -> nn.Module:
    from ..backend import dgl  # noqa: F401 - the graphbolt guard before alignn's optional DGL import
    from alignn.models.alignn import ALIGNN, ALIGNNConfig

    return FlatOutput(ALIGNN(ALIGNNConfig(name="alignn", **ALIGNN_MODEL)))


def alignn_features(item: Any, structure_id: str) -> tuple:
    """``(graph, line graph, lattice (3, 3))`` from alignn's ``Graph.atom_dgl_multigraph``
    (92-d CGCNN atom features, bond-angle cosines on the line graph), the lattice as
    alignn's ``StructureDataset`` keeps it; the graph also carries ``ndata["atomic_number"]``
    (teachers that read structures need it: CGCNN features do not tell La from Ce)."""
    structure = checked_structure(item, structure_id)
    from ..backend import dgl  # noqa: F401 - the graphbolt guard before alignn's optional DGL import
    from alignn.graphs import Graph
    from jarvis.core.atoms import pmg_to_atoms

    with foreign_failure(structure_id, "alignn's graph builder"):
        atoms = pmg_to_atoms(structure)
        graph, line_graph = Graph.atom_dgl_multigraph(atoms, compute_line_graph=True, id=structure_id, **ALIGNN_GRAPH)
    graph.ndata["atomic_number"] = torch.tensor(structure.atomic_numbers, dtype=torch.int64)
    return graph, line_graph, torch.tensor(atoms.lattice_mat).type(torch.get_default_dtype())


def alignn_collate(samples: list) -> tuple:
    """``(([graph, line graph, lattices],), targets)`` batched by alignn's
    ``StructureDataset.collate_line_graph``; the model is called as ``ALIGNN([g, lg, lat])``."""
    from alignn.graphs import StructureDataset

    graph, line_graph, lattice, targets = StructureDataset.collate_line_graph(
        [(*inputs, target) for inputs, target in samples]
    )
    return ((graph, line_graph, lattice),), targets


register_predictor(PredictorSpec("megnet", "megnet", _megnet, megnet_features, megnet_collate, wrapped_model,
                                 hyper=dict(MEGNET_HYPER)))
register_predictor(PredictorSpec("alignn", "alignn", _alignn, alignn_features, alignn_collate, wrapped_model,
                                 hyper={"model": "alignn.models.alignn.ALIGNN", **ALIGNN_MODEL,
                                        **{f"graph_{k}": v for k, v in ALIGNN_GRAPH.items()}},
                                 inputs_version=2))  # version 2: ndata["atomic_number"]
