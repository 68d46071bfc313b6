"""Content keys of crystals: a 128-bit digest of exactly what the teacher consumes.

Keys are computed for a whole batch at once from rounded (integer) copies of the arrays
the teacher's graph is built from — e.g. atom features, fractional coordinates and the
lattice; or atom features, neighbour indices and bond lengths — together with a
fingerprint of the teacher (the salt), so that one store can serve several teachers and
runs without mixing their embeddings.

The digest is a vectorised multiply–xorshift hash in two independent 64-bit lanes (no
per-crystal Python loop): each row of a field becomes ``q · C`` (``q`` the rounded row,
``C`` fixed random odd constants), is mixed with its position inside the crystal through
the SplitMix64 finaliser, and the mixed rows of each crystal are summed; fields, row
counts and the salt are mixed in last. It is not a cryptographic hash (crystals are not
adversarial input); two different crystals share a key with probability about 2⁻¹²⁸.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from ..teachers.protocol import Teacher

KEY_BYTES = 16
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True)
class KeyField:
    """One array of a batch that enters the key.

    Attributes:
        values: rows of all crystals of the batch, concatenated (any trailing shape).
        counts: rows belonging to each crystal, in batch order.
        decimals: floating-point values are rounded to this many decimals (integers are
            used as they are).
    """

    values: torch.Tensor
    counts: Sequence[int]
    decimals: int = 4


_SHIFTS = (np.uint64(30), np.uint64(27), np.uint64(31))
_MULTIPLIERS = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, element-wise on uint64 (wrapping arithmetic); a new array."""
    x = x ^ (x >> _SHIFTS[0])
    x *= _MULTIPLIERS[0]
    x ^= x >> _SHIFTS[1]
    x *= _MULTIPLIERS[1]
    x ^= x >> _SHIFTS[2]
    return x


@lru_cache(maxsize=256)
def _constants(field_number: int, width: int) -> np.ndarray:
    """``(width, 2)`` fixed odd uint64 multipliers of one field (same in every process;
    computed once per field shape, read-only)."""
    seed = np.arange(1, 2 * width + 1, dtype=np.uint64) + np.uint64((field_number + 1) * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF)
    constants = (_mix(seed) | np.uint64(1)).reshape(width, 2)
    constants.flags.writeable = False
    return constants


@lru_cache(maxsize=64)
def _salt_lanes(salt: bytes) -> np.ndarray:
    """The two 64-bit lanes every key starts from (read-only)."""
    return np.frombuffer(hashlib.blake2b(salt, digest_size=KEY_BYTES).digest(), dtype=np.uint64)


def _quantised(field: KeyField) -> np.ndarray:
    values = field.values.detach()
    rows = values.shape[0] if values.dim() else 1
    if values.is_floating_point():
        scaled = torch.round(values.to("cpu", torch.float64) * (10.0**field.decimals))
        array = scaled.to(torch.int64).numpy()
    else:
        array = values.to("cpu", torch.int64).numpy()
    return array.reshape(rows, -1).view(np.uint64)


def _segment_sums(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Wrapping sums of ``values`` rows between consecutive ``offsets`` (empty segments: 0)."""
    sums = np.zeros((offsets.shape[0] - 1, values.shape[1]), dtype=np.uint64)
    filled = offsets[1:] > offsets[:-1]
    if filled.any():
        sums[filled] = np.add.reduceat(values, offsets[:-1][filled], axis=0)
    return sums


def _field_digest(number: int, field: KeyField) -> np.ndarray:
    array = _quantised(field)
    counts = np.asarray(field.counts, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    if offsets[-1] != array.shape[0]:
        raise ValueError(f"key field {number}: counts sum to {offsets[-1]} rows, the array has {array.shape[0]}")
    with np.errstate(over="ignore"):
        rows = array @ _constants(number, array.shape[1])  # (R, 2), wraps modulo 2**64
        position = (np.arange(array.shape[0], dtype=np.int64) - np.repeat(offsets[:-1], counts)).astype(np.uint64)
        rows = _mix(rows + (position + np.uint64(1))[:, None] * np.uint64(0xD6E8FEB86659FD93))
        summed = _segment_sums(rows, offsets)
        shape = np.uint64(array.shape[1] * 0x100000001B3 + number)
        return _mix(summed ^ _mix(counts.astype(np.uint64)[:, None] + shape))


def content_keys(fields: Sequence[KeyField], salt: bytes = b"") -> np.ndarray:
    """``(crystals, 2)`` uint64 keys (128 bits per crystal) over all ``fields``."""
    if not fields:
        raise ValueError("content_keys needs at least one field")
    num_crystals = len(fields[0].counts)
    keys = np.broadcast_to(_salt_lanes(bytes(salt)), (num_crystals, 2)).copy()
    with np.errstate(over="ignore"):
        for number, field in enumerate(fields):
            if len(field.counts) != num_crystals:
                raise ValueError("every key field must cover the same crystals")
            keys = _mix(keys * np.uint64(0x9E3779B97F4A7C15) + _field_digest(number, field))
    return keys


def key_bytes(key: np.ndarray) -> bytes:
    """The 16-byte form of one key (row of :func:`content_keys`), e.g. for a database."""
    return np.ascontiguousarray(key, dtype=np.uint64).tobytes()


def as_key_array(keys: object) -> np.ndarray:
    """``(n, 2)`` uint64 keys from an array of keys, one key, or 16-byte strings."""
    if isinstance(keys, (bytes, bytearray)):
        keys = [keys]
    if isinstance(keys, (list, tuple)) and keys and isinstance(keys[0], (bytes, bytearray)):
        if any(len(k) != KEY_BYTES for k in keys):
            raise ValueError(f"keys must be {KEY_BYTES} bytes long")
        return np.frombuffer(b"".join(keys), dtype=np.uint64).reshape(-1, 2).copy()
    array = np.asarray(keys, dtype=np.uint64)
    return array.reshape(-1, 2)


def teacher_fingerprint(state_dict: dict[str, torch.Tensor], settings: dict) -> bytes:
    """Digest of a teacher's weights and featuriser settings (the salt of its keys)."""
    digest = hashlib.blake2b(repr(sorted(settings.items())).encode(), digest_size=KEY_BYTES)
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().to("cpu").contiguous()
        digest.update(name.encode())
        digest.update(tensor.numpy().tobytes() if tensor.numel() else b"")
    return digest.digest()


def teacher_salt(teacher: Teacher, raw: bool = False) -> bytes:
    """The salt of a teacher's cache keys: its fingerprint, marked when the cached rows are
    the raw (not L2-normalised) embeddings."""
    fingerprint = bytes(teacher.fingerprint())
    if not raw:
        return fingerprint
    return hashlib.blake2b(fingerprint + b"|raw", digest_size=KEY_BYTES).digest()
