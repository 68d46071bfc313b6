"""``crysgnn-dgl demo`` on a tiny budget: prints the comparison table, writes the parity PNG."""

from __future__ import annotations

import re

import pytest

from _predictor_fixtures import single_thread, teacher_checkpoint  # noqa: F401
from crysgnn_dgl.cli import build_parser, main

pytestmark = pytest.mark.usefixtures("single_thread")


def test_demo_is_registered_and_documented():
    parser = build_parser()
    help_text = parser.format_help()
    assert "demo" in help_text
    args = parser.parse_args(["demo"])
    assert args.epochs >= 1 and args.teacher is None and str(args.out) == "crysgnn_demo"


def test_demo_prints_table_and_writes_parity_plot(tmp_path, capsys):
    teacher = teacher_checkpoint(tmp_path)
    out = tmp_path / "demo_out"
    code = main(["demo", "--epochs", "1", "--limit", "60", "--out", str(out), "--quiet",
                 "--teacher", str(teacher), "--threads", "1"])
    assert code == 0
    printed = capsys.readouterr().out
    rows = {m.group(1): float(m.group(2)) for m in re.finditer(r"^(vanilla|distilled)\s+([0-9.]+)", printed, re.M)}
    assert set(rows) == {"vanilla", "distilled"} and all(v > 0 for v in rows.values())
    assert re.search(r"relative gain of distillation: [+-][0-9.]+ %", printed)
    assert re.search(r"^vanilla\s+\S+\s+1\s+1\s+48\s+6\s", printed, re.M)  # best epoch, epochs, train, test
    png = out / "cgcnn_parity.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
    assert png.stat().st_size > 10_000


def test_demo_reports_a_missing_teacher_file(tmp_path):
    from crysgnn_dgl import CheckpointError

    with pytest.raises((CheckpointError, FileNotFoundError), match="nope.pt"):
        main(["demo", "--epochs", "1", "--limit", "20", "--teacher", str(tmp_path / "nope.pt"),
              "--out", str(tmp_path), "--quiet"])


def test_demo_repeats_report_each_seed_and_the_mean(tmp_path, capsys):
    teacher = teacher_checkpoint(tmp_path)
    code = main(["demo", "--epochs", "1", "--limit", "40", "--repeats", "2", "--quiet",
                 "--teacher", str(teacher), "--out", str(tmp_path / "out")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "seed 0" in printed and "seed 1" in printed
    seeds = re.findall(r"^([01])\s+([0-9.]+)\s+([0-9.]+)\s+([+-][0-9.]+)%", printed, re.M)
    assert [s[0] for s in seeds] == ["0", "1"]
    mean = re.search(r"^mean\s+([0-9.]+)\s+([0-9.]+)\s+([+-][0-9.]+)%", printed, re.M)
    assert mean is not None
    assert float(mean.group(1)) == pytest.approx(sum(float(s[1]) for s in seeds) / 2, abs=1e-4)
