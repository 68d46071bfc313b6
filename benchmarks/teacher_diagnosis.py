"""Where does the teacher keep (or lose) information? Per-layer geometry and linear probes.

For the bundled CrysGNN teacher and for the same architecture at default initialisation
(several seeds), on the Materials Project crystals held out from the teacher's
pre-training (its validation slice, rebuilt by ``_validation_slice.py``), each layer's
per-atom output (the embedding, each of the convolutions, and the last one after the L2
normalisation that makes the distillation target) is described by

* effective rank: exp of the entropy of the normalised singular values of the centred
  atoms × dims matrix (Roy & Vetterli 2007; 1 = all atoms on a line, 64 = isotropic);
* the fraction of variance in the top-1 / top-5 principal directions;
* the mean over dimensions of the per-dimension standard deviation across atoms;
* the mean cosine similarity over all pairs of distinct atoms (uncentred: 1 = every atom
  points the same way);

and probed: 5-fold ridge regression on the standardised mean-pooled per-crystal vector
(alpha from 15 values 1e-3..1e4 by inner 5-fold CV on the training folds) for log volume
per atom, formation energy per atom and band gap; R² and MAE of the pooled out-of-fold
predictions. Per-layer outputs come from forward hooks; the model is not modified.

    OMP_NUM_THREADS=1 python benchmarks/teacher_diagnosis.py [--limit 300]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from _common import REPO, Report, require_data
from _probe import cross_validated_probe
from _validation_slice import teacher_held_out

TARGETS = {  # name -> (column of the held-out table, unit)
    "log V/atom": ("log_volume_per_atom", "ln Å³"),
    "E_form": ("formation_energy_per_atom", "eV/atom"),
    "band gap": ("band_gap", "eV"),
}
GEOMETRY = ("erank", "top1", "top5", "dim std", "cos")
WIDTH = 16  # table column width


def effective_rank(x: np.ndarray) -> float:
    """exp(entropy) of the singular values of ``x`` normalised to sum 1."""
    s = np.linalg.svd(np.asarray(x, dtype=np.float64), compute_uv=False)
    p = s[s > 0] / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def variance_fractions(x: np.ndarray, tops: Sequence[int] = (1, 5)) -> list[float]:
    """Fraction of the total variance of ``x``'s rows in the top-k principal directions."""
    centred = np.asarray(x, dtype=np.float64) - x.mean(0)
    variance = np.linalg.svd(centred, compute_uv=False) ** 2
    return [float(variance[:k].sum() / variance.sum()) for k in tops]


def mean_pairwise_cosine(x: np.ndarray) -> float:
    """Mean cosine similarity over all ordered pairs of distinct rows (zero rows count 0)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    n = len(unit)
    total = unit.sum(0)
    return float((total @ total - (unit * unit).sum()) / (n * (n - 1)))


def embedding_geometry(x: np.ndarray) -> dict[str, float]:
    """All per-layer geometry figures of one atoms × dims matrix."""
    top1, top5 = variance_fractions(x)
    return {"erank": effective_rank(x - x.mean(0)), "top1": top1, "top5": top5,
            "dim std": float(x.std(0).mean()), "cos": mean_pairwise_cosine(x)}


def mean_pool(nodes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per-crystal mean of consecutive blocks of ``sizes`` rows."""
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return np.add.reduceat(nodes, starts, axis=0) / sizes[:, None]


def layer_names(num_conv: int) -> list[str]:
    """Row labels: the embedding, each convolution, and the last after the L2 normalisation."""
    return ["embedding", *(f"conv{i + 1}" for i in range(num_conv)), f"conv{num_conv} + L2"]


@torch.no_grad()
def layer_outputs(
    model: torch.nn.Module, graphs: list, batch_size: int = 256
) -> dict[str, np.ndarray]:
    """Per-atom output of every layer of a CrysGNN (forward hooks; the last entry is
    ``model.embed``, i.e. after the L2 normalisation)."""
    from crysgnn_dgl.backend import dgl

    names = layer_names(len(model.convs))
    captured: dict[str, list[torch.Tensor]] = {name: [] for name in names}

    def keep(name: str) -> Callable:
        return lambda module, inputs, output: captured[name].append(output.detach().clone())

    modules = [model.embedding, *model.convs]
    hooks = [module.register_forward_hook(keep(name)) for module, name in zip(modules, names)]
    model.eval()
    try:
        for start in range(0, len(graphs), batch_size):
            batch = dgl.batch(graphs[start:start + batch_size])
            captured[names[-1]].append(model.embed(batch))
    finally:
        for hook in hooks:
            hook.remove()
    return {name: torch.cat(parts).numpy() for name, parts in captured.items()}


def diagnose(
    model: torch.nn.Module,
    graphs: list,
    sizes: np.ndarray,
    targets: dict[str, np.ndarray],
    folds: int,
    seed: int,
) -> dict[str, dict[str, float]]:
    """Geometry and probe figures per layer: ``{layer: {figure: value}}``."""
    rows = {}
    for layer, nodes in layer_outputs(model, graphs).items():
        row = embedding_geometry(nodes)
        pooled = mean_pool(nodes.astype(np.float64), sizes)
        for target, y in targets.items():
            scores = cross_validated_probe(pooled, y, folds=folds, seed=seed)
            row |= {f"{target} R2": scores["r2"], f"{target} MAE": scores["mae"]}
        rows[layer] = row
    return rows


def held_out_graphs(
    crystals: pd.DataFrame, graph_settings: Any
) -> tuple[list, np.ndarray, dict[str, np.ndarray]]:
    """Graphs, atom counts and probe targets of the held-out crystals."""
    from crysgnn_dgl import build_graph

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen's notes on rounded CIF coordinates
        graphs = [build_graph(cif, graph_settings, structure_id=sid)
                  for cif, sid in zip(crystals.cif, crystals.material_id)]
    sizes = np.asarray([g.num_nodes() for g in graphs])
    table = crystals.assign(log_volume_per_atom=np.log(crystals.volume.to_numpy() / sizes))
    targets = {name: table[column].to_numpy(np.float64) for name, (column, _) in TARGETS.items()}
    return graphs, sizes, targets


Summary = dict[str, dict[str, tuple[float, float]]]  # layer -> figure -> (mean, sd over runs)


def summarise(runs: list[dict[str, dict[str, float]]]) -> Summary:
    """Mean and standard deviation over runs of every figure of every layer."""
    return {
        layer: {key: (float(np.mean(values)), float(np.std(values)))
                for key in runs[0][layer] for values in [[run[layer][key] for run in runs]]}
        for layer in runs[0]
    }


def cell(value: tuple[float, float], digits: int, spread: bool) -> str:
    """``mean±sd`` (or the mean alone) right-aligned in a table column."""
    mean, sd = value
    text = f"{mean:.{digits}f}±{sd:.{digits}f}" if spread else f"{mean:.{digits}f}"
    return f"{text:>{WIDTH}s}"


def tables(models: dict[str, Summary], spread: dict[str, bool]) -> list[str]:
    """The geometry table and the probe table, one row per model and layer."""
    digits = {"erank": 2, "dim std": 4}
    columns = {
        "Geometry of per-atom outputs (all held-out atoms)": [
            (k, k, digits.get(k, 3)) for k in GEOMETRY
        ],
        "Ridge probes on mean-pooled outputs (5-fold CV, out-of-fold R² / MAE)": [
            (f"{t} {m}", f"{t} {m}", 3) for t in TARGETS for m in ("R2", "MAE")
        ],
    }
    lines = []
    for title, figures in columns.items():
        header = "".join(f"{h:>{WIDTH}s}" for _, h, _ in figures)
        lines += [title, "", f"{'model':16s} {'layer':11s}{header}"]
        for model, layers in models.items():
            for layer, values in layers.items():
                lines.append(f"{model:16s} {layer:11s}" + "".join(
                    cell(values[key], d, spread[model]) for key, _, d in figures))
            lines.append("")
    return lines


def best_layers(models: dict[str, Summary]) -> list[str]:
    """Per target and model: the layer with the highest probe R², and the final (L2) layer's R²."""
    lines = [f"{'target':12s} {'model':16s} {'best layer':11s} {'R2':>7s} {'final (L2) R2':>14s}"]
    for target in TARGETS:
        for model, layers in models.items():
            r2 = {layer: figures[f"{target} R2"][0] for layer, figures in layers.items()}
            best, final = max(r2, key=r2.get), list(r2)[-1]
            lines.append(f"{target:12s} {model:16s} {best:11s} {r2[best]:7.3f} {r2[final]:14.3f}")
    return lines


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None,
                        help="teacher checkpoint or bundled teacher name (default: the default teacher)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="torch seeds of the default-initialised models")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N held-out crystals (quick run)")
    parser.add_argument("--folds", type=int, default=5, help="probe cross-validation folds")
    parser.add_argument("--probe-seed", type=int, default=0, help="fold assignment of the probes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", default="teacher_diagnosis.txt",
                        help="file name under benchmarks/results")
    args = parser.parse_args()
    if args.limit is not None and args.limit < 2 * args.folds:
        parser.error("--limit needs at least 2 × folds crystals")
    return args


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    from crysgnn_dgl import CrysGNN
    from crysgnn_dgl.checkpoint import model_from_checkpoint
    from crysgnn_dgl.teacher import checkpoint_path

    started = time.perf_counter()
    path = checkpoint_path(args.checkpoint).resolve()
    teacher, checkpoint = model_from_checkpoint(path)
    held = teacher_held_out(require_data(), checkpoint.training, checkpoint.graph_settings)
    crystals = held.crystals if args.limit is None else held.crystals.iloc[:args.limit]
    graphs, sizes, targets = held_out_graphs(crystals, checkpoint.graph_settings)

    report = Report(args.out)
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    report(f"teacher: {shown} (epoch {checkpoint.training.get('epoch', '?')})")
    report(held.describe())
    limit = f" (--limit {args.limit})" if args.limit is not None else ""
    report(f"used: {len(crystals)} crystals, {int(sizes.sum())} atoms{limit}")
    report(f"default initialisation: CrysGNN with the teacher's settings after "
           f"torch.manual_seed(s), s in {args.seeds}, eval mode (BatchNorm running statistics "
           "0/1); mean±sd over seeds")
    report("targets: " + ", ".join(f"{name} ({unit})" for name, (_, unit) in TARGETS.items()))
    report("")

    figures = diagnose(teacher, graphs, sizes, targets, args.folds, args.probe_seed)
    models = {"teacher": summarise([figures])}
    runs = []
    for seed in args.seeds:
        torch.manual_seed(seed)
        model = CrysGNN(checkpoint.model_settings, checkpoint.graph_settings)
        runs.append(diagnose(model, graphs, sizes, targets, args.folds, args.probe_seed))
    models[f"init ({len(args.seeds)} seeds)"] = summarise(runs)
    for line in tables(models, {name: name != "teacher" for name in models}):
        report(line)
    means = [cross_validated_probe(np.zeros((len(y), 1)), y, args.folds, args.probe_seed)
             for y in targets.values()]
    report(f"{'predict the mean (CV)':28s}" + "".join(
        f"{m['r2']:{WIDTH}.3f}{m['mae']:{WIDTH}.3f}" for m in means))
    report("")
    for line in best_layers(models):
        report(line)
    report("")
    for line in NOTES:
        report(line)
    report(f"time: {time.perf_counter() - started:.0f} s on {args.threads} thread(s)")
    print(f"written to {report.save()}")


NOTES = (
    "erank: effective rank of the centred atoms × 64 matrix; top1/top5: variance fraction in the",
    "leading principal directions; dim std: mean per-dimension std across atoms; cos: mean cosine",
    "of all pairs of distinct atoms (uncentred). The embedding layer is linear in the per-element",
    "CGCNN atom features, so its probe is a composition-only baseline. Probe alpha: inner 5-fold",
    "CV on the training folds over logspace(-3, 4, 15); R² and MAE of the pooled out-of-fold",
    "predictions.",
)

if __name__ == "__main__":
    main()
