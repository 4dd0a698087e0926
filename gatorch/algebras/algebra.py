"""An algebra as data: one Clifford algebra Cl(p, q, r), its tables, bases and plans.

:class:`AlgebraData` is the bottom floor of gatorch: it imports nothing else from
gatorch, holds every table and the one :class:`~gatorch.algebras.store.Store` of derived
state. The user-facing :class:`gatorch.Algebra` (defined in :mod:`gatorch.functional.algebra`)
subclasses it and adds the operations (``alg.gp(x, y)``, ``alg.sandwich(w, x)``, ...) as
methods; every layer and functional op accepts either.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence, Sized
from collections.abc import Set as AbcSet
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch

from gatorch.algebras.store import Store
from gatorch.algebras.tables import (
    BilinearTable,
    blade_product,
    metric_factor,
    popcount,
    reorder_sign,
    shortlex_bitmaps,
)

if TYPE_CHECKING:
    from torch import Tensor
    from typing_extensions import Self

__all__ = ["MAX_DENSE_N", "MAX_FULL_N", "MAX_N", "AlgebraData"]

#: The most basis vectors an algebra may have. Constructing one builds only per-blade data
#: (``2**n`` bitmaps, grades and signs); ``n = 20`` (a million blades) takes about a second
#: and 120 MB, so larger signatures are refused before anything is allocated.
#: See "Cost by dimension" in docs/performance.md.
MAX_N = 20
#: The most basis vectors for which the full product tables (``4**(p+q) * 3**r`` terms each),
#: the full equivariant basis and the constants derived from them are built: ``n = 11``
#: builds in 25-40 s and 1.8 GB, ``n = 12`` would take over a minute and 6 GB. Larger
#: algebras refuse them at the first call that needs them; a
#: :class:`~gatorch.algebras.layout.Layout` builds what its grades need instead.
MAX_FULL_N = 11
#: The most basis vectors for which :meth:`AlgebraData.cayley` builds the dense
#: ``(dim, dim, dim)`` tensor (``n = 8``: 128 MiB; ``n = 9`` would be 1 GiB).
MAX_DENSE_N = 8
#: Algebras up to this many basis vectors build their sparse tables at construction
#: (under 0.1 s for n = 8), so no table is ever built inside a ``torch.compile`` trace.
_EAGER_TABLES_MAX_N = 8
#: The interning table: one instance per (class, signature, start index). Instances of
#: different classes (:class:`AlgebraData`, :class:`gatorch.Algebra`) for the same signature
#: share one state (tables, store), so nothing is built twice.
_INSTANCES: dict[tuple[type, tuple[int, ...], int], AlgebraData] = {}
_CACHE_LOCK = threading.Lock()  # held only while constructing an algebra, never in a forward pass
_T = TypeVar("_T")


class AlgebraData:
    r"""A real Clifford algebra :math:`Cl(p, q, r)` with a diagonal metric, as data.

    The basis conventions (basis-vector order, names, shortlex blade order) are those
    described under :class:`gatorch.Algebra`, the user-facing subclass that adds the
    operations as methods.

    Instances are immutable, hashable and cached: the same signature always
    returns the same object, so its tables are built once. Equality and hashing go by
    signature, so an ``AlgebraData`` equals the :class:`gatorch.Algebra` of the same
    signature (the two share one state).

    Derived state (plans, device constants) lives in one :class:`~gatorch.algebras.store.Store`,
    reached through :meth:`plan` and :meth:`tensor_constant`.

    Parameters
    ----------
    p, q, r : int
        Numbers of basis vectors squaring to +1, -1 and 0; ``n = p + q + r`` at most
        :data:`MAX_N` (20). Larger ones raise ``ValueError`` at once, naming the limit.
        Construction builds only per-blade (``2**n``) data: ``Algebra(16)`` takes about
        0.1 s. The product tables, the full equivariant basis and the constants read from
        them are built on first use (up to ``n = 8`` at construction), and only up to
        :data:`MAX_FULL_N` (11) vectors; above it the first call that needs them raises
        ``ValueError`` at once, pointing to a :class:`~gatorch.algebras.layout.Layout`. The
        costs by dimension are in the "Cost by dimension" section of docs/performance.md.

    Examples
    --------
    >>> from gatorch.algebras import AlgebraData
    >>> pga = AlgebraData(3, 0, 1)
    >>> pga.dim, pga.index("e12")
    (16, 8)
    >>> pga.gp_table.nnz  # 4**3 * 3**1 non-zero terms
    192
    """

    # Set once in :meth:`_build` (through ``object.__setattr__``: instances are immutable).
    _metric: tuple[int, ...]
    _start_index: int
    _n: int
    _dim: int
    _bitmaps: np.ndarray
    _index_of_bitmap: np.ndarray
    _grades: tuple[int, ...]
    _metric_arr: np.ndarray
    _store: Store

    # -- construction ------------------------------------------------------------------------
    def __new__(cls, p: int = 0, q: int = 0, r: int = 0) -> Self:
        for name, value in (("p", p), ("q", q), ("r", r)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Algebra: {name} must be a non-negative int, got {value!r}")
        n = int(p) + int(q) + int(r)
        if n > MAX_N:  # before the metric tuple is even built: Algebra(10**9) refuses at once
            raise ValueError(_too_many(f"Algebra(p={p}, q={q}, r={r})", n))
        metric = (0,) * int(r) + (1,) * int(p) + (-1,) * int(q)
        return cls._get(metric, 0 if r > 0 else 1)

    def __init__(self, p: int = 0, q: int = 0, r: int = 0) -> None:  # construction happens in _build
        pass

    @classmethod
    def from_signature(cls, metric: Sequence[int], start_index: int | None = None) -> Self:
        """An algebra with basis vectors in the given order.

        Parameters
        ----------
        metric : sequence of {-1, 0, 1}
            Square of each basis vector, in order. ``[1, -1, -1, -1]`` is spacetime
            algebra with a timelike first vector. Entries are ints or floats equal to
            -1, 0 or 1 (a 1-D tensor or array of them works too). A string is refused
            (``TypeError``), not read character by character, and so are bools, sets
            and mappings (no order).
        start_index : int, optional
            Index of the first basis vector's name. Default: 0 if any vector is
            degenerate, else 1.

        Raises
        ------
        TypeError
            If ``metric`` is not a sequence of numbers.
        ValueError
            If an entry is not -1, 0 or 1, or ``start_index`` is not an int >= 0.
        """
        metric_t = _metric_values(metric)
        if start_index is None:
            start_index = 0 if 0 in metric_t else 1
        if not isinstance(start_index, (int, np.integer)) or isinstance(start_index, bool) or start_index < 0:
            raise ValueError(f"Algebra.from_signature: start_index must be an int >= 0, got {start_index!r}")
        return cls._get(metric_t, int(start_index))

    @classmethod
    def _get(cls, metric: tuple[int, ...], start_index: int) -> Self:
        if len(metric) > MAX_N:
            raise ValueError(_too_many(f"Algebra with metric of length {len(metric)}", len(metric)))
        with _CACHE_LOCK:
            alg = _INSTANCES.get((cls, metric, start_index))
            if alg is None:
                alg = object.__new__(cls)
                twin = next(
                    (a for (_, m, s), a in _INSTANCES.items() if m == metric and s == start_index), None
                )
                if twin is None:
                    alg._build(metric, start_index)
                else:  # the same algebra through another class: share its state, build nothing
                    object.__setattr__(alg, "__dict__", twin.__dict__)
                _INSTANCES[(cls, metric, start_index)] = alg
        return alg  # type: ignore[return-value]

    def _build(self, metric: tuple[int, ...], start_index: int) -> None:
        n = len(metric)
        bitmaps = shortlex_bitmaps(n)
        dim = 1 << n
        index_of = np.empty(dim, dtype=np.int64)
        index_of[bitmaps] = np.arange(dim)
        grades = popcount(bitmaps)
        metric_arr = np.asarray(metric, dtype=np.float64)

        d = object.__setattr__
        d(self, "_metric", metric)
        d(self, "_start_index", start_index)
        d(self, "_n", n)
        d(self, "_dim", dim)
        d(self, "_bitmaps", bitmaps)
        d(self, "_index_of_bitmap", index_of)
        d(self, "_grades", tuple(int(g) for g in grades))
        d(self, "_metric_arr", metric_arr)
        d(self, "_store", Store())
        # Only per-blade (O(2**n)) data is built here; the 4**n tables wait for their first use.
        if n <= _EAGER_TABLES_MAX_N:
            self._tables  # noqa: B018  (build the sparse tables now, outside any trace)
            self._constants_cpu  # noqa: B018  (and every constant, as the tables are there)
        else:
            self._store.plan(("constants", "blade"), self._blade_constants)

    @property
    def _names(self) -> tuple[str, ...]:
        """Blade names, built on first use (65536 strings at n = 16)."""
        return self._store.plan("blade_names", self._build_names)

    def _build_names(self) -> tuple[str, ...]:
        n, start = self._n, self._start_index
        sep = "" if start + n - 1 < 10 else "_"
        labels = [str(start + i) for i in range(n)]
        names = []
        for bm in self._bitmaps.tolist():
            idx = [labels[i] for i in range(n) if (bm >> i) & 1]
            names.append("e" + sep.join(idx) if idx else "1")
        return tuple(names)

    @property
    def _name_to_index(self) -> dict[str, int]:
        return self._store.plan("name_to_index", lambda: {name: i for i, name in enumerate(self._names)})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Algebra is immutable; cannot set {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self).from_signature, (self._metric, self._start_index))

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self

    def __hash__(self) -> int:
        return hash((self._metric, self._start_index))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AlgebraData):
            return NotImplemented
        return self._metric == other._metric and self._start_index == other._start_index

    def __repr__(self) -> str:
        p, q, r = self.signature
        default = self._metric == (0,) * r + (1,) * p + (-1,) * q and self._start_index == (0 if r else 1)
        name = type(self).__name__
        if default:
            return f"{name}({p}, {q}, {r})"
        return f"{name}.from_signature({list(self._metric)}, start_index={self._start_index})"

    # -- basic properties ----------------------------------------------------------------------
    @property
    def metric(self) -> tuple[int, ...]:
        """Square of each basis vector, in basis order."""
        return self._metric

    @property
    def signature(self) -> tuple[int, int, int]:
        """``(p, q, r)``: counts of basis vectors squaring to +1, -1, 0."""
        m = self._metric
        return (m.count(1), m.count(-1), m.count(0))

    @property
    def n(self) -> int:
        """Number of basis vectors."""
        return self._n

    @property
    def dim(self) -> int:
        """Number of basis blades, ``2**n``."""
        return self._dim

    @property
    def blade_names(self) -> tuple[str, ...]:
        """Names of the basis blades in component order, e.g. ``('1', 'e1', ...)``."""
        return self._names

    @property
    def grades(self) -> tuple[int, ...]:
        """Grade of each basis blade, in component order."""
        return self._grades

    @property
    def bitmaps(self) -> np.ndarray:
        """Bitmap of each basis blade (bit ``i`` = basis vector ``i``), read-only copy."""
        return self._bitmaps.copy()

    @property
    def is_degenerate(self) -> bool:
        """Whether any basis vector squares to zero."""
        return 0 in self._metric

    @property
    def pseudoscalar_index(self) -> int:
        """Component index of the unit pseudoscalar (the last blade)."""
        return self._dim - 1

    def grade_slice(self, k: int) -> slice:
        """Components of grade ``k`` (a contiguous slice of the last axis)."""
        if not isinstance(k, (int, np.integer)) or not 0 <= k <= self._n:
            raise ValueError(f"grade must be an int in [0, {self._n}] for {self!r}, got {k!r}")
        start = sum(math.comb(self._n, i) for i in range(k))
        return slice(start, start + math.comb(self._n, int(k)))

    def index(self, name: str) -> int:
        """Component index of a basis blade given by its canonical name (``'e12'``, ``'1'``)."""
        try:
            return self._name_to_index[name]
        except KeyError:
            names = self._names
            listed = ", ".join(names)
            if len(names) > 64:  # not all 65536 names of Algebra(16)
                listed = ", ".join(names[:18]) + f", ... ({len(names)} in all)"
            raise ValueError(f"{self!r} has no blade named {name!r}; blade names are {listed}") from None

    def check_dim(self, x: object, what: str = "input") -> None:
        """Raise ``ValueError`` unless ``x`` is a floating tensor with last dimension ``dim``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{what}: expected a torch.Tensor, got {type(x).__name__}")
        if x.ndim == 0 or x.shape[-1] != self._dim:
            raise ValueError(
                f"{what}: expected last dimension {self._dim} (the blades of {self!r}), "
                f"got shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"{what}: expected a floating-point tensor, got dtype {x.dtype}")

    # -- the store of derived state ------------------------------------------------------------
    @property
    def store(self) -> Store:
        """The one :class:`~gatorch.algebras.store.Store` of this algebra's derived state."""
        return self._store

    def plan(self, key: Hashable, build: Callable[[], _T]) -> _T:
        """Static metadata derived from the signature (plans, index tuples), built once per algebra.

        ``build()`` runs on first use and its value is stored on the algebra (see
        :meth:`Store.plan <gatorch.algebras.store.Store.plan>`). Layers ask for what their
        forward pass needs at construction, so under ``torch.compile`` the lookup is a dict
        hit and nothing is built inside a trace.
        """
        return self._store.plan(key, build)

    def tensor_constant(
        self,
        key: Hashable,
        device: torch.device | str | None,
        dtype: torch.dtype,
        build: Callable[[], Tensor],
    ) -> Tensor:
        """A tensor constant of a plan on ``device`` in ``dtype``, cached in eager mode.

        Under ``torch.compile`` the tensor is built inline from Python data (it becomes a
        graph constant) and nothing is stored, so tracing has no side effects (see
        :meth:`Store.tensor <gatorch.algebras.store.Store.tensor>`).
        """
        return self._store.tensor(key, device, dtype, build)

    # The names the library used before the store had a public API.
    _memo = plan
    _memo_tensor = tensor_constant

    # -- numpy tables ---------------------------------------------------------------------------
    def _gp_raw(self) -> tuple[np.ndarray, np.ndarray]:
        """``(index, sign)``: ``e_i e_j = sign[i, j] * e_{index[i, j]}``; (dim, dim) each."""
        rb, sign = blade_product(self._bitmaps, self._metric_arr)
        return self._index_of_bitmap[rb], sign

    def _build_tables(self) -> dict[str, BilinearTable]:
        """The sparse tables of the four bilinear products (numpy, vectorised over pairs)."""
        index, sign = self._gp_raw()
        dims = (self._dim, self._dim, self._dim)
        a, b = self._bitmaps[:, None], self._bitmaps[None, :]

        prefix = f"{','.join(str(m) for m in self._metric)};{self._start_index}"

        def table(name: str, mask: np.ndarray) -> BilinearTable:
            i, j = np.nonzero(mask & (sign != 0))
            return BilinearTable.from_terms(name, i, j, index[i, j], sign[i, j], dims, f"{prefix};{name}")

        tables = {
            "gp": table("gp", np.ones((self._dim, self._dim), dtype=bool)),
            "outer": table("outer", (a & b) == 0),
            # e_A ⌋ e_B = e_A e_B when A ⊆ B (then of grade |B| - |A|), else 0
            "lcontract": table("lcontract", (a & b) == a),
        }
        # x ∨ y = undual(dual(x) ∧ dual(y)), with dual(e_a) = right[a] e_{perm[a]} and
        # undual(e_m) = left[m] e_{perm[m]}; perm is an involution.
        perm, right, left = self._complements
        o = tables["outer"]
        i, j = perm[o.i], perm[o.j]
        s = o.s * right[i] * right[j] * left[o.k]
        tables["regressive"] = BilinearTable.from_terms(
            "regressive", i, j, perm[o.k], s, dims, f"{prefix};regressive"
        )
        return tables

    @property
    def _tables(self) -> dict[str, BilinearTable]:
        # algebras up to _EAGER_TABLES_MAX_N vectors build their tables at construction
        tables = self._store.get_plan("tables")
        if tables is None:
            self._check_full("the full product tables")
            tables = self._store.plan("tables", self._build_tables)
        return tables

    def _check_full(self, what: str) -> None:
        """Refuse, before any work, what needs the full ``2**n x 2**n`` data above :data:`MAX_FULL_N`."""
        if self._n > MAX_FULL_N:
            raise ValueError(_too_big_for_full(f"{self!r}: {what}", self._n))

    @property
    def gp_table(self) -> BilinearTable:
        """Sparse table of the geometric product (``4**(p+q) * 3**r`` terms)."""
        return self._tables["gp"]

    @property
    def outer_table(self) -> BilinearTable:
        """Sparse table of the outer (wedge) product."""
        return self._tables["outer"]

    @property
    def lcontract_table(self) -> BilinearTable:
        """Sparse table of the left contraction ``x ⌋ y``: ``e_A ⌋ e_B = e_A e_B`` if A ⊆ B, else 0."""
        return self._tables["lcontract"]

    @property
    def regressive_table(self) -> BilinearTable:
        """Sparse table of the regressive product ``x ∨ y = undual(dual(x) ∧ dual(y))``."""
        return self._tables["regressive"]

    @property
    def _complements(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(perm, right_sign, left_sign)`` of the right and left complements.

        The complement of blade ``i`` is blade ``perm[i]`` (the complementary index
        set). ``right_sign`` makes ``e_i ∧ dual(e_i) = I``; ``left_sign`` makes
        ``undual(e_i) ∧ e_i = I``, with ``I`` the last blade.
        """
        return self._store.plan("complements", self._build_complements)

    def _build_complements(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        full = (1 << self._n) - 1
        comp_bm = full ^ self._bitmaps
        perm = self._index_of_bitmap[comp_bm]
        right = reorder_sign(self._bitmaps, comp_bm).astype(np.float64)
        left = reorder_sign(comp_bm, self._bitmaps).astype(np.float64)
        return perm, right, left

    @property
    def _signs(self) -> dict[str, np.ndarray]:
        g = np.asarray(self._grades)
        rev = np.where((g * (g - 1) // 2) % 2 == 0, 1.0, -1.0)
        inv = np.where(g % 2 == 0, 1.0, -1.0)
        # <~e_A e_A>_0 = product of the metric over A (0 for blades with a degenerate factor)
        ip = metric_factor(self._bitmaps, self._metric_arr)
        return {"reverse": rev, "involute": inv, "conjugate": rev * inv, "inner": ip}

    def cayley(self, product: str = "gp") -> np.ndarray:
        """Dense ``(dim, dim, dim)`` Cayley tensor ``C[i, j, k]`` of a product, float64.

        Only for references and tests: the fast kernels never build it.
        ``product`` is one of ``"gp"``, ``"outer"``, ``"lcontract"``, ``"regressive"``.
        Refused (``ValueError``) for more than :data:`MAX_DENSE_N` basis vectors, where it
        would take 1 GiB or more; :meth:`bilinear_table` holds the same terms sparsely.
        """
        if self._n > MAX_FULL_N:
            raise ValueError(_too_big_for_full(f"{self!r}.cayley({product!r})", self._n))
        if self._n > MAX_DENSE_N:  # refused before the (lazily built) sparse table is built
            p, q, r = self.signature
            nnz = {"gp": 4 ** (p + q) * 3**r, "lcontract": 3 ** (p + q) * 2**r}.get(product, 3**self._n)
            raise ValueError(
                f"{self!r}.cayley({product!r}): the dense ({self._dim}, {self._dim}, {self._dim}) "
                f"float64 tensor would take {self._dim**3 * 8 / 2**30:.0f} GiB; it is built only for "
                f"n <= {MAX_DENSE_N} basis vectors (got n = {self._n}). "
                f"Use {self!r}.bilinear_table({product!r}) ({nnz} sparse terms) instead"
            )
        return self.bilinear_table(product).dense()

    def bilinear_table(self, product: str) -> BilinearTable:
        """The sparse table of a named bilinear product."""
        tables = {
            "gp": "gp_table",
            "outer": "outer_table",
            "lcontract": "lcontract_table",
            "regressive": "regressive_table",
        }
        if product not in tables:
            raise ValueError(f"unknown product {product!r}; expected one of {sorted(tables)}")
        return getattr(self, tables[product])

    # -- torch constants --------------------------------------------------------------------------
    def constant(self, name: str, device: torch.device | str | None, dtype: torch.dtype) -> Tensor:
        """A cached torch copy, on ``device`` in ``dtype``, of one of the algebra's vectors.

        Names: ``"reverse"``, ``"involute"``, ``"conjugate"`` (sign per blade),
        ``"inner"`` (``<~e_A e_A>_0`` per blade), ``"complement_perm"``, ``"dual_sign"``,
        ``"undual_sign"``, ``"grade_mask_K[,K...]"``, ``"bivector_lmul_{pos,src,sign}"``
        (the matrix of left multiplication by a bivector). Traceable by ``torch.compile``.
        """
        def build() -> Tensor:
            if name.startswith("grade_mask_"):
                ks = [int(k) for k in name[len("grade_mask_") :].split(",")]
                return torch.tensor([1.0 if g in ks else 0.0 for g in self._grades])
            return self._constant_cpu(name)

        return self._store.tensor(("constant", name), device, dtype, build)

    @property
    def _constants_cpu(self) -> dict[str, Tensor]:
        """Every constant of :meth:`constant` (the per-blade ones and those of the full tables)."""
        return {
            **self._store.plan(("constants", "blade"), self._blade_constants),
            **self._store.plan(("constants", "table"), self._table_constants),
        }

    def _constant_cpu(self, name: str) -> Tensor:
        """One constant on the CPU; those of the full tables are built on first use (n <= MAX_FULL_N)."""
        blade = self._store.plan(("constants", "blade"), self._blade_constants)
        if name in blade:
            return blade[name]
        if name not in _TABLE_CONSTANTS:
            raise KeyError(name)
        if self._store.get_plan(("constants", "table")) is None:
            self._check_full(f"the constant {name!r} (read from the full product table)")
        return self._store.plan(("constants", "table"), self._table_constants)[name]

    def _blade_constants(self) -> dict[str, Tensor]:
        """The per-blade constants, from the bitmaps alone (``O(n * 2**n)``)."""
        perm, right, left = self._complements
        out = dict(self._signs)
        out["complement_perm"] = perm
        # dual(x)[perm[i]] = right[i] x[i] and perm is an involution, so
        # dual(x) = x[..., perm] * right[perm]; likewise for undual.
        out["dual_sign"] = right[perm]
        out["undual_sign"] = left[perm]
        return {k: torch.from_numpy(v) for k, v in out.items()}

    def _table_constants(self) -> dict[str, Tensor]:
        """The constants read from the full geometric-product table."""
        # left multiplication by a bivector, x -> B x, as a flat (dim * dim) matrix:
        # entry [k * dim + j] = s * B[i] for each gp term (i, j, k, s) with grade(i) = 2
        gp_t = self.gp_table
        biv = np.asarray(self._grades)[gp_t.i] == 2
        out = {
            "bivector_lmul_pos": gp_t.k[biv] * self._dim + gp_t.j[biv],
            "bivector_lmul_src": gp_t.i[biv],
            "bivector_lmul_sign": gp_t.s[biv],
        }
        return {k: torch.from_numpy(v) for k, v in out.items()}

    def _constant_array(self, name: str) -> np.ndarray:
        """One of the arrays behind :meth:`constant` (numpy, shared: do not write to it)."""
        return self._constant_cpu(name).numpy()

    # -- equivariant linear maps ------------------------------------------------------------------
    def equivariant_basis(self, group: str = "pin") -> Tensor:
        """Basis of the linear maps ``dim -> dim`` that commute with the group action.

        Parameters
        ----------
        group : {"pin", "spin"}
            ``"pin"``: all versors (reflections included) under the twisted action;
            ``"spin"``: even versors only.

        Returns
        -------
        Tensor, shape (k, dim, dim), float64
            ``y = B[a] @ x`` is equivariant for every ``a``. Derived numerically
            (block by block over grades) and put in a sparse canonical form; see
            :func:`gatorch.algebras.equivariant.equivariant_basis`.
        """
        from gatorch.algebras.equivariant import equivariant_basis

        return torch.from_numpy(equivariant_basis(self, group).copy())


def _too_many(what: str, n: int) -> str:
    """The message of a refused signature: what came, the limit, and why."""
    return (
        f"{what}: n = {n} basis vectors exceeds the supported maximum n = {MAX_N} "
        f"(an algebra has 2**n blades: n = {MAX_N} builds its per-blade data in about 1 s and "
        f"120 MB, each further vector 2x that; its full product tables of up to 4**n terms "
        f"are built only up to n = {MAX_FULL_N})"
    )


def _too_big_for_full(what: str, n: int) -> str:
    """The message of a refused full table or basis: what came, the limit, the cost, the way out."""
    return (
        f"{what}: the full 2**n x 2**n data are built only for n <= MAX_FULL_N = {MAX_FULL_N} "
        f"basis vectors, got n = {n} (product tables of up to 4**n = {4**n:.1e} terms; n = {MAX_FULL_N} "
        f"takes 25-40 s and 1.8 GB, each further vector about 4x that). Store only some grades "
        f"instead: gatorch.algebras.Layout(alg, grades=(0, 1, 2)) with layout_product_table and "
        f"the layers' layout arguments build only the terms those grades need"
    )


#: The constants of :meth:`AlgebraData.constant` read from the full product table.
_TABLE_CONSTANTS = ("bivector_lmul_pos", "bivector_lmul_src", "bivector_lmul_sign")


def __getattr__(name: str) -> Any:
    if name == "Algebra":  # the user-facing class moved one floor up (gatorch.Algebra)
        from gatorch.algebras._moved import moved

        return moved(__name__, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_METRIC_VALUES = "sequence of metric values in {1, -1, 0}"


def _metric_values(metric: object) -> tuple[int, ...]:
    """The metric of :meth:`AlgebraData.from_signature` as a tuple of ints in {1, -1, 0}.

    ``TypeError`` for anything but an ordered collection of real numbers (strings, bytes,
    sets, mappings, bools, non-numbers), ``ValueError`` for numbers other than -1, 0, 1;
    both name the expected and the received value.
    """
    fn = "Algebra.from_signature"
    unordered = isinstance(metric, (AbcSet, Mapping))
    if isinstance(metric, (str, bytes, bytearray)) or unordered:
        raise TypeError(
            f"{fn}: expected metric as a {_METRIC_VALUES}, got {type(metric).__name__} {metric!r}"
        )
    if isinstance(metric, Sized) and len(metric) > MAX_N:  # before reading a huge list
        raise ValueError(_too_many(f"Algebra with metric of length {len(metric)}", len(metric)))
    if isinstance(metric, (torch.Tensor, np.ndarray)):
        if metric.ndim != 1:
            raise ValueError(
                f"{fn}: expected metric as a 1-D {_METRIC_VALUES}, got a {type(metric).__name__} "
                f"of shape {tuple(metric.shape)}"
            )
        metric = metric.tolist()
    if not isinstance(metric, Iterable):
        raise TypeError(
            f"{fn}: expected metric as a {_METRIC_VALUES}, got {type(metric).__name__} {metric!r}"
        )
    entries = list(metric)
    for i, m in enumerate(entries):
        if isinstance(m, (bool, np.bool_)) or not isinstance(m, (int, float, np.integer, np.floating)):
            raise TypeError(
                f"{fn}: expected metric as a {_METRIC_VALUES}, got entry {i} = {m!r} "
                f"({type(m).__name__}) in {entries!r}"
            )
        if m not in (1, -1, 0):  # 1.0 == 1 passes; nan and 0.5 do not
            raise ValueError(f"{fn}: metric entries must be -1, 0 or 1, got entry {i} = {m!r} in {entries!r}")
    return tuple(int(m) for m in entries)
