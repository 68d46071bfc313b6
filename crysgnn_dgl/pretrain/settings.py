"""Settings of a pre-training run (same dataclass style as :mod:`crysgnn_dgl.config`).

Plain Python (no torch import): the command line takes its defaults from here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from ..config import SettingsBase


@dataclass(frozen=True)
class OptimizerSettings(SettingsBase):
    """Adam and its learning-rate schedule.

    The CrysGNN release used Adam with lr 0.03; with batch normalisation and 64-wide
    layers that is unstable here, so the default is 1e-3 with cosine decay over the run.

    Attributes:
        learning_rate: peak learning rate.
        weight_decay: Adam's L2 penalty.
        schedule: ``"cosine"`` (decay to ``final_lr_fraction`` × lr at ``max_epochs``)
            or ``"constant"``.
        final_lr_fraction: end of the cosine schedule relative to ``learning_rate``.
    """

    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    schedule: Literal["cosine", "constant"] = "cosine"
    final_lr_fraction: float = 0.05

    def validate(self) -> None:
        self._require_number("learning_rate", low=0.0, low_open=True)
        self._require_number("weight_decay", low=0.0)
        self._require_number("final_lr_fraction", low=0.0, high=1.0)


@dataclass(frozen=True)
class PretrainSettings(SettingsBase):
    """Everything about a run that is not the model, the objectives or the optimiser.

    Attributes:
        max_epochs: epochs to train (a resumed run continues up to this number).
        batch_size: crystals per batch (per process under DDP).
        validation_fraction: share of the cache held out (seeded random slice).
        seed: seeds weights, the split, batch order and pair sub-sampling.
        num_workers: DataLoader worker processes (0: load in the training process).
        accelerator, devices, strategy, num_nodes: passed to Lightning (``strategy="ddp"``
            with ``devices=N`` trains on N GPUs).
        precision: Lightning precision, e.g. ``"32-true"``, ``"16-mixed"``, ``"bf16-mixed"``;
            ``"auto"`` picks ``16-mixed`` on a GPU and ``32-true`` otherwise.
        num_threads: torch CPU threads (``None``: leave torch's default).
        shuffle_window: shards whose crystals are shuffled together into batches.
        max_loaded_shards: cache shards kept in memory per process (``None``: the
            shuffle window plus one).
        log_every_n_steps: Lightning's logging interval.
        limit_train_batches: train on at most this many batches per epoch (``None``: all).
    """

    max_epochs: int = 20
    batch_size: int = 128
    validation_fraction: float = 0.05
    seed: int = 0
    num_workers: int = 0
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "auto"
    num_threads: int | None = None
    shuffle_window: int = 16
    max_loaded_shards: int | None = None
    log_every_n_steps: int = 50
    limit_train_batches: int | None = None

    def validate(self) -> None:
        self._require_int("max_epochs", "batch_size", "num_nodes", "shuffle_window", "log_every_n_steps", least=1)
        self._require_int("seed", "num_workers", least=0)
        self._require_int("num_threads", "max_loaded_shards", "limit_train_batches", least=1, optional=True)
        self._require_number("validation_fraction", low=0.0, high=1.0, high_open=True)
        if not (isinstance(self.devices, str) or (isinstance(self.devices, int) and self.devices >= 1)):
            raise self._invalid("devices", "an integer >= 1 or a string such as 'auto'")


#: the four CrysGNN objectives (each a ``<name>_weight`` of :class:`ObjectiveSettings`)
CRYSGNN_OBJECTIVES = ("feature", "connectivity", "space_group", "contrastive")
DENOISING_OBJECTIVES = ("denoising",)
#: the MMPT terms, in the order of the paper's Eq. 7
MMPT_OBJECTIVES = (
    "mmpt_atom_type", "mmpt_coordinate", "mmpt_lattice", "mmpt_barlow_twins",
    "mmpt_direction", "mmpt_same_cell", "mmpt_distance",
)
ALL_OBJECTIVES = CRYSGNN_OBJECTIVES + DENOISING_OBJECTIVES + MMPT_OBJECTIVES
#: MMPT's loss weights (Eq. 7 of the paper: α₁ = 5 on atom types, 0.5 on Barlow Twins, 1 else)
MMPT_PAPER_WEIGHTS = dict(zip(MMPT_OBJECTIVES, (5.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0)))


def _weight(what: str, term: str | None = None) -> Any:
    """A loss weight field, 0 (off) by default, with its command-line help."""
    paper = f" (paper: {MMPT_PAPER_WEIGHTS[term]:g})" if term else ""
    return field(default=0.0, metadata={"help": f"weight of {what}; 0 = off{paper}"})


@dataclass(frozen=True)
class ObjectiveSettings(SettingsBase):
    """Weights and details of the pre-training loss.

    Every ``<name>_weight`` multiplies the loss term ``<name>`` in the total; a weight of 0
    switches that term off (not computed, and its head not built). The denoising and MMPT
    terms are off by default, so the defaults are the CrysGNN release's loss.

    Attributes:
        feature_weight, connectivity_weight, space_group_weight, contrastive_weight: the
            CrysGNN paper's α, β, γ, λ.
        temperature: NT-Xent temperature.
        connectivity_class_weights: NLL class weights of the connectivity classes 0..5.
        max_pairs_per_crystal: score at most this many randomly drawn ordered pairs per
            crystal for the connectivity loss (``None``: all n² pairs, as the release).
        denoising_weight: CDSSL denoising (:mod:`crysgnn_dgl.pretrain.denoising`).
        denoising_sigma: standard deviation (Å) of the Gaussian noise on positions.
        mmpt_atom_type_weight, mmpt_coordinate_weight, mmpt_lattice_weight,
        mmpt_barlow_twins_weight, mmpt_direction_weight, mmpt_same_cell_weight,
        mmpt_distance_weight: the seven MMPT terms (:mod:`crysgnn_dgl.pretrain.mmpt`);
            the paper's weights are :data:`MMPT_PAPER_WEIGHTS` (:meth:`with_mmpt`).
        mmpt_barlow_twins_lambda: weight of the off-diagonal sum in the Barlow Twins loss.
    """

    feature_weight: float = 0.25
    connectivity_weight: float = 0.25
    space_group_weight: float = 0.25
    contrastive_weight: float = 0.25
    temperature: float = 0.07
    connectivity_class_weights: tuple[float, ...] = (0.1, 1.0, 1.0, 1.0, 1.0, 1.0)
    max_pairs_per_crystal: int | None = None
    denoising_weight: float = _weight("CDSSL denoising of edge distances")
    denoising_sigma: float = field(default=0.5, metadata={"help": "σ (Å) of the denoising position noise"})
    mmpt_atom_type_weight: float = _weight("MMPT atom types of masked atoms", "mmpt_atom_type")
    mmpt_coordinate_weight: float = _weight("MMPT distance of masked atoms to the centroid", "mmpt_coordinate")
    mmpt_lattice_weight: float = _weight("MMPT Niggli lattice parameters", "mmpt_lattice")
    mmpt_barlow_twins_weight: float = _weight("MMPT Barlow Twins between the two views", "mmpt_barlow_twins")
    mmpt_direction_weight: float = _weight("MMPT 27-class image direction of edges", "mmpt_direction")
    mmpt_same_cell_weight: float = _weight("MMPT same-cell flag of edges", "mmpt_same_cell")
    mmpt_distance_weight: float = _weight("MMPT edge distances", "mmpt_distance")
    mmpt_barlow_twins_lambda: float = field(
        default=5e-3, metadata={"help": "off-diagonal weight λ of the Barlow Twins loss"}
    )

    def validate(self) -> None:
        self._require_number(*(f"{name}_weight" for name in ALL_OBJECTIVES), low=0.0)
        self._require_number("temperature", "denoising_sigma", low=0.0, low_open=True)
        self._require_number("mmpt_barlow_twins_lambda", low=0.0)
        self._require_int("max_pairs_per_crystal", least=1, optional=True)
        weights = self.connectivity_class_weights
        if not weights or not all(isinstance(w, (int, float)) and w >= 0 for w in weights):
            raise self._invalid("connectivity_class_weights", "a non-empty sequence of numbers >= 0")

    def weight(self, objective: str) -> float:
        return float(getattr(self, f"{objective}_weight"))

    def switched_on(self, objectives: tuple[str, ...] = ALL_OBJECTIVES) -> tuple[str, ...]:
        """Those of ``objectives`` whose weight is not 0."""
        return tuple(name for name in objectives if self.weight(name))

    def with_mmpt(self, weights: dict[str, float] | None = None) -> ObjectiveSettings:
        """A copy with the MMPT terms at ``weights`` (default: the paper's)."""
        chosen = MMPT_PAPER_WEIGHTS if weights is None else weights
        values: dict[str, Any] = {f"{name}_weight": float(value) for name, value in chosen.items()}
        return replace(self, **values)

    @classmethod
    def cli_fields(cls) -> tuple[tuple[str, Any, str], ...]:
        """``(name, default, help)`` of the fields that carry command-line help in their
        metadata (the command line derives its ``--<name>`` options from these)."""
        return tuple((f.name, f.default, f.metadata["help"]) for f in fields(cls) if "help" in f.metadata)

    @classmethod
    def from_dict(cls, values: dict) -> ObjectiveSettings:  # tuples may arrive as lists
        values = dict(values)
        if "connectivity_class_weights" in values:
            values["connectivity_class_weights"] = tuple(values["connectivity_class_weights"])
        return super().from_dict(values)


def __getattr__(name: str) -> Any:
    if name == "TrainingSettings":  # renamed: it clashed with crysgnn_dgl.training.TrainingSettings
        warnings.warn(
            "crysgnn_dgl.pretrain.settings.TrainingSettings is deprecated; use PretrainSettings",
            DeprecationWarning, stacklevel=2,
        )
        return PretrainSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
