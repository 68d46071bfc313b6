"""Teacher-embedding cache: hits from the second epoch, keyed by content, half precision,
memory budget, on-disk store shared between runs; bad batches named in errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from crysgnn_dgl import attach_teacher
from crysgnn_dgl.adapters.base import AdapterError
from crysgnn_dgl.distill import AtomOrderError, DiskEmbeddingCache, EmbeddingCache
from crysgnn_dgl.distill.keys import KeyField, content_keys

from _distill_fixtures import OriginalSignatureCGCNN, mp_structures, original_cgcnn_batch, random_teacher

pytestmark = pytest.mark.filterwarnings("ignore:Issues encountered while parsing CIF")


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return random_teacher(tmp_path_factory.mktemp("teacher"))


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
        return content_keys([
            KeyField(torch.tensor(structure.frac_coords), [n]),
            KeyField(torch.tensor(structure.lattice.matrix).reshape(1, 9), [1], decimals=3),
        ])[0]

    assert key(s) == key(s.copy())
    assert len({key(s), key(moved), key(strained)}) == 3
    assert content_keys([KeyField(torch.ones(2, 3), [2])], b"a") != content_keys([KeyField(torch.ones(2, 3), [2])], b"b")


def test_half_precision_and_memory_budget():
    cache = EmbeddingCache()
    torch.manual_seed(0)
    for i in range(10_000):
        cache.put(i.to_bytes(16, "little"), torch.randn(10, 64))
    assert cache.get((7).to_bytes(16, "little")).dtype == torch.float16
    # ≤ 150 MB per 100k crystals of ~10 atoms → ≤ 15 MB per 10k
    assert cache.memory_bytes() <= 15_000_000, cache.memory_bytes()


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
        with pytest.raises(Exception, match="no bundled default teacher"):
            attach_teacher(model)
