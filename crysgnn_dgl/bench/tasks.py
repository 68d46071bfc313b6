"""Benchmark tasks: labelled crystals with a training pool, a validation and a test set.

Named tasks read ``../shared/data`` (or ``--data-dir``); any user table works through
:class:`TaskSpec` with ``file`` and ``target``. Splits of named tasks:

* ``mp_eform``, ``mp_gap``: the MP 2018.6.1 split (ALIGNN / CrysGNN papers) restricted to
  ids with a structure in ``mp_cgcnn36k``: training crystals drawn from its train ids, the
  first ``val_limit`` of its val ids as validation, the whole restricted test set as test;
* the others (and user files): a seeded ``1 − 2f / f / f`` split with ``f =
  test_fraction`` (validation as large as test), training crystals drawn from the first part.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import SettingsBase
from ..graph.errors import StructureError
from ..graph.io import LabelledTable, read_labelled_table, read_split

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"

#: name -> (file, target column, transform, official split file or None, unit, description)
NAMED_TASKS: dict[str, tuple[str, str, str | None, str | None, str, str]] = {
    "mp_eform": ("mp_cgcnn36k.csv.xz", "formation_energy_per_atom", None,
                 "mp2018_megnet_e_form_split.json.gz", "eV/atom", "MP 2018.6.1 formation energy"),
    "mp_gap": ("mp_cgcnn36k.csv.xz", "band_gap", None,
               "mp2018_megnet_gappbe_split.json.gz", "eV", "MP 2018.6.1 PBE band gap"),
    "perov5": ("perov5.csv.xz", "heat_ref", None, None, "eV/cell", "perovskite heat of formation"),
    "log_kvrh": ("mp_elastic3k.csv.xz", "K_VRH", "log10", None, "log10(GPa)", "log10 bulk modulus"),
    "log_gvrh": ("mp_elastic3k.csv.xz", "G_VRH", "log10", None, "log10(GPa)", "log10 shear modulus"),
    "dielectric": ("matbench_dielectric.json.gz", "n", None, None, "", "refractive index"),
    "exp_eform": ("oqmd_ssub_experimental.dat", "dHf", None, None, "eV/atom",
                  "experimental formation enthalpy on the lowest-energy MP polymorph"),
}


@dataclass(frozen=True)
class TaskSpec(SettingsBase):
    """Which labelled crystals a run uses.

    Attributes:
        name: a named task (see :data:`NAMED_TASKS`) or ``"file"`` for a user table.
        file: the user table (``name="file"``).
        target: its target column.
        structure_column: its structure column (default ``cif`` / ``structure`` for JSON).
        id_column: its id column (default ``material_id`` when present, else row numbers).
        test_fraction: test (and validation) fraction of random splits.
        split_seed: seed of random splits (fixed across training seeds).
        val_limit: at most this many validation crystals.
        limit: read only the first ``limit`` rows (quick checks).
        train_fraction: random splits only: this fraction of the crystals for training,
            ``test_fraction`` for validation and the rest for test (the CrysGNN paper's
            Table 5 protocol: 20 % or 80 % for training).
    """

    name: str = "mp_eform"
    file: str | None = None
    target: str | None = None
    structure_column: str | None = None
    id_column: str | None = None
    test_fraction: float = 0.1
    split_seed: int = 0
    val_limit: int = 1000
    limit: int | None = None
    train_fraction: float | None = None

    def __post_init__(self) -> None:
        if self.name != "file" and self.name not in NAMED_TASKS:
            raise ValueError(f"unknown task {self.name!r}; choose one of {sorted(NAMED_TASKS)} or give a file")
        if self.name == "file" and (not self.file or not self.target):
            raise ValueError("a user task needs a file and a target column (--dataset FILE --target COLUMN)")
        if not 0 < self.test_fraction < 0.5:
            raise ValueError(f"test_fraction must be in (0, 0.5), got {self.test_fraction}")
        if self.val_limit < 1:
            raise ValueError(f"val_limit must be >= 1, got {self.val_limit}")
        if self.train_fraction is not None and not 0 < self.train_fraction < 1 - self.test_fraction:
            raise ValueError(f"train_fraction must be in (0, 1 - test_fraction), got {self.train_fraction}")

    def to_dict(self) -> dict:
        values = super().to_dict()
        if values["train_fraction"] is None:  # absent from the keys of runs without it
            del values["train_fraction"]
        return values

    @property
    def label(self) -> str:
        if self.name != "file":
            return self.name
        assert self.file is not None  # __post_init__: a "file" task has a file
        return Path(self.file).name

    @property
    def unit(self) -> str:
        return NAMED_TASKS[self.name][4] if self.name in NAMED_TASKS else ""


@dataclass
class TaskData:
    """Labelled structure inputs of a task and its parts (indices into ``ids``)."""

    spec: TaskSpec
    ids: list[str]
    structures: list
    targets: torch.Tensor
    pool: list[int]
    val: list[int]
    test: list[int]
    skipped: list[tuple[str, str]]
    source: str

    def train_candidates(self, size: int, seed: int) -> list[int]:
        """The pool in the order drawn with ``seed``, cut a little after ``size`` (the run
        takes the first ``size`` usable ones; all modes of one seed share them); ``size``
        0: the whole pool."""
        if size == 0:
            return list(self.pool)
        if size > len(self.pool):
            raise ValueError(f"task {self.spec.label}: {size} training crystals asked, the pool has {len(self.pool)}")
        order = torch.randperm(len(self.pool), generator=torch.Generator().manual_seed(seed)).tolist()
        return [self.pool[i] for i in order[: size + size // 20 + 10]]


def _random_parts(count: int, fraction: float, seed: int,
                  train_fraction: float | None = None) -> tuple[list[int], list[int], list[int]]:
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).tolist()
    held = max(1, int(round(fraction * count)))
    if train_fraction is not None:
        train = max(1, int(round(train_fraction * count)))
        return order[:train], order[train : train + held], order[train + held :]
    return order[2 * held :], order[held : 2 * held], order[:held]


def _official_parts(table: LabelledTable, split_file: Path) -> tuple[LabelledTable, list[int], list[int], list[int]]:
    official = read_split(split_file)
    row_of = {sid: i for i, sid in enumerate(table.ids)}
    chosen = LabelledTable([], [], [], list(table.skipped))
    parts: dict[str, list[int]] = {}
    for part in ("train", "val", "test"):
        parts[part] = []
        for sid, value in official[part].items():
            row = row_of.get(sid)
            if row is None:
                continue
            if not math.isfinite(value):
                chosen.skipped.append((sid, f"split value is not a finite number ({value})"))
                continue
            parts[part].append(len(chosen.ids))
            chosen.ids.append(sid)
            chosen.structures.append(table.structures[row])
            chosen.targets.append(value)
    return chosen, parts["train"], parts["val"], parts["test"]


def _experimental_table(data_dir: Path) -> LabelledTable:
    """SSUB experimental enthalpies (mean over repeated formulas) on the lowest-formation-
    energy polymorph of each reduced formula in ``mp_cgcnn36k``."""
    from pymatgen.core import Composition

    measured: dict[str, list[float]] = defaultdict(list)
    for line in (data_dir / "oqmd_ssub_experimental.dat").read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                measured[Composition(parts[0]).reduced_formula].append(float(parts[1]))
            except (ValueError, KeyError):
                continue
    polymorphs = read_labelled_table(data_dir / "mp_cgcnn36k.csv.xz", "formation_energy_per_atom")
    best: dict[str, tuple[float, int]] = {}
    for row, (cif, energy) in enumerate(zip(polymorphs.structures, polymorphs.targets)):
        match = re.search(r"_chemical_formula_sum\s+'?([^'\n]+)'?", cif)
        if not match:
            continue
        formula = Composition(match.group(1)).reduced_formula
        if formula in measured and (formula not in best or energy < best[formula][0]):
            best[formula] = (energy, row)
    table = LabelledTable([], [], [])
    for formula in sorted(best):
        row = best[formula][1]
        table.ids.append(f"{formula} ({polymorphs.ids[row]})")
        table.structures.append(polymorphs.structures[row])
        values = measured[formula]
        table.targets.append(sum(values) / len(values))
    return table


def load_task(spec: TaskSpec, data_dir: Path | None = None) -> TaskData:
    """Read the task's table and split it (structures are not parsed here)."""
    data_dir = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    split_file = None
    if spec.name == "file":
        assert spec.file is not None and spec.target is not None  # TaskSpec.__post_init__
        path = Path(spec.file)
        table = read_labelled_table(path, spec.target, spec.structure_column, spec.id_column, spec.limit)
        source = f"{path} [{spec.target}]"
    elif spec.name == "exp_eform":
        path = data_dir / NAMED_TASKS[spec.name][0]
        if not path.is_file():
            raise StructureError(str(path), "task data not found (expected ../shared/data or --data-dir)")
        table = _experimental_table(data_dir)
        source = f"{path} on mp_cgcnn36k structures"
    else:
        file, target, transform, split_name, _, _ = NAMED_TASKS[spec.name]
        path = data_dir / file
        if not path.is_file():
            raise StructureError(str(path), "task data not found (expected ../shared/data or --data-dir)")
        table = read_labelled_table(path, target, limit=spec.limit, transform=transform)
        split_file = data_dir / split_name if split_name else None
        source = f"{path} [{target}{', ' + transform if transform else ''}]"
    if split_file is not None:
        table, pool, val, test = _official_parts(table, split_file)
        source += f", split {split_file.name}"
    else:
        if spec.limit is not None and spec.name == "exp_eform":  # noqa: SIM102
            table = LabelledTable(table.ids[: spec.limit], table.structures[: spec.limit], table.targets[: spec.limit])
        pool, val, test = _random_parts(len(table.ids), spec.test_fraction, spec.split_seed, spec.train_fraction)
        source += f", random split (seed {spec.split_seed}, test fraction {spec.test_fraction}"
        source += f", train fraction {spec.train_fraction})" if spec.train_fraction is not None else ")"
    if not pool or not test:
        raise StructureError(source, f"too few usable crystals ({len(table.ids)}) for a training and a test part")
    return TaskData(spec, table.ids, table.structures, torch.tensor(table.targets, dtype=torch.float32),
                    pool, val[: spec.val_limit], test, table.skipped, source)
