"""Command-line options shared by the commands that read structure files (``pretrain``,
``embed``): how CSV inputs are read and how many structures per input, and the opened
sources."""

from __future__ import annotations

import argparse
from typing import Any


def add_source_arguments(container: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--cif-column``, ``--id-column`` and ``--limit`` (to a parser or an argument group)."""
    container.add_argument("--cif-column", default="cif", help="CIF column of CSV inputs")
    container.add_argument("--id-column", help="id column of CSV/JSON tables, or key of an ASE database (default: material_id if "
                           "present, else <file>:row n)")
    container.add_argument("--limit", type=int, help="read at most this many structures per input")


def open_sources(args: argparse.Namespace) -> list[Any]:
    """A structure source per path of ``args.inputs``, read as the source options say."""
    from ..pretrain.sources import open_source

    return [
        open_source(path, cif_column=args.cif_column, id_column=args.id_column, limit=args.limit)
        for path in args.inputs
    ]
