"""Stores of teacher embeddings keyed by crystal content (see :mod:`.keys`).

:class:`EmbeddingCache` keeps float16 rows in fixed-size chunks and finds them through an
open-addressing table of 128-bit keys held in two NumPy arrays (24 bytes per slot, at
most 80 % full), looked up for a whole batch at once. 100k crystals of 10 atoms with
64-d embeddings take about 132 MB (128 MB of which are the embeddings themselves; see
``benchmarks/kd_cache_memory.py``). :class:`DiskEmbeddingCache` adds an SQLite file
behind it that several runs, and several processes at the same time, can share.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import sqlite3
import struct
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .keys import KEY_BYTES, as_key_array

CHUNK_ROWS = 1 << 13
_COUNT_BITS = 14
_MAX_LOAD = 0.8
_EMPTY = -1


class EmbeddingCache:
    """In-memory teacher-embedding cache: ``key -> (n_atoms, dim)`` float16 rows.

    Keys are rows of :func:`~crysgnn_dgl.distill.keys.content_keys` (two uint64) or
    16-byte strings. :meth:`lookup` / :meth:`store` work on a batch of keys;
    :meth:`get` / :meth:`put` on one.
    """

    def __init__(self, capacity: int = 1024) -> None:
        size = 1 << max(4, int(capacity - 1).bit_length())
        self._slots = np.zeros((size, 2), dtype=np.uint64)
        self._values = np.full(size, _EMPTY, dtype=np.int64)
        self._count = 0
        self._chunks: list[torch.Tensor] = []
        self._used = CHUNK_ROWS  # forces a new chunk at the first put
        self._dim: int | None = None
        self.hits = 0
        self.misses = 0

    # ------------------------------------------------------------ key table
    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: object) -> bool:
        return bool(self._find(as_key_array(key))[0] != _EMPTY)

    def _find(self, keys: np.ndarray) -> np.ndarray:
        """Packed row locations of ``keys`` (``-1`` where absent), all keys probed together."""
        mask = self._slots.shape[0] - 1
        found = np.full(keys.shape[0], _EMPTY, dtype=np.int64)
        pending = np.arange(keys.shape[0])
        position = (keys[:, 0] & np.uint64(mask)).astype(np.int64)
        while pending.size:
            slot = position[pending]
            stored = self._slots[slot]
            occupied = self._values[slot] != _EMPTY
            match = occupied & (stored == keys[pending]).all(axis=1)
            found[pending[match]] = self._values[slot[match]]
            pending = pending[occupied & ~match]
            position[pending] = (position[pending] + 1) & mask
        return found

    def _insert(self, key: np.ndarray, packed: int) -> None:
        if (self._count + 1) > _MAX_LOAD * self._slots.shape[0]:
            self._grow()
        mask = self._slots.shape[0] - 1
        slot = int(key[0] & np.uint64(mask))
        while self._values[slot] != _EMPTY:
            slot = (slot + 1) & mask
        self._slots[slot] = key
        self._values[slot] = packed
        self._count += 1

    def _grow(self) -> None:
        occupied = self._values != _EMPTY
        keys, values = self._slots[occupied], self._values[occupied]
        size = self._slots.shape[0] * 2
        self._slots = np.zeros((size, 2), dtype=np.uint64)
        self._values = np.full(size, _EMPTY, dtype=np.int64)
        self._count = 0
        for key, packed in zip(keys, values.tolist()):
            self._insert(key, packed)

    # ------------------------------------------------------------ rows
    def _rows(self, packed: int) -> torch.Tensor:
        count = packed & ((1 << _COUNT_BITS) - 1)
        chunk, offset = divmod(packed >> _COUNT_BITS, CHUNK_ROWS)
        return self._chunks[chunk][offset : offset + count]

    def _append(self, rows: torch.Tensor) -> int | None:
        count, dim = rows.shape
        if self._dim is None:
            self._dim = dim
        elif dim != self._dim:
            raise ValueError(f"embedding width {dim} does not match the cache's {self._dim}")
        if count >= min(CHUNK_ROWS, 1 << _COUNT_BITS):
            return None  # larger than a chunk: not cached
        if self._used + count > CHUNK_ROWS:
            self._chunks.append(torch.empty(CHUNK_ROWS, dim, dtype=torch.float16))
            self._used = 0
        chunk = len(self._chunks) - 1
        self._chunks[chunk][self._used : self._used + count] = rows.detach().to("cpu", torch.float16)
        start = chunk * CHUNK_ROWS + self._used
        self._used += count
        return (start << _COUNT_BITS) | count

    # ------------------------------------------------------------ public API
    def lookup(self, keys: object) -> list[torch.Tensor | None]:
        """Rows stored for each key (float16, CPU) or ``None``; counts hits and misses."""
        packed = self._find(as_key_array(keys))
        hits = int((packed != _EMPTY).sum())
        self.hits += hits
        self.misses += len(packed) - hits
        return [None if p == _EMPTY else self._rows(p) for p in packed.tolist()]

    def store(self, keys: object, rows: Sequence[torch.Tensor]) -> None:
        """Store ``rows[i]`` under ``keys[i]`` (any float dtype/device; kept as float16 on CPU)."""
        keys = as_key_array(keys)
        if len(keys) != len(rows):
            raise ValueError(f"{len(keys)} keys for {len(rows)} row blocks")
        present = self._find(keys) != _EMPTY
        seen: set[bytes] = set()
        for key, block, known in zip(keys, rows, present.tolist()):
            name = key.tobytes()
            if known or name in seen:
                continue
            seen.add(name)
            packed = self._append(block)
            if packed is not None:
                self._insert(key, packed)

    def get(self, key: object) -> torch.Tensor | None:
        """Rows stored for one key, or ``None``."""
        return self.lookup(key)[0]

    def put(self, key: object, rows: torch.Tensor) -> None:
        """Store the rows of one key."""
        self.store(key, [rows])

    def memory_bytes(self) -> int:
        """Bytes held: embedding chunks and the key table."""
        chunks = sum(c.numel() * c.element_size() for c in self._chunks)
        return chunks + self._slots.nbytes + self._values.nbytes

    def flush(self) -> None:
        """Nothing to write for the in-memory store."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} crystals, {self.memory_bytes() / 1e6:.1f} MB)"


class CacheFileError(ValueError):
    """A teacher-embedding cache file cannot be used; the message names it and what to do."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        super().__init__(
            f"teacher-embedding cache {self.path}: {reason}; delete it (with {self.path}-wal and "
            f"{self.path}-shm if present) to start a new one, or pass another cache path"
        )


def _is_lock(error: Exception) -> bool:
    message = str(error).lower()
    return "locked" in message or "busy" in message


def row_checksum(key: bytes, atoms: int, dim: int, blob: bytes) -> bytes:
    """16-byte digest stored with every row and verified on every read."""
    digest = hashlib.blake2b(key, digest_size=16)
    digest.update(struct.pack("<ii", atoms, dim))
    digest.update(blob)
    return digest.digest()


class DiskEmbeddingCache(EmbeddingCache):
    """:class:`EmbeddingCache` backed by an SQLite file shared between runs and processes.

    Lookups fall through to the file on a memory miss; new rows go to memory and, in one
    short transaction per batch, to the file. The file is opened in write-ahead-log mode
    with a busy timeout, and a write that still finds the file locked is retried with
    back-off, so several processes (e.g. the ranks of a DDP job, or parallel runs) can
    read and write the same file at once. WAL needs a local file system (not NFS).

    Every row carries a checksum. A row that fails it (damaged bytes, or written by a
    version without checksums) is reported in a warning, counted in :attr:`damaged`, and
    recomputed by the teacher, which overwrites it. A file that is not an SQLite
    database, or whose structure is damaged, is refused on opening
    (:class:`CacheFileError`); damage found later switches the file off for the rest of
    the run, with a warning, and the run goes on with the in-memory cache.

    While open, the cache is up to three files: ``path``, ``path-wal`` and ``path-shm``.
    :meth:`flush` (called when a hook is removed) and :meth:`close` fold the log back into
    ``path``; after the last process closes it, ``path`` alone holds everything.
    """

    def __init__(self, path: str | os.PathLike, timeout: float = 60.0, retries: int = 20) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.retries = retries
        self.damaged = 0
        try:
            self._db: sqlite3.Connection | None = sqlite3.connect(
                str(self.path), timeout=timeout, check_same_thread=False, isolation_level=None
            )
            self._retry(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
            self._db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            self._retry(lambda: self._db.execute(
                "CREATE TABLE IF NOT EXISTS embeddings "
                "(key BLOB PRIMARY KEY, atoms INTEGER, dim INTEGER, rows BLOB, checksum BLOB)"
            ))
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(embeddings)")}
            if "checksum" not in columns:  # a file written before rows had checksums
                self._retry(lambda: self._db.execute("ALTER TABLE embeddings ADD COLUMN checksum BLOB"))
            problems = [row[0] for row in self._db.execute("PRAGMA quick_check(3)")]
        except sqlite3.DatabaseError as error:
            if _is_lock(error):
                raise sqlite3.OperationalError(f"teacher-embedding cache {self.path}: {error}") from error
            raise CacheFileError(self.path, f"damaged, or not an SQLite database ({error})") from error
        if problems != ["ok"]:
            self._db.close()
            raise CacheFileError(self.path, f"damaged ({'; '.join(problems)})")

    def _retry(self, action):
        for attempt in range(self.retries + 1):
            try:
                return action()
            except sqlite3.OperationalError as error:
                if not _is_lock(error) or attempt == self.retries:
                    raise
                time.sleep(min(1.0, 0.01 * 2**attempt) * (0.5 + random.random()))
        return None

    def _guarded(self, action, fallback):
        """Run a file operation; damage found now switches the file off (memory only)."""
        if self._db is None:
            return fallback
        try:
            return self._retry(action)
        except sqlite3.DatabaseError as error:
            if _is_lock(error):
                raise sqlite3.OperationalError(f"teacher-embedding cache {self.path}: {error}") from error
            self._disable(error)
        return fallback

    def _disable(self, error: Exception) -> None:
        warnings.warn(
            f"teacher-embedding cache {self.path} is damaged ({error}); it is not used for the "
            "rest of this run (embeddings stay cached in memory). Delete it (with its -wal and "
            "-shm files) before the next run.",
            RuntimeWarning,
            stacklevel=4,
        )
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = None

    @property
    def _connection(self) -> sqlite3.Connection:
        """The open file (file operations run through :meth:`_guarded`, which checks it)."""
        if self._db is None:
            raise sqlite3.OperationalError(f"teacher-embedding cache {self.path} is closed")
        return self._db

    def _read(self, names: list[bytes]) -> list[tuple]:
        read: list[tuple] = []
        for start in range(0, len(names), 500):
            part = names[start : start + 500]
            query = (
                "SELECT key, atoms, dim, rows, checksum FROM embeddings "
                f"WHERE key IN ({','.join('?' * len(part))})"
            )
            read.extend(self._connection.execute(query, part).fetchall())
        return read

    def lookup(self, keys: object) -> list[torch.Tensor | None]:
        keys = as_key_array(keys)
        found = super().lookup(keys)
        missing = [i for i, rows in enumerate(found) if rows is None]
        if not missing:
            return found
        blobs = {k.tobytes(): i for i, k in zip(missing, keys[missing])}
        read = self._guarded(lambda: self._read(list(blobs)), [])
        good = bad = 0
        for key, atoms, dim, blob, checksum in read:
            key = bytes(key)
            intact = checksum is not None and len(blob) == 2 * atoms * dim
            if not intact or bytes(checksum) != row_checksum(key, atoms, dim, bytes(blob)):
                bad += 1
                continue
            rows = torch.from_numpy(np.frombuffer(blob, dtype=np.float16).copy().reshape(atoms, dim))
            found[blobs[key]] = rows
            super().store(keys[blobs[key] : blobs[key] + 1], [rows])
            good += 1
        if bad:
            self.damaged += bad
            warnings.warn(
                f"teacher-embedding cache {self.path}: {bad} damaged or unverifiable row(s) "
                "ignored; the teacher recomputes them and they are rewritten",
                RuntimeWarning,
                stacklevel=2,
            )
        self.hits += good
        self.misses -= good
        return found

    def store(self, keys: object, rows: Sequence[torch.Tensor]) -> None:
        keys = as_key_array(keys)
        new = self._find(keys) == _EMPTY
        super().store(keys, rows)
        records, seen = [], set()
        for key, block, fresh in zip(keys, rows, new.tolist()):
            name = key.tobytes()
            if fresh and name not in seen:
                seen.add(name)
                half = block.detach().to("cpu", torch.float16).numpy()
                blob = half.tobytes()
                atoms, dim = half.shape
                records.append((name, atoms, dim, blob, row_checksum(name, atoms, dim, blob)))
        if records:
            self._guarded(lambda: self._write(records), None)

    def _write(self, records: list[tuple]) -> None:
        db = self._connection
        db.execute("BEGIN IMMEDIATE")
        try:
            # REPLACE: a row that failed its checksum is overwritten by the recomputed one
            db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)", records)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def stored(self) -> int:
        """Crystals in the file (all runs and teachers)."""
        return int(self._guarded(lambda: self._connection.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0], 0))

    def flush(self) -> None:
        """Fold the write-ahead log into the main file as far as readers allow (never waits)."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        """Close; the last process to close the file folds the log in and removes it."""
        if self._db is not None:
            self.flush()
            self._db.close()
            self._db = None


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


__all__ = ["CHUNK_ROWS", "CacheFileError", "DiskEmbeddingCache", "EmbeddingCache", "KEY_BYTES", "make_cache"]
