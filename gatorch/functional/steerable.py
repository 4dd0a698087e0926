r"""CGENN's steerable geometric product and multivector SiLU (Ruhe et al., 2023).

Steerable geometric product
---------------------------
The geometric product with one learnable weight per channel and *path*, a triple
``(a, b, c)`` of grades such that the grade-``a`` part of ``x`` times the grade-``b``
part of ``y`` has a grade-``c`` component:

.. math::
    \mathrm{out}_{\cdot c k} = \sum_{(i, j, k, s) \in \mathrm{gp}}
        s \, W_{c,\, \pi(g_i, g_j, g_k)} \, x_{\cdot c i} \, y_{\cdot c j}

with ``(i, j, k, s)`` the non-zero terms of the geometric-product table
(:math:`e_i e_j = s\, e_k`), :math:`g_i` the grade of blade ``i`` and :math:`\pi` the
index of a path among :func:`steerable_paths`. Grade projections commute with the
twisted versor action and the geometric product is equivariant, so the map is
equivariant for any weights (both operands transformed).

How it runs
-----------
``e_i e_j`` is a multiple of ``e_k`` exactly when the bitmap of ``j`` is that of ``i``
XOR that of ``k``, so for a fixed left blade ``i`` the right blade of every output
``k`` is unique: ``j = R[i, k]``. The kernel loops over the ``dim`` left blades ("slots")
and, for each, adds ``W[i, :, :] * x_i * y[R[i]]`` to all outputs at once: a gather and
two fused multiply-adds over ``(channels, dim, block)`` arrays in a channel-major
blade-first layout, reached by one 2-D transpose per operand and block of items (blocks
of about :data:`BLOCK_ELEMS` elements, so the per-slot arrays stay in cache). The work is
``dim**2`` multiply-adds per channel and item (``nnz`` of the table, plus the degenerate
zeros); no ``(channels, dim, dim, dim)`` tensor is formed and nothing of size ``dim**2``
per item is stored. The per-slot weights ``W[i, c, k] = s * weight[c, path]`` are a
``(dim, channels, dim)`` gather of the path weights, rebuilt each call (cheap). The
backward is a second kernel of the same shape (sparse, no Cayley tensor), and only the
operands are saved for it.

In eager mode the kernels run inside a ``torch.autograd.Function``. Under ``torch.compile``
the field ``compiled`` of the kernel policy (the ``policy=`` argument, else the ambient
:func:`gatorch.functional.current_kernel_policy`) picks one of two forms (``"auto"``, the
default, picks ``"fused"``):

* ``"fused"``: the *bitmap form* below, plain torch ops that inductor turns into a few
  vectorised loops, with a hand-written backward of the same shape (an
  ``autograd.Function`` traced by dynamo). Compiles in seconds; 5-18x faster than the
  dense reference forward + backward on one CPU thread (``benchmarks/bench_steerable.py
  --compile``), 2-4x faster than the eager kernels;
* ``"opaque"``: the eager kernels as ``torch.library`` custom ops
  (``gatorch::steerable_gp`` and ``gatorch::steerable_gp_backward``) with fake functions
  and autograd; the compiler does not look into them (compiles in no time, runs at eager
  speed).

Either way ``fullgraph=True`` traces without a graph break. Double backward
(``create_graph=True``) goes through a differentiable gather formula (``(items, channels,
dim, dim)`` intermediates) in eager mode.

The bitmap form (compiled)
--------------------------
Number the blades by bitmap (blade ``b`` holds the basis vectors of the set bits of ``b``).
Then the right blade of term ``(i, k)`` is ``i XOR k``, an index *computed* from the loop
indices (``torch.bitwise_xor`` of two ``arange``), so the product is one reduction with no
table::

    out[c, k, n] = sum_i W[c, i, k] * x[c, i, n] * y[c, i XOR k, n]

on blade-first operands ``(C, dim, N)``. Inductor turns it into one vectorised loop nest:
for each ``(c, k)`` and each vector of items, ``dim`` multiply-adds whose gather index
depends on ``(i, k)`` only (unit-stride loads along the items). The backward has the same
shape: with ``B[c, i, j] = W[c, i, i XOR j]``,

.. math::
    g_x[c, i] = \sum_m B[c, i, m]\, y[c, m]\, g[c, i \oplus m], \qquad
    g_y[c, j] = \sum_i B[c, i, j]\, x[c, i]\, g[c, i \oplus j],

and ``gW[c, i, k] = G[c, i, i XOR k]`` with ``G[c, i, m] = sum_n x[c, i, n] y[c, m, n]
g[c, i XOR m, n]``; only the weights and the operands are saved (an ``autograd.Function``
traced by dynamo). The graph has a fixed handful of nodes whatever ``dim`` (writing one
expression per table term instead takes minutes to compile for ``dim = 32``), and it
compiles in seconds.

The layout changes (items-first shortlex ``(N, C * dim)`` to blade-first bitmap
``(C, dim, N)`` and back) are batched matrix products with the ``(dim, dim)`` permutation
matrix, and the per-slot weights ``W`` are one matrix product of the path weights with a
``(num_paths, dim * dim)`` sign-and-path matrix. Matrix products stay library calls under
inductor, so their results are contiguous buffers: a traced transpose would instead be
folded into the product loop as strided loads (several times slower). A permutation matrix
moves each coefficient exactly, but like the dense reference it spreads a NaN or an
infinity of one blade over the blades of the same item and channel.

:func:`steerable_gp_dense` is CGENN's own formulation (a weighted ``(channels, dim, dim,
dim)`` Cayley tensor built every call and contracted with one einsum): the reference
for the tests and the benchmark.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from torch import Tensor

from gatorch.functional.nonlinear import blade_grade_index, check_layout_dim, grade_invariants, smooth_norm
from gatorch.functional.policy import KernelPolicy, resolve_kernel_policy

if TYPE_CHECKING:
    from gatorch.algebras.algebra import AlgebraData as Algebra
    from gatorch.algebras.layout import Layout

__all__ = [
    "SteerablePlan",
    "SteerableTables",
    "blade_inner",
    "grade_index",
    "grade_normalize",
    "mv_silu",
    "steerable_gp",
    "steerable_gp_dense",
    "steerable_init_std",
    "steerable_paths",
    "steerable_plan",
    "steerable_tables",
]


# -- the plan: paths and per-slot tables (pure Python, built once per algebra) -----------------------
@dataclass(frozen=True, eq=False)
class SteerablePlan:
    """Tables behind :func:`steerable_gp` for one algebra.

    Attributes
    ----------
    paths : tuple of (int, int, int)
        The ``(grade_left, grade_right, grade_out)`` triples with non-zero terms, sorted.
    right : tuple of tuple of int, (dim, dim)
        ``right[i][k]``: the blade ``j`` with ``e_i e_j`` a multiple of ``e_k``.
    sign : tuple of tuple of float, (dim, dim)
        Coefficient of ``e_k`` in ``e_i e_{right[i][k]}``; 0 where a degenerate factor
        is shared.
    path : tuple of tuple of int, (dim, dim)
        Index into ``paths`` of term ``(i, right[i][k], k)``; 0 where ``sign`` is 0.
    bitmaps : tuple of int, (dim,)
        Bitmap of each blade (shortlex order): bit ``a`` set when basis vector ``a`` is a factor.
    by_bitmap : tuple of int, (dim,)
        The inverse: ``by_bitmap[b]`` is the (shortlex) index of the blade with bitmap ``b``.
        For every term, ``bitmaps[right[i][k]] == bitmaps[i] ^ bitmaps[k]``.
    """

    paths: tuple[tuple[int, int, int], ...]
    right: tuple[tuple[int, ...], ...]
    sign: tuple[tuple[float, ...], ...]
    path: tuple[tuple[int, ...], ...]
    bitmaps: tuple[int, ...]
    by_bitmap: tuple[int, ...]

    @property
    def dim(self) -> int:
        """Number of blades."""
        return len(self.right)

    @property
    def n(self) -> int:
        """Number of basis vectors (``dim = 2**n``)."""
        return len(self.right).bit_length() - 1

    @property
    def first_is_identity(self) -> bool:
        """``right[0]`` is ``0, 1, ..., dim - 1`` (blade 0 is the scalar): slot 0 needs no gather."""
        return self.right[0] == tuple(range(len(self.right)))


def _build_plan(alg: Algebra) -> SteerablePlan:
    dim, grades = alg.dim, alg.grades
    terms = [(i, j, k, s) for k, per_out in enumerate(alg.gp_table.terms_by_output) for i, j, s in per_out]
    paths = tuple(sorted({(grades[i], grades[j], grades[k]) for i, j, k, _ in terms}))
    index = {p: n for n, p in enumerate(paths)}
    right = [[0] * dim for _ in range(dim)]
    sign = [[0.0] * dim for _ in range(dim)]
    path = [[0] * dim for _ in range(dim)]
    for i, j, k, s in terms:
        right[i][k], sign[i][k] = j, s
        path[i][k] = index[(grades[i], grades[j], grades[k])]
    # pairs without a term (a shared degenerate factor) keep sign 0; give them a right
    # blade that no other pair of the slot uses, so every slot is a permutation
    for i in range(dim):
        free = iter(sorted(set(range(dim)) - {right[i][k] for k in range(dim) if sign[i][k] != 0.0}))
        for k in range(dim):
            if sign[i][k] == 0.0:
                right[i][k] = next(free)
    bitmaps = tuple(int(b) for b in alg.bitmaps)
    by_bitmap = [0] * dim
    for blade, b in enumerate(bitmaps):
        by_bitmap[b] = blade
    return SteerablePlan(
        paths,
        tuple(tuple(r) for r in right),
        tuple(tuple(r) for r in sign),
        tuple(tuple(r) for r in path),
        bitmaps,
        tuple(by_bitmap),
    )


def _cached_plan(alg: Algebra) -> SteerablePlan:
    return alg.plan("steerable_plan", lambda: _build_plan(alg))


@torch.compiler.assume_constant_result
def _plan_fields(alg: Algebra) -> tuple[object, ...]:
    """The plan's fields as nested tuples: called (not traced) by dynamo, a constant of the graph."""
    plan = _cached_plan(alg)
    return tuple(getattr(plan, f.name) for f in fields(plan))


def steerable_plan(alg: Algebra) -> SteerablePlan:
    """The cached :class:`SteerablePlan` of ``alg`` (built from its geometric-product table).

    Pure Python metadata. Layers fetch it at construction and keep it. Inside a
    ``torch.compile`` trace the plan is read as a constant of the graph (built outside the
    trace if need be), with no guard on this module's cache, so functions that call
    :func:`steerable_gp` directly also compile without a graph break or a recompilation.
    """
    if torch.compiler.is_compiling():
        return SteerablePlan(*_plan_fields(alg))
    return _cached_plan(alg)


def steerable_paths(alg: Algebra) -> tuple[tuple[int, int, int], ...]:
    """Grade triples ``(grade_left, grade_right, grade_out)`` of the geometric product.

    A triple is a path when some blade of grade ``grade_left`` times some blade of grade
    ``grade_right`` has a non-zero component on a blade of grade ``grade_out``. Sorted;
    cached per algebra. ``len(steerable_paths(alg))`` is the number of weights per
    channel of :func:`steerable_gp` (20 for Cl(3,0), 34 for Cl(3,0,1), 56 for Cl(4,1)).
    """
    return steerable_plan(alg).paths


def steerable_init_std(alg: Algebra) -> Tensor:
    r"""Per-path weight standard deviation giving :func:`steerable_gp` unit output variance.

    For independent unit-variance operands, the variance of output blade ``k`` is the sum of
    the squared weights of its terms. Every path into grade ``g`` gets the variance
    ``1 / T_g``, with ``T_g`` the mean number of terms per blade of grade ``g`` (``dim``
    for non-degenerate algebras; fewer where degenerate factors cancel), so that each
    grade's mean output variance is 1.

    Returns
    -------
    Tensor, shape (num_paths,), float64
    """
    plan = steerable_plan(alg)
    terms = [0] * (alg.n + 1)
    for i in range(alg.dim):
        for k in range(alg.dim):
            if plan.sign[i][k] != 0.0:
                terms[alg.grades[k]] += 1
    per_blade = [terms[g] / math.comb(alg.n, g) for g in range(alg.n + 1)]
    return torch.tensor([per_blade[c] ** -0.5 for _, _, c in plan.paths], dtype=torch.float64)


# -- tables as tensors ------------------------------------------------------------------------------
class SteerableTables(NamedTuple):
    """A plan and its ``(dim, dim)`` tables as tensors: what :func:`steerable_gp` reads.

    Layers keep the tensors as non-persistent buffers (so they follow ``.to(device,
    dtype)`` without entering the ``state_dict``) and pass them on every call; without them
    :func:`steerable_gp` builds them from the plan (a constant under ``torch.compile``).

    Attributes
    ----------
    plan : SteerablePlan
    sign : Tensor, shape (dim, dim), floating
    path : Tensor, shape (dim, dim), int64
    right : Tensor, shape (dim, dim), int64
    """

    plan: SteerablePlan
    sign: Tensor
    path: Tensor
    right: Tensor


def steerable_tables(
    alg: Algebra, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> SteerableTables:
    """New tensors of the plan of ``alg`` on ``device`` (``sign`` in ``dtype``); no cache."""
    plan = steerable_plan(alg)
    return SteerableTables(
        plan,
        torch.tensor(plan.sign, dtype=dtype, device=device),
        torch.tensor(plan.path, dtype=torch.int64, device=device),
        torch.tensor(plan.right, dtype=torch.int64, device=device),
    )


def grade_index(alg: Algebra, device: torch.device | str | None = None) -> Tensor:
    """Grade of each blade as a new int64 tensor of shape ``(dim,)`` on ``device``.

    ``v[..., grade_index(alg)]`` broadcasts per-grade values ``v: (..., n + 1)`` to the blades.
    """
    return torch.tensor(alg.grades, dtype=torch.int64, device=device)


# -- kernels ------------------------------------------------------------------------------------------
#: Items per block are chosen so that one (C, dim, block) array has about this many elements:
#: the per-slot arrays then stay in cache (measured on VGA3, STA and CGA3 alike).
BLOCK_ELEMS = 1 << 18


def _blocks(items: int, channels: int, dim: int) -> list[tuple[int, int]]:
    step = max(1, BLOCK_ELEMS // (channels * dim))
    return [(start, min(start + step, items)) for start in range(0, items, step)]


def _blade_first(t2: Tensor, channels: int, dim: int) -> Tensor:
    """``(n, C * dim) -> (C, dim, n)`` contiguous (one 2-D transpose)."""
    return t2.t().contiguous().view(channels, dim, t2.shape[0])


def _forward_impl(x2: Tensor, y2: Tensor, w: Tensor, right: Tensor, first_is_identity: bool) -> Tensor:
    """``out[n, c, k] = sum_i w[i, c, k] * x[n, c, i] * y[n, c, right[i, k]]``.

    ``x2, y2: (N, C * dim)``, ``w: (dim, C, dim, 1)``, ``right: (dim, dim)`` int64;
    ``first_is_identity``: ``right[0]`` is ``0, 1, ..., dim - 1`` (blade 0 is the scalar), so
    slot 0 needs no gather. Returns ``(N, C * dim)``. Runs block by block over the items
    in the channel-major blade-first layout ``(C, dim, block)``.
    """
    dim, channels = w.shape[0], w.shape[1]
    out2 = torch.empty_like(x2)
    for start, stop in _blocks(x2.shape[0], channels, dim):
        xt = _blade_first(x2[start:stop], channels, dim)
        yt = _blade_first(y2[start:stop], channels, dim)
        acc = torch.empty_like(yt)
        buf = torch.empty_like(yt)
        for i in range(dim):
            if i == 0 and first_is_identity:
                torch.mul(yt, xt[:, :1], out=buf)
            else:
                torch.index_select(yt, 1, right[i], out=buf)
                buf.mul_(xt[:, i : i + 1])
            if i == 0:
                torch.mul(buf, w[0], out=acc)
            else:
                acc.addcmul_(buf, w[i])
        out2[start:stop] = acc.view(channels * dim, stop - start).t()
    return out2


def _backward_impl(
    g2: Tensor,
    x2: Tensor,
    y2: Tensor,
    w: Tensor,
    right: Tensor,
    first_is_identity: bool,
    need_x: bool,
    need_y: bool,
    need_w: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of :func:`_kernel` (zero-size placeholders for the ones not needed).

    ``gx[c, i] = sum_k w[i, c, k] g[c, k] y[c, R[i, k]]``,
    ``gy[c, R[i, k]] += w[i, c, k] x[c, i] g[c, k]``,
    ``gw[i, c, k] = sum_n x[c, i, n] y[c, R[i, k], n] g[c, k, n]``;
    ``g2, gx, gy: (N, C * dim)``, ``gw`` shaped like ``w``. Block by block, as the forward.
    """
    dim, channels = w.shape[0], w.shape[1]
    empty = x2.new_empty(0)
    gx2 = torch.empty_like(x2) if need_x else empty
    gy2 = torch.empty_like(y2) if need_y else empty
    gw = torch.zeros_like(w) if need_w else empty
    for start, stop in _blocks(x2.shape[0], channels, dim):
        xt = _blade_first(x2[start:stop], channels, dim)
        yt = _blade_first(y2[start:stop], channels, dim)
        g = _blade_first(g2[start:stop], channels, dim)
        buf = torch.empty_like(yt)
        if need_x:
            gx = torch.empty_like(xt)
            row = xt.new_empty(channels, 1, stop - start)
        if need_y:
            gy = torch.zeros_like(yt)
            buf2 = torch.empty_like(yt)
        for i in range(dim):
            xi = xt[:, i : i + 1]
            if need_x or need_w:
                if i == 0 and first_is_identity:
                    torch.mul(yt, g, out=buf)
                else:
                    torch.index_select(yt, 1, right[i], out=buf)
                    buf.mul_(g)  # y[R[i, k]] * g[k]
                if need_x:
                    torch.bmm(w[i].transpose(1, 2), buf, out=row)
                    gx[:, i : i + 1] = row
                if need_w:
                    buf.mul_(xi)
                    gw[i] += buf.sum(-1, keepdim=True)
            if need_y:
                torch.mul(g, xi, out=buf2)
                buf2.mul_(w[i])
                if i == 0 and first_is_identity:
                    gy.add_(buf2)
                else:
                    gy.index_add_(1, right[i], buf2)
        if need_x:
            gx2[start:stop] = gx.view(channels * dim, stop - start).t()
        if need_y:
            gy2[start:stop] = gy.view(channels * dim, stop - start).t()
    return gx2, gy2, gw


# -- the same kernels as torch.library custom ops: opaque single calls under torch.compile ------------
@torch.library.custom_op("gatorch::steerable_gp", mutates_args=())
def _kernel(x2: Tensor, y2: Tensor, w: Tensor, right: Tensor, first_is_identity: bool) -> Tensor:
    """Custom-op wrapper of :func:`_forward_impl`."""
    return _forward_impl(x2, y2, w, right, first_is_identity)


@_kernel.register_fake
def _(x2: Tensor, y2: Tensor, w: Tensor, right: Tensor, first_is_identity: bool) -> Tensor:
    return torch.empty_like(x2)


@torch.library.custom_op("gatorch::steerable_gp_backward", mutates_args=())
def _kernel_backward(
    g2: Tensor,
    x2: Tensor,
    y2: Tensor,
    w: Tensor,
    right: Tensor,
    first_is_identity: bool,
    need_x: bool,
    need_y: bool,
    need_w: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """Custom-op wrapper of :func:`_backward_impl`."""
    return _backward_impl(g2, x2, y2, w, right, first_is_identity, need_x, need_y, need_w)


@_kernel_backward.register_fake
def _(
    g2: Tensor,
    x2: Tensor,
    y2: Tensor,
    w: Tensor,
    right: Tensor,
    first_is_identity: bool,
    need_x: bool,
    need_y: bool,
    need_w: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    empty = x2.new_empty(0)
    return (
        torch.empty_like(x2) if need_x else empty,
        torch.empty_like(y2) if need_y else empty,
        torch.empty_like(w) if need_w else empty,
    )


def _reference_grads(
    g2: Tensor, x2: Tensor, y2: Tensor, w: Tensor, right: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """The gradients of :func:`_kernel` as differentiable torch ops (for double backward).

    Forms ``(N, C, dim, dim)`` intermediates: only for ``create_graph=True``.
    """
    dim, channels = w.shape[0], w.shape[1]
    x, y, g = (t.reshape(t.shape[0], channels, dim) for t in (x2, y2, g2))
    wk = w.squeeze(-1).permute(1, 0, 2)  # (C, i, k)
    yg = y[..., right]  # (N, C, i, k)
    gk = g.unsqueeze(-2)  # (N, C, 1, k)
    gx = (wk * yg * gk).sum(-1)
    gw = (x.unsqueeze(-1) * yg * gk).sum(0).permute(1, 0, 2).unsqueeze(-1)
    contrib = (wk * x.unsqueeze(-1) * gk).flatten(-2)  # added at y[..., right[i, k]]
    gy = torch.zeros_like(y).index_add(-1, right.reshape(-1), contrib)
    return gx.reshape(x2.shape), gy.reshape(y2.shape), gw


def _grads(
    ctx, g2: Tensor, backward: Callable[..., tuple[Tensor, Tensor, Tensor]]
) -> tuple[Tensor | None, ...]:
    x2, y2, w, right = ctx.saved_tensors
    need_x, need_y, need_w = ctx.needs_input_grad[:3]
    if torch.is_grad_enabled() and not torch.compiler.is_compiling():  # create_graph=True
        gx, gy, gw = _reference_grads(g2, x2, y2, w, right)
    else:
        gx, gy, gw = backward(g2, x2, y2, w, right, ctx.first_is_identity, need_x, need_y, need_w)
    return (gx if need_x else None, gy if need_y else None, gw if need_w else None, None, None)


def _setup_context(ctx, inputs, output) -> None:
    x2, y2, w, right, first_is_identity = inputs
    ctx.save_for_backward(x2, y2, w, right)
    ctx.first_is_identity = first_is_identity


_kernel.register_autograd(lambda ctx, g2: _grads(ctx, g2, _kernel_backward), setup_context=_setup_context)


class _SteerableFn(torch.autograd.Function):
    """The eager entry point: the kernels called directly (no custom-op dispatch)."""

    @staticmethod
    def forward(ctx, x2: Tensor, y2: Tensor, w: Tensor, right: Tensor, first_is_identity: bool) -> Tensor:
        _setup_context(ctx, (x2, y2, w, right, first_is_identity), None)
        return _forward_impl(x2, y2, w, right, first_is_identity)

    @staticmethod
    def backward(ctx, g2: Tensor):
        return _grads(ctx, g2, _backward_impl)


# -- the compiled bitmap form (see the module docstring) ---------------------------------------------
def _permutation(order: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """``P: (dim, dim)`` with ``P[r, order[r]] = 1``: ``P @ v`` is ``v[order]`` (a graph constant)."""
    dim = len(order)
    return torch.tensor(
        [[1.0 if j == order[r] else 0.0 for j in range(dim)] for r in range(dim)], dtype=dtype, device=device
    )


class _ToBitmap(torch.autograd.Function):
    """``(N, C * dim)`` items-first, shortlex -> ``(C, dim, N)`` blade-first, bitmap order.

    A batched GEMM with the permutation matrix: the compiler keeps it as a library call, so
    its output is a contiguous buffer that the product loops read with unit stride (a
    traced transpose would be folded into those loops as strided loads). The backward
    returns the gradient contiguous in the input's layout (the transposing copy is a
    compiled kernel, not a copy made later by autograd).
    """

    @staticmethod
    def forward(ctx, x2: Tensor, perm: Tensor, channels: int) -> Tensor:
        ctx.save_for_backward(perm)
        dim = perm.shape[0]
        return torch.matmul(perm, x2.reshape(x2.shape[0], channels, dim).permute(1, 2, 0))

    @staticmethod
    def backward(ctx, g: Tensor):
        (perm,) = ctx.saved_tensors
        gx = torch.matmul(perm.t(), g)  # (C, dim, N), shortlex
        return gx.permute(2, 0, 1).contiguous().view(g.shape[2], g.shape[0] * g.shape[1]), None, None


class _FromBitmap(torch.autograd.Function):
    """The inverse of :class:`_ToBitmap`: ``(C, dim, N)`` bitmap order -> ``(N, C * dim)`` shortlex."""

    @staticmethod
    def forward(ctx, t: Tensor, perm: Tensor) -> Tensor:
        ctx.save_for_backward(perm)
        ctx.channels = t.shape[0]
        return (
            torch.matmul(perm.t(), t).permute(2, 0, 1).contiguous().view(t.shape[2], t.shape[0] * t.shape[1])
        )

    @staticmethod
    def backward(ctx, g: Tensor):
        (perm,) = ctx.saved_tensors
        dim = perm.shape[0]
        return torch.matmul(perm, g.reshape(g.shape[0], ctx.channels, dim).permute(1, 2, 0)), None


def _xor_table(dim: int, device: torch.device) -> Tensor:
    """``(dim, dim)`` int64, ``[i, k] = i XOR k``: the right blade of term ``(i, k)`` (bitmap order)."""
    blades = torch.arange(dim, device=device)
    return torch.bitwise_xor(blades[:, None], blades[None, :])


def _slot_sum(w: Tensor, a: Tensor, b: Tensor, xor: Tensor) -> Tensor:
    """``out[c, k, n] = sum_i w[c, i, k] a[c, i, n] b[c, i XOR k, n]``.

    ``w: (C, dim, dim, 1)``, ``a, b: (C, dim, N)`` (bitmap order); one reduction over ``i``
    whose gather of ``b`` has an index that depends on ``(i, k)`` only, so the loop over the
    items stays a unit-stride vector loop.
    """
    return (w * a.unsqueeze(2) * b[:, xor]).sum(1)


class _BitmapProduct(torch.autograd.Function):
    """:func:`_slot_sum` of the weights and the operands, with the backward of the module docstring.

    Only the weights and the two operands are saved; the backward is three more reductions
    of the same shape (no ``(C, dim, dim, N)`` tensor is stored).
    """

    @staticmethod
    def forward(ctx, w: Tensor, x: Tensor, y: Tensor) -> Tensor:
        ctx.save_for_backward(w, x, y)
        return _slot_sum(w, x, y, _xor_table(x.shape[1], x.device))

    @staticmethod
    def backward(ctx, g: Tensor):
        w, x, y = ctx.saved_tensors
        xor = _xor_table(x.shape[1], x.device)
        need_w, need_x, need_y = ctx.needs_input_grad[:3]
        gw = gx = gy = None
        if need_x or need_y:
            b = torch.gather(w, 2, xor[None, :, :, None].expand(w.shape))  # B[c, i, j] = W[c, i, i^j]
            if need_x:  # gx[c, i] = sum_m B[c, i, m] y[c, m] g[c, i^m]
                gx = _slot_sum(b.transpose(1, 2), y, g, xor)
            if need_y:  # gy[c, j] = sum_i B[c, i, j] x[c, i] g[c, i^j]
                gy = _slot_sum(b, x, g, xor)
        if need_w:  # G[c, i, m] = sum_n x_i y_m g_{i^m}; gW[c, i, k] = G[c, i, i^k]
            grams = (x.unsqueeze(2) * y.unsqueeze(1) * g[:, xor]).sum(-1, keepdim=True)
            gw = torch.gather(grams, 2, xor[None, :, :, None].expand(grams.shape))
        return gw, gx, gy


def _bitmap_gp(
    plan: SteerablePlan, x2: Tensor, y2: Tensor, weight: Tensor, path: Tensor, sign: Tensor
) -> Tensor:
    """The compiled form of :func:`steerable_gp`: ``x2, y2: (N, C * dim)`` -> ``(N, C * dim)``.

    ``weight: (C, num_paths)``, ``path, sign: (dim, dim)`` the plan's tables (shortlex), all
    in the computation dtype. Matrix products run in that dtype (autocast off: the inputs
    are already promoted).
    """
    dim, channels = plan.dim, weight.shape[0]
    device, dtype = x2.device, x2.dtype
    with torch.autocast(device.type, enabled=False):
        perm = _permutation(plan.by_bitmap, dtype, device)  # row b: the blade of bitmap b
        xb = _ToBitmap.apply(x2, perm, channels)  # (C, dim, N)
        yb = _ToBitmap.apply(y2, perm, channels)
        # per-slot weights W[c, i, k] (bitmap order) = weight @ M, M[p, (i, k)] = sign [path == p]
        order = torch.tensor(plan.by_bitmap, device=device)
        terms_path = path.index_select(0, order).index_select(1, order).reshape(1, dim * dim)
        terms_sign = sign.to(dtype).index_select(0, order).index_select(1, order).reshape(1, dim * dim)
        paths = torch.arange(len(plan.paths), device=device).view(-1, 1)
        w = torch.mm(weight, (terms_path == paths).to(dtype) * terms_sign)  # (C, dim * dim)
        out = _BitmapProduct.apply(w.view(channels, dim, dim, 1), xb, yb)
        return _FromBitmap.apply(out, perm)


# -- checks ------------------------------------------------------------------------------------------
def _check_operands(alg: Algebra, x: Tensor, y: Tensor, who: str) -> torch.Size:
    """Validate ``x, y: (..., C, dim)``; return their broadcast batch shape."""
    alg.check_dim(x, f"{who} x")
    alg.check_dim(y, f"{who} y")
    for what, t in (("x", x), ("y", y)):
        if t.ndim < 2:
            raise ValueError(
                f"{who}: expected {what} of shape (..., channels, {alg.dim}), got {tuple(t.shape)}"
            )
    if x.shape[-2] != y.shape[-2]:
        raise ValueError(
            f"{who}: x and y must have the same number of channels, got x {tuple(x.shape)} "
            f"and y {tuple(y.shape)}"
        )
    try:
        return torch.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"{who}: batch shapes {tuple(x.shape[:-2])} and {tuple(y.shape[:-2])} do not broadcast"
        ) from None


def _check_weight(alg: Algebra, weight: Tensor, channels: int, who: str, num_paths: int) -> None:
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{who}: weight must be a torch.Tensor, got {type(weight).__name__}")
    if weight.ndim != 2 or tuple(weight.shape) != (channels, num_paths):
        raise ValueError(
            f"{who}: expected weight of shape (channels, num_paths) = ({channels}, {num_paths}) "
            f"for {alg!r}, got {tuple(weight.shape)}"
        )
    if not weight.is_floating_point():
        raise TypeError(f"{who}: expected a floating-point weight, got dtype {weight.dtype}")


# -- public ops --------------------------------------------------------------------------------------
def steerable_gp(
    alg: Algebra,
    x: Tensor,
    y: Tensor,
    weight: Tensor,
    *,
    tables: SteerableTables | None = None,
    policy: KernelPolicy | None = None,
) -> Tensor:
    r"""CGENN's steerable (per-channel, per-path weighted) geometric product.

    .. math::
        \mathrm{out}_{\cdot c k} = \sum_{(i, j, k, s)} s\, W_{c,\pi(g_i, g_j, g_k)}\,
        x_{\cdot c i}\, y_{\cdot c j}

    over the non-zero terms ``(i, j, k, s)`` of the geometric-product table, with
    :math:`\pi` the index of the grade triple among :func:`steerable_paths`.

    Parameters
    ----------
    alg : Algebra
    x, y : Tensor, shape (..., channels, dim)
        Batch dimensions broadcast.
    weight : Tensor, shape (channels, num_paths)
        ``num_paths = len(steerable_paths(alg))``.
    tables : SteerableTables, optional
        The plan of ``alg`` and its tables as tensors on the device of ``x`` (a layer's
        buffers, see :func:`steerable_tables`); built from the plan when omitted.
    policy : KernelPolicy, optional
        The kernels to run (:mod:`gatorch.functional.policy`); ``None``: the ambient policy.

    Returns
    -------
    Tensor, shape (broadcast batch, channels, dim)
        In the promoted dtype of ``x``, ``y`` and ``weight``.

    Notes
    -----
    Sparse: ``dim**2`` multiply-adds per channel and item, never a ``(channels, dim, dim,
    dim)`` tensor (see the module docstring). Autograd-correct (double backward too, in eager
    mode) and traceable by ``torch.compile(fullgraph=True)``, with the compiled form chosen by
    the kernel policy.
    """
    batch = _check_operands(alg, x, y, "steerable_gp")
    channels, dim = x.shape[-2], alg.dim
    plan = steerable_plan(alg) if tables is None else tables.plan
    _check_weight(alg, weight, channels, "steerable_gp", len(plan.paths))
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), weight.dtype)
    device = x.device
    items = math.prod(batch)

    def batch_last(t: Tensor) -> Tensor:  # (..., C, dim) -> (items, C * dim)
        return t.to(dtype).expand(*batch, channels, dim).reshape(items, channels * dim)

    if tables is None:
        tables = steerable_tables(alg, device, dtype)
    compiled_form = resolve_kernel_policy(policy, "steerable_gp").compiled_form("fused")
    if torch.compiler.is_compiling() and compiled_form == "fused":
        out = _bitmap_gp(plan, batch_last(x), batch_last(y), weight.to(dtype), tables.path, tables.sign)
        return out.view(*batch, channels, dim)
    w = weight.to(dtype)[:, tables.path] * tables.sign.to(dtype)  # (C, i, k)
    w = w.permute(1, 0, 2).unsqueeze(-1).contiguous()  # (i, C, k, 1)
    args = (batch_last(x), batch_last(y), w, tables.right, plan.first_is_identity)
    out = _kernel(*args) if torch.compiler.is_compiling() else _SteerableFn.apply(*args)
    return out.view(*batch, channels, dim)


def _dense_constants(alg: Algebra, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """``(path mask (n+1, n+1, n+1), grade sizes (n+1,), Cayley tensor (dim, dim, dim))``, new tensors."""
    n1 = alg.n + 1
    mask = np.zeros((n1, n1, n1), dtype=bool)
    mask[tuple(np.asarray(steerable_paths(alg)).T)] = True
    sizes = torch.tensor([math.comb(alg.n, k) for k in range(n1)], device=device)
    cayley = torch.as_tensor(alg.cayley(), dtype=dtype, device=device)
    return torch.from_numpy(mask).to(device), sizes, cayley


def steerable_gp_dense(alg: Algebra, x: Tensor, y: Tensor, weight: Tensor) -> Tensor:
    """Reference for :func:`steerable_gp`, computed the way CGENN does.

    Every call scatters the path weights into a ``(channels, n+1, n+1, n+1)`` grade
    tensor, repeats it to ``(channels, dim, dim, dim)`` over the blades of each grade,
    multiplies by the dense Cayley tensor and contracts with one einsum
    ``'...ci,cijk,...cj->...ck'``. Same arguments and result as :func:`steerable_gp`;
    ``dim**3`` work per channel and item. Tests and benchmarks only.
    """
    _check_operands(alg, x, y, "steerable_gp_dense")
    channels = x.shape[-2]
    _check_weight(alg, weight, channels, "steerable_gp_dense", len(steerable_paths(alg)))
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), weight.dtype)
    mask, sizes, cayley = _dense_constants(alg, x.device, dtype)
    n1 = alg.n + 1
    full = weight.new_zeros(channels, n1, n1, n1, dtype=dtype)
    full[:, mask] = weight.to(dtype)
    full = full.repeat_interleave(sizes, dim=-3).repeat_interleave(sizes, dim=-2)
    full = full.repeat_interleave(sizes, dim=-1)
    return torch.einsum("...ci,cijk,...cj->...ck", x.to(dtype), full * cayley, y.to(dtype))


@torch.compiler.assume_constant_result
def blade_inner(alg: Algebra) -> tuple[float, ...]:
    """``<~e_A e_A>_0`` per blade: the product of the squares (metric) of its basis vectors.

    0 for blades with a degenerate factor, else +1 or -1. Pure Python (from the signature);
    a constant under ``torch.compile`` (evaluated, not traced).
    """
    metric = alg.metric
    return tuple(
        float(math.prod(metric[a] for a in range(alg.n) if b >> a & 1)) for b in steerable_plan(alg).bitmaps
    )


def mv_silu(alg: Algebra, x: Tensor, a: Tensor, b: Tensor, *, inner: Tensor | None = None) -> Tensor:
    r"""CGENN's multivector SiLU: each grade of each channel gated by a sigmoid of its invariant.

    .. math::
        y_{\cdot c}^{(k)} = \sigma\big(a_{ck}\, q_k(x_{\cdot c}) + b_{ck}\big)\, x_{\cdot c}^{(k)},
        \qquad q_0(x) = \langle x\rangle_0,\quad q_k(x) = |\langle x_k, x_k\rangle| \ (k \ge 1)

    with :math:`x^{(k)}` the grade-``k`` part and :math:`q_k` the invariants of
    :func:`gatorch.functional.nonlinear.grade_invariants` (blades with a degenerate factor
    dropped, absolute value for indefinite metrics). The gates are invariant, so the map
    is equivariant.

    Parameters
    ----------
    x : Tensor, shape (..., channels, dim)
    a, b : Tensor, shape (channels, n + 1)
        Scale and offset per channel and grade (CGENN initialises ``a = 1``, ``b = 0``).
    inner : Tensor, shape (dim,), optional
        :func:`blade_inner` as a tensor on the device of ``x`` (a layer's buffer); built
        when omitted.

    Returns
    -------
    Tensor, shape (..., channels, dim), in the dtype of ``x``
        The invariants and gates are computed in at least float32 (bf16 / fp16 inputs,
        e.g. under autocast, keep their dtype on output).
    """
    alg.check_dim(x, "mv_silu x")
    if x.ndim < 2:
        raise ValueError(f"mv_silu: expected x of shape (..., channels, {alg.dim}), got {tuple(x.shape)}")
    expected = (x.shape[-2], alg.n + 1)
    for name, p in (("a", a), ("b", b)):
        if not isinstance(p, torch.Tensor) or tuple(p.shape) != expected:
            got = tuple(p.shape) if isinstance(p, torch.Tensor) else type(p).__name__
            raise ValueError(f"mv_silu: expected {name} of shape (channels, n + 1) = {expected}, got {got}")
    wide = torch.promote_types(x.dtype, torch.float32)
    if inner is None:
        inner = torch.tensor(blade_inner(alg), dtype=wide, device=x.device)
    xw = x.to(wide)
    sq = xw * xw * inner.to(wide)
    slices = [alg.grade_slice(k) for k in range(alg.n + 1)]
    inv = [xw[..., slices[0]]] + [sq[..., s].sum(-1, keepdim=True).abs() for s in slices[1:]]
    gate = torch.sigmoid(a.to(wide) * torch.cat(inv, dim=-1) + b.to(wide)).to(x.dtype)  # (..., C, n + 1)
    return x * _per_blade(alg, gate)


def _per_blade(alg: Algebra, per_grade: Tensor) -> Tensor:
    """Expand ``(..., n + 1)`` per-grade values to ``(..., dim)`` per blade."""
    slices = [alg.grade_slice(k) for k in range(alg.n + 1)]
    return torch.cat(
        [
            per_grade[..., k : k + 1].expand(*per_grade.shape[:-1], s.stop - s.start)
            for k, s in enumerate(slices)
        ],
        dim=-1,
    )


def grade_normalize(
    alg: Algebra, x: Tensor, a: Tensor, *, eps: float = 1e-6, layout: Layout | None = None
) -> Tensor:
    r"""CGENN's learnt per-grade normalisation (the right operand of its steerable product).

    .. math::
        y_{\cdot c}^{(k)} = \frac{x_{\cdot c}^{(k)}}
            {\sigma(a_{ck})\,\big(\lVert x_{\cdot c}^{(k)}\rVert - 1\big) + 1 + \epsilon}

    with :math:`\lVert x^{(k)}\rVert = (q_k^2 + 10^{-16})^{1/4}`,
    :math:`q_k = |\langle x_k, x_k\rangle|` (:func:`gatorch.functional.nonlinear.smooth_norm`
    of :func:`~gatorch.functional.nonlinear.grade_invariants`): the gate
    :math:`\sigma(a)` interpolates between no normalisation (``a -> -inf``) and division
    by the grade's norm (``a -> +inf``); CGENN starts at ``a = 0``, half way. The
    denominator is at least :math:`\min(1, \lVert x^{(k)}\rVert) + \epsilon > 0`, so the
    output is finite for null and zero inputs; it is an invariant, so the map is
    equivariant.

    Parameters
    ----------
    x : Tensor, shape (..., channels, dim) or (..., channels, layout.dim)
    a : Tensor, shape (channels, n + 1)
        Gate logits per channel and grade (with a layout, those of the grades it does not
        store are unused).
    eps : float
    layout : Layout, optional
        The grades ``x`` stores (:class:`~gatorch.algebras.Layout`); ``None``: all blades.
        The result equals the full map between ``layout.embed`` and ``layout.project``.

    Returns
    -------
    Tensor, shape of ``x``, in the dtype of ``x`` (norms in at least float32).
    """
    check_layout_dim(alg, layout, x, "grade_normalize x")
    dim = alg.dim if layout is None else layout.dim
    expected = (x.shape[-2] if x.ndim >= 2 else None, alg.n + 1)
    if x.ndim < 2 or not isinstance(a, torch.Tensor) or tuple(a.shape) != expected:
        got = tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__
        raise ValueError(
            f"grade_normalize: expected x of shape (..., channels, {dim}) and a of shape "
            f"(channels, n + 1) = {expected}, got x {tuple(x.shape)} and a {got}"
        )
    wide = torch.promote_types(x.dtype, torch.float32)
    xw = x.to(wide)
    norms = smooth_norm(grade_invariants(alg, xw, layout=layout))  # (..., C, n + 1)
    denom = torch.sigmoid(a.to(wide)) * (norms - 1.0) + 1.0 + eps
    lay = None if layout is None or layout.is_full else layout
    return (xw / denom.index_select(-1, blade_grade_index(alg, lay, x.device))).to(x.dtype)
