"""The one reader of crystal files: every command and module reads structures through it.

Inputs (:func:`input_kind` picks by name):

* tables: ``.csv`` / ``.csv.xz`` / ``.csv.gz`` / ``.csv.bz2`` with a CIF column (default
  ``cif``), and ``.json`` / ``.json.gz`` of pymatgen structure dicts (default column
  ``structure``): pandas column-oriented JSON (e.g. matbench), a list of records, a list
  of structure dicts, a single structure dict, or a mapping id → structure dict;
* a folder of ``*.cif`` files (searched recursively; id = path relative to the folder), a
  single ``.cif`` file (id = its name), an ASE database ``.db`` / ``.aselmdb``.

Ids of table rows: ``id_column``'s value when given, else ``material_id`` when present,
else the keys of a JSON mapping, else ``"<file>:row <n>"`` (ASE rows: ``id_column``, else
``material_id``, else ``name``, else ``"<file>:row <n>"``).

The reader yields *structure inputs* (CIF text, CIF paths, pymatgen dicts, ASE Atoms);
:func:`~crysgnn_dgl.graph.structures.to_structure` parses any of them, naming the id in
its errors. Empty cells become empty text, so that they are reported by id, not dropped.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import StructureError

CSV_SUFFIXES = (".csv", ".csv.xz", ".csv.gz", ".csv.bz2")
JSON_SUFFIXES = (".json", ".json.gz")
ASE_DB_SUFFIXES = (".db", ".aselmdb")
TABLE_KINDS = ("csv", "json")
CSV_CHUNK_ROWS = 2000
ID_DEFAULT = "material_id"


def input_kind(path: str | Path) -> str:
    """``csv``, ``json``, ``cif_folder``, ``cif_file`` or ``ase_db``; else StructureError."""
    path = Path(path)
    name = path.name.lower()
    if path.is_dir():
        return "cif_folder"
    for kind, suffixes in (("csv", CSV_SUFFIXES), ("json", JSON_SUFFIXES), ("ase_db", ASE_DB_SUFFIXES),
                           ("cif_file", (".cif",))):
        if name.endswith(suffixes):
            return kind
    raise StructureError(
        str(path),
        "unknown input kind; expected a folder of CIFs, .cif, .csv(.xz/.gz/.bz2), .json(.gz) or an ASE .db",
    )


def default_structure_column(path: str | Path) -> str:
    """``structure`` for JSON tables, ``cif`` for CSV."""
    return "structure" if Path(path).name.lower().endswith(JSON_SUFFIXES) else "cif"


def _unreadable(path: Path, exc: Exception) -> StructureError:
    return StructureError(str(path), f"cannot read table ({type(exc).__name__}: {exc})")


def _table_kind(path: Path) -> str:
    if not path.is_file():
        raise StructureError(str(path), "no such file")
    kind = input_kind(path)
    if kind not in TABLE_KINDS:
        raise StructureError(str(path), f"not a table; use one of {', '.join(CSV_SUFFIXES + JSON_SUFFIXES)}")
    return kind


def _json_frame(data: Any, column: str) -> pd.DataFrame:
    """A frame of any supported JSON layout (see the module docstring)."""
    if isinstance(data, list):
        if data and all(isinstance(r, dict) and "lattice" not in r for r in data):
            return pd.DataFrame(data)  # records
        return pd.DataFrame({column: data})  # structures
    if isinstance(data, dict) and "lattice" in data:
        return pd.DataFrame({column: [data]})
    if isinstance(data, dict) and isinstance(data.get(column), dict):
        return pd.DataFrame(data).reset_index(drop=True)  # pandas column-oriented
    if isinstance(data, dict):  # id -> structure: the keys are the ids
        return pd.DataFrame({column: list(data.values())}, index=[str(k) for k in data])
    raise ValueError(f"unsupported JSON layout (top level is {type(data).__name__})")


def read_frame(path: str | Path, limit: int | None = None, structure_column: str | None = None) -> pd.DataFrame:
    """The table as a data frame (first ``limit`` rows), or a one-line StructureError
    naming the file. ``structure_column`` names the column of JSON layouts without one."""
    path = Path(path)
    kind = _table_kind(path)
    try:
        if kind == "csv":
            return pd.read_csv(path, nrows=limit)
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rt") as handle:
            frame = _json_frame(json.load(handle), structure_column or default_structure_column(path))
    except Exception as exc:  # noqa: BLE001 - any unreadable file becomes one clear line
        raise _unreadable(path, exc) from exc
    return frame.iloc[:limit] if limit is not None else frame


def require_column(frame: pd.DataFrame, path: str | Path, column: str, role: str = "") -> None:
    """StructureError naming the file unless ``frame`` has ``column`` (``role``: what it holds)."""
    if column not in frame.columns:
        what = f"{role} column" if role else "column"
        raise StructureError(str(path), f"no {what} {column!r}; columns are {list(frame.columns)}")


def row_ids(frame: pd.DataFrame, path: str | Path, id_column: str | None = None, first_row: int = 0) -> list[str]:
    """Ids of the rows of ``frame`` by the id rule (see the module docstring); ``first_row``
    is the file row of the frame's first row (chunked reading)."""
    if id_column is None and ID_DEFAULT in frame.columns:
        id_column = ID_DEFAULT
    if id_column is not None:
        require_column(frame, path, id_column, "id")
        return frame[id_column].astype(str).tolist()
    if not isinstance(frame.index, pd.RangeIndex):
        return [str(key) for key in frame.index]
    return [f"{Path(path).name}:row {first_row + n}" for n in range(len(frame))]


def _cell(value: Any) -> Any:
    """A structure cell; a missing one (None, NaN) becomes empty text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


@dataclass
class StructureTable:
    """Ids and structure inputs of a table's rows, in file order."""

    ids: list[str]
    structures: list[Any]


@dataclass
class LabelledTable(StructureTable):
    """Rows with a finite target; ``skipped`` lists ``(id, reason)`` of the others."""

    targets: list[float]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _structure_rows(
    path: Path, frame: pd.DataFrame, structure_column: str | None, id_column: str | None
) -> StructureTable:
    column = structure_column or default_structure_column(path)
    require_column(frame, path, column)
    return StructureTable(row_ids(frame, path, id_column), [_cell(v) for v in frame[column].tolist()])


def read_structure_table(
    path: str | Path,
    structure_column: str | None = None,
    id_column: str | None = None,
    limit: int | None = None,
) -> StructureTable:
    """Ids and structure inputs of every row of a table (first ``limit`` rows)."""
    path = Path(path)
    return _structure_rows(path, read_frame(path, limit, structure_column), structure_column, id_column)


def read_labelled_table(
    path: str | Path,
    target: str,
    structure_column: str | None = None,
    id_column: str | None = None,
    limit: int | None = None,
    transform: str | None = None,
) -> LabelledTable:
    """Ids, structure inputs and targets of a table.

    ``transform="log10"`` takes the decimal logarithm of the target (non-positive values
    are skipped). Rows whose target is missing or not a finite number are skipped by id.
    """
    path = Path(path)
    frame = read_frame(path, limit, structure_column)
    rows = _structure_rows(path, frame, structure_column, id_column)
    require_column(frame, path, target, "target")
    values = pd.to_numeric(frame[target], errors="coerce").tolist()
    table = LabelledTable([], [], [])
    for sid, structure, raw, value in zip(rows.ids, rows.structures, frame[target].tolist(), values):
        if transform == "log10":
            value = math.log10(value) if value is not None and value > 0 else float("nan")
        if value is None or not math.isfinite(value):
            table.skipped.append((sid, f"target {target!r} is not a usable number ({raw!r})"))
            continue
        table.ids.append(sid)
        table.structures.append(structure)
        table.targets.append(float(value))
    return table


def _csv_rows(path: Path, column: str, id_column: str | None) -> Iterator[tuple[str, Any]]:
    row = 0
    try:
        for chunk in pd.read_csv(path, chunksize=CSV_CHUNK_ROWS, dtype={column: str}):
            require_column(chunk, path, column)
            yield from zip(row_ids(chunk, path, id_column, row), map(_cell, chunk[column].tolist()))
            row += len(chunk)
    except StructureError:
        raise
    except Exception as exc:  # noqa: BLE001 - an unreadable file becomes one clear line
        raise _unreadable(path, exc) from exc


def _ase_rows(path: Path, id_column: str | None) -> Iterator[tuple[str, Any]]:
    from ase.db import connect

    with connect(str(path)) as database:
        for position, row in enumerate(database.select()):
            keys = row.key_value_pairs
            sid = keys.get(id_column) if id_column else keys.get(ID_DEFAULT, keys.get("name"))
            yield (str(sid) if sid is not None else f"{path.name}:row {position}"), row.toatoms()


def _all_rows(path: Path, column: str | None, id_column: str | None) -> Iterator[tuple[str, Any]]:
    kind = input_kind(path)
    if kind == "cif_folder":
        for file in sorted(path.rglob("*.cif")):
            yield str(file.relative_to(path)), str(file)
    elif kind == "cif_file":
        yield path.name, str(path)
    elif kind == "ase_db":
        yield from _ase_rows(path, id_column)
    elif kind == "csv":
        yield from _csv_rows(path, column or "cif", id_column)
    else:
        table = read_structure_table(path, column, id_column)
        yield from zip(table.ids, table.structures)


def iter_structures(
    path: str | Path,
    structure_column: str | None = None,
    id_column: str | None = None,
    limit: int | None = None,
) -> Iterator[tuple[str, Any]]:
    """Yield ``(structure_id, structure input)`` of every structure of an input of any kind
    (first ``limit``). A CSV is read in chunks, a folder file by file (a JSON file is
    parsed whole)."""
    path = Path(path)
    if not path.exists():
        raise StructureError(str(path), "no such file")
    yield from islice(_all_rows(path, structure_column, id_column), limit)


def read_split(path: Path) -> dict[str, dict[str, float]]:
    """An official split file (JSON, optionally gzipped): ``{part: {material_id: value}}``."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        raw = json.load(handle)
    missing = {"train", "val", "test"} - set(raw)
    if missing:
        raise ValueError(f"{path}: split file lacks part(s) {sorted(missing)}; expected train, val, test")
    return {part: {str(k): float(v) for k, v in raw[part].items()} for part in ("train", "val", "test")}


def read_cif_table(
    path: str | Path,
    cif_column: str = "cif",
    id_column: str | None = None,
    limit: int | None = None,
) -> Iterator[tuple[str, Any]]:
    """Yield ``(structure_id, cif_text)`` of each row of a CSV: :func:`iter_structures`
    with a CIF column (kept for existing callers)."""
    return iter_structures(path, cif_column, id_column, limit)
