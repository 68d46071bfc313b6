"""Fine-tuning a CrysGNN checkpoint (``finetune_model``): the encoder starts from the
checkpoint's weights, every weight trains, the prediction is the head on the mean of the
checkpoint's embeddings, other architectures' teachers are refused, and the documented
example runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from crysgnn_dgl import CheckpointError, CrysGNNRegressor, build_graph, finetune_model, load_teacher
from crysgnn_dgl.backend import dgl
from crysgnn_dgl.config import GraphSettings

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "crysgnn_finetune.py"
IDS = ["mp-10003", "perov5:18517", "carbon24:C-148264-7891-51"]


@pytest.fixture(scope="module")
def graphs(real_structures):
    return [build_graph(real_structures[sid], structure_id=sid) for sid in IDS]


def test_encoder_starts_from_the_checkpoint_and_trains(graphs):
    model = finetune_model()
    teacher = load_teacher()
    assert isinstance(model, CrysGNNRegressor) and model.graph_settings == teacher.graph_settings
    reference = teacher._model.state_dict()
    for name, value in model.encoder.state_dict().items():
        assert torch.equal(value, reference[name]), name
    assert all(p.requires_grad for p in model.parameters())
    model.eval()
    batch = dgl.batch(graphs)
    prediction = model(batch)
    assert prediction.shape == (3,)
    # independent composition: the frozen teacher's unnormalised full-depth embeddings,
    # averaged per crystal, through the head
    depth = len(teacher._model.convs)
    atoms = load_teacher(depth=depth).embed(batch, normalized=False)
    crystals = torch.stack([rows.mean(0) for rows in atoms.split(batch.batch_num_nodes().tolist())])
    expected = model.fc_out(F.softplus(model.fc(crystals))).squeeze(-1)
    torch.testing.assert_close(prediction, expected, rtol=1e-5, atol=1e-6)
    singles = torch.cat([model(g).reshape(1) for g in graphs])
    torch.testing.assert_close(prediction, singles, rtol=1e-5, atol=1e-6)


def test_one_step_moves_the_encoder_not_the_bundled_teacher(graphs):
    model = finetune_model("crysgnn-denoise")
    batch = dgl.batch(graphs)
    before = load_teacher().embed(batch)
    first = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss = (model(batch) - torch.tensor([0.5, -1.0, 0.1])).pow(2).mean()
    loss.backward()
    assert model.encoder.convs[0].fc_full.weight.grad.abs().sum() > 0
    optimizer.step()
    moved = [k for k, v in model.encoder.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, first[k])]
    assert any("convs.0" in k for k in moved)
    torch.testing.assert_close(load_teacher().embed(batch), before, rtol=0, atol=0)


def test_a_checkpoint_path_and_its_errors(tmp_path):
    from crysgnn_dgl.teacher import bundled_teacher_path

    model = finetune_model(bundled_teacher_path("crysgnn-multitask"), hidden=32)
    assert model.fc.out_features == 32
    with pytest.raises(ValueError, match="'m3gnet' is not a CrysGNN teacher"):
        finetune_model("m3gnet")
    with pytest.raises(CheckpointError, match="missing.pt"):
        finetune_model(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="featuriser settings differ"):
        finetune_model(graph_settings=GraphSettings(radius=6.0))


def test_the_documented_example_runs(capsys):
    spec = importlib.util.spec_from_file_location("crysgnn_finetune_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--limit", "60", "--epochs", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("48 training, 6 validation, 6 test crystals")
    assert "from scratch: test MAE" in lines[1] and "fine-tuned: test MAE" in lines[2]
