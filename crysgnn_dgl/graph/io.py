"""Read crystals from tabular files (``.csv`` / ``.csv.xz``) holding a CIF column."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from .errors import StructureError


def read_cif_table(
    path: str | Path,
    cif_column: str = "cif",
    id_column: str | None = None,
    limit: int | None = None,
) -> Iterator[tuple[str, str]]:
    """Yield ``(structure_id, cif_text)`` for each row of a CSV (optionally xz-compressed).

    The id is ``id_column``'s value when given (else ``material_id`` if present), else
    ``"<file>:row <n>"``. Rows with an empty CIF cell are yielded as empty text so that the
    graph builder reports them by id rather than dropping them silently.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, nrows=limit)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise StructureError(str(path), f"cannot read table ({type(exc).__name__}: {exc})") from exc
    if cif_column not in frame.columns:
        raise StructureError(
            str(path), f"no column {cif_column!r}; columns are {list(frame.columns)}"
        )
    if id_column is None and "material_id" in frame.columns:
        id_column = "material_id"
    if id_column is not None and id_column not in frame.columns:
        raise StructureError(str(path), f"no id column {id_column!r}")
    for row_number, row in enumerate(frame.itertuples(index=False)):
        record = row._asdict()
        cif = record[cif_column]
        sid = str(record[id_column]) if id_column else f"{path.name}:row {row_number}"
        yield sid, cif if isinstance(cif, str) else ""
