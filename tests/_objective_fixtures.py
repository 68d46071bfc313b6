"""Real crystals batched as graphs of :func:`crysgnn_dgl.build_graph` (which carry the
lattice, fractional coordinates and periodic images the denoising and MMPT objectives read),
and a two-step Lightning pre-training run on them."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from crysgnn_dgl import build_graph
from crysgnn_dgl.backend import dgl
from crysgnn_dgl.pretrain.settings import ObjectiveSettings

#: real crystals of the batch (conftest's fixtures), the padded one last
BATCH_IDS = ("mp-1", "mp-1000", "mp-10000", "mp-1002063", "mp-1008626", "mp-10003")


def batch_of(structures: list) -> tuple[dgl.DGLGraph, dict[str, torch.Tensor]]:
    """One batched graph of ``structures`` and its ``space_group``/``crystal_system`` labels."""
    graphs, labels = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the padded crystal's PaddingWarning
        for structure in structures:
            graph, label = build_graph(structure, with_labels=True)
            graphs.append(graph)
            labels.append(label)
    stacked = {key: torch.stack([label[key] for label in labels]) for key in ("space_group", "crystal_system")}
    return dgl.batch(graphs), stacked


@pytest.fixture(scope="module")
def real_batch(mp_structures, perov_structures, padded_structure):
    """Six MP crystals (1–12 atoms), a perovskite, and VTe2 stretched so that two of its
    atoms have padding edges."""
    structures = [mp_structures[i] for i in BATCH_IDS] + list(perov_structures.values())[:1]
    return batch_of([*structures, padded_structure])


def two_step_run(objectives: ObjectiveSettings, structures: list, folder: Path) -> Path:
    """Pre-train for two steps (batches of four crystals, CPU) with the project's Lightning
    module and per-epoch checkpoint callback; returns the run folder."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from crysgnn_dgl.pretrain.callbacks import EpochCheckpoint
    from crysgnn_dgl.pretrain.module import PretrainModule

    pl.seed_everything(0, verbose=False)
    batches = [batch_of(structures[i : i + 4]) for i in range(0, 8, 4)]
    loader = DataLoader(batches, batch_size=None, shuffle=False)
    module = PretrainModule(objective_settings=objectives.to_dict(), seed=0)
    trainer = pl.Trainer(
        max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        callbacks=[EpochCheckpoint(folder, {"objectives": objectives.to_dict()})],
    )
    trainer.fit(module, loader)
    assert trainer.global_step == 2
    return folder
