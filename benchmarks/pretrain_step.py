"""One pre-training step (forward + four losses + backward): crysgnn_dgl vs a
reference-style implementation (padded neighbour tensors, per-crystal Python loop over
the N² pairs), same weights, same batches, same run.

    python benchmarks/pretrain_step.py [--batch-size 128] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch

from pathlib import Path

from _common import REPO, Report, small_corpus_sources
from _reference_crysgnn import ReferenceCrysGNN, connectivity_matrices, gaussian, reference_step


def reference_inputs(records, centres):
    """The release's batch layout: padded (N, M) neighbour tensors, crystal index lists."""
    sizes = [len(r["atomic_number"]) for r in records]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    from crysgnn_dgl.graph.atom_features import atom_feature_table

    numbers = np.concatenate([r["atomic_number"] for r in records]).astype(np.int64)
    atom_fea = torch.from_numpy(atom_feature_table()[numbers])
    nbr_idx = torch.from_numpy(np.concatenate([r["neighbor"] + o for r, o in zip(records, offsets)]).astype(np.int64))
    nbr_fea = gaussian(torch.from_numpy(np.concatenate([r["distance"] for r in records])), centres)
    crystal_atom_idx = [torch.arange(o, o + n) for o, n in zip(offsets, sizes)]
    targets = connectivity_matrices(nbr_idx, crystal_atom_idx)
    sg = torch.tensor([int(r["space_group"]) for r in records])
    cs = torch.tensor([int(r["crystal_system"]) for r in records])
    return atom_fea, nbr_fea, nbr_idx, crystal_atom_idx, targets, sg, cs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", default=str(REPO / "runs" / "pretrain_default" / "cache"),
                        help="graph cache to draw batches from (a small one is built from ../shared/data if absent)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from crysgnn_dgl import CrysGNN
    from crysgnn_dgl.graph.gaussian import gaussian_centers
    from crysgnn_dgl.pretrain import GraphCache, ObjectiveSettings, build_cache, collate_records, pretraining_losses

    report = Report("pretrain_step.txt")
    with tempfile.TemporaryDirectory() as folder:
        if (Path(args.cache) / "index.json").is_file():
            cache = GraphCache(args.cache)
        else:
            build_cache(small_corpus_sources(), folder, workers=0, progress=False)
            cache = GraphCache(folder)
        order = np.random.default_rng(0).permutation(len(cache))
        batches = [
            [cache[int(p)] for p in order[b * args.batch_size : (b + 1) * args.batch_size]]
            for b in range(args.batches)
        ]
    report(f"batches drawn at random from {cache.folder} "
           f"({len(cache)} crystals)")
    settings = cache.graph_settings
    centres = gaussian_centers(settings)
    torch.manual_seed(0)
    ours = CrysGNN()
    reference = ReferenceCrysGNN()
    reference.load_state_dict(ours.state_dict())
    objectives = ObjectiveSettings()
    prepared = [(collate_records(b, settings), reference_inputs(b, centres)) for b in batches]

    def our_step(inputs):
        ours.zero_grad(set_to_none=True)
        losses = pretraining_losses(ours, *inputs, objectives)
        losses["total"].backward()
        return {k: float(losses[k]) for k in ("feature", "connectivity", "space_group", "contrastive")}

    def reference_step_(inputs):
        reference.zero_grad(set_to_none=True)
        return reference_step(reference, *inputs)

    report(f"torch threads: {args.threads}; batches of {args.batch_size} real crystals "
           f"(MP, perov5, carbon24, matbench_dielectric); {args.repeats} timed repeats per batch")
    worst = 0.0
    for ours_in, ref_in in prepared:  # same losses from the same weights and batch
        a, b = our_step(ours_in), reference_step_(ref_in)
        worst = max(worst, max(abs(a[k] - b[k]) / max(abs(b[k]), 1e-12) for k in a))
        grads = max(
            float((p.grad - reference.get_parameter(n).grad).abs().max())
            for n, p in ours.named_parameters()
        )
    report(f"largest relative loss difference ours vs reference: {worst:.2e}; "
           f"largest gradient difference (last batch): {grads:.2e}")
    times = {"crysgnn_dgl": [], "reference": []}
    for _ in range(args.repeats):
        for ours_in, ref_in in prepared:
            start = time.perf_counter()
            our_step(ours_in)
            times["crysgnn_dgl"].append(time.perf_counter() - start)
            start = time.perf_counter()
            reference_step_(ref_in)
            times["reference"].append(time.perf_counter() - start)
    for b, (graph_and_labels, _) in enumerate(prepared):
        graph = graph_and_labels[0]
        n = graph.batch_num_nodes()
        report(f"batch {b}: {graph.num_nodes()} atoms, {graph.num_edges()} edges, "
               f"{int((n * n).sum())} connectivity pairs, largest crystal {int(n.max())} atoms")
    median = {k: statistics.median(v) for k, v in times.items()}
    for name, value in median.items():
        report(f"{name:12s} median step {value * 1000:8.1f} ms  (min {min(times[name]) * 1000:.1f} ms)")
    fastest = min(times["reference"]) / min(times["crysgnn_dgl"])
    report(f"speed-up (reference / crysgnn_dgl): medians {median['reference'] / median['crysgnn_dgl']:.2f}x, "
           f"fastest {fastest:.2f}x  (goal >= 3x)")
    print(f"written to {report.save()}")


if __name__ == "__main__":
    main()
