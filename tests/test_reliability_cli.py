"""Issue 11, command line and embedding outputs: one writer per output (9), options checked
before outputs are touched (10), NaN weights refused (11), one-line errors with --debug
(13), writability first, progress and notes (14), defaults and examples in --help (15)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _pretrain_fixtures import BAD_ROWS, write_corpus_csv

from crysgnn_dgl import CrysGNN, save_checkpoint
from crysgnn_dgl.cli import main
from crysgnn_dgl.cli.output_lock import exclusive_output

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    return {
        "with_bad": write_corpus_csv(folder / "with_bad.csv", rows=6),
        "clean": write_corpus_csv(folder / "clean.csv", rows=4, bad=False),
    }


@pytest.fixture(scope="module")
def good_output(tmp_path_factory, inputs):
    out = tmp_path_factory.mktemp("good") / "emb.npz"
    assert main(["embed", str(inputs["with_bad"]), "--out", str(out)]) == 0
    return out


def embed(*args: str) -> int:
    return main(["embed", *map(str, args)])


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_options_are_checked_before_the_output_is_touched(tmp_path, inputs, good_output, capsys):
    out = tmp_path / "emb.npz"
    out.write_bytes(good_output.read_bytes())
    before = out.read_bytes()
    assert embed(inputs["clean"], "--out", out, "--batch-size", "0") == 2
    assert "--batch-size must be >= 1, got 0" in one_error_line(capsys)
    assert out.read_bytes() == before and not Path(f"{out}.skipped.tsv").exists()


def test_a_rerun_replaces_the_output_as_a_whole(tmp_path, inputs):
    out = tmp_path / "emb.npz"
    assert embed(inputs["with_bad"], "--out", out) == 0
    report = Path(f"{out}.skipped.tsv")
    assert set(np.load(out)["skipped_ids"]) == set(BAD_ROWS) and report.is_file()
    assert embed(inputs["clean"], "--out", out) == 0
    assert not report.exists() and len(np.load(out)["skipped_ids"]) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries, no lock


def test_a_second_writer_is_refused_while_the_first_holds_the_output(tmp_path, inputs, good_output, capsys):
    out = tmp_path / "emb.npz"
    out.write_bytes(good_output.read_bytes())
    with exclusive_output(out):
        assert embed(inputs["clean"], "--out", out) == 2
    error = one_error_line(capsys)
    assert f"{out} is being written by another crysgnn-dgl process (pid " in error
    assert out.read_bytes() == good_output.read_bytes()


def test_two_concurrent_embed_processes_leave_one_consistent_output(tmp_path, inputs):
    out = tmp_path / "emb.npz"
    runs = [
        subprocess.Popen([sys.executable, "-m", "crysgnn_dgl", "embed", str(inputs[name]), "--out", str(out)],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("with_bad", "clean")
    ]
    codes = [run.wait(timeout=240) for run in runs]
    errors = [run.stderr.read() for run in runs]
    assert set(codes) <= {0, 2} and 0 in codes, errors
    for code, err in zip(codes, errors):
        assert code == 0 or "is being written by another crysgnn-dgl process" in err
    archive = np.load(out)
    report = Path(f"{out}.skipped.tsv")
    if len(archive["skipped_ids"]):  # the run with bad rows wrote last: its report is there
        listed = [line.split("\t")[0] for line in report.read_text().splitlines()[1:]]
        assert listed == archive["skipped_ids"].tolist() and set(listed) == set(BAD_ROWS)
    else:
        assert not report.exists() and len(archive["ids"]) == 4


def test_nan_weights_are_refused(tmp_path, inputs, capsys):
    model = CrysGNN()
    with torch.no_grad():
        model.convs[0].fc_full.weight[0, 0] = float("nan")
    checkpoint = save_checkpoint(tmp_path / "nan.pt", model)
    assert embed(inputs["clean"], "--out", tmp_path / "e.npz", "--checkpoint", checkpoint) == 2
    error = one_error_line(capsys)
    assert "nan.pt" in error and "NaN or infinite" in error and "convs.0.fc_full.weight" in error
    assert not (tmp_path / "e.npz").exists()


@pytest.mark.parametrize(
    "case, args, expected",
    [
        ("missing input", ["{tmp}/nope.csv", "--out", "{tmp}/e.npz"], "input(s) not found: {tmp}/nope.csv"),
        ("file in the way of --out", ["{csv}", "--out", "{tmp}/file/e.npz"], "--out {tmp}/file: a file is in the way"),
        ("negative batch size", ["{csv}", "--out", "{tmp}/e.npz", "--batch-size", "-3"], "--batch-size must be >= 1"),
        ("unknown device", ["{csv}", "--out", "{tmp}/e.npz", "--device", "tpu9"], "--device 'tpu9' is not a device name"),
        ("missing checkpoint", ["{csv}", "--out", "{tmp}/e.npz", "--checkpoint", "{tmp}/t.pt"], "input(s) not found: {tmp}/t.pt"),
    ],
)
def test_errors_are_one_line_and_debug_shows_the_traceback(case, args, expected, tmp_path, inputs, capsys):
    (tmp_path / "file").write_text("x")
    filled = [a.format(tmp=tmp_path, csv=inputs["clean"]) for a in args]
    assert embed(*filled) == 2
    error = one_error_line(capsys)
    assert error.startswith("crysgnn-dgl embed: error: ") and expected.format(tmp=tmp_path) in error, error
    assert embed(*filled, "--debug") == 2
    assert "Traceback (most recent call last)" in capsys.readouterr().err
    assert not (tmp_path / "e.npz").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line(tmp_path, inputs, capsys):
    assert embed(inputs["clean"], "--out", tmp_path / "e.npz", "--device", "cuda") == 2
    assert "--device cuda: CUDA is not available on this machine" in one_error_line(capsys)
    assert main(["pretrain", str(inputs["clean"]), "--out", str(tmp_path / "r"), "--accelerator", "gpu"]) == 2
    assert "--accelerator cuda: CUDA is not available" in one_error_line(capsys)
    assert not (tmp_path / "r").exists()


def test_embed_shows_progress_and_the_featurisers_notes(tmp_path, padded_structure, capsys):
    folder = tmp_path / "cifs"
    folder.mkdir()
    padded_structure.to(filename=str(folder / "stretched.cif"))
    out = tmp_path / "e.npz"
    assert embed(folder, "--out", out) == 0
    err = capsys.readouterr().err
    assert "1 note(s) on embedded structures" in err and "stretched.cif: 2 atom(s) have fewer than 12 neighbours" in err
    archive = np.load(out)
    assert archive["note_ids"].tolist() == ["stretched.cif"] and "padded" in archive["notes"][0]


def test_progress_callback_counts_batches(inputs):
    from crysgnn_dgl import load_teacher
    from crysgnn_dgl.embedding import embed_sources
    from crysgnn_dgl.pretrain import open_source

    seen = []
    embed_sources(load_teacher(), [open_source(inputs["with_bad"])], batch_size=3, progress=lambda *c: seen.append(c))
    assert seen == [(3, 0), (5, 1), (6, 2)]  # rows: 5 good, 1 bad, 1 good, 1 bad


def test_pretrain_prints_the_skipped_count_and_report(tmp_path, inputs, capsys):
    out = tmp_path / "run"
    assert main(["pretrain", str(inputs["with_bad"]), "--out", str(out), "--cache-only", "--no-progress"]) == 0
    assert f"2 input(s) skipped as unreadable or invalid; reasons in {out / 'cache' / 'report.tsv'}" in capsys.readouterr().err


@pytest.mark.parametrize("command, defaults", [("embed", ["(default: 64)", "(default: cpu)"]),
                                               ("pretrain", ["(default: 128)", "(default: 20)", "(default: 0.05)"])])
def test_help_shows_defaults_and_examples(command, defaults, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "examples:" in text and f"crysgnn-dgl {command} " in text
    for default in defaults:
        assert default in text
