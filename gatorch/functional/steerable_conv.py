"""Deprecated old path of :mod:`gatorch.functional.fields.steerable_conv` (re-exports its names)."""

import warnings

from gatorch.functional.fields.steerable_conv import (
    ConvKernelTables,
    conv_kernel_tables,
    embed_positions,
    kernel_offsets,
    spatial_blades,
    steerable_kernel_matrix,
)

__all__ = [
    "ConvKernelTables",
    "conv_kernel_tables",
    "embed_positions",
    "kernel_offsets",
    "spatial_blades",
    "steerable_kernel_matrix",
]

warnings.warn(
    "gatorch.functional.steerable_conv is deprecated; use gatorch.functional.fields.steerable_conv",
    DeprecationWarning,
    stacklevel=2,
)
