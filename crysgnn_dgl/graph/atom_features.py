"""The 92-d CGCNN atom feature table (shipped by jarvis-tools as ``atom_init.json``)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import numpy as np

FEATURE_DIM = 92


@lru_cache(maxsize=1)
def atom_feature_table() -> np.ndarray:
    """Table of shape ``(max_Z + 1, 92)``; row ``Z`` holds element Z's features, row 0 is NaN."""
    text = resources.files("jarvis.core").joinpath("atom_init.json").read_text()
    raw = {int(z): np.asarray(v, dtype=np.float32) for z, v in json.loads(text).items()}
    table = np.full((max(raw) + 1, FEATURE_DIM), np.nan, dtype=np.float32)
    for z, row in raw.items():
        table[z] = row
    table.setflags(write=False)
    return table


def max_atomic_number() -> int:
    """Largest atomic number the table covers (100)."""
    return atom_feature_table().shape[0] - 1


def atom_features(atomic_numbers: np.ndarray) -> np.ndarray:
    """Feature rows for ``atomic_numbers`` (validated by the caller)."""
    return atom_feature_table()[np.asarray(atomic_numbers, dtype=np.int64)]
