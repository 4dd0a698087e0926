"""Sparse bilinear kernels: ``out[k] = sum_t s_t * x[i_t] * y[j_t]`` over non-zero terms only.

Every bilinear product of the algebra (geometric, outer, contraction, regressive)
is one :class:`~gatorch.algebras.tables.BilinearTable` run through :func:`bilinear`.

How it runs
-----------
* **Eager.** Operands are brought to a blade-first layout ``(dim, N)`` (each
  component a contiguous row; cache-blocked transposes), then each non-zero term
  is one fused multiply-add over a whole row (``addcmul_``) into the output row.
  No ``(N, dim, dim)`` intermediate is ever formed; the work is ``nnz`` row
  operations. Tables with more than :data:`GATHER_THRESHOLD` terms (``n >= 7``)
  and batches under :data:`ROWS_MIN_ITEMS` items use a chunked gather-multiply-reduce
  instead (a few large ops), to bound the Python overhead.
  The backward pass is the same kernel run on the transposed tables
  (``grad_x = B_x(g, y)``, ``grad_y = B_y(x, g)``), so it is as sparse as the
  forward and itself differentiable.
* **Layout.** With ``blade_dim=-1`` the operands are read without a copy when they
  already have blade-first storage (a ``(..., dim)`` view of ``(dim, ...)`` memory, as
  :func:`~gatorch.functional.linear.equi_linear` and this kernel return), and the
  result is such a view too: chains of layers and products never transpose.
* **Under ``torch.compile``.** The same sum of products is written out as one
  expression per output component (constants are Python floats, so no graph
  breaks) and inductor fuses it into a single loop that reads each operand once.
  Blade-first inputs (``blade_dim=0``) give inductor contiguous rows to vectorise.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gatorch.algebras.layout import layout_table_from_key
from gatorch.algebras.tables import BilinearTable
from gatorch.functional.policy import KernelPolicy, resolve_kernel_policy

__all__ = ["GATHER_THRESHOLD", "bilinear", "bilinear_reference"]

#: Tables with more terms than this use the gather kernel in eager mode.
GATHER_THRESHOLD = 4096
#: Under ``torch.compile``, layout tables (:func:`~gatorch.algebras.layout.layout_product_table`)
#: with at most this many terms become one fused per-term expression (faster than the eager
#: kernel for PGA3 / STA at grades (0, 1, 2): 75-91 terms); larger ones run as the opaque
#: kernel (an unrolled or padded expression of 613 terms at Cl(8, 0) was slower than eager).
FUSED_LAYOUT_MAX_TERMS = 256
#: Batches with fewer items than this use the gather kernel in eager mode.
ROWS_MIN_ITEMS = 8192
#: Rows per block in the cache-blocked transposes.
_TRANSPOSE_BLOCK = 16384
#: Target size (elements) of one gather-kernel intermediate block.
_GATHER_BLOCK_ELEMS = 1 << 21


# -- table-derived constants -----------------------------------------------------------------------
def _const(table: BilinearTable, what: str, device: torch.device, dtype: torch.dtype) -> Tensor:
    """The padded index / sign tensors of a table on a device (in the table's store)."""
    return table.store.tensor(what, device, dtype, lambda: getattr(table, what))


def _table_for_key(key: str) -> BilinearTable:
    """The algebra table named by ``key`` (see :attr:`BilinearTable.key`); a pure function of it."""
    from gatorch.algebras.algebra import AlgebraData as Algebra

    parts = key.split(";")
    alg = Algebra.from_signature([int(m) for m in parts[0].split(",")], int(parts[1]))
    if "@" in parts[2]:  # a layout table (gatorch.algebras.layout.layout_table_key), built once per algebra
        table = alg.plan(("layout_table", parts[2]), lambda: layout_table_from_key(alg, parts[2]))
    else:
        table = alg.bilinear_table(parts[2])
    return table.transposed(parts[3]) if len(parts) > 3 else table


# -- layout helpers ------------------------------------------------------------------------------
def transpose_copy(src: Tensor, blocked: bool) -> Tensor:
    """Contiguous transpose of a 2-D tensor, copied in cache-sized blocks when ``blocked``.

    ``blocked`` is true for the CPU kernel family; the CUDA family makes one copy (no loop).
    """
    rows, cols = src.shape
    out = torch.empty((cols, rows), dtype=src.dtype, device=src.device)
    if not blocked or rows <= _TRANSPOSE_BLOCK:
        out.copy_(src.t())
        return out
    for start in range(0, rows, _TRANSPOSE_BLOCK):
        stop = min(start + _TRANSPOSE_BLOCK, rows)
        out[:, start:stop].copy_(src[start:stop].t())
    return out


class _Transpose(torch.autograd.Function):
    """``(N, d) -> (d, N)`` contiguous, with the transposed copy as its backward."""

    @staticmethod
    def forward(ctx, src: Tensor, blocked: bool) -> Tensor:
        ctx.blocked = blocked
        return transpose_copy(src, blocked)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return _Transpose.apply(grad.contiguous(), ctx.blocked), None


def _rows(x: Tensor, batch: torch.Size, n_items: int, blocked: bool) -> Tensor:
    """``(..., d)`` operand as contiguous blade-first rows ``(d, n_items)``.

    Free (a view) when ``x`` already has blade-first storage, e.g. the output of another
    product or of :func:`~gatorch.functional.linear.equi_linear`; one blocked transpose
    otherwise.
    """
    d = x.shape[-1]
    xe = x.expand(*batch, d)
    xb = xe.movedim(-1, 0)
    if xb.is_contiguous():
        return xb.reshape(d, n_items)
    return _Transpose.apply(xe.reshape(n_items, d), blocked)


# -- eager kernels (blade-first, 2-D) ---------------------------------------------------------------
def _run_rows(xt: Tensor, yt: Tensor, table: BilinearTable) -> Tensor:
    """``(dx, N), (dy, N) -> (dout, N)``: one fused multiply-add per non-zero term."""
    out = torch.empty((table.dims[2], xt.shape[1]), dtype=xt.dtype, device=xt.device)
    xs, ys, outs = xt.unbind(0), yt.unbind(0), out.unbind(0)  # all row views in three calls
    for acc, terms in zip(outs, table.terms_by_output, strict=True):
        if not terms:
            acc.zero_()
            continue
        i, j, s = terms[0]
        torch.mul(xs[i], ys[j], out=acc)
        if s != 1.0:
            acc.mul_(s)
        for i, j, s in terms[1:]:
            acc.addcmul_(xs[i], ys[j], value=s)
    return out


def _run_gather(xt: Tensor, yt: Tensor, table: BilinearTable, chunked: bool = True) -> Tensor:
    """Gather-multiply-reduce (same contract as :func:`_run_rows`).

    ``chunked``: in blocks of items that keep the ``(dout * pad, block)`` intermediate in
    cache (CPU family); otherwise one block of five launches (CUDA family).
    """
    dout, m = table.dims[2], table.pad
    idx_i = _const(table, "pad_i", xt.device, torch.int64)
    idx_j = _const(table, "pad_j", xt.device, torch.int64)
    sign = _const(table, "pad_s", xt.device, xt.dtype)[:, None]
    n_items = xt.shape[1]
    out = torch.empty((dout, n_items), dtype=xt.dtype, device=xt.device)
    block = max(1, _GATHER_BLOCK_ELEMS // (dout * m)) if chunked else max(n_items, 1)
    for start in range(0, n_items, block):
        stop = min(start + block, n_items)
        prod = xt[:, start:stop].index_select(0, idx_i)
        prod.mul_(yt[:, start:stop].index_select(0, idx_j)).mul_(sign)
        torch.sum(prod.view(dout, m, stop - start), dim=1, out=out[:, start:stop])
    return out


def _run(xt: Tensor, yt: Tensor, table: BilinearTable, family: str) -> Tensor:
    if family != "cpu":  # few launches: no loop over table terms or item blocks
        return _run_gather(xt, yt, table, chunked=False)
    # Below ~8192 items the rows kernel is bound by its nnz Python-level calls and the
    # few large ops of the gather kernel win (measured on VGA3, STA and CGA3 alike).
    # A table whose outputs have very different term counts (a product restricted to grade
    # layouts: the scalar output of grades (0, 1, 2) at n = 16 has 137 terms, the average 33)
    # would pad every output to the longest in the gather kernel: rows kernel for those.
    padded = table.dims[2] * table.pad > 2 * table.nnz
    if (table.nnz > GATHER_THRESHOLD and not padded) or xt.shape[1] < ROWS_MIN_ITEMS:
        return _run_gather(xt, yt, table)
    return _run_rows(xt, yt, table)


class _BilinearFn(torch.autograd.Function):
    """Blade-first sparse bilinear map with a sparse (and differentiable) backward."""

    @staticmethod
    def forward(ctx, xt: Tensor, yt: Tensor, table: BilinearTable, family: str) -> Tensor:
        ctx.save_for_backward(xt, yt)
        ctx.table, ctx.family = table, family
        return _run(xt, yt, table, family)

    @staticmethod
    def backward(ctx, grad: Tensor):
        xt, yt = ctx.saved_tensors
        table = ctx.table
        grad = grad.contiguous()
        need_x, need_y = ctx.needs_input_grad[:2]
        gx = _BilinearFn.apply(grad, yt, table.transposed("x"), ctx.family) if need_x else None
        gy = _BilinearFn.apply(xt, grad, table.transposed("y"), ctx.family) if need_y else None
        return gx, gy, None, None


# -- opaque kernel for compiled graphs (custom op) ----------------------------------------------------
@torch.library.custom_op("gatorch::bilinear", mutates_args=())
def _bilinear_op(xt: Tensor, yt: Tensor, key: str, family: str) -> Tensor:
    """Blade-first ``(dx, N), (dy, N) -> (dout, N)`` through the eager kernel of ``family``.

    The table is named by its key, so a compiled graph holds a string, not the table;
    the compiler treats the call as one opaque kernel (no per-term graph nodes).
    """
    return _run(xt.contiguous(), yt.contiguous(), _table_for_key(key), family)


@_bilinear_op.register_fake
def _(xt: Tensor, yt: Tensor, key: str, family: str) -> Tensor:
    return xt.new_empty((_table_for_key(key).dims[2], xt.shape[1]))


def _bilinear_op_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    xt, yt, key, family = inputs
    ctx.save_for_backward(xt, yt)
    ctx.key, ctx.family = key, family


def _bilinear_op_backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
    xt, yt = ctx.saved_tensors
    gx = _bilinear_op(grad, yt, f"{ctx.key};x", ctx.family) if ctx.needs_input_grad[0] else None
    gy = _bilinear_op(xt, grad, f"{ctx.key};y", ctx.family) if ctx.needs_input_grad[1] else None
    return gx, gy, None, None


_bilinear_op.register_autograd(_bilinear_op_backward, setup_context=_bilinear_op_setup)


# -- traced kernel (torch.compile) --------------------------------------------------------------------
def _traced(x: Tensor, y: Tensor, table: BilinearTable, blade_dim: int) -> Tensor:
    """Sum-of-products expression for inductor to fuse; components along ``blade_dim``."""
    if table.nnz > GATHER_THRESHOLD:
        xm, ym = x.movedim(blade_dim, -1), y.movedim(blade_dim, -1)
        idx_i = table.pad_i.to(x.device)
        idx_j = table.pad_j.to(x.device)
        sgn = table.pad_s.to(device=x.device, dtype=x.dtype)
        prod = xm[..., idx_i] * ym[..., idx_j] * sgn
        out = prod.unflatten(-1, (table.dims[2], table.pad)).sum(-1)
        return out.movedim(-1, blade_dim)
    xs, ys = x.unbind(blade_dim), y.unbind(blade_dim)
    zero = None
    comps = []
    for terms in table.terms_by_output:
        acc = None
        for i, j, s in terms:
            term = xs[i] * ys[j]
            if s != 1.0:
                term = -term if s == -1.0 else term * s
            acc = term if acc is None else acc + term
        if acc is None:
            if zero is None:
                zero = torch.zeros_like(xs[0] * ys[0])
            acc = zero
        comps.append(acc)
    return torch.stack(comps, dim=blade_dim)


# -- public entry point -------------------------------------------------------------------------------
def bilinear(
    x: Tensor, y: Tensor, table: BilinearTable, *, blade_dim: int = -1, policy: KernelPolicy | None = None
) -> Tensor:
    """Apply a sparse bilinear table to two tensors.

    Parameters
    ----------
    x : Tensor, shape (..., dx) (or (dx, ...) with ``blade_dim=0``)
    y : Tensor, shape (..., dy) (or (dy, ...)); batch dimensions broadcast with ``x``.
    table : BilinearTable
    blade_dim : {-1, 0}
        Axis of the blade components: last (the library's layout) or first
        (blade-first, the kernel's native layout: no transposes are needed).
    policy : KernelPolicy, optional
        The kernels to run (:mod:`gatorch.functional.policy`); ``None``: the ambient policy.

    Returns
    -------
    Tensor, shape (..., dout) (or (dout, ...))
        ``out[k] = sum_{(i, j, k, s) in table} s * x[i] * y[j]``.
    """
    if blade_dim not in (0, -1):
        raise ValueError(f"blade_dim must be 0 or -1, got {blade_dim}")
    dx, dy, dout = table.dims
    if x.shape[blade_dim] != dx or y.shape[blade_dim] != dy:
        raise ValueError(
            f"{table.name}: expected blade axis sizes {dx} and {dy}, got shapes "
            f"{tuple(x.shape)} and {tuple(y.shape)} (blade_dim={blade_dim})"
        )
    if x.dtype != y.dtype:
        dtype = torch.promote_types(x.dtype, y.dtype)
        x, y = x.to(dtype), y.to(dtype)
    bx = x.shape[:-1] if blade_dim == -1 else x.shape[1:]
    by = y.shape[:-1] if blade_dim == -1 else y.shape[1:]
    try:
        batch = torch.broadcast_shapes(bx, by)
    except RuntimeError:
        raise ValueError(
            f"{table.name}: batch shapes {tuple(bx)} and {tuple(by)} do not broadcast "
            f"(operand shapes {tuple(x.shape)} and {tuple(y.shape)})"
        ) from None

    if blade_dim == 0:  # align batch axes on the right, as broadcasting does for blade_dim=-1
        x = x.reshape(dx, *([1] * (len(batch) - len(bx))), *bx)
        y = y.reshape(dy, *([1] * (len(batch) - len(by))), *by)

    policy = resolve_kernel_policy(policy, table.name)
    compiling = torch.compiler.is_compiling()
    fused = "@" in table.key and table.nnz <= FUSED_LAYOUT_MAX_TERMS  # a small layout table
    if compiling and (policy.compiled_form("fused" if fused else "opaque") == "fused" or not table.key):
        if blade_dim == -1:
            x, y = x.expand(*batch, dx), y.expand(*batch, dy)
        else:
            x, y = x.expand(dx, *batch), y.expand(dy, *batch)
        return _traced(x, y, table, blade_dim)

    family = policy.family(x.device)
    if compiling:  # opaque: the eager kernel as a custom op, on blade-first rows
        if blade_dim == -1:
            xt, yt = x.expand(*batch, dx).reshape(-1, dx).t(), y.expand(*batch, dy).reshape(-1, dy).t()
        else:
            xt, yt = x.expand(dx, *batch).reshape(dx, -1), y.expand(dy, *batch).reshape(dy, -1)
        out = _bilinear_op(xt, yt, table.key, family).view(dout, *batch)
        return out.movedim(0, -1) if blade_dim == -1 else out

    n_items = 1
    for size in batch:
        n_items *= size
    if blade_dim == -1:
        blocked = family == "cpu"
        out = _BilinearFn.apply(
            _rows(x, batch, n_items, blocked), _rows(y, batch, n_items, blocked), table, family
        )
        # the result keeps the kernel's blade-first storage: a (..., dout) view, no transpose
        return out.view(dout, *batch).movedim(0, -1)
    xt = x.expand(dx, *batch).reshape(dx, n_items)
    yt = y.expand(dy, *batch).reshape(dy, n_items)
    return _BilinearFn.apply(xt.contiguous(), yt.contiguous(), table, family).view(dout, *batch)


def bilinear_reference(x: Tensor, y: Tensor, cayley: Tensor) -> Tensor:
    """Dense reference ``einsum('...i,...j,ijk->...k')`` through a full Cayley tensor."""
    return torch.einsum("...i,...j,ijk->...k", x, y, cayley)
