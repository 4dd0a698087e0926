r"""The convex-hull data of CSMPN's reference code (Liu, Ruhe et al., ICLR 2024), seeded and cached.

The reference protocol (``csmpn/data/hulls.py`` of the paper's code): clouds of 8 points drawn
from a standard normal in :math:`\mathbb{R}^5`, the target is the volume of their convex hull
(``scipy.spatial.ConvexHull``), stored in float32; 16384 clouds per split.

The simplicial complex of a cloud is *not* a Rips lift: the reference code builds it from the
hull's facets (``simplicial_lift_hulls``): every point is a vertex, and the edges and triangles
are the 2- and 3-subsets of the facets (4-simplices in :math:`\mathbb{R}^5`). So the complex is
the 2-skeleton of the hull's boundary; its size depends on the cloud (of 200 clouds of 8
points: 28 edges and 52 triangles in 87, 27 and 48 in 85, fewer in the rest; a point inside the
hull has no edge). :func:`hull_complex` builds it as a
:class:`~gatorch.nets.simplicial.SimplicialComplex`.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gatorch import Algebra
from gatorch.nets.simplicial import SimplicialComplex

#: Points per cloud and the dimension of the space, as in the reference protocol.
POINTS, SPACE = 8, 5
#: The algebra the hull nets work in: Cl(5, 0, 0).
ALG = Algebra(SPACE, 0, 0)


def vertex_multivectors(points: Tensor) -> Tensor:
    """``(B, P, 5)`` points, centred per cloud, as grade-1 multivectors of :data:`ALG`, ``(B P, 1, 32)``.

    The input of every hull net here (centring makes them translation invariant).
    """
    centred = points - points.mean(dim=1, keepdim=True)
    mv = centred.new_zeros(centred.shape[0] * centred.shape[1], 1, ALG.dim)
    mv[:, 0, ALG.grade_slice(1)] = centred.reshape(-1, SPACE)
    return mv


def _convex_hull(points: np.ndarray) -> Any:
    try:
        from scipy.spatial import ConvexHull  # type: ignore[import-untyped]
    except ImportError as err:  # pragma: no cover - scipy comes with the test extra
        raise SystemExit("the hull data needs scipy (pip install scipy)") from err
    return ConvexHull(points)


def generate_hulls(
    count: int, seed: int, cache: Path | str | None = None, points: int = POINTS, space: int = SPACE
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` clouds ``(count, points, space)`` and their hull volumes ``(count,)``, float32.

    Points are standard normal from ``numpy.random.default_rng(seed)``; volumes are scipy's,
    computed in float64 and stored in float32 like the reference's. With ``cache``, the
    arrays are read from that ``.npz`` file when it exists and written to it otherwise.
    """
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"generate_hulls: count must be an int >= 1, got {count!r}")
    path = Path(cache) if cache is not None else None
    if path is not None and path.exists():
        with np.load(path) as data:
            x, y = data["points"], data["volumes"]
        if x.shape != (count, points, space):
            raise ValueError(
                f"generate_hulls: the cache {path} holds clouds of shape {x.shape}, "
                f"expected {(count, points, space)}"
            )
        return x, y
    rng = np.random.default_rng(seed)
    clouds = rng.standard_normal((count, points, space))
    volumes = np.array([_convex_hull(c).volume for c in clouds])
    x, y = clouds.astype(np.float32), volumes.astype(np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, points=x, volumes=y)
    return x, y


def hull_simplices(cloud: np.ndarray, max_dim: int = 2) -> list[list[tuple[int, ...]]]:
    """The reference's hull complex of one cloud: for ``k = 1 .. max_dim`` the sorted
    ``(k + 1)``-subsets of the hull's facets (vertices: every point, implied)."""
    facets = _convex_hull(np.asarray(cloud, dtype=np.float64)).simplices
    return [
        sorted(
            {tuple(sorted(int(v) for v in sub)) for f in facets for sub in itertools.combinations(f, k + 1)}
        )
        for k in range(1, max_dim + 1)
    ]


def hull_complex(clouds: np.ndarray | torch.Tensor, max_dim: int = 2) -> SimplicialComplex:
    """The hull complexes of a batch of clouds ``(B, P, n)``, as one SimplicialComplex
    (cloud ``b``'s vertices are ``b P .. b P + P - 1``)."""
    arr = clouds.detach().cpu().double().numpy() if isinstance(clouds, torch.Tensor) else np.asarray(clouds)
    b, p = arr.shape[:2]
    rows: list[list[tuple[int, ...]]] = [[] for _ in range(max_dim)]
    for i, cloud in enumerate(arr):
        for k, simplices in enumerate(hull_simplices(cloud, max_dim)):
            rows[k] += [tuple(v + i * p for v in s) for s in simplices]
    tensors = [torch.tensor(r, dtype=torch.int64).reshape(-1, k + 2) for k, r in enumerate(rows)]
    batch = torch.arange(b).repeat_interleave(p)
    return SimplicialComplex.from_simplices(b * p, tensors, batch=batch, num_graphs=b)
