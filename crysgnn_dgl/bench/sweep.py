"""A sweep: the grid of runs, stored one JSON file per finished run under its key
(``<out>/runs/<key>.json``), so an interrupted sweep resumes where it stopped and a
repeated command reruns nothing. Runs go to ``jobs`` worker processes (one thread each).
A run in progress keeps its state after every epoch in ``<out>/partial/<key>.pt``, so a
killed sweep resumes it after its last finished epoch (bit for bit the uninterrupted run);
the file is deleted once the result is stored. Transfer runs keep their trained source
models in ``<out>/source_models/``, shared by every target fraction of the same source phase."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .graphs import GraphStore
from .spec import RunSpec
from .tasks import TaskData, TaskSpec, load_task

_WORKER: dict[str, Any] = {}
#: the folder of ``out`` that holds the trained source models of transfer runs
SOURCE_MODELS = "source_models"
#: the folder of ``out`` that holds the epoch checkpoints of runs in progress
PARTIAL = "partial"


def result_path(out: Path, spec: RunSpec) -> Path:
    return Path(out) / "runs" / f"{spec.key()}.json"


def partial_path(out: Path, spec: RunSpec) -> Path:
    """The epoch checkpoint of ``spec`` while it runs."""
    return Path(out) / PARTIAL / f"{spec.key()}.pt"


def load_result(out: Path, spec: RunSpec) -> dict[str, Any] | None:
    """The stored result of ``spec``, or ``None`` (also for an unreadable file)."""
    path = result_path(out, spec)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class RunStatus(NamedTuple):
    """What an output folder holds of one run: ``state`` is ``stored``, ``in progress``
    (an epoch checkpoint in ``partial/``) or ``to run``; ``detail`` says more in words."""

    state: str
    detail: str = ""


def run_status(out: Path, spec: RunSpec) -> RunStatus:
    """Whether ``spec`` is stored in ``out`` (its test MAE and best epoch), in progress (the
    last finished epoch it resumes after) or still to run; trains and builds nothing."""
    from ..training.resume import CheckpointMismatchError, EpochCheckpoint

    record = load_result(out, spec)
    if record is not None:
        return RunStatus("stored", f"test MAE {record['test_mae']:.4g}, best epoch "
                                   f"{record['best_epoch']} / {record['epochs']}")
    try:
        epoch = EpochCheckpoint(partial_path(out, spec)).last_epoch()
    except CheckpointMismatchError as exc:
        return RunStatus("in progress", f"unusable epoch checkpoint: {exc}")
    if epoch is None:
        return RunStatus("to run")
    return RunStatus("in progress", f"resumes after epoch {epoch} of a {spec.training.epochs}-epoch budget")


def stored_results(out: Path) -> list[dict[str, Any]]:
    """Every result stored in ``out`` (in file-name order)."""
    results = []
    for path in sorted((Path(out) / "runs").glob("*.json")):
        try:
            results.append(json.loads(path.read_text()))
        except ValueError:
            continue
    return results


def _save_result(out: Path, spec: RunSpec, record: dict[str, Any]) -> None:
    path = result_path(out, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    partial.write_text(json.dumps({"spec": spec.to_dict(), **record}, default=float))
    os.replace(partial, path)


def _store(spec: RunSpec, out: Path, data_dir: Path | None, task: TaskSpec | None = None) -> GraphStore:
    """The input store of ``task`` (default: the run's task) for the run's predictor,
    loaded once per process."""
    from .predictors import predictor

    task = task or spec.task
    tasks = _WORKER.setdefault("tasks", {})
    stores = _WORKER.setdefault("stores", {})
    task_key = json.dumps(task.to_dict(), sort_keys=True)
    if task_key not in tasks:
        tasks[task_key] = load_task(task, data_dir)
    key = (task_key, spec.predictor)
    if key not in stores:
        stores[key] = GraphStore(tasks[task_key], predictor(spec.predictor), Path(out) / "graphs")
    return stores[key]


def _epoch_reporter(spec: RunSpec, verbose: bool):
    """Per-epoch lines (``verbose``) or a progress bar over the run's epochs (one line per
    worker process); returns ``(log, close)``."""
    if verbose:
        return (lambda line: print(f"[{spec.key()[:8]}] {line}", flush=True)), (lambda: None)
    import sys

    from tqdm.auto import tqdm

    identity = multiprocessing.current_process()._identity
    bar = tqdm(total=spec.training.epochs, desc=f"  {spec.mode} n={spec.train_size} seed={spec.seed}", unit="epoch",
               leave=False, position=identity[0] if identity else 1, file=sys.stderr, dynamic_ncols=True)

    def advance(line: str) -> None:  # the loop's lines start "epoch N" (N > 1 at once after a resume)
        words = line.split()
        bar.update(int(words[1]) - bar.n if words[:1] == ["epoch"] and words[1].isdigit() else 1)

    return advance, bar.close


def exit_with_parent(poll_seconds: float = 1.0) -> None:
    """Pool initializer: end this worker when the process that started it is gone (killed
    sweeps leave no orphaned runs behind)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _run_in_worker(job: tuple[RunSpec, str, str | None, bool]) -> tuple[str, dict[str, Any] | None, str]:
    import torch

    from .runner import run_one

    spec, out, data_dir, verbose = job
    torch.set_num_threads(1)
    data = Path(data_dir) if data_dir else None
    log, close = _epoch_reporter(spec, verbose)
    try:
        source = _store(spec, Path(out), data, spec.source) if spec.source is not None else None
        record = run_one(spec, _store(spec, Path(out), data), log=log, source_store=source,
                         source_dir=Path(out) / SOURCE_MODELS, epoch_checkpoint=partial_path(Path(out), spec))
    except (ValueError, RuntimeError, OSError) as exc:
        return spec.key(), None, f"{type(exc).__name__}: {exc}"
    finally:
        close()
    _save_result(Path(out), spec, record)
    partial_path(Path(out), spec).unlink(missing_ok=True)
    return spec.key(), record, ""


def prepare_graphs(specs: Sequence[RunSpec], out: Path, data_dir: Path | None,
                   progress: Callable[[int, str], Callable[[int], None]] | None = None) -> list[TaskData]:
    """Build (once, in this process) every graph the runs will need, so that workers only read."""
    tasks = []
    by_task: dict[tuple[str, str], list[tuple[RunSpec, TaskSpec, int]]] = {}
    for spec in specs:
        uses = [(spec.task, spec.train_size)] + ([(spec.source, spec.source_size)] if spec.source else [])
        for task, size in uses:
            by_task.setdefault((json.dumps(task.to_dict(), sort_keys=True), spec.predictor), []).append(
                (spec, task, size))
    for group in by_task.values():
        store = _store(group[0][0], out, data_dir, group[0][1])
        needed: list[int] = list(store.task.val) + list(store.task.test)
        for spec, _, size in group:
            needed += store.task.train_candidates(size, spec.seed)
        missing = store.missing(needed)
        label = f"{store.task.spec.label} {store.predictor.name}"
        tick = progress(len(missing), label) if progress and missing else None
        store.ensure(missing, tick)
        if store.task not in tasks:
            tasks.append(store.task)
    return tasks


def run_sweep(
    specs: Iterable[RunSpec],
    out: Path,
    data_dir: Path | None = None,
    jobs: int = 1,
    verbose: bool = False,
    on_done: Callable[[RunSpec, dict[str, Any] | None, str], None] | None = None,
) -> tuple[list[dict[str, Any]], list[tuple[RunSpec, str]]]:
    """Run every spec without a stored result; returns all results (stored and new) in
    spec order, and the failed runs with their reason (the rest of the sweep goes on)."""
    specs = list(dict.fromkeys(specs))
    todo = [spec for spec in specs if load_result(out, spec) is None]
    failures: list[tuple[RunSpec, str]] = []
    jobs_list = [(spec, str(out), str(data_dir) if data_dir else None, verbose) for spec in todo]
    by_key = {spec.key(): spec for spec in todo}
    if jobs > 1 and len(todo) > 1:
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(jobs, len(todo)), initializer=exit_with_parent) as pool:
            for key, record, error in pool.imap_unordered(_run_in_worker, jobs_list):
                _finished(by_key[key], record, error, failures, on_done)
            pool.close()  # let the workers end on their own (terminate() can leak semaphores)
            pool.join()
    else:
        for job in jobs_list:
            key, record, error = _run_in_worker(job)
            _finished(by_key[key], record, error, failures, on_done)
    failed = {spec.key() for spec, _ in failures}
    results = [load_result(out, spec) for spec in specs if spec.key() not in failed]
    return [r for r in results if r is not None], failures


def _finished(spec, record, error, failures, on_done) -> None:
    if error:
        failures.append((spec, error))
    if on_done is not None:
        on_done(spec, record, error)
