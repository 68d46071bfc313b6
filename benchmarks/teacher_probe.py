"""Did the teacher learn something? Ridge-regression probes on mean-pooled embeddings.

Targets: log volume per atom and formation energy (eV/atom) of Materials Project
crystals. The probe is fitted on crystals of the pre-training slice and scored on the
crystals held out from pre-training (the validation slice of the cache: seen neither by
the teacher nor by the probe fit). The same probe on a randomly initialised CrysGNN is
the baseline.

    python benchmarks/teacher_probe.py --checkpoint crysgnn_dgl/data/crysgnn_default_teacher.pt \
        --cache runs/pretrain_default/cache
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch

from _common import REPO, Report, require_data


def ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Closed-form ridge on standardised features; returns weights and intercept."""
    gram = x.T @ x + alpha * np.eye(x.shape[1])
    weights = np.linalg.solve(gram, x.T @ (y - y.mean()))
    return weights, float(y.mean())


def choose_alpha(x: np.ndarray, y: np.ndarray, alphas, folds: int = 5, seed: int = 0) -> float:
    """Alpha with the lowest k-fold cross-validated MAE on the fitting set."""
    fold = np.random.default_rng(seed).integers(0, folds, len(y))
    errors = []
    for alpha in alphas:
        mae = []
        for k in range(folds):
            fit, held = fold != k, fold == k
            w, b = ridge_fit(x[fit], y[fit], alpha)
            mae.append(np.abs(x[held] @ w + b - y[held]).mean())
        errors.append(np.mean(mae))
    return float(alphas[int(np.argmin(errors))])


def probe(train_x, train_y, test_x, test_y) -> dict[str, float]:
    mean, std = train_x.mean(0), train_x.std(0) + 1e-8
    a, b = (train_x - mean) / std, (test_x - mean) / std
    alpha = choose_alpha(a, train_y, np.logspace(-3, 4, 15))
    w, intercept = ridge_fit(a, train_y, alpha)
    pred = b @ w + intercept
    mae = float(np.abs(pred - test_y).mean())
    r2 = 1.0 - float(((pred - test_y) ** 2).sum() / ((test_y - test_y.mean()) ** 2).sum())
    return {"mae": mae, "r2": r2, "alpha": alpha, "mean_baseline_mae": float(np.abs(train_y.mean() - test_y).mean())}


def pooled_embeddings(model, cache, positions, batch_size=256) -> np.ndarray:
    from crysgnn_dgl.pretrain import collate_records

    vectors = []
    with torch.no_grad():
        for start in range(0, len(positions), batch_size):
            graph, _ = collate_records([cache[int(p)] for p in positions[start : start + batch_size]], cache.graph_settings)
            vectors.append(model(graph, with_connectivity=False).graph_embedding.numpy())
    return np.concatenate(vectors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", default=str(REPO / "crysgnn_dgl" / "data" / "crysgnn_default_teacher.pt"))
    parser.add_argument("--cache", default=str(REPO / "runs" / "pretrain_default" / "cache"))
    parser.add_argument("--val-fraction", type=float, default=0.05, help="as in pre-training")
    parser.add_argument("--seed", type=int, default=0, help="pre-training split seed")
    parser.add_argument("--fit-size", type=int, default=5000, help="probe-fitting crystals (pre-training slice)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="teacher_probe.txt")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from crysgnn_dgl import CrysGNN
    from crysgnn_dgl.checkpoint import model_from_checkpoint
    from crysgnn_dgl.pretrain import GraphCache

    report = Report(args.out)
    data = require_data()
    energies = pd.read_csv(data / "mp_cgcnn36k.csv.xz", usecols=["material_id", "formation_energy_per_atom"])
    energy = dict(zip(energies.material_id, energies.formation_energy_per_atom))
    cache = GraphCache(args.cache)
    ids = cache.structure_ids()
    train, held_out = cache.split(args.val_fraction, args.seed)
    is_mp = np.asarray([sid in energy for sid in ids])
    fit_pool = train[is_mp[train]]
    fit = np.sort(np.random.default_rng(1).choice(fit_pool, min(args.fit_size, len(fit_pool)), replace=False))
    test = held_out[is_mp[held_out]]

    def targets(positions):
        log_volume = []
        for p in positions:
            record = cache[int(p)]
            log_volume.append(np.log(abs(np.linalg.det(record["lattice"].astype(np.float64))) / len(record["atomic_number"])))
        return {"log volume per atom (ln Å³)": np.asarray(log_volume),
                "formation energy (eV/atom)": np.asarray([energy[ids[p]] for p in positions])}

    fit_targets, test_targets = targets(fit), targets(test)
    trained, checkpoint = model_from_checkpoint(args.checkpoint)
    torch.manual_seed(0)
    random_model = CrysGNN(checkpoint.model_settings, checkpoint.graph_settings)
    report(f"teacher: {args.checkpoint} (epoch {checkpoint.training.get('epoch', '?')})")
    report(f"probe fitted on {len(fit)} MP crystals of the pre-training slice; scored on {len(test)} MP "
           f"crystals held out from pre-training (validation slice, seed {args.seed})")
    report("ridge regression on standardised mean-pooled 64-d embeddings, alpha by 5-fold CV on the fit set")
    report("")
    report(f"{'target':30s} {'model':22s} {'test MAE':>10s} {'test R2':>8s} {'alpha':>8s}")
    for name, model in (("pre-trained teacher", trained), ("random initialisation", random_model)):
        model.eval()
        x_fit, x_test = pooled_embeddings(model, cache, fit), pooled_embeddings(model, cache, test)
        for target in fit_targets:
            result = probe(x_fit, fit_targets[target], x_test, test_targets[target])
            report(f"{target:30s} {name:22s} {result['mae']:10.4f} {result['r2']:8.3f} {result['alpha']:8.2g}")
    for target in fit_targets:
        baseline = np.abs(fit_targets[target].mean() - test_targets[target]).mean()
        report(f"{target:30s} {'predict the mean':22s} {baseline:10.4f} {0.0:8.3f}")
    print(f"written to {report.save()}")


if __name__ == "__main__":
    main()
