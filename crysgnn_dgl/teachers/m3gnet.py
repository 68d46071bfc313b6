"""M3GNet (matgl < 4, DGL backend) as a frozen teacher: 64-d node features after a chosen
graph-convolution block (``gc_1`` by default), for a whole batch of crystals at once.

The weights ship with the package (``crysgnn_dgl/data/m3gnet``, BSD-3-Clause, see the
NOTICE there); they are loaded weights-only: the model is rebuilt from ``model.json`` and
``state.pt`` is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..matgl_dgl import import_matgl
from .protocol import Crystals, StructureTeacher, freeze, stay_in_eval

if TYPE_CHECKING:
    from matgl.models import M3GNet

DEFAULT_WEIGHTS = "M3GNet-MP-2021.2.8-PES"
DEFAULT_BLOCK = "gc_1"
_PURPOSE = "the m3gnet teacher"


def bundled_weights() -> Path:
    """Folder of the M3GNet weights shipped with the package."""
    return Path(str(resources.files("crysgnn_dgl").joinpath("data", "m3gnet", DEFAULT_WEIGHTS)))


def read_m3gnet(folder: str | os.PathLike) -> M3GNet:
    """matgl's DGL ``M3GNet`` from a matgl model folder (``model.json`` + ``state.pt``),
    weights loaded with ``weights_only=True`` (no pickled code runs)."""
    folder = Path(folder)
    import_matgl(_PURPOSE)
    from matgl.models import M3GNet

    description = json.loads((folder / "model.json").read_text())
    model_entry = description.get("kwargs", {}).get("model", description)
    if model_entry.get("@class") != "M3GNet":
        raise ValueError(f"{folder}: model.json describes a {model_entry.get('@class')!r}, not an M3GNet")
    model = M3GNet(**model_entry["init_args"])
    state = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    prefix = "model." if any(k.startswith("model.") for k in state) else ""
    weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    model.load_state_dict(weights, strict=True)
    return model


def _block_number(block: str, blocks: int) -> int:
    names = [f"gc_{i + 1}" for i in range(blocks)]
    if block not in names:
        raise ValueError(f"M3GNet block {block!r} does not exist; choose one of {names}")
    return int(block[3:])


class M3GNetTeacher(StructureTeacher):
    """Frozen M3GNet: per-atom node features after ``block`` (not an ``nn.Module``, so it is
    never a submodule of the student; evaluation mode that ``train()`` cannot undo; no
    gradients)."""

    recommended_kd_weight = 100.0  # chosen on validation gain with CGCNN on 2 of 3 tasks (docs/benchmarks.md §7)

    def __init__(self, model: M3GNet, block: str = DEFAULT_BLOCK, source: str = ""):
        self._blocks = _block_number(block, model.n_blocks)
        self._model = freeze(model)
        self.block = block
        self.source = source
        self.embedding_dim = int(model.embedding.layer_node_embedding.weight.shape[1])
        self._elements = {symbol: i for i, symbol in enumerate(model.element_types)}
        self._fingerprint: bytes | None = None

    def settings(self) -> dict[str, Any]:
        """What, besides the weights, determines the embeddings."""
        model = self._model
        return {"teacher": "m3gnet", "block": self.block, "cutoff": float(model.cutoff),
                "threebody_cutoff": float(model.threebody_cutoff), "elements": list(model.element_types)}

    def fingerprint(self) -> bytes:
        if self._fingerprint is None:
            from ..distill.keys import teacher_fingerprint

            self._fingerprint = teacher_fingerprint(self._model.state_dict(), self.settings())
        return self._fingerprint

    def _graph(self, crystals: Crystals) -> tuple[Any, torch.Tensor]:
        """matgl's batched graph of ``crystals`` (one conversion per crystal) and its state."""
        from matgl.ext.pymatgen import Structure2Graph

        from ..backend import dgl
        from ..distill.targets import TeacherInputError

        converter = Structure2Graph(element_types=self._model.element_types, cutoff=self._model.cutoff)
        graphs, states = [], []
        for i in range(len(crystals)):
            structure = crystals.structure(i)
            unknown = sorted({s.symbol for s in structure.species} - set(self._elements))
            if unknown:
                raise TeacherInputError(f"{crystals.names[i]}: M3GNet has no embedding for {', '.join(unknown)}")
            graph, lattice, state = converter.get_graph(structure)
            # positions and image shifts exactly as matgl's predict_structure computes them
            graph.edata["pbc_offshift"] = torch.matmul(graph.edata["pbc_offset"], lattice[0])
            graph.ndata["pos"] = graph.ndata["frac_coords"] @ lattice[0]
            graphs.append(graph)
            states.append(torch.as_tensor(state, dtype=torch.float32).reshape(1, -1))
        return dgl.batch(graphs).to(self.device), torch.cat(states).to(self.device)

    @torch.no_grad()
    def embed_crystals(self, crystals: Crystals) -> torch.Tensor:
        """``(Σ atoms, 64)`` node features after the teacher's block, atoms in order."""
        if len(crystals) == 0:
            return torch.zeros(0, self.embedding_dim)
        import_matgl(_PURPOSE)
        from matgl.graph._compute_dgl import compute_pair_vector_and_distance, compute_theta_and_phi, create_line_graph
        from matgl.utils.cutoff import polynomial_cutoff

        model = stay_in_eval(self._model)
        graph, state = self._graph(crystals)
        bond_vec, bond_dist = compute_pair_vector_and_distance(graph)
        graph.edata["bond_vec"], graph.edata["bond_dist"] = bond_vec, bond_dist
        graph.edata["rbf"] = model.bond_expansion(bond_dist)
        line_graph = create_line_graph(graph, model.threebody_cutoff)
        line_graph.apply_edges(compute_theta_and_phi)
        basis = model.basis_expansion(line_graph)
        three_body_cutoff = polynomial_cutoff(bond_dist, model.threebody_cutoff)
        node, edge, state = model.embedding(graph.ndata["node_type"], graph.edata["rbf"], state)
        line_index = torch.stack(list(line_graph.edges()), dim=0)
        for i in range(self._blocks):  # stop after the chosen block
            edge = model.three_body_interactions[i](
                graph.edges()[1], line_index, line_graph.ndata["n_triple_ij"], graph.num_edges(),
                basis, three_body_cutoff, node, edge,
            )
            edge, node, state = model.graph_layers[i](graph, edge, node, state)
        return node

    def __repr__(self) -> str:
        return f"M3GNetTeacher(block={self.block!r}, dim={self.embedding_dim}, source={self.source!r})"


@lru_cache(maxsize=4)
def _read_cached(folder: str) -> M3GNet:
    return read_m3gnet(folder)


def load_m3gnet(
    block: str | None = None, device: str | torch.device = "cpu", weights: str | os.PathLike | None = None
) -> M3GNetTeacher:
    """The frozen M3GNet teacher: ``block`` ``gc_1`` (default) … ``gc_3``; ``weights`` a
    matgl model folder (default: M3GNet-MP-2021.2.8-PES shipped with the package)."""
    folder = Path(weights) if weights is not None else bundled_weights()
    if not (folder / "state.pt").is_file():
        raise FileNotFoundError(f"{folder}: no M3GNet weights (state.pt, model.json) there")
    import copy

    model = copy.deepcopy(_read_cached(str(folder.resolve())))
    return M3GNetTeacher(model, block or DEFAULT_BLOCK, source=str(folder)).to(device)
