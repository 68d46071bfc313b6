"""Command-line experiment shared by ``crysgnn-dgl demo`` and the example scripts:
load data (the bundled subset or a CSV), compare vanilla vs distilled, print a table,
write a parity plot."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from .compare import Comparison, ComparisonSettings, compare_distillation
from .dataset import CrystalGraphDataset
from .loop import TrainingSettings
from .parity import parity_plot

DEMO_FILE = "demo_mp_formation_energy.csv.xz"
DEMO_TARGET = "formation_energy_per_atom"
QUANTITY_LABELS = {DEMO_TARGET: "formation energy (eV/atom)", "band_gap": "band gap (eV)"}
UNITS = {DEMO_TARGET: "eV/atom", "band_gap": "eV"}


def bundled_demo_table() -> Path:
    """The formation-energy subset shipped with the package (see ``data/DEMO_DATA.md``)."""
    return Path(str(resources.files("crysgnn_dgl").joinpath("data", DEMO_FILE)))


@dataclass(frozen=True)
class ExperimentDefaults:
    """Default command-line values of one experiment (each script picks its budget)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.01
    limit: int | None = None
    train_size: int | None = None
    out: str | None = None


def add_experiment_arguments(parser: argparse.ArgumentParser, defaults: ExperimentDefaults) -> None:
    """Options common to the demo and the examples (every one explained in ``--help``)."""
    data = parser.add_argument_group("data")
    data.add_argument("--data", type=Path, default=None,
                      help="CSV (.csv or .csv.xz) with a 'cif' column and the target column, e.g. "
                           "../shared/data/mp_cgcnn36k.csv.xz (default: the formation-energy subset "
                           "bundled with the package, 3000 small Materials Project crystals)")
    data.add_argument("--target", default=DEMO_TARGET, help="target column of --data (default: %(default)s)")
    data.add_argument("--limit", type=int, default=defaults.limit,
                      help="read only the first N rows of the table (default: %(default)s = all)")
    data.add_argument("--train-size", type=int, default=defaults.train_size,
                      help="cap the training set at N crystals; validation and test sets stay "
                           "10%% each (default: %(default)s = the remaining 80%%)")
    data.add_argument("--split-seed", type=int, default=0, help="seed of the train/val/test split (default: %(default)s)")
    train = parser.add_argument_group("training (identical for both runs)")
    train.add_argument("--epochs", type=int, default=defaults.epochs, help="epochs per run (default: %(default)s)")
    train.add_argument("--batch-size", type=int, default=defaults.batch_size, help="crystals per step (default: %(default)s)")
    train.add_argument("--lr", type=float, default=defaults.lr, help="Adam learning rate (default: %(default)s)")
    train.add_argument("--seed", type=int, default=0,
                       help="seed of the initial weights and the shuffling, same for both runs (default: %(default)s)")
    train.add_argument("--repeats", type=int, default=1,
                       help="repeat the comparison with seeds seed, seed+1, ... and report each "
                            "gain and their mean (single-seed gains of a few %% are within noise; "
                            "default: %(default)s)")
    train.add_argument("--threads", type=int, default=1,
                       help="torch CPU threads (default: %(default)s: small graphs gain little from more, "
                            "and one thread keeps both runs bitwise reproducible; with more, "
                            "deterministic algorithms are switched on, which costs time)")
    distill = parser.add_argument_group("distillation")
    distill.add_argument("--teacher", default=None,
                         help="teacher checkpoint (.pt); default: the teacher bundled with the package")
    distill.add_argument("--delta", type=float, default=0.5,
                         help="delta of L + (1-delta)/delta * KD; 0.5 weights KD by 1 (default: %(default)s)")
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, default=Path(defaults.out) if defaults.out else None,
                        help="folder for the parity plot PNG" + (" (default: %(default)s)" if defaults.out else " (default: no plot)"))
    output.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")


def load_dataset(args: argparse.Namespace, graph_settings=None) -> tuple[CrystalGraphDataset, str]:
    """The labelled graphs the options select, and a description of their source."""
    path = args.data if args.data is not None else bundled_demo_table()
    dataset = CrystalGraphDataset.from_table(path, args.target, limit=args.limit, graph_settings=graph_settings)
    return dataset, f"{path} [{args.target}]"


def summarize(comparisons: list[Comparison]) -> str:
    """Per-seed MAEs and gains of repeated comparisons, and their means."""
    gains = torch.tensor([c.relative_gain for c in comparisons])
    vanilla = torch.tensor([c.vanilla.test_mae for c in comparisons])
    distilled = torch.tensor([c.distilled.test_mae for c in comparisons])
    lines = [f"{'seed':<6}{'vanilla MAE':>13}{'distilled MAE':>15}{'gain':>9}"]
    for c, gain in zip(comparisons, gains.tolist()):
        lines.append(f"{c.training.seed:<6}{c.vanilla.test_mae:>13.4f}{c.distilled.test_mae:>15.4f}{100 * gain:>+8.1f}%")
    spread = f" ± {100 * float(gains.std()):.1f}" if len(gains) > 1 else ""
    lines.append(f"{'mean':<6}{float(vanilla.mean()):>13.4f}{float(distilled.mean()):>15.4f}"
                 f"{100 * float(gains.mean()):>+8.1f}%{spread} (std over seeds)")
    return "\n".join(lines)


def run_experiment(
    args: argparse.Namespace,
    model_factory: Callable[[], nn.Module],
    model_name: str,
    adapter: str = "auto",
    print_fn: Callable[[str], None] = print,
) -> Comparison:
    """Run the comparison the options describe; print the table; write the parity plot
    (of the first seed). Returns the first seed's comparison.

    ``adapter`` names the distillation adapter of the model (``"auto"``: detected).
    """
    if args.threads:
        torch.set_num_threads(args.threads)
    from ..distill import resolve_teacher

    start = time.perf_counter()
    teacher = resolve_teacher(args.teacher)  # fail before any work when it is missing
    probe = model_factory()
    dataset, source = load_dataset(args, getattr(probe, "graph_settings", None))
    print_fn(f"data: {source}: {len(dataset)} crystals ({len(dataset.skipped)} skipped) "
             f"in {time.perf_counter() - start:.1f} s")
    if dataset.skipped:
        print_fn(dataset.skip_summary())
    comparisons = []
    for repeat in range(max(1, args.repeats)):
        seed = args.seed + repeat
        training = TrainingSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=seed)
        settings = ComparisonSettings(train_limit=args.train_size, split_seed=args.split_seed,
                                      model_seed=seed, delta=args.delta,
                                      deterministic=torch.get_num_threads() > 1)
        comparison = compare_distillation(
            model_factory, dataset, training, settings, teacher=teacher, adapter=adapter,
            log=None if args.quiet else print_fn,
        )
        print_fn("")
        print_fn(f"{model_name}: vanilla vs distilled, seed {seed} (teacher: {comparison.teacher_source})")
        print_fn(comparison.table(unit=UNITS.get(args.target, "target units")))
        if comparison.kd_mean is not None:
            print_fn(f"mean KD term during distilled training: {comparison.kd_mean:.4f}")
        comparisons.append(comparison)
    if len(comparisons) > 1:
        print_fn("")
        print_fn(summarize(comparisons))
    comparison = comparisons[0]
    if args.out is not None:
        png = parity_plot(
            [(f"{model_name} vanilla", comparison.vanilla.test_predictions, comparison.vanilla.test_targets),
             (f"{model_name} + CrysGNN distillation", comparison.distilled.test_predictions,
              comparison.distilled.test_targets)],
            Path(args.out) / f"{model_name.lower()}_parity.png",
            quantity=QUANTITY_LABELS.get(args.target, args.target.replace("_", " ")),
        )
        print_fn(f"parity plot: {png}")
    print_fn(f"total time: {time.perf_counter() - start:.1f} s")
    return comparison
