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

In eager mode the kernels run inside a ``torch.autograd.Function``. Under
``torch.compile`` they are ``torch.library`` custom ops (``gatorch::steerable_gp`` and
``gatorch::steerable_gp_backward``) with registered fake (meta) functions and autograd,
so ``fullgraph=True`` traces them as single opaque calls: no graph break, and the
compilation time does not grow with the table. Double backward (``create_graph=True``)
goes through a differentiable gather formula (``(items, channels, dim, dim)``
intermediates) instead of the backward kernel.

:func:`steerable_gp_dense` is CGENN's own formulation (a weighted ``(channels, dim, dim,
dim)`` Cayley tensor built every call and contracted with one einsum): the reference
for the tests and the benchmark.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gatorch.functional.nonlinear import grade_invariants

if TYPE_CHECKING:
    from gatorch.algebras.algebra import Algebra

__all__ = [
    "SteerablePlan",
    "grade_index",
    "mv_silu",
    "steerable_gp",
    "steerable_gp_dense",
    "steerable_init_std",
    "steerable_paths",
    "steerable_plan",
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
    """

    paths: tuple[tuple[int, int, int], ...]
    right: tuple[tuple[int, ...], ...]
    sign: tuple[tuple[float, ...], ...]
    path: tuple[tuple[int, ...], ...]


_PLANS: dict[Algebra, SteerablePlan] = {}


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
    return SteerablePlan(
        paths,
        tuple(tuple(r) for r in right),
        tuple(tuple(r) for r in sign),
        tuple(tuple(r) for r in path),
    )


def steerable_plan(alg: Algebra) -> SteerablePlan:
    """The cached :class:`SteerablePlan` of ``alg`` (built from its geometric-product table)."""
    plan = _PLANS.get(alg)
    if plan is None:
        plan = _build_plan(alg)
        _PLANS[alg] = plan
    return plan


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


# -- device constants ------------------------------------------------------------------------------
_DEVICE_CONSTANTS: dict[tuple[Algebra, str, torch.device, torch.dtype | None], Tensor] = {}
_TABLE_DTYPES = {"right": torch.int64, "path": torch.int64, "grade_index": torch.int64}


def _const(alg: Algebra, name: str, device: torch.device, dtype: torch.dtype | None = None) -> Tensor:
    """Plan tables as tensors on ``device``, cached in eager mode (built inline when traced)."""
    dtype = _TABLE_DTYPES.get(name, dtype)
    key = (alg, name, device, dtype)
    t = None if torch.compiler.is_compiling() else _DEVICE_CONSTANTS.get(key)
    if t is None:
        data = alg.grades if name == "grade_index" else getattr(steerable_plan(alg), name)
        t = torch.tensor(data, dtype=dtype, device=device)
        if not torch.compiler.is_compiling():
            _DEVICE_CONSTANTS[key] = t
    return t


def grade_index(alg: Algebra, device: torch.device | str | None = None) -> Tensor:
    """Grade of each blade as an int64 tensor of shape ``(dim,)`` on ``device`` (cached).

    ``v[..., grade_index(alg)]`` broadcasts per-grade values ``v: (..., n + 1)`` to the blades.
    """
    return _const(alg, "grade_index", torch.device(device) if device is not None else torch.device("cpu"))


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


def _check_weight(alg: Algebra, weight: Tensor, channels: int, who: str) -> None:
    num_paths = len(steerable_paths(alg))
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
def steerable_gp(alg: Algebra, x: Tensor, y: Tensor, weight: Tensor) -> Tensor:
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

    Returns
    -------
    Tensor, shape (broadcast batch, channels, dim)
        In the promoted dtype of ``x``, ``y`` and ``weight``.

    Notes
    -----
    Sparse: ``dim**2`` multiply-adds per channel and item, never a ``(channels, dim, dim,
    dim)`` tensor (see the module docstring). Autograd-correct (double backward too) and
    traceable by ``torch.compile(fullgraph=True)``.
    """
    batch = _check_operands(alg, x, y, "steerable_gp")
    channels, dim = x.shape[-2], alg.dim
    _check_weight(alg, weight, channels, "steerable_gp")
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), weight.dtype)
    device = x.device
    items = math.prod(batch)

    def batch_last(t: Tensor) -> Tensor:  # (..., C, dim) -> (items, C * dim)
        return t.to(dtype).expand(*batch, channels, dim).reshape(items, channels * dim)

    sign = _const(alg, "sign", device, dtype)
    w = weight.to(dtype)[:, _const(alg, "path", device)] * sign  # (C, i, k)
    w = w.permute(1, 0, 2).unsqueeze(-1).contiguous()  # (i, C, k, 1)
    first_is_identity = steerable_plan(alg).right[0] == tuple(range(dim))
    args = (batch_last(x), batch_last(y), w, _const(alg, "right", device), first_is_identity)
    out = _kernel(*args) if torch.compiler.is_compiling() else _SteerableFn.apply(*args)
    return out.view(*batch, channels, dim)


_DENSE_CACHE: dict[tuple[Algebra, torch.device, torch.dtype], tuple[Tensor, Tensor, Tensor]] = {}


def _dense_constants(alg: Algebra, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    key = (alg, device, dtype)
    cached = _DENSE_CACHE.get(key)
    if cached is None:
        n1 = alg.n + 1
        mask = torch.zeros(n1, n1, n1, dtype=torch.bool)
        for a, b, c in steerable_paths(alg):
            mask[a, b, c] = True
        sizes = torch.tensor([math.comb(alg.n, k) for k in range(n1)])
        cayley = torch.as_tensor(alg.cayley(), dtype=dtype)
        cached = (mask.to(device), sizes.to(device), cayley.to(device))
        _DENSE_CACHE[key] = cached
    return cached


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
    _check_weight(alg, weight, channels, "steerable_gp_dense")
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), weight.dtype)
    mask, sizes, cayley = _dense_constants(alg, x.device, dtype)
    n1 = alg.n + 1
    full = weight.new_zeros(channels, n1, n1, n1, dtype=dtype)
    full[:, mask] = weight.to(dtype)
    full = full.repeat_interleave(sizes, dim=-3).repeat_interleave(sizes, dim=-2)
    full = full.repeat_interleave(sizes, dim=-1)
    return torch.einsum("...ci,cijk,...cj->...ck", x.to(dtype), full * cayley, y.to(dtype))


def mv_silu(alg: Algebra, x: Tensor, a: Tensor, b: Tensor) -> Tensor:
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

    Returns
    -------
    Tensor, shape (..., channels, dim)
    """
    alg.check_dim(x, "mv_silu x")
    if x.ndim < 2:
        raise ValueError(f"mv_silu: expected x of shape (..., channels, {alg.dim}), got {tuple(x.shape)}")
    expected = (x.shape[-2], alg.n + 1)
    for name, p in (("a", a), ("b", b)):
        if not isinstance(p, torch.Tensor) or tuple(p.shape) != expected:
            got = tuple(p.shape) if isinstance(p, torch.Tensor) else type(p).__name__
            raise ValueError(f"mv_silu: expected {name} of shape (channels, n + 1) = {expected}, got {got}")
    inv = grade_invariants(alg, x)  # (..., C, n + 1)
    inv = torch.cat([x[..., alg.grade_slice(0)], inv[..., 1:]], dim=-1)
    gate = torch.sigmoid(a * inv + b)
    return x * gate[..., grade_index(alg, x.device)]
