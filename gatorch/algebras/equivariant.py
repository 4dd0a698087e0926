r"""The equivariant linear maps of an algebra, derived numerically.

A linear map :math:`\phi` of multivectors is equivariant when
:math:`\phi(\rho_w(x)) = \rho_w(\phi(x))` for every versor :math:`w` of the group,
with :math:`\rho_w(x) = w \hat x^{|w|} w^{-1}` the twisted action. The action
preserves grades, so :math:`\rho_w` is block diagonal and the commutation equations
split into one small, independent problem per (input grade :math:`a`, output grade
:math:`b`) block: :math:`X \rho^{(a)}_w = \rho^{(b)}_w X` for
:math:`X \in \mathbb{R}^{d_b \times d_a}`.

Two kinds of group elements fix the commutant. The reflections in the invertible *basis*
vectors act diagonally (the one in :math:`e_i` negates the blades containing
:math:`e_i`), so an equivariant map may only join blades with the same invertible
vectors (Pin) or the same or the complementary ones (Spin, products in pairs): most
entries of a block are zero before anything is solved. These reflections reach every
component of the group; within the identity component, commuting with the group is
commuting with its Lie algebra, the bivectors, acting by :math:`x \mapsto e_{ij} x - x e_{ij}`.
Each such action is a signed permutation of blades, so every equation joins at most two
of the remaining unknowns, and each block's solutions come from the null space of a Gram
matrix with one row per remaining unknown (``C(n, k)`` for the diagonal blocks of a
non-degenerate algebra). A few random versors then check the result. The same basis,
bit for bit, as the dense reference solver (:func:`_block_nullspace`: random versors as
generators, a ``(d_b d_a)^2`` Gram matrix per block), which took minutes from ``n = 7``.
Sizes whose block solve or dense basis would be too large are refused before any work
(:data:`MAX_SOLVE_COST`, :data:`MAX_BASIS_BYTES`).

Each block's solutions are put in reduced row-echelon form (a canonical, sparse
basis), snapped to exact small integers where they are within round-off of them,
and scaled to a largest entry of 1. For non-degenerate algebras this gives the
grade projections (Pin) plus the maps ``x -> <x I>_{n-k}`` (Spin); for PGA also the
maps ``<x>_k -> e0 <x>_k``.
"""

from __future__ import annotations

import math
import zlib
from typing import TYPE_CHECKING

import numpy as np
import torch

from gatorch.algebras.tables import metric_factor, reorder_sign

if TYPE_CHECKING:
    from gatorch.algebras.algebra import AlgebraData as Algebra

__all__ = [
    "GROUPS",
    "MAX_BASIS_BYTES",
    "MAX_SOLVE_COST",
    "action_matrix",
    "block_unknowns",
    "check_group",
    "equivariant_basis",
]

#: The versor groups a layer can be equivariant to.
GROUPS = ("pin", "spin")


def check_group(group: str, who: str) -> None:
    """Raise ``ValueError`` naming ``who`` unless ``group`` is one of :data:`GROUPS`."""
    if group not in GROUPS:
        raise ValueError(f"{who}: group must be 'pin' or 'spin', got {group!r}")



def action_matrix(alg: Algebra, vector: np.ndarray) -> np.ndarray:
    """Matrix of the twisted action of the reflection in an invertible vector.

    ``vector`` holds the ``n`` coordinates; returns ``(dim, dim)`` with
    ``rho(x) = v involute(x) v^-1``. Built grade block by grade block (the action
    preserves grades) from the sparse product terms.
    """
    (li, lj, lk, lstart, ls), (ri, rj, rk, rstart, rs) = _vector_terms(alg)
    v = np.zeros(alg.dim)
    v[alg.grade_slice(1)] = vector
    v_inv = v / float(np.dot(np.asarray(vector) ** 2, alg.metric))
    left = np.zeros((alg.dim, alg.dim))  # (v y)[k] = sum s v[i] y[j]: one term per (k, j)
    left[np.repeat(lk, np.diff(np.append(lstart, li.size))), lj] = ls * v[li]
    right = np.zeros((alg.dim, alg.dim))
    right[np.repeat(rk, np.diff(np.append(rstart, ri.size))), rj] = rs * v_inv[ri]
    left *= alg._constant_array("involute")[None, :]
    return _block_product(alg, right, left, shift=1)


def _block_product(alg: Algebra, a: np.ndarray, b: np.ndarray, shift: int = 0) -> np.ndarray:
    """``a @ b`` where the product preserves grades and ``b`` moves a grade by at most ``shift``."""
    out = np.zeros((alg.dim, alg.dim))
    for k in range(alg.n + 1):
        cols = alg.grade_slice(k)
        lo, hi = alg.grade_slice(max(k - shift, 0)).start, alg.grade_slice(min(k + shift, alg.n)).stop
        out[cols, cols] = a[cols, lo:hi] @ b[lo:hi, cols]
    return out


def _random_vectors(alg: Algebra, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    metric = np.asarray(alg.metric, dtype=float)
    out: list[np.ndarray] = []
    while len(out) < count:
        v = rng.standard_normal(alg.n)
        quad = float(np.dot(v * v, metric))
        if abs(quad) >= 0.2 * float(np.dot(v * v, metric != 0)) and abs(quad) > 1e-3:
            out.append(v / np.sqrt(abs(quad)))
    return out


def versor_generators(alg: Algebra, group: str, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """``count`` random ``(dim, dim)`` matrices of the group's action: one vector each (Pin), a pair (Spin).

    The commutant of these generators is that of the whole group (with probability one).
    """
    if group == "pin":
        return [action_matrix(alg, v) for v in _random_vectors(alg, count, rng)]
    pairs = _random_vectors(alg, 2 * count, rng)
    return [
        _block_product(alg, action_matrix(alg, pairs[2 * i]), action_matrix(alg, pairs[2 * i + 1]))
        for i in range(count)
    ]


def _rref(basis: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Reduced row-echelon form of the row space of ``basis`` (rows independent)."""
    a = basis.copy()
    rows, cols = a.shape
    r = 0
    for c in range(cols):
        if r == rows:
            break
        piv = r + int(np.argmax(np.abs(a[r:, c])))
        if abs(a[piv, c]) < tol:
            continue
        a[[r, piv]] = a[[piv, r]]
        a[r] /= a[r, c]
        factor = a[:, c].copy()  # every other row: a[rr] -= a[rr, c] * a[r], all at once
        factor[r] = 0.0
        a -= factor[:, None] * a[r][None, :]
        r += 1
    return a[:r]


def _snap(a: np.ndarray) -> np.ndarray:
    """Round entries within 1e-9 of a multiple of 1/2 to it (the tables are exact rationals)."""
    snapped = np.round(a * 2) / 2
    return np.where(np.abs(a - snapped) < 1e-9, snapped, a)


def _block_nullspace(gens: list[np.ndarray], rows: slice, cols: slice) -> np.ndarray:
    """Solutions ``X`` (flattened, row-major) of ``X g_a = g_b X`` for all generators.

    The dense reference solver (``(d_b d_a)^2`` Gram matrix): the library derives the
    basis with :func:`_commutant_blocks`; tests compare the two on small algebras.
    """
    d_b, d_a = rows.stop - rows.start, cols.stop - cols.start
    eye_a, eye_b = torch.eye(d_a, dtype=torch.float64), torch.eye(d_b, dtype=torch.float64)
    gram = torch.zeros((d_b * d_a, d_b * d_a), dtype=torch.float64)
    for g in gens:
        ga = torch.from_numpy(np.ascontiguousarray(g[cols, cols]))
        gb = torch.from_numpy(np.ascontiguousarray(g[rows, rows]))
        k = torch.kron(eye_b, ga.T.contiguous()) - torch.kron(gb, eye_a)
        gram += k.T @ k
    evals, evecs = torch.linalg.eigh(gram)
    scale = max(float(evals[-1]), 1.0)
    return evecs[:, evals < 1e-9 * scale].T.numpy()


def _bivector_actions(alg: Algebra) -> list[tuple[np.ndarray, np.ndarray]]:
    """The Lie algebra of the versor group acting on blades: ``x -> e_ij x - x e_ij``, all ``i < j``.

    Each is a signed partial permutation of the blades (a basis blade times a basis blade
    is one blade): returned as ``(target, coef)`` per source blade index, ``coef = 0``
    where the blade commutes with ``e_ij``. The action preserves grades.
    """
    bitmaps = alg._bitmaps
    index_of = alg._index_of_bitmap
    metric = alg._metric_arr
    out = []
    for i in range(alg.n):
        for j in range(i + 1, alg.n):
            b = np.asarray([(1 << i) | (1 << j)], dtype=np.int64)
            _, left = _pair_product(b, bitmaps, metric)
            _, right = _pair_product(bitmaps, b, metric)
            out.append((index_of[bitmaps ^ b[0]], left - right))
    return out


def _pair_product(a: np.ndarray, b: np.ndarray, metric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(bitmap, sign)`` of ``e_a e_b`` for aligned (broadcast) arrays of blade bitmaps."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
    return a ^ b, reorder_sign(a, b) * metric_factor(a & b, metric)


def _allowed_pairs(alg: Algebra, group: str, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
    """Entries ``(row, col)`` of a block that an equivariant map may have non-zero, row-major.

    The reflection in an invertible basis vector ``e_i`` acts diagonally: it negates the
    blades that contain ``e_i``. Commuting with all of them (Pin) leaves only entries whose
    blades contain the same invertible vectors; with their products in pairs (Spin), the
    same ones or the complementary ones.
    """
    inv = sum(1 << i for i, m in enumerate(alg.metric) if m != 0)
    rb = alg._bitmaps[rows][:, None]
    cb = alg._bitmaps[cols][None, :]
    diff = (rb ^ cb) & inv
    mask = diff == 0 if group == "pin" else (diff == 0) | (diff == inv)
    r, c = np.nonzero(mask)
    return r, c


def _commutant_block(
    alg: Algebra,
    group: str,
    actions: list[tuple[np.ndarray, np.ndarray]],
    rows: slice,
    cols: slice,
) -> tuple[np.ndarray, np.ndarray]:
    """Solutions ``X`` of one grade block, the space :func:`_block_nullspace` spans, on the
    few entries :func:`_allowed_pairs` leaves: ``(null, flat)`` with ``null`` of shape
    ``(k, u)`` holding entries ``flat`` (increasing) of ``X`` flattened row-major.

    ``X`` commutes with the identity component of the group when it commutes with the
    action of every bivector ``e_ij``; the basis reflections of :func:`_allowed_pairs`
    reach the other components. Each bivector action is a signed partial permutation, so
    an equation ``(X L - L X)[r, c] = 0`` has at most two unknowns: the Gram matrix is
    ``u x u`` for ``u`` allowed entries (``C(n, k)`` for the diagonal blocks of a
    non-degenerate algebra), not ``(d_b d_a)^2``.
    """
    d_b, d_a = rows.stop - rows.start, cols.stop - cols.start
    r, c = _allowed_pairs(alg, group, rows, cols)
    u = r.size
    if u == 0:
        return np.zeros((0, 0)), np.zeros(0, dtype=np.int64)
    col_of = np.full((d_b, d_a), -1, dtype=np.int64)
    col_of[r, c] = np.arange(u)
    rg, cg = r + rows.start, c + cols.start  # global blade indices of the unknowns
    eqs, unks, vals = [], [], []
    offset = 0
    for target, coef in actions:
        # X[rg, cg] appears in (X L)[rg, cg'] with L e_cg' = coef[cg'] e_cg, i.e. cg' = target[cg]
        # (the action is an involution on bitmaps), and in -(L X)[target[rg], cg] * coef[rg].
        c2 = target[cg] - cols.start
        r2 = target[rg] - rows.start
        eq = np.concatenate([r * d_a + c2, r2 * d_a + c]) + offset
        val = np.concatenate([coef[target[cg]], -coef[rg]])
        keep = val != 0
        eqs.append(eq[keep])
        unks.append(np.concatenate([np.arange(u), np.arange(u)])[keep])
        vals.append(val[keep])
        offset += d_b * d_a
    gram = np.zeros((u, u))
    if eqs:  # (n = 1 has no bivectors: the group is finite)
        # merge repeated (equation, unknown) entries, then every equation has one or two
        key, inverse = np.unique(
            np.concatenate(eqs) * u + np.concatenate(unks), return_inverse=True
        )
        val = np.bincount(inverse.ravel(), weights=np.concatenate(vals))
        eq, unk = key // u, key % u
        np.add.at(gram, (unk, unk), val * val)
        pair = np.nonzero(eq[1:] == eq[:-1])[0]  # sorted by equation: pairs are neighbours
        cross = val[pair] * val[pair + 1]
        np.add.at(gram, (unk[pair], unk[pair + 1]), cross)
        np.add.at(gram, (unk[pair + 1], unk[pair]), cross)
    evals, evecs = np.linalg.eigh(gram)
    scale = max(float(evals[-1]), 1.0)
    return evecs[:, evals < 1e-9 * scale].T, r * d_a + c


class _single_threaded:
    """Run small dense linear algebra on one thread: BLAS threads oversubscribe busy machines
    (a 400 x 400 problem took 30 s with two threads under load, 1 s on one)."""

    def __enter__(self) -> None:
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.threads)


def _order(n: int) -> list[tuple[int, int]]:
    """The blocks ``(input grade, output grade)`` in basis order: within grades, then between."""
    return [(k, k) for k in range(n + 1)] + [(a, b) for a in range(n + 1) for b in range(n + 1) if a != b]


def _compute(alg: Algebra, group: str, dense: bool = False) -> np.ndarray:
    """The basis, block by block; ``dense=True`` uses the reference solver (small algebras only)."""
    rng = np.random.default_rng(zlib.crc32(repr((alg.metric, group)).encode()))
    slices = [alg.grade_slice(k) for k in range(alg.n + 1)]
    if dense:
        gens = versor_generators(alg, group, rng, 2 * alg.n + 4)
    else:
        actions = _bivector_actions(alg)
    maps = []  # (rows, cols, block of one basis map)
    for a, b in _order(alg.n):  # input grade a -> output grade b
        rows, cols = slices[b], slices[a]
        d_b, d_a = rows.stop - rows.start, cols.stop - cols.start
        if dense:
            null, flat = _block_nullspace(gens, rows, cols), np.arange(d_b * d_a)
        else:  # the other entries of the block are zero in every solution
            null, flat = _commutant_block(alg, group, actions, rows, cols)
        if null.shape[0] == 0:
            continue
        for vec in _snap(_rref(null)):  # a zero column never holds a pivot: same as on all entries
            block = np.zeros(d_b * d_a)
            block[flat] = vec
            maps.append((rows, cols, _snap(block / np.abs(block).max()).reshape(d_b, d_a)))
    size = len(maps) * alg.dim * alg.dim * 8
    if size > MAX_BASIS_BYTES:
        raise ValueError(
            f"equivariant_basis({alg!r}, {group!r}): {len(maps)} maps of ({alg.dim}, {alg.dim}) "
            f"would take {size / 2**30:.1f} GiB as one dense float64 tensor, over the supported "
            f"maximum of {MAX_BASIS_BYTES / 2**30:.0f} GiB (many degenerate vectors, r = "
            f"{alg.signature[2]}, give many maps)"
        )
    basis = np.zeros((len(maps), alg.dim, alg.dim))
    for m, (rows, cols, block) in enumerate(maps):
        basis[m, rows, cols] = block
    _verify(alg, group, basis, rng)
    return basis


def _verify(alg: Algebra, group: str, basis: np.ndarray, rng: np.random.Generator) -> None:
    """Check commutation with fresh random group elements (products of several generators).

    Applied to a few random multivectors, one reflection at a time (sparse, ``O(n dim)``
    per reflection and multivector), and to three random combinations of the maps rather
    than to each (a map that fails to commute makes a random combination fail with
    probability one), so it stays cheap for large algebras and large bases.
    """
    x = rng.standard_normal((alg.dim, 3))
    combos = np.tensordot(rng.standard_normal((3, basis.shape[0])), basis, axes=1)  # (3, dim, dim)
    both = np.concatenate([x, (combos @ x).transpose(1, 0, 2).reshape(alg.dim, 9)], axis=1)
    terms = _vector_terms(alg)
    pairs = 1 if group == "pin" else 2
    for _ in range(3):
        g = both
        for v in _random_vectors(alg, pairs * (alg.n + 1), rng):
            g = _reflect(alg, terms, v, g)
        gx, gbx = g[:, :3], g[:, 3:].reshape(alg.dim, 3, 3)
        err = np.abs((combos @ gx).transpose(1, 0, 2) - gbx)
        size = max(float(np.abs(gx).max()) * float(np.abs(combos).max(initial=1.0)), 1.0)
        if err.size and err.max() > 1e-7 * size:
            raise RuntimeError(
                f"equivariant_basis({alg!r}, {group!r}): derived maps fail to commute with a "
                f"random group element (error {err.max():.1e}); please report this signature"
            )


_Terms = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _vector_terms(alg: Algebra) -> tuple[_Terms, _Terms]:
    """Geometric-product terms with a vector on the left, and on the right, sorted by output:
    ``(vector_component, other_operand, present_outputs, starts, sign)``."""
    t = alg.gp_table
    grades = np.asarray(alg.grades)

    def terms(keep: np.ndarray, vec: np.ndarray, other: np.ndarray) -> _Terms:
        order = np.argsort(t.k[keep], kind="stable")
        present, starts = np.unique(t.k[keep][order], return_index=True)
        return vec[keep][order], other[keep][order], present, starts, t.s[keep][order]

    return terms(grades[t.i] == 1, t.i, t.j), terms(grades[t.j] == 1, t.j, t.i)


def _apply_vector(terms: _Terms, v: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``v y`` or ``y v`` (by the terms) for columns ``y`` of shape (dim, m)."""
    vi, other, present, starts, sign = terms
    out = np.zeros_like(y)
    if starts.size:
        out[present] = np.add.reduceat((sign * v[vi])[:, None] * y[other], starts, axis=0)
    return out


def _reflect(alg: Algebra, terms: tuple[_Terms, _Terms], vector: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The twisted action ``v involute(x) v^-1`` of the reflection in ``vector`` on columns ``x`` (dim, m)."""
    v = np.zeros(alg.dim)
    v[alg.grade_slice(1)] = vector
    v_inv = v / float(np.dot(vector * vector, alg.metric))
    y = x * alg._constant_array("involute")[:, None]
    left, right = terms
    return _apply_vector(right, v_inv, _apply_vector(left, v, y))


def equivariant_basis(alg: Algebra, group: str = "pin") -> np.ndarray:
    """Basis ``(k, dim, dim)`` (float64, read-only) of the equivariant linear maps.

    Parameters
    ----------
    alg : Algebra
    group : {"pin", "spin"}
        Pin: all versors, reflections included. Spin: even versors only.

    Notes
    -----
    Ordered block by block: first the maps within one grade (grades 0..n), then the
    maps between grades ordered by (input grade, output grade). Counts (Pin / Spin):
    Cl(3,0) 4/8, Cl(3,0,1) 9/16, Cl(1,3) 5/10, Cl(4,1) 6/12, Cl(2,0,1) 7/13.
    """
    check_group(group, "equivariant_basis")
    if alg.signature[0] + alg.signature[1] == 0:
        raise ValueError(f"equivariant_basis: {alg!r} has no invertible vectors, so no versor group")
    if alg._store.get_plan(("equivariant_basis", group)) is None:
        alg._check_full(f"equivariant_basis({group!r}), the full ({alg.dim}, {alg.dim}) maps")
    _check_size(alg, group)
    return alg._memo(("equivariant_basis", group), lambda: _build(alg, group))


#: The most work the block solves may take, as the sum over grade blocks of (free entries)**3:
#: 2e10 is about 10 s on one busy core. Only algebras with many degenerate vectors come near
#: it (Cl(n, 0) needs under 2e8 up to n = 10).
MAX_SOLVE_COST = 2 * 10**10
#: The most memory the dense ``(k, dim, dim)`` float64 basis may take (refused after the
#: block solves, before it is allocated).
MAX_BASIS_BYTES = 2**30


def block_unknowns(alg: Algebra, group: str) -> list[int]:
    """The free entries of each grade block's solve, blocks in :func:`_order`'s order.

    An entry joining blades ``A`` (input) and ``B`` (output) is free when the two contain the
    same invertible basis vectors (Pin), or the same or the complementary ones (Spin).
    """
    p, q, r = alg.signature
    s = p + q
    shifts = (0, s) if group == "spin" else (0,)  # same invertible vectors, or all flipped
    out = []
    for a, b in _order(alg.n):
        total = 0
        for shift in shifts:
            for m in range(s + 1):  # m invertible vectors in the input blade
                m_out = m if shift == 0 else s - m
                if 0 <= a - m <= r and 0 <= b - m_out <= r:
                    total += math.comb(s, m) * math.comb(r, a - m) * math.comb(r, b - m_out)
        out.append(total)
    return out


def _check_size(alg: Algebra, group: str) -> None:
    """Refuse, before any work, an algebra whose basis would take too long to derive."""
    unknowns = block_unknowns(alg, group)
    cost = sum(u**3 for u in unknowns)
    if cost > MAX_SOLVE_COST:
        raise ValueError(
            f"equivariant_basis({alg!r}, {group!r}): its grade blocks have up to {max(unknowns)} "
            f"free entries each; solving them costs sum(entries**3) = {cost:.1e}, over the "
            f"supported maximum of {MAX_SOLVE_COST:.0e} (about 10 s on one core). Algebras with "
            f"many degenerate vectors (here r = {alg.signature[2]}) have the most; use fewer"
        )


def _build(alg: Algebra, group: str) -> np.ndarray:
    with _single_threaded():
        basis = _compute(alg, group)
    basis.setflags(write=False)
    return basis
