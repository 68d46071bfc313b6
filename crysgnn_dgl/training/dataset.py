"""Labelled crystal-graph datasets for training predictors, and their batching."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..backend import dgl
from ..config import GraphSettings
from ..graph.builder import build_graphs
from ..graph.io import read_labelled_table


class CrystalGraphDataset(Dataset):
    """Crystal graphs with one scalar target each, built once up front.

    Items that cannot become a graph (bad CIF, unsupported element, ...) or whose target
    is not a finite number are skipped and listed in :attr:`skipped` as ``(id, reason)``;
    everything else is kept in input order. ``dataset[i]`` is ``(graph, target)``.
    """

    def __init__(
        self,
        structures: Iterable[Any],
        targets: Iterable[float],
        ids: Iterable[str] | None = None,
        graph_settings: GraphSettings | None = None,
    ):
        self.graph_settings = graph_settings or GraphSettings()
        items, values = list(structures), [float(t) for t in targets]
        if len(items) != len(values):
            raise ValueError(f"{len(items)} structures but {len(values)} targets")
        names = [str(i) for i in ids] if ids is not None else [f"item {k}" for k in range(len(items))]
        if len(names) != len(items):
            raise ValueError(f"{len(items)} structures but {len(names)} ids")
        duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
        if duplicates:
            raise ValueError(f"ids must be unique; repeated: {duplicates[:5]}")
        self.skipped: list[tuple[str, str]] = []
        finite = []
        for name, item, value in zip(names, items, values):
            if math.isfinite(value):
                finite.append((name, item, value))
            else:
                self.skipped.append((name, f"target is not a finite number ({value})"))
        report = build_graphs([f[1] for f in finite], self.graph_settings, ids=[f[0] for f in finite])
        self.skipped.extend(report.skipped)
        target_of = {name: value for name, _, value in finite}
        self.graphs = report.graphs
        self.ids: list[str] = report.ids
        self.targets = torch.tensor([target_of[name] for name in report.ids], dtype=torch.float32)

    @classmethod
    def from_table(cls, path: str | Path, target_column: str, cif_column: str | None = None,
                   id_column: str | None = None, limit: int | None = None,
                   graph_settings: GraphSettings | None = None) -> CrystalGraphDataset:
        """Dataset from a table (:func:`~crysgnn_dgl.graph.io.read_labelled_table`: CSV
        with a CIF column, or JSON of pymatgen dicts; ``cif_column`` defaults to ``cif`` /
        ``structure``) and a target column; rows whose target is not a number are listed
        in :attr:`skipped` first."""
        table = read_labelled_table(path, target_column, cif_column, id_column, limit)
        dataset = cls(table.structures, table.targets, ids=table.ids, graph_settings=graph_settings)
        dataset.skipped[:0] = table.skipped
        return dataset

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, index: int) -> tuple[dgl.DGLGraph, torch.Tensor]:
        return self.graphs[index], self.targets[index]

    def skip_summary(self) -> str:
        """One line per skipped item, or an empty string."""
        return "\n".join(f"skipped {sid}: {why}" for sid, why in self.skipped)


def collate_graphs(samples: Sequence[tuple[dgl.DGLGraph, torch.Tensor]]) -> tuple[dgl.DGLGraph, torch.Tensor]:
    """Batch ``(graph, target)`` pairs: one batched graph and a ``(B,)`` target tensor."""
    graphs, targets = zip(*samples)
    return dgl.batch(list(graphs)), torch.stack(list(targets))
