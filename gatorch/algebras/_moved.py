"""The deprecated upward re-exports of :mod:`gatorch.algebras` (removed in gatorch 0.3).

Before the layering, ``gatorch.algebras`` held the user-facing :class:`gatorch.Algebra`
and its presets. They now live one floor up, in :mod:`gatorch.functional.algebra` (they
call the operations of :mod:`gatorch.functional`). The old names resolve here, lazily and
with a :class:`DeprecationWarning`: importing :mod:`gatorch.algebras` itself imports
nothing above it. This module is the one exception that import-linter's layer contract
lists (``pyproject.toml``); it goes away with the old names.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["moved"]


def moved(module: str, name: str) -> Any:
    """The object ``name`` that ``module`` used to define, from its new home, with a warning."""
    warnings.warn(
        f"{module}.{name} moved: import it from gatorch (gatorch.{name}); "
        f"the old path goes away in gatorch 0.3",
        DeprecationWarning,
        stacklevel=3,
    )
    from gatorch.functional import algebra  # the listed exception of the layer contract

    return getattr(algebra, name)
