"""``attach_teacher``: one call that makes a predictor's own loop distil the teacher."""

from __future__ import annotations

import importlib
import os
from typing import Any

from ..teacher import FrozenTeacher, load_teacher
from ..teachers.protocol import Teacher
from .cache import EmbeddingCache, make_cache
from .hook import DistillHook
from .settings import DistillSettings

#: adapter name -> "module:Class"; ``"auto"`` tries them in this order.
ADAPTERS = {
    "alignn": "crysgnn_dgl.adapters.alignn:ALIGNNAdapter",
    "megnet": "crysgnn_dgl.adapters.megnet:MEGNetAdapter",
    "cgcnn": "crysgnn_dgl.adapters.cgcnn:CGCNNPortAdapter",
    "cgcnn_original": "crysgnn_dgl.adapters.cgcnn:CGCNNSignatureAdapter",
    "gatgnn": "crysgnn_dgl.adapters.gatgnn:GATGNNAdapter",
}


def adapter_class(name: str) -> type:
    """The adapter class registered as ``name``."""
    if name not in ADAPTERS:
        raise ValueError(f"unknown adapter {name!r}; choose one of {sorted(ADAPTERS)} or 'auto'")
    module, cls = ADAPTERS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def resolve_adapter(model: Any, adapter: Any = "auto") -> Any:
    """An adapter instance for ``model``: detected, named, or given as an instance."""
    if not isinstance(adapter, str):
        return adapter() if isinstance(adapter, type) else adapter
    if adapter != "auto":
        cls = adapter_class(adapter)
        if not cls.matches(model):
            raise ValueError(
                f"adapter {adapter!r} does not match a {type(model).__module__}.{type(model).__name__}; "
                f"it handles {cls.__doc__.strip().splitlines()[0]}"
            )
        return cls()
    for name in ADAPTERS:
        cls = adapter_class(name)
        if cls.matches(model):
            return cls()
    raise ValueError(
        f"no adapter recognises {type(model).__module__}.{type(model).__name__}; pass adapter= one of "
        f"{sorted(ADAPTERS)} or an Adapter instance"
    )


def resolve_teacher(teacher: Any) -> Teacher:
    """``None`` → bundled CrysGNN teacher; a name (``"m3gnet"``) or checkpoint path →
    loaded; a :class:`FrozenTeacher` or any object implementing the
    :class:`~crysgnn_dgl.teachers.Teacher` protocol → as is."""
    if teacher is None or isinstance(teacher, (str, os.PathLike)):
        return load_teacher(teacher)
    if isinstance(teacher, (FrozenTeacher, Teacher)):
        return teacher
    raise TypeError(
        f"teacher must be None, a teacher name, a checkpoint path or an object implementing the Teacher "
        f"protocol (embedding_dim, fingerprint, key_fields, embed_batch), not {type(teacher).__name__}"
    )


def attach_teacher(
    model: Any,
    teacher: Any = None,
    adapter: Any = "auto",
    delta: float = 0.5,
    projection: str = "linear",
    cache: bool | str | os.PathLike | EmbeddingCache | None = True,
    normalize: bool | None = None,
    mode: str = "backward",
    mlp_hidden: int = 128,
    grad_scaler: Any = None,
    settings: DistillSettings | None = None,
) -> DistillHook:
    """Attach a frozen teacher (CrysGNN by default) so that the model's own training loop,
    unmodified, optimises ``L + λ·KD``.

    ``λ = (1 − δ)/δ`` (``delta=0.5`` → ``λ = 1``). This is the paper's
    ``δ·L + (1 − δ)·KD`` divided by ``δ``: the loop's own loss ``L`` is *not* multiplied by
    ``δ`` (it belongs to the loop), so gradients are ``∇L + λ·∇KD`` — the paper's
    objective with the learning rate scaled by ``1/δ``. ``delta=1`` disables KD.

    Attach *before* ``torch.compile`` (the hook then runs eagerly, a graph break at the
    hooked layer) and before wrapping in ``DistributedDataParallel`` (every process
    attaches its own hook; the KD gradient is all-reduced with the rest). See
    ``docs/distillation.md`` for mixed precision, caching and what each batch must carry.

    Args:
        model: the predictor (ALIGNN/ALIGNNAtomWise, matgl MEGNet or its
            ``ModelLightningModule``, crysgnn_dgl CGCNN/GATGNN ports, or a module with the
            original CGCNN ``(atom_fea, nbr_fea, nbr_fea_idx, crystal_atom_idx)`` signature).
        teacher: ``None`` for the CrysGNN teacher bundled with the package, a CrysGNN
            checkpoint path, a teacher name (``"m3gnet"``, ``"m3gnet:gc_2"``), a
            :class:`~crysgnn_dgl.FrozenTeacher`, or any object implementing the
            :class:`~crysgnn_dgl.teachers.Teacher` protocol.
        adapter: ``"auto"``, a name (``alignn``, ``megnet``, ``cgcnn``,
            ``cgcnn_original``, ``gatgnn``) or an Adapter instance.
        delta: ``δ`` in ``(0, 1]``.
        projection: ``"linear"``, ``"mlp"`` or ``"identity"`` head (registered on the
            model as ``crysgnn_distill_head``; created lazily if the width is unknown).
        cache: ``True`` (in memory), a file path (SQLite, shareable between runs),
            an :class:`EmbeddingCache`, or ``False``/``None``.
        normalize: L2-normalise projected student embeddings (``None``: when the targets
            are L2-normalised, as the teacher's are by default).
        mode: ``"backward"`` (KD enters through ``loss.backward()``) or ``"explicit"``
            (add ``hook.kd_loss()`` yourself).
        mlp_hidden: hidden width of the MLP head.
        grad_scaler: the ``GradScaler`` the loop scales its loss with, if any (the
            matgl/Lightning adapter finds Lightning's own).
        settings: a :class:`DistillSettings` replacing ``delta`` … ``mlp_hidden`` (and
            giving the target normalisation, KD loss and controls; see its fields).
    """
    settings = settings or DistillSettings(
        delta=delta, projection=projection, mlp_hidden=mlp_hidden, normalize=normalize, mode=mode
    )
    chosen = resolve_adapter(model, adapter)
    frozen = resolve_teacher(teacher)
    return DistillHook(model, frozen, chosen, settings, cache=make_cache(cache), grad_scaler=grad_scaler)
