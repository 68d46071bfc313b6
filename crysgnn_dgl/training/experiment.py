"""Vanilla-vs-distilled experiments trained by the package's own loop (``crysgnn-dgl demo``,
the CGCNN and GATGNN examples): load data (the bundled subset or a CSV), compare, print a
table, write a parity plot."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .compare import Comparison, ComparisonSettings, compare_distillation
from .dataset import CrystalGraphDataset
from .options import (
    ExperimentDefaults,
    ExperimentOptions,
    ModelOption,
    ModelValues,
    add_experiment_arguments,
    add_model_arguments,
    experiment_parser,
    options_from_args,
)
from .report import print_comparison, summarize, write_parity_plot


def load_dataset(options: ExperimentOptions, graph_settings=None) -> tuple[CrystalGraphDataset, str]:
    """The labelled graphs the options select, and a description of their source."""
    path = options.table
    dataset = CrystalGraphDataset.from_table(path, options.target, limit=options.limit, graph_settings=graph_settings)
    return dataset, f"{path} [{options.target}]"


def run_experiment(
    options: ExperimentOptions,
    model_factory: Callable[[], nn.Module],
    model_name: str,
    adapter: str = "auto",
    print_fn: Callable[[str], None] = print,
) -> Comparison:
    """Run the comparison the options describe; print the table; write the parity plot
    (of the first seed). Returns the first seed's comparison.

    ``adapter`` names the distillation adapter of the model (``"auto"``: detected).
    """
    if options.threads:
        torch.set_num_threads(options.threads)
    from ..distill import resolve_teacher

    start = time.perf_counter()
    teacher = resolve_teacher(options.teacher)  # fail before any work when it is missing
    probe = model_factory()
    dataset, source = load_dataset(options, getattr(probe, "graph_settings", None))
    print_fn(f"data: {source}: {len(dataset)} crystals ({len(dataset.skipped)} skipped) "
             f"in {time.perf_counter() - start:.1f} s")
    if dataset.skipped:
        print_fn(dataset.skip_summary())
    comparisons = []
    for repeat in range(options.repeats):
        seed = options.seed + repeat
        training = options.training(seed)
        settings = ComparisonSettings(train_limit=options.train_size, split_seed=options.split_seed,
                                      model_seed=seed, delta=options.delta,
                                      deterministic=torch.get_num_threads() > 1)
        comparison = compare_distillation(
            model_factory, dataset, training, settings, teacher=teacher, adapter=adapter,
            log=None if options.quiet else print_fn,
        )
        print_fn("")
        print_comparison(comparison, f"{model_name}: vanilla vs distilled, seed {seed} "
                                     f"(teacher: {comparison.teacher_source})", options.target, print_fn)
        comparisons.append(comparison)
    if len(comparisons) > 1:
        print_fn("")
        print_fn(summarize(comparisons))
    comparison = comparisons[0]
    if options.out is not None:
        write_parity_plot(comparison, model_name, options.target, options.out, print_fn)
    print_fn(f"total time: {time.perf_counter() - start:.1f} s")
    return comparison


def experiment_main(
    argv: Sequence[str] | None,
    description: str | None,
    defaults: ExperimentDefaults,
    model_name: str,
    model_options: tuple[str, Sequence[ModelOption]],
    model_factory: Callable[[ModelValues], Callable[[], nn.Module]],
    adapter: str = "auto",
) -> int:
    """Command-line entry of an example: parse the experiment options and the model's
    ``(title, options)`` group, build the model factory from the model's values (by
    option name, e.g. ``{"n_conv": 3}``), run the experiment."""
    parser = experiment_parser(description)
    add_experiment_arguments(parser, defaults)
    add_model_arguments(parser, *model_options)
    options = options_from_args(ExperimentOptions, parser.parse_args(argv), model_options[1])
    run_experiment(options, model_factory(options.model), model_name, adapter=adapter)
    return 0
