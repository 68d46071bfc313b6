"""From structure files to a pre-trained CrysGNN in one call: cache, then train."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..config import GraphSettings, ModelSettings
from .cache import CacheReport, build_cache
from .settings import ObjectiveSettings, OptimizerSettings, PretrainSettings
from .sources import StructureSource
from .trainer import PretrainResult, pretrain


def run_pretraining(
    sources: list[StructureSource],
    output_folder: str | os.PathLike,
    cache_folder: str | os.PathLike | None = None,
    graph_settings: GraphSettings | None = None,
    model_settings: ModelSettings | None = None,
    objectives: ObjectiveSettings | None = None,
    optimizer: OptimizerSettings | None = None,
    training: PretrainSettings | None = None,
    cache_workers: int = 1,
    shard_size: int = 1000,
    dedupe: bool = True,
    cache_only: bool = False,
    progress: bool = True,
    verbose: bool = False,
) -> tuple[CacheReport, PretrainResult | None]:
    """Build (or finish) the graph cache of ``sources`` and pre-train on it.

    The cache goes to ``cache_folder`` (default ``<output_folder>/cache``); both steps
    resume where an interrupted call stopped. Inputs that yield no crystal at all are an
    error (``ValueError`` naming them), not an empty run. ``progress`` shows progress bars
    (training's only when stderr is a terminal); ``verbose`` prints a line per epoch.
    """
    output = Path(output_folder)
    cache = Path(cache_folder) if cache_folder is not None else output / "cache"
    report = build_cache(
        sources, cache, graph_settings, shard_size=shard_size, workers=cache_workers,
        dedupe=dedupe, progress=progress,
    )
    print(report.summary(), flush=True)
    if report.skipped:
        print(
            f"{len(report.skipped)} input(s) skipped as unreadable or invalid; "
            f"reasons in {report.folder / 'report.tsv'}",
            file=sys.stderr, flush=True,
        )
    if report.crystals == 0:
        _discard_all_but_report(report.folder)  # a corrected input is read afresh next time
        names = ", ".join(s.path for s in sources)
        found = f"all {report.inputs} input(s) were skipped" if report.inputs else "no structures were found"
        raise ValueError(
            f"nothing to pre-train on: {found} in {names} (reasons in {report.folder / 'report.tsv'}); "
            "check the inputs"
        )
    if cache_only:
        return report, None
    result = pretrain(
        cache, output, model_settings, objectives, optimizer, training,
        progress_bar=progress and sys.stderr.isatty(), verbose=verbose,
    )
    return report, result


def _discard_all_but_report(folder: Path) -> None:
    """Remove a cache that holds no crystal, keeping its ``report.tsv`` (the reasons)."""
    shutil.rmtree(folder / "shards", ignore_errors=True)
    for name in ("index.json", "build.json"):
        (folder / name).unlink(missing_ok=True)
