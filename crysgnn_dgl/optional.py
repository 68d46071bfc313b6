"""Optional dependencies: one clear error naming what to install."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingDependencyError(ImportError, ValueError):
    """An optional dependency is not installed (a ``ValueError`` too, so the command line
    reports it as one line the user can fix)."""


def require(module: str, purpose: str, install: str) -> ModuleType:
    """``import module``, or :class:`MissingDependencyError` saying ``pip install <install>``."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(f"{purpose} needs {module}, which is not installed: pip install '{install}'") from error
