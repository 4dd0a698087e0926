"""Conversion to and from other packages.

* :mod:`gatorch.interop.clifford`: multivector tensors to and from the ``clifford``
  package's ``MultiVector`` (``to_clifford``, ``from_clifford``, ``clifford_layout``,
  ``algebra_of``).
* :mod:`gatorch.interop.lgatr`: L-GATr 2.0 nets (the ``lgatr`` package) to and from
  :class:`~gatorch.nets.GATr` / :class:`~gatorch.nets.ConditionalGATr` with the same weights
  and function (``from_lgatr``, ``to_lgatr``; both also take the slim nets).
* :mod:`gatorch.interop.cliffordlayers`: cliffordlayers' ``CliffordConv1d/2d/3d`` (with
  ``rotation=True``), ``CliffordLinear``, spectral layers and norms to gatorch's field layers
  with the same weights and outputs (``from_cliffordlayers``; the spectral layers and norms go
  through :mod:`gatorch.interop.cliffordlayers_fourier`).
* :mod:`gatorch.interop.lgatr_slim`: lgatr's ``LGATrSlim`` / ``ConditionalLGATrSlim`` to and
  from :class:`~gatorch.nets.GATrSlim` / :class:`~gatorch.nets.ConditionalGATrSlim` on STA,
  same weights and function (``from_lgatr_slim``, ``to_lgatr_slim``).

Every optional dependency is imported only when a function that needs it is called.
"""

from gatorch.interop.clifford import algebra_of, clifford_layout, from_clifford, to_clifford
from gatorch.interop.cliffordlayers import from_cliffordlayers
from gatorch.interop.lgatr import from_lgatr, to_lgatr
from gatorch.interop.lgatr_slim import from_lgatr_slim, to_lgatr_slim

__all__ = [
    "algebra_of",
    "clifford_layout",
    "from_clifford",
    "from_cliffordlayers",
    "from_lgatr",
    "from_lgatr_slim",
    "to_clifford",
    "to_lgatr",
    "to_lgatr_slim",
]
