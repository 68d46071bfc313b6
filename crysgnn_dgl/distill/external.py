"""Vanilla-vs-distilled runs of predictors trained by their own library's loop (alignn's
``train_dgl``, matgl's Lightning module): command-line options, selection of real
labelled crystals and their split, and the report, shared by the example scripts.

The comparison itself (table, relative gain, parity plot) is
:class:`crysgnn_dgl.training.Comparison`; only the training loop differs per library.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..training.compare import Comparison
from ..training.experiment import DEMO_TARGET, QUANTITY_LABELS, bundled_demo_table
from ..training.loop import TrainingResult, TrainingSettings
from ..training.parity import parity_plot
from ..training.splits import Split, split_indices


@dataclass(frozen=True)
class ExternalDefaults:
    """Default budget of one example (each script picks its own)."""

    train_size: int = 300
    val_size: int = 50
    test_size: int = 100
    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-3


def add_external_arguments(parser: argparse.ArgumentParser, defaults: ExternalDefaults) -> None:
    """Options shared by the ALIGNN and MEGNet examples (each explained in ``--help``)."""
    data = parser.add_argument_group("data")
    data.add_argument("--data", type=Path, default=None,
                      help="CSV (.csv or .csv.xz) with 'material_id', 'cif' and the target column, e.g. "
                           "../shared/data/mp_cgcnn36k.csv.xz (default: the formation-energy subset bundled "
                           "with the package, 3000 small Materials Project crystals)")
    data.add_argument("--target", default=DEMO_TARGET, help="target column of the table (default: %(default)s)")
    data.add_argument("--split-json", type=Path, default=None,
                      help="official split as {'train'|'val'|'test': {material_id: value}}, e.g. "
                           "../shared/data/mp2018_megnet_e_form_split.json.gz (MP 2018.6.1); rows of --data "
                           "whose id is in a part go to that part (its value replaces the table's target), "
                           "in file order (default: a seeded random split of the table)")
    data.add_argument("--train-size", type=int, default=defaults.train_size,
                      help="training crystals (default: %(default)s)")
    data.add_argument("--val-size", type=int, default=defaults.val_size,
                      help="validation crystals (default: %(default)s)")
    data.add_argument("--test-size", type=int, default=defaults.test_size, help="test crystals (default: %(default)s)")
    data.add_argument("--split-seed", type=int, default=0,
                      help="seed of the random split when no --split-json is given (default: %(default)s)")
    train = parser.add_argument_group("training (identical for both runs)")
    train.add_argument("--epochs", type=int, default=defaults.epochs, help="epochs per run (default: %(default)s)")
    train.add_argument("--batch-size", type=int, default=defaults.batch_size,
                       help="crystals per step (default: %(default)s)")
    train.add_argument("--lr", type=float, default=defaults.lr, help="learning rate (default: %(default)s)")
    train.add_argument("--seed", type=int, default=0,
                       help="seed of the initial weights and the shuffling, same for both runs (default: %(default)s)")
    train.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    distill = parser.add_argument_group("distillation")
    distill.add_argument("--teacher", default=None,
                         help="teacher checkpoint (.pt); default: the teacher bundled with the package")
    distill.add_argument("--delta", type=float, default=0.5,
                         help="delta of L + (1-delta)/delta * KD; 0.5 weights KD by 1 (default: %(default)s)")
    output = parser.add_argument_group("output")
    output.add_argument("--workdir", type=Path, default=None,
                        help="folder for the libraries' own outputs (checkpoints, logs; default: a temporary folder)")
    output.add_argument("--out", type=Path, default=None, help="folder for the parity plot PNG (default: no plot)")
    output.add_argument("--quiet", action="store_true", help="less progress output")


@dataclass
class LabelledStructures:
    """The selected crystals (pymatgen structures) with targets and their split."""

    structures: list[Any]
    targets: torch.Tensor
    ids: list[str]
    split: Split
    source: str
    skipped: list[tuple[str, str]]

    def part(self, name: str) -> tuple[list[Any], list[float]]:
        indices = getattr(self.split, name)
        return [self.structures[i] for i in indices], [float(self.targets[i]) for i in indices]


def _read_split(path: Path) -> dict[str, dict[str, float]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        raw = json.load(handle)
    missing = {"train", "val", "test"} - set(raw)
    if missing:
        raise ValueError(f"{path}: split file lacks part(s) {sorted(missing)}; expected train, val, test")
    return {part: {str(k): float(v) for k, v in raw[part].items()} for part in ("train", "val", "test")}


def select_structures(args: argparse.Namespace) -> LabelledStructures:
    """Read the table, choose train/val/test rows, parse only their CIFs (unreadable ones
    are skipped and listed; the part is refilled from the following rows)."""
    from pymatgen.core import Structure

    path = args.data if args.data is not None else bundled_demo_table()
    frame = pd.read_csv(path)
    for column in ("cif", args.target) if args.split_json is None else ("cif", "material_id"):
        if column not in frame.columns:
            raise ValueError(f"{path}: no column {column!r}; columns are {list(frame.columns)}")
    ids = frame["material_id"].astype(str).tolist() if "material_id" in frame.columns else [f"row {i}" for i in range(len(frame))]
    sizes = {"train": args.train_size, "val": args.val_size, "test": args.test_size}
    if args.split_json is not None:
        official = _read_split(args.split_json)
        row_of = {sid: i for i, sid in enumerate(ids)}
        candidates = {part: [(row_of[sid], value) for sid, value in values.items() if sid in row_of]
                      for part, values in official.items()}
        source = f"{path} with the split of {args.split_json}"
    else:
        values = pd.to_numeric(frame[args.target], errors="coerce").to_numpy(dtype=float)
        split = split_indices(len(frame), 0.1, 0.1, args.split_seed)
        candidates = {part: [(i, values[i]) for i in getattr(split, part)] for part in ("train", "val", "test")}
        source = f"{path} [{args.target}], random split (seed {args.split_seed})"
    structures, targets, chosen_ids, skipped = [], [], [], []
    parts: dict[str, list[int]] = {}
    for part in ("train", "val", "test"):
        parts[part] = []
        for row, value in candidates[part]:
            if len(parts[part]) >= sizes[part]:
                break
            if not math.isfinite(value):
                skipped.append((ids[row], f"target is not a finite number ({value})"))
                continue
            try:
                structure = Structure.from_str(frame["cif"].iloc[row], fmt="cif")
            except Exception as error:  # noqa: BLE001 - any unreadable CIF is skipped and reported
                skipped.append((ids[row], f"unreadable CIF: {error}"))
                continue
            parts[part].append(len(structures))
            structures.append(structure)
            targets.append(value)
            chosen_ids.append(ids[row])
        if not parts[part] and part != "val":
            raise ValueError(f"{source}: no usable crystals for the {part} part")
    split = Split(train=parts["train"], val=parts["val"], test=parts["test"])
    return LabelledStructures(structures, torch.tensor(targets, dtype=torch.float32), chosen_ids, split, source, skipped)


def training_settings(args: argparse.Namespace) -> TrainingSettings:
    """The budget both runs share, as the comparison table reports it."""
    return TrainingSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)


def timed_result(train: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> TrainingResult:
    """Run ``train`` (returns test predictions and targets) and wrap its outcome."""
    start = time.perf_counter()
    predictions, targets = train()
    predictions, targets = predictions.reshape(-1).float(), targets.reshape(-1).float()
    return TrainingResult(test_mae=float((predictions - targets).abs().mean()), test_predictions=predictions,
                          test_targets=targets, seconds=time.perf_counter() - start)


def report(
    args: argparse.Namespace,
    model_name: str,
    data: LabelledStructures,
    vanilla: TrainingResult,
    distilled: TrainingResult,
    kd_mean: float | None,
    teacher_source: str,
    started: float,
    print_fn: Callable[[str], None] = print,
) -> Comparison:
    """Print the vanilla-vs-distilled table (and write the parity plot with ``--out``)."""
    for result in (vanilla, distilled):
        result.best_epoch = result.best_epoch or args.epochs
    comparison = Comparison(vanilla, distilled, data.split, training_settings(args), kd_mean, teacher_source)
    print_fn("")
    print_fn(f"data: {data.source}")
    if data.skipped:
        print_fn(f"skipped {len(data.skipped)} row(s): " + "; ".join(f"{i}: {r}" for i, r in data.skipped[:5]))
    print_fn(f"{model_name}: vanilla vs distilled (teacher: {teacher_source})")
    print_fn(comparison.table())
    if kd_mean is not None:
        print_fn(f"mean KD term during distilled training: {kd_mean:.4f}")
    if args.out is not None:
        png = parity_plot(
            [(f"{model_name} vanilla", vanilla.test_predictions, vanilla.test_targets),
             (f"{model_name} + CrysGNN distillation", distilled.test_predictions, distilled.test_targets)],
            Path(args.out) / f"{model_name.lower()}_parity.png",
            quantity=QUANTITY_LABELS.get(args.target, args.target.replace("_", " ")),
        )
        print_fn(f"parity plot: {png}")
    print_fn(f"total time: {time.perf_counter() - started:.1f} s")
    return comparison
