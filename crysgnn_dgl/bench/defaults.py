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

#: the KD recipe chosen on validation (docs/benchmarks.md): λ = 10 won over 1 on ``mp_eform``
#: and ``perov5`` with the default teacher (and is what M3GNet and CHGNet recommend); the
#: rest as the defaults of :class:`~crysgnn_dgl.distill.DistillSettings`
RECIPE: dict[str, Any] = {"kd_weight": 10.0, "projection": "linear", "target_norm": "l2", "loss": "mse", "decay": "none"}
