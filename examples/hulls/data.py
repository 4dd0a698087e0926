r"""The convex-hull splits of CSMPN's reference protocol, generated once and cached as plain tensors.

Each split is :func:`examples.zoo.csmpn_hull_data.generate_hulls` with its own seed
(:data:`SPLIT_SEEDS`): clouds of 8 standard-normal points in :math:`\mathbb{R}^5`, their hull
volumes (scipy), and the reference's hull complex of every cloud
(:func:`examples.zoo.csmpn_hull_data.hull_simplices`: the edges and triangles of the hull's
facets), stored flat with per-cloud offsets so that a batch's
:class:`~gatorch.nets.simplicial.SimplicialComplex` is built by slicing (:func:`batch_complex`)
instead of re-running Qhull every step.

The cache is one ``.pt`` file per split and size (``hulls_{split}_{count}.pt``) written with
:func:`examples.harness.save_atomic` and read back with :func:`examples.harness.load_checkpoint`
(``torch.load(weights_only=True)``): tensors and numbers only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from examples import harness
from examples.zoo.csmpn_hull_data import POINTS, SPACE, generate_hulls, hull_simplices
from gatorch.nets.simplicial import SimplicialComplex

#: The splits and the seed of each (the reference draws 16384 clouds per split, unseeded).
SPLIT_SEEDS: dict[str, int] = {"train": 250, "val": 251, "test": 252}
#: Clouds per split in the reference protocol.
FULL_SIZE = 16384
#: Where the splits are cached unless ``--cache-dir`` says otherwise.
DEFAULT_CACHE: Path = Path(__file__).resolve().parents[2] / "data" / "hulls"

Split = dict[str, Tensor]


def build_split(count: int, seed: int) -> Split:
    """``count`` clouds of the reference protocol: ``points (count, 8, 5)`` and ``volumes (count,)``
    float32, and the hull complexes (``edges (E, 2)`` / ``triangles (T, 3)`` int64, vertex
    indices local to the cloud, cloud ``i``'s rows at ``edge_ptr[i]:edge_ptr[i + 1]``)."""
    points, volumes = generate_hulls(count, seed)
    edges, triangles, edge_ptr, tri_ptr = [], [], [0], [0]
    for cloud in points:
        e, t = hull_simplices(cloud, max_dim=2)
        edges += e
        triangles += t
        edge_ptr.append(len(edges))
        tri_ptr.append(len(triangles))
    return {
        "points": torch.from_numpy(points),
        "volumes": torch.from_numpy(volumes),
        "edges": torch.tensor(edges, dtype=torch.int64).reshape(-1, 2),
        "edge_ptr": torch.tensor(edge_ptr, dtype=torch.int64),
        "triangles": torch.tensor(triangles, dtype=torch.int64).reshape(-1, 3),
        "triangle_ptr": torch.tensor(tri_ptr, dtype=torch.int64),
    }


def cache_path(cache_dir: Path | str | None, split: str, count: int) -> Path:
    """The cache file of ``count`` clouds of ``split``."""
    root = DEFAULT_CACHE if cache_dir is None else Path(cache_dir)
    return root / f"hulls_{split}_{count}.pt"


def load_split(split: str, count: int = FULL_SIZE, cache_dir: Path | str | None = None) -> Split:
    """The first ``count`` clouds of ``split`` (seed :data:`SPLIT_SEEDS`), from the cache or built
    and cached. A smaller ``count`` is a prefix of the full split (the same seed and draws)."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"load_split: split must be one of {tuple(SPLIT_SEEDS)}, got {split!r}")
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"load_split: count must be an int >= 1, got {count!r}")
    path = cache_path(cache_dir, split, count)
    if path.exists():
        data = harness.load_checkpoint(path)
        if tuple(data["points"].shape) != (count, POINTS, SPACE):
            raise ValueError(
                f"load_split: {path} holds clouds of shape {tuple(data['points'].shape)}, "
                f"expected {(count, POINTS, SPACE)}"
            )
        return {k: v for k, v in data.items() if isinstance(v, Tensor)}
    data = build_split(count, SPLIT_SEEDS[split])
    path.parent.mkdir(parents=True, exist_ok=True)
    harness.save_atomic({"format": 1, "split": split, "seed": SPLIT_SEEDS[split], **data}, path)
    return data


def batch_complex(data: Split, idx: Tensor | np.ndarray) -> SimplicialComplex:
    """The hull complexes of clouds ``idx`` of a split as one complex (cloud ``b`` of the batch
    has vertices ``8 b .. 8 b + 7``), from the cached simplices."""
    index = torch.as_tensor(idx, dtype=torch.int64).cpu()
    rows: list[Tensor] = []
    for key, ptr in (("edges", "edge_ptr"), ("triangles", "triangle_ptr")):
        start, stop = data[ptr][index], data[ptr][index + 1]
        counts = stop - start
        flat = torch.repeat_interleave(start - torch.cumsum(counts, 0) + counts, counts) + torch.arange(
            int(counts.sum())
        )
        shift = torch.repeat_interleave(torch.arange(index.numel()) * POINTS, counts)
        rows.append(data[key][flat] + shift[:, None])
    batch = torch.arange(index.numel()).repeat_interleave(POINTS)
    return SimplicialComplex.from_simplices(
        POINTS * index.numel(), rows, batch=batch, num_graphs=index.numel()
    )
