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
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from gatorch.algebras.equivariant import check_group
from gatorch.algebras.layout import (
    Layout,
    check_layout,
    layout_equivariant_basis,
    layout_invariant_components,
)
from gatorch.functional.bilinear import transpose_copy
from gatorch.functional.policy import KernelPolicy, resolve_kernel_policy

if TYPE_CHECKING:
    from gatorch.algebras.algebra import AlgebraData as Algebra

__all__ = [
    "LayoutLinearPlan",
    "LinearPlan",
    "equi_linear",
    "equi_linear_layout",
    "equi_linear_readout",
    "invariant_components",
    "layout_linear_plan",
    "linear_plan",
    "linear_plan_layouts",
]


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


@dataclass(frozen=True)
class LinearPlan:
    """How the basis maps of one (algebra, group) are applied: everything ``equi_linear`` needs.

    Built once per (algebra, group) from static metadata and stored on the
    :class:`~gatorch.Algebra`; :class:`~gatorch.layers.EquiLinear` builds it at construction,
    so a forward pass (eager or traced) only reads it.

    Attributes
    ----------
    blocks : tuple of (in_grade, out_grade, map_indices)
        For each block, the indices of the basis maps in it.
    matrices : tuple of float64 arrays, each (n_maps, d_out, d_in)
        The basis maps restricted to their block.
    num_maps : int
        Total number of basis maps (the weight's last dimension).
    slots : _SlotPlan or None
        The basis as signed blade selections (``None`` if some map is not one).
    inv_blades : tuple of int
        ``invariant_components(alg, group, "blades")``.
    read_coefficients : tuple of int
        ``invariant_components(alg, group, "coefficients")``.
    """

    blocks: tuple[tuple[int, int, tuple[int, ...]], ...]
    matrices: tuple[np.ndarray, ...]
    num_maps: int
    slots: _SlotPlan | None = None
    inv_blades: tuple[int, ...] = ()
    read_coefficients: tuple[int, ...] = ()


def linear_plan(alg: Algebra, group: str = "pin") -> LinearPlan:
    """The block structure of ``alg.equivariant_basis(group)``, built once per algebra."""
    check_group(group, "linear_plan")
    return alg._memo(("linear_plan", group), lambda: _build_linear_plan(alg, group))


def _build_linear_plan(alg: Algebra, group: str) -> LinearPlan:
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
    return LinearPlan(
        tuple(blocks),
        tuple(matrices),
        int(basis.shape[0]),
        slots=_build_slot_plan(alg, basis),
        inv_blades=invariant_components(alg, group, "blades"),
        read_coefficients=invariant_components(alg, group, "coefficients"),
    )


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

    Found by applying generic group generators; built once per algebra.
    """
    check_group(group, "invariant_components")
    if kind not in ("blades", "coefficients"):
        raise ValueError(f"kind must be 'blades' or 'coefficients', got {kind!r}")
    return alg._memo(("invariant_components", group, kind), lambda: _build_invariant(alg, group, kind))


def _build_invariant(alg: Algebra, group: str, kind: str) -> tuple[int, ...]:
    from gatorch.algebras.equivariant import versor_generators

    rng = np.random.default_rng(0)
    gens = versor_generators(alg, group, rng, alg.n + 2)
    if kind == "coefficients":
        gens = [g.T for g in gens]
    eye = np.eye(alg.dim)
    return tuple(c for c in range(alg.dim) if all(np.allclose(g[:, c], eye[:, c], atol=1e-9) for g in gens))


def _block_tensors(alg: Algebra, group: str, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, ...]:
    mats = linear_plan(alg, group).matrices
    return tuple(
        alg._memo_tensor(("linear_block", group, b), device, dtype, lambda m=m: torch.from_numpy(m))  # type: ignore[misc]
        for b, m in enumerate(mats)
    )


def _slot_plan(alg: Algebra, group: str) -> _SlotPlan | None:
    """The slots of ``alg.equivariant_basis(group)``, or ``None`` if a map is not a signed selection."""
    return linear_plan(alg, group).slots


def _build_slot_plan(alg: Algebra, basis: np.ndarray) -> _SlotPlan | None:
    terms: list[list[tuple[int, int, float]]] = [[] for _ in range(alg.dim)]  # (src, map, sign) per blade
    for m, mat in enumerate(basis):
        if ((mat != 0).sum(axis=1) > 1).any():
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
    return _SlotPlan(tuple(sources), tuple(maps), tuple(signs), identity_first)


_SlotTensors = tuple[tuple[Tensor, Tensor, Tensor], ...]


def _slot_tensors(
    alg: Algebra, plan: _SlotPlan | LayoutLinearPlan, device: torch.device, dtype: torch.dtype
) -> _SlotTensors:
    """Index and sign tensors of each slot on ``device`` (cached on the algebra in eager mode)."""
    out = []
    for k, (src, maps, sign) in enumerate(zip(plan.sources, plan.maps, plan.signs, strict=True)):
        out.append(
            (
                alg._memo_tensor(("slot_src", plan, k), device, torch.long, lambda v=src: torch.tensor(v)),  # type: ignore[misc]
                alg._memo_tensor(("slot_map", plan, k), device, torch.long, lambda v=maps: torch.tensor(v)),  # type: ignore[misc]
                alg._memo_tensor(("slot_sign", plan, k), device, dtype, lambda v=sign: torch.tensor(v)),  # type: ignore[misc]
            )
        )
    return tuple(out)


def _slot_weight(weight: Tensor, maps: Tensor, sign: Tensor, plain: bool) -> Tensor:
    """Per-blade weights ``(dim, in, out)`` of one slot: the blade's basis-map weight times its sign.

    ``plain``: the slot is the identity slot (all signs +1), so no multiplication is needed.
    The result is made batch-major for ``bmm`` (tiny: ``dim * in * out``).
    """
    wk = weight.index_select(2, maps)
    if not plain:
        wk = wk * sign
    return wk.permute(2, 1, 0).contiguous()  # bmm copies each matrix of a batch-stride-1 layout


def _blade_rows(x: Tensor, dim: int, channels: int, blocked: bool) -> Tensor:
    """``(..., C, dim) -> (dim, N, C)``: a view when ``x`` has blade-first storage, else one blocked copy.

    ``bmm`` needs every ``(N, C)`` matrix to have a unit stride; a batch-last ``x`` viewed
    blade-first has none, and ``bmm`` would copy it once per blade (slowly).
    """
    xb = x.movedim(-1, 0).reshape(dim, -1, channels)
    if xb.stride(-1) == 1 and xb.stride(-2) == channels:
        return xb
    return transpose_copy(x.reshape(-1, dim), blocked).view(dim, -1, channels)


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
        alg: Algebra,
        plan: _SlotPlan | LayoutLinearPlan,
        inv: Tensor,
        read: tuple[int, ...],
        blocked: bool,
    ) -> tuple[Tensor, Tensor]:
        dim, in_channels = x.shape[-1], x.shape[-2]
        xb = _blade_rows(x, dim, in_channels, blocked)
        slots = _slot_tensors(alg, plan, x.device, x.dtype)
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
        ctx.alg, ctx.plan, ctx.batch, ctx.copied, ctx.read = alg, plan, x.shape[:-2], copied, read
        saved_readout = readout if readout is not None else weight.new_empty(0)
        ctx.save_for_backward(x, xb if copied else x.new_empty(0), weight, saved_readout, inv)
        return out, s

    @staticmethod
    def backward(ctx, grad_out: Tensor | None, grad_s: Tensor | None):
        x, xb_saved, weight, readout, inv = ctx.saved_tensors
        plan: _SlotPlan | LayoutLinearPlan = ctx.plan
        read: tuple[int, ...] = ctx.read
        dim, in_channels = x.shape[-1], x.shape[-2]
        if ctx.copied and not torch.is_grad_enabled():
            xb = xb_saved
        else:  # a view of x (or, for double backward, a differentiable copy connected to x)
            xb = x.movedim(-1, 0).reshape(dim, -1, in_channels)
        need_x, need_w, need_rows, need_read = ctx.needs_input_grad[:4]
        slots = _slot_tensors(ctx.alg, plan, x.device, x.dtype)
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
        return gx, gw, g_rows, g_read, None, None, None, None, None


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
    policy: KernelPolicy | None = None,
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
    policy : KernelPolicy, optional
        The kernels to run (:mod:`gatorch.functional.policy`); ``None``: the ambient policy.

    Returns
    -------
    Tensor, shape (..., out_channels, dim)
    """
    return _equi_linear(alg, x, weight, group, bias, None, "equi_linear", policy)[0]


def equi_linear_readout(
    alg: Algebra,
    x: Tensor,
    weight: Tensor,
    readout: Tensor,
    group: str = "pin",
    *,
    bias: Tensor | None = None,
    policy: KernelPolicy | None = None,
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
    policy : KernelPolicy, optional
        As in :func:`equi_linear`.

    Returns
    -------
    (Tensor, Tensor)
        ``y: (..., out_channels, dim)`` and ``t: (..., out_s_channels)``.
    """
    out, s = _equi_linear(alg, x, weight, group, bias, readout, "equi_linear_readout", policy)
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
    policy: KernelPolicy | None,
) -> tuple[Tensor, Tensor | None]:
    alg.check_dim(x, f"{who} x")
    policy = resolve_kernel_policy(policy, who)
    plan = linear_plan(alg, group)
    if weight.ndim != 3 or weight.shape[1] != x.shape[-2] or weight.shape[2] != plan.num_maps:
        raise ValueError(
            f"{who}: expected weight of shape (out_channels, {x.shape[-2]}, {plan.num_maps}) "
            f"for input of shape {tuple(x.shape)}, got {tuple(weight.shape)}"
        )
    read = plan.read_coefficients
    if readout is not None and (
        readout.ndim != 3 or readout.shape[1] != x.shape[-2] or readout.shape[2] != len(read)
    ):
        raise ValueError(
            f"{who}: expected readout of shape (out_s_channels, {x.shape[-2]}, {len(read)}) "
            f"for input of shape {tuple(x.shape)}, got {tuple(readout.shape)}"
        )
    inv = plan.inv_blades
    batch, out_channels = x.shape[:-2], weight.shape[0]
    if bias is not None:
        bias = bias.expand(*batch, out_channels, len(inv))
    slots = plan.slots
    if slots is None:
        out = _equi_linear_blocks(alg, x, weight, group)
        if bias is not None:
            out = out.index_add(-1, _index_tensor(alg, inv, x.device), bias.to(out.dtype))
        return out, (_readout_traced(alg, x, readout, read) if readout is not None else None)
    return _apply_slots(alg, x, weight, slots, inv, read, bias, readout, _algebra_key(alg), group, policy)


def _apply_slots(
    alg: Algebra,
    x: Tensor,
    weight: Tensor,
    slots: _SlotPlan | LayoutLinearPlan,
    inv: tuple[int, ...],
    read: tuple[int, ...],
    bias: Tensor | None,
    readout: Tensor | None,
    key: str,
    group: str,
    policy: KernelPolicy,
) -> tuple[Tensor, Tensor | None]:
    """The slot kernel of a full plan or a layout plan: ``(..., out, d_out)`` and the readout.

    Eager: :class:`_SlotLinear` (saves only ``x`` and the weights). Compiling: the same kernel
    as the opaque custom op ``gatorch::equi_linear`` (the plan is rebuilt from ``key``), or,
    with ``compiled="fused"``, plain differentiable ops inductor can fuse.
    ``bias``: ``(..., out, len(inv))`` or ``None``.
    """
    batch, out_channels, d_out = x.shape[:-2], weight.shape[0], len(slots.sources[0])
    compiling = torch.compiler.is_compiling()
    opaque = compiling and policy.compiled_form("opaque") == "opaque"
    if compiling and not opaque:
        out = _slots_traced(alg, x, weight, slots)
        if bias is not None:
            out = out.index_add(-1, _index_tensor(alg, inv, x.device), bias.to(out.dtype))
        return out, (_readout_traced(alg, x, readout, read) if readout is not None else None)
    rows = None
    if bias is not None:  # (n_inv, N, out): added in place to the GEMM output's invariant rows
        rows = bias.reshape(-1, out_channels, len(inv)).permute(2, 0, 1).to(x.dtype)
    args = [x, weight, rows, readout]
    low = _autocast_dtype(x.device.type)
    if low is not None:  # cast as autocast would, outside the Function: the casts' backward is autograd's
        args = [t.to(low) if t is not None else None for t in args]
    blocked = policy.family(x.device) == "cpu"
    with torch.autocast(x.device.type, enabled=False) if low is not None else contextlib.nullcontext():
        if opaque:  # the eager kernel, forward and backward, as custom ops the compiler does not trace
            ob, s = _linear_op(*args, key, group, blocked)
        else:
            ob, s = _SlotLinear.apply(*args, alg, slots, _index_tensor(alg, inv, x.device), read, blocked)
    out = ob.view(d_out, *batch, out_channels).movedim(0, -1)
    return out, (s.view(*batch, s.shape[-1]) if readout is not None else None)


def _readout_traced(alg: Algebra, x: Tensor, readout: Tensor, read: tuple[int, ...]) -> Tensor:
    """``t_p = sum_{i, c} U[p, i, c] x[..., i, read_c]`` as plain differentiable ops."""
    # the readout as a contraction with a zero-padded (out_s, in, dim) weight: no gather
    # of x (whose backward, a scatter into x's gradient, inductor got wrong here once)
    full = readout.new_zeros(*readout.shape[:2], x.shape[-1])
    full = full.index_copy(-1, _index_tensor(alg, read, x.device), readout)
    return torch.einsum("...id,pid->...p", x, full.to(x.dtype))


def _algebra_key(alg: Algebra) -> str:
    """``"<metric>;<start_index>"``: names the algebra in a custom-op call."""
    return f"{','.join(str(m) for m in alg.metric)};{alg._start_index}"


def _layout_key(alg: Algebra, plan: LayoutLinearPlan) -> str:
    """``"<metric>;<start_index>;<in grades>;<out grades>"``: names a layout plan in a custom-op call."""
    grades = [",".join(str(g) for g in lay.grades) for lay in (plan.in_layout, plan.out_layout)]
    return f"{_algebra_key(alg)};{grades[0]};{grades[1]}"


def _algebra_from_key(key: str) -> Algebra:
    from gatorch.algebras.algebra import AlgebraData as Algebra

    metric, start = key.split(";")[:2]
    return Algebra.from_signature([int(m) for m in metric.split(",")] if metric else [], int(start))


def _plan_from_key(
    key: str, group: str
) -> tuple[Algebra, _SlotPlan | LayoutLinearPlan, tuple[int, ...], tuple[int, ...]]:
    """``(alg, slots, inv_blades, read_coefficients)`` of the plan ``key`` names (the algebra's memo)."""
    alg = _algebra_from_key(key)
    parts = key.split(";")
    if len(parts) == 4:
        grades_in, grades_out = (tuple(int(g) for g in p.split(",")) for p in parts[2:])
        lp = _layout_plan(alg, grades_in, grades_out, group)
        return alg, lp, lp.inv_blades, lp.read_coefficients
    plan = linear_plan(alg, group)
    assert plan.slots is not None
    return alg, plan.slots, plan.inv_blades, plan.read_coefficients


class _Ctx:
    """Stand-in for an autograd context, to run :class:`_SlotLinear`'s kernels inside custom ops."""

    saved_tensors: tuple[Tensor, ...]
    needs_input_grad: tuple[bool, ...]

    def save_for_backward(self, *tensors: Tensor) -> None:
        self.saved_tensors = tensors

    def set_materialize_grads(self, value: bool) -> None:
        pass


def _slot_context(
    key: str, group: str, x: Tensor
) -> tuple[Algebra, _SlotPlan | LayoutLinearPlan, Tensor, tuple[int, ...]]:
    alg, slots, inv, read = _plan_from_key(key, group)
    return alg, slots, _index_tensor(alg, inv, x.device), read


@torch.library.custom_op("gatorch::equi_linear", mutates_args=())
def _linear_op(
    x: Tensor,
    weight: Tensor,
    rows: Tensor | None,
    readout: Tensor | None,
    key: str,
    group: str,
    blocked: bool,
) -> tuple[Tensor, Tensor]:
    """Opaque :class:`_SlotLinear` forward: ``(d_out, N, out)`` blade-first rows and ``(N, out_s)``.

    ``key``: the algebra (:func:`_algebra_key`), or a layout plan (:func:`_layout_key`).
    """
    alg, slots, inv, read = _slot_context(key, group, x)
    out, s = _SlotLinear.forward(_Ctx(), x, weight, rows, readout, alg, slots, inv, read, blocked)
    return out, s


@_linear_op.register_fake
def _(
    x: Tensor,
    weight: Tensor,
    rows: Tensor | None,
    readout: Tensor | None,
    key: str,
    group: str,
    blocked: bool,
):
    n = math.prod(x.shape[:-2])
    out_s = readout.shape[0] if readout is not None else 0
    d_out = len(_plan_from_key(key, group)[1].sources[0])
    return x.new_empty((d_out, n, weight.shape[0])), x.new_empty((n, out_s))


@torch.library.custom_op("gatorch::equi_linear_backward", mutates_args=())
def _linear_backward_op(
    grad_out: Tensor,
    grad_s: Tensor,
    x: Tensor,
    weight: Tensor,
    rows: Tensor | None,
    readout: Tensor | None,
    key: str,
    group: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Opaque :class:`_SlotLinear` backward: gradients of ``x, weight, rows, readout`` (empty if absent)."""
    alg, slots, inv, read = _slot_context(key, group, x)
    ctx = _Ctx()
    ctx.save_for_backward(
        x, x.new_empty(0), weight, readout if readout is not None else weight.new_empty(0), inv
    )
    ctx.alg, ctx.plan, ctx.batch, ctx.copied, ctx.read = alg, slots, x.shape[:-2], False, read  # type: ignore[attr-defined]
    ctx.needs_input_grad = (True, True, rows is not None, readout is not None)
    with torch.no_grad():
        gx, gw, g_rows, g_read, *_ = _SlotLinear.backward(
            ctx, grad_out, grad_s if readout is not None else None
        )
    assert gx is not None and gw is not None
    return (
        gx.contiguous(),
        gw.contiguous(),
        g_rows.contiguous() if g_rows is not None else x.new_empty(0),
        g_read.contiguous() if g_read is not None else x.new_empty(0),
    )


@_linear_backward_op.register_fake
def _(grad_out, grad_s, x, weight, rows, readout, key, group):
    return (
        torch.empty_like(x, memory_format=torch.contiguous_format),
        weight.new_empty(weight.shape),
        rows.new_empty(rows.shape) if rows is not None else x.new_empty(0),
        readout.new_empty(readout.shape) if readout is not None else x.new_empty(0),
    )


def _linear_op_setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    x, weight, rows, readout, key, group, _ = inputs
    ctx.save_for_backward(x, weight, rows, readout)
    ctx.key, ctx.group = key, group


def _linear_op_backward(ctx: Any, grad_out: Tensor, grad_s: Tensor):
    x, weight, rows, readout = ctx.saved_tensors
    gx, gw, g_rows, g_read = _linear_backward_op(
        grad_out.contiguous(), grad_s.contiguous(), x, weight, rows, readout, ctx.key, ctx.group
    )
    return (
        gx,
        gw,
        (g_rows if rows is not None else None),
        (g_read if readout is not None else None),
        None,
        None,
        None,
    )


_linear_op.register_autograd(_linear_op_backward, setup_context=_linear_op_setup)


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    """The autocast dtype active for ``device_type``, or ``None`` when autocast is off there."""
    if not torch.is_autocast_enabled(device_type):
        return None
    return torch.get_autocast_dtype(device_type)


def _slots_traced(alg: Algebra, x: Tensor, weight: Tensor, plan: _SlotPlan | LayoutLinearPlan) -> Tensor:
    """The slot kernel as plain differentiable ops (for ``torch.compile``): returns ``(..., out, d_out)``."""
    # blade-first rows with unit-stride channels: the layout bmm runs fast on (a strided view
    # makes every GEMM of the batch copy or take a slow path); inductor fuses the copy upstream
    xb = x.movedim(-1, 0).reshape(x.shape[-1], -1, x.shape[-2]).clone(memory_format=torch.contiguous_format)
    out: Tensor | None = None
    for k, (src, maps, sign) in enumerate(_slot_tensors(alg, plan, x.device, x.dtype)):
        plain = k == 0 and plan.identity_first
        xk = xb if plain else xb.index_select(0, src)
        wk = _slot_weight(weight, maps, sign, plain)
        out = torch.bmm(xk, wk) if out is None else torch.baddbmm(out, xk, wk)
    assert out is not None
    out = _ContiguousGrad.apply(out)
    return out.view(len(plan.sources[0]), *x.shape[:-2], weight.shape[0]).movedim(0, -1)


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward makes the incoming gradient contiguous.

    The gradient of a blade-first GEMM output reaches it through the batch-last view the
    next layer read, so it arrives with unit stride on the blade axis. ``bmm`` on such
    operands copies every matrix of the batch (several times slower than the GEMM itself);
    one explicit transpose here, which inductor fuses into the producer, avoids it.
    """

    @staticmethod
    def forward(ctx, t: Tensor) -> Tensor:
        return t.view_as(t)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad.clone(memory_format=torch.contiguous_format)


def _index_tensor(alg: Algebra, idx: tuple[int, ...], device: torch.device) -> Tensor:
    return alg._memo_tensor(("index", idx), device, torch.long, lambda: torch.tensor(idx))


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


# -- layouts: maps between multivectors that store only some grades ------------------------------------
@dataclass(frozen=True)
class LayoutLinearPlan:
    """How the equivariant maps between two layouts are applied (see :func:`equi_linear_layout`).

    The basis (:func:`gatorch.algebras.layout.layout_equivariant_basis`) written as slots:
    slot ``k`` holds, per output blade of ``out_layout``, its ``k``-th term ``sign * x[src]``
    of basis map ``map`` (``sign = 0`` where a blade has fewer terms, or none).

    Attributes
    ----------
    in_layout, out_layout : Layout
    group : str
    blocks : tuple of (in_grade, out_grade)
        The block of each basis map, in weight order.
    num_maps : int
    sources, maps : tuple of K tuples of out_layout.dim ints
    signs : tuple of K tuples of out_layout.dim floats
    inv_blades : tuple of int
        Output-layout indices of the invariant blades (where scalars and the bias go).
    read_coefficients : tuple of int
        Input-layout indices of the invariant coefficients (what is read out as scalars).
    identity_first : bool
        Slot 0 reads every output blade from the same input blade with sign +1 (the layouts
        are equal): no gather needed.
    """

    in_layout: Layout
    out_layout: Layout
    group: str
    blocks: tuple[tuple[int, int], ...]
    num_maps: int
    sources: tuple[tuple[int, ...], ...]
    maps: tuple[tuple[int, ...], ...]
    signs: tuple[tuple[float, ...], ...]
    inv_blades: tuple[int, ...]
    read_coefficients: tuple[int, ...]
    identity_first: bool = False


def layout_linear_plan(in_layout: Layout, out_layout: Layout, group: str = "pin") -> LayoutLinearPlan:
    """Build the :class:`LayoutLinearPlan` of the equivariant maps ``in_layout -> out_layout``.

    Work and memory scale with the blades of the two layouts, not with ``2**n``.
    """
    check_group(group, "layout_linear_plan")
    basis = layout_equivariant_basis(in_layout, out_layout, group)
    terms: list[list[tuple[int, int, float]]] = [[] for _ in range(out_layout.dim)]
    for r, c, s, m in zip(
        basis.rows.tolist(), basis.cols.tolist(), basis.coefs.tolist(), basis.maps.tolist(), strict=True
    ):
        terms[r].append((c, m, float(s)))
    k_max = max((len(t) for t in terms), default=0)
    sources, maps, signs = [], [], []
    for k in range(max(k_max, 1)):
        sources.append(tuple(t[k][0] if k < len(t) else 0 for t in terms))
        maps.append(tuple(t[k][1] if k < len(t) else 0 for t in terms))
        signs.append(tuple(t[k][2] if k < len(t) else 0.0 for t in terms))
    return LayoutLinearPlan(
        in_layout,
        out_layout,
        group,
        basis.blocks,
        basis.num_maps,
        tuple(sources),
        tuple(maps),
        tuple(signs),
        layout_invariant_components(out_layout, group, "blades"),
        layout_invariant_components(in_layout, group, "coefficients"),
        identity_first=in_layout == out_layout
        and sources[0] == tuple(range(out_layout.dim))
        and all(v == 1.0 for v in signs[0]),
    )


def _layout_plan(
    alg: Algebra, grades_in: tuple[int, ...], grades_out: tuple[int, ...], group: str
) -> LayoutLinearPlan:
    """:func:`layout_linear_plan` between layouts of ``alg``, built once and stored on the algebra."""
    return alg._memo(
        ("layout_linear_plan", grades_in, grades_out, group),
        lambda: layout_linear_plan(Layout(alg, grades_in), Layout(alg, grades_out), group),
    )


def linear_plan_layouts(
    alg: Algebra, in_layout: Layout, out_layout: Layout, group: str = "pin"
) -> LayoutLinearPlan:
    """:func:`layout_linear_plan` of two layouts of ``alg``, built once and stored on ``alg``.

    What :class:`~gatorch.layers.EquiLinear` builds at construction and
    :func:`equi_linear_layout` expects: the compiled kernel finds the same plan again from
    the algebra and the grades.
    """
    for name, lay in (("in_layout", in_layout), ("out_layout", out_layout)):
        check_layout(alg, lay, "linear_plan_layouts", name)
    check_group(group, "linear_plan_layouts")
    return _layout_plan(alg, in_layout.grades, out_layout.grades, group)


def equi_linear_layout(
    alg: Algebra,
    x: Tensor,
    weight: Tensor,
    plan: LayoutLinearPlan,
    *,
    bias: Tensor | None = None,
    readout: Tensor | None = None,
    policy: KernelPolicy | None = None,
) -> tuple[Tensor, Tensor | None]:
    r"""Equivariant linear map between layouts: :math:`y_o = \sum_{i, m} W_{oim} B_m x_i`, slot by slot.

    One batched GEMM per slot over the output blades (``(dout, N, in) @ (dout, in, out)``),
    from blade-first rows of ``x``: the work is ``out_layout.dim * in * out`` per slot, the
    memory that of the stored blades. The same kernel as :func:`equi_linear` (a hand-written
    backward that saves only ``x`` and the weights; an opaque custom op under
    ``torch.compile`` unless the policy asks for the fused form), with the layout plan's slots.

    Parameters
    ----------
    alg : Algebra
        The algebra of the layouts (its store holds the plan's index tensors).
    x : Tensor, shape (..., in_channels, in_layout.dim)
    weight : Tensor, shape (out_channels, in_channels, num_maps)
    plan : LayoutLinearPlan
        From :func:`linear_plan_layouts` (or :func:`layout_linear_plan`).
    bias : Tensor, optional
        Broadcastable to ``(..., out_channels, len(plan.inv_blades))``: added to the output
        components ``plan.inv_blades``.
    readout : Tensor, optional
        ``(out_s, in_channels, len(plan.read_coefficients))``: reads the input components
        ``plan.read_coefficients`` into scalar outputs.
    policy : KernelPolicy, optional
        The kernels to run (:mod:`gatorch.functional.policy`); ``None``: the ambient policy.

    Returns
    -------
    (Tensor, Tensor or None)
        ``(..., out_channels, out_layout.dim)`` and the readout ``(..., out_s)`` (``None``
        without ``readout``).
    """
    who = "equi_linear_layout"
    policy = resolve_kernel_policy(policy, who)
    if not isinstance(plan, LayoutLinearPlan):
        raise TypeError(f"{who}: expected plan a LayoutLinearPlan, got {type(plan).__name__}")
    check_layout(alg, plan.in_layout, who, "plan.in_layout")
    din, cin = plan.in_layout.dim, x.shape[-2] if x.ndim >= 2 else None
    if x.ndim < 2 or x.shape[-1] != din:
        raise ValueError(
            f"{who}: expected x of shape (..., in_channels, {din}) (grades {plan.in_layout.grades}), "
            f"got {tuple(x.shape)}"
        )
    if weight.ndim != 3 or weight.shape[1] != cin or weight.shape[2] != plan.num_maps:
        raise ValueError(
            f"{who}: expected weight of shape (out_channels, {cin}, {plan.num_maps}), "
            f"got {tuple(weight.shape)}"
        )
    read, inv = plan.read_coefficients, plan.inv_blades
    if readout is not None and (readout.ndim != 3 or readout.shape[1:] != (cin, len(read))):
        raise ValueError(
            f"{who}: expected readout of shape (out_s_channels, {cin}, {len(read)}), "
            f"got {tuple(readout.shape)}"
        )
    batch, cout = x.shape[:-2], weight.shape[0]
    if bias is not None:  # (nothing to add when the output layout stores no invariant blade)
        bias = bias.expand(*batch, cout, len(inv)) if inv else None
    s_empty = None
    if readout is not None and not read:  # nothing invariant to read: the readout is zero
        s_empty, readout = x.new_zeros(*batch, readout.shape[0]), None
    key = _layout_key(alg, plan)
    y, s = _apply_slots(alg, x, weight, plan, inv, read, bias, readout, key, plan.group, policy)
    return y, (s_empty if s_empty is not None else s)
