r"""Conformal geometric algebra :math:`Cl(4, 1)` (``gatorch.CGA3``): points, spheres, planes.

All functions work on the preset ``CGA3``: basis vectors ``e1, e2, e3, e4`` square to +1,
``e5`` to -1 (32 blades in shortlex order), take and return torch tensors with any
leading batch dimensions and any floating dtype, and are differentiable. Versors act by
the twisted action :math:`x \mapsto w\, \hat x^{|w|} w^{-1}` (``CGA3.sandwich``): rotations,
reflections, translations, dilations and inversions of 3-space.

Conventions (Dorst, Fontijne and Mann, *Geometric Algebra for Computer Science*):

* the null vectors :math:`e_\infty = e_4 + e_5` (point at infinity) and
  :math:`e_o = \tfrac12 (e_5 - e_4)` (origin), with :math:`e_\infty^2 = e_o^2 = 0` and
  :math:`e_\infty \cdot e_o = -1` (:func:`null_basis`);
* **point** (up-projection) :math:`x \mapsto X = x + \tfrac12 |x|^2 e_\infty + e_o`, a null
  vector with :math:`X \cdot Y = -\tfrac12 |x - y|^2`;
* **dual sphere** of centre :math:`c` and radius :math:`r`:
  :math:`\sigma = C - \tfrac12 r^2 e_\infty` with :math:`C` the point of :math:`c`, so
  :math:`X \cdot \sigma = \tfrac12 (r^2 - |x - c|^2)`, zero on the sphere, and :math:`\sigma^2 = r^2`;
* **dual plane** :math:`\{x : n \cdot x = \delta\}` is :math:`\pi = n + \delta\, e_\infty`
  (:math:`X \cdot \pi = n \cdot x - \delta`); for a unit normal, :math:`\delta` is the signed
  distance of the plane from the origin. Note the sign: PGA's planes
  (:func:`gatorch.interface.pga.embed_plane`) are written :math:`n \cdot x + d = 0`.

Isometries map all three exactly: for the versor :math:`g` of :math:`x \mapsto Mx + t`
(:math:`M \in O(3)`, reflections included) ``sandwich(g, embed_point(x)) == embed_point(Mx + t)``,
likewise for spheres (centre moved, radius kept) and planes
(``embed_plane(M n, delta + (M n)·t)``). Dilations rescale the homogeneous weight, which
:func:`extract_point` and :func:`extract_sphere` divide out.

Geometric preconditions are checked with ``ValueError`` (radii >= 0, non-zero plane
normals); these value checks read the tensors (a host sync on GPU) and are skipped while
compiling (``torch.compiler.is_compiling()``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from gatorch.functional.algebra import CGA3
from gatorch.functional.unary import safe_sqrt
from gatorch.interface._common import (
    check_multivector,
    check_nonnegative,
    check_nonzero,
    check_tensor,
    gather,
    linear_form,
    scatter,
)

__all__ = [
    "ALGEBRA",
    "embed_plane",
    "embed_point",
    "embed_sphere",
    "extract_plane",
    "extract_point",
    "extract_sphere",
    "null_basis",
]

#: The algebra every function of this module works in: ``Cl(4, 1)``.
ALGEBRA = CGA3

_EUCLID = (("e1", 1.0), ("e2", 1.0), ("e3", 1.0))
# e_inf = e4 + e5 and e_o = (e5 - e4) / 2 as (name, coefficient) terms
_EINF = (("e4", 1.0), ("e5", 1.0))
_EO = (("e4", -0.5), ("e5", 0.5))
# weight  -X . e_inf = X5 - X4   and   -X . e_o = (X4 + X5) / 2
_WEIGHT = (("e4", -1.0), ("e5", 1.0))
_MINUS_DOT_EO = (("e4", 0.5), ("e5", 0.5))


def _mv(x: object, fn: str) -> Tensor:
    return check_multivector(ALGEBRA, x, f"cga.{fn}")


def _null(terms: tuple[tuple[str, float], ...], like: Tensor) -> Tensor:
    """The vector ``sum coef * e_name`` as a (32,) tensor like ``like``."""
    out = like.new_zeros(ALGEBRA.dim)
    for name, coef in terms:
        out[ALGEBRA.index(name)] += coef
    return out


def null_basis(
    dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> tuple[Tensor, Tensor]:
    r"""The null vectors ``(e_o, e_inf)``: :math:`e_o = \tfrac12(e_5 - e_4)`, :math:`e_\infty = e_4 + e_5`.

    Returns
    -------
    e_o, e_inf : Tensor, shape (32,) each
    """
    like = torch.zeros((), dtype=dtype or torch.get_default_dtype(), device=device)
    return _null(_EO, like), _null(_EINF, like)


def _sq(x: Tensor) -> Tensor:
    return (x * x).sum(-1, keepdim=True)


def _up(euclid: Tensor, infinity_coef: Tensor) -> Tensor:
    """``euclid + infinity_coef * e_inf + e_o``, shape (..., 32)."""
    e_o, e_inf = null_basis(euclid.dtype, euclid.device)
    return scatter(ALGEBRA, euclid, _EUCLID) + infinity_coef * e_inf + e_o


def embed_point(coordinates: Tensor) -> Tensor:
    r"""Conformal points (up-projection): :math:`x \mapsto x + \tfrac12 |x|^2 e_\infty + e_o`.

    Parameters
    ----------
    coordinates : Tensor, shape (..., 3)

    Returns
    -------
    Tensor, shape (..., 32)
        Null vectors of weight :math:`-X \cdot e_\infty = 1`.
    """
    x = check_tensor(coordinates, 3, "cga.embed_point", "coordinates", "x, y, z")
    return _up(x, 0.5 * _sq(x))


def extract_point(multivector: Tensor) -> Tensor:
    r"""Euclidean coordinates of conformal points (down-projection).

    Normalise by the weight :math:`-X \cdot e_\infty = X_5 - X_4` and keep the
    ``e1, e2, e3`` part: :math:`x = (X_1, X_2, X_3) / (X_5 - X_4)`. Any non-zero multiple
    of :func:`embed_point` (e.g. after a dilation) gives the same point; the other
    components are not checked.

    Parameters
    ----------
    multivector : Tensor, shape (..., 32)

    Returns
    -------
    Tensor, shape (..., 3)
    """
    mv = _mv(multivector, "extract_point")
    return gather(ALGEBRA, mv, _EUCLID) / linear_form(ALGEBRA, mv, _WEIGHT)


def embed_sphere(center: Tensor, radius: Tensor) -> Tensor:
    r"""Dual spheres: :math:`\sigma = C - \tfrac12 r^2 e_\infty` with :math:`C` = ``embed_point(center)``.

    A point :math:`x` is on the sphere iff :math:`X \cdot \sigma = \tfrac12(r^2 - |x-c|^2) = 0`.
    Radius 0 gives the point itself.

    Parameters
    ----------
    center : Tensor, shape (..., 3)
    radius : Tensor, shape (..., 1)
        Radii :math:`r \ge 0`. Batch dimensions broadcast with ``center``.

    Returns
    -------
    Tensor, shape (..., 32)
        Vectors of weight 1 with :math:`\sigma^2 = r^2`.

    Raises
    ------
    ValueError
        If a radius is negative: the formula only sees :math:`r^2`, so :math:`-r` would
        silently give the sphere of radius :math:`r`. (An imaginary sphere, :math:`\sigma^2 =
        -\rho^2 < 0`, is ``embed_point(center) + 0.5 * rho**2 * e_inf``.) A value check,
        skipped while compiling.
    """
    c = check_tensor(center, 3, "cga.embed_sphere", "center")
    r = check_tensor(radius, 1, "cga.embed_sphere", "radius")
    check_nonnegative(r, "cga.embed_sphere", "radius")
    return _up(c, 0.5 * (_sq(c) - r * r))


def extract_sphere(multivector: Tensor) -> tuple[Tensor, Tensor]:
    r"""Centre and radius of dual spheres.

    With the weight :math:`w = -\sigma \cdot e_\infty`: centre :math:`(\sigma_1, \sigma_2,
    \sigma_3) / w`, radius :math:`\sqrt{\sigma^2} / |w|`. Scale-invariant. The radius is
    non-negative; imaginary spheres (:math:`\sigma^2 < 0`) get radius 0 (gradient 0, no NaN).

    Parameters
    ----------
    multivector : Tensor, shape (..., 32)

    Returns
    -------
    center : Tensor, shape (..., 3)
    radius : Tensor, shape (..., 1)
    """
    mv = _mv(multivector, "extract_sphere")
    w = linear_form(ALGEBRA, mv, _WEIGHT)
    vec = mv[..., ALGEBRA.grade_slice(1)]
    metric = torch.tensor(ALGEBRA.metric, dtype=mv.dtype, device=mv.device)
    square = (vec * vec * metric).sum(-1, keepdim=True)
    return gather(ALGEBRA, mv, _EUCLID) / w, safe_sqrt(square / (w * w))


def embed_plane(normal: Tensor, distance: Tensor) -> Tensor:
    r"""Dual planes :math:`\{x : n \cdot x = \delta\}`: :math:`\pi = n + \delta\, e_\infty`.

    Parameters
    ----------
    normal : Tensor, shape (..., 3)
        Normals :math:`n` (any non-zero length; the orientation is kept).
    distance : Tensor, shape (..., 1)
        :math:`\delta`, the signed distance from the origin when :math:`|n| = 1`. Batch
        dimensions broadcast with ``normal``.

    Returns
    -------
    Tensor, shape (..., 32)

    Raises
    ------
    ValueError
        If a normal is the zero vector (:math:`\delta\, e_\infty` is no plane). A value
        check, skipped while compiling.
    """
    n = check_tensor(normal, 3, "cga.embed_plane", "normal")
    d = check_tensor(distance, 1, "cga.embed_plane", "distance")
    check_nonzero(n, "cga.embed_plane", "normal")
    return scatter(ALGEBRA, n, _EUCLID) + d * null_basis(d.dtype, d.device)[1]


def extract_plane(multivector: Tensor) -> tuple[Tensor, Tensor]:
    r"""Normal and distance ``(n, delta)`` of dual planes :math:`\pi = n + \delta e_\infty`, not normalised.

    :math:`n = (\pi_1, \pi_2, \pi_3)`, :math:`\delta = -\pi \cdot e_o = \tfrac12(\pi_4 + \pi_5)`.

    Parameters
    ----------
    multivector : Tensor, shape (..., 32)

    Returns
    -------
    normal : Tensor, shape (..., 3)
    distance : Tensor, shape (..., 1)
    """
    mv = _mv(multivector, "extract_plane")
    return gather(ALGEBRA, mv, _EUCLID), linear_form(ALGEBRA, mv, _MINUS_DOT_EO)
