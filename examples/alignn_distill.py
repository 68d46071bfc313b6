"""ALIGNN with and without CrysGNN distillation, trained by alignn's own ``train_dgl``.

Builds alignn's line-graph dataset (CGCNN atom features, k-nearest neighbours, cutoff 8 Å,
12 neighbours) for the selected crystals, then calls ``alignn.train.train_dgl`` — the
installed package's loop, unmodified (hard-coded L1 loss) — twice with the same seed,
data order and budget: once on a plain ``ALIGNNAtomWise`` (``alignn_atomwise``, the model
name train_dgl needs), once after ``crysgnn_dgl.attach_teacher(model)``. Both final models
are then evaluated in eval mode on the same test crystals and the two test MAEs printed.

    python examples/alignn_distill.py                      # bundled subset, default teacher
    python examples/alignn_distill.py --data ../shared/data/mp_cgcnn36k.csv.xz \\
        --split-json ../shared/data/mp2018_megnet_e_form_split.json.gz --train-size 2000 --epochs 30
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import torch

from crysgnn_dgl.training.external import ExternalLoop, external_main, fit_and_test
from crysgnn_dgl.training.options import ExperimentDefaults, ExternalOptions, ModelOption, ModelValues

DEFAULTS = ExperimentDefaults(train_size=800, val_size=100, test_size=300, epochs=30, batch_size=32, lr=5e-3)
MODEL_OPTIONS = ("ALIGNNAtomWise architecture (small by default, for a CPU budget)", (
    ModelOption("--alignn-layers", 1, "ALIGNN (edge-gated line-graph) layers"),
    ModelOption("--gcn-layers", 1, "edge-gated graph convolution layers"),
    ModelOption("--hidden-features", 64, "node/edge width; the distilled layer's width"),
    ModelOption("--embedding-features", 64, "atom embedding width"),
    ModelOption("--edge-input-features", 40, "RBF features per bond length"),
    ModelOption("--triplet-input-features", 20, "RBF features per bond angle"),
))


class IdSubset(torch.utils.data.Subset):
    """A subset with the ``ids`` and ``close()`` that ``train_dgl`` expects of its datasets."""

    def __init__(self, dataset, indices):
        super().__init__(dataset, indices)
        self.ids = [dataset.ids[i] for i in indices]

    def close(self) -> None:
        pass


def alignn_dataset(options: ExternalOptions, data, workdir: Path):
    """alignn's own graphs (with line graphs and lattices) of all selected crystals."""
    from alignn.dataset import get_torch_dataset
    from jarvis.core.atoms import pmg_to_atoms

    (workdir / "graphs").mkdir(parents=True, exist_ok=True)
    records = [{"jid": sid, "atoms": pmg_to_atoms(s).to_dict(), "target": float(t)}
               for sid, s, t in zip(data.ids, data.structures, data.targets.tolist())]
    with contextlib.redirect_stdout(io.StringIO()):
        return get_torch_dataset(
            dataset=records, id_tag="jid", target="target", neighbor_strategy="k-nearest",
            atom_features="cgcnn", use_canonize=True, line_graph=True, cutoff=8.0, max_neighbors=12,
            output_dir=str(workdir / "graphs"),
        )


def loaders(dataset, split, batch_size: int, seed: int):
    from alignn.graphs import StructureDataset

    def make(indices, shuffle):
        generator = torch.Generator().manual_seed(seed) if shuffle else None
        return torch.utils.data.DataLoader(IdSubset(dataset, indices), batch_size=batch_size, shuffle=shuffle,
                                           generator=generator, collate_fn=StructureDataset.collate_line_graph)

    return [make(split.train, True), make(split.val or split.test[:1], False), make(split.test, False),
            lambda batch, device=None: batch]


def model_config(model: ModelValues) -> dict:
    return dict(
        name="alignn_atomwise", atom_input_features=92, **model,  # the options are named as alignn's fields
        calculate_gradient=False, gradwise_weight=0.0, atomwise_weight=0.0, stresswise_weight=0.0,
        energy_mult_natoms=False,  # the target is per atom
    )


def train_once(options: ExternalOptions, dataset, split, out: Path, teacher=None):
    """One ``train_dgl`` run; returns the test result and the mean KD (or None)."""
    from alignn.config import TrainingConfig
    from alignn.models.alignn_atomwise import ALIGNNAtomWise
    from alignn.train import train_dgl

    config = TrainingConfig(
        dataset="user_data", target="target", epochs=options.epochs, batch_size=options.batch_size,
        learning_rate=options.lr, output_dir=str(out), random_seed=options.seed, n_train=len(split.train),
        n_val=len(split.val), n_test=len(split.test), write_predictions=False, model=model_config(options.model),
    )
    torch.manual_seed(options.seed)
    model = ALIGNNAtomWise(config.model)

    def fit() -> int:
        sink = contextlib.nullcontext() if not options.quiet else contextlib.redirect_stdout(io.StringIO())
        with sink:
            train_dgl(config, model=model, train_val_test_loaders=loaders(dataset, split, options.batch_size, options.seed))
        # train_dgl keeps training the same object after its best epoch: restore the
        # weights it saved at the best validation loss, and read which epoch that was
        history = json.loads((out / "history_val.json").read_text())
        losses = [row[0] if isinstance(row, list) else row for row in history]
        model.load_state_dict(torch.load(out / "best_model.pt", weights_only=True))
        return 1 + min(range(len(losses)), key=losses.__getitem__)

    def test_batches():
        for g, lg, lattice, target in loaders(dataset, split, options.batch_size, options.seed)[2]:
            yield model([g, lg, lattice])["out"], target

    return fit_and_test(model, teacher, options.delta, fit, test_batches)


LOOP = ExternalLoop("ALIGNN", "alignn.train.train_dgl", alignn_dataset, train_once)


def main(argv: list[str] | None = None) -> int:
    return external_main(argv, __doc__, DEFAULTS, MODEL_OPTIONS, LOOP)


if __name__ == "__main__":
    raise SystemExit(main())
