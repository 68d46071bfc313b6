"""Embed structures with a frozen teacher: per-atom and mean-pooled per-crystal vectors."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .backend import dgl
from .graph.builder import graph_from_structure
from .graph.errors import StructureError
from .graph.structures import to_structure
from .teacher import FrozenTeacher

#: ``progress(embedded, skipped)``, called after every batch
Progress = Callable[[int, int], None]


def output_path(path: str | os.PathLike) -> Path:
    """Where an embedding archive named ``path`` is written (``.npz`` appended if missing)."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def skipped_report_path(path: str | os.PathLike) -> Path:
    """The ``<archive>.skipped.tsv`` that lists the structures an archive lacks."""
    return Path(str(output_path(path)) + ".skipped.tsv")


@dataclass
class EmbeddingResult:
    """Embeddings of the structures that could be read, and the ones that could not.

    ``atom_embeddings[atom_offsets[i]:atom_offsets[i + 1]]`` are crystal ``ids[i]``'s atoms
    in site order; ``crystal_embeddings[i]`` is their mean. ``skipped`` lists ``(id,
    reason)`` of the structures left out, ``notes`` ``(id, note)`` of embedded structures
    worth a look (atoms padded for lack of neighbours).
    """

    ids: list[str] = field(default_factory=list)
    atom_embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    atom_offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    atomic_numbers: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    crystal_embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the ``.npz`` (skipped structures and notes included) and, when something
        was skipped, ``<path>.skipped.tsv``; a report left by an earlier run is removed.

        Both files are written to temporary names and renamed into place, the report
        first, so a reader never sees a half-written archive, and an archive is never
        paired with another run's report.
        """
        path = output_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        report = skipped_report_path(path)
        suffix = f".tmp-{os.getpid()}"
        archive_tmp = path.with_name(f".{path.name}{suffix}.npz")
        report_tmp = report.with_name(f".{report.name}{suffix}")
        try:
            with open(archive_tmp, "wb") as handle:
                # ignored arg-type: numpy's stub lets **kwargs fill allow_pickle: bool (no array is named so)
                np.savez(handle, **self._arrays())  # type: ignore[arg-type]
            if self.skipped:
                lines = ["structure_id\treason"] + [f"{s}\t{_one_line(r)}" for s, r in self.skipped]
                report_tmp.write_text("\n".join(lines) + "\n")
                os.replace(report_tmp, report)
            else:
                report.unlink(missing_ok=True)
            os.replace(archive_tmp, path)
        finally:
            for leftover in (archive_tmp, report_tmp):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
        return path

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "ids": np.asarray(self.ids, dtype=str),
            "atom_embeddings": self.atom_embeddings,
            "atom_offsets": self.atom_offsets,
            "atomic_numbers": self.atomic_numbers,
            "crystal_embeddings": self.crystal_embeddings,
            "skipped_ids": np.asarray([s for s, _ in self.skipped], dtype=str),
            "skipped_reasons": np.asarray([r for _, r in self.skipped], dtype=str),
            "note_ids": np.asarray([s for s, _ in self.notes], dtype=str),
            "notes": np.asarray([n for _, n in self.notes], dtype=str),
        }


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _batches(pairs: Iterator[tuple[str, Any]], size: int) -> Iterator[list[tuple[str, Any]]]:
    while chunk := list(islice(pairs, size)):
        yield chunk


def _graph(item: Any, sid: str, teacher: FrozenTeacher, notes: list[tuple[str, str]]) -> dgl.DGLGraph:
    """Graph of one item; the featuriser's warnings (padding) become notes on ``sid``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        structure = to_structure(item, sid)
        del caught[:]  # pymatgen's parser chatter; its reasons for failing are in the error
        graph = graph_from_structure(structure, teacher.graph_settings, sid)
    notes.extend((sid, _one_line(str(w.message)).replace(f"structure {sid!r}: ", "")) for w in caught)
    return graph


def embed_items(
    teacher: FrozenTeacher,
    pairs: Iterable[tuple[str, Any]],
    batch_size: int = 64,
    progress: Progress | None = None,
) -> EmbeddingResult:
    """Embed ``(id, item)`` pairs (items as :mod:`crysgnn_dgl.pretrain.sources` yields them).

    Items that cannot become a graph, or whose embedding is not finite, are skipped and
    reported with their reason; ``progress(embedded, skipped)`` is called after each batch.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch size must be an integer >= 1, got {batch_size!r}")
    result = EmbeddingResult()
    atoms, crystals, numbers, sizes_all = [], [], [], []
    for chunk in _batches(iter(pairs), batch_size):
        graphs, names = [], []
        for sid, item in chunk:
            try:
                graphs.append(_graph(item, sid, teacher, result.notes))
            except StructureError as exc:
                result.skipped.append((sid, exc.reason))
                continue
            names.append(sid)
        if graphs:
            batch = dgl.batch(graphs)
            node = teacher.embed(batch).cpu()
            sizes = batch.batch_num_nodes().tolist()
            for sid, part, z in zip(names, torch.split(node, sizes), torch.split(batch.ndata["atomic_number"], sizes)):
                if not bool(torch.isfinite(part).all()):
                    result.skipped.append((sid, "the teacher's embedding is not finite (NaN or inf)"))
                    continue
                result.ids.append(sid)
                sizes_all.append(len(part))
                atoms.append(part.numpy())
                numbers.append(z.numpy())
                crystals.append(part.mean(dim=0).numpy())
        if progress is not None:
            progress(len(result.ids), len(result.skipped))
    width = teacher.embedding_dim
    result.atom_embeddings = np.concatenate(atoms) if atoms else np.zeros((0, width), np.float32)
    result.atomic_numbers = np.concatenate(numbers) if numbers else np.zeros(0, np.int64)
    result.crystal_embeddings = np.stack(crystals) if crystals else np.zeros((0, width), np.float32)
    result.atom_offsets = np.concatenate([[0], np.cumsum(sizes_all)]).astype(np.int64)
    return result


def embed_sources(
    teacher: FrozenTeacher, sources: Iterable[Any], batch_size: int = 64, progress: Progress | None = None
) -> EmbeddingResult:
    """Embed every structure of several :class:`~crysgnn_dgl.pretrain.sources.StructureSource`."""
    from .pretrain.sources import iterate_sources

    return embed_items(teacher, iterate_sources(list(sources)), batch_size, progress)
