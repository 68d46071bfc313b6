"""Graph construction speed: crysgnn_dgl's builder vs a per-structure featuriser in the
style of the released CrysGNN/CGCNN code vs alignn's ``Graph.atom_dgl_multigraph``.

alignn is timed twice: with its defaults (k-nearest, 12 neighbours, *plus* the line
graph with bond-angle cosines, which ours does not build: different work), and doing
the equal work (its 12-nearest-neighbour graph without the line graph; its k-nearest
search widens the 5 Å radius until 12 neighbours are found, so the graph is the one it
builds at our 8 Å, and the 5 Å start is its faster path).
All builders run in the same process on the same structures (parsed from CIF once,
outside the timed region), interleaved chunk by chunk so that load from other processes
affects them alike. Prints structures/s, edges per atom and the ratios against ours.

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

from _common import DATA_DIR, Report, machine_load

DEFAULT_DATA = DATA_DIR / "mp_cgcnn36k.csv.xz"


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


ALIGNN_DEFAULTS = "alignn defaults (+line graph)"
ALIGNN_EQUAL = "alignn equal work"


def alignn_builders(jarvis_atoms: list, neighbours: int) -> tuple[dict, dict[str, str]]:
    """alignn's builder with its defaults and in the equal-work setting, and a description
    of each (its defaults read from the installed signature)."""
    import inspect

    from alignn.graphs import Graph

    signature = inspect.signature(Graph.atom_dgl_multigraph)
    defaults = {
        k: v.default for k, v in signature.parameters.items()
        if k in ("neighbor_strategy", "cutoff", "max_neighbors", "atom_features", "compute_line_graph", "use_canonize")
    }
    equal = {**defaults, "max_neighbors": neighbours, "compute_line_graph": False}
    builders = {
        ALIGNN_DEFAULTS: lambda i: Graph.atom_dgl_multigraph(jarvis_atoms[i]),
        ALIGNN_EQUAL: lambda i: Graph.atom_dgl_multigraph(jarvis_atoms[i], **equal),
    }
    described = {
        ALIGNN_DEFAULTS: ", ".join(f"{k}={v!r}" for k, v in defaults.items())
        + " (builds the line graph and its bond-angle cosines too: more work than ours)",
        ALIGNN_EQUAL: ", ".join(f"{k}={v!r}" for k, v in equal.items())
        + " (our neighbour count, no line graph; alignn keeps ties at the 12th distance and adds "
        "the reverse of every edge, hence more edges per atom)",
    }
    return builders, described


def edges_per_atom(graph: object) -> float:
    """Edges per atom of a builder's output (the atom graph when a line graph comes too)."""
    if isinstance(graph, tuple) and not hasattr(graph[0], "num_edges"):
        return float(graph[2].shape[1])  # reference-style: an (atoms, neighbours) index table
    if isinstance(graph, tuple):
        graph = graph[0]  # alignn: (atom graph, line graph)
    return graph.num_edges() / graph.num_nodes()


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
    described: dict[str, str] = {}
    if not args.no_alignn:
        extra, described = alignn_builders(jarvis_atoms, settings.max_neighbors)
        builders.update(extra)

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
        sample = range(min(50, len(structures)))
        edges = {name: float(np.mean([edges_per_atom(build(i)) for i in sample])) for name, build in builders.items()}

    report = Report("graph_construction.txt")
    report(f"{machine_load()} at the end of the run (other jobs share the CPUs; the builders are interleaved)")
    n = len(structures)
    atoms = sum(len(s) for s in structures)
    report(f"python {platform.python_version()}, torch {torch.__version__}, "
           f"torch threads {torch.get_num_threads()}, {platform.machine()}; all builders interleaved "
           f"in chunks of {args.chunk} in the same process")
    report(f"data: {args.data.name}, first {n} structures ({atoms} atoms, "
           f"{atoms / n:.1f} per structure); CIF parsing {parse_s:.1f} s, not timed")
    report(f"crysgnn_dgl / reference-style: radius {settings.radius} Å, {settings.max_neighbors} neighbours, "
           f"{settings.num_gaussians} Gaussians, no line graph")
    for name, text in described.items():
        report(f"{name}: {text}")
    report(f"sorted neighbour distances, crysgnn_dgl vs reference-style (first 50): max |Δ| = {worst:.2e} Å")
    report()
    report(f"{'builder':<30} {'seconds':>9} {'structures/s':>13} {'ms/structure':>13} {'edges/atom':>11}")
    for name, seconds in elapsed.items():
        report(f"{name:<30} {seconds:9.2f} {n / seconds:13.1f} {1000 * seconds / n:13.2f} {edges[name]:11.1f}")
    report()
    for name in elapsed:
        if name != "crysgnn_dgl":
            note = " (different work: alignn also builds the line graph)" if name == ALIGNN_DEFAULTS else ""
            report(f"ratio crysgnn_dgl / {name + ':':<30} {elapsed[name] / elapsed['crysgnn_dgl']:5.1f}x{note}")
    print(f"written to {report.save()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
