"""DistillHook semantics on a module with the original CGCNN call signature (real
structures, a randomly initialised teacher)."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F

from crysgnn_dgl import DistillHook, FrozenTeacher, attach_teacher
from crysgnn_dgl.distill import HEAD_NAME

from _distill_fixtures import (
    Capture,
    OriginalSignatureCGCNN,
    assert_same_grads,
    explicit_gradients,
    mp_structures,
    original_cgcnn_batch,
    parameter_grads,
    teacher_rows,
)

pytestmark = pytest.mark.filterwarnings("ignore:Issues encountered while parsing CIF")


@pytest.fixture(scope="module")
def crystals():
    structures = mp_structures(6)
    atom_fea, nbr_fea, nbr_idx, crystal_idx = original_cgcnn_batch(structures)
    batch = (atom_fea.double(), nbr_fea.double(), nbr_idx, crystal_idx)
    targets = torch.linspace(-1.0, 1.0, len(structures), dtype=torch.float64).unsqueeze(1)
    return structures, batch, targets


def make_student(seed=0):
    torch.manual_seed(seed)
    return OriginalSignatureCGCNN().double()


def test_backward_injection_equals_explicit_loss_plus_lambda_kd(teacher, crystals):
    structures, batch, y = crystals
    model = make_student()
    hook = attach_teacher(model, teacher, cache=False, delta=0.25)
    assert isinstance(hook, DistillHook) and hook.kd_weight == pytest.approx(3.0)
    F.mse_loss(model(*batch), y).backward()
    injected = parameter_grads(model)
    assert any(name.startswith(HEAD_NAME) for name in injected)

    reference, kd = explicit_gradients(
        model, hook, lambda: Capture(model.convs[-1]), lambda: F.mse_loss(model(*batch), y),
        teacher_rows(teacher, structures), [len(c) for c in batch[3]], kd_weight=3.0,
    )
    assert_same_grads(injected, reference)
    assert hook.last_kd == pytest.approx(float(kd.detach()), rel=1e-9)


def test_explicit_mode_gives_identical_gradients(teacher, crystals):
    _, batch, y = crystals
    grads = []
    for explicit in (False, True):
        model = make_student()
        hook = attach_teacher(model, teacher, cache=False, mode="explicit" if explicit else "backward")
        loss = F.mse_loss(model(*batch), y)
        if explicit:
            loss = loss + hook.kd_loss()
        loss.backward()
        grads.append(parameter_grads(model))
    assert_same_grads(grads[0], grads[1], atol=0)


def test_kd_loss_in_backward_mode_is_not_counted_twice(teacher, crystals):
    _, batch, y = crystals
    model = make_student()
    hook = attach_teacher(model, teacher, cache=False)
    (F.mse_loss(model(*batch), y) + hook.kd_loss()).backward()
    once = parameter_grads(model)
    model.zero_grad()
    F.mse_loss(model(*batch), y).backward()
    assert_same_grads(once, parameter_grads(model), atol=0)


def test_kd_actually_changes_gradients(teacher, crystals):
    _, batch, y = crystals
    model = make_student()
    F.mse_loss(model(*batch), y).backward()
    plain = parameter_grads(model)
    model.zero_grad()
    attach_teacher(model, teacher, cache=False)
    F.mse_loss(model(*batch), y).backward()
    distilled = parameter_grads(model)
    assert not torch.allclose(plain["embedding.weight"], distilled["embedding.weight"])
    assert torch.equal(plain["fc_out.weight"], distilled["fc_out.weight"])  # after the hooked layer


def test_no_teacher_work_in_eval_or_no_grad(teacher, crystals):
    _, batch, y = crystals
    model = make_student()
    hook = attach_teacher(model, teacher, cache=False)
    model.eval()
    model(*batch)
    model.train()
    with torch.no_grad():
        model(*batch)
    assert hook.teacher_calls == 0 and hook.last_kd is None
    assert hook.kd_loss().requires_grad is False and float(hook.kd_loss()) == 0.0
    model(*batch)
    assert hook.teacher_calls == 1


def test_delta_one_disables_kd(teacher, crystals):
    _, batch, y = crystals
    model = make_student()
    hook = attach_teacher(model, teacher, delta=1.0)
    F.mse_loss(model(*batch), y).backward()
    assert hook.kd_weight == 0.0 and hook.teacher_calls == 0
    with pytest.raises(ValueError, match="delta"):
        attach_teacher(make_student(), teacher, delta=0.0)


def test_remove_restores_state_dict_keys_and_hooks(teacher, crystals):
    _, batch, _ = crystals
    model = make_student()
    before = list(model.state_dict())
    hook = attach_teacher(model, teacher)
    assert f"{HEAD_NAME}.weight" in model.state_dict()
    hook.remove()
    assert list(model.state_dict()) == before
    assert not model._forward_hooks and not model._forward_pre_hooks
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    model(*batch)
    assert hook.teacher_calls == 0


def test_teacher_is_never_part_of_the_student(teacher, crystals):
    _, batch, y = crystals
    model = make_student()
    names_before = {n for n, _ in model.named_parameters()}
    hook = attach_teacher(model, teacher)
    teacher_ids = {id(p) for p in teacher._model.parameters()}
    assert not teacher_ids & {id(p) for p in model.parameters()}
    assert not any(isinstance(m, FrozenTeacher) or m is teacher._model for m in model.modules())
    assert {n for n, _ in model.named_parameters()} == names_before | {f"{HEAD_NAME}.weight", f"{HEAD_NAME}.bias"}
    model.train()
    teacher.train()
    teacher._model.train()
    assert not any(m.training for m in teacher._model.modules())
    stats = teacher._model.convs[0].bn1.running_mean.clone()
    F.mse_loss(model(*batch), y).backward()
    assert torch.equal(stats, teacher._model.convs[0].bn1.running_mean)
    assert all(p.grad is None for p in teacher._model.parameters())
    assert hook.teacher_calls == 1


def test_last_kd_and_running_mean(teacher, crystals):
    _, batch, y = crystals
    model = make_student()
    hook = attach_teacher(model, teacher)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05)
    values = []
    for _ in range(3):
        optimiser.zero_grad()
        F.mse_loss(model(*batch), y).backward()
        optimiser.step()
        values.append(hook.last_kd)
    assert len(set(values)) == 3
    assert hook.kd_mean == pytest.approx(sum(values) / 3)
    hook.reset_kd_mean()
    assert hook.kd_mean is None


def test_validation_forward_never_leaks_into_training(teacher, crystals):
    structures, batch, y = crystals
    val = original_cgcnn_batch(structures[3:])
    val = (val[0].double(), val[1].double(), val[2], val[3])
    model = make_student()
    hook = attach_teacher(model, teacher, cache=False)
    out_train = model(*batch)
    train_kd_graph = hook._step
    F.mse_loss(model(*val), y[3:]).item()  # alignn-style validation: training mode, grad on, no backward
    F.mse_loss(out_train, y).backward()
    leaked = parameter_grads(model)
    assert hook.last_kd == pytest.approx(float(train_kd_graph.kd.detach()))
    model.zero_grad()
    F.mse_loss(model(*batch), y).backward()
    assert_same_grads(leaked, parameter_grads(model), atol=1e-12)


def test_retain_graph_double_backward_injects_once(teacher, crystals):
    _, batch, y = crystals
    model = make_student()
    hook = attach_teacher(model, teacher, cache=False)
    loss = F.mse_loss(model(*batch), y)
    loss.backward(retain_graph=True)
    loss.backward()
    twice = parameter_grads(model)
    model.zero_grad()
    loss = F.mse_loss(model(*batch), y)
    (2 * loss + hook.kd_loss()).backward()
    assert_same_grads(twice, parameter_grads(model))


def test_loss_independent_of_hooked_layer_gets_nothing_and_warns(teacher, crystals):
    _, batch, _ = crystals
    model = make_student()
    hook = attach_teacher(model, teacher, cache=False)
    with pytest.warns(RuntimeWarning, match="never reached a backward pass"):
        for _ in range(hook.settings.warn_after + 2):
            model.zero_grad()
            model(*batch)
            model.embedding.weight.sum().backward()  # does not go through convs[-1]
    assert hook.last_kd is None
    assert torch.equal(model.embedding.weight.grad, torch.ones_like(model.embedding.weight))


def test_head_outside_the_optimiser_warns(teacher, crystals):
    _, batch, y = crystals
    model = make_student()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01)  # built before attaching
    hook = attach_teacher(model, teacher)
    assert {id(p) for p in hook.parameters()} == {id(p) for p in hook.head.parameters()}
    with pytest.warns(RuntimeWarning, match="add hook.parameters"):
        for _ in range(hook.settings.warn_after + 3):
            optimiser.zero_grad()
            F.mse_loss(model(*batch), y).backward()
            optimiser.step()


def test_head_inside_the_optimiser_is_trained_without_warning(teacher, crystals):
    _, batch, y = crystals
    model = make_student()
    hook = attach_teacher(model, teacher, projection="mlp")
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    first = copy.deepcopy(hook.head.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for _ in range(hook.settings.warn_after + 3):
            optimiser.zero_grad()
            F.mse_loss(model(*batch), y).backward()
            optimiser.step()
    assert not torch.equal(first["0.weight"], hook.head.state_dict()["0.weight"])


def test_lazy_head_when_width_unknown(teacher, crystals):
    _, batch, y = crystals
    model = make_student()
    from crysgnn_dgl.adapters.cgcnn import CGCNNSignatureAdapter

    class Unknown(CGCNNSignatureAdapter):
        def student_width(self, student):
            return None

    hook = attach_teacher(model, teacher, adapter=Unknown())
    assert isinstance(hook.head.weight, torch.nn.parameter.UninitializedParameter)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)  # holds the lazy parameters
    before = None
    for _ in range(2):
        optimiser.zero_grad()
        F.mse_loss(model(*batch), y).backward()
        optimiser.step()
        before = before if before is not None else hook.head.weight.detach().clone()
    assert hook.head.weight.shape == (teacher.embedding_dim, 32)
    assert not torch.equal(before, hook.head.weight)


def test_grad_scaler_scales_the_injected_seed(teacher, crystals):
    _, batch, y = crystals
    grads = []
    for scaled in (False, True):
        model = make_student()
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0) if scaled else None
        attach_teacher(model, teacher, cache=False, grad_scaler=scaler)
        loss = F.mse_loss(model(*batch), y)
        if scaled:
            scaler.scale(loss).backward()
            for p in model.parameters():
                p.grad /= 1024.0
        else:
            loss.backward()
        grads.append(parameter_grads(model))
    assert_same_grads(grads[0], grads[1], atol=1e-9)


def test_unregistered_scaler_shrinks_kd_documented_limit(teacher, crystals):
    """Without grad_scaler=, a loop that scales its loss scales only L: the KD part of the
    unscaled gradient is divided by the scale (the documented limit)."""
    _, batch, y = crystals
    model = make_student()
    hook = attach_teacher(model, teacher, cache=False)
    (1024.0 * F.mse_loss(model(*batch), y)).backward()
    scaled = {k: v / 1024.0 for k, v in parameter_grads(model).items()}
    model.zero_grad()
    (F.mse_loss(model(*batch), y) + hook.kd_loss() / 1024.0).backward()
    assert_same_grads(scaled, parameter_grads(model), atol=1e-9)


def test_chosen_layer_that_never_runs_raises(teacher, crystals):
    _, batch, y = crystals
    class Skipping(OriginalSignatureCGCNN):
        pass

    skipping = Skipping().double()
    skipping.convs.append(type(skipping.convs[0])(32, 41).double())
    original_forward = OriginalSignatureCGCNN.forward

    def forward(atom_fea, nbr_fea, nbr_fea_idx, crystal_atom_idx):
        convs = skipping.convs
        skipping.convs = convs[:-1]
        try:
            return original_forward(skipping, atom_fea, nbr_fea, nbr_fea_idx, crystal_atom_idx)
        finally:
            skipping.convs = convs

    skipping.forward = forward
    attach_teacher(skipping, teacher, adapter="cgcnn_original")
    with pytest.raises(RuntimeError, match="never ran"):
        skipping(*batch)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["eager", "inductor"])
def test_torch_compile_after_attaching_keeps_the_kd_term(teacher, crystals, backend):
    """Attached before ``torch.compile``: the compiled student's gradients are those of the
    eager hooked student (the hooks run eagerly, a graph break at the hooked layer)."""
    _, batch, y = crystals
    eager = make_student()
    attach_teacher(eager, teacher, cache=False)
    F.mse_loss(eager(*batch), y).backward()
    expected = parameter_grads(eager)
    model = make_student()
    hook = attach_teacher(model, teacher, cache=False)
    compiled = torch.compile(model, backend=backend)
    F.mse_loss(compiled(*batch), y).backward()
    assert hook._injections == 1 and hook.teacher_crystals == 6
    assert_same_grads(parameter_grads(model), expected)
    with torch.no_grad():
        compiled.eval()
        compiled(*batch)
    assert hook.teacher_crystals == 6  # no teacher work in eval / no_grad, compiled or not
