"""Linear involutions, projections, complements and invariants on ``(..., dim)`` tensors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from gatorch.algebras.algebra import AlgebraData as Algebra

__all__ = [
    "conjugate",
    "dual",
    "grade",
    "inner_product",
    "involute",
    "norm",
    "reverse",
    "safe_sqrt",
    "undual",
]


def _scale(alg: Algebra, x: Tensor, name: str) -> Tensor:
    alg.check_dim(x, name)
    return x * alg.constant(name, x.device, x.dtype)


def reverse(alg: Algebra, x: Tensor) -> Tensor:
    r"""Reversion :math:`\tilde x`: grade :math:`k` times :math:`(-1)^{k(k-1)/2}`. Shape (..., dim)."""
    return _scale(alg, x, "reverse")


def involute(alg: Algebra, x: Tensor) -> Tensor:
    r"""Grade involution :math:`\hat x`: grade :math:`k` times :math:`(-1)^k`. Shape (..., dim)."""
    return _scale(alg, x, "involute")


def conjugate(alg: Algebra, x: Tensor) -> Tensor:
    r"""Clifford conjugate :math:`\bar x = \tilde{\hat x}`: grade :math:`k` times :math:`(-1)^{k(k+1)/2}`."""
    return _scale(alg, x, "conjugate")


def grade(alg: Algebra, x: Tensor, k: int | Iterable[int]) -> Tensor:
    """Projection :math:`\\langle x\\rangle_k` onto one grade or a set of grades.

    Returns a full ``(..., dim)`` tensor with the other grades zeroed; use
    ``x[..., alg.grade_slice(k)]`` for the components of one grade alone.
    """
    alg.check_dim(x, "grade")
    ks = [k] if isinstance(k, int) else sorted(set(k))
    for kk in ks:
        if not isinstance(kk, int) or not 0 <= kk <= alg.n:
            raise ValueError(f"grade: grades must be ints in [0, {alg.n}] for {alg!r}, got {k!r}")
    mask = alg.constant("grade_mask_" + ",".join(map(str, ks)), x.device, x.dtype)
    return x * mask


def _complement(alg: Algebra, x: Tensor, sign: str, name: str) -> Tensor:
    alg.check_dim(x, name)
    perm = alg.constant("complement_perm", x.device, torch.int64)
    return x.index_select(-1, perm) * alg.constant(sign, x.device, x.dtype)


def dual(alg: Algebra, x: Tensor) -> Tensor:
    r"""Right complement: the dual that needs no metric.

    For every basis blade :math:`e_A`, :math:`\mathrm{dual}(e_A) = \pm e_{A^c}` with the
    sign chosen so that :math:`e_A \wedge \mathrm{dual}(e_A) = I`, where :math:`I` is the
    last blade (e.g. ``e0123`` in PGA). It is linear, defined in every signature
    (degenerate ones included) and maps grade :math:`k` to grade :math:`n-k`.
    Shape (..., dim).
    """
    return _complement(alg, x, "dual_sign", "dual")


def undual(alg: Algebra, x: Tensor) -> Tensor:
    r"""Left complement, the inverse of :func:`dual`.

    :math:`\mathrm{undual}(e_A) \wedge e_A = I`; ``undual(dual(x)) == x`` and
    ``dual(undual(x)) == x``. Equals :func:`dual` when ``n`` is odd.
    """
    return _complement(alg, x, "undual_sign", "undual")


def inner_product(alg: Algebra, x: Tensor, y: Tensor, keepdim: bool = False) -> Tensor:
    r"""The invariant scalar product :math:`\langle \tilde x y \rangle_0`.

    For basis blades :math:`\langle \tilde e_A e_B\rangle_0 = \delta_{AB} \prod_{i \in A} m_i`,
    so blades with a degenerate factor drop out (GATr's inner product in PGA; the
    Minkowski product on STA vectors). Invariant under the twisted versor action.

    Parameters
    ----------
    x, y : Tensor, shape (..., dim)
    keepdim : bool
        Keep a trailing axis of size 1.

    Returns
    -------
    Tensor, shape (...) or (..., 1)
    """
    alg.check_dim(x, "inner_product x")
    alg.check_dim(y, "inner_product y")
    try:
        torch.broadcast_shapes(x.shape, y.shape)
    except RuntimeError:
        raise ValueError(
            f"inner_product: batch shapes {tuple(x.shape[:-1])} and {tuple(y.shape[:-1])} do not "
            f"broadcast (operand shapes {tuple(x.shape)} and {tuple(y.shape)})"
        ) from None
    dtype = torch.promote_types(x.dtype, y.dtype)
    w = alg.constant("inner", x.device, dtype)
    return ((x * w) * y).sum(-1, keepdim=keepdim)


class _SafeSqrt(torch.autograd.Function):
    """``sqrt(max(q, 0))`` with gradient 0 (not inf / NaN) where ``q <= 0``."""

    @staticmethod
    def forward(ctx, q: Tensor) -> Tensor:
        out = q.clamp_min(0).sqrt()
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (out,) = ctx.saved_tensors
        pos = out > 0
        return torch.where(pos, grad / (2 * torch.where(pos, out, torch.ones_like(out))), 0.0)


def safe_sqrt(q: Tensor) -> Tensor:
    """Square root of ``max(q, 0)`` whose gradient at 0 is 0 instead of inf (never NaN)."""
    if torch.compiler.is_compiling():
        pos = q > 0
        return torch.where(pos, torch.where(pos, q, torch.ones_like(q)).sqrt(), 0.0)
    return _SafeSqrt.apply(q)


def norm(alg: Algebra, x: Tensor, keepdim: bool = False) -> Tensor:
    r"""Norm :math:`\sqrt{|\langle \tilde x x\rangle_0|}` (degenerate directions dropped).

    Null multivectors (a pure ``e0`` in PGA, a lightlike STA vector) have norm 0 with
    gradient 0: never NaN. Shape (...) or (..., 1).
    """
    return safe_sqrt(inner_product(alg, x, x, keepdim=keepdim).abs())
