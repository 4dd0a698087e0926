r"""Grid models for multivector fields: Clifford ResNet and FNO (cliffordlayers), a steerable ResNet.

Fields are ``(batch, channels, *spatial, dim)``: channels second, blades last (cliffordlayers'
layout), on 2-D grids ``(H, W)`` or, with ``spatial_dims=3``, 3-D grids ``(D, H, W)``. The
channels of a PDE surrogate are usually time steps: ``in_channels`` past frames of one
multivector field in, ``out_channels`` future frames out.

* :class:`CliffordResNet` and :class:`CliffordFNO` follow cliffordlayers' ``CliffordNet2d``
  and ``CliffordNet3d`` (Brandstetter et al., *Clifford neural layers for PDE modeling*, ICLR
  2023) with their basic blocks: the input goes through the activation, a 1x1 Clifford
  convolution encodes it to ``hidden_channels``, ``num_blocks`` blocks follow, and a bias-free
  1x1 Clifford convolution decodes. The ResNet block is pre-activation,
  ``x + conv2(act(norm2(conv1(act(norm1(x))))))``; the Fourier block is
  ``act(norm(spectral_conv(x) + conv1x1(x)))``. The activation (GELU by default) acts on every
  blade separately, as in cliffordlayers, so these nets are not rotation-equivariant.
* :class:`CliffordSteerableResNet` swaps the convolutions for
  :class:`~gatorch.layers.fields.steerable_conv.CliffordSteerableConv2d` (or ``3d``; Zhdanov et al.,
  ICML 2024), the per-blade activation for the multivector SiLU
  (:class:`~gatorch.layers.MVSiLU`, gated by invariants), the group norm for an equivariant
  layer norm over channels, and the 1x1 encoder and decoder for
  :class:`~gatorch.layers.EquiLinear`: exactly equivariant under the grid's symmetries
  (90-degree rotations, axis reflections) acting on positions and, through the versor, on the
  values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gatorch.functional.activations import activation
from gatorch.functional.algebra import Algebra
from gatorch.functional.fields.steerable_conv import spatial_blades
from gatorch.layers._checks import check_algebra, check_input, check_int
from gatorch.layers.fields.conv import CliffordConv2d, CliffordConv3d
from gatorch.layers.fields.fourier import CliffordSpectralConv2d, CliffordSpectralConv3d
from gatorch.layers.fields.norm import CliffordGroupNorm2d, CliffordGroupNorm3d, EquiFieldGroupNorm
from gatorch.layers.fields.steerable_conv import CliffordSteerableConv2d, CliffordSteerableConv3d
from gatorch.layers.linear import EquiLinear
from gatorch.layers.nonlinear import MVSiLU

__all__ = ["CliffordFNO", "CliffordResNet", "CliffordSteerableResNet"]


def _activation(who: str, name: str) -> Callable[[Tensor], Tensor]:
    return activation(name, f"{who}: activation")


_CONV: dict[int, type[CliffordConv2d] | type[CliffordConv3d]] = {2: CliffordConv2d, 3: CliffordConv3d}
_GROUP_NORM: dict[int, type[CliffordGroupNorm2d] | type[CliffordGroupNorm3d]] = {
    2: CliffordGroupNorm2d,
    3: CliffordGroupNorm3d,
}
_STEERABLE_CONV: dict[int, type[CliffordSteerableConv2d] | type[CliffordSteerableConv3d]] = {
    2: CliffordSteerableConv2d,
    3: CliffordSteerableConv3d,
}
_AXES = {2: "H, W", 3: "D, H, W"}


def _check_common(who: str, alg: object, spatial_dims: object, **ints: object) -> None:
    check_algebra(alg, who)
    for name, value in ints.items():
        check_int(who, name, value, 1)
    if isinstance(spatial_dims, bool) or spatial_dims not in _AXES:
        raise ValueError(f"{who}: spatial_dims must be 2 or 3, got {spatial_dims!r}")


def _check_field(
    alg: Algebra, x: Tensor, channels: int, spatial_dims: int, who: str, module: nn.Module
) -> None:
    check_input(who, x, module)
    alg.check_dim(x, f"{who} input")
    if x.ndim != spatial_dims + 3 or x.shape[1] != channels:
        raise ValueError(
            f"{who}: expected a field of shape (batch, {channels}, {_AXES[spatial_dims]}, {alg.dim}), "
            f"got {tuple(x.shape)}"
        )


def _blade_indices(who: str, name: str, alg: Algebra, blades: Sequence[int | str] | None) -> tuple[int, ...]:
    """Blade indices of ``in_blades`` / ``out_blades`` (indices or names; None: every blade)."""
    if blades is None:
        return tuple(range(alg.dim))
    if isinstance(blades, (str, bytes)) or not isinstance(blades, Sequence) or not blades:
        raise TypeError(
            f"{who}: {name} must be a non-empty sequence of blade indices or names, got {blades!r}"
        )
    out: list[int] = []
    for b in blades:
        if isinstance(b, str):
            out.append(alg.index(b))
        elif isinstance(b, int) and not isinstance(b, bool) and 0 <= b < alg.dim:
            out.append(b)
        else:
            raise ValueError(
                f"{who}: {name} entries must be blade names or indices in [0, {alg.dim}), got {b!r}"
            )
    if len(set(out)) != len(out):
        raise ValueError(f"{who}: {name} has repeated blades: {tuple(blades)!r}")
    return tuple(out)


def _pad_domain(x: Tensor, padding: int, spatial_dims: int) -> Tensor:
    """Zero-pad every spatial axis of ``(B, C, *spatial, dim)`` at its end (cliffordlayers, non-periodic)."""
    return nn.functional.pad(x, (0, 0) + (0, padding) * spatial_dims)


def _crop_domain(x: Tensor, padding: int, spatial_dims: int) -> Tensor:
    return x[(slice(None), slice(None)) + (slice(None, -padding),) * spatial_dims]


class _CliffordResBlock(nn.Module):
    """cliffordlayers' ``CliffordBasicBlock2d`` (``3d``): two Clifford convs, pre-activation, a skip."""

    def __init__(
        self,
        alg: Algebra,
        spatial_dims: int,
        channels: int,
        kernel_size: int,
        padding_mode: str,
        norm: bool,
        num_groups: int,
        activation: Callable[[Tensor], Tensor],
        rotation: bool,
        norm_options: dict[str, Any],
    ) -> None:
        super().__init__()

        pad = kernel_size // 2
        conv, group_norm = _CONV[spatial_dims], _GROUP_NORM[spatial_dims]
        opts = dict(padding=pad, padding_mode=padding_mode, bias=True, rotation=rotation)
        self.conv1 = conv(alg, channels, channels, kernel_size, **opts)  # type: ignore[arg-type]
        self.conv2 = conv(alg, channels, channels, kernel_size, **opts)  # type: ignore[arg-type]
        self.norm1: nn.Module = (
            group_norm(alg, num_groups, channels, **norm_options) if norm else nn.Identity()
        )
        self.norm2: nn.Module = (
            group_norm(alg, num_groups, channels, **norm_options) if norm else nn.Identity()
        )
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(self.activation(self.norm1(x)))
        out = self.conv2(self.activation(self.norm2(out)))
        return out + x


class _CliffordFourierBlock(nn.Module):
    """cliffordlayers' ``CliffordFourierBasicBlock2d`` / ``3d``: ``act(norm(spectral(x) + conv1x1(x)))``."""

    def __init__(
        self,
        alg: Algebra,
        channels: int,
        modes: tuple[int, ...],
        norm: bool,
        num_groups: int,
        activation: Callable[[Tensor], Tensor],
        rotation: bool,
        norm_options: dict[str, Any],
        spectrum: str,
        cliffordlayers_3d_slicing: bool,
    ) -> None:
        super().__init__()

        d = len(modes)
        self.fourier: nn.Module = (
            CliffordSpectralConv2d(alg, channels, channels, *modes, spectrum=spectrum)
            if d == 2
            else CliffordSpectralConv3d(
                alg,
                channels,
                channels,
                *modes,
                spectrum=spectrum,
                cliffordlayers_3d_slicing=cliffordlayers_3d_slicing,
            )
        )
        self.conv = _CONV[d](alg, channels, channels, 1, bias=True, rotation=rotation)
        self.norm: nn.Module = (
            _GROUP_NORM[d](alg, num_groups, channels, **norm_options) if norm else nn.Identity()
        )
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.norm(self.fourier(x) + self.conv(x)))


class _CliffordNet(nn.Module):
    """Encoder, blocks, decoder (cliffordlayers' ``CliffordNet2d`` / ``3d``); subclasses build the blocks."""

    who = "CliffordNet"
    _in_index: Tensor
    _out_index: Tensor

    def __init__(
        self,
        alg: Algebra,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        activation: str,
        rotation: bool,
        input_activation: bool,
        domain_padding: int,
        in_blades: Sequence[int | str] | None = None,
        out_blades: Sequence[int | str] | None = None,
    ) -> None:
        super().__init__()

        check_int(self.who, "domain_padding", domain_padding, 0)
        self.in_blades = _blade_indices(self.who, "in_blades", alg, in_blades)
        self.out_blades = _blade_indices(self.who, "out_blades", alg, out_blades)
        self._embed = self.in_blades != tuple(range(alg.dim))
        self._project = self.out_blades != tuple(range(alg.dim))
        self.register_buffer("_in_index", torch.tensor(self.in_blades, dtype=torch.int64), persistent=False)
        self.register_buffer("_out_index", torch.tensor(self.out_blades, dtype=torch.int64), persistent=False)
        self.alg = alg
        self.in_channels, self.out_channels, self.hidden_channels = in_channels, out_channels, hidden_channels
        self.activation = _activation(self.who, activation)
        self.input_activation = bool(input_activation)
        self.domain_padding = int(domain_padding)
        self.spatial_dims = spatial_dims
        conv = _CONV[spatial_dims]
        self.encoder = conv(alg, in_channels, hidden_channels, 1, bias=True, rotation=rotation)
        self.decoder = conv(alg, hidden_channels, out_channels, 1, bias=False, rotation=rotation)
        self.blocks = nn.ModuleList()

    def _check_input(self, x: Tensor) -> None:
        if not self._embed:
            _check_field(self.alg, x, self.in_channels, self.spatial_dims, self.who, self)
            return
        check_input(self.who, x, self)
        k = len(self.in_blades)
        if x.ndim != self.spatial_dims + 3 or x.shape[1] != self.in_channels or x.shape[-1] != k:
            raise ValueError(
                f"{self.who}: expected a field of shape (batch, {self.in_channels}, "
                f"{_AXES[self.spatial_dims]}, {k}) (blades {self.in_blades} of {self.alg!r}), "
                f"got {tuple(x.shape)}"
            )

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        h = self.activation(x) if self.input_activation else x
        if self._embed:  # the missing blades are zero
            h = h.new_zeros(*h.shape[:-1], self.alg.dim).index_copy(-1, self._in_index, h)
        h = self.encoder(h)
        if self.domain_padding:
            h = _pad_domain(h, self.domain_padding, self.spatial_dims)
        for block in self.blocks:
            h = block(h)
        if self.domain_padding:
            h = _crop_domain(h, self.domain_padding, self.spatial_dims)
        h = self.decoder(h)
        return h.index_select(-1, self._out_index) if self._project else h


class CliffordResNet(_CliffordNet):
    r"""Clifford ResNet for 2-D or 3-D multivector fields (cliffordlayers' ``CliffordNet2d`` / ``3d``).

    ``act(x) -> 1x1 CliffordConv -> num_blocks x [x + conv(act(norm(conv(act(norm(x))))))]
    -> 1x1 CliffordConv (no bias)``, every convolution a
    :class:`~gatorch.layers.fields.conv.CliffordConv2d` (or, with ``spatial_dims=3``,
    :class:`~gatorch.layers.fields.conv.CliffordConv3d`) of the algebra ``alg``, the norm an optional
    :class:`~gatorch.layers.fields.norm.CliffordGroupNorm2d` (``3d``), the activation per blade.
    cliffordlayers' paper net has ``num_blocks = 8`` (``[2, 2, 2, 2]``) and 128 hidden channels.

    Parameters
    ----------
    alg : Algebra
        Any algebra of the conv layers; cliffordlayers uses a 2-D one (Cl(2,0), Cl(0,2),
        Cl(1,1): ``dim == 4``) on 2-D grids and Cl(3,0) (``dim == 8``) on 3-D grids.
    in_channels, out_channels, hidden_channels : int
        Multivector channels (for a PDE surrogate: input and output time steps).
    num_blocks : int
        Residual blocks (two convolutions each).
    kernel_size : int
        Odd size of the block convolutions (padding ``kernel_size // 2``, shape-preserving).
    padding_mode : {"circular", "zeros", "reflect", "replicate"}
        ``"circular"`` for periodic boundaries.
    norm : bool
        Clifford group norm before each activation in the blocks.
    num_groups : int
        Groups of that norm (must divide ``hidden_channels``).
    activation : str
        A name of :data:`gatorch.functional.activations.ACTIVATIONS`, applied to every blade
        independently. The default ``"gelu_exact"`` is cliffordlayers' exact GELU (``"gelu"``
        is the tanh approximation everywhere in gatorch).
    rotation : bool
        cliffordlayers' rotational convolutions (Cl(0,2) only; passed to the conv layers).
    input_activation : bool
        Apply the activation to the input before the encoder, as cliffordlayers does.
    domain_padding : int
        Zero cells appended to every spatial axis after the encoder and cropped before the
        decoder (cliffordlayers uses 9 for non-periodic boundaries); 0 for periodic data.
    spatial_dims : {2, 3}
        Number of grid axes.
    whitening : {"cholesky", "cliffordlayers"}
        Whitening of the group norms (:mod:`gatorch.layers.fields.norm`): ``"cliffordlayers"``
        reproduces cliffordlayers' norm (``L^{-T}``, not a whitening) for converted weights.
    cliffordlayers_bias : bool
        cliffordlayers' per-sample placement of the group norms' bias (see
        :class:`~gatorch.layers.fields.norm.CliffordGroupNorm1d`), for converted weights.
    in_blades, out_blades : sequence of int or str, optional
        The blades (indices or names) the input carries and the output keeps; None: all
        ``alg.dim``. The input's missing blades are zero before the encoder, the decoder's other
        blades are dropped. cliffordlayers' encoders and decoders take and return scalar and
        vector fields: ``("1", "e1", "e2")`` in 2-D, and the vectors and bivectors
        ``("e1", "e2", "e3", "e12", "e13", "e23")`` in 3-D.

    Shapes
    ------
    ``forward(x) -> y``, ``x: (batch, in_channels, H, W, dim)``,
    ``y: (batch, out_channels, H, W, dim)``; with ``spatial_dims=3``,
    ``x: (batch, in_channels, D, H, W, dim)``, ``y: (batch, out_channels, D, H, W, dim)``.

    Examples
    --------
    >>> import torch
    >>> from gatorch import VGA3, Algebra
    >>> from gatorch.nets.fields import CliffordResNet
    >>> net = CliffordResNet(Algebra(2), in_channels=4, out_channels=1, hidden_channels=8, num_blocks=2)
    >>> net(torch.randn(3, 4, 16, 16, 4)).shape
    torch.Size([3, 1, 16, 16, 4])
    >>> net3 = CliffordResNet(VGA3, in_channels=2, out_channels=1, hidden_channels=4, num_blocks=1,
    ...                       spatial_dims=3)
    >>> net3(torch.randn(1, 2, 8, 8, 8, 8)).shape
    torch.Size([1, 1, 8, 8, 8, 8])
    """

    who = "CliffordResNet"

    def __init__(
        self,
        alg: Algebra,
        *,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        num_blocks: int,
        kernel_size: int = 3,
        padding_mode: str = "circular",
        norm: bool = True,
        num_groups: int = 1,
        activation: str = "gelu_exact",
        rotation: bool = False,
        input_activation: bool = True,
        domain_padding: int = 0,
        spatial_dims: int = 2,
        whitening: str = "cholesky",
        cliffordlayers_bias: bool = False,
        in_blades: Sequence[int | str] | None = None,
        out_blades: Sequence[int | str] | None = None,
    ) -> None:
        _check_common(
            self.who, alg, spatial_dims, in_channels=in_channels, out_channels=out_channels,
            hidden_channels=hidden_channels, num_blocks=num_blocks, kernel_size=kernel_size,
            num_groups=num_groups,
        )  # fmt: skip
        if kernel_size % 2 != 1:
            raise ValueError(f"{self.who}: kernel_size must be odd, got {kernel_size}")
        if norm and hidden_channels % num_groups:
            raise ValueError(
                f"{self.who}: num_groups ({num_groups}) must divide hidden_channels ({hidden_channels})"
            )
        super().__init__(
            alg, spatial_dims, in_channels, out_channels, hidden_channels, activation, rotation,
            input_activation, domain_padding, in_blades, out_blades,
        )  # fmt: skip
        norm_options = dict(whitening=whitening, cliffordlayers_bias=cliffordlayers_bias)
        self.blocks.extend(
            _CliffordResBlock(
                alg,
                spatial_dims,
                hidden_channels,
                kernel_size,
                padding_mode,
                norm,
                num_groups,
                self.activation,
                rotation,
                norm_options,
            )
            for _ in range(num_blocks)
        )


class CliffordFNO(_CliffordNet):
    r"""Clifford Fourier neural operator for 2-D or 3-D multivector fields (cliffordlayers' Clifford FNO).

    ``act(x) -> 1x1 CliffordConv -> num_blocks x act(norm(spectral(x) + conv1x1(x)))
    -> 1x1 CliffordConv (no bias)``, the spectral convolution a
    :class:`~gatorch.layers.fields.fourier.CliffordSpectralConv2d` keeping ``modes1 x modes2`` Fourier
    modes (with ``spatial_dims=3``, a :class:`~gatorch.layers.fields.fourier.CliffordSpectralConv3d`
    keeping ``modes1 x modes2 x modes3``). cliffordlayers' paper net has ``num_blocks = 4`` and
    32 (or 48) hidden channels.

    Parameters
    ----------
    alg : Algebra
        An algebra supported by the spectral layer (see :class:`CliffordResNet`).
    in_channels, out_channels, hidden_channels : int
    num_blocks : int
    modes1, modes2 : int
        Fourier modes kept along the first and second spatial axis (with ``spectrum="rfft"`` at
        most ``n // 2`` for each axis but the last, ``n // 2 + 1`` for the last; with
        ``spectrum="dual"`` at most ``n``; ``n`` the grid size plus ``domain_padding``).
    norm : bool
        Clifford group norm in each block (off by default, as in cliffordlayers' tests).
    num_groups : int
    activation : str
    rotation : bool
    input_activation : bool
    domain_padding : int
        See :class:`CliffordResNet`.
    spatial_dims : {2, 3}
        Number of grid axes.
    modes3 : int or None
        Fourier modes along the third spatial axis: required when ``spatial_dims=3``, not
        allowed otherwise.
    spectrum : {"rfft", "dual"}
        Spectrum of the spectral layers (:class:`~gatorch.layers.fields.fourier.CliffordSpectralConv2d`);
        ``"dual"`` is cliffordlayers' (modes up to the grid size, as there).
    cliffordlayers_3d_slicing : bool
        With ``spectrum="dual"`` and ``spatial_dims=3``: cliffordlayers 0.1.1's placement of one
        block of modes (:class:`~gatorch.layers.fields.fourier.CliffordSpectralConv3d`).
    whitening : {"cholesky", "cliffordlayers"}
        Whitening of the group norms (:mod:`gatorch.layers.fields.norm`): ``"cliffordlayers"``
        reproduces cliffordlayers' norm (``L^{-T}``, not a whitening) for converted weights.
    cliffordlayers_bias : bool
        cliffordlayers' per-sample placement of the group norms' bias (see
        :class:`~gatorch.layers.fields.norm.CliffordGroupNorm1d`), for converted weights.
    in_blades, out_blades : sequence of int or str, optional
        The blades (indices or names) the input carries and the output keeps; None: all
        ``alg.dim``. The input's missing blades are zero before the encoder, the decoder's other
        blades are dropped. cliffordlayers' encoders and decoders take and return scalar and
        vector fields: ``("1", "e1", "e2")`` in 2-D, and the vectors and bivectors
        ``("e1", "e2", "e3", "e12", "e13", "e23")`` in 3-D.

    Shapes
    ------
    ``forward(x) -> y``, ``x: (batch, in_channels, H, W, dim)``,
    ``y: (batch, out_channels, H, W, dim)``; with ``spatial_dims=3``,
    ``x: (batch, in_channels, D, H, W, dim)``, ``y: (batch, out_channels, D, H, W, dim)``.
    """

    who = "CliffordFNO"

    def __init__(
        self,
        alg: Algebra,
        *,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        num_blocks: int,
        modes1: int,
        modes2: int,
        norm: bool = False,
        num_groups: int = 1,
        activation: str = "gelu_exact",
        rotation: bool = False,
        input_activation: bool = True,
        domain_padding: int = 0,
        spatial_dims: int = 2,
        modes3: int | None = None,
        spectrum: str = "rfft",
        cliffordlayers_3d_slicing: bool = False,
        whitening: str = "cholesky",
        cliffordlayers_bias: bool = False,
        in_blades: Sequence[int | str] | None = None,
        out_blades: Sequence[int | str] | None = None,
    ) -> None:
        _check_common(
            self.who, alg, spatial_dims, in_channels=in_channels, out_channels=out_channels,
            hidden_channels=hidden_channels, num_blocks=num_blocks, modes1=modes1, modes2=modes2,
            num_groups=num_groups,
        )  # fmt: skip
        if spatial_dims == 3:
            if modes3 is None:
                raise ValueError(f"{self.who}: modes3 is required when spatial_dims=3")
            check_int(self.who, "modes3", modes3, 1)
        elif modes3 is not None:
            raise ValueError(f"{self.who}: modes3 is only for spatial_dims=3, got modes3={modes3!r}")
        if norm and hidden_channels % num_groups:
            raise ValueError(
                f"{self.who}: num_groups ({num_groups}) must divide hidden_channels ({hidden_channels})"
            )
        super().__init__(
            alg, spatial_dims, in_channels, out_channels, hidden_channels, activation, rotation,
            input_activation, domain_padding, in_blades, out_blades,
        )  # fmt: skip
        self.modes1, self.modes2, self.modes3 = modes1, modes2, modes3
        self.modes: tuple[int, ...] = (modes1, modes2) if modes3 is None else (modes1, modes2, modes3)
        self.spectrum = spectrum
        norm_options = dict(whitening=whitening, cliffordlayers_bias=cliffordlayers_bias)
        self.blocks.extend(
            _CliffordFourierBlock(
                alg,
                hidden_channels,
                self.modes,
                norm,
                num_groups,
                self.activation,
                rotation,
                norm_options,
                spectrum,
                cliffordlayers_3d_slicing,
            )
            for _ in range(num_blocks)
        )

    def forward(self, x: Tensor) -> Tensor:
        modes = self.modes
        if x.ndim == self.spatial_dims + 3:
            grid = x.shape[2:-1]
            # the blocks see the grid after the domain padding
            sizes = [n + self.domain_padding for n in grid]
            if self.spectrum == "dual":  # cliffordlayers' limit: up to n modes per axis
                short = any(n < m for n, m in zip(sizes, modes, strict=True))
            else:  # the real FFT keeps n // 2 + 1 modes on the last axis, n // 2 of each sign on the others
                short = (
                    any(n < 2 * m for n, m in zip(sizes[:-1], modes[:-1], strict=True))
                    or sizes[-1] // 2 + 1 < modes[-1]
                )
            if short:
                raise ValueError(
                    f"{self.who}: a {' x '.join(map(str, sizes))} grid has fewer Fourier modes than "
                    + ", ".join(f"modes{i + 1}={m}" for i, m in enumerate(modes))
                )
        return super().forward(x)


class _ChannelsLast(nn.Module):
    """Apply a ``(..., channels, dim)`` layer returning ``(mv, s)`` to a field ``(B, C, *spatial, dim)``."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        out = self.layer(x.movedim(1, -2))[0]
        return out.movedim(-2, 1)


#: The former private name of :class:`~gatorch.layers.fields.norm.EquiFieldGroupNorm`.
_EquiFieldGroupNorm = EquiFieldGroupNorm


class _SteerableResBlock(nn.Module):
    def __init__(
        self,
        alg: Algebra,
        spatial_dims: int,
        channels: int,
        kernel_size: int,
        padding_mode: str,
        norm: bool,
        num_groups: int,
        kernel_hidden_channels: int,
        kernel_layers: int,
    ) -> None:
        super().__init__()

        def conv() -> nn.Module:
            return _STEERABLE_CONV[spatial_dims](
                alg,
                channels,
                channels,
                kernel_size,
                padding=kernel_size // 2,
                padding_mode=padding_mode,
                hidden_channels=kernel_hidden_channels,
                num_layers=kernel_layers,
            )

        self.conv1, self.conv2 = conv(), conv()
        self.norm1: nn.Module = EquiFieldGroupNorm(alg, num_groups, channels) if norm else nn.Identity()
        self.norm2: nn.Module = EquiFieldGroupNorm(alg, num_groups, channels) if norm else nn.Identity()
        self.act1 = _ChannelsLast(MVSiLU(alg, channels))
        self.act2 = _ChannelsLast(MVSiLU(alg, channels))

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(self.act1(self.norm1(x)))
        out = self.conv2(self.act2(self.norm2(out)))
        return out + x


class CliffordSteerableResNet(nn.Module):
    r"""An equivariant ResNet of Clifford-steerable convolutions for 2-D or 3-D multivector fields.

    The block structure of :class:`CliffordResNet` with equivariant parts:
    ``EquiLinear -> num_blocks x [x + conv(act(norm(conv(act(norm(x))))))] -> EquiLinear``, each
    ``conv`` a :class:`~gatorch.layers.fields.steerable_conv.CliffordSteerableConv2d` (``3d`` with
    ``spatial_dims=3``), ``act`` the
    multivector SiLU :class:`~gatorch.layers.MVSiLU` (each grade gated by an invariant), ``norm``
    an equivariant group norm (each group of channels divided by the RMS over the group and the
    grid of the invariant norms, times a learnt gain per channel; the extent of cliffordlayers'
    group norm, without its non-equivariant whitening), the encoder and decoder pointwise
    :class:`~gatorch.layers.EquiLinear` maps (Pin group).

    Equivariance: with ``padding_mode="circular"`` (a periodic grid) the net commutes exactly
    with every symmetry of the grid that the algebra's versors induce (for Cl(2,0): rotations
    by multiples of 90 degrees and reflections of the axes; for Cl(3,0) on a 3-D grid: the
    90-degree rotations about each axis and the axis reflections), acting on positions and on the
    values by the twisted versor action; with zero padding, up to the boundary.

    Parameters
    ----------
    alg : Algebra
        An algebra with ``spatial_dims`` non-degenerate basis vectors (the grid axes, in order),
        e.g. Cl(2,0) for 2-D grids, Cl(3,0) for 3-D grids.
    in_channels, out_channels, hidden_channels : int
    num_blocks : int
    kernel_size : int
        Odd kernel size of the steerable convolutions.
    padding_mode : {"circular", "zeros", "reflect", "replicate"}
    norm : bool
        Equivariant group norm before each activation.
    num_groups : int
        Groups of that norm (must divide ``hidden_channels``).
    kernel_hidden_channels, kernel_layers : int
        Size of each convolution's kernel network (its ``hidden_channels`` and ``num_layers``).
    spatial_dims : {2, 3}
        Number of grid axes.

    Shapes
    ------
    ``forward(x) -> y``, ``x: (batch, in_channels, H, W, dim)``,
    ``y: (batch, out_channels, H, W, dim)``; with ``spatial_dims=3``,
    ``x: (batch, in_channels, D, H, W, dim)``, ``y: (batch, out_channels, D, H, W, dim)``.
    """

    who = "CliffordSteerableResNet"

    def __init__(
        self,
        alg: Algebra,
        *,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        num_blocks: int,
        kernel_size: int = 3,
        padding_mode: str = "circular",
        norm: bool = True,
        num_groups: int = 1,
        kernel_hidden_channels: int = 8,
        kernel_layers: int = 1,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        _check_common(
            self.who, alg, spatial_dims, in_channels=in_channels, out_channels=out_channels,
            hidden_channels=hidden_channels, num_blocks=num_blocks, kernel_size=kernel_size,
            num_groups=num_groups, kernel_hidden_channels=kernel_hidden_channels,
        )  # fmt: skip
        if norm and hidden_channels % num_groups:
            raise ValueError(
                f"{self.who}: num_groups ({num_groups}) must divide hidden_channels ({hidden_channels})"
            )
        check_int(self.who, "kernel_layers", kernel_layers, 0)
        if kernel_size % 2 != 1:
            raise ValueError(f"{self.who}: kernel_size must be odd, got {kernel_size}")
        axes = len(spatial_blades(alg))
        if axes != spatial_dims:
            raise ValueError(
                f"{self.who}: spatial_dims={spatial_dims} needs an algebra with {spatial_dims} "
                f"non-degenerate basis vectors (one per grid axis), got {alg!r} with {axes}"
            )
        self.alg = alg
        self.spatial_dims = spatial_dims
        self.in_channels, self.out_channels, self.hidden_channels = in_channels, out_channels, hidden_channels
        self.encoder = _ChannelsLast(EquiLinear(alg, in_channels, hidden_channels))
        self.blocks = nn.ModuleList(
            _SteerableResBlock(
                alg,
                spatial_dims,
                hidden_channels,
                kernel_size,
                padding_mode,
                norm,
                num_groups,
                kernel_hidden_channels,
                kernel_layers,
            )
            for _ in range(num_blocks)
        )
        self.decoder = _ChannelsLast(EquiLinear(alg, hidden_channels, out_channels))

    def forward(self, x: Tensor) -> Tensor:
        _check_field(self.alg, x, self.in_channels, self.spatial_dims, self.who, self)
        h = self.encoder(x)
        for block in self.blocks:
            h = block(h)
        return self.decoder(h)
