"""Pre-training labels: space group and crystal system vs matbench, connectivity vs a count."""

from __future__ import annotations

import gzip
import json
import warnings

import numpy as np
import pytest
import torch

from crysgnn_dgl import build_graph
from crysgnn_dgl.backend import dgl
from crysgnn_dgl.graph import PaddingWarning, connectivity_targets, pair_index

from conftest import data_file

# Rows 0-9 cover hexagonal, cubic, orthorhombic, tetragonal, monoclinic and trigonal
# crystals; row 100 is triclinic.
MATBENCH_ROWS = [str(i) for i in range(10)] + ["100"]
SYSTEMS = ["triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic"]


@pytest.fixture(scope="module")
def matbench_rows():
    from pymatgen.core import Structure

    with gzip.open(data_file("matbench_dielectric.json.gz"), "rt") as handle:
        columns = json.load(handle)
    return [
        (
            row,
            Structure.from_dict(columns["structure"][row]),
            columns["spg_num"][row],
            columns["crystal_sys"][row],
        )
        for row in MATBENCH_ROWS
    ]


def test_space_group_and_crystal_system_match_matbench(matbench_rows):
    seen = set()
    for row, structure, spg_number, crystal_system in matbench_rows:
        _, labels = build_graph(structure, structure_id=f"matbench_dielectric row {row}", with_labels=True)
        assert labels["space_group"].item() == spg_number - 1, row
        assert labels["crystal_system"].item() == SYSTEMS.index(crystal_system), row
        assert labels["space_group"].dtype == torch.int64
        seen.add(crystal_system)
    assert seen == set(SYSTEMS)


def _direct_connectivity(structure, reference_featuriser) -> np.ndarray:
    index, _, _ = reference_featuriser(structure, 8.0, 12, 6)
    n = len(structure)
    counts = np.zeros((n, n), dtype=np.int64)
    for i in range(n):
        for j in index[i]:  # padding slots point to atom 0 and count, as in the release
            counts[i, j] += 1
    return np.minimum(counts, 5)


def test_connectivity_matrix_vs_direct_count(real_structures, padded_structure, reference_featuriser):
    cases = dict(real_structures, padded=padded_structure)
    saw_capped = False
    for sid, structure in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PaddingWarning)
            _, labels = build_graph(structure, structure_id=sid, with_labels=True)
        expected = _direct_connectivity(structure, reference_featuriser)
        np.testing.assert_array_equal(labels["connectivity"].numpy(), expected, err_msg=sid)
        saw_capped |= bool((expected == 5).any())
    assert saw_capped  # the 1-atom Cs cell counts 12 slots to itself → class 5


def test_batched_connectivity_targets_and_pair_index(real_structures):
    ids = ["mp-10003", "mp-1", "perov5:18517", "mp-1008626"]
    graphs, matrices = [], []
    for sid in ids:
        graph, labels = build_graph(real_structures[sid], structure_id=sid, with_labels=True)
        graphs.append(graph)
        matrices.append(labels["connectivity"])
    batched = dgl.batch(graphs)
    sizes = batched.batch_num_nodes()
    src, dst = batched.edges()
    targets = connectivity_targets(src, dst, sizes)
    assert torch.equal(targets, torch.cat([m.reshape(-1) for m in matrices]))

    first, second = pair_index(sizes)
    offsets = np.cumsum([0] + sizes.tolist())
    expected = [
        (offsets[g] + i, offsets[g] + j)
        for g, n in enumerate(sizes.tolist())
        for i in range(n)
        for j in range(n)
    ]
    assert list(zip(first.tolist(), second.tolist())) == expected
