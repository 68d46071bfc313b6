"""Labelled crystal tables for the benchmark: one reader for CSV (``.csv``, ``.csv.xz``,
``.csv.gz``) with a CIF column and JSON (``.json``, ``.json.gz``) of pymatgen structure
dicts (pandas column or record layout), giving ``(ids, structure inputs, targets)``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..graph.errors import StructureError

CSV_SUFFIXES = (".csv", ".csv.xz", ".csv.gz")
JSON_SUFFIXES = (".json", ".json.gz")


@dataclass
class LabelledTable:
    """Rows with a finite target; ``skipped`` lists ``(id, reason)`` of the others."""

    ids: list[str]
    structures: list[Any]
    targets: list[float]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in CSV_SUFFIXES + JSON_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise StructureError(str(path), f"unsupported file type; use one of {', '.join(CSV_SUFFIXES + JSON_SUFFIXES)}")


def read_frame(path: str | Path, limit: int | None = None) -> pd.DataFrame:
    """The file as a data frame (first ``limit`` rows), or a one-line error naming it."""
    path = Path(path)
    if not path.is_file():
        raise StructureError(str(path), "no such file")
    suffix = _suffix(path)
    try:
        if suffix in CSV_SUFFIXES:
            frame = pd.read_csv(path, nrows=limit)
        else:
            frame = pd.read_json(path)
            frame = frame.iloc[:limit] if limit is not None else frame
    except Exception as exc:  # noqa: BLE001 - any unreadable file becomes one clear line
        raise StructureError(str(path), f"cannot read ({type(exc).__name__}: {exc})") from exc
    return frame.reset_index(drop=True)


def read_labelled_table(
    path: str | Path,
    target: str,
    structure_column: str | None = None,
    id_column: str | None = None,
    limit: int | None = None,
    transform: str | None = None,
) -> LabelledTable:
    """Ids, structure inputs (CIF text or pymatgen dicts) and targets of a table.

    ``structure_column`` defaults to ``cif`` (CSV) or ``structure`` (JSON); ids come from
    ``id_column``, else ``material_id`` when present, else ``<file>:row <n>``.
    ``transform="log10"`` takes the decimal logarithm of the target (non-positive values are
    skipped). Rows whose target is missing or not a finite number are skipped by id.
    """
    path = Path(path)
    frame = read_frame(path, limit)
    column = structure_column or ("structure" if _suffix(path) in JSON_SUFFIXES else "cif")
    for name, what in ((column, "structure"), (target, "target")):
        if name not in frame.columns:
            raise StructureError(str(path), f"no {what} column {name!r}; columns are {list(frame.columns)}")
    if id_column is None and "material_id" in frame.columns:
        id_column = "material_id"
    if id_column is not None and id_column not in frame.columns:
        raise StructureError(str(path), f"no id column {id_column!r}; columns are {list(frame.columns)}")
    ids = frame[id_column].astype(str).tolist() if id_column else [f"{path.name}:row {i}" for i in range(len(frame))]
    values = pd.to_numeric(frame[target], errors="coerce").tolist()
    table = LabelledTable([], [], [])
    for sid, structure, raw, value in zip(ids, frame[column].tolist(), frame[target].tolist(), values):
        if transform == "log10":
            value = math.log10(value) if value is not None and value > 0 else float("nan")
        if value is None or not math.isfinite(value):
            table.skipped.append((sid, f"target {target!r} is not a usable number ({raw!r})"))
            continue
        table.ids.append(sid)
        table.structures.append(structure if structure is not None else "")
        table.targets.append(float(value))
    return table


def structure_input(item: Any, structure_id: str) -> Any:
    """A pymatgen dict becomes a ``Structure``; other inputs pass through unchanged (the
    graph builder reads them and names ``structure_id`` in its errors)."""
    if not isinstance(item, dict):
        return item
    from pymatgen.core import Structure

    try:
        return Structure.from_dict(item)
    except Exception as exc:  # noqa: BLE001 - any malformed dict is skipped by id
        raise StructureError(structure_id, f"not a pymatgen structure dict ({type(exc).__name__}: {exc})") from exc
