"""Helpers shared by the benchmark scripts: data location, result files, small caches."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO.parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"


def require_data() -> Path:
    if not DATA_DIR.is_dir():
        sys.exit(f"benchmark needs the real data in {DATA_DIR} (../shared/data next to the repository)")
    return DATA_DIR


def machine_load() -> str:
    """The 1-minute load average against the core count (other processes share the CPUs)."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


class Report:
    """Prints lines and keeps them for the result file, headed by the producing command."""

    def __init__(self, name: str):
        self.path = RESULTS / name
        script = Path(sys.argv[0]).resolve()
        try:
            script = script.relative_to(REPO)
        except ValueError:
            pass
        arguments = " ".join(shlex.quote(a) for a in sys.argv[1:])
        self.lines = [f"$ python {script} {arguments}".rstrip(), ""]

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def save(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("\n".join(self.lines) + "\n")
        return self.path


def small_corpus_sources(mp_rows: int = 512, other_rows: int = 96):
    """Real crystals from every pre-training file (a benchmark-sized slice)."""
    from crysgnn_dgl.pretrain import open_source

    data = require_data()
    return [
        open_source(data / "mp_cgcnn36k.csv.xz", limit=mp_rows),
        open_source(data / "perov5.csv.xz", limit=other_rows),
        open_source(data / "carbon24.csv.xz", limit=other_rows),
        open_source(data / "matbench_dielectric.json.gz", limit=other_rows),
    ]
