"""Command-line options of the vanilla-vs-distilled experiments (``crysgnn-dgl demo`` and
the example scripts), and the data they use when no table is given."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from ..config import SettingsBase

DEMO_FILE = "demo_mp_formation_energy.csv.xz"
DEMO_TARGET = "formation_energy_per_atom"
_DEMO_DESCRIPTION = "the formation-energy subset bundled with the package, 3000 small Materials Project crystals"


def bundled_demo_table() -> Path:
    """The formation-energy subset shipped with the package (see ``data/DEMO_DATA.md``)."""
    return Path(str(resources.files("crysgnn_dgl").joinpath("data", DEMO_FILE)))


@dataclass(frozen=True)
class ExperimentDefaults(SettingsBase):
    """Default command-line values of one experiment (each script picks its budget).

    ``limit`` and ``out`` apply to experiments trained by the package's own loop;
    ``val_size`` and ``test_size`` to those trained by a predictor library's loop.
    ``train_size`` of ``None`` means all training crystals the split leaves.
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.01
    limit: int | None = None
    train_size: int | None = None
    val_size: int = 50
    test_size: int = 100
    out: str | None = None

    def validate(self) -> None:
        self._require_int("epochs", "batch_size", "val_size", "test_size", least=1)
        self._require_int("limit", "train_size", least=1, optional=True)
        self._require_number("lr", low=0.0, low_open=True)


def experiment_parser(description: str | None) -> argparse.ArgumentParser:
    """A parser that shows ``description`` (an example's docstring) as written."""
    return argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_table_options(group: argparse._ArgumentGroup, columns: str, target_of: str) -> None:
    group.add_argument("--data", type=Path, default=None,
                       help=f"CSV (.csv or .csv.xz) with {columns} and the target column, e.g. "
                            f"../shared/data/mp_cgcnn36k.csv.xz (default: {_DEMO_DESCRIPTION})")
    group.add_argument("--target", default=DEMO_TARGET, help=f"target column of {target_of} (default: %(default)s)")


def _add_budget_options(group: argparse._ArgumentGroup, defaults: ExperimentDefaults, optimizer: str) -> None:
    group.add_argument("--epochs", type=int, default=defaults.epochs, help="epochs per run (default: %(default)s)")
    group.add_argument("--batch-size", type=int, default=defaults.batch_size,
                       help="crystals per step (default: %(default)s)")
    group.add_argument("--lr", type=float, default=defaults.lr, help=f"{optimizer} (default: %(default)s)")
    group.add_argument("--seed", type=int, default=0,
                       help="seed of the initial weights and the shuffling, same for both runs (default: %(default)s)")


def _add_distillation_options(parser: argparse.ArgumentParser) -> None:
    distill = parser.add_argument_group("distillation")
    distill.add_argument("--teacher", default=None,
                         help="teacher: a checkpoint (.pt) or a name (m3gnet, m3gnet:gc_2, chgnet); "
                              "default: the CrysGNN teacher bundled with the package")
    distill.add_argument("--delta", type=float, default=None,
                         help="delta of L + (1-delta)/delta * KD (default: the teacher's recommended weight: "
                              "0.5, i.e. KD weight 1, for CrysGNN; 1/11, i.e. 10, for M3GNet and CHGNet)")


def add_experiment_arguments(parser: argparse.ArgumentParser, defaults: ExperimentDefaults) -> None:
    """Options of experiments trained by the package's loop (the demo, the CGCNN and
    GATGNN examples); every one explained in ``--help``."""
    data = parser.add_argument_group("data")
    _add_table_options(data, "a 'cif' column", "--data")
    data.add_argument("--limit", type=int, default=defaults.limit,
                      help="read only the first N rows of the table (default: %(default)s = all)")
    data.add_argument("--train-size", type=int, default=defaults.train_size,
                      help="cap the training set at N crystals; validation and test sets stay "
                           "10%% each (default: %(default)s = the remaining 80%%)")
    data.add_argument("--split-seed", type=int, default=0, help="seed of the train/val/test split (default: %(default)s)")
    train = parser.add_argument_group("training (identical for both runs)")
    _add_budget_options(train, defaults, "Adam learning rate")
    train.add_argument("--repeats", type=int, default=1,
                       help="repeat the comparison with seeds seed, seed+1, ... and report each "
                            "gain and their mean (single-seed gains of a few %% are within noise; "
                            "default: %(default)s)")
    train.add_argument("--threads", type=int, default=1,
                       help="torch CPU threads (default: %(default)s: small graphs gain little from more, "
                            "and one thread keeps both runs bitwise reproducible; with more, "
                            "deterministic algorithms are switched on, which costs time)")
    _add_distillation_options(parser)
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, default=Path(defaults.out) if defaults.out else None,
                        help="folder for the parity plot PNG" + (" (default: %(default)s)" if defaults.out else " (default: no plot)"))
    output.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")


def add_external_arguments(parser: argparse.ArgumentParser, defaults: ExperimentDefaults) -> None:
    """Options of experiments trained by a predictor library's own loop (the ALIGNN and
    MEGNet examples); every one explained in ``--help``."""
    data = parser.add_argument_group("data")
    _add_table_options(data, "'material_id', 'cif'", "the table")
    data.add_argument("--split-json", type=Path, default=None,
                      help="official split as {'train'|'val'|'test': {material_id: value}}, e.g. "
                           "../shared/data/mp2018_megnet_e_form_split.json.gz (MP 2018.6.1); rows of --data "
                           "whose id is in a part go to that part (its value replaces the table's target), "
                           "in file order (default: a seeded random split of the table)")
    data.add_argument("--train-size", type=int, default=defaults.train_size,
                      help="training crystals (default: %(default)s)")
    data.add_argument("--val-size", type=int, default=defaults.val_size,
                      help="validation crystals (default: %(default)s)")
    data.add_argument("--test-size", type=int, default=defaults.test_size, help="test crystals (default: %(default)s)")
    data.add_argument("--split-seed", type=int, default=0,
                      help="seed of the random split when no --split-json is given (default: %(default)s)")
    train = parser.add_argument_group("training (identical for both runs)")
    _add_budget_options(train, defaults, "learning rate")
    train.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    _add_distillation_options(parser)
    output = parser.add_argument_group("output")
    output.add_argument("--workdir", type=Path, default=None,
                        help="folder for the libraries' own outputs (checkpoints, logs; default: a temporary folder)")
    output.add_argument("--out", type=Path, default=None, help="folder for the parity plot PNG (default: no plot)")
    output.add_argument("--quiet", action="store_true", help="less progress output")


@dataclass(frozen=True)
class ModelOption:
    """One architecture option of an example: ``--flag`` with a typed default and help."""

    flag: str
    default: int | float
    help: str

    @property
    def dest(self) -> str:
        """The option's name in the parsed values and in ``RunOptions.model``."""
        return self.flag.lstrip("-").replace("-", "_")


def add_model_arguments(parser: argparse.ArgumentParser, title: str, options: Sequence[ModelOption]) -> None:
    """An argument group ``title`` with one option per :class:`ModelOption` (the type is
    that of its default)."""
    group = parser.add_argument_group(title)
    for option in options:
        group.add_argument(option.flag, type=type(option.default), default=option.default,
                           help=f"{option.help} (default: %(default)s)")


ModelValues = Mapping[str, "int | float"]


@dataclass(frozen=True)
class RunOptions(SettingsBase):
    """The options every experiment shares (see ``--help`` of an example).

    Attributes:
        data: the labelled table (``None``: the bundled demo subset).
        target: target column of the table.
        split_seed: seed of the train/val/test split.
        epochs, batch_size, lr, seed: the budget of both runs (vanilla and distilled).
        threads: torch CPU threads.
        teacher: teacher checkpoint or name (``None``: the bundled teacher).
        delta: ``δ`` of ``L + (1 − δ)/δ · KD`` (``None``: the teacher's recommended weight).
        out: folder of the parity plot (``None``: no plot).
        quiet: no per-epoch progress lines.
        model: the architecture options of the example, by name (``{"n_conv": 3}``).
    """

    data: Path | None = None
    target: str = DEMO_TARGET
    split_seed: int = 0
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.01
    seed: int = 0
    threads: int = 1
    teacher: str | None = None
    delta: float | None = None
    out: Path | None = None
    quiet: bool = False
    model: ModelValues = field(default_factory=dict)

    def validate(self) -> None:
        self._require_int("epochs", "batch_size", "threads", least=1)
        self._require_int("split_seed", "seed", least=0)
        self._require_number("lr", low=0.0, low_open=True)
        self._require_number("delta", low=0.0, high=1.0, low_open=True, optional=True)

    @property
    def table(self) -> Path:
        """The labelled table: ``data`` or the bundled subset."""
        return self.data if self.data is not None else bundled_demo_table()

    def training(self, seed: int | None = None) -> Any:
        """The :class:`~crysgnn_dgl.training.TrainingSettings` of one run (``seed``: this one)."""
        from .loop import TrainingSettings

        return TrainingSettings(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                                seed=self.seed if seed is None else seed)


@dataclass(frozen=True)
class ExperimentOptions(RunOptions):
    """Options of an experiment trained by the package's loop (:func:`add_experiment_arguments`).

    Attributes:
        limit: read only the first N rows of the table.
        train_size: cap the training set at N crystals (``None``: 80 % of the table).
        repeats: seeds ``seed``, ``seed + 1``, ... of the comparison.
    """

    limit: int | None = None
    train_size: int | None = None
    repeats: int = 1

    def validate(self) -> None:
        super().validate()
        self._require_int("limit", "train_size", least=1, optional=True)
        self._require_int("repeats", least=1)


@dataclass(frozen=True)
class ExternalOptions(RunOptions):
    """Options of an experiment trained by a library's own loop (:func:`add_external_arguments`).

    Attributes:
        split_json: official split file (``None``: a seeded random split of the table).
        train_size, val_size, test_size: crystals of each part.
        workdir: folder of the libraries' own outputs (``None``: a temporary folder).
    """

    split_json: Path | None = None
    train_size: int = 800
    val_size: int = 50
    test_size: int = 100
    workdir: Path | None = None

    def validate(self) -> None:
        super().validate()
        self._require_int("train_size", "test_size", least=1)
        self._require_int("val_size", least=0)


OptionsT = TypeVar("OptionsT", bound=RunOptions)


def options_from_args(
    cls: type[OptionsT], args: argparse.Namespace, model: Sequence[ModelOption] = ()
) -> OptionsT:
    """The typed options ``cls`` of parsed command-line ``args`` (the command-line
    boundary: library functions take the result, never the namespace)."""
    names = {f.name for f in fields(cls)} - {"model"}
    values = {name: getattr(args, name) for name in names if hasattr(args, name)}
    if "repeats" in values:
        values["repeats"] = max(1, values["repeats"])
    model_values = {option.dest: getattr(args, option.dest) for option in model}
    return cls(**values, model=model_values)
