"""Embed structures with a frozen teacher: per-atom and mean-pooled per-crystal vectors."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .backend import dgl
from .graph.builder import graph_from_structure
from .graph.errors import StructureError
from .teacher import FrozenTeacher


@dataclass
class EmbeddingResult:
    """Embeddings of the structures that could be read, and the ones that could not.

    ``atom_embeddings[atom_offsets[i]:atom_offsets[i + 1]]`` are crystal ``ids[i]``'s atoms
    in site order; ``crystal_embeddings[i]`` is their mean.
    """

    ids: list[str] = field(default_factory=list)
    atom_embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    atom_offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    atomic_numbers: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    crystal_embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the ``.npz`` (and ``<path>.skipped.tsv`` when something was skipped)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")  # where numpy writes it anyway
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            ids=np.asarray(self.ids, dtype=str),
            atom_embeddings=self.atom_embeddings,
            atom_offsets=self.atom_offsets,
            atomic_numbers=self.atomic_numbers,
            crystal_embeddings=self.crystal_embeddings,
        )
        if self.skipped:
            lines = ["structure_id\treason"] + [f"{s}\t{r}" for s, r in self.skipped]
            Path(str(path) + ".skipped.tsv").write_text("\n".join(lines) + "\n")
        return path


def _batches(pairs: Iterator[tuple[str, Any]], size: int) -> Iterator[list[tuple[str, Any]]]:
    while chunk := list(islice(pairs, size)):
        yield chunk


def embed_items(teacher: FrozenTeacher, pairs: Iterable[tuple[str, Any]], batch_size: int = 64) -> EmbeddingResult:
    """Embed ``(id, item)`` pairs (items as :mod:`crysgnn_dgl.pretrain.sources` yields them);
    items that cannot become a graph are skipped and reported with their reason."""
    from .pretrain.sources import to_pymatgen

    result = EmbeddingResult()
    atoms, crystals, numbers, sizes_all = [], [], [], []
    for chunk in _batches(iter(pairs), batch_size):
        graphs = []
        for sid, item in chunk:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    graph = graph_from_structure(to_pymatgen(item, sid), teacher.graph_settings, sid)
            except StructureError as exc:
                result.skipped.append((sid, exc.reason))
                continue
            graphs.append(graph)
            result.ids.append(sid)
        if not graphs:
            continue
        batch = dgl.batch(graphs)
        node = teacher.embed(batch).cpu()
        sizes = batch.batch_num_nodes().tolist()
        sizes_all.extend(sizes)
        atoms.append(node.numpy())
        numbers.append(batch.ndata["atomic_number"].numpy())
        crystals.extend(part.mean(dim=0).numpy() for part in torch.split(node, sizes))
    width = teacher.embedding_dim
    result.atom_embeddings = np.concatenate(atoms) if atoms else np.zeros((0, width), np.float32)
    result.atomic_numbers = np.concatenate(numbers) if numbers else np.zeros(0, np.int64)
    result.crystal_embeddings = np.stack(crystals) if crystals else np.zeros((0, width), np.float32)
    result.atom_offsets = np.concatenate([[0], np.cumsum(sizes_all)]).astype(np.int64)
    return result


def embed_sources(teacher: FrozenTeacher, sources: Iterable[Any], batch_size: int = 64) -> EmbeddingResult:
    """Embed every structure of several :class:`~crysgnn_dgl.pretrain.sources.StructureSource`."""
    from .pretrain.sources import iterate_sources

    return embed_items(teacher, iterate_sources(list(sources)), batch_size)
