"""Layers on multivector fields ``(batch, channels, *spatial, dim)``: convolutions, Fourier layers,
field norms and Clifford-steerable convolutions."""

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
from gatorch.layers.fields.steerable_conv import (
    CliffordSteerableConv2d,
    CliffordSteerableConv3d,
    CliffordSteerableConvNd,
)

__all__ = [
    "CliffordBatchNorm1d",
    "CliffordBatchNorm2d",
    "CliffordBatchNorm3d",
    "CliffordConv1d",
    "CliffordConv2d",
    "CliffordConv3d",
    "CliffordGroupNorm1d",
    "CliffordGroupNorm2d",
    "CliffordGroupNorm3d",
    "CliffordLinear",
    "CliffordSpectralConv2d",
    "CliffordSpectralConv3d",
    "CliffordSteerableConv2d",
    "CliffordSteerableConv3d",
    "CliffordSteerableConvNd",
    "EquiFieldGroupNorm",
]
