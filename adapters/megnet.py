"""MEGNet adapter: matgl's DGL ``MEGNet`` (matgl < 4, ``MATGL_BACKEND=DGL``), directly or
wrapped in matgl's ``ModelLightningModule``.

Per-atom embeddings: output[1] of ``blocks[-1]`` (``(edge, node, state)``). The teacher's
graphs are rebuilt from ``g.ndata["node_type"]`` (an index into ``model.element_types``),
``g.ndata["frac_coords"]`` and the lattice: the ``lat`` argument of
``ModelLightningModule.forward`` when attached to the Lightning module, else the per-edge
copy ``g.edata["lattice"]`` that it stores on the graph; ``hook.warm`` takes dicts
``{"g": graph, "lat": lattices}`` (the Lightning module's forward arguments). Attached to
the Lightning module, the KD value is logged
as ``train_KD`` and Lightning's gradient scaler (16-bit mixed precision) scales the KD
seed like the loss.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
from torch import nn

from crysgnn_dgl.distill.targets import CrystalBatch
from crysgnn_dgl.graph.atom_features import atom_feature_table

from .base import Adapter, AdapterError, HookPoint, batch_from_arrays, class_names, first_tensor_arg, graph_settings_of

MEGNET_CLASSES = {"matgl.models._megnet_dgl.MEGNet"}
LIGHTNING_CLASSES = {"matgl.utils.training.ModelLightningModule"}
KD_METRIC = "train_KD"


def _is_megnet(model: Any) -> bool:
    return bool(MEGNET_CLASSES & class_names(model))


@lru_cache(maxsize=8)
def _numbers(element_types: tuple[str, ...]) -> torch.Tensor:
    """Atomic number of each entry of ``element_types`` (node_type → Z)."""
    from pymatgen.core.periodic_table import Element

    return torch.tensor([Element(symbol).Z for symbol in element_types], dtype=torch.int64)


@lru_cache(maxsize=8)
def _feature_rows(element_types: tuple[str, ...]) -> torch.Tensor:
    """CGCNN feature row of each entry of ``element_types`` (node_type → features)."""
    numbers = _numbers(element_types).numpy()
    table = atom_feature_table()
    if numbers.max() >= table.shape[0]:
        raise AdapterError(f"element_types include Z = {numbers.max()}, beyond the CGCNN table (Z ≤ {table.shape[0] - 1})")
    return torch.from_numpy(table[numbers].copy())


def _lattices(graph: Any, captured: torch.Tensor | None) -> torch.Tensor:
    if captured is not None:
        return captured.detach().reshape(-1, 3, 3)
    if "lattice" not in graph.edata:
        raise AdapterError(
            "the MEGNet batch graph has no edata['lattice'] (matgl's ModelLightningModule.forward sets "
            "it from the lattice tensor); the teacher's graphs cannot be rebuilt"
        )
    edges = graph.batch_num_edges()
    if bool((edges == 0).any()):
        crystal = int((edges == 0).nonzero()[0])
        raise AdapterError(f"crystal #{crystal} of the MEGNet batch has no bonds, so its lattice is not in the batch")
    first_edge = torch.cumsum(edges, 0) - edges
    return graph.edata["lattice"][first_edge].reshape(-1, 3, 3)


class MEGNetAdapter(Adapter):
    """matgl.models.MEGNet (DGL backend) or a matgl ModelLightningModule wrapping it."""

    name = "megnet"

    def __init__(self) -> None:
        self._lattice: torch.Tensor | None = None
        self._handles: list[Any] = []

    @classmethod
    def matches(cls, model: Any) -> bool:
        if LIGHTNING_CLASSES & class_names(model):
            return _is_megnet(getattr(model, "model", None))
        return _is_megnet(model)

    def student(self, model: Any) -> nn.Module:
        return model.model if LIGHTNING_CLASSES & class_names(model) else model

    def hook_point(self, student: nn.Module) -> HookPoint:
        if not len(student.blocks):
            raise AdapterError("this MEGNet has no blocks: no per-atom embeddings to distil")
        return HookPoint(student.blocks[-1], f"blocks.{len(student.blocks) - 1}", "output", 1)

    def student_width(self, student: nn.Module) -> int | None:
        linears = [m for m in student.blocks[-1].conv.node_func.modules() if isinstance(m, nn.Linear)]
        return linears[-1].out_features if linears else None

    def crystal_batch(self, student: nn.Module, args: tuple, kwargs: dict, teacher: Any) -> CrystalBatch:
        graph = first_tensor_arg(args, kwargs, "g", 0)
        for needed in ("node_type", "frac_coords"):
            if needed not in graph.ndata:
                raise AdapterError(f"the MEGNet batch graph has no ndata[{needed!r}]; the teacher's graphs cannot be rebuilt")
        node_type = graph.ndata["node_type"].long().cpu()
        features = _feature_rows(tuple(student.element_types))[node_type]
        lattice = self._lattice if self._lattice is not None else kwargs.get("lat")
        return batch_from_arrays(
            features, graph.ndata["frac_coords"], _lattices(graph, lattice), graph.batch_num_nodes().tolist(),
            graph_settings_of(teacher), atomic_numbers=_numbers(tuple(student.element_types))[node_type],
        )

    def on_attach(self, model: Any, hook: Any) -> None:
        if not LIGHTNING_CLASSES & class_names(model):
            return

        def capture(module, args, kwargs):
            self._lattice = kwargs.get("lat", args[1] if len(args) > 1 else None)

        def release(module, args, output):
            self._lattice = None

        self._handles = [
            model.register_forward_pre_hook(capture, with_kwargs=True),
            model.register_forward_hook(release, always_call=True),
        ]
        original = model.configure_callbacks

        def configure_callbacks():
            callbacks = list(original() or [])
            return [*callbacks, kd_logging_callback(hook)]

        model.configure_callbacks = configure_callbacks

    def on_remove(self, model: Any, hook: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if "configure_callbacks" in vars(model):
            del model.configure_callbacks


def kd_logging_callback(hook: Any):
    """Lightning callback: logs ``train_KD`` after every training batch (epoch mean, like
    matgl's own metrics; ``hook.kd_mean`` restarts each epoch) and hands
    Lightning's gradient scaler (if any) to the hook."""
    import lightning.pytorch as pl

    class KDLogger(pl.Callback):
        def on_fit_start(self, trainer, pl_module) -> None:
            scaler = getattr(trainer.precision_plugin, "scaler", None)
            if scaler is not None and hook.grad_scaler is None:
                hook.grad_scaler = scaler

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            hook.reset_kd_mean()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if hook.last_kd is not None and not hook.removed:
                pl_module.log(
                    KD_METRIC, hook.last_kd, on_step=False, on_epoch=True, prog_bar=True,
                    batch_size=max(1, hook.last_batch_size),
                )

    return KDLogger()
