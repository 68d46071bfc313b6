"""Data selection of the examples that train through foreign loops (alignn, matgl):
seeded random split of the bundled subset, and the official MP 2018.6.1 split."""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import pytest
from conftest import data_file

from crysgnn_dgl.training.options import ExperimentDefaults, ExternalOptions, add_external_arguments, options_from_args
from crysgnn_dgl.training.selection import select_structures

pytestmark = pytest.mark.filterwarnings("ignore:Issues encountered while parsing CIF")


def parse(*argv: str) -> ExternalOptions:
    parser = argparse.ArgumentParser()
    add_external_arguments(parser, ExperimentDefaults(train_size=12, val_size=3, test_size=5))
    return options_from_args(ExternalOptions, parser.parse_args(list(argv)))


def test_bundled_subset_random_split_is_seeded_and_disjoint():
    first, again = select_structures(parse()), select_structures(parse())
    assert (len(first.split.train), len(first.split.val), len(first.split.test)) == (12, 3, 5)
    assert first.ids == again.ids and first.targets.tolist() == again.targets.tolist()
    parts = [set(first.ids[i] for i in getattr(first.split, p)) for p in ("train", "val", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    other = select_structures(parse("--split-seed", "1"))
    assert other.ids != first.ids
    structures, targets = first.part("test")
    assert len(structures) == 5 and all(len(s) <= 8 for s in structures)  # the bundled cells are small


def test_official_split_assigns_ids_and_values():
    table, split_file = data_file("mp_cgcnn36k.csv.xz"), data_file("mp2018_megnet_e_form_split.json.gz")
    data = select_structures(parse("--data", str(table), "--split-json", str(split_file)))
    with gzip.open(split_file, "rt") as handle:
        official = json.load(handle)
    for part in ("train", "val", "test"):
        indices = getattr(data.split, part)
        assert indices
        for i in indices:
            assert data.ids[i] in official[part]
            assert float(data.targets[i]) == pytest.approx(float(official[part][data.ids[i]]), abs=1e-6)


def test_options_are_typed_and_validated():
    options = parse("--epochs", "2", "--lr", "0.001")
    assert isinstance(options.table, Path) and options.training().epochs == 2 and options.training(7).seed == 7
    with pytest.raises(ValueError, match=r"ExternalOptions.test_size must be an integer >= 1, got 0"):
        parse("--test-size", "0")
