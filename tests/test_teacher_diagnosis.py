"""The metric and probe functions of ``benchmarks/teacher_diagnosis.py`` against
independent computations (matrices with known spectra, loops, synthetic targets)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _probe import cross_validated_probe  # noqa: E402
from _validation_slice import collision_candidates, composition_key  # noqa: E402
from teacher_diagnosis import (  # noqa: E402
    effective_rank,
    layer_outputs,
    mean_pairwise_cosine,
    mean_pool,
    variance_fractions,
)


def orthonormal(rows: int, cols: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(rows, cols)))
    return q


def test_effective_rank_of_known_singular_values():
    singular = np.array([4.0, 2.0, 1.0, 1.0, 0.0])
    matrix = orthonormal(40, 5, 0) @ np.diag(singular) @ orthonormal(5, 5, 1).T
    p = singular[:4] / singular.sum()
    assert effective_rank(matrix) == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-9)
    assert effective_rank(np.eye(7)) == pytest.approx(7.0)
    assert effective_rank(np.outer(np.arange(1.0, 6.0), np.ones(3))) == pytest.approx(1.0)


def test_variance_fractions_match_covariance_eigenvalues():
    x = np.random.default_rng(2).normal(size=(200, 8)) * np.arange(1.0, 9.0)
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False)))[::-1]
    top1, top5 = variance_fractions(x)
    assert top1 == pytest.approx(eigenvalues[0] / eigenvalues.sum())
    assert top5 == pytest.approx(eigenvalues[:5].sum() / eigenvalues.sum())


def test_mean_pairwise_cosine_against_a_loop():
    x = np.random.default_rng(3).normal(size=(9, 4)) + 0.5
    x[4] = 0.0  # a zero row contributes similarity 0
    pairs = [
        0.0 if not (np.linalg.norm(x[i]) and np.linalg.norm(x[j]))
        else x[i] @ x[j] / (np.linalg.norm(x[i]) * np.linalg.norm(x[j]))
        for i in range(len(x)) for j in range(len(x)) if i != j
    ]
    assert mean_pairwise_cosine(x) == pytest.approx(np.mean(pairs))
    assert mean_pairwise_cosine(np.ones((5, 3))) == pytest.approx(1.0)


def test_mean_pool_against_a_loop():
    nodes = np.random.default_rng(4).normal(size=(10, 3))
    sizes = np.array([1, 4, 5])
    expected = [nodes[0:1].mean(0), nodes[1:5].mean(0), nodes[5:10].mean(0)]
    np.testing.assert_allclose(mean_pool(nodes, sizes), expected)


def test_probe_recovers_a_linear_target_and_not_noise():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 12)) * rng.uniform(0.1, 10.0, size=12)  # unequal scales
    linear = x @ rng.normal(size=12) + 3.0
    assert cross_validated_probe(x, linear)["r2"] > 0.999
    noise = cross_validated_probe(x, rng.normal(size=300))
    assert noise["r2"] < 0.05


def test_collision_candidates_need_same_composition_and_close_volume():
    def cif(formula: str, volume: float) -> str:
        return f"data_x\n_chemical_formula_sum   '{formula}'\n_cell_volume   {volume}\n"

    cifs = [cif("Fe2 O3", 50.0), cif("O3 Fe2", 50.04), cif("Fe2 O3", 60.0), cif("Fe4 O6", 100.0),
            cif("Cs1", 9.0)]
    import pandas as pd

    # rows 0 and 1: same composition, 10.000 vs 10.008 Å³/atom; row 3 (Fe4O6) is another formula
    assert collision_candidates(pd.Series(cifs)) == [0, 1]
    assert composition_key("Fe2 O3") == composition_key("O3 Fe2") == (("Fe", 2.0), ("O", 3.0))


def test_layer_outputs_follow_the_model(mp_cifs):
    from crysgnn_dgl import CrysGNN, build_graph
    from crysgnn_dgl.backend import dgl

    torch.manual_seed(0)
    model = CrysGNN().eval()
    graphs = [build_graph(cif, model.graph_settings) for cif in list(mp_cifs.values())[:4]]
    outputs = layer_outputs(model, graphs, batch_size=3)
    assert list(outputs) == ["embedding", "conv1", "conv2", "conv3", "conv4", "conv5", "conv5 + L2"]
    with torch.no_grad():
        batch = dgl.batch(graphs)
        expected = {
            "embedding": model.embedding(batch.ndata["atom_features"]),
            "conv5": model.encode(batch),
            "conv5 + L2": model.embed(batch),
        }
    for name, value in expected.items():
        np.testing.assert_allclose(outputs[name], value.numpy(), rtol=1e-5, atol=1e-6)
