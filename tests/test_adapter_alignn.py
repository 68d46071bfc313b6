"""ALIGNN adapter with the installed alignn: gradient equality on alignn's L1 loss, and
alignn's own train_dgl loop shaped by the KD term."""

from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("alignn")

from alignn.config import TrainingConfig  # noqa: E402
from alignn.dataset import get_torch_dataset  # noqa: E402
from alignn.graphs import StructureDataset  # noqa: E402
from alignn.models.alignn import ALIGNN, ALIGNNConfig  # noqa: E402
from alignn.models.alignn_atomwise import ALIGNNAtomWise, ALIGNNAtomWiseConfig  # noqa: E402
from alignn.train import train_dgl  # noqa: E402
from jarvis.core.atoms import pmg_to_atoms  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from crysgnn_dgl import attach_teacher  # noqa: E402
from crysgnn_dgl.adapters.base import AdapterError  # noqa: E402
from crysgnn_dgl.distill import HEAD_NAME  # noqa: E402

from _distill_fixtures import (  # noqa: E402
    Capture,
    assert_same_grads,
    explicit_gradients,
    mp_rows,
    parameter_grads,
    teacher_rows,
)

pytestmark = pytest.mark.filterwarnings("ignore:Issues encountered while parsing CIF")
TINY = dict(alignn_layers=1, gcn_layers=1, hidden_features=16, embedding_features=16,
            edge_input_features=16, triplet_input_features=8, atom_input_features=92)


@pytest.fixture(scope="module")
def alignn_data(tmp_path_factory):
    from pymatgen.core import Structure

    rows = mp_rows(48, 6)
    records = [
        {"jid": row.material_id, "atoms": pmg_to_atoms(Structure.from_str(row.cif, fmt="cif")).to_dict(),
         "target": float(row.formation_energy_per_atom)}
        for row in rows.itertuples()
    ]
    out = tmp_path_factory.mktemp("alignn")
    dataset = get_torch_dataset(
        dataset=records, id_tag="jid", target="target", neighbor_strategy="k-nearest",
        atom_features="cgcnn", use_canonize=True, line_graph=True, cutoff=8.0, max_neighbors=12,
        output_dir=str(out),
    )
    structures = [Structure.from_str(r.cif, fmt="cif") for r in rows.itertuples()]
    return dataset, structures, out


class IdSubset(torch.utils.data.Subset):
    """A subset with the ``ids`` and ``close()`` that train_dgl expects of its datasets."""

    def __init__(self, dataset, indices):
        super().__init__(dataset, indices)
        self.ids = [dataset.ids[i] for i in indices]

    def close(self):
        pass


def loader(dataset, indices, batch_size=8):
    subset = IdSubset(dataset, indices)
    return DataLoader(subset, batch_size=batch_size, shuffle=False, collate_fn=StructureDataset.collate_line_graph)


@pytest.mark.parametrize("atomwise", [False, True])
def test_l1_gradients_equal_loss_plus_lambda_kd(teacher, alignn_data, atomwise):
    dataset, structures, _ = alignn_data
    g, lg, lat, y = next(iter(loader(dataset, list(range(6)))))
    torch.manual_seed(0)
    if atomwise:
        model = ALIGNNAtomWise(ALIGNNAtomWiseConfig(name="alignn_atomwise", **TINY))
        prediction = lambda: model([g, lg, lat])["out"]  # noqa: E731
    else:
        model = ALIGNN(ALIGNNConfig(name="alignn", **TINY))
        prediction = lambda: model([g, lg, lat])  # noqa: E731
    hook = attach_teacher(model, teacher, cache=False)
    assert hook.adapter.name == "alignn"
    nn.L1Loss()(prediction(), y).backward()
    injected = parameter_grads(model)
    reference, _ = explicit_gradients(
        model, hook, lambda: Capture(model.gcn_layers[-1], index=0), lambda: nn.L1Loss()(prediction(), y),
        teacher_rows(teacher, structures[:6]), g.batch_num_nodes().tolist(),
    )
    assert_same_grads(injected, reference)


def test_batch_without_lattice_is_refused(teacher, alignn_data):
    dataset, _, _ = alignn_data
    g, lg, lat, y = next(iter(loader(dataset, [0, 1])))
    model = ALIGNN(ALIGNNConfig(name="alignn", **TINY))
    attach_teacher(model, teacher)
    with pytest.raises(AdapterError, match="no lattice"):
        model([g, lg])


def test_non_cgcnn_features_are_refused(teacher):
    config = dict(TINY, atom_input_features=11)
    with pytest.raises(AdapterError, match="92-d CGCNN"):
        attach_teacher(ALIGNN(ALIGNNConfig(name="alignn", **config)), teacher)


def _train(dataset, out, teacher=None, epochs=2):
    torch.manual_seed(0)
    config = TrainingConfig(
        dataset="user_data", target="target", epochs=epochs, batch_size=8, learning_rate=0.001,
        output_dir=str(out), random_seed=0, n_train=40, n_val=4, n_test=4, write_predictions=False,
        model=dict(name="alignn_atomwise", gradwise_weight=0.0, atomwise_weight=0.0, stresswise_weight=0.0, **TINY),
    )
    torch.manual_seed(0)
    model = ALIGNNAtomWise(config.model)
    hook = attach_teacher(model, teacher) if teacher is not None else None
    loaders = [loader(dataset, list(range(40))), loader(dataset, list(range(40, 44))),
               loader(dataset, list(range(44, 48))), lambda batch, device=None: batch]
    train_dgl(config, model=model, train_val_test_loaders=loaders)
    return model, hook


@pytest.mark.slow
def test_alignn_train_dgl_is_shaped_by_kd(teacher, alignn_data, tmp_path):
    dataset, _, _ = alignn_data
    plain, _ = _train(dataset, tmp_path / "plain")
    distilled, hook = _train(dataset, tmp_path / "kd", teacher)
    # 40 training crystals × 2 epochs; validation forwards (training mode, no backward) add none
    assert hook._injections == 10
    # 40 train + 4 val in epoch 1, 4 test at the end (alignn never switches to eval);
    # epoch 2 is served by the cache
    assert hook.teacher_crystals == 48
    assert hook.last_kd is not None and hook.kd_mean > 0
    # the embedding layers before the hooked one moved differently; the readout did too
    first = "atom_embedding.layer.0.weight"
    assert not torch.allclose(plain.state_dict()[first], distilled.state_dict()[first], atol=1e-6)
    assert f"{HEAD_NAME}.weight" in distilled.state_dict()
    hook.remove()
    assert list(distilled.state_dict()) == list(plain.state_dict())
