"""Size limits of "any signature": refused at once with the limit named, and what is allowed is fast.

The cost of every size up to n = 10 is in docs/performance.md ("Cost by dimension").
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from gatorch import Algebra
from gatorch.algebras import MAX_DENSE_N, MAX_N
from gatorch.algebras import equivariant as eq
from gatorch.layers import EquiLinear
from gatorch.testing import assert_layer_equivariant


def _refused_fast(call, match: str, error: type[Exception] = ValueError) -> str:
    """``call()`` raises ``error`` matching ``match`` within one second; the message."""
    start = time.perf_counter()
    with pytest.raises(error, match=match) as info:
        call()
    assert time.perf_counter() - start < 1.0, "the refusal must come before any work"
    return str(info.value)


@pytest.mark.parametrize(
    ("args", "n"),
    [((10**9,), 10**9), ((40,), 40), ((6, 3, 3), 12), ((0, 0, 2**62), 2**62), ((MAX_N, 0, 1), MAX_N + 1)],
)
def test_too_many_basis_vectors_refused_at_once_with_the_limit(args: tuple[int, ...], n: int) -> None:
    limit = f"n = {n} basis vectors exceeds the supported maximum n = {MAX_N}"
    msg = _refused_fast(lambda: Algebra(*args), limit)
    assert "Algebra(p=" in msg and "4**n" in msg


def test_too_long_metric_refused_with_the_limit() -> None:
    _refused_fast(
        lambda: Algebra.from_signature([1] * (MAX_N + 1)),
        f"n = {MAX_N + 1} basis vectors exceeds the supported maximum n = {MAX_N}",
    )


@pytest.mark.parametrize("args", [(-1,), (2, -3), (0, 0, -(10**9))])
def test_negative_counts_refused_at_once(args: tuple[int, ...]) -> None:
    _refused_fast(lambda: Algebra(*args), "must be a non-negative int, got -")


def test_dense_cayley_refused_above_its_limit_with_the_size() -> None:
    alg = Algebra(MAX_DENSE_N + 1)
    msg = _refused_fast(lambda: alg.cayley("gp"), f"n <= {MAX_DENSE_N}")
    assert "(512, 512, 512)" in msg and "1 GiB" in msg and f"{alg.gp_table.nnz} sparse terms" in msg


def test_equivariant_basis_of_a_very_degenerate_algebra_refused_at_once() -> None:
    alg = Algebra(1, 0, 7)  # grade blocks of up to 2450 free entries (Pin)
    assert sum(u**3 for u in eq.block_unknowns(alg, "pin")) > eq.MAX_SOLVE_COST
    msg = _refused_fast(lambda: alg.equivariant_basis("pin"), "over the supported maximum of 2e[+]10")
    assert "up to 2450 free entries" in msg and "r = 7" in msg


def test_block_unknowns_counts_the_free_entries() -> None:
    for sig in [(3, 0, 1), (1, 0, 3), (2, 1, 2), (1, 2, 0), (4, 0, 0)]:
        alg = Algebra(*sig)
        slices = [alg.grade_slice(k) for k in range(alg.n + 1)]
        for group in ("pin", "spin"):
            brute = [eq._allowed_pairs(alg, group, slices[b], slices[a])[0].size for a, b in eq._order(alg.n)]
            assert eq.block_unknowns(alg, group) == brute, (sig, group)


#: every signature with 1 to 3 basis vectors and at least one invertible one
SMALL = [(p, q, n - p - q) for n in range(1, 4) for p in range(n + 1) for q in range(n + 1 - p) if p + q]


@pytest.mark.parametrize("sig", [*SMALL, (1, 0, 3), (2, 1, 1), (1, 3, 0)])
def test_block_solver_gives_exactly_the_dense_reference_basis(sig: tuple[int, int, int]) -> None:
    """Same maps, same order, same values as the dense Gram solver (which EquiLinear weights rely on)."""
    alg = Algebra(*sig)
    for group in ("pin", "spin"):
        new, ref = eq._compute(alg, group), eq._compute(alg, group, dense=True)
        assert new.shape == ref.shape and np.array_equal(new, ref), (sig, group)


def test_cl8_bases_are_grade_projections_and_pseudoscalar_maps() -> None:
    alg = Algebra(8)
    start = time.perf_counter()
    pin, spin = alg.equivariant_basis("pin"), alg.equivariant_basis("spin")
    assert time.perf_counter() - start < 30.0  # over 150 s with the dense solver
    assert pin.shape == (9, 256, 256) and spin.shape == (18, 256, 256)
    for k in range(9):  # Pin: the grade projections, in grade order
        sl = alg.grade_slice(k)
        proj = torch.zeros(256, 256, dtype=torch.float64)
        proj[sl, sl] = torch.eye(math.comb(8, k), dtype=torch.float64)
        assert torch.equal(pin[k], proj)
    extra = [m for m in spin if not any(torch.equal(m, p) for p in pin)]
    assert len(extra) == 9  # Spin: the projections and one map from grade k to grade 8 - k each
    for m in extra:
        rows, cols = torch.nonzero(m, as_tuple=True)
        assert {alg.grades[int(c)] + alg.grades[int(r)] for r, c in zip(rows, cols, strict=True)} == {8}
        assert torch.equal(m.abs().sum(0), (m.abs().sum(0) > 0).double())  # a signed blade permutation


def _versor(alg: Algebra, vectors: int, gen: torch.Generator) -> torch.Tensor:
    """A product of ``vectors`` random unit vectors (invertible: their Euclidean part is not zero)."""
    w = torch.zeros(alg.dim, dtype=torch.float64)
    w[0] = 1.0
    for _ in range(vectors):
        v = torch.zeros(alg.dim, dtype=torch.float64)
        v[alg.grade_slice(1)] = torch.randn(alg.n, dtype=torch.float64, generator=gen)
        quad = alg.gp(v, v)[0].abs().sqrt()
        w = alg.gp(w, v / quad)
    return w


def test_equilinear_on_a_high_dimensional_degenerate_algebra_is_equivariant() -> None:
    alg = Algebra(7, 0, 1)  # n = 8, 256 blades: reflections, rotations and translations
    layer = EquiLinear(alg, 2, 2, in_s_channels=1, out_s_channels=1).double()
    gen = torch.Generator().manual_seed(0)
    w = torch.stack([_versor(alg, k, gen) for k in (2, 4, 1, 3)])  # two even, two odd
    mv = torch.randn(4, 2, alg.dim, dtype=torch.float64, generator=gen)
    s = torch.randn(4, 1, dtype=torch.float64, generator=gen)
    assert_layer_equivariant(layer, alg, mv, s, versors=w, batched=True)


def test_huge_metric_list_refused_before_it_is_read() -> None:
    """A 10**7-entry metric is refused by its length, before any entry is converted."""
    big = [1] * 10**7
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"metric of length 10000000: n = 10000000 basis vectors exceeds"):
        Algebra.from_signature(big)
    assert time.perf_counter() - t0 < 0.5
