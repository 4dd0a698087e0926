"""Equivariant nn.Modules built on gatorch.functional.

Layers take the algebra first, work on ``(..., channels, dim)`` multivectors plus optional
``(..., s_channels)`` scalars, and return ``(mv, s)``.
"""

from gatorch.layers.attention import CrossAttention, SelfAttention
from gatorch.layers.bilinear import GeometricBilinear
from gatorch.layers.block import GATrBlock
from gatorch.layers.config import AttentionConfig, MLPConfig
from gatorch.layers.dropout import GradeDropout
from gatorch.layers.linear import EquiLinear
from gatorch.layers.mlp import GeoMLP
from gatorch.layers.nonlinear import EquiLayerNorm, ScalarGatedNonlinearity
from gatorch.layers.steerable import MVSiLU, SteerableGeometricProduct

__all__ = [
    "AttentionConfig",
    "CrossAttention",
    "EquiLayerNorm",
    "EquiLinear",
    "GATrBlock",
    "GeoMLP",
    "GeometricBilinear",
    "GradeDropout",
    "MLPConfig",
    "MVSiLU",
    "ScalarGatedNonlinearity",
    "SelfAttention",
    "SteerableGeometricProduct",
]
