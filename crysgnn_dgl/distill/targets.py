"""Teacher targets for one student batch: cache look-up, teacher graphs for the misses,
atom-order checks, and assembly in the hooked tensor's row order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ..backend import dgl
from .cache import EmbeddingCache
from .keys import KeyField, content_keys


class AtomOrderError(ValueError):
    """The student's atoms and the teacher's graph of a crystal do not line up."""


@dataclass
class CrystalBatch:
    """What an adapter extracted from a student's batch for the teacher.

    Attributes:
        counts: atoms of each crystal, in batch order.
        key_fields: arrays the teacher consumes, for the content keys.
        build: teacher graph (batched, in the given crystal order) of the selected crystals.
        atom_features: the student-side atom features ``(Σ counts, F)`` in crystal order,
            compared with the teacher graph's ``atom_features`` to verify the atom order.
        rows: for each atom in crystal order, the row of the hooked tensor holding it
            (``None``: crystals occupy consecutive rows in order).
        names: how to call crystal ``i`` in errors (defaults to its batch position).
    """

    counts: Sequence[int]
    key_fields: Sequence[KeyField]
    build: Callable[[list[int]], dgl.DGLGraph]
    atom_features: torch.Tensor | None = None
    rows: torch.Tensor | None = None
    names: Callable[[int], str] = field(default=lambda i: f"crystal #{i} of the batch")


def _verify_crystal(batch: CrystalBatch, index: int, start: int, graph_features: torch.Tensor | None) -> None:
    if batch.atom_features is None or graph_features is None:
        return
    count = batch.counts[index]
    mine = batch.atom_features[start : start + count].to(graph_features.device, graph_features.dtype)
    bad = (mine - graph_features).abs().amax(dim=1) > 1e-4
    if bool(bad.any()):
        atom = int(bad.nonzero()[0])
        raise AtomOrderError(
            f"{batch.names(index)}: atom {atom} of the student's batch is not atom {atom} of "
            "the teacher's graph (the atom order must match exactly)"
        )


def _teacher_rows(
    batch: CrystalBatch, indices: list[int], offsets: list[int], embed: Callable[[dgl.DGLGraph], torch.Tensor]
) -> list[torch.Tensor]:
    graph = batch.build(indices)
    sizes = graph.batch_num_nodes().tolist()
    if len(sizes) != len(indices):
        raise AtomOrderError(f"the teacher's graph holds {len(sizes)} crystals, expected {len(indices)}")
    features = graph.ndata["atom_features"] if "atom_features" in graph.ndata else None
    features_split = torch.split(features, sizes) if features is not None else [None] * len(sizes)
    for position, (index, size) in enumerate(zip(indices, sizes)):
        if size != batch.counts[index]:
            raise AtomOrderError(
                f"{batch.names(index)}: the student's batch has {batch.counts[index]} atom(s), the "
                f"teacher's graph {size} (the atom order must match exactly)"
            )
        _verify_crystal(batch, index, offsets[index], features_split[position])
    return list(torch.split(embed(graph), sizes))


def teacher_targets(
    batch: CrystalBatch,
    num_rows: int,
    embed: Callable[[dgl.DGLGraph], torch.Tensor],
    cache: EmbeddingCache | None,
    salt: bytes,
    device: torch.device,
) -> tuple[torch.Tensor, int]:
    """Teacher embeddings ``(num_rows, D)`` aligned with the hooked tensor's rows, and the
    number of crystals the teacher had to embed (cache misses)."""
    total = int(sum(batch.counts))
    if total != num_rows:
        raise AtomOrderError(
            f"the hooked layer produced {num_rows} per-atom rows for a batch of {total} atoms "
            f"({len(batch.counts)} crystals): it does not hold one row per atom"
        )
    offsets = [0]
    for count in batch.counts[:-1]:
        offsets.append(offsets[-1] + int(count))
    found: list[torch.Tensor | None] = [None] * len(batch.counts)
    keys = None
    if cache is not None:
        keys = content_keys(batch.key_fields, salt)
        found = cache.lookup(keys)
        for i, rows in enumerate(found):
            if rows is not None and rows.shape[0] != batch.counts[i]:
                raise AtomOrderError(
                    f"{batch.names(i)}: cached teacher rows have {rows.shape[0]} atoms, "
                    f"the student's batch {batch.counts[i]}"
                )
    missing = [i for i, rows in enumerate(found) if rows is None]
    if missing:
        computed = _teacher_rows(batch, missing, offsets, embed)
        if keys is not None:
            # stored in half precision: use the stored values now too, so a crystal's
            # target is the same whether it was computed or found
            computed = [rows.to(torch.float16) for rows in computed]
            cache.store(keys[missing], computed)
        for i, rows in zip(missing, computed):
            found[i] = rows
    stacked = torch.cat(found, dim=0).to(device, torch.float32)
    if batch.rows is None:
        return stacked, len(missing)
    aligned = torch.empty_like(stacked)
    aligned[batch.rows.to(device)] = stacked
    return aligned, len(missing)
