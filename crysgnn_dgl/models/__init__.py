"""Model architectures."""

from .cgcnn import CGCNN, CGCNNSettings
from .conv import CGCNNConv
from .crysgnn import CrysGNN, CrysGNNOutput
from .gatgnn import GATGNN, GATGNNSettings

__all__ = [
    "CGCNN",
    "CGCNNConv",
    "CGCNNSettings",
    "CrysGNN",
    "CrysGNNOutput",
    "GATGNN",
    "GATGNNSettings",
]
