r"""Spacetime algebra :math:`Cl(1, 3)` (``gatorch.STA``): four-vectors for L-GATr.

All functions work on the preset ``STA`` (``e0`` timelike, squares to +1; ``e1, e2, e3``
spacelike, square to -1; 16 blades in shortlex order), take and return torch tensors with
any leading batch dimensions and any floating dtype, and are differentiable.

The Lorentz group O(1, 3) acts by versors under the twisted action
:math:`x \mapsto w\, \hat x^{|w|} w^{-1}` (``STA.sandwich``). A versor acts on vectors by a
matrix :math:`\Lambda` with :math:`\Lambda^T \eta \Lambda = \eta`,
:math:`\eta = \mathrm{diag}(1, -1, -1, -1)`; odd versors include parity (a product of
three spacelike vectors) and time reversal (the vector ``e0``, which maps
:math:`E \mapsto -E`). Four-vectors map exactly:
``sandwich(w, embed_vector(p)) == embed_vector(Λ p)``; the Minkowski product is
``STA.inner_product(embed_vector(p), embed_vector(q)) = p^T η q``.
"""

from __future__ import annotations

from torch import Tensor

from gatorch.functional.algebra import STA
from gatorch.interface._common import check_multivector, check_tensor, gather, scatter

__all__ = [
    "ALGEBRA",
    "embed_pseudoscalar",
    "embed_scalar",
    "embed_vector",
    "extract_pseudoscalar",
    "extract_scalar",
    "extract_vector",
]

#: The algebra every function of this module works in: ``Cl(1, 3)`` with ``e0`` timelike.
ALGEBRA = STA

_VECTOR = (("e0", 1.0), ("e1", 1.0), ("e2", 1.0), ("e3", 1.0))
_SCALAR = (("1", 1.0),)
_PSEUDOSCALAR = (("e0123", 1.0),)


def _mv(x: object, fn: str) -> Tensor:
    return check_multivector(ALGEBRA, x, f"sta.{fn}")


def embed_vector(four_vector: Tensor) -> Tensor:
    r"""Embed four-vectors (e.g. four-momenta) as STA vectors.

    :math:`(E, p_x, p_y, p_z) \mapsto E e_0 + p_x e_1 + p_y e_2 + p_z e_3`.

    Parameters
    ----------
    four_vector : Tensor, shape (..., 4)
        Contravariant components, time first: ``(E, px, py, pz)`` or ``(t, x, y, z)``.

    Returns
    -------
    Tensor, shape (..., 16)
    """
    p = check_tensor(four_vector, 4, "sta.embed_vector", "four_vector", "E, px, py, pz")
    return scatter(ALGEBRA, p, _VECTOR)


def extract_vector(multivector: Tensor) -> Tensor:
    """The four-vector ``(E, px, py, pz)`` of the grade-1 part (components of ``e0, e1, e2, e3``).

    Parameters
    ----------
    multivector : Tensor, shape (..., 16)

    Returns
    -------
    Tensor, shape (..., 4)
    """
    return gather(ALGEBRA, _mv(multivector, "extract_vector"), _VECTOR)


def embed_scalar(scalar: Tensor) -> Tensor:
    """Embed Lorentz scalars as the grade-0 part. ``scalar``: (..., 1); returns (..., 16)."""
    s = check_tensor(scalar, 1, "sta.embed_scalar", "scalar")
    return scatter(ALGEBRA, s, _SCALAR)


def extract_scalar(multivector: Tensor) -> Tensor:
    """The scalar component, shape (..., 1)."""
    return gather(ALGEBRA, _mv(multivector, "extract_scalar"), _SCALAR)


def embed_pseudoscalar(pseudoscalar: Tensor) -> Tensor:
    """Embed pseudoscalars as multiples of ``e0123`` (sign flips under odd versors). (..., 1) -> (..., 16)."""
    s = check_tensor(pseudoscalar, 1, "sta.embed_pseudoscalar", "pseudoscalar")
    return scatter(ALGEBRA, s, _PSEUDOSCALAR)


def extract_pseudoscalar(multivector: Tensor) -> Tensor:
    """The ``e0123`` component, shape (..., 1)."""
    return gather(ALGEBRA, _mv(multivector, "extract_pseudoscalar"), _PSEUDOSCALAR)
