"""Content keys of crystals: a digest of exactly what the teacher consumes.

Keys are computed per crystal from rounded copies of the arrays the teacher's graph is
built from (e.g. atom features, fractional coordinates and lattice; or atom features and
pre-expanded edge features), together with a fingerprint of the teacher, so that one store
can serve several teachers and runs without mixing their embeddings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

KEY_BYTES = 16


@dataclass(frozen=True)
class KeyField:
    """One array of a batch that enters the key.

    Attributes:
        values: rows of all crystals of the batch, concatenated (any trailing shape).
        counts: rows belonging to each crystal, in batch order.
        decimals: values are rounded to this many decimals before hashing.
    """

    values: torch.Tensor
    counts: Sequence[int]
    decimals: int = 4


def _quantised(field: KeyField) -> np.ndarray:
    values = field.values.detach()
    if values.is_floating_point():
        scaled = torch.round(values.to("cpu", torch.float64) * (10.0**field.decimals))
        array = scaled.to(torch.int64).numpy()
    else:
        array = values.to("cpu", torch.int64).numpy()
    return np.ascontiguousarray(array.reshape(array.shape[0], -1))


def content_keys(fields: Sequence[KeyField], salt: bytes = b"") -> list[bytes]:
    """One ``KEY_BYTES``-byte digest per crystal over all ``fields``."""
    if not fields:
        raise ValueError("content_keys needs at least one field")
    num_crystals = len(fields[0].counts)
    digests = [hashlib.blake2b(salt, digest_size=KEY_BYTES) for _ in range(num_crystals)]
    for number, field in enumerate(fields):
        if len(field.counts) != num_crystals:
            raise ValueError("every key field must cover the same crystals")
        array = _quantised(field)
        offsets = np.concatenate([[0], np.cumsum(np.asarray(field.counts, dtype=np.int64))])
        if offsets[-1] != array.shape[0]:
            raise ValueError(
                f"key field {number}: counts sum to {offsets[-1]} rows, the array has {array.shape[0]}"
            )
        width = str(array.shape[1]).encode()
        for i, digest in enumerate(digests):
            block = array[offsets[i] : offsets[i + 1]]
            digest.update(b"|%d|%d|" % (number, block.shape[0]) + width)
            digest.update(block.tobytes())
    return [d.digest() for d in digests]


def teacher_fingerprint(state_dict: dict[str, torch.Tensor], settings: dict) -> bytes:
    """Digest of a teacher's weights and featuriser settings (the salt of its keys)."""
    digest = hashlib.blake2b(repr(sorted(settings.items())).encode(), digest_size=KEY_BYTES)
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().to("cpu").contiguous()
        digest.update(name.encode())
        digest.update(tensor.numpy().tobytes() if tensor.numel() else b"")
    return digest.digest()
