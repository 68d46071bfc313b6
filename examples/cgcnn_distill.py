"""CGCNN with and without CrysGNN distillation, same seed, data and training budget.

Trains the crysgnn_dgl CGCNN port twice with the plain training loop of
``crysgnn_dgl.training`` (MSE on normalised targets, Adam): once as is, once after
``crysgnn_dgl.attach_teacher(model)``. The loop is the same function in both runs; the
teacher acts through the backward pass. Prints the test MAE of both.

    python examples/cgcnn_distill.py                      # bundled subset, bundled teacher
    python examples/cgcnn_distill.py --data ../shared/data/mp_cgcnn36k.csv.xz --limit 6000
"""

from __future__ import annotations

import argparse

from crysgnn_dgl.models.cgcnn import CGCNN, CGCNNSettings
from crysgnn_dgl.training.experiment import ExperimentDefaults, add_experiment_arguments, run_experiment

DEFAULTS = ExperimentDefaults(epochs=60, batch_size=64, lr=0.01)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_experiment_arguments(parser, DEFAULTS)
    model = parser.add_argument_group("CGCNN architecture (original defaults)")
    model.add_argument("--atom-fea-len", type=int, default=64, help="atom feature width in the convolutions (default: %(default)s)")
    model.add_argument("--n-conv", type=int, default=3, help="number of convolution layers (default: %(default)s)")
    model.add_argument("--h-fea-len", type=int, default=128, help="hidden width after pooling (default: %(default)s)")
    model.add_argument("--n-h", type=int, default=1, help="hidden layers after pooling (default: %(default)s)")
    args = parser.parse_args(argv)
    settings = CGCNNSettings(atom_fea_len=args.atom_fea_len, n_conv=args.n_conv, h_fea_len=args.h_fea_len, n_h=args.n_h)
    run_experiment(args, lambda: CGCNN(settings), "CGCNN", adapter="cgcnn")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
