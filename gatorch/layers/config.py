"""Configuration objects for attention and MLP layers, passed in explicitly (no global flags).

Both are frozen dataclasses; :meth:`cast` accepts an instance, a mapping with a subset of
the fields (unknown keys are an error) or ``None`` (the defaults).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from gatorch.functional.nonlinear import GATES
from gatorch.layers._checks import check_int

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["AttentionConfig", "MLPConfig"]

_C = TypeVar("_C", bound="_Config")


class _Config:
    """Shared ``cast`` for the config dataclasses."""

    @classmethod
    def cast(cls: type[_C], config: _C | Mapping[str, Any] | None) -> _C:
        """An instance of ``cls`` from an instance, a mapping of field values, or ``None``."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if isinstance(config, Mapping):
            # every subclass is a dataclass, which mypy cannot see from the bound of _C
            names = {f.name for f in dataclasses.fields(cast("type[DataclassInstance]", cls))}
            unknown = sorted(set(config) - names)
            if unknown:
                raise ValueError(
                    f"{cls.__name__}: unknown option(s) {unknown}; known options are {sorted(names)}"
                )
            return cls(**config)
        raise TypeError(
            f"{cls.__name__}.cast: expected a {cls.__name__}, a mapping or None, got {type(config).__name__}"
        )


def _check_prob(owner: str, value: object) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{owner}: dropout must be a float in [0, 1), got {value!r}")


@dataclass(frozen=True)
class AttentionConfig(_Config):
    """Options of :class:`~gatorch.layers.SelfAttention` and :class:`~gatorch.layers.CrossAttention`.

    Attributes
    ----------
    num_heads : int
    head_mv_channels : int or None
        Multivector channels per head for queries, keys and values. ``None``:
        ``max(1, mv_channels // num_heads)``.
    head_s_channels : int or None
        Scalar channels per head. ``None``: ``max(4, s_channels // num_heads)`` when the
        layer has scalar channels, else 0.
    multi_query : bool
        One key/value head shared by all query heads.
    distance_features : bool
        Add the PGA distance term to the logits (Euclidean PGA only), see
        :mod:`gatorch.functional.attention`.
    dropout : float
        Grade dropout on the layer output (and dropout on the attention weights).
    """

    num_heads: int = 4
    head_mv_channels: int | None = None
    head_s_channels: int | None = None
    multi_query: bool = False
    distance_features: bool = False
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check_int("AttentionConfig", "num_heads", self.num_heads, 1)
        check_int("AttentionConfig", "head_mv_channels", self.head_mv_channels, 1, optional=True)
        check_int("AttentionConfig", "head_s_channels", self.head_s_channels, 0, optional=True)
        _check_prob("AttentionConfig", self.dropout)

    def head_channels(self, mv_channels: int, s_channels: int) -> tuple[int, int]:
        """``(head_mv_channels, head_s_channels)`` for a layer with these input channels."""
        hm = (
            self.head_mv_channels
            if self.head_mv_channels is not None
            else max(1, mv_channels // self.num_heads)
        )
        if self.head_s_channels is not None:
            hs = self.head_s_channels
        else:
            hs = max(4, s_channels // self.num_heads) if s_channels else 0
        return hm, hs


@dataclass(frozen=True)
class MLPConfig(_Config):
    """Options of :class:`~gatorch.layers.GeoMLP`.

    Attributes
    ----------
    mlp_ratio : int
        Hidden channels (multivector and scalar) = ``mlp_ratio`` times the input channels.
    num_layers : int
        Layers including input and output: a :class:`~gatorch.layers.GeometricBilinear`
        first, then ``num_layers - 1`` times (gate, :class:`~gatorch.layers.EquiLinear`).
        Must be at least 2.
    activation : {"gelu", "relu", "sigmoid"}
        The scalar gate.
    join : bool or None
        Whether the bilinear layer adds the equivariant join. ``None``: only for degenerate
        algebras (where the geometric product cannot express it).
    dropout : float
        Grade dropout after each layer.
    """

    mlp_ratio: int = 4
    num_layers: int = 2
    activation: str = "gelu"
    join: bool | None = None
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check_int("MLPConfig", "mlp_ratio", self.mlp_ratio, 1)
        check_int("MLPConfig", "num_layers", self.num_layers, 2)
        if self.activation not in GATES:
            raise ValueError(
                f"MLPConfig: unknown activation {self.activation!r}; expected one of {sorted(GATES)}"
            )
        if self.join not in (None, True, False):
            raise ValueError(f"MLPConfig: join must be True, False or None, got {self.join!r}")
        _check_prob("MLPConfig", self.dropout)
