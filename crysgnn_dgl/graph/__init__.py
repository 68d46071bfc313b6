"""Crystal structures → CrysGNN graphs (DGL), with pre-training labels."""

from .atom_features import atom_feature_table
from .builder import BuildReport, build_graph, build_graphs, graph_from_arrays, graph_from_structure
from .consistency import GraphSettingsMismatch, settings_mismatch
from .errors import StructureError
from .gaussian import GaussianExpansion, gaussian_centers
from .io import LabelledTable, StructureTable, iter_structures, read_cif_table, read_labelled_table, read_structure_table
from .labels import CRYSTAL_SYSTEMS, connectivity_targets, crystal_labels, pair_index
from .neighbors import NeighborTable, PaddingWarning, neighbor_table
from .structures import to_structure, validate_structure

__all__ = [
    "BuildReport",
    "CRYSTAL_SYSTEMS",
    "GaussianExpansion",
    "GraphSettingsMismatch",
    "LabelledTable",
    "NeighborTable",
    "PaddingWarning",
    "StructureError",
    "StructureTable",
    "atom_feature_table",
    "build_graph",
    "build_graphs",
    "connectivity_targets",
    "crystal_labels",
    "gaussian_centers",
    "graph_from_arrays",
    "graph_from_structure",
    "iter_structures",
    "neighbor_table",
    "pair_index",
    "read_cif_table",
    "read_labelled_table",
    "read_structure_table",
    "settings_mismatch",
    "to_structure",
    "validate_structure",
]
