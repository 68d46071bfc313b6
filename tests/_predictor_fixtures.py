"""Real structures and an independent re-implementation of the original CGCNN input
pipeline (pymatgen neighbour lists, padded N×12 tensors), for the predictor ports."""

from __future__ import annotations

import json
import warnings
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import data_file
from pymatgen.core import Structure

RADIUS, MAX_NBR, STEP = 8.0, 12, 0.2


def require_mp_table() -> Path:
    return data_file("mp_cgcnn36k.csv.xz")


@lru_cache(maxsize=4)
def mp_rows(count: int = 40) -> pd.DataFrame:
    """First ``count`` rows of the MP table (id, cif, formation energy)."""
    return pd.read_csv(require_mp_table(), nrows=count)


def parse(cif: str) -> Structure:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Structure.from_str(cif, fmt="cif")


@lru_cache(maxsize=1)
def _atom_init() -> dict[int, np.ndarray]:
    text = resources.files("jarvis.core").joinpath("atom_init.json").read_text()
    return {int(z): np.asarray(v, dtype=np.float32) for z, v in json.loads(text).items()}


def original_cgcnn_inputs(structure: Structure) -> dict[str, torch.Tensor] | None:
    """``atom_fea (N,92)``, ``nbr_fea (N,12,41)``, ``nbr_fea_idx (N,12)`` built the way the
    original CGCNN ``CIFData`` does (pymatgen ``get_all_neighbors``, sorted by distance,
    padded with index 0 at distance radius + 1).

    Returns None when the 12th and 13th neighbour distances of some atom tie, so that the
    kept neighbour set is not defined by distance alone.
    """
    atom_fea = np.stack([_atom_init()[site.specie.Z] for site in structure])
    neighbors = structure.get_all_neighbors(RADIUS, include_index=True)
    idx, dist = [], []
    for site_neighbors in neighbors:
        ordered = sorted(site_neighbors, key=lambda n: n[1])
        if len(ordered) > MAX_NBR and abs(ordered[MAX_NBR - 1][1] - ordered[MAX_NBR][1]) < 1e-4:
            return None
        ordered = ordered[:MAX_NBR]
        pad = MAX_NBR - len(ordered)
        idx.append([n[2] for n in ordered] + [0] * pad)
        dist.append([n[1] for n in ordered] + [RADIUS + 1.0] * pad)
    centers = np.arange(0.0, RADIUS + STEP, STEP)
    distances = np.asarray(dist)
    nbr_fea = np.exp(-((distances[..., None] - centers) ** 2) / STEP**2)
    return {
        "atom_fea": torch.tensor(atom_fea, dtype=torch.float32),
        "nbr_fea": torch.tensor(nbr_fea, dtype=torch.float32),
        "nbr_fea_idx": torch.tensor(idx, dtype=torch.long),
    }


def original_batch(structures: list[Structure]) -> dict:
    """Concatenate per-crystal inputs like CGCNN's ``collate_pool`` (indices offset)."""
    parts = [original_cgcnn_inputs(s) for s in structures]
    offset, atom_fea, nbr_fea, nbr_idx, crystal_atom_idx = 0, [], [], [], []
    for part in parts:
        n = part["atom_fea"].shape[0]
        atom_fea.append(part["atom_fea"])
        nbr_fea.append(part["nbr_fea"])
        nbr_idx.append(part["nbr_fea_idx"] + offset)
        crystal_atom_idx.append(torch.arange(offset, offset + n))
        offset += n
    return {
        "atom_fea": torch.cat(atom_fea),
        "nbr_fea": torch.cat(nbr_fea),
        "nbr_fea_idx": torch.cat(nbr_idx),
        "crystal_atom_idx": crystal_atom_idx,
    }


@lru_cache(maxsize=2)
def untied_structures(count: int = 6) -> tuple[tuple[str, Structure], ...]:
    """``count`` real MP structures (≤ 12 atoms) whose 12-neighbour sets are unambiguous."""
    chosen = []
    for row in mp_rows(60).itertuples():
        structure = parse(row.cif)
        if len(structure) <= 12 and original_cgcnn_inputs(structure) is not None:
            chosen.append((row.material_id, structure))
        if len(chosen) == count:
            break
    return tuple(chosen)


def batch_norm(x: torch.Tensor, module: torch.nn.BatchNorm1d, training: bool) -> torch.Tensor:
    """Batch norm written out: batch statistics (biased variance) or running statistics."""
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
    else:
        mean, var = module.running_mean, module.running_var
    return (x - mean) / torch.sqrt(var + module.eps) * module.weight + module.bias


def randomise_running_stats(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every batch norm non-trivial running statistics (for eval-mode comparisons)."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.3)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)


def batched_graph(structures: list[tuple[str, Structure]]):
    """One DGL batch of the package's graphs of ``(id, structure)`` pairs."""
    from crysgnn_dgl import build_graph
    from crysgnn_dgl.backend import dgl

    return dgl.batch([build_graph(s, structure_id=sid) for sid, s in structures])


def permuted_largest(structures: list[tuple[str, Structure]], seed: int = 0) -> tuple[str, Structure, list[int], Structure]:
    """The largest of ``(id, structure)`` pairs, a seeded site order, and the structure
    with its sites in that order."""
    sid, structure = max(structures, key=lambda item: len(item[1]))
    order = torch.randperm(len(structure), generator=torch.Generator().manual_seed(seed)).tolist()
    return sid, structure, order, type(structure).from_sites([structure[i] for i in order])


def teacher_checkpoint(folder: Path) -> Path:
    """The bundled teacher when the package ships one, else a freshly initialised CrysGNN
    checkpoint written to ``folder`` (real model, untrained weights)."""
    from crysgnn_dgl import CrysGNN, save_checkpoint
    from crysgnn_dgl.teacher import default_teacher_path

    bundled = default_teacher_path()
    if bundled.is_file():
        return bundled
    torch.manual_seed(0)
    path = folder / "untrained_teacher.pt"
    save_checkpoint(path, CrysGNN())
    return path


@pytest.fixture
def single_thread():
    """Run a test with one torch thread (small graphs; avoids oversubscribed cores) and
    restore the previous thread count afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
