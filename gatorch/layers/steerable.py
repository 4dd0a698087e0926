r"""CGENN's layers: ``SteerableGeometricProduct`` and ``MVSiLU``.

Both take and return ``(mv, scalars)`` like the other layers, with
``mv: (..., channels, dim)`` and ``scalars: (..., s_channels)``. CGENN's third ingredient,
equivariant dropout of whole grades, is :class:`gatorch.layers.dropout.GradeDropout`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gatorch.functional.algebra import Algebra
from gatorch.functional.policy import KernelPolicy
from gatorch.functional.steerable import (
    SteerableTables,
    blade_inner,
    grade_normalize,
    mv_silu,
    steerable_gp,
    steerable_init_std,
    steerable_paths,
    steerable_plan,
    steerable_tables,
)
from gatorch.layers._checks import check_algebra, check_int, check_mv
from gatorch.layers.linear import EquiLinear
from gatorch.layers.policy import check_kernel_policy, set_kernel_policy

__all__ = ["WEIGHT_INITS", "MVSiLU", "SteerableGeometricProduct"]

#: The initialisations of the path weights of :class:`SteerableGeometricProduct`.
WEIGHT_INITS = ("variance", "cgenn")


def _pass_scalars(mv: Tensor, scalars: Tensor | None) -> Tensor:
    return mv.new_zeros(*mv.shape[:-2], 0) if scalars is None else scalars


class SteerableGeometricProduct(nn.Module):
    r"""CGENN's steerable geometric product layer (with its first-order term).

    .. math::
        y = \tfrac{1}{\sqrt 2}\Big(L(x, s) + \mathrm{sgp}_W\big(x,\ R(x, s)\big)\Big)

    with :math:`R` and :math:`L` :class:`~gatorch.layers.EquiLinear` maps (``channels ->
    channels``; :math:`R` without bias, as in CGENN) and :math:`\mathrm{sgp}_W` the
    per-channel, per-path weighted geometric product
    :func:`gatorch.functional.steerable.steerable_gp`. With
    ``include_first_order=False`` the output is :math:`\mathrm{sgp}_W(x, R(x, s))` alone.
    With ``normalization_init`` set, the right operand is
    :func:`~gatorch.functional.steerable.grade_normalize`\ d first,
    :math:`R(x, s) \to R(x, s) / (\sigma(a)(\lVert R(x, s)^{(k)}\rVert - 1) + 1)` per channel
    and grade with learnt logits ``a`` starting at ``normalization_init`` (CGENN's
    ``NormalizationLayer``, on in its layers with ``a = 0``): the product then grows
    linearly, not quadratically, with the input's scale.
    Equivariant for any weights; scalars pass through unchanged.

    Initialisation (``weight_init``): ``"variance"`` (the default) draws the path weights
    with the standard deviations of :func:`gatorch.functional.steerable.steerable_init_std`,
    so for unit-variance inputs the product, the first-order term and their scaled sum
    all have a variance near 1 (measured 0.9-1.1 on non-degenerate algebras, 0.65-0.8 on
    degenerate ones, where :class:`~gatorch.layers.EquiLinear` itself gives about 0.8);
    ``"cgenn"`` draws every path weight with CGENN's standard deviation
    :math:`1 / \sqrt{n + 1}`.

    Parameters
    ----------
    alg : Algebra
    channels : int
        Multivector channels (in and out).
    in_s_channels : int
        Scalar channels fed into both linear maps (0: none).
    include_first_order : bool
    normalization_init : float, optional
        Start value of the normalisation logits of the right operand (CGENN: 0.0);
        ``None`` (the default): no normalisation.
    weight_init : {"variance", "cgenn"}
    kernel_policy : KernelPolicy, optional
        The sparse kernels to run, for the product and its linear maps
        (:mod:`gatorch.functional.policy`), kept as the attribute ``kernel_policy`` (see
        :func:`gatorch.layers.set_kernel_policy`); ``None``: the ambient policy.

    Shapes
    ------
    ``forward(mv, scalars=None) -> (mv_out, scalars)`` with ``mv, mv_out: (..., channels,
    dim)`` and ``scalars: (..., in_s_channels)`` (required when ``in_s_channels > 0``;
    an empty ``(..., 0)`` tensor is returned when ``None``).

    Compilation: the product's plan (Python tuples) and its ``(dim, dim)`` tables
    (non-persistent buffers, outside the ``state_dict``) are built at construction, so a
    fresh layer compiles with ``torch.compile(fullgraph=True)``.

    Examples
    --------
    >>> import torch
    >>> from gatorch import VGA3
    >>> from gatorch.layers import SteerableGeometricProduct
    >>> layer = SteerableGeometricProduct(VGA3, 4)
    >>> layer.weight.shape  # one weight per channel and grade path (20 paths in Cl(3, 0))
    torch.Size([4, 20])
    >>> layer(torch.randn(7, 4, 8))[0].shape
    torch.Size([7, 4, 8])
    """

    #: The linear maps L and R (GLGENN's subclass swaps in its own).
    linear_class: type[nn.Module] = EquiLinear

    _sign: Tensor
    _path: Tensor
    _right: Tensor

    def __init__(
        self,
        alg: Algebra,
        channels: int,
        *,
        in_s_channels: int = 0,
        include_first_order: bool = True,
        normalization_init: float | None = None,
        weight_init: str = "variance",
        kernel_policy: KernelPolicy | None = None,
    ) -> None:
        super().__init__()
        who = type(self).__name__
        check_algebra(alg, who)
        check_int(who, "channels", channels, 1)
        check_int(who, "in_s_channels", in_s_channels, 0)
        self.alg, self.channels, self.in_s_channels = alg, channels, in_s_channels
        self.include_first_order = bool(include_first_order)
        if weight_init not in WEIGHT_INITS:
            raise ValueError(f"{who}: weight_init must be one of {WEIGHT_INITS}, got {weight_init!r}")
        if normalization_init is not None and not isinstance(normalization_init, (int, float)):
            raise TypeError(f"{who}: normalization_init must be a float or None, got {normalization_init!r}")
        self.weight_init = weight_init
        self.normalization_init = None if normalization_init is None else float(normalization_init)
        linear = self.linear_class
        self.right = linear(alg, channels, channels, in_s_channels=in_s_channels, bias=False)
        self.left = (
            linear(alg, channels, channels, in_s_channels=in_s_channels) if include_first_order else None
        )
        self.weight = nn.Parameter(torch.empty(channels, len(self.paths(alg))))
        self.normalization = (
            nn.Parameter(torch.empty(channels, alg.n + 1)) if self.normalization_init is not None else None
        )
        self._plan = steerable_plan(alg)
        tables = steerable_tables(alg)
        self.register_buffer("_sign", tables.sign, persistent=False)
        self.register_buffer("_path", tables.path, persistent=False)
        self.register_buffer("_right", tables.right, persistent=False)
        self.kernel_policy = check_kernel_policy(who, kernel_policy)
        set_kernel_policy(self, self.kernel_policy)
        self.reset_parameters()

    @staticmethod
    def paths(alg: Algebra) -> tuple[tuple[int, int, int], ...]:
        """The weight's paths (grade triples: :func:`~gatorch.functional.steerable.steerable_paths`)."""
        return steerable_paths(alg)

    @staticmethod
    def init_std(alg: Algebra) -> Tensor:
        """Per-path standard deviation of the initial weights."""
        return steerable_init_std(alg)

    @staticmethod
    def product(alg: Algebra, x: Tensor, y: Tensor, weight: Tensor) -> Tensor:
        """The weighted product of ``x`` and the right projection ``y``."""
        return steerable_gp(alg, x, y, weight)

    def tables(self) -> SteerableTables:
        """The plan of the product and its tables (the layer's buffers)."""
        return SteerableTables(self._plan, self._sign, self._path, self._right)

    def _weighted_product(self, x: Tensor, y: Tensor) -> Tensor:
        """:meth:`product` with the layer's weights and tables."""
        return steerable_gp(self.alg, x, y, self.weight, tables=self.tables(), policy=self.kernel_policy)

    def reset_parameters(self) -> None:
        """Path weights from :meth:`init_std`; the linear maps reset themselves."""
        if self.weight_init == "cgenn":
            std = torch.full((self.weight.shape[1],), 1.0 / math.sqrt(self.alg.n + 1))
        else:
            std = self.init_std(self.alg)
        with torch.no_grad():
            self.weight.normal_().mul_(std.to(self.weight.dtype))
            if self.normalization is not None:
                assert self.normalization_init is not None
                self.normalization.fill_(self.normalization_init)
        for linear in (self.right, self.left):
            if linear is not None:
                linear.reset_parameters()  # type: ignore[operator]  # EquiLinear / QTLinear method

    def extra_repr(self) -> str:
        return (
            f"{self.alg!r}, channels={self.channels}, in_s_channels={self.in_s_channels}, "
            f"include_first_order={self.include_first_order}, paths={self.weight.shape[1]}"
            + (f", normalization_init={self.normalization_init}" if self.normalization is not None else "")
            + (f", weight_init={self.weight_init!r}" if self.weight_init != "variance" else "")
        )

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_mv(self.alg, mv, self.channels, type(self).__name__)
        right, _ = self.right(mv, scalars)
        if self.normalization is not None:
            right = grade_normalize(self.alg, right, self.normalization)
        out = self._weighted_product(mv, right)
        if self.left is not None:
            out = (self.left(mv, scalars)[0] + out) * (1.0 / math.sqrt(2.0))
        return out, _pass_scalars(mv, scalars)


class MVSiLU(nn.Module):
    r"""CGENN's multivector SiLU: :func:`gatorch.functional.steerable.mv_silu` with learnt gates.

    Each grade ``k`` of each channel ``c`` is scaled by
    :math:`\sigma(a_{ck} q_k(x_c) + b_{ck})`, ``q_0`` the scalar coefficient and ``q_k``
    the invariant :math:`|\langle x_k, x_k\rangle|`; ``a`` starts at 1 and ``b`` at 0.
    Scalars go through ``torch.nn.functional.silu``.

    Parameters
    ----------
    alg : Algebra
    channels : int

    Shapes
    ------
    ``forward(mv, scalars=None) -> (mv, scalars)``, ``mv: (..., channels, dim)``,
    ``scalars: (..., s_channels)`` (an empty ``(..., 0)`` tensor is returned when ``None``).
    The invariants and gates are computed in at least float32; the output keeps the dtype
    of ``mv``.
    """

    _inner: Tensor

    def __init__(self, alg: Algebra, channels: int) -> None:
        super().__init__()
        check_algebra(alg, "MVSiLU")
        check_int("MVSiLU", "channels", channels, 1)
        self.alg, self.channels = alg, channels
        self.a = nn.Parameter(torch.ones(channels, alg.n + 1))
        self.b = nn.Parameter(torch.zeros(channels, alg.n + 1))
        # <~e_A e_A>_0 per blade, for the invariants (not in the state_dict)
        self.register_buffer("_inner", torch.tensor(blade_inner(alg)), persistent=False)

    def extra_repr(self) -> str:
        return f"{self.alg!r}, channels={self.channels}"

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_mv(self.alg, mv, self.channels, "MVSiLU")
        out = mv_silu(self.alg, mv, self.a, self.b, inner=self._inner)
        if scalars is None:
            return out, mv.new_zeros(*mv.shape[:-2], 0)
        return out, nn.functional.silu(scalars)
