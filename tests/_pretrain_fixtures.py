"""Small real inputs for the pre-training tests: a CSV with good and bad rows, and a
graph cache built from it once per session."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import data_file

GOOD_ROWS = 40  # first rows of mp_cgcnn36k
BAD_ROWS = {
    "bad-empty": "",
    "bad-garbage": "data_x\n_cell_length_a 3\nthis is not a cif\n",
}


def write_corpus_csv(path, rows: int = GOOD_ROWS, bad: bool = True):
    """CSV (xz) of the first ``rows`` MP crystals, with the :data:`BAD_ROWS` mixed in."""
    table = pd.read_csv(data_file("mp_cgcnn36k.csv.xz"), nrows=rows)[["material_id", "cif"]]
    if bad:
        extra = pd.DataFrame({"material_id": list(BAD_ROWS), "cif": list(BAD_ROWS.values())})
        table = pd.concat([table.iloc[:5], extra.iloc[:1], table.iloc[5:], extra.iloc[1:]])
    table.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def corpus_csv(tmp_path_factory):
    return write_corpus_csv(tmp_path_factory.mktemp("corpus") / "corpus.csv.xz")


@pytest.fixture(scope="session")
def small_cache(tmp_path_factory, corpus_csv):
    """Graph cache of :func:`corpus_csv` (shards of 8 inputs, built in this process)."""
    from crysgnn_dgl.pretrain import build_cache, open_source

    folder = tmp_path_factory.mktemp("cache")
    build_cache([open_source(corpus_csv)], folder, shard_size=8, workers=0, progress=False)
    return folder
