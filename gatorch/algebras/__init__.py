"""Clifford algebras Cl(p, q, r) as data: blades, grades, product tables, involutions,
equivariant bases, layouts (multivectors that store only some grades), and the one store
of derived state.

This is the bottom floor of gatorch; it imports nothing else from the library. The
user-facing :class:`gatorch.Algebra` (the same data plus the operations as methods) and
the presets ``VGA3``, ``PGA3``, ``CGA3``, ``STA`` are in :mod:`gatorch.functional.algebra`
and exported from :mod:`gatorch`; their old names here still resolve, with a
:class:`DeprecationWarning`.
"""

from __future__ import annotations

from typing import Any

from gatorch.algebras.algebra import MAX_DENSE_N, MAX_FULL_N, MAX_N, AlgebraData
from gatorch.algebras.layout import Layout
from gatorch.algebras.store import Store

__all__ = ["MAX_DENSE_N", "MAX_FULL_N", "MAX_N", "AlgebraData", "Layout", "Store"]

_MOVED = ("Algebra", "CGA3", "PGA3", "STA", "VGA3")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from gatorch.algebras._moved import moved

        return moved(__name__, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
