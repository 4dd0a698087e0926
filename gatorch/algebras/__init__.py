"""Clifford algebras Cl(p, q, r): blades, grades, product tables, involutions, equivariant bases."""

from gatorch.algebras.algebra import Algebra
from gatorch.algebras.presets import CGA3, PGA3, STA, VGA3

__all__ = ["CGA3", "PGA3", "STA", "VGA3", "Algebra"]
