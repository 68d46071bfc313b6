"""Pre-training CrysGNN at scale: structure sources, an on-disk graph cache, streaming
data, the four pre-training objectives and a Lightning training loop."""

from .cache import CacheReport, build_cache
from .export import export_teacher
from .dataset import GraphCache, collate_records
from .objectives import ObjectiveSettings, nt_xent_loss, pretraining_losses
from .sources import StructureSource, open_source

__all__ = [
    "CacheReport",
    "GraphCache",
    "ObjectiveSettings",
    "StructureSource",
    "build_cache",
    "collate_records",
    "export_teacher",
    "nt_xent_loss",
    "open_source",
    "pretraining_losses",
]
