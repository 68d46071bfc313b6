"""The CrysGNN teachers shipped with the package: the default loads with no argument, with
the depth and KD weight recorded for it; the earlier default stays loadable by name; both
frozen, small, weights-only, trained and described by a model card that matches them."""

from __future__ import annotations

import re

import pytest
import torch

from crysgnn_dgl import CrysGNN, attach_teacher, build_graph, load_teacher, read_checkpoint
from crysgnn_dgl.models import CGCNN
from crysgnn_dgl.teacher import BUNDLED_TEACHERS, DEFAULT_TEACHER, bundled_teacher_path, default_teacher_path


@pytest.fixture(scope="module", params=sorted(BUNDLED_TEACHERS))
def bundled(request):
    path = bundled_teacher_path(request.param)
    if not path.is_file():
        pytest.fail(f"the package ships no teacher {request.param!r} at {path}")
    return request.param, path


def test_the_default_is_the_denoising_teacher_at_its_recorded_depth(real_structures):
    assert DEFAULT_TEACHER == "crysgnn-denoise" and default_teacher_path() == bundled_teacher_path(DEFAULT_TEACHER)
    teacher = load_teacher()
    recorded = read_checkpoint(default_teacher_path()).training["distillation"]
    assert (teacher.depth, teacher.recommended_kd_weight) == (recorded["depth"], recorded["kd_weight"]) == (1, 100.0)
    assert load_teacher(depth=5).depth == 5  # an explicit depth wins over the recorded one
    structure = next(iter(real_structures.values()))
    graph = build_graph(structure, teacher.graph_settings)
    # independent computation: the weights loaded by hand, one convolution applied directly
    raw = torch.load(default_teacher_path(), map_location="cpu", weights_only=True)
    reference = CrysGNN()
    reference.load_state_dict(raw["state_dict"])
    reference.eval()
    with torch.no_grad():
        node = reference.embedding(graph.ndata["atom_features"])
        node = reference.convs[0](graph, node, reference.edge_expansion(graph.edata["distance"]))
    first, full = teacher.embed(graph), load_teacher(depth=5).embed(graph)
    assert first.shape == full.shape == (len(structure), 64)
    assert torch.allclose(first, node / node.norm(dim=1, keepdim=True), atol=1e-5)
    assert not torch.allclose(first, full, atol=1e-3)


def test_attach_teacher_takes_the_recorded_kd_weight(real_structures):
    hook = attach_teacher(CGCNN(), teacher=None)
    assert hook.kd_weight == pytest.approx(100.0)
    hook.remove()
    hook = attach_teacher(CGCNN(), teacher="crysgnn-multitask")
    assert hook.kd_weight == pytest.approx(1.0) and hook.teacher.depth is None
    hook.remove()


def test_unknown_bundled_name_is_refused_in_one_line():
    with pytest.raises(ValueError, match="no bundled teacher called 'crysgnn-nope'"):
        bundled_teacher_path("crysgnn-nope")


def test_bundled_teachers_load_frozen_by_name(bundled, real_structures):
    name, path = bundled
    teacher = load_teacher(name)
    assert teacher.training is False and teacher.embedding_dim == 64
    assert teacher.source == str(path)
    structures = list(real_structures.values())[:4]
    embeddings = teacher.embed_structures(structures)
    for structure, embedding in zip(structures, embeddings):
        assert embedding.shape == (len(structure), 64)
        assert torch.allclose(embedding.norm(dim=1), torch.ones(len(structure)), atol=1e-5)
        assert not embedding.requires_grad
    again = load_teacher(name).embed_structures(structures[:1])[0]
    assert torch.allclose(again, embeddings[0], atol=1e-5)  # alone vs in a batch


def test_bundled_checkpoints_are_small_weights_only_and_trained(bundled):
    name, path = bundled
    assert path.stat().st_size < 2_000_000
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["format"] == "crysgnn_dgl.checkpoint"
    assert all(v.dtype in (torch.float32, torch.int64) for v in raw["state_dict"].values())
    checkpoint = read_checkpoint(path)
    training = checkpoint.training
    assert training["epochs_completed"] >= 1 and "cache" not in training  # no machine paths
    metrics, objectives = training["metrics"], training["objectives"]
    if objectives["space_group_weight"]:  # far better than chance (1/230, 1/7) on held-out crystals
        assert metrics["val/space_group_accuracy"] > 0.15 and metrics["val/crystal_system_accuracy"] > 0.35
    if objectives.get("denoising_weight"):  # predicting 0 for the z-scored distances gives 1
        assert metrics["val/denoising"] < 0.3
    torch.manual_seed(0)
    untrained = CrysGNN().state_dict()
    assert not torch.equal(untrained["convs.0.fc_full.weight"], checkpoint.state_dict["convs.0.fc_full.weight"])


def test_model_cards_match_the_checkpoints(bundled):
    name, path = bundled
    card = (path.parent / f"MODEL_CARD_{name}.md").read_text()
    training = read_checkpoint(path).training
    assert re.search(rf"\b{training['epochs_completed']}\b (of \d+ planned )?epochs", card), "card must state the epochs"
    assert f"`{name}`" in card or f'"{name}"' in card
    assert "crysgnn-dgl pretrain" in card
    for metric in ("val/space_group_accuracy", "val/denoising"):
        objective = {"val/space_group_accuracy": "space_group_weight", "val/denoising": "denoising_weight"}[metric]
        if training["objectives"].get(objective):
            assert f"{training['metrics'][metric]:.3f}" in card


def test_teacher_embeds_a_cif_path(mp_cifs, tmp_path):
    path = tmp_path / "mp-1000.cif"
    path.write_text(mp_cifs["mp-1000"])
    teacher = load_teacher()
    graph = build_graph(str(path), teacher.graph_settings)
    assert teacher.embed(graph).shape == (2, 64)
