"""Equivariant nn.Modules built on gatorch.functional.

Layers take the algebra first, work on ``(..., channels, dim)`` multivectors plus optional
``(..., s_channels)`` scalars, and return ``(mv, s)``. Modules by role (``linear``, ``bilinear``,
``nonlinear``, ``mlp``, ``message_passing``, ...); layers on fields in :mod:`gatorch.layers.fields`;
the seed-paper architectures' layers in :mod:`gatorch.layers.zoo`.
"""

from gatorch.layers.attention import CrossAttention, SelfAttention
from gatorch.layers.bilinear import GeometricBilinear, SteerableGeometricProduct
from gatorch.layers.block import ConditionalGATrBlock, GATrBlock
from gatorch.layers.config import AttentionConfig, CliffordMLPConfig, MLPConfig, NormConfig
from gatorch.layers.dropout import GradeDropout
from gatorch.layers.fields.conv import CliffordConv1d, CliffordConv2d, CliffordConv3d, CliffordLinear
from gatorch.layers.fields.fourier import CliffordSpectralConv2d, CliffordSpectralConv3d
from gatorch.layers.fields.norm import (
    CliffordBatchNorm1d,
    CliffordBatchNorm2d,
    CliffordBatchNorm3d,
    CliffordGroupNorm1d,
    CliffordGroupNorm2d,
    CliffordGroupNorm3d,
    EquiFieldGroupNorm,
)
from gatorch.layers.fields.steerable_conv import CliffordSteerableConv2d, CliffordSteerableConv3d
from gatorch.layers.linear import EquiLinear, MVScalarLinear
from gatorch.layers.message_passing import CliffordGNNLayer
from gatorch.layers.mlp import CliffordMLP, GeoMLP
from gatorch.layers.nonlinear import EquiLayerNorm, MVSiLU, ScalarGatedNonlinearity
from gatorch.layers.policy import set_kernel_policy
from gatorch.layers.slim import (
    ConditionalSlimBlock,
    SlimBlock,
    SlimCrossAttention,
    SlimDropout,
    SlimGLU,
    SlimLinear,
    SlimMLP,
    SlimRMSNorm,
    SlimSelfAttention,
)
from gatorch.layers.zoo.csmpn import CSMPNLayer, SimplexEmbedding
from gatorch.layers.zoo.ga_attention import GACovariantAttention, GAInvariantAttention
from gatorch.layers.zoo.gcan import GCANActivation, GCANGroupNorm, GroupActionLinear, transform_parameters
from gatorch.layers.zoo.glgenn import QTGeometricProduct, QTLinear

__all__ = [
    "AttentionConfig",
    "CSMPNLayer",
    "CliffordBatchNorm1d",
    "CliffordBatchNorm2d",
    "CliffordBatchNorm3d",
    "CliffordConv1d",
    "CliffordConv2d",
    "CliffordConv3d",
    "CliffordGNNLayer",
    "CliffordGroupNorm1d",
    "CliffordGroupNorm2d",
    "CliffordGroupNorm3d",
    "CliffordLinear",
    "CliffordMLP",
    "CliffordMLPConfig",
    "CliffordSpectralConv2d",
    "CliffordSpectralConv3d",
    "CliffordSteerableConv2d",
    "CliffordSteerableConv3d",
    "ConditionalGATrBlock",
    "ConditionalSlimBlock",
    "CrossAttention",
    "EquiFieldGroupNorm",
    "EquiLayerNorm",
    "EquiLinear",
    "GACovariantAttention",
    "GAInvariantAttention",
    "GATrBlock",
    "GCANActivation",
    "GCANGroupNorm",
    "GeoMLP",
    "GeometricBilinear",
    "GradeDropout",
    "GroupActionLinear",
    "MLPConfig",
    "MVScalarLinear",
    "MVSiLU",
    "NormConfig",
    "QTGeometricProduct",
    "QTLinear",
    "ScalarGatedNonlinearity",
    "SelfAttention",
    "SimplexEmbedding",
    "SlimBlock",
    "SlimCrossAttention",
    "SlimDropout",
    "SlimGLU",
    "SlimLinear",
    "SlimMLP",
    "SlimRMSNorm",
    "SlimSelfAttention",
    "SteerableGeometricProduct",
    "set_kernel_policy",
    "transform_parameters",
]
