r"""Clifford convolutions and the Clifford linear layer for multivector fields on grids.

Fields have the layout ``(batch, channels, *spatial, dim)`` (channels second, blades last;
cliffordlayers' layout). Any algebra works on any grid: the algebra sets ``dim`` and the
product, the layer class sets the number of spatial axes. See
:mod:`gatorch.functional.fields.conv` for the formula and
:func:`gatorch.interop.cliffordlayers.from_cliffordlayers` to convert cliffordlayers' layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gatorch.functional.algebra import Algebra
from gatorch.functional.fields.conv import (
    PADDING_MODES,
    clifford_conv,
    clifford_linear,
    conv_plan,
    rotation_plan,
)
from gatorch.layers._checks import check_algebra, check_input, check_int

__all__ = ["CliffordConv1d", "CliffordConv2d", "CliffordConv3d", "CliffordLinear"]

IntOrTuple = int | Sequence[int]


def _terms_per_output(alg: Algebra) -> float:
    """Mean number of input blades reaching an output blade (``dim`` unless the algebra is degenerate)."""
    return alg.gp_table.nnz / alg.dim


def _ntuple(value: IntOrTuple, n: int, name: str, least: int, who: str) -> tuple[int, ...]:
    out = (value,) * n if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(out, Sequence)
        or isinstance(out, str)
        or len(out) != n
        or any(not isinstance(v, int) or isinstance(v, bool) or v < least for v in out)
    ):
        raise ValueError(
            f"{who}: {name} must be an int >= {least} or a tuple of {n} such ints, got {value!r}"
        )
    return tuple(out)


class _CliffordConvNd(nn.Module):
    """Shared implementation of :class:`CliffordConv1d`, :class:`CliffordConv2d`, :class:`CliffordConv3d`."""

    spatial: int = 0

    def __init__(
        self,
        alg: Algebra,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple = 1,
        padding: IntOrTuple | str = 0,
        dilation: IntOrTuple = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        rotation: bool = False,
    ) -> None:
        super().__init__()
        who = type(self).__name__
        n = self.spatial
        check_algebra(alg, who)
        check_int(who, "in_channels", in_channels, 1)
        check_int(who, "out_channels", out_channels, 1)
        check_int(who, "groups", groups, 1)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{who}: in_channels ({in_channels}) and out_channels ({out_channels}) must be "
                f"multiples of groups ({groups})"
            )
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{who}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        self.kernel_size = _ntuple(kernel_size, n, "kernel_size", 1, who)
        self.stride = _ntuple(stride, n, "stride", 1, who)
        self.dilation = _ntuple(dilation, n, "dilation", 1, who)
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(
                    f"{who}: padding must be an int, a tuple of {n} ints, 'valid' or 'same', got {padding!r}"
                )
            if padding == "same" and self.stride != (1,) * n:
                raise ValueError(f"{who}: padding='same' needs stride 1, got stride {self.stride}")
            self.padding: tuple[int, ...] | str = padding
        else:
            self.padding = _ntuple(padding, n, "padding", 0, who)
        conv_plan(alg)  # static tables the forward pass reads, built now (never inside a trace)
        if rotation:
            rotation_plan(alg)  # ValueError unless alg is Cl(0, 2) in cliffordlayers' order
        self.alg = alg
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.padding_mode, self.rotation = padding_mode, rotation
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = nn.Parameter(torch.empty(*shape, alg.dim))
        self.bias = nn.Parameter(torch.empty(out_channels, alg.dim)) if bias else None
        if rotation:
            self.scale_param: nn.Parameter | None = nn.Parameter(torch.empty(shape))
            # cliffordlayers' zero kernel: the (not trained) map from the input scalar to the
            # rotated part; zeros unless loaded from a checkpoint
            self.zero_kernel: nn.Parameter | None = nn.Parameter(torch.zeros(shape), requires_grad=False)
        else:
            self.scale_param = self.zero_kernel = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Variance-preserving initialisation.

        Each output component sums ``fan_in = in_channels / groups * prod(kernel_size) * t``
        products, ``t`` the number of input blades that reach an output blade through the
        geometric product (``dim``; fewer on average in a degenerate algebra). The weights are
        drawn from :math:`N(0, 1 / \text{fan\_in})`, so unit-variance inputs give outputs of
        variance about 1. The bias starts at zero. The rotational variant draws its
        ``scale_param`` with ``t = dim - 1`` (the rotated blades) and keeps ``zero_kernel`` at zero.
        """
        fan = self.in_channels // self.groups * math.prod(self.kernel_size)
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0 / math.sqrt(fan * _terms_per_output(self.alg)))
            if self.bias is not None:
                self.bias.zero_()
            if self.scale_param is not None and self.zero_kernel is not None:
                self.scale_param.normal_(0.0, 1.0 / math.sqrt(fan * (self.alg.dim - 1)))
                self.zero_kernel.zero_()

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, in_channels, *spatial, dim) -> (batch, out_channels, *spatial_out, dim)``."""
        who = type(self).__name__
        check_input(who, x, self)
        self.alg.check_dim(x, f"{who} input")
        n = self.spatial
        if x.ndim != n + 3 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{who}: expected input of shape (batch, {self.in_channels}, "
                f"{', '.join(['*'] * n)}, {self.alg.dim}) ({n} spatial dimension{'s' if n > 1 else ''}), "
                f"got {tuple(x.shape)}"
            )
        return clifford_conv(
            self.alg,
            x,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.padding_mode,
            rotation=self.rotation,
            scale_param=self.scale_param,
            zero_kernel=self.zero_kernel,
        )

    def extra_repr(self) -> str:
        s = (
            f"{self.alg!r}, {self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )
        if self.dilation != (1,) * self.spatial:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        if self.rotation:
            s += ", rotation=True"
        return s


class CliffordConv1d(_CliffordConvNd):
    r"""1-D Clifford convolution of multivector fields, for any algebra.

    .. math::
        y_o(p) = \sum_{i, \delta} x_i(s\,p + d\,\delta - \text{pad})\, W_{o i}(\delta) + b_o

    a geometric product with the input on the left and the weight on the right, summed
    over input channels and kernel offsets (:func:`gatorch.functional.fields.conv.clifford_conv`):
    one ``conv1d`` on ``channels * dim`` real features with a kernel built from the
    algebra's product table.

    Parameters
    ----------
    alg : Algebra
        Any algebra (its number of basis vectors need not be 1).
    in_channels, out_channels : int
        Multivector channels (multiples of ``groups``).
    kernel_size, stride, dilation : int or tuple of 1 ints
    padding : int, tuple of 1 ints, 'valid' or 'same'
    groups : int
        Channel groups (blades of a channel are never split).
    bias : bool
        A learnt multivector per output channel (all blades, as cliffordlayers).
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
    rotation : bool
        cliffordlayers' rotational kernel; ``alg`` must be ``Algebra.from_signature([-1, -1])``.
        Adds the parameters ``scale_param`` and ``zero_kernel`` (not trained), each of shape
        ``(out_channels, in_channels // groups, *kernel_size)``.

    Attributes
    ----------
    weight : Parameter, shape (out_channels, in_channels // groups, *kernel_size, dim)
    bias : Parameter, shape (out_channels, dim), or None

    Shapes
    ------
    ``(batch, in_channels, *spatial, dim) -> (batch, out_channels, *spatial_out, dim)`` with
    1 spatial axes; ``spatial_out`` as for ``torch.nn.Conv1d``.

    Initialisation (variance-preserving): weights :math:`N(0, 1/\text{fan\_in})` with
    ``fan_in = in_channels / groups * prod(kernel_size) * t``, ``t`` the number of input blades
    reaching an output blade (``dim``; fewer on average in a degenerate algebra); zero bias;
    ``scale_param`` with ``t = dim - 1``. See ``reset_parameters``.
    """

    spatial = 1


class CliffordConv2d(_CliffordConvNd):
    r"""2-D Clifford convolution of multivector fields, for any algebra.

    .. math::
        y_o(p) = \sum_{i, \delta} x_i(s\,p + d\,\delta - \text{pad})\, W_{o i}(\delta) + b_o

    a geometric product with the input on the left and the weight on the right, summed
    over input channels and kernel offsets (:func:`gatorch.functional.fields.conv.clifford_conv`):
    one ``conv2d`` on ``channels * dim`` real features with a kernel built from the
    algebra's product table.

    Parameters
    ----------
    alg : Algebra
        Any algebra (its number of basis vectors need not be 2).
    in_channels, out_channels : int
        Multivector channels (multiples of ``groups``).
    kernel_size, stride, dilation : int or tuple of 2 ints
    padding : int, tuple of 2 ints, 'valid' or 'same'
    groups : int
        Channel groups (blades of a channel are never split).
    bias : bool
        A learnt multivector per output channel (all blades, as cliffordlayers).
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
    rotation : bool
        cliffordlayers' rotational kernel; ``alg`` must be ``Algebra.from_signature([-1, -1])``.
        Adds the parameters ``scale_param`` and ``zero_kernel`` (not trained), each of shape
        ``(out_channels, in_channels // groups, *kernel_size)``.

    Attributes
    ----------
    weight : Parameter, shape (out_channels, in_channels // groups, *kernel_size, dim)
    bias : Parameter, shape (out_channels, dim), or None

    Shapes
    ------
    ``(batch, in_channels, *spatial, dim) -> (batch, out_channels, *spatial_out, dim)`` with
    2 spatial axes; ``spatial_out`` as for ``torch.nn.Conv2d``.

    Initialisation (variance-preserving): weights :math:`N(0, 1/\text{fan\_in})` with
    ``fan_in = in_channels / groups * prod(kernel_size) * t``, ``t`` the number of input blades
    reaching an output blade (``dim``; fewer on average in a degenerate algebra); zero bias;
    ``scale_param`` with ``t = dim - 1``. See ``reset_parameters``.

    Examples
    --------
    >>> import torch
    >>> from gatorch import Algebra
    >>> from gatorch.layers.fields.conv import CliffordConv2d
    >>> conv = CliffordConv2d(Algebra(2, 0), 3, 8, kernel_size=3, padding=1)
    >>> conv(torch.randn(4, 3, 32, 32, 4)).shape
    torch.Size([4, 8, 32, 32, 4])
    """

    spatial = 2


class CliffordConv3d(_CliffordConvNd):
    r"""3-D Clifford convolution of multivector fields, for any algebra.

    .. math::
        y_o(p) = \sum_{i, \delta} x_i(s\,p + d\,\delta - \text{pad})\, W_{o i}(\delta) + b_o

    a geometric product with the input on the left and the weight on the right, summed
    over input channels and kernel offsets (:func:`gatorch.functional.fields.conv.clifford_conv`):
    one ``conv3d`` on ``channels * dim`` real features with a kernel built from the
    algebra's product table.

    Parameters
    ----------
    alg : Algebra
        Any algebra (its number of basis vectors need not be 3).
    in_channels, out_channels : int
        Multivector channels (multiples of ``groups``).
    kernel_size, stride, dilation : int or tuple of 3 ints
    padding : int, tuple of 3 ints, 'valid' or 'same'
    groups : int
        Channel groups (blades of a channel are never split).
    bias : bool
        A learnt multivector per output channel (all blades, as cliffordlayers).
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
    rotation : bool
        cliffordlayers' rotational kernel; ``alg`` must be ``Algebra.from_signature([-1, -1])``.
        Adds the parameters ``scale_param`` and ``zero_kernel`` (not trained), each of shape
        ``(out_channels, in_channels // groups, *kernel_size)``.

    Attributes
    ----------
    weight : Parameter, shape (out_channels, in_channels // groups, *kernel_size, dim)
    bias : Parameter, shape (out_channels, dim), or None

    Shapes
    ------
    ``(batch, in_channels, *spatial, dim) -> (batch, out_channels, *spatial_out, dim)`` with
    3 spatial axes; ``spatial_out`` as for ``torch.nn.Conv3d``.

    Initialisation (variance-preserving): weights :math:`N(0, 1/\text{fan\_in})` with
    ``fan_in = in_channels / groups * prod(kernel_size) * t``, ``t`` the number of input blades
    reaching an output blade (``dim``; fewer on average in a degenerate algebra); zero bias;
    ``scale_param`` with ``t = dim - 1``. See ``reset_parameters``.
    """

    spatial = 3


class CliffordLinear(nn.Module):
    r"""Clifford linear layer: :math:`y_o = \sum_i x_i W_{oi} + b_o` (input left, weight right).

    The 0-D case of the Clifford convolution (:func:`gatorch.functional.fields.conv.clifford_linear`),
    for any algebra. Not equivariant in general (compare :class:`~gatorch.layers.EquiLinear`);
    it commutes with left multiplication ``x -> u x`` by a fixed multivector when ``bias=False``.

    Parameters
    ----------
    alg : Algebra
    in_channels, out_channels : int
    bias : bool
        A learnt multivector per output channel.

    Attributes
    ----------
    weight : Parameter, shape (out_channels, in_channels, dim)
    bias : Parameter, shape (out_channels, dim), or None

    Shapes
    ------
    ``(..., in_channels, dim) -> (..., out_channels, dim)``.

    Initialisation: weights :math:`N(0, 1/(\text{in\_channels} \cdot t))` with ``t`` the
    number of input blades reaching an output blade (``dim`` unless degenerate), zero bias.
    """

    def __init__(self, alg: Algebra, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__()
        check_algebra(alg, "CliffordLinear")
        check_int("CliffordLinear", "in_channels", in_channels, 1)
        check_int("CliffordLinear", "out_channels", out_channels, 1)
        conv_plan(alg)
        self.alg = alg
        self.in_channels, self.out_channels = in_channels, out_channels
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, alg.dim))
        self.bias = nn.Parameter(torch.empty(out_channels, alg.dim)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Variance-preserving normal weights, zero bias (see the class docstring)."""
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0 / math.sqrt(self.in_channels * _terms_per_output(self.alg)))
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        """``(..., in_channels, dim) -> (..., out_channels, dim)``."""
        check_input("CliffordLinear", x, self)
        self.alg.check_dim(x, "CliffordLinear input")
        if x.ndim < 2 or x.shape[-2] != self.in_channels:
            raise ValueError(
                f"CliffordLinear: expected input of shape (..., {self.in_channels}, {self.alg.dim}), "
                f"got {tuple(x.shape)}"
            )
        return clifford_linear(self.alg, x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.alg!r}, {self.in_channels}, {self.out_channels}, bias={self.bias is not None}"
