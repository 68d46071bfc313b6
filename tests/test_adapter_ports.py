"""Adapters for the package's CGCNN and GATGNN ports: the student's graph goes to the
teacher as it is, gradients equal loss + λ·KD, featuriser mismatches are refused."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from crysgnn_dgl import GraphSettings, attach_teacher, build_graph
from crysgnn_dgl.adapters.base import AdapterError
from crysgnn_dgl.backend import dgl
from crysgnn_dgl.models.cgcnn import CGCNN, CGCNNSettings
from crysgnn_dgl.models.gatgnn import GATGNN, GATGNNSettings

from _distill_fixtures import (
    Capture,
    assert_same_grads,
    explicit_gradients,
    mp_structures,
    parameter_grads,
    teacher_rows,
)

pytestmark = pytest.mark.filterwarnings("ignore:Issues encountered while parsing CIF")


@pytest.fixture(scope="module")
def crystals():
    structures = mp_structures(6)
    graph = dgl.batch([build_graph(s) for s in structures])
    return structures, graph, torch.linspace(-1, 1, len(structures))


def cgcnn():
    torch.manual_seed(0)
    return CGCNN(CGCNNSettings(atom_fea_len=16, n_conv=2, h_fea_len=16))


def gatgnn():
    torch.manual_seed(0)
    return GATGNN(GATGNNSettings(neurons=16, n_layers=2))


@pytest.mark.parametrize("make, name, point", [
    (cgcnn, "cgcnn", lambda m: Capture(m.convs[-1])),
    (gatgnn, "gatgnn", lambda m: Capture(m.global_attention, index=1, inputs=True)),
])
def test_mse_gradients_equal_loss_plus_lambda_kd(teacher, crystals, make, name, point):
    structures, graph, y = crystals
    model = make()
    hook = attach_teacher(model, teacher, cache=False)
    assert hook.adapter.name == name
    F.mse_loss(model(graph), y).backward()
    injected = parameter_grads(model)
    reference, _ = explicit_gradients(
        model, hook, lambda: point(model), lambda: F.mse_loss(model(graph), y),
        teacher_rows(teacher, structures), graph.batch_num_nodes().tolist(),
    )
    assert_same_grads(injected, reference)


def test_port_graph_is_handed_over_without_rebuilding(teacher, crystals):
    _, graph, y = crystals
    model = cgcnn()
    hook = attach_teacher(model, teacher, cache=False)
    seen = []
    original = hook.teacher.embed
    hook.teacher.embed = lambda g, **options: seen.append(g) or original(g, **options)
    try:
        F.mse_loss(model(graph), y).backward()
    finally:
        del hook.teacher.embed
    assert seen == [graph]


def test_cache_slices_the_port_graph_for_misses(teacher, crystals):
    structures, graph, y = crystals
    model = cgcnn()
    hook = attach_teacher(model, teacher)
    part = dgl.batch([build_graph(s) for s in structures[:2]])
    model(part)
    assert hook.teacher_crystals == 2
    F.mse_loss(model(graph), y).backward()  # only the 4 new crystals go to the teacher
    assert hook.teacher_crystals == 6 and hook.teacher_calls == 2


@pytest.mark.parametrize("make", [cgcnn, gatgnn])
def test_featuriser_mismatch_is_refused_naming_both(teacher, make):
    model = make()
    model.graph_settings = GraphSettings(radius=6.0)
    with pytest.raises(AdapterError, match=r"radius: student 6.0 vs teacher 8.0"):
        attach_teacher(model, teacher)


def test_adapter_not_matching_is_refused(teacher):
    with pytest.raises(ValueError, match="adapter 'gatgnn' does not match"):
        attach_teacher(cgcnn(), teacher, adapter="gatgnn")
    with pytest.raises(ValueError, match="no adapter recognises"):
        attach_teacher(torch.nn.Linear(3, 3), teacher)
