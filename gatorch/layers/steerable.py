"""Deprecated old path of CGENN's layers: :class:`~gatorch.layers.bilinear.SteerableGeometricProduct`
(now in :mod:`gatorch.layers.bilinear`) and :class:`~gatorch.layers.nonlinear.MVSiLU` (now in
:mod:`gatorch.layers.nonlinear`); re-exports their names."""

import warnings

from gatorch.layers.bilinear import WEIGHT_INITS, SteerableGeometricProduct
from gatorch.layers.nonlinear import MVSiLU

__all__ = ["WEIGHT_INITS", "MVSiLU", "SteerableGeometricProduct"]

warnings.warn(
    "gatorch.layers.steerable is deprecated; use gatorch.layers.bilinear (SteerableGeometricProduct) "
    "and gatorch.layers.nonlinear (MVSiLU), or import both from gatorch.layers",
    DeprecationWarning,
    stacklevel=2,
)
