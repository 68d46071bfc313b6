"""``crysgnn-dgl bench`` end to end on a tiny grid of a user CSV: outputs, resume,
bit-identical paired vanilla runs, bad rows skipped by id; tasks and statistics."""

from __future__ import annotations

import csv
import json
import math

import pandas as pd
import pytest
import torch

from crysgnn_dgl.bench.stats import paired_gain
from crysgnn_dgl.bench.tasks import TaskSpec, load_task
from crysgnn_dgl.cli import main
from crysgnn_dgl.training.options import bundled_demo_table

from conftest import data_file

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TINY = ["--target", "formation_energy_per_atom", "--train-sizes", "12", "--seeds", "2",
        "--epochs", "2", "--test-fraction", "0.2", "--early-stopping", "1"]


@pytest.fixture(scope="module")
def user_csv(tmp_path_factory):
    frame = pd.read_csv(bundled_demo_table(), nrows=36)
    frame["formation_energy_per_atom"] = frame["formation_energy_per_atom"].astype(object)
    frame.loc[3, "formation_energy_per_atom"] = "n/a"
    frame.loc[5, "cif"] = "not a cif"
    path = tmp_path_factory.mktemp("bench") / "mine.csv.gz"
    frame.to_csv(path, index=False)
    return path, frame.material_id[3], frame.material_id[5]


def _rows(out):
    with open(out / "results.csv") as handle:
        return list(csv.DictReader(handle))


def test_tiny_grid_end_to_end_and_resume(user_csv, tmp_path, capsys):
    path, bad_target, bad_cif = user_csv
    out = tmp_path / "sweep"
    argv = ["bench", "--dataset", str(path), *TINY, "--modes", "vanilla,distilled", "--out", str(out)]
    assert main([*argv, "--plan"]) == 0
    assert "4 run(s) in" in capsys.readouterr().out and not out.exists()  # --plan writes nothing
    assert main(argv) == 0
    rows = _rows(out)
    assert len(rows) == 4
    for column in ("task", "predictor", "mode", "teacher", "train_size", "seed", "val_mae", "test_mae",
                   "best_epoch", "epochs", "seconds", "kd_mean"):
        assert column in rows[0]
    assert {(r["mode"], r["seed"]) for r in rows} == {(m, s) for m in ("vanilla", "distilled") for s in ("0", "1")}
    for row in rows:
        assert math.isfinite(float(row["test_mae"])) and 1 <= int(row["best_epoch"]) <= int(row["epochs"]) <= 2
        assert row["train_size"] == "12"
    distilled = [r for r in rows if r["mode"] == "distilled"]
    assert all(float(r["kd_mean"]) > 0 for r in distilled)
    summary = (out / "summary.md").read_text()
    assert "distilled · crysgnn-denoise" in summary and "95 % CI" in summary
    skipped = (out / "skipped.tsv").read_text()
    assert bad_target in skipped and bad_cif in skipped
    assert list(out.glob("mae_vs_size_*.png")) and list(out.glob("parity_*.png"))

    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    capsys.readouterr()
    assert main(argv) == 0
    assert "4 stored, 0 to run" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")} == stamps
    invocations = [json.loads(line) for line in (out / "invocations.jsonl").read_text().splitlines()]
    assert len(invocations) == 2 and all(entry["runs"] == 4 for entry in invocations)
    assert invocations[1]["options"]["modes"] == ["vanilla", "distilled"]
    assert sorted(invocations[0]["keys"]) == sorted(p.stem for p in (out / "runs").glob("*.json"))


    # --plan: stored runs with their test MAE, a run in progress with the epoch it resumes
    # after, an unusable checkpoint named, the rest to run; nothing is written
    from crysgnn_dgl.bench.sweep import partial_path
    from crysgnn_dgl.cli import build_parser
    from crysgnn_dgl.cli.bench import build_grid
    from crysgnn_dgl.training.resume import EpochCheckpoint

    wider = [*argv, "--seeds", "3"]
    new_specs = [s for s in build_grid(build_parser().parse_args(wider)).specs() if s.seed == 2]
    EpochCheckpoint(partial_path(out, new_specs[0])).save({"settings": {}, "epoch": 1})
    partial_path(out, new_specs[1]).write_bytes(b"not a checkpoint")
    capsys.readouterr()
    assert main([*wider, "--plan"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].endswith("4 stored, 2 in progress, 0 to run")
    stored = {f"seed {r['seed']}: stored (test MAE {float(r['test_mae']):.4g}" for r in rows}
    assert sum(any(line.startswith(mark, line.index("seed ")) for mark in stored) for line in lines[:-1]) == 4
    assert "seed 2: in progress (resumes after epoch 1 of a 2-epoch budget)" in lines[4]
    assert "unusable epoch checkpoint" in lines[5] and str(partial_path(out, new_specs[1])) in lines[5]
    assert len((out / "invocations.jsonl").read_text().splitlines()) == 2


def test_paired_vanilla_is_bit_identical_and_lambda_zero_equals_vanilla(user_csv, tmp_path):
    path, _, _ = user_csv
    results = []
    for name, extra in (("a", []), ("b", ["--kd-weights", "0"])):
        out = tmp_path / name
        assert main(["bench", "--dataset", str(path), *TINY, "--modes", "vanilla,distilled",
                     "--seeds", "1", "--out", str(out), *extra]) == 0
        results.append({json.loads(p.read_text())["mode"]: json.loads(p.read_text())
                        for p in (out / "runs").glob("*.json")})
    first, second = results
    assert first["vanilla"]["test_predictions"] == second["vanilla"]["test_predictions"]
    assert first["vanilla"]["history"] == second["vanilla"]["history"]
    # λ = 0: the teacher is attached (head, warm pre-pass) but adds nothing, so the run
    # is the vanilla run exactly: same split, initial weights and batch order
    assert second["distilled"]["test_predictions"] == second["vanilla"]["test_predictions"]
    assert first["distilled"]["test_predictions"] != first["vanilla"]["test_predictions"]


def test_bad_options_are_one_line_errors(user_csv, tmp_path, capsys):
    path, _, _ = user_csv
    assert main(["bench", "--dataset", str(path), "--target", "nope", "--out", str(tmp_path)]) == 2
    assert "no target column 'nope'" in capsys.readouterr().err
    assert main(["bench", "--dataset", str(tmp_path / "missing.csv"), "--target", "x", "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_config_file_fills_options(user_csv, tmp_path):
    from crysgnn_dgl.cli import build_parser
    from crysgnn_dgl.cli.bench import apply_config

    config = tmp_path / "sweep.toml"
    config.write_text('kd_weights = [1, 10]\ntrain_sizes = "50,100"\nmodes = ["vanilla"]\nseeds = 3\n')
    args = apply_config(build_parser().parse_args(["bench", "--config", str(config), "--seeds", "4"]))
    assert args.kd_weights == [1.0, 10.0] and args.train_sizes == [50, 100]
    assert args.modes == ["vanilla"] and args.seeds == 4  # the command line wins


def test_named_tasks_follow_their_splits():
    if not data_file("mp_cgcnn36k.csv.xz").is_file():
        pytest.skip("../shared/data not found")
    task = load_task(TaskSpec(name="mp_eform"))
    assert (len(task.pool), len(task.test), len(task.val)) == (31623, 2238, 1000)
    assert not set(task.pool) & set(task.test)
    assert task.train_candidates(500, 0)[:500] != task.train_candidates(500, 1)[:500]
    elastic = load_task(TaskSpec(name="log_kvrh"))
    row = pd.read_csv(data_file("mp_elastic3k.csv.xz"), nrows=1)
    assert float(elastic.targets[0]) == pytest.approx(math.log10(row.K_VRH[0]), rel=1e-6)


def test_paired_gain_against_hand_computation():
    reference = {0: 1.0, 1: 1.0, 2: 1.0}
    gain = paired_gain(reference, {0: 0.9, 1: 0.8, 2: 0.7})
    assert gain.mean == pytest.approx(0.2)
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t(0.975, 2) · sd / √n
    assert gain.ci == pytest.approx((0.2 - half, 0.2 + half))
    assert gain.p_value == pytest.approx(0.07417990022744853, rel=1e-6)  # t = 2√3, 2 dof
    assert gain.wins == 3


def test_transfer_from_a_source_task(tmp_path):
    """DFT → experiment (the CrysGNN paper's Table 5) on a tiny budget: trained on MP
    formation energies first, then on 20 % of the experimental enthalpies. The trained
    source model is stored and reused, with the same result as training it again."""
    data_file("oqmd_ssub_experimental.dat")
    out = tmp_path / "transfer"
    command = ["bench", "--task", "exp_eform", "--source-task", "mp_eform", "--source-size", "16",
               "--limit", "150", "--train-fraction", "0.2", "--train-sizes", "all", "--seeds", "1",
               "--epochs", "2", "--early-stopping", "1", "--modes", "vanilla,distilled", "--out", str(out)]
    assert main(command) == 0
    trained = {r["mode"]: r for r in (json.loads(p.read_text()) for p in (out / "runs").glob("*.json"))}
    record = trained["vanilla"]
    assert record["task"] == "exp_eform←mp_eform 16"
    assert record["train_size"] == 30  # 20 % of the first 150 matched formulas
    assert math.isfinite(record["source_test_mae"]) and math.isfinite(record["test_mae"])
    assert len(record["test_targets"]) == 150 - 30 - 15
    sources = sorted((out / "source_models").glob("*.pt"))
    assert len(sources) == 2  # one per mode

    for path in (out / "runs").glob("*.json"):
        path.unlink()
    assert main(command) == 0  # now from the stored source models
    for mode, again in ((r["mode"], r) for r in (json.loads(p.read_text()) for p in (out / "runs").glob("*.json"))):
        for field in ("source_test_mae", "source_best_epoch", "val_mae", "test_predictions", "history"):
            assert again[field] == trained[mode][field], (mode, field)

    for path in sources:  # proof that the stored model, not a new training, gave the source figures
        saved = torch.load(path, weights_only=True)
        torch.save({**saved, "test_mae": 123.0}, path)
    for path in (out / "runs").glob("*.json"):
        path.unlink()
    assert main(command) == 0
    assert {json.loads(p.read_text())["source_test_mae"] for p in (out / "runs").glob("*.json")} == {123.0}


def test_teacher_depth_is_its_own_arm(user_csv, tmp_path, capsys):
    path, _, _ = user_csv
    out = tmp_path / "depth"
    base = ["bench", "--dataset", str(path), *TINY, "--seeds", "1", "--out", str(out)]
    assert main([*base, "--modes", "vanilla,distilled"]) == 0
    assert main([*base, "--modes", "vanilla,distilled", "--teacher-depth", "2"]) == 0
    assert "2 run(s): 1 stored, 1 to run" in capsys.readouterr().out  # vanilla is shared, the depth-2 arm is new
    runs = {json.loads(p.read_text())["teacher"]: json.loads(p.read_text()) for p in (out / "runs").glob("*.json")
            if json.loads(p.read_text())["mode"] == "distilled"}
    assert set(runs) == {"crysgnn-denoise", "crysgnn-denoise (conv2)"}  # the default: its recorded depth 1
    assert runs["crysgnn-denoise"]["test_predictions"] != runs["crysgnn-denoise (conv2)"]["test_predictions"]
    assert main([*base, "--modes", "distilled", "--teacher-depth", "1", "--teacher", "m3gnet"]) == 2
    assert "teacher_depth applies to a CrysGNN teacher" in capsys.readouterr().err
