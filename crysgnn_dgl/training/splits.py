"""Deterministic train / validation / test splits."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset, Subset


@dataclass(frozen=True)
class Split:
    """Index lists of the three parts (disjoint, together all items)."""

    train: list[int]
    val: list[int]
    test: list[int]


def split_indices(
    num_items: int,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    train_limit: int | None = None,
) -> Split:
    """Shuffle ``range(num_items)`` with ``seed`` and cut it into train / val / test.

    The same arguments always give the same split. ``train_limit`` keeps only the first
    ``train_limit`` training items (validation and test are unchanged), for learning
    curves at fixed test sets.
    """
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(f"invalid fractions: val {val_fraction}, test {test_fraction}")
    order = torch.randperm(num_items, generator=torch.Generator().manual_seed(seed)).tolist()
    n_test = int(round(test_fraction * num_items))
    n_val = int(round(val_fraction * num_items))
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    if train_limit is not None:
        train = train[:train_limit]
    if not train or not test:
        raise ValueError(f"{num_items} items are too few for a split with train and test parts")
    return Split(train=train, val=val, test=test)


def subset(dataset: Dataset, indices: list[int]) -> Subset:
    """The items of ``dataset`` at ``indices`` (a view; graphs are not copied)."""
    return Subset(dataset, indices)
