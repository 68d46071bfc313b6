"""The frozen teacher: evaluation mode forever, no gradients, never part of a student."""

from __future__ import annotations

import copy
import pathlib
import pickle

import pytest
import torch
from torch import nn

from crysgnn_dgl import CheckpointError, CrysGNN, FrozenTeacher, build_graph, load_teacher, save_checkpoint
from crysgnn_dgl.backend import dgl


def _random_model(seed: int = 1) -> CrysGNN:
    torch.manual_seed(seed)
    model = CrysGNN()
    with torch.no_grad():
        for conv in model.convs:
            for bn in (conv.bn1, conv.bn2):
                bn.running_mean.normal_(0.0, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
    return model


@pytest.fixture()
def checkpoint_path(tmp_path):
    return save_checkpoint(tmp_path / "teacher.pt", _random_model(), training={"note": "test"})


@pytest.fixture(scope="module")
def graphs(real_structures):
    ids = ["mp-10003", "perov5:18517", "carbon24:C-148264-7891-51"]
    return [build_graph(real_structures[sid], structure_id=sid) for sid in ids]


def _bn_state(teacher: FrozenTeacher) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in teacher._model.state_dict().items() if "bn" in k}


class Student(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(92, 8), nn.BatchNorm1d(8))

    def forward(self, x):
        return self.body(x)


def _cscl_graph():
    from pymatgen.core import Lattice, Structure

    return build_graph(Structure(Lattice.cubic(4.2), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]))


def test_train_cannot_undo_eval(checkpoint_path):
    teacher = load_teacher(checkpoint_path)
    assert teacher.train() is teacher and teacher.training is False
    teacher.train(True)
    teacher._model.train()  # even the wrapped module refuses
    assert not any(m.training for m in teacher._model.modules())
    teacher._model.convs[0].bn1.train()  # a submodule switched by hand ...
    teacher.embed(_cscl_graph())  # ... is put back before every embedding
    assert not teacher._model.convs[0].bn1.training


def test_parameters_frozen_and_outputs_detached(checkpoint_path, graphs):
    teacher = load_teacher(checkpoint_path)
    assert all(not p.requires_grad for p in teacher._model.parameters())
    with torch.enable_grad():
        out = teacher.embed(graphs[0])
    assert not out.requires_grad and out.grad_fn is None


def test_teacher_never_joins_a_student(checkpoint_path, graphs):
    teacher = load_teacher(checkpoint_path)
    student = Student()
    keys, params = set(student.state_dict()), [id(p) for p in student.parameters()]
    student.teacher = teacher
    student.body.teacher = teacher
    assert set(student.state_dict()) == keys
    assert [id(p) for p in student.parameters()] == params
    assert not any(m is teacher._model for m in student.modules())

    before = _bn_state(teacher)
    student.train()
    with torch.enable_grad():
        for graph in graphs:
            student(graph.ndata["atom_features"]).sum().backward()
            student.teacher.embed(graph)
    assert student.training and teacher.training is False
    after = _bn_state(teacher)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in teacher._model.parameters())


def test_checkpoint_round_trip_gives_identical_embeddings(tmp_path, graphs):
    model = _random_model(seed=4).eval()
    path = save_checkpoint(tmp_path / "round.pt", model)
    teacher = load_teacher(path)
    batched = dgl.batch(graphs)
    with torch.no_grad():
        expected = model.embed(batched)
    assert torch.equal(teacher.embed(batched), expected)
    assert torch.equal(teacher(batched), expected)
    other = load_teacher(save_checkpoint(tmp_path / "other.pt", _random_model(seed=5)))
    assert (other.embed(batched) - expected).abs().max() > 1e-3


def test_weights_only_refuses_pickled_objects(tmp_path):
    marker = tmp_path / "unpickled.txt"

    class Sneaky:  # unpickling this would create the marker file
        def __reduce__(self):
            return (pathlib.Path.touch, (marker,))

    path = tmp_path / "sneaky.pt"
    torch.save({"state_dict": _random_model().state_dict(), "extra": Sneaky()}, path)
    with pytest.raises(CheckpointError, match="sneaky.pt.*pickled Python objects"):
        load_teacher(path)
    assert not marker.exists()


def test_embed_structures_matches_single_graphs(checkpoint_path, real_structures):
    teacher = load_teacher(checkpoint_path)
    ids = ["mp-1", "mp-1000", "perov5:18517"]
    embeddings = teacher.embed_structures([real_structures[i] for i in ids], ids=ids)
    assert [e.shape for e in embeddings] == [(1, 64), (2, 64), (5, 64)]
    for sid, embedding in zip(ids, embeddings):
        assert torch.allclose(embedding, teacher.embed(build_graph(real_structures[sid])), atol=1e-6)
    assert teacher.embed_structures([]) == []


def test_teacher_pickles_and_copies_frozen(checkpoint_path, graphs):
    teacher = load_teacher(checkpoint_path)
    expected = teacher.embed(graphs[0])
    for clone in (pickle.loads(pickle.dumps(teacher)), copy.deepcopy(teacher)):
        clone._model.train()
        clone.train()
        assert not any(m.training for m in clone._model.modules())
        assert all(not p.requires_grad for p in clone._model.parameters())
        assert torch.equal(clone.embed(graphs[0]), expected)
    assert not any(m.training for m in teacher._model.modules())


def test_properties_and_device(checkpoint_path):
    teacher = load_teacher(checkpoint_path, device="cpu")
    assert teacher.embedding_dim == 64
    assert teacher.device == torch.device("cpu")
    assert teacher.to("cpu") is teacher
    assert teacher.graph_settings == teacher.checkpoint.graph_settings
    assert teacher.checkpoint.training == {"note": "test"}
    assert "hidden_dim=64" in repr(teacher)


def test_missing_bundled_teacher_is_a_clear_error(monkeypatch, tmp_path):
    import crysgnn_dgl.teacher as teacher_module

    monkeypatch.setattr(teacher_module, "BUNDLED_TEACHERS", {"crysgnn-denoise": "absent.pt", "crysgnn-multitask": "gone.pt"})
    with pytest.raises(CheckpointError, match="absent.pt.*does not ship this teacher"):
        load_teacher()
    with pytest.raises(CheckpointError, match="gone.pt.*does not ship this teacher"):
        load_teacher("crysgnn-multitask")


def test_depth_distils_an_earlier_convolution(checkpoint_path, graphs):
    batched = dgl.batch(graphs)
    full, shallow = load_teacher(checkpoint_path), load_teacher(checkpoint_path, depth=2)
    model = full._model  # the same weights, run by hand: embedding, the first two convolutions
    with torch.no_grad():
        node = model.embedding(batched.ndata["atom_features"])
        edge = model.edge_expansion(batched.edata["distance"])
        for conv in list(model.convs)[:2]:
            node = conv(batched, node, edge)
    torch.testing.assert_close(shallow.embed(batched, normalized=False), node)
    torch.testing.assert_close(shallow.embed(batched), torch.nn.functional.normalize(node, dim=1))
    assert not torch.allclose(full.embed(batched), shallow.embed(batched))
    # cache salts differ by depth; the full depth keeps the salt it had before depth existed
    assert shallow.fingerprint() != full.fingerprint() == load_teacher(checkpoint_path, depth=None).fingerprint()
    assert "depth=2" in repr(shallow)
    for wrong in (0, 6, 1.5):
        with pytest.raises(ValueError, match="depth must be a whole number of convolutions from 1 to 5"):
            load_teacher(checkpoint_path, depth=wrong)
    with pytest.raises(TypeError, match="depth applies to CrysGNN checkpoints only"):
        load_teacher("m3gnet", depth=1)
