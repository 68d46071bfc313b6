"""Re-key a `crysgnn-dgl bench` store after CrysGNN teachers came to be keyed by their
weights and settings instead of their checkpoint file's bytes.

Runs stored before that change carry, as ``teacher_sha256``, the SHA-256 of the checkpoint
file. For every checkpoint given (by default: the shipped CrysGNN teachers and every
``*.pt`` under ``benchmarks/results``), the old digest is mapped to the new one
(:func:`crysgnn_dgl.bench.spec.teacher_digest`); each stored run whose old key checks out
against its stored configuration and whose digest is in the map is renamed to its new
key. The run index (``invocations.jsonl``), the last sweep's ``config.json`` and the report
are updated. Runs of named teachers (M3GNet, CHGNet) and vanilla runs keep their keys.
Idempotent: a second pass finds nothing to do.

    python benchmarks/rekey_store.py benchmarks/results/bench/main benchmarks/results/bench/ablation
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

from crysgnn_dgl.bench.report import write_report
from crysgnn_dgl.bench.spec import teacher_digest
from crysgnn_dgl.bench.sweep import stored_results
from crysgnn_dgl.teacher import BUNDLED_TEACHERS, bundled_teacher_path

ROOT = Path(__file__).resolve().parents[1]


def run_key(spec: dict) -> str:
    """The key :meth:`RunSpec.key` gives the configuration ``spec``."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=list).encode()).hexdigest()[:20]


def digest_map(checkpoints: list[Path]) -> dict[str, str]:
    """Old digest (file bytes) → new digest (weights and settings), for each checkpoint."""
    mapping = {}
    for path in checkpoints:
        old = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        mapping[old] = teacher_digest(str(path))
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {old} -> {mapping[old]}")
    return mapping


def rekey_store(store: Path, mapping: dict[str, str]) -> dict[str, str]:
    """Rename the runs of ``store`` whose teacher digest is in ``mapping``; old → new key."""
    renamed, unknown, stale = {}, set(), 0
    for path in sorted((store / "runs").glob("*.json")):
        record = json.loads(path.read_text())
        spec = record["spec"]
        if run_key(spec) != path.stem:
            stale += 1
            continue
        digest = spec.get("teacher_sha256", "")
        if digest in mapping.values():  # keyed already by weights and settings
            continue
        if digest not in mapping:
            if digest and ":" not in spec["teacher"] and spec["teacher"] not in ("m3gnet", "chgnet"):
                unknown.add((spec["teacher"], digest))
            continue
        spec["teacher_sha256"] = mapping[digest]
        record["key"] = run_key(spec)
        target = path.with_name(f"{record['key']}.json")
        partial = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        partial.write_text(json.dumps(record, default=float))
        os.replace(partial, target)
        path.unlink()
        renamed[path.stem] = record["key"]
    print(f"{store}: {len(renamed)} run(s) re-keyed; {stale} whose key does not match their configuration left alone")
    for teacher, digest in sorted(unknown):
        print(f"  not re-keyed (checkpoint not given): {teacher} {digest}")
    return renamed


def rewrite_index(store: Path, mapping: dict[str, str], renamed: dict[str, str]) -> None:
    """Update ``invocations.jsonl`` (keys) and ``config.json`` (digests), then the report."""
    index = store / "invocations.jsonl"
    if index.is_file():
        lines = []
        for line in index.read_text().splitlines():
            entry = json.loads(line)
            entry["keys"] = [renamed.get(key, key) for key in entry.get("keys", [])]
            lines.append(json.dumps(entry))
        index.write_text("\n".join(lines) + "\n")
    config = store / "config.json"
    if config.is_file():
        data = json.loads(config.read_text())
        for spec in data.get("specs", []):
            spec["teacher_sha256"] = mapping.get(spec.get("teacher_sha256", ""), spec.get("teacher_sha256", ""))
        config.write_text(json.dumps(data, indent=1))
    write_report(stored_results(store), store)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stores", nargs="+", type=Path)
    parser.add_argument("--checkpoints", nargs="*", type=Path,
                        help="CrysGNN checkpoints whose runs to re-key (default: the shipped ones and "
                             "every *.pt under benchmarks/results)")
    args = parser.parse_args()
    checkpoints = args.checkpoints or [
        *(bundled_teacher_path(name) for name in BUNDLED_TEACHERS),
        *sorted((ROOT / "benchmarks" / "results").rglob("*.pt")),
    ]
    mapping = digest_map(checkpoints)
    for store in args.stores:
        rewrite_index(store, mapping, rekey_store(store, mapping))


if __name__ == "__main__":
    main()
