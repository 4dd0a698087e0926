r"""GCAN's functional core: the per-grade matrices of the versor action and the naive group action layer.

Geometric Clifford Algebra Networks (Ruhe, Gupta, de Keninck, Welling, Brandstetter, ICML 2023);
the layers are in :mod:`gatorch.layers.zoo.gcan`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gatorch.functional.products import gp
from gatorch.functional.versors import inverse

if TYPE_CHECKING:
    from gatorch.algebras.algebra import AlgebraData as Algebra

__all__ = ["group_action_linear_naive", "group_action_matrices", "per_grade_weight"]


def _grade_slices(alg: Algebra) -> list[slice]:
    return [alg.grade_slice(k) for k in range(alg.n + 1)]


def _grade_of_blade(alg: Algebra, device: torch.device | str | None = None) -> Tensor:
    return torch.tensor(alg.grades, dtype=torch.long, device=device)


def group_action_matrices(alg: Algebra, versors: Tensor) -> list[Tensor]:
    r"""Per-grade matrices of the action :math:`x \mapsto V x V^{-1}` of even versors.

    The action of a versor is linear and preserves grades, so its ``(dim, dim)`` matrix is
    block diagonal with one ``(d_k, d_k)`` block per grade (``d_k = C(n, k)``). The columns
    are the images of the basis blades, :math:`V e_j V^{-1}`: two geometric products per
    blade, for all versors at once. (Building only the vector images and the rest as
    outer products, the action being an outermorphism, was measured no faster on CPU and
    loses precision to cancellation for boosts of indefinite signatures.)

    Parameters
    ----------
    versors : Tensor, shape (..., dim)
        Even invertible versors, e.g. ``alg.exp(B)``. For even versors the twisted action
        is the plain sandwich, which is what is computed.

    Returns
    -------
    list of Tensor, one per grade ``k = 0 .. n``, shape (..., d_k, d_k)
        ``A_k[..., j, l]``: coefficient of blade ``l`` of :math:`V e_j V^{-1}`, both blades of
        grade ``k`` (indices relative to ``alg.grade_slice(k)``); so the grade-``k`` part of
        :math:`V x V^{-1}` is ``x_k @ A_k``.
    """
    alg.check_dim(versors, "group_action_matrices versors")
    eye = torch.eye(alg.dim, dtype=versors.dtype, device=versors.device)
    v = versors[..., None, :]
    images = gp(alg, gp(alg, v, eye), inverse(alg, v, check=False))  # (..., j, l) = (V e_j V^-1)_l
    return [images[..., s, s] for s in _grade_slices(alg)]


def per_grade_weight(weight: Tensor, alg: Algebra) -> Tensor:
    """``(out, in, n + 1)`` per-grade weights from ``(out, in, n + 1)`` or shared ``(out, in, 1)``.

    Parameters
    ----------
    weight : Tensor, shape (out_channels, in_channels, n + 1) or (out_channels, in_channels, 1)
    alg : Algebra

    Returns
    -------
    Tensor, shape (out_channels, in_channels, n + 1)
        A view (``expand``) of ``weight``.
    """
    return weight.expand(*weight.shape[:2], alg.n + 1)


def group_action_linear_naive(alg: Algebra, mv: Tensor, versors: Tensor, weight: Tensor) -> Tensor:
    r"""Reference group action layer: two geometric products per (output, input) pair per item.

    .. math::
        y_o = \sum_i \sum_k w_{oik} \big\langle V_{oi}\, x_i\, V_{oi}^{-1} \big\rangle_k

    Parameters
    ----------
    mv : Tensor, shape (..., in_channels, dim)
    versors : Tensor, shape (out_channels, in_channels, dim)
        Even invertible versors.
    weight : Tensor, shape (out_channels, in_channels, n + 1) or (out_channels, in_channels, 1)
        Per-grade (or shared) weights.

    Returns
    -------
    Tensor, shape (..., out_channels, dim)
        The same as :class:`~gatorch.layers.zoo.gcan.GroupActionLinear` computes through action matrices; this
        formulation is the test reference and the benchmark baseline.
    """
    alg.check_dim(mv, "group_action_linear_naive mv")
    v = versors.to(mv.dtype)
    moved = gp(alg, gp(alg, v, mv[..., None, :, :]), inverse(alg, v, check=False))  # (..., out, in, dim)
    w = per_grade_weight(weight, alg).to(mv.dtype)[..., _grade_of_blade(alg, mv.device)]  # (out, in, dim)
    return (moved * w).sum(-2)
