"""Configuration objects for attention, MLP and norm layers, passed in explicitly (no global flags).

All are frozen dataclasses; :meth:`cast` accepts an instance, a mapping with a subset of
the fields (unknown keys are an error) or ``None`` (the defaults).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from gatorch.functional.nonlinear import EPS_MODES, GATES
from gatorch.layers._checks import check_int
from gatorch.layers.bilinear import WEIGHT_INITS

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["BLOCK_NORMS", "MLP_STYLES", "AttentionConfig", "CliffordMLPConfig", "MLPConfig", "NormConfig"]

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


def _check_bool(owner: str, name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: {name} must be True or False, got {value!r}")


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
    qkv_norm : bool
        Normalise queries, keys and values per head after the projection (L-GATr): the
        multivector channels of each head by :func:`~gatorch.functional.nonlinear.equi_layer_norm`,
        the scalar channels by a layer norm, both without a learnt gain and with the
        epsilon settings of the layer's :class:`NormConfig`.
    head_scale : bool
        A learnt factor per head (initialised to 1) multiplies its output before the heads
        are mixed (NormFormer's HeadScale, an L-GATr option).
    qkv_bias : bool
        Bias of the query/key/value projections (L-GATr has none).
    """

    num_heads: int = 4
    head_mv_channels: int | None = None
    head_s_channels: int | None = None
    multi_query: bool = False
    distance_features: bool = False
    dropout: float = 0.0
    qkv_norm: bool = False
    head_scale: bool = False
    qkv_bias: bool = True

    def __post_init__(self) -> None:
        check_int("AttentionConfig", "num_heads", self.num_heads, 1)
        check_int("AttentionConfig", "head_mv_channels", self.head_mv_channels, 1, optional=True)
        check_int("AttentionConfig", "head_s_channels", self.head_s_channels, 0, optional=True)
        _check_prob("AttentionConfig", self.dropout)
        for name in ("multi_query", "distance_features", "qkv_norm", "head_scale", "qkv_bias"):
            _check_bool("AttentionConfig", name, getattr(self, name))

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
        With ``num_layers=1`` the bilinear layer alone maps the input channels to the output
        channels (no hidden width).
    activation : {"gelu", "relu", "sigmoid", "silu", "tanh"}
        The scalar gate.
    join : bool or None
        Whether the bilinear layer adds the equivariant join. ``None``: only for degenerate
        algebras (where the geometric product cannot express it).
    dropout : float
        Grade dropout after each layer.
    bilinear_norm : bool
        Normalise the output of the bilinear layer (multivector and scalar channels, no
        learnt gain, the epsilon settings of the layer's :class:`NormConfig`), as L-GATr's
        ``GeometricBilinear`` does.
    """

    mlp_ratio: int = 4
    num_layers: int = 2
    activation: str = "gelu"
    join: bool | None = None
    dropout: float = 0.0
    bilinear_norm: bool = False

    def __post_init__(self) -> None:
        check_int("MLPConfig", "mlp_ratio", self.mlp_ratio, 1)
        check_int("MLPConfig", "num_layers", self.num_layers, 1)
        _check_bool("MLPConfig", "bilinear_norm", self.bilinear_norm)
        if self.activation not in GATES:
            raise ValueError(
                f"MLPConfig: unknown activation {self.activation!r}; expected one of {sorted(GATES)}"
            )
        if self.join not in (None, True, False):
            raise ValueError(f"MLPConfig: join must be True, False or None, got {self.join!r}")
        _check_prob("MLPConfig", self.dropout)


#: Scalar-channel affine options of :class:`NormConfig`.
SCALAR_AFFINE = ("affine", "weight", "none")


@dataclass(frozen=True)
class NormConfig(_Config):
    r"""Options of the layer norms of a block (:class:`~gatorch.layers.EquiLayerNorm`).

    The defaults are GATr's (the multivector norm clamped at :math:`\epsilon = 0.01`, so its
    gain on null inputs, e.g. conformal points or lightlike vectors, is at most 10; see
    :func:`~gatorch.functional.nonlinear.equi_layer_norm`); L-GATr's layer norm is
    :meth:`NormConfig.lgatr`:
    ``NormConfig(eps=0.01, eps_mode="clamp", scalar_eps=1e-5, mv_affine=True, scalar_affine="weight")``
    (``norm_elementwise_affine=True``, its default) or the same with ``mv_affine=False,
    scalar_affine="none"``.

    Attributes
    ----------
    eps : float
        Epsilon of the multivector norm (0.01): the floor that bounds its gain on null
        inputs by :math:`1/\sqrt{\epsilon}`.
    eps_mode : {"add", "clamp"}
        :math:`\sqrt{\bar Q + \epsilon}` or :math:`\sqrt{\max(\bar Q, \epsilon)}`, see
        :func:`~gatorch.functional.nonlinear.equi_layer_norm`.
    scalar_eps : float or None
        Epsilon of the scalar layer norm; ``None``: ``eps``.
    mv_affine : bool
        A learnt gain per multivector channel and grade (initialised to 1). Scaling each
        grade by an invariant keeps the layer equivariant.
    scalar_affine : {"affine", "weight", "none"}
        The scalar layer norm's learnt gain and bias, gain only, or neither.
    """

    eps: float = 0.01
    eps_mode: str = "clamp"
    scalar_eps: float | None = None
    mv_affine: bool = False
    scalar_affine: str = "affine"

    def __post_init__(self) -> None:
        for name in ("eps", "scalar_eps"):
            value = getattr(self, name)
            if value is None and name == "scalar_eps":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"NormConfig: {name} must be a float > 0, got {value!r}")
        if self.eps_mode not in EPS_MODES:
            raise ValueError(f"NormConfig: eps_mode must be one of {EPS_MODES}, got {self.eps_mode!r}")
        _check_bool("NormConfig", "mv_affine", self.mv_affine)
        if self.scalar_affine not in SCALAR_AFFINE:
            raise ValueError(
                f"NormConfig: scalar_affine must be one of {SCALAR_AFFINE}, got {self.scalar_affine!r}"
            )

    @classmethod
    def lgatr(cls, elementwise_affine: bool = True) -> NormConfig:
        """L-GATr's layer norm (``norm_elementwise_affine=elementwise_affine``)."""
        return cls(
            eps=0.01,
            eps_mode="clamp",
            scalar_eps=1e-5,
            mv_affine=elementwise_affine,
            scalar_affine="weight" if elementwise_affine else "none",
        )

    @property
    def s_eps(self) -> float:
        """The scalar layer norm's epsilon."""
        return float(self.eps if self.scalar_eps is None else self.scalar_eps)


#: The two structures of :class:`CliffordMLPConfig`.
MLP_STYLES = ("gatorch", "cgenn")
#: The block norms of :class:`CliffordMLPConfig` (``"cgenn"`` style).
BLOCK_NORMS = ("mean", "rms", "none")


@dataclass(frozen=True)
class CliffordMLPConfig(_Config):
    """Options of :class:`~gatorch.layers.mlp.CliffordMLP` (and of the message and update MLPs of
    :class:`~gatorch.nets.gnn.CliffordGNN`).

    Attributes
    ----------
    style : {"gatorch", "cgenn"}
        ``"gatorch"``: EquiLinear -> SteerableGeometricProduct -> MVSiLU -> EquiLinear.
        ``"cgenn"``: ``blocks`` x (EquiLinear -> MVSiLU -> SteerableGeometricProduct ->
        EquiLayerNorm), CGENN's ``CEMLP``, whose layer norm is the mean-of-norms statistic
        with a learnt scale per channel.
    blocks : int
        Blocks of the ``"cgenn"`` style (CGENN: 2); must be 2 for ``"gatorch"``, whose
        structure is fixed.
    normalization_init : float, optional
        The steerable product's right-operand normalisation
        (:func:`~gatorch.functional.steerable.grade_normalize`), with logits starting here;
        ``None``: off. CGENN: 0.0.
    weight_init : {"variance", "cgenn"}
        Initialisation of the steerable product's path weights
        (:class:`~gatorch.layers.SteerableGeometricProduct`).
    block_norm : {"mean", "rms", "none"}
        The layer norm closing each block of the ``"cgenn"`` style: CGENN's mean of the
        channel norms with a learnt scale per channel (``"mean"``), GATr's root mean square
        without a scale (``"rms"``), or none.
    """

    style: str = "gatorch"
    blocks: int = 2
    normalization_init: float | None = None
    weight_init: str = "variance"
    block_norm: str = "mean"

    def __post_init__(self) -> None:
        if self.style not in MLP_STYLES:
            raise ValueError(f"CliffordMLPConfig: style must be one of {MLP_STYLES}, got {self.style!r}")
        check_int("CliffordMLPConfig", "blocks", self.blocks, 1)
        if self.style == "gatorch" and self.blocks != 2:
            raise ValueError(
                f"CliffordMLPConfig: the 'gatorch' style has 2 linear maps (blocks=2), got {self.blocks}"
            )
        if self.normalization_init is not None and not isinstance(self.normalization_init, (int, float)):
            raise TypeError(
                "CliffordMLPConfig: normalization_init must be a float or None, "
                f"got {self.normalization_init!r}"
            )
        if self.block_norm not in BLOCK_NORMS:
            raise ValueError(
                f"CliffordMLPConfig: block_norm must be one of {BLOCK_NORMS}, got {self.block_norm!r}"
            )
        if self.weight_init not in WEIGHT_INITS:
            raise ValueError(
                f"CliffordMLPConfig: weight_init must be one of {WEIGHT_INITS}, got {self.weight_init!r}"
            )
