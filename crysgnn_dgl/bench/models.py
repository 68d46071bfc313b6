"""Models of the benchmark's baselines: the teacher's own encoder with a regression head
(fine-tuning, the CrysGNN paper's Table 3), and a teacher at default initialisation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..backend import dgl
from ..checkpoint import model_from_checkpoint
from ..config import ModelSettings
from ..models.crysgnn import CrysGNN
from ..teacher import FrozenTeacher

class EncoderRegressor(nn.Module):
    """A CrysGNN encoder (trainable) → mean pooling → ``Linear–softplus–Linear`` head."""

    def __init__(self, encoder: CrysGNN, hidden: int = 128):
        super().__init__()
        self.encoder = encoder
        width = encoder.model_settings.hidden_dim
        self.fc = nn.Linear(width, hidden)
        self.fc_out = nn.Linear(hidden, 1)

    def forward(self, graph: dgl.DGLGraph) -> torch.Tensor:
        node = self.encoder.encode(graph)
        with graph.local_scope():
            graph.ndata["_atom"] = node
            crystal = dgl.mean_nodes(graph, "_atom")
        return self.fc_out(F.softplus(self.fc(crystal))).squeeze(-1)


def finetune_model(teacher_path: str) -> EncoderRegressor:
    """The teacher's encoder, unfrozen, with a freshly initialised regression head."""
    encoder, _ = model_from_checkpoint(teacher_path)
    for parameter in encoder.parameters():
        parameter.requires_grad_(True)
    return EncoderRegressor(encoder)


def random_teacher(like: FrozenTeacher, seed: int) -> FrozenTeacher:
    """The teacher's architecture at its default initialisation (drawn with ``seed``),
    distilled at the same depth."""
    settings: ModelSettings = like.model_settings
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = CrysGNN(settings, like.graph_settings)
    return FrozenTeacher(model, source=f"random-init (seed {seed})", depth=like.depth)
