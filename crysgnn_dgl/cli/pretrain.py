"""``crysgnn-dgl pretrain``: structures in, a pre-trained CrysGNN checkpoint out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .checks import (
    require_accelerator,
    require_at_least,
    require_fraction,
    require_inputs,
    require_writable_folder,
)
from .help_format import HelpFormatter
from .structure_inputs import add_source_arguments, open_sources

NAME = "pretrain"
HELP = (
    "Pre-train CrysGNN on unlabeled crystals (CIF folders, CSV(.xz) with a CIF column, "
    "JSON of pymatgen structures, ASE databases); resumes an interrupted run."
)


EXAMPLES = """examples:
  crysgnn-dgl pretrain structures/ --out run1
  crysgnn-dgl pretrain mp.csv.xz perov5.csv.xz --out run2 --epochs 50 --cache-workers 4
  crysgnn-dgl pretrain mp.csv.xz --out run3 --accelerator gpu --devices 4 --strategy ddp

Run the same command again to resume an interrupted run (cache and training).
Writes <out>/checkpoints/{epoch_XXX,last,best}.pt, history.jsonl and <cache>/report.tsv
(inputs that were skipped, with the reason)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = HelpFormatter
    parser.epilog = EXAMPLES
    parser.add_argument("inputs", nargs="+", help="structure files or folders (read in this order)")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, logs, history)")
    parser.add_argument("--cache", help="graph cache folder (default: <out>/cache)")
    data = parser.add_argument_group("inputs and cache")
    add_source_arguments(data)
    data.add_argument("--cache-workers", type=int, default=1, help="processes building the cache")
    data.add_argument("--shard-size", type=int, default=1000, help="structures per cache shard")
    data.add_argument("--keep-duplicates", action="store_true", help="do not de-duplicate structures")
    data.add_argument("--cache-only", action="store_true", help="build the cache and stop")
    run = parser.add_argument_group("training")
    run.add_argument("--epochs", type=int, default=20, help="epochs to train (a resumed run continues up to this)")
    run.add_argument("--batch-size", type=int, default=128, help="crystals per batch (per process under DDP)")
    run.add_argument("--lr", type=float, default=1e-3, help="peak Adam learning rate (release: 0.03)")
    run.add_argument("--weight-decay", type=float, default=0.0, help="Adam weight decay")
    run.add_argument("--schedule", choices=("cosine", "constant"), default="cosine", help="learning-rate schedule")
    run.add_argument("--seed", type=int, default=0, help="seeds weights, split, batch order")
    run.add_argument("--val-fraction", type=float, default=0.05, help="share of crystals held out for validation")
    run.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    run.add_argument("--shuffle-window", type=int, default=16, help="cache shards mixed into each batch stream")
    run.add_argument("--threads", type=int, help="torch CPU threads")
    run.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu, mps")
    run.add_argument("--devices", default="auto", help="e.g. 4 for four GPUs")
    run.add_argument("--strategy", default="auto", help="e.g. ddp")
    run.add_argument("--num-nodes", type=int, default=1, help="machines taking part (DDP)")
    run.add_argument("--precision", default="auto", help="32-true, 16-mixed, bf16-mixed or auto")
    run.add_argument("--no-progress", action="store_true", help="no progress bar; one line per epoch")
    loss = parser.add_argument_group("objectives (a weight of 0 switches one off)")
    loss.add_argument("--feature-weight", type=float, default=0.25, help="α")
    loss.add_argument("--connectivity-weight", type=float, default=0.25, help="β")
    loss.add_argument("--space-group-weight", type=float, default=0.25, help="γ")
    loss.add_argument("--contrastive-weight", type=float, default=0.25, help="λ")
    loss.add_argument("--temperature", type=float, default=0.07, help="NT-Xent temperature")
    loss.add_argument("--max-pairs-per-crystal", type=int, help="sub-sample connectivity pairs")


def _devices(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _check(args: argparse.Namespace) -> None:
    """Every option and input checked before anything is read or written."""
    for option, least in (
        ("--epochs", 1), ("--batch-size", 1), ("--shard-size", 1), ("--cache-workers", 0), ("--workers", 0),
        ("--shuffle-window", 1), ("--threads", 1), ("--num-nodes", 1), ("--limit", 1),
        ("--max-pairs-per-crystal", 1),
    ):
        require_at_least(option, getattr(args, option[2:].replace("-", "_")), least)
    require_at_least("--lr", args.lr, 0.0)
    require_fraction("--val-fraction", args.val_fraction)
    require_inputs(args.inputs)
    require_accelerator(args.accelerator)
    require_writable_folder(Path(args.out), "--out")
    if args.cache is not None:
        require_writable_folder(Path(args.cache), "--cache")


def _print_result(result) -> None:
    print(f"epochs completed: {result.epochs_completed}")
    print(f"last checkpoint:  {result.last_checkpoint}")
    best = result.best_checkpoint
    if not best.is_file():
        best = "none (no epoch had a finite validation loss)"
    print(f"best checkpoint:  {best}")
    for name in sorted(result.metrics):
        print(f"  {name:32s} {result.metrics[name]:.4f}")


def run(args: argparse.Namespace) -> int:
    try:
        import lightning  # noqa: F401
    except ImportError:
        print(
            "crysgnn-dgl pretrain trains with PyTorch Lightning, which is not installed: "
            "pip install 'crysgnn_dgl[pretrain]'",
            file=sys.stderr,
        )
        return 2
    _check(args)
    from ..pretrain.objectives import ObjectiveSettings
    from ..pretrain.runner import run_pretraining
    from ..pretrain.settings import OptimizerSettings, TrainingSettings

    sources = open_sources(args)
    objectives = ObjectiveSettings(
        feature_weight=args.feature_weight,
        connectivity_weight=args.connectivity_weight,
        space_group_weight=args.space_group_weight,
        contrastive_weight=args.contrastive_weight,
        temperature=args.temperature,
        max_pairs_per_crystal=args.max_pairs_per_crystal,
    )
    optimizer = OptimizerSettings(learning_rate=args.lr, weight_decay=args.weight_decay, schedule=args.schedule)
    training = TrainingSettings(
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        validation_fraction=args.val_fraction,
        seed=args.seed,
        num_workers=args.workers,
        shuffle_window=args.shuffle_window,
        accelerator=args.accelerator,
        devices=_devices(args.devices),
        strategy=args.strategy,
        num_nodes=args.num_nodes,
        precision=args.precision,
        num_threads=args.threads,
    )
    _, result = run_pretraining(
        sources, args.out, cache_folder=args.cache, objectives=objectives, optimizer=optimizer,
        training=training, cache_workers=args.cache_workers, shard_size=args.shard_size,
        dedupe=not args.keep_duplicates, cache_only=args.cache_only, progress=not args.no_progress,
    )
    if result is None:
        return 0
    if not result.last_checkpoint.is_file():
        raise RuntimeError(f"training ended without writing {result.last_checkpoint}")
    _print_result(result)
    return 0
