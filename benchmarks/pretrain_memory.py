"""Memory is bounded by design: stream one full epoch of a graph cache with 800,000
distinct crystals on disk through the pre-training data path, and print peak RSS and
throughput at the start and at the end of the epoch.

The cache: a real graph cache is built once from the bundled structures (../shared/data),
then jittered copies of its shards are written until ``--entries`` crystals: each copy
moves every atom by independent uniform noise (±``--jitter`` in fractional coordinates),
recomputes the bond lengths from the moved atoms along the same neighbour lists and
periodic images (labels and neighbour lists are kept), and gives its crystals new ids, so
every entry differs on disk. Building is resumable and idempotent: a shard whose sidecar
exists is kept, ``build.json`` records the parameters, and a folder built with other
parameters is refused. The cache lives in ``--workdir`` (never inside the repository).

The epoch: the loader of :func:`crysgnn_dgl.pretrain.trainer.make_loaders` (GraphCache,
ShardBatchSampler, DataLoader with the cache collate) yields every batch as a DGL graph;
every ``--train-every``-th batch also takes a real pre-training step (forward, the
objectives, backward, Adam), the others are only streamed. It runs in its own process so
that peak RSS is the epoch's own; a second, same-length run over the real cache alone
shows whether memory grows with the corpus.

    python benchmarks/pretrain_memory.py --entries 800000 --workdir /work/tmp_pm
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from _common import REPO, Report, machine_load, small_corpus_sources

GOAL_GB = 8.0
SHARD_SIZE = 250


def build_base(workdir: Path, mp_rows: int, other_rows: int) -> Path:
    """The real graph cache (resumable: build_cache keeps finished shards)."""
    from crysgnn_dgl.pretrain import build_cache

    folder = workdir / "real"
    build_cache(small_corpus_sources(mp_rows, other_rows), folder, shard_size=SHARD_SIZE, workers=1, progress=False)
    return folder


def jittered(arrays: dict[str, np.ndarray], rng: np.random.Generator, jitter: float) -> dict[str, np.ndarray]:
    """A copy of one shard's arrays with moved atoms and the bond lengths they imply."""
    counts = arrays["num_atoms"].astype(np.int64)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    crystal = np.repeat(np.arange(len(counts)), counts)
    frac = (arrays["frac_coords"] + rng.uniform(-jitter, jitter, arrays["frac_coords"].shape)).astype(np.float32)
    neighbours = arrays["neighbor"].astype(np.int64) + first[crystal][:, None]
    delta = frac[neighbours].astype(np.float64) + arrays["image"] - frac[:, None, :]
    lengths = np.linalg.norm(np.einsum("akj,ajl->akl", delta, arrays["lattice"][crystal].astype(np.float64)), axis=-1)
    return {**arrays, "frac_coords": frac,
            "distance": np.where(arrays["real"], lengths, arrays["distance"]).astype(np.float32)}


def _write_shard(folder: Path, number: int, arrays: dict[str, np.ndarray], summary: dict[str, Any]) -> None:
    """Arrays first, sidecar last (its presence marks the shard complete), both atomic."""
    from crysgnn_dgl.pretrain.cache import shard_name

    temporary = folder / f".{shard_name(number)}.tmp-{os.getpid()}.npz"
    np.savez(temporary, **arrays)  # type: ignore[arg-type]
    os.replace(temporary, folder / f"{shard_name(number)}.npz")
    sidecar = folder / f"{shard_name(number)}.json"
    temporary = sidecar.with_name(f".{sidecar.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(summary))
    os.replace(temporary, sidecar)


def build_jittered(base: Path, folder: Path, entries: int, jitter: float, seed: int) -> int:
    """Write (or finish writing) the jittered cache in ``folder``; returns its crystals."""
    from crysgnn_dgl.config import GraphSettings
    from crysgnn_dgl.pretrain.cache import SHARD_ARRAYS, CacheReport, _write_index, shard_name

    index = json.loads((base / "index.json").read_text())
    record = {"base": str(base.resolve()), "base_crystals": index["num_crystals"], "entries": entries,
              "jitter": jitter, "seed": seed, "format_version": index["format_version"]}
    path = folder / "build.json"
    if path.is_file() and json.loads(path.read_text()) != record:
        sys.exit(f"{folder} was built with {path.read_text().strip()}, not {record}: use another --workdir or delete it")
    shards = folder / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    loaded: dict[str, tuple[dict[str, np.ndarray], dict[str, Any]]] = {}
    summaries, total, number = [], 0, 0
    while total < entries:
        entry = index["shards"][number % len(index["shards"])]
        copy = number // len(index["shards"])
        sidecar = shards / f"{shard_name(number)}.json"
        if sidecar.is_file() and (shards / f"{shard_name(number)}.npz").is_file():
            summary = json.loads(sidecar.read_text())
        else:
            if entry["file"] not in loaded:
                with np.load(base / entry["file"]) as data:
                    arrays = {key: data[key] for key in SHARD_ARRAYS}
                loaded[entry["file"]] = arrays, json.loads((base / entry["file"].replace(".npz", ".json")).read_text())
            arrays, source = loaded[entry["file"]]
            summary = {"shard": number, "inputs": source["count"], "count": source["count"],
                       "atoms": source["atoms"], "skipped": [],
                       "ids": [f"{sid}~jitter{copy}" for sid in source["ids"]],
                       "fingerprints": [f"{fp}~jitter{copy}" for fp in source["fingerprints"]]}
            _write_shard(shards, number, jittered(arrays, np.random.default_rng([seed, number]), jitter), summary)
        summaries.append(summary)
        total += summary["count"]
        number += 1
    # every entry is distinct (own ids and coordinates): no de-duplication
    _write_index(folder, GraphSettings.from_dict(index["graph_settings"]), summaries, False, CacheReport(folder))
    return total


def rss_mb() -> float:
    import psutil

    process = psutil.Process()
    return (process.memory_info().rss + sum(c.memory_info().rss for c in process.children(recursive=True))) / 2**20


def epochs(loader: Any, batches: int) -> Iterator[Any]:
    """``batches`` batches of ``loader``, epoch after epoch (each epoch in its own order)."""
    epoch = 0
    while True:
        loader.batch_sampler.set_epoch(epoch)
        for batch in loader:
            if batches == 0:
                return
            batches -= 1
            yield batch
        epoch += 1


def stream_epoch(args: argparse.Namespace) -> None:
    """One measured epoch (in its own process, so that peak RSS is its own); prints JSON."""
    import torch

    from crysgnn_dgl.pretrain.dataset import GraphCache
    from crysgnn_dgl.pretrain.module import PretrainModule
    from crysgnn_dgl.pretrain.objectives import pretraining_losses
    from crysgnn_dgl.pretrain.settings import PretrainSettings
    from crysgnn_dgl.pretrain.trainer import make_loaders

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    training = PretrainSettings(batch_size=args.batch_size, validation_fraction=0.0, seed=0,
                                num_workers=args.workers, num_threads=args.threads)
    cache = GraphCache(args.run_cache, max_loaded_shards=training.shuffle_window + 1)
    loader, _ = make_loaders(cache, training)
    module = PretrainModule(graph_settings=cache.graph_settings.to_dict(), seed=0)
    optimiser = torch.optim.Adam(module.parameters(), lr=1e-3)
    seen = np.zeros(len(cache), dtype=bool)
    times, trained, trace = [time.perf_counter()], [], []
    total = args.batches or len(loader)
    trace_every = args.trace_every or max(1, total // 20)
    for number, (graph, labels) in enumerate(epochs(loader, total)):
        seen[labels["position"].numpy()] = True
        if number % args.train_every == 0:
            start = time.perf_counter()
            optimiser.zero_grad()
            generator = torch.Generator().manual_seed(number)
            pretraining_losses(module.model, graph, labels, module.objectives, generator, module.heads)["total"].backward()
            optimiser.step()
            trained.append((number, time.perf_counter() - start))
        times.append(time.perf_counter())
        if number % trace_every == 0 or number == total - 1:
            trace.append((number, round(rss_mb())))
    window = max(2, min(args.window, (len(times) - 1) // 3))
    t = np.asarray(times)
    steps = np.asarray(trained, dtype=np.float64).reshape(-1, 2)
    first, last = steps[steps[:, 0] < window, 1], steps[steps[:, 0] >= len(t) - 1 - window, 1]
    print(json.dumps({
        "batches": len(t) - 1, "of": len(loader), "crystals": int(seen.sum()), "cache": len(cache),
        "training_steps": len(steps), "window": window,
        "start_batches_per_s": window / (t[window] - t[0]), "end_batches_per_s": window / (t[-1] - t[-1 - window]),
        "start_step_s": float(first.mean()) if first.size else float("nan"),
        "end_step_s": float(last.mean()) if last.size else float("nan"),
        "seconds": t[-1] - t[0],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_rss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "rss_trace_mb": trace,
    }))


def measured(cache: Path, args: argparse.Namespace, batches: int = 0) -> dict[str, Any]:
    command = [sys.executable, __file__, "--run-cache", str(cache), "--batches", str(batches),
               "--batch-size", str(args.batch_size), "--workers", str(args.workers), "--threads", str(args.threads),
               "--train-every", str(args.train_every), "--window", str(args.window),
               "--trace-every", str(args.trace_every)]
    output = subprocess.run(command, capture_output=True, text=True, cwd=str(REPO),
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if output.returncode:
        sys.exit(f"measured run failed:\n{output.stderr[-3000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def describe(label: str, r: dict[str, Any], train_every: int) -> str:
    peak = r["peak_rss_mb"] + r["peak_rss_children_mb"]
    trace = ", ".join(f"({s}, {m})" for s, m in r["rss_trace_mb"])
    return (f"{label}: {r['batches']} batches ({r['batches'] / r['of']:.2f} epochs of {r['of']}; {r['crystals']} "
            f"distinct crystals of {r['cache']} seen) in "
            f"{r['seconds']:.0f} s, {r['training_steps']} training steps (every {train_every}th batch); peak RSS "
            f"{peak:.0f} MB; batches/s first {r['window']} {r['start_batches_per_s']:.2f}, last {r['window']} "
            f"{r['end_batches_per_s']:.2f}; seconds per training step in those windows {r['start_step_s']:.2f}, "
            f"{r['end_step_s']:.2f}; RSS trace (batch, MB): {trace}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=800_000, help="crystals of the jittered cache")
    parser.add_argument("--workdir", type=Path, default=Path("/work/tmp_pm"), help="where the caches are built")
    parser.add_argument("--mp-rows", type=int, default=2000, help="MP crystals of the real cache")
    parser.add_argument("--other-rows", type=int, default=200, help="crystals of each other source file")
    parser.add_argument("--jitter", type=float, default=0.002, help="largest move, fractional coordinates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train-every", type=int, default=10, help="a training step on every k-th batch")
    parser.add_argument("--window", type=int, default=200, help="batches in the start and end throughput windows")
    parser.add_argument("--trace-every", type=int, default=0, help="batches between RSS samples (0: 20 samples)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-compare", action="store_true", help="skip the run over the real cache alone")
    parser.add_argument("--run-cache", help=argparse.SUPPRESS)
    parser.add_argument("--batches", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_cache:
        stream_epoch(args)
        return
    if args.workdir.resolve().is_relative_to(REPO):
        sys.exit(f"--workdir {args.workdir} is inside the repository; put the caches elsewhere")
    report = Report("pretrain_memory.txt")
    start = time.perf_counter()
    base = build_base(args.workdir, args.mp_rows, args.other_rows)
    big = args.workdir / f"jittered_{args.entries}"
    total = build_jittered(base, big, args.entries, args.jitter, args.seed)
    real = json.loads((base / "index.json").read_text())["num_crystals"]
    size = sum(f.stat().st_size for f in (big / "shards").glob("*.npz"))
    report(f"real cache {base}: {real} crystals; jittered cache {big}: {total} distinct crystals in "
           f"{len(list((big / 'shards').glob('*.npz')))} shard files, {size / 2**30:.2f} GiB on disk "
           f"(jitter ±{args.jitter} fractional; built or checked in {time.perf_counter() - start:.0f} s)")
    report(f"batches of {args.batch_size} crystals, {args.threads} torch thread(s), {args.workers} loader worker(s), "
           f"cache read a window of 16 shards at a time, windows in random order; {machine_load()}")
    results = {f"{total}-crystal cache": measured(big, args)}
    if not args.no_compare:  # the same number of batches over the small real cache, cycled
        results[f"{real}-crystal real cache"] = measured(base, args, batches=results[f"{total}-crystal cache"]["batches"])
    for label, r in results.items():
        report(describe(label, r, args.train_every))
    r = results[f"{total}-crystal cache"]
    report(f"peak RSS over one epoch of the {total}-crystal cache: "
           f"{(r['peak_rss_mb'] + r['peak_rss_children_mb']) / 1024:.2f} GB (goal <= {GOAL_GB} GB)")
    print(f"written to {report.save()}")


if __name__ == "__main__":
    main()
