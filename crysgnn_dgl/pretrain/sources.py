"""Pre-training inputs: a :class:`StructureSource` per file or folder, streaming
``(structure_id, item)`` pairs through the one reader, :mod:`crysgnn_dgl.graph.io`
(which lists the supported kinds and the id rule).

An *item* is anything :func:`~crysgnn_dgl.graph.structures.to_structure` understands: CIF
text, a CIF path, a pymatgen structure dict or ASE ``Atoms``. Items are cheap to pickle so
that parsing happens in the cache builder's worker processes. Readers stream: a CSV is
read in chunks and a folder file by file, so corpus size does not bound memory here (a
JSON file is parsed whole: for very large corpora prefer CSV, CIF folders or ASE
databases).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..graph.io import input_kind, iter_structures


@dataclass(frozen=True)
class StructureSource:
    """One input of a pre-training corpus.

    Attributes:
        path: file or folder.
        cif_column: CIF column of a CSV.
        id_column: id column of a table, id key of an ASE database (default: the id rule
            of :mod:`crysgnn_dgl.graph.io`).
        structure_column: structure column of a JSON table.
        limit: read at most this many structures (``None``: all).
    """

    path: str
    cif_column: str = "cif"
    id_column: str | None = None
    structure_column: str = "structure"
    limit: int | None = None

    @property
    def kind(self) -> str:
        """``csv``, ``json``, ``cif_folder``, ``cif_file`` or ``ase_db`` (StructureError
        naming the path for anything else)."""
        return input_kind(self.path)

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        if not Path(self.path).exists():
            raise FileNotFoundError(f"pre-training input {self.path!r} does not exist")
        column = self.structure_column if self.kind == "json" else self.cif_column
        yield from iter_structures(self.path, column, self.id_column, self.limit)


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
