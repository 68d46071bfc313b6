"""Streaming access to a graph cache: crystals by position, epoch-deterministic batches
that read shard after shard, and a collate that builds one batched DGL graph.

Resident memory is a few loaded shards plus O(corpus) small integer index arrays,
independent of the corpus's graph data.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..backend import dgl
from ..config import GraphSettings
from ..graph.atom_features import atom_feature_table
from ..graph.builder import graph_from_table
from ..graph.neighbors import NeighborTable
from .cache import CACHE_FORMAT, CACHE_VERSION, SHARD_ARRAYS

Record = dict[str, Any]


class GraphCache(Dataset):
    """The crystals of a cache folder (duplicates excluded), addressed by position.

    Args:
        folder: cache folder (with ``index.json``).
        max_loaded_shards: shards kept in memory (least recently used are dropped).
    """

    def __init__(self, folder: str | Path, max_loaded_shards: int = 2):
        self.folder = Path(folder)
        index_path = self.folder / "index.json"
        if not index_path.is_file():
            raise FileNotFoundError(f"{self.folder} is not a graph cache (no index.json)")
        index = json.loads(index_path.read_text())
        if index.get("format") != CACHE_FORMAT:
            raise ValueError(f"{index_path}: not a crysgnn_dgl graph cache")
        if index.get("format_version") != CACHE_VERSION:
            raise ValueError(
                f"{index_path}: graph cache format version {index.get('format_version')}, this version reads "
                f"{CACHE_VERSION} (its shards hold the neighbours' periodic images); rebuild the cache in a new folder"
            )
        self.graph_settings = GraphSettings.from_dict(index["graph_settings"])
        self.shard_files = [entry["file"] for entry in index["shards"]]
        kept = []
        for entry in index["shards"]:
            mask = np.ones(entry["count"], dtype=bool)
            mask[entry["excluded"]] = False
            kept.append(np.flatnonzero(mask).astype(np.int32))
        self.shard_sizes = np.asarray([len(k) for k in kept], dtype=np.int64)
        self.shard_starts = np.concatenate([[0], np.cumsum(self.shard_sizes)])
        self._kept = kept
        self._loaded: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
        self.max_loaded_shards = max_loaded_shards

    def __len__(self) -> int:
        return int(self.shard_starts[-1])

    def __getstate__(self) -> dict[str, Any]:  # workers start with no shard loaded
        state = dict(self.__dict__)
        state["_loaded"] = OrderedDict()
        return state

    def locate(self, position: int) -> tuple[int, int]:
        """``(shard number, row inside the shard file)`` of crystal ``position``."""
        shard = int(np.searchsorted(self.shard_starts, position, side="right") - 1)
        return shard, int(self._kept[shard][position - self.shard_starts[shard]])

    def _shard(self, shard: int) -> dict[str, np.ndarray]:
        name = self.shard_files[shard]
        if name in self._loaded:
            self._loaded.move_to_end(name)
            return self._loaded[name]
        with np.load(self.folder / name) as data:
            arrays = {key: data[key] for key in SHARD_ARRAYS}
        counts = arrays["num_atoms"].astype(np.int64)
        arrays["atom_start"] = np.concatenate([[0], np.cumsum(counts)])
        self._loaded[name] = arrays
        while len(self._loaded) > self.max_loaded_shards:
            self._loaded.popitem(last=False)
        return arrays

    def __getitem__(self, position: int) -> Record:
        if not 0 <= position < len(self):
            raise IndexError(f"crystal {position} outside cache of {len(self)}")
        shard, row = self.locate(int(position))
        arrays = self._shard(shard)
        start, stop = arrays["atom_start"][row], arrays["atom_start"][row + 1]
        record: Record = {key: arrays[key][start:stop] for key in ("atomic_number", "frac_coords", "neighbor", "distance", "image", "real")}
        for key in ("space_group", "crystal_system", "lattice"):
            record[key] = arrays[key][row]
        record["position"] = int(position)
        return record

    def __getitems__(self, positions: Sequence[int]) -> list[Record]:
        return [self[p] for p in positions]

    def structure_ids(self) -> list[str]:
        """Ids of all crystals in position order (read from the shard sidecars)."""
        ids: list[str] = []
        for name, kept in zip(self.shard_files, self._kept):
            sidecar = json.loads((self.folder / name.replace(".npz", ".json")).read_text())
            ids.extend(sidecar["ids"][row] for row in kept)
        return ids

    def split(self, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the training and validation crystals (a seeded random slice)."""
        draw = np.random.default_rng(seed).random(len(self))
        is_validation = draw < validation_fraction
        return np.flatnonzero(~is_validation), np.flatnonzero(is_validation)

    def shard_of(self, positions: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.shard_starts, positions, side="right") - 1


class ShardBatchSampler(Sampler[list[int]]):
    """Batches of cache positions that read the cache a window of shards at a time.

    Each epoch shuffles the shards, cuts them into windows of ``shuffle_window`` shards
    and visits the crystals of each window in a random order, so batches mix crystals
    from that many shards (shards hold consecutive inputs, often one source file: a
    window keeps batches, and BatchNorm's statistics, from being one source at a time)
    while only a window of shards needs to be in memory. The order depends only on
    ``(seed, epoch)`` (on ``seed`` alone with ``same_every_epoch``), so a resumed run sees
    the same batches as an uninterrupted one. With several processes (DDP) each rank takes
    every ``world_size``-th batch; all ranks get the same number of batches (the last
    round wraps around to the epoch's first batches when the count does not divide).
    """

    def __init__(
        self,
        cache: GraphCache,
        positions: np.ndarray,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
        shuffle_window: int = 16,
        same_every_epoch: bool = False,
    ):
        self.positions = np.asarray(positions, dtype=np.int64)
        self.shuffle_window = max(1, shuffle_window)
        self.same_every_epoch = same_every_epoch
        self.shards = cache.shard_of(self.positions)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self._rank, self._world_size = rank, world_size
        self.epoch = 0

    @property
    def rank(self) -> int:
        """This process's rank (resolved when iterating: DDP starts after the sampler exists)."""
        return _rank_and_world(self._rank, self._world_size)[0]

    @property
    def world_size(self) -> int:
        return _rank_and_world(self._rank, self._world_size)[1]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _ordered_positions(self) -> np.ndarray:
        if not self.shuffle:
            return self.positions
        rng = np.random.default_rng([self.seed] if self.same_every_epoch else [self.seed, self.epoch])
        shard_rank = rng.permutation(int(self.shards.max()) + 1 if len(self.shards) else 0)
        window = shard_rank[self.shards] // self.shuffle_window
        within = rng.random(len(self.positions))
        return self.positions[np.lexsort((within, window))]

    def _num_global_batches(self) -> int:
        n = len(self.positions)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __len__(self) -> int:
        return math.ceil(self._num_global_batches() / self.world_size)

    def __iter__(self) -> Iterator[list[int]]:
        ordered = self._ordered_positions()
        rank, world_size = self.rank, self.world_size
        for batch in range(len(self)):
            number = (batch * world_size + rank) % self._num_global_batches()
            yield ordered[number * self.batch_size : (number + 1) * self.batch_size].tolist()


def _rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is not None and world_size is not None:
        return rank, world_size
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def collate_records(records: list[Record], settings: GraphSettings | None = None) -> tuple[dgl.DGLGraph, dict[str, torch.Tensor]]:
    """One batched graph, made by the builder's :func:`~crysgnn_dgl.graph.builder.graph_from_table`
    (as :func:`crysgnn_dgl.build_graph` builds each crystal), and the batch's graph-level
    labels ``space_group``, ``crystal_system`` and ``position``."""
    settings = settings or GraphSettings()
    sizes = np.asarray([len(r["atomic_number"]) for r in records], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    table = NeighborTable(
        index=np.concatenate([r["neighbor"] + o for r, o in zip(records, offsets)]).astype(np.int64),
        distance=np.concatenate([r["distance"] for r in records]),
        image=np.concatenate([r["image"] for r in records]),
        real=np.concatenate([r["real"] for r in records]),
    )
    numbers = np.concatenate([r["atomic_number"] for r in records]).astype(np.int64)
    graph = graph_from_table(
        table,
        atom_feature_table()[numbers],
        np.concatenate([r["frac_coords"] for r in records]),
        np.repeat(np.stack([r["lattice"] for r in records]), sizes, axis=0),
        settings.pad,
        numbers,
    )
    graph.set_batch_num_nodes(torch.from_numpy(sizes))
    k = table.index.shape[1]
    edges_per_graph = (
        sizes * k if settings.pad else np.asarray([r["real"].sum() for r in records], dtype=np.int64)
    )
    graph.set_batch_num_edges(torch.from_numpy(edges_per_graph))
    labels = {
        "space_group": torch.as_tensor(np.asarray([r["space_group"] for r in records]), dtype=torch.int64),
        "crystal_system": torch.as_tensor(np.asarray([r["crystal_system"] for r in records]), dtype=torch.int64),
        "position": torch.as_tensor([r["position"] for r in records], dtype=torch.int64),
    }
    return graph, labels


class CacheCollate:
    """Picklable collate function bound to featuriser settings (for DataLoader workers)."""

    def __init__(self, settings: GraphSettings):
        self.settings = settings

    def __call__(self, records: list[Record]) -> tuple[dgl.DGLGraph, dict[str, torch.Tensor]]:
        return collate_records(records, self.settings)
