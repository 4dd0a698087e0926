"""Deprecated old path of :mod:`gatorch.layers.zoo.glgenn` (re-exports its names)."""

import warnings

from gatorch.layers.zoo.glgenn import (
    QTGeometricProduct,
    QTLinear,
)

__all__ = ["QTGeometricProduct", "QTLinear"]

warnings.warn(
    "gatorch.layers.glgenn is deprecated; use gatorch.layers.zoo.glgenn",
    DeprecationWarning,
    stacklevel=2,
)
