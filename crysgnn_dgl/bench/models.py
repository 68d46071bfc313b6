"""The benchmark's control teacher: the teacher's architecture at default initialisation
(the fine-tuning baseline is :func:`crysgnn_dgl.finetune_model`)."""

from __future__ import annotations

import torch

from ..config import ModelSettings
from ..models.crysgnn import CrysGNN
from ..teacher import FrozenTeacher


def random_teacher(like: FrozenTeacher, seed: int) -> FrozenTeacher:
    """The teacher's architecture at its default initialisation (drawn with ``seed``),
    distilled at the same depth."""
    settings: ModelSettings = like.model_settings
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = CrysGNN(settings, like.graph_settings)
    return FrozenTeacher(model, source=f"random-init (seed {seed})", depth=like.depth)
