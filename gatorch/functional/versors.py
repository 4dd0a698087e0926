"""Versors: the group action, inverses, exponentials of bivectors and random group elements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gatorch.functional.products import gp, outer
from gatorch.functional.unary import grade, inner_product, involute, reverse

if TYPE_CHECKING:
    from gatorch.algebras.algebra import AlgebraData as Algebra

__all__ = ["exp", "inverse", "random_vector", "random_versor", "sandwich"]


def _rtol(dtype: torch.dtype) -> float:
    return 1e3 * torch.finfo(dtype).eps


def _versor_check(alg: Algebra, w: Tensor, name: str) -> None:
    """Raise ``ValueError`` unless every ``w`` is an invertible versor (``w ~w`` a non-zero scalar)."""
    if torch.compiler.is_compiling():
        return
    with torch.no_grad():
        ww = gp(alg, w, reverse(alg, w))
        scale = (w * w).sum(-1).clamp_min(torch.finfo(w.dtype).tiny)
        residual = (ww[..., 1:].abs().amax(-1) / scale) if alg.dim > 1 else torch.zeros_like(scale)
        scalar = ww[..., 0].abs() / scale
        tol = _rtol(w.dtype)
        bad_res = float(residual.max()) if residual.numel() else 0.0
        bad_scalar = float(scalar.min()) if scalar.numel() else 1.0
    if bad_res > tol:
        raise ValueError(
            f"{name}: expected invertible versors (w * reverse(w) a scalar), but w * reverse(w) "
            f"has a non-scalar part of relative size {bad_res:.2e} (tolerance {tol:.1e})"
        )
    if bad_scalar <= tol:
        raise ValueError(
            f"{name}: expected invertible versors, but w * reverse(w) = 0 (relative size "
            f"{bad_scalar:.2e}): a null versor, e.g. a degenerate vector, has no inverse"
        )


def inverse(alg: Algebra, w: Tensor, check: bool = True) -> Tensor:
    r"""Inverse of versors: :math:`w^{-1} = \tilde w / \langle w \tilde w\rangle_0`.

    Parameters
    ----------
    w : Tensor, shape (..., dim)
        Versors (products of invertible vectors).
    check : bool
        Verify (eagerly; skipped under ``torch.compile``) that :math:`w\tilde w` is a
        non-zero scalar and raise ``ValueError`` otherwise.

    Returns
    -------
    Tensor, shape (..., dim)
    """
    alg.check_dim(w, "inverse")
    if check:
        _versor_check(alg, w, "inverse")
    # <w ~w>_0 = sum_A w_A^2 <e_A ~e_A>_0 = inner_product(w, w)
    return reverse(alg, w) / inner_product(alg, w, w, keepdim=True)


def sandwich(alg: Algebra, w: Tensor, x: Tensor, check: bool = True) -> Tensor:
    r"""The twisted versor action :math:`\rho_w(x) = w\, \hat x^{|w|}\, w^{-1}`.

    ``|w|`` is the parity of the versor: odd versors (reflections) act with the grade
    involution, so that a reflection in a vector ``v`` maps vectors as
    :math:`x \mapsto -v x v^{-1}`. Written without a branch as
    :math:`(w_+ x + w_- \hat x) w^{-1}` (a versor has only one of its even part
    :math:`w_+` and odd part :math:`w_-`). It is an algebra automorphism that
    preserves grades, and every equivariant layer commutes with it.

    Parameters
    ----------
    w : Tensor, shape (..., dim)
        Versors; batch dimensions broadcast with ``x``.
    x : Tensor, shape (..., dim)
    check : bool
        Verify that ``w`` are invertible versors (eagerly), see :func:`inverse`.

    Returns
    -------
    Tensor, shape (broadcast(...), dim)
    """
    alg.check_dim(w, "sandwich w")
    alg.check_dim(x, "sandwich x")
    w_inv = inverse(alg, w, check=check)
    odd = [k for k in range(alg.n + 1) if k % 2 == 1]
    w_odd = grade(alg, w, odd)
    w_even = w - w_odd
    left = gp(alg, w_even, x) + gp(alg, w_odd, involute(alg, x))
    return gp(alg, left, w_inv)


def _even_series(beta: Tensor, odd: bool) -> Tensor:
    """``sum_k beta^k / (2k)!`` (``odd=False``) or ``/ (2k+1)!`` (``odd=True``), |beta| small."""
    out = torch.ones_like(beta)
    term = torch.ones_like(beta)
    for k in range(1, 6):
        denom = (2 * k) * (2 * k + 1) if odd else (2 * k - 1) * (2 * k)
        term = term * beta / denom
        out = out + term
    return out


def _exp_simple(alg: Algebra, b: Tensor) -> Tensor:
    """``exp(B) = c(beta) + s(beta) B`` with ``beta = B^2`` a scalar (B simple)."""
    beta = -inner_product(alg, b, b, keepdim=True)  # <B B>_0 = -<~B B>_0 for a bivector
    small = beta.abs() < 1e-2
    a = torch.where(small, torch.ones_like(beta), beta.abs()).sqrt()
    c_big = torch.where(beta < 0, torch.cos(a), torch.cosh(a))
    s_big = torch.where(beta < 0, torch.sin(a), torch.sinh(a)) / a
    c = torch.where(small, _even_series(beta, odd=False), c_big)
    s = torch.where(small, _even_series(beta, odd=True), s_big)
    out = s * b
    return torch.cat([out[..., :1] + c, out[..., 1:]], dim=-1)


def _exp_matrix(alg: Algebra, b: Tensor) -> Tensor:
    """``exp(B)`` for any bivector: the matrix exponential of left multiplication by ``B``.

    ``exp(B) = exp(L_B) 1``, with ``L_B`` the ``(dim, dim)`` matrix of ``x -> B x`` built
    from the sparse table's grade-2 terms (each (row, column) pair has one term);
    ``torch.linalg.matrix_exp`` (scaling and squaring of a Padé approximant) does the rest.
    """
    pos = alg.constant("bivector_lmul_pos", b.device, torch.int64)
    idx_i = alg.constant("bivector_lmul_src", b.device, torch.int64)
    sign = alg.constant("bivector_lmul_sign", b.device, b.dtype)
    flat = torch.zeros(*b.shape[:-1], alg.dim * alg.dim, dtype=b.dtype, device=b.device)
    flat = flat.index_copy(-1, pos, b.index_select(-1, idx_i) * sign)
    return torch.linalg.matrix_exp(flat.unflatten(-1, (alg.dim, alg.dim)))[..., 0]


def exp(alg: Algebra, b: Tensor) -> Tensor:
    r"""Exponential of bivectors: rotors, boosts, translators and motors.

    For a simple bivector (:math:`B \wedge B = 0`, so :math:`B^2 = \beta` is a scalar)
    the closed form :math:`\exp B = c(\beta) + s(\beta) B` holds in every signature,
    with :math:`c = \cos\sqrt{-\beta}, s = \sin\sqrt{-\beta}/\sqrt{-\beta}` for
    :math:`\beta < 0` (rotations), :math:`\cosh, \sinh` for :math:`\beta > 0` (boosts)
    and :math:`c = s = 1` for :math:`\beta = 0` (translations), evaluated by series near
    0 so gradients stay finite. Non-simple bivectors (screw motions, double rotations,
    ``n >= 4``) use the matrix exponential of left multiplication by :math:`B`.

    Parameters
    ----------
    b : Tensor, shape (..., dim)
        Bivectors (components of other grades must be zero).

    Returns
    -------
    Tensor, shape (..., dim)
        Even versors with :math:`\exp(B)\exp(-B) = 1`.
    """
    alg.check_dim(b, "exp")
    if not torch.compiler.is_compiling():
        other = (b - grade(alg, b, 2)).abs().reshape(-1, alg.dim).amax(0)
        if bool((other > 0).any()):
            bad = sorted({alg.grades[i] for i in torch.nonzero(other > 0).flatten().tolist()})
            raise ValueError(
                f"exp: expected bivectors (only grade-2 components non-zero), got non-zero "
                f"components of grades {bad}"
            )
    closed = _exp_simple(alg, b)
    if alg.n < 4:
        return closed  # every bivector is simple
    wedge = outer(alg, b, b).abs().amax(-1, keepdim=True)
    scale = (b * b).sum(-1, keepdim=True)
    simple = wedge <= _rtol(b.dtype) * scale
    if not torch.compiler.is_compiling() and bool(simple.all()):
        return closed
    return torch.where(simple, closed, _exp_matrix(alg, b))


def random_vector(
    alg: Algebra,
    batch_shape: Sequence[int] = (),
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Random invertible vectors, normalised so that :math:`|v^2| = 1`.

    Components are Gaussian; candidates whose square is small compared with their
    non-degenerate Euclidean length (near-null vectors of indefinite metrics) are
    redrawn, which keeps boosts bounded. Degenerate components stay Gaussian (they
    carry the translations of PGA).

    Returns
    -------
    Tensor, shape (*batch_shape, dim)
    """
    p, q, _ = alg.signature
    if p + q == 0:
        raise ValueError(f"random_vector: {alg!r} has no invertible vectors (all basis vectors are null)")
    dtype = dtype or torch.get_default_dtype()
    shape = tuple(int(s) for s in batch_shape)
    metric = torch.tensor(alg.metric, dtype=dtype, device=device)
    nondeg = metric != 0
    v = torch.randn(*shape, alg.n, generator=generator, dtype=dtype, device=device)
    for _ in range(1000):
        quad = (v * v * metric).sum(-1)
        eucl = (v * v * nondeg).sum(-1)
        bad = quad.abs() < 0.2 * eucl.clamp_min(1e-3)
        if not bool(bad.any()):
            break
        fresh = torch.randn(*shape, alg.n, generator=generator, dtype=dtype, device=device)
        v = torch.where(bad[..., None], fresh, v)
    quad = (v * v * metric).sum(-1, keepdim=True)
    v = v / quad.abs().sqrt()
    out = torch.zeros(*shape, alg.dim, dtype=dtype, device=device)
    out[..., alg.grade_slice(1)] = v
    return out


def random_versor(
    alg: Algebra,
    batch_shape: Sequence[int] = (),
    spin: bool = False,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Random versors: products of random normalised invertible vectors.

    ``spin=True`` multiplies an even number of vectors (``n`` rounded up to even), so
    the versors lie in the Spin group. ``spin=False`` multiplies one more vector for a
    random half of the batch, giving odd versors (reflections, improper elements) too.

    Returns
    -------
    Tensor, shape (*batch_shape, dim)
    """
    shape = tuple(int(s) for s in batch_shape)
    count = alg.n + alg.n % 2
    kw: dict[str, Any] = dict(generator=generator, dtype=dtype, device=device)
    w = random_vector(alg, shape, **kw)
    for _ in range(count - 1):
        w = gp(alg, w, random_vector(alg, shape, **kw))
    if not spin:
        v = random_vector(alg, shape, **kw)
        odd = torch.rand(shape, generator=generator, device=device) < 0.5
        one = torch.zeros_like(v)
        one[..., 0] = 1
        w = gp(alg, w, torch.where(odd[..., None], v, one))
    return w
