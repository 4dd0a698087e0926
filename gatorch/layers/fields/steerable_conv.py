r"""Clifford-steerable convolutions (Zhdanov et al., ICML 2024): ``CliffordSteerableConv2d`` / ``3d``.

Fields are ``(batch, channels, *spatial, dim)``. The kernel is not a free parameter: a small
CGENN-style network (:class:`~gatorch.layers.EquiLinear`,
:class:`~gatorch.layers.SteerableGeometricProduct`, :class:`~gatorch.layers.MVSiLU`) maps each
relative position ``v`` of the kernel grid, embedded as a vector of the algebra, to
``out_channels * in_channels`` multivectors ``k_oi(v)``; each acts on the input by a weighted
geometric product with one weight per channel pair and grade path:

.. math::
    \mathrm{out}_o(x) = b_o + \sum_{v} \sum_i \mathrm{sgp}_{W_{oi}}\big(\phi(v)\, k_{oi}(v),\
        f_i(x + v)\big)

with :math:`\phi(v) = (1 - |\langle v, v\rangle| / R^2)_+^3` a compactly supported window
(optional) and :math:`b_o` a bias on the invariant blades. The maps ``f_i -> out_o`` are
assembled into one real kernel ``(out * dim, in * dim, *kernel_size)``
(:func:`gatorch.functional.fields.steerable_conv.steerable_kernel_matrix`) and applied by a single
``torch.nn.functional.conv{d}d``.

Equivariance. Let ``g`` be a versor built from the non-degenerate basis vectors (an element
of Pin(p, q)), acting on values by the twisted sandwich ``rho_g`` and on positions by the
orthogonal map ``Lambda_g`` it induces on vectors. The kernel network is equivariant,
``k(Lambda v) = rho(k(v))``, and ``<v, v>`` is invariant, so
``K(Lambda v) rho = rho K(v)`` exactly, for continuous ``v``. Hence the layer commutes with
``f -> rho f(Lambda^{-1} .)`` exactly whenever ``Lambda`` maps the kernel grid onto itself
(for Euclidean signatures: 90-degree rotations and reflections of the grid axes, permuting
axes of equal kernel size), and up to discretisation (quadrature) error otherwise.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gatorch.functional.algebra import Algebra
from gatorch.functional.fields.steerable_conv import (
    ConvKernelTables,
    conv_kernel_tables,
    embed_positions,
    kernel_offsets,
    spatial_blades,
    steerable_kernel_matrix,
)
from gatorch.functional.linear import invariant_components
from gatorch.functional.steerable import steerable_init_std, steerable_paths
from gatorch.layers._checks import check_algebra, check_int
from gatorch.layers.bilinear import SteerableGeometricProduct
from gatorch.layers.linear import EquiLinear
from gatorch.layers.nonlinear import MVSiLU

__all__ = ["PADDING_MODES", "CliffordSteerableConv2d", "CliffordSteerableConv3d", "CliffordSteerableConvNd"]

#: Padding modes (those of ``torch.nn.Conv2d``).
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

_CONV = {1: nn.functional.conv1d, 2: nn.functional.conv2d, 3: nn.functional.conv3d}


class CliffordSteerableConvNd(nn.Module):
    r"""Clifford-steerable convolution on a ``d``-dimensional grid (``d`` = 1, 2 or 3).

    Use :class:`CliffordSteerableConv2d` / :class:`CliffordSteerableConv3d`; see the module
    docstring for the maths.

    Grid and algebra. The grid's axes are the algebra's non-degenerate basis vectors in the
    algebra's order (:func:`gatorch.functional.fields.steerable_conv.spatial_blades`), so ``d`` must
    equal their number, ``p + q``: ``Cl(2, 0)``, ``Cl(1, 1)``, ``Cl(0, 2)`` or ``Cl(2, 0, 1)``
    for 2-D grids. Degenerate basis vectors get no axis; the layer is then equivariant under
    the versors of the non-degenerate part.

    Parameters
    ----------
    alg : Algebra
    in_channels, out_channels : int
        Multivector channels.
    kernel_size : int or tuple of int
        Odd sizes (the kernel grid is symmetric about 0).
    padding : int, tuple of int or "same"
        As in ``torch.nn.Conv2d`` (stride 1). Default ``"same"``: ``kernel_size // 2``.
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
    hidden_channels : int
        Multivector channels of the kernel network.
    num_layers : int
        Steerable-product blocks (``SteerableGeometricProduct -> MVSiLU``) of the kernel network.
    bias : bool
        A learnt bias on the invariant blades of each output channel (the scalar).
    spacing : float, optional
        Distance between neighbouring grid points, in the units of the kernel network's input:
        cell ``c`` of the kernel grid sits at ``v = (c - kernel_size // 2) * spacing``. Default
        ``1 / (max(kernel_size) // 2)`` (1 for a 1-point kernel): the grid spans ``[-1, 1]``
        along its longest axis.
    window : bool
        Multiply the kernel by :math:`\phi(v) = (1 - |\langle v, v\rangle| / R^2)_+^3`
        (twice continuously differentiable, invariant). For Euclidean signatures the kernel's
        support is then the ball of radius ``R``, not the grid's box, so rotations other than
        the grid's own symmetries cost only quadrature error. For indefinite signatures the
        window does not vanish along the light cone and the grid's box truncates the kernel.
        (Zhdanov et al.'s code multiplies by a learnt scalar shell of ``<v, v>`` instead; this
        window is fixed and compactly supported.)
    radius : float, optional
        ``R``; default ``(max(kernel_size) // 2 + 1) * spacing`` (the axis neighbours of the
        grid's edge have a non-zero weight).

    Shapes
    ------
    ``forward(x, kernel=None) -> y`` with ``x: (batch, in_channels, *spatial, dim)`` and
    ``y: (batch, out_channels, *spatial_out, dim)`` (``spatial_out = spatial`` with ``"same"``
    padding); ``y`` is a view of a channels-first buffer (not contiguous).
    :meth:`build_kernel` returns the real kernel ``(out_channels * dim, in_channels * dim,
    *kernel_size)``; :meth:`kernel_matrices` evaluates the kernel at any positions.

    Compilation: tables, kernel positions and index maps are non-persistent buffers built at
    construction, so a fresh layer compiles with ``torch.compile(fullgraph=True)``.
    """

    spatial_dims: int = 2

    _positions: Tensor
    _left: Tensor
    _path: Tensor
    _sign: Tensor
    _invariant: Tensor

    def __init__(
        self,
        alg: Algebra,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        padding: int | tuple[int, ...] | str = "same",
        *,
        padding_mode: str = "zeros",
        hidden_channels: int = 8,
        num_layers: int = 2,
        bias: bool = True,
        spacing: float | None = None,
        window: bool = True,
        radius: float | None = None,
    ) -> None:
        super().__init__()
        who = type(self).__name__
        d = self.spatial_dims
        check_algebra(alg, who)
        for name, value, least in (
            ("in_channels", in_channels, 1),
            ("out_channels", out_channels, 1),
            ("hidden_channels", hidden_channels, 1),
            ("num_layers", num_layers, 0),
        ):
            check_int(who, name, value, least)
        axes = len(spatial_blades(alg))
        if axes != d:
            raise ValueError(
                f"{who}: a {d}-D grid needs an algebra with {d} non-degenerate basis vectors "
                f"(one per grid axis), got {alg!r} with {axes}"
            )
        sizes = (kernel_size,) * d if isinstance(kernel_size, int) else tuple(kernel_size)
        if len(sizes) != d or not all(isinstance(s, int) and s >= 1 and s % 2 == 1 for s in sizes):
            raise ValueError(f"{who}: kernel_size must be an odd int or {d} odd ints, got {kernel_size!r}")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{who}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        self.padding = self._check_padding(who, padding, sizes)
        if spacing is None:
            spacing = 1.0 / max(1, max(sizes) // 2)
        if radius is None:
            radius = (max(sizes) // 2 + 1) * spacing
        for label, amount in (("spacing", spacing), ("radius", radius)):
            if not isinstance(amount, (int, float)) or isinstance(amount, bool) or not amount > 0:
                raise ValueError(f"{who}: {label} must be a positive float, got {amount!r}")
        self.alg = alg
        self.in_channels, self.out_channels = in_channels, out_channels
        self.hidden_channels, self.num_layers = hidden_channels, num_layers
        self.kernel_size, self.padding_mode = sizes, padding_mode
        self.spacing, self.radius, self.window = float(spacing), float(radius), bool(window)

        # kernel network: (v, <v, v>) -> out * in multivectors
        self.embed = EquiLinear(alg, 1, hidden_channels, in_s_channels=1)
        self.blocks = nn.ModuleList()
        for _ in range(num_layers):
            self.blocks.append(SteerableGeometricProduct(alg, hidden_channels))
            self.blocks.append(MVSiLU(alg, hidden_channels))
        self.head = EquiLinear(alg, hidden_channels, out_channels * in_channels)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, len(steerable_paths(alg))))
        invariant = invariant_components(alg, "pin", "blades")
        self.bias = nn.Parameter(torch.zeros(out_channels, len(invariant))) if bias else None

        tables = conv_kernel_tables(alg)
        self.register_buffer("_positions", kernel_offsets(sizes, self.spacing).float(), persistent=False)
        self.register_buffer("_left", tables.left, persistent=False)
        self.register_buffer("_path", tables.path, persistent=False)
        self.register_buffer("_sign", tables.sign, persistent=False)
        self.register_buffer("_invariant", torch.tensor(invariant, dtype=torch.int64), persistent=False)
        self.reset_parameters()

    @staticmethod
    def _check_padding(
        who: str, padding: int | tuple[int, ...] | str, sizes: tuple[int, ...]
    ) -> tuple[int, ...]:
        if padding == "same":
            return tuple(s // 2 for s in sizes)
        if padding == "valid":
            return (0,) * len(sizes)
        pads = (padding,) * len(sizes) if isinstance(padding, int) else padding
        if (
            not isinstance(pads, tuple)
            or len(pads) != len(sizes)
            or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in pads)
        ):
            raise ValueError(
                f"{who}: padding must be 'same', 'valid', an int >= 0 or {len(sizes)} such ints, "
                f"got {padding!r}"
            )
        return pads

    def reset_parameters(self) -> None:
        r"""Reset the kernel network, then scale the path weights to the kernel's energy.

        The path weights are drawn with :func:`~gatorch.functional.steerable.steerable_init_std`
        divided by :math:`\sqrt{c_{in} E}`, with :math:`E = \sum_v \overline{k(v)^2}` the
        sum over the kernel grid of the mean square of the (windowed) kernel network's
        output, so that unit-variance white-noise inputs give outputs of variance near 1.
        The bias starts at 0.
        """
        self.embed.reset_parameters()
        self.head.reset_parameters()
        for block in self.blocks:
            if isinstance(block, SteerableGeometricProduct):
                block.reset_parameters()
            elif isinstance(block, MVSiLU):
                with torch.no_grad():
                    block.a.fill_(1.0)
                    block.b.zero_()
        with torch.no_grad():
            k = self.kernel_network(self._positions.to(self.head.weight.dtype))
            energy = float(k.double().pow(2).mean(dim=(1, 2, 3)).sum().clamp(min=1e-12))
            std = steerable_init_std(self.alg) / math.sqrt(self.in_channels * energy)
            self.weight.normal_().mul_(std.to(self.weight.dtype))
            if self.bias is not None:
                self.bias.zero_()

    def extra_repr(self) -> str:
        return (
            f"{self.alg!r}, {self.in_channels} -> {self.out_channels}, kernel_size={self.kernel_size}, "
            f"padding={self.padding}, padding_mode={self.padding_mode!r}, "
            f"hidden_channels={self.hidden_channels}, num_layers={self.num_layers}, "
            f"spacing={self.spacing:g}, window={self.window}, radius={self.radius:g}, "
            f"bias={self.bias is not None}"
        )

    def kernel_network(self, positions: Tensor) -> Tensor:
        r"""The windowed kernel network :math:`\phi(v)\, k(v)` at ``positions``.

        Parameters
        ----------
        positions : Tensor, shape (P, d)
            Relative positions (grid units times ``spacing``), any real values.

        Returns
        -------
        Tensor, shape (P, out_channels, in_channels, dim)
        """
        if positions.ndim != 2 or positions.shape[-1] != self.spatial_dims:
            raise ValueError(
                f"{type(self).__name__}: expected positions of shape (P, {self.spatial_dims}), "
                f"got {tuple(positions.shape)}"
            )
        dtype = self.head.weight.dtype
        vectors, square = embed_positions(self.alg, positions.to(dtype))
        h, _ = self.embed(vectors[:, None, :], square[:, None])
        for block in self.blocks:
            h, _ = block(h)
        k, _ = self.head(h)
        k = k.view(positions.shape[0], self.out_channels, self.in_channels, self.alg.dim)
        if self.window:
            phi = (1.0 - square.abs() / self.radius**2).clamp(min=0.0) ** 3
            k = k * phi[:, None, None, None]
        return k

    def kernel_matrices(self, positions: Tensor) -> Tensor:
        """The real kernel at ``positions``: ``(P, out_channels, dim, in_channels, dim)``.

        Entry ``[p, o, k, i, j]`` is the coefficient of blade ``k`` of output channel ``o``
        per unit of blade ``j`` of input channel ``i`` at relative position ``positions[p]``.
        """
        k = self.kernel_network(positions)
        tables = ConvKernelTables(self._left, self._path, self._sign)
        return steerable_kernel_matrix(self.alg, k, self.weight, tables)

    def build_kernel(self) -> Tensor:
        """The convolution's real kernel ``(out_channels * dim, in_channels * dim, *kernel_size)``.

        Built from the kernel network on the kernel grid; :meth:`forward` calls it once per
        call unless given a kernel (to reuse one kernel for several inputs in one step, or
        to time its construction apart from the convolution).
        """
        dim = self.alg.dim
        points = self._positions.shape[0]
        mats = self.kernel_matrices(self._positions)  # (P, o, k, i, j)
        mats = mats.reshape(points, self.out_channels * dim, self.in_channels * dim)
        return mats.permute(1, 2, 0).reshape(
            self.out_channels * dim, self.in_channels * dim, *self.kernel_size
        )

    def _bias_vector(self, dtype: torch.dtype) -> Tensor | None:
        if self.bias is None:
            return None
        full = self.bias.new_zeros(self.out_channels, self.alg.dim, dtype=dtype)
        full = full.index_copy(1, self._invariant, self.bias.to(dtype))
        return full.reshape(self.out_channels * self.alg.dim)

    def forward(self, x: Tensor, kernel: Tensor | None = None) -> Tensor:
        """Convolve ``(batch, in_channels, *spatial, dim)`` -> ``(batch, out_channels, *spatial_out, dim)``.

        ``kernel``: a kernel from :meth:`build_kernel` (built here, once, when omitted).
        """
        who = type(self).__name__
        d, dim = self.spatial_dims, self.alg.dim
        self.alg.check_dim(x, f"{who} input")
        if x.ndim != d + 3 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{who}: expected input of shape (batch, {self.in_channels}, *{d} spatial dims, {dim}), "
                f"got {tuple(x.shape)}"
            )
        expected = (self.out_channels * dim, self.in_channels * dim, *self.kernel_size)
        if kernel is None:
            kernel = self.build_kernel()
        elif tuple(kernel.shape) != expected:
            raise ValueError(f"{who}: expected a kernel of shape {expected}, got {tuple(kernel.shape)}")
        kernel = kernel.to(x.dtype)
        batch, spatial = x.shape[0], x.shape[2:-1]
        flat = x.movedim(-1, 2).reshape(batch, self.in_channels * dim, *spatial)
        padding: tuple[int, ...] = self.padding
        if self.padding_mode != "zeros":
            pads = [p for pad in reversed(self.padding) for p in (pad, pad)]
            flat = nn.functional.pad(flat, pads, mode=self.padding_mode)
            padding = (0,) * d
        out = _CONV[d](flat, kernel, self._bias_vector(x.dtype), padding=padding)
        return out.view(batch, self.out_channels, dim, *out.shape[2:]).movedim(2, -1)


class CliffordSteerableConv2d(CliffordSteerableConvNd):
    r"""Clifford-steerable 2-D convolution: fields ``(batch, channels, H, W, dim)``.

    The algebra needs two non-degenerate basis vectors (``H`` is the first, ``W`` the second):
    ``Cl(2, 0)`` (E(2)), ``Cl(1, 1)`` ((1+1)-D spacetime, Lorentz boosts), ``Cl(0, 2)``, ...
    See :class:`CliffordSteerableConvNd` for the parameters.

    Examples
    --------
    >>> import torch
    >>> from gatorch import Algebra
    >>> from gatorch.layers.fields.steerable_conv import CliffordSteerableConv2d
    >>> conv = CliffordSteerableConv2d(Algebra(2, 0), 3, 5, kernel_size=5)
    >>> conv(torch.randn(2, 3, 16, 16, 4)).shape
    torch.Size([2, 5, 16, 16, 4])
    >>> conv.build_kernel().shape
    torch.Size([20, 12, 5, 5])
    """

    spatial_dims = 2


class CliffordSteerableConv3d(CliffordSteerableConvNd):
    r"""Clifford-steerable 3-D convolution: fields ``(batch, channels, D, H, W, dim)``.

    The algebra needs three non-degenerate basis vectors: ``Cl(3, 0)`` (E(3)), ``Cl(1, 2)``,
    ``Cl(3, 0, 1)`` (its O(3) part), ... See :class:`CliffordSteerableConvNd`.

    Examples
    --------
    >>> import torch
    >>> from gatorch import VGA3
    >>> from gatorch.layers.fields.steerable_conv import CliffordSteerableConv3d
    >>> conv = CliffordSteerableConv3d(VGA3, 2, 3, kernel_size=3)
    >>> conv(torch.randn(1, 2, 6, 6, 6, 8)).shape
    torch.Size([1, 3, 6, 6, 6, 8])
    """

    spatial_dims = 3
