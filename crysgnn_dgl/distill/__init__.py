"""Distillation of the frozen CrysGNN teacher into predictors through their own loops."""

from .attach import ADAPTERS, attach_teacher, resolve_adapter, resolve_teacher
from .cache import DiskEmbeddingCache, EmbeddingCache, make_cache
from .hook import HEAD_NAME, DistillHook
from .settings import DistillSettings
from .targets import AtomOrderError, CrystalBatch

__all__ = [
    "ADAPTERS",
    "AtomOrderError",
    "CrystalBatch",
    "DiskEmbeddingCache",
    "DistillHook",
    "DistillSettings",
    "EmbeddingCache",
    "HEAD_NAME",
    "attach_teacher",
    "make_cache",
    "resolve_adapter",
    "resolve_teacher",
]
