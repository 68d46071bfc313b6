"""``crysgnn-dgl embed``: per-atom and per-crystal CrysGNN embeddings of structures (.npz)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .checks import require_at_least, require_device, require_inputs, require_writable_folder
from .help_format import HelpFormatter
from .structure_inputs import add_source_arguments, open_sources

NAME = "embed"
HELP = (
    "Embed structures with a CrysGNN teacher (default: the bundled one); writes per-atom and "
    "per-crystal embeddings to an .npz and reports structures that could not be read."
)
EXAMPLES = """examples:
  crysgnn-dgl embed structures/ --out embeddings.npz
  crysgnn-dgl embed mp.csv.xz --id-column material_id --limit 1000 --out mp.npz
  crysgnn-dgl embed data.json.gz --checkpoint run/checkpoints/best.pt --device cuda --out e.npz

The .npz holds ids, atom_embeddings, atom_offsets, atomic_numbers, crystal_embeddings,
skipped_ids/skipped_reasons and note_ids/notes; <out>.skipped.tsv lists what was skipped.
An existing output is replaced as a whole; two runs cannot write the same output at once."""
NOTES_SHOWN = 5
SKIPPED_SHOWN = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = HelpFormatter
    parser.epilog = EXAMPLES
    parser.add_argument("inputs", nargs="+", help="CIF folders/files, CSV(.xz), JSON(.gz), ASE .db")
    parser.add_argument("--out", required=True, help="output .npz")
    parser.add_argument("--checkpoint", help="teacher checkpoint or bundled teacher name (default: crysgnn-denoise)")
    add_source_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=64, help="structures per teacher batch")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps")


class _Progress:
    """A progress bar on stderr over the structures read (embedded or skipped)."""

    def __init__(self) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(desc="embed", unit=" structures", file=sys.stderr, dynamic_ncols=True)

    def __call__(self, embedded: int, skipped: int) -> None:
        self.bar.set_postfix(skipped=skipped, refresh=False)
        self.bar.update(embedded + skipped - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _check(args: argparse.Namespace) -> Path:
    """Every option and input checked before anything is read or written; the output path."""
    from ..embedding import output_path

    require_at_least("--batch-size", args.batch_size, 1)
    require_at_least("--limit", args.limit, 1)
    require_device(args.device)
    require_inputs(args.inputs)
    if args.checkpoint is not None:
        from ..teacher import checkpoint_path

        require_inputs([str(checkpoint_path(args.checkpoint))])
    out = output_path(args.out)
    require_writable_folder(out.parent, "--out")
    if out.is_dir():
        raise ValueError(f"--out {out}: is a folder; give a file name ending in .npz")
    return out


def run(args: argparse.Namespace) -> int:
    from ..embedding import embed_sources, skipped_report_path
    from ..teacher import load_teacher
    from .output_lock import exclusive_output

    out = _check(args)
    with exclusive_output(out):
        teacher = load_teacher(args.checkpoint, device=args.device)
        sources = open_sources(args)
        progress = _Progress()
        try:
            result = embed_sources(teacher, sources, batch_size=args.batch_size, progress=progress)
        finally:
            progress.close()
        out = result.save(out)
    print(f"embedded {len(result.ids)} structure(s) ({result.atom_embeddings.shape[0]} atoms) -> {out}")
    if result.notes:
        print(
            f"{len(result.notes)} note(s) on embedded structures (all stored in {out.name}: note_ids, notes):",
            file=sys.stderr,
        )
        for sid, note in result.notes[:NOTES_SHOWN]:
            print(f"  {sid}: {note}", file=sys.stderr)
    if result.skipped:
        report = skipped_report_path(out)
        print(f"skipped {len(result.skipped)} structure(s), listed in {report}:", file=sys.stderr)
        for sid, reason in result.skipped[:SKIPPED_SHOWN]:
            print(f"  {sid}: {reason}", file=sys.stderr)
        if len(result.skipped) > SKIPPED_SHOWN:
            print(f"  ... and {len(result.skipped) - SKIPPED_SHOWN} more", file=sys.stderr)
    if not result.ids:
        report = skipped_report_path(out)
        print(f"crysgnn-dgl embed: error: no structure could be embedded; reasons in {report}", file=sys.stderr)
        return 1
    return 0
