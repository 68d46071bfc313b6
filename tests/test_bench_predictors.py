"""The ``megnet`` (matgl DGL MEGNet) and ``alignn`` (alignn DGL ALIGNN) bench predictors:
shapes and adapters on their own graphs and batches, unusable crystals refused by id, and a
tiny ``crysgnn-dgl bench`` run each (finite MAEs, KD > 0, λ = 0 distilled == vanilla)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch

os.environ.setdefault("MATGL_BACKEND", "DGL")
pytest.importorskip("alignn")
pytest.importorskip("matgl")

from crysgnn_dgl.bench.predictors import predictor  # noqa: E402
from crysgnn_dgl.cli import main  # noqa: E402
from crysgnn_dgl.graph.errors import StructureError  # noqa: E402
from crysgnn_dgl.training.options import bundled_demo_table  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

#: one H atom in a 10 Å cube: no bond within MEGNet's 4 Å cutoff
LONE_ATOM_CIF = """data_H
_cell_length_a 10
_cell_length_b 10
_cell_length_c 10
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
H1 H 0 0 0
"""
TINY = ["--target", "formation_energy_per_atom", "--modes", "vanilla,distilled", "--train-sizes", "12",
        "--seeds", "1", "--epochs", "2", "--test-fraction", "0.2"]


@pytest.fixture(scope="module")
def demo():
    return pd.read_csv(bundled_demo_table(), nrows=30)


@pytest.fixture(scope="module")
def user_csv(demo, tmp_path_factory):
    frame = demo.copy()
    frame.loc[4, "cif"] = LONE_ATOM_CIF
    path = tmp_path_factory.mktemp("bench_predictors") / "mine.csv"
    frame.to_csv(path, index=False)
    return path, frame.material_id[4]


def test_import_does_not_load_alignn_or_matgl():
    code = ("import sys, crysgnn_dgl.bench.runner, crysgnn_dgl.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alignn', 'matgl')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("name, student_class", [("megnet", "MEGNet"), ("alignn", "ALIGNN")])
def test_batches_give_one_prediction_per_crystal(demo, name, student_class):
    spec = predictor(name)
    torch.manual_seed(0)
    model = spec.build().eval()
    assert type(spec.student(model)).__name__ == student_class
    items = [(spec.featurize(cif, sid), torch.tensor(float(y)))
             for sid, cif, y in zip(demo.material_id[:3], demo.cif[:3], demo.formation_energy_per_atom[:3])]
    with torch.no_grad():
        for size in (1, 3):
            inputs, targets = spec.collate(items[:size])
            assert model(*inputs).shape == (size,) and targets.shape == (size,)
        one = model(*spec.collate(items[:1])[0])
        three = model(*spec.collate(items)[0])
    assert torch.allclose(one, three[:1], atol=1e-5)  # batching keeps crystals apart
    assert json.loads(json.dumps(spec.hyper)) == spec.hyper and spec.hyper


@pytest.mark.parametrize("name", ["megnet", "alignn"])
def test_unusable_structures_are_refused_by_id(name):
    spec = predictor(name)
    with pytest.raises(StructureError) as caught:
        spec.featurize("not a cif", "row-7")
    assert caught.value.structure_id == "row-7"
    if name == "megnet":
        with pytest.raises(StructureError, match="no neighbours within the MEGNet cutoff"):
            spec.featurize(LONE_ATOM_CIF, "lone")


def _runs(out):
    return {(record := json.loads(path.read_text()))["mode"]: record for path in (out / "runs").glob("*.json")}


@pytest.mark.parametrize("name", ["megnet", "alignn"])
def test_tiny_bench_run_distils_and_pairs(user_csv, tmp_path, name):
    path, lone_id = user_csv
    results = []
    for label, extra in (("kd", []), ("zero", ["--kd-weights", "0"])):
        out = tmp_path / label
        if label == "zero":  # the second sweep reads the first one's stored graphs from disk
            shutil.copytree(tmp_path / "kd" / "graphs", out / "graphs")
        assert main(["bench", "--dataset", str(path), *TINY, "--predictors", name, "--out", str(out), *extra]) == 0
        results.append(_runs(out))
    kd, zero = results
    assert list((tmp_path / "zero" / "graphs").glob("*.0.graphs"))
    for runs in results:
        assert set(runs) == {"vanilla", "distilled"}
        for record in runs.values():
            assert record["predictor"] == name and record["train_size"] == 12
            assert math.isfinite(record["test_mae"]) and math.isfinite(record["val_mae"])
    assert kd["distilled"]["kd_mean"] > 0
    # paired seeds, and graphs loaded from disk give the same run as freshly built ones
    assert kd["vanilla"]["test_predictions"] == zero["vanilla"]["test_predictions"]
    assert kd["vanilla"]["history"] == zero["vanilla"]["history"]
    # λ = 0: the teacher is attached (head, warm pre-pass) yet the run is the vanilla run exactly
    assert zero["distilled"]["test_predictions"] == zero["vanilla"]["test_predictions"]
    assert kd["distilled"]["test_predictions"] != kd["vanilla"]["test_predictions"]
    if name == "megnet":
        assert lone_id in (tmp_path / "kd" / "skipped.tsv").read_text()
