r"""Equivariant linear maps of multivector channels, driven by the derived basis.

A map :math:`\phi(x)_o = \sum_{i, m} W_{o i m} B_m x_i` with :math:`B_m` the equivariant
basis of the algebra commutes with the group action for any weights. Every basis map
sends one grade to one grade, so the maps are grouped by (input grade, output grade)
block and applied as a small fixed component map followed by one channel-mixing
contraction per block: the work is ``channels_out * channels_in * sum_m nnz(B_m)``,
never a dense ``(out * dim, in * dim)`` matrix.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from gatorch.algebras.equivariant import check_group
from gatorch.functional.bilinear import _transpose_copy

if TYPE_CHECKING:
    from gatorch.algebras.algebra import Algebra

__all__ = ["LinearPlan", "equi_linear", "equi_linear_readout", "invariant_components", "linear_plan"]


@dataclass(frozen=True)
class LinearPlan:
    """How the basis maps of one (algebra, group) split into grade blocks.

    Attributes
    ----------
    blocks : tuple of (in_grade, out_grade, map_indices)
        For each block, the indices of the basis maps in it.
    matrices : tuple of float64 arrays, each (n_maps, d_out, d_in)
        The basis maps restricted to their block.
    num_maps : int
        Total number of basis maps (the weight's last dimension).
    """

    blocks: tuple[tuple[int, int, tuple[int, ...]], ...]
    matrices: tuple[np.ndarray, ...]
    num_maps: int


_PLANS: dict[tuple[Algebra, str], LinearPlan] = {}


def linear_plan(alg: Algebra, group: str = "pin") -> LinearPlan:
    """The block structure of ``alg.equivariant_basis(group)`` (cached)."""
    check_group(group, "linear_plan")
    plan = _PLANS.get((alg, group))
    if plan is not None:
        return plan
    basis = alg.equivariant_basis(group).numpy()
    grade_of = np.asarray(alg.grades)
    by_block: dict[tuple[int, int], list[int]] = {}
    for m, mat in enumerate(basis):
        rows, cols = np.nonzero(mat)
        a, b = int(grade_of[cols[0]]), int(grade_of[rows[0]])
        by_block.setdefault((a, b), []).append(m)
    blocks, matrices = [], []
    for (a, b), maps in by_block.items():
        sa, sb = alg.grade_slice(a), alg.grade_slice(b)
        blocks.append((a, b, tuple(maps)))
        matrices.append(np.stack([basis[m][sb, sa] for m in maps]))
    plan = LinearPlan(tuple(blocks), tuple(matrices), int(basis.shape[0]))
    _PLANS[(alg, group)] = plan
    return plan


_INVARIANT: dict[tuple[Algebra, str, str], tuple[int, ...]] = {}


def invariant_components(alg: Algebra, group: str = "pin", kind: str = "blades") -> tuple[int, ...]:
    """Blade indices fixed by the group action, in one of two senses.

    ``kind="blades"``: blades ``e_c`` with ``rho_w(e_c) = e_c`` (columns of the action):
    where scalars may be written into a multivector and a bias may sit. The scalar
    always; ``e0`` in degenerate algebras (the plane at infinity); the pseudoscalar for
    ``"spin"``.

    ``kind="coefficients"``: components whose coefficient is invariant,
    ``rho_w(x)_c = x_c`` (rows of the action): what may be read out as a scalar. The
    scalar always; the pseudoscalar for ``"spin"``. (The ``e0`` coefficient of a PGA
    plane changes under translations, although the blade ``e0`` is fixed.)

    Found by applying generic group generators.
    """
    from gatorch.algebras.equivariant import _generators

    check_group(group, "invariant_components")
    if kind not in ("blades", "coefficients"):
        raise ValueError(f"kind must be 'blades' or 'coefficients', got {kind!r}")
    cached = _INVARIANT.get((alg, group, kind))
    if cached is not None:
        return cached
    rng = np.random.default_rng(0)
    gens = _generators(alg, group, rng, alg.n + 2)
    if kind == "coefficients":
        gens = [g.T for g in gens]
    eye = np.eye(alg.dim)
    fixed = tuple(c for c in range(alg.dim) if all(np.allclose(g[:, c], eye[:, c], atol=1e-9) for g in gens))
    _INVARIANT[(alg, group, kind)] = fixed
    return fixed


_BLOCK_TENSORS: dict[tuple[Algebra, str, torch.device, torch.dtype], tuple[Tensor, ...]] = {}


def _block_tensors(alg: Algebra, group: str, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, ...]:
    key = (alg, group, device, dtype)
    out = _BLOCK_TENSORS.get(key)
    if out is None:
        out = tuple(torch.as_tensor(m, dtype=dtype, device=device) for m in linear_plan(alg, group).matrices)
        _BLOCK_TENSORS[key] = out
    return out


@dataclass(frozen=True)
class _SlotPlan:
    """A monomial basis written as per-blade slots of signed source selections.

    Every basis map the derivation gives for the algebras we know (grade projections,
    products with degenerate vectors or with the pseudoscalar) has at most one non-zero
    per row: output blade ``e`` reads ``sign * x[src]``. Each blade has at most ``K``
    such terms; slot ``k`` holds, per blade, its ``k``-th term (``sign = 0`` and any source
    where a blade has fewer). Applying the map is then ``K`` batched GEMMs over blades.

    Attributes
    ----------
    sources : tuple of K tuples of dim ints
    maps : tuple of K tuples of dim ints (basis-map index per blade)
    signs : tuple of K tuples of dim floats
    identity_first : bool
        Slot 0 reads every blade from itself (no gather needed).
    """

    sources: tuple[tuple[int, ...], ...]
    maps: tuple[tuple[int, ...], ...]
    signs: tuple[tuple[float, ...], ...]
    identity_first: bool


_SLOTS: dict[tuple[Algebra, str], _SlotPlan | None] = {}


def _slot_plan(alg: Algebra, group: str) -> _SlotPlan | None:
    """The slots of ``alg.equivariant_basis(group)``, or ``None`` if a map is not a signed selection."""
    key = (alg, group)
    if key in _SLOTS:
        return _SLOTS[key]
    basis = alg.equivariant_basis(group).numpy()
    terms: list[list[tuple[int, int, float]]] = [[] for _ in range(alg.dim)]  # (src, map, sign) per blade
    for m, mat in enumerate(basis):
        if ((mat != 0).sum(axis=1) > 1).any():
            _SLOTS[key] = None
            return None
        for e, c in zip(*np.nonzero(mat), strict=True):
            terms[int(e)].append((int(c), m, float(mat[e, c])))
    for e, t in enumerate(terms):  # the identity term (if any) first: slot 0 then needs no gather
        t.sort(key=lambda term: (term[0] != e or term[2] != 1.0, term[1]))
    k_max = max(len(t) for t in terms)
    sources, maps, signs = [], [], []
    for k in range(k_max):
        sources.append(tuple(t[k][0] if k < len(t) else e for e, t in enumerate(terms)))
        maps.append(tuple(t[k][1] if k < len(t) else 0 for t in terms))
        signs.append(tuple(t[k][2] if k < len(t) else 0.0 for t in terms))
    identity_first = sources[0] == tuple(range(alg.dim)) and all(v == 1.0 for v in signs[0])
    plan = _SlotPlan(tuple(sources), tuple(maps), tuple(signs), identity_first)
    _SLOTS[key] = plan
    return plan


_SlotTensors = tuple[tuple[Tensor, Tensor, Tensor], ...]
_SLOT_TENSORS: dict[tuple[_SlotPlan, torch.device, torch.dtype], _SlotTensors] = {}


def _slot_tensors(plan: _SlotPlan, device: torch.device, dtype: torch.dtype) -> _SlotTensors:
    key = (plan, device, dtype)  # plans are frozen dataclasses: hashed by value
    out = _SLOT_TENSORS.get(key)
    if out is None:
        out = tuple(
            (
                torch.tensor(src, dtype=torch.long, device=device),
                torch.tensor(maps, dtype=torch.long, device=device),
                torch.tensor(sign, dtype=dtype, device=device),
            )
            for src, maps, sign in zip(plan.sources, plan.maps, plan.signs, strict=True)
        )
        _SLOT_TENSORS[key] = out
    return out


def _slot_weight(weight: Tensor, maps: Tensor, sign: Tensor, plain: bool) -> Tensor:
    """Per-blade weights ``(dim, in, out)`` of one slot: the blade's basis-map weight times its sign.

    ``plain``: the slot is the identity slot (all signs +1), so no multiplication is needed.
    The result is made batch-major for ``bmm`` (tiny: ``dim * in * out``).
    """
    wk = weight.index_select(2, maps)
    if not plain:
        wk = wk * sign
    return wk.permute(2, 1, 0).contiguous()  # bmm copies each matrix of a batch-stride-1 layout


def _blade_rows(x: Tensor, dim: int, channels: int) -> Tensor:
    """``(..., C, dim) -> (dim, N, C)``: a view when ``x`` has blade-first storage, else one blocked copy.

    ``bmm`` needs every ``(N, C)`` matrix to have a unit stride; a batch-last ``x`` viewed
    blade-first has none, and ``bmm`` would copy it once per blade (slowly).
    """
    xb = x.movedim(-1, 0).reshape(dim, -1, channels)
    if xb.stride(-1) == 1 and xb.stride(-2) == channels:
        return xb
    return _transpose_copy(x.reshape(-1, dim)).view(dim, -1, channels)


class _SlotLinear(torch.autograd.Function):
    """Eager slot kernel with the scalar readout fused in, and a hand-written backward.

    Forward: ``ob = sum_k bmm(x[src_k], W_k)`` in blade-first rows ``(dim, N, out)``, the
    rows ``(n_inv, N, out)`` added to the invariant blades in place, and the readout
    ``t = sum_c x[read_c] @ U[:, :, c]^T`` of shape ``(N, out_s)``.

    Backward: the input gradient is formed once, blade-first (no zero-filled input-sized
    gradient per readout, no transposes), by one ``bmm`` per slot plus an in-place
    ``addmm_`` per read component; the weight gradient by one ``bmm`` per slot. The
    backward is written with differentiable ops, so double backward works.
    """

    @staticmethod
    def forward(
        ctx,
        x: Tensor,
        weight: Tensor,
        rows: Tensor | None,
        readout: Tensor | None,
        plan: _SlotPlan,
        inv: Tensor,
        read: tuple[int, ...],
    ) -> tuple[Tensor, Tensor]:
        dim, in_channels = x.shape[-1], x.shape[-2]
        xb = _blade_rows(x, dim, in_channels)
        slots = _slot_tensors(plan, x.device, x.dtype)
        out: Tensor | None = None
        for k, (src, maps, sign) in enumerate(slots):
            plain = k == 0 and plan.identity_first
            xk = xb if plain else xb.index_select(0, src)
            wk = _slot_weight(weight, maps, sign, plain)
            out = torch.bmm(xk, wk) if out is None else torch.baddbmm(out, xk, wk)
        assert out is not None
        if rows is not None:
            out.index_add_(0, inv, rows)
        n = xb.shape[1]
        if readout is None:
            s = out.new_zeros(n, 0)
        else:
            s = torch.mm(xb[read[0]], readout[:, :, 0].t())
            for c in range(1, readout.shape[2]):
                s.addmm_(xb[read[c]], readout[:, :, c].t())
        copied = not _is_view(xb, x)
        ctx.set_materialize_grads(False)
        ctx.plan, ctx.batch, ctx.copied, ctx.read = plan, x.shape[:-2], copied, read
        saved_readout = readout if readout is not None else weight.new_empty(0)
        ctx.save_for_backward(x, xb if copied else x.new_empty(0), weight, saved_readout, inv)
        return out, s

    @staticmethod
    def backward(ctx, grad_out: Tensor | None, grad_s: Tensor | None):
        x, xb_saved, weight, readout, inv = ctx.saved_tensors
        plan: _SlotPlan = ctx.plan
        read: tuple[int, ...] = ctx.read
        dim, in_channels = x.shape[-1], x.shape[-2]
        if ctx.copied and not torch.is_grad_enabled():
            xb = xb_saved
        else:  # a view of x (or, for double backward, a differentiable copy connected to x)
            xb = x.movedim(-1, 0).reshape(dim, -1, in_channels)
        need_x, need_w, need_rows, need_read = ctx.needs_input_grad[:4]
        slots = _slot_tensors(plan, x.device, x.dtype)
        n = xb.shape[1]
        g = grad_out.contiguous() if grad_out is not None else None
        gx = gw = g_rows = g_read = None
        if g is not None and (need_x or need_w):
            if need_w:
                gw = weight.new_zeros(weight.shape)
            for k, (src, maps, sign) in enumerate(slots):
                plain = k == 0 and plan.identity_first
                if need_x:
                    gk = torch.bmm(g, _slot_weight(weight, maps, sign, plain).transpose(1, 2))
                    if gx is None:  # the identity slot, when there is one, comes first
                        gx = gk if plain else xb.new_zeros(dim, n, in_channels).index_add_(0, src, gk)
                    else:
                        gx.index_add_(0, src, gk)
                if need_w:
                    xk = xb if plain else xb.index_select(0, src)
                    gwk = torch.bmm(xk.transpose(1, 2), g)  # (dim, in, out)
                    if not plain:
                        gwk = gwk * sign[:, None, None]
                    assert gw is not None  # made above when need_w
                    gw.index_add_(2, maps, gwk.permute(2, 1, 0))
        if need_rows and g is not None:
            g_rows = g.index_select(0, inv)
        if readout.numel() and grad_s is not None:
            if need_x:
                if gx is None:
                    gx = xb.new_zeros(dim, n, in_channels)
                for c in range(readout.shape[2]):
                    gx[read[c]].addmm_(grad_s, readout[:, :, c])
            if need_read:
                g_read = torch.stack([torch.mm(grad_s.t(), xb[read[c]]) for c in range(readout.shape[2])], -1)
        if gx is not None:
            gx = gx.view(dim, *ctx.batch, in_channels).movedim(0, -1)
        return gx, gw, g_rows, g_read, None, None, None


def _is_view(xb: Tensor, x: Tensor) -> bool:
    """Whether ``xb`` shares ``x``'s storage (it is then a view, not a copy)."""
    return xb.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()


def equi_linear(
    alg: Algebra,
    x: Tensor,
    weight: Tensor,
    group: str = "pin",
    *,
    bias: Tensor | None = None,
) -> Tensor:
    r"""Apply :math:`y_{o} = \sum_{i, m} W_{o i m} B_m x_{i}` grade by grade.

    When every basis map is a signed selection of blades (true for all the algebras the
    library has met: grade projections, products with degenerate vectors or with the
    pseudoscalar), the input is read as blade-first rows ``(dim, N, in)`` and the map is
    one batched GEMM per slot (one slot per basis map reaching a blade: 1 for
    non-degenerate algebras under Pin, 2 for PGA), with per-blade weights of shape
    ``(dim, in, out)``; never a dense ``(out * dim, in * dim)`` matrix. The result is a
    ``(..., out, dim)`` view of blade-first storage, which the product kernels and the next
    linear layer read without a transpose. Other bases use a per-block contraction.

    Parameters
    ----------
    x : Tensor, shape (..., in_channels, dim)
    weight : Tensor, shape (out_channels, in_channels, num_maps)
        One weight per (output channel, input channel, basis map).
    group : {"pin", "spin"}
    bias : Tensor, optional
        Added to the group-invariant blades (``invariant_components(alg, group)``); shape
        broadcastable to ``(..., out_channels, n_invariant)``.

    Returns
    -------
    Tensor, shape (..., out_channels, dim)
    """
    return _equi_linear(alg, x, weight, group, bias, None, "equi_linear")[0]


def equi_linear_readout(
    alg: Algebra,
    x: Tensor,
    weight: Tensor,
    readout: Tensor,
    group: str = "pin",
    *,
    bias: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    r""":func:`equi_linear` and a linear readout of the invariant coefficients, in one kernel.

    .. math::
        y_o = \sum_{i, m} W_{o i m} B_m x_i, \qquad
        t_p = \sum_{i, c} U_{p i c}\, x_{i, \mathrm{read}_c}

    with ``read = invariant_components(alg, group, "coefficients")``. The same as
    ``equi_linear`` plus an einsum over ``x[..., read]``, but the eager kernel reads the
    coefficients straight from the blade-first rows and forms the input gradient once
    (a separate indexed readout would add a zero-filled, input-sized gradient and, for
    blade-first inputs, a transpose).

    Parameters
    ----------
    x : Tensor, shape (..., in_channels, dim)
    weight : Tensor, shape (out_channels, in_channels, num_maps)
    readout : Tensor, shape (out_s_channels, in_channels, n_read)
    group : {"pin", "spin"}
    bias : Tensor, optional
        As in :func:`equi_linear`.

    Returns
    -------
    (Tensor, Tensor)
        ``y: (..., out_channels, dim)`` and ``t: (..., out_s_channels)``.
    """
    out, s = _equi_linear(alg, x, weight, group, bias, readout, "equi_linear_readout")
    assert s is not None
    return out, s


def _equi_linear(
    alg: Algebra,
    x: Tensor,
    weight: Tensor,
    group: str,
    bias: Tensor | None,
    readout: Tensor | None,
    who: str,
) -> tuple[Tensor, Tensor | None]:
    alg.check_dim(x, f"{who} x")
    plan = linear_plan(alg, group)
    if weight.ndim != 3 or weight.shape[1] != x.shape[-2] or weight.shape[2] != plan.num_maps:
        raise ValueError(
            f"{who}: expected weight of shape (out_channels, {x.shape[-2]}, {plan.num_maps}) "
            f"for input of shape {tuple(x.shape)}, got {tuple(weight.shape)}"
        )
    read = invariant_components(alg, group, "coefficients")
    if readout is not None and (
        readout.ndim != 3 or readout.shape[1] != x.shape[-2] or readout.shape[2] != len(read)
    ):
        raise ValueError(
            f"{who}: expected readout of shape (out_s_channels, {x.shape[-2]}, {len(read)}) "
            f"for input of shape {tuple(x.shape)}, got {tuple(readout.shape)}"
        )
    inv = invariant_components(alg, group, "blades")
    batch, out_channels = x.shape[:-2], weight.shape[0]
    if bias is not None:
        bias = bias.expand(*batch, out_channels, len(inv))
    slots = _slot_plan(alg, group)
    if slots is None or torch.compiler.is_compiling():
        if slots is None:
            out = _equi_linear_blocks(alg, x, weight, group)
        else:
            out = _slots_traced(alg, x, weight, slots)
        if bias is not None:
            out = out.index_add(-1, _index_tensor(inv, x.device), bias.to(out.dtype))
        s = None
        if readout is not None:
            s = torch.einsum("...ic,pic->...p", x.index_select(-1, _index_tensor(read, x.device)), readout)
        return out, s
    rows = None
    if bias is not None:  # (n_inv, N, out): added in place to the GEMM output's invariant rows
        rows = bias.reshape(-1, out_channels, len(inv)).permute(2, 0, 1).to(x.dtype)
    args = [x, weight, rows, readout]
    low = _autocast_dtype(x.device.type)
    if low is not None:  # cast as autocast would, outside the Function: the casts' backward is autograd's
        args = [t.to(low) if t is not None else None for t in args]
    with torch.autocast(x.device.type, enabled=False) if low is not None else contextlib.nullcontext():
        ob, s = _SlotLinear.apply(*args, slots, _index_tensor(inv, x.device), read)
    out = ob.view(alg.dim, *batch, out_channels).movedim(0, -1)
    return out, (s.view(*batch, s.shape[-1]) if readout is not None else None)


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    """The autocast dtype active for ``device_type``, or ``None`` when autocast is off there."""
    if not torch.is_autocast_enabled(device_type):
        return None
    return torch.get_autocast_dtype(device_type)


def _slots_traced(alg: Algebra, x: Tensor, weight: Tensor, plan: _SlotPlan) -> Tensor:
    """The slot kernel as plain differentiable ops (for ``torch.compile``): returns ``(..., out, dim)``."""
    xb = x.movedim(-1, 0).reshape(alg.dim, -1, x.shape[-2])
    out: Tensor | None = None
    for k, (src, maps, sign) in enumerate(_slot_tensors(plan, x.device, x.dtype)):
        plain = k == 0 and plan.identity_first
        xk = xb if plain else xb.index_select(0, src)
        wk = _slot_weight(weight, maps, sign, plain)
        out = torch.bmm(xk, wk) if out is None else torch.baddbmm(out, xk, wk)
    assert out is not None
    return out.view(alg.dim, *x.shape[:-2], weight.shape[0]).movedim(0, -1)


_INDEX_TENSORS: dict[tuple[tuple[int, ...], torch.device], Tensor] = {}


def _index_tensor(idx: tuple[int, ...], device: torch.device) -> Tensor:
    t = _INDEX_TENSORS.get((idx, device))
    if t is None:
        t = _INDEX_TENSORS[(idx, device)] = torch.tensor(idx, dtype=torch.long, device=device)
    return t


def _equi_linear_blocks(alg: Algebra, x: Tensor, weight: Tensor, group: str) -> Tensor:
    """General kernel for any basis: a component map per grade block, then a channel contraction."""
    plan = linear_plan(alg, group)
    per_grade: dict[int, Tensor] = {}
    mats = _block_tensors(alg, group, x.device, x.dtype)
    for (a, b, maps), bm in zip(plan.blocks, mats, strict=True):
        xa = x[..., alg.grade_slice(a)]  # (..., in, d_a); bm: (k, d_b, d_a)
        wm = weight[..., list(maps)]  # (out, in, k)
        # component map first (small, fixed), then one channel contraction for the block
        z = torch.einsum("...id,ked->...kie", xa, bm)
        yb = torch.einsum("...kie,oik->...oe", z, wm)
        per_grade[b] = per_grade[b] + yb if b in per_grade else yb
    out_shape = (*x.shape[:-2], weight.shape[0])
    parts = []
    for g in range(alg.n + 1):
        sl = alg.grade_slice(g)
        if g in per_grade:
            parts.append(per_grade[g])
        else:
            parts.append(x.new_zeros(*out_shape, sl.stop - sl.start))
    return torch.cat(parts, dim=-1)
