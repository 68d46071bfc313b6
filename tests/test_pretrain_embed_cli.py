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
