"""Size limits of "any signature": refused at once with the limit named, and what is allowed is fast.

The cost of every size up to n = 10 is in docs/performance.md ("Cost by dimension"). An
algebra itself goes up to ``MAX_N`` (20) basis vectors; its full ``2**n x 2**n`` tables and
basis up to ``MAX_FULL_N`` (11), and the grade-subset layouts work above that.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from gatorch import Algebra
from gatorch.algebras import MAX_DENSE_N, MAX_FULL_N, MAX_N
from gatorch.algebras import equivariant as eq
from gatorch.algebras.layout import Layout, layout_product_table
from gatorch.functional.bilinear import bilinear
from gatorch.layers import EquiLinear, GeometricBilinear
from gatorch.testing import assert_compiles, assert_layer_equivariant


def _refused_fast(call, match: str, error: type[Exception] = ValueError) -> str:
    """``call()`` raises ``error`` matching ``match`` within one second; the message."""
    start = time.perf_counter()
    with pytest.raises(error, match=match) as info:
        call()
    assert time.perf_counter() - start < 1.0, "the refusal must come before any work"
    return str(info.value)


@pytest.mark.parametrize(
    ("args", "n"),
    [((10**9,), 10**9), ((40,), 40), ((12, 6, 3), 21), ((0, 0, 2**62), 2**62), ((MAX_N, 0, 1), MAX_N + 1)],
)
def test_too_many_basis_vectors_refused_at_once_with_the_limit(args: tuple[int, ...], n: int) -> None:
    assert MAX_N == 20
    limit = f"n = {n} basis vectors exceeds the supported maximum n = {MAX_N}"
    msg = _refused_fast(lambda: Algebra(*args), limit)
    assert "Algebra(p=" in msg and "2**n blades" in msg and f"only up to n = {MAX_FULL_N}" in msg


def test_too_long_metric_refused_with_the_limit() -> None:
    _refused_fast(
        lambda: Algebra.from_signature([1] * (MAX_N + 1)),
        f"n = {MAX_N + 1} basis vectors exceeds the supported maximum n = {MAX_N}",
    )


@pytest.mark.parametrize("args", [(-1,), (2, -3), (0, 0, -(10**9))])
def test_negative_counts_refused_at_once(args: tuple[int, ...]) -> None:
    _refused_fast(lambda: Algebra(*args), "must be a non-negative int, got -")


def test_dense_cayley_refused_above_its_limit_with_the_size() -> None:
    alg = Algebra(MAX_DENSE_N, 0, 1)  # a degenerate vector: fewer terms than 4**n
    for product in ("gp", "outer", "lcontract", "regressive"):
        msg = _refused_fast(lambda product=product: alg.cayley(product), f"n <= {MAX_DENSE_N}")
        nnz = alg.bilinear_table(product).nnz
        assert "(512, 512, 512)" in msg and "1 GiB" in msg and f"({nnz} sparse terms)" in msg


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


# -- above MAX_FULL_N: the algebra and its per-blade data, never its full tables ----------------------
def test_algebra_16_constructs_in_seconds_with_its_per_blade_data() -> None:
    start = time.perf_counter()
    alg = Algebra(10, 5, 1)  # n = 16, not built by any other test
    assert time.perf_counter() - start < 5.0
    assert alg.dim == 65536 and alg.grades[-1] == 16 and alg.grade_slice(2) == slice(17, 137)
    assert alg.blade_names[-1] == "e" + "_".join(str(i) for i in range(16)) and alg.index("e0_3") == 17 + 2
    with pytest.raises(
        ValueError, match=r"no blade named 'e17'; blade names are 1, e0, e1, .*\(65536 in all\)$"
    ):
        alg.index("e17")
    x = torch.randn(2, alg.dim, dtype=torch.float64)
    assert torch.equal(alg.undual(alg.dual(x)), x)  # the per-blade constants, from the bitmaps
    k = torch.tensor(alg.grades, dtype=torch.float64)
    assert torch.equal(alg.reverse(x), x * torch.where((k * (k - 1) / 2) % 2 == 0, 1.0, -1.0))


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.gp_table,
        lambda a: a.bilinear_table("regressive"),
        lambda a: a.cayley("outer"),
        lambda a: a.equivariant_basis("pin"),
        lambda a: eq.equivariant_basis(a, "spin"),
        lambda a: a.constant("bivector_lmul_pos", None, torch.int64),
        lambda a: a.gp(*torch.zeros(2, a.dim)),
        lambda a: EquiLinear(a, 1, 1),
    ],
)
def test_full_tables_above_max_full_n_refused_at_once_with_the_limit(call) -> None:
    alg = Algebra(16)
    msg = _refused_fast(
        lambda: call(alg), f"only for n <= MAX_FULL_N = {MAX_FULL_N} basis vectors, got n = 16"
    )
    assert "4**n" in msg and "Layout(alg, grades=(0, 1, 2))" in msg


def test_algebra_up_to_max_full_n_builds_its_tables_on_first_use() -> None:
    start = time.perf_counter()
    alg = Algebra(MAX_FULL_N - 1, 1)  # n = 11: constructing it must not build the 4**11 tables
    assert time.perf_counter() - start < 1.0
    assert alg.store.get_plan("tables") is None and alg.store.get_plan(("constants", "table")) is None


def _vector_action(lay: Layout, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``v involute(x) v^-1`` for a vector ``v`` and ``x`` on ``lay`` (grades 0..2), through layout tables.

    The action keeps grades, so projecting the product onto ``lay`` drops only zeros.
    """
    vec, up3 = Layout(lay.metric, (1,)), Layout(lay.metric, (0, 1, 2, 3))
    v_x = bilinear(v, x * torch.tensor((-1.0) ** lay.blade_grades), layout_product_table(vec, lay, up3))
    quad = (v * v * torch.tensor(lay.metric, dtype=v.dtype)).sum(-1, keepdim=True)
    return bilinear(v_x, v / quad, layout_product_table(up3, vec, lay))


@pytest.mark.parametrize("sig", [(4, 1, 0), (2, 1, 1)])
def test_vector_action_on_a_layout_is_the_sandwich(sig: tuple[int, int, int]) -> None:
    alg = Algebra(*sig)
    lay = Layout(alg, (0, 1, 2))
    gen = torch.Generator().manual_seed(1)
    v, x = (
        torch.randn(alg.n, dtype=torch.float64, generator=gen),
        torch.randn(3, lay.dim, dtype=torch.float64, generator=gen),
    )
    full_v = torch.zeros(alg.dim, dtype=torch.float64)
    full_v[alg.grade_slice(1)] = v
    torch.testing.assert_close(_vector_action(lay, v, x), lay.project(alg.sandwich(full_v, lay.embed(x))))


@pytest.mark.parametrize("sig", [(16, 0, 0), (11, 4, 1)])
def test_layout_layers_at_n16_are_equivariant_under_even_and_odd_versors(sig: tuple[int, int, int]) -> None:
    alg = Algebra(*sig)
    lay = Layout(alg, (0, 1, 2))
    gen = torch.Generator().manual_seed(0)
    linear = EquiLinear(alg, 3, 2, in_layout=lay, out_layout=lay).double()
    bil = GeometricBilinear(alg, 3, 2, layout=lay, join=False).double()
    with torch.no_grad():  # random biases and weights, so that every map and block is exercised
        for p in [*linear.parameters(), *bil.parameters()]:
            p.copy_(torch.randn(p.shape, dtype=torch.float64, generator=gen))
    x = torch.randn(4, 3, lay.dim, dtype=torch.float64, generator=gen)
    for count in (1, 2, 3):  # odd and even versors: products of 1, 2, 3 random vectors
        vectors = torch.randn(count, alg.n, dtype=torch.float64, generator=gen)

        def act(y: torch.Tensor, vectors: torch.Tensor = vectors) -> torch.Tensor:
            for v in vectors.flip(0):  # (v1 v2 ...) acts as v1(v2(...(y)))
                y = _vector_action(lay, v, y)
            return y

        moved = act(x)
        assert (moved - x).abs().max() > 0.1
        for layer in (linear, bil):
            out, out_moved = layer(x)[0], layer(moved)[0]
            torch.testing.assert_close(out_moved, act(out), rtol=0, atol=1e-9)


def test_layout_layers_at_n16_compile_fresh_in_one_graph() -> None:
    alg = Algebra(16)
    lay = Layout(alg, (0, 1, 2))
    x = torch.randn(2, 4, lay.dim, dtype=torch.float64)
    assert_compiles(EquiLinear(alg, 4, 4, in_layout=lay, out_layout=lay).double(), (x,), backend="aot_eager")
    assert_compiles(GeometricBilinear(alg, 4, 4, layout=lay, join=False).double(), (x,), backend="aot_eager")
