"""``crysgnn-dgl bench``: the evidence harness (vanilla vs distilled vs controls, paired seeds)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "bench"
HELP = (
    "Train predictors vanilla, distilled and under controls (random-init and shuffled "
    "teacher, fine-tuned teacher) over a grid of tasks, training-set sizes and paired seeds; "
    "write results.csv, summary.md (paired gains with 95 %% CIs) and plots. Finished runs "
    "are stored by configuration: a repeated or interrupted sweep reruns nothing."
)
EPILOG = """examples:
  crysgnn-dgl bench --task mp_eform --train-sizes 1000 --seeds 5 \\
      --modes vanilla,distilled,random-teacher,shuffled-teacher --jobs 2 --out bench/mp
  crysgnn-dgl bench --dataset my.csv --target band_gap --seeds 5 --out bench/mine
  crysgnn-dgl bench --config sweep.toml        # keys are the long option names, e.g. kd_weights = "1,10"
  crysgnn-dgl bench --task mp_eform --seeds 5 --out bench/mp --plan   # what is stored, in progress, to run
"""


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _sizes(text: str) -> list[int]:
    return [0 if v.strip() == "all" else int(v) for v in text.split(",") if v.strip()]


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _words(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..bench.defaults import RECIPE, TRAINING

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--config", type=Path, help="TOML file of option values (command-line options win)")
    data = parser.add_argument_group("data")
    data.add_argument("--task", type=_words, default=["mp_eform"],
                      help="named task(s): mp_eform, mp_gap, perov5, log_kvrh, log_gvrh, dielectric, "
                           "exp_eform (default: mp_eform)")
    data.add_argument("--dataset", type=Path, help="a user table (.csv, .csv.xz, .csv.gz, .json(.gz)) instead of --task")
    data.add_argument("--target", help="target column of --dataset")
    data.add_argument("--cif-column", default=None, help="structure column (default: cif, or structure for JSON)")
    data.add_argument("--id-column", default=None, help="id column (default: material_id when present)")
    data.add_argument("--test-fraction", type=float, default=0.1,
                      help="test (and validation) fraction of random splits (default: %(default)s)")
    data.add_argument("--train-fraction", type=float, default=None,
                      help="random splits: this fraction for training, --test-fraction for validation, "
                           "the rest for test (e.g. 0.2 with --train-sizes all)")
    data.add_argument("--source-task", default=None,
                      help="transfer: train first on this named task (same mode), then on --task, e.g. "
                           "--source-task mp_eform --task exp_eform (the CrysGNN paper's Table 5)")
    data.add_argument("--source-size", type=int, default=1000, help="training crystals of --source-task (default: %(default)s)")
    data.add_argument("--val-limit", type=int, default=1000, help="at most this many validation crystals (default: %(default)s)")
    data.add_argument("--limit", type=int, default=None, help="read only the first N rows (quick checks)")
    data.add_argument("--data-dir", type=Path, default=None, help="folder of the named tasks' files (default: ../shared/data)")
    grid = parser.add_argument_group("grid")
    grid.add_argument("--predictors", type=_words, default=["cgcnn"], help="cgcnn, gatgnn, megnet, alignn (default: cgcnn)")
    grid.add_argument("--modes", type=_words, default=["vanilla", "distilled"],
                      help="vanilla, distilled, random-teacher, shuffled-teacher, finetune (default: vanilla,distilled)")
    grid.add_argument("--train-sizes", type=_sizes, default=[1000],
                      help="training-set sizes; 'all': the whole training part (default: 1000)")
    grid.add_argument("--seeds", type=int, default=5, help="paired seeds first-seed … first-seed+N-1 (default: %(default)s)")
    grid.add_argument("--first-seed", type=int, default=0, help="(default: %(default)s)")
    grid.add_argument("--teacher", default=None,
                      help="a CrysGNN teacher checkpoint or bundled CrysGNN teacher (crysgnn-denoise, the default; "
                           "crysgnn-multitask), or a teacher name: m3gnet (its block gc_1), m3gnet:gc_2, "
                           "m3gnet:gc_3, chgnet (extra crysgnn_dgl[chgnet])")
    grid.add_argument("--teacher-depth", type=int, default=None,
                      help="distil the output of the first N convolutions of a CrysGNN teacher "
                           "(distilled and shuffled-teacher modes; default: the depth its checkpoint recommends, else all)")
    kd = parser.add_argument_group("KD recipe (lists make a grid)")
    kd.add_argument("--kd-weights", type=_floats, default=[None],
                    help="λ values (default: the teacher's recommended λ, which attach_teacher uses too)")
    kd.add_argument("--projections", type=_words, default=[RECIPE["projection"]], help="identity, linear, mlp (default: %(default)s)")
    kd.add_argument("--target-norms", type=_words, default=[RECIPE["target_norm"]], help="l2, none, standardize (default: %(default)s)")
    kd.add_argument("--kd-losses", type=_words, default=[RECIPE["loss"]], help="mse, cosine (default: %(default)s)")
    kd.add_argument("--kd-decays", type=_words, default=[RECIPE["decay"]], help="none, linear, cosine (default: %(default)s)")
    train = parser.add_argument_group("training protocol (every run)")
    train.add_argument("--epochs", type=int, default=TRAINING["epochs"], help="epoch budget (default: %(default)s)")
    train.add_argument("--batch-size", type=int, default=TRAINING["batch_size"], help="(default: %(default)s)")
    train.add_argument("--lr", type=float, default=TRAINING["lr"], help="Adam learning rate (default: %(default)s)")
    train.add_argument("--plateau-patience", type=int, default=TRAINING["plateau_patience"],
                       help="halve the learning rate after N epochs without a better val MAE (default: %(default)s)")
    train.add_argument("--early-stopping", type=int, default=TRAINING["early_stopping"],
                       help="stop after N epochs without a better val MAE (default: %(default)s)")
    train.add_argument("--loss", choices=("mse", "l1", "huber"), default="mse",
                       help="supervised loss on standardised targets; l1 for heavy-tailed targets (default: %(default)s)")
    output = parser.add_argument_group("execution and output")
    output.add_argument("--jobs", type=int, default=1, help="worker processes, one thread each (default: %(default)s)")
    output.add_argument("--out", type=Path, default=Path("crysgnn_bench"), help="output folder (default: %(default)s)")
    output.add_argument("--verbose", action="store_true", help="per-epoch lines")
    output.add_argument("--report-all", action="store_true",
                        help="summarise every run stored in --out, not only this grid's")
    output.add_argument("--plan", action="store_true",
                        help="list the grid's runs as stored, in progress (the epoch each resumes after) or "
                             "to run, and exit: builds no graph, trains nothing, writes nothing")


def apply_config(args: argparse.Namespace) -> argparse.Namespace:
    """Values of ``--config`` (TOML; keys are option names with ``_``) for every option
    left at its default on the command line (see :mod:`.config_file`)."""
    from .config_file import apply_config as apply

    return apply(args, add_arguments)


def build_grid(args: argparse.Namespace):
    """The :class:`~crysgnn_dgl.bench.grid.Grid` the options describe."""
    import itertools

    from ..bench.grid import Grid
    from ..bench.spec import DEFAULT_TRAINING, KDRecipe
    from ..bench.tasks import TaskSpec

    common = dict(test_fraction=args.test_fraction, val_limit=args.val_limit, limit=args.limit,
                  train_fraction=args.train_fraction)
    source = TaskSpec(name=args.source_task, val_limit=args.val_limit, limit=args.limit) if args.source_task else None
    if args.dataset is not None:
        tasks = [TaskSpec(name="file", file=str(args.dataset), target=args.target,
                          structure_column=args.cif_column, id_column=args.id_column, **common)]
    else:
        tasks = [TaskSpec(name=name, **common) for name in args.task]
    recipes = [KDRecipe(w, p, n, loss, d) for w, p, n, loss, d in itertools.product(
        args.kd_weights, args.projections, args.target_norms, args.kd_losses, args.kd_decays)]
    training = DEFAULT_TRAINING.from_dict({**DEFAULT_TRAINING.to_dict(), "epochs": args.epochs,
                                           "batch_size": args.batch_size, "lr": args.lr,
                                           "plateau_patience": args.plateau_patience,
                                           "early_stopping": args.early_stopping, "loss": args.loss})
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    return Grid(tasks, args.predictors, args.modes, args.train_sizes, seeds, recipes, args.teacher, training,
                source, args.source_size, args.teacher_depth)


def run(args: argparse.Namespace) -> int:
    from ..bench.execute import plan_bench, run_bench

    from ..graph.errors import StructureError

    try:
        if args.config is not None:
            args = apply_config(args)
        if args.dataset is not None and not args.target:
            raise ValueError("--dataset needs --target COLUMN")
        if args.plan:
            return plan_bench(build_grid(args), args.out)
        options = {k: v for k, v in vars(args).items() if k != "handler" and not callable(v)}
        return run_bench(build_grid(args), args.out, args.data_dir, args.jobs, args.verbose, args.report_all,
                         options=options)
    except (StructureError, ValueError, OSError) as exc:
        print(f"crysgnn-dgl bench: {exc}", file=sys.stderr)
        return 2
