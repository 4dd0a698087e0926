"""Argument checks shared by the layers."""

from __future__ import annotations

from gatorch.algebras.algebra import Algebra


def check_algebra(alg: object, who: str) -> None:
    """Raise ``TypeError`` naming ``who`` unless ``alg`` is a :class:`~gatorch.Algebra`."""
    if not isinstance(alg, Algebra):
        raise TypeError(f"{who}: alg must be a gatorch.Algebra, got {type(alg).__name__}")
