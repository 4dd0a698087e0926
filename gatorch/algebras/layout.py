r"""Layouts: multivectors that store only some grades, and what they need, built for those grades.

A :class:`Layout` names the grades a multivector channel stores (``grades=(0, 1, 2)``, the
even grades, all of them). Its blades are the algebra's blades of those grades in the
algebra's canonical (shortlex) order, so each grade is a contiguous slice of the layout
and ``project`` / ``embed`` are slices and zero padding.

Everything here is built from the signature (the metric tuple) and the bitmaps of the
blades a layout keeps, never from the algebra's ``2**n x 2**n`` tables:

* :func:`layout_product_table`: a bilinear product (geometric, outer, left contraction)
  restricted to (left layout, right layout) -> output layout, as a
  :class:`~gatorch.algebras.tables.BilinearTable` the existing kernels run unchanged.
  Built in ``O(left.dim * right.dim)``.
* :func:`layout_equivariant_basis`: the equivariant linear maps between two layouts, grade
  block by grade block, as sparse ``(out blade, in blade, coefficient)`` lists. It is,
  by definition, the subset of the maps of ``alg.equivariant_basis(group)`` whose input
  and output grades both lie in the layouts, in the same order and normalisation, so a
  layer between layouts equals the full layer with zero weights on the other maps.

The cost model: a layout of ``d`` blades costs ``d`` per channel in memory, a product
between layouts costs its number of terms (for grades (0, 1, 2) of Cl(8, 0): 37 blades,
613 terms, against 256 blades and 65536 terms for the full algebra).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from gatorch.algebras.tables import BilinearTable, metric_factor, popcount, reorder_sign

if TYPE_CHECKING:
    from gatorch.algebras.algebra import AlgebraData

__all__ = [
    "Layout",
    "LayoutBasis",
    "check_layout",
    "layout_equivariant_basis",
    "layout_invariant_components",
    "layout_path_table",
    "layout_product_table",
    "layout_table_from_key",
    "layout_table_key",
]

#: The products :func:`layout_product_table` builds.
LAYOUT_PRODUCTS = ("gp", "outer", "lcontract", "regressive")


def _metric_of(alg: object, who: str) -> tuple[tuple[int, ...], int]:
    """``(metric, start_index)`` of an algebra, or of a metric sequence (start index by the default rule)."""
    metric = getattr(alg, "metric", None)
    if isinstance(metric, tuple) and hasattr(alg, "_start_index"):
        return metric, int(alg._start_index)
    if isinstance(alg, (str, bytes)) or not isinstance(alg, (Sequence, np.ndarray, torch.Tensor)):
        raise TypeError(
            f"{who}: expected an Algebra or a sequence of metric values in {{1, -1, 0}}, "
            f"got {type(alg).__name__} {alg!r}"
        )
    values = alg.tolist() if isinstance(alg, (np.ndarray, torch.Tensor)) else list(alg)
    for i, m in enumerate(values):
        if isinstance(m, bool) or m not in (1, -1, 0):
            raise ValueError(f"{who}: metric entries must be -1, 0 or 1, got entry {i} = {m!r} in {values!r}")
    metric_t = tuple(int(m) for m in values)
    return metric_t, 0 if 0 in metric_t else 1


def _grade_offset(n: int, k: int) -> int:
    """Index of the first blade of grade ``k`` in the full shortlex order."""
    return sum(math.comb(n, i) for i in range(k))


def grade_bitmaps(n: int, k: int) -> np.ndarray:
    """Bitmaps of the grade-``k`` blades of an ``n``-vector algebra, in shortlex (lexicographic) order."""
    if k == 0:
        return np.zeros(1, dtype=np.int64)
    return np.fromiter(
        (sum(1 << i for i in c) for c in combinations(range(n), k)), dtype=np.int64, count=math.comb(n, k)
    )


def rank_in_grade(bitmaps: np.ndarray, n: int) -> np.ndarray:
    """Position of each blade within its grade (lexicographic rank of its index set), vectorised.

    The number of index sets of the same size that come first: at each unset position
    ``j`` before the last set bit, every set that agrees so far and takes ``j`` next comes
    first, ``C(n - 1 - j, k - seen - 1)`` of them. No ``2**n`` array is built.
    """
    b = np.asarray(bitmaps, dtype=np.int64)
    k = popcount(b)
    binom = np.array([[math.comb(a, c) for c in range(n + 1)] for a in range(n + 1)], dtype=np.int64)
    rank = np.zeros(b.shape, dtype=np.int64)
    seen = np.zeros(b.shape, dtype=np.int64)
    for j in range(n):
        bit = (b >> j) & 1
        left = k - seen - 1  # elements still to choose after this one
        add = (bit == 0) & (left >= 0)
        rank += np.where(add, binom[n - 1 - j, np.clip(left, 0, n)], 0)
        seen += bit
    return rank


@dataclass(frozen=True, eq=False, repr=False)
class Layout:
    """The grades a multivector channel stores, in an algebra's canonical blade order.

    Parameters
    ----------
    alg : Algebra or sequence of {1, -1, 0}
        The algebra (or its metric, in basis order: what a layout needs of it).
    grades : iterable of int
        Distinct grades in ``[0, n]``; stored sorted.

    Attributes
    ----------
    metric : tuple of int
        Square of each basis vector.
    start_index : int
        Index of the first basis vector's name (the algebra's).
    grades : tuple of int
        The stored grades, ascending.
    n : int
    dim : int
        Number of stored blades (the size of the last axis of a layout tensor).
    full_dim : int
        ``2**n``, the blades of the full algebra.

    Notes
    -----
    The blades are the algebra's blades of the stored grades in the algebra's order
    (grade by grade, lexicographic within a grade), so grades are contiguous slices and
    :meth:`project` / :meth:`embed` are slices and zero padding (no index tensors).
    Layouts are immutable and hashable; equality goes by (metric, start index, grades).

    Examples
    --------
    >>> from gatorch import PGA3
    >>> from gatorch.algebras import Layout
    >>> lay = Layout(PGA3, (0, 1, 2))
    >>> lay.dim, lay.grade_slice(2), lay.blades.tolist()[-1]
    (11, slice(5, 11, None), 10)
    """

    metric: tuple[int, ...]
    start_index: int
    grades: tuple[int, ...]
    n: int = field(init=False)
    dim: int = field(init=False)
    full_dim: int = field(init=False)
    #: ``(start, stop)`` of each stored grade in the full order, merged where adjacent.
    runs: tuple[tuple[int, int], ...] = field(init=False)
    _offsets: dict[int, int] = field(init=False)

    def __init__(self, alg: AlgebraData | Sequence[int], grades: Iterable[int]) -> None:
        metric, start = _metric_of(alg, "Layout")
        n = len(metric)
        if isinstance(grades, (str, bytes)) or not isinstance(grades, Iterable):
            raise TypeError(f"Layout: expected grades as an iterable of ints in [0, {n}], got {grades!r}")
        gs = list(grades)
        for g in gs:
            if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or not 0 <= g <= n:
                raise ValueError(
                    f"Layout: expected grades as ints in [0, {n}] (n = {n}), got {g!r} in {gs!r}"
                )
        if len(set(gs)) != len(gs):
            raise ValueError(f"Layout: expected distinct grades, got duplicates in {gs!r}")
        if not gs:
            raise ValueError("Layout: expected at least one grade, got none")
        put = object.__setattr__
        put(self, "metric", metric)
        put(self, "start_index", start)
        put(self, "grades", tuple(sorted(int(g) for g in gs)))
        put(self, "n", n)
        put(self, "full_dim", 1 << n)
        offsets: dict[int, int] = {}
        runs: list[tuple[int, int]] = []
        pos = 0
        for g in self.grades:
            offsets[g] = pos
            start_full, size = _grade_offset(n, g), math.comb(n, g)
            pos += size
            if runs and runs[-1][1] == start_full:
                runs[-1] = (runs[-1][0], start_full + size)
            else:
                runs.append((start_full, start_full + size))
        put(self, "dim", pos)
        put(self, "runs", tuple(runs))
        put(self, "_offsets", offsets)

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    def full(cls, alg: AlgebraData | Sequence[int]) -> Layout:
        """All grades (today's multivectors)."""
        metric, _ = _metric_of(alg, "Layout.full")
        return cls(alg, range(len(metric) + 1))

    @classmethod
    def even(cls, alg: AlgebraData | Sequence[int]) -> Layout:
        """The even grades (0, 2, 4, ...): the even subalgebra."""
        metric, _ = _metric_of(alg, "Layout.even")
        return cls(alg, range(0, len(metric) + 1, 2))

    @classmethod
    def up_to(cls, alg: AlgebraData | Sequence[int], k: int) -> Layout:
        """Grades ``0, 1, ..., k`` (``up_to(alg, 1)``: scalars and vectors, as L-GATr's slim net)."""
        metric, _ = _metric_of(alg, "Layout.up_to")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= len(metric):
            raise ValueError(f"Layout.up_to: expected k an int in [0, {len(metric)}], got {k!r}")
        return cls(alg, range(int(k) + 1))

    # -- identity ------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Layout):
            return NotImplemented
        return (self.metric, self.start_index, self.grades) == (other.metric, other.start_index, other.grades)

    def __hash__(self) -> int:
        return hash((self.metric, self.start_index, self.grades))

    def __repr__(self) -> str:
        return f"Layout(metric={list(self.metric)}, grades={self.grades}, dim={self.dim})"

    # -- blades ----------------------------------------------------------------------------------
    @property
    def is_full(self) -> bool:
        """Whether every grade is stored."""
        return self.dim == self.full_dim

    @property
    def blades(self) -> np.ndarray:
        """Index of each stored blade in the full algebra's order, ``(dim,)`` int64."""
        return np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in self.runs])

    @property
    def bitmaps(self) -> np.ndarray:
        """Bitmap of each stored blade (bit ``i`` = basis vector ``i``), ``(dim,)`` int64."""
        return np.concatenate([grade_bitmaps(self.n, g) for g in self.grades])

    @property
    def blade_grades(self) -> np.ndarray:
        """Grade of each stored blade, ``(dim,)`` int64."""
        return np.concatenate([np.full(math.comb(self.n, g), g, dtype=np.int64) for g in self.grades])

    def blade_names(self) -> tuple[str, ...]:
        """Names of the stored blades (the algebra's names, e.g. ``'e01'``)."""
        sep = "" if self.start_index + self.n - 1 < 10 else "_"
        out = []
        for bm in self.bitmaps.tolist():
            idx = [str(self.start_index + i) for i in range(self.n) if (bm >> i) & 1]
            out.append("e" + sep.join(idx) if idx else "1")
        return tuple(out)

    def has_grade(self, k: int) -> bool:
        """Whether grade ``k`` is stored."""
        return k in self._offsets

    def grade_slice(self, k: int) -> slice:
        """Components of grade ``k`` within the layout (a contiguous slice of its last axis)."""
        if k not in self._offsets:
            raise ValueError(f"{self!r} does not store grade {k!r}; it stores grades {self.grades}")
        start = self._offsets[k]
        return slice(start, start + math.comb(self.n, k))

    def index_of_bitmaps(self, bitmaps: np.ndarray) -> np.ndarray:
        """Layout index of each blade given by its bitmap; ``-1`` for blades the layout does not store."""
        b = np.asarray(bitmaps, dtype=np.int64)
        g = popcount(b)
        base = np.full(b.shape, -1, dtype=np.int64)
        for k, off in self._offsets.items():
            base = np.where(g == k, off, base)
        return np.where(base >= 0, base + rank_in_grade(b, self.n), -1)

    # -- tensors ---------------------------------------------------------------------------------
    def _check(self, x: object, size: int, what: str, who: str) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"Layout.{who}: expected a torch.Tensor, got {type(x).__name__}")
        if x.ndim == 0 or x.shape[-1] != size:
            raise ValueError(
                f"Layout.{who}: expected last dimension {size} ({what}), got shape {tuple(x.shape)}"
            )

    def project(self, x: Tensor) -> Tensor:
        """``(..., full_dim) -> (..., dim)``: keep the stored blades (a view for one run of grades)."""
        self._check(x, self.full_dim, f"the {self.full_dim} blades of the full algebra", "project")
        if len(self.runs) == 1:
            a, b = self.runs[0]
            return x[..., a:b]
        return torch.cat([x[..., a:b] for a, b in self.runs], dim=-1)

    def embed(self, x: Tensor) -> Tensor:
        """``(..., dim) -> (..., full_dim)``: the full multivector, zero on the blades not stored."""
        self._check(x, self.dim, f"the {self.dim} blades of {self!r}", "embed")
        pieces, pos, last = [], 0, 0
        for a, b in self.runs:
            if a > last:
                pieces.append(x.new_zeros(*x.shape[:-1], a - last))
            pieces.append(x[..., pos : pos + b - a])
            pos, last = pos + b - a, b
        if last < self.full_dim:
            pieces.append(x.new_zeros(*x.shape[:-1], self.full_dim - last))
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-1)

    def check_same_algebra(self, other: Layout, who: str) -> None:
        """Raise ``ValueError`` unless ``other`` is a layout of the same algebra."""
        if not isinstance(other, Layout):
            raise TypeError(f"{who}: expected a Layout, got {type(other).__name__}")
        if (other.metric, other.start_index) != (self.metric, self.start_index):
            raise ValueError(
                f"{who}: expected layouts of one algebra (metric {list(self.metric)}), "
                f"got metric {list(other.metric)}"
            )


# -- products ---------------------------------------------------------------------------------------
def layout_product_table(left: Layout, right: Layout, out: Layout, product: str = "gp") -> BilinearTable:
    """A bilinear product restricted to (left layout, right layout) -> output layout.

    Builds only the terms ``(i, j, k, s)`` with blade ``i`` of ``left``, ``j`` of ``right`` and
    their product blade ``k = i XOR j`` in ``out``: ``O(left.dim * right.dim)`` work, never
    the algebra's ``4**n`` pairs. ``s`` is the reordering sign times the metric of the shared
    vectors (zero, and dropped, when a shared vector is degenerate).

    Parameters
    ----------
    left, right, out : Layout
        Layouts of one algebra.
    product : {"gp", "outer", "lcontract", "regressive"}
        Geometric product, outer product (``i & j == 0``), left contraction
        (``i`` a subset of ``j``), regressive product (the join,
        ``x v y = undual(dual(x) ^ dual(y))``: ``i | j`` is every vector, the result
        ``i & j``; the signs of the algebra's ``regressive_table``).

    Returns
    -------
    BilinearTable
        Indices into the layouts, ``dims = (left.dim, right.dim, out.dim)``; run it with
        :func:`gatorch.functional.bilinear.bilinear` on ``(..., left.dim)`` and
        ``(..., right.dim)`` tensors. Its ``key`` names it (:func:`layout_table_key`), so a
        compiled graph runs it as one opaque kernel, as it runs the algebra's tables.
    """
    for name, lay in (("left", left), ("right", right), ("out", out)):
        if not isinstance(lay, Layout):
            raise TypeError(f"layout_product_table: expected {name} a Layout, got {type(lay).__name__}")
    left.check_same_algebra(right, "layout_product_table")
    left.check_same_algebra(out, "layout_product_table")
    if product not in LAYOUT_PRODUCTS:
        raise ValueError(f"layout_product_table: expected product one of {LAYOUT_PRODUCTS}, got {product!r}")
    a = left.bitmaps[:, None]
    b = right.bitmaps[None, :]
    full = (1 << left.n) - 1
    if product == "regressive":
        c = a & b
        keep = ((a | b) == full) & np.isin(popcount(c), out.grades)
    else:
        c = a ^ b
        keep = np.isin(popcount(c), out.grades)
    if product == "outer":
        keep &= (a & b) == 0
    elif product == "lcontract":
        keep &= (a & b) == a
    i, j = np.nonzero(keep)
    ab, bb = left.bitmaps[i], right.bitmaps[j]
    if product == "regressive":
        # dual(e_A) = reorder(A, A') e_A' (A' the complement); the outer product of the duals;
        # undual(e_M) = reorder(M', M) e_M'
        ca, cb = full ^ ab, full ^ bb
        s = (
            reorder_sign(ab, ca)
            * reorder_sign(bb, cb)
            * reorder_sign(ca, cb)
            * reorder_sign(ab & bb, ca | cb)
        )
        k = out.index_of_bitmaps(ab & bb)
    else:
        metric = np.asarray(left.metric, dtype=np.float64)
        s = reorder_sign(ab, bb) * metric_factor(ab & bb, metric)
        k = out.index_of_bitmaps(ab ^ bb)
    name = f"{product}[{left.grades} x {right.grades} -> {out.grades}]"
    key = layout_table_key(left, right, out, product)
    return BilinearTable.from_terms(name, i, j, k, s, (left.dim, right.dim, out.dim), key)


def _grades_key(grades: Iterable[int]) -> str:
    return ".".join(str(g) for g in grades)


def layout_table_key(
    left: Layout, right: Layout, out: Layout, product: str, path: tuple[int, int, int] | None = None
) -> str:
    """The :attr:`~gatorch.algebras.tables.BilinearTable.key` of a layout table.

    ``"<metric>;<start_index>;<product>@<left grades>@<right grades>@<out grades>[@<a.b.c>]"``,
    the optional last part a grade path (:func:`layout_path_table`). :func:`layout_table_from_key`
    rebuilds the table from it.
    """
    spec = "@".join([product, *(_grades_key(lay.grades) for lay in (left, right, out))])
    if path is not None:
        spec += "@" + _grades_key(path)
    return f"{','.join(str(m) for m in left.metric)};{left.start_index};{spec}"


def layout_table_from_key(alg: AlgebraData, spec: str) -> BilinearTable:
    """The layout table of ``alg`` named by the third part of a :func:`layout_table_key` (``spec``)."""
    product, *parts = spec.split("@")
    left, right, out = (Layout(alg, _parse_grades(p)) for p in parts[:3])
    table = layout_product_table(left, right, out, product)
    if len(parts) > 3:
        a, b, c = _parse_grades(parts[3])
        return layout_path_table(table, left, right, out, (a, b, c))
    return table


def _parse_grades(text: str) -> tuple[int, ...]:
    return tuple(int(g) for g in text.split(".")) if text else ()


def layout_path_table(
    table: BilinearTable, left: Layout, right: Layout, out: Layout, path: tuple[int, int, int]
) -> BilinearTable:
    """The terms of ``table`` (built by :func:`layout_product_table` for these layouts) of one
    grade path ``(a, b, c)``: left blade of grade ``a``, right of ``b``, output of ``c``."""
    if "@" not in table.key:
        raise ValueError(f"layout_path_table: expected a table of layout_product_table, got {table.name!r}")
    product = table.key.split(";")[2].split("@")[0]
    a, b, c = path
    m = left.blade_grades[table.i] == a
    m &= (right.blade_grades[table.j] == b) & (out.blade_grades[table.k] == c)
    return BilinearTable.from_terms(
        f"{table.name}{path}",
        table.i[m],
        table.j[m],
        table.k[m],
        table.s[m],
        table.dims,
        layout_table_key(left, right, out, product, path),
    )


# -- equivariant linear maps ------------------------------------------------------------------------
@dataclass(frozen=True)
class LayoutBasis:
    """The equivariant linear maps between two layouts, as sparse entry lists.

    Map ``m`` sends the input's component ``cols`` to the output's component ``rows`` with
    weight ``coefs`` for its entries ``starts[m]:starts[m + 1]`` (indices within the layouts).

    Attributes
    ----------
    blocks : tuple of (in_grade, out_grade)
        The block of each map, in basis order.
    rows, cols : (nnz,) int64
    coefs : (nnz,) float64
    maps : (nnz,) int64
        The map of each entry.
    num_maps : int
    """

    blocks: tuple[tuple[int, int], ...]
    rows: np.ndarray
    cols: np.ndarray
    coefs: np.ndarray
    maps: np.ndarray
    num_maps: int

    def dense(self, in_layout: Layout, out_layout: Layout) -> np.ndarray:
        """``(num_maps, out.dim, in.dim)`` dense matrices (tests and references only)."""
        out = np.zeros((self.num_maps, out_layout.dim, in_layout.dim))
        out[self.maps, self.rows, self.cols] = self.coefs
        return out


def _block_order(grades_in: tuple[int, ...], grades_out: tuple[int, ...]) -> list[tuple[int, int]]:
    """The blocks of the full basis order (diagonal blocks first, then by (in, out)), restricted."""
    diag = [(k, k) for k in grades_in if k in grades_out]
    off = [(a, b) for a in grades_in for b in grades_out if a != b]
    return diag + off


def _closed_form_kinds(metric: tuple[int, ...], group: str) -> bool:
    """Whether the closed form below covers this signature (checked against the numerical basis)."""
    r = metric.count(0)
    m = len(metric) - r
    return (r == 0 and m >= 1) or (r == 1 and m >= 2)


def _block_candidates(
    metric: tuple[int, ...], group: str, a: int, b: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Spanning maps of block ``a -> b`` as ``(in bitmaps, out bitmaps, coefficients)`` (monomial).

    Non-degenerate (r = 0): the grade projection (``a == b``); for Spin also
    ``x -> x I`` (``b == n - a``). One degenerate vector ``z`` (r = 1, E the rest): the
    projection; ``x_E -> z ^ x_E`` (``b == a + 1``); for Spin also ``x_E -> z ^ (x_E I_E)``
    (``b == 1 + m - a``), the E-pseudoscalar coefficient into the scalar, and the
    pseudoscalar coefficient into the scalar and into ``z``.
    """
    n = len(metric)
    full = (1 << n) - 1
    mf = np.asarray(metric, dtype=np.float64)
    cands: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    bm_a = grade_bitmaps(n, a)
    if a == b:
        cands.append((bm_a, bm_a, np.ones(bm_a.shape)))
    r = metric.count(0)
    spin = group == "spin"
    if r == 0:
        if spin and b == n - a:
            s = reorder_sign(bm_a, np.full_like(bm_a, full)) * metric_factor(bm_a, mf)
            cands.append((bm_a, full ^ bm_a, s.astype(np.float64)))
        return cands
    z = 1 << metric.index(0)
    e_mask = full ^ z
    m = n - 1
    src = bm_a[(bm_a & z) == 0]  # the E-part blades of grade a
    if b == a + 1 and src.size:
        cands.append((src, src | z, reorder_sign(np.full_like(src, z), src).astype(np.float64)))
    if spin:
        if b == 1 + m - a and src.size:
            comp = e_mask ^ src
            s = reorder_sign(src, np.full_like(src, e_mask)) * metric_factor(src, mf)
            s = s * reorder_sign(np.full_like(comp, z), comp)
            cands.append((src, comp | z, s.astype(np.float64)))
        one = np.ones(1)
        if a == m and b == 0:
            cands.append((np.array([e_mask]), np.array([0]), one))
        if a == n and b == 0:
            cands.append((np.array([full]), np.array([0]), one))
        if a == n and b == 1:
            cands.append((np.array([full]), np.array([z]), one))
    return cands


def layout_equivariant_basis(in_layout: Layout, out_layout: Layout, group: str = "pin") -> LayoutBasis:
    """The equivariant linear maps from ``in_layout`` to ``out_layout``, block by block.

    Defined as the maps of the algebra's ``equivariant_basis(group)`` whose input grade is
    stored by ``in_layout`` and output grade by ``out_layout``, in the same order
    (diagonal blocks by grade, then blocks by (input grade, output grade); within a block
    by the row-major position of the first non-zero) and normalisation (that entry is
    ``+1``). For non-degenerate algebras and algebras with one degenerate vector (PGA) the
    maps are built in closed form from the blade bitmaps of the blocks used: no
    ``2**n x 2**n`` matrix is formed. Other signatures restrict the algebra's numerically
    derived basis (``n <= 8``).

    Parameters
    ----------
    in_layout, out_layout : Layout
        Layouts of one algebra.
    group : {"pin", "spin"}

    Returns
    -------
    LayoutBasis
    """
    in_layout.check_same_algebra(out_layout, "layout_equivariant_basis")
    if group not in ("pin", "spin"):
        raise ValueError(f"layout_equivariant_basis: group must be 'pin' or 'spin', got {group!r}")
    metric = in_layout.metric
    n = len(metric)
    if metric.count(0) == n:
        raise ValueError(
            f"layout_equivariant_basis: metric {list(metric)} has no invertible vectors, so no versor group"
        )
    if not _closed_form_kinds(metric, group):
        return _restricted_numerical(in_layout, out_layout, group)
    blocks: list[tuple[int, int]] = []
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    coefs: list[np.ndarray] = []
    maps: list[np.ndarray] = []
    for a, b in _block_order(in_layout.grades, out_layout.grades):
        cands = _block_candidates(metric, group, a, b)
        if not cands:
            continue
        d_a = math.comb(n, a)
        keyed = []
        seen: set[int] = set()
        for src, dst, s in cands:
            ci, ro = rank_in_grade(src, n), rank_in_grade(dst, n)
            flat = ro * d_a + ci
            pos = set(flat.tolist())
            if pos & seen:  # overlapping supports would need a real echelon form
                return _restricted_numerical(in_layout, out_layout, group)
            seen |= pos
            first = int(np.argmin(flat))
            keyed.append((int(flat[first]), ro, ci, s * s[first]))  # first entry +1 (s is +-1)
        keyed.sort(key=lambda t: t[0])
        for _, ro, ci, s in keyed:
            blocks.append((a, b))
            rows.append(ro + out_layout.grade_slice(b).start)
            cols.append(ci + in_layout.grade_slice(a).start)
            coefs.append(s)
            maps.append(np.full(s.shape, len(blocks) - 1, dtype=np.int64))
    return _basis(blocks, rows, cols, coefs, maps)


def _basis(
    blocks: list[tuple[int, int]],
    rows: list[np.ndarray],
    cols: list[np.ndarray],
    coefs: list[np.ndarray],
    maps: list[np.ndarray],
) -> LayoutBasis:
    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    return LayoutBasis(
        tuple(blocks),
        cat(rows, np.int64),
        cat(cols, np.int64),
        cat(coefs, np.float64),
        cat(maps, np.int64),
        len(blocks),
    )


#: Largest algebra whose numerically derived basis :func:`layout_equivariant_basis` restricts.
_NUMERICAL_MAX_N = 8


def _restricted_numerical(in_layout: Layout, out_layout: Layout, group: str) -> LayoutBasis:
    """The algebra's numerical basis, restricted to the blocks the layouts store (small algebras)."""
    from gatorch.algebras.algebra import AlgebraData

    metric = in_layout.metric
    if len(metric) > _NUMERICAL_MAX_N:
        raise ValueError(
            f"layout_equivariant_basis: metric {list(metric)} ({metric.count(0)} degenerate vectors) "
            f"has no closed-form basis; expected at most {_NUMERICAL_MAX_N} basis vectors for the "
            f"numerical one, got {len(metric)}"
        )
    alg = AlgebraData.from_signature(metric, in_layout.start_index)
    basis = alg.equivariant_basis(group).numpy()
    grade_of = np.asarray(alg.grades)
    pos_in = {int(blade): i for i, blade in enumerate(in_layout.blades.tolist())}
    pos_out = {int(blade): i for i, blade in enumerate(out_layout.blades.tolist())}
    blocks, rows, cols, coefs, maps = [], [], [], [], []
    for mat in basis:
        r, c = np.nonzero(mat)
        a, b = int(grade_of[c[0]]), int(grade_of[r[0]])
        if not (in_layout.has_grade(a) and out_layout.has_grade(b)):
            continue
        blocks.append((a, b))
        rows.append(np.array([pos_out[int(x)] for x in r]))
        cols.append(np.array([pos_in[int(x)] for x in c]))
        coefs.append(mat[r, c])
        maps.append(np.full(r.shape, len(blocks) - 1))
    return _basis(blocks, rows, cols, coefs, maps)


def layout_invariant_components(layout: Layout, group: str = "pin", kind: str = "blades") -> tuple[int, ...]:
    """Layout indices of the invariant blades (``kind="blades"``) or coefficients (``"coefficients"``).

    The same sets as :func:`gatorch.functional.linear.invariant_components`, restricted to
    the layout: blades: the scalar, each degenerate vector (one-degenerate-vector algebras),
    the pseudoscalar for Spin; coefficients: the scalar, for Spin the pseudoscalar and, with
    a degenerate vector ``z``, the pseudoscalar of the other vectors.
    """
    if group not in ("pin", "spin"):
        raise ValueError(f"layout_invariant_components: group must be 'pin' or 'spin', got {group!r}")
    if kind not in ("blades", "coefficients"):
        raise ValueError(
            f"layout_invariant_components: kind must be 'blades' or 'coefficients', got {kind!r}"
        )
    metric = layout.metric
    n = len(metric)
    full = (1 << n) - 1
    if not _closed_form_kinds(metric, group):
        return _invariant_numerical(layout, group, kind)
    bms = [0]
    z = 1 << metric.index(0) if 0 in metric else 0
    if kind == "blades" and z:
        bms.append(z)
    if group == "spin":
        if kind == "coefficients" and z:
            bms.append(full ^ z)
        bms.append(full)
    idx = layout.index_of_bitmaps(np.array(sorted(set(bms))))
    return tuple(sorted(int(i) for i in idx if i >= 0))


def _invariant_numerical(layout: Layout, group: str, kind: str) -> tuple[int, ...]:
    """:func:`layout_invariant_components` from generic group generators (small algebras only)."""
    from gatorch.algebras.algebra import AlgebraData
    from gatorch.algebras.equivariant import versor_generators

    metric = layout.metric
    if len(metric) > _NUMERICAL_MAX_N:
        raise ValueError(
            f"layout_invariant_components: metric {list(metric)} has no closed form; expected at "
            f"most {_NUMERICAL_MAX_N} basis vectors for the numerical one, got {len(metric)}"
        )
    alg = AlgebraData.from_signature(metric, layout.start_index)
    gens = versor_generators(alg, group, np.random.default_rng(0), alg.n + 2)
    if kind == "coefficients":
        gens = [g.T for g in gens]
    eye = np.eye(alg.dim)
    fixed = [c for c in range(alg.dim) if all(np.allclose(g[:, c], eye[:, c], atol=1e-9) for g in gens)]
    pos = {int(blade): i for i, blade in enumerate(layout.blades.tolist())}
    return tuple(pos[c] for c in fixed if c in pos)


def check_layout(alg: object, layout: object, who: str, name: str = "layout") -> Layout | None:
    """``layout`` unchanged if it is a :class:`Layout` of ``alg`` (``None`` stays ``None``).

    The one check of a ``layout=`` argument: ``TypeError`` unless it is a ``Layout`` or
    ``None``, ``ValueError`` if it belongs to another algebra (another metric or basis
    names); both name ``who``, the argument and what came.
    """
    if layout is None:
        return None
    if not isinstance(layout, Layout):
        raise TypeError(
            f"{who}: expected {name} a gatorch.algebras.Layout or None, got {type(layout).__name__}"
        )
    metric, start = _metric_of(alg, who)
    if (layout.metric, layout.start_index) != (metric, start):
        raise ValueError(
            f"{who}: expected {name} of {alg!r} (metric {list(metric)}), "
            f"got a layout of metric {list(layout.metric)}"
        )
    return layout
