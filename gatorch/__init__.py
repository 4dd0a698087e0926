"""gatorch: geometric-algebra (Clifford-algebra) neural networks for PyTorch.

The public API is what this module exports: the :class:`Algebra` (any signature
``(p, q, r)``), the presets, and the subpackages ``functional`` (stateless ops),
``interface`` (embedding geometric objects into multivectors), ``layers``
(equivariant ``nn.Module``s, on point sets and on fields on grids) and ``nets`` (networks
built from the layers: ``GATr``, ``ConditionalGATr``, ``GATrSlim``, ``CliffordGNN``,
``CliffordResNet``, ``CliffordFNO``, ...). Two more subpackages are public but not imported
here, because they wrap optional dependencies: ``gatorch.irreps`` (the e3nn bridge, extra
``irreps``) and ``gatorch.interop`` (conversion to and from the ``clifford`` package, L-GATr
and cliffordlayers). ``gatorch.testing`` (``assert_equivariant``, ``assert_compiles`` and
their helpers, for testing your own layers) is public too and not imported here either: it is
only needed in tests.
"""

from gatorch import functional, interface, layers, nets
from gatorch.algebras import CGA3, PGA3, STA, VGA3, Algebra

__version__ = "0.1.0"

__all__ = [
    "CGA3",
    "PGA3",
    "STA",
    "VGA3",
    "Algebra",
    "__version__",
    "functional",
    "interface",
    "layers",
    "nets",
]
