"""``crysgnn-dgl embed``: per-atom and per-crystal embeddings, bad inputs skipped and reported."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _pretrain_fixtures import BAD_ROWS, write_corpus_csv

from crysgnn_dgl import CrysGNN, build_graph, load_teacher, save_checkpoint
from crysgnn_dgl.cli import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(3)
    model = CrysGNN()
    return save_checkpoint(tmp_path_factory.mktemp("teacher") / "teacher.pt", model, {"note": "random"})


def test_embed_writes_atoms_and_crystals_and_reports_bad_rows(tmp_path, checkpoint, capsys):
    import pandas as pd

    csv = write_corpus_csv(tmp_path / "in.csv.xz", rows=6)
    out = tmp_path / "emb.npz"
    code = main(["embed", str(csv), "--out", str(out), "--checkpoint", str(checkpoint), "--batch-size", "4"])
    assert code == 0
    result = np.load(out)
    table = pd.read_csv(csv)
    good = table[~table.material_id.isin(list(BAD_ROWS))]
    assert result["ids"].tolist() == good.material_id.tolist()
    offsets = result["atom_offsets"]
    assert len(offsets) == len(good) + 1 and offsets[-1] == len(result["atom_embeddings"])
    teacher = load_teacher(checkpoint)
    for i, (sid, cif) in enumerate(zip(good.material_id, good.cif)):
        expected = teacher.embed(build_graph(cif, teacher.graph_settings, structure_id=sid)).numpy()
        atoms = result["atom_embeddings"][offsets[i] : offsets[i + 1]]
        np.testing.assert_allclose(atoms, expected, atol=1e-5)
        np.testing.assert_allclose(result["crystal_embeddings"][i], expected.mean(0), atol=1e-5)
        assert len(result["atomic_numbers"][offsets[i] : offsets[i + 1]]) == len(expected)
    skipped = (tmp_path / "emb.npz.skipped.tsv").read_text()
    for sid in BAD_ROWS:
        assert sid in skipped
    assert "bad-empty" in capsys.readouterr().err


def test_embed_fails_cleanly_when_nothing_is_readable(tmp_path, checkpoint):
    folder = tmp_path / "cifs"
    folder.mkdir()
    (folder / "broken.cif").write_text("data_x\n")
    assert main(["embed", str(folder), "--out", str(tmp_path / "e.npz"), "--checkpoint", str(checkpoint)]) == 1
    assert "broken.cif" in (tmp_path / "e.npz.skipped.tsv").read_text()


def test_pretrain_prints_a_line_per_epoch_only_with_verbose(tmp_path, capsys):
    csv = write_corpus_csv(tmp_path / "in.csv", rows=8, bad=False)
    common = ["pretrain", str(csv), "--cache", str(tmp_path / "cache"), "--epochs", "2", "--batch-size", "4",
              "--val-fraction", "0.25", "--cache-workers", "0", "--accelerator", "cpu", "--threads", "1"]
    assert main([*common, "--out", str(tmp_path / "quiet")]) == 0
    quiet = capsys.readouterr()
    assert "epochs completed: 2" in quiet.out and "epoch 0 (" not in quiet.out + quiet.err
    assert main([*common, "--out", str(tmp_path / "verbose"), "--verbose"]) == 0
    verbose = capsys.readouterr().out
    lines = [line for line in verbose.splitlines() if line.startswith("epoch ")]
    assert [line.split(" (")[0] for line in lines] == ["epoch 0", "epoch 1"]
    assert "train/total=" in lines[0] and "epochs completed: 2" in verbose


def test_training_progress_bar_goes_to_stderr(capsys):
    from crysgnn_dgl.pretrain.callbacks import StderrProgressBar

    bar = StderrProgressBar().init_train_tqdm()
    bar.reset(total=3)
    bar.update(3)
    bar.close()
    captured = capsys.readouterr()
    assert "3/3" in captured.err and captured.out == ""


def test_embed_shows_a_progress_bar_on_stderr(tmp_path, checkpoint, capsys):
    csv = write_corpus_csv(tmp_path / "in.csv", rows=3)
    assert main(["embed", str(csv), "--out", str(tmp_path / "e.npz"), "--checkpoint", str(checkpoint)]) == 0
    captured = capsys.readouterr()
    assert "embed: 5 structures" in captured.err and "skipped=2" in captured.err  # 3 embedded, 2 skipped
    assert "structures/s" not in captured.out and "embedded 3 structure(s)" in captured.out
