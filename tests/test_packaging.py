"""The built distribution: installing it next to torch and dgl changes neither, and the
adapters live under ``crysgnn_dgl.adapters`` (no top-level ``adapters`` package)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _source_files() -> list[str]:
    """Files of the working tree that a clone would have (tracked and new, not ignored)."""
    if (REPO / ".git").exists() and shutil.which("git"):
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=REPO, capture_output=True, text=True, check=True,
        ).stdout.splitlines()
        return [name for name in listed if (REPO / name).is_file()]
    skip = {".git", "build", "dist", ".venv", "__pycache__", ".pytest_cache"}
    return [
        str(p.relative_to(REPO)) for p in REPO.rglob("*")
        if p.is_file() and not skip & set(p.relative_to(REPO).parts) and ".egg-info" not in str(p)
    ]


def _run(cmd: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess:
    process = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    if process.returncode != 0:
        pytest.fail(f"{what} failed (exit {process.returncode}): {' '.join(cmd)}\n"
                    f"{process.stdout[-3000:]}\n{process.stderr[-3000:]}")
    return process


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """Wheel and sdist built from a copy of the source tree (the repository stays clean)."""
    root = tmp_path_factory.mktemp("package")
    source = root / "src"
    for name in _source_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    dist = root / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--wheel-dir", str(dist), str(source)], root, "building the wheel")
    _run([sys.executable, "-c",
          f"from setuptools import build_meta; build_meta.build_sdist({str(dist)!r})"],
         source, "building the sdist")
    (wheel,) = dist.glob("crysgnn_dgl-*.whl")
    (sdist,) = dist.glob("crysgnn_dgl-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist, "root": root}


def test_wheel_layout_has_no_top_level_adapters(built):
    with zipfile.ZipFile(built["wheel"]) as wheel:
        names = wheel.namelist()
        info = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        top_level = wheel.read(info).decode().split()
        entry_points = wheel.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"crysgnn_dgl", built["wheel"].name.split("-py")[0] + ".dist-info"}
    assert top_level == ["crysgnn_dgl"]
    assert "crysgnn_dgl/adapters/__init__.py" in names
    assert "crysgnn_dgl/py.typed" in names  # PEP 561: the package's type hints are used
    assert not any(name.startswith("adapters/") for name in names)
    assert "crysgnn-dgl = crysgnn_dgl.cli:main" in entry_points
    for module in ("graph/builder.py", "models/crysgnn.py", "checkpoint.py", "teacher.py",
                   "_dgl_guard.py", "startup_hook.py", "cli/doctor.py"):
        assert f"crysgnn_dgl/{module}" in names


def test_requirements_never_pin_torch_or_dgl(built):
    with zipfile.ZipFile(built["wheel"]) as wheel:
        meta = wheel.read(next(n for n in wheel.namelist() if n.endswith("METADATA"))).decode()
    requires = Parser().parsestr(meta).get_all("Requires-Dist")
    core = [r for r in requires if "extra ==" not in r]
    assert "torch" in core and "dgl" in core  # bare names: any installed build satisfies them
    assert not any(r.startswith(("torch", "dgl")) and r not in ("torch", "dgl") for r in core)
    assert any(r.startswith("matgl") and "<4" in r and 'extra == "matgl"' in r for r in requires)
    assert any(r.startswith("alignn") and 'extra == "alignn"' in r for r in requires)


def test_sdist_contains_package_and_adapters(built):
    with tarfile.open(built["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for needed in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE", "adapters/__init__.py",
                   "crysgnn_dgl/__init__.py", "crysgnn_dgl/graph/neighbors.py"):
        assert needed in names


def test_install_with_extras_leaves_torch_and_dgl_untouched(built):
    report = built["root"] / "install-report.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report),
           f"{built['wheel']}[alignn,matgl]"]
    process = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if process.returncode != 0 or not report.is_file():
        pytest.fail(
            "pip could not resolve the package with its alignn and matgl extras against this "
            "environment (is the package index reachable?)\n"
            f"{' '.join(cmd)}\n{process.stdout[-3000:]}\n{process.stderr[-3000:]}"
        )
    planned = {
        item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert "crysgnn-dgl" in planned
    assert "torch" not in planned, f"pip would install torch {planned.get('torch')}"
    assert "dgl" not in planned, f"pip would install dgl {planned.get('dgl')}"


def test_installed_wheel_imports_adapters_under_the_package(built):
    target = built["root"] / "target"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
          str(built["wheel"])], built["root"], "installing the wheel into a folder")
    assert (target / "crysgnn_dgl" / "adapters" / "__init__.py").is_file()
    assert not (target / "adapters").exists()
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import crysgnn_dgl.adapters as a; "
        "print(a.__file__)"
    )
    process = _run([sys.executable, "-c", code, str(target)], built["root"], "importing the adapters")
    assert Path(process.stdout.strip()).is_relative_to(target)


def test_wheel_ships_the_m3gnet_teacher_weights_with_their_licence(built):
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    folder = "crysgnn_dgl/data/m3gnet/"
    for name in ("LICENSE", "SOURCE_COMMIT", "NOTICE.md", "M3GNet-MP-2021.2.8-PES/model.json",
                 "M3GNet-MP-2021.2.8-PES/state.pt", "M3GNet-MP-2021.2.8-PES/README.md"):
        assert folder + name in names, name
    assert "crysgnn_dgl/teachers/m3gnet.py" in names


def test_chgnet_extra_leaves_torch_untouched(built):
    report = built["root"] / "install-report-chgnet.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report),
           f"{built['wheel']}[chgnet]"]
    process = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if process.returncode != 0 or not report.is_file():
        pytest.fail(f"pip could not resolve the chgnet extra\n{process.stdout[-3000:]}\n{process.stderr[-3000:]}")
    planned = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert "torch" not in planned and "dgl" not in planned
