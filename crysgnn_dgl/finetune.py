"""Fine-tuning a CrysGNN checkpoint: its encoder, trainable, with a regression head (the
CrysGNN paper's Table 3, and the ``finetune`` mode of ``crysgnn-dgl bench``).

For a predictor with CrysGNN's own architecture this is the alternative to distillation
(``docs/benchmarks.md`` §6 compares the two); for ALIGNN, MEGNet or GATGNN distillation is
the only route.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from .backend import dgl
from .config import GraphSettings
from .models.crysgnn import CrysGNN


class CrysGNNRegressor(nn.Module):
    """A CrysGNN encoder (trainable) → mean over atoms → ``Linear–softplus–Linear`` head.

    Called on a batched graph from :func:`crysgnn_dgl.build_graphs` built with
    :attr:`graph_settings`; returns one prediction per crystal, shape ``(B,)``.
    """

    def __init__(self, encoder: CrysGNN, hidden: int = 128):
        super().__init__()
        self.encoder = encoder
        self.graph_settings: GraphSettings = encoder.graph_settings
        self.fc = nn.Linear(encoder.model_settings.hidden_dim, hidden)
        self.fc_out = nn.Linear(hidden, 1)

    def forward(self, graph: dgl.DGLGraph) -> torch.Tensor:
        atoms = self.encoder.encode(graph)
        with graph.local_scope():
            graph.ndata["_atom"] = atoms
            crystals = dgl.mean_nodes(graph, "_atom")
        return self.fc_out(F.softplus(self.fc(crystals))).squeeze(-1)


def finetune_model(
    teacher: str | os.PathLike | None = None,
    graph_settings: GraphSettings | None = None,
    hidden: int = 128,
) -> CrysGNNRegressor:
    """A regressor whose encoder starts from a CrysGNN checkpoint, every weight trainable.

    Args:
        teacher: a bundled teacher's name (``"crysgnn-denoise"``, the default when
            ``None``), or a CrysGNN checkpoint path (either format). Named teachers of
            other architectures (``"m3gnet"``, ``"chgnet"``) are refused.
        graph_settings: the featuriser settings the caller will build graphs with;
            refused if the checkpoint was trained with different ones.
        hidden: width of the head's hidden layer (freshly initialised).
    """
    from .teacher import load_crysgnn

    encoder, _, _ = load_crysgnn(teacher, graph_settings)
    encoder.train()
    for parameter in encoder.parameters():
        parameter.requires_grad_(True)
    return CrysGNNRegressor(encoder, hidden)
