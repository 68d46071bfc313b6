"""The bundled default teacher: loads with no argument, frozen, documented, and useful."""

from __future__ import annotations

import re

import pytest
import torch

from crysgnn_dgl import CrysGNN, build_graph, load_teacher, read_checkpoint
from crysgnn_dgl.teacher import default_teacher_path


@pytest.fixture(scope="module")
def bundled():
    path = default_teacher_path()
    if not path.is_file():
        pytest.fail(f"the package ships no default teacher at {path}")
    return path


def test_load_teacher_without_arguments_is_frozen(bundled, real_structures):
    teacher = load_teacher()
    assert teacher.training is False and teacher.embedding_dim == 64
    assert teacher.source == str(bundled)
    structures = list(real_structures.values())[:4]
    embeddings = teacher.embed_structures(structures)
    for structure, embedding in zip(structures, embeddings):
        assert embedding.shape == (len(structure), 64)
        assert torch.allclose(embedding.norm(dim=1), torch.ones(len(structure)), atol=1e-5)
        assert not embedding.requires_grad
    again = load_teacher().embed_structures(structures[:1])[0]
    assert torch.allclose(again, embeddings[0], atol=1e-5)  # alone vs in a batch


def test_bundled_checkpoint_is_small_weights_only_and_trained(bundled):
    assert bundled.stat().st_size < 2_000_000
    raw = torch.load(bundled, map_location="cpu", weights_only=True)
    assert raw["format"] == "crysgnn_dgl.checkpoint"
    assert all(v.dtype in (torch.float32, torch.int64) for v in raw["state_dict"].values())
    checkpoint = read_checkpoint(bundled)
    metrics = checkpoint.training["metrics"]
    assert checkpoint.training["epochs_completed"] >= 1
    # far better than chance (1/230 space groups, 1/7 crystal systems) on held-out crystals
    assert metrics["val/space_group_accuracy"] > 0.15
    assert metrics["val/crystal_system_accuracy"] > 0.35
    torch.manual_seed(0)
    untrained = CrysGNN().state_dict()
    assert not torch.equal(untrained["convs.0.fc_full.weight"], checkpoint.state_dict["convs.0.fc_full.weight"])


def test_model_card_matches_the_checkpoint(bundled):
    card = (bundled.parent / "MODEL_CARD.md").read_text()
    checkpoint = read_checkpoint(bundled)
    epochs = checkpoint.training["epochs_completed"]
    assert re.search(rf"\b{epochs}\b epochs", card), "model card must state the epochs of the bundled weights"
    accuracy = checkpoint.training["metrics"]["val/space_group_accuracy"]
    assert f"{accuracy:.3f}" in card
    assert "crysgnn-dgl pretrain" in card


def test_teacher_embeds_a_cif_path(bundled, mp_cifs, tmp_path):
    path = tmp_path / "mp-1000.cif"
    path.write_text(mp_cifs["mp-1000"])
    teacher = load_teacher()
    graph = build_graph(str(path), teacher.graph_settings)
    assert teacher.embed(graph).shape == (2, 64)
