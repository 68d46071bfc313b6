"""Issue 11, item 8: a damaged teacher-embedding cache is never used silently."""

from __future__ import annotations

import sqlite3

import pytest
import torch

from crysgnn_dgl import attach_teacher
from crysgnn_dgl.distill import DiskEmbeddingCache
from crysgnn_dgl.distill.cache import CacheFileError

from _distill_fixtures import OriginalSignatureCGCNN, mp_structures, original_cgcnn_batch

pytestmark = pytest.mark.filterwarnings("ignore:Issues encountered while parsing CIF")


def _keys(n: int, start: int = 0) -> list[bytes]:
    return [i.to_bytes(16, "little") for i in range(start, start + n)]


def _fill(path, n: int = 3) -> list[torch.Tensor]:
    rows = [torch.full((2 + i, 64), 0.25 * (i + 1)) for i in range(n)]
    cache = DiskEmbeddingCache(path)
    cache.store(_keys(n), rows)
    cache.close()
    return rows


def _flip(path, pattern: bytes) -> None:
    data = bytearray(path.read_bytes())
    at = data.find(pattern)
    assert at >= 0, "row bytes not in the main file (the log was not folded in on close)"
    data[at + len(pattern) // 2] ^= 0x7C
    path.write_bytes(bytes(data))


def test_close_leaves_a_single_file(tmp_path):
    path = tmp_path / "c.sqlite"
    _fill(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.sqlite"]


def test_flipped_bytes_in_a_row_are_detected_recomputed_and_rewritten(tmp_path):
    path = tmp_path / "c.sqlite"
    rows = _fill(path)
    _flip(path, rows[1].to(torch.float16).numpy().tobytes())
    cache = DiskEmbeddingCache(path)
    with pytest.warns(RuntimeWarning, match=r"c\.sqlite: 1 damaged or unverifiable row"):
        found = cache.lookup(_keys(3))
    assert found[1] is None and cache.damaged == 1
    assert torch.equal(found[0].float(), rows[0]) and torch.equal(found[2].float(), rows[2])
    cache.store(_keys(1, 1), [rows[1]])  # what the teacher recomputes
    cache.close()
    again = DiskEmbeddingCache(path)
    assert torch.equal(again.lookup(_keys(3))[1].float(), rows[1]) and again.damaged == 0
    again.close()


def test_garbage_at_the_start_names_the_file_and_what_to_do(tmp_path):
    path = tmp_path / "c.sqlite"
    _fill(path)
    data = bytearray(path.read_bytes())
    data[:100] = b"\x13" * 100
    path.write_bytes(bytes(data))
    with pytest.raises(CacheFileError, match=r"c\.sqlite: damaged, or not an SQLite database .*delete it"):
        DiskEmbeddingCache(path)


def test_garbage_in_the_middle_is_refused_on_opening(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = DiskEmbeddingCache(path)
    for start in range(0, 400, 50):
        cache.store(_keys(50, start), [torch.full((8, 64), float(i)) for i in range(start, start + 50)])
    cache.close()
    data = bytearray(path.read_bytes())
    page = 4096
    middle = (len(data) // page // 2) * page
    data[middle : middle + page] = bytes((7 * i) % 251 for i in range(page))
    path.write_bytes(bytes(data))
    with pytest.raises(CacheFileError, match=r"c\.sqlite: damaged"):
        DiskEmbeddingCache(path)


def test_damage_found_during_a_run_switches_the_file_off_with_a_warning(tmp_path):
    path = tmp_path / "c.sqlite"
    _fill(path)
    cache = DiskEmbeddingCache(path)
    cache._db.execute("DROP TABLE embeddings")  # the file goes bad under a running job
    with pytest.warns(RuntimeWarning, match=r"c\.sqlite is damaged .* not used for the rest of this run"):
        assert cache.lookup(_keys(2)) == [None, None]
    cache.store(_keys(1), [torch.ones(2, 64)])  # memory cache keeps working
    assert torch.equal(cache.lookup(_keys(1))[0].float(), torch.ones(2, 64))


def test_distillation_never_trains_on_a_damaged_row(tmp_path, teacher):
    """The issue's case: flipped bytes in stored teacher rows gave KD ≈ 1.8e9."""
    path = tmp_path / "kd.sqlite"
    batch = original_cgcnn_batch(mp_structures(4))

    def kd_of_one_step() -> tuple[float, object]:
        torch.manual_seed(0)
        model = OriginalSignatureCGCNN()
        hook = attach_teacher(model, teacher, cache=path)
        model(*batch).sum().backward()
        hook.remove()
        kd = hook.last_kd
        hook.cache.close()
        return kd, hook

    clean, _ = kd_of_one_step()
    with sqlite3.connect(path) as db:
        key, blob = db.execute("SELECT key, rows FROM embeddings LIMIT 1").fetchone()
    _flip(path, bytes(blob))
    with pytest.warns(RuntimeWarning, match="1 damaged"):
        damaged_run, hook = kd_of_one_step()
    assert damaged_run == pytest.approx(clean, rel=1e-5) and hook.teacher_crystals == 1
