"""Memory of the teacher-embedding cache per 100k crystals of ~10 atoms, per teacher width.

For each width in ``--dims`` (64: CrysGNN, M3GNet, CHGNet; wider: larger teachers or
concatenated blocks), a fresh process fills an :class:`~crysgnn_dgl.distill.EmbeddingCache`
with ``--crystals`` entries of ``--atoms`` × width embeddings under synthetic content keys,
in batches as the hook stores them, and measures its resident memory before and after
(``VmRSS``), so the figure includes the key table, allocator overhead and chunk rounding.
Goal (64-d): ≤ 150 MB per 100k crystals of ~10 atoms; wider teachers scale with the width.

    python benchmarks/kd_cache_memory.py [--crystals 100000] [--atoms 10] [--dims 64,128,256] [--out]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from crysgnn_dgl.distill.cache import EmbeddingCache
from crysgnn_dgl.distill.keys import KeyField, content_keys

GOAL_BYTES_PER_100K = 150e6


def resident_bytes() -> int:
    """This process's resident set size (Linux ``/proc/self/status``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def fill(crystals: int, atoms: int, dim: int = 64, batch: int = 64, seed: int = 0) -> tuple[EmbeddingCache, int, float]:
    """A cache holding ``crystals`` entries; returns it, the RSS growth and the fill time."""
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randn(batch * atoms, dim, generator=generator).to(torch.float16)
    blocks = list(rows.split(atoms))
    warm_up = EmbeddingCache()  # first-use allocations of numpy/torch are not the cache's
    for first in range(0, 4 * batch, batch):
        ids = torch.arange(first, first + batch) - 10 * batch
        warm_up.store(content_keys([KeyField(ids.unsqueeze(1), [1] * batch, decimals=0)], b"warm-up"), blocks)
    del warm_up
    gc.collect()
    before = resident_bytes()
    cache = EmbeddingCache()
    start = time.perf_counter()
    for first in range(0, crystals, batch):
        ids = torch.arange(first, min(first + batch, crystals))
        keys = content_keys([KeyField(ids.unsqueeze(1), [1] * len(ids), decimals=0)], b"synthetic")
        cache.store(keys, blocks[: len(ids)])
    seconds = time.perf_counter() - start
    gc.collect()
    return cache, resident_bytes() - before, seconds


def measure(crystals: int, atoms: int, dim: int) -> dict[str, float]:
    """Fill one cache of ``dim``-wide embeddings in this process; its figures."""
    cache, grown, seconds = fill(crystals, atoms, dim)
    probe_ids = torch.arange(0, crystals, 97)
    probe = content_keys([KeyField(probe_ids.unsqueeze(1), [1] * len(probe_ids), decimals=0)], b"synthetic")
    start = time.perf_counter()
    found = cache.lookup(probe)
    lookup = (time.perf_counter() - start) / len(probe)
    assert all(rows is not None for rows in found)
    return {"payload": crystals * atoms * dim * 2, "memory_bytes": cache.memory_bytes(), "grown": grown,
            "seconds": seconds, "lookup": lookup}


def measure_in_child(crystals: int, atoms: int, dim: int) -> dict[str, float]:
    """:func:`measure` in a fresh interpreter, so that no width reuses another's freed memory."""
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import kd_cache_memory as m; "
            f"print(json.dumps(m.measure({crystals}, {atoms}, {dim})))")
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crystals", type=int, default=100_000, help="entries to store (default: %(default)s)")
    parser.add_argument("--atoms", type=int, default=10, help="atoms per crystal (default: %(default)s)")
    parser.add_argument("--dims", default="64,128,256", help="teacher widths, comma-separated (default: %(default)s)")
    parser.add_argument("--out", action="store_true", help="also write benchmarks/results/kd_cache_memory.txt")
    args = parser.parse_args(argv)
    from _common import Report

    report = Report("kd_cache_memory.txt")
    report(f"{args.crystals} crystals x {args.atoms} atoms, float16 embeddings; one fresh process per width")
    report(f"{'width':>6} {'payload MB':>11} {'memory_bytes MB':>16} {'RSS growth MB':>14} {'per 100k MB':>12} "
           f"{'index B/crystal':>16} {'fill s':>7} {'lookup us':>10}")
    met = True
    for dim in (int(d) for d in args.dims.split(",")):
        figures = measure_in_child(args.crystals, args.atoms, dim)
        per_100k = figures["grown"] * 100_000 / args.crystals
        if dim == 64:
            met = per_100k <= GOAL_BYTES_PER_100K
        report(f"{dim:>6} {figures['payload'] / 1e6:>11.1f} {figures['memory_bytes'] / 1e6:>16.1f} "
               f"{figures['grown'] / 1e6:>14.1f} {per_100k / 1e6:>12.1f} "
               f"{(figures['grown'] - figures['payload']) / args.crystals:>16.1f} {figures['seconds']:>7.2f} "
               f"{figures['lookup'] * 1e6:>10.2f}")
    report(f"goal (64-d) <= {GOAL_BYTES_PER_100K / 1e6:.0f} MB per 100k crystals: {'met' if met else 'MISSED'}")
    if args.out:
        report.save()
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
