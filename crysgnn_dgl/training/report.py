"""Printed output of the vanilla-vs-distilled experiments: the comparison table, the
summary over repeated seeds, and the parity plot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from .compare import Comparison
from .options import DEMO_TARGET
from .parity import parity_plot

QUANTITY_LABELS = {DEMO_TARGET: "formation energy (eV/atom)", "band_gap": "band gap (eV)"}
UNITS = {DEMO_TARGET: "eV/atom", "band_gap": "eV"}


def print_comparison(comparison: Comparison, title: str, target: str, print_fn: Callable[[str], None] = print) -> None:
    """``title``, the table of the two runs (MAEs in the unit of ``target``) and the mean
    KD term of the distilled run."""
    print_fn(title)
    print_fn(comparison.table(unit=UNITS.get(target, "target units")))
    if comparison.kd_mean is not None:
        print_fn(f"mean KD term during distilled training: {comparison.kd_mean:.4f}")


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


def write_parity_plot(
    comparison: Comparison, model_name: str, target: str, out: Path, print_fn: Callable[[str], None] = print
) -> Path:
    """Write ``<out>/<model>_parity.png`` (test predictions of both runs) and print its path."""
    panels = []
    for label, result in ((f"{model_name} vanilla", comparison.vanilla),
                          (f"{model_name} + CrysGNN distillation", comparison.distilled)):
        if result.test_predictions is None or result.test_targets is None:
            raise ValueError(f"{label}: the run kept no test predictions to plot")
        panels.append((label, result.test_predictions, result.test_targets))
    png = parity_plot(
        panels,
        Path(out) / f"{model_name.lower()}_parity.png",
        quantity=QUANTITY_LABELS.get(target, target.replace("_", " ")),
    )
    print_fn(f"parity plot: {png}")
    return png
