r"""Helpers of the Clifford-steerable convolutions (Zhdanov et al., ICML 2024).

A Clifford-steerable convolution maps a multivector field ``f: Z^d -> Cl^{c_in}`` to

.. math::
    \mathrm{out}_o(x) = \sum_{v \in \mathrm{grid}} \sum_i
        \mathrm{sgp}_{W_{oi}}\big(k_{oi}(v),\ f_i(x + v)\big),

with :math:`k_{oi}(v)` the multivector output of an equivariant *kernel network* at the
relative position :math:`v` (embedded as a vector of the algebra) and
:math:`\mathrm{sgp}_W(a, b) = \sum_{(i, j, k, s)} s\, W_{\pi(g_i, g_j, g_k)}\, a_i b_j\, e_k`
the weighted geometric product with one weight per grade path (CGENN's steerable product,
:func:`gatorch.functional.steerable.steerable_gp`). For a fixed left operand ``a`` the map
``b -> sgp_W(a, b)`` is linear, a real ``(dim, dim)`` matrix

.. math::
    M(a)_{kj} = s_{A(k, j), k}\, W_{\pi(A(k, j), k)}\, a_{A(k, j)},

with :math:`A(k, j)` the unique left blade ``i`` whose product with ``e_j`` lands on ``e_k``
(bitmap XOR; the sign is 0 where the product vanishes, a degenerate factor being shared).
:func:`steerable_kernel_matrix` builds these matrices for all positions and
channel pairs with two gathers and one multiplication (``dim**2`` work per entry, no Cayley
tensor); the convolution is then one ``conv{d}d`` call on ``channels * dim`` real features.

The grid's axes are the algebra's non-degenerate basis vectors, in the algebra's order
(:func:`spatial_blades`); degenerate basis vectors get no grid axis (positions have no
component along them).
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import torch
from torch import Tensor

from gatorch.algebras.algebra import AlgebraData as Algebra
from gatorch.functional.steerable import steerable_plan

__all__ = [
    "ConvKernelTables",
    "conv_kernel_tables",
    "embed_positions",
    "kernel_offsets",
    "spatial_blades",
    "steerable_kernel_matrix",
]


class ConvKernelTables(NamedTuple):
    """Index tables of :func:`steerable_kernel_matrix`, each of shape ``(dim, dim)``.

    Attributes
    ----------
    left : Tensor, int64
        ``left[k, j]``: the blade ``i`` with ``e_i e_j`` a multiple of ``e_k``.
    path : Tensor, int64
        Index into :func:`gatorch.functional.steerable.steerable_paths` of the term
        ``(left[k, j], j, k)`` (0 where ``sign`` is 0).
    sign : Tensor, floating
        Coefficient of ``e_k`` in ``e_{left[k, j]} e_j`` (0 where a degenerate factor is shared).
    """

    left: Tensor
    path: Tensor
    sign: Tensor


def conv_kernel_tables(
    alg: Algebra, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> ConvKernelTables:
    """New :class:`ConvKernelTables` of ``alg`` (from its steerable-product plan); no cache."""
    plan = steerable_plan(alg)
    dim = alg.dim
    # e_i e_j is a multiple of e_k exactly when bitmap(i) = bitmap(j) XOR bitmap(k)
    left = [[plan.by_bitmap[plan.bitmaps[k] ^ plan.bitmaps[j]] for j in range(dim)] for k in range(dim)]
    path = [[plan.path[left[k][j]][k] for j in range(dim)] for k in range(dim)]
    sign = [[plan.sign[left[k][j]][k] for j in range(dim)] for k in range(dim)]
    return ConvKernelTables(
        torch.tensor(left, dtype=torch.int64, device=device),
        torch.tensor(path, dtype=torch.int64, device=device),
        torch.tensor(sign, dtype=dtype, device=device),
    )


def spatial_blades(alg: Algebra) -> tuple[int, ...]:
    """Blade indices of the non-degenerate basis vectors, in the algebra's order: the grid's axes.

    Axis ``a`` of a field's spatial shape is the direction of the ``a``-th of these vectors
    (for ``Cl(1, 1)``: axis 0 is ``e1`` with square +1, axis 1 is ``e2`` with square -1).
    """
    first = alg.grade_slice(1).start
    return tuple(first + a for a in range(alg.n) if alg.metric[a] != 0)


def kernel_offsets(kernel_size: tuple[int, ...], spacing: float) -> Tensor:
    """Relative positions of a kernel grid, ``(prod(kernel_size), d)`` float64, C order of the axes.

    Entry ``(p, a)`` is ``(index_a - kernel_size[a] // 2) * spacing`` for the ``p``-th kernel
    cell in row-major order, so a reshape to ``(*kernel_size, d)`` recovers the grid. Kernel
    sizes must be odd (the grid is then symmetric about 0).
    """
    for size in kernel_size:
        if size % 2 != 1:
            raise ValueError(f"kernel_offsets: kernel sizes must be odd, got {kernel_size}")
    cells = itertools.product(*(range(-(s // 2), s // 2 + 1) for s in kernel_size))
    return torch.tensor([[c * spacing for c in cell] for cell in cells], dtype=torch.float64).reshape(
        math.prod(kernel_size), len(kernel_size)
    )


def embed_positions(alg: Algebra, positions: Tensor) -> tuple[Tensor, Tensor]:
    r"""Positions as grade-1 multivectors and their invariant square.

    Parameters
    ----------
    positions : Tensor, shape (..., d)
        ``d`` = number of non-degenerate basis vectors (:func:`spatial_blades`).

    Returns
    -------
    vectors : Tensor, shape (..., dim)
        :math:`v = \sum_a x_a e_{s(a)}` with :math:`s` = :func:`spatial_blades`.
    square : Tensor, shape (...,)
        :math:`\langle v, v\rangle = \sum_a \eta_{s(a)} x_a^2` (signed for indefinite metrics).
    """
    blades = spatial_blades(alg)
    if positions.shape[-1] != len(blades):
        raise ValueError(
            f"embed_positions: {alg!r} has {len(blades)} non-degenerate basis vectors, so positions "
            f"must have shape (..., {len(blades)}), got {tuple(positions.shape)}"
        )
    embed = positions.new_zeros(len(blades), alg.dim)
    metric = positions.new_tensor([float(m) for m in alg.metric if m != 0])
    for a, blade in enumerate(blades):
        embed[a, blade] = 1.0
    return positions @ embed, (positions * positions * metric).sum(-1)


def steerable_kernel_matrix(alg: Algebra, k: Tensor, weight: Tensor, tables: ConvKernelTables) -> Tensor:
    r"""Real matrices of ``b -> sgp_{W_oi}(k_oi, b)``: the structured convolution kernel.

    .. math::
        K_{\cdot, o k, i j} = s_{kj}\, W_{o i \pi_{kj}}\, k_{\cdot, o i, A_{kj}}

    with ``A, pi, s`` = ``tables.left, tables.path, tables.sign``; then
    ``sum_j K[..., o, k, i, j] b_{i j} = steerable_gp(k_oi, b_i)`` with the weights ``W_oi``.

    Parameters
    ----------
    k : Tensor, shape (..., out_channels, in_channels, dim)
        Left operands (the kernel network's output per position and channel pair).
    weight : Tensor, shape (out_channels, in_channels, num_paths)
        Path weights per channel pair.
    tables : ConvKernelTables

    Returns
    -------
    Tensor, shape (..., out_channels, dim, in_channels, dim)
        ``dim**2`` entries per channel pair and position; autograd flows to ``k`` and ``weight``.
    """
    alg.check_dim(k, "steerable_kernel_matrix k")
    if k.ndim < 3 or weight.ndim != 3 or tuple(weight.shape[:2]) != tuple(k.shape[-3:-1]):
        raise ValueError(
            "steerable_kernel_matrix: expected k of shape (..., out, in, dim) and weight of shape "
            f"(out, in, num_paths), got {tuple(k.shape)} and {tuple(weight.shape)}"
        )
    dtype = torch.promote_types(k.dtype, weight.dtype)
    w = weight.to(dtype)[:, :, tables.path] * tables.sign.to(dtype)  # (o, i, k, j)
    gathered = k.to(dtype)[..., tables.left]  # (..., o, i, k, j)
    return (gathered * w).transpose(-3, -2)  # (..., o, k, i, j)
