"""Checks every teacher that reads structures must pass (M3GNet, CHGNet): batching does
not change a crystal's rows, rotation/translation/permutation invariance, the frozen
guarantees, and distillation through the hook into the benchmark's predictors."""

from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Structure
from pymatgen.core.operations import SymmOp

from crysgnn_dgl import CGCNN, attach_teacher, build_graph
from crysgnn_dgl.backend import dgl
from crysgnn_dgl.teachers import Crystals, Teacher


def crystals_of(structures: list[Structure]) -> Crystals:
    return Crystals(
        torch.tensor([site.specie.Z for s in structures for site in s]),
        torch.tensor(np.concatenate([s.frac_coords for s in structures])),
        torch.tensor(np.stack([s.lattice.matrix for s in structures])),
        [len(s) for s in structures],
        [s.composition.reduced_formula for s in structures],
    )


def rows_per_crystal(teacher, structures: list[Structure]) -> list[torch.Tensor]:
    return list(torch.split(teacher.embed_crystals(crystals_of(structures)), [len(s) for s in structures]))


def check_batch_independence(teacher, structures: list[Structure], atol: float) -> None:
    together = rows_per_crystal(teacher, structures)
    reordered = rows_per_crystal(teacher, structures[::-1])[::-1]
    for structure, rows, again in zip(structures, together, reordered):
        alone = teacher.embed_crystals(crystals_of([structure]))
        torch.testing.assert_close(rows, alone, atol=atol, rtol=0)
        torch.testing.assert_close(again, alone, atol=atol, rtol=0)


def check_invariance(teacher, structure: Structure, atol: float) -> None:
    reference = teacher.embed_crystals(crystals_of([structure]))
    moved = structure.copy()
    moved.apply_operation(SymmOp.from_axis_angle_and_translation([1, 2, 3], 37.0))  # rotates the lattice too
    moved.translate_sites(list(range(len(moved))), [0.31, -0.12, 0.45])
    torch.testing.assert_close(teacher.embed_crystals(crystals_of([moved])), reference, atol=atol, rtol=0)
    order = np.random.default_rng(0).permutation(len(structure))
    permuted = Structure.from_sites([structure[i] for i in order])
    torch.testing.assert_close(teacher.embed_crystals(crystals_of([permuted])), reference[order], atol=atol, rtol=0)


def check_frozen(teacher, structures: list[Structure]) -> None:
    assert isinstance(teacher, Teacher) and not isinstance(teacher, torch.nn.Module)
    model = teacher._model
    assert all(not p.requires_grad for p in model.parameters())
    model.train()
    teacher.train()
    assert not teacher.training and not any(m.training for m in model.modules())
    student = CGCNN()
    hook = attach_teacher(student, teacher=teacher)
    student.train()
    assert not any(m.training for m in model.modules())
    assert not {id(p) for p in model.parameters()} & {id(p) for p in student.parameters()}
    assert not any(m is model for m in student.modules())
    student(dgl.batch([build_graph(s) for s in structures])).sum().backward()
    assert hook.last_kd > 0 and all(p.grad is None for p in model.parameters())
    hook.remove()


def check_distils(teacher, structures: list[Structure], predictors: tuple[str, ...]) -> None:
    """Gradients reach the head and the student, and KD > 0, for each benchmark predictor."""
    from crysgnn_dgl.bench.predictors import predictor

    for name in predictors:
        spec = predictor(name)
        torch.manual_seed(0)
        model = spec.build()
        hook = attach_teacher(spec.student(model), teacher=teacher, adapter=spec.adapter)
        inputs, targets = spec.collate([(spec.featurize(s, f"s{i}"), torch.tensor(0.1)) for i, s in enumerate(structures)])
        model.train()
        ((model(*inputs) - targets) ** 2).mean().backward()
        assert hook.last_kd > 0, name
        assert hook.head.weight.grad is not None and hook.head.weight.grad.abs().sum() > 0, name
        grads = [p.grad for n, p in spec.student(model).named_parameters() if "distill" not in n]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name
        hook.remove()


def error_without(module: str, call: str) -> str:
    """What ``call`` raises in a fresh interpreter where ``module`` cannot be imported:
    ``"<ErrorType> | <message>"`` (one line, or a failure)."""
    import subprocess
    import sys

    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from crysgnn_dgl import load_teacher\n"
        f"try:\n    {call}\n"
        "except Exception as error:\n    print(type(error).__name__, '|', error)\n"
        "else:\n    print('no error')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    return done.stdout.strip()
