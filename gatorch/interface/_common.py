"""Shared helpers of the interface modules: argument checks, scatter / gather by blade name, quaternions.

Nothing here hard-codes a component index: every position is looked up by blade name
in the algebra (``alg.index("e123")``), so the helpers serve every algebra alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gatorch.functional.unary import safe_sqrt

if TYPE_CHECKING:
    from gatorch.functional.algebra import Algebra

__all__: list[str] = []

# A blade term: (blade name, sign). ``_scatter`` writes ``sign * value`` onto the blade,
# ``_gather`` reads ``sign * component``: the two are inverse to each other.
Terms = Sequence[tuple[str, float]]


def check_tensor(x: object, width: int, fn: str, arg: str, what: str = "") -> Tensor:
    """Check that ``x`` is a floating tensor of shape ``(..., width)`` and return it.

    Raises ``TypeError`` for non-tensors and non-floating dtypes, ``ValueError`` for a
    wrong last dimension; both name the expected and the received shape / dtype.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{fn}: {arg} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 0 or x.shape[-1] != width:
        desc = f" ({what})" if what else ""
        raise ValueError(f"{fn}: expected {arg} of shape (..., {width}){desc}, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{fn}: expected a floating-point {arg}, got dtype {x.dtype}")
    return x


def check_matrix(x: object, size: int, fn: str, arg: str) -> Tensor:
    """Check that ``x`` is a floating tensor of shape ``(..., size, size)`` and return it."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{fn}: {arg} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < 2 or tuple(x.shape[-2:]) != (size, size):
        raise ValueError(f"{fn}: expected {arg} of shape (..., {size}, {size}), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{fn}: expected a floating-point {arg}, got dtype {x.dtype}")
    return x


# -- value checks (geometric preconditions) --------------------------------------------------------
# They read tensor values, so each one syncs the host with the device; they are skipped while
# compiling (torch.compiler.is_compiling()) so that every embed_* traces into one graph.


def _where(bad: Tensor) -> str:
    """``"k of n item(s), the first at batch index (i, ...)"`` for a boolean mask of bad items."""
    first = tuple(int(i) for i in bad.nonzero()[0].tolist())
    return f"{int(bad.sum())} of {bad.numel()} item(s), the first at batch index {first}"


def check_nonzero(x: Tensor, fn: str, arg: str) -> None:
    """Value check: no ``x[..., :]`` is the zero vector (exactly; any non-zero length is fine).

    ``ValueError`` naming the count and the first batch index of the zero vectors. Skipped
    while compiling.
    """
    if torch.compiler.is_compiling():
        return
    with torch.no_grad():
        bad = (x.detach() == 0).all(-1)
        if bool(bad.any()):
            raise ValueError(f"{fn}: expected a non-zero {arg}, got the zero vector for {_where(bad)}")


def check_nonnegative(x: Tensor, fn: str, arg: str) -> None:
    """Value check: every entry of ``x`` is ``>= 0`` (NaN passes through). Skipped while compiling."""
    if torch.compiler.is_compiling():
        return
    with torch.no_grad():
        bad = (x.detach() < 0).any(-1)
        if bool(bad.any()):
            worst = float(x.detach().min())
            raise ValueError(
                f"{fn}: expected {arg} >= 0, got {arg} = {worst:g} (the smallest) for {_where(bad)}"
            )


def default_atol(dtype: torch.dtype) -> float:
    """The default tolerance of the orthogonality check: ``max(1e-4, 10 * eps(dtype))``."""
    return max(1e-4, 10 * torch.finfo(dtype).eps)


def check_atol(atol: object, fn: str) -> float | None:
    """``atol`` as a float (a real number >= 0) or None; ``TypeError`` / ``ValueError`` otherwise."""
    if atol is None:
        return None
    if isinstance(atol, bool) or not isinstance(atol, (int, float)):
        raise TypeError(f"{fn}: expected atol as a float >= 0 or None, got {type(atol).__name__} {atol!r}")
    if not atol >= 0:
        raise ValueError(f"{fn}: expected atol >= 0, got {atol!r}")
    return float(atol)


def check_orthogonal(m: Tensor, fn: str, arg: str, atol: float | None) -> None:
    """Value check: ``max |M^T M - I| <= atol`` (entrywise) for every matrix of ``m``.

    Orthogonal matrices have ``det = +1`` or ``-1``: reflections pass. ``atol=None``: see
    :func:`default_atol`. ``ValueError`` naming the tolerance, the largest deviation and the
    first offending batch index; NaN or inf entries fail. Skipped while compiling.
    """
    if torch.compiler.is_compiling():
        return
    tol = default_atol(m.dtype) if atol is None else atol
    with torch.no_grad():
        mf = m.detach().to(torch.promote_types(m.dtype, torch.float32))
        eye = torch.eye(mf.shape[-1], dtype=mf.dtype, device=mf.device)
        err = (mf.mT @ mf - eye).abs().amax((-2, -1))
        bad = ~(err <= tol)  # nan counts as bad
        if bool(bad.any()):
            worst = float(err[bad].max())
            raise ValueError(
                f"{fn}: expected orthogonal {arg} (max |M^T M - I| <= atol = {tol:g}), got "
                f"max |M^T M - I| = {worst:.3g} for {_where(bad)}"
            )


def check_multivector(alg: Algebra, x: object, fn: str) -> Tensor:
    """Check that ``x`` is a floating ``(..., alg.dim)`` tensor (naming the algebra) and return it."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{fn}: expected a torch.Tensor multivector, got {type(x).__name__}")
    alg.check_dim(x, fn)
    return x


def scatter(alg: Algebra, values: Tensor, terms: Terms) -> Tensor:
    """Multivectors with ``terms[i] = (name, sign)`` set to ``sign * values[..., i]``, all else 0.

    Out of place and differentiable; shape ``(..., alg.dim)``, dtype and device of ``values``.
    """
    idx = torch.tensor([alg.index(name) for name, _ in terms], device=values.device)
    signs = torch.tensor([s for _, s in terms], dtype=values.dtype, device=values.device)
    out = values.new_zeros((*values.shape[:-1], alg.dim))
    return out.index_copy(-1, idx, values * signs)


def gather(alg: Algebra, x: Tensor, terms: Terms) -> Tensor:
    """Components ``sign * x[..., alg.index(name)]`` for ``(name, sign)`` in ``terms``: shape ``(..., k)``."""
    idx = torch.tensor([alg.index(name) for name, _ in terms], device=x.device)
    signs = torch.tensor([s for _, s in terms], dtype=x.dtype, device=x.device)
    return x.index_select(-1, idx) * signs


def linear_form(alg: Algebra, x: Tensor, terms: Terms) -> Tensor:
    """``sum sign * x[..., alg.index(name)]`` over ``terms``: shape ``(..., 1)``."""
    return gather(alg, x, terms).sum(-1, keepdim=True)


def blade(alg: Algebra, name: str, like: Tensor) -> Tensor:
    """The basis blade ``name`` as a ``(alg.dim,)`` tensor with the dtype and device of ``like``."""
    out = like.new_zeros(alg.dim)
    out[alg.index(name)] = 1
    return out


# -- rotations ---------------------------------------------------------------------------------

# Hamilton quaternion w + x i + y j + z k  <->  rotor w - x e23 + y e13 - z e12, i.e.
# i = -e23 = e32, j = -e31 = e13, k = -e12 = e21. With this map (and ij = k) the rotor
# acts on vectors as x -> R x ~R exactly as the quaternion acts on pure quaternions,
# v -> q v q*, whose matrix is the usual one (see quaternion_to_matrix).
ROTOR_TERMS: Terms = (("1", 1.0), ("e23", -1.0), ("e13", 1.0), ("e12", -1.0))


def quaternion_to_rotor(alg: Algebra, quaternion: Tensor) -> Tensor:
    """Rotor (..., dim) of Hamilton quaternions (..., 4) in ``(w, x, y, z)`` order; not normalised."""
    return scatter(alg, quaternion, ROTOR_TERMS)


def rotor_to_quaternion(alg: Algebra, rotor: Tensor) -> Tensor:
    """Unit quaternions ``(w, x, y, z)`` of the e0-free even part of ``rotor`` (normalised)."""
    q = gather(alg, rotor, ROTOR_TERMS)
    return q / safe_sqrt((q * q).sum(-1, keepdim=True))


def quaternion_to_matrix(quaternion: Tensor) -> Tensor:
    """Rotation matrices (..., 3, 3) of (not necessarily unit) Hamilton quaternions ``(w, x, y, z)``."""
    w, x, y, z = quaternion.unbind(-1)
    s = 2 / (quaternion * quaternion).sum(-1)
    rows = (
        (1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)),
        (s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)),
        (s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)),
    )
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def matrix_to_quaternion(matrix: Tensor) -> Tensor:
    """Unit quaternions ``(w, x, y, z)`` of rotation matrices (..., 3, 3); the overall sign is arbitrary.

    Shepperd's method, branch-free: the four candidate formulas are evaluated and the
    best conditioned one (largest ``|w|, |x|, |y|, |z|``) is kept per item, so it is
    accurate for every rotation, 180-degree ones included.
    """
    m = matrix
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # 4 q_a^2 for a = w, x, y, z
    sq = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    q_abs = safe_sqrt(sq)  # 2 |q_a|
    # candidate a: row a of  4 q_a q_b
    cands = torch.stack(
        [
            torch.stack([sq[..., 0], m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, sq[..., 1], m10 + m01, m02 + m20], -1),
            torch.stack([m02 - m20, m10 + m01, sq[..., 2], m12 + m21], -1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, sq[..., 3]], -1),
        ],
        -2,
    )
    cands = cands / (2 * q_abs.clamp_min(0.1))[..., None]  # row a / (4 |q_a|) = sign(q_a) q
    best = q_abs.argmax(-1, keepdim=True)[..., None].expand(*q_abs.shape[:-1], 1, 4)
    q = cands.gather(-2, best).squeeze(-2)
    return q / safe_sqrt((q * q).sum(-1, keepdim=True))


def orthogonal_to_versor(alg: Algebra, matrix: Tensor) -> Tensor:
    """Versors (..., dim) of orthogonal 3x3 matrices acting on ``e1, e2, e3`` of ``alg``.

    ``det = +1``: the rotor of the rotation. ``det = -1``: ``M = (-M) (-1)``, so the versor is
    the rotor of ``-M`` times ``e123``, whose twisted action is the point reflection ``x -> -x``.
    """
    # the sign of the determinant only: float32 at least (CPU has no half-precision LU)
    det = torch.linalg.det(matrix.to(torch.promote_types(matrix.dtype, torch.float32)))
    sign = torch.where(det < 0, -1.0, 1.0).to(matrix.dtype)
    rotor = quaternion_to_rotor(alg, matrix_to_quaternion(matrix * sign[..., None, None]))
    improper = alg.gp(rotor, blade(alg, "e123", rotor))
    return torch.where((det < 0)[..., None], improper, rotor)
