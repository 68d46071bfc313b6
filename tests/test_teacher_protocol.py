"""The teacher protocol: the CrysGNN teacher implements it with unchanged cache keys, a
third party's teacher (the documented example, and a bare protocol object) distils through
the hook without touching the package, and anything else is refused."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest
import torch

from crysgnn_dgl import CGCNN, attach_teacher, build_graph, load_teacher
from crysgnn_dgl.backend import dgl
from crysgnn_dgl.distill.keys import teacher_fingerprint, teacher_salt
from crysgnn_dgl.teachers import Teacher, teacher_names

from _distill_fixtures import mp_structures

pytestmark = pytest.mark.filterwarnings("ignore")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_teacher.py"


def _example():
    spec = importlib.util.spec_from_file_location("custom_teacher_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_crysgnn_teacher_implements_the_protocol_with_its_former_salt():
    teacher = load_teacher("crysgnn-multitask")  # full depth: the salt of caches written before depths
    assert isinstance(teacher, Teacher) and teacher.embedding_dim == 64
    former = teacher_fingerprint(teacher._model.state_dict(), teacher.graph_settings.to_dict())
    assert teacher.fingerprint() == teacher_salt(teacher) == former
    shallow = load_teacher()  # distilled at its recorded depth 1: a salt of its own
    settings = {**shallow.graph_settings.to_dict(), "teacher_depth": 1}
    assert shallow.fingerprint() == teacher_fingerprint(shallow._model.state_dict(), settings)
    assert shallow.fingerprint() != load_teacher(depth=5).fingerprint()
    assert "m3gnet" in teacher_names()


def test_the_documented_example_runs(capsys):
    assert _example().main(["--steps", "2", "--crystals", "6"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all("last KD" in line and "teacher runs 1 " in line for line in lines)


class BareTeacher:
    """The protocol's four members and nothing else: element one-hots of 8 buckets."""

    embedding_dim = 8

    def fingerprint(self) -> bytes:
        return hashlib.blake2b(b"bare teacher v1", digest_size=16).digest()

    def key_fields(self, batch):
        return batch.structure_key_fields()

    def embed_batch(self, batch, indices):
        crystals = batch.crystals(indices)
        rows = torch.nn.functional.one_hot(crystals.atomic_numbers % 8, 8).float() + 0.1
        return list(torch.split(rows, list(crystals.counts)))


def test_a_bare_protocol_object_distils_and_others_are_refused():
    structures = mp_structures(5)
    graph = dgl.batch([build_graph(s) for s in structures])
    student = CGCNN()
    hook = attach_teacher(student, teacher=BareTeacher())
    student.train()
    student(graph).sum().backward()
    assert hook.last_kd > 0 and hook.head.weight.grad.abs().sum() > 0
    hook.remove()
    with pytest.raises(TypeError, match="Teacher protocol"):
        attach_teacher(CGCNN(), teacher=object())
    with pytest.raises(TypeError, match="named teachers only"):
        load_teacher(None, block="gc_2")
