"""Issue 11, graph side: bounded work for degenerate cells (1), id/item counts (7),
settings validation (11), settings mismatches seen by the teacher (12) and pymatgen's own
CIF reasons (15)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from pymatgen.core import Lattice, Structure

from crysgnn_dgl import GraphSettings, StructureError, build_graph, build_graphs
from crysgnn_dgl.graph import GraphSettingsMismatch, settings_mismatch

FLAT = [[5, 0, 0], [0, 5, 0], [0.3, 0.2, 0.0002]]  # volume 0.005 Å³: the cell
THIN = [[50, 0, 0], [0, 50, 0], [0.3, 0.2, 0.0002]]  # volume 0.5 Å³ per atom, near-flat

BOUNDED_SCRIPT = textwrap.dedent(
    """
    import json, sys, warnings
    from pathlib import Path
    from pymatgen.core import Lattice, Structure
    from crysgnn_dgl import StructureError, build_graph, load_teacher
    from crysgnn_dgl.embedding import embed_sources
    from crysgnn_dgl.pretrain import build_cache, open_source

    folder = Path(sys.argv[1])
    good, flat, thin = (Structure.from_dict(d) for d in json.loads((folder / "in.json").read_text()).values())
    for name, item in (("structure", flat), ("thin", thin), ("cif", flat.to(fmt="cif"))):
        try:
            build_graph(item, structure_id=name)
        except StructureError as exc:
            print(name, exc.reason)
    result = embed_sources(load_teacher(), [open_source(folder / "in.json")])
    print("embed", result.ids, [sid for sid, _ in result.skipped])
    report = build_cache([open_source(folder / "in.json")], folder / "cache", workers=0, progress=False)
    print("cache", report.crystals, [sid for sid, _ in report.skipped])
    """
)


def test_degenerate_cells_are_refused_in_bounded_time_on_every_path(tmp_path, mp_structures):
    good = mp_structures["mp-1000"]
    inputs = {
        "good": good.as_dict(),
        "flat": Structure(Lattice(FLAT), ["Na"], [[0, 0, 0]]).as_dict(),
        "thin": Structure(Lattice(THIN), ["Na"], [[0, 0, 0]]).as_dict(),
    }
    (tmp_path / "in.json").write_text(json.dumps(inputs))
    script = tmp_path / "bounded.py"
    script.write_text(BOUNDED_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert "volume per atom 0.005 Å³ is below 0.0884 Å³" in lines["structure"]
    assert "near-flat cell" in lines["thin"] and "atom images" in lines["thin"]
    assert "volume per atom" in lines["cif"] or "malformed CIF" in lines["cif"]
    assert lines["embed"] == "['good'] ['flat', 'thin']"  # the good row survives
    assert lines["cache"] == "1 ['flat', 'thin']"


def test_real_cells_stay_far_below_the_bound(mp_structures):
    from crysgnn_dgl.graph.bounds import MAX_ATOM_IMAGES, periodic_images

    for structure in mp_structures.values():
        assert len(structure) * periodic_images(structure.lattice.matrix, 8.0) < MAX_ATOM_IMAGES / 1000


def test_fewer_ids_than_items_is_refused_before_building(mp_structures):
    items = list(mp_structures.values())[:3]
    with pytest.raises(ValueError, match=r"build_graphs: 2 id\(s\) for 3 item\(s\)"):
        build_graphs(items, ids=["a", "b"])
    with pytest.raises(ValueError, match=r"4 id\(s\) for 3 item\(s\)"):
        build_graphs(iter(items), ids=iter("abcd"))
    report = build_graphs(iter(items), ids=iter("abc"))
    assert report.ids == ["a", "b", "c"] and len(report.graphs) == 3


@pytest.mark.parametrize(
    "field, value",
    [("radius", -1.0), ("radius", 0), ("radius", float("nan")), ("max_neighbors", 0),
     ("max_neighbors", 2.5), ("gaussian_step", 0.0), ("gaussian_width", -0.2),
     ("gaussian_stop", -1.0), ("tie_decimals", -1), ("pad", "yes")],
)
def test_invalid_graph_settings_are_refused(field, value):
    with pytest.raises(ValueError, match=f"GraphSettings.{field}"):
        GraphSettings(**{field: value})


def test_teacher_refuses_graphs_built_with_other_settings(mp_structures):
    from crysgnn_dgl import load_teacher

    teacher = load_teacher()
    structure = mp_structures["mp-10000"]
    assert settings_mismatch(build_graph(structure), teacher.graph_settings) == []
    sparse = Structure(Lattice.cubic(7.0), ["Na"], [[0, 0, 0]])  # 6 neighbours at 7 Å, 12 at 9.9 Å
    assert settings_mismatch(build_graph(sparse), teacher.graph_settings) == []
    cases = {
        "up to 16 neighbour slots, max_neighbors is 12": GraphSettings(max_neighbors=16),
        "as few as 6 neighbour slots, but pad=True fills all 12": GraphSettings(pad=False),
        "padding slots at 7.500 Å": GraphSettings(radius=6.5),
        "bonds up to 9.899 Å long, radius is 8.0 Å": GraphSettings(radius=12.0, gaussian_stop=12.0),
    }
    for expected, settings in cases.items():
        graph = build_graph(sparse, settings)
        with pytest.raises(GraphSettingsMismatch, match=expected):
            teacher.embed(graph)


def test_cif_keeps_pymatgens_specific_reason(mp_cifs):
    cif = mp_cifs["mp-1000"]
    singular = cif.replace("60.00000000", "120.00000000")
    over = "\n".join(
        " ".join(line.split()[:-1] + ["1.5"]) if line.split()[:2] == ["Ba", "Ba0"] else line
        for line in cif.splitlines()
    )
    with pytest.raises(StructureError, match=r"malformed CIF .*thickness"):
        build_graph(singular, structure_id="singular")
    with pytest.raises(StructureError, match=r"malformed CIF .*Occupancy 1.5 exceeded tolerance"):
        build_graph(over, structure_id="over")
