"""Deprecated old path of :mod:`gatorch.layers.fields.fourier` (re-exports its names)."""

import warnings

from gatorch.layers.fields.fourier import (
    CliffordSpectralConv2d,
    CliffordSpectralConv3d,
)

__all__ = ["CliffordSpectralConv2d", "CliffordSpectralConv3d"]

warnings.warn(
    "gatorch.layers.fourier is deprecated; use gatorch.layers.fields.fourier",
    DeprecationWarning,
    stacklevel=2,
)
