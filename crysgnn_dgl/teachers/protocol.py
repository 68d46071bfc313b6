"""The teacher protocol: what ``attach_teacher``, the embedding cache and the benchmark
harness ask of every teacher, and the crystals an adapter hands to it.

A teacher gives per-atom embeddings of the crystals of a
:class:`~crysgnn_dgl.distill.CrystalBatch` (the adapters extract those from the student's
batch), the width of those embeddings, the fields its cache keys are computed from, and a
fingerprint of its weights and settings (the salt of those keys). Teachers that read the
structure itself — atomic numbers, fractional coordinates and the lattice — subclass
:class:`StructureTeacher` and implement :meth:`StructureTeacher.embed_crystals` only.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from ..distill.keys import KeyField
    from ..distill.targets import CrystalBatch

_Module = TypeVar("_Module", bound=nn.Module)
_Teacher = TypeVar("_Teacher", bound="StructureTeacher")


@runtime_checkable
class Teacher(Protocol):
    """A frozen model whose per-atom embeddings are the distillation targets.

    Implementations never register as a submodule of the student (they are not
    ``nn.Module``), stay in evaluation mode and run without gradients. An implementation
    may also set ``recommended_kd_weight`` (a float): the ``λ`` that :func:`attach_teacher`
    uses when neither ``delta`` nor ``settings`` is given (otherwise ``λ = 1``).
    """

    @property
    def embedding_dim(self) -> int:
        """Width of the per-atom embeddings."""

    def fingerprint(self) -> bytes:
        """A digest of the weights and settings that determine the embeddings (≥ 8 bytes):
        the salt of the cache keys, so two teachers never share cached rows."""

    def key_fields(self, batch: CrystalBatch) -> Sequence[KeyField]:
        """The arrays of ``batch`` this teacher's embeddings depend on (for cache keys)."""

    def embed_batch(self, batch: CrystalBatch, indices: Sequence[int]) -> list[torch.Tensor]:
        """Embeddings ``(atoms, embedding_dim)`` of the crystals ``indices`` of ``batch``,
        one tensor per crystal, atoms in the batch's order (before any L2 normalisation:
        the hook normalises them when the recipe asks for it)."""


@dataclass(frozen=True)
class Crystals:
    """Crystals as species, fractional coordinates and lattices.

    Attributes:
        atomic_numbers: ``(Σ counts,)`` int64, crystals one after the other.
        frac_coords: ``(Σ counts, 3)``.
        lattices: ``(crystals, 3, 3)``, rows are the lattice vectors (Å).
        counts: atoms of each crystal.
        names: how to call each crystal in errors.
    """

    atomic_numbers: torch.Tensor
    frac_coords: torch.Tensor
    lattices: torch.Tensor
    counts: Sequence[int]
    names: Sequence[str]

    def __len__(self) -> int:
        return len(self.counts)

    def offsets(self) -> np.ndarray:
        """Index of each crystal's first atom, and the total at the end."""
        return np.concatenate([[0], np.cumsum(np.asarray(self.counts, dtype=np.int64))])

    def structure(self, i: int) -> Structure:
        """Crystal ``i`` as a pymatgen ``Structure`` (sites in the batch's atom order)."""
        from pymatgen.core import Lattice, Structure

        a, b = self.offsets()[i : i + 2]
        return Structure(
            Lattice(self.lattices[i].to("cpu", torch.float64).numpy()),
            self.atomic_numbers[a:b].tolist(),
            self.frac_coords[a:b].to("cpu", torch.float64).numpy(),
        )

    def structures(self) -> list[Structure]:
        return [self.structure(i) for i in range(len(self))]


class StructureTeacher:
    """Base of teachers that read atomic numbers, fractional coordinates and lattices.

    Subclasses set :attr:`embedding_dim` and implement :meth:`embed_crystals` and
    :meth:`fingerprint`; the cache keys then cover exactly what they read."""

    embedding_dim: int = 0
    #: λ that ``attach_teacher`` uses unless told otherwise (see :class:`Teacher`)
    recommended_kd_weight: float = 1.0

    def fingerprint(self) -> bytes:
        raise NotImplementedError

    def embed_crystals(self, crystals: Crystals) -> torch.Tensor:
        """``(Σ atoms, embedding_dim)`` embeddings of ``crystals``, atoms in their order."""
        raise NotImplementedError

    def key_fields(self, batch: CrystalBatch) -> Sequence[KeyField]:
        return batch.structure_key_fields()

    def embed_batch(self, batch: CrystalBatch, indices: Sequence[int]) -> list[torch.Tensor]:
        crystals = batch.crystals(indices)
        rows = self.embed_crystals(crystals)
        if rows.shape[0] != sum(crystals.counts):
            raise RuntimeError(
                f"{type(self).__name__}.embed_crystals gave {rows.shape[0]} rows for {sum(crystals.counts)} atoms"
            )
        return list(torch.split(rows.detach(), [int(c) for c in crystals.counts]))

    @property
    def device(self) -> torch.device:
        """Where the frozen module a subclass keeps in ``_model`` runs."""
        return next(self._model.parameters()).device  # type: ignore[attr-defined]

    def to(self: _Teacher, device: str | torch.device) -> _Teacher:
        """Move the frozen module a subclass keeps in ``_model``."""
        self._model.to(device)  # type: ignore[attr-defined]
        return self

    # a teacher is never trained: these mirror nn.Module's names and do nothing
    @property
    def training(self) -> bool:
        return False

    def train(self: _Teacher, mode: bool = True) -> _Teacher:
        """Ignored: the teacher always stays in evaluation mode."""
        return self

    def eval(self: _Teacher) -> _Teacher:
        return self


def stay_in_eval(module: _Module, mode: bool = True) -> _Module:
    """Replacement for ``nn.Module.train`` on a frozen model: always evaluation mode."""
    for child in module.modules():
        child.training = False
    return module


def freeze(module: _Module) -> _Module:
    """``module`` with every parameter frozen, in evaluation mode, and a ``train()`` that
    keeps it there (also when called recursively by a parent or by Lightning)."""
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    stay_in_eval(module)
    # an instance attribute shadows nn.Module.train (still pickles: a partial of a module-level function)
    object.__setattr__(module, "train", functools.partial(stay_in_eval, module))
    return module
