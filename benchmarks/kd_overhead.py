"""Epoch-time overhead of the distillation hook, per adapter.

For each adapter the same pre-built batches of real MP crystals are trained for one epoch
without the hook, then with the hook and an empty cache (cold: every crystal goes through
the teacher), then again with the filled cache (warm). Ratios are distilled / vanilla
epoch time measured in the same run (best of ``--repeats`` epochs for vanilla and warm).

    python benchmarks/kd_overhead.py [--crystals 512] [--batch-size 16] [--out FILE]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("MATGL_BACKEND", "DGL")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _distill_fixtures import (  # noqa: E402
    OriginalSignatureCGCNN, mp_rows, original_cgcnn_batch, random_teacher,
)

from crysgnn_dgl import attach_teacher, build_graph  # noqa: E402
from crysgnn_dgl.backend import dgl  # noqa: E402


def port_setup(kind, structures, targets, batch_size):
    from crysgnn_dgl.models.cgcnn import CGCNN
    from crysgnn_dgl.models.gatgnn import GATGNN

    graphs = [build_graph(s) for s in structures]
    batches = [(dgl.batch(graphs[i : i + batch_size]), targets[i : i + batch_size])
               for i in range(0, len(graphs), batch_size)]
    model = CGCNN() if kind == "cgcnn" else GATGNN()
    return model, batches, lambda m, b: F.mse_loss(m(b[0]), b[1])


def original_setup(structures, targets, batch_size):
    batches = [(original_cgcnn_batch(structures[i : i + batch_size]), targets[i : i + batch_size])
               for i in range(0, len(structures), batch_size)]
    return OriginalSignatureCGCNN(atom_fea_len=64, n_conv=3, h_fea_len=128), batches, \
        lambda m, b: F.mse_loss(m(*b[0]).squeeze(1), b[1])


def alignn_setup(structures, targets, batch_size):
    from alignn.graphs import Graph
    from alignn.models.alignn_atomwise import ALIGNNAtomWise, ALIGNNAtomWiseConfig
    from jarvis.core.atoms import pmg_to_atoms

    items = []
    for s in structures:
        atoms = pmg_to_atoms(s)
        g, lg = Graph.atom_dgl_multigraph(atoms, cutoff=8.0, max_neighbors=12, atom_features="cgcnn")
        items.append((g, lg, torch.tensor(atoms.lattice_mat, dtype=torch.float32)))
    batches = []
    for i in range(0, len(items), batch_size):
        chunk = items[i : i + batch_size]
        batches.append(((dgl.batch([c[0] for c in chunk]), dgl.batch([c[1] for c in chunk]),
                         torch.stack([c[2] for c in chunk])), targets[i : i + batch_size]))
    config = ALIGNNAtomWiseConfig(name="alignn_atomwise", atom_input_features=92, gradwise_weight=0.0,
                                  atomwise_weight=0.0, stresswise_weight=0.0)
    return ALIGNNAtomWise(config), batches, lambda m, b: torch.nn.L1Loss()(m(list(b[0]))["out"], b[1])


def megnet_setup(structures, targets, batch_size):
    from matgl.ext.pymatgen import Structure2Graph, get_element_list
    from matgl.graph.data import MGLDataset, collate_fn_graph
    from matgl.models import MEGNet
    from matgl.utils.training import ModelLightningModule

    elements = get_element_list(structures)
    folder = tempfile.mkdtemp()
    dataset = MGLDataset(structures=structures, converter=Structure2Graph(elements, cutoff=4.0),
                         labels={"y": targets.tolist()}, save_cache=False, raw_dir=folder, save_dir=folder)
    batches = [collate_fn_graph([dataset[j] for j in range(i, min(i + batch_size, len(dataset)))])
               for i in range(0, len(dataset), batch_size)]
    module = ModelLightningModule(model=MEGNet(element_types=elements, cutoff=4.0), loss="mse_loss")
    return module, batches, lambda m, b: m.step(b)[0]["Total_Loss"]


def epoch(model, batches, loss_fn, optimiser) -> float:
    start = time.perf_counter()
    for batch in batches:
        optimiser.zero_grad()
        loss_fn(model, batch).backward()
        optimiser.step()
    return time.perf_counter() - start


def train_flops(model, batch, loss_fn) -> int:
    """Floating-point operations of one training step (forward + backward) on ``batch``."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        loss_fn(model, batch).backward()
    model.zero_grad()
    return counter.get_total_flops()


def measure(name, setup, teacher, repeats):
    model, batches, loss_fn = setup()
    torch.manual_seed(0)
    vanilla = copy.deepcopy(model)
    distilled = copy.deepcopy(model)
    hook = attach_teacher(distilled, teacher)
    opt_v = torch.optim.Adam(vanilla.parameters(), 1e-3)
    opt_d = torch.optim.Adam(distilled.parameters(), 1e-3)
    epoch(vanilla, batches[:1], loss_fn, opt_v)  # warm-up (allocations, lazy imports)
    epoch(vanilla, batches, loss_fn, opt_v)
    teacher_time, teacher_flops = [0.0], [0]
    embed = hook._embed

    def timed_embed(graph):  # the teacher's forward alone: the intrinsic cost of a cold epoch
        from torch.utils.flop_counter import FlopCounterMode

        start = time.perf_counter()
        rows = embed(graph)
        teacher_time[0] += time.perf_counter() - start
        if not teacher_flops[0]:
            counter = FlopCounterMode(display=False)
            with counter:
                embed(graph)
            teacher_flops[0] = counter.get_total_flops() / graph.num_nodes()
        return rows

    hook._embed = timed_embed
    cold = epoch(distilled, batches, loss_fn, opt_d)
    hook._embed = embed
    base_cold = epoch(vanilla, batches, loss_fn, opt_v)  # the vanilla epoch next to the cold one
    assert hook.teacher_crystals > 0
    calls = hook.teacher_calls
    # vanilla and warm epochs alternate, so that load from other processes hits both alike
    base, warm = float("inf"), float("inf")
    for _ in range(repeats):
        base = min(base, epoch(vanilla, batches, loss_fn, opt_v))
        warm = min(warm, epoch(distilled, batches, loss_fn, opt_d))
    assert hook.teacher_calls == calls, "warm epochs must not run the teacher"
    first = batches[0]
    student_flops = train_flops(vanilla, first, loss_fn)
    atoms = _atoms_of(first)
    ratio = teacher_flops[0] * atoms / student_flops if student_flops else float("nan")
    base = min(base, base_cold)
    floor = 1 + teacher_time[0] / base
    return floor, (f"{name:16s} vanilla {base:7.3f} s   cold {cold:7.3f} s ({cold / base:5.2f}x)   "
            f"warm {warm:7.3f} s ({warm / base:5.2f}x)   teacher fwd {teacher_time[0]:6.3f} s "
            f"(floor {1 + teacher_time[0] / base:4.2f}x)   teacher/student FLOPs {ratio:5.2f}")


def _atoms_of(batch) -> int:
    """Atoms in the first element of a benchmark batch (graph, tuple or matgl batch)."""
    first = batch[0]
    if isinstance(first, (tuple, list)):
        first = first[0]
    if hasattr(first, "num_nodes"):
        return int(first.num_nodes())
    return int(first.shape[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crystals", type=int, default=512, help="MP crystals (≤ 8 sites) per epoch")
    parser.add_argument("--batch-size", type=int, default=16, help="crystals per batch")
    parser.add_argument("--repeats", type=int, default=5, help="alternating vanilla/warm epoch pairs (best of each kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--adapters", default="cgcnn,cgcnn_original,gatgnn,alignn,megnet",
                        help="comma-separated adapters to measure")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    from pymatgen.core import Structure

    rows = mp_rows(args.crystals, 8)
    structures = [Structure.from_str(t, fmt="cif") for t in rows.cif]
    targets = torch.tensor(rows.formation_energy_per_atom.values, dtype=torch.float32)
    teacher = random_teacher(Path(tempfile.mkdtemp()))
    setups = {
        "cgcnn": lambda: port_setup("cgcnn", structures, targets, args.batch_size),
        "cgcnn_original": lambda: original_setup(structures, targets, args.batch_size),
        "gatgnn": lambda: port_setup("gatgnn", structures, targets, args.batch_size),
        "alignn": lambda: alignn_setup(structures, targets, args.batch_size),
        "megnet": lambda: megnet_setup(structures, targets, args.batch_size),
    }
    lines = [
        "command: python benchmarks/kd_overhead.py " + " ".join(sys.argv[1:]),
        f"{len(structures)} MP crystals, batch {args.batch_size}, {args.threads} thread(s), "
        f"best of {args.repeats} alternating vanilla/warm epochs; goals warm <= 1.05x, cold <= 1.5x",
        "teacher fwd: time spent in the teacher's forward during the cold epoch; floor = 1 + that / vanilla,",
        "the cold ratio no implementation of the hook can beat; teacher/student FLOPs: the teacher's",
        "forward vs the student's training step (forward + backward) on the first batch",
    ]
    print("\n".join(lines), flush=True)
    floors = []
    for name in args.adapters.split(","):
        floor, line = measure(name, setups[name], teacher, args.repeats)
        print(line, flush=True)
        lines.append(line)
        if floor > 1.5:
            floors.append(f"{name} ({floor:.2f}x)")
    if floors:
        note = (f"cold goal 1.5x is below the measured floor for {', '.join(floors)}: the 5-layer teacher's "
                "forward alone takes more than half of a vanilla training step of these small students (their "
                "FLOP ratio is lower: small-batch DGL/BatchNorm/elementwise overheads, not multiply-adds, set the "
                "teacher's time); only the cache (warm epochs) removes it")
        print(note, flush=True)
        lines.append(note)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
