"""Vanilla-vs-distilled experiments of predictors trained by their own library's loop
(alignn's ``train_dgl``, matgl's Lightning module): the library builds its graphs and
trains, the package selects the data, attaches the teacher, times, tests and reports."""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .compare import Comparison
from .loop import TrainingResult
from .options import (
    ExperimentDefaults,
    ExternalOptions,
    ModelOption,
    add_external_arguments,
    add_model_arguments,
    experiment_parser,
    options_from_args,
)
from .report import print_comparison, write_parity_plot
from .selection import LabelledStructures, select_structures
from .splits import Split

RunOutcome = tuple[TrainingResult, float | None]


@dataclass(frozen=True)
class ExternalLoop:
    """How one predictor library takes part in the experiment.

    Attributes:
        model_name: name in the report and the parity plot file (``"ALIGNN"``).
        loop_name: the library's training entry point, as printed (``"alignn.train.train_dgl"``).
        build_dataset: ``(options, data, workdir) -> dataset``: the library's graphs of all
            selected crystals (built once, shared by both runs).
        train_once: ``(options, dataset, split, out, teacher) -> (result, kd_mean)``: one
            training run (``teacher`` is ``None`` for the vanilla run), usually through
            :func:`fit_and_test`.

    ``options`` is the :class:`~crysgnn_dgl.training.options.ExternalOptions` of the
    run; its ``model`` holds the example's architecture options by name.
    """

    model_name: str
    loop_name: str
    build_dataset: Callable[[ExternalOptions, LabelledStructures, Path], Any]
    train_once: Callable[[ExternalOptions, Any, Split, Path, Any], RunOutcome]


def timed_result(train: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> TrainingResult:
    """Run ``train`` (returns test predictions and targets) and wrap its outcome."""
    start = time.perf_counter()
    predictions, targets = train()
    predictions, targets = predictions.reshape(-1).float(), targets.reshape(-1).float()
    return TrainingResult(test_mae=float((predictions - targets).abs().mean()), test_predictions=predictions,
                          test_targets=targets, seconds=time.perf_counter() - start)


def fit_and_test(
    model: nn.Module,
    teacher: Any,
    delta: float | None,
    fit: Callable[[], int],
    test_batches: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]],
) -> RunOutcome:
    """One timed run: attach ``teacher`` to ``model`` (unless ``None``), ``fit()``, then
    collect ``(prediction, target)`` of ``test_batches()`` in eval mode without gradients.

    ``fit`` trains, leaves the best-validation weights in the model and returns the
    epoch they are from (measured by the library's loop). Returns the result and the
    mean KD term of the training (``None`` without a teacher).
    """
    from ..distill import attach_teacher

    hook = attach_teacher(model, teacher, delta=delta) if teacher is not None else None
    state: dict[str, Any] = {}  # "best_epoch": int, "kd_mean": float | None

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        state["best_epoch"] = fit()
        state["kd_mean"] = hook.kd_mean if hook is not None else None
        model.eval()
        predictions, targets = [], []
        with torch.no_grad():
            for prediction, target in test_batches():
                predictions.append(prediction.reshape(-1))
                targets.append(target.reshape(-1))
        return torch.cat(predictions), torch.cat(targets)

    try:
        result = timed_result(run)
    finally:
        if hook is not None:
            hook.remove()
    result.best_epoch = int(state["best_epoch"])
    return result, state.get("kd_mean")


def report(
    options: ExternalOptions,
    model_name: str,
    data: LabelledStructures,
    vanilla: TrainingResult,
    distilled: TrainingResult,
    kd_mean: float | None,
    teacher_source: str,
    started: float,
    print_fn: Callable[[str], None] = print,
) -> Comparison:
    """Print the vanilla-vs-distilled table (and write the parity plot with ``--out``)."""
    comparison = Comparison(vanilla, distilled, data.split, options.training(), kd_mean, teacher_source)
    print_fn("")
    print_fn(f"data: {data.source}")
    if data.skipped:
        print_fn(f"skipped {len(data.skipped)} row(s): " + "; ".join(f"{i}: {r}" for i, r in data.skipped[:5]))
    print_comparison(comparison, f"{model_name}: vanilla vs distilled (teacher: {teacher_source})", options.target,
                     print_fn)
    if options.out is not None:
        write_parity_plot(comparison, model_name, options.target, options.out, print_fn)
    print_fn(f"total time: {time.perf_counter() - started:.1f} s")
    return comparison


def run_external_experiment(
    options: ExternalOptions, loop: ExternalLoop, print_fn: Callable[[str], None] = print
) -> Comparison:
    """Select the data, build the library's graphs, train vanilla then distilled with the
    same seed and budget, and report."""
    from ..distill import resolve_teacher

    # upstream noise (pymatgen CIF parsing, deprecations in alignn/matgl/lightning/dgl);
    # the hook's own safeguards are RuntimeWarnings from crysgnn_dgl and stay visible
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(pymatgen|matgl|alignn|lightning|dgl|jarvis|torch)")
    torch.set_num_threads(options.threads)
    started = time.perf_counter()
    teacher = resolve_teacher(options.teacher)  # fail before any work when it is missing
    data = select_structures(options)
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix=f"{loop.model_name.lower()}_distill_"))
    workdir.mkdir(parents=True, exist_ok=True)
    dataset = loop.build_dataset(options, data, workdir)
    split = data.split
    print_fn(f"{len(split.train)} train / {len(split.val)} val / {len(split.test)} test crystals, graphs built in "
             f"{time.perf_counter() - started:.1f} s; training with {loop.loop_name}")
    vanilla, _ = loop.train_once(options, dataset, split, workdir / "vanilla", None)
    print_fn(f"vanilla done: test MAE {vanilla.test_mae:.4f} ({vanilla.seconds:.1f} s)")
    distilled, kd_mean = loop.train_once(options, dataset, split, workdir / "distilled", teacher)
    teacher_source = str(getattr(teacher, "source", "") or options.teacher)
    return report(options, loop.model_name, data, vanilla, distilled, kd_mean, teacher_source, started, print_fn)


def external_main(
    argv: Sequence[str] | None,
    description: str | None,
    defaults: ExperimentDefaults,
    model_options: tuple[str, Sequence[ModelOption]],
    loop: ExternalLoop,
) -> int:
    """Command-line entry of an example: parse the options and the model's
    ``(title, options)`` group, run the experiment."""
    parser = experiment_parser(description)
    add_external_arguments(parser, defaults)
    add_model_arguments(parser, *model_options)
    options = options_from_args(ExternalOptions, parser.parse_args(argv), model_options[1])
    run_external_experiment(options, loop, print_fn=_print_flushed)
    return 0


def _print_flushed(line: str) -> None:
    print(line, flush=True)
