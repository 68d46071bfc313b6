"""Every bad input gives a clear error naming the item; batch builds skip and report."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from pymatgen.core import DummySpecies, Lattice, Structure

from crysgnn_dgl import (
    CheckpointError,
    CrysGNN,
    GraphSettings,
    StructureError,
    build_graph,
    build_graphs,
    load_teacher,
    save_checkpoint,
)
from crysgnn_dgl.checkpoint import read_checkpoint
from crysgnn_dgl.graph import PaddingWarning, graph_from_arrays


def _occupancy_half(cif: str) -> str:
    """The BaTe CIF with the Ba site half occupied (last column of the atom loop)."""
    lines = cif.splitlines()
    for i, line in enumerate(lines):
        fields = line.split()
        if fields[:2] == ["Ba", "Ba0"]:
            lines[i] = " ".join(fields[:-1] + ["0.5"])
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def bate(mp_structures):
    return mp_structures["mp-1000"]


def _bad_items(bate, bate_cif: str) -> dict:
    lattice, frac = bate.lattice, bate.frac_coords
    return {
        "malformed CIF (no cell)": bate_cif.replace("_cell_length_a", "_cell_length_x"),
        "malformed CIF (garbage)": "data_junk\nloop_\n_atom_site_label\nfoo bar baz\n",
        "truncated CIF": bate_cif[: len(bate_cif) // 2],
        "empty CIF": "",
        "blank CIF": "  \n \n",
        "partial occupancy (CIF)": _occupancy_half(bate_cif),
        "partial occupancy (Structure)": Structure(lattice, [{"Ba": 0.5, "Sr": 0.5}, "Te"], frac),
        "dummy species": Structure(lattice, [DummySpecies("X"), "Te"], frac),
        "element beyond table (Rf, Z=104)": Structure(lattice, ["Rf", "Te"], frac),
        "zero-volume lattice": Structure(Lattice([[4, 0, 0], [0, 4, 0], [4, 4, 0]]), ["Ba", "Te"], frac),
        "NaN lattice": Structure(Lattice([[np.nan, 0, 0], [0, 5, 0], [0, 0, 5]]), ["Ba", "Te"], frac),
        "NaN coordinates": Structure(lattice, ["Ba", "Te"], [[0, 0, 0], [np.nan, 0.5, 0.5]]),
        "overlapping sites": Structure(
            lattice, ["Ba", "Te", "Te"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.51]]
        ),
        "overlapping periodic image": Structure(
            lattice, ["Ba", "Te", "Te"], [[0, 0, 0], [0.5, 0.5, 0.5], [1.5, 0.5, 0.5]]
        ),
        "no sites": Structure(lattice, [], []),
        "missing file": "/nonexistent/folder/structure.cif",
        "unsupported type": 42,
    }


EXPECTED_REASON = {
    "malformed CIF (no cell)": "malformed CIF",
    "malformed CIF (garbage)": "malformed CIF",
    "truncated CIF": "malformed CIF",
    "empty CIF": "empty CIF",
    "blank CIF": "empty CIF",
    "partial occupancy (CIF)": "partial occupancy",
    "partial occupancy (Structure)": "partial occupancy",
    "dummy species": "outside the atom feature table",
    "element beyond table (Rf, Z=104)": "site 0 is Rf: element outside the atom feature table",
    "zero-volume lattice": "zero-volume or singular lattice",
    "NaN lattice": "NaN or infinite",
    "NaN coordinates": r"NaN or infinite coordinates at site\(s\) \[1\]",
    "overlapping sites": r"overlapping sites .*0\.050 Å apart",
    "overlapping periodic image": r"overlapping sites .*0\.000 Å apart",
    "no sites": "no sites",
    "missing file": "not an existing CIF file",
    "unsupported type": "unsupported input type int",
}


def test_each_bad_structure_gives_error_naming_it(bate, mp_cifs):
    items = _bad_items(bate, mp_cifs["mp-1000"])
    assert set(items) == set(EXPECTED_REASON)
    for name, item in items.items():
        sid = f"item<{name}>"
        with pytest.raises(StructureError, match=EXPECTED_REASON[name]) as info:
            build_graph(item, structure_id=sid)
        assert info.value.structure_id == sid
        assert sid in str(info.value)


def test_errors_name_item_without_explicit_id(tmp_path, mp_cifs):
    path = tmp_path / "broken.cif"
    path.write_text("data_broken\n_cell_length_a 3\n")
    with pytest.raises(StructureError, match="broken.cif.*malformed CIF"):
        build_graph(path)
    with pytest.raises(StructureError, match="CIF text data_BaTe.*partial occupancy"):
        build_graph(_occupancy_half(mp_cifs["mp-1000"]))
    with pytest.raises(StructureError, match="cannot read CIF file"):
        build_graph(tmp_path)  # a folder, not a file


def test_bad_arrays_are_refused_by_graph_from_arrays(bate):
    features = np.zeros((2, 92), dtype=np.float32)
    singular = np.array([[4.0, 0, 0], [0, 4.0, 0], [4.0, 4.0, 0]])
    with pytest.raises(StructureError, match="'batch row 3'.*singular"):
        graph_from_arrays(features, bate.frac_coords, singular, structure_id="batch row 3")
    nan_coords = np.array([[0, 0, 0], [np.nan, 0, 0]])
    with pytest.raises(StructureError, match="NaN or infinite coordinates"):
        graph_from_arrays(features, nan_coords, bate.lattice.matrix, structure_id="row 4")
    with pytest.raises(StructureError, match="3 atom feature rows for 2 sites"):
        graph_from_arrays(np.zeros((3, 92)), bate.frac_coords, bate.lattice.matrix)


def _padding_warnings(record):
    return [w for w in record if issubclass(w.category, PaddingWarning)]


@pytest.mark.parametrize("with_labels", [False, True])
def test_few_neighbours_pad_and_warn_once(padded_structure, with_labels):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = build_graph(padded_structure, structure_id="VTe2-x9", with_labels=with_labels)
    graph = result[0] if with_labels else result
    found = _padding_warnings(record)
    assert len(found) == 1
    text = str(found[0].message)
    assert "'VTe2-x9'" in text and "2 atom(s) have fewer than 12 neighbours within 8.0 Å" in text
    assert graph.num_edges() == 36 and int(graph.edata["padding"].sum()) == 6


def test_no_neighbours_pads_every_slot_and_warns_once(isolated_structure):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        graph = build_graph(isolated_structure, structure_id="BaTe-isolated")
    found = _padding_warnings(record)
    assert len(found) == 1
    assert "'BaTe-isolated'" in str(found[0].message) and "2 with none" in str(found[0].message)
    assert graph.edata["padding"].all()
    assert (graph.edges()[0] == 0).all()
    assert torch.all(graph.edata["distance"] == 9.0)


def test_thousand_atom_cell_works(mp_structures):
    structure = mp_structures["mp-1000"].copy()
    structure.make_supercell((10, 10, 5))
    assert len(structure) == 1000
    graph, labels = build_graph(structure, structure_id="BaTe 10x10x5", with_labels=True)
    assert graph.num_nodes() == 1000 and graph.num_edges() == 12_000
    assert not graph.edata["padding"].any()
    assert labels["connectivity"].shape == (1000, 1000)
    assert labels["space_group"].item() == 225 - 1  # Fm-3m survives the supercell
    distances = graph.edata["distance"].view(1000, 12)
    small = build_graph(mp_structures["mp-1000"]).edata["distance"].view(2, 12)
    # every atom keeps the rock-salt shells: 6 at d1 then 6 at d2
    torch.testing.assert_close(distances.sort(dim=1).values[:2], small.sort(dim=1).values)
    with torch.no_grad():
        embedding = CrysGNN().eval().embed(graph)
    assert embedding.shape == (1000, 64) and torch.isfinite(embedding).all()


def test_build_graphs_skips_and_reports_bad_items(mp_cifs, mp_structures, bate, padded_structure):
    bad = _bad_items(bate, mp_cifs["mp-1000"])
    items = [
        ("good-1", mp_structures["mp-10003"]),
        ("bad-empty", bad["empty CIF"]),
        ("good-2", mp_cifs["mp-1002063"]),
        ("bad-overlap", bad["overlapping sites"]),
        ("bad-partial", bad["partial occupancy (CIF)"]),
        ("good-padded", padded_structure),
        ("bad-rf", bad["element beyond table (Rf, Z=104)"]),
        ("good-3", mp_structures["mp-1"]),
    ]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        report = build_graphs(
            (item for _, item in items), ids=(sid for sid, _ in items), with_labels=True
        )
    assert report.ids == ["good-1", "good-2", "good-padded", "good-3"]
    assert [g.num_nodes() for g in report.graphs] == [12, 6, 3, 1]
    assert len(report.labels) == 4
    assert [sid for sid, _ in report.skipped] == ["bad-empty", "bad-overlap", "bad-partial", "bad-rf"]
    reasons = dict(report.skipped)
    assert reasons["bad-empty"] == "empty CIF"
    assert "overlapping" in reasons["bad-overlap"] and "partial occupancy" in reasons["bad-partial"]
    assert "bad-rf" in report.summary() and "skipped 4" in report.summary()
    assert ["good-padded" in str(w.message) for w in _padding_warnings(record)] == [True]

    with pytest.raises(StructureError, match="bad-empty"):
        build_graphs((item for _, item in items), ids=(sid for sid, _ in items), on_error="raise")


# --- checkpoints ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "teacher.pt"
    save_checkpoint(path, CrysGNN(), training={"epochs": 1})
    return path


def test_truncated_checkpoint(saved_model, tmp_path):
    data = saved_model.read_bytes()
    for fraction in (0.5, 0.9):
        path = tmp_path / f"truncated_{fraction}.pt"
        path.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(CheckpointError, match=f"truncated_{fraction}.pt.*truncated or corrupt"):
            load_teacher(path)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt.*file is empty"):
        load_teacher(empty)
    with pytest.raises(CheckpointError, match="no such file"):
        load_teacher(tmp_path / "missing.pt")


def test_other_format_version(saved_model, tmp_path):
    payload = torch.load(saved_model, weights_only=True)
    payload["format_version"] = 99
    path = tmp_path / "future.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="future.pt.*format version 99 is not supported"):
        load_teacher(path)
    payload["format"] = "something.else"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="unknown format 'something.else'"):
        read_checkpoint(path)


def test_featuriser_settings_differ(saved_model, tmp_path):
    with pytest.raises(CheckpointError, match=r"teacher.pt.*featuriser settings differ.*radius: checkpoint 8.0 vs requested 6.0"):
        load_teacher(saved_model, graph_settings=GraphSettings(radius=6.0))
    with pytest.raises(CheckpointError, match="max_neighbors: checkpoint 12 vs requested 16"):
        load_teacher(saved_model, graph_settings=GraphSettings(max_neighbors=16))
    assert load_teacher(saved_model, graph_settings=GraphSettings()).graph_settings == GraphSettings()
    release = tmp_path / "release.pth"
    torch.save({"state_dict": CrysGNN().state_dict()}, release)
    with pytest.raises(CheckpointError, match="release.pth.*featuriser settings differ"):
        load_teacher(release, graph_settings=GraphSettings(gaussian_width=0.5))


def test_checkpoint_with_wrong_weights(saved_model, tmp_path):
    payload = torch.load(saved_model, weights_only=True)
    del payload["state_dict"]["convs.4.bn2.running_var"]
    path = tmp_path / "incomplete.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="incomplete.pt.*missing.*convs.4.bn2.running_var"):
        load_teacher(path)
    other = tmp_path / "not_crysgnn.pt"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="neither a crysgnn_dgl checkpoint nor a CrysGNN release"):
        load_teacher(other)
