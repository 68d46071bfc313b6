"""The DGL CGCNN port against an independent dense implementation of the original forward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from _predictor_fixtures import (
    single_thread,  # noqa: F401
    batch_norm,
    batched_graph,
    original_batch,
    permuted_largest,
    randomise_running_stats,
    untied_structures,
)
from crysgnn_dgl import build_graph
from crysgnn_dgl.models.cgcnn import CGCNN, CGCNNSettings

pytestmark = pytest.mark.usefixtures("single_thread")


def dense_cgcnn(model: CGCNN, batch: dict, training: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The original ``CrystalGraphConvNet.forward`` on padded N×M neighbour tensors,
    reading the port's parameters by their original names. Returns (output, atom features)."""
    p = dict(model.named_parameters())
    atom = F.linear(batch["atom_fea"], p["embedding.weight"], p["embedding.bias"])
    nbr_fea, nbr_idx = batch["nbr_fea"], batch["nbr_fea_idx"]
    n, m = nbr_idx.shape
    for k, conv in enumerate(model.convs):
        width = atom.shape[1]
        total = torch.cat([atom.unsqueeze(1).expand(n, m, width), atom[nbr_idx], nbr_fea], dim=2)
        gated = F.linear(total, p[f"convs.{k}.fc_full.weight"], p[f"convs.{k}.fc_full.bias"])
        gated = batch_norm(gated.view(-1, 2 * width), conv.bn1, training).view(n, m, 2 * width)
        nbr_filter, nbr_core = gated.chunk(2, dim=2)
        summed = torch.sum(torch.sigmoid(nbr_filter) * F.softplus(nbr_core), dim=1)
        atom = F.softplus(atom + batch_norm(summed, conv.bn2, training))
    crystal = torch.cat([atom[idx].mean(0, keepdim=True) for idx in batch["crystal_atom_idx"]])
    crystal = F.softplus(F.linear(F.softplus(crystal), p["conv_to_fc.weight"], p["conv_to_fc.bias"]))
    for i in range(len(model.fcs)):
        crystal = F.softplus(F.linear(crystal, p[f"fcs.{i}.weight"], p[f"fcs.{i}.bias"]))
    out = F.linear(crystal, p["fc_out.weight"], p["fc_out.bias"])
    if model.settings.classification:
        out = F.log_softmax(out, dim=1)
    return out, atom


@pytest.fixture(scope="module")
def structures():
    return untied_structures(6)


@pytest.mark.parametrize("training", [True, False])
def test_forward_matches_dense_original(structures, training):
    torch.manual_seed(0)
    model = CGCNN()
    randomise_running_stats(model)
    model.train(training)
    graph = batched_graph(structures)
    captured = {}
    model.convs[-1].register_forward_hook(lambda mod, args, out: captured.setdefault("atom", out))
    with torch.no_grad():
        ours = model(graph)
        reference, ref_atoms = dense_cgcnn(model, original_batch([s for _, s in structures]), training)
    assert ours.shape == (len(structures),)
    torch.testing.assert_close(ours, reference.squeeze(1), rtol=1e-5, atol=1e-5)
    # Per-atom embeddings (the distillation contract) are the output of convs[-1].
    torch.testing.assert_close(captured["atom"], ref_atoms, rtol=1e-5, atol=1e-5)


def test_classification_with_hidden_layers_matches_dense_original(structures):
    torch.manual_seed(1)
    model = CGCNN(CGCNNSettings(classification=True, n_h=3, atom_fea_len=32, n_conv=2))
    randomise_running_stats(model, seed=1)
    model.eval()
    graph = batched_graph(structures)
    with torch.no_grad():
        ours = model(graph)
        reference, _ = dense_cgcnn(model, original_batch([s for _, s in structures]), False)
    assert ours.shape == (len(structures), 2)
    assert len(model.fcs) == 2
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.exp().sum(1), torch.ones(len(structures)))


def test_original_parameter_names():
    model = CGCNN(CGCNNSettings(n_h=2))
    names = set(model.state_dict())
    expected = {"embedding.weight", "embedding.bias", "conv_to_fc.weight", "fc_out.weight", "fcs.0.weight"}
    expected |= {f"convs.{k}.{layer}.weight" for k in range(3) for layer in ("fc_full", "bn1", "bn2")}
    assert expected <= names
    assert model.embedding.in_features == 92 and model.embedding.out_features == 64
    assert model.convs[0].fc_full.in_features == 2 * 64 + 41
    assert model.conv_to_fc.out_features == 128 and model.fc_out.out_features == 1


def test_gradients_reach_every_parameter(structures):
    torch.manual_seed(2)
    model = CGCNN(CGCNNSettings(n_h=2))
    model.train()
    prediction = model(batched_graph(structures))
    (prediction**2).mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_prediction_invariant_to_atom_order(structures):
    torch.manual_seed(3)
    model = CGCNN()
    randomise_running_stats(model)
    model.eval()
    sid, structure, order, permuted = permuted_largest(structures)
    assert len(structure) > 2
    with torch.no_grad():
        original = model(build_graph(structure, structure_id=sid))
        shuffled = model(build_graph(permuted, structure_id=sid + " permuted"))
        atoms = model.atom_embeddings(build_graph(structure, structure_id=sid))
        atoms_permuted = model.atom_embeddings(build_graph(permuted, structure_id=sid))
    torch.testing.assert_close(original, shuffled, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(atoms[order], atoms_permuted, rtol=1e-5, atol=1e-5)


def test_batch_equals_single_crystals_in_eval(structures):
    model = CGCNN()
    randomise_running_stats(model)
    model.eval()
    with torch.no_grad():
        batched = model(batched_graph(structures))
        singles = torch.cat([model(build_graph(s, structure_id=sid)) for sid, s in structures])
    torch.testing.assert_close(batched, singles, rtol=1e-5, atol=1e-5)


def test_settings_validation_and_round_trip():
    settings = CGCNNSettings(atom_fea_len=32, n_h=2)
    assert CGCNNSettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(ValueError, match="n_conv"):
        CGCNNSettings(n_conv=0)
