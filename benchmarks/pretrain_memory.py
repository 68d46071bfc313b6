"""Memory is bounded by design: pre-train a few hundred steps streaming from an
800,000-entry graph cache and print peak RSS and steps/s at the start and the end.

The 800K cache is real crystals replicated by reference: its ``index.json`` lists the
shard files of a real cache over and over (no graph data is copied, the disk footprint
is the index). The same run on the un-replicated cache shows that resident memory does
not grow with the corpus.

    python benchmarks/pretrain_memory.py [--cache runs/pretrain_default/cache] [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, Report, small_corpus_sources

GOAL_GB = 8.0


def replicated_cache(source: Path, entries: int, folder: Path) -> int:
    """Write an index in ``folder`` listing ``source``'s shards until ``entries`` crystals."""
    index = json.loads((source / "index.json").read_text())
    shards, total = [], 0
    while total < entries:
        for shard in index["shards"]:
            shards.append({**shard, "file": str((source / shard["file"]).resolve())})
            total += shard["count"] - len(shard["excluded"])
            if total >= entries:
                break
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.json").write_text(json.dumps({**index, "shards": shards, "num_crystals": total}))
    return total


def rss_mb() -> float:
    import psutil

    process = psutil.Process()
    return (process.memory_info().rss + sum(c.memory_info().rss for c in process.children(recursive=True))) / 2**20


def worker(args: argparse.Namespace) -> None:
    """One measured run (in its own process, so peak RSS is its own)."""
    import lightning.pytorch as pl
    import torch

    from crysgnn_dgl.pretrain.settings import PretrainSettings
    from crysgnn_dgl.pretrain.trainer import pretrain

    class Meter(pl.Callback):
        def __init__(self):
            self.times, self.rss = [], []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.times.append(time.perf_counter())
            if batch_idx % 25 == 0:
                self.rss.append((batch_idx, rss_mb()))

    meter = Meter()
    torch.set_num_threads(args.threads)
    training = PretrainSettings(
        max_epochs=1, batch_size=args.batch_size, validation_fraction=0.0, seed=0,
        num_workers=args.workers, num_threads=args.threads, limit_train_batches=args.steps,
    )
    with tempfile.TemporaryDirectory() as run_folder:
        pretrain(args.run_cache, run_folder, training=training, progress_bar=False, extra_callbacks=[meter])
    window = min(50, len(meter.times) // 3)
    t = meter.times
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({
        "steps": len(t),
        "window": window,
        "start_steps_per_s": (window - 1) / (t[window - 1] - t[0]),
        "end_steps_per_s": (window - 1) / (t[-1] - t[-window]),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_rss_children_mb": children,
        "rss_trace_mb": meter.rss,
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", default=str(REPO / "runs" / "pretrain_default" / "cache"),
                        help="real graph cache to replicate (built from ../shared/data if absent)")
    parser.add_argument("--entries", type=int, default=800_000)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--compare-steps", type=int, default=100,
                        help="steps of the same run on the un-replicated cache (0: skip)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--run-cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_cache:
        worker(args)
        return
    report = Report("pretrain_memory.txt")
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(args.cache)
        if not (source / "index.json").is_file():
            from crysgnn_dgl.pretrain import build_cache

            source = Path(scratch) / "real"
            build_cache(small_corpus_sources(), source, shard_size=250, workers=1, progress=False)
        big = Path(scratch) / "replicated"
        total = replicated_cache(source, args.entries, big)
        real = json.loads((source / "index.json").read_text())["num_crystals"]
        size = sum(f.stat().st_size for f in big.rglob("*") if f.is_file())
        report(f"real cache: {source} ({real} crystals); replicated index: {total} entries, {size / 2**20:.2f} MB on disk")
        report(f"steps of {args.batch_size} crystals, {args.threads} torch thread(s), "
               f"{args.workers} loader worker(s), cache read a window of 16 shards at a time, windows in random order")
        results = {}
        runs = [(f"{total} entries", big, args.steps)]
        if args.compare_steps:
            runs.insert(0, ("real corpus", source, args.compare_steps))
        for label, cache, steps in runs:
            command = [sys.executable, __file__, "--run-cache", str(cache), "--steps", str(steps),
                       "--batch-size", str(args.batch_size), "--workers", str(args.workers),
                       "--threads", str(args.threads)]
            output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=str(REPO),
                                    env={**os.environ, "PYTHONWARNINGS": "ignore"})
            results[label] = json.loads(output.stdout.strip().splitlines()[-1])
        for label, r in results.items():
            peak = r["peak_rss_mb"] + r["peak_rss_children_mb"]
            report(f"{label:>16s}: {r['steps']} steps, peak RSS {peak:7.0f} MB; steps/s first {r['window']} "
                   f"{r['start_steps_per_s']:.2f}, last {r['window']} {r['end_steps_per_s']:.2f}; RSS trace (step, MB) "
                   + ", ".join(f"({s}, {m:.0f})" for s, m in r["rss_trace_mb"]))
        big_peak = results[f"{total} entries"]["peak_rss_mb"] + results[f"{total} entries"]["peak_rss_children_mb"]
        report(f"peak RSS over the {total}-entry cache: {big_peak / 1024:.2f} GB (goal <= {GOAL_GB} GB)")
    print(f"written to {report.save()}")


if __name__ == "__main__":
    main()
