"""Trainable parts of the pre-training objectives that are not part of CrysGNN.

They live beside the model (in :class:`~crysgnn_dgl.pretrain.module.PretrainModule` as
``heads``), so CrysGNN's state dict, and the checkpoints exported from a run, stay those
of the release; only Lightning's resume state holds them.
"""

from __future__ import annotations

from torch import nn

from ..config import GraphSettings, ModelSettings
from .denoising import DenoisingHead
from .mmpt_heads import MMPTHeads
from .settings import MMPT_OBJECTIVES, ObjectiveSettings


class PretrainHeads(nn.Module):
    """The denoising edge head and the MMPT parts, each built only when switched on
    (``None`` otherwise; with neither, the module holds no parameter)."""

    def __init__(
        self,
        objectives: ObjectiveSettings,
        model_settings: ModelSettings | None = None,
        graph_settings: GraphSettings | None = None,
    ):
        super().__init__()
        hidden = (model_settings or ModelSettings()).hidden_dim
        edge_dim = (graph_settings or GraphSettings()).num_gaussians
        self.denoising = DenoisingHead(hidden, edge_dim) if objectives.denoising_weight else None
        self.mmpt = MMPTHeads(hidden, objectives) if objectives.switched_on(MMPT_OBJECTIVES) else None
