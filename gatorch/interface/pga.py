r"""Projective geometric algebra :math:`Cl(3, 0, 1)` (``gatorch.PGA3``): GATr's embeddings.

All functions work on the preset ``PGA3`` (blades
``1, e0, e1, e2, e3, e01, e02, e03, e12, e13, e23, e012, e013, e023, e123, e0123``; ``e0``
squares to 0), take and return torch tensors with any leading batch dimensions and any
floating dtype, and are differentiable. The group E(3) acts by versors under the twisted
action :math:`x \mapsto w\, \hat x^{|w|} w^{-1}` (``PGA3.sandwich``).

Conventions (those of GATr and of Gunn's plane-based PGA):

* **Plane** :math:`n \cdot x + d = 0` is the vector :math:`n_1 e_1 + n_2 e_2 + n_3 e_3 + d\, e_0`.
* **Point** :math:`x` is the trivector
  :math:`e_{123} - x_1 e_{023} + x_2 e_{013} - x_3 e_{012}` (the meet of the planes
  :math:`x_i - c_i = 0`); the :math:`e_{123}` coefficient is its *weight*. Points are
  homogeneous: a multiple of the embedding is the same point.
* **Direction** (ideal point, point at infinity) :math:`d` is
  :math:`-d_1 e_{023} + d_2 e_{013} - d_3 e_{012}`, a point of weight 0.
* **Translation** by :math:`t`: the translator
  :math:`1 - \tfrac12 (t_1 e_{01} + t_2 e_{02} + t_3 e_{03}) = \exp(-\tfrac12 e_0 t)`.
* **Rotation** of the Hamilton quaternion :math:`w + x i + y j + z k`: the rotor
  :math:`w - x e_{23} + y e_{13} - z e_{12}` (``i = e32, j = e13, k = e21``); it moves points
  exactly as the quaternion's rotation matrix moves vectors.
* **Reflection** in a plane: the plane's vector itself, an odd versor.

Under the twisted action of a versor :math:`g` of the motion :math:`x \mapsto Mx + t`
(:math:`M \in O(3)`):

* planes map exactly: ``sandwich(g, embed_plane(n, d)) == embed_plane(M n, d - (M n)·t)``;
* points and directions pick up :math:`\det M`, because a trivector transforms with the
  determinant of its three factors: ``sandwich(g, embed_point(x)) == det(M) * embed_point(M x + t)``
  and ``sandwich(g, embed_direction(v)) == det(M) * embed_direction(M v)``. For reflections
  (odd ``g``) the weight of a point turns negative; :func:`extract_point` divides it out, so
  ``extract_point(sandwich(g, embed_point(x))) == M x + t`` for every ``g`` (GATr does the same);
* translators and rotors map by conjugation, :math:`g T_s g^{-1} = T_{Ms}`;
* the pseudoscalar ``e0123`` changes sign under odd versors, the scalar is invariant.

Geometric preconditions are checked with ``ValueError`` (non-zero plane normals and
quaternions, orthogonal matrices within ``atol``); these value checks read the tensors (a
host sync on GPU) and are skipped while compiling (``torch.compiler.is_compiling()``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from gatorch.functional.algebra import PGA3
from gatorch.interface._common import (
    blade,
    check_atol,
    check_matrix,
    check_multivector,
    check_nonzero,
    check_orthogonal,
    check_tensor,
    gather,
    orthogonal_to_versor,
    quaternion_to_rotor,
    rotor_to_quaternion,
    scatter,
)

__all__ = [
    "ALGEBRA",
    "embed_direction",
    "embed_motion",
    "embed_plane",
    "embed_point",
    "embed_pseudoscalar",
    "embed_reflection",
    "embed_rotation",
    "embed_scalar",
    "embed_translation",
    "extract_direction",
    "extract_motion",
    "extract_plane",
    "extract_point",
    "extract_pseudoscalar",
    "extract_reflection",
    "extract_rotation",
    "extract_scalar",
    "extract_translation",
]

#: The algebra every function of this module works in: ``Cl(3, 0, 1)``.
ALGEBRA = PGA3

_POINT = (("e023", -1.0), ("e013", 1.0), ("e012", -1.0))
_WEIGHT = (("e123", 1.0),)
_NORMAL = (("e1", 1.0), ("e2", 1.0), ("e3", 1.0))
_OFFSET = (("e0", 1.0),)
_TRANSLATOR = (("e01", -0.5), ("e02", -0.5), ("e03", -0.5))
_TRANSLATOR_INV = (("e01", -2.0), ("e02", -2.0), ("e03", -2.0))
_SCALAR = (("1", 1.0),)
_PSEUDOSCALAR = (("e0123", 1.0),)


def _mv(x: object, fn: str) -> Tensor:
    return check_multivector(ALGEBRA, x, f"pga.{fn}")


# -- points and directions ----------------------------------------------------------------------
def embed_point(coordinates: Tensor) -> Tensor:
    r"""Embed Euclidean points as PGA trivectors.

    :math:`x \mapsto e_{123} - x_1 e_{023} + x_2 e_{013} - x_3 e_{012}` (GATr's convention).

    Parameters
    ----------
    coordinates : Tensor, shape (..., 3)

    Returns
    -------
    Tensor, shape (..., 16)
        Trivectors of weight 1 (``e123`` coefficient).

    Examples
    --------
    >>> import torch
    >>> from gatorch import PGA3
    >>> from gatorch.interface import pga
    >>> p = pga.embed_point(torch.tensor([1.0, 2.0, 3.0]))
    >>> t = pga.embed_translation(torch.tensor([0.5, 0.0, 0.0]))
    >>> pga.extract_point(PGA3.sandwich(t, p))
    tensor([1.5000, 2.0000, 3.0000])
    """
    x = check_tensor(coordinates, 3, "pga.embed_point", "coordinates", "x, y, z")
    return scatter(ALGEBRA, torch.cat([x, torch.ones_like(x[..., :1])], -1), _POINT + _WEIGHT)


def extract_point(multivector: Tensor, threshold: float | None = None) -> Tensor:
    r"""Euclidean coordinates of (homogeneous) PGA points.

    Reads the trivector components and divides by the weight, the ``e123`` coefficient:
    :math:`x = (-P_{023}, P_{013}, -P_{012}) / P_{123}`. So any non-zero multiple of
    :func:`embed_point`, e.g. the negative weight points get from reflections, gives the
    same coordinates. Other components are ignored.

    Parameters
    ----------
    multivector : Tensor, shape (..., 16)
    threshold : float, optional
        If given, weights with ``|w| < threshold`` are replaced by ``threshold`` (with the
        sign of ``w``) before dividing, which keeps points near infinity finite. By default
        the division is exact (ideal points give inf / nan).

    Returns
    -------
    Tensor, shape (..., 3)
    """
    mv = _mv(multivector, "extract_point")
    w = gather(ALGEBRA, mv, _WEIGHT)
    if threshold is not None:
        sign = torch.where(w < 0, -torch.ones_like(w), torch.ones_like(w))
        w = torch.where(w.abs() < threshold, sign * threshold, w)
    return gather(ALGEBRA, mv, _POINT) / w


def embed_direction(direction: Tensor) -> Tensor:
    r"""Embed directions as ideal points (points at infinity).

    :math:`v \mapsto -v_1 e_{023} + v_2 e_{013} - v_3 e_{012}`: :func:`embed_point` without
    the ``e123`` part. Invariant under translations; rotated like vectors, and, as every
    trivector, multiplied by :math:`\det M` under improper elements.

    Parameters
    ----------
    direction : Tensor, shape (..., 3)

    Returns
    -------
    Tensor, shape (..., 16)
    """
    v = check_tensor(direction, 3, "pga.embed_direction", "direction")
    return scatter(ALGEBRA, v, _POINT)


def extract_direction(multivector: Tensor) -> Tensor:
    r"""Direction of an ideal point: :math:`(-P_{023}, P_{013}, -P_{012})`, not normalised.

    The inverse of :func:`embed_direction`; the ``e123`` coefficient and all other
    components are ignored.

    Parameters
    ----------
    multivector : Tensor, shape (..., 16)

    Returns
    -------
    Tensor, shape (..., 3)
    """
    return gather(ALGEBRA, _mv(multivector, "extract_direction"), _POINT)


# -- planes and reflections ----------------------------------------------------------------------
def embed_plane(normal: Tensor, offset: Tensor) -> Tensor:
    r"""Embed oriented planes :math:`\{x : n \cdot x + d = 0\}` as PGA vectors.

    :math:`(n, d) \mapsto n_1 e_1 + n_2 e_2 + n_3 e_3 + d\, e_0`. For a unit normal,
    :math:`-d` is the signed distance of the plane from the origin along :math:`n`. The
    orientation (the sign of :math:`n`) is kept: :math:`(-n, -d)` is the opposite plane.
    A point :math:`x` lies on the plane iff ``PGA3.outer(plane, embed_point(x)) == 0``.

    Parameters
    ----------
    normal : Tensor, shape (..., 3)
        Normal vectors :math:`n` (any non-zero length).
    offset : Tensor, shape (..., 1)
        :math:`d`. Batch dimensions broadcast with ``normal``.

    Returns
    -------
    Tensor, shape (..., 16)

    Raises
    ------
    ValueError
        If a normal is the zero vector (no plane; :math:`d\, e_0` is the plane at infinity,
        which is not an oriented plane :math:`n \cdot x + d = 0`). A value check, skipped
        while compiling.
    """
    n = check_tensor(normal, 3, "pga.embed_plane", "normal")
    d = check_tensor(offset, 1, "pga.embed_plane", "offset")
    check_nonzero(n, "pga.embed_plane", "normal")
    return _plane(n, d)


def _plane(n: Tensor, d: Tensor) -> Tensor:
    """:func:`embed_plane` without the checks."""
    return scatter(ALGEBRA, n, _NORMAL) + scatter(ALGEBRA, d, _OFFSET)


def extract_plane(multivector: Tensor) -> tuple[Tensor, Tensor]:
    r"""Normal and offset of planes: ``(n, d)`` with :math:`v = n \cdot e + d\, e_0`, not normalised.

    The inverse of :func:`embed_plane`. Divide both by ``n.norm(dim=-1, keepdim=True)``
    for a unit normal and the (negated) signed distance.

    Parameters
    ----------
    multivector : Tensor, shape (..., 16)

    Returns
    -------
    normal : Tensor, shape (..., 3)
    offset : Tensor, shape (..., 1)
    """
    mv = _mv(multivector, "extract_plane")
    return gather(ALGEBRA, mv, _NORMAL), gather(ALGEBRA, mv, _OFFSET)


def embed_reflection(normal: Tensor, offset: Tensor) -> Tensor:
    r"""The versor of the reflection in the plane :math:`n \cdot x + d = 0`: the plane itself.

    Same as :func:`embed_plane`; an odd versor whose twisted action on a point is
    :math:`x \mapsto x - 2\,\frac{n \cdot x + d}{|n|^2}\, n` (scale is irrelevant for a versor).

    Parameters
    ----------
    normal : Tensor, shape (..., 3)
        Non-zero normals.
    offset : Tensor, shape (..., 1)

    Returns
    -------
    Tensor, shape (..., 16)

    Raises
    ------
    ValueError
        If a normal is the zero vector (:math:`d\, e_0` is not invertible, so no versor).
        A value check, skipped while compiling.
    """
    n = check_tensor(normal, 3, "pga.embed_reflection", "normal")
    d = check_tensor(offset, 1, "pga.embed_reflection", "offset")
    check_nonzero(n, "pga.embed_reflection", "normal")
    return _plane(n, d)


def extract_reflection(multivector: Tensor) -> tuple[Tensor, Tensor]:
    """Plane ``(normal (..., 3), offset (..., 1))`` of a reflection versor; see :func:`extract_plane`."""
    mv = _mv(multivector, "extract_reflection")
    return extract_plane(mv)


# -- translations, rotations, motions -------------------------------------------------------------
def embed_translation(translation: Tensor) -> Tensor:
    r"""Translators: :math:`t \mapsto 1 - \tfrac12 (t_1 e_{01} + t_2 e_{02} + t_3 e_{03})`.

    The even versor whose action moves every point by :math:`+t`:
    ``sandwich(embed_translation(t), embed_point(x)) == embed_point(x + t)``.

    Parameters
    ----------
    translation : Tensor, shape (..., 3)

    Returns
    -------
    Tensor, shape (..., 16)
    """
    t = check_tensor(translation, 3, "pga.embed_translation", "translation")
    return scatter(ALGEBRA, torch.cat([torch.ones_like(t[..., :1]), t], -1), _SCALAR + _TRANSLATOR)


def extract_translation(multivector: Tensor) -> Tensor:
    r"""Translation vector of translators: :math:`t_i = -2\, T_{0i} / T_{\text{scalar}}`.

    The inverse of :func:`embed_translation`; dividing by the scalar part makes it
    independent of the translator's scale. Only meaningful for pure translators (for a
    general motion use :func:`extract_motion`).

    Parameters
    ----------
    multivector : Tensor, shape (..., 16)

    Returns
    -------
    Tensor, shape (..., 3)
    """
    mv = _mv(multivector, "extract_translation")
    return gather(ALGEBRA, mv, _TRANSLATOR_INV) / gather(ALGEBRA, mv, _SCALAR)


def embed_rotation(quaternion: Tensor) -> Tensor:
    r"""Rotors of Hamilton quaternions :math:`q = w + x i + y j + z k`, given as ``(w, x, y, z)``.

    :math:`q \mapsto w - x e_{23} + y e_{13} - z e_{12}`. The rotor rotates points about the
    origin by the quaternion's rotation matrix :math:`R(q)` (the one with
    :math:`R(q) v = q v q^*`): ``sandwich(embed_rotation(q), embed_point(x)) == embed_point(R(q) x)``.
    Unit quaternions give unit rotors; other non-zero ones rotate the same way.

    Parameters
    ----------
    quaternion : Tensor, shape (..., 4)
        ``(w, x, y, z)``, scalar first; non-zero.

    Returns
    -------
    Tensor, shape (..., 16)

    Raises
    ------
    ValueError
        If a quaternion is zero (its rotor would not be invertible). A value check, skipped
        while compiling.
    """
    q = check_tensor(quaternion, 4, "pga.embed_rotation", "quaternion", "w, x, y, z")
    check_nonzero(q, "pga.embed_rotation", "quaternion")
    return quaternion_to_rotor(ALGEBRA, q)


def extract_rotation(multivector: Tensor) -> Tensor:
    r"""Unit quaternion ``(w, x, y, z)`` of the rotation part of rotors or motors.

    Reads :math:`(R_{\text{scalar}}, -R_{23}, R_{13}, -R_{12})` and normalises it. For a motor
    :math:`T R` (any even versor) this is its rotation :math:`R`, since the translation
    only adds ``e0`` components. The overall sign is that of the input (:math:`q` and
    :math:`-q` are the same rotation).

    Parameters
    ----------
    multivector : Tensor, shape (..., 16)

    Returns
    -------
    Tensor, shape (..., 4)
    """
    return rotor_to_quaternion(ALGEBRA, _mv(multivector, "extract_rotation"))


def embed_motion(matrix: Tensor, translation: Tensor, *, atol: float | None = None) -> Tensor:
    r"""The versor of the Euclidean motion :math:`x \mapsto M x + t`, :math:`M \in O(3)`.

    :math:`g = T_t V_M` with :math:`T_t` from :func:`embed_translation` and :math:`V_M` the
    rotor of :math:`M` (even) for :math:`\det M = 1`, or the rotor of :math:`-M` times
    :math:`e_{123}` (odd; :math:`e_{123}` is the point reflection :math:`x \mapsto -x`) for
    :math:`\det M = -1`. Its twisted action maps ``embed_point(x)`` to
    ``det(M) * embed_point(M x + t)`` and ``embed_plane`` exactly (see the module docstring).

    Parameters
    ----------
    matrix : Tensor, shape (..., 3, 3)
        Orthogonal matrices, :math:`\det M = \pm 1` (reflections included).
    translation : Tensor, shape (..., 3)
        Batch dimensions broadcast with ``matrix``.
    atol : float, optional
        Tolerance of the orthogonality check :math:`\max_{ij} |(M^T M - I)_{ij}| \le`
        ``atol``. Default ``max(1e-4, 10 * eps)`` of the matrix's dtype.

    Returns
    -------
    Tensor, shape (..., 16)

    Raises
    ------
    ValueError
        If a matrix is not orthogonal within ``atol``. A value check, skipped while compiling.
    """
    m = check_matrix(matrix, 3, "pga.embed_motion", "matrix")
    t = check_tensor(translation, 3, "pga.embed_motion", "translation")
    check_orthogonal(m, "pga.embed_motion", "matrix", check_atol(atol, "pga.embed_motion"))
    return ALGEBRA.gp(embed_translation(t), orthogonal_to_versor(ALGEBRA, m))


def extract_motion(versor: Tensor) -> tuple[Tensor, Tensor]:
    r"""The Euclidean motion :math:`x \mapsto M x + t` of PGA versors (even or odd).

    Read off the twisted action: :math:`t` is where the origin goes
    (:func:`extract_point`) and column :math:`j` of :math:`M` the normal of the image of the
    plane :math:`x_j = 0` (planes map without the :math:`\det` sign of points). The inverse
    of :func:`embed_motion` for any scale of the versor.

    Parameters
    ----------
    versor : Tensor, shape (..., 16)
        Invertible versors (checked by ``sandwich``: ``ValueError`` otherwise).

    Returns
    -------
    matrix : Tensor, shape (..., 3, 3)
    translation : Tensor, shape (..., 3)
    """
    g = _mv(versor, "extract_motion")
    eye = torch.eye(3, dtype=g.dtype, device=g.device)
    planes = _plane(eye, eye.new_zeros(3, 1))  # (3, 16): x_j = 0
    images = ALGEBRA.sandwich(g[..., None, :], planes)  # (..., 3, 16)
    matrix = extract_plane(images)[0].transpose(-1, -2)
    origin = blade(ALGEBRA, "e123", g)
    translation = extract_point(ALGEBRA.sandwich(g, origin.expand_as(g)))
    return matrix, translation


# -- scalars -------------------------------------------------------------------------------------
def embed_scalar(scalar: Tensor) -> Tensor:
    """Embed scalars (invariant under every versor) as the grade-0 part.

    Parameters
    ----------
    scalar : Tensor, shape (..., 1)

    Returns
    -------
    Tensor, shape (..., 16)
    """
    s = check_tensor(scalar, 1, "pga.embed_scalar", "scalar")
    return scatter(ALGEBRA, s, _SCALAR)


def extract_scalar(multivector: Tensor) -> Tensor:
    """The scalar (grade-0) component, shape (..., 1)."""
    return gather(ALGEBRA, _mv(multivector, "extract_scalar"), _SCALAR)


def embed_pseudoscalar(pseudoscalar: Tensor) -> Tensor:
    """Embed pseudoscalars as multiples of ``e0123``; they change sign under odd versors.

    Parameters
    ----------
    pseudoscalar : Tensor, shape (..., 1)

    Returns
    -------
    Tensor, shape (..., 16)
    """
    s = check_tensor(pseudoscalar, 1, "pga.embed_pseudoscalar", "pseudoscalar")
    return scatter(ALGEBRA, s, _PSEUDOSCALAR)


def extract_pseudoscalar(multivector: Tensor) -> Tensor:
    """The ``e0123`` component, shape (..., 1)."""
    return gather(ALGEBRA, _mv(multivector, "extract_pseudoscalar"), _PSEUDOSCALAR)
