"""Make DGL importable on PyTorch releases that DGL ships no compiled extras for.

DGL 2.1.0 ends ``dgl/__init__.py`` with ``from . import distributed``, which imports
``dgl.graphbolt``; graphbolt needs ``torchdata.datapipes`` and a shared library built
for the running torch version. Where either is missing, ``import dgl`` fails although
everything crysgnn_dgl, alignn and matgl use from DGL works. Registering an inert
placeholder module as ``dgl.graphbolt`` *before* the first ``import dgl`` lets DGL
import. Where torch has a matching graphbolt build nothing is changed.

This module must stay cheap: it is imported at interpreter start by the optional
``.pth`` start-up hook (see :mod:`crysgnn_dgl.startup_hook`), so it never imports torch
or dgl.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import types
from pathlib import Path

PLACEHOLDER_MODULE = "dgl.graphbolt"
PLACEHOLDER_MARKER = "__crysgnn_dgl_placeholder__"


def _package_dir(name: str) -> Path | None:
    """Folder of an installed top-level package, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def installed_torch_version() -> str | None:
    """Torch version string (without local tag such as ``+cpu``), read without importing torch."""
    folder = _package_dir("torch")
    if folder is None:
        return None
    version_file = folder / "version.py"
    try:
        match = re.search(r"__version__\s*=\s*['\"]([^'\"]+)['\"]", version_file.read_text())
    except OSError:
        match = None
    if match is None:
        try:
            from importlib.metadata import version

            return version("torch").split("+")[0]
        except Exception:
            return None
    return match.group(1).split("+")[0]


def _torchdata_has_datapipes() -> bool:
    folder = _package_dir("torchdata")
    return folder is not None and (folder / "datapipes").is_dir()


def graphbolt_usable() -> bool:
    """Whether the installed DGL's graphbolt can load for the installed torch.

    True when DGL has no graphbolt at all (older DGL), or when both its
    ``libgraphbolt_pytorch_<torch>.so`` and ``torchdata.datapipes`` exist.
    """
    dgl_dir = _package_dir("dgl")
    if dgl_dir is None:
        return True
    graphbolt_dir = dgl_dir / "graphbolt"
    if not graphbolt_dir.is_dir():
        return True
    torch_version = installed_torch_version()
    if torch_version is None:
        return True
    libraries = list(graphbolt_dir.glob(f"*graphbolt_pytorch_{torch_version}.*"))
    return bool(libraries) and _torchdata_has_datapipes()


def placeholder_active() -> bool:
    """Whether the inert ``dgl.graphbolt`` placeholder is registered in this interpreter."""
    module = sys.modules.get(PLACEHOLDER_MODULE)
    return bool(getattr(module, PLACEHOLDER_MARKER, False))


def install_placeholder() -> bool:
    """Register the placeholder if DGL needs it and has not been imported yet.

    Returns whether the placeholder is active afterwards.
    """
    os.environ.setdefault("DGLBACKEND", "pytorch")
    if placeholder_active():
        return True
    if "dgl" in sys.modules or PLACEHOLDER_MODULE in sys.modules:
        return False
    if graphbolt_usable():
        return False
    module = types.ModuleType(
        PLACEHOLDER_MODULE,
        "Inert stand-in registered by crysgnn_dgl: DGL's graphbolt has no build for this torch.",
    )
    setattr(module, PLACEHOLDER_MARKER, True)
    module.__path__ = []  # behave as a package so submodule look-ups fail cleanly
    sys.modules[PLACEHOLDER_MODULE] = module
    return True


def repair_optional_importers() -> list[str]:
    """Give modules that imported DGL optionally (``dgl = None`` on failure) the real one.

    alignn wraps ``import dgl`` in ``try/except`` and keeps ``dgl = None`` when DGL fails
    to import, e.g. because alignn was imported before the placeholder existed. Returns
    the names of the modules repaired.
    """
    dgl = sys.modules.get("dgl")
    if dgl is None:
        return []
    repaired = []
    for name, module in list(sys.modules.items()):
        if not name.startswith(("alignn", "matgl")) or module is None:
            continue
        if "dgl" in getattr(module, "__dict__", {}) and module.__dict__["dgl"] is None:
            module.__dict__["dgl"] = dgl  # the module's globals, as tested above
            repaired.append(name)
    return repaired
