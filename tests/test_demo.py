"""``crysgnn-dgl demo`` on a tiny budget: paired seeds through the harness, the summary
with its confidence interval printed, results and plots written."""

from __future__ import annotations

import csv
import re

import pytest

from crysgnn_dgl.cli import build_parser, main

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_demo_is_registered_and_documented():
    parser = build_parser()
    assert "demo" in parser.format_help()
    args = parser.parse_args(["demo"])
    assert args.seeds >= 5 and args.teacher is None and str(args.out) == "crysgnn_demo"


def test_demo_prints_the_paired_summary_and_writes_results(tmp_path, capsys):
    out = tmp_path / "demo_out"
    code = main(["demo", "--limit", "60", "--train-size", "16", "--seeds", "2", "--epochs", "2",
                 "--jobs", "1", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert re.search(r"\| distilled · crysgnn-denoise · .* \| vanilla \| [+-][0-9.]+ % \(\d/2\) \| \[", printed)
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((r["mode"], r["seed"]) for r in rows) == [
        ("distilled", "0"), ("distilled", "1"), ("vanilla", "0"), ("vanilla", "1")]
    png = next(out.glob("parity_*.png"))
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_demo_reports_a_missing_teacher_file(tmp_path, capsys):
    code = main(["demo", "--limit", "20", "--teacher", str(tmp_path / "nope.pt"), "--out", str(tmp_path)])
    assert code == 2
    assert "nope.pt" in capsys.readouterr().err
