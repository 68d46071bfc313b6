"""CrysGNN graphs of a task's crystals, built once and kept on disk for later runs and
worker processes (``<out>/graphs/<task key>.bin`` with the ids beside it)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from ..backend import dgl
from ..config import GraphSettings
from ..graph.builder import build_graph
from ..graph.errors import StructureError
from .tables import structure_input
from .tasks import TaskData


def _store_key(task: TaskData) -> str:
    text = json.dumps({"source": task.source, "task": task.spec.to_dict(), "graphs": GraphSettings().to_dict()},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class GraphStore:
    """``id -> graph`` of one task; unreadable structures are remembered with their reason."""

    def __init__(self, task: TaskData, folder: Path):
        self.task = task
        self.path = Path(folder) / f"{task.spec.label}-{_store_key(task)}.bin"
        self.graphs: dict[str, dgl.DGLGraph] = {}
        self.failed: dict[str, str] = {}
        index_path = self.path.with_suffix(".json")
        if self.path.is_file() and index_path.is_file():
            index = json.loads(index_path.read_text())
            graphs, _ = dgl.load_graphs(str(self.path))
            if len(graphs) == len(index["ids"]):  # else a write was interrupted: rebuild
                self.graphs = dict(zip(index["ids"], graphs))
                self.failed = dict(index["failed"])

    def ensure(self, indices: Iterable[int], progress=None) -> int:
        """Build (and save) the graphs of ``indices`` not stored yet; returns how many."""
        missing = [i for i in dict.fromkeys(indices)
                   if self.task.ids[i] not in self.graphs and self.task.ids[i] not in self.failed]
        for i in missing:
            sid = self.task.ids[i]
            try:
                self.graphs[sid] = build_graph(structure_input(self.task.structures[i], sid), structure_id=sid)
            except StructureError as exc:
                self.failed[sid] = exc.reason
            if progress is not None:
                progress(1)
        if missing:
            self._save()
        return len(missing)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ids = list(self.graphs)
        partial = self.path.with_name(self.path.name + f".tmp-{os.getpid()}")
        dgl.save_graphs(str(partial), [self.graphs[i] for i in ids])
        os.replace(partial, self.path)
        index = self.path.with_suffix(".json")
        partial_index = index.with_name(index.name + f".tmp-{os.getpid()}")
        partial_index.write_text(json.dumps({"ids": ids, "failed": sorted(self.failed.items())}))
        os.replace(partial_index, index)

    def items(self, indices: Iterable[int]) -> tuple[list, list[int]]:
        """``(graph, target)`` pairs of the usable ``indices``, and the indices kept."""
        pairs, kept = [], []
        for i in indices:
            graph = self.graphs.get(self.task.ids[i])
            if graph is not None:
                pairs.append((graph, self.task.targets[i]))
                kept.append(i)
        return pairs, kept
