"""``crysgnn-dgl pretrain``: structures in, a pre-trained CrysGNN checkpoint out."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from ..config import SettingsBase
from .checks import (
    require_accelerator,
    require_at_least,
    require_fraction,
    require_inputs,
    require_writable_folder,
)
from .config_file import apply_config, write_resolved_config
from .errors import UsageError
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
  crysgnn-dgl pretrain --config run1/config.toml --epochs 40 --out run4
  crysgnn-dgl pretrain mp.csv.xz --out run5 --denoising-weight 1 --mmpt-atom-type-weight 5

Run the same command again to resume an interrupted run (cache and training).
Writes <out>/checkpoints/{epoch_XXX,last,best}.pt, history.jsonl, config.toml (the resolved
options: --config <out>/config.toml repeats the run) and <cache>/report.tsv (inputs that were
skipped, with the reason)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..pretrain.settings import ObjectiveSettings, OptimizerSettings, PretrainSettings

    optimizer, training, objectives = OptimizerSettings(), PretrainSettings(), ObjectiveSettings()
    parser.formatter_class = HelpFormatter
    parser.epilog = EXAMPLES
    parser.add_argument("inputs", nargs="*", help="structure files or folders (read in this order)")
    parser.add_argument("--out", help="run folder (checkpoints, logs, history, config.toml); required")
    parser.add_argument("--config", type=Path,
                        help="TOML file of option values, keys are the long option names with '_' "
                             "(command-line options win); <out>/config.toml repeats a run")
    parser.add_argument("--cache", help="graph cache folder (default: <out>/cache)")
    data = parser.add_argument_group("inputs and cache")
    add_source_arguments(data)
    data.add_argument("--cache-workers", type=int, default=1, help="processes building the cache")
    data.add_argument("--shard-size", type=int, default=1000, help="structures per cache shard")
    data.add_argument("--keep-duplicates", action="store_true", help="do not de-duplicate structures")
    data.add_argument("--cache-only", action="store_true", help="build the cache and stop")
    run = parser.add_argument_group("training")
    run.add_argument("--epochs", type=int, default=training.max_epochs,
                     help="epochs to train (a resumed run continues up to this)")
    run.add_argument("--batch-size", type=int, default=training.batch_size, help="crystals per batch (per process under DDP)")
    run.add_argument("--lr", type=float, default=optimizer.learning_rate, help="peak Adam learning rate (release: 0.03)")
    run.add_argument("--weight-decay", type=float, default=optimizer.weight_decay, help="Adam weight decay")
    run.add_argument("--schedule", choices=("cosine", "constant"), default=optimizer.schedule,
                     help="learning-rate schedule")
    run.add_argument("--seed", type=int, default=training.seed, help="seeds weights, split, batch order")
    run.add_argument("--val-fraction", type=float, default=training.validation_fraction,
                     help="share of crystals held out for validation")
    run.add_argument("--workers", type=int, default=training.num_workers, help="DataLoader worker processes")
    run.add_argument("--shuffle-window", type=int, default=training.shuffle_window,
                     help="cache shards mixed into each batch stream")
    run.add_argument("--threads", type=int, default=training.num_threads, help="torch CPU threads")
    run.add_argument("--accelerator", default=training.accelerator, help="Lightning accelerator: auto, cpu, gpu, mps")
    run.add_argument("--devices", default=str(training.devices), help="e.g. 4 for four GPUs")
    run.add_argument("--strategy", default=training.strategy, help="e.g. ddp")
    run.add_argument("--num-nodes", type=int, default=training.num_nodes, help="machines taking part (DDP)")
    run.add_argument("--precision", default=training.precision, help="32-true, 16-mixed, bf16-mixed or auto")
    run.add_argument("--no-progress", action="store_true", help="no progress bars (graph cache, training)")
    run.add_argument("--verbose", action="store_true",
                     help="a line per epoch (duration, losses, accuracies) on standard output")
    loss = parser.add_argument_group("objectives (a weight of 0 switches one off)")
    loss.add_argument("--feature-weight", type=float, default=objectives.feature_weight, help="α")
    loss.add_argument("--connectivity-weight", type=float, default=objectives.connectivity_weight, help="β")
    loss.add_argument("--space-group-weight", type=float, default=objectives.space_group_weight, help="γ")
    loss.add_argument("--contrastive-weight", type=float, default=objectives.contrastive_weight, help="λ")
    loss.add_argument("--temperature", type=float, default=objectives.temperature, help="NT-Xent temperature")
    loss.add_argument("--max-pairs-per-crystal", type=int, default=objectives.max_pairs_per_crystal,
                      help="sub-sample connectivity pairs")
    extra = parser.add_argument_group(
        "denoising (CDSSL) and MMPT objectives, off by default; the paper's MMPT weights are "
        "atom type 5, coordinate 1, lattice 1, Barlow Twins 0.5, direction 1, same cell 1, distance 1"
    )
    for name, default, text in ObjectiveSettings.cli_fields():
        extra.add_argument(_option(name), type=float, default=default, help=text)


def _option(name: str) -> str:
    """``--denoising-weight`` of the settings field ``denoising_weight``."""
    return "--" + name.replace("_", "-")


def _devices(value: str | int) -> int | str:
    """``"4"`` or ``4`` (from a config file) -> 4; names such as ``"auto"`` stay."""
    return int(value) if str(value).isdigit() else str(value)


#: PretrainSettings fields set by an option of another name (the others: the option of their name)
_TRAINING_OPTIONS = {
    "max_epochs": "epochs", "validation_fraction": "val_fraction", "num_workers": "workers", "num_threads": "threads",
}
SettingsT = TypeVar("SettingsT", bound=SettingsBase)


def _settings(
    cls: type[SettingsT], args: argparse.Namespace, renamed: dict[str, str] | None = None, **values: Any
) -> SettingsT:
    """``cls`` from the options: each field takes ``values[field]``, else the option that
    ``renamed`` names for it, else the option of its own name; a field without one keeps
    its default."""
    renamed = renamed or {}
    for field in fields(cls):  # type: ignore[arg-type]
        option = renamed.get(field.name, field.name)
        if field.name not in values and hasattr(args, option):
            values[field.name] = getattr(args, option)
    return cls(**values)


def _check(args: argparse.Namespace) -> None:
    """Every option and input checked before anything is read or written."""
    if not args.inputs:
        raise UsageError("no inputs: name structure files or folders (or inputs = [...] in --config)")
    if args.out is None:
        raise UsageError("--out FOLDER is required (or out = \"FOLDER\" in --config)")
    for option, least in (
        ("--epochs", 1), ("--batch-size", 1), ("--shard-size", 1), ("--cache-workers", 0), ("--workers", 0),
        ("--shuffle-window", 1), ("--threads", 1), ("--num-nodes", 1), ("--limit", 1),
        ("--max-pairs-per-crystal", 1),
    ):
        require_at_least(option, getattr(args, option[2:].replace("-", "_")), least)
    from ..pretrain.settings import ObjectiveSettings

    for name, _, _ in ObjectiveSettings.cli_fields():
        require_at_least(_option(name), getattr(args, name), 0.0)
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
    if args.config is not None:
        args = apply_config(args, add_arguments)
    _check(args)
    from ..pretrain.runner import run_pretraining
    from ..pretrain.settings import ObjectiveSettings, OptimizerSettings, PretrainSettings

    sources = open_sources(args)
    objectives = _settings(ObjectiveSettings, args)
    optimizer = _settings(OptimizerSettings, args, {"learning_rate": "lr"})
    training = _settings(PretrainSettings, args, _TRAINING_OPTIONS, devices=_devices(args.devices))
    write_resolved_config(args, Path(args.out) / "config.toml")
    _, result = run_pretraining(
        sources, args.out, cache_folder=args.cache, objectives=objectives, optimizer=optimizer,
        training=training, cache_workers=args.cache_workers, shard_size=args.shard_size,
        dedupe=not args.keep_duplicates, cache_only=args.cache_only, progress=not args.no_progress,
        verbose=args.verbose,
    )
    if result is None:
        return 0
    if not result.last_checkpoint.is_file():
        raise RuntimeError(f"training ended without writing {result.last_checkpoint}")
    _print_result(result)
    return 0
