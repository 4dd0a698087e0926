"""Clifford spectral (Fourier) convolutions on multivector fields, for any algebra.

Fields are ``(batch, channels, *spatial, dim)``; the algebra is independent of the number of
spatial axes (an STA field on a 2-D grid is fine). See :mod:`gatorch.functional.fields.fourier` for
the two spectra (``"rfft"``, translation-equivariant, the default; ``"dual"``, cliffordlayers'
complement-paired Clifford Fourier transform).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from gatorch.functional.algebra import Algebra
from gatorch.functional.fields.fourier import (
    dual_pairs,
    right_product_gather,
    right_product_index,
    spectral_conv_dual,
    spectral_conv_rfft,
)
from gatorch.layers._checks import check_algebra, check_input, check_int

__all__ = ["CliffordSpectralConv2d", "CliffordSpectralConv3d"]

_SPECTRA = ("rfft", "dual")


class _CliffordSpectralConv(nn.Module):
    """Shared implementation of the 2-D and 3-D layers (``d`` spatial axes)."""

    weight: Tensor | None
    weight_imag: Tensor | None
    mode_source: Tensor | None
    product_table: Tensor
    pair_real: Tensor
    pair_imag: Tensor
    unpair: Tensor

    def __init__(
        self,
        who: str,
        alg: Algebra,
        in_channels: int,
        out_channels: int,
        modes: tuple[int, ...],
        spectrum: str,
        cliffordlayers_3d_slicing: bool,
        multiply: bool = True,
    ) -> None:
        super().__init__()
        check_algebra(alg, who)
        check_int(who, "in_channels", in_channels, 1)
        check_int(who, "out_channels", out_channels, 1)
        if not isinstance(multiply, bool):
            raise TypeError(f"{who}: multiply must be a bool, got {type(multiply).__name__}")
        if not multiply and in_channels != out_channels:
            raise ValueError(
                f"{who}: multiply=False (crop the modes, no weights) needs in_channels == out_channels, "
                f"got {in_channels} and {out_channels}"
            )
        for i, m in enumerate(modes):
            check_int(who, f"modes{i + 1}", m, 1)
        if spectrum not in _SPECTRA:
            raise ValueError(f"{who}: spectrum must be one of {_SPECTRA}, got {spectrum!r}")
        if spectrum == "dual" and alg.n < 1:
            raise ValueError(f"{who}: spectrum='dual' needs an algebra with >= 1 basis vector, got {alg!r}")
        if cliffordlayers_3d_slicing and (spectrum != "dual" or len(modes) != 3):
            raise ValueError(f"{who}: cliffordlayers_3d_slicing needs spectrum='dual' and 3 spatial axes")
        self.alg = alg
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes = tuple(modes)
        self.spectrum = spectrum
        d = len(modes)
        if spectrum == "dual":
            self.kept = tuple(2 * m for m in modes)
        else:
            self.kept = (*(2 * m for m in modes[:-1]), modes[-1])
        shape = (out_channels, in_channels, *self.kept, alg.dim)
        scale = 1.0 / (in_channels * out_channels)
        self.multiply = multiply
        if multiply:
            self.weight = nn.Parameter(scale * torch.rand(shape))
        else:
            self.register_parameter("weight", None)
        if multiply and spectrum == "rfft":
            self.weight_imag = nn.Parameter(scale * torch.rand(shape))
        else:
            self.register_parameter("weight_imag", None)
        flat_index, flat_sign = right_product_index(alg)
        index, sign = flat_index.reshape(alg.dim, alg.dim), flat_sign.reshape(alg.dim, alg.dim)
        if spectrum == "dual":
            real, imag = dual_pairs(alg)
            paired = np.concatenate((real, imag))
            index, sign = index[paired][:, paired], sign[paired][:, paired]  # paired order in and out
            self.register_buffer("pair_real", torch.from_numpy(real), persistent=False)
            self.register_buffer("pair_imag", torch.from_numpy(imag), persistent=False)
            self.register_buffer("unpair", torch.from_numpy(np.argsort(paired)), persistent=False)
        # gather table of the left factor of x -> x w, signs folded in (rows: output blade, cols: w's)
        table = right_product_gather(index, sign)
        self.register_buffer("product_table", torch.from_numpy(table.reshape(-1)), persistent=False)
        self.cliffordlayers_3d_slicing = cliffordlayers_3d_slicing
        if cliffordlayers_3d_slicing:
            # cliffordlayers 0.1.1 fills the output block (k1 < 0, k2 >= 0, k3 < 0) from the
            # products computed for (k1 >= 0, k2 >= 0, k3 < 0) (its slice `: -modes1 :`).
            src = np.arange(math.prod(self.kept)).reshape(self.kept)
            m1, m2, m3 = modes
            src[m1:, :m2, m3:] = src[:m1, :m2, m3:]
            self.register_buffer("mode_source", torch.from_numpy(src.reshape(-1)), persistent=False)
        else:
            self.mode_source = None
        self._who = who
        self._d = d

    def _check_input(self, x: Tensor) -> None:
        who, d = self._who, self._d
        self.alg.check_dim(x, f"{who} input")
        if x.ndim != d + 3 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{who}: expected input of shape (batch, {self.in_channels}, {', '.join(['*'] * d)}, "
                f"{self.alg.dim}), got {tuple(x.shape)}"
            )
        spatial = x.shape[2 : 2 + d]
        for i, (m, n) in enumerate(zip(self.modes, spatial, strict=True)):
            one_sided = self.spectrum == "rfft" and i == d - 1
            dual = self.spectrum == "dual"  # cliffordlayers' limit: the two blocks may overlap
            most = n if dual else n // 2 + 1 if one_sided else n // 2
            if m > most:
                kind = (
                    "n (spectrum='dual')"
                    if dual
                    else "n // 2 + 1 (last axis of the real FFT)"
                    if one_sided
                    else "n // 2"
                )
                raise ValueError(
                    f"{who}: modes{i + 1}={m} needs spatial size n with modes <= {kind}; "
                    f"got n={n} (grid {tuple(spatial)})"
                )

    def forward(self, x: Tensor) -> Tensor:
        """Apply the layer.

        Parameters
        ----------
        x : (batch, in_channels, *spatial, dim) Tensor

        Returns
        -------
        (batch, out_channels, *spatial, dim) Tensor
        """
        check_input(self._who, x, self)
        self._check_input(x)
        if self.spectrum == "rfft":
            return spectral_conv_rfft(x, self.weight, self.weight_imag, self.product_table, self.modes)
        return spectral_conv_dual(
            x,
            self.weight,
            self.product_table,
            self.pair_real,
            self.pair_imag,
            self.unpair,
            self.modes,
            self.mode_source,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.alg!r}, {self.in_channels}, {self.out_channels}, modes={self.modes}, "
            f"spectrum={self.spectrum!r}"
            + (", cliffordlayers_3d_slicing=True" if self.cliffordlayers_3d_slicing else "")
            + ("" if self.multiply else ", multiply=False")
        )


class CliffordSpectralConv2d(_CliffordSpectralConv):
    r"""Clifford Fourier layer on 2-D grids, for any algebra.

    .. math::
        \hat y_o(k) = \sum_i \hat x_i(k)\, W_{oi}(k) \quad \text{(geometric product, per kept mode)}

    Parameters
    ----------
    alg : Algebra
        The algebra of the field's multivectors (any signature, any number of basis vectors).
    in_channels, out_channels : int
        Multivector channels.
    modes1, modes2 : int
        Kept Fourier modes per axis (see ``spectrum``).
    spectrum : {"rfft", "dual"}
        ``"rfft"`` (default): real FFT per blade, complex multivector weights ``weight`` +
        i ``weight_imag`` of shape ``(out, in, 2 * modes1, modes2, dim)``; a translation-equivariant
        convolution. ``"dual"``: cliffordlayers' complement-paired spectrum with real weights of
        shape ``(out, in, 2 * modes1, 2 * modes2, dim)``; equals cliffordlayers'
        ``CliffordSpectralConv2d`` with ``weight[o, i, k1, k2, a] = weights[a, o, i, k1, k2]``.
    multiply : bool
        False: no weights, the layer only keeps the modes (channel by channel, so
        ``in_channels == out_channels``); cliffordlayers' ``multiply=False``. Works in any
        floating dtype.

    Shapes
    ------
    input ``(batch, in_channels, n1, n2, dim)``, output ``(batch, out_channels, n1, n2, dim)``.
    ``"rfft"``: ``2 * modes1 <= n1`` and ``modes2 <= n2 // 2 + 1``. ``"dual"``: ``modes1 <= n1``
    and ``modes2 <= n2`` (cliffordlayers' limit; with ``n < 2 * modes`` the blocks of positive
    and negative frequencies overlap, see :mod:`gatorch.functional.fields.fourier`).
    """

    def __init__(
        self,
        alg: Algebra,
        in_channels: int,
        out_channels: int,
        modes1: int,
        modes2: int,
        *,
        spectrum: str = "rfft",
        multiply: bool = True,
    ) -> None:
        super().__init__(
            "CliffordSpectralConv2d",
            alg,
            in_channels,
            out_channels,
            (modes1, modes2),
            spectrum,
            False,
            multiply,
        )


class CliffordSpectralConv3d(_CliffordSpectralConv):
    r"""Clifford Fourier layer on 3-D grids, for any algebra.

    As :class:`CliffordSpectralConv2d` with three spatial axes. With ``spectrum="dual"`` and
    ``cliffordlayers_3d_slicing=True`` it reproduces cliffordlayers 0.1.1's
    ``CliffordSpectralConv3d`` exactly, including its placement of the output block
    ``(k1 < 0, k2 >= 0, k3 < 0)`` (filled with the products of the block
    ``(k1 >= 0, k2 >= 0, k3 < 0)``; a slicing slip in cliffordlayers); :func:`convert
    <gatorch.interop.cliffordlayers_fourier.convert>` sets it.

    Parameters
    ----------
    alg : Algebra
    in_channels, out_channels : int
    modes1, modes2, modes3 : int
    spectrum : {"rfft", "dual"}
    cliffordlayers_3d_slicing : bool
        Only with ``spectrum="dual"``.
    multiply : bool
        See :class:`CliffordSpectralConv2d`.

    Shapes
    ------
    input ``(batch, in_channels, n1, n2, n3, dim)``, output ``(batch, out_channels, n1, n2, n3, dim)``.
    """

    def __init__(
        self,
        alg: Algebra,
        in_channels: int,
        out_channels: int,
        modes1: int,
        modes2: int,
        modes3: int,
        *,
        spectrum: str = "rfft",
        cliffordlayers_3d_slicing: bool = False,
        multiply: bool = True,
    ) -> None:
        super().__init__(
            "CliffordSpectralConv3d",
            alg,
            in_channels,
            out_channels,
            (modes1, modes2, modes3),
            spectrum,
            cliffordlayers_3d_slicing,
            multiply,
        )
