"""Fine-tune a CrysGNN checkpoint on a labelled table, against the same network trained
from a random start (the CrysGNN paper's Table 3; ``docs/benchmarks.md`` §6).

Both runs use the same split, batch order, head initialisation and training loop
(``crysgnn_dgl.training.train_predictor``); only the encoder's starting weights differ.
For predictors of another architecture (ALIGNN, MEGNet, CGCNN, GATGNN) distil instead:
``examples/*_distill.py``.

    python examples/crysgnn_finetune.py                         # bundled subset, default teacher
    python examples/crysgnn_finetune.py --data my.csv --target band_gap --teacher my_teacher.pt
"""

from __future__ import annotations

import argparse

import torch

from crysgnn_dgl import CrysGNN, CrysGNNRegressor, finetune_model
from crysgnn_dgl.bench.defaults import TRAINING
from crysgnn_dgl.training.dataset import CrystalGraphDataset
from crysgnn_dgl.training.loop import TrainingSettings, train_predictor
from crysgnn_dgl.training.options import DEMO_TARGET, bundled_demo_table
from crysgnn_dgl.training.splits import split_indices, subset


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="table with a 'cif' column (default: the bundled subset)")
    parser.add_argument("--target", default=DEMO_TARGET, help="target column (default: %(default)s)")
    parser.add_argument("--teacher", default=None, help="CrysGNN checkpoint or bundled name (default: crysgnn-denoise)")
    parser.add_argument("--limit", type=int, default=1200, help="read the first N rows (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=150, help="epoch budget (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of split, head and batch order (default: %(default)s)")
    return parser.parse_args(argv)


def _trained(model: CrysGNNRegressor, parts: tuple, settings: TrainingSettings) -> tuple[float, int]:
    result = train_predictor(model, *parts, settings=settings)
    return result.test_mae, result.best_epoch


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    torch.manual_seed(args.seed)
    pretrained = finetune_model(args.teacher)
    scratch = CrysGNNRegressor(CrysGNN(pretrained.encoder.model_settings, pretrained.graph_settings))
    scratch.fc.load_state_dict(pretrained.fc.state_dict())  # the same head initialisation for both runs
    scratch.fc_out.load_state_dict(pretrained.fc_out.state_dict())
    data = CrystalGraphDataset.from_table(args.data or bundled_demo_table(), args.target, limit=args.limit,
                                          graph_settings=pretrained.graph_settings)
    for name, why in data.skipped:
        print(f"skipped {name}: {why}")
    split = split_indices(len(data), seed=args.seed)
    parts = (subset(data, split.train), subset(data, split.val), subset(data, split.test))
    settings = TrainingSettings(**{**TRAINING, "epochs": args.epochs}, seed=args.seed)  # the bench protocol
    print(f"{len(split.train)} training, {len(split.val)} validation, {len(split.test)} test crystals")
    for label, model in (("from scratch", scratch), ("fine-tuned", pretrained)):
        mae, best = _trained(model, parts, settings)
        print(f"{label:>12}: test MAE {mae:.4f} (best validation epoch {best})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
