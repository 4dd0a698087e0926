r"""Simplicial complexes for :class:`~gatorch.nets.csmpn.CSMPN`: the data structure and the Rips lift.

A (batched) simplicial complex is stored as one tensor of vertex indices per dimension:
``simplices[k]: (n_k, k + 1)`` int64, every row sorted ascending, ``simplices[0]`` the
vertices themselves. Several point clouds share one complex: ``batch: (num_vertices,)``
names the cloud of every vertex and no simplex spans two clouds.

The message-passing net sees every simplex as one *cell* of a single graph, cells ordered
by dimension (all vertices, then all edges, then all triangles, ...; ``offsets[k]`` is the
first cell of dimension ``k``). The relations between cells are those of simplicial
message passing (Bodnar et al., 2021; Eijkelboom et al., 2023; Liu et al., 2024), named by
what the *receiving* cell :math:`\sigma` (dimension ``k``) hears from:

``"boundary"``
    its faces :math:`\tau \subset \sigma` of dimension ``k - 1``;
``"coboundary"``
    its cofaces :math:`\tau \supset \sigma` of dimension ``k + 1``;
``"upper"``
    the other ``k``-simplices :math:`\tau` with which it shares a ``(k + 1)``-coface
    (for vertices: the graph's edges);
``"lower"``
    the other ``k``-simplices with which it shares a ``(k - 1)``-face.

Each relation is a ``(2, M)`` int64 tensor of cell indices, row 0 the sender, row 1 the
receiver, with both directions present (all four relations are symmetric or paired).
Two distinct ``k``-simplices share at most one ``(k + 1)``-coface (their union) and at
most one ``(k - 1)``-face (their intersection), so no relation holds duplicates.

:func:`rips_lift` builds the Vietoris-Rips complex of point clouds up to dimension 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["RELATIONS", "RIPS_MAX_DIM", "SimplicialComplex", "rips_lift"]

#: The cell relations of simplicial message passing, in the order of their one-hot codes.
RELATIONS = ("boundary", "coboundary", "upper", "lower")

#: Highest simplex dimension :func:`rips_lift` builds (vertices, edges, triangles).
RIPS_MAX_DIM = 2

_LONG = torch.int64


def _check_index_tensor(who: str, name: str, value: object, ndim: int) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{who}: {name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype != _LONG:
        raise TypeError(f"{who}: {name} must have dtype torch.int64 (long), got {value.dtype}")
    if value.ndim != ndim:
        raise ValueError(f"{who}: {name} must have {ndim} dimensions, got shape {tuple(value.shape)}")
    return value


def _row_keys(rows: Tensor, base: int) -> Tensor:
    """One int64 key per row of sorted vertex indices: the row read as digits in ``base``."""
    key = torch.zeros(rows.shape[0], dtype=_LONG, device=rows.device)
    for col in range(rows.shape[1]):
        key = key * base + rows[:, col]
    return key


def _pairs_sharing(key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
    """All ordered pairs ``(value[a], value[b])``, ``a != b``, with ``key[a] == key[b]``.

    Sorts by ``key`` and, within each group of equal keys of size ``g``, forms the
    ``g * (g - 1)`` ordered pairs with ``repeat_interleave`` and index arithmetic (no
    Python loop over groups).
    """
    if key.numel() == 0:
        empty = key.new_zeros(0)
        return empty, empty
    key_sorted, order = key.sort(stable=True)
    value = value[order]
    _, counts = torch.unique_consecutive(key_sorted, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    group = torch.repeat_interleave(torch.arange(counts.numel(), device=key.device), counts)
    reps = counts[group]  # every entry pairs with every entry of its group
    first = torch.repeat_interleave(torch.arange(key.numel(), device=key.device), reps)
    run_start = torch.cumsum(reps, 0) - reps
    offset = torch.arange(first.numel(), device=key.device) - run_start[first]
    second = starts[group[first]] + offset
    keep = first != second
    return value[first[keep]], value[second[keep]]


@dataclass(frozen=True, eq=False)
class SimplicialComplex:
    r"""A batched simplicial complex with the index tensors simplicial message passing needs.

    Build it with :meth:`from_simplices` (any closed complex) or :func:`rips_lift` (from
    point clouds); the constructor itself does not validate.

    Attributes
    ----------
    simplices : tuple of Tensor
        ``simplices[k]: (n_k, k + 1)`` int64 vertex indices, rows sorted ascending;
        ``simplices[0]`` is ``arange(num_vertices)[:, None]``.
    batch : Tensor, (num_vertices,) int64
        Point cloud of every vertex, in ``[0, num_graphs)``.
    num_graphs : int
    boundary : tuple of Tensor
        ``boundary[k - 1]: (2, (k + 1) n_k)`` for ``k = 1 .. max_dim``: row 0 the face
        (an index into ``simplices[k - 1]``), row 1 the simplex (an index into
        ``simplices[k]``).
    relations : dict of str to Tensor
        ``relations[name]: (2, M)`` int64 *cell* indices (sender, receiver) for every
        name in :data:`RELATIONS`.

    Shapes
    ------
    ``num_cells = sum(n_k)``; :attr:`cell_dim` and :attr:`cell_batch` are ``(num_cells,)``.
    """

    simplices: tuple[Tensor, ...]
    batch: Tensor
    num_graphs: int
    boundary: tuple[Tensor, ...]
    relations: dict[str, Tensor] = field(repr=False)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_simplices(
        cls,
        num_vertices: int,
        simplices: Sequence[Tensor],
        batch: Tensor | None = None,
        num_graphs: int | None = None,
    ) -> SimplicialComplex:
        r"""Validate a closed complex and compute its boundary and adjacency relations.

        Parameters
        ----------
        num_vertices : int
            Number of vertices ``N`` (the 0-simplices, implied).
        simplices : sequence of Tensor
            ``simplices[i]: (n_{i+1}, i + 2)`` int64: the edges, then the triangles, ...
            (dimension ``i + 1``); vertices of a row in any order (they are sorted), no
            repeated vertex, no repeated row. Empty for a complex of vertices only. Every
            face of every simplex must be present (the complex must be closed).
        batch : Tensor, (N,) int64, optional
            Point cloud of every vertex (default: all in cloud 0). No simplex may span
            two clouds.
        num_graphs : int, optional
            Number of clouds (default ``batch.max() + 1``, or 0 without vertices).

        Returns
        -------
        SimplicialComplex

        Raises
        ------
        TypeError, ValueError
            Naming the expected and the received value. The checks that read index values
            (range, repeated vertices or simplices, clouds, closedness) are skipped under
            ``torch.compile`` (they would break the graph and force a host-device sync);
            the shape and dtype checks always run.
        """
        who = "SimplicialComplex.from_simplices"
        check_values = not torch.compiler.is_compiling()
        if not isinstance(num_vertices, int) or isinstance(num_vertices, bool) or num_vertices < 0:
            raise ValueError(f"{who}: num_vertices must be an int >= 0, got {num_vertices!r}")
        if isinstance(simplices, Tensor) or not hasattr(simplices, "__len__"):
            raise TypeError(
                f"{who}: simplices must be a sequence of tensors (edges, triangles, ...), "
                f"got {type(simplices).__name__}"
            )
        if batch is None:
            batch = torch.zeros(num_vertices, dtype=_LONG)
        _check_index_tensor(who, "batch", batch, 1)
        device = batch.device
        if batch.shape[0] != num_vertices:
            raise ValueError(
                f"{who}: batch must have shape ({num_vertices},) (one cloud per vertex), "
                f"got {tuple(batch.shape)}"
            )
        if check_values and batch.numel() and int(batch.min()) < 0:
            raise ValueError(f"{who}: batch entries must be >= 0, got minimum {int(batch.min())}")
        least = int(batch.max()) + 1 if check_values and batch.numel() else 0
        if num_graphs is None:
            if not check_values:
                raise ValueError(
                    f"{who}: pass num_graphs under torch.compile (it is read from batch otherwise)"
                )
            num_graphs = least
        elif not isinstance(num_graphs, int) or isinstance(num_graphs, bool) or num_graphs < least:
            raise ValueError(
                f"{who}: num_graphs must be an int >= {least} (batch.max() + 1), got {num_graphs!r}"
            )
        max_dim = len(simplices)
        if num_vertices and (max_dim + 1) * math.log2(max(num_vertices, 2)) > 62:
            raise ValueError(
                f"{who}: {num_vertices} vertices and simplices up to dimension {max_dim} overflow the "
                f"int64 simplex keys; split the batch"
            )
        rows: list[Tensor] = [torch.arange(num_vertices, dtype=_LONG, device=device)[:, None]]
        for k, s in enumerate(simplices, start=1):
            name = f"simplices[{k - 1}] ({k}-simplices)"
            _check_index_tensor(who, name, s, 2)
            if s.shape[1] != k + 1:
                raise ValueError(f"{who}: {name} must have shape (n, {k + 1}), got {tuple(s.shape)}")
            s = s.to(device)
            if check_values and s.numel():
                low, high = int(s.min()), int(s.max())
                if low < 0 or high >= num_vertices:
                    raise ValueError(
                        f"{who}: {name} entries must be vertex indices in [0, {num_vertices}), "
                        f"got values in [{low}, {high}]"
                    )
            s = s.sort(dim=1).values
            if check_values and s.shape[0] and bool((s[:, 1:] == s[:, :-1]).any()):
                bad = int((s[:, 1:] == s[:, :-1]).any(1).nonzero()[0, 0])
                raise ValueError(f"{who}: {name} row {bad} repeats a vertex: {s[bad].tolist()}")
            if check_values and torch.unique(_row_keys(s, num_vertices)).numel() != s.shape[0]:
                raise ValueError(f"{who}: {name} holds the same simplex more than once")
            cloud = batch[s]
            if check_values and s.shape[0] and bool((cloud != cloud[:, :1]).any()):
                bad = int((cloud != cloud[:, :1]).any(1).nonzero()[0, 0])
                raise ValueError(
                    f"{who}: {name} row {bad} {s[bad].tolist()} spans clouds {cloud[bad].tolist()}; "
                    f"a simplex must lie in one cloud"
                )
            rows.append(s)
        boundary = tuple(
            cls._faces(rows[k - 1], rows[k], num_vertices, who, k) for k in range(1, max_dim + 1)
        )
        relations = cls._relations(rows, boundary)
        return cls(tuple(rows), batch, num_graphs, boundary, relations)

    @staticmethod
    def _faces(lower: Tensor, upper: Tensor, base: int, who: str, k: int) -> Tensor:
        """``(2, (k + 1) n_k)``: (face index in ``lower``, simplex index in ``upper``)."""
        n = upper.shape[0]
        lower_keys, order = _row_keys(lower, base).sort()
        columns = torch.arange(k + 1, device=upper.device)
        faces, owners = [], []
        for drop in range(k + 1):  # the face opposite vertex ``drop`` of every simplex
            face = upper[:, columns != drop]
            faces.append(_row_keys(face, base))
            owners.append(torch.arange(n, dtype=_LONG, device=upper.device))
        face_keys, owner = torch.stack(faces, 1).reshape(-1), torch.stack(owners, 1).reshape(-1)
        pos = torch.searchsorted(lower_keys, face_keys).clamp_max(max(lower_keys.numel() - 1, 0))
        if lower_keys.numel():
            found = lower_keys[pos] == face_keys
        else:
            found = torch.zeros_like(face_keys, dtype=torch.bool)
        if not torch.compiler.is_compiling() and not bool(found.all()):
            bad = int((~found).nonzero()[0, 0])
            simplex = upper[owner[bad]].tolist()
            raise ValueError(
                f"{who}: the complex is not closed: {k}-simplex {simplex} has a face that is not among "
                f"the {k - 1}-simplices"
            )
        return torch.stack([order[pos], owner])

    @staticmethod
    def _relations(rows: list[Tensor], boundary: tuple[Tensor, ...]) -> dict[str, Tensor]:
        offsets = [0]
        for r in rows:
            offsets.append(offsets[-1] + r.shape[0])
        device = rows[0].device
        empty = torch.zeros(2, 0, dtype=_LONG, device=device)
        down, up, upper, lower = [empty], [empty], [empty], [empty]
        for k, (face, simplex) in enumerate(boundary, start=1):
            face_cell, simplex_cell = face + offsets[k - 1], simplex + offsets[k]
            down.append(torch.stack([face_cell, simplex_cell]))  # the simplex hears its faces
            up.append(torch.stack([simplex_cell, face_cell]))  # the face hears its cofaces
            a, b = _pairs_sharing(simplex, face)  # faces sharing this coface: upper, dim k - 1
            upper.append(torch.stack([a + offsets[k - 1], b + offsets[k - 1]]))
            a, b = _pairs_sharing(face, simplex)  # simplices sharing this face: lower, dim k
            lower.append(torch.stack([a + offsets[k], b + offsets[k]]))
        return {
            "boundary": torch.cat(down, 1),
            "coboundary": torch.cat(up, 1),
            "upper": torch.cat(upper, 1),
            "lower": torch.cat(lower, 1),
        }

    # -- views --------------------------------------------------------------------------------
    @property
    def max_dim(self) -> int:
        """Highest simplex dimension stored (a dimension may hold no simplices)."""
        return len(self.simplices) - 1

    @property
    def num_vertices(self) -> int:
        return self.simplices[0].shape[0]

    @property
    def counts(self) -> tuple[int, ...]:
        """Number of simplices per dimension, ``(n_0, ..., n_max_dim)``."""
        return tuple(s.shape[0] for s in self.simplices)

    @property
    def offsets(self) -> tuple[int, ...]:
        """First cell of every dimension, and ``num_cells`` last: ``(0, n_0, n_0 + n_1, ...)``."""
        out = [0]
        for n in self.counts:
            out.append(out[-1] + n)
        return tuple(out)

    @property
    def num_cells(self) -> int:
        return self.offsets[-1]

    @property
    def device(self) -> torch.device:
        return self.batch.device

    @property
    def cell_dim(self) -> Tensor:
        """``(num_cells,)`` int64: the dimension of every cell (from the static counts: no
        data-dependent shape, so it traces under ``torch.compile``)."""
        return torch.cat(
            [torch.full((count,), k, dtype=_LONG, device=self.device) for k, count in enumerate(self.counts)]
        )

    @property
    def cell_batch(self) -> Tensor:
        """``(num_cells,)`` int64: the point cloud of every cell (that of its first vertex)."""
        return torch.cat([self.batch[s[:, 0]] for s in self.simplices])

    def relation(self, name: str) -> Tensor:
        """``(2, M)`` int64 cell indices (sender, receiver) of one of :data:`RELATIONS`."""
        if name not in self.relations:
            raise ValueError(f"SimplicialComplex: unknown relation {name!r}; expected one of {RELATIONS}")
        return self.relations[name]

    def to(self, device: torch.device | str) -> SimplicialComplex:
        """The same complex with every index tensor on ``device``."""
        return SimplicialComplex(
            tuple(s.to(device) for s in self.simplices),
            self.batch.to(device),
            self.num_graphs,
            tuple(b.to(device) for b in self.boundary),
            {k: v.to(device) for k, v in self.relations.items()},
        )

    def pool(self, x: Tensor, reduce: str = "mean", dims: Sequence[int] | None = None) -> Tensor:
        r"""Pool per-cell values over the cells of every point cloud.

        Parameters
        ----------
        x : Tensor, (num_cells, ...)
            Per-cell values in cell order (e.g. an output of
            :class:`~gatorch.nets.csmpn.CSMPN`).
        reduce : {"mean", "sum"}
        dims : sequence of int, optional
            Only pool the cells of these simplex dimensions (default: all).

        Returns
        -------
        Tensor, (num_graphs, ...)
            Zeros for a cloud without pooled cells.
        """
        if not isinstance(x, Tensor) or x.ndim == 0 or x.shape[0] != self.num_cells:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"SimplicialComplex.pool: expected x of shape ({self.num_cells}, ...), got {got}"
            )
        if reduce not in ("mean", "sum"):
            raise ValueError(f"SimplicialComplex.pool: reduce must be 'mean' or 'sum', got {reduce!r}")
        cells = self.cell_batch
        if dims is not None:
            bad = [d for d in dims if not isinstance(d, int) or not 0 <= d <= self.max_dim]
            if bad:
                raise ValueError(
                    f"SimplicialComplex.pool: dims must be simplex dimensions in [0, {self.max_dim}], "
                    f"got {bad}"
                )
            wanted = set(dims)
            keep = torch.cat(
                [
                    torch.full((count,), k in wanted, dtype=torch.bool, device=x.device)
                    for k, count in enumerate(self.counts)
                ]
            )
        else:
            keep = None
        cells = cells.to(x.device)
        if keep is not None:  # zero weight for the other cells (a mask: no data-dependent shape)
            x = torch.where(keep.view(-1, *([1] * (x.ndim - 1))), x, x.new_zeros(()))
        out = x.new_zeros(self.num_graphs, *x.shape[1:]).index_add(0, cells, x)
        if reduce == "mean":
            weight = x.new_ones(cells.shape[0]) if keep is None else keep.to(x.dtype)
            count = x.new_zeros(self.num_graphs).index_add(0, cells, weight)
            out = out / count.clamp_min(1.0).view(-1, *([1] * (x.ndim - 1)))
        return out


def rips_lift(
    positions: Tensor,
    radius: float | None = None,
    max_dim: int = RIPS_MAX_DIM,
    batch: Tensor | None = None,
) -> SimplicialComplex:
    r"""Vietoris-Rips complex of one or several point clouds, up to dimension 2.

    Vertices are the points; ``{i, j}`` is an edge when :math:`\lVert x_i - x_j \rVert
    \le` ``radius`` (Euclidean norm of the coordinates, the points in one cloud); a
    triangle ``{i, j, k}`` is present when its three edges are (the flag / clique
    complex of the radius graph). ``radius=None`` (or ``inf``) joins every pair of a
    cloud (the full complex, as CSMPN's convex-hull experiment uses). Distances are
    computed from coordinate differences (``torch.cdist`` without the matrix-product
    shortcut), so orthogonal maps and translations change them only by rounding; points
    at exactly ``radius`` are joined.

    Simplices are listed lexicographically by their sorted global vertex indices (not
    grouped by cloud): relabelling the vertices relabels and reorders the simplices,
    nothing more (``simplices[k]`` of the relabelled clouds, mapped back, is the same set).

    Parameters
    ----------
    positions : Tensor
        ``(N, n)`` points (with ``batch``) or ``(B, P, n)``: ``B`` clouds of ``P`` points,
        flattened to ``N = B P`` vertices, cloud ``b`` holding vertices ``b P .. b P + P - 1``.
    radius : float or None
        Edge length threshold, ``> 0``; ``None`` or ``inf``: all pairs.
    max_dim : {0, 1, 2}
        Highest simplex dimension built.
    batch : Tensor, (N,) int64, optional
        Cloud of every point for ``(N, n)`` positions (any order; default: one cloud).

    Returns
    -------
    SimplicialComplex
        On the device of ``positions``.

    Examples
    --------
    >>> import torch
    >>> square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    >>> rips_lift(square, radius=1.0).counts
    (4, 4, 0)
    >>> rips_lift(square, radius=1.5).simplices[2].tolist()
    [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]
    """
    who = "rips_lift"
    if not isinstance(positions, Tensor):
        raise TypeError(f"{who}: positions must be a torch.Tensor, got {type(positions).__name__}")
    if not positions.is_floating_point():
        raise TypeError(f"{who}: positions must be a floating-point tensor, got dtype {positions.dtype}")
    if positions.ndim not in (2, 3):
        raise ValueError(
            f"{who}: positions must have shape (N, n) or (B, P, n), got {tuple(positions.shape)}"
        )
    if not isinstance(max_dim, int) or isinstance(max_dim, bool) or not 0 <= max_dim <= RIPS_MAX_DIM:
        raise ValueError(f"{who}: max_dim must be an int in [0, {RIPS_MAX_DIM}], got {max_dim!r}")
    if radius is not None:
        if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not radius > 0:
            raise ValueError(f"{who}: radius must be a number > 0 or None (all pairs), got {radius!r}")
        if math.isinf(radius):
            radius = None
    device = positions.device
    if positions.ndim == 3:
        if batch is not None:
            raise ValueError(
                f"{who}: batch is implied by (B, P, n) positions; pass (N, n) positions with a batch, "
                f"got positions {tuple(positions.shape)} and a batch"
            )
        clouds, size, space = positions.shape
        batch = torch.arange(clouds, device=device).repeat_interleave(size)
        positions = positions.reshape(clouds * size, space)
        num_graphs = clouds
    else:
        if batch is None:
            batch = torch.zeros(positions.shape[0], dtype=_LONG, device=device)
        _check_index_tensor(who, "batch", batch, 1)
        if batch.shape[0] != positions.shape[0]:
            raise ValueError(
                f"{who}: batch must have shape ({positions.shape[0]},) (one cloud per point), "
                f"got {tuple(batch.shape)}"
            )
        batch = batch.to(device)
        if batch.numel() and int(batch.min()) < 0:
            raise ValueError(f"{who}: batch entries must be >= 0, got minimum {int(batch.min())}")
        num_graphs = int(batch.max()) + 1 if batch.numel() else 0
    num_vertices = positions.shape[0]

    # dense (clouds, P, n) layout; within a cloud, local order = global vertex order
    order = torch.argsort(batch, stable=True)
    cloud_of = batch[order]
    sizes = torch.bincount(batch, minlength=num_graphs)
    width = int(sizes.max()) if sizes.numel() else 0
    local = torch.arange(num_vertices, device=device) - (torch.cumsum(sizes, 0) - sizes)[cloud_of]
    table = torch.full((num_graphs, width), -1, dtype=_LONG, device=device)
    table[cloud_of, local] = order
    dense = positions.new_zeros(num_graphs, width, positions.shape[1])
    dense[cloud_of, local] = positions[order]
    valid = table >= 0
    adjacent = valid[:, :, None] & valid[:, None, :]
    if radius is not None:
        dist = torch.cdist(dense, dense, compute_mode="donot_use_mm_for_euclid_dist")
        adjacent &= dist <= radius
    later = torch.ones(width, width, dtype=torch.bool, device=device).triu(1)  # j > i
    adjacent &= ~torch.eye(width, dtype=torch.bool, device=device)

    simplices: list[Tensor] = []
    if max_dim >= 1:
        b, i, j = (adjacent & later).nonzero(as_tuple=True)
        simplices.append(torch.stack([table[b, i], table[b, j]], 1))
        if max_dim >= 2:
            common = adjacent[b, i] & adjacent[b, j] & later[j]  # (edges, P): k adjacent to both, k > j
            e, k = common.nonzero(as_tuple=True)
            simplices.append(torch.stack([table[b[e], i[e]], table[b[e], j[e]], table[b[e], k]], 1))
    # rows are sorted (local order is global order); list them lexicographically in global index
    simplices = [s[torch.argsort(_row_keys(s, max(num_vertices, 1)))] for s in simplices]
    return SimplicialComplex.from_simplices(num_vertices, simplices, batch=batch, num_graphs=num_graphs)
