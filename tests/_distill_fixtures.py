"""Shared pieces of the distillation tests: real structures, a random teacher, and a
module with the original CGCNN call signature and layer names."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from conftest import data_file
from pymatgen.core import Structure
from torch import nn

from crysgnn_dgl import CrysGNN, GraphSettings, ModelSettings, build_graph, load_teacher, save_checkpoint
from crysgnn_dgl.backend import dgl
from crysgnn_dgl.distill import HEAD_NAME
from crysgnn_dgl.graph.gaussian import GaussianExpansion



@lru_cache(maxsize=4)
def mp_rows(count: int = 48, max_atoms: int = 8) -> pd.DataFrame:
    """The first ``count`` MP crystals with at most ``max_atoms`` sites."""
    frame = pd.read_csv(data_file("mp_cgcnn36k.csv.xz"), nrows=max(400, count * 6))
    sizes = frame.cif.map(lambda text: len(Structure.from_str(text, fmt="cif")))
    return frame[sizes <= max_atoms].head(count).reset_index(drop=True)


def mp_structures(count: int = 8, max_atoms: int = 8) -> list[Structure]:
    return [Structure.from_str(t, fmt="cif") for t in mp_rows(max(count, 48), max_atoms).cif[:count]]


def random_teacher(tmp_path: Path, seed: int = 0):
    torch.manual_seed(seed)
    model = CrysGNN(ModelSettings(), GraphSettings())
    path = save_checkpoint(tmp_path / "teacher.pt", model)
    return load_teacher(path)


class OriginalConvLayer(nn.Module):
    """The gated convolution with the original CGCNN layer names and dense neighbour lists."""

    def __init__(self, atom_fea_len: int, nbr_fea_len: int):
        super().__init__()
        self.atom_fea_len = atom_fea_len
        self.fc_full = nn.Linear(2 * atom_fea_len + nbr_fea_len, 2 * atom_fea_len)
        self.bn1 = nn.BatchNorm1d(2 * atom_fea_len)
        self.bn2 = nn.BatchNorm1d(atom_fea_len)

    def forward(self, atom_in, nbr_fea, nbr_fea_idx):
        n, m = nbr_fea_idx.shape
        pairs = torch.cat(
            [atom_in.unsqueeze(1).expand(n, m, self.atom_fea_len), atom_in[nbr_fea_idx], nbr_fea], dim=2
        )
        gated = self.bn1(self.fc_full(pairs).view(-1, 2 * self.atom_fea_len)).view(n, m, -1)
        gate, core = gated.chunk(2, dim=2)
        summed = self.bn2((torch.sigmoid(gate) * F.softplus(core)).sum(dim=1))
        return F.softplus(atom_in + summed)


class OriginalSignatureCGCNN(nn.Module):
    """Crystal graph network called as ``(atom_fea, nbr_fea, nbr_fea_idx, crystal_atom_idx)``."""

    def __init__(self, orig_atom_fea_len=92, nbr_fea_len=41, atom_fea_len=32, n_conv=2, h_fea_len=32):
        super().__init__()
        self.embedding = nn.Linear(orig_atom_fea_len, atom_fea_len)
        self.convs = nn.ModuleList(OriginalConvLayer(atom_fea_len, nbr_fea_len) for _ in range(n_conv))
        self.conv_to_fc = nn.Linear(atom_fea_len, h_fea_len)
        self.conv_to_fc_softplus = nn.Softplus()
        self.fc_out = nn.Linear(h_fea_len, 1)

    def forward(self, atom_fea, nbr_fea, nbr_fea_idx, crystal_atom_idx):
        atom_fea = self.embedding(atom_fea)
        for conv in self.convs:
            atom_fea = conv(atom_fea, nbr_fea, nbr_fea_idx)
        pooled = torch.stack([atom_fea[idx].mean(dim=0) for idx in crystal_atom_idx])
        hidden = self.conv_to_fc_softplus(self.conv_to_fc(self.conv_to_fc_softplus(pooled)))
        return self.fc_out(hidden)


def original_cgcnn_batch(structures, settings: GraphSettings = GraphSettings()):
    """The original CGCNN collate output ``(atom_fea, nbr_fea, nbr_fea_idx, crystal_atom_idx)``."""
    expand = GaussianExpansion(settings)
    atom_fea, nbr_fea, nbr_idx, crystal_idx, start = [], [], [], [], 0
    for s in structures:
        g = build_graph(s, settings)
        n = g.num_nodes()
        src, _ = g.edges()
        atom_fea.append(g.ndata["atom_features"])
        nbr_fea.append(expand(g.edata["distance"]).view(n, settings.max_neighbors, -1))
        nbr_idx.append(src.view(n, settings.max_neighbors) + start)
        crystal_idx.append(torch.arange(start, start + n))
        start += n
    return torch.cat(atom_fea), torch.cat(nbr_fea), torch.cat(nbr_idx), crystal_idx


def parameter_grads(module: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}


def teacher_rows(teacher, structures) -> torch.Tensor:
    """Teacher embeddings computed independently: graphs built from the structures."""
    return teacher.embed(dgl.batch([build_graph(s, teacher.graph_settings) for s in structures]))


def reference_kd(student_rows, head, target, counts, normalize=True) -> torch.Tensor:
    """``mean_crystals mean_atoms mean_dims (P(s) - t)²`` written out crystal by crystal."""
    projected = head(student_rows)
    if normalize:
        projected = F.normalize(projected, dim=1)
    per_crystal, start = [], 0
    for n in counts:
        diff = projected[start : start + n] - target[start : start + n].to(projected.dtype)
        per_crystal.append((diff**2).mean())
        start += n
    return torch.stack(per_crystal).mean()


class Capture:
    """A plain forward hook that keeps a layer's output (for reference computations)."""

    def __init__(self, module: nn.Module, index=None, inputs: bool = False):
        self.value = None
        self.index = index
        if inputs:
            self.handle = module.register_forward_pre_hook(self._pre)
        else:
            self.handle = module.register_forward_hook(self._post)

    def _post(self, module, args, output):
        self.value = output if self.index is None else output[self.index]

    def _pre(self, module, args):
        self.value = args[self.index or 0]

    def remove(self):
        self.handle.remove()


def explicit_gradients(
    module: nn.Module,
    hook,
    capture: Callable[[], Capture],
    loss: Callable[[], torch.Tensor],
    target: torch.Tensor,
    counts: list[int],
    kd_weight: float = 1.0,
    head_prefix: str = HEAD_NAME,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Remove ``hook`` and compute, by hand, the gradients of ``loss() + kd_weight · KD``
    (KD from :func:`reference_kd` on the student rows ``capture()`` records). Returns the
    gradients of ``module`` and of the hook's head (named ``<head_prefix>.<param>``) and
    the KD value."""
    head = hook.head
    hook.remove()
    module.zero_grad()
    head.zero_grad()
    captured = capture()
    value = loss()
    kd = reference_kd(captured.value, head, target, counts)
    (value + kd_weight * kd).backward()
    reference = parameter_grads(module)
    reference.update({f"{head_prefix}.{n}": p.grad.clone() for n, p in head.named_parameters()})
    return reference, kd


def assert_same_grads(first: dict, second: dict, atol: float = 1e-6) -> None:
    assert first.keys() == second.keys(), (sorted(first), sorted(second))
    for name in first:
        assert torch.allclose(first[name], second[name], atol=atol, rtol=0), (
            name, float((first[name] - second[name]).abs().max()),
        )
