"""Deprecated old path of :mod:`gatorch.layers.zoo.ga_attention` (re-exports its names)."""

import warnings

from gatorch.layers.zoo.ga_attention import (
    GACovariantAttention,
    GAInvariantAttention,
    ga_attention_invariant_dims,
)

__all__ = ["GACovariantAttention", "GAInvariantAttention", "ga_attention_invariant_dims"]

warnings.warn(
    "gatorch.layers.ga_attention is deprecated; use gatorch.layers.zoo.ga_attention",
    DeprecationWarning,
    stacklevel=2,
)
