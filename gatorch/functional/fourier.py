"""Deprecated old path of :mod:`gatorch.functional.fields.fourier` (re-exports its names)."""

import warnings

from gatorch.functional.fields.fourier import (
    dual_pairs,
    right_product_gather,
    right_product_index,
    spectral_conv_dual,
    spectral_conv_rfft,
)

__all__ = [
    "dual_pairs",
    "right_product_gather",
    "right_product_index",
    "spectral_conv_dual",
    "spectral_conv_rfft",
]

warnings.warn(
    "gatorch.functional.fourier is deprecated; use gatorch.functional.fields.fourier",
    DeprecationWarning,
    stacklevel=2,
)
