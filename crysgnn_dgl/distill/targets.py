"""Teacher targets for one student batch: cache look-up, teacher embeddings of the misses,
atom-order checks, and assembly in the hooked tensor's row order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..backend import dgl
from .cache import EmbeddingCache
from .keys import KeyField, content_keys


class AtomOrderError(ValueError):
    """The student's atoms and the teacher's graph of a crystal do not line up."""


class TeacherInputError(ValueError):
    """The student's batch lacks what the teacher reads (e.g. the lattice)."""


@dataclass
class CrystalBatch:
    """What an adapter extracted from a student's batch for the teacher.

    Attributes:
        counts: atoms of each crystal, in batch order.
        key_fields: arrays the CrysGNN teacher consumes, for its content keys.
        build: CrysGNN teacher graph (batched, in the given crystal order) of the selected crystals.
        atom_features: the student-side atom features ``(Σ counts, F)`` in crystal order,
            compared with the teacher graph's ``atom_features`` to verify the atom order.
        rows: for each atom in crystal order, the row of the hooked tensor holding it
            (``None``: crystals occupy consecutive rows in order).
        names: how to call crystal ``i`` in errors (defaults to its batch position).
        atomic_numbers: ``(Σ counts,)`` int64 in crystal order (``-1``: not known from the
            batch), for teachers that read structures; ``None`` if the batch has none.
        frac_coords: ``(Σ counts, 3)`` fractional coordinates in crystal order.
        lattices: ``(crystals, 3, 3)``, rows are lattice vectors.
        structure_missing: why the batch cannot give structures (when it cannot).
    """

    counts: Sequence[int]
    key_fields: Sequence[KeyField]
    build: Callable[[list[int]], dgl.DGLGraph]
    atom_features: torch.Tensor | None = None
    rows: torch.Tensor | None = None
    names: Callable[[int], str] = field(default=lambda i: f"crystal #{i} of the batch")
    atomic_numbers: torch.Tensor | None = None
    frac_coords: torch.Tensor | None = None
    lattices: torch.Tensor | None = None
    structure_missing: str = ""

    def _require_structures(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Atomic numbers, fractional coordinates and lattices, or a clear error."""
        if self.atomic_numbers is None or self.frac_coords is None or self.lattices is None:
            reason = self.structure_missing or "the adapter gave no atomic numbers, coordinates or lattices"
            raise TeacherInputError(f"this teacher reads atomic numbers, fractional coordinates and lattices: {reason}")
        return self.atomic_numbers, self.frac_coords, self.lattices

    def structure_key_fields(self) -> list[KeyField]:
        """Key fields of what a structure teacher reads: atomic numbers, fractional
        coordinates (4 decimals) and lattices (3 decimals)."""
        numbers, coords, lattices = self._require_structures()
        return [
            KeyField(numbers, self.counts, decimals=0),
            KeyField(coords, self.counts, decimals=4),
            KeyField(lattices.reshape(-1, 9), [1] * len(self.counts), decimals=3),
        ]

    def crystals(self, indices: Sequence[int]):
        """The crystals ``indices`` as a :class:`~crysgnn_dgl.teachers.Crystals`."""
        from ..teachers.protocol import Crystals

        atomic_numbers, coords, lattices = self._require_structures()
        offsets = [0]
        for count in self.counts:
            offsets.append(offsets[-1] + int(count))
        numbers = atomic_numbers.detach().cpu().long()
        for i in indices:
            if bool((numbers[offsets[i] : offsets[i + 1]] < 1).any()):
                raise TeacherInputError(
                    f"{self.names(i)}: the batch does not tell the element of every atom "
                    f"({self.structure_missing or 'unknown atomic numbers'})"
                )
        spans = [torch.arange(offsets[i], offsets[i + 1]) for i in indices]
        take = torch.cat(spans) if spans else torch.zeros(0, dtype=torch.long)
        return Crystals(
            numbers[take], coords.detach().cpu()[take],
            lattices.detach().cpu().reshape(-1, 3, 3)[list(indices)],
            [int(self.counts[i]) for i in indices], [self.names(i) for i in indices],
        )


def _verify_atoms(batch: CrystalBatch, indices: list[int], sizes: list[int], graph_features: torch.Tensor) -> None:
    """Raise :class:`AtomOrderError` at the first atom whose student-side features differ
    from the teacher graph's (crystals ``indices``, one comparison for all of them)."""
    mine = batch.atom_features
    if mine is None:
        return
    if indices != list(range(len(batch.counts))):  # the rows of the selected crystals, in order
        starts = np.asarray(_offsets(batch.counts), dtype=np.int64)[indices]
        lengths = np.asarray(sizes, dtype=np.int64)
        shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        mine = mine[torch.from_numpy(shift + np.arange(int(lengths.sum()))).to(mine.device)]
    elif mine.data_ptr() == graph_features.data_ptr() and mine.shape == graph_features.shape \
            and mine.stride() == graph_features.stride():
        return  # the teacher's graph is the student's (ports): the same tensor
    mine = mine.to(graph_features.device, graph_features.dtype)
    bad = (mine - graph_features).abs().amax(dim=1) > 1e-4
    if not bool(bad.any()):
        return
    row = int(bad.nonzero()[0])
    position = int(np.searchsorted(np.cumsum(sizes), row, side="right"))
    atom = row - (int(np.sum(sizes[:position])) if position else 0)
    raise AtomOrderError(
        f"{batch.names(indices[position])}: atom {atom} of the student's batch is not atom {atom} of "
        "the teacher's graph (the atom order must match exactly)"
    )


def crysgnn_rows(
    batch: CrystalBatch, indices: Sequence[int], embed: Callable[[dgl.DGLGraph], torch.Tensor]
) -> list[torch.Tensor]:
    """Rows of the crystals ``indices`` from the CrysGNN graph the batch builds, after
    checking that its atoms are the student's, in the same order."""
    indices = list(indices)
    graph = batch.build(indices)
    sizes = graph.batch_num_nodes().tolist()
    if len(sizes) != len(indices):
        raise AtomOrderError(f"the teacher's graph holds {len(sizes)} crystals, expected {len(indices)}")
    for index, size in zip(indices, sizes):
        _check_size(batch, index, size, "the teacher's graph")
    if "atom_features" in graph.ndata:
        _verify_atoms(batch, indices, sizes, graph.ndata["atom_features"])
    return list(torch.split(embed(graph), sizes))


def _offsets(counts: Sequence[int]) -> list[int]:
    offsets = [0]
    for count in counts[:-1]:
        offsets.append(offsets[-1] + int(count))
    return offsets


def _check_size(batch: CrystalBatch, index: int, size: int, what: str) -> None:
    if size != batch.counts[index]:
        raise AtomOrderError(
            f"{batch.names(index)}: the student's batch has {batch.counts[index]} atom(s), {what} "
            f"{size} (the atom order must match exactly)"
        )


def teacher_targets(
    batch: CrystalBatch,
    num_rows: int,
    embed: Callable[[list[int]], list[torch.Tensor]],
    cache: EmbeddingCache | None,
    salt: bytes,
    device: torch.device,
    fields: Sequence[KeyField] | None = None,
) -> tuple[torch.Tensor, int]:
    """Teacher embeddings ``(num_rows, D)`` aligned with the hooked tensor's rows, and the
    number of crystals the teacher had to embed (cache misses).

    ``embed(indices)`` gives one row tensor per crystal of ``indices``; ``fields`` are the
    key fields (default: the CrysGNN teacher's, ``batch.key_fields``)."""
    total = int(sum(batch.counts))
    if total != num_rows:
        raise AtomOrderError(
            f"the hooked layer produced {num_rows} per-atom rows for a batch of {total} atoms "
            f"({len(batch.counts)} crystals): it does not hold one row per atom"
        )
    found: list[torch.Tensor | None] = [None] * len(batch.counts)
    keys = None
    if cache is not None:
        keys = content_keys(batch.key_fields if fields is None else fields, salt)
        found = cache.lookup(keys)
        for i, rows in enumerate(found):
            if rows is not None:
                _check_size(batch, i, rows.shape[0], "the cached teacher rows")
    missing = [i for i, rows in enumerate(found) if rows is None]
    if missing:
        computed = embed(missing)
        if len(computed) != len(missing):
            raise AtomOrderError(f"the teacher gave {len(computed)} crystals, expected {len(missing)}")
        for i, rows in zip(missing, computed):
            _check_size(batch, i, rows.shape[0], "the teacher")
        if cache is not None and keys is not None:
            # stored in half precision: use the stored values now too, so a crystal's
            # target is the same whether it was computed or found
            computed = [rows.to(torch.float16) for rows in computed]
            cache.store(keys[missing], computed)
        for i, rows in zip(missing, computed):
            found[i] = rows
    filled = [rows for rows in found if rows is not None]  # every crystal is found or computed by now
    stacked = torch.cat([rows.to(device) for rows in filled], dim=0).to(device, torch.float32)
    if batch.rows is None:
        return stacked, len(missing)
    aligned = torch.empty_like(stacked)
    aligned[batch.rows.to(device)] = stacked
    return aligned, len(missing)
