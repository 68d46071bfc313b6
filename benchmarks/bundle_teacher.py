"""Ship a pre-training run as one of the package's CrysGNN teachers: export the checkpoint
(with the depth and KD weight chosen for it on validation) to ``crysgnn_dgl/data``, and
write its model card from the run's own records, the per-layer probes
(``teacher_diagnosis.py``) and its distillation runs in the benchmark store.

    python benchmarks/bundle_teacher.py --name crysgnn-denoise --run runs/denoise \
        --depth 1 --kd-weight 10 --diagnosis benchmarks/results/pretrain_denoise/teacher_diagnosis.txt

``--refresh-gains`` rewrites only the card's distillation-gains section from the store
(no pre-training folder needed), after new benchmark runs:

    python benchmarks/bundle_teacher.py --name crysgnn-denoise --refresh-gains
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from _common import REPO, RESULTS

DATA = REPO / "crysgnn_dgl" / "data"
OBJECTIVES = ("feature", "connectivity", "space_group", "contrastive", "total")
SOURCE_OF = (  # id pattern -> corpus file
    (re.compile(r"^mp-"), "mp_cgcnn36k / mp_elastic3k"),
    (re.compile(r"^\d+$"), "perov5"),
    (re.compile(r"^C-"), "carbon24"),
    (re.compile(r"^matbench_dielectric"), "matbench_dielectric"),
)


def source_of(structure_id: str) -> str:
    for pattern, name in SOURCE_OF:
        if pattern.search(structure_id):
            return name
    return "other"


def corpus_table(cache: Path, validation_fraction: float, seed: int) -> tuple[list[str], dict]:
    from crysgnn_dgl.pretrain import GraphCache

    index = json.loads((cache / "index.json").read_text())
    build = json.loads((cache / "build.json").read_text())
    inputs = Counter()
    for sidecar in sorted((cache / "shards").glob("*.json")):
        record = json.loads(sidecar.read_text())
        for sid in record["ids"] + [s for s, _ in record["skipped"]]:
            inputs[source_of(sid)] += 1
    graph_cache = GraphCache(cache)
    ids = graph_cache.structure_ids()
    train, val = graph_cache.split(validation_fraction, seed)
    kept_train = Counter(source_of(ids[p]) for p in train)
    kept_val = Counter(source_of(ids[p]) for p in val)
    lines = ["| source | inputs | kept (unique) | pre-training slice | validation slice |", "|---|---|---|---|---|"]
    for name in sorted(inputs):
        lines.append(f"| {name} | {inputs[name]} | {kept_train[name] + kept_val[name]} | {kept_train[name]} | {kept_val[name]} |")
    lines.append(f"| **all** | {sum(inputs.values())} | {len(ids)} | {len(train)} | {len(val)} |")
    stats = {
        "files": [Path(s["path"]).name for s in build["sources"]],
        "inputs": index["num_inputs"], "skipped": index["num_skipped"],
        "duplicates": index["num_duplicates"], "crystals": index["num_crystals"],
    }
    return lines, stats


def epoch_seconds(log: Path) -> dict[int, float]:
    seconds = {}
    if log.is_file():
        for match in re.finditer(r"^epoch (\d+) \((\d+) s", log.read_text(errors="replace"), re.M):
            seconds[int(match.group(1))] = float(match.group(2))
    return seconds


def active_objectives(objectives: dict) -> dict[str, float]:
    """``objective -> weight`` for the objectives trained with a non-zero weight."""
    return {key[: -len("_weight")]: value for key, value in objectives.items()
            if key.endswith("_weight") and not isinstance(value, bool) and value}


def probe_sentences(diagnosis: str, layer: str) -> str:
    """Teacher vs default initialisation at ``layer`` for each probe target (ridge R²),
    read from the probe table of ``teacher_diagnosis.py``."""
    lines = diagnosis.split("Ridge probes", 1)[1].splitlines()
    header = re.split(r"\s{2,}", next(line for line in lines if line.startswith("model")).strip())
    columns = {name[: -len(" R2")]: i for i, name in enumerate(header) if name.endswith(" R2")}
    rows = {}
    for line in lines:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == len(header) and cells[1] == layer:
            rows.setdefault(cells[0].split()[0], cells)
    sentences = []
    for target, i in columns.items():
        ours, init = rows["teacher"][i], rows["init"][i]
        verdict = "above" if float(ours) > float(init.split("±")[0]) else "not above"
        sentences.append(f"{target} R² {ours} vs {init} at initialisation ({verdict})")
    return "; ".join(sentences)


def distillation_summary(store: Path, name: str) -> str:
    """The store's runs with this teacher, and the vanilla runs of the same cells."""
    from crysgnn_dgl.bench.report import summary_markdown
    from crysgnn_dgl.bench.stats import CELL
    from crysgnn_dgl.bench.sweep import stored_results

    results = stored_results(store) if store.is_dir() else []
    mine = [r for r in results if r["teacher"] == name]
    cells_of_mine = {tuple(r[k] for k in CELL) for r in mine}
    vanilla = [r for r in results if r["mode"] == "vanilla" and tuple(r[k] for k in CELL) in cells_of_mine]
    if not mine:
        return "(no runs with this teacher in the store yet)"
    text = summary_markdown(vanilla + mine, title="x")
    return text.split("\n", 2)[2].replace("\n## ", "\n### ")


def main() -> None:
    from crysgnn_dgl.teacher import BUNDLED_TEACHERS, DEFAULT_TEACHER

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, choices=sorted(BUNDLED_TEACHERS))
    parser.add_argument("--run", help="the `crysgnn-dgl pretrain --out` folder")
    parser.add_argument("--refresh-gains", action="store_true",
                        help="only rewrite the existing card's distillation-gains section from --store")
    parser.add_argument("--checkpoint", default="best", help="best, last or epoch_XXX")
    parser.add_argument("--depth", type=int, default=None, help="recommended distillation depth (convolutions)")
    parser.add_argument("--kd-weight", type=float, default=None, help="recommended λ")
    parser.add_argument("--diagnosis", default=None,
                        help="teacher_diagnosis.py output for these weights (default: run it, ~10 min)")
    parser.add_argument("--store", default=str(RESULTS / "bench" / "main"), help="benchmark store")
    parser.add_argument("--command", default=None, help="the pre-training command (default: from the run's config)")
    args = parser.parse_args()
    if args.refresh_gains:
        refresh_gains(DATA / f"MODEL_CARD_{args.name}.md", Path(args.store), args.name)
        return
    if not args.run:
        parser.error("--run is required unless --refresh-gains")
    from crysgnn_dgl import read_checkpoint
    from crysgnn_dgl.pretrain import export_teacher

    run = Path(args.run)
    source = run / "checkpoints" / f"{args.checkpoint}.pt"
    training = read_checkpoint(source).training
    extra: dict = {"exported_from": source.name}
    recommended = {k: v for k, v in (("depth", args.depth), ("kd_weight", args.kd_weight)) if v is not None}
    if recommended:
        extra["distillation"] = {**recommended, "chosen_by": "validation gain of `crysgnn-dgl bench` (docs/benchmarks.md)"}
    destination = export_teacher(source, DATA / BUNDLED_TEACHERS[args.name], extra)
    training = {**training, **extra}
    diagnosis_path = Path(args.diagnosis).resolve() if args.diagnosis else RESULTS / f"{args.name}_diagnosis.txt"
    if not args.diagnosis:
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "teacher_diagnosis.py"),
                        "--checkpoint", str(destination), "--out", diagnosis_path.name],
                       check=True, cwd=str(REPO))
    diagnosis = diagnosis_path.read_text()
    card = model_card(args, run, source, destination, training, diagnosis, diagnosis_path, DEFAULT_TEACHER)
    card_path = DATA / f"MODEL_CARD_{args.name}.md"
    card_path.write_text(card)
    print(f"bundled {destination} ({destination.stat().st_size} bytes) and wrote {card_path}")


GAINS_HEADING = "## Distillation gains"


def refresh_gains(card_path: Path, store: Path, name: str) -> None:
    """Replace the body of the card's distillation-gains section with the store's runs."""
    card = card_path.read_text()
    start = card.index(GAINS_HEADING)
    body_start = card.index("\n\n", start) + 2
    end = card.index("\n## ", body_start)
    card_path.write_text(card[:body_start] + distillation_summary(store, name) + "\n" + card[end:])
    print(f"refreshed the distillation gains of {card_path}")


def model_card(args, run: Path, source: Path, destination: Path, training: dict, diagnosis: str,
               diagnosis_path: Path, default: str) -> str:
    from crysgnn_dgl.pretrain.callbacks import read_history

    history = read_history(run)
    seconds = epoch_seconds(run / "log.txt")
    cache = run / "cache" if (run / "cache").is_dir() else Path(training["cache"])
    table, stats = corpus_table(cache, training["run"]["validation_fraction"], training["run"]["seed"])
    o, opt, r, metrics = training["objectives"], training["optimizer"], training["run"], training["metrics"]
    objectives = active_objectives(o)
    epochs, planned = training["epochs_completed"], r["max_epochs"]
    weights = " ".join(f"--{k.replace('_', '-')} {v:g}" for k, v in o.items() if k.endswith("_weight"))
    command = args.command or (
        "crysgnn-dgl pretrain ../shared/data/mp_cgcnn36k.csv.xz ../shared/data/mp_elastic3k.csv.xz "
        "../shared/data/perov5.csv.xz ../shared/data/carbon24.csv.xz ../shared/data/matbench_dielectric.json.gz "
        f"--out runs/{run.name} --epochs {planned} --batch-size {r['batch_size']} --lr {opt['learning_rate']:g} "
        f"--seed {r['seed']} --val-fraction {r['validation_fraction']:g} --threads {r['num_threads']} {weights}"
    )
    names = [*objectives, "total"] if len(objectives) > 1 else list(objectives)
    per_epoch = ["| epoch | train total | " + " | ".join(f"val {n}" for n in names) + " | time (s) |",
                 "|---|---|" + "---|" * len(names) + "---|"]
    for h in history:
        per_epoch.append(f"| {h['epoch']} | {h['train/total']:.4f} | "
                         + " | ".join(f"{h[f'val/{n}']:.4f}" for n in names)
                         + f" | {seconds.get(h['epoch'], float('nan')):.0f} |")
    final = ["| objective | weight | train (epoch mean) | validation |", "|---|---|---|---|"]
    for n in names:
        final.append(f"| {n} | {objectives.get(n, '—')} | {metrics[f'train/{n}']:.4f} | {metrics[f'val/{n}']:.4f} |")
    accuracy = (f"\nValidation slice: space-group accuracy **{metrics['val/space_group_accuracy']:.3f}**, "
                f"crystal-system accuracy **{metrics['val/crystal_system_accuracy']:.3f}** (chance: 1/230 and 1/7).\n"
                if objectives.get("space_group") else "")
    recommended = training.get("distillation") or {}
    depth = recommended.get("depth")
    layer = f"conv{depth}" if depth else "conv5 + L2"  # the release architecture: five convolutions
    loading = (f"`crysgnn_dgl.load_teacher()` with no argument, or `load_teacher(\"{args.name}\")`"
               if args.name == default else f"`crysgnn_dgl.load_teacher(\"{args.name}\")`")
    first = "its first convolution" if depth == 1 else f"its first {depth} convolutions"
    distil = (f"Distilled, by default, from the output of {first} (L2-normalised), "
              f"at λ = {recommended.get('kd_weight', 1):g}: both recorded in the checkpoint "
              f"(`training[\"distillation\"]`) and used by `load_teacher` and `attach_teacher` unless "
              "`depth=` / `delta=` say otherwise; chosen on validation (`docs/benchmarks.md`)."
              if depth else "Distilled from its last convolution (L2-normalised).")
    return f"""# CrysGNN teacher `{args.name}` (crysgnn_dgl)

{loading} loads `{destination.name}` from this folder: a CrysGNN (release architecture: 92-d
CGCNN atom features, 64-d embeddings, five CGCNN convolutions, neighbours within 8 Å, 12 per
atom, 41 Gaussians) pre-trained without property labels on ≈48k public crystals. Weights
only, float32, {destination.stat().st_size / 1024:.0f} KB. {distil}

Trained for {epochs} of {planned} planned epochs; checkpoint `{source.name}` (epoch index
{training['epoch']}, {training['global_step']} optimiser steps).

## Data

Files from `../shared/data`: {', '.join(stats['files'])} — {stats['inputs']} inputs,
{stats['skipped']} unreadable, {stats['duplicates']} duplicates removed (same id, or same
formula + space group + volume per atom to 0.01 Å³ + mean neighbour distance to 0.001 Å),
leaving {stats['crystals']} unique crystals. A seeded random {r['validation_fraction']:.0%} validation
slice (seed {r['seed']}) was held out from pre-training.

{chr(10).join(table)}

Sources and licences: Materials Project (CC BY 4.0) as curated for CGCNN/CrysXPP (MIT),
perov5 and carbon24 as packed by CDVAE (MIT), matbench v0.1 dielectric (BSD-style); see
`../shared/data/README.md` of the project.

## Hyper-parameters

* Objectives (weight): {', '.join(f'{k} ({v:g})' for k, v in objectives.items())}; every other objective
  at weight 0.{f" Denoising: Gaussian noise σ = {o['denoising_sigma']:g} Å on Cartesian positions, edge set fixed, each edge's clean distance (z-scored per crystal) predicted from the noised graph, squared error." if objectives.get('denoising') else ''}
* Adam, learning rate {opt['learning_rate']:g}, {opt['schedule']} decay to {opt['final_lr_fraction']:g}× over
  {planned} epochs, weight decay {opt['weight_decay']:g}.
* Batch {r['batch_size']} crystals drawn from a random window of {r.get('shuffle_window', 1)} cache shards, seed
  {r['seed']}, fp32 on CPU, {r['num_threads']} torch thread(s).

## Results

Epoch {training['epoch']} (the exported checkpoint):

{chr(10).join(final)}
{accuracy}
Per epoch:

{chr(10).join(per_epoch)}

## What the teacher knows: probes on held-out crystals

Ridge probes (5-fold out-of-fold R²) on mean-pooled per-layer outputs of the Materials
Project crystals held out from pre-training, against the same architecture at default
initialisation. At the distilled layer ({layer}): {probe_sentences(diagnosis, layer)}.
Full output (`{diagnosis_path.relative_to(REPO) if diagnosis_path.is_relative_to(REPO) else diagnosis_path.name}`):

```
{diagnosis.strip()}
```

{GAINS_HEADING} (`crysgnn-dgl bench`, store `{Path(args.store).relative_to(REPO) if Path(args.store).is_relative_to(REPO) else args.store}`)

{distillation_summary(Path(args.store), args.name)}

## Reproduce

```
{command}
python benchmarks/bundle_teacher.py --name {args.name} --run runs/{run.name} --checkpoint {args.checkpoint}{f' --depth {depth}' if depth else ''}{f" --kd-weight {recommended['kd_weight']:g}" if 'kd_weight' in recommended else ''}
```

An interrupted pre-training resumes from its last finished epoch when the same command is
started again.

## Limitations

* ≈48k crystals and a CPU budget: far less than the CrysGNN release's 800k structures.
* Validation crystals come from the same distribution (a random slice): in-distribution figures.
* The distillation gains above are for the predictors, tasks and training-set sizes listed;
  `docs/benchmarks.md` has the rest, including where distillation does not help.
"""


if __name__ == "__main__":
    main()
