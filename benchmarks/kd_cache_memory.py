"""Memory of the teacher-embedding cache per 100k crystals of ~10 atoms.

Fills a fresh :class:`~crysgnn_dgl.distill.EmbeddingCache` with ``--crystals`` entries of
``--atoms`` × 64 embeddings under synthetic content keys, in batches as the hook stores
them, and measures the process's resident memory before and after (``VmRSS``), so the
figure includes the key table, allocator overhead and chunk rounding. Goal: ≤ 150 MB per
100k crystals of ~10 atoms.

    python benchmarks/kd_cache_memory.py [--crystals 100000] [--atoms 10] [--out]
"""

from __future__ import annotations

import argparse
import gc
import time

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crystals", type=int, default=100_000, help="entries to store (default: %(default)s)")
    parser.add_argument("--atoms", type=int, default=10, help="atoms per crystal (default: %(default)s)")
    parser.add_argument("--out", action="store_true", help="also write benchmarks/results/kd_cache_memory.txt")
    args = parser.parse_args(argv)
    from _common import Report

    report = Report("kd_cache_memory.txt")
    cache, grown, seconds = fill(args.crystals, args.atoms)
    payload = args.crystals * args.atoms * 64 * 2
    per_100k = grown * 100_000 / args.crystals
    probe = content_keys([KeyField(torch.arange(0, args.crystals, 97).unsqueeze(1),
                                   [1] * len(range(0, args.crystals, 97)), decimals=0)], b"synthetic")
    start = time.perf_counter()
    found = cache.lookup(probe)
    lookup = (time.perf_counter() - start) / len(probe)
    assert all(rows is not None for rows in found)
    report(f"{args.crystals} crystals x {args.atoms} atoms x 64 float16 embeddings")
    report(f"embedding payload        {payload / 1e6:9.1f} MB")
    report(f"cache.memory_bytes()     {cache.memory_bytes() / 1e6:9.1f} MB (chunks + key table)")
    report(f"measured RSS growth      {grown / 1e6:9.1f} MB")
    report(f"per 100k crystals        {per_100k / 1e6:9.1f} MB  (goal <= {GOAL_BYTES_PER_100K / 1e6:.0f} MB: "
           f"{'met' if per_100k <= GOAL_BYTES_PER_100K else 'MISSED'})")
    report(f"index overhead           {(grown - payload) / args.crystals:9.1f} bytes per crystal")
    report(f"fill time                {seconds:9.2f} s; batched lookup {lookup * 1e6:.2f} us per crystal")
    if args.out:
        report.save()
    return 0 if per_100k <= GOAL_BYTES_PER_100K else 1


if __name__ == "__main__":
    raise SystemExit(main())
