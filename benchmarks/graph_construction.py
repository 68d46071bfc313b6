"""Graph construction speed: crysgnn_dgl's builder vs a per-structure featuriser in the
style of the released CrysGNN/CGCNN code vs alignn's ``Graph.atom_dgl_multigraph``.

All three run in the same process on the same structures (parsed from CIF once, outside
the timed region), interleaved chunk by chunk so that load from other processes affects
them alike. Prints structures/s and the ratios ours/reference and ours/alignn.

    python benchmarks/graph_construction.py --limit 2000
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mp_cgcnn36k.csv.xz"


class ReferenceStyleFeaturiser:
    """One structure at a time, as the release's ``CIFData.__getitem__`` did it:
    ``get_all_neighbors``, a Python sort per atom, padding, a numpy Gaussian expansion,
    and tensors for atom features, neighbour features and neighbour indices."""

    def __init__(self, radius: float = 8.0, max_num_nbr: int = 12, step: float = 0.2):
        import jarvis.core

        table_path = Path(jarvis.core.__file__).with_name("atom_init.json")
        self.atom_init = {
            int(z): np.array(v, dtype=float) for z, v in json.loads(table_path.read_text()).items()
        }
        self.radius, self.max_num_nbr = radius, max_num_nbr
        self.filter = np.arange(0.0, radius + step, step)
        self.var = step

    def neighbours(self, crystal):
        """Padded ``(N, M)`` neighbour indices and distances, sorted by distance per atom."""
        all_nbrs = crystal.get_all_neighbors(self.radius, include_index=True)
        all_nbrs = [sorted(nbrs, key=lambda x: x.nn_distance) for nbrs in all_nbrs]
        nbr_fea_idx, nbr_fea = [], []
        for nbr in all_nbrs:
            missing = self.max_num_nbr - len(nbr)
            if missing > 0:
                nbr_fea_idx.append([x.index for x in nbr] + [0] * missing)
                nbr_fea.append([x.nn_distance for x in nbr] + [self.radius + 1.0] * missing)
            else:
                nbr_fea_idx.append([x.index for x in nbr[: self.max_num_nbr]])
                nbr_fea.append([x.nn_distance for x in nbr[: self.max_num_nbr]])
        return np.array(nbr_fea_idx), np.array(nbr_fea)

    def __call__(self, crystal):
        atom_fea = np.vstack([self.atom_init[site.specie.number] for site in crystal])
        nbr_fea_idx, nbr_fea = self.neighbours(crystal)
        nbr_fea = np.exp(-((nbr_fea[..., np.newaxis] - self.filter) ** 2) / self.var**2)
        return torch.Tensor(atom_fea), torch.Tensor(nbr_fea), torch.LongTensor(nbr_fea_idx)


def load_structures(path: Path, limit: int):
    from pymatgen.core import Structure

    from crysgnn_dgl import read_cif_table

    ids, structures = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for sid, cif in read_cif_table(path, limit=limit):
            structures.append(Structure.from_str(cif, fmt="cif"))
            ids.append(sid)
    return ids, structures


def to_jarvis(structure):
    from jarvis.core.atoms import Atoms

    return Atoms(
        lattice_mat=structure.lattice.matrix,
        coords=structure.frac_coords,
        elements=[site.specie.symbol for site in structure],
        cartesian=False,
    )


def check_agreement(structures, ours, reference, sample: int = 50) -> float:
    """Largest difference between the sorted per-atom neighbour distances of both
    featurisers (sorted, so that the order of equidistant neighbours does not matter)."""
    worst = 0.0
    for structure in structures[:sample]:
        n = len(structure)
        mine = np.sort(ours(structure).edata["distance"].numpy().reshape(n, -1), axis=1)
        _, theirs = reference.neighbours(structure)
        worst = max(worst, float(np.abs(mine - np.sort(theirs, axis=1)).max()))
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=2000, help="structures to use (default 2000)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CSV(.xz) with a 'cif' column")
    parser.add_argument("--chunk", type=int, default=100, help="structures per interleaved chunk")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--no-alignn", action="store_true", help="skip alignn's graph builder")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"data file {args.data} not found (expected ../shared/data next to the repository)")
        return 2
    torch.set_num_threads(args.threads)

    from crysgnn_dgl import GraphSettings
    from crysgnn_dgl.graph import graph_from_structure

    settings = GraphSettings()
    t0 = time.perf_counter()
    ids, structures = load_structures(args.data, args.limit)
    parse_s = time.perf_counter() - t0
    jarvis_atoms = [to_jarvis(s) for s in structures]
    reference = ReferenceStyleFeaturiser(settings.radius, settings.max_neighbors, settings.gaussian_step)

    def ours(structure, sid="structure"):
        return graph_from_structure(structure, settings, sid)

    builders = {"crysgnn_dgl": lambda i: ours(structures[i], ids[i]),
                "reference-style": lambda i: reference(structures[i])}
    alignn_options = {}
    if not args.no_alignn:
        import inspect

        from alignn.graphs import Graph

        signature = inspect.signature(Graph.atom_dgl_multigraph)
        alignn_options = {
            k: v.default for k, v in signature.parameters.items()
            if k in ("neighbor_strategy", "cutoff", "max_neighbors", "atom_features",
                     "compute_line_graph", "use_canonize")
        }
        builders["alignn atom_dgl_multigraph"] = lambda i: Graph.atom_dgl_multigraph(jarvis_atoms[i])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for build in builders.values():  # warm-up (imports, caches), untimed
            for i in range(min(10, len(structures))):
                build(i)
        elapsed = {name: 0.0 for name in builders}
        for start in range(0, len(structures), args.chunk):
            chunk = range(start, min(start + args.chunk, len(structures)))
            for name, build in builders.items():
                t = time.perf_counter()
                for i in chunk:
                    build(i)
                elapsed[name] += time.perf_counter() - t
        worst = check_agreement(structures, ours, reference)

    n = len(structures)
    atoms = sum(len(s) for s in structures)
    print(f"python {platform.python_version()}, torch {torch.__version__}, "
          f"torch threads {torch.get_num_threads()}, {platform.machine()}")
    print(f"data: {args.data.name}, first {n} structures ({atoms} atoms, "
          f"{atoms / n:.1f} per structure); CIF parsing {parse_s:.1f} s, not timed")
    print(f"featuriser settings: radius {settings.radius} Å, {settings.max_neighbors} neighbours, "
          f"{settings.num_gaussians} Gaussians")
    if alignn_options:
        print("alignn Graph.atom_dgl_multigraph with its defaults: "
              + ", ".join(f"{k}={v!r}" for k, v in alignn_options.items())
              + " (builds the line graph too)")
    print(f"sorted neighbour distances, crysgnn_dgl vs reference-style (first 50): "
          f"max |Δ| = {worst:.2e} Å")
    print()
    print(f"{'builder':<30} {'seconds':>9} {'structures/s':>13} {'ms/structure':>13}")
    for name, seconds in elapsed.items():
        print(f"{name:<30} {seconds:9.2f} {n / seconds:13.1f} {1000 * seconds / n:13.2f}")
    print()
    ours_rate = n / elapsed["crysgnn_dgl"]
    print(f"ratio crysgnn_dgl / reference-style: {ours_rate / (n / elapsed['reference-style']):.1f}x")
    if "alignn atom_dgl_multigraph" in elapsed:
        print(f"ratio crysgnn_dgl / alignn:          "
              f"{ours_rate / (n / elapsed['alignn atom_dgl_multigraph']):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
