"""The :class:`Adapter` interface between the distillation hook and one kind of predictor,
and the registry that ``attach_teacher(model, adapter=...)`` looks adapters up in.

An adapter names the layer whose per-atom output is the student embedding (a
:class:`HookPoint`), the student's width when it is known before the first forward, and
how to turn the inputs of the student's forward into a :class:`CrystalBatch` for the
teacher. Adapters of the predictors the package knows live in :mod:`crysgnn_dgl.adapters`;
:func:`register_adapter` adds one without editing the package.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

from torch import nn

from ..graph.atom_features import FEATURE_DIM
from ..teacher import FrozenTeacher
from .targets import CrystalBatch


class AdapterError(ValueError):
    """The model, its batch or the teacher cannot be used with the chosen adapter."""


@dataclass(frozen=True)
class HookPoint:
    """Where the student's per-atom embeddings appear.

    Attributes:
        module: the layer.
        name: its qualified name in the student, for messages.
        position: ``"output"`` (the layer returns them) or ``"input"`` (it receives them).
        index: position inside a tuple output / the positional arguments (``None``: the
            output itself is the tensor).
    """

    module: nn.Module
    name: str
    position: Literal["output", "input"] = "output"
    index: int | None = None


def reads_crysgnn_graphs(teacher: Any) -> bool:
    """Whether the teacher is a CrysGNN one (reads CrysGNN graphs, not structures)."""
    return isinstance(teacher, FrozenTeacher)


def require_release_features(teacher: Any) -> None:
    """A CrysGNN teacher must read the 92-d CGCNN atom features."""
    width = teacher.model_settings.atom_input_dim
    if width != FEATURE_DIM:
        raise AdapterError(
            f"the teacher expects {width}-d atom features; this adapter gives it the "
            f"{FEATURE_DIM}-d CGCNN features"
        )


class Adapter(abc.ABC):
    """How the distillation hook reads one kind of predictor (subclass it and
    :func:`register_adapter` it; only :meth:`hook_point` and :meth:`crystal_batch` are
    required).

    Attributes:
        name: the name it is registered under (shown in messages and ``repr(hook)``).
    """

    name: str = "adapter"

    @classmethod
    def matches(cls, model: Any) -> bool:
        """Whether this adapter recognises ``model`` (used by ``adapter="auto"``)."""
        return False

    def student(self, model: Any) -> nn.Module:
        """The module whose forward receives the batch and which owns the projection head."""
        return model

    @abc.abstractmethod
    def hook_point(self, student: nn.Module) -> HookPoint:
        """The layer whose output (or input) are the per-atom embeddings."""

    def student_width(self, student: nn.Module) -> int | None:
        """Width of the per-atom embeddings if known before the first forward."""
        return None

    def check_teacher(self, student: nn.Module, teacher: Any) -> None:
        """Raise :class:`AdapterError` if the teacher's featuriser differs from what this
        adapter gives it (CrysGNN teachers; teachers reading structures need nothing more)."""
        if reads_crysgnn_graphs(teacher):
            require_release_features(teacher)

    @abc.abstractmethod
    def crystal_batch(self, student: nn.Module, args: tuple, kwargs: dict, teacher: Any) -> CrystalBatch:
        """Teacher inputs for the batch passed as ``student(*args, **kwargs)``."""

    def on_attach(self, model: Any, hook: Any) -> None:
        """Extra wiring (e.g. metric logging) after the hook is registered."""

    def on_remove(self, model: Any, hook: Any) -> None:
        """Undo :meth:`on_attach`."""


A = TypeVar("A", bound=type[Adapter])

#: adapter name -> class or ``"module:Class"`` (loaded on first use); ``"auto"`` tries
#: adapters registered with :func:`register_adapter` first, then these, in this order
ADAPTERS: dict[str, type[Adapter] | str] = {
    "alignn": "crysgnn_dgl.adapters.alignn:ALIGNNAdapter",
    "megnet": "crysgnn_dgl.adapters.megnet:MEGNetAdapter",
    "cgcnn": "crysgnn_dgl.adapters.cgcnn:CGCNNPortAdapter",
    "cgcnn_original": "crysgnn_dgl.adapters.cgcnn:CGCNNSignatureAdapter",
    "gatgnn": "crysgnn_dgl.adapters.gatgnn:GATGNNAdapter",
}
_BUILT_IN = tuple(ADAPTERS)


@overload
def register_adapter(name: str, cls: None = None, *, replace: bool = False) -> Callable[[A], A]: ...
@overload
def register_adapter(name: str, cls: A, *, replace: bool = False) -> A: ...
def register_adapter(name: str, cls: A | None = None, *, replace: bool = False) -> A | Callable[[A], A]:
    """Register the :class:`Adapter` subclass ``cls`` as ``name``, so that
    ``attach_teacher(model, adapter=name)`` uses it and ``adapter="auto"`` tries its
    :meth:`~Adapter.matches` (before the built-in adapters).

    Without ``cls`` it returns a class decorator. A name already taken is refused unless
    ``replace=True``. A class without its own ``name`` attribute gets ``name``. Returns ``cls``.
    """
    def register(adapter: A) -> A:
        if not isinstance(name, str) or not name or name == "auto":
            raise ValueError(f"an adapter name must be a non-empty string other than 'auto', got {name!r}")
        if not (isinstance(adapter, type) and issubclass(adapter, Adapter)):
            raise TypeError(f"register_adapter({name!r}, ...) needs a subclass of crysgnn_dgl.Adapter, got {adapter!r}")
        if name in ADAPTERS and not replace and ADAPTERS[name] is not adapter:
            raise ValueError(f"an adapter is already registered as {name!r}; pass replace=True to replace it")
        if "name" not in vars(adapter):  # shown in messages and repr(hook)
            adapter.name = name
        ADAPTERS[name] = adapter
        return adapter

    return register if cls is None else register(cls)


def adapter_class(name: str) -> type[Adapter]:
    """The adapter class registered as ``name``."""
    if name not in ADAPTERS:
        raise ValueError(f"unknown adapter {name!r}; choose one of {sorted(ADAPTERS)} or 'auto'")
    entry = ADAPTERS[name]
    if isinstance(entry, str):
        module, cls = entry.split(":")
        entry = ADAPTERS[name] = getattr(importlib.import_module(module), cls)
    return entry


def _auto_order() -> list[str]:
    return [n for n in ADAPTERS if n not in _BUILT_IN] + [n for n in _BUILT_IN if n in ADAPTERS]


def resolve_adapter(model: Any, adapter: str | Adapter | type[Adapter] = "auto") -> Adapter:
    """An adapter instance for ``model``: detected (``"auto"``), named, or given as a
    class or an instance."""
    if not isinstance(adapter, str):
        return adapter() if isinstance(adapter, type) else adapter
    if adapter != "auto":
        cls = adapter_class(adapter)
        if not cls.matches(model):
            described = (cls.__doc__ or cls.__name__).strip().splitlines()[0]
            raise ValueError(
                f"adapter {adapter!r} does not match a {type(model).__module__}.{type(model).__name__}; "
                f"it handles {described}"
            )
        return cls()
    for name in _auto_order():
        cls = adapter_class(name)
        if cls.matches(model):
            return cls()
    raise ValueError(
        f"no adapter recognises {type(model).__module__}.{type(model).__name__}; pass adapter= one of "
        f"{sorted(ADAPTERS)} or an Adapter instance, or register one with crysgnn_dgl.register_adapter"
    )
