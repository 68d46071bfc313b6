"""``crysgnn-dgl doctor``: report the torch / DGL stack and fix what can be fixed."""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib import metadata

from .. import _dgl_guard, startup_hook

NAME = "doctor"
HELP = "Print torch/dgl/alignn/matgl versions and the state of the DGL compatibility layer."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--install-startup-hook",
        action="store_true",
        help="write a .pth file into this environment's site-packages so DGL imports in every "
        "interpreter (any import order, spawn workers); only needed where DGL has no build "
        "for the installed torch",
    )
    group.add_argument(
        "--remove-startup-hook", action="store_true", help="delete that .pth file again"
    )


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _probe_import(module: str) -> str:
    """Import ``module`` in a fresh interpreter (start-up hook active, crysgnn_dgl not imported)."""
    code = f"import {module}"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    if result.returncode == 0:
        return "ok"
    last = (result.stderr.strip().splitlines() or ["failed"])[-1]
    return f"FAILS: {last[:160]}"


def run(args: argparse.Namespace) -> int:
    if args.install_startup_hook:
        print(f"installed start-up hook: {startup_hook.install_hook()}")
    if args.remove_startup_hook:
        print(f"removed start-up hook: {startup_hook.remove_hook()}")

    print(f"python            {sys.version.split()[0]}  ({sys.executable})")
    for package in ("torch", "dgl", "alignn", "matgl", "pymatgen", "jarvis-tools", "numpy"):
        print(f"{package:<17} {_version(package)}")
    from .._version import __version__

    print(f"crysgnn_dgl       {__version__}")
    needs_guard = not _dgl_guard.graphbolt_usable()
    hook = startup_hook.hook_installed()
    print()
    print(f"DGL graphbolt build for this torch: {'no' if needs_guard else 'yes (or not needed)'}")
    print(f"compatibility layer needed:         {'yes' if needs_guard else 'no'}")
    print(f"compatibility layer active here:    {'yes' if _dgl_guard.placeholder_active() else 'no'}")
    print(f"start-up hook (.pth) installed:     {'yes' if hook else 'no'} ({startup_hook.hook_path()})")
    print(f"plain `import dgl` in a new interpreter: {_probe_import('dgl')}")

    problems = 0
    if _version("dgl") == "not installed":
        problems += 1
        print("\nPROBLEM: dgl is not installed. Install the DGL build that matches your torch "
              "(for torch > 2.2 on CPU: pip install dgl==2.1.0).")
    elif needs_guard and not hook:
        problems += 1
        print(
            "\nACTION: DGL has no graphbolt build for this torch. `import crysgnn_dgl` first "
            "works in one script, but alignn/matgl imported before it, and DataLoader workers "
            "started with 'spawn', need the start-up hook:\n"
            "    crysgnn-dgl doctor --install-startup-hook"
        )
    if problems == 0:
        print("\nAll good.")
    return 0 if problems == 0 else 1
