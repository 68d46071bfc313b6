"""The M3GNet teacher (matgl 3.0.5, DGL): its embeddings equal matgl's own
``predict_structure`` features on real crystals (atom order kept), batching does not change
them, they are invariant to rotation and translation, the teacher is frozen, its cache keys
differ from the CrysGNN teacher's, and it distils through the hook into the CGCNN port,
matgl's MEGNet and alignn's ALIGNN."""

from __future__ import annotations

import os

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
from crysgnn_dgl.teachers.m3gnet import M3GNetTeacher, bundled_weights, read_m3gnet  # noqa: E402

from _distill_fixtures import mp_structures  # noqa: E402
from _teacher_checks import (  # noqa: E402
    check_batch_independence,
    check_distils,
    check_frozen,
    check_invariance,
    crystals_of,
    error_without,
)

pytestmark = pytest.mark.filterwarnings("ignore")
# float32 sums in a different order (a batch, a rotated cell): about 1e-5 of the features' scale
ATOL = 2e-3


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
    check_batch_independence(teacher, structures, ATOL)


def test_rotation_translation_and_permutation(teacher, structures):
    check_invariance(teacher, max(structures, key=len), ATOL)


def test_frozen_guarantees(teacher, structures):
    check_frozen(teacher, structures)


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
    check_distils(teacher, structures[1:], ("cgcnn", "megnet", "alignn"))  # bcc Cs: no bond within MEGNet's 4 Å


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
    line = error_without("matgl", "load_teacher('m3gnet')")
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


def test_alignns_own_dataset_batches_carry_the_elements(teacher, tmp_path):
    """alignn's ``StructureDataset`` keeps ``ndata["atomic_number"]`` as ``(atoms, 1)`` floats;
    the adapter reads them, so La and Ce (equal CGCNN feature rows) get their own rows."""
    from alignn.dataset import get_torch_dataset
    from alignn.graphs import StructureDataset
    from jarvis.core.atoms import pmg_to_atoms

    from crysgnn_dgl.bench.predictors import predictor
    from crysgnn_dgl.distill.adapter import resolve_adapter

    cubic = [[5.2, 0, 0], [0, 5.2, 0], [0, 0, 5.2]]
    pair = [Structure.from_spacegroup("Fm-3m", cubic, [metal, "N"], [[0, 0, 0], [0.5, 0.5, 0.5]])
            for metal in ("La", "Ce")]
    records = [{"jid": f"{s.composition.reduced_formula}", "atoms": pmg_to_atoms(s).to_dict(), "target": 0.0}
               for s in pair]
    dataset = get_torch_dataset(dataset=records, id_tag="jid", target="target", neighbor_strategy="k-nearest",
                                atom_features="cgcnn", use_canonize=True, line_graph=True, cutoff=8.0,
                                max_neighbors=12, output_dir=str(tmp_path))
    g, lg, lattice, _ = StructureDataset.collate_line_graph([dataset[0], dataset[1]])
    assert g.ndata["atomic_number"].shape == (g.num_nodes(), 1) and g.ndata["atomic_number"].is_floating_point()
    model = predictor("alignn").build().model
    batch = resolve_adapter(model).crystal_batch(model, ([g, lg, lattice],), {}, teacher)
    crystals = batch.crystals([0, 1])
    assert crystals.atomic_numbers.tolist() == [z for s in pair for z in s.atomic_numbers]
    torch.testing.assert_close(teacher.embed_crystals(crystals), teacher.embed_crystals(crystals_of(pair)),
                               atol=ATOL, rtol=0)
    hook = attach_teacher(model, teacher=teacher)
    model.train()
    model([g, lg, lattice]).sum().backward()
    assert hook.last_kd > 0
    hook.remove()
    g.ndata["atomic_number"] = torch.zeros(g.num_nodes(), 2)
    with pytest.raises(ValueError, match=rf"atomic numbers have shape \({g.num_nodes()}, 2\)"):
        resolve_adapter(model).crystal_batch(model, ([g, lg, lattice],), {}, teacher)


def test_attach_uses_the_teachers_recommended_weight_unless_told(teacher):
    from crysgnn_dgl.distill import DistillSettings

    assert teacher.recommended_kd_weight == 100.0
    hook = attach_teacher(CGCNN(), teacher=teacher)
    assert hook.kd_weight == pytest.approx(100.0)
    hook.remove()
    hook = attach_teacher(CGCNN(), teacher=teacher, delta=0.5)  # an explicit weight wins
    assert hook.kd_weight == pytest.approx(1.0)
    hook.remove()
    hook = attach_teacher(CGCNN(), teacher=teacher, settings=DistillSettings.from_kd_weight(3.0))
    assert hook.kd_weight == pytest.approx(3.0)
    hook.remove()
    hook = attach_teacher(CGCNN(), teacher="crysgnn-multitask")  # a CrysGNN teacher recording none: λ = 1
    assert hook.kd_weight == pytest.approx(1.0)
    hook.remove()
