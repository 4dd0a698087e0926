r"""Equivariant linear maps of multivector channels, driven by the derived basis.

A map :math:`\phi(x)_o = \sum_{i, m} W_{o i m} B_m x_i` with :math:`B_m` the equivariant
basis of the algebra commutes with the group action for any weights. Every basis map
sends one grade to one grade, so the maps are grouped by (input grade, output grade)
block and applied as a small fixed component map followed by one channel-mixing
contraction per block: the work is ``channels_out * channels_in * sum_m nnz(B_m)``,
never a dense ``(out * dim, in * dim)`` matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from gatorch.algebras.equivariant import check_group

if TYPE_CHECKING:
    from gatorch.algebras.algebra import Algebra

__all__ = ["LinearPlan", "equi_linear", "invariant_components", "linear_plan"]


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


_SLOT_TENSORS: dict[tuple[int, torch.device, torch.dtype], tuple[tuple[Tensor, Tensor, Tensor], ...]] = {}


def _slot_tensors(
    plan: _SlotPlan, device: torch.device, dtype: torch.dtype
) -> tuple[tuple[Tensor, Tensor, Tensor], ...]:
    key = (id(plan), device, dtype)
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


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward makes the incoming gradient contiguous.

    The GEMM output is handed on as a blade-first view; gradients flowing back often
    arrive with another layout, and ``bmm``'s backward would then copy per batch entry.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return grad.contiguous()


def _equi_linear_slots(alg: Algebra, x: Tensor, weight: Tensor, plan: _SlotPlan) -> Tensor:
    """Slot kernel: ``x`` as blade-first rows ``(dim, N, in)``, one batched GEMM per slot.

    Returns blade-first ``(dim, N, out)``.
    """
    xb = x.movedim(-1, 0).reshape(alg.dim, -1, x.shape[-2])  # a view when x has blade-first storage
    out: Tensor | None = None
    for k, (src, maps, sign) in enumerate(_slot_tensors(plan, x.device, x.dtype)):
        xk = xb if k == 0 and plan.identity_first else xb.index_select(0, src)
        # per-blade weight (dim, in, out): the blade's basis-map weight times its sign
        wk = weight.index_select(2, maps).permute(2, 1, 0)
        if k == 0 and plan.identity_first:
            wk = wk.contiguous()  # batch-major for bmm (tiny: dim * in * out)
        else:
            wk = wk * sign[:, None, None]
        out = torch.bmm(xk, wk) if out is None else torch.baddbmm(out, xk, wk)
    assert out is not None
    return out


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
    alg.check_dim(x, "equi_linear x")
    plan = linear_plan(alg, group)
    if weight.ndim != 3 or weight.shape[1] != x.shape[-2] or weight.shape[2] != plan.num_maps:
        raise ValueError(
            f"equi_linear: expected weight of shape (out_channels, {x.shape[-2]}, {plan.num_maps}) "
            f"for input of shape {tuple(x.shape)}, got {tuple(weight.shape)}"
        )
    inv = invariant_components(alg, group, "blades")
    batch, out_channels = x.shape[:-2], weight.shape[0]
    if bias is not None:
        bias = bias.expand(*batch, out_channels, len(inv))
    slots = _slot_plan(alg, group)
    if slots is None:
        out = _equi_linear_blocks(alg, x, weight, group)
        if bias is not None:
            out = out.index_add(-1, _index_tensor(inv, x.device), bias.to(out.dtype))
        return out
    ob = _equi_linear_slots(alg, x, weight, slots)  # (dim, N, out)
    if bias is not None:
        # in place on the GEMM output (its backward does not need it): rows of invariant blades
        rows = bias.reshape(-1, out_channels, len(inv)).permute(2, 0, 1).to(ob.dtype)
        ob.index_add_(0, _index_tensor(inv, x.device), rows)
    if ob.requires_grad and not torch.compiler.is_compiling():
        ob = _ContiguousGrad.apply(ob)
    return ob.view(alg.dim, *batch, out_channels).movedim(0, -1)


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
