"""gatorch: geometric-algebra (Clifford-algebra) neural networks for PyTorch.

The public API is what this module exports: the :class:`Algebra` (any signature
``(p, q, r)``), the presets, and the subpackages ``functional`` (stateless ops),
``interface`` (embedding geometric objects into multivectors), ``layers``
(equivariant ``nn.Module``s) and ``nets`` (networks built from the layers: ``GATr``).
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
