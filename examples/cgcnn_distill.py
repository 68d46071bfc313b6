"""CGCNN with and without CrysGNN distillation, same seed, data and training budget.

Trains the crysgnn_dgl CGCNN port twice with the plain training loop of
``crysgnn_dgl.training`` (MSE on normalised targets, Adam): once as is, once after
``crysgnn_dgl.attach_teacher(model)``. The loop is the same function in both runs; the
teacher acts through the backward pass. Prints the test MAE of both.

    python examples/cgcnn_distill.py                      # bundled subset, default teacher
    python examples/cgcnn_distill.py --data ../shared/data/mp_cgcnn36k.csv.xz --limit 6000
"""

from __future__ import annotations

from crysgnn_dgl.models.cgcnn import CGCNN, CGCNNSettings
from crysgnn_dgl.training.experiment import experiment_main
from crysgnn_dgl.training.options import ExperimentDefaults, ModelOption, ModelValues

DEFAULTS = ExperimentDefaults(epochs=60, batch_size=64, lr=0.01)
MODEL_OPTIONS = ("CGCNN architecture (original defaults)", (
    ModelOption("--atom-fea-len", 64, "atom feature width in the convolutions"),
    ModelOption("--n-conv", 3, "number of convolution layers"),
    ModelOption("--h-fea-len", 128, "hidden width after pooling"),
    ModelOption("--n-h", 1, "hidden layers after pooling"),
))


def model_factory(model: ModelValues):
    settings = CGCNNSettings(**model)  # the options are named as CGCNNSettings' fields
    return lambda: CGCNN(settings)


def main(argv: list[str] | None = None) -> int:
    return experiment_main(argv, __doc__, DEFAULTS, "CGCNN", MODEL_OPTIONS, model_factory, adapter="cgcnn")


if __name__ == "__main__":
    raise SystemExit(main())
