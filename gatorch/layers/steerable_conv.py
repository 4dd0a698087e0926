"""Deprecated old path of :mod:`gatorch.layers.fields.steerable_conv` (re-exports its names)."""

import warnings

from gatorch.layers.fields.steerable_conv import (
    PADDING_MODES,
    CliffordSteerableConv2d,
    CliffordSteerableConv3d,
    CliffordSteerableConvNd,
)

__all__ = ["PADDING_MODES", "CliffordSteerableConv2d", "CliffordSteerableConv3d", "CliffordSteerableConvNd"]

warnings.warn(
    "gatorch.layers.steerable_conv is deprecated; use gatorch.layers.fields.steerable_conv",
    DeprecationWarning,
    stacklevel=2,
)
