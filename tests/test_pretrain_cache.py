"""Graph cache: every reader, exact graphs and labels, skip-and-report, resume, de-duplication."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest
import torch
from _pretrain_fixtures import BAD_ROWS, GOOD_ROWS, corpus_csv, small_cache  # noqa: F401
from conftest import data_file

from crysgnn_dgl import build_graph
from crysgnn_dgl.backend import dgl
from crysgnn_dgl.graph import connectivity_targets
from crysgnn_dgl.pretrain import GraphCache, build_cache, collate_records, open_source
from crysgnn_dgl.pretrain.dataset import ShardBatchSampler


def test_cache_counts_and_report(small_cache):
    index = json.loads((small_cache / "index.json").read_text())
    assert index["num_inputs"] == GOOD_ROWS + len(BAD_ROWS)
    assert index["num_skipped"] == len(BAD_ROWS)
    assert index["num_crystals"] == GOOD_ROWS - index["num_duplicates"]
    report = pd.read_csv(small_cache / "report.tsv", sep="\t")
    skipped = report[report.reason.str.startswith("skipped")]
    assert sorted(skipped.structure_id) == sorted(BAD_ROWS)
    reasons = dict(zip(skipped.structure_id, skipped.reason))
    assert "empty CIF" in reasons["bad-empty"]
    assert "malformed CIF" in reasons["bad-garbage"]
    assert len(GraphCache(small_cache)) == index["num_crystals"]


def test_cached_graphs_equal_directly_built_graphs(small_cache, corpus_csv):
    cache = GraphCache(small_cache)
    table = pd.read_csv(corpus_csv).set_index("material_id")
    ids = cache.structure_ids()
    assert len(ids) == len(cache) and not set(ids) & set(BAD_ROWS)
    positions = [0, 3, 7, len(cache) - 1]
    graph, labels = collate_records([cache[p] for p in positions], cache.graph_settings)
    parts = [build_graph(table.loc[ids[p], "cif"], structure_id=ids[p], with_labels=True) for p in positions]
    expected = [g for g, _ in parts]
    sizes = graph.batch_num_nodes().tolist()
    assert sizes == [g.num_nodes() for g in expected]
    for got, want in zip(dgl.unbatch(graph), expected):
        assert torch.equal(got.edges()[0], want.edges()[0])
        assert torch.equal(got.edges()[1], want.edges()[1])
        assert torch.allclose(got.edata["distance"], want.edata["distance"], atol=1e-6)
        assert torch.equal(got.edata["padding"], want.edata["padding"])
        assert torch.equal(got.edata["image"], want.edata["image"])  # the one edge builder, images kept
        assert torch.equal(got.ndata["lattice"], want.ndata["lattice"])
        assert torch.equal(got.ndata["frac_coords"], want.ndata["frac_coords"])
        assert torch.equal(got.ndata["atom_features"], want.ndata["atom_features"])
        assert torch.equal(got.ndata["atomic_number"], want.ndata["atomic_number"])
    assert labels["space_group"].tolist() == [int(lab["space_group"]) for _, lab in parts]
    assert labels["crystal_system"].tolist() == [int(lab["crystal_system"]) for _, lab in parts]
    src, dst = graph.edges()
    targets = connectivity_targets(src, dst, graph.batch_num_nodes())
    flat = torch.cat([lab["connectivity"].reshape(-1) for _, lab in parts])
    assert torch.equal(targets, flat)


def test_resume_rebuilds_only_missing_shards(tmp_path, corpus_csv):
    sources = [open_source(corpus_csv)]
    first = build_cache(sources, tmp_path, shard_size=8, workers=0, progress=False)
    index_before = (tmp_path / "index.json").read_text()
    # an interrupted build: one shard's completion marker and one shard file missing
    (tmp_path / "shards" / "shard_000002.json").unlink()
    (tmp_path / "shards" / "shard_000004.npz").unlink()
    second = build_cache(sources, tmp_path, shard_size=8, workers=0, progress=False)
    assert second.shards_built == 2
    assert second.shards_reused == first.shards_built - 2
    assert (tmp_path / "index.json").read_text() == index_before
    with pytest.raises(ValueError, match="different inputs or settings"):
        build_cache(sources, tmp_path, shard_size=4, workers=0, progress=False)


def test_parallel_build_matches_serial(tmp_path, corpus_csv, small_cache):
    build_cache([open_source(corpus_csv)], tmp_path, shard_size=8, workers=2, progress=False)
    assert (tmp_path / "index.json").read_text() == (small_cache / "index.json").read_text()
    for name in GraphCache(small_cache).shard_files:
        with np.load(small_cache / name) as a, np.load(tmp_path / name) as b:
            for key in a.files:
                assert np.array_equal(a[key], b[key]), (name, key)


def test_duplicates_are_excluded_and_reported(tmp_path, corpus_csv):
    report = build_cache(
        [open_source(corpus_csv, limit=10), open_source(corpus_csv, limit=10)],
        tmp_path, shard_size=8, workers=0, progress=False,
    )
    good_in_first_10 = 10 - 1  # one bad row among the first 10
    assert report.crystals == good_in_first_10
    assert len(report.duplicates) == good_in_first_10
    assert all("duplicate id" in why for _, why in report.duplicates)
    assert len(GraphCache(tmp_path)) == good_in_first_10


def test_other_readers(tmp_path):
    from ase.db import connect
    from pymatgen.io.ase import AseAtomsAdaptor

    table = pd.read_csv(data_file("perov5.csv.xz"), nrows=4)
    folder = tmp_path / "cifs"
    folder.mkdir()
    for mid, cif in zip(table.material_id, table.cif):
        (folder / f"{mid}.cif").write_text(cif)
    (folder / "broken.cif").write_text("data_broken\n")
    with gzip.open(data_file("matbench_dielectric.json.gz"), "rt") as handle:
        columns = json.load(handle)
    keys = list(columns["structure"])[:3]
    small = {c: {k: columns[c][k] for k in keys} for c in ("structure", "n")}
    column_json = tmp_path / "dielectric.json.gz"
    with gzip.open(column_json, "wt") as handle:
        json.dump(small, handle)
    list_json = tmp_path / "list.json"
    list_json.write_text(json.dumps([columns["structure"][k] for k in keys] + [{"lattice": "bad"}]))
    database = tmp_path / "atoms.db"
    from pymatgen.core import Structure

    with connect(str(database)) as db:
        for mid, cif in zip(table.material_id[:2], table.cif[:2]):
            db.write(AseAtomsAdaptor.get_atoms(Structure.from_str(cif, fmt="cif")), name=f"p{mid}")

    ids = {
        "folder": [sid for sid, _ in open_source(folder)],
        "column_json": [sid for sid, _ in open_source(column_json)],
        "list_json": [sid for sid, _ in open_source(list_json)],
        "ase": [sid for sid, _ in open_source(database)],
    }
    assert ids["folder"] == sorted([f"{m}.cif" for m in table.material_id] + ["broken.cif"])
    assert ids["column_json"] == [f"dielectric.json.gz:row {k}" for k in keys]
    assert ids["list_json"] == [f"list.json:row {i}" for i in range(4)]
    assert ids["ase"] == [f"p{m}" for m in table.material_id[:2]]
    report = build_cache(
        [open_source(p) for p in (folder, column_json, list_json, database)],
        tmp_path / "cache", shard_size=4, workers=0, progress=False, dedupe=False,
    )
    skipped = dict(report.skipped)
    assert set(skipped) == {"broken.cif", "list.json:row 3"}
    assert "pymatgen structure dict" in skipped["list.json:row 3"]
    assert report.crystals == 4 + 3 + 3 + 2
    # the matbench labels agree with spglib's on these entries
    cache = GraphCache(tmp_path / "cache")
    systems = [int(cache[p]["crystal_system"]) for p in range(4, 7)]
    from crysgnn_dgl.graph import CRYSTAL_SYSTEMS

    assert [CRYSTAL_SYSTEMS[s] for s in systems] == [columns["crystal_sys"][k] for k in keys]


def test_unknown_input_kind_names_the_file(tmp_path):
    from crysgnn_dgl import StructureError

    path = tmp_path / "structures.xyz"
    path.write_text("")
    with pytest.raises(StructureError, match="structures.xyz"):
        open_source(path)


def test_batches_cover_split_once_and_depend_only_on_seed_and_epoch(small_cache):
    cache = GraphCache(small_cache)
    train, val = cache.split(0.25, seed=3)
    assert len(set(train) & set(val)) == 0 and len(train) + len(val) == len(cache)
    sampler = ShardBatchSampler(cache, train, batch_size=5, seed=1)
    sampler.set_epoch(2)
    first = list(sampler)
    assert sorted(p for b in first for p in b) == sorted(train.tolist())
    again = ShardBatchSampler(cache, train, batch_size=5, seed=1)
    again.set_epoch(2)
    assert list(again) == first
    again.set_epoch(3)
    assert list(again) != first
    # batches mix the shards of a window (shards hold consecutive inputs)
    assert max(len(set(cache.shard_of(np.asarray(b)))) for b in first) > 1
    single = ShardBatchSampler(cache, train, batch_size=5, seed=1, shuffle_window=1)
    assert all(len(set(cache.shard_of(np.asarray(b)))) <= 2 for b in single)
    fixed = ShardBatchSampler(cache, val, batch_size=5, seed=1, same_every_epoch=True)
    fixed.set_epoch(4)
    order = list(fixed)
    fixed.set_epoch(9)
    assert list(fixed) == order
    ranks = [ShardBatchSampler(cache, train, 5, seed=1, rank=r, world_size=2) for r in (0, 1)]
    for r in ranks:
        r.set_epoch(2)
    assert len(list(ranks[0])) == len(list(ranks[1])) == len(ranks[0]) == -(-len(first) // 2)
    assert [b for pair in zip(ranks[0], ranks[1]) for b in pair][: len(first)] == first


def test_a_cache_of_another_format_version_is_refused(small_cache, tmp_path):
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(small_cache, copy)
    index = json.loads((copy / "index.json").read_text())
    (copy / "index.json").write_text(json.dumps({**index, "format_version": 1}))
    with pytest.raises(ValueError, match=r"format version 1, this version reads 2 .*rebuild"):
        GraphCache(copy)
