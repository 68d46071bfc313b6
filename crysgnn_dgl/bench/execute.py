"""``crysgnn-dgl bench`` end to end: prepare graphs, run what is missing with progress
bars, write the report, list skipped structures and failed runs."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .grid import Grid
from .report import arm_name, write_report
from .sweep import load_result, prepare_graphs, run_status, run_sweep, stored_results


def _bar(total: int, label: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, unit="run" if label == "runs" else "graph", file=sys.stderr,
                dynamic_ncols=True, leave=True)


def run_bench(grid: Grid, out: Path, data_dir: Path | None = None, jobs: int = 1, verbose: bool = False,
              report_all: bool = False, print_fn: Callable[[str], None] = print,
              options: dict[str, Any] | None = None) -> int:
    """Run the grid into ``out``; returns 0, or 1 when some runs failed (each listed).
    The report covers the grid's runs, or with ``report_all`` every run stored in ``out``.
    ``config.json`` holds this invocation's grid; ``invocations.jsonl`` gains one line per
    invocation (its ``options``, time, run keys), so a store filled by several commands says how."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    specs = grid.specs()
    (out / "config.json").write_text(json.dumps(
        {"runs": len(specs), "specs": [spec.to_dict() for spec in specs]}, indent=1))
    with open(out / "invocations.jsonl", "a") as log:
        log.write(json.dumps({"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "options": options or {},
                              "runs": len(specs), "keys": [spec.key() for spec in specs]}, default=str) + "\n")
    bars = []

    def graph_progress(total: int, label: str):
        bar = _bar(total, f"graphs {label}")
        bars.append(bar)
        return bar.update

    tasks = prepare_graphs(specs, out, data_dir, graph_progress)
    for bar in bars:
        bar.close()
    done = sum(load_result(out, spec) is not None for spec in specs)
    print_fn(f"{len(specs)} run(s): {done} stored, {len(specs) - done} to run with {jobs} job(s) -> {out}")
    bar = _bar(len(specs) - done, "runs")

    def on_done(spec, record, error):
        bar.update(1)
        if error:
            bar.write(f"failed: {spec.task.label} {spec.predictor} {spec.mode} n={spec.train_size} "
                      f"seed={spec.seed}: {error}")
        elif record is not None and not verbose:
            bar.set_postfix_str(f"{spec.mode} n={spec.train_size} seed={spec.seed} test {record['test_mae']:.4f}")

    results, failures = run_sweep(specs, out, data_dir, jobs, verbose, on_done)
    bar.close()
    skipped = [(task.spec.label, sid, why) for task in tasks for sid, why in task.skipped]
    skipped += _failed_graphs(out, grid, data_dir)
    with open(out / "skipped.tsv", "w") as handle:
        handle.write("task\tid\treason\n")
        handle.writelines(f"{t}\t{sid}\t{why}\n" for t, sid, why in skipped)
    if report_all:
        results = stored_results(out)
    write_report(results, out)
    print_fn(f"{len(results)} result(s); summary: {out / 'summary.md'}; table: {out / 'results.csv'}")
    if skipped:
        print_fn(f"{len(skipped)} structure(s) skipped, listed by id in {out / 'skipped.tsv'}")
    for spec, error in failures:
        print_fn(f"failed run {spec.key()}: {error}")
    return 1 if failures else 0


def plan_bench(grid: Grid, out: Path, print_fn: Callable[[str], None] = print) -> int:
    """Print every run of the grid with what ``out`` holds of it (stored, in progress with
    the epoch it resumes after, or to run) and a count of each; builds no graph, trains
    nothing, writes nothing. Returns 0."""
    specs = grid.specs()
    counts = dict.fromkeys(("stored", "in progress", "to run"), 0)
    for spec in specs:
        status = run_status(Path(out), spec)
        counts[status.state] += 1
        size = spec.train_size or "all"
        print_fn(f"{spec.task_label} · {spec.predictor} · {arm_name((spec.mode, spec.teacher_label, spec.recipe_label))} · "
                 f"n={size} · seed {spec.seed}: {status.state}" + (f" ({status.detail})" if status.detail else ""))
    print_fn(f"{len(specs)} run(s) in {out}: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
    return 0


def _failed_graphs(out: Path, grid: Grid, data_dir: Path | None) -> list[tuple[str, str, str]]:
    from .sweep import _WORKER

    rows = []
    for store in _WORKER.get("stores", {}).values():
        rows += [(store.task.spec.label, sid, why) for sid, why in sorted(store.failed.items())]
    return rows
