"""Running one benchmark run: paired data, initial weights and batch order for every mode
of a seed; only the teacher differs."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from ..finetune import finetune_model
from ..training.loop import train_predictor
from ..training.normalizer import TargetNormalizer
from ..training.resume import EpochCheckpoint
from .graphs import GraphStore
from .models import random_teacher
from .predictors import crysgnn_features
from .spec import KD_MODES, RunSpec

#: offsets of the seeds of the projection head and of the training-time RNG state
HEAD_SEED, TRAIN_SEED, TEACHER_SEED = 10_000, 20_000, 30_000


def training_split(store: GraphStore, size: int, seed: int) -> tuple[list, list, list, list[int]]:
    """``(train, val, test)`` item lists and the training indices used (``size`` 0: all)."""
    candidates = store.task.train_candidates(size, seed)
    store.ensure(candidates)
    train, kept = store.items(candidates)
    size = size or len(train)
    if len(train) < size:
        raise ValueError(
            f"task {store.task.spec.label}: only {len(train)} of {len(candidates)} drawn training "
            f"crystals are usable; asked for {size}"
        )
    store.ensure(list(store.task.val) + list(store.task.test))
    val, _ = store.items(store.task.val)
    test, _ = store.items(store.task.test)
    return train[:size], val, test, kept[:size]


def _kd_schedule(hook: Any, spec: RunSpec):
    budget = spec.training.epochs
    decay = spec.recipe.decay

    def on_epoch_start(epoch: int) -> None:
        progress = (epoch - 1) / max(1, budget - 1)
        if decay == "linear":
            hook.kd_scale = 1.0 - progress
        elif decay == "cosine":
            hook.kd_scale = 0.5 * (1.0 + math.cos(math.pi * progress))

    return on_epoch_start


def _warm(hook: Any, train: list, store: GraphStore, batch_size: int) -> None:
    batch = batch_size * 4
    # the sweep's thread count (one per job), not every core: jobs run side by side
    hook.warm((store.predictor.collate(train[i : i + batch])[0] for i in range(0, len(train), batch)),
              threads=torch.get_num_threads())


def _attach(model: torch.nn.Module, spec: RunSpec, train: list, store: GraphStore) -> Any:
    from ..distill import attach_teacher
    from ..teacher import FrozenTeacher, load_teacher

    teacher = load_teacher(spec.teacher, depth=spec.teacher_depth)
    if spec.mode == "random-teacher":
        assert isinstance(teacher, FrozenTeacher)  # RunSpec: random-teacher runs need a CrysGNN teacher
        teacher = random_teacher(teacher, spec.seed + TEACHER_SEED)
    settings = spec.recipe.distill_settings(shuffle=spec.mode == "shuffled-teacher", seed=spec.seed)
    with torch.random.fork_rng():
        torch.manual_seed(spec.seed + HEAD_SEED)
        hook = attach_teacher(store.predictor.student(model), teacher, adapter=store.predictor.adapter,
                              settings=settings)
    _warm(hook, train, store, spec.training.batch_size)
    return hook


def _train(model, spec: RunSpec, store: GraphStore, hook: Any, train, val, test, log,
           checkpoint: EpochCheckpoint | None = None):
    normalizer = TargetNormalizer(torch.stack([target for _, target in train]))
    torch.manual_seed(spec.seed + TRAIN_SEED)
    training = spec.training.__class__.from_dict({**spec.training.to_dict(), "seed": spec.seed})
    return train_predictor(
        model, train, val or None, test, training, normalizer, log, collate=store.predictor.collate,
        on_epoch_start=_kd_schedule(hook, spec) if hook is not None and spec.recipe.decay != "none" else None,
        checkpoint=checkpoint,
    )


def _source_checkpoint(spec: RunSpec, source_dir: Path | None) -> Path | None:
    """Where the trained source model of a transfer run is kept (``None``: not kept).
    Shuffled-teacher runs are not: their permutations continue from the source phase."""
    if source_dir is None or spec.source is None or spec.mode == "shuffled-teacher":
        return None
    return source_dir / f"{spec.source_run().key()}.pt"


def _source_phase(model: torch.nn.Module, spec: RunSpec, source_store: GraphStore | None, first: tuple[list, list, list, list[int]] | None,
                  hook: Any, checkpoint: Path | None, log) -> tuple[float, int]:
    """Train ``model`` (and its projection head) on the source task, or load the weights a
    previous run with the same :meth:`RunSpec.source_run` stored at ``checkpoint``;
    returns the source model's test MAE and best epoch. ``first``: the source split."""
    if first is None:
        assert checkpoint is not None  # run_one splits the source task unless the checkpoint exists
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(saved["model"])
        return float(saved["test_mae"]), int(saved["best_epoch"])
    assert source_store is not None  # checked with first
    source_train, source_val, source_test, _ = first
    result = _train(model, spec, source_store, hook, source_train, source_val, source_test, log)
    if checkpoint is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        partial = checkpoint.with_suffix(".partial")
        torch.save({"model": model.state_dict(), "test_mae": result.test_mae, "best_epoch": result.best_epoch},
                   partial)
        partial.replace(checkpoint)  # a killed run leaves no half-written source model
    return result.test_mae, result.best_epoch


def run_one(spec: RunSpec, store: GraphStore, log=None, keep_predictions: bool = True,
            source_store: GraphStore | None = None, source_dir: Path | None = None,
            epoch_checkpoint: Path | None = None) -> dict[str, Any]:
    """Train and evaluate one run; returns its result record (MAEs in target units).
    A transfer run (``spec.source``) first trains on ``source_store``'s task; with
    ``source_dir`` the trained source model is stored there and reused by later transfer
    runs of the same source phase (bit-identical to training it again). With
    ``epoch_checkpoint`` (a file path) the run saves its state after every epoch there and, when
    the file exists, resumes after its last epoch with the same result bit for bit
    (transfer runs always start over: their source phase is not checkpointed)."""
    start = time.perf_counter()
    train, val, test, indices = training_split(store, spec.train_size, spec.seed)
    checkpoint = _source_checkpoint(spec, source_dir)
    first = None  # the source task's split, when the source phase trains
    if spec.source is not None and not (checkpoint is not None and checkpoint.exists()):
        if source_store is None:
            raise ValueError(f"{spec.task_label}: a transfer run needs source_store (the source task's graphs)")
        first = training_split(source_store, spec.source_size, spec.seed)
    torch.manual_seed(spec.seed)
    model: torch.nn.Module
    if spec.mode == "finetune":
        if store.predictor.featurize is not crysgnn_features:
            raise ValueError(f"finetune needs CrysGNN graphs; run it with --predictors cgcnn, not {spec.predictor}")
        model = finetune_model(spec.teacher_path())
    else:
        model = store.predictor.build()
    hook = _attach(model, spec, first[0] if first else train, store) if spec.mode in KD_MODES else None
    source_result = None
    try:
        if spec.source is not None:
            source_result = _source_phase(model, spec, source_store, first, hook, checkpoint, log)
            if hook is not None:
                if first is not None:
                    _warm(hook, train, store, spec.training.batch_size)
                hook.reset_kd_mean()  # the record's KD mean is the target phase's
        epochs = None if epoch_checkpoint is None or spec.source is not None else EpochCheckpoint(
            epoch_checkpoint, hook.state_dict if hook is not None else None, hook.load_state_dict if hook is not None else None)
        result = _train(model, spec, store, hook, train, val, test, log, epochs)
        kd_mean = hook.kd_mean if hook is not None else None
    finally:
        if hook is not None:
            hook.remove()
    record: dict[str, Any] = {
        "task": spec.task_label, "predictor": spec.predictor, "mode": spec.mode,
        "teacher": spec.teacher_label, "recipe": spec.recipe_label,
        "train_size": len(indices), "seed": spec.seed,
        "val_mae": result.best_val_mae, "test_mae": result.test_mae,
        "best_epoch": result.best_epoch, "epochs": result.epochs,
        "seconds": round(result.previous_seconds + time.perf_counter() - start, 2),
        "kd_mean": kd_mean if kd_mean is not None else float("nan"),
        "unit": spec.task.unit, "key": spec.key(),
    }
    if store.predictor.hyper:
        record["hyper"] = store.predictor.hyper
    if result.resumed_after:
        record["resumed_after_epoch"] = result.resumed_after
    if source_result is not None:
        record["source_test_mae"], record["source_best_epoch"] = source_result
    if keep_predictions:
        record["history"] = [{k: v for k, v in row.items() if k != "seconds"} for row in result.history]
        record["test_predictions"] = [round(float(v), 6) for v in result.test_predictions]
        record["test_targets"] = [round(float(v), 6) for v in result.test_targets]
    return record
