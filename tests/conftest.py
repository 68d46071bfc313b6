"""Shared fixtures: a handful of real crystals read once from ``../shared/data``.

The data folder sits next to the repository (``<repo>/../shared/data``; the environment
variable ``CRYSGNN_TEST_DATA`` names another). When it is absent every test that needs
real structures is skipped with a message saying where the data was looked for; with the
environment variable ``CI`` set, a missing folder or file fails the run instead.
"""

from __future__ import annotations

import json
import os
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pytest

DATA_DIR = Path(os.environ.get("CRYSGNN_TEST_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
IN_CI = bool(os.environ.get("CI"))


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI the shared data must be there: a missing folder fails the run, it does not
    skip most of the suite."""
    if IN_CI and not DATA_DIR.is_dir():
        pytest.exit(
            f"CI is set but the test data folder {DATA_DIR} is missing; put the shared data there "
            "(or point CRYSGNN_TEST_DATA at it)",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )

# Small Materials Project crystals from the first rows of mp_cgcnn36k (fast to read).
MP_IDS = (
    "mp-1",  # Cs, bcc, 1 atom
    "mp-1000",  # BaTe, rock salt, 2 atoms
    "mp-10000",  # Hf2S, 6 atoms
    "mp-1001836",  # MnGa, 2 atoms
    "mp-1002063",  # SnS2, 6 atoms
    "mp-1008626",  # VTe2, 3 atoms
    "mp-10003",  # Nb4CoSi, 12 atoms
)
MP_ROWS_READ = 400  # all MP_IDS lie within the first rows of the file


def data_file(name: str) -> Path:
    """Path of a shared data file; skips the calling test when it is not there."""
    path = DATA_DIR / name
    if not path.is_file():
        message = (f"real data file {path} not found: tests read structures from ../shared/data "
                   "next to the repository")
        if IN_CI:
            pytest.fail(f"{message} (CI is set: missing data is a failure)")
        pytest.skip(message)
    return path


@cache
def _table(name: str, nrows: int):
    import pandas as pd

    return pd.read_csv(data_file(name), nrows=nrows)


def _parse(cif: str):
    from pymatgen.core import Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen's rounding notes on CIF coordinates
        return Structure.from_str(cif, fmt="cif")


@pytest.fixture(scope="session")
def mp_cifs() -> dict[str, str]:
    """CIF text of the :data:`MP_IDS` crystals, keyed by material id."""
    table = _table("mp_cgcnn36k.csv.xz", MP_ROWS_READ).set_index("material_id")
    return {mid: table.loc[mid, "cif"] for mid in MP_IDS}


@pytest.fixture(scope="session")
def mp_structures(mp_cifs) -> dict:
    """pymatgen Structures of the :data:`MP_IDS` crystals, keyed by material id."""
    return {mid: _parse(cif) for mid, cif in mp_cifs.items()}


@pytest.fixture(scope="session")
def perov_structures() -> dict:
    """First three perovskites of perov5 (5 atoms each), keyed by ``perov5:<id>``."""
    table = _table("perov5.csv.xz", 3)
    return {f"perov5:{mid}": _parse(cif) for mid, cif in zip(table.material_id, table.cif)}


@pytest.fixture(scope="session")
def carbon_structures() -> dict:
    """First three carbon24 allotropes (6-12 atoms), keyed by ``carbon24:<id>``."""
    table = _table("carbon24.csv.xz", 3)
    return {f"carbon24:{mid}": _parse(cif) for mid, cif in zip(table.material_id, table.cif)}


@pytest.fixture(scope="session")
def real_structures(mp_structures, perov_structures, carbon_structures) -> dict:
    """All real crystals of the fixtures above: ``{id: Structure}``."""
    return {**mp_structures, **perov_structures, **carbon_structures}


@pytest.fixture(scope="session")
def padded_structure(mp_structures):
    """VTe2 (mp-1008626) with its lattice stretched to 9× the volume.

    No crystal in the data has an atom with fewer than 12 neighbours within 8 Å, so the
    padding path runs on a real structure expanded until the two Te atoms keep 9
    neighbours each (7.60 Å; next shell at 8.36 Å) while V keeps exactly 12.
    """
    structure = mp_structures["mp-1008626"].copy()
    structure.scale_lattice(structure.volume * 9.0)
    return structure


@pytest.fixture(scope="session")
def isolated_structure(mp_structures):
    """BaTe (mp-1000) stretched until no atom has any neighbour within 8 Å."""
    structure = mp_structures["mp-1000"].copy()
    structure.scale_lattice(structure.volume * 60.0)
    return structure


def reference_neighbors(structure, radius: float, max_neighbors: int, tie_decimals: int):
    """Neighbour lists the way the released featuriser built them, one atom at a time.

    ``get_all_neighbors(radius)`` per structure, each atom's list sorted by distance
    (rounded to ``tie_decimals``), then neighbour index, then periodic image; the first
    ``max_neighbors`` kept; missing slots padded with index 0 at ``radius + 1``.
    Returns ``(index (N, k) int, distance (N, k) float, real (N, k) bool)``.
    """
    indices, distances, real = [], [], []
    for neighbours in structure.get_all_neighbors(radius):
        ordered = sorted(
            neighbours,
            key=lambda n: (round(n.nn_distance, tie_decimals), n.index, tuple(n.image)),
        )[:max_neighbors]
        missing = max_neighbors - len(ordered)
        indices.append([n.index for n in ordered] + [0] * missing)
        distances.append([n.nn_distance for n in ordered] + [radius + 1.0] * missing)
        real.append([True] * len(ordered) + [False] * missing)
    return np.array(indices), np.array(distances), np.array(real)


def reference_atom_table() -> dict[int, np.ndarray]:
    """CGCNN's 92-d atom features read straight from jarvis' ``atom_init.json``."""
    import jarvis.core

    path = Path(jarvis.core.__file__).with_name("atom_init.json")
    with open(path) as handle:
        return {int(z): np.asarray(v, dtype=np.float64) for z, v in json.load(handle).items()}


def twelfth_neighbour_gap(structure, radius: float = 8.0, k: int = 12) -> float:
    """Smallest gap between the k-th and (k+1)-th neighbour distance over all atoms.

    A clear gap means the set of kept neighbours does not depend on any tie rule, so
    rotations, translations, permutations and supercells must give identical graphs.
    """
    gaps = []
    for neighbours in structure.get_all_neighbors(radius):
        d = sorted(n.nn_distance for n in neighbours)
        gaps.append(d[k] - d[k - 1] if len(d) > k else np.inf)
    return float(min(gaps))


@pytest.fixture(scope="session")
def reference_featuriser():
    """:func:`reference_neighbors` as a fixture (independent of the package's builder)."""
    return reference_neighbors


@pytest.fixture(scope="session")
def atom_init_table():
    """:func:`reference_atom_table` as a fixture."""
    return reference_atom_table()


@pytest.fixture(scope="session")
def shell_gap():
    """:func:`twelfth_neighbour_gap` as a fixture."""
    return twelfth_neighbour_gap


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A randomly initialised CrysGNN teacher (real model, seed 0), one per test module,
    for the distillation tests."""
    from _distill_fixtures import random_teacher

    return random_teacher(tmp_path_factory.mktemp("teacher"))
