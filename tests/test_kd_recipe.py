"""KD recipe options of the hook (target standardisation, raw targets, cosine loss,
identity projection, shuffled-target control, warm pre-pass, KD-weight scale), each
checked against the KD written out independently from the teacher's own embeddings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from crysgnn_dgl import attach_teacher, build_graph, load_teacher
from crysgnn_dgl.backend import dgl
from crysgnn_dgl.distill import DistillSettings
from crysgnn_dgl.models.cgcnn import CGCNN

from _distill_fixtures import Capture, mp_structures

pytestmark = pytest.mark.filterwarnings("ignore:Issues encountered while parsing CIF")


@pytest.fixture(scope="module")
def setup():
    teacher = load_teacher()
    structures = mp_structures(6)
    graphs = [build_graph(s, teacher.graph_settings) for s in structures]
    return teacher, graphs


def _kd_of(settings: DistillSettings, teacher, graphs, warm_graphs=None):
    torch.manual_seed(0)
    model = CGCNN()
    hook = attach_teacher(model, teacher, adapter="cgcnn", cache=False, settings=settings)
    if warm_graphs is not None:
        hook.warm([(dgl.batch(warm_graphs),)])
    capture = Capture(model.convs[-1])
    model.train()
    batch = dgl.batch(graphs)
    model(batch).sum().backward()
    student = capture.value.detach()
    capture.remove()
    return hook, student, [g.num_nodes() for g in graphs]


def _mean_over_crystals(per_atom: torch.Tensor, counts: list[int]) -> torch.Tensor:
    return torch.stack([chunk.mean() for chunk in torch.split(per_atom, counts)]).mean()


def test_standardized_targets_use_warm_statistics(setup):
    teacher, graphs = setup
    settings = DistillSettings.from_kd_weight(3.0, target_norm="standardize")
    assert settings.kd_weight == pytest.approx(3.0) and settings.normalize_student is False
    hook, student, counts = _kd_of(settings, teacher, graphs[:3], warm_graphs=graphs)
    rows = teacher.embed(dgl.batch(graphs)).double()
    mean, std = rows.mean(0), rows.std(0, unbiased=False)
    target = (teacher.embed(dgl.batch(graphs[:3])) - mean.float()) / std.float()
    per_atom = (hook.head(student) - target).pow(2).mean(1)
    assert hook.last_kd == pytest.approx(float(_mean_over_crystals(per_atom, counts)), rel=1e-5)


def test_standardize_without_warm_is_refused(setup):
    teacher, graphs = setup
    with pytest.raises(RuntimeError, match="hook.warm"):
        _kd_of(DistillSettings(target_norm="standardize"), teacher, graphs)


def test_raw_targets_and_cosine_loss(setup):
    teacher, graphs = setup
    hook, student, counts = _kd_of(DistillSettings(target_norm="none", loss="cosine"), teacher, graphs)
    raw = teacher.embed(dgl.batch(graphs), normalized=False)
    assert not torch.allclose(raw.norm(dim=1), torch.ones(raw.shape[0]))  # really before the L2 norm
    per_atom = 1 - F.cosine_similarity(hook.head(student), raw, dim=1)
    assert hook.last_kd == pytest.approx(float(_mean_over_crystals(per_atom, counts)), rel=1e-5)


def test_identity_projection(setup):
    teacher, graphs = setup
    hook, student, counts = _kd_of(DistillSettings(projection="identity"), teacher, graphs)
    assert list(hook.head.parameters()) == []
    per_atom = (F.normalize(student, dim=1) - teacher.embed(dgl.batch(graphs))).pow(2).mean(1)
    assert hook.last_kd == pytest.approx(float(_mean_over_crystals(per_atom, counts)), rel=1e-5)
    with pytest.raises(ValueError, match="identity"):
        from crysgnn_dgl.models.cgcnn import CGCNNSettings

        attach_teacher(CGCNN(CGCNNSettings(atom_fea_len=32)), teacher, settings=DistillSettings(projection="identity"))


def test_shuffled_targets_permute_rows_across_the_batch(setup):
    teacher, graphs = setup
    hook, student, counts = _kd_of(DistillSettings(shuffle_targets=True, shuffle_seed=7), teacher, graphs)
    target = teacher.embed(dgl.batch(graphs))
    order = torch.randperm(target.shape[0], generator=torch.Generator().manual_seed(7))
    per_atom = (F.normalize(hook.head(student), dim=1) - target[order]).pow(2).mean(1)
    assert hook.last_kd == pytest.approx(float(_mean_over_crystals(per_atom, counts)), rel=1e-5)
    true_pairs = (F.normalize(hook.head(student), dim=1) - target).pow(2).mean(1)
    assert float(_mean_over_crystals(true_pairs, counts)) != pytest.approx(hook.last_kd, rel=1e-3)


def test_warm_fills_the_cache_and_kd_scale_multiplies_lambda(setup):
    teacher, graphs = setup
    torch.manual_seed(0)
    model = CGCNN()
    hook = attach_teacher(model, teacher, adapter="cgcnn", delta=0.5)
    before = torch.get_num_threads()
    assert hook.warm([(dgl.batch(graphs[:3]),), (dgl.batch(graphs[3:]),)], threads=2) == len(graphs)
    assert torch.get_num_threads() == before  # the caller's thread count is restored
    calls = hook.teacher_calls
    model.train()
    model(dgl.batch(graphs)).sum()
    assert hook.teacher_calls == calls  # every crystal came from the cache
    hook.kd_scale = 0.25
    assert hook.kd_weight == pytest.approx(0.25)
    hook.remove()


def test_bench_recipe_defaults_are_the_hook_defaults():
    from crysgnn_dgl import load_teacher
    from crysgnn_dgl.bench.spec import RunSpec
    from crysgnn_dgl.bench.tasks import TaskSpec

    run = RunSpec(TaskSpec(name="file", file="mine.csv", target="y"), "cgcnn", "distilled", 12, 0)
    chosen, hook_default = run.recipe.distill_settings(), DistillSettings()
    # λ: what attach_teacher takes from the default teacher; the rest: DistillSettings' defaults
    assert chosen.kd_weight == pytest.approx(load_teacher().recommended_kd_weight)
    assert chosen.differences(hook_default).keys() <= {"delta"}
