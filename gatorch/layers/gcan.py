"""Deprecated old path of :mod:`gatorch.layers.zoo.gcan` (re-exports its names)."""

import warnings

from gatorch.functional.zoo.gcan import (
    group_action_linear_naive,
    group_action_matrices,
)
from gatorch.layers.zoo.gcan import (
    GCANActivation,
    GCANGroupNorm,
    GroupActionLinear,
    transform_parameters,
)

__all__ = [
    "GCANActivation",
    "GCANGroupNorm",
    "GroupActionLinear",
    "group_action_linear_naive",
    "group_action_matrices",
    "transform_parameters",
]

warnings.warn(
    "gatorch.layers.gcan is deprecated; use gatorch.layers.zoo.gcan "
    "(group_action_matrices, group_action_linear_naive: gatorch.functional.zoo.gcan)",
    DeprecationWarning,
    stacklevel=2,
)
