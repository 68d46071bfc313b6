"""Pre-training CrysGNN at scale: structure sources, an on-disk graph cache, streaming
data, the four pre-training objectives and a Lightning training loop.

Public names load on first use, so that the command line can read the settings in
:mod:`crysgnn_dgl.pretrain.settings` without importing torch.
"""

from __future__ import annotations

from typing import Any

from .._lazy import lazy_attributes

_PUBLIC = {
    "CacheReport": "cache",
    "build_cache": "cache",
    "export_teacher": "export",
    "GraphCache": "dataset",
    "collate_records": "dataset",
    "ObjectiveSettings": "settings",
    "OptimizerSettings": "settings",
    "PretrainSettings": "settings",
    "nt_xent_loss": "objectives",
    "pretraining_losses": "objectives",
    "StructureSource": "sources",
    "open_source": "sources",
}

__all__ = sorted(_PUBLIC)


_load = lazy_attributes(__name__, _PUBLIC)


def __getattr__(name: str) -> Any:
    return _load(name)
