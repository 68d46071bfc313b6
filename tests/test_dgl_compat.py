"""DGL next to alignn and matgl on a torch without a matching DGL build.

The subprocess tests run real alignn (DGL ALIGNN) and matgl (DGL MEGNet) forward passes in
fresh interpreters, in every import order, and in a ``spawn`` DataLoader worker. They rely
on the README's set-up step (the start-up hook) wherever DGL needs the compatibility
layer; without it they fail and say which command to run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import types
from importlib import metadata

import pytest

from crysgnn_dgl import _dgl_guard, startup_hook
from crysgnn_dgl.cli import doctor

SETUP_STEP = "crysgnn-dgl doctor --install-startup-hook"
ORDERS = {
    "alignn first": ("alignn", "matgl", "crysgnn_dgl"),
    "matgl first": ("matgl", "alignn", "crysgnn_dgl"),
    "crysgnn_dgl first": ("crysgnn_dgl", "alignn", "matgl"),
}

# Imports the three packages in the given order, then runs each one's DGL model.
ORDER_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    os.environ["MATGL_BACKEND"] = "DGL"
    order, cif_path = sys.argv[1].split(","), sys.argv[2]
    first_imported = None
    for name in order:
        if name == "alignn":
            import alignn.graphs, alignn.models.alignn
        elif name == "matgl":
            import matgl, matgl.models, matgl.ext.pymatgen
        else:
            import crysgnn_dgl, crysgnn_dgl.graph
        if first_imported is None:
            first_imported = {
                "crysgnn_dgl_loaded": "crysgnn_dgl" in sys.modules,
                "dgl_loaded": "dgl" in sys.modules,
            }
    import torch
    from pymatgen.core import Structure
    from jarvis.core.atoms import Atoms

    torch.manual_seed(0)
    structure = Structure.from_str(open(cif_path).read(), fmt="cif")
    atoms = Atoms(lattice_mat=structure.lattice.matrix, coords=structure.frac_coords,
                  elements=[s.specie.symbol for s in structure], cartesian=False)

    from alignn.graphs import Graph
    from alignn.models.alignn import ALIGNN, ALIGNNConfig
    g, lg = Graph.atom_dgl_multigraph(atoms, cutoff=8.0, max_neighbors=12)
    alignn_model = ALIGNN(ALIGNNConfig(name="alignn", alignn_layers=1, gcn_layers=1,
                                       hidden_features=32, embedding_features=16))
    lattice = torch.tensor(atoms.lattice_mat, dtype=torch.float32)
    alignn_out = alignn_model((g, lg, lattice))
    alignn_out.sum().backward()

    from matgl.models import MEGNet
    elements = tuple(sorted({s.specie.symbol for s in structure}))
    megnet = MEGNet(element_types=elements, cutoff=4.0, nblocks=1)
    megnet_out = megnet.predict_structure(structure)

    from crysgnn_dgl import CrysGNN, build_graph
    crysgnn_out = CrysGNN().eval().embed(build_graph(structure))

    import dgl
    placeholder = sys.modules.get("dgl.graphbolt")
    print("RESULT " + json.dumps({
        "first": first_imported,
        "alignn": float(alignn_out.detach()), "alignn_nodes": g.num_nodes(),
        "alignn_grad": all(p.grad is not None for p in alignn_model.atom_embedding.parameters()),
        "megnet": float(megnet_out.reshape(-1)[0]),
        "crysgnn_shape": list(crysgnn_out.shape),
        "dgl": dgl.__version__,
        "placeholder": bool(getattr(placeholder, "__crysgnn_dgl_placeholder__", False)),
    }))
    """
)

# A DataLoader whose spawn worker builds crysgnn_dgl and alignn DGL graphs. alignn is the
# first import of every process (main and worker), so DGL must already be guarded.
SPAWN_SCRIPT = textwrap.dedent(
    """
    import alignn.graphs
    import json, os, sys
    import torch
    from torch.utils.data import DataLoader, Dataset


    class CrystalGraphs(Dataset):
        def __init__(self, cifs):
            self.cifs = cifs

        def __len__(self):
            return len(self.cifs)

        def __getitem__(self, index):
            from jarvis.core.atoms import Atoms
            from pymatgen.core import Structure
            import crysgnn_dgl

            structure = Structure.from_str(self.cifs[index], fmt="cif")
            atoms = Atoms(lattice_mat=structure.lattice.matrix, coords=structure.frac_coords,
                          elements=[s.specie.symbol for s in structure], cartesian=False)
            g, lg = alignn.graphs.Graph.atom_dgl_multigraph(atoms, cutoff=8.0, max_neighbors=12)
            return {"pid": os.getpid(), "alignn_has_dgl": alignn.graphs.dgl is not None,
                    "graph": crysgnn_dgl.build_graph(structure), "alignn": (g, lg)}


    def keep(batch):
        return batch


    if __name__ == "__main__":
        cifs = [open(path).read() for path in sys.argv[1:]]
        loader = DataLoader(CrystalGraphs(cifs), batch_size=1, num_workers=1,
                            multiprocessing_context="spawn", collate_fn=keep)
        items = [item for batch in loader for item in batch]
        import crysgnn_dgl
        same = []
        for cif, item in zip(cifs, items):
            local = crysgnn_dgl.build_graph(cif)
            same.append(all(torch.equal(a, b) for a, b in zip(local.edges(), item["graph"].edges()))
                        and torch.equal(local.edata["distance"], item["graph"].edata["distance"]))
        print("RESULT " + json.dumps({
            "main_pid": os.getpid(), "worker_pids": sorted({i["pid"] for i in items}),
            "alignn_has_dgl": [i["alignn_has_dgl"] for i in items],
            "alignn_edges": [i["alignn"][0].num_edges() for i in items],
            "line_graph_nodes": [i["alignn"][1].num_nodes() for i in items],
            "same_as_main": same,
        }))
    """
)


def _require_setup_step() -> None:
    """Fail (not skip) when DGL needs the compatibility layer but the hook is missing."""
    if not _dgl_guard.graphbolt_usable() and not startup_hook.hook_installed():
        pytest.fail(
            f"DGL has no graphbolt build for torch {_dgl_guard.installed_torch_version()} and the "
            f"start-up hook is not installed in {startup_hook.site_packages_dir()}. "
            f"Run the documented set-up step: {SETUP_STEP}"
        )


def _result(process: subprocess.CompletedProcess) -> dict:
    lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
    if process.returncode != 0 or not lines:
        pytest.fail(
            f"subprocess failed (exit {process.returncode}); if DGL failed to import, run "
            f"{SETUP_STEP}\n--- stdout ---\n{process.stdout[-3000:]}\n--- stderr ---\n"
            f"{process.stderr[-5000:]}"
        )
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture(scope="module")
def subprocess_results(tmp_path_factory, mp_cifs):
    """Start every subprocess at once (they mostly wait on imports), then collect them."""
    _require_setup_step()
    folder = tmp_path_factory.mktemp("dgl_compat")
    cif_paths = []
    for sid in ("mp-10003", "mp-1000"):
        path = folder / f"{sid}.cif"
        path.write_text(mp_cifs[sid])
        cif_paths.append(str(path))
    order_script = folder / "orders.py"
    order_script.write_text(ORDER_SCRIPT)
    spawn_script = folder / "spawn_loader.py"
    spawn_script.write_text(SPAWN_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MATGL_BACKEND", None)
    commands = {
        name: [sys.executable, str(order_script), ",".join(order), cif_paths[0]]
        for name, order in ORDERS.items()
    }
    commands["spawn"] = [sys.executable, str(spawn_script), *cif_paths]
    running = {
        name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, cwd=folder)
        for name, cmd in commands.items()
    }
    finished = {}
    for name, process in running.items():
        try:
            stdout, stderr = process.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        finished[name] = subprocess.CompletedProcess(commands[name], process.returncode, stdout, stderr)
    return finished


@pytest.mark.slow
@pytest.mark.parametrize("order", list(ORDERS))
def test_alignn_and_matgl_models_in_any_import_order(order, subprocess_results):
    result = _result(subprocess_results[order])
    assert result["dgl"] == metadata.version("dgl")
    assert result["alignn_nodes"] == 12
    assert result["alignn_grad"] is True
    assert result["alignn"] == pytest.approx(result["alignn"]) and abs(result["alignn"]) < 1e6
    assert result["megnet"] == result["megnet"]  # not NaN
    assert result["crysgnn_shape"] == [12, 64]
    if not _dgl_guard.graphbolt_usable():
        assert result["placeholder"] is True
        if order != "crysgnn_dgl first":
            # alignn/matgl came first: the guard was in place before crysgnn_dgl was imported
            assert result["first"]["crysgnn_dgl_loaded"] is False


@pytest.mark.slow
def test_spawn_dataloader_workers_build_dgl_graphs(subprocess_results):
    result = _result(subprocess_results["spawn"])
    assert result["worker_pids"] and result["main_pid"] not in result["worker_pids"]
    assert result["alignn_has_dgl"] == [True, True]
    assert all(n > 0 for n in result["alignn_edges"]) and all(n > 0 for n in result["line_graph_nodes"])
    assert result["same_as_main"] == [True, True]


# --- the guard's decisions, on fake package layouts -----------------------------------


def _fake_stack(root, torch_version="2.13.0+cpu", graphbolt_for=None, datapipes=True, graphbolt=True):
    """Create fake ``torch``/``dgl``/``torchdata`` folders; return a ``_package_dir`` stand-in."""
    (root / "torch").mkdir(parents=True)
    (root / "torch" / "version.py").write_text(f"__version__ = '{torch_version}'\n")
    (root / "dgl").mkdir()
    if graphbolt:
        (root / "dgl" / "graphbolt").mkdir()
        if graphbolt_for:
            (root / "dgl" / "graphbolt" / f"libgraphbolt_pytorch_{graphbolt_for}.so").write_text("")
    (root / "torchdata").mkdir()
    if datapipes:
        (root / "torchdata" / "datapipes").mkdir()
    return lambda name: root / name if (root / name).is_dir() else None


@pytest.mark.parametrize(
    "layout, usable",
    [
        (dict(graphbolt_for="2.13.0"), True),  # matching build: change nothing
        (dict(graphbolt_for="2.2.1"), False),  # builds only for older torch
        (dict(graphbolt_for=None), False),
        (dict(graphbolt_for="2.13.0", datapipes=False), False),  # torchdata >= 0.10
        (dict(graphbolt=False), True),  # older DGL without graphbolt
        (dict(torch_version="2.2.1", graphbolt_for="2.2.1"), True),
    ],
)
def test_graphbolt_usable_on_fake_layouts(tmp_path, monkeypatch, layout, usable):
    monkeypatch.setattr(_dgl_guard, "_package_dir", _fake_stack(tmp_path, **layout))
    assert _dgl_guard.graphbolt_usable() is usable


def test_torch_version_read_without_import(tmp_path, monkeypatch):
    monkeypatch.setattr(_dgl_guard, "_package_dir", _fake_stack(tmp_path, torch_version="2.13.0+cu126"))
    assert _dgl_guard.installed_torch_version() == "2.13.0"
    monkeypatch.setattr(_dgl_guard, "_package_dir", lambda name: None)
    assert _dgl_guard.graphbolt_usable() is True  # no dgl at all


def test_install_placeholder_decisions(tmp_path, monkeypatch):
    for name in ("dgl", "dgl.graphbolt"):
        if name in sys.modules:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(_dgl_guard, "_package_dir", _fake_stack(tmp_path / "ok", graphbolt_for="2.13.0"))
    assert _dgl_guard.install_placeholder() is False and "dgl.graphbolt" not in sys.modules

    monkeypatch.setattr(_dgl_guard, "_package_dir", _fake_stack(tmp_path / "bad", graphbolt_for="2.2.1"))
    monkeypatch.setitem(sys.modules, "dgl", types.ModuleType("dgl"))  # DGL already imported
    assert _dgl_guard.install_placeholder() is False and not _dgl_guard.placeholder_active()
    monkeypatch.delitem(sys.modules, "dgl")

    assert _dgl_guard.install_placeholder() is True
    assert _dgl_guard.placeholder_active() and sys.modules["dgl.graphbolt"].__path__ == []
    assert _dgl_guard.install_placeholder() is True  # idempotent


def test_repair_optional_importers(monkeypatch):
    from crysgnn_dgl.backend import dgl

    broken = types.ModuleType("alignn._crysgnn_dgl_probe")
    broken.dgl = None
    unrelated = types.ModuleType("somethingelse_probe")
    unrelated.dgl = None
    monkeypatch.setitem(sys.modules, broken.__name__, broken)
    monkeypatch.setitem(sys.modules, unrelated.__name__, unrelated)
    assert broken.__name__ in _dgl_guard.repair_optional_importers()
    assert broken.dgl is dgl and unrelated.dgl is None


# --- the start-up hook ------------------------------------------------------------------


def test_startup_hook_install_and_remove(tmp_path):
    assert not startup_hook.hook_installed(tmp_path)
    path = startup_hook.install_hook(tmp_path)
    assert path == tmp_path / startup_hook.HOOK_FILENAME and startup_hook.hook_installed(tmp_path)
    line = path.read_text()
    assert line.startswith("import ") and line.count("\n") == 1 and "torch" not in line
    assert str(startup_hook.Path(_dgl_guard.__file__).resolve()) in line
    assert startup_hook.remove_hook(tmp_path) is True
    assert startup_hook.remove_hook(tmp_path) is False and not path.exists()


def test_startup_hook_file_guards_a_fresh_interpreter(tmp_path):
    """Process only the hook in ``tmp_path`` (``-S``: no site-packages .pth files run),
    then import dgl; only the hook can have registered the placeholder."""
    startup_hook.install_hook(tmp_path)
    code = textwrap.dedent(
        f"""
        import site, sys
        sys.path.append({str(startup_hook.site_packages_dir())!r})
        assert "dgl.graphbolt" not in sys.modules
        site.addsitedir({str(tmp_path)!r})
        active = getattr(sys.modules.get("dgl.graphbolt"), "__crysgnn_dgl_placeholder__", False)
        import dgl, dgl.function
        print("torch" in sys.modules and "imported", active, dgl.__version__)
        """
    )
    process = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    _, active, version = process.stdout.split()
    assert active == str(not _dgl_guard.graphbolt_usable()) and version == metadata.version("dgl")


# --- crysgnn-dgl doctor -------------------------------------------------------------------


def test_doctor_prints_versions_and_exits_cleanly():
    _require_setup_step()
    process = subprocess.run(
        [sys.executable, "-m", "crysgnn_dgl", "doctor"], capture_output=True, text=True, timeout=300
    )
    out = process.stdout
    assert process.returncode == 0, out + process.stderr
    for package in ("torch", "dgl", "alignn", "matgl"):
        assert f"{package:<17} {metadata.version(package)}" in out
    assert "plain `import dgl` in a new interpreter: ok" in out
    needed = not _dgl_guard.graphbolt_usable()
    assert f"compatibility layer needed:         {'yes' if needed else 'no'}" in out
    assert "All good." in out


def test_doctor_says_what_to_do_without_hook(monkeypatch, capsys):
    monkeypatch.setattr(_dgl_guard, "graphbolt_usable", lambda: False)
    monkeypatch.setattr(startup_hook, "hook_installed", lambda target=None: False)
    monkeypatch.setattr(doctor, "_probe_import", lambda module: "FAILS: ImportError")
    args = argparse.Namespace(install_startup_hook=False, remove_startup_hook=False)
    assert doctor.run(args) == 1
    out = capsys.readouterr().out
    assert "ACTION" in out and SETUP_STEP in out and "FAILS" in out


def test_missing_hook_fails_with_the_setup_step(monkeypatch):
    monkeypatch.setattr(_dgl_guard, "graphbolt_usable", lambda: False)
    monkeypatch.setattr(startup_hook, "hook_installed", lambda target=None: False)
    with pytest.raises(pytest.fail.Exception, match="crysgnn-dgl doctor --install-startup-hook"):
        _require_setup_step()
