"""Ready-made algebras.

* ``VGA3 = Cl(3, 0)``: vectors of Euclidean 3-space; O(3) acts by versors.
* ``PGA3 = Cl(3, 0, 1)``: projective GA, ``e0`` squares to 0; E(3) (rotations,
  reflections and translations) acts by versors. GATr's algebra.
* ``CGA3 = Cl(4, 1)``: conformal GA of 3-space (``e1..e4`` square to +1, ``e5`` to -1).
* ``STA = Cl(1, 3)``: spacetime algebra with ``e0`` timelike (+1) and ``e1, e2, e3``
  spacelike (-1); the Lorentz group acts by versors. L-GATr's algebra.
"""

from gatorch.algebras.algebra import Algebra

VGA3 = Algebra(3, 0, 0)
PGA3 = Algebra(3, 0, 1)
CGA3 = Algebra(4, 1, 0)
STA = Algebra.from_signature([1, -1, -1, -1], start_index=0)

__all__ = ["CGA3", "PGA3", "STA", "VGA3"]
