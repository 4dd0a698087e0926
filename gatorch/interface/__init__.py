"""Embedding geometric objects into multivectors and extracting them again, per algebra.

One module per preset algebra, each with ``embed_*`` / ``extract_*`` pairs on
``(..., k) <-> (..., alg.dim)`` tensors (batched, differentiable, any float dtype):

* :mod:`~gatorch.interface.pga` (``PGA3``, GATr): points, directions, planes, translations,
  rotations (quaternions), reflections, Euclidean motions, scalars, pseudoscalars.
* :mod:`~gatorch.interface.vga` (``VGA3``): vectors, axial vectors, rotations (quaternions
  and O(3) matrices), scalars, pseudoscalars.
* :mod:`~gatorch.interface.cga` (``CGA3``): points (up / down), dual spheres, dual planes.
* :mod:`~gatorch.interface.sta` (``STA``, L-GATr): four-vectors, scalars, pseudoscalars.
* :mod:`~gatorch.interface.spurions` (any algebra): fixed reference multivectors (beam,
  time, gravity, ground plane, ...) appended as channels to break a symmetry on purpose.

The names repeat across algebras (``pga.embed_point``, ``cga.embed_point``), so use them
through their module: ``from gatorch.interface import pga; pga.embed_point(x)``.
"""

from gatorch.interface import cga, pga, spurions, sta, vga

__all__ = ["cga", "pga", "spurions", "sta", "vga"]
