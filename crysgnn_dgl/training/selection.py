"""Labelled crystals for experiments trained by a predictor library's own loop: rows of a
table (read by :mod:`crysgnn_dgl.graph.io`) chosen by a seeded random split or by an
official split file, parsed to pymatgen structures (unreadable rows skipped and listed)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ..graph.errors import StructureError
from ..graph.io import read_labelled_table, read_split, read_structure_table
from ..graph.structures import to_structure
from .options import ExternalOptions
from .splits import Split, split_indices


@dataclass
class LabelledStructures:
    """The selected crystals (pymatgen structures) with targets and their split."""

    structures: list[Any]
    targets: torch.Tensor
    ids: list[str]
    split: Split
    source: str
    skipped: list[tuple[str, str]]

    def part(self, name: str) -> tuple[list[Any], list[float]]:
        """Structures and targets of the ``train``, ``val`` or ``test`` part."""
        indices = getattr(self.split, name)
        return [self.structures[i] for i in indices], [float(self.targets[i]) for i in indices]


def select_structures(options: ExternalOptions) -> LabelledStructures:
    """Read the table, choose train/val/test rows, parse only their structures (unreadable
    ones are skipped and listed; the part is refilled from the following rows).

    Uses ``options.table``, ``target``, ``split_json`` (or ``split_seed``) and the sizes
    ``train_size``, ``val_size``, ``test_size``.
    """
    path = options.table
    sizes = {"train": options.train_size, "val": options.val_size, "test": options.test_size}
    skipped: list[tuple[str, str]] = []
    if options.split_json is not None:
        table = read_structure_table(path, id_column="material_id")
        official = read_split(options.split_json)
        row_of = {sid: i for i, sid in enumerate(table.ids)}
        candidates = {part: [(row_of[sid], value) for sid, value in values.items() if sid in row_of]
                      for part, values in official.items()}
        source = f"{path} with the split of {options.split_json}"
    else:
        table = labelled = read_labelled_table(path, options.target)
        skipped.extend(labelled.skipped)
        split = split_indices(len(table.ids), 0.1, 0.1, options.split_seed)
        candidates = {part: [(i, labelled.targets[i]) for i in getattr(split, part)] for part in ("train", "val", "test")}
        source = f"{path} [{options.target}], random split (seed {options.split_seed})"
    structures: list[Any] = []
    targets: list[float] = []
    chosen_ids: list[str] = []
    parts: dict[str, list[int]] = {}
    for part in ("train", "val", "test"):
        parts[part] = []
        for row, value in candidates[part]:
            if len(parts[part]) >= sizes[part]:
                break
            if not math.isfinite(value):
                skipped.append((table.ids[row], f"target is not a finite number ({value})"))
                continue
            try:
                structure = to_structure(table.structures[row], table.ids[row])
            except StructureError as error:  # an unreadable structure is skipped and reported
                skipped.append((table.ids[row], error.reason))
                continue
            parts[part].append(len(structures))
            structures.append(structure)
            targets.append(value)
            chosen_ids.append(table.ids[row])
        if not parts[part] and part != "val":
            raise ValueError(f"{source}: no usable crystals for the {part} part")
    split = Split(train=parts["train"], val=parts["val"], test=parts["test"])
    return LabelledStructures(structures, torch.tensor(targets, dtype=torch.float32), chosen_ids, split, source, skipped)
