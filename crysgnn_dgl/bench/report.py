"""Outputs of a sweep in ``--out``: ``results.csv`` (one row per run), ``summary.md``
(per cell: mean ± std of MAEs, measured best epochs, paired gains against ``vanilla`` and
against the ``shuffled-teacher`` control), and PNG plots."""

from __future__ import annotations

import csv
import math
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .stats import arm, by_seed, cells, paired_gain

COLUMNS = ("task", "predictor", "mode", "teacher", "recipe", "train_size", "seed", "val_mae", "test_mae",
           "best_epoch", "epochs", "seconds", "kd_mean", "unit", "key")


def write_results_csv(results: Sequence[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for record in results:
            writer.writerow({k: record.get(k, "") for k in COLUMNS})


def _mean_sd(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4f}" if values else "–"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def _gain_text(gain) -> tuple[str, str, str]:
    if gain is None:
        return "–", "–", "–"
    ci = "–" if math.isnan(gain.ci[0]) else f"[{100 * gain.ci[0]:+.1f}, {100 * gain.ci[1]:+.1f}]"
    p = "–" if math.isnan(gain.p_value) else f"{gain.p_value:.3f}"
    return f"{100 * gain.mean:+.1f} % ({gain.wins}/{len(gain.seeds)})", ci, p


def arm_name(key: tuple[str, str, str]) -> str:
    """An arm's name in reports: ``mode · teacher · recipe`` (empty parts left out)."""
    mode, teacher, recipe = key
    return " · ".join(part for part in (mode, teacher, recipe) if part)


def summary_markdown(results: Sequence[dict[str, Any]], title: str = "Benchmark summary") -> str:
    """The summary: for each cell a table of arms, then paired gains (test: the report;
    validation: what a recipe is chosen by)."""
    lines = [f"# {title}", "",
             "Gains are paired over seeds (same split, initial weights and batch order): "
             "`(MAE_ref − MAE_arm) / MAE_ref`, mean over seeds with (wins/seeds), 95 % CI "
             "(Student t) and the two-sided paired-test p-value. Choose recipes by the "
             "validation columns; the test columns are the report.", ""]
    for (task, predictor, size), records in sorted(cells(results).items()):
        unit = records[0].get("unit", "")
        lines += [f"## {task} · {predictor} · {size} training crystals", "",
                  f"| arm | seeds | test MAE{f' ({unit})' if unit else ''} | val MAE | best epoch / epochs | KD mean | s/run |",
                  "|---|---|---|---|---|---|---|"]
        groups: dict[tuple, list[dict[str, Any]]] = {}
        for record in records:
            groups.setdefault(arm(record), []).append(record)
        for key, group in sorted(groups.items(), key=lambda kv: (kv[0][0] != "vanilla", kv[0])):
            kd = [r["kd_mean"] for r in group if isinstance(r["kd_mean"], float) and not math.isnan(r["kd_mean"])]
            epochs = f"{statistics.mean(r['best_epoch'] for r in group):.0f} / {statistics.mean(r['epochs'] for r in group):.0f}"
            lines.append(
                f"| {arm_name(key)} | {len(group)} | {_mean_sd([r['test_mae'] for r in group])} | "
                f"{_mean_sd([r['val_mae'] for r in group])} | {epochs} | "
                f"{statistics.mean(kd):.4g} | {statistics.mean(r['seconds'] for r in group):.0f} |"
                if kd else
                f"| {arm_name(key)} | {len(group)} | {_mean_sd([r['test_mae'] for r in group])} | "
                f"{_mean_sd([r['val_mae'] for r in group])} | {epochs} | – | "
                f"{statistics.mean(r['seconds'] for r in group):.0f} |"
            )
        lines += ["", _gain_table(records), ""]
    return "\n".join(lines)


def _gain_table(records: Sequence[dict[str, Any]]) -> str:
    test, val = by_seed(records, "test_mae"), by_seed(records, "val_mae")
    references = [key for key in test if key[0] == "vanilla"]
    rows = ["| arm | against | test gain (wins/seeds) | test 95 % CI | p | val gain | val 95 % CI |",
            "|---|---|---|---|---|---|---|"]
    for key in sorted(test):
        if key[0] == "vanilla":
            continue
        against = list(references)
        if key[0] == "distilled":
            against += [k for k in test if k[0] == "shuffled-teacher" and k[1:] == key[1:]]
        for ref in against:
            t_gain, t_ci, t_p = _gain_text(paired_gain(test[ref], test[key]))
            v_gain, v_ci, _ = _gain_text(paired_gain(val[ref], val[key]))
            rows.append(f"| {arm_name(key)} | {ref[0]} | {t_gain} | {t_ci} | {t_p} | {v_gain} | {v_ci} |")
    return "\n".join(rows) if len(rows) > 2 else "(no arm to compare with vanilla)"


def write_plots(results: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """``mae_vs_size_<task>_<predictor>.png`` (mean ± std over seeds per arm) and
    ``parity_<task>_<predictor>_<size>.png`` (vanilla and distilled, first common seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    by_pair: dict[tuple, list[dict[str, Any]]] = {}
    for record in results:
        by_pair.setdefault((record["task"], record["predictor"]), []).append(record)
    for (task, predictor), records in sorted(by_pair.items()):
        figure, axis = plt.subplots(figsize=(5, 4))
        arms: dict[tuple, dict[int, list[float]]] = {}
        for record in records:
            arms.setdefault(arm(record), {}).setdefault(record["train_size"], []).append(record["test_mae"])
        for key, sizes in sorted(arms.items()):
            xs = sorted(sizes)
            means = [statistics.mean(sizes[x]) for x in xs]
            sds = [statistics.stdev(sizes[x]) if len(sizes[x]) > 1 else 0.0 for x in xs]
            axis.errorbar(xs, means, yerr=sds, marker="o", capsize=3, label=arm_name(key)[:60])
        axis.set_xscale("log")
        axis.set_xlabel("training crystals")
        unit = records[0].get("unit", "")
        axis.set_ylabel(f"test MAE ({unit})" if unit else "test MAE")
        written.append(_finish(plt, figure, axis, f"{task} · {predictor}", out / _file_name("mae_vs_size", task, predictor)))
        written += _parity_plots(records, task, predictor, out, plt)
    return written


def _file_name(*parts: object) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "_".join(str(p) for p in parts)) + ".png"


def _finish(plt, figure, axis, title: str, path: Path) -> Path:
    axis.set_title(title)
    axis.legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _parity_plots(records, task, predictor, out, plt, most: int = 4) -> list[Path]:
    """Per size: vanilla and up to ``most - 1`` distilled arms, at their lowest common seed."""
    written = []
    for size in sorted({r["train_size"] for r in records}):
        runs = [r for r in records if r["train_size"] == size and "test_predictions" in r
                and r["mode"] in ("vanilla", "distilled")]
        vanilla_seeds = {r["seed"] for r in runs if r["mode"] == "vanilla"}
        seeds = sorted(vanilla_seeds & {r["seed"] for r in runs if r["mode"] == "distilled"}) or sorted(vanilla_seeds)
        chosen = sorted((r for r in runs if seeds and r["seed"] == seeds[0]),
                        key=lambda r: (r["mode"] != "vanilla", arm_name(arm(r))))[:most]
        if not chosen:
            continue
        figure, axis = plt.subplots(figsize=(4.5, 4.5))
        for record in chosen:
            axis.scatter(record["test_targets"], record["test_predictions"], s=4, alpha=0.5,
                         label=f"{arm_name(arm(record))[:50]} (MAE {record['test_mae']:.3f})")
        low = min(min(r["test_targets"]) for r in chosen)
        high = max(max(r["test_targets"]) for r in chosen)
        axis.plot([low, high], [low, high], "k--", lw=0.8)
        axis.set_xlabel("target")
        axis.set_ylabel("prediction")
        title = f"{task} · {predictor} · {size} · seed {seeds[0]}"
        written.append(_finish(plt, figure, axis, title, out / _file_name("parity", task, predictor, size)))
    return written


def write_report(results: Sequence[dict[str, Any]], out: Path, title: str = "Benchmark summary") -> None:
    """``results.csv``, ``summary.md`` and the plots."""
    out.mkdir(parents=True, exist_ok=True)
    write_results_csv(results, out / "results.csv")
    (out / "summary.md").write_text(summary_markdown(results, title) + "\n")
    if results:
        write_plots(results, out)
