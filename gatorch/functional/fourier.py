"""Clifford spectral convolutions on multivector fields ``(batch, channels, *spatial, dim)``.

Two spectra, both multiplied mode by mode through the algebra's geometric-product table:

``"rfft"`` (gatorch's default)
    A real FFT of every blade component over the spatial axes gives a complex multivector per
    mode, :math:`\\hat x(k) \\in Cl \\otimes \\mathbb{C}`. Each kept mode is multiplied on the
    right by a complex multivector weight, :math:`\\hat y_o(k) = \\sum_i \\hat x_i(k) W_{oi}(k)`,
    with the C-bilinear extension of the real product (real and imaginary parts go through
    the real Clifford product separately), then an inverse real FFT. The layer is a
    circular convolution: it commutes with translations of the grid, for any algebra.

``"dual"`` (cliffordlayers' Clifford Fourier transform, for any algebra)
    Blades are paired with their complements (``1 <-> e12``, ``e1 <-> e2`` in 2-D;
    ``1 <-> e123``, ``e1 <-> e23``, ``e2 <-> e13``, ``e3 <-> e12`` in 3-D; in general the blade
    with bitmap ``b`` and the one with bitmap ``~b``, the first in shortlex order as the real
    part). Each pair is a complex field, transformed with a complex FFT; the real and
    imaginary parts of the pair's spectrum are put back on the two blades, which gives a
    real multivector :math:`M(k)` per mode. Each kept mode is multiplied on the right by a
    real multivector weight, :math:`M'_o(k) = \\sum_i M_i(k) W_{oi}(k)`, and the pairs are
    transformed back. For 2 and 3 basis vectors this is exactly cliffordlayers'
    ``CliffordSpectralConv2d/3d``; it commutes with translations only when the pairing's
    complex structure commutes with right multiplications (e.g. Cl(0,2), not Cl(2,0)).

Modes: on a two-sided axis the kept modes are ``[0, m)`` and ``[N - m, N)`` (``2 m`` in all,
the layout cliffordlayers uses); on the last axis of the ``"rfft"`` spectrum (one-sided)
they are ``[0, m)`` of the ``N // 2 + 1`` non-negative frequencies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from gatorch.algebras.algebra import Algebra

__all__ = [
    "dual_pairs",
    "gather_modes",
    "mode_kernel",
    "right_product_index",
    "scatter_modes",
    "spectral_conv_dual",
    "spectral_conv_rfft",
]


def right_product_index(alg: Algebra) -> tuple[np.ndarray, np.ndarray]:
    """Gather index and sign of the matrix of right multiplication by a multivector.

    For ``y = x w`` (geometric product), ``y_c = sum_a x_a K[a, c]`` with
    ``K[a, c] = sign[a * dim + c] * w[index[a * dim + c]]``; entries without a product term
    (degenerate algebras) have sign 0.

    Parameters
    ----------
    alg : Algebra
        The algebra.

    Returns
    -------
    index : (dim * dim,) int64 ndarray
    sign : (dim * dim,) float64 ndarray
    """
    table = alg.gp_table
    dim = alg.dim
    index = np.zeros(dim * dim, dtype=np.int64)
    sign = np.zeros(dim * dim, dtype=np.float64)
    pos = table.i * dim + table.k
    if len(np.unique(pos)) != len(pos):  # one term per (left blade, output blade) pair
        raise ValueError(f"right_product_index: the product table of {alg!r} has repeated terms")
    index[pos] = table.j
    sign[pos] = table.s
    return index, sign


def dual_pairs(alg: Algebra) -> tuple[np.ndarray, np.ndarray]:
    """The complement pairing of blades used by the ``"dual"`` spectrum.

    Parameters
    ----------
    alg : Algebra
        An algebra with at least one basis vector.

    Returns
    -------
    real, imag : (dim // 2,) int64 ndarrays
        Blade indices of the real and imaginary part of each pair: the blade with bitmap
        ``b`` and the one with the complementary bitmap, the first in the algebra's order
        as the real part.
    """
    if alg.n < 1:
        raise ValueError(f"dual_pairs: expected an algebra with at least 1 basis vector, got {alg!r}")
    bitmaps = np.asarray(alg.bitmaps)
    full = (1 << alg.n) - 1
    index_of = {int(b): i for i, b in enumerate(bitmaps.tolist())}
    real, imag = [], []
    for i, b in enumerate(bitmaps.tolist()):
        j = index_of[full ^ int(b)]
        if i < j:
            real.append(i)
            imag.append(j)
    return np.asarray(real, dtype=np.int64), np.asarray(imag, dtype=np.int64)


def gather_modes(
    z: Tensor, axes: tuple[int, ...], modes: tuple[int, ...], two_sided: tuple[bool, ...]
) -> Tensor:
    """Cut the kept modes out of a spectrum.

    Parameters
    ----------
    z : Tensor
        A spectrum; ``axes`` are its frequency axes.
    axes, modes, two_sided : tuples of equal length
        Per frequency axis: its position, the mode count ``m`` and whether both ``[0, m)``
        and ``[N - m, N)`` are kept (else ``[0, m)`` only).

    Returns
    -------
    Tensor
        ``z`` with axis ``a`` of length ``2 m`` (two-sided) or ``m``.
    """
    for axis, m, both in zip(axes, modes, two_sided, strict=True):
        size = z.shape[axis]
        if both:
            z = torch.cat((z.narrow(axis, 0, m), z.narrow(axis, size - m, m)), dim=axis)
        else:
            z = z.narrow(axis, 0, m)
    return z


def scatter_modes(
    z: Tensor,
    axes: tuple[int, ...],
    modes: tuple[int, ...],
    two_sided: tuple[bool, ...],
    sizes: tuple[int, ...],
) -> Tensor:
    """Place kept modes into a zero spectrum (the inverse of :func:`gather_modes`).

    Parameters
    ----------
    z : Tensor
        Kept modes, laid out as :func:`gather_modes` returns them.
    axes, modes, two_sided : tuples
        As for :func:`gather_modes`.
    sizes : tuple of int
        Length of each frequency axis of the full spectrum.

    Returns
    -------
    Tensor
        The full spectrum, zero outside the kept modes.
    """
    for axis, m, both, size in zip(axes, modes, two_sided, sizes, strict=True):
        kept = 2 * m if both else m
        if size == kept:
            continue
        zshape = list(z.shape)
        zshape[axis] = size - kept
        zeros = z.new_zeros(zshape)
        if both:
            z = torch.cat((z.narrow(axis, 0, m), zeros, z.narrow(axis, m, m)), dim=axis)
        else:
            z = torch.cat((z, zeros), dim=axis)
    return z


def mode_kernel(weight: Tensor, index: Tensor, sign: Tensor, ndim: int) -> Tensor:
    """Per-mode matrices of channel mixing by right multiplication with multivector weights.

    Parameters
    ----------
    weight : (C_out, C_in, *kept, dim) Tensor
        One multivector per (output channel, input channel, kept mode).
    index, sign : (dim, dim) Tensor
        ``K[a, c] = sign[a, c] * w[index[a, c]]`` is the matrix of ``x -> x w``
        (:func:`right_product_index` reshaped, optionally with rows and columns permuted).
    ndim : int
        Number of mode axes.

    Returns
    -------
    (prod(kept), C_in * dim, C_out * dim) Tensor
        ``out[p, i * dim + a, o * dim + c] = K_{oi}(p)[a, c]``, built with one gather (the
        table's signs are +-1, or 0 where a degenerate algebra has no term).
    """
    cout, cin, dim = weight.shape[0], weight.shape[1], weight.shape[-1]
    w = weight.permute(*range(2, 2 + ndim), 1, 0, 2 + ndim)  # (*kept, C_in, C_out, dim)
    # signs folded into the gather from [w, -w, 0]: no full-size product with the signs
    w = torch.cat((w, -w, torch.zeros_like(w[..., :1])), dim=-1).reshape(-1, cin, cout, 2 * dim + 1)
    signed = torch.where(sign > 0, index, torch.where(sign < 0, index + dim, torch.full_like(index, 2 * dim)))
    out_index = torch.arange(cout, device=weight.device).view(1, cout, 1)
    k = w[:, :, out_index, signed.unsqueeze(1)]  # (P, C_in, dim_a, C_out, dim_c)
    return k.reshape(k.shape[0], cin * dim, cout * dim)


def _mode_matmul(xm: Tensor, kernel: Tensor, ndim: int) -> Tensor:
    """Per-mode channel and blade mixing.

    xm : (B, C_in, F, *modes); kernel : (P, C_in * F, C_out * F). Returns (B, C_out, F, *modes).
    """
    b, cin, f = xm.shape[0], xm.shape[1], xm.shape[2]
    mode_shape = tuple(xm.shape[3:])
    xt = xm.permute(*range(3, 3 + ndim), 0, 1, 2).reshape(-1, b, cin * f)  # (P, B, C_in * F)
    out = torch.bmm(xt, kernel)  # (P, B, C_out * F)
    cout = kernel.shape[-1] // f
    return out.reshape(*mode_shape, b, cout, f).permute(ndim, ndim + 1, ndim + 2, *range(ndim))


def spectral_conv_rfft(
    x: Tensor,
    weight: Tensor,
    weight_imag: Tensor,
    index: Tensor,
    sign: Tensor,
    modes: tuple[int, ...],
) -> Tensor:
    """Spectral convolution with the per-blade real FFT and complex multivector weights.

    Parameters
    ----------
    x : (B, C_in, *spatial, dim) Tensor
        Real multivector field with ``d = len(modes)`` spatial axes.
    weight, weight_imag : (C_out, C_in, *kept, dim) Tensor
        Real and imaginary parts of the weight per kept mode; ``kept`` is ``2 m`` on the first
        ``d - 1`` axes and ``m`` on the last one.
    index, sign : (dim, dim) Tensor
        :func:`right_product_index` reshaped to ``(dim, dim)``.
    modes : tuple of int
        Kept mode counts per spatial axis.

    Returns
    -------
    (B, C_out, *spatial, dim) Tensor
        ``irfftn( sum_i rfftn(x_i) * W_oi )`` with the product per kept mode.
    """
    d = len(modes)
    spatial = tuple(x.shape[2 : 2 + d])
    fdims = tuple(range(3, 3 + d))
    xt = x.movedim(-1, 2).contiguous()  # (B, C_in, dim, *spatial): FFT over contiguous axes
    two_sided = (True,) * (d - 1) + (False,)
    xm = gather_modes(torch.fft.rfftn(xt, dim=fdims), fdims, modes, two_sided)  # (B, C_in, dim, *kept)
    k = torch.complex(mode_kernel(weight, index, sign, d), mode_kernel(weight_imag, index, sign, d))
    out = _mode_matmul(xm, k, d)  # (B, C_out, dim, *kept) complex
    sizes = (*spatial[:-1], spatial[-1] // 2 + 1)
    full = scatter_modes(out, fdims, modes, two_sided, sizes)
    y = torch.fft.irfftn(full, s=spatial, dim=fdims)  # (B, C_out, dim, *spatial)
    return y.movedim(2, -1).contiguous()


def spectral_conv_dual(
    x: Tensor,
    weight: Tensor,
    index: Tensor,
    sign: Tensor,
    real: Tensor,
    imag: Tensor,
    unpair: Tensor,
    modes: tuple[int, ...],
    mode_source: Tensor | None = None,
) -> Tensor:
    """Spectral convolution in the complement-paired (cliffordlayers) spectrum.

    Parameters
    ----------
    x : (B, C_in, *spatial, dim) Tensor
        Real multivector field with ``d = len(modes)`` spatial axes.
    weight : (C_out, C_in, *kept, dim) Tensor
        Real multivector weight per kept mode; ``kept`` is ``2 m`` on every axis.
    index, sign : (dim, dim) Tensor
        :func:`right_product_index` reshaped to ``(dim, dim)`` with rows and columns permuted
        to the paired order ``cat(real, imag)``.
    real, imag : (dim // 2,) int64 Tensor
        From :func:`dual_pairs`.
    unpair : (dim,) int64 Tensor
        Inverse permutation of ``cat(real, imag)``.
    modes : tuple of int
        Kept mode counts per spatial axis.
    mode_source : (prod(kept),) int64 Tensor, optional
        A gather over the flattened kept modes applied to the products before they are
        placed back (reproduces cliffordlayers 0.1.1's 3-D block placement); None: identity.

    Returns
    -------
    (B, C_out, *spatial, dim) Tensor
    """
    d = len(modes)
    half = x.shape[-1] // 2
    spatial = tuple(x.shape[2 : 2 + d])
    fdims = tuple(range(3, 3 + d))
    two_sided = (True,) * d
    xt = x.movedim(-1, 2)  # (B, C_in, dim, *spatial), a view
    z = torch.complex(xt[:, :, real], xt[:, :, imag])  # (B, C_in, dim / 2, *spatial), contiguous
    zf = gather_modes(torch.fft.fftn(z, dim=fdims), fdims, modes, two_sided)
    m = torch.cat((zf.real, zf.imag), dim=2)  # blades in paired order cat(real, imag)
    k = mode_kernel(weight, index, sign, d)
    out = _mode_matmul(m, k, d)  # (B, C_out, dim, *kept)
    if mode_source is not None:
        out = out.flatten(3).index_select(3, mode_source).reshape(out.shape)
    outc = torch.complex(out[:, :, :half], out[:, :, half:])
    y = torch.fft.ifftn(scatter_modes(outc, fdims, modes, two_sided, spatial), dim=fdims)
    return torch.cat((y.real, y.imag), dim=2).movedim(2, -1)[..., unpair]
