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
    rng = np.random.default_rng(0)
    gens = _generators(alg, group, rng, alg.n + 2)
    if kind == "coefficients":
        gens = [g.T for g in gens]
    eye = np.eye(alg.dim)
    fixed = [c for c in range(alg.dim) if all(np.allclose(g[:, c], eye[:, c], atol=1e-9) for g in gens)]
    return tuple(fixed)


_BLOCK_TENSORS: dict[tuple[Algebra, str, torch.device, torch.dtype], tuple[Tensor, ...]] = {}


def _block_tensors(alg: Algebra, group: str, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, ...]:
    key = (alg, group, device, dtype)
    out = _BLOCK_TENSORS.get(key)
    if out is None:
        out = tuple(torch.as_tensor(m, dtype=dtype, device=device) for m in linear_plan(alg, group).matrices)
        _BLOCK_TENSORS[key] = out
    return out


def equi_linear(
    alg: Algebra,
    x: Tensor,
    weight: Tensor,
    group: str = "pin",
) -> Tensor:
    r"""Apply :math:`y_{o} = \sum_{i, m} W_{o i m} B_m x_{i}` blade-block by blade-block.

    Parameters
    ----------
    x : Tensor, shape (..., in_channels, dim)
    weight : Tensor, shape (out_channels, in_channels, num_maps)
        One weight per (output channel, input channel, basis map).
    group : {"pin", "spin"}

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
