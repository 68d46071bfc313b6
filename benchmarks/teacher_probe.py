"""Did the teacher learn something? Ridge-regression probes on mean-pooled embeddings.

Targets: log volume per atom and formation energy (eV/atom) of Materials Project
crystals. The probe is fitted on crystals of the pre-training slice and scored on the
crystals held out from pre-training (the validation slice of the cache: seen neither by
the teacher nor by the probe fit). The same probe on a randomly initialised CrysGNN is
the baseline.

    python benchmarks/teacher_probe.py --checkpoint crysgnn-multitask \
        --cache runs/pretrain_default/cache
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch

from _common import REPO, Report, require_data
from _probe import fit_and_score, regression_scores


def probe(train_x, train_y, test_x, test_y) -> dict[str, float]:
    """Ridge fitted on the pre-training slice, scored on the held-out crystals."""
    prediction, alpha = fit_and_score(train_x, train_y, test_x)
    return {**regression_scores(prediction, test_y), "alpha": alpha,
            "mean_baseline_mae": float(np.abs(train_y.mean() - test_y).mean())}


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
    parser.add_argument("--checkpoint", default="crysgnn-multitask", help="checkpoint or bundled teacher name")
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
    from crysgnn_dgl.teacher import checkpoint_path

    trained, checkpoint = model_from_checkpoint(checkpoint_path(args.checkpoint))
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
