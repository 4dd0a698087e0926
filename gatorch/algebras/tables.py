"""Product tables of a Clifford algebra, built with numpy from basis-blade bitmaps.

A basis blade is a bitmap over the ``n`` basis vectors (bit ``i`` set means
``e_i`` is a factor). The geometric product of two blades is the blade of the
XOR of their bitmaps, times a sign from reordering the factors and the metric
of the shared factors. Everything here is vectorised over all ``dim x dim``
blade pairs; nothing loops over pairs in Python.

Bilinear products are stored as sparse term lists ``(i, j, k, s)`` meaning
``out[k] += s * x[i] * y[j]``: only the non-zero entries of the Cayley tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import torch
from torch._subclasses.fake_tensor import unset_fake_temporarily

from gatorch.algebras.store import Store, holds_data

__all__ = ["BilinearTable", "blade_product", "holds_data", "shortlex_bitmaps"]


def shortlex_bitmaps(n: int) -> np.ndarray:
    """Bitmaps of all ``2**n`` blades in shortlex order (by grade, then lexicographic).

    Vectorised (``O(n * 2**n)``): within a grade, index set ``A`` comes before ``B`` when the
    lowest basis vector in which they differ is in ``A``, that is when the bit-reversed
    bitmap of ``A`` is the larger.
    """
    if n <= 6:  # the reference construction, kept for the small algebras
        out = [0]
        for k in range(1, n + 1):
            for combo in combinations(range(n), k):
                out.append(sum(1 << i for i in combo))
        return np.asarray(out, dtype=np.int64)
    bm = np.arange(1 << n, dtype=np.int64)
    rev = np.zeros_like(bm)
    for i in range(n):
        rev |= ((bm >> i) & 1) << (n - 1 - i)
    return bm[np.lexsort((-rev, popcount(bm)))]


def popcount(a: np.ndarray) -> np.ndarray:
    """Number of set bits, elementwise, for non-negative int64 arrays below 2**32."""
    a = np.asarray(a).astype(np.int64)
    if _BITWISE_COUNT is not None:  # numpy >= 2.0
        return _BITWISE_COUNT(a).astype(np.int64)
    count = np.zeros_like(a)
    while np.any(a):
        count += a & 1
        a = a >> 1
    return count


_BITWISE_COUNT = getattr(np, "bitwise_count", None)


def reorder_sign(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sign ``(-1)**swaps`` of bringing ``e_A e_B`` into canonical (ascending) order.

    For every factor of ``A``, count the factors of ``B`` with a smaller index:
    each must be swapped past it once.
    """
    a = np.asarray(a, dtype=np.int64) >> 1
    b = np.asarray(b, dtype=np.int64)
    swaps = np.zeros(np.broadcast(a, b).shape, dtype=np.int64)
    while np.any(a):
        swaps += popcount(a & b)
        a = a >> 1
    return np.where(swaps % 2 == 0, 1, -1).astype(np.int64)


def metric_factor(common: np.ndarray, metric: np.ndarray) -> np.ndarray:
    """Product of ``metric[i]`` over the set bits ``i`` of ``common`` (elementwise)."""
    out = np.ones(common.shape, dtype=np.float64)
    for i, m in enumerate(metric):
        out = np.where((common >> i) & 1, out * m, out)
    return out


def blade_product(bitmaps: np.ndarray, metric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geometric product of every pair of blades.

    Returns
    -------
    result_bitmap : (dim, dim) int64
        Bitmap of ``e_i e_j`` (``bitmaps[i] ^ bitmaps[j]``).
    sign : (dim, dim) float64
        Coefficient of that blade in ``e_i e_j``: +-1, or 0 when a shared
        factor is degenerate.
    """
    a = bitmaps[:, None]
    b = bitmaps[None, :]
    sign = reorder_sign(a, b) * metric_factor(a & b, metric)
    return a ^ b, sign


@dataclass(frozen=True, eq=False)
class BilinearTable:
    """Sparse bilinear map ``out[k] = sum s * x[i] * y[j]`` over its non-zero terms.

    Attributes
    ----------
    name : str
        Human-readable name (for error messages and repr).
    i, j, k : (nnz,) int64
        Component indices of the left operand, right operand and output.
    s : (nnz,) float64
        Coefficients (non-zero).
    dims : tuple[int, int, int]
        Sizes of the left, right and output components.
    key : str
        Identifies an algebra's table (``"<metric>;<start_index>;<product>[;x|;y]"``) so
        that a compiled graph can name it in a custom-op call; empty for other tables.
    """

    name: str
    i: np.ndarray
    j: np.ndarray
    k: np.ndarray
    s: np.ndarray
    dims: tuple[int, int, int]
    key: str = ""
    #: Per output component, its terms ``(i, j, s)`` as Python scalars (for generated code).
    terms_by_output: tuple[tuple[tuple[int, int, float], ...], ...] = field(init=False, repr=False)
    #: Terms padded to the same count ``pad`` per output, as int64 / float64 tensors of
    #: shape ``(dout * pad,)``: ``pad_i``, ``pad_j``, ``pad_s`` (padding has ``s = 0``).
    pad: int = field(init=False, repr=False)
    pad_i: torch.Tensor = field(init=False, repr=False)
    pad_j: torch.Tensor = field(init=False, repr=False)
    pad_s: torch.Tensor = field(init=False, repr=False)
    #: The table's own derived state (its transposed tables, its index tensors per device).
    store: Store = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        dout = self.dims[2]
        per_out: list[list[tuple[int, int, float]]] = [[] for _ in range(dout)]
        columns = (self.i.tolist(), self.j.tolist(), self.k.tolist(), self.s.tolist())
        for a, b, c, v in zip(*columns, strict=True):
            per_out[c].append((a, b, float(v)))
        # start each accumulation with a +1 term where possible (saves a negation)
        terms = tuple(tuple(sorted(t, key=lambda term: term[2] != 1.0)) for t in per_out)
        counts = np.bincount(self.k, minlength=dout)
        m = max(int(counts.max()) if counts.size else 0, 1)
        slot = np.arange(self.nnz) - np.repeat(np.cumsum(counts) - counts, counts)
        flat = self.k * m + slot
        pi = np.zeros(dout * m, dtype=np.int64)
        pj = np.zeros(dout * m, dtype=np.int64)
        ps = np.zeros(dout * m, dtype=np.float64)
        pi[flat], pj[flat], ps[flat] = self.i, self.j, self.s
        put = object.__setattr__
        put(self, "terms_by_output", terms)
        put(self, "pad", m)
        put(self, "store", Store())
        # real tensors even when a compiler stage builds the table under a fake-tensor mode
        # (a traced backward asks for the transposed tables); they are stored and reused
        with unset_fake_temporarily():
            put(self, "pad_i", torch.from_numpy(pi))
            put(self, "pad_j", torch.from_numpy(pj))
            put(self, "pad_s", torch.from_numpy(ps))

    @classmethod
    def from_terms(
        cls,
        name: str,
        i: np.ndarray,
        j: np.ndarray,
        k: np.ndarray,
        s: np.ndarray,
        dims: tuple[int, int, int],
        key: str = "",
    ) -> BilinearTable:
        """Build from term arrays, dropping zeros and sorting by (output, left, right)."""
        s = np.asarray(s, dtype=np.float64)
        keep = s != 0
        i, j, k, s = (np.asarray(a)[keep] for a in (i, j, k, s))
        order = np.lexsort((j, i, k))
        return cls(
            name,
            i[order].astype(np.int64),
            j[order].astype(np.int64),
            k[order].astype(np.int64),
            s[order],
            (int(dims[0]), int(dims[1]), int(dims[2])),
            key,
        )

    @property
    def nnz(self) -> int:
        return int(self.s.shape[0])

    def dense(self) -> np.ndarray:
        """The dense ``(dx, dy, dout)`` Cayley tensor (reference and tests only)."""
        out = np.zeros(self.dims, dtype=np.float64)
        out[self.i, self.j, self.k] = self.s
        return out

    def transposed(self, which: str) -> BilinearTable:
        """Tables of the backward pass.

        ``"x"``: ``grad_x[i] = sum s * g[k] * y[j]``, a bilinear map of ``(g, y)``.
        ``"y"``: ``grad_y[j] = sum s * x[i] * g[k]``, a bilinear map of ``(x, g)``.
        """
        dx, dy, dout = self.dims
        if which not in ("x", "y"):
            raise ValueError(f"which must be 'x' or 'y', got {which!r}")
        key = f"{self.key};{which}" if self.key else ""

        def build() -> BilinearTable:
            if which == "x":
                return BilinearTable.from_terms(
                    f"{self.name}.grad_x", self.k, self.j, self.i, self.s, (dout, dy, dx), key
                )
            return BilinearTable.from_terms(
                f"{self.name}.grad_y", self.i, self.k, self.j, self.s, (dx, dout, dy), key
            )

        return self.store.plan(("transposed", which), build)
