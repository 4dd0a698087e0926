"""gatorch: geometric-algebra (Clifford-algebra) neural networks for PyTorch.

The public API is what this module exports: the :class:`Algebra` (any signature
``(p, q, r)``), the presets, and the subpackages ``functional`` (stateless ops),
``interface`` (embedding geometric objects into multivectors), ``layers``
(equivariant ``nn.Module``s, on point sets and on fields on grids) and ``nets`` (networks
built from the layers: ``GATr``, ``ConditionalGATr``, ``GATrSlim``, ``CliffordGNN``,
``CliffordResNet``, ``CliffordFNO``, ...). Three more subpackages are public:
``gatorch.testing`` (``assert_equivariant``, ``assert_compiles``: checks for your own
layers), ``gatorch.irreps`` (the e3nn bridge, extra ``irreps``) and ``gatorch.interop``
(conversion to and from the ``clifford`` package, L-GATr and cliffordlayers).

Names are resolved on first use (:pep:`562`): ``import gatorch`` is cheap, and
``import gatorch.algebras`` (the data floor) imports nothing above it.

The layering, bottom to top (imports point down only, checked by import-linter):
``algebras`` (data) -> ``functional`` (stateless ops; the user-facing :class:`Algebra`)
-> ``layers`` / ``interface`` / ``irreps`` / ``testing`` -> ``nets`` -> ``interop``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gatorch import functional, interface, layers, nets
    from gatorch.algebras.layout import Layout
    from gatorch.functional.algebra import CGA3, PGA3, STA, VGA3, Algebra

__version__ = "0.1.0"

__all__ = [
    "CGA3",
    "PGA3",
    "STA",
    "VGA3",
    "Algebra",
    "Layout",
    "__version__",
    "functional",
    "interface",
    "layers",
    "nets",
]

_ALGEBRA = ("Algebra", "CGA3", "PGA3", "STA", "VGA3")
_SUBPACKAGES = ("functional", "interface", "layers", "nets", "testing", "irreps", "interop")


def __getattr__(name: str) -> Any:
    if name in _ALGEBRA:
        value = getattr(importlib.import_module("gatorch.functional.algebra"), name)
    elif name == "Layout":
        value = importlib.import_module("gatorch.algebras.layout").Layout
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"gatorch.{name}")
    else:
        raise AttributeError(f"module 'gatorch' has no attribute {name!r}")
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
