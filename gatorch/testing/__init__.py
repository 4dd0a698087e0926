"""Testing helpers for equivariant layers: equivariance and compile checks.

A public subpackage, not imported by ``import gatorch``; import it as
``from gatorch.testing import assert_equivariant, assert_compiles``. It needs torch only
(pytest is not imported), and it imports nothing from ``gatorch.layers`` or ``gatorch.nets``:
it tests the modules you pass in.

* :func:`assert_equivariant`: ``fn(w . x) == w . fn(x)`` under the twisted versor action
  :math:`x \\mapsto w\\, \\hat x^{|w|}\\, w^{-1}`, for rotations *and* reflections (odd
  versors), with specs saying which arguments and outputs are multivectors, invariant
  scalars or not acted on; :func:`assert_layer_equivariant` is the shorthand for layers
  ``(mv, s) -> (mv, s)``.
* :func:`assert_compiles`: a freshly built module under ``torch.compile(fullgraph=True)``
  matches eager mode (outputs and, optionally, gradients).
* The pieces they use: :func:`random_versors`, :func:`versor_parity`,
  :func:`versor_action`, :func:`random_multivectors` and :data:`ALGEBRAS`, a set of
  signatures to parametrize tests over.
"""

from gatorch.testing.compile import CompileResult, assert_compiles
from gatorch.testing.equivariance import (
    ALGEBRAS,
    EquivarianceResult,
    Spec,
    assert_equivariant,
    assert_layer_equivariant,
    random_multivectors,
    random_versors,
    versor_action,
    versor_parity,
)

__all__ = [
    "ALGEBRAS",
    "CompileResult",
    "EquivarianceResult",
    "Spec",
    "assert_compiles",
    "assert_equivariant",
    "assert_layer_equivariant",
    "random_multivectors",
    "random_versors",
    "versor_action",
    "versor_parity",
]
