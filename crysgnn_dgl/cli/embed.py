"""``crysgnn-dgl embed``: per-atom and per-crystal CrysGNN embeddings of structures (.npz)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .structure_inputs import add_source_arguments, open_sources

NAME = "embed"
HELP = (
    "Embed structures with a CrysGNN teacher (default: the bundled one); writes per-atom and "
    "per-crystal embeddings to an .npz and reports structures that could not be read."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="CIF folders/files, CSV(.xz), JSON(.gz), ASE .db")
    parser.add_argument("--out", required=True, help="output .npz")
    parser.add_argument("--checkpoint", help="teacher checkpoint (default: the bundled teacher)")
    add_source_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    from ..embedding import embed_sources
    from ..teacher import load_teacher

    teacher = load_teacher(args.checkpoint, device=args.device)
    result = embed_sources(teacher, open_sources(args), batch_size=args.batch_size)
    out = result.save(args.out)
    print(f"embedded {len(result.ids)} structure(s) ({result.atom_embeddings.shape[0]} atoms) -> {out}")
    if result.skipped:
        report = Path(str(out) + ".skipped.tsv")
        print(f"skipped {len(result.skipped)} structure(s), listed in {report}:", file=sys.stderr)
        for sid, reason in result.skipped:
            print(f"  {sid}: {reason}", file=sys.stderr)
    return 0 if result.ids else 1
