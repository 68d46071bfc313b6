"""Featurised inputs of a task's crystals for one predictor, built once and kept on disk
for later runs and worker processes (``<out>/graphs/<task>-<predictor>-<key>.*``).

Each input is a tuple of DGL graphs and tensors; position ``k`` of every tuple is saved
in one file (``dgl.save_graphs`` for graphs, a weights-only ``torch.save`` for tensors)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from ..backend import dgl
from ..config import GraphSettings
from ..graph.errors import StructureError
from .predictors import PredictorSpec
from .tasks import TaskData


def _store_key(task: TaskData, predictor: PredictorSpec) -> str:
    values: dict[str, Any] = {"source": task.source, "task": task.spec.to_dict(), "graphs": GraphSettings().to_dict(),
              "featurize": f"{predictor.featurize.__module__}.{predictor.featurize.__qualname__}",
              "hyper": predictor.hyper}
    if predictor.inputs_version != 1:  # absent from the keys of stores of the first version
        values["inputs_version"] = predictor.inputs_version
    text = json.dumps(values, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class GraphStore:
    """``id -> inputs`` of one task and predictor; unusable structures are remembered
    with their reason (and listed in the report)."""

    def __init__(self, task: TaskData, predictor: PredictorSpec, folder: Path):
        self.task = task
        self.predictor = predictor
        self.stem = Path(folder) / f"{task.spec.label}-{predictor.name}-{_store_key(task, predictor)}"
        self.inputs: dict[str, tuple] = {}
        self.failed: dict[str, str] = {}
        self._load()

    @property
    def index_path(self) -> Path:
        """The store's index (``<stem>.json``; the stem may hold dots, e.g. ``mine.csv-cgcnn-…``)."""
        return self.stem.with_name(f"{self.stem.name}.json")

    def _part(self, position: int, kind: str) -> Path:
        return self.stem.with_name(f"{self.stem.name}.{position}.{kind}")

    def _load(self) -> None:
        index_path = self.index_path
        if not index_path.is_file():
            return
        index = json.loads(index_path.read_text())
        columns = []
        for position, kind in enumerate(index["kinds"]):
            path = self._part(position, kind)
            if not path.is_file():
                return
            if kind == "graphs":
                columns.append(dgl.load_graphs(str(path))[0])
            else:
                columns.append(torch.load(path, weights_only=True))
        if any(len(column) != len(index["ids"]) for column in columns):
            return  # an interrupted write: rebuild
        self.inputs = {sid: tuple(column[i] for column in columns) for i, sid in enumerate(index["ids"])}
        self.failed = dict(index["failed"])

    def missing(self, indices: Iterable[int]) -> list[int]:
        """The ``indices`` neither stored nor known to be unusable (without repeats)."""
        return [i for i in dict.fromkeys(indices)
                if self.task.ids[i] not in self.inputs and self.task.ids[i] not in self.failed]

    def ensure(self, indices: Iterable[int], progress=None) -> int:
        """Featurise (and save) the crystals of ``indices`` not stored yet; returns how many."""
        missing = self.missing(indices)
        for i in missing:
            sid = self.task.ids[i]
            try:
                self.inputs[sid] = self.predictor.featurize(self.task.structures[i], sid)
            except StructureError as exc:
                self.failed[sid] = exc.reason
            if progress is not None:
                progress(1)
        if missing:
            self._save()
        return len(missing)

    def _save(self) -> None:
        self.stem.parent.mkdir(parents=True, exist_ok=True)
        ids = list(self.inputs)
        width = len(next(iter(self.inputs.values()))) if ids else 0
        kinds = []
        for position in range(width):
            column = [self.inputs[sid][position] for sid in ids]
            kind = "graphs" if isinstance(column[0], dgl.DGLGraph) else "tensors"
            kinds.append(kind)
            path = self._part(position, kind)
            partial = path.with_name(f"{path.name}.tmp-{os.getpid()}")
            if kind == "graphs":
                dgl.save_graphs(str(partial), column)
            else:
                torch.save(column, partial)
            os.replace(partial, path)
        index = self.index_path
        partial_index = index.with_name(f"{index.name}.tmp-{os.getpid()}")
        partial_index.write_text(json.dumps({"ids": ids, "kinds": kinds, "failed": sorted(self.failed.items())}))
        os.replace(partial_index, index)

    def items(self, indices: Iterable[int]) -> tuple[list, list[int]]:
        """``(inputs, target)`` pairs of the usable ``indices``, and the indices kept."""
        pairs, kept = [], []
        for i in indices:
            inputs = self.inputs.get(self.task.ids[i])
            if inputs is not None:
                pairs.append((inputs, self.task.targets[i]))
                kept.append(i)
        return pairs, kept
