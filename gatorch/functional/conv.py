"""Deprecated old path of :mod:`gatorch.functional.fields.conv` (re-exports its names)."""

import warnings

from gatorch.functional.fields.conv import (
    PADDING_MODES,
    ROTATION_EPS,
    ConvPlan,
    RotationPlan,
    clifford_conv,
    clifford_kernel,
    clifford_linear,
    clifford_rotation_kernel,
    conv_plan,
    rotation_plan,
)

__all__ = [
    "PADDING_MODES",
    "ROTATION_EPS",
    "ConvPlan",
    "RotationPlan",
    "clifford_conv",
    "clifford_kernel",
    "clifford_linear",
    "clifford_rotation_kernel",
    "conv_plan",
    "rotation_plan",
]

warnings.warn(
    "gatorch.functional.conv is deprecated; use gatorch.functional.fields.conv",
    DeprecationWarning,
    stacklevel=2,
)
