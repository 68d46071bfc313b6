"""``crysgnn-dgl demo``: CGCNN trained with and without the bundled CrysGNN teacher."""

from __future__ import annotations

import argparse

from ..training.options import ExperimentDefaults, add_experiment_arguments

NAME = "demo"
HELP = (
    "Train CGCNN on the bundled formation-energy subset twice (vanilla, and distilled from "
    "the bundled CrysGNN teacher) with the same seed and budget; print the test MAEs and "
    "write a parity plot."
)
DEFAULTS = ExperimentDefaults(epochs=60, batch_size=64, lr=0.01, out="crysgnn_demo")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_experiment_arguments(parser, DEFAULTS)


def cgcnn_factory():
    """A CGCNN with the original default hyper-parameters."""
    from ..models.cgcnn import CGCNN

    return CGCNN()


def run(args: argparse.Namespace) -> int:
    from ..training.experiment import run_experiment

    run_experiment(args, cgcnn_factory, "CGCNN", adapter="cgcnn")
    return 0
