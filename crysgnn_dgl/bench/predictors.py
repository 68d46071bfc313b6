"""Predictors the benchmark trains: how each is built, featurised and batched.

A :class:`PredictorSpec` gives the model factory (called right after the run's seed is
set), the adapter that attaches the teacher, a featuriser ``(structure, id) -> tuple``
whose items are DGL graphs or tensors (stored on disk once per task), and a collate
function ``[(inputs, target)] -> (inputs, targets)``; the model is called as
``model(*inputs)`` and returns ``(B,)`` predictions (a wrapper may adapt its output)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..backend import dgl

if TYPE_CHECKING:
    from ..models.cgcnn import CGCNN
    from ..models.gatgnn import GATGNN


@dataclass(frozen=True)
class PredictorSpec:
    """One predictor of the benchmark (see the module docstring).

    Attributes:
        name: the ``--predictors`` name.
        adapter: the distillation adapter name for :func:`attach_teacher`.
        build: model factory.
        featurize: ``(structure input, id) -> tuple`` of graphs/tensors; raises
            :class:`~crysgnn_dgl.graph.errors.StructureError` for unusable structures.
        collate: batches ``[(inputs, target)]``.
        student: the module the teacher is attached to, given the built model.
        hyper: hyper-parameters recorded with every result.
        inputs_version: raised whenever the featuriser's output changes, so that stored
            inputs of an older version are rebuilt, never batched with new ones.
    """

    name: str
    adapter: str
    build: Callable[[], nn.Module]
    featurize: Callable[[Any, str], tuple]
    collate: Callable[[list], tuple]
    student: Callable[[nn.Module], nn.Module] = field(default=lambda model: model)
    hyper: dict = field(default_factory=dict)
    inputs_version: int = 1


def crysgnn_features(item: Any, structure_id: str) -> tuple:
    """``(graph,)``: the CrysGNN graph (the CGCNN and GATGNN ports read it)."""
    from ..graph.builder import build_graph

    return (build_graph(item, structure_id=structure_id),)


def collate_single_graph(samples: list) -> tuple:
    inputs, targets = zip(*samples)
    return (dgl.batch([item[0] for item in inputs]),), torch.stack(list(targets))


def _cgcnn() -> CGCNN:
    from ..models.cgcnn import CGCNN

    return CGCNN()


def _gatgnn() -> GATGNN:
    from ..models.gatgnn import GATGNN

    return GATGNN()


def _settings_of(factory: Callable[[], CGCNN | GATGNN]) -> dict:
    return factory().settings.to_dict()


PREDICTORS: dict[str, PredictorSpec] = {}


def register_predictor(spec: PredictorSpec) -> None:
    """Make ``spec`` available as ``--predictors spec.name``."""
    PREDICTORS[spec.name] = spec


#: version 2: the graphs carry ndata["lattice"] (teachers that read structures use it)
register_predictor(PredictorSpec("cgcnn", "cgcnn", _cgcnn, crysgnn_features, collate_single_graph, inputs_version=2))
register_predictor(PredictorSpec("gatgnn", "gatgnn", _gatgnn, crysgnn_features, collate_single_graph, inputs_version=2))


def predictor(name: str) -> PredictorSpec:
    if name not in PREDICTORS:
        raise ValueError(f"unknown predictor {name!r}; choose from {sorted(PREDICTORS)}")
    return PREDICTORS[name]

from . import predictors_dgl  # noqa: E402,F401 - registers megnet and alignn (imports them lazily)
