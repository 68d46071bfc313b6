"""Named teachers: ``load_teacher("m3gnet")``, ``attach_teacher(model, teacher="m3gnet:gc_2")``,
``crysgnn-dgl bench --teacher m3gnet``.

A name may carry a variant after a colon (``m3gnet:gc_2``: M3GNet's second block); the
factory receives it as its first argument. Third parties can register their own factory
with :func:`register_teacher` (or pass a teacher object directly to ``attach_teacher``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

#: name -> factory, or "module:function" imported on first use
_TEACHERS: dict[str, Callable[..., Any] | str] = {
    "m3gnet": "crysgnn_dgl.teachers.m3gnet:load_m3gnet",
    "chgnet": "crysgnn_dgl.teachers.chgnet:load_chgnet",
}


def register_teacher(name: str, factory: Callable[..., Any]) -> None:
    """Make ``factory(variant=None, device="cpu", **options)`` loadable as ``name``."""
    if not name or ":" in name or os.sep in name:
        raise ValueError(f"a teacher name is a plain word without ':' or path separators, not {name!r}")
    _TEACHERS[name] = factory


def teacher_names() -> list[str]:
    """The registered teacher names."""
    return sorted(_TEACHERS)


def split_teacher_name(spec: str) -> tuple[str, str | None]:
    """``"m3gnet:gc_2"`` → ``("m3gnet", "gc_2")``; ``"m3gnet"`` → ``("m3gnet", None)``."""
    name, _, variant = spec.partition(":")
    return name, variant or None


def is_teacher_name(value: Any) -> bool:
    """Whether ``value`` names a registered teacher (rather than a checkpoint path)."""
    if not isinstance(value, str):
        return False
    return split_teacher_name(value)[0] in _TEACHERS and os.sep not in value


def _factory(name: str) -> Callable[..., Any]:
    factory = _TEACHERS[name]
    if isinstance(factory, str):
        module, function = factory.split(":")
        factory = getattr(importlib.import_module(module), function)
    return factory


def load_named_teacher(spec: str, device: str | Any = "cpu", **options: Any) -> Any:
    """The frozen teacher ``spec`` names (``name`` or ``name:variant``)."""
    name, variant = split_teacher_name(spec)
    if name not in _TEACHERS:
        raise ValueError(f"unknown teacher {name!r}; choose from {teacher_names()} or give a checkpoint path")
    factory = _factory(name)
    if variant is not None:
        return factory(variant, device=device, **options)
    return factory(device=device, **options)
