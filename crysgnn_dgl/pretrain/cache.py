"""On-disk sharded graph cache with pre-training labels.

Layout of a cache folder::

    build.json                 what the cache was built from (checked on resume)
    shards/shard_000000.npz    arrays of up to ``shard_size`` crystals (numpy, uncompressed)
    shards/shard_000000.json   their ids, fingerprints and the inputs skipped with reasons
    index.json                 shard list, excluded (duplicate) positions, totals
    report.tsv                 every skipped or de-duplicated input: id, reason

A shard holds, per crystal, ``num_atoms``, ``space_group`` (0..229), ``crystal_system``
(0..6) and ``lattice``; per atom ``atomic_number``, ``frac_coords`` and the neighbour
table (``neighbor`` local index, ``distance``, periodic ``image`` as the smallest integer
type that holds it, ``real``), from which the graph (:func:`crysgnn_dgl.graph.builder.
graph_from_table`, as for any crystal) and the connectivity target
(:func:`crysgnn_dgl.graph.connectivity_targets`) follow exactly. The N×N connectivity
matrix is therefore not stored: it is a pure function of the table.

Shards are built in parallel worker processes and written atomically; the ``.json``
sidecar is written last and marks a shard complete, so an interrupted build resumes
where it stopped. Bad inputs are skipped and reported, never fatal.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from ..config import GraphSettings
from ..graph.errors import StructureError
from ..graph.labels import crystal_labels
from ..graph.neighbors import neighbor_table
from ..graph.structures import to_structure, validate_structure
from .sources import StructureSource, check_source, iterate_sources
from .workers import worker_pool

CACHE_FORMAT = "crysgnn_dgl.graph_cache"
#: version 2: shards hold the neighbours' periodic ``image`` (version 1 caches must be rebuilt)
CACHE_VERSION = 2
SHARD_ARRAYS = (
    "num_atoms", "space_group", "crystal_system", "lattice",
    "atomic_number", "frac_coords", "neighbor", "distance", "image", "real",
)


def _write_json(path: Path, payload: Any) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(payload, indent=1))
    os.replace(temporary, path)


def _smallest_int(values: np.ndarray) -> np.ndarray:
    """``values`` (integers) as the smallest signed integer type that holds them."""
    for dtype in (np.int8, np.int16, np.int32):
        limits = np.iinfo(dtype)
        if values.size == 0 or (values.min() >= limits.min and values.max() <= limits.max):
            return values.astype(dtype)
    return values


def shard_name(number: int) -> str:
    return f"shard_{number:06d}"


def structure_fingerprint(formula: str, space_group: int, volume_per_atom: float, table: Any) -> str:
    """Key under which two inputs count as the same crystal: formula (site counts),
    space group, volume per atom (0.01 Å³) and mean neighbour distance (0.001 Å)."""
    real = table.distance[table.real]
    shell = float(real.mean()) if real.size else float("nan")
    return f"{formula}|{space_group}|{volume_per_atom:.2f}|{shell:.3f}"


def featurise(item: Any, structure_id: str, settings: GraphSettings) -> dict[str, Any]:
    """Neighbour table, labels and fingerprint of one crystal; raises StructureError."""
    structure = to_structure(item, structure_id)
    numbers = validate_structure(structure, structure_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = neighbor_table(structure.lattice.matrix, structure.frac_coords, settings, structure_id)
        labels = crystal_labels(structure, structure_id)
    volume_per_atom = structure.volume / len(structure)
    return {
        "atomic_number": numbers.astype(np.uint8),
        "frac_coords": np.asarray(structure.frac_coords, dtype=np.float32),
        "lattice": np.asarray(structure.lattice.matrix, dtype=np.float32),
        "neighbor": table.index.astype(np.int32),
        "distance": table.distance.astype(np.float32),
        "image": table.image.astype(np.int64),
        "real": table.real,
        "space_group": labels.space_group,
        "crystal_system": labels.crystal_system,
        "fingerprint": structure_fingerprint(structure.composition.formula, labels.space_group, volume_per_atom, table),
    }


def build_shard(
    number: int, items: list[tuple[str, Any]], folder: str, settings: dict[str, Any]
) -> dict[str, Any]:
    """Featurise ``items`` and write shard ``number`` into ``folder`` (runs in a worker)."""
    graph_settings = GraphSettings.from_dict(settings)
    crystals, ids, fingerprints, skipped = [], [], [], []
    for sid, item in items:
        try:
            crystals.append(featurise(item, sid, graph_settings))
        except StructureError as exc:
            skipped.append([sid, exc.reason])
            continue
        except Exception as exc:  # anything unexpected costs one structure, not the shard
            skipped.append([sid, f"unexpected error ({type(exc).__name__}: {exc})"])
            continue
        ids.append(sid)
        fingerprints.append(crystals[-1].pop("fingerprint"))
    k = graph_settings.max_neighbors
    arrays: dict[str, np.ndarray] = {
        "num_atoms": np.asarray([len(c["atomic_number"]) for c in crystals], dtype=np.int32),
        "space_group": np.asarray([c["space_group"] for c in crystals], dtype=np.int16),
        "crystal_system": np.asarray([c["crystal_system"] for c in crystals], dtype=np.int8),
        "lattice": np.asarray([c["lattice"] for c in crystals], dtype=np.float32).reshape(-1, 3, 3),
    }
    for key, dtype, shape in (
        ("atomic_number", np.uint8, (0,)),
        ("frac_coords", np.float32, (0, 3)),
        ("neighbor", np.int32, (0, k)),
        ("distance", np.float32, (0, k)),
        ("image", np.int64, (0, k, 3)),
        ("real", bool, (0, k)),
    ):
        parts = [c[key] for c in crystals]
        arrays[key] = np.concatenate(parts).astype(dtype) if parts else np.zeros(shape, dtype)
    arrays["image"] = _smallest_int(arrays["image"])
    root = Path(folder)
    temporary = root / f".{shard_name(number)}.tmp-{os.getpid()}.npz"
    # ignored arg-type: numpy's stub lets **kwargs fill allow_pickle: bool (no array is named so)
    np.savez(temporary, **arrays)  # type: ignore[arg-type]
    os.replace(temporary, root / f"{shard_name(number)}.npz")
    summary = {
        "shard": number,
        "inputs": len(items),
        "count": len(ids),
        "atoms": int(arrays["num_atoms"].sum()),
        "ids": ids,
        "fingerprints": fingerprints,
        "skipped": skipped,
    }
    _write_json(root / f"{shard_name(number)}.json", summary)
    return summary


@dataclass
class CacheReport:
    """Outcome of :func:`build_cache`."""

    folder: Path
    inputs: int = 0
    crystals: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    shards_reused: int = 0
    shards_built: int = 0

    def summary(self) -> str:
        return (
            f"{self.inputs} inputs -> {self.crystals} crystals in {self.folder} "
            f"({len(self.skipped)} skipped, {len(self.duplicates)} duplicates removed; "
            f"{self.shards_built} shards built, {self.shards_reused} reused); "
            f"report: {self.folder / 'report.tsv'}"
        )


def _chunks(pairs: Iterator[tuple[str, Any]], size: int) -> Iterator[list[tuple[str, Any]]]:
    while chunk := list(islice(pairs, size)):
        yield chunk


def _has_shards(folder: Path) -> bool:
    shards = folder / "shards"
    return shards.is_dir() and any(shards.glob("shard_*.json"))


def _check_build_record(folder: Path, record: dict[str, Any]) -> None:
    """Resume only the build that began this cache; a cache that holds no finished shard
    yet (e.g. an earlier command failed on a mistyped input) is simply restarted."""
    path = folder / "build.json"
    if path.is_file() and _has_shards(folder):
        previous = json.loads(path.read_text())
        if previous != record:
            changed = sorted(k for k in record if previous.get(k) != record[k])
            listed = "; ".join(f"{k}: was {previous.get(k)}, now {record[k]}" for k in changed)
            raise ValueError(
                f"cache {folder} was built from different inputs or settings ({listed}); "
                "use a new cache folder, or delete this one to rebuild it"
            )
    if not path.is_file() or json.loads(path.read_text()) != record:
        folder.mkdir(parents=True, exist_ok=True)
        _write_json(path, record)


def _check_arguments(sources: list[StructureSource], shard_size: int, workers: int) -> None:
    """Everything :func:`build_cache` is given, checked before it writes anything."""
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard size must be an integer >= 1, got {shard_size!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"cache workers must be an integer >= 0, got {workers!r}")
    for source in sources:
        check_source(source)


def _progress(enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(unit=" structures", desc="graph cache", mininterval=10.0, smoothing=0.05)


def build_cache(
    sources: Iterable[StructureSource],
    folder: str | os.PathLike,
    settings: GraphSettings | None = None,
    shard_size: int = 1000,
    workers: int = 1,
    dedupe: bool = True,
    progress: bool = True,
) -> CacheReport:
    """Build (or finish building) a graph cache from ``sources``.

    Args:
        sources: inputs, read in order (the order defines the shards, so a resumed build
            must get the same sources).
        folder: cache folder; existing complete shards are reused.
        settings: featuriser settings (stored in the index).
        shard_size: inputs per shard.
        workers: worker processes (0: featurise in this process); they die with this
            process (:mod:`.workers`).
        dedupe: exclude a crystal whose id, or whose :func:`structure_fingerprint`,
            equals an earlier one's; listed in the report.
        progress: show a progress bar.

    Every source, ``shard_size`` and ``workers`` are checked before anything is written.
    """
    settings = settings or GraphSettings()
    sources = list(sources)
    _check_arguments(sources, shard_size, workers)
    folder = Path(folder)
    shard_folder = folder / "shards"
    record = {
        "format": CACHE_FORMAT,
        "format_version": CACHE_VERSION,
        "graph_settings": settings.to_dict(),
        "shard_size": shard_size,
        "sources": [vars(s) for s in sources],
    }
    _check_build_record(folder, record)
    shard_folder.mkdir(parents=True, exist_ok=True)
    report = CacheReport(folder)
    summaries: dict[int, dict[str, Any]] = {}
    bar = _progress(progress)

    def collect(summary: dict[str, Any], reused: bool) -> None:
        summaries[summary["shard"]] = summary
        report.shards_reused += reused
        report.shards_built += not reused
        if bar is not None:
            bar.update(summary["inputs"])

    def reusable(number: int) -> dict[str, Any] | None:
        sidecar = shard_folder / f"{shard_name(number)}.json"
        if sidecar.is_file() and (shard_folder / f"{shard_name(number)}.npz").is_file():
            return json.loads(sidecar.read_text())
        return None

    chunks = enumerate(_chunks(iterate_sources(sources), shard_size))
    if workers <= 0:
        for number, chunk in chunks:
            done = reusable(number)
            collect(done or build_shard(number, chunk, str(shard_folder), settings.to_dict()), bool(done))
    else:
        with worker_pool(workers) as pool:
            pending: set[Future] = set()
            for number, chunk in chunks:
                done = reusable(number)
                if done:
                    collect(done, True)
                    continue
                pending.add(pool.submit(build_shard, number, chunk, str(shard_folder), settings.to_dict()))
                if len(pending) >= 2 * workers:  # bounded: inputs are not all read ahead
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        collect(future.result(), False)
            for future in pending:
                collect(future.result(), False)
    if bar is not None:
        bar.close()
    _write_index(folder, settings, [summaries[n] for n in sorted(summaries)], dedupe, report)
    return report


def _write_index(
    folder: Path,
    settings: GraphSettings,
    summaries: list[dict[str, Any]],
    dedupe: bool,
    report: CacheReport,
) -> None:
    seen_ids: dict[str, str] = {}
    seen_prints: dict[str, str] = {}
    shards = []
    for summary in summaries:
        excluded = []
        report.inputs += summary["inputs"]
        report.skipped.extend((sid, why) for sid, why in summary["skipped"])
        for position, (sid, fingerprint) in enumerate(zip(summary["ids"], summary["fingerprints"])):
            if dedupe and (sid in seen_ids or fingerprint in seen_prints):
                first = seen_ids.get(sid) or seen_prints[fingerprint]
                what = "id" if sid in seen_ids else f"structure ({fingerprint})"
                report.duplicates.append((sid, f"duplicate {what} of {first}"))
                excluded.append(position)
                continue
            seen_ids[sid] = sid
            seen_prints[fingerprint] = sid
        report.crystals += summary["count"] - len(excluded)
        shards.append({
            "file": f"shards/{shard_name(summary['shard'])}.npz",
            "count": summary["count"],
            "atoms": summary["atoms"],
            "excluded": excluded,
        })
    index = {
        "format": CACHE_FORMAT,
        "format_version": CACHE_VERSION,
        "graph_settings": settings.to_dict(),
        "num_crystals": report.crystals,
        "num_inputs": report.inputs,
        "num_skipped": len(report.skipped),
        "num_duplicates": len(report.duplicates),
        "shards": shards,
    }
    _write_json(folder / "index.json", index)
    lines = ["structure_id\treason"]
    lines += [f"{sid}\tskipped: {why}" for sid, why in report.skipped]
    lines += [f"{sid}\texcluded: {why}" for sid, why in report.duplicates]
    text = "\n".join(line.replace("\n", " ") for line in lines) + "\n"
    temporary = folder / f".report.tsv.tmp-{os.getpid()}"
    temporary.write_text(text)
    os.replace(temporary, folder / "report.tsv")
