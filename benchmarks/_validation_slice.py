"""The bundled teacher's held-out Materials Project crystals, found without its graph cache.

Every structure in ``../shared/data`` was in the teacher's pre-training corpus, so the only
crystals it never trained on are its validation slice: cache positions ``p`` with
``default_rng(seed).random(num_crystals)[p] < validation_fraction``
(:meth:`crysgnn_dgl.pretrain.GraphCache.split`). The cache reads ``mp_cgcnn36k`` first and
then the ids of ``mp_elastic3k`` it has not seen (see ``MODEL_CARD.md``, *Reproduce*), and
drops a crystal whose id or whose structure fingerprint (formula, space group, volume per
atom to 0.01 Å³, mean neighbour distance to 0.001 Å) came earlier. The Materials Project
crystals therefore hold the first cache positions, and those positions are rebuilt here by
recomputing the fingerprint only for inputs that could collide (same composition, volume
per atom within 0.011 Å³ of another's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MP_FILE, ELASTIC_FILE = "mp_cgcnn36k.csv.xz", "mp_elastic3k.csv.xz"
_COUNT = re.compile(r"([A-Z][a-z]?)([\d.]*)")


def composition_key(formula_sum: str) -> tuple[tuple[str, float], ...]:
    """Order-independent key of a CIF ``_chemical_formula_sum`` such as ``'Fe2 O3'``."""
    counts = [(element, float(n) if n else 1.0) for element, n in _COUNT.findall(formula_sum)]
    return tuple(sorted(counts))


def _cif_field(cifs: pd.Series, name: str) -> pd.Series:
    return cifs.str.extract(rf"{name}\s+(.+)")[0].str.strip().str.strip("'")


def collision_candidates(cifs: pd.Series, tolerance: float = 0.011) -> list[int]:
    """Row positions whose composition equals another row's and whose volume per atom is
    within ``tolerance`` of it: the only rows that can share a structure fingerprint."""
    keys = _cif_field(cifs, "_chemical_formula_sum").map(composition_key)
    atoms = keys.map(lambda key: sum(n for _, n in key))
    per_atom = _cif_field(cifs, "_cell_volume").astype(float) / atoms
    frame = pd.DataFrame({"key": keys, "v": per_atom.to_numpy(), "row": np.arange(len(cifs))})
    candidates: set[int] = set()
    for _, group in frame.groupby("key", sort=False):
        if len(group) < 2:
            continue
        ordered = group.sort_values("v")
        close = np.diff(ordered.v.to_numpy()) < tolerance
        rows = ordered.row.to_numpy()
        candidates.update(rows[:-1][close].tolist() + rows[1:][close].tolist())
    return sorted(candidates)


def duplicate_rows(frame: pd.DataFrame, graph_settings: Any) -> list[int]:
    """Rows (in input order) whose structure fingerprint equals an earlier row's."""
    from crysgnn_dgl.pretrain.cache import featurise

    seen: set[str] = set()
    duplicates = []
    for row in collision_candidates(frame.cif):
        features = featurise(frame.cif.iat[row], frame.material_id.iat[row], graph_settings)
        fingerprint = features["fingerprint"]
        if fingerprint in seen:
            duplicates.append(row)
        seen.add(fingerprint)
    return duplicates


@dataclass
class HeldOut:
    """The teacher's held-out MP crystals (rows of ``mp_cgcnn36k``) and how they were found."""

    crystals: pd.DataFrame  # mp_cgcnn36k columns plus ``position`` (in the teacher's cache)
    mp_in_cache: int  # unique MP crystals (the first cache positions)
    mp_validation: int  # of which in the validation slice (incl. mp_elastic3k-only ids)
    duplicates: int  # MP inputs dropped as structure duplicates
    num_crystals: int
    fraction: float
    seed: int

    def describe(self) -> str:
        return (
            f"held out = the teacher's validation slice (seed {self.seed}, fraction "
            f"{self.fraction}, {self.num_crystals} cache crystals), rebuilt: {self.mp_in_cache} "
            f"unique MP crystals at the first cache positions ({self.duplicates} structure "
            f"duplicates dropped), {self.mp_validation} of them in the validation slice, "
            f"{len(self.crystals)} with mp_cgcnn36k labels"
        )


def teacher_held_out(data: Path, training: dict[str, Any], graph_settings: Any) -> HeldOut:
    """MP crystals of the teacher's validation slice, from its checkpoint's training record
    (``num_train_crystals``, ``num_val_crystals``, ``run.validation_fraction``, ``run.seed``)."""
    mp = pd.read_csv(data / MP_FILE)
    elastic = pd.read_csv(data / ELASTIC_FILE, usecols=["material_id", "cif"])
    new_elastic = elastic[~elastic.material_id.isin(mp.material_id)]
    inputs = pd.concat([mp[["material_id", "cif"]], new_elastic], ignore_index=True)
    inputs = inputs[~inputs.material_id.duplicated()].reset_index(drop=True)
    dropped = duplicate_rows(inputs, graph_settings)
    kept = inputs.drop(index=dropped).reset_index(drop=True)
    num_crystals = int(training["num_train_crystals"]) + int(training["num_val_crystals"])
    fraction = float(training["run"]["validation_fraction"])
    seed = int(training["run"]["seed"])
    is_validation = np.random.default_rng(seed).random(num_crystals)[: len(kept)] < fraction
    position = pd.Series(np.arange(len(kept)), index=kept.material_id)
    held = mp[mp.material_id.isin(kept.material_id[is_validation])].copy()
    held["position"] = position[held.material_id].to_numpy()
    held = held.sort_values("position").reset_index(drop=True)
    return HeldOut(
        held, len(kept), int(is_validation.sum()), len(dropped), num_crystals, fraction, seed
    )
