r"""GLGENN's parameter-light layers: ``QTLinear`` and ``QTGeometricProduct``.

Filimoshina & Shirokov, "GLGENN: A Novel Parameter-Light Equivariant Neural Networks
Architecture Based on Clifford Geometric Algebras" (ICML 2025). The layers of CGENN with the
weights shared by *quaternion type* (grades ``k`` with the same ``k mod 4``, the four subspaces
that the grade involution and the reversion define) instead of by grade, for any signature
``(p, q, r)``, degenerate included. See :mod:`gatorch.functional.zoo.glgenn` for the maths and
the kernels.

Both take and return ``(mv, scalars)`` like the other layers, with ``mv: (..., channels, dim)``
and ``scalars: (..., s_channels)``.

Where the paper (and its reference code) leaves a choice, these layers do what gatorch's CGENN
layers do: ``QTLinear`` has a bias on the scalar blade and optional scalar channels (as
:class:`~gatorch.layers.EquiLinear`); ``QTGeometricProduct`` adds the first-order term and
scales by :math:`1/\sqrt 2` (as :class:`~gatorch.layers.SteerableGeometricProduct`), and has no
normalization of its right operand (the reference code's ``QTNormalization``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gatorch.functional.algebra import Algebra
from gatorch.functional.policy import KernelPolicy
from gatorch.functional.zoo.glgenn import (
    NUM_QUATERNION_TYPES,
    qt_gp,
    qt_gp_init_std,
    qt_grade_paths,
    qt_linear,
    qt_linear_readout,
    qt_paths,
    quaternion_type,
)
from gatorch.layers.bilinear import SteerableGeometricProduct
from gatorch.layers.linear import MVScalarLinear

__all__ = ["QTGeometricProduct", "QTLinear"]


class QTLinear(MVScalarLinear):
    r"""GLGENN's linear layer: one weight per channel pair and quaternion type.

    .. math::
        y_o = \sum_i \sum_{t=0}^{3} W_{o i t}\, P_t(x_i)
              + \Big(\textstyle\sum_j V_{o j} s_j + b_o\Big) e_\varnothing,
        \qquad u_p = \sum_i U_{p i} \langle x_i\rangle_0 + \sum_j T_{p j} s_j + \beta_p

    with :math:`P_t` the projection onto the grades ``k = t (mod 4)`` and :math:`e_\varnothing`
    the scalar blade. Equivariant for any weights; the scalar outputs are invariant.

    Parameters: ``weight: (out_channels, in_channels, 4)``, exactly 4 per channel pair (CGENN's
    :class:`~gatorch.layers.EquiLinear` has ``n + 1`` for non-degenerate algebras and more for
    degenerate ones: 9 for PGA3). ``bias=True`` adds ``out_channels`` (one scalar-blade bias per
    output channel); scalar channels add ``V: (out_channels, in_s_channels)``,
    ``U: (out_s_channels, in_channels)``, ``T`` with its bias (``nn.Linear(in_s, out_s)``),
    or ``beta: (out_s_channels,)`` when there are no scalar inputs.

    Initialisation: ``W ~ N(0, 1 / fan_in)`` with ``fan_in = in_channels`` (every output blade
    reads one weight per input channel), ``in_channels + in_s_channels`` for type 0 (the scalar
    blade also receives the scalar inputs) and for ``V``; zero biases.

    Parameters
    ----------
    alg : Algebra
    in_channels, out_channels : int
        Multivector channels.
    in_s_channels, out_s_channels : int
        Scalar channels (0: none).
    bias : bool

    Shapes
    ------
    ``forward(mv, scalars=None) -> (mv_out, scalars_out)`` with ``mv: (..., in_channels, dim)``,
    ``scalars: (..., in_s_channels)`` (required when ``in_s_channels > 0``), ``mv_out:
    (..., out_channels, dim)`` and ``scalars_out: (..., out_s_channels)``.

    Examples
    --------
    >>> from gatorch import Algebra
    >>> from gatorch.layers import QTLinear
    >>> layer = QTLinear(Algebra(5, 0, 0), 3, 2, bias=False)
    >>> sum(p.numel() for p in layer.parameters())  # 4 weights per channel pair
    24
    """

    s_to_s: nn.Linear | None

    def __init__(
        self,
        alg: Algebra,
        in_channels: int,
        out_channels: int,
        *,
        in_s_channels: int = 0,
        out_s_channels: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__("QTLinear", alg, in_channels, out_channels, in_s_channels, out_s_channels)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, NUM_QUATERNION_TYPES))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self._add_scalar_maps(bias=bias)
        self._add_scalar_bias(bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Variance-preserving initialisation (see the class docstring)."""
        std = torch.full((NUM_QUATERNION_TYPES,), 1.0 / math.sqrt(self.in_channels))
        std[quaternion_type(0)] = 1.0 / math.sqrt(self.in_channels + self.in_s_channels)
        fan_s = self.in_channels + self.in_s_channels  # fan-in of a scalar output
        with torch.no_grad():
            self.weight.normal_().mul_(std.to(self.weight.dtype))
            if self.bias is not None:
                self.bias.zero_()
        self._reset_scalar_maps(fan_s, fan_s)

    def extra_repr(self) -> str:
        return (
            f"{self.alg!r}, {self.in_channels} -> {self.out_channels} mv, "
            f"{self.in_s_channels} -> {self.out_s_channels} scalars, bias={self.bias is not None}"
        )

    def _mv_map(self, mv: Tensor, extra: Tensor | None) -> tuple[Tensor, Tensor | None]:
        # extra goes to the scalar blade: scalar inputs and the bias
        if self.mv_to_s is not None:
            return qt_linear_readout(self.alg, mv, self.weight, self.mv_to_s, bias=extra)
        return qt_linear(self.alg, mv, self.weight, bias=extra), None


class QTGeometricProduct(SteerableGeometricProduct):
    r"""GLGENN's geometric-product layer: weights shared by quaternion-type triples.

    .. math::
        y = \tfrac{1}{\sqrt 2}\Big(L(x, s) + \mathrm{qgp}_W\big(x,\ R(x, s)\big)\Big),
        \qquad \mathrm{qgp}_W(x, z)_c = \sum_{(t_l, t_r, t_o)} W_{c,(t_l, t_r, t_o)}\,
            P_{t_o}\big(P_{t_l}(x_c)\, P_{t_r}(z_c)\big)

    with :math:`R` and :math:`L` :class:`QTLinear` maps (``channels -> channels``; :math:`R`
    without bias) and :math:`\mathrm{qgp}_W` :func:`gatorch.functional.zoo.glgenn.qt_gp`, which runs
    on CGENN's sparse steerable kernel. With ``include_first_order=False`` the output is
    :math:`\mathrm{qgp}_W(x, R(x, s))` alone (the reference code's layer, less its normalization).
    Equivariant for any weights; scalars pass through unchanged.

    Parameters: ``weight: (channels, len(qt_paths(alg)))`` (at most 32 per channel: 20 for
    Cl(3,0), 29 for Cl(3,0,1), 32 for Cl(5,0); CGENN's
    :class:`~gatorch.layers.SteerableGeometricProduct` has 20, 34 and 56), plus the two
    :class:`QTLinear` maps (``4 * channels**2`` each, and ``channels`` for the bias of :math:`L`).

    Initialisation: the path weights are drawn with the standard deviations of
    :func:`gatorch.functional.zoo.glgenn.qt_gp_init_std` (unit output variance for unit-variance
    operands, per quaternion type).

    Parameters
    ----------
    alg : Algebra
    channels : int
        Multivector channels (in and out).
    in_s_channels : int
        Scalar channels fed into both linear maps (0: none).
    include_first_order : bool
    kernel_policy : KernelPolicy, optional
        Kept as ``kernel_policy``: see :mod:`gatorch.layers.policy` (``None``: the ambient one).

    Shapes
    ------
    ``forward(mv, scalars=None) -> (mv_out, scalars)`` with ``mv, mv_out: (..., channels,
    dim)`` and ``scalars: (..., in_s_channels)`` (required when ``in_s_channels > 0``; an empty
    ``(..., 0)`` tensor is returned when ``None``).
    """

    linear_class = QTLinear

    _grade_to_qt: Tensor

    def __init__(
        self,
        alg: Algebra,
        channels: int,
        *,
        in_s_channels: int = 0,
        include_first_order: bool = True,
        kernel_policy: KernelPolicy | None = None,
    ) -> None:
        super().__init__(
            alg,
            channels,
            in_s_channels=in_s_channels,
            include_first_order=include_first_order,
            kernel_policy=kernel_policy,
        )
        # grade path -> quaternion-type path, for the weights (not in the state_dict)
        grade_to_qt = torch.tensor(qt_grade_paths(alg), dtype=torch.int64)
        self.register_buffer("_grade_to_qt", grade_to_qt, persistent=False)

    def _weighted_product(self, x: Tensor, y: Tensor) -> Tensor:
        return qt_gp(
            self.alg,
            x,
            y,
            self.weight,
            grade_to_qt=self._grade_to_qt,
            tables=self.tables(),
            policy=self.kernel_policy,
        )

    @staticmethod
    def paths(alg: Algebra) -> tuple[tuple[int, int, int], ...]:
        """The weight's paths: quaternion-type triples (:func:`~gatorch.functional.zoo.glgenn.qt_paths`)."""
        return qt_paths(alg)

    @staticmethod
    def init_std(alg: Algebra) -> Tensor:
        """Per-path standard deviation of the initial weights (``qt_gp_init_std``)."""
        return qt_gp_init_std(alg)

    @staticmethod
    def product(alg: Algebra, x: Tensor, y: Tensor, weight: Tensor) -> Tensor:
        """:func:`~gatorch.functional.zoo.glgenn.qt_gp`."""
        return qt_gp(alg, x, y, weight)
