"""Parity plots (predicted vs reference) written as PNG with matplotlib's Agg canvas."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch


def parity_plot(
    panels: Sequence[tuple[str, torch.Tensor, torch.Tensor]],
    path: str | Path,
    quantity: str = "formation energy (eV/atom)",
    dpi: int = 120,
) -> Path:
    """Write side-by-side parity plots, one per ``(title, predictions, targets)`` panel.

    Each panel shows the points, the diagonal and the MAE; all panels share their axis
    range. Uses the Agg canvas directly, so no display and no global backend change.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not panels:
        raise ValueError("parity_plot needs at least one panel")
    values = torch.cat([torch.cat([p.flatten(), t.flatten()]) for _, p, t in panels]).float()
    low, high = float(values.min()), float(values.max())
    margin = 0.05 * (high - low or 1.0)
    low, high = low - margin, high + margin
    figure = Figure(figsize=(4.6 * len(panels), 4.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, predictions, targets) in zip(axes, panels):
        predictions, targets = predictions.flatten().float(), targets.flatten().float()
        mae = float((predictions - targets).abs().mean())
        ax.plot([low, high], [low, high], color="0.4", linewidth=1, zorder=1)
        ax.scatter(targets.numpy(), predictions.numpy(), s=9, alpha=0.6, edgecolors="none", zorder=2)
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_aspect("equal")
        ax.set_title(title)
        ax.set_xlabel(f"DFT {quantity}")
        ax.set_ylabel(f"predicted {quantity}")
        ax.text(0.04, 0.96, f"MAE {mae:.4f}\nn = {len(targets)}", transform=ax.transAxes, va="top")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.15)
    return path
