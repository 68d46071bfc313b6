"""Errors raised for crystal inputs that cannot become a graph."""

from __future__ import annotations


class StructureError(ValueError):
    """A structure (or the input describing it) cannot be turned into a CrysGNN graph.

    Attributes:
        structure_id: the name of the offending item (file, row, id) as the caller knows it.
        reason: what is wrong with it.
    """

    def __init__(self, structure_id: str, reason: str):
        self.structure_id = structure_id
        self.reason = reason
        super().__init__(f"structure {structure_id!r}: {reason}")
