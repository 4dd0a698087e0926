"""Deprecated old path of :mod:`gatorch.layers.fields.norm` (re-exports its names)."""

import warnings

from gatorch.functional.fields.whiten import (
    whiten,
)
from gatorch.layers.fields.norm import (
    CliffordBatchNorm1d,
    CliffordBatchNorm2d,
    CliffordBatchNorm3d,
    CliffordGroupNorm1d,
    CliffordGroupNorm2d,
    CliffordGroupNorm3d,
    EquiFieldGroupNorm,
)

__all__ = [
    "CliffordBatchNorm1d",
    "CliffordBatchNorm2d",
    "CliffordBatchNorm3d",
    "CliffordGroupNorm1d",
    "CliffordGroupNorm2d",
    "CliffordGroupNorm3d",
    "EquiFieldGroupNorm",
    "whiten",
]

warnings.warn(
    "gatorch.layers.field_norm is deprecated; use gatorch.layers.fields.norm "
    "(whiten: gatorch.functional.fields.whiten)",
    DeprecationWarning,
    stacklevel=2,
)
