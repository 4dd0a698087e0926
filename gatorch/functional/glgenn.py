"""Deprecated old path of :mod:`gatorch.functional.zoo.glgenn` (re-exports its names)."""

import warnings

from gatorch.functional.zoo.glgenn import (
    NUM_QUATERNION_TYPES,
    qt_gp,
    qt_gp_init_std,
    qt_grade_paths,
    qt_grades,
    qt_index,
    qt_linear,
    qt_linear_readout,
    qt_paths,
    qt_project,
    quaternion_type,
)

__all__ = [
    "NUM_QUATERNION_TYPES",
    "qt_gp",
    "qt_gp_init_std",
    "qt_grade_paths",
    "qt_grades",
    "qt_index",
    "qt_linear",
    "qt_linear_readout",
    "qt_paths",
    "qt_project",
    "quaternion_type",
]

warnings.warn(
    "gatorch.functional.glgenn is deprecated; use gatorch.functional.zoo.glgenn",
    DeprecationWarning,
    stacklevel=2,
)
