"""Release-format checkpoints give the embeddings of the original dense CrysGNN forward pass.

The reference below is written from the paper (CGCNN Eq. 5) on padded neighbour tensors
(N × 12), the way the release computed it; it shares no code with the package.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from crysgnn_dgl import build_graph, load_teacher
from crysgnn_dgl.backend import dgl
from crysgnn_dgl.graph import PaddingWarning

HIDDEN, ATOM_DIM, EDGE_DIM, NUM_CONV, BN_EPS = 64, 92, 41, 5, 1e-5


def release_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights in the release key layout, batch norms with non-trivial running stats."""
    gen = torch.Generator().manual_seed(seed)

    def normal(*shape, scale=1.0, shift=0.0):
        return torch.randn(*shape, generator=gen) * scale + shift

    def uniform(*shape, low, high):
        return torch.rand(*shape, generator=gen) * (high - low) + low

    state = {"embedding.weight": normal(HIDDEN, ATOM_DIM, scale=0.3)}
    for k in range(NUM_CONV):
        p = f"convs.{k}."
        state[p + "fc_full.weight"] = normal(2 * HIDDEN, 2 * HIDDEN + EDGE_DIM, scale=0.1)
        state[p + "fc_full.bias"] = normal(2 * HIDDEN, scale=0.1)
        for bn, width in (("bn1", 2 * HIDDEN), ("bn2", HIDDEN)):
            state[p + f"{bn}.weight"] = uniform(width, low=0.5, high=1.5)
            state[p + f"{bn}.bias"] = normal(width, scale=0.2)
            state[p + f"{bn}.running_mean"] = normal(width, scale=0.5)
            state[p + f"{bn}.running_var"] = uniform(width, low=0.3, high=3.0)
            state[p + f"{bn}.num_batches_tracked"] = torch.tensor(1234)
    state["fc_adj.weight"] = normal(6, HIDDEN, HIDDEN, scale=0.1)
    state["fc_adj.bias"] = normal(6, scale=0.1)
    state["fc1.weight"] = normal(6, 6, scale=0.3)
    state["fc1.bias"] = normal(6, scale=0.1)
    state["fc_atom_feature.weight"] = normal(ATOM_DIM, HIDDEN, scale=0.1)
    state["fc_atom_feature.bias"] = normal(ATOM_DIM, scale=0.1)
    state["fc_sg.weight"] = normal(230, HIDDEN, scale=0.1)
    state["fc_sg.bias"] = normal(230, scale=0.1)
    return state


def dense_reference_embedding(state, atom_features, neighbour_index, neighbour_distance):
    """The release forward pass in float64 on padded ``(N, M)`` neighbour tables."""
    s = {k: v.to(torch.float64) for k, v in state.items()}
    dist = torch.as_tensor(neighbour_distance, dtype=torch.float64)
    idx = torch.as_tensor(neighbour_index, dtype=torch.int64)
    centres = torch.arange(0.0, 8.0 + 1e-9, 0.2, dtype=torch.float64)
    edge = torch.exp(-((dist.unsqueeze(-1) - centres) ** 2) / 0.2**2)  # (N, M, 41)

    def batch_norm(x, prefix):
        scale = s[prefix + ".weight"] / torch.sqrt(s[prefix + ".running_var"] + BN_EPS)
        return (x - s[prefix + ".running_mean"]) * scale + s[prefix + ".bias"]

    def softplus(x):
        return torch.logaddexp(x, torch.zeros_like(x))  # log(1 + e^x), overflow-free

    h = torch.as_tensor(atom_features, dtype=torch.float64) @ s["embedding.weight"].T
    n, m = idx.shape
    for k in range(NUM_CONV):
        p = f"convs.{k}."
        total = torch.cat([h.unsqueeze(1).expand(n, m, HIDDEN), h[idx], edge], dim=2)
        gated = total @ s[p + "fc_full.weight"].T + s[p + "fc_full.bias"]
        gated = batch_norm(gated.view(-1, 2 * HIDDEN), p + "bn1").view(n, m, 2 * HIDDEN)
        nbr_filter, nbr_core = gated[..., :HIDDEN], gated[..., HIDDEN:]
        summed = (torch.sigmoid(nbr_filter) * softplus(nbr_core)).sum(dim=1)
        h = softplus(h + batch_norm(summed, p + "bn2"))
    return h / torch.sqrt((h**2).sum(dim=1, keepdim=True))


def _dense_inputs(structure, reference_featuriser, atom_init_table):
    index, distance, _ = reference_featuriser(structure, 8.0, 12, 6)
    features = np.stack([atom_init_table[site.specie.Z] for site in structure])
    return features, index, distance


LAYOUTS = {
    "wrapped": lambda sd: {"state_dict": sd},
    "bare": lambda sd: sd,
    "wrapped, module. prefix": lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}},
    "bare, module. prefix": lambda sd: {f"module.{k}": v for k, v in sd.items()},
}


@pytest.fixture(scope="module")
def equivalence_structures(real_structures, padded_structure):
    ids = ["mp-1", "mp-10003", "mp-1002063", "perov5:18517", "carbon24:C-148264-7891-51"]
    return {**{sid: real_structures[sid] for sid in ids}, "VTe2 stretched (padded)": padded_structure}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_release_checkpoint_matches_dense_reference(
    layout, tmp_path, equivalence_structures, reference_featuriser, atom_init_table
):
    state = release_state_dict(seed=7)
    path = tmp_path / "crysgnn_release.pth"
    torch.save(LAYOUTS[layout](state), path)
    teacher = load_teacher(path)
    assert teacher.checkpoint.source == "CrysGNN release"
    assert teacher.embedding_dim == 64

    graphs = []
    for sid, structure in equivalence_structures.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PaddingWarning)
            graph = build_graph(structure, structure_id=sid)
        graphs.append(graph)
        expected = dense_reference_embedding(
            state, *_dense_inputs(structure, reference_featuriser, atom_init_table)
        )
        got = teacher.embed(graph)
        assert got.shape == (len(structure), 64)
        np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5, rtol=0, err_msg=sid)

    batched = teacher.embed(dgl.batch(graphs))  # a batch gives the same per-atom rows
    singles = torch.cat([teacher.embed(g) for g in graphs])
    torch.testing.assert_close(batched, singles, atol=1e-5, rtol=0)


def test_reference_differs_when_weights_differ(tmp_path, equivalence_structures, reference_featuriser, atom_init_table):
    """The comparison is sensitive: another seed, or ignoring the running stats, changes the result."""
    structure = equivalence_structures["mp-10003"]
    inputs = _dense_inputs(structure, reference_featuriser, atom_init_table)
    state = release_state_dict(seed=7)
    path = tmp_path / "release.pth"
    torch.save({"state_dict": state}, path)
    got = load_teacher(path).embed(build_graph(structure)).numpy()
    other = dense_reference_embedding(release_state_dict(seed=8), *inputs).numpy()
    assert np.abs(got - other).max() > 1e-2
    plain_bn = dict(state)
    for k in range(NUM_CONV):
        for bn in ("bn1", "bn2"):
            plain_bn[f"convs.{k}.{bn}.running_mean"] = torch.zeros_like(state[f"convs.{k}.{bn}.running_mean"])
            plain_bn[f"convs.{k}.{bn}.running_var"] = torch.ones_like(state[f"convs.{k}.{bn}.running_var"])
    assert np.abs(got - dense_reference_embedding(plain_bn, *inputs).numpy()).max() > 1e-2
