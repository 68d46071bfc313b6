"""Choose the KD recipe from a sweep's VALIDATION MAEs only (the test MAEs are not read).

For every recipe, the paired relative validation gain over vanilla (same task, size and
seed) is averaged over seeds per task; recipes are ranked by the mean of their per-task
gains over the tasks where all of them ran, and the worst task is shown beside it. The
best recipe replaces the current default only if its validation gain has a 95 % CI
excluding 0 on every task (differences inside the seed noise do not move the default).

    python benchmarks/select_recipe.py benchmarks/results/bench/ablation
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

from crysgnn_dgl.bench.stats import paired_gain
from crysgnn_dgl.bench.sweep import stored_results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", type=Path, help="the --out folder of the sweep")
    parser.add_argument("--default", default="λ=1 linear l2 mse", help="the current default recipe (default: %(default)s)")
    args = parser.parse_args(argv)
    results = stored_results(args.sweep)
    vanilla: dict[tuple, dict[int, float]] = defaultdict(dict)
    arms: dict[str, dict[tuple, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in results:
        cell = (r["task"], r["predictor"], r["train_size"])
        if r["mode"] == "vanilla":
            vanilla[cell][r["seed"]] = r["val_mae"]
        elif r["mode"] == "distilled":
            arms[r["recipe"]][cell][r["seed"]] = r["val_mae"]
    rows = []
    for recipe, by_cell in arms.items():
        gains = {cell: paired_gain(vanilla[cell], seeds) for cell, seeds in by_cell.items() if cell in vanilla}
        gains = {cell: g for cell, g in gains.items() if g is not None}
        if gains:
            rows.append((recipe, gains))
    all_cells = sorted({cell for _, gains in rows for cell in gains})
    print("validation gain over vanilla, mean over paired seeds (wins/seeds); test MAEs not read\n")
    print(f"{'recipe':<42}" + "".join(f"{c[0] + ' ' + str(c[2]):>22}" for c in all_cells) + f"{'mean':>9}{'worst':>9}")
    ranked = []
    for recipe, gains in rows:
        complete = len(gains) == len(all_cells)
        means = [gains[c].mean for c in all_cells if c in gains]
        ranked.append((complete, statistics.mean(means), min(means), recipe, gains))
    ranked.sort(key=lambda row: (not row[0], -row[1]))
    for complete, mean, worst, recipe, gains in ranked:
        cells = "".join(
            f"{100 * gains[c].mean:>+14.1f} % ({gains[c].wins}/{len(gains[c].seeds)})" if c in gains else f"{'–':>22}"
            for c in all_cells)
        print(f"{recipe:<42}{cells}{100 * mean:>+8.1f}%{100 * worst:>+8.1f}%" + ("" if complete else "  (not on every task)"))
    if not ranked or not ranked[0][0]:
        return 0
    best = ranked[0]
    clear = all(gain.ci[0] > 0 for gain in best[4].values())
    print(f"\nbest mean validation gain over all tasks: {best[3]} ({100 * best[1]:+.1f} %)")
    if clear:
        print(f"chosen: {best[3]} (its 95 % CI of the validation gain excludes 0 on every task)")
    else:
        print(f"chosen: the current default {args.default!r}: no recipe's validation gain has a 95 % CI "
              "excluding 0 on every task, so none is distinguishable from the default's")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
