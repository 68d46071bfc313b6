"""GATGNN with and without CrysGNN distillation, same seed, data and training budget.

Trains the crysgnn_dgl GATGNN port twice with the plain training loop of
``crysgnn_dgl.training`` (MSE on normalised targets, Adam): once as is, once after
``crysgnn_dgl.attach_teacher(model)`` (student embeddings: the per-atom features that
enter the composition attention). Prints the test MAE of both.

    python examples/gatgnn_distill.py                     # bundled subset, default teacher
    python examples/gatgnn_distill.py --data ../shared/data/mp_cgcnn36k.csv.xz --limit 6000
"""

from __future__ import annotations

from crysgnn_dgl.models.gatgnn import GATGNN, GATGNNSettings
from crysgnn_dgl.training.experiment import experiment_main
from crysgnn_dgl.training.options import ExperimentDefaults, ModelOption, ModelValues

DEFAULTS = ExperimentDefaults(epochs=40, batch_size=64, lr=0.005)
MODEL_OPTIONS = ("GATGNN architecture (original defaults)", (
    ModelOption("--neurons", 64, "node/edge embedding width"),
    ModelOption("--layers", 3, "number of AGAT attention layers"),
    ModelOption("--heads", 4, "attention heads per layer"),
))


def model_factory(model: ModelValues):
    settings = GATGNNSettings(neurons=model["neurons"], n_layers=model["layers"], heads=model["heads"])
    return lambda: GATGNN(settings)


def main(argv: list[str] | None = None) -> int:
    return experiment_main(argv, __doc__, DEFAULTS, "GATGNN", MODEL_OPTIONS, model_factory, adapter="gatgnn")


if __name__ == "__main__":
    raise SystemExit(main())
