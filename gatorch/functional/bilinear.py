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

from functools import cache

import torch
from torch import Tensor

from gatorch.algebras.tables import BilinearTable

__all__ = ["GATHER_THRESHOLD", "bilinear", "bilinear_reference"]

#: Tables with more terms than this use the gather kernel in eager mode.
GATHER_THRESHOLD = 4096
#: Batches with fewer items than this use the gather kernel in eager mode.
ROWS_MIN_ITEMS = 8192
#: Rows per block in the cache-blocked transposes.
_TRANSPOSE_BLOCK = 16384
#: Target size (elements) of one gather-kernel intermediate block.
_GATHER_BLOCK_ELEMS = 1 << 21


# -- table-derived constants -----------------------------------------------------------------------
@cache
def _grad_tables(table: BilinearTable) -> tuple[BilinearTable, BilinearTable]:
    """Backward tables of ``table`` (eager autograd only; never traced)."""
    return table.transposed("x"), table.transposed("y")


_DEVICE_CONSTANTS: dict[tuple[int, str, torch.device, torch.dtype], Tensor] = {}


def _const(table: BilinearTable, what: str, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Eager cache of the padded index / sign tensors on a device."""
    key = (id(table), what, device, dtype)
    t = _DEVICE_CONSTANTS.get(key)
    if t is None:
        t = getattr(table, what).to(device=device, dtype=dtype)
        _DEVICE_CONSTANTS[key] = t
    return t


# -- layout helpers ------------------------------------------------------------------------------
def _transpose_copy(src: Tensor) -> Tensor:
    """Contiguous transpose of a 2-D tensor, copied in cache-sized blocks."""
    rows, cols = src.shape
    out = torch.empty((cols, rows), dtype=src.dtype, device=src.device)
    if src.device.type != "cpu" or rows <= _TRANSPOSE_BLOCK:
        out.copy_(src.t())
        return out
    for start in range(0, rows, _TRANSPOSE_BLOCK):
        stop = min(start + _TRANSPOSE_BLOCK, rows)
        out[:, start:stop].copy_(src[start:stop].t())
    return out


class _Transpose(torch.autograd.Function):
    """``(N, d) -> (d, N)`` contiguous, with the transposed copy as its backward."""

    @staticmethod
    def forward(ctx, src: Tensor) -> Tensor:
        return _transpose_copy(src)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return _Transpose.apply(grad.contiguous())


def _rows(x: Tensor, batch: torch.Size, n_items: int) -> Tensor:
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
    return _Transpose.apply(xe.reshape(n_items, d))


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


def _run_gather(xt: Tensor, yt: Tensor, table: BilinearTable) -> Tensor:
    """Chunked gather-multiply-reduce for large tables (same contract as :func:`_run_rows`)."""
    dout, m = table.dims[2], table.pad
    idx_i = _const(table, "pad_i", xt.device, torch.int64)
    idx_j = _const(table, "pad_j", xt.device, torch.int64)
    sign = _const(table, "pad_s", xt.device, xt.dtype)[:, None]
    n_items = xt.shape[1]
    out = torch.empty((dout, n_items), dtype=xt.dtype, device=xt.device)
    block = max(1, _GATHER_BLOCK_ELEMS // (dout * m))
    for start in range(0, n_items, block):
        stop = min(start + block, n_items)
        prod = xt[:, start:stop].index_select(0, idx_i)
        prod.mul_(yt[:, start:stop].index_select(0, idx_j)).mul_(sign)
        torch.sum(prod.view(dout, m, stop - start), dim=1, out=out[:, start:stop])
    return out


def _run(xt: Tensor, yt: Tensor, table: BilinearTable) -> Tensor:
    # Below ~8192 items the rows kernel is bound by its nnz Python-level calls and the
    # few large ops of the gather kernel win (measured on VGA3, STA and CGA3 alike).
    if table.nnz > GATHER_THRESHOLD or xt.shape[1] < ROWS_MIN_ITEMS:
        return _run_gather(xt, yt, table)
    return _run_rows(xt, yt, table)


class _BilinearFn(torch.autograd.Function):
    """Blade-first sparse bilinear map with a sparse (and differentiable) backward."""

    @staticmethod
    def forward(ctx, xt: Tensor, yt: Tensor, table: BilinearTable) -> Tensor:
        ctx.save_for_backward(xt, yt)
        ctx.table = table
        return _run(xt, yt, table)

    @staticmethod
    def backward(ctx, grad: Tensor):
        xt, yt = ctx.saved_tensors
        tx, ty = _grad_tables(ctx.table)
        grad = grad.contiguous()
        gx = _BilinearFn.apply(grad, yt, tx) if ctx.needs_input_grad[0] else None
        gy = _BilinearFn.apply(xt, grad, ty) if ctx.needs_input_grad[1] else None
        return gx, gy, None


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
def bilinear(x: Tensor, y: Tensor, table: BilinearTable, *, blade_dim: int = -1) -> Tensor:
    """Apply a sparse bilinear table to two tensors.

    Parameters
    ----------
    x : Tensor, shape (..., dx) (or (dx, ...) with ``blade_dim=0``)
    y : Tensor, shape (..., dy) (or (dy, ...)); batch dimensions broadcast with ``x``.
    table : BilinearTable
    blade_dim : {-1, 0}
        Axis of the blade components: last (the library's layout) or first
        (blade-first, the kernel's native layout: no transposes are needed).

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

    if torch.compiler.is_compiling():
        if blade_dim == -1:
            x, y = x.expand(*batch, dx), y.expand(*batch, dy)
        else:
            x, y = x.expand(dx, *batch), y.expand(dy, *batch)
        return _traced(x, y, table, blade_dim)

    n_items = 1
    for size in batch:
        n_items *= size
    if blade_dim == -1:
        out = _BilinearFn.apply(_rows(x, batch, n_items), _rows(y, batch, n_items), table)
        # the result keeps the kernel's blade-first storage: a (..., dout) view, no transpose
        return out.view(dout, *batch).movedim(0, -1)
    xt = x.expand(dx, *batch).reshape(dx, n_items)
    yt = y.expand(dy, *batch).reshape(dy, n_items)
    return _BilinearFn.apply(xt.contiguous(), yt.contiguous(), table).view(dout, *batch)


def bilinear_reference(x: Tensor, y: Tensor, cayley: Tensor) -> Tensor:
    """Dense reference ``einsum('...i,...j,ijk->...k')`` through a full Cayley tensor."""
    return torch.einsum("...i,...j,ijk->...k", x, y, cayley)
