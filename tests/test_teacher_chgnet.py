"""The CHGNet teacher (optional extra ``crysgnn_dgl[chgnet]``): its embeddings equal
chgnet's own ``predict_structure(..., return_atom_feas=True)`` on real crystals (atom
order kept), batching does not change them, invariance, frozen guarantees, cache keys of
its own, distillation into CGCNN and MEGNet; without the extra, one line naming it."""

from __future__ import annotations

import pytest
import torch

from crysgnn_dgl import load_teacher
from crysgnn_dgl.distill.keys import teacher_salt

from _distill_fixtures import mp_structures
from _teacher_checks import (
    check_batch_independence,
    check_distils,
    check_frozen,
    check_invariance,
    error_without,
    rows_per_crystal,
)

pytestmark = pytest.mark.filterwarnings("ignore")
ATOL = 1e-4


def test_missing_extra_is_one_line_naming_it():
    line = error_without("chgnet", "load_teacher('chgnet')")
    assert line.startswith("MissingDependencyError |") and "\n" not in line
    assert "pip install 'crysgnn_dgl[chgnet]'" in line


@pytest.fixture(scope="module")
def chgnet_teacher():
    pytest.importorskip("chgnet", reason="the chgnet extra is not installed (pip install 'crysgnn_dgl[chgnet]')")
    return load_teacher("chgnet")


@pytest.fixture(scope="module")
def structures():
    return mp_structures(6, 8)


def test_embeddings_equal_chgnet_predict_structure(chgnet_teacher, structures):
    from chgnet.model import CHGNet

    upstream = CHGNet.load(verbose=False, use_device="cpu")
    expected = upstream.predict_structure(structures, task="e", return_atom_feas=True, batch_size=16)
    for rows, reference in zip(rows_per_crystal(chgnet_teacher, structures), expected):
        assert rows.shape == (len(reference["atom_fea"]), 64)
        torch.testing.assert_close(rows, torch.as_tensor(reference["atom_fea"]), atol=1e-6, rtol=0)


def test_batching_invariance_and_frozen(chgnet_teacher, structures):
    check_batch_independence(chgnet_teacher, structures, ATOL)
    check_invariance(chgnet_teacher, max(structures, key=len), ATOL)
    check_frozen(chgnet_teacher, structures)


def test_keys_and_distillation(chgnet_teacher, structures):
    others = {teacher_salt(load_teacher()), teacher_salt(load_teacher("m3gnet"))}
    assert teacher_salt(chgnet_teacher) not in others
    assert chgnet_teacher.fingerprint() != load_teacher("chgnet:0.2.0").fingerprint()
    check_distils(chgnet_teacher, structures[1:], ("cgcnn", "megnet"))  # bcc Cs: no bond within MEGNet's 4 Å
    from crysgnn_dgl.bench.spec import RunSpec
    from crysgnn_dgl.bench.tasks import TaskSpec

    run = RunSpec(TaskSpec(name="file", file="mine.csv", target="y"), "cgcnn", "distilled", 12, 0, "chgnet")
    assert run.teacher_label == "chgnet" and run.to_dict()["teacher_sha256"] == chgnet_teacher.fingerprint().hex()[:16]
    from crysgnn_dgl import CGCNN, attach_teacher

    hook = attach_teacher(CGCNN(), teacher=chgnet_teacher)  # no weight given: the recommended λ = 100
    assert chgnet_teacher.recommended_kd_weight == 100.0 and hook.kd_weight == pytest.approx(100.0)
    hook.remove()


def test_works_without_nvidia_smi(chgnet_teacher, structures):
    """chgnet imports nvidia_smi at import time; a CPU machine without it still loads the teacher."""
    assert error_without("nvidia_smi", "print(load_teacher('chgnet').embedding_dim)") == "64\nno error"
    with pytest.raises(ValueError, match="no pre-trained model 'nope'"):
        load_teacher("chgnet:nope")
