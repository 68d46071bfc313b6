"""CGCNN adapters: the package's DGL port, and any module with the original CGCNN call
signature ``(atom_fea, nbr_fea, nbr_fea_idx, crystal_atom_idx)`` and layer names.

Per-atom embeddings are the output of ``convs[-1]`` in both.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from crysgnn_dgl.backend import dgl
from crysgnn_dgl.distill.keys import KeyField
from crysgnn_dgl.distill.targets import CrystalBatch
from crysgnn_dgl.graph.atom_features import FEATURE_DIM
from crysgnn_dgl.graph.gaussian import gaussian_centers

from .base import (
    Adapter,
    AdapterError,
    HookPoint,
    PortAdapter,
    check_cgcnn_features,
    crystal_namer,
    first_tensor_arg,
    reads_crysgnn_graphs,
    require_release_features,
)

ORIGINAL_SIGNATURE = ("atom_fea", "nbr_fea", "nbr_fea_idx", "crystal_atom_idx")


def _last_conv(student: nn.Module, what: str) -> HookPoint:
    convs = getattr(student, "convs", None)
    if not isinstance(convs, nn.ModuleList) or len(convs) == 0:
        raise AdapterError(f"{what} has no non-empty ModuleList 'convs' to take per-atom embeddings from")
    return HookPoint(convs[-1], f"convs.{len(convs) - 1}", "output", None)


class CGCNNPortAdapter(PortAdapter):
    """crysgnn_dgl.models.cgcnn.CGCNN (DGL port, called as ``model(graph)``)."""

    name = "cgcnn"
    port = "crysgnn_dgl.models.cgcnn.CGCNN"

    def hook_point(self, student: nn.Module) -> HookPoint:
        return _last_conv(student, "the CGCNN port")

    def student_width(self, student: nn.Module) -> int | None:
        conv = student.convs[-1]
        return getattr(conv, "node_dim", None)


def _signature_names(model: Any) -> tuple[str, ...]:
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError, AttributeError):
        return ()
    return tuple(parameters)[:4]


def _gaussian_distances(rows: torch.Tensor, centers: torch.Tensor, width: float) -> torch.Tensor:
    """Distances that the Gaussian rows encode, from the peak and its neighbour."""
    peak = rows.argmax(dim=1).clamp(max=centers.numel() - 2)
    take = lambda k: rows.gather(1, k.unsqueeze(1)).squeeze(1).clamp_min(1e-30).log()  # noqa: E731
    mu_a, mu_b = centers[peak], centers[peak + 1]
    difference = take(peak) - take(peak + 1)
    return (width**2 * difference / (mu_a - mu_b) + mu_a + mu_b) / 2


def verify_edge_grid(nbr_fea: torch.Tensor, settings: Any) -> None:
    """Raise unless ``nbr_fea`` is the Gaussian expansion on the teacher's grid."""
    expected = settings.num_gaussians
    if nbr_fea.shape[-1] != expected:
        raise AdapterError(
            f"nbr_fea has {nbr_fea.shape[-1]} Gaussian features per bond; the teacher's featuriser "
            f"expands distances on {expected} centres ({settings.gaussian_start}..{settings.gaussian_stop} "
            f"step {settings.gaussian_step}, width {settings.gaussian_width})"
        )
    rows = nbr_fea.detach().reshape(-1, expected).to("cpu", torch.float64)
    rows = rows[rows.amax(dim=1) > 0.5]
    if rows.numel() == 0:
        return
    centers = gaussian_centers(settings).to(torch.float64)
    distances = _gaussian_distances(rows, centers, settings.gaussian_width)
    rebuilt = torch.exp(-((distances.unsqueeze(1) - centers) ** 2) / settings.gaussian_width**2)
    error = float((rebuilt - rows).abs().max())
    if error > 1e-3:
        raise AdapterError(
            f"nbr_fea is not the teacher's Gaussian expansion (centres {settings.gaussian_start}.."
            f"{settings.gaussian_stop} step {settings.gaussian_step}, width {settings.gaussian_width}): "
            f"largest deviation {error:.3g}"
        )


class CGCNNSignatureAdapter(Adapter):
    """any module called as ``(atom_fea, nbr_fea, nbr_fea_idx, crystal_atom_idx)`` with the
    original CGCNN layer names (``embedding``, ``convs``, ``conv_to_fc``, ...)."""

    name = "cgcnn_original"

    def __init__(self) -> None:
        self._grid_verified = False
        self._centers: torch.Tensor | None = None

    @classmethod
    def matches(cls, model: Any) -> bool:
        return (
            isinstance(model, nn.Module)
            and _signature_names(model) == ORIGINAL_SIGNATURE
            and isinstance(getattr(model, "convs", None), nn.ModuleList)
        )

    def hook_point(self, student: nn.Module) -> HookPoint:
        return _last_conv(student, type(student).__name__)

    def student_width(self, student: nn.Module) -> int | None:
        width = getattr(student.convs[-1], "atom_fea_len", None)
        embedding = getattr(student, "embedding", None)
        if width is None and isinstance(embedding, nn.Linear):
            width = embedding.out_features
        return width

    def check_teacher(self, student: nn.Module, teacher: Any) -> None:
        if not reads_crysgnn_graphs(teacher):
            raise AdapterError(
                f"{type(teacher).__name__} reads atomic numbers, coordinates and lattices; the original CGCNN "
                "call (atom_fea, nbr_fea, nbr_fea_idx, crystal_atom_idx) carries neither coordinates nor lattices"
            )
        require_release_features(teacher)
        embedding = getattr(student, "embedding", None)
        if isinstance(embedding, nn.Linear) and embedding.in_features != FEATURE_DIM:
            raise AdapterError(
                f"the student's embedding reads {embedding.in_features}-d atom features; the teacher "
                f"needs the {FEATURE_DIM}-d CGCNN features"
            )

    def _distances(self, nbr_fea: torch.Tensor, settings: Any) -> torch.Tensor:
        """``(atoms, neighbours)`` bond lengths recovered from the Gaussian rows."""
        if self._centers is None:
            self._centers = gaussian_centers(settings).to(torch.float32)
        rows = nbr_fea.reshape(-1, nbr_fea.shape[-1]).to(torch.float32)
        distances = _gaussian_distances(rows, self._centers.to(rows.device), settings.gaussian_width)
        return distances.reshape(nbr_fea.shape[0], -1)

    def crystal_batch(self, student: nn.Module, args: tuple, kwargs: dict, teacher: Any) -> CrystalBatch:
        atom_fea = first_tensor_arg(args, kwargs, "atom_fea", 0).detach()
        nbr_fea = first_tensor_arg(args, kwargs, "nbr_fea", 1).detach()
        nbr_idx = first_tensor_arg(args, kwargs, "nbr_fea_idx", 2).detach().long()
        crystals = list(first_tensor_arg(args, kwargs, "crystal_atom_idx", 3))
        check_cgcnn_features(atom_fea, "atom_fea")
        if not self._grid_verified:
            verify_edge_grid(nbr_fea, teacher.graph_settings)
            self._grid_verified = True
        num_atoms, num_nbr = nbr_idx.shape
        counts = [int(len(c)) for c in crystals]
        if all(isinstance(c, torch.Tensor) for c in crystals):
            rows = torch.cat([c.reshape(-1) for c in crystals]).long().cpu()
        else:
            rows = torch.cat([torch.as_tensor(c, dtype=torch.long).reshape(-1) for c in crystals]).cpu()
        sizes = torch.tensor(counts, dtype=torch.long)
        crystal_of = torch.repeat_interleave(torch.arange(len(crystals)), sizes)

        def names(i: int) -> str:  # formulas only when an error names a crystal
            return crystal_namer(atom_fea[rows].cpu(), counts)(i)

        owner = torch.full((num_atoms,), -1, dtype=torch.long)
        seen = torch.zeros(num_atoms, dtype=torch.long).index_add_(0, rows, torch.ones_like(rows))
        if rows.numel() != num_atoms or bool((seen != 1).any()):
            bad_atom = int((seen != 1).nonzero()[0]) if bool((seen != 1).any()) else num_atoms - 1
            owner[rows] = crystal_of
            claims = owner[nbr_idx[bad_atom].cpu()] if bool((rows == bad_atom).sum() == 0) else crystal_of[rows == bad_atom]
            claims = claims[claims >= 0]
            culprit = int(claims[0]) if claims.numel() else 0
            raise AdapterError(
                f"{names(culprit)}: crystal_atom_idx does not assign every atom of the batch to exactly "
                f"one crystal (atom {bad_atom} of the batch is listed {int(seen[bad_atom])} times)"
            )
        owner[rows] = crystal_of
        local = torch.empty(num_atoms, dtype=torch.long)
        local[rows] = torch.arange(num_atoms) - torch.repeat_interleave(torch.cumsum(sizes, 0) - sizes, sizes)
        nbr_cpu = nbr_idx.cpu()
        foreign = owner[nbr_cpu] != owner.unsqueeze(1)
        if bool(foreign.any()):
            atom = int(foreign.any(dim=1).nonzero()[0])
            raise AdapterError(f"{names(int(owner[atom]))}: atom {int(local[atom])} has neighbours in another crystal")
        ordered_fea = atom_fea[rows]
        distances = self._distances(nbr_fea, teacher.graph_settings)[rows.to(nbr_fea.device)]
        ordered_local = local[nbr_cpu[rows]]
        offsets = [0]
        for c in counts:
            offsets.append(offsets[-1] + c)

        def build(indices: list[int]) -> dgl.DGLGraph:
            graphs = []
            for i in indices:
                a, b, n = offsets[i], offsets[i + 1], counts[i]
                src = ordered_local[a:b].reshape(-1)
                dst = torch.arange(n).repeat_interleave(num_nbr)
                graph = dgl.graph((src, dst), num_nodes=n)
                graph.ndata["atom_features"] = ordered_fea[a:b].float()
                graph.edata["edge_features"] = nbr_fea[rows[a:b].to(nbr_fea.device)].reshape(n * num_nbr, -1).float()
                graphs.append(graph)
            return dgl.batch(graphs)

        # the key holds what determines the teacher's input compactly: atom features,
        # neighbour indices and the bond lengths the Gaussian rows encode (not 41 numbers per bond)
        fields = [
            KeyField(ordered_fea, counts, decimals=4),
            KeyField(distances, counts, decimals=4),
            KeyField(ordered_local, counts, decimals=0),
        ]
        return CrystalBatch(counts, fields, build, atom_features=ordered_fea, rows=rows, names=names)
