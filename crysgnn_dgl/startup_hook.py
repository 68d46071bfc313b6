"""Install or remove the ``.pth`` start-up hook that keeps DGL importable everywhere.

Importing :mod:`crysgnn_dgl` first is enough inside one interpreter. The hook covers
the rest: a script that imports alignn or matgl before crysgnn_dgl, and DataLoader
worker processes started with ``spawn``, which re-import everything from scratch. The
hook file holds one line that runs :func:`crysgnn_dgl._dgl_guard.install_placeholder`
at interpreter start; it reads versions from the file system and never imports torch.
"""

from __future__ import annotations

import site
import sysconfig
from pathlib import Path

HOOK_FILENAME = "crysgnn_dgl_dgl_guard.pth"
# Runs the guard module by file path, so that neither the package's __init__ nor torch
# is imported at every interpreter start; does nothing if the package was removed.
_HOOK_LINE = (
    "import os, runpy; _p = {path!r}; "
    "os.path.isfile(_p) and runpy.run_path(_p)['install_placeholder']()\n"
)


def site_packages_dir() -> Path:
    """The ``site-packages`` folder of the running interpreter (virtualenv aware)."""
    return Path(sysconfig.get_paths()["purelib"])


def hook_path(target: Path | None = None) -> Path:
    """Where the hook file lives (or would live)."""
    return (target or site_packages_dir()) / HOOK_FILENAME


def hook_installed(target: Path | None = None) -> bool:
    """Whether the start-up hook file exists in ``target`` (default: this interpreter's)."""
    candidates = [hook_path(target)] if target else [hook_path()] + [
        Path(p) / HOOK_FILENAME for p in site.getsitepackages()
    ]
    return any(p.is_file() for p in candidates)


def install_hook(target: Path | None = None) -> Path:
    """Write the start-up hook into ``target`` (default: this interpreter's site-packages)."""
    guard_file = Path(__file__).with_name("_dgl_guard.py").resolve()
    path = hook_path(target)
    path.write_text(_HOOK_LINE.format(path=str(guard_file)))
    return path


def remove_hook(target: Path | None = None) -> bool:
    """Delete the start-up hook; returns whether a file was removed."""
    path = hook_path(target)
    if path.is_file():
        path.unlink()
        return True
    return False
