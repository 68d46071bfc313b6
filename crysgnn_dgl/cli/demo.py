"""``crysgnn-dgl demo``: CGCNN vanilla vs distilled from the bundled teacher on the bundled
data, over paired seeds, through the benchmark harness (``crysgnn-dgl bench``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "demo"
HELP = (
    "Train CGCNN on the bundled formation-energy subset (3,000 small Materials Project "
    "crystals) vanilla and distilled from the bundled CrysGNN teacher, over paired seeds "
    "(same split, initial weights and batch order); print the paired gain with its 95 %% "
    "confidence interval and write results, summary and plots to --out."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..bench.defaults import TRAINING
    from ..training.options import DEMO_TARGET

    parser.add_argument("--data", type=Path, default=None,
                        help="a CSV (.csv, .csv.xz, .csv.gz) with a 'cif' column instead of the bundled subset")
    parser.add_argument("--target", default=DEMO_TARGET, help="target column (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="read only the first N rows (default: all)")
    parser.add_argument("--train-size", type=int, default=500, help="training crystals (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=5, help="paired seeds 0 … N-1 (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=TRAINING["epochs"],
                        help="epoch budget; runs stop early on validation MAE (default: %(default)s)")
    parser.add_argument("--teacher", default=None, help="teacher checkpoint or bundled teacher name (default: crysgnn-denoise)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("crysgnn_demo"),
                        help="output folder; finished runs are reused (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="per-epoch lines")


def run(args: argparse.Namespace) -> int:
    from ..bench.execute import run_bench
    from ..bench.grid import Grid
    from ..bench.spec import DEFAULT_TRAINING, KDRecipe
    from ..bench.tasks import TaskSpec
    from ..graph.errors import StructureError
    from ..training.options import bundled_demo_table

    data = args.data if args.data is not None else bundled_demo_table()
    try:
        task = TaskSpec(name="file", file=str(data), target=args.target, limit=args.limit)
        training = DEFAULT_TRAINING.from_dict({**DEFAULT_TRAINING.to_dict(), "epochs": args.epochs})
        grid = Grid([task], ("cgcnn",), ("vanilla", "distilled"), (args.train_size,), tuple(range(args.seeds)),
                    (KDRecipe(),), args.teacher, training)
        code = run_bench(grid, args.out, jobs=args.jobs, verbose=args.verbose)
    except (StructureError, ValueError, OSError) as exc:
        print(f"crysgnn-dgl demo: {exc}", file=sys.stderr)
        return 2
    print()
    print((args.out / "summary.md").read_text())
    return code
