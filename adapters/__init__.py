"""Adapters that attach the CrysGNN teacher to existing predictors.

Installed as ``crysgnn_dgl.adapters`` (the top-level name ``adapters`` belongs to an
unrelated PyPI distribution).
"""
