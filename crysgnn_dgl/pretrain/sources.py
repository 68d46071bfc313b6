"""Readers that stream ``(structure_id, item)`` pairs from the formats users have.

An *item* is anything :func:`to_pymatgen` understands: CIF text, a CIF path, a pymatgen
structure dict, a pymatgen ``Structure`` or ASE ``Atoms``. Items are cheap to pickle so
that parsing happens in the cache builder's worker processes. Readers stream: a CSV is
read in chunks and a folder file by file, so corpus size does not bound memory here
(a JSON file is parsed whole: for very large corpora prefer CSV, CIF folders or ASE
databases).

Supported inputs (:func:`open_source` picks by name):

* a folder of ``*.cif`` files (searched recursively; id = path relative to the folder);
* ``.csv`` / ``.csv.xz`` / ``.csv.gz`` with a CIF column (id from ``id_column``, else
  ``material_id`` when present, else ``<file>:row <n>``);
* ``.json`` / ``.json.gz``: a list of pymatgen structure dicts, a mapping id → dict, a
  list of records with a ``structure`` key, or pandas column-oriented JSON with a
  ``structure`` column (e.g. matbench's ``matbench_dielectric.json.gz``);
* ``.db`` (ASE database; id = ``name`` / ``material_id`` key value, else ``<file>:<row id>``).
"""

from __future__ import annotations

import gzip
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pymatgen.core import Structure

from ..graph.errors import StructureError
from ..graph.structures import to_structure

CSV_SUFFIXES = (".csv", ".csv.xz", ".csv.gz", ".csv.bz2")
JSON_SUFFIXES = (".json", ".json.gz")
ASE_DB_SUFFIXES = (".db", ".aselmdb")
CSV_CHUNK_ROWS = 2000


def to_pymatgen(item: Any, structure_id: str) -> Structure:
    """Structure from any item a source yields (a pymatgen dict included)."""
    if isinstance(item, dict):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return Structure.from_dict(item)
        except Exception as exc:
            raise StructureError(
                structure_id, f"not a pymatgen structure dict ({type(exc).__name__}: {exc})"
            ) from exc
    return to_structure(item, structure_id)


@dataclass(frozen=True)
class StructureSource:
    """One input of a pre-training corpus.

    Attributes:
        path: file or folder.
        cif_column: CIF column of a CSV.
        id_column: id column of a CSV (default ``material_id`` when present).
        structure_column: structure column of a record/column JSON.
        limit: read at most this many structures (``None``: all).
    """

    path: str
    cif_column: str = "cif"
    id_column: str | None = None
    structure_column: str = "structure"
    limit: int | None = None

    @property
    def kind(self) -> str:
        name = Path(self.path).name.lower()
        if Path(self.path).is_dir():
            return "cif_folder"
        if name.endswith(CSV_SUFFIXES):
            return "csv"
        if name.endswith(JSON_SUFFIXES):
            return "json"
        if name.endswith(ASE_DB_SUFFIXES):
            return "ase_db"
        if name.endswith(".cif"):
            return "cif_file"
        raise StructureError(
            self.path,
            "unknown input kind; expected a folder of CIFs, .cif, .csv(.xz/.gz), "
            ".json(.gz) or an ASE .db",
        )

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        if not Path(self.path).exists():
            raise FileNotFoundError(f"pre-training input {self.path!r} does not exist")
        reader = _READERS[self.kind]
        for count, pair in enumerate(reader(self)):
            if self.limit is not None and count >= self.limit:
                return
            yield pair


def _cif_folder(source: StructureSource) -> Iterator[tuple[str, Any]]:
    root = Path(source.path)
    for path in sorted(root.rglob("*.cif")):
        yield str(path.relative_to(root)), str(path)


def _cif_file(source: StructureSource) -> Iterator[tuple[str, Any]]:
    yield Path(source.path).name, source.path


def _csv(source: StructureSource) -> Iterator[tuple[str, Any]]:
    path = Path(source.path)
    row = 0
    try:
        chunks = pd.read_csv(path, chunksize=CSV_CHUNK_ROWS, dtype={source.cif_column: str})
    except Exception as exc:
        raise StructureError(str(path), f"cannot read table ({type(exc).__name__}: {exc})") from exc
    for chunk in chunks:
        if source.cif_column not in chunk.columns:
            raise StructureError(
                str(path), f"no column {source.cif_column!r}; columns are {list(chunk.columns)}"
            )
        id_column = source.id_column
        if id_column is None and "material_id" in chunk.columns:
            id_column = "material_id"
        if id_column is not None and id_column not in chunk.columns:
            raise StructureError(str(path), f"no id column {id_column!r}")
        cifs = chunk[source.cif_column].tolist()
        ids = chunk[id_column].tolist() if id_column else [None] * len(cifs)
        for sid, cif in zip(ids, cifs):
            name = str(sid) if sid is not None else f"{path.name}:row {row}"
            yield name, cif if isinstance(cif, str) else ""
            row += 1


def _json_records(data: Any, column: str, name: str) -> Iterator[tuple[str, Any]]:
    if isinstance(data, list):
        for position, record in enumerate(data):
            if isinstance(record, dict) and column in record and "lattice" not in record:
                sid = record.get("material_id", record.get("id", f"{name}:{position}"))
                yield str(sid), record[column]
            else:
                yield f"{name}:{position}", record
        return
    if isinstance(data, dict) and isinstance(data.get(column), dict) and "lattice" not in data:
        # pandas column-oriented JSON: {column: {index: value}}
        structures = data[column]
        id_values = data.get("material_id") or data.get("id") or {}
        for index, value in structures.items():
            yield str(id_values.get(index, f"{name}:{index}")), value
        return
    if isinstance(data, dict) and "lattice" in data:
        yield name, data
        return
    if isinstance(data, dict):
        for sid, value in data.items():
            yield str(sid), value
        return
    raise StructureError(name, f"unsupported JSON layout (top level is {type(data).__name__})")


def _json(source: StructureSource) -> Iterator[tuple[str, Any]]:
    path = Path(source.path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt") as handle:
            data = json.load(handle)
    except Exception as exc:
        raise StructureError(str(path), f"cannot read JSON ({type(exc).__name__}: {exc})") from exc
    yield from _json_records(data, source.structure_column, path.name)


def _ase_db(source: StructureSource) -> Iterator[tuple[str, Any]]:
    from ase.db import connect

    path = Path(source.path)
    with connect(str(path)) as database:
        for row in database.select():
            key_values = row.key_value_pairs
            sid = key_values.get("material_id", key_values.get("name", f"{path.name}:{row.id}"))
            yield str(sid), row.toatoms()


_READERS = {
    "cif_folder": _cif_folder,
    "cif_file": _cif_file,
    "csv": _csv,
    "json": _json,
    "ase_db": _ase_db,
}


def check_source(source: StructureSource) -> None:
    """Raise, naming the file, if ``source`` does not exist or is of an unknown kind."""
    if not Path(source.path).exists():
        raise FileNotFoundError(f"pre-training input {source.path!r} does not exist; check the path")
    source.kind  # noqa: B018 - raises StructureError for an unknown kind
    if source.limit is not None and source.limit < 1:
        raise ValueError(f"{source.path}: limit must be >= 1, got {source.limit}")


def open_source(path: str | Path, **options: Any) -> StructureSource:
    """A :class:`StructureSource` for ``path``; ``options`` are its other fields.
    A missing file or an unknown kind is refused here, naming the file."""
    source = StructureSource(str(path), **options)
    check_source(source)
    return source


def iterate_sources(sources: list[StructureSource]) -> Iterator[tuple[str, Any]]:
    """All ``(id, item)`` pairs of several sources, in order."""
    for source in sources:
        yield from source
