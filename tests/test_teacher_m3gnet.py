"""The M3GNet teacher (matgl 3.0.5, DGL): its embeddings equal matgl's own
``predict_structure`` features on real crystals (atom order kept), batching does not change
them, they are invariant to rotation and translation, the teacher is frozen, its cache keys
differ from the CrysGNN teacher's, and it distils through the hook into the CGCNN port,
matgl's MEGNet and alignn's ALIGNN."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from pymatgen.core import Structure
from pymatgen.core.operations import SymmOp

os.environ.setdefault("MATGL_BACKEND", "DGL")
matgl = pytest.importorskip("matgl")
if matgl.config.BACKEND != "DGL":  # pragma: no cover - depends on the environment
    pytest.skip("matgl was imported with the PyG backend; run with MATGL_BACKEND=DGL", allow_module_level=True)

from crysgnn_dgl import CGCNN, attach_teacher, build_graph, load_teacher  # noqa: E402
from crysgnn_dgl.backend import dgl  # noqa: E402
from crysgnn_dgl.distill import EmbeddingCache  # noqa: E402
from crysgnn_dgl.distill.keys import content_keys, teacher_salt  # noqa: E402
from crysgnn_dgl.teachers import Crystals, Teacher  # noqa: E402
from crysgnn_dgl.teachers.m3gnet import M3GNetTeacher, bundled_weights, read_m3gnet  # noqa: E402

from _distill_fixtures import mp_structures  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")
# float32 sums in a different order (a batch, a rotated cell): about 1e-5 of the features' scale
ATOL = 2e-3


def crystals_of(structures: list[Structure]) -> Crystals:
    return Crystals(
        torch.tensor([site.specie.Z for s in structures for site in s]),
        torch.tensor(np.concatenate([s.frac_coords for s in structures])),
        torch.tensor(np.stack([s.lattice.matrix for s in structures])),
        [len(s) for s in structures],
        [s.composition.reduced_formula for s in structures],
    )


@pytest.fixture(scope="module")
def structures() -> list[Structure]:
    return mp_structures(6, 8)


@pytest.fixture(scope="module")
def teacher() -> M3GNetTeacher:
    return load_teacher("m3gnet")


@pytest.fixture(scope="module")
def upstream():
    """matgl's own loader and model, on the very weights the package ships."""
    return matgl.load_model(str(bundled_weights())).model


@pytest.mark.parametrize("block", ["gc_1", "gc_2"])
def test_embeddings_equal_matgl_predict_structure(structures, upstream, block):
    teacher = load_teacher(f"m3gnet:{block}")
    batched = torch.split(teacher.embed_crystals(crystals_of(structures)), [len(s) for s in structures])
    for structure, rows in zip(structures, batched):
        expected = upstream.predict_structure(structure, return_features=True, output_layers=[block])[block]["node_feat"]
        alone = teacher.embed_crystals(crystals_of([structure]))
        assert alone.shape == (len(structure), 64)
        torch.testing.assert_close(alone, expected.detach(), atol=1e-6, rtol=0)  # one crystal: the same numbers
        torch.testing.assert_close(rows, expected.detach(), atol=ATOL, rtol=0)  # in a batch: same to float noise


def test_a_crystal_alone_equals_it_in_any_batch(teacher, structures):
    together = torch.split(teacher.embed_crystals(crystals_of(structures)), [len(s) for s in structures])
    reordered = torch.split(teacher.embed_crystals(crystals_of(structures[::-1])), [len(s) for s in structures[::-1]])
    for rows, again in zip(together, reordered[::-1]):
        torch.testing.assert_close(rows, again, atol=ATOL, rtol=0)


def test_rotation_translation_and_permutation(teacher, structures):
    structure = max(structures, key=len)
    reference = teacher.embed_crystals(crystals_of([structure]))
    moved = structure.copy()
    moved.apply_operation(SymmOp.from_axis_angle_and_translation([1, 2, 3], 37.0))  # rotates the lattice too
    moved.translate_sites(list(range(len(moved))), [0.31, -0.12, 0.45])
    torch.testing.assert_close(teacher.embed_crystals(crystals_of([moved])), reference, atol=ATOL, rtol=0)
    order = np.random.default_rng(0).permutation(len(structure))
    permuted = Structure.from_sites([structure[i] for i in order])
    torch.testing.assert_close(teacher.embed_crystals(crystals_of([permuted])), reference[order], atol=ATOL, rtol=0)


def test_frozen_guarantees(teacher, structures):
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
    teacher_ids = {id(p) for p in model.parameters()}
    assert not teacher_ids & {id(p) for p in student.parameters()}
    assert not any(m is model for m in student.modules())
    student(dgl.batch([build_graph(s) for s in structures])).sum().backward()
    assert hook.last_kd > 0 and all(p.grad is None for p in model.parameters())
    hook.remove()


def test_weights_are_loaded_weights_only(tmp_path):
    folder = tmp_path / "m3gnet"
    folder.mkdir()
    (folder / "model.json").write_bytes((bundled_weights() / "model.json").read_bytes())
    state = torch.load(bundled_weights() / "state.pt", map_location="cpu", weights_only=True)
    torch.save({**state, "extra": SymmOp.from_axis_angle_and_translation([0, 0, 1], 1.0)}, folder / "state.pt")
    with pytest.raises(Exception, match="[Ww]eights only|weights_only"):
        read_m3gnet(folder)
    torch.save(state, folder / "state.pt")
    own = load_teacher("m3gnet", weights=folder)
    assert own.fingerprint() == load_teacher("m3gnet").fingerprint()


def test_blocks_and_cache_keys_differ_between_teachers(structures):
    crysgnn, gc_1, gc_2 = load_teacher(), load_teacher("m3gnet"), load_teacher("m3gnet", block="gc_2")
    salts = {teacher_salt(t) for t in (crysgnn, gc_1, gc_2)} | {teacher_salt(gc_1, raw=True)}
    assert len(salts) == 4
    with pytest.raises(ValueError, match=r"gc_4.*choose one of \['gc_1', 'gc_2', 'gc_3'\]"):
        load_teacher("m3gnet:gc_4")
    graph = dgl.batch([build_graph(s) for s in structures])
    cache = EmbeddingCache()
    for teacher in (crysgnn, gc_1):  # one store, two teachers: their rows never mix
        student = CGCNN()
        hook = attach_teacher(student, teacher=teacher, cache=cache)
        student.train()
        student(graph).sum().backward()
        assert hook.teacher_crystals == len(structures)
        hook.remove()
    assert len(cache) == 2 * len(structures)


def test_distils_into_the_cgcnn_port_megnet_and_alignn(teacher, structures):
    from crysgnn_dgl.bench.predictors import predictor

    structures = structures[1:]  # bcc Cs has no bond within MEGNet's 4 Å
    for name in ("cgcnn", "megnet", "alignn"):
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


def test_adapters_without_structures_give_clear_errors(teacher, structures):
    from _distill_fixtures import OriginalSignatureCGCNN

    with pytest.raises(ValueError, match="carries neither coordinates nor lattices"):
        attach_teacher(OriginalSignatureCGCNN(), teacher=teacher)
    graph = dgl.batch([build_graph(s) for s in structures])
    del graph.ndata["lattice"]  # a graph built by an older crysgnn_dgl
    student = CGCNN()
    attach_teacher(student, teacher=teacher)
    student.train()
    with pytest.raises(ValueError, match=r"no ndata \['lattice'\].*rebuild them"):
        student(graph)


def test_missing_matgl_is_one_line_naming_the_extra():
    code = (
        "import sys; sys.modules['matgl'] = None\n"
        "from crysgnn_dgl import load_teacher\n"
        "try:\n    load_teacher('m3gnet')\n"
        "except ImportError as error:\n    print(type(error).__name__, '|', error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    line = done.stdout.strip()
    assert line.startswith("MissingDependencyError |") and "\n" not in line
    assert "pip install 'crysgnn_dgl[matgl]'" in line


def test_keys_follow_what_the_teacher_reads(teacher, structures):
    from crysgnn_dgl.adapters.base import batch_from_crysgnn_graph

    graph = dgl.batch([build_graph(s) for s in structures])
    batch = batch_from_crysgnn_graph(graph)
    keys = content_keys(teacher.key_fields(batch), teacher.fingerprint())
    shifted = build_graph(structures[0].copy().scale_lattice(structures[0].volume * 1.1))
    other = batch_from_crysgnn_graph(dgl.batch([shifted, *[build_graph(s) for s in structures[1:]]]))
    moved = content_keys(teacher.key_fields(other), teacher.fingerprint())
    assert not (keys[0] == moved[0]).all() and (keys[1:] == moved[1:]).all()
    assert torch.equal(batch.crystals([2]).atomic_numbers, torch.tensor([s.specie.Z for s in structures[2]]))


def test_alignn_batches_need_atomic_numbers_where_cgcnn_features_are_ambiguous(teacher):
    from crysgnn_dgl.bench.predictors import predictor

    spec = predictor("alignn")
    lanthanum = Structure.from_spacegroup("Fm-3m", [[5.3, 0, 0], [0, 5.3, 0], [0, 0, 5.3]], ["La", "N"],
                                          [[0, 0, 0], [0.5, 0.5, 0.5]])
    samples = [(spec.featurize(lanthanum, "LaN"), torch.tensor(0.0))]
    inputs, _ = spec.collate(samples)
    model = spec.build()
    hook = attach_teacher(spec.student(model), teacher=teacher, adapter="alignn")
    model.train()
    model(*inputs).sum().backward()  # the benchmark's graphs carry ndata["atomic_number"]
    assert hook.last_kd > 0
    inputs, _ = spec.collate(samples)
    del inputs[0][0].ndata["atomic_number"]  # alignn's own graphs: CGCNN features only
    with pytest.raises(ValueError, match=r"crystal #0 .*La.*do not tell some elements apart.*atomic_number"):
        model(*inputs)
    hook.remove()
    from crysgnn_dgl.adapters.base import numbers_from_features
    from crysgnn_dgl.graph.atom_features import atom_features

    features = torch.as_tensor(atom_features(np.array([57, 7, 58, 8, 26])))
    assert numbers_from_features(features).tolist() == [-1, 7, -1, 8, 26]
