"""Lightning pre-training: per-epoch checkpoints, and a killed run resumed to the same result."""

from __future__ import annotations

import json

import lightning.pytorch as pl
import pytest
import torch
from _pretrain_fixtures import corpus_csv, small_cache  # noqa: F401

from crysgnn_dgl import read_checkpoint
from crysgnn_dgl.pretrain.callbacks import read_history
from crysgnn_dgl.pretrain.settings import OptimizerSettings, PretrainSettings
from crysgnn_dgl.pretrain.trainer import pretrain

TRAINING = PretrainSettings(max_epochs=3, batch_size=8, validation_fraction=0.2, seed=5, num_threads=1)
OPTIMIZER = OptimizerSettings(learning_rate=3e-3)


class Kill(pl.Callback):
    """Stops the process-equivalent of a run in the middle of an epoch."""

    def __init__(self, epoch: int, batch: int):
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            raise RuntimeError("killed")


@pytest.fixture(scope="module")
def uninterrupted(small_cache, tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    result = pretrain(small_cache, folder, optimizer=OPTIMIZER, training=TRAINING, progress_bar=False)
    return folder, result


def test_every_epoch_leaves_a_checkpoint_and_metrics(uninterrupted):
    folder, result = uninterrupted
    assert result.epochs_completed == 3
    for epoch in range(3):
        checkpoint = read_checkpoint(folder / "checkpoints" / f"epoch_{epoch:03d}.pt")
        assert checkpoint.training["epoch"] == epoch
        metrics = checkpoint.training["metrics"]
        for name in ("feature", "connectivity", "space_group", "contrastive", "total"):
            assert f"train/{name}" in metrics and f"val/{name}" in metrics
        assert 0.0 <= metrics["val/space_group_accuracy"] <= 1.0
        assert 0.0 <= metrics["val/crystal_system_accuracy"] <= 1.0
    history = read_history(folder)
    assert [h["epoch"] for h in history] == [0, 1, 2]
    assert history[-1]["train/total"] < history[0]["train/total"]
    best = read_checkpoint(folder / "checkpoints" / "best.pt").training
    assert best["metrics"]["val/total"] == min(h["val/total"] for h in history)
    # the checkpoint loads weights-only
    raw = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    assert raw["training"]["run"]["batch_size"] == 8


def test_killed_run_resumes_to_the_uninterrupted_result(small_cache, tmp_path, uninterrupted):
    folder, _ = uninterrupted
    with pytest.raises(RuntimeError, match="killed"):
        pretrain(small_cache, tmp_path, optimizer=OPTIMIZER, training=TRAINING, progress_bar=False,
                 extra_callbacks=[Kill(epoch=1, batch=2)])
    partial = read_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert partial.training["epoch"] == 0  # the killed epoch is the only one lost
    resumed = pretrain(small_cache, tmp_path, optimizer=OPTIMIZER, training=TRAINING, progress_bar=False)
    assert resumed.epochs_completed == 3
    expected = read_checkpoint(folder / "checkpoints" / "last.pt")
    got = read_checkpoint(tmp_path / "checkpoints" / "last.pt")
    for name, value in expected.state_dict.items():
        assert torch.allclose(got.state_dict[name].float(), value.float(), atol=1e-5, rtol=1e-4), name
    for a, b in zip(read_history(folder), read_history(tmp_path)):
        assert a["val/total"] == pytest.approx(b["val/total"], rel=1e-4)
    assert json.loads((tmp_path / "history.jsonl").read_text().splitlines()[0])["epoch"] == 0


@pytest.mark.slow
def test_ddp_is_a_flag(small_cache, tmp_path):
    """Two CPU processes (gloo): each rank trains on its own half of every epoch's batches."""
    import math

    training = PretrainSettings(
        max_epochs=1, batch_size=4, validation_fraction=0.2, seed=5, num_threads=1,
        accelerator="cpu", devices=2, strategy="ddp_spawn",
    )
    pretrain(small_cache, tmp_path, optimizer=OPTIMIZER, training=training, progress_bar=False)
    checkpoint = read_checkpoint(tmp_path / "checkpoints" / "last.pt")
    train_crystals = checkpoint.training["num_train_crystals"]
    assert checkpoint.training["global_step"] == math.ceil(math.ceil(train_crystals / 4) / 2)
    assert checkpoint.training["metrics"]["val/total"] > 0
