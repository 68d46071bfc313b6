"""Reusable network building blocks for the predictors."""

from .agat import AGATConv
from .composition import CompositionAttention, composition_fractions

__all__ = ["AGATConv", "CompositionAttention", "composition_fractions"]
