"""Deprecated: the ready-made algebras moved to :mod:`gatorch.functional.algebra`.

``from gatorch import PGA3`` (or ``VGA3``, ``CGA3``, ``STA``) gives them; this module path
keeps working with a :class:`DeprecationWarning` and goes away in gatorch 0.3.
"""

from __future__ import annotations

from typing import Any

__all__: list[str] = []  # nothing is defined here any more
_MOVED = ("CGA3", "PGA3", "STA", "VGA3")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from gatorch.algebras._moved import moved

        return moved(__name__, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
