"""Pre-training objectives at a small budget (issue 8 §1/§2): which objectives keep the
geometric information that the CrysGNN objectives destroy (``teacher_diagnosis.txt``)?

Every configuration is pre-trained from the same graph cache with the same seed, epochs,
batch size and learning rate; then all checkpoints, the same architecture at default
initialisation (several seeds) and the bundled teacher are probed on the SAME held-out
Materials Project crystals with the ridge probes of ``teacher_diagnosis.py``.

Held-out set and corpus. The probe crystals are the bundled teacher's validation slice
(rebuilt by ``_validation_slice.py``; the first ``--probe-limit`` of them in cache order),
so the bundled teacher row is comparable too. The pre-training corpus cannot overlap it:
the first ``--mp`` Materials Project crystals of the teacher's *training* slice (unique
structure fingerprints, so none equals a probe crystal), then the first ``--perov5`` rows
of ``perov5`` and the first ``--carbon24`` rows of ``carbon24``.

    OMP_NUM_THREADS=1 python benchmarks/objective_ablation.py --out summary_probe600.txt
    # then probe all 1,847 held-out crystals, 5 init seeds (pre-training runs are reused):
    OMP_NUM_THREADS=1 python benchmarks/objective_ablation.py --skip-pretrain --probe-limit 0 \
        --init-seeds 0 1 2 3 4

Runs (checkpoints, cache) go to ``--work`` (outside the repository); the small text results
go to ``benchmarks/results/objective_ablation/``. Rerunning skips finished pre-training runs
(``crysgnn-dgl pretrain`` resumes an interrupted one).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import REPO, RESULTS, Report, machine_load, require_data

CRYSGNN_OFF = ["--feature-weight", "0", "--connectivity-weight", "0",
               "--space-group-weight", "0", "--contrastive-weight", "0"]
#: MMPT's seven terms at the paper's weights (Eq. 7: 5 on atom types, 0.5 on Barlow Twins, 1 else)
MMPT_PAPER = ["--mmpt-atom-type-weight", "5", "--mmpt-coordinate-weight", "1", "--mmpt-lattice-weight", "1",
              "--mmpt-barlow-twins-weight", "0.5", "--mmpt-direction-weight", "1",
              "--mmpt-same-cell-weight", "1", "--mmpt-distance-weight", "1"]
#: name -> (description, extra pretrain options)
DENOISE_LR003 = CRYSGNN_OFF + ["--denoising-weight", "1", "--lr", "0.03"]
#: name -> (description, options after the common ones; a repeated option overrides)
CONFIGS = {
    "crysgnn": ("(a) the four CrysGNN objectives, 0.25 each (defaults)", []),
    "crysgnn_denoise": ("(b) CrysGNN objectives 0.25 each + denoising 1.0 (σ 0.5 Å)",
                        ["--denoising-weight", "1"]),
    "denoise_only": ("(c) denoising only, 1.0 (σ 0.5 Å); CrysGNN weights 0",
                     CRYSGNN_OFF + ["--denoising-weight", "1"]),
    "crysgnn_node": ("(d) node-level CrysGNN only: feature + connectivity 0.25 each",
                     ["--space-group-weight", "0", "--contrastive-weight", "0"]),
    "mmpt": ("(e) MMPT only, the paper's weights; CrysGNN weights 0", CRYSGNN_OFF + MMPT_PAPER),
    "denoise_mmpt": ("(f) denoising 1.0 + MMPT at the paper's weights; CrysGNN weights 0",
                     CRYSGNN_OFF + ["--denoising-weight", "1"] + MMPT_PAPER),
    "denoise_lr003": ("(g) denoising only at the CrysGNN release's learning rate 0.03 (else as (c))",
                      DENOISE_LR003),
    "crysgnn_graph": ("(h) graph-level CrysGNN only: space group + contrastive 0.25 each",
                      ["--feature-weight", "0", "--connectivity-weight", "0"]),
    "crysgnn_node_sg": ("(i) node-level CrysGNN + space group, 0.25 each", ["--contrastive-weight", "0"]),
    "crysgnn_node_ntxent": ("(j) node-level CrysGNN + NT-Xent, 0.25 each", ["--space-group-weight", "0"]),
    "denoise_lr003_b64": ("(k) as (g), batch 64", DENOISE_LR003 + ["--batch-size", "64"]),
    "denoise_lr003_b256": ("(l) as (g), batch 256", DENOISE_LR003 + ["--batch-size", "256"]),
    "denoise_lr003_constant": ("(m) as (g), constant learning rate (no cosine decay)",
                               DENOISE_LR003 + ["--schedule", "constant"]),
    "denoise_lr003_e30": ("(n) as (g), 30 epochs (cosine over 30)", DENOISE_LR003 + ["--epochs", "30"]),
}
OUT_DIR = RESULTS / "objective_ablation"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--work", default="/work/tmp_oa", help="run folders and the graph cache")
    parser.add_argument("--mp", type=int, default=6000, help="MP crystals of the teacher's training slice")
    parser.add_argument("--perov5", type=int, default=1000)
    parser.add_argument("--carbon24", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3, help="the shipped teachers'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--probe-limit", type=int, default=600,
                        help="held-out crystals probed (0: all 1847)")
    parser.add_argument("--out", default="summary.txt", help="file name under results/objective_ablation")
    parser.add_argument("--init-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--skip-probe", action="store_true", help="pre-train only")
    parser.add_argument("--skip-pretrain", action="store_true", help="probe existing runs only")
    return parser.parse_args()


def prepare(work: Path, args: argparse.Namespace, report: Report):
    """The probe crystals and the pre-training inputs (an MP CSV written under ``work``)."""
    from crysgnn_dgl.checkpoint import model_from_checkpoint
    from crysgnn_dgl.teacher import bundled_teacher_path
    from _validation_slice import MP_FILE, duplicate_rows

    data = require_data()
    teacher, checkpoint = model_from_checkpoint(bundled_teacher_path("crysgnn-multitask"))  # the reference row
    crystals, training_ids = _held_out_and_training(data, checkpoint, duplicate_rows)
    probe = crystals.iloc[:args.probe_limit] if args.probe_limit else crystals
    mp = pd.read_csv(data / MP_FILE)
    chosen = training_ids[:args.mp]
    corpus = mp.set_index("material_id").loc[chosen].reset_index()[["material_id", "cif"]]
    assert not set(corpus.material_id) & set(crystals.material_id)
    work.mkdir(parents=True, exist_ok=True)
    mp_csv = work / f"mp_teacher_train_first{args.mp}.csv"
    if not mp_csv.exists():
        corpus.to_csv(mp_csv, index=False)
    inputs = [str(mp_csv)]
    limits = []
    for name, n in (("perov5.csv.xz", args.perov5), ("carbon24.csv.xz", args.carbon24)):
        if n:
            small = work / f"{name.split('.')[0]}_first{n}.csv"
            if not small.exists():
                pd.read_csv(data / name, nrows=n)[["material_id", "cif"]].to_csv(small, index=False)
            inputs.append(str(small))
            limits.append(f"{name} first {n} rows")
    report(f"probe set: the first {len(probe)} of the bundled teacher's {len(crystals)} held-out MP "
           "crystals (its validation slice, rebuilt by _validation_slice.py, cache order)")
    report(f"pre-training corpus: the first {len(corpus)} MP crystals (cache order) of the bundled "
           f"teacher's TRAINING slice (no id and no structure fingerprint shared with the probe set), "
           + ", ".join(limits))
    return teacher, checkpoint, probe, inputs


def _held_out_and_training(data: Path, checkpoint, duplicate_rows):
    """The teacher's held-out MP crystals and, in cache order, the ids of the MP crystals of
    its training slice (same rule as :func:`_validation_slice.teacher_held_out`)."""
    from _validation_slice import ELASTIC_FILE, MP_FILE, teacher_held_out

    held = teacher_held_out(data, checkpoint.training, checkpoint.graph_settings)
    mp = pd.read_csv(data / MP_FILE, usecols=["material_id", "cif"])
    elastic = pd.read_csv(data / ELASTIC_FILE, usecols=["material_id", "cif"])
    inputs = pd.concat([mp, elastic[~elastic.material_id.isin(mp.material_id)]], ignore_index=True)
    inputs = inputs[~inputs.material_id.duplicated()].reset_index(drop=True)
    kept = inputs.drop(index=duplicate_rows(inputs, checkpoint.graph_settings)).reset_index(drop=True)
    num = int(checkpoint.training["num_train_crystals"]) + int(checkpoint.training["num_val_crystals"])
    validation = np.random.default_rng(int(checkpoint.training["run"]["seed"])).random(num)[: len(kept)] \
        < float(checkpoint.training["run"]["validation_fraction"])
    train_ids = kept.material_id[~validation & kept.material_id.isin(mp.material_id)].tolist()
    assert set(kept.material_id[validation]) >= set(held.crystals.material_id)
    return held.crystals, train_ids


def build_cache(inputs: list[str], work: Path, args: argparse.Namespace, report: Report) -> None:
    """The shared graph cache, built once before the timed runs."""
    binary = str(Path(sys.executable).parent / "crysgnn-dgl")
    command = [binary, "pretrain", *inputs, "--out", str(work / "cache_build"), "--cache",
               str(work / "cache"), "--cache-only", "--threads", str(args.threads), "--no-progress"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True,
                            env=os.environ | {"OMP_NUM_THREADS": str(args.threads)})
    if result.returncode:
        sys.exit(f"cache build failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")
    summary = [line for line in result.stdout.splitlines() + result.stderr.splitlines() if " -> " in line]
    report(f"cache: {summary[-1] if summary else '?'} ({time.perf_counter() - started:.0f} s)")


def pretrain(name: str, inputs: list[str], work: Path, args: argparse.Namespace, report: Report) -> dict:
    """One pre-training run (skipped when its last epoch is already there)."""
    out = work / name
    command = ["crysgnn-dgl", "pretrain", *inputs, "--out", str(out), "--cache", str(work / "cache"),
               "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
               "--seed", str(args.seed), "--threads", str(args.threads), "--no-progress", "--verbose",
               *CONFIGS[name][1]]
    shown = " ".join(shlex.quote(c) for c in command)
    timing = out / "wall_time.json"
    if not timing.exists():
        started = time.perf_counter()
        load = machine_load()
        binary = str(Path(sys.executable).parent / "crysgnn-dgl")
        with open(work / f"{name}.log", "w") as log:
            result = subprocess.run([binary, *command[1:]], stdout=log, stderr=subprocess.STDOUT,
                                    env=os.environ | {"OMP_NUM_THREADS": str(args.threads)})
        if result.returncode:
            report(f"{name}: FAILED (exit {result.returncode}): {shown}; see {work / f'{name}.log'}")
            return {}
        timing.write_text(json.dumps({"wall_s": time.perf_counter() - started, "load": load}))
    recorded = json.loads(timing.read_text())
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines() if line.strip()]
    return {"command": shown, **recorded, "history": history, "teacher": export(name, out)}


def export(name: str, out: Path) -> Path:
    """The run's ``last.pt`` as a teacher file under results (for ``crysgnn-dgl bench --teacher``)."""
    from crysgnn_dgl.pretrain import export_teacher

    destination = OUT_DIR / f"{name}_teacher.pt"
    if not destination.exists():
        export_teacher(out / "checkpoints" / "last.pt", destination, {"exported_from": "last.pt"})
    return destination


def main() -> None:
    args = parse_arguments()
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    report = Report(f"objective_ablation/{args.out}")
    started = time.perf_counter()
    teacher, checkpoint, probe, inputs = prepare(work, args, report)
    report(f"budget: {args.epochs} epochs, batch {args.batch_size}, lr {args.lr} cosine, seed {args.seed}, "
           f"{args.threads} torch thread(s); one shared graph cache ({work / 'cache'}); val fraction 0.05")
    report("")

    runs = {}
    if not args.skip_pretrain:
        build_cache(inputs, work, args, report)
        for name in args.configs:
            runs[name] = pretrain(name, inputs, work, args, report)
    else:
        runs = {name: pretrain(name, inputs, work, args, report) for name in args.configs
                if (work / name / "wall_time.json").exists()}
    for name, run in runs.items():
        if not run:
            continue
        last = run["history"][-1]
        report(f"{name}: {CONFIGS[name][0]}")
        report(f"  $ {run['command']}")
        report(f"  wall time {run['wall_s']:.0f} s ({run['load']} at the start); teacher: "
               f"{run['teacher'].relative_to(REPO)}")
        vals = {k: v for k, v in last.items() if k.startswith("val/")}
        report("  final epoch validation: " + ", ".join(f"{k[4:]} {v:.4g}" for k, v in sorted(vals.items())))
    report("")
    (OUT_DIR).mkdir(parents=True, exist_ok=True)
    histories = OUT_DIR / "histories.json"  # every configuration run so far, not only this invocation's
    earlier = json.loads(histories.read_text()) if histories.is_file() else {}
    histories.write_text(json.dumps({**earlier, **{name: run.get("history", []) for name, run in runs.items()}},
                                    indent=1))
    if args.skip_probe:
        report.save()
        return
    probe_all(runs, teacher, checkpoint, probe, work, args, report)
    report(f"time: {time.perf_counter() - started:.0f} s in all (this invocation)")
    print(f"written to {report.save()}")


def probe_all(runs, teacher, checkpoint, probe, work, args, report) -> None:
    """teacher_diagnosis's probes of every run, default initialisation and the bundled teacher."""
    import torch
    from crysgnn_dgl import CrysGNN
    from crysgnn_dgl.checkpoint import model_from_checkpoint
    from teacher_diagnosis import TARGETS, best_layers, diagnose, held_out_graphs, summarise, tables

    started = time.perf_counter()
    graphs, sizes, targets = held_out_graphs(probe, checkpoint.graph_settings)
    models = {}
    torch_runs = []
    for seed in args.init_seeds:
        torch.manual_seed(seed)
        model = CrysGNN(checkpoint.model_settings, checkpoint.graph_settings)
        torch_runs.append(diagnose(model, graphs, sizes, targets, 5, 0))
    models[f"init ({len(args.init_seeds)} seeds)"] = summarise(torch_runs)
    for name, run in runs.items():
        if not run:
            continue
        model, ours = model_from_checkpoint(work / name / "checkpoints" / "last.pt")
        assert ours.graph_settings == checkpoint.graph_settings, "graph settings differ from the teacher's"
        assert ours.model_settings == checkpoint.model_settings, "model settings differ from the teacher's"
        models[name] = summarise([diagnose(model, graphs, sizes, targets, 5, 0)])
    models["bundled teacher"] = summarise([diagnose(teacher, graphs, sizes, targets, 5, 0)])
    spread = {name: name.startswith("init") for name in models}
    report(f"probes: {len(probe)} held-out crystals, {int(sizes.sum())} atoms; checkpoints: "
           "<run>/checkpoints/last.pt; init: torch.manual_seed(s) then CrysGNN(teacher settings), "
           f"s in {args.init_seeds}, mean±sd; bundled teacher = 14 epochs on ~46k crystals (reference)")
    report("")
    for metric, better in (("R2", max), ("MAE", min)):
        report(f"Summary: ridge {metric} of the final (L2) layer and of the best layer "
               "(5-fold CV, out of fold)")
        header = "".join(f"{t + ' ' + k:>22s}" for t in TARGETS for k in ("final", "best"))
        report(f"{'model':18s}{header}")
        for name, layers in models.items():
            cells = []
            for target in TARGETS:
                value = {layer: figures[f"{target} {metric}"] for layer, figures in layers.items()}
                final = list(value)[-1]
                best = better(value, key=lambda layer: value[layer][0])
                cells.append(f"{value[final][0]:.3f}" + (f"±{value[final][1]:.3f}" if spread[name] else ""))
                cells.append(f"{value[best][0]:.3f} ({best})")
            report(f"{name:18s}" + "".join(f"{c:>22s}" for c in cells))
        report("")
    report("default initialisation per seed, final (L2) layer R² (MAE):")
    for seed, run in zip(args.init_seeds, torch_runs):
        final = run[list(run)[-1]]
        report(f"  seed {seed}: " + ", ".join(
            f"{t} {final[f'{t} R2']:.3f} ({final[f'{t} MAE']:.3f})" for t in TARGETS))
    for line in ["", *best_layers(models), "", *tables(models, spread)]:
        report(line)
    report(f"probe time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
