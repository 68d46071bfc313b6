"""Vanilla-vs-distilled experiments trained by the package's own loop (``crysgnn-dgl demo``,
the CGCNN and GATGNN examples): load data (the bundled subset or a CSV), compare, print a
table, write a parity plot."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .compare import Comparison, ComparisonSettings, compare_distillation
from .dataset import CrystalGraphDataset
from .loop import TrainingSettings
from .options import (
    ExperimentDefaults,
    ModelOption,
    add_experiment_arguments,
    add_model_arguments,
    bundled_demo_table,
    experiment_parser,
)
from .report import print_comparison, summarize, write_parity_plot


def load_dataset(args: argparse.Namespace, graph_settings=None) -> tuple[CrystalGraphDataset, str]:
    """The labelled graphs the options select, and a description of their source."""
    path = args.data if args.data is not None else bundled_demo_table()
    dataset = CrystalGraphDataset.from_table(path, args.target, limit=args.limit, graph_settings=graph_settings)
    return dataset, f"{path} [{args.target}]"


def run_experiment(
    args: argparse.Namespace,
    model_factory: Callable[[], nn.Module],
    model_name: str,
    adapter: str = "auto",
    print_fn: Callable[[str], None] = print,
) -> Comparison:
    """Run the comparison the options describe; print the table; write the parity plot
    (of the first seed). Returns the first seed's comparison.

    ``adapter`` names the distillation adapter of the model (``"auto"``: detected).
    """
    if args.threads:
        torch.set_num_threads(args.threads)
    from ..distill import resolve_teacher

    start = time.perf_counter()
    teacher = resolve_teacher(args.teacher)  # fail before any work when it is missing
    probe = model_factory()
    dataset, source = load_dataset(args, getattr(probe, "graph_settings", None))
    print_fn(f"data: {source}: {len(dataset)} crystals ({len(dataset.skipped)} skipped) "
             f"in {time.perf_counter() - start:.1f} s")
    if dataset.skipped:
        print_fn(dataset.skip_summary())
    comparisons = []
    for repeat in range(max(1, args.repeats)):
        seed = args.seed + repeat
        training = TrainingSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=seed)
        settings = ComparisonSettings(train_limit=args.train_size, split_seed=args.split_seed,
                                      model_seed=seed, delta=args.delta,
                                      deterministic=torch.get_num_threads() > 1)
        comparison = compare_distillation(
            model_factory, dataset, training, settings, teacher=teacher, adapter=adapter,
            log=None if args.quiet else print_fn,
        )
        print_fn("")
        print_comparison(comparison, f"{model_name}: vanilla vs distilled, seed {seed} "
                                     f"(teacher: {comparison.teacher_source})", args.target, print_fn)
        comparisons.append(comparison)
    if len(comparisons) > 1:
        print_fn("")
        print_fn(summarize(comparisons))
    comparison = comparisons[0]
    if args.out is not None:
        write_parity_plot(comparison, model_name, args.target, args.out, print_fn)
    print_fn(f"total time: {time.perf_counter() - start:.1f} s")
    return comparison


def experiment_main(
    argv: Sequence[str] | None,
    description: str | None,
    defaults: ExperimentDefaults,
    model_name: str,
    model_options: tuple[str, Sequence[ModelOption]],
    model_factory: Callable[[argparse.Namespace], Callable[[], nn.Module]],
    adapter: str = "auto",
) -> int:
    """Command-line entry of an example: parse the experiment options and the model's
    ``(title, options)`` group, build the model factory from them, run the experiment."""
    parser = experiment_parser(description)
    add_experiment_arguments(parser, defaults)
    add_model_arguments(parser, *model_options)
    args = parser.parse_args(argv)
    run_experiment(args, model_factory(args), model_name, adapter=adapter)
    return 0
