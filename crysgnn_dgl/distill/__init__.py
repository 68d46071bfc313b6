"""Distillation of the frozen CrysGNN teacher into predictors through their own loops."""

from .adapter import ADAPTERS, Adapter, AdapterError, HookPoint, register_adapter, resolve_adapter
from .attach import attach_teacher, resolve_teacher
from .cache import DiskEmbeddingCache, EmbeddingCache, make_cache
from .hook import HEAD_NAME, DistillHook
from .settings import DistillSettings
from .targets import AtomOrderError, CrystalBatch

__all__ = [
    "ADAPTERS",
    "Adapter",
    "AdapterError",
    "HookPoint",
    "AtomOrderError",
    "CrystalBatch",
    "DiskEmbeddingCache",
    "DistillHook",
    "DistillSettings",
    "EmbeddingCache",
    "HEAD_NAME",
    "attach_teacher",
    "make_cache",
    "register_adapter",
    "resolve_adapter",
    "resolve_teacher",
]
