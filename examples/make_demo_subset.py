"""Draw the formation-energy demo subset shipped in ``crysgnn_dgl/data``.

Reads ``mp_cgcnn36k.csv.xz`` (Materials Project structures as curated for CGCNN/CrysXPP),
keeps crystals with at most ``--max-sites`` sites in the cell (small cells train fast on
a CPU), draws ``--rows`` of them uniformly at random with ``--seed``, and writes
``material_id, formation_energy_per_atom, cif`` as an xz-compressed CSV.

    python examples/make_demo_subset.py            # rewrites the bundled file
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "mp_cgcnn36k.csv.xz"
DEFAULT_OUTPUT = ROOT / "crysgnn_dgl" / "data" / "demo_mp_formation_energy.csv.xz"
COLUMNS = ["material_id", "formation_energy_per_atom", "cif"]


def count_sites(cif: str) -> int:
    """Number of sites listed in the atom-site loop of a pymatgen-written CIF."""
    lines = cif.strip().splitlines()
    last_header = max(i for i, line in enumerate(lines) if line.strip().startswith("_atom_site"))
    return sum(1 for line in lines[last_header + 1 :] if line.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="mp_cgcnn36k.csv.xz to draw from")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the subset")
    parser.add_argument("--rows", type=int, default=3000, help="number of crystals to draw")
    parser.add_argument("--max-sites", type=int, default=8, help="largest cell (number of sites) kept")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the draw")
    args = parser.parse_args(argv)

    frame = pd.read_csv(args.source)
    sites = frame["cif"].map(count_sites)
    small = frame[sites <= args.max_sites]
    subset = small.sample(n=args.rows, random_state=args.seed).sort_values("material_id")
    subset[COLUMNS].to_csv(args.output, index=False, compression="xz")
    print(
        f"{len(subset)} of {len(small)} crystals with <= {args.max_sites} sites "
        f"(of {len(frame)}) -> {args.output} ({args.output.stat().st_size / 1e6:.2f} MB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
