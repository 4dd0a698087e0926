r"""Euclidean (vanilla) geometric algebra :math:`Cl(3, 0)` (``gatorch.VGA3``): O(3) objects.

All functions work on the preset ``VGA3`` (blades ``1, e1, e2, e3, e12, e13, e23, e123``),
take and return torch tensors with any leading batch dimensions and any floating dtype,
and are differentiable. O(3) acts by versors under the twisted action
:math:`x \mapsto w\, \hat x^{|w|} w^{-1}` (``VGA3.sandwich``); a versor :math:`w` acts on
vectors by an orthogonal matrix :math:`M_w` (:func:`extract_rotation_matrix`).

Conventions:

* **Vector** :math:`v \mapsto v_1 e_1 + v_2 e_2 + v_3 e_3`; transforms as :math:`v \mapsto M v`.
* **Axial vector** (pseudovector, e.g. angular momentum) :math:`a \mapsto a\, e_{123} =
  a_1 e_{23} - a_2 e_{13} + a_3 e_{12}`, the bivector whose Hodge dual is :math:`a`; read
  back as ``[b23, -b13, b12]`` (Cartesian ``x, y, z`` of the pseudovector, e.g. an e3nn
  ``1e`` feature in Cartesian order). The cross product embeds as the wedge product:
  ``embed_axial_vector(cross(u, v)) == outer(embed_vector(u), embed_vector(v))``. Transforms
  as :math:`a \mapsto \det(M)\, M a`.
* **Rotation** of the Hamilton quaternion :math:`w + x i + y j + z k` ``(w, x, y, z)``: the
  rotor :math:`w - x e_{23} + y e_{13} - z e_{12}`, which acts on vectors by the
  quaternion's rotation matrix (:math:`R(q) v = q v q^*`).
* **Scalar** invariant; **pseudoscalar** ``e123`` multiplied by :math:`\det M`.

Geometric preconditions are checked with ``ValueError`` (non-zero quaternions,
orthogonal matrices within ``atol``); these value checks read the tensors (a host sync on
GPU) and are skipped while compiling (``torch.compiler.is_compiling()``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from gatorch.functional.algebra import VGA3
from gatorch.interface._common import (
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
    "embed_axial_vector",
    "embed_pseudoscalar",
    "embed_rotation",
    "embed_rotation_matrix",
    "embed_scalar",
    "embed_vector",
    "extract_axial_vector",
    "extract_pseudoscalar",
    "extract_rotation",
    "extract_rotation_matrix",
    "extract_scalar",
    "extract_vector",
]

#: The algebra every function of this module works in: ``Cl(3, 0)``.
ALGEBRA = VGA3

_VECTOR = (("e1", 1.0), ("e2", 1.0), ("e3", 1.0))
_AXIAL = (("e23", 1.0), ("e13", -1.0), ("e12", 1.0))
_SCALAR = (("1", 1.0),)
_PSEUDOSCALAR = (("e123", 1.0),)


def _mv(x: object, fn: str) -> Tensor:
    return check_multivector(ALGEBRA, x, f"vga.{fn}")


def embed_vector(vector: Tensor) -> Tensor:
    r"""Embed vectors: :math:`v \mapsto v_1 e_1 + v_2 e_2 + v_3 e_3`.

    Parameters
    ----------
    vector : Tensor, shape (..., 3)

    Returns
    -------
    Tensor, shape (..., 8)
    """
    v = check_tensor(vector, 3, "vga.embed_vector", "vector")
    return scatter(ALGEBRA, v, _VECTOR)


def extract_vector(multivector: Tensor) -> Tensor:
    """The grade-1 components ``(e1, e2, e3)``, shape (..., 3)."""
    return gather(ALGEBRA, _mv(multivector, "extract_vector"), _VECTOR)


def embed_axial_vector(axial: Tensor) -> Tensor:
    r"""Embed axial vectors (pseudovectors) as bivectors.

    :math:`a \mapsto a_1 e_{23} - a_2 e_{13} + a_3 e_{12}`.

    This is :math:`a\, e_{123}` (the bivector dual to :math:`a`), so the cross product
    :math:`u \times v` embeds as :math:`u \wedge v`. Under a versor with matrix :math:`M`
    the bivector maps to the embedding of :math:`\det(M)\, M a`.

    Parameters
    ----------
    axial : Tensor, shape (..., 3)

    Returns
    -------
    Tensor, shape (..., 8)
    """
    a = check_tensor(axial, 3, "vga.embed_axial_vector", "axial")
    return scatter(ALGEBRA, a, _AXIAL)


def extract_axial_vector(multivector: Tensor) -> Tensor:
    """The axial vector ``[b23, -b13, b12]`` of the bivector part; inverse of :func:`embed_axial_vector`.

    Parameters
    ----------
    multivector : Tensor, shape (..., 8)

    Returns
    -------
    Tensor, shape (..., 3)
    """
    return gather(ALGEBRA, _mv(multivector, "extract_axial_vector"), _AXIAL)


def embed_rotation(quaternion: Tensor) -> Tensor:
    r"""Rotors of Hamilton quaternions ``(w, x, y, z)``: :math:`w - x e_{23} + y e_{13} - z e_{12}`.

    ``sandwich(embed_rotation(q), embed_vector(v)) == embed_vector(R(q) v)`` with
    :math:`R(q)` the rotation matrix of :math:`v \mapsto q v q^*`.

    Parameters
    ----------
    quaternion : Tensor, shape (..., 4)
        ``(w, x, y, z)``, scalar first; unit quaternions give unit rotors. Must be non-zero.

    Returns
    -------
    Tensor, shape (..., 8)

    Raises
    ------
    ValueError
        If a quaternion is zero (its rotor would not be invertible). A value check, skipped
        while compiling.
    """
    q = check_tensor(quaternion, 4, "vga.embed_rotation", "quaternion", "w, x, y, z")
    check_nonzero(q, "vga.embed_rotation", "quaternion")
    return quaternion_to_rotor(ALGEBRA, q)


def extract_rotation(multivector: Tensor) -> Tensor:
    r"""Unit quaternion ``(w, x, y, z)`` of rotors.

    Reads :math:`(R_{\text{scalar}}, -R_{23}, R_{13}, -R_{12})` and normalises it. The
    inverse of :func:`embed_rotation` up to scale; the overall sign is that of the input.
    Only for even versors (rotors).

    Parameters
    ----------
    multivector : Tensor, shape (..., 8)

    Returns
    -------
    Tensor, shape (..., 4)
    """
    return rotor_to_quaternion(ALGEBRA, _mv(multivector, "extract_rotation"))


def embed_rotation_matrix(matrix: Tensor, *, atol: float | None = None) -> Tensor:
    r"""Versors of orthogonal matrices :math:`M \in O(3)`.

    For :math:`\det M = 1` the unit rotor of :math:`M` (via the quaternion of :math:`M`,
    Shepperd's method); for :math:`\det M = -1` the odd versor :math:`R_{-M}\, e_{123}`
    (:math:`e_{123}` acts as :math:`v \mapsto -v`). In both cases
    ``sandwich(embed_rotation_matrix(M), embed_vector(v)) == embed_vector(M v)``.

    Parameters
    ----------
    matrix : Tensor, shape (..., 3, 3)
        Orthogonal matrices, rotations (:math:`\det M = 1`) and improper ones
        (:math:`\det M = -1`) alike.
    atol : float, optional
        Tolerance of the orthogonality check :math:`\max_{ij} |(M^T M - I)_{ij}| \le`
        ``atol``. Default ``max(1e-4, 10 * eps)`` of the matrix's dtype.

    Returns
    -------
    Tensor, shape (..., 8)

    Raises
    ------
    ValueError
        If a matrix is not orthogonal within ``atol`` (the versor of a non-orthogonal
        matrix would silently be that of some other rotation). A value check, skipped
        while compiling.
    """
    fn = "vga.embed_rotation_matrix"
    m = check_matrix(matrix, 3, fn, "matrix")
    check_orthogonal(m, fn, "matrix", check_atol(atol, fn))
    return orthogonal_to_versor(ALGEBRA, m)


def extract_rotation_matrix(versor: Tensor) -> Tensor:
    r"""The orthogonal matrix :math:`M_w` by which a versor acts on vectors.

    Column :math:`j` is ``extract_vector(sandwich(w, e_j))``; rotors give rotations, odd
    versors improper rotations (:math:`\det = -1`). Any scale of the versor.

    Parameters
    ----------
    versor : Tensor, shape (..., 8)
        Invertible versors (checked by ``sandwich``: ``ValueError`` otherwise).

    Returns
    -------
    Tensor, shape (..., 3, 3)
    """
    w = _mv(versor, "extract_rotation_matrix")
    basis = embed_vector(torch.eye(3, dtype=w.dtype, device=w.device))  # (3, 8)
    images = ALGEBRA.sandwich(w[..., None, :], basis)  # (..., 3, 8): image of e_j in row j
    return extract_vector(images).transpose(-1, -2)


def embed_scalar(scalar: Tensor) -> Tensor:
    """Embed scalars as the grade-0 part. ``scalar``: (..., 1); returns (..., 8)."""
    s = check_tensor(scalar, 1, "vga.embed_scalar", "scalar")
    return scatter(ALGEBRA, s, _SCALAR)


def extract_scalar(multivector: Tensor) -> Tensor:
    """The scalar component, shape (..., 1)."""
    return gather(ALGEBRA, _mv(multivector, "extract_scalar"), _SCALAR)


def embed_pseudoscalar(pseudoscalar: Tensor) -> Tensor:
    """Embed pseudoscalars as multiples of ``e123`` (sign flips under odd versors). (..., 1) -> (..., 8)."""
    s = check_tensor(pseudoscalar, 1, "vga.embed_pseudoscalar", "pseudoscalar")
    return scatter(ALGEBRA, s, _PSEUDOSCALAR)


def extract_pseudoscalar(multivector: Tensor) -> Tensor:
    """The ``e123`` component, shape (..., 1)."""
    return gather(ALGEBRA, _mv(multivector, "extract_pseudoscalar"), _PSEUDOSCALAR)
