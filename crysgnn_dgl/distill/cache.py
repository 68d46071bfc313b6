"""Stores of teacher embeddings keyed by crystal content (see :mod:`.keys`).

:class:`EmbeddingCache` keeps float16 rows in fixed-size chunks plus a dict of packed
integers, so 100k crystals of ~10 atoms with 64-d embeddings take about 140 MB.
:class:`DiskEmbeddingCache` adds an SQLite file behind it that several runs (or
processes) can share.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import numpy as np
import torch

CHUNK_ROWS = 1 << 13
_COUNT_BITS = 14


class EmbeddingCache:
    """In-memory teacher-embedding cache: ``key (bytes) -> (n_atoms, dim)`` float16 rows."""

    def __init__(self) -> None:
        self._index: dict[bytes, int] = {}
        self._chunks: list[torch.Tensor] = []
        self._used = CHUNK_ROWS  # forces a new chunk at the first put
        self._dim: int | None = None
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: bytes) -> bool:
        return key in self._index

    def get(self, key: bytes) -> torch.Tensor | None:
        """Rows stored for ``key`` (float16, on CPU) or ``None``; counts hits and misses."""
        packed = self._index.get(key)
        if packed is None:
            self.misses += 1
            return None
        self.hits += 1
        return self._rows(packed)

    def _rows(self, packed: int) -> torch.Tensor:
        count = packed & ((1 << _COUNT_BITS) - 1)
        start = packed >> _COUNT_BITS
        chunk, offset = divmod(start, CHUNK_ROWS)
        return self._chunks[chunk][offset : offset + count]

    def put(self, key: bytes, rows: torch.Tensor) -> None:
        """Store ``rows`` (any float dtype/device; kept as float16 on CPU)."""
        if key in self._index:
            return
        count, dim = rows.shape
        if self._dim is None:
            self._dim = dim
        elif dim != self._dim:
            raise ValueError(f"embedding width {dim} does not match the cache's {self._dim}")
        if count >= min(CHUNK_ROWS, 1 << _COUNT_BITS):
            return  # larger than a chunk: not cached
        if self._used + count > CHUNK_ROWS:
            self._chunks.append(torch.empty(CHUNK_ROWS, dim, dtype=torch.float16))
            self._used = 0
        chunk = len(self._chunks) - 1
        self._chunks[chunk][self._used : self._used + count] = rows.detach().to("cpu", torch.float16)
        start = chunk * CHUNK_ROWS + self._used
        self._used += count
        self._index[key] = (start << _COUNT_BITS) | count

    def memory_bytes(self) -> int:
        """Bytes held: embedding chunks, the index dict, its keys and packed values."""
        chunks = sum(c.numel() * c.element_size() for c in self._chunks)
        index = sys.getsizeof(self._index)
        entries = sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in self._index.items())
        return chunks + index + entries

    def flush(self) -> None:
        """Nothing to write for the in-memory store."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} crystals, {self.memory_bytes() / 1e6:.1f} MB)"


class DiskEmbeddingCache(EmbeddingCache):
    """:class:`EmbeddingCache` backed by an SQLite file shareable between runs.

    Lookups fall through to the file on a memory miss; new rows are written to both
    (committed by :meth:`flush`, which the hook calls after every batch).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings "
            "(key BLOB PRIMARY KEY, atoms INTEGER, dim INTEGER, rows BLOB)"
        )
        self._db.commit()
        self._pending = 0

    def get(self, key: bytes) -> torch.Tensor | None:
        packed = self._index.get(key)
        if packed is not None:
            self.hits += 1
            return self._rows(packed)
        row = self._db.execute("SELECT atoms, dim, rows FROM embeddings WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        atoms, dim, blob = row
        rows = torch.from_numpy(np.frombuffer(blob, dtype=np.float16).copy().reshape(atoms, dim))
        super().put(key, rows)
        return rows

    def put(self, key: bytes, rows: torch.Tensor) -> None:
        if key in self._index:
            return
        super().put(key, rows)
        half = rows.detach().to("cpu", torch.float16).numpy()
        self._db.execute(
            "INSERT OR IGNORE INTO embeddings VALUES (?, ?, ?, ?)",
            (key, half.shape[0], half.shape[1], half.tobytes()),
        )
        self._pending += 1

    def flush(self) -> None:
        if self._pending:
            self._db.commit()
            self._pending = 0

    def stored(self) -> int:
        """Crystals in the file (all runs and teachers)."""
        return int(self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def close(self) -> None:
        self.flush()
        self._db.close()


def make_cache(spec: object) -> EmbeddingCache | None:
    """``True``/``"memory"`` → in-memory; a path → on-disk; ``None``/``False`` → no cache;
    an :class:`EmbeddingCache` is used as given."""
    if spec is None or spec is False:
        return None
    if spec is True or spec == "memory":
        return EmbeddingCache()
    if isinstance(spec, EmbeddingCache):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        return DiskEmbeddingCache(spec)
    raise TypeError(f"cache must be True, False, None, 'memory', a path or an EmbeddingCache, not {spec!r}")
