"""Equivariant nn.Modules built on gatorch.functional.

Layers take the algebra first, work on ``(..., channels, dim)`` multivectors plus optional
``(..., s_channels)`` scalars, and return ``(mv, s)``. More layers arrive with the layers
issue (bilinear, nonlinearities, normalisation, attention, blocks).
"""

from gatorch.layers.linear import EquiLinear
from gatorch.layers.nonlinear import EquiLayerNorm, ScalarGatedNonlinearity

__all__ = ["EquiLayerNorm", "EquiLinear", "ScalarGatedNonlinearity"]
