"""Issue 11, pre-training: a kill at every checkpoint write point (2), cache workers that
die with their parent (3), one-atom batches (4), inputs checked before anything is
written (5) and runs with no usable input (6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import MP_IDS, _table
from crysgnn_dgl import read_checkpoint
from crysgnn_dgl.cli import main
from crysgnn_dgl.pretrain import build_cache, open_source
from crysgnn_dgl.pretrain.callbacks import read_history
from crysgnn_dgl.pretrain.settings import OptimizerSettings, PretrainSettings
from crysgnn_dgl.pretrain.sources import StructureSource
from crysgnn_dgl.pretrain.trainer import pretrain

OPTIMIZER = OptimizerSettings(learning_rate=3e-3)
WRITE_POINTS = ("lightning_last.ckpt", "epoch_000.pt", "best.pt", "last.pt", "history.jsonl")


def training(epochs: int, **changes) -> PretrainSettings:
    values = dict(max_epochs=epochs, batch_size=4, validation_fraction=0.25, seed=3, num_threads=1)
    return PretrainSettings(**{**values, **changes})


def write_csv(path: Path, ids=MP_IDS) -> Path:
    table = _table("mp_cgcnn36k.csv.xz", 400).set_index("material_id")
    pd.DataFrame({"material_id": list(ids), "cif": [table.loc[i, "cif"] for i in ids]}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    build_cache([open_source(write_csv(folder / "in.csv"))], folder / "cache", workers=0, progress=False)
    return folder / "cache"


@pytest.fixture(scope="module")
def uninterrupted(tiny_cache, tmp_path_factory):
    runs = {}
    for epochs in (1, 2):
        folder = tmp_path_factory.mktemp(f"whole{epochs}")
        pretrain(tiny_cache, folder, optimizer=OPTIMIZER, training=training(epochs), progress_bar=False)
        runs[epochs] = folder
    return runs


class Killed(BaseException):
    """Stands for the process dying at a write point (nothing catches a BaseException)."""


KILL: dict = {"name": None}


def _audit(event: str, args: tuple) -> None:
    """Interrupts the first write of ``KILL['name']``: its rename into place, or the open
    that appends to the history."""
    name = KILL["name"]
    if name is None:
        return
    target = args[1] if event == "os.rename" else args[0] if event == "open" and len(args) > 1 and args[1] == "a" else None
    if isinstance(target, (str, os.PathLike)) and Path(target).name == name:
        KILL["name"] = None
        raise Killed(name)


@pytest.fixture(scope="module")
def kill_switch():
    sys.addaudithook(_audit)  # cannot be removed; idle while KILL["name"] is None
    yield KILL
    KILL["name"] = None


def assert_complete(folder: Path, reference: Path, epochs: int) -> None:
    checkpoints = folder / "checkpoints"
    for epoch in range(epochs):
        assert read_checkpoint(checkpoints / f"epoch_{epoch:03d}.pt").training["epoch"] == epoch
    last, expected = read_checkpoint(checkpoints / "last.pt"), read_checkpoint(reference / "checkpoints" / "last.pt")
    assert last.training["epoch"] == epochs - 1
    for name, value in expected.state_dict.items():
        assert torch.allclose(last.state_dict[name].float(), value.float(), atol=1e-5, rtol=1e-4), name
    best = read_checkpoint(checkpoints / "best.pt").training
    assert best["epoch"] == read_checkpoint(reference / "checkpoints" / "best.pt").training["epoch"]
    history = read_history(folder)
    assert [h["epoch"] for h in history] == list(range(epochs))
    for got, want in zip(history, read_history(reference)):
        assert got["val/total"] == pytest.approx(want["val/total"], rel=1e-4)
    assert not list(checkpoints.glob(".*tmp*")) and not list(folder.glob(".*tmp*"))


@pytest.mark.parametrize("epochs", [1, 2])
@pytest.mark.parametrize("point", WRITE_POINTS)
def test_a_kill_at_any_write_point_is_recovered_on_resume(point, epochs, tiny_cache, uninterrupted, kill_switch, tmp_path):
    kill_switch["name"] = point
    with pytest.raises(Killed):
        pretrain(tiny_cache, tmp_path, optimizer=OPTIMIZER, training=training(epochs), progress_bar=False)
    (tmp_path / "checkpoints").mkdir(exist_ok=True)
    (tmp_path / "checkpoints" / ".last.pt.tmp-999999").write_bytes(b"")  # what a killed torch.save leaves
    result = pretrain(tiny_cache, tmp_path, optimizer=OPTIMIZER, training=training(epochs), progress_bar=False)
    assert result.epochs_completed == epochs and result.last_checkpoint.is_file()
    assert result.metrics["val/total"] > 0
    assert_complete(tmp_path, uninterrupted[epochs], epochs)


KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from crysgnn_dgl.pretrain.settings import OptimizerSettings, PretrainSettings
    from crysgnn_dgl.pretrain.trainer import pretrain

    def die(event, args):
        if event == "os.rename" and Path(args[1]).name == "last.pt":
            os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(die)
    training = PretrainSettings(max_epochs=1, batch_size=4, validation_fraction=0.25, seed=3, num_threads=1)
    pretrain(sys.argv[1], sys.argv[2], optimizer=OptimizerSettings(learning_rate=3e-3), training=training,
             progress_bar=False)
    """
)


def test_sigkill_before_last_pt_of_the_final_epoch(tiny_cache, uninterrupted, tmp_path):
    """The issue's case, with a real SIGKILL: Lightning's state is written, last.pt not."""
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN)
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, str(script), str(tiny_cache), str(out)], capture_output=True, timeout=240)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert (out / "lightning_last.ckpt").is_file() and not (out / "checkpoints" / "last.pt").exists()
    result = pretrain(tiny_cache, out, optimizer=OPTIMIZER, training=training(1), progress_bar=False)
    assert result.last_checkpoint.is_file()
    assert_complete(out, uninterrupted[1], 1)


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


BUILD = textwrap.dedent(
    """
    import sys
    from crysgnn_dgl.pretrain import build_cache, open_source
    build_cache([open_source(sys.argv[1], limit=300)], sys.argv[2], shard_size=2, workers=2, progress=False)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_cache_workers_die_with_a_killed_parent(tmp_path):
    from conftest import data_file

    script = tmp_path / "build.py"
    script.write_text(BUILD)
    parent = subprocess.Popen([sys.executable, str(script), str(data_file("mp_cgcnn36k.csv.xz")), str(tmp_path / "c")])
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while len(workers) < 2 and time.monotonic() < deadline and parent.poll() is None:
            workers = _descendants(parent.pid)
            time.sleep(0.05)
        assert len(workers) >= 2, "the cache build never started its workers"
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [w for w in workers if _alive(w)], "cache workers outlived their killed parent"
    finally:
        for pid in _descendants(parent.pid) | {parent.pid}:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_one_atom_batches_do_not_crash_training(tmp_path):
    csv = write_csv(tmp_path / "in.csv", ("mp-1", "mp-1000", "mp-10000"))  # Cs has one atom
    build_cache([open_source(csv)], tmp_path / "cache", workers=0, progress=False)
    with pytest.warns(UserWarning, match="holds a single atom"):
        result = pretrain(tmp_path / "cache", tmp_path / "run", optimizer=OPTIMIZER,
                          training=training(1, batch_size=1, validation_fraction=0.0), progress_bar=False)
    last = read_checkpoint(result.last_checkpoint)
    assert last.training["epochs_completed"] == 1 and last.training["metrics"]["train/total"] > 0


def test_a_mistyped_input_writes_nothing_and_the_fix_is_accepted(tmp_path, capsys):
    good = write_csv(tmp_path / "in.csv", MP_IDS[:3])
    typo = tmp_path / "in.cvs"
    with pytest.raises(FileNotFoundError, match=r"in\.cvs"):
        build_cache([open_source(good), StructureSource(str(typo))], tmp_path / "c1", workers=0, progress=False)
    assert not (tmp_path / "c1").exists()
    out = tmp_path / "run"
    assert main(["pretrain", str(good), str(typo), "--out", str(out), "--cache-only", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "in.cvs" in err
    assert not (out / "cache").exists()
    assert main(["pretrain", str(good), "--out", str(out), "--cache-only", "--no-progress"]) == 0
    # a cache folder left with only build.json by an older version is restarted, not refused
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "build.json").write_text('{"sources": [{"path": "in.cvs"}]}')
    build_cache([open_source(good)], tmp_path / "old", workers=0, progress=False)


@pytest.mark.parametrize("case", ["empty folder", "all broken"])
def test_no_usable_input_is_an_error(case, tmp_path, capsys):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    if case == "all broken":
        (inputs / "a.cif").write_text("data_x\n")
        (inputs / "b.cif").write_text("")
    code = main(["pretrain", str(inputs), "--out", str(tmp_path / "run"), "--no-progress", "--epochs", "1"])
    captured = capsys.readouterr()
    assert code == 2
    error = captured.err.strip().splitlines()[-1]
    assert error.startswith("crysgnn-dgl pretrain: error: nothing to pre-train on") and str(inputs) in error
    assert ("all 2 input(s) were skipped" if case == "all broken" else "no structures were found") in error
    assert "epochs completed" not in captured.out and "checkpoint" not in captured.out
    cache = tmp_path / "run" / "cache"
    assert sorted(p.name for p in cache.iterdir()) == ["report.tsv"]  # reasons kept, nothing to reuse


def test_an_unreadable_resume_state_is_named(tiny_cache, tmp_path):
    (tmp_path / "lightning_last.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"lightning_last\.ckpt: cannot read the resume state .* delete it"):
        pretrain(tiny_cache, tmp_path, optimizer=OPTIMIZER, training=training(1), progress_bar=False)
