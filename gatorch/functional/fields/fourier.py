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
they are ``[0, m)`` of the ``N // 2 + 1`` non-negative frequencies. The ``"dual"`` spectrum
accepts ``N // 2 < m <= N`` as cliffordlayers does: the two blocks then overlap, both are
multiplied by their own weights, and a frequency in both takes the product of the second
block ``[N - m, N)`` (cliffordlayers writes that block last).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from gatorch.algebras.algebra import AlgebraData as Algebra

__all__ = [
    "dual_pairs",
    "right_product_gather",
    "right_product_index",
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


def right_product_gather(index: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Gather table of the left factor for the right product, signs folded in.

    For ``y = x w`` with ``y_c = sum_a x_a K[a, c]``, ``K[a, c] = sign[a, c] w[index[a, c]]``,
    write ``y_c = sum_j X[c, j] w_j`` with ``X[c, j] = ext[table[c, j]]`` where
    ``ext = (x, -x, 0)``: at most one ``a`` per ``(c, j)`` (the blade with bitmap ``c ^ j``).

    Parameters
    ----------
    index, sign : (dim, dim) ndarrays
        :func:`right_product_index` reshaped (rows and columns optionally permuted).

    Returns
    -------
    (dim, dim) int64 ndarray
        Entries in ``[0, 2 dim]``: ``a`` (sign +1), ``a + dim`` (sign -1), ``2 dim`` (no term).
    """
    dim = index.shape[0]
    table = np.full((dim, dim), 2 * dim, dtype=np.int64)
    for a in range(dim):
        for c in range(dim):
            if sign[a, c] == 0:
                continue
            j = int(index[a, c])
            if table[c, j] != 2 * dim:
                raise ValueError("right_product_gather: two terms for one (output, weight) blade pair")
            table[c, j] = a if sign[a, c] > 0 else a + dim
    return table


def _mode_index(
    sizes: tuple[int, ...], modes: tuple[int, ...], two_sided: tuple[bool, ...], device: torch.device
) -> Tensor:
    """Flat positions (row-major over ``sizes``) of the kept modes.

    Per axis the kept modes are ``[0, m)``, then ``[n - m, n)`` when ``two_sided``; the order
    is row-major over the axes (the layout of the weights' kept-mode axes).
    """
    flat = torch.zeros(1, dtype=torch.int64, device=device)
    for n, m, both in zip(sizes, modes, two_sided, strict=True):
        k = torch.arange(m, device=device)
        if both:
            k = torch.cat((k, torch.arange(n - m, n, device=device)))
        flat = (flat[:, None] * n + k[None, :]).reshape(-1)
    return flat


def _mode_mix(xm: Tensor, weight: Tensor, table: Tensor, ndim: int) -> Tensor:
    """Per-mode channel and blade mixing ``y_o = sum_i x_i w_oi`` (geometric product on the right).

    xm : (B, C_in, F, P) with the kept modes flattened last; weight : (C_out, C_in, *kept, F);
    table : (F * F,) from :func:`right_product_gather`. Returns (P, B, F, C_out).

    The left factor is gathered into ``(P, B * F, F * C_in)`` (signs folded into the gather from
    ``(x, -x, 0)``), so no ``(C_in F, C_out F)`` matrix per mode is materialized.
    """
    b, cin, f, p = xm.shape
    cout = weight.shape[0]
    xp = xm.permute(3, 0, 2, 1)  # (P, B, F, C_in)
    ext = torch.cat((xp, -xp, xp.new_zeros(p, b, 1, cin)), dim=2)  # (P, B, 2 F + 1, C_in)
    left = ext.index_select(2, table).reshape(p, b * f, f * cin)  # rows (b, c), cols (j, i)
    w = weight.permute(*range(2, 2 + ndim), 2 + ndim, 1, 0).reshape(p, f * cin, cout)  # (P, (j, i), C_out)
    return torch.bmm(left, w).reshape(p, b, f, cout)


def _place_index(
    sizes: tuple[int, ...], modes: tuple[int, ...], two_sided: tuple[bool, ...], device: torch.device
) -> tuple[Tensor, Tensor] | None:
    """Where the kept modes go back when the two blocks of an axis overlap (``n < 2 m``).

    On a two-sided axis with ``n // 2 < m <= n`` the blocks ``[0, m)`` and ``[n - m, n)``
    share frequencies; cliffordlayers writes the block ``[0, m)`` first and ``[n - m, n)``
    second, so a shared frequency takes the value of the second block. Returns
    ``(dst, src)``: flat positions in the spectrum (each once) and the kept-mode index that
    fills each, or None when no axis overlaps (then every kept mode goes to its own place).
    """
    if not any(both and n < 2 * m for n, m, both in zip(sizes, modes, two_sided, strict=True)):
        return None
    dst = torch.zeros(1, dtype=torch.int64, device=device)
    src = torch.zeros(1, dtype=torch.int64, device=device)
    for n, m, both in zip(sizes, modes, two_sided, strict=True):
        kept = 2 * m if both else m
        if both and n < 2 * m:  # [0, m) and [n - m, n) cover the axis
            k = torch.arange(n, device=device)
            s = torch.where(k >= n - m, k - (n - m) + m, k)  # the second block wins
        elif both:
            k = torch.cat((torch.arange(m, device=device), torch.arange(n - m, n, device=device)))
            s = torch.arange(2 * m, device=device)
        else:
            k = torch.arange(m, device=device)
            s = k
        dst = (dst[:, None] * n + k[None, :]).reshape(-1)
        src = (src[:, None] * kept + s[None, :]).reshape(-1)
    return dst, src


def _place_modes(
    out: Tensor, sizes: tuple[int, ...], flat: Tensor, place: tuple[Tensor, Tensor] | None = None
) -> Tensor:
    """(P, B, F, C_out) kept modes -> (B, C_out, F, *sizes) spectrum, zero elsewhere.

    ``place`` (from :func:`_place_index`) resolves overlapping blocks; None: ``flat`` holds each
    position once.
    """
    _, b, f, cout = out.shape
    full = out.new_zeros(b, cout, f, math.prod(sizes))
    if place is not None:
        flat, src = place
        out = out.index_select(0, src)
    full.index_copy_(3, flat, out.permute(1, 3, 2, 0))
    return full.reshape(b, cout, f, *sizes)


def spectral_conv_rfft(
    x: Tensor,
    weight: Tensor | None,
    weight_imag: Tensor | None,
    table: Tensor,
    modes: tuple[int, ...],
) -> Tensor:
    """Spectral convolution with the per-blade real FFT and complex multivector weights.

    Parameters
    ----------
    x : (B, C_in, *spatial, dim) Tensor
        Real multivector field with ``d = len(modes)`` spatial axes.
    weight, weight_imag : (C_out, C_in, *kept, dim) Tensor or None
        Real and imaginary parts of the weight per kept mode; ``kept`` is ``2 m`` on the first
        ``d - 1`` axes and ``m`` on the last one. None (both): no multiplication, the kept
        modes pass unchanged channel by channel (``C_out == C_in``; a low-pass filter).
    table : (dim * dim,) int64 Tensor
        :func:`right_product_gather` of :func:`right_product_index`, flattened.
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
    sizes = (*spatial[:-1], spatial[-1] // 2 + 1)
    flat = _mode_index(sizes, modes, two_sided, x.device)
    xm = torch.fft.rfftn(xt, dim=fdims).flatten(3).index_select(3, flat)  # (B, C_in, dim, P)
    if weight is None or weight_imag is None:
        out = xm.permute(3, 0, 2, 1)  # (P, B, dim, C_in): crop only
    else:
        w = torch.view_as_complex(torch.stack((weight, weight_imag), dim=-1))
        out = _mode_mix(xm, w, table, d)  # (P, B, dim, C_out) complex
    y = torch.fft.irfftn(_place_modes(out, sizes, flat), s=spatial, dim=fdims)  # (B, C_out, dim, *spatial)
    return y.movedim(2, -1).contiguous()


def spectral_conv_dual(
    x: Tensor,
    weight: Tensor | None,
    table: Tensor,
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
    weight : (C_out, C_in, *kept, dim) Tensor or None
        Real multivector weight per kept mode; ``kept`` is ``2 m`` on every axis. None: no
        multiplication, the kept modes pass unchanged channel by channel (cliffordlayers'
        ``multiply=False``).
    table : (dim * dim,) int64 Tensor
        :func:`right_product_gather` of :func:`right_product_index` with rows and columns
        permuted to the paired order ``cat(real, imag)``, flattened.
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
    flat = _mode_index(spatial, modes, two_sided, x.device)
    xt = x.movedim(-1, 2)  # (B, C_in, dim, *spatial), a view
    z = torch.complex(xt.index_select(2, real), xt.index_select(2, imag))  # (B, C_in, dim / 2, *spatial)
    zf = torch.fft.fftn(z, dim=fdims).flatten(3).index_select(3, flat)  # (B, C_in, dim / 2, P)
    m = torch.view_as_real(zf).movedim(-1, 2).flatten(2, 3)  # blades in paired order cat(real, imag)
    if weight is None:
        out = m.permute(3, 0, 2, 1)  # (P, B, dim, C_in): crop only
    else:
        out = _mode_mix(m, weight, table, d)  # (P, B, dim, C_out)
    if mode_source is not None:
        out = out.index_select(0, mode_source)
    outc = torch.complex(out[:, :, :half], out[:, :, half:])  # (P, B, dim / 2, C_out)
    place = _place_index(spatial, modes, two_sided, x.device)
    y = torch.fft.ifftn(_place_modes(outc, spatial, flat, place), dim=fdims)  # (B, C_out, dim / 2, *spatial)
    yr = torch.view_as_real(y).movedim(2, -2)  # (B, C_out, *spatial, dim / 2, 2), a view
    return yr[..., unpair % half, unpair // half]  # one copy, blades in the algebra's order
