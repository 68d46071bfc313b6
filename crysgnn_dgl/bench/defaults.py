"""Defaults of the benchmark protocol and of the KD recipe, as plain values (the command
line reads them without importing torch; :mod:`.spec` builds its settings from them)."""

from __future__ import annotations

from typing import Any

#: training protocol of every benchmark run: Adam, learning rate halved after
#: ``plateau_patience`` epochs without a better validation MAE, early stopping after
#: ``early_stopping`` such epochs, best-validation weights restored for the test
TRAINING: dict[str, Any] = {
    "epochs": 150, "batch_size": 64, "lr": 5e-3, "schedule": "plateau", "plateau_patience": 5,
    "plateau_factor": 0.5, "min_lr": 1e-5, "early_stopping": 15,
}

#: the KD recipe chosen on validation (docs/benchmarks.md), as the defaults of
#: :class:`~crysgnn_dgl.distill.DistillSettings`; λ is the teacher's own recommendation
#: (``recommended_kd_weight``: recorded in a CrysGNN checkpoint, chosen on validation)
RECIPE: dict[str, Any] = {"projection": "linear", "target_norm": "l2", "loss": "mse", "decay": "none"}
