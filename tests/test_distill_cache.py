"""Teacher-embedding cache: hits from the second epoch, keyed by content, half precision,
memory budget, on-disk store shared between runs; bad batches named in errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from crysgnn_dgl import attach_teacher
from crysgnn_dgl.adapters.base import AdapterError
from crysgnn_dgl.distill import AtomOrderError, DiskEmbeddingCache, EmbeddingCache
from crysgnn_dgl.distill.keys import KeyField, content_keys, key_bytes

from _distill_fixtures import OriginalSignatureCGCNN, mp_structures, original_cgcnn_batch, random_teacher

pytestmark = pytest.mark.filterwarnings("ignore:Issues encountered while parsing CIF")


@pytest.fixture(scope="module")
def structures():
    return mp_structures(6)


def run_epoch(model, batches):
    for batch in batches:
        model.zero_grad()
        F.mse_loss(model(*batch).squeeze(1), torch.zeros(len(batch[3]))).backward()


def test_second_epoch_is_served_by_the_cache(teacher, structures):
    torch.manual_seed(0)
    model = OriginalSignatureCGCNN()
    hook = attach_teacher(model, teacher)
    batches = [original_cgcnn_batch(structures[:3]), original_cgcnn_batch(structures[3:])]
    run_epoch(model, batches)
    assert (hook.teacher_calls, hook.teacher_crystals) == (2, 6)
    first_kd = hook.last_kd
    run_epoch(model, batches)
    assert (hook.teacher_calls, hook.teacher_crystals) == (2, 6)
    assert hook.cache.hits == 6 and len(hook.cache) == 6
    assert hook.last_kd == pytest.approx(first_kd, rel=1e-6)  # same student, same (cached) targets
    # reshuffled batches: keyed by content, not by batch position
    run_epoch(model, [original_cgcnn_batch([structures[5], structures[0], structures[2]])])
    assert hook.teacher_calls == 2


def test_keys_follow_content(structures):
    s = structures[0]
    moved = s.copy()
    moved.translate_sites([0], [0.01, 0, 0])
    strained = s.copy()
    strained.scale_lattice(s.volume * 1.01)

    def key(structure):
        n = len(structure)
        return key_bytes(content_keys([
            KeyField(torch.tensor(structure.frac_coords), [n]),
            KeyField(torch.tensor(structure.lattice.matrix).reshape(1, 9), [1], decimals=3),
        ])[0])

    assert key(s) == key(s.copy())
    assert len({key(s), key(moved), key(strained)}) == 3
    one = [KeyField(torch.ones(2, 3), [2])]
    assert (content_keys(one, b"a") != content_keys(one, b"b")).any()


def test_half_precision_batched_lookup_and_duplicates():
    cache = EmbeddingCache(capacity=16)  # grows while filling
    torch.manual_seed(0)
    blocks = [torch.randn(1 + i % 7, 64) for i in range(500)]
    keys = [i.to_bytes(16, "little") for i in range(1, 501)]
    for start in range(0, 500, 50):
        cache.store(keys[start : start + 50], blocks[start : start + 50])
    cache.store(keys[:3], blocks[:3])  # already present: nothing added
    assert len(cache) == 500
    found = cache.lookup(keys[::-1] + [(10_000).to_bytes(16, "little")])
    assert found[-1] is None and (cache.hits, cache.misses) == (500, 1)
    for rows, block in zip(found[:-1], blocks[::-1]):
        assert rows.dtype == torch.float16 and torch.equal(rows, block.to(torch.float16))
    assert keys[7] in cache and (9999).to_bytes(16, "little") not in cache


def test_keys_of_a_batch_equal_keys_of_each_crystal_alone():
    torch.manual_seed(0)
    counts = [3, 1, 5, 2]
    values = torch.rand(sum(counts), 4)
    edges = torch.rand(sum(counts) * 2, 2)
    batch = content_keys([KeyField(values, counts), KeyField(edges, [2 * c for c in counts])], b"s")
    start = 0
    for i, n in enumerate(counts):
        alone = content_keys([KeyField(values[start : start + n], [n]),
                              KeyField(edges[2 * start : 2 * (start + n)], [2 * n])], b"s")
        assert key_bytes(alone[0]) == key_bytes(batch[i])
        start += n
    swapped = values[:3][[1, 0, 2]]  # same atoms of crystal #0 in another order
    assert key_bytes(content_keys([KeyField(swapped, [3]), KeyField(edges[:6], [6])], b"s")[0]) != key_bytes(batch[0])
    many = content_keys([KeyField(torch.arange(20_000).unsqueeze(1), [1] * 20_000, decimals=0)])
    assert len({key_bytes(k) for k in many}) == 20_000


@pytest.mark.slow
def test_memory_per_100k_crystals_measured_at_20k():
    """RSS growth of a cache of 20k crystals × 10 atoms × 64 float16 (the benchmark script's
    measurement, in a fresh process), scaled to 100k: ≤ 150 MB, and within 10 % of the
    payload; a 128-wide teacher needs about twice as much."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import kd_cache_memory
    finally:
        sys.path.pop(0)
    narrow, wide = (kd_cache_memory.measure_in_child(20_000, 10, dim) for dim in (64, 128))
    assert narrow["payload"] == pytest.approx(25.6e6) and wide["payload"] == pytest.approx(51.2e6)
    assert narrow["grown"] * 5 <= 150e6
    assert narrow["grown"] <= 1.10 * narrow["payload"], narrow
    assert 1.7 < wide["grown"] / narrow["grown"] < 2.3, (narrow, wide)


def test_disk_cache_is_shared_between_runs(teacher, structures, tmp_path):
    path = tmp_path / "teacher_cache.sqlite"
    batches = [original_cgcnn_batch(structures)]
    torch.manual_seed(0)
    first = OriginalSignatureCGCNN()
    hook = attach_teacher(first, teacher, cache=path)
    run_epoch(first, batches)
    assert hook.teacher_crystals == 6
    hook.remove()
    torch.manual_seed(0)
    second = OriginalSignatureCGCNN()
    hook2 = attach_teacher(second, teacher, cache=DiskEmbeddingCache(path))
    run_epoch(second, batches)
    assert hook2.teacher_calls == 0 and hook2.last_kd == pytest.approx(hook.last_kd, rel=1e-6)
    assert hook2.cache.stored() == 6
    other = random_teacher(tmp_path / "other", seed=1)  # another teacher never reads these rows
    hook3 = attach_teacher(OriginalSignatureCGCNN(), other, cache=path)
    run_epoch(hook3.model, batches)
    assert hook3.teacher_crystals == 6


WRITER = """
import sys, torch
from crysgnn_dgl.distill import DiskEmbeddingCache
path, first = sys.argv[1], int(sys.argv[2])
cache = DiskEmbeddingCache(path, timeout=0.05, retries=40)  # short timeout: the retries do the waiting
for start in range(first, first + 400, 8):
    keys = [i.to_bytes(16, "little") for i in range(start, start + 8)]
    cache.store(keys, [torch.full((1 + i % 5, 64), float(i)) for i in range(start, start + 8)])
    found = cache.lookup([(i + 1).to_bytes(16, "little") for i in range(0, 800, 37)])
cache.close()
print("done", len(cache) >= 400)
"""


def test_two_processes_write_one_disk_cache_at_once(tmp_path):
    """Two processes store overlapping crystals into the same SQLite file concurrently
    (WAL, busy timeout, retried writes); every row ends up stored exactly once and intact."""
    path = tmp_path / "shared.sqlite"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(first)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for first in (0, 200)]
    outputs = [w.communicate(timeout=300) for w in writers]
    for writer, (out, err) in zip(writers, outputs):
        assert writer.returncode == 0, err
        assert out.strip() == "done True"
    cache = DiskEmbeddingCache(path)
    assert cache.stored() == 600
    found = cache.lookup([i.to_bytes(16, "little") for i in range(600)])
    for i, rows in enumerate(found):
        assert rows is not None and rows.shape == (1 + i % 5, 64) and bool((rows == float(i)).all()), i
    cache.close()


def test_crystal_assignment_mismatch_names_the_crystal(teacher, structures):
    atom_fea, nbr_fea, nbr_idx, crystals = original_cgcnn_batch(structures[:3])
    crystals[1] = crystals[1][:-1]  # last atom of crystal #1 belongs to nobody
    model = OriginalSignatureCGCNN()
    attach_teacher(model, teacher)
    with pytest.raises(AdapterError, match=r"crystal #1 of the batch \("):
        model(atom_fea, nbr_fea, nbr_idx, crystals)


def test_atom_order_mismatch_names_the_crystal(teacher, structures):
    from crysgnn_dgl.adapters.cgcnn import CGCNNSignatureAdapter

    class Reversing(CGCNNSignatureAdapter):
        """Builds the teacher's graph of crystal #2 with its atoms reversed."""

        def crystal_batch(self, student, args, kwargs, teacher):
            batch = super().crystal_batch(student, args, kwargs, teacher)
            build = batch.build

            def reversed_build(indices):
                graph = build(indices)
                if 2 in indices:
                    from crysgnn_dgl.backend import dgl

                    parts = dgl.unbatch(graph)
                    k = indices.index(2)
                    n = parts[k].num_nodes()
                    parts[k] = dgl.reorder_graph(parts[k], node_permute_algo="custom",
                                                 permute_config={"nodes_perm": torch.arange(n - 1, -1, -1)})
                    parts[k].ndata.pop("_ID")
                    parts[k].edata.pop("_ID")
                    graph = dgl.batch(parts)
                return graph

            batch.build = reversed_build
            return batch

    model = OriginalSignatureCGCNN()
    attach_teacher(model, teacher, adapter=Reversing())
    with pytest.raises(AtomOrderError, match=r"crystal #2 of the batch .*atom order must match"):
        model(*original_cgcnn_batch(structures[:3]))


def test_edge_features_on_another_grid_are_refused(teacher, structures):
    atom_fea, nbr_fea, nbr_idx, crystals = original_cgcnn_batch(structures[:2])
    model = OriginalSignatureCGCNN()
    attach_teacher(model, teacher)
    shifted = torch.roll(nbr_fea, 1, dims=2) ** 2  # same width, not the teacher's expansion
    with pytest.raises(AdapterError, match="not the teacher's Gaussian expansion"):
        model(atom_fea, shifted, nbr_idx, crystals)
    wrong_width = OriginalSignatureCGCNN(nbr_fea_len=21)
    attach_teacher(wrong_width, teacher)
    with pytest.raises(AdapterError, match="21 Gaussian features"):
        wrong_width(atom_fea, nbr_fea[..., ::2], nbr_idx, crystals)


def test_default_teacher_missing_is_a_clear_error_or_loads():
    from crysgnn_dgl.teacher import default_teacher_path

    model = OriginalSignatureCGCNN()
    if default_teacher_path().is_file():
        assert attach_teacher(model).teacher.embedding_dim == 64
    else:
        with pytest.raises(Exception, match="does not ship this teacher"):
            attach_teacher(model)
