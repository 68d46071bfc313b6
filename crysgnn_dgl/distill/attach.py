"""``attach_teacher``: one call that makes a predictor's own loop distil the teacher."""

from __future__ import annotations

import os
from typing import Any, Literal

from ..teacher import FrozenTeacher, load_teacher
from ..teachers.protocol import Teacher
from .adapter import Adapter, resolve_adapter
from .cache import EmbeddingCache, make_cache
from .hook import DistillHook
from .settings import DistillSettings

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
    adapter: str | Adapter | type[Adapter] = "auto",
    delta: float | None = None,
    projection: Literal["identity", "linear", "mlp"] | None = None,
    cache: bool | str | os.PathLike | EmbeddingCache | None = True,
    normalize: bool | None = None,
    mode: Literal["backward", "explicit"] | None = None,
    mlp_hidden: int | None = None,
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
            ``cgcnn_original``, ``gatgnn``, or one given to :func:`register_adapter`), or
            an :class:`Adapter` class or instance.
        delta: ``δ`` in ``(0, 1]``. Default: the teacher's ``recommended_kd_weight``
            (``δ = 1/(1 + λ)``): what a CrysGNN checkpoint records (``λ = 100`` for the
            default teacher), else ``λ = 1`` (``δ = 0.5``); ``λ = 100`` for M3GNet and CHGNet;
            the weights chosen on validation (``docs/benchmarks.md``).
        projection: ``"linear"`` (default), ``"mlp"`` or ``"identity"`` head (registered on
            the model as ``crysgnn_distill_head``; created lazily if the width is unknown).
        cache: ``True`` (in memory), a file path (SQLite, shareable between runs),
            an :class:`EmbeddingCache`, or ``False``/``None``.
        normalize: L2-normalise projected student embeddings (``None``: when the targets
            are L2-normalised, as the teacher's are by default).
        mode: ``"backward"`` (default: KD enters through ``loss.backward()``) or
            ``"explicit"`` (add ``hook.kd_loss()`` yourself).
        mlp_hidden: hidden width of the MLP head (default 128).
        grad_scaler: the ``GradScaler`` the loop scales its loss with, if any (the
            matgl/Lightning adapter finds Lightning's own).
        settings: a :class:`DistillSettings` giving ``delta`` … ``mlp_hidden`` (and the
            target normalisation, KD loss and controls; see its fields). A keyword given
            as well must agree with it (``ValueError`` otherwise).
    """
    frozen = resolve_teacher(teacher)
    if settings is None and delta is None:
        delta = 1.0 / (1.0 + float(getattr(frozen, "recommended_kd_weight", 1.0)))
    settings = _merged_settings(settings, delta=delta, projection=projection, mlp_hidden=mlp_hidden,
                                normalize=normalize, mode=mode)
    chosen = resolve_adapter(model, adapter)
    return DistillHook(model, frozen, chosen, settings, cache=make_cache(cache), grad_scaler=grad_scaler)


def _merged_settings(settings: DistillSettings | None, **keywords: Any) -> DistillSettings:
    """``settings`` (default: :class:`DistillSettings`) with the keywords that were given
    (not ``None``); a keyword that contradicts ``settings`` is an error, not overridden."""
    given = {name: value for name, value in keywords.items() if value is not None}
    if settings is None:
        return DistillSettings(**given)
    conflicts = {name: value for name, value in given.items() if getattr(settings, name) != value}
    if conflicts:
        listed = ", ".join(f"{name}={value!r} (settings: {getattr(settings, name)!r})" for name, value in conflicts.items())
        raise ValueError(f"attach_teacher: keyword(s) contradict settings=: {listed}; give each value once")
    return settings
