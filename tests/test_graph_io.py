"""The one reader (:mod:`crysgnn_dgl.graph.io`): every table layout, the id rule, the
labelled read, and errors that name the file or the structure."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest
from conftest import data_file
from pymatgen.core import Structure

from crysgnn_dgl import StructureError, build_graphs
from crysgnn_dgl.graph import io
from crysgnn_dgl.graph.structures import to_structure
from crysgnn_dgl.training.dataset import CrystalGraphDataset

pytestmark = pytest.mark.filterwarnings("ignore:Issues encountered while parsing CIF")

ROWS = 6


@pytest.fixture(scope="module")
def mp_slice() -> pd.DataFrame:
    return pd.read_csv(data_file("mp_cgcnn36k.csv.xz"), nrows=ROWS)


@pytest.fixture(scope="module")
def dielectric_slice() -> dict:
    """Column-oriented (pandas) JSON of the first matbench dielectric entries."""
    with gzip.open(data_file("matbench_dielectric.json.gz"), "rt") as handle:
        columns = json.load(handle)
    keys = list(columns["structure"])[:ROWS]
    return {c: {k: columns[c][k] for k in keys} for c in ("structure", "n", "formula")}


@pytest.mark.parametrize("name", ["t.csv", "t.csv.xz", "t.csv.gz"])
def test_csv_tables_labelled(name, mp_slice, tmp_path):
    path = tmp_path / name
    mp_slice.to_csv(path, index=False)
    table = io.read_labelled_table(path, "band_gap")
    assert table.ids == mp_slice.material_id.tolist() and not table.skipped
    assert table.targets == mp_slice.band_gap.tolist() and table.structures == mp_slice.cif.tolist()
    assert [sid for sid, _ in io.iter_structures(path, limit=3)] == mp_slice.material_id[:3].tolist()


def test_real_csv_xz_is_read_directly(mp_slice):
    table = io.read_labelled_table(data_file("mp_cgcnn36k.csv.xz"), "formation_energy_per_atom", limit=ROWS)
    assert table.ids == mp_slice.material_id.tolist()
    assert table.targets == mp_slice.formation_energy_per_atom.tolist()


def test_id_rule_and_chunked_rows(mp_slice, tmp_path, monkeypatch):
    path = tmp_path / "no_ids.csv"
    mp_slice.drop(columns="material_id").assign(name=list("abcdef")).to_csv(path, index=False)
    monkeypatch.setattr(io, "CSV_CHUNK_ROWS", 4)  # row numbers continue across chunks
    assert [sid for sid, _ in io.iter_structures(path)] == [f"no_ids.csv:row {n}" for n in range(ROWS)]
    assert io.read_structure_table(path, id_column="name").ids == list("abcdef")
    assert io.read_labelled_table(path, "band_gap").ids == [f"no_ids.csv:row {n}" for n in range(ROWS)]


def test_json_layouts_of_pymatgen_dicts(dielectric_slice, tmp_path):
    column = tmp_path / "dielectric.json.gz"
    with gzip.open(column, "wt") as handle:
        json.dump(dielectric_slice, handle)
    dicts = list(dielectric_slice["structure"].values())
    targets = list(dielectric_slice["n"].values())
    records = tmp_path / "records.json"
    records.write_text(json.dumps([{"material_id": f"m{i}", "structure": d, "n": t}
                                   for i, (d, t) in enumerate(zip(dicts, targets))]))
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({f"k{i}": d for i, d in enumerate(dicts)}))
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps(dicts))

    table = io.read_labelled_table(column, "n")
    assert table.ids == [f"dielectric.json.gz:row {n}" for n in range(ROWS)] and table.targets == targets
    assert io.read_labelled_table(records, "n").ids == [f"m{i}" for i in range(ROWS)]
    assert [sid for sid, _ in io.iter_structures(mapping)] == [f"k{i}" for i in range(ROWS)]
    assert [sid for sid, _ in io.iter_structures(listed)] == [f"list.json:row {n}" for n in range(ROWS)]
    structure = to_structure(table.structures[0], table.ids[0])
    assert structure == Structure.from_dict(dicts[0])
    dataset = CrystalGraphDataset.from_table(records, "n")
    assert dataset.ids == [f"m{i}" for i in range(ROWS)] and not dataset.skipped


def test_missing_columns_and_files_name_the_file(mp_slice, tmp_path):
    path = tmp_path / "t.csv"
    mp_slice.to_csv(path, index=False)
    with pytest.raises(StructureError, match=r"t\.csv.*no column 'structure'"):
        io.read_labelled_table(path, "band_gap", structure_column="structure")
    with pytest.raises(StructureError, match=r"t\.csv.*no target column 'gap'"):
        io.read_labelled_table(path, "gap")
    with pytest.raises(StructureError, match=r"t\.csv.*no id column 'name'"):
        io.read_structure_table(path, id_column="name")
    with pytest.raises(StructureError, match=r"missing\.csv.*no such file"):
        io.read_labelled_table(tmp_path / "missing.csv", "band_gap")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(StructureError, match=r"broken\.json.*cannot read table \(JSONDecodeError"):
        io.read_frame(broken)
    with pytest.raises(StructureError, match=r"t\.xyz.*unknown input kind"):
        io.input_kind(tmp_path / "t.xyz")


def test_non_numeric_targets_are_skipped_by_id(mp_slice, tmp_path):
    frame = mp_slice.assign(K=[1.0, "high", 10.0, 0.0, None, 100.0])
    path = tmp_path / "t.csv.xz"
    frame.to_csv(path, index=False)
    ids = mp_slice.material_id.tolist()
    table = io.read_labelled_table(path, "K", transform="log10")
    assert table.ids == [ids[0], ids[2], ids[5]] and table.targets == [0.0, 1.0, 2.0]
    assert [sid for sid, _ in table.skipped] == [ids[1], ids[3], ids[4]]
    assert "target 'K' is not a usable number ('high')" in table.skipped[0][1]


def test_unreadable_structures_are_named_by_id(mp_slice, dielectric_slice, tmp_path):
    frame = mp_slice.copy()
    frame.loc[1, "cif"] = "data_x\n_cell_length_a 3\nnot a cif\n"
    frame.loc[2, "cif"] = None
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    table = io.read_structure_table(path)
    assert table.structures[2] == ""  # an empty cell is kept, to be reported by id
    report = build_graphs(table.structures, ids=table.ids)
    reasons = dict(report.skipped)
    assert list(reasons) == frame.material_id[1:3].tolist()
    assert "malformed CIF" in reasons[frame.material_id[1]] and reasons[frame.material_id[2]] == "empty CIF"
    bad_dict = tmp_path / "bad.json"
    bad_dict.write_text(json.dumps({"structure": {"0": {"lattice": "bad"}}, "n": {"0": 1.0}}))
    (sid, item), = io.iter_structures(bad_dict)
    with pytest.raises(StructureError, match=r"'bad\.json:row 0'.*not a pymatgen structure dict"):
        to_structure(item, sid)
