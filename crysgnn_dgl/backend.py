"""The one place that imports DGL: installs the graphbolt guard first, then repairs
modules (alignn) that imported DGL optionally before it could load."""

from __future__ import annotations

from ._dgl_guard import install_placeholder, repair_optional_importers

install_placeholder()

import dgl  # noqa: E402
import dgl.function as dgl_fn  # noqa: E402

repair_optional_importers()

__all__ = ["dgl", "dgl_fn"]
