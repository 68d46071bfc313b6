"""MEGNet adapter with matgl's DGL MEGNet: MSE gradient equality through matgl's
ModelLightningModule, and an unmodified Lightning Trainer.fit gaining (and logging) KD."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("MATGL_BACKEND", "DGL")
matgl = pytest.importorskip("matgl")
if matgl.config.BACKEND != "DGL":  # pragma: no cover - depends on the environment
    pytest.skip("matgl was imported with the PyG backend; run with MATGL_BACKEND=DGL", allow_module_level=True)

import lightning.pytorch as pl  # noqa: E402
from matgl.ext.pymatgen import Structure2Graph, get_element_list  # noqa: E402
from matgl.graph.data import MGLDataLoader, MGLDataset, collate_fn_graph  # noqa: E402
from matgl.models import MEGNet  # noqa: E402
from matgl.utils.training import ModelLightningModule  # noqa: E402

from crysgnn_dgl import attach_teacher  # noqa: E402
from crysgnn_dgl.distill import HEAD_NAME  # noqa: E402

from _distill_fixtures import (  # noqa: E402
    Capture,
    assert_same_grads,
    explicit_gradients,
    mp_rows,
    mp_structures,
    parameter_grads,
    teacher_rows,
)

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def megnet_data(tmp_path_factory):
    structures = mp_structures(12, 6)
    energies = [float(v) for v in mp_rows(48, 6).formation_energy_per_atom[:12]]
    elements = get_element_list(structures)
    converter = Structure2Graph(element_types=elements, cutoff=4.0)
    out = tmp_path_factory.mktemp("megnet")
    dataset = MGLDataset(structures=structures, converter=converter, labels={"eform": energies},
                         save_cache=False, raw_dir=str(out), save_dir=str(out))
    return dataset, structures, elements


def tiny_megnet(elements):
    torch.manual_seed(0)
    return MEGNet(dim_node_embedding=8, dim_edge_embedding=10, dim_state_embedding=2, nblocks=1,
                  hidden_layer_sizes_input=(8, 8), hidden_layer_sizes_conv=(8, 8, 8),
                  hidden_layer_sizes_output=(8, 4), element_types=elements, cutoff=4.0)


def test_mse_gradients_equal_loss_plus_lambda_kd(teacher, megnet_data):
    dataset, structures, elements = megnet_data
    batch = collate_fn_graph([dataset[i] for i in range(6)])
    module = ModelLightningModule(model=tiny_megnet(elements), loss="mse_loss")
    hook = attach_teacher(module, teacher, cache=False)
    assert hook.adapter.name == "megnet" and hook.student is module.model
    results, _ = module.step(batch)
    results["Total_Loss"].backward()
    injected = parameter_grads(module)
    counts = batch[0].batch_num_nodes().tolist()
    reference, _ = explicit_gradients(
        module, hook, lambda: Capture(module.model.blocks[-1], index=1),
        lambda: module.step(collate_fn_graph([dataset[i] for i in range(6)]))[0]["Total_Loss"],
        teacher_rows(teacher, structures[:6]), counts, head_prefix=f"model.{HEAD_NAME}",
    )
    assert_same_grads(injected, reference)


def test_lightning_fit_gains_and_logs_kd(teacher, megnet_data, tmp_path):
    dataset, _, elements = megnet_data
    train, val = torch.utils.data.Subset(dataset, range(8)), torch.utils.data.Subset(dataset, range(8, 12))
    final = {}
    for distilled in (False, True):
        torch.manual_seed(0)
        train_loader, val_loader = MGLDataLoader(
            train_data=train, val_data=val, batch_size=4, generator=torch.Generator().manual_seed(0)
        )
        module = ModelLightningModule(model=tiny_megnet(elements), loss="mse_loss", lr=0.01)
        hook = attach_teacher(module, teacher) if distilled else None
        trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
        trainer.fit(module, train_loader, val_loader)
        final[distilled] = {k: v.clone() for k, v in module.model.state_dict().items()}
        if distilled:
            assert "train_KD" in trainer.callback_metrics
            assert float(trainer.callback_metrics["train_KD"]) == pytest.approx(hook.kd_mean, rel=1e-5)
            assert hook._injections == 4  # 2 batches × 2 epochs; validation steps add none
            # training crystals once, then the cache; validation runs in eval mode: no teacher work
            assert hook.teacher_crystals == 8
            assert not any(m.training for m in teacher._model.modules())
            hook.remove()
            assert "configure_callbacks" not in vars(module)
            assert f"model.{HEAD_NAME}.weight" not in module.state_dict()
        else:
            assert "train_KD" not in trainer.callback_metrics
    name = "embedding.layer_node_embedding.weight"
    assert not torch.allclose(final[False][name], final[True][name])
