"""Every accepted input form gives the same graph; batches and CSV tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from crysgnn_dgl import StructureError, build_graph, build_graphs, read_cif_table

from conftest import data_file

INPUT_IDS = ("mp-10003", "mp-1008626", "mp-10000")


def _assert_same_graph(a, b):
    for x, y in zip(a.edges(), b.edges()):
        assert torch.equal(x, y)
    assert torch.equal(a.edata["padding"], b.edata["padding"])
    assert torch.equal(a.edata["image"], b.edata["image"])
    torch.testing.assert_close(a.edata["distance"], b.edata["distance"], atol=1e-6, rtol=0)
    assert torch.equal(a.ndata["atom_features"], b.ndata["atom_features"])
    assert torch.equal(a.ndata["atomic_number"], b.ndata["atomic_number"])
    torch.testing.assert_close(a.ndata["frac_coords"], b.ndata["frac_coords"], atol=1e-6, rtol=0)


def _jarvis_atoms(structure):
    from jarvis.core.atoms import Atoms

    return Atoms(
        lattice_mat=structure.lattice.matrix,
        coords=structure.frac_coords,
        elements=[site.specie.symbol for site in structure],
        cartesian=False,
    )


def _ase_atoms(structure):
    import ase

    return ase.Atoms(
        symbols=[site.specie.symbol for site in structure],
        scaled_positions=structure.frac_coords,
        cell=structure.lattice.matrix,
        pbc=True,
    )


@pytest.mark.parametrize("sid", INPUT_IDS)
def test_all_input_forms_give_identical_graphs(sid, mp_cifs, mp_structures, tmp_path):
    structure, cif = mp_structures[sid], mp_cifs[sid]
    path = tmp_path / f"{sid}.cif"
    path.write_text(cif)
    reference = build_graph(structure, structure_id=sid)
    forms = {
        "jarvis Atoms": _jarvis_atoms(structure),
        "ASE Atoms": _ase_atoms(structure),
        "CIF path (Path)": path,
        "CIF path (str)": str(path),
        "CIF text": cif,
    }
    for name, item in forms.items():
        graph = build_graph(item, structure_id=f"{sid} as {name}")
        _assert_same_graph(reference, graph)


def test_labels_identical_across_forms(mp_cifs, mp_structures):
    _, from_structure = build_graph(mp_structures["mp-10003"], with_labels=True)
    _, from_text = build_graph(mp_cifs["mp-10003"], with_labels=True)
    for key in ("space_group", "crystal_system", "connectivity"):
        assert torch.equal(from_structure[key], from_text[key])


def test_build_graphs_accepts_any_iterable(mp_cifs, mp_structures, tmp_path):
    path = tmp_path / "a.cif"
    path.write_text(mp_cifs["mp-10000"])
    items = [mp_structures["mp-10003"], _ase_atoms(mp_structures["mp-1000"]), path, mp_cifs["mp-1"]]
    report = build_graphs(iter(items), ids=(f"item{i}" for i in range(4)), with_labels=True)
    assert report.skipped == []
    assert report.ids == ["item0", "item1", "item2", "item3"]
    assert [g.num_nodes() for g in report.graphs] == [12, 2, 6, 1]
    assert [lab["connectivity"].shape for lab in report.labels] == [(n, n) for n in (12, 2, 6, 1)]
    expected = build_graph(mp_structures["mp-10000"])
    _assert_same_graph(report.graphs[2], expected)
    default_ids = build_graphs(items[:2]).ids
    assert default_ids[0].startswith("#0") and "Nb4CoSi" in default_ids[0]
    assert default_ids[1].startswith("#1")


def test_read_cif_table_on_compressed_csv():
    path = data_file("mp_cgcnn36k.csv.xz")
    rows = list(read_cif_table(path, limit=5))
    expected = pd.read_csv(path, nrows=5)
    assert [sid for sid, _ in rows] == expected.material_id.tolist()
    assert [cif for _, cif in rows] == expected.cif.tolist()
    report = build_graphs((cif for _, cif in rows), ids=(sid for sid, _ in rows))
    assert report.ids == expected.material_id.tolist() and not report.skipped


def test_read_cif_table_row_ids_and_empty_cells(mp_cifs, tmp_path):
    path = tmp_path / "table.csv"
    pd.DataFrame(
        {"name": ["a", "b", "c"], "structure": [mp_cifs["mp-1"], None, mp_cifs["mp-1000"]]}
    ).to_csv(path, index=False)
    rows = list(read_cif_table(path, cif_column="structure"))
    assert [sid for sid, _ in rows] == ["table.csv:row 0", "table.csv:row 1", "table.csv:row 2"]
    assert rows[1][1] == ""
    named = list(read_cif_table(path, cif_column="structure", id_column="name"))
    assert [sid for sid, _ in named] == ["a", "b", "c"]
    report = build_graphs((cif for _, cif in named), ids=(sid for sid, _ in named))
    assert report.ids == ["a", "c"]
    assert report.skipped == [("b", "empty CIF")]


def test_read_cif_table_missing_column_names_file(tmp_path):
    path = tmp_path / "no_cif.csv"
    pd.DataFrame({"x": [1]}).to_csv(path, index=False)
    with pytest.raises(StructureError, match="no_cif.csv.*no column 'cif'"):
        list(read_cif_table(path))
    with pytest.raises(StructureError, match="no id column 'nope'"):
        list(read_cif_table(path, cif_column="x", id_column="nope"))


def test_cif_text_and_structure_agree_numerically(mp_cifs):
    """The CIF parser keeps the file's coordinates (no primitive reduction, no merging)."""
    from pymatgen.core import Structure

    graph = build_graph(mp_cifs["mp-10003"])
    parsed = Structure.from_str(mp_cifs["mp-10003"], fmt="cif")
    assert graph.num_nodes() == len(parsed) == 12
    np.testing.assert_allclose(graph.ndata["frac_coords"].numpy(), parsed.frac_coords, atol=1e-6)


def test_file_named_like_a_data_block_is_read_as_a_path(mp_cifs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data_BaTe.cif").write_text(mp_cifs["mp-1000"])
    assert build_graph("data_BaTe.cif").num_nodes() == 2
