"""Model architectures."""

from .conv import CGCNNConv
from .crysgnn import CrysGNN, CrysGNNOutput

__all__ = ["CGCNNConv", "CrysGNN", "CrysGNNOutput"]
