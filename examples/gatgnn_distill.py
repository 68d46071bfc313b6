"""GATGNN with and without CrysGNN distillation, same seed, data and training budget.

Trains the crysgnn_dgl GATGNN port twice with the plain training loop of
``crysgnn_dgl.training`` (MSE on normalised targets, Adam): once as is, once after
``crysgnn_dgl.attach_teacher(model)`` (student embeddings: the per-atom features that
enter the composition attention). Prints the test MAE of both.

    python examples/gatgnn_distill.py                     # bundled subset, bundled teacher
    python examples/gatgnn_distill.py --data ../shared/data/mp_cgcnn36k.csv.xz --limit 6000
"""

from __future__ import annotations

import argparse

from crysgnn_dgl.models.gatgnn import GATGNN, GATGNNSettings
from crysgnn_dgl.training.experiment import ExperimentDefaults, add_experiment_arguments, run_experiment

DEFAULTS = ExperimentDefaults(epochs=40, batch_size=64, lr=0.005)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_experiment_arguments(parser, DEFAULTS)
    model = parser.add_argument_group("GATGNN architecture (original defaults)")
    model.add_argument("--neurons", type=int, default=64, help="node/edge embedding width (default: %(default)s)")
    model.add_argument("--layers", type=int, default=3, help="number of AGAT attention layers (default: %(default)s)")
    model.add_argument("--heads", type=int, default=4, help="attention heads per layer (default: %(default)s)")
    args = parser.parse_args(argv)
    settings = GATGNNSettings(neurons=args.neurons, n_layers=args.layers, heads=args.heads)
    run_experiment(args, lambda: GATGNN(settings), "GATGNN", adapter="gatgnn")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
