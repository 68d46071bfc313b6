"""Lightning module that pre-trains a :class:`CrysGNN` on the switched-on objectives."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_warn
import torch

from ..backend import dgl
from ..config import GraphSettings, ModelSettings
from ..models.crysgnn import CrysGNN
from .heads import PretrainHeads
from .objectives import ObjectiveSettings, pretraining_losses
from .settings import OptimizerSettings


class PretrainModule(pl.LightningModule):
    """Pre-training step, validation metrics and the optimiser of a CrysGNN.

    Logged per step/epoch: ``train/<objective>``, ``train/total``, and at each epoch end
    ``val/<objective>``, ``val/total``, ``val/space_group_accuracy``,
    ``val/crystal_system_accuracy``. Everything random in a step (pair sub-sampling,
    denoising noise, MMPT masks) is seeded by ``(seed, epoch, batch)``, so resumed runs
    repeat uninterrupted ones. The heads of the denoising and MMPT objectives are
    ``heads`` (absent unless switched on); the optimiser trains them with the model.
    """

    def __init__(
        self,
        model_settings: dict[str, Any] | None = None,
        graph_settings: dict[str, Any] | None = None,
        objective_settings: dict[str, Any] | None = None,
        optimizer_settings: dict[str, Any] | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        model_config = ModelSettings.from_dict(model_settings or {})
        graph_config = GraphSettings.from_dict(graph_settings or {})
        self.model = CrysGNN(model_config, graph_config)
        self.objectives = ObjectiveSettings.from_dict(objective_settings or {})
        self.heads = PretrainHeads(self.objectives, model_config, graph_config)
        self.optimizer_settings = OptimizerSettings.from_dict(optimizer_settings or {})
        self.seed = seed
        self.skipped_batches = 0

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        graph, labels = batch
        return graph.to(device), {k: v.to(device) for k, v in labels.items()}

    def _generator(self, batch_idx: int, stage: int) -> torch.Generator:
        generator = torch.Generator()
        generator.manual_seed(hash((self.seed, stage, self.current_epoch, batch_idx)) & 0x7FFFFFFF)
        return generator

    def _step(self, batch: tuple[dgl.DGLGraph, dict[str, torch.Tensor]], batch_idx: int, stage: str) -> torch.Tensor:
        graph, labels = batch
        generator = self._generator(batch_idx, 0 if stage == "train" else 1)
        losses = pretraining_losses(self.model, graph, labels, self.objectives, generator, self.heads)
        batch_size = int(labels["space_group"].numel())
        on_step = stage == "train"
        for name, value in losses.items():
            self.log(
                f"{stage}/{name}", value.detach(), batch_size=batch_size,
                on_step=on_step, on_epoch=True, prog_bar=name == "total", sync_dist=True,
            )
        return losses["total"]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        graph, labels = batch
        if graph.num_nodes() < 2:
            # batch normalisation cannot train on one atom: skip the step (Lightning
            # moves on to the next batch) and say so once
            self.skipped_batches += 1
            if self.skipped_batches == 1:
                rank_zero_warn(
                    f"skipping training batch {batch_idx} of epoch {self.current_epoch}: it holds a single "
                    "atom (a one-atom crystal alone), which batch normalisation cannot train on; "
                    "use a batch size above 1 to train on such crystals",
                )
            return None
        return self._step(batch, batch_idx, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, batch_idx, "val")

    def configure_optimizers(self) -> Any:
        o = self.optimizer_settings
        optimizer = torch.optim.Adam(self.parameters(), lr=o.learning_rate, weight_decay=o.weight_decay)
        if o.schedule == "constant":
            return optimizer
        if o.schedule != "cosine":
            raise ValueError(f"unknown learning-rate schedule {o.schedule!r} (constant, cosine)")
        epochs = max(1, int(self.trainer.max_epochs or 1))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=epochs, eta_min=o.learning_rate * o.final_lr_fraction
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
