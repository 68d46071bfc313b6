"""The versioned checkpoint format: content, atomic writes, settings, release layout."""

from __future__ import annotations

import warnings

import pytest
import torch

from crysgnn_dgl import (
    CheckpointError,
    CrysGNN,
    GraphSettings,
    ModelSettings,
    build_graph,
    read_checkpoint,
    save_checkpoint,
)
from crysgnn_dgl.checkpoint import FORMAT_NAME, FORMAT_VERSION, model_from_checkpoint
from crysgnn_dgl.graph import PaddingWarning

SMALL_MODEL = ModelSettings(hidden_dim=32, num_conv=3, contrastive_projection=True)
SMALL_GRAPH = GraphSettings(radius=6.0, max_neighbors=8, gaussian_step=0.25, gaussian_stop=6.0)


def test_saved_file_content(tmp_path):
    torch.manual_seed(0)
    model = CrysGNN(SMALL_MODEL, SMALL_GRAPH)
    path = save_checkpoint(tmp_path / "nested" / "dir" / "model.pt", model, training={"epoch": 3, "loss": 0.5})
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == ["model.pt"]
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT_NAME and raw["format_version"] == FORMAT_VERSION == 1
    assert raw["model_settings"] == SMALL_MODEL.to_dict()
    assert raw["graph_settings"] == SMALL_GRAPH.to_dict()
    assert raw["training"] == {"epoch": 3, "loss": 0.5}
    assert set(raw["state_dict"]) == set(model.state_dict())
    assert "fc_contrastive.weight" in raw["state_dict"]
    assert all(torch.equal(raw["state_dict"][k], v) for k, v in model.state_dict().items())


def test_overwrite_is_atomic_and_complete(tmp_path):
    path = tmp_path / "model.pt"
    torch.manual_seed(0)
    save_checkpoint(path, CrysGNN())
    second = CrysGNN()
    save_checkpoint(path, second, training={"round": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
    checkpoint = read_checkpoint(path)
    assert checkpoint.training == {"round": 2}
    assert torch.equal(checkpoint.state_dict["fc_sg.weight"], second.fc_sg.weight.detach())


def test_settings_round_trip_and_embeddings(tmp_path, mp_structures):
    torch.manual_seed(2)
    model = CrysGNN(SMALL_MODEL, SMALL_GRAPH).eval()
    path = save_checkpoint(tmp_path / "small.pt", model)
    loaded, checkpoint = model_from_checkpoint(path, graph_settings=SMALL_GRAPH)
    assert checkpoint.model_settings == SMALL_MODEL and checkpoint.graph_settings == SMALL_GRAPH
    assert loaded.edge_expansion.centers.numel() == SMALL_GRAPH.num_gaussians == 25
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PaddingWarning)
        graph = build_graph(mp_structures["mp-10003"], SMALL_GRAPH)
    loaded.eval()
    with torch.no_grad():
        assert torch.equal(loaded.embed(graph), model.embed(graph))
        out = loaded(graph)
    assert out.node_embedding.shape == (12, 32) and out.contrastive.shape == (1, 32)


def test_release_layout_infers_architecture(tmp_path):
    torch.manual_seed(0)
    model = CrysGNN(ModelSettings(hidden_dim=48, num_conv=4))
    path = tmp_path / "release.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    checkpoint = read_checkpoint(path)
    assert checkpoint.source == "CrysGNN release"
    assert checkpoint.model_settings == ModelSettings(hidden_dim=48, num_conv=4)
    assert checkpoint.graph_settings == GraphSettings()
    assert checkpoint.training == {}


def test_release_layout_with_other_edge_width_is_refused(tmp_path):
    model = CrysGNN(graph_settings=SMALL_GRAPH)  # 25 Gaussians: not the release featuriser
    path = tmp_path / "odd_release.pth"
    torch.save(model.state_dict(), path)
    with pytest.raises(CheckpointError, match="odd_release.pth.*expect 25 edge features.*41"):
        read_checkpoint(path)
