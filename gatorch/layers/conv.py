"""Deprecated old path of :mod:`gatorch.layers.fields.conv` (re-exports its names)."""

import warnings

from gatorch.layers.fields.conv import (
    CliffordConv1d,
    CliffordConv2d,
    CliffordConv3d,
    CliffordLinear,
)

__all__ = ["CliffordConv1d", "CliffordConv2d", "CliffordConv3d", "CliffordLinear"]

warnings.warn(
    "gatorch.layers.conv is deprecated; use gatorch.layers.fields.conv",
    DeprecationWarning,
    stacklevel=2,
)
