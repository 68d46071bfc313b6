"""A reference-style CrysGNN pre-training step, written the way the released code works:
padded neighbour tensors ``(N, M)``, per-edge concatenation in every convolution, and
Python loops over the crystals of a batch (pooling, the N² connectivity pairs and their
targets). Parameter names equal crysgnn_dgl's, so both load the same weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ReferenceConv(nn.Module):
    def __init__(self, atom_dim: int, nbr_dim: int):
        super().__init__()
        self.fc_full = nn.Linear(2 * atom_dim + nbr_dim, 2 * atom_dim)
        self.bn1 = nn.BatchNorm1d(2 * atom_dim)
        self.bn2 = nn.BatchNorm1d(atom_dim)

    def forward(self, atom, nbr_fea, nbr_idx):
        n, m = nbr_idx.shape
        neighbours = atom[nbr_idx, :]
        total = torch.cat([atom.unsqueeze(1).expand(n, m, atom.shape[1]), neighbours, nbr_fea], dim=2)
        gated = self.bn1(self.fc_full(total).view(-1, 2 * atom.shape[1])).view(n, m, -1)
        gate, core = gated.chunk(2, dim=2)
        summed = torch.sum(torch.sigmoid(gate) * F.softplus(core), dim=1)
        return F.softplus(atom + self.bn2(summed))


class ReferenceCrysGNN(nn.Module):
    def __init__(self, atom_dim=92, hidden=64, nbr_dim=41, num_conv=5):
        super().__init__()
        self.embedding = nn.Linear(atom_dim, hidden, bias=False)
        self.convs = nn.ModuleList(ReferenceConv(hidden, nbr_dim) for _ in range(num_conv))
        self.fc_adj = nn.Bilinear(hidden, hidden, 6)
        self.fc1 = nn.Linear(6, 6)
        self.fc_atom_feature = nn.Linear(hidden, atom_dim)
        self.fc_sg = nn.Linear(hidden, 230)


def gaussian(distances, centres, width=0.2):
    return torch.exp(-((distances.unsqueeze(-1) - centres) ** 2) / width**2)


def reference_nt_xent(vectors, labels, temperature):
    """Supervised NT-Xent in matrix form (as pytorch_metric_learning computes it)."""
    unit = F.normalize(vectors, dim=1)
    sims = unit @ unit.T / temperature
    same = labels.view(-1, 1) == labels.view(1, -1)
    positive = same & ~torch.eye(len(labels), dtype=torch.bool)
    shift = sims.max(dim=1, keepdim=True).values.detach()
    exp = torch.exp(sims - shift)
    negatives = (exp * ~same).sum(dim=1, keepdim=True)
    ratio = (sims - shift) - torch.log(exp + negatives)
    return -ratio[positive].mean()


def connectivity_matrices(nbr_idx, crystal_atom_idx):
    """Per-crystal N×N targets (slot counts capped at 5), computed while loading data."""
    targets = []
    for idx in crystal_atom_idx:
        n = len(idx)
        local = nbr_idx[idx] - idx[0]
        target = torch.zeros(n, n, dtype=torch.int64)
        for i in range(n):
            target[i] = torch.bincount(local[i], minlength=n)
        targets.append(target.clamp(max=5).view(-1))
    return targets


def reference_step(model, atom_fea, nbr_fea, nbr_idx, crystal_atom_idx, targets, sg, cs, temperature=0.07):
    """Forward, the four losses (0.25 each) and backward; returns the loss values."""
    atom = model.embedding(atom_fea)
    for conv in model.convs:
        atom = conv(atom, nbr_fea, nbr_idx)
    atom = F.normalize(atom, dim=1)
    pooled = torch.stack([atom[idx].mean(dim=0) for idx in crystal_atom_idx])
    weights = torch.tensor([0.1, 1, 1, 1, 1, 1])
    nll_sum, weight_sum = 0.0, 0.0
    for idx, target in zip(crystal_atom_idx, targets):
        z = atom[idx]
        n = len(idx)
        first = z.repeat_interleave(n, dim=0)
        second = z.repeat(n, 1)
        log_probs = F.log_softmax(model.fc1(model.fc_adj(first, second)), dim=1)
        w = weights[target]
        nll_sum = nll_sum + (-(log_probs[torch.arange(n * n), target]) * w).sum()
        weight_sum = weight_sum + w.sum()
    losses = {
        "feature": F.binary_cross_entropy_with_logits(model.fc_atom_feature(atom), atom_fea),
        "connectivity": nll_sum / weight_sum,
        "space_group": F.nll_loss(F.log_softmax(model.fc_sg(pooled), dim=1), sg),
        "contrastive": reference_nt_xent(pooled, cs, temperature),
    }
    total = 0.25 * sum(losses.values())
    total.backward()
    return {k: float(v) for k, v in losses.items()}
