"""MEGNet with and without CrysGNN distillation, trained by matgl's Lightning module.

Builds matgl's own graphs (``Structure2Graph`` with the model's cutoff) for the selected
crystals, then trains matgl's DGL ``MEGNet`` wrapped in ``matgl.utils.training.
ModelLightningModule`` (MSE loss) with an unmodified ``lightning`` ``Trainer.fit`` twice
with the same seed, data order and budget: once as is, once after
``crysgnn_dgl.attach_teacher(module)`` (the KD value is logged as ``train_KD``). Both
final models are evaluated in eval mode on the same test crystals and the two test MAEs
printed.

    python examples/megnet_distill.py                      # bundled subset, bundled teacher
    python examples/megnet_distill.py --data ../shared/data/mp_cgcnn36k.csv.xz \\
        --split-json ../shared/data/mp2018_megnet_e_form_split.json.gz --train-size 2000 --epochs 40
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("MATGL_BACKEND", "DGL")

import torch  # noqa: E402

from crysgnn_dgl.distill import attach_teacher, resolve_teacher  # noqa: E402
from crysgnn_dgl.distill.external import (  # noqa: E402
    ExternalDefaults,
    add_external_arguments,
    report,
    select_structures,
    timed_result,
)

DEFAULTS = ExternalDefaults(train_size=800, val_size=100, test_size=300, epochs=60, batch_size=32, lr=2e-3)


def megnet_dataset(data, cutoff: float, workdir: Path):
    """matgl's graphs of all selected crystals (node types index the elements present)."""
    from matgl.ext.pymatgen import Structure2Graph, get_element_list
    from matgl.graph.data import MGLDataset

    elements = get_element_list(data.structures)
    dataset = MGLDataset(structures=data.structures, converter=Structure2Graph(element_types=elements, cutoff=cutoff),
                         labels={"target": data.targets.tolist()}, save_cache=False, raw_dir=str(workdir),
                         save_dir=str(workdir))
    return dataset, elements


def make_module(args, elements):
    from matgl.models import MEGNet
    from matgl.utils.training import ModelLightningModule

    torch.manual_seed(args.seed)
    model = MEGNet(
        dim_node_embedding=args.node_embedding, dim_edge_embedding=args.edge_embedding, dim_state_embedding=2,
        nblocks=args.blocks, hidden_layer_sizes_input=(args.hidden, args.hidden // 2),
        hidden_layer_sizes_conv=(args.hidden, args.hidden, args.hidden // 2),
        hidden_layer_sizes_output=(args.hidden // 2, args.hidden // 4), element_types=elements, cutoff=args.cutoff,
    )
    return ModelLightningModule(model=model, loss="mse_loss", lr=args.lr, decay_steps=args.epochs * 100)


def train_once(args, dataset, elements, split, out: Path, teacher=None):
    """One ``Trainer.fit``; returns the test result and the mean KD (or None)."""
    import lightning.pytorch as pl
    from matgl.graph.data import MGLDataLoader

    subsets = [torch.utils.data.Subset(dataset, part) for part in (split.train, split.val or split.test[:1], split.test)]
    train_loader, val_loader, test_loader = MGLDataLoader(
        train_data=subsets[0], val_data=subsets[1], test_data=subsets[2], batch_size=args.batch_size,
        generator=torch.Generator().manual_seed(args.seed),
    )
    module = make_module(args, elements)
    hook = attach_teacher(module, teacher, delta=args.delta) if teacher is not None else None
    state = {}

    def run():
        pl.seed_everything(args.seed, verbose=False)
        trainer = pl.Trainer(max_epochs=args.epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                             enable_progress_bar=not args.quiet, enable_model_summary=False, default_root_dir=str(out))
        trainer.fit(module, train_loader, val_loader)
        state["kd_mean"] = hook.kd_mean if hook is not None else None
        module.eval()
        predictions, targets = [], []
        with torch.no_grad():
            for g, lat, state_attr, labels in test_loader:
                predictions.append(module(g=g, lat=lat, state_attr=state_attr).reshape(-1))
                targets.append(labels.reshape(-1))
        return torch.cat(predictions), torch.cat(targets)

    result = timed_result(run)
    if hook is not None:
        hook.remove()
    return result, state.get("kd_mean")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_external_arguments(parser, DEFAULTS)
    model = parser.add_argument_group("MEGNet architecture (smaller than matgl's defaults, for a CPU budget)")
    model.add_argument("--blocks", type=int, default=2, help="MEGNet blocks (default: %(default)s)")
    model.add_argument("--node-embedding", type=int, default=16, help="node embedding width (default: %(default)s)")
    model.add_argument("--edge-embedding", type=int, default=40, help="bond-length expansion width (default: %(default)s)")
    model.add_argument("--hidden", type=int, default=32,
                       help="hidden width of the MLPs; the distilled node features are hidden/2 wide (default: %(default)s)")
    model.add_argument("--cutoff", type=float, default=4.0, help="graph cutoff in Å, model and converter alike (default: %(default)s)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    teacher = resolve_teacher(args.teacher)  # fail before any work when it is missing
    data = select_structures(args)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="megnet_distill_"))
    workdir.mkdir(parents=True, exist_ok=True)
    dataset, elements = megnet_dataset(data, args.cutoff, workdir)
    print(f"{len(data.split.train)} train / {len(data.split.val)} val / {len(data.split.test)} test crystals, "
          f"graphs built in {time.perf_counter() - started:.1f} s; training with lightning Trainer.fit", flush=True)
    vanilla, _ = train_once(args, dataset, elements, data.split, workdir / "vanilla")
    print(f"vanilla done: test MAE {vanilla.test_mae:.4f} ({vanilla.seconds:.1f} s)", flush=True)
    distilled, kd_mean = train_once(args, dataset, elements, data.split, workdir / "distilled", teacher)
    report(args, "MEGNet", data, vanilla, distilled, kd_mean, str(getattr(teacher, "source", "") or args.teacher),
           started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
