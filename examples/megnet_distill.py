"""MEGNet with and without CrysGNN distillation, trained by matgl's Lightning module.

Builds matgl's own graphs (``Structure2Graph`` with the model's cutoff) for the selected
crystals, then trains matgl's DGL ``MEGNet`` wrapped in ``matgl.utils.training.
ModelLightningModule`` (MSE loss) with an unmodified ``lightning`` ``Trainer.fit`` twice
with the same seed, data order and budget: once as is, once after
``crysgnn_dgl.attach_teacher(module)`` (the KD value is logged as ``train_KD``). Both
final models are evaluated in eval mode on the same test crystals and the two test MAEs
printed.

    python examples/megnet_distill.py                      # bundled subset, default teacher
    python examples/megnet_distill.py --data ../shared/data/mp_cgcnn36k.csv.xz \\
        --split-json ../shared/data/mp2018_megnet_e_form_split.json.gz --train-size 2000 --epochs 40
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("MATGL_BACKEND", "DGL")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402

from crysgnn_dgl.training.external import ExternalLoop, external_main, fit_and_test  # noqa: E402
from crysgnn_dgl.training.options import ExperimentDefaults, ExternalOptions, ModelOption  # noqa: E402

DEFAULTS = ExperimentDefaults(train_size=800, val_size=100, test_size=300, epochs=60, batch_size=32, lr=2e-3)
MODEL_OPTIONS = ("MEGNet architecture (smaller than matgl's defaults, for a CPU budget)", (
    ModelOption("--blocks", 2, "MEGNet blocks"),
    ModelOption("--node-embedding", 16, "node embedding width"),
    ModelOption("--edge-embedding", 40, "bond-length expansion width"),
    ModelOption("--hidden", 32, "hidden width of the MLPs; the distilled node features are hidden/2 wide"),
    ModelOption("--cutoff", 4.0, "graph cutoff in Å, model and converter alike"),
))


def megnet_dataset(options: ExternalOptions, data, workdir: Path):
    """matgl's graphs of all selected crystals (node types index the elements present),
    and the element list."""
    from matgl.ext.pymatgen import Structure2Graph, get_element_list
    from matgl.graph.data import MGLDataset

    elements = get_element_list(data.structures)
    converter = Structure2Graph(element_types=elements, cutoff=options.model["cutoff"])
    dataset = MGLDataset(structures=data.structures, converter=converter, labels={"target": data.targets.tolist()},
                         save_cache=False, raw_dir=str(workdir), save_dir=str(workdir))
    return dataset, elements


def make_module(options: ExternalOptions, elements):
    from matgl.utils.training import ModelLightningModule

    from crysgnn_dgl.bench.predictors_dgl import small_megnet

    torch.manual_seed(options.seed)
    model = small_megnet(elements, **options.model)
    return ModelLightningModule(model=model, loss="mse_loss", lr=options.lr, decay_steps=options.epochs * 100)


class BestValidation(pl.Callback):
    """Keeps the weights of the epoch with the lowest ``val_MAE`` (matgl's metric)."""

    def __init__(self) -> None:
        self.epoch, self.value, self.state = 0, float("inf"), None

    def on_validation_epoch_end(self, trainer, module) -> None:
        value = trainer.callback_metrics.get("val_MAE")
        if trainer.sanity_checking or value is None or float(value) >= self.value:
            return
        self.epoch, self.value = trainer.current_epoch + 1, float(value)
        self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}


def train_once(options: ExternalOptions, dataset_and_elements, split, out: Path, teacher=None):
    """One ``Trainer.fit``; returns the test result and the mean KD (or None)."""
    from matgl.graph.data import MGLDataLoader

    dataset, elements = dataset_and_elements
    subsets = [torch.utils.data.Subset(dataset, part) for part in (split.train, split.val or split.test[:1], split.test)]
    train_loader, val_loader, test_loader = MGLDataLoader(
        train_data=subsets[0], val_data=subsets[1], test_data=subsets[2], batch_size=options.batch_size,
        generator=torch.Generator().manual_seed(options.seed),
    )
    module = make_module(options, elements)

    def fit() -> int:
        pl.seed_everything(options.seed, verbose=False)
        best = BestValidation()
        trainer = pl.Trainer(max_epochs=options.epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                             enable_progress_bar=not options.quiet, enable_model_summary=False, default_root_dir=str(out),
                             callbacks=[best])
        trainer.fit(module, train_loader, val_loader)
        module.load_state_dict(best.state)
        return best.epoch

    def test_batches():
        for g, lat, state_attr, labels in test_loader:
            yield module(g=g, lat=lat, state_attr=state_attr), labels

    return fit_and_test(module, teacher, options.delta, fit, test_batches)


LOOP = ExternalLoop("MEGNet", "lightning Trainer.fit", megnet_dataset, train_once)


def main(argv: list[str] | None = None) -> int:
    return external_main(argv, __doc__, DEFAULTS, MODEL_OPTIONS, LOOP)


if __name__ == "__main__":
    raise SystemExit(main())
