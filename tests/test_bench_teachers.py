"""``crysgnn-dgl bench --teacher m3gnet``: named teachers in run keys (CrysGNN runs keep
their keys), modes that need a CrysGNN teacher refused in one line, and a tiny sweep."""

from __future__ import annotations

import csv
import hashlib
import json

import pytest
import torch

from crysgnn_dgl.bench.spec import KDRecipe, RunSpec
from crysgnn_dgl.bench.tasks import TaskSpec
from crysgnn_dgl.cli import main
from crysgnn_dgl.teacher import default_teacher_path, load_teacher

from test_bench import TINY, user_csv  # noqa: F401 - the shared tiny CSV fixture

pytestmark = pytest.mark.filterwarnings("ignore")
TASK = TaskSpec(name="file", file="mine.csv", target="y")
CRYSGNN_KEYS = {"task", "predictor", "mode", "train_size", "seed", "teacher", "teacher_sha256", "recipe", "training"}


def _crysgnn_digest(teacher) -> str:
    """Independent of the code under test: weights/featuriser fingerprint + architecture."""
    settings = json.dumps(teacher.model_settings.to_dict(), sort_keys=True).encode()
    return hashlib.sha256(bytes(teacher.fingerprint()) + settings).hexdigest()[:16]


def test_crysgnn_teacher_runs_keep_their_keys(tmp_path):
    bundled = _crysgnn_digest(load_teacher())
    copy = tmp_path / "mine.pt"
    copy.write_bytes(default_teacher_path().read_bytes())
    for teacher, label in ((None, "crysgnn-denoise"), ("crysgnn-denoise", "crysgnn-denoise"), (str(copy), "mine.pt")):
        for mode in ("vanilla", "distilled", "random-teacher", "finetune"):
            values = RunSpec(TASK, "cgcnn", mode, 12, 0, teacher, KDRecipe()).to_dict()
            assert set(values) == CRYSGNN_KEYS
            uses = mode != "vanilla"
            assert values["teacher"] == (("random-init" if mode == "random-teacher" else label) if uses else "")
            assert values["teacher_sha256"] == (bundled if uses else "")


def _rewritten(tmp_path, name: str, training_update: dict, scale: float = 1.0) -> str:
    """A copy of the default teacher's checkpoint with other records and/or scaled weights."""
    raw = torch.load(default_teacher_path(), map_location="cpu", weights_only=True)
    raw["training"] = {**raw["training"], **training_update}
    first = sorted(raw["state_dict"])[0]
    raw["state_dict"][first] = raw["state_dict"][first] * scale
    torch.save(raw, tmp_path / name)
    return str(tmp_path / name)


def test_crysgnn_keys_follow_weights_and_depth_not_file_bytes(tmp_path):
    """Recording another λ (or any training record) keeps the teacher's digest, and so the
    keys of its stored runs; other weights or another recorded depth change it."""
    distillation = load_teacher().checkpoint.training["distillation"]

    def key(path: str | None) -> str:
        return RunSpec(TASK, "cgcnn", "distilled", 12, 0, path).to_dict()["teacher_sha256"]

    default = key(None)
    relabelled = _rewritten(tmp_path, "relabelled.pt", {"distillation": {**distillation, "kd_weight": 30.0}, "note": "x"})
    assert load_teacher(relabelled).recommended_kd_weight == 30.0
    assert key(relabelled) == default
    assert key(_rewritten(tmp_path, "perturbed.pt", {}, scale=1.001)) != default
    assert key(_rewritten(tmp_path, "deeper.pt", {"distillation": {**distillation, "depth": 2}})) != default


def test_named_teachers_are_keyed_by_their_fingerprint():
    gc_1 = RunSpec(TASK, "cgcnn", "distilled", 12, 0, "m3gnet")
    gc_2 = RunSpec(TASK, "cgcnn", "distilled", 12, 0, "m3gnet:gc_2")
    assert gc_1.teacher_label == "m3gnet" and gc_2.teacher_label == "m3gnet:gc_2"
    assert gc_1.to_dict()["teacher_sha256"] == load_teacher("m3gnet").fingerprint().hex()[:16]
    assert len({gc_1.key(), gc_2.key(), RunSpec(TASK, "cgcnn", "distilled", 12, 0).key()}) == 3
    assert RunSpec(TASK, "cgcnn", "vanilla", 12, 0, "m3gnet").key() == RunSpec(TASK, "cgcnn", "vanilla", 12, 0).key()
    for mode in ("random-teacher", "finetune"):
        with pytest.raises(ValueError, match=f"mode '{mode}' needs a CrysGNN teacher"):
            RunSpec(TASK, "cgcnn", mode, 12, 0, "m3gnet")


def test_tiny_sweep_with_the_m3gnet_teacher(user_csv, tmp_path, capsys):  # noqa: F811
    path, _, _ = user_csv
    out = tmp_path / "m3gnet"
    common = ["bench", "--dataset", str(path), *TINY, "--seeds", "1", "--teacher", "m3gnet", "--out", str(out)]
    assert main([*common, "--modes", "vanilla,distilled,shuffled-teacher"]) == 0
    with open(out / "results.csv") as handle:
        rows = {row["mode"]: row for row in csv.DictReader(handle)}
    assert rows["distilled"]["teacher"] == rows["shuffled-teacher"]["teacher"] == "m3gnet"
    assert float(rows["distilled"]["kd_mean"]) > 0 and float(rows["shuffled-teacher"]["kd_mean"]) > 0
    assert rows["distilled"]["test_mae"] != rows["vanilla"]["test_mae"]
    assert "distilled · m3gnet" in (out / "summary.md").read_text()
    capsys.readouterr()
    assert main([*common, "--modes", "vanilla,finetune"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "mode 'finetune' needs a CrysGNN teacher" in error


def test_stores_of_a_file_task_keep_one_index_per_predictor(user_csv, tmp_path):  # noqa: F811
    """A user file's task label holds a dot (``mine.csv.gz``): each predictor's store must
    still find its own index, not the other's (multi-predictor sweeps with --jobs read them)."""
    from crysgnn_dgl.bench.graphs import GraphStore
    from crysgnn_dgl.bench.predictors import predictor
    from crysgnn_dgl.bench.tasks import load_task

    path, _, _ = user_csv
    task = load_task(TaskSpec(name="file", file=str(path), target="formation_energy_per_atom", limit=8))
    for name in ("cgcnn", "alignn"):
        GraphStore(task, predictor(name), tmp_path).ensure(range(4))
    for name, width in (("cgcnn", 1), ("alignn", 3)):
        reread = GraphStore(task, predictor(name), tmp_path)
        assert reread.index_path.name.endswith(f"-{name}-{reread.stem.name.rsplit('-', 1)[1]}.json")
        assert {len(inputs) for inputs in reread.inputs.values()} == {width}


def test_default_lambda_is_the_teachers_recommendation():
    """Without ``--kd-weights`` a run distils at the λ its teacher recommends (what
    ``attach_teacher`` uses), and its key holds that number."""
    for teacher in (None, "crysgnn-multitask", "m3gnet"):
        recommended = load_teacher(teacher).recommended_kd_weight
        for mode in ("distilled", "shuffled-teacher"):
            implicit = RunSpec(TASK, "cgcnn", mode, 12, 0, teacher, KDRecipe())
            explicit = RunSpec(TASK, "cgcnn", mode, 12, 0, teacher, KDRecipe(kd_weight=recommended))
            assert implicit.recipe.kd_weight == recommended and implicit.key() == explicit.key()
    assert load_teacher("crysgnn-multitask").recommended_kd_weight == 1.0
    with pytest.raises(ValueError, match="λ is not set"):
        KDRecipe().distill_settings()
