"""The user-facing :class:`Algebra`: the data of :mod:`gatorch.algebras` plus the operations.

:class:`gatorch.algebras.AlgebraData` holds a Clifford algebra's tables and derived state
and sits below :mod:`gatorch.functional` (it imports nothing from it). :class:`Algebra`
subclasses it here, one floor up, and binds the stateless ops of :mod:`gatorch.functional`
as methods (``alg.gp(x, y)`` is ``gatorch.functional.gp(alg, x, y)``), so the imports of the
library point one way only. The ready-made algebras :data:`VGA3`, :data:`PGA3`,
:data:`CGA3` and :data:`STA` are instances of it.

* ``VGA3 = Cl(3, 0)``: vectors of Euclidean 3-space; O(3) acts by versors.
* ``PGA3 = Cl(3, 0, 1)``: projective GA, ``e0`` squares to 0; E(3) (rotations,
  reflections and translations) acts by versors. GATr's algebra.
* ``CGA3 = Cl(4, 1)``: conformal GA of 3-space (``e1..e4`` square to +1, ``e5`` to -1).
* ``STA = Cl(1, 3)``: spacetime algebra with ``e0`` timelike (+1) and ``e1, e2, e3``
  spacelike (-1); the Lorentz group acts by versors. L-GATr's algebra.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from gatorch.algebras.algebra import AlgebraData
from gatorch.functional import products as _products
from gatorch.functional import unary as _unary
from gatorch.functional import versors as _versors

__all__ = ["CGA3", "PGA3", "STA", "VGA3", "Algebra"]


class Algebra(AlgebraData):
    r"""A real Clifford algebra :math:`Cl(p, q, r)` with a diagonal metric, and its operations.

    Basis vectors come degenerate first (metric 0), then positive (+1), then
    negative (-1), the order of the ``clifford`` package. They are named from
    ``e0`` when ``r > 0``, else from ``e1``. Basis blades are in shortlex order
    (by grade, then lexicographic on indices), so every grade is a contiguous
    slice. Projective GA ``Algebra(3, 0, 1)`` has the blades
    ``1, e0, e1, e2, e3, e01, e02, e03, e12, e13, e23, e012, e013, e023, e123, e0123``.

    Instances are immutable, hashable and cached: the same signature always
    returns the same object, so its tables are built once. The tables, bases and
    derived state are those of :class:`~gatorch.algebras.AlgebraData` (this class adds
    only the operations as methods, each a call of :mod:`gatorch.functional`).

    Parameters
    ----------
    p, q, r : int
        Numbers of basis vectors squaring to +1, -1 and 0; ``p + q + r`` at most
        ``gatorch.algebras.MAX_N`` (20), larger ones are refused at once. The full product
        tables and equivariant basis are built on first use, only up to ``MAX_FULL_N`` (11)
        vectors; above it use a :class:`~gatorch.algebras.Layout` (docs/performance.md,
        "Cost by dimension").

    Examples
    --------
    >>> import torch
    >>> from gatorch import Algebra
    >>> pga = Algebra(3, 0, 1)
    >>> pga.dim, pga.index("e12")
    (16, 8)
    >>> x, y = torch.randn(2, 16, dtype=torch.float64)
    >>> torch.allclose(pga.gp(x, y), pga.gp_dense(x, y))
    True
    """

    __slots__ = ()

    def gp(self, x: Tensor, y: Tensor) -> Tensor:
        """Geometric product ``x y``; shapes ``(..., dim)`` broadcast."""
        return _products.gp(self, x, y)

    def outer(self, x: Tensor, y: Tensor) -> Tensor:
        """Outer (wedge) product ``x ∧ y``."""
        return _products.outer(self, x, y)

    def lcontract(self, x: Tensor, y: Tensor) -> Tensor:
        """Left contraction ``x ⌋ y``."""
        return _products.lcontract(self, x, y)

    def regressive(self, x: Tensor, y: Tensor) -> Tensor:
        """Regressive product (join / vee) ``x ∨ y = undual(dual(x) ∧ dual(y))``."""
        return _products.regressive(self, x, y)

    def gp_dense(self, x: Tensor, y: Tensor) -> Tensor:
        """Geometric product through the dense Cayley tensor (reference implementation)."""
        return _products.bilinear_dense(self, x, y, "gp")

    def reverse(self, x: Tensor) -> Tensor:
        """Reversion ``~x``: grade k scaled by ``(-1)**(k(k-1)/2)``."""
        return _unary.reverse(self, x)

    def involute(self, x: Tensor) -> Tensor:
        """Grade involution: grade k scaled by ``(-1)**k``."""
        return _unary.involute(self, x)

    def conjugate(self, x: Tensor) -> Tensor:
        """Clifford conjugate (reverse of the grade involution)."""
        return _unary.conjugate(self, x)

    def grade(self, x: Tensor, k: int | Iterable[int]) -> Tensor:
        """Projection onto grade ``k`` (or several grades); keeps the shape ``(..., dim)``."""
        return _unary.grade(self, x, k)

    def dual(self, x: Tensor) -> Tensor:
        """Right complement: ``e_A ∧ dual(e_A) = I`` for every blade (metric-free)."""
        return _unary.dual(self, x)

    def undual(self, x: Tensor) -> Tensor:
        """Left complement, the inverse of :meth:`dual`: ``undual(dual(x)) = x``."""
        return _unary.undual(self, x)

    def inner_product(self, x: Tensor, y: Tensor, keepdim: bool = False) -> Tensor:
        """Invariant scalar product ``<~x y>_0``, degenerate directions dropped."""
        return _unary.inner_product(self, x, y, keepdim=keepdim)

    def norm(self, x: Tensor, keepdim: bool = False) -> Tensor:
        """``sqrt(|<~x x>_0|)``; finite with zero gradient at null multivectors."""
        return _unary.norm(self, x, keepdim=keepdim)

    def sandwich(self, w: Tensor, x: Tensor, check: bool = True) -> Tensor:
        """Twisted versor action ``w involute^{|w|}(x) w^-1``; ``check`` verifies ``w`` (eagerly)."""
        return _versors.sandwich(self, w, x, check=check)

    def inverse(self, w: Tensor, check: bool = True) -> Tensor:
        """Inverse of a versor, ``~w / <w ~w>_0``; ``ValueError`` for non-versors."""
        return _versors.inverse(self, w, check=check)

    def exp(self, b: Tensor) -> Tensor:
        """Exponential of a bivector (rotors, boosts, translators, motors)."""
        return _versors.exp(self, b)

    def random_vector(
        self,
        batch_shape: Sequence[int] = (),
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Random invertible vectors normalised to ``|v v| = 1``, shape ``(*batch_shape, dim)``."""
        return _versors.random_vector(self, batch_shape, generator=generator, dtype=dtype, device=device)

    def random_versor(
        self,
        batch_shape: Sequence[int] = (),
        spin: bool = False,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Random versors: products of random normalised invertible vectors.

        With ``spin=False`` each versor is, at random, a product of an even or an odd
        number of vectors; with ``spin=True`` always an even number.
        """
        return _versors.random_versor(
            self, batch_shape, spin=spin, generator=generator, dtype=dtype, device=device
        )


VGA3 = Algebra(3, 0, 0)
PGA3 = Algebra(3, 0, 1)
CGA3 = Algebra(4, 1, 0)
STA = Algebra.from_signature([1, -1, -1, -1], start_index=0)
