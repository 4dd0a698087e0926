"""Layouts: multivectors that store only some grades, their product tables, equivariant bases and
``EquiLinear`` between layouts (issue 24, first part)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from gatorch import CGA3, PGA3, STA, Algebra
from gatorch.algebras import Layout
from gatorch.algebras.layout import (
    layout_equivariant_basis,
    layout_invariant_components,
    layout_product_table,
    rank_in_grade,
)
from gatorch.functional import gp
from gatorch.functional.bilinear import bilinear
from gatorch.functional.linear import invariant_components
from gatorch.layers import EquiLinear, GeometricBilinear, SteerableGeometricProduct
from gatorch.testing import assert_compiles, assert_equivariant, versor_action

F64 = torch.float64


# -- layouts --------------------------------------------------------------------------------------
def test_layout_blades_follow_the_algebra_order() -> None:
    lay = Layout(PGA3, (2, 0, 1))
    assert lay.grades == (0, 1, 2) and lay.dim == 11 and lay.full_dim == 16
    assert lay.blades.tolist() == list(range(11))
    assert lay.blade_names() == PGA3.blade_names[:11]
    odd = Layout(PGA3, (1, 3))
    assert odd.blades.tolist() == [1, 2, 3, 4, 11, 12, 13, 14]
    assert odd.blade_names() == tuple(PGA3.blade_names[i] for i in odd.blades)
    assert odd.grade_slice(3) == slice(4, 8)
    assert Layout.even(STA).grades == (0, 2, 4) and Layout.full(CGA3).dim == 32
    assert Layout.up_to(PGA3, 1) == Layout(PGA3, [1, 0]) and hash(Layout.up_to(PGA3, 1)) == hash(
        Layout(PGA3, (0, 1))
    )
    assert Layout(PGA3, (0, 1)) != Layout(Algebra(4, 0, 0), (0, 1))
    assert Layout([1, 1, 1], (0, 1)) == Layout(Algebra(3, 0, 0), (0, 1))


def test_rank_in_grade_matches_the_algebra_index() -> None:
    alg = Algebra(3, 2, 1)
    full = Layout.full(alg)
    assert full.index_of_bitmaps(alg.bitmaps).tolist() == list(range(alg.dim))
    bm = alg.bitmaps
    offsets = np.array([alg.grade_slice(g).start for g in alg.grades])
    assert (rank_in_grade(bm, alg.n) + offsets).tolist() == list(range(alg.dim))
    assert Layout(alg, (1, 2)).index_of_bitmaps(np.array([0, 1, 3, 7])).tolist() == [-1, 0, 6, -1]


def test_layout_errors_name_expected_and_received() -> None:
    with pytest.raises(ValueError, match=r"expected grades as ints in \[0, 4\] \(n = 4\), got 5"):
        Layout(PGA3, (0, 5))
    with pytest.raises(ValueError, match="expected distinct grades, got duplicates in"):
        Layout(PGA3, (1, 1))
    with pytest.raises(ValueError, match="at least one grade"):
        Layout(PGA3, ())
    with pytest.raises(TypeError, match="expected grades as an iterable"):
        Layout(PGA3, "012")
    with pytest.raises(ValueError, match="metric entries must be -1, 0 or 1, got entry 1 = 2"):
        Layout([1, 2], (0,))
    lay = Layout(PGA3, (0, 1))
    with pytest.raises(ValueError, match=r"Layout.embed: expected last dimension 5 .*got shape \(2, 16\)"):
        lay.embed(torch.zeros(2, 16))
    with pytest.raises(ValueError, match=r"Layout.project: expected last dimension 16 .*got shape \(2, 5\)"):
        lay.project(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"does not store grade 3"):
        lay.grade_slice(3)


@pytest.mark.parametrize("grades", [(0, 1, 2), (1, 3), (0, 2, 4), (4,), (0, 1, 2, 3, 4)])
def test_embed_project_round_trip(grades: tuple[int, ...]) -> None:
    lay = Layout(PGA3, grades)
    x = torch.randn(3, 2, lay.dim, dtype=F64, requires_grad=True)
    full = lay.embed(x)
    assert full.shape == (3, 2, 16)
    assert torch.equal(lay.project(full), x)
    mask = torch.tensor([1.0 if g in grades else 0.0 for g in PGA3.grades], dtype=F64)
    y = torch.randn(4, 16, dtype=F64)
    assert torch.equal(lay.embed(lay.project(y)), y * mask)
    full.sum().backward()  # differentiable
    assert x.grad is not None and torch.equal(x.grad, torch.ones_like(x))


# -- product tables -------------------------------------------------------------------------------
LAYOUT_TRIPLES = [((0, 1, 2), (0, 1, 2), (0, 1, 2)), ((1, 3), (0, 2, 4), (1, 2, 3)), ((0, 1), (1,), (0, 2))]


@pytest.mark.parametrize("alg", [PGA3, STA, CGA3], ids=repr)
@pytest.mark.parametrize("product", ["gp", "outer", "lcontract", "regressive"])
def test_restricted_tables_equal_the_full_tables_restricted(alg: Algebra, product: str) -> None:
    for gl, gr, go in [*LAYOUT_TRIPLES, ((tuple(range(alg.n + 1)),) * 3)]:
        left, right, out = Layout(alg, gl), Layout(alg, gr), Layout(alg, go)
        table = layout_product_table(left, right, out, product)
        full = alg.cayley(product)[np.ix_(left.blades, right.blades, out.blades)]
        assert np.array_equal(table.dense(), full)
        assert table.nnz == int((full != 0).sum())


@pytest.mark.parametrize("sig", [(3, 0, 0), (1, 3, 0), (2, 0, 1)])
def test_restricted_gp_matches_clifford(sig: tuple[int, int, int]) -> None:
    clifford = pytest.importorskip("clifford")
    p, q, r = sig
    alg = Algebra(p, q, r)
    cl_layout = clifford.Layout(list(alg.metric))
    lay = Layout(alg, (0, 1, 2))
    table = layout_product_table(lay, lay, lay)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(lay.dim), rng.standard_normal(lay.dim)
    ours = bilinear(torch.from_numpy(x), torch.from_numpy(y), table).numpy()

    first = min(i for t in cl_layout.bladeTupList for i in t)  # clifford's first vector index
    # clifford's position of each gatorch blade, matched by the set of basis vectors
    pos = [
        cl_layout.bladeTupList.index(tuple(i + first for i in range(alg.n) if (bm >> i) & 1))
        for bm in alg.bitmaps
    ]

    def to_cl(v: np.ndarray) -> object:
        values = np.zeros(alg.dim)
        values[[pos[i] for i in lay.blades]] = v
        return clifford.MultiVector(cl_layout, values)

    prod = to_cl(x) * to_cl(y)
    ref = prod.value[[pos[i] for i in lay.blades]]
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_restricted_gp_term_counts_and_no_full_tables() -> None:
    """Grades (0, 1, 2) of Cl(n, 0): 613 terms at n = 8, 4489 at n = 16, built from the metric alone."""
    counts = {}
    for n in (8, 16):
        t0 = time.perf_counter()
        lay = Layout([1] * n, (0, 1, 2))
        counts[n] = (lay.dim, layout_product_table(lay, lay, lay).nnz)
        assert time.perf_counter() - t0 < 5.0
    assert counts == {8: (37, 613), 16: (137, 4489)}


def test_restricted_product_runs_on_layout_tensors() -> None:
    lay, out = Layout(CGA3, (0, 1, 2)), Layout(CGA3, (0, 2))
    table = layout_product_table(lay, lay, out)
    x, y = torch.randn(5, lay.dim, dtype=F64), torch.randn(5, lay.dim, dtype=F64)
    expected = out.project(gp(CGA3, lay.embed(x), lay.embed(y)))
    torch.testing.assert_close(bilinear(x, y, table), expected, atol=1e-12, rtol=0)


# -- equivariant bases ----------------------------------------------------------------------------
BASIS_ALGEBRAS = [
    PGA3,
    STA,
    CGA3,
    Algebra(4, 0, 0),
    Algebra(2, 0, 1),
    Algebra(3, 0, 0),
    Algebra(3, 2, 0),
    Algebra.from_signature([1, 1, 0, -1, 1]),  # the degenerate vector in the middle
]


@pytest.mark.parametrize("alg", BASIS_ALGEBRAS, ids=repr)
@pytest.mark.parametrize("group", ["pin", "spin"])
def test_layout_basis_equals_the_numerical_basis(alg: Algebra, group: str) -> None:
    full = Layout.full(alg)
    basis = layout_equivariant_basis(full, full, group)
    assert np.array_equal(basis.dense(full, full), alg.equivariant_basis(group).numpy())
    for kind in ("blades", "coefficients"):
        assert layout_invariant_components(full, group, kind) == invariant_components(alg, group, kind)
    # a sub-layout's basis: the full basis's maps whose grades the layouts store, same order
    lin, lout = Layout(alg, (0, 1, 2)), Layout(alg, tuple(range(1, alg.n + 1)))
    sub = layout_equivariant_basis(lin, lout, group)
    keep = [m for m, (a, b) in enumerate(basis.blocks) if lin.has_grade(a) and lout.has_grade(b)]
    expected = basis.dense(full, full)[keep][:, lout.blades][:, :, lin.blades]
    assert sub.blocks == tuple(basis.blocks[m] for m in keep)
    assert np.array_equal(sub.dense(lin, lout), expected)


def test_layout_basis_numerical_fallback_for_two_degenerate_vectors() -> None:
    alg = Algebra(2, 0, 2)
    full = Layout.full(alg)
    basis = layout_equivariant_basis(full, full, "pin")
    assert np.array_equal(basis.dense(full, full), alg.equivariant_basis("pin").numpy())


def test_layout_basis_at_n16_is_cheap() -> None:
    lay = Layout([1] * 16, (0, 1, 2))
    t0 = time.perf_counter()
    basis = layout_equivariant_basis(lay, lay, "pin")
    assert time.perf_counter() - t0 < 5.0
    assert basis.blocks == ((0, 0), (1, 1), (2, 2))
    assert basis.rows.size == lay.dim


# -- EquiLinear between layouts -------------------------------------------------------------------
def _versors(alg: Algebra, count: int, seed: int, even: bool = False) -> torch.Tensor:
    """Products of 1, 2, 3 random invertible vectors (odd ones included), or of 2 (``even``)."""
    gen = torch.Generator().manual_seed(seed)
    metric = torch.tensor(alg.metric, dtype=F64)
    out = []
    for c in range(count):
        w = torch.zeros(alg.dim, dtype=F64)
        w[0] = 1.0
        for _ in range(2 if even else 1 + c % 3):
            while True:
                v = torch.randn(alg.n, generator=gen, dtype=F64) * torch.where(metric < 0, 0.3, 1.0)
                quad = float((v * v * metric).sum())
                if abs(quad) > 0.2:
                    break
            vec = torch.zeros(alg.dim, dtype=F64)
            vec[alg.grade_slice(1)] = v / abs(quad) ** 0.5
            w = gp(alg, w, vec)
        out.append(w)
    return torch.stack(out)


def _action(alg: Algebra, lay: Layout):  # type: ignore[no-untyped-def]
    return lambda w, x: lay.project(versor_action(alg, w, lay.embed(x)))


EQUI_CASES = [
    (PGA3, (0, 1, 2), (1, 2, 3, 4), "pin"),
    (PGA3, (0, 1), (0, 1, 2), "spin"),
    (STA, (0, 1, 2), (0, 2, 4), "pin"),
    (STA, (1, 3), (0, 1, 2), "spin"),
    (CGA3, (0, 1, 2), (0, 1, 2), "pin"),
    (Algebra(8, 0, 0), (0, 1, 2), (0, 1, 2), "pin"),
    (Algebra(5, 3, 0), (0, 1, 2), (0, 1, 2), "pin"),
]


@pytest.mark.parametrize(("alg", "gin", "gout", "group"), EQUI_CASES, ids=lambda v: repr(v))
def test_layout_equilinear_is_equivariant(alg: Algebra, gin: tuple, gout: tuple, group: str) -> None:
    torch.manual_seed(0)
    lin, lout = Layout(alg, gin), Layout(alg, gout)
    layer = EquiLinear(
        alg, 3, 2, in_s_channels=2, out_s_channels=3, group=group, in_layout=lin, out_layout=lout
    )
    layer = layer.double()
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
    mv, s = torch.randn(4, 3, lin.dim, dtype=F64), torch.randn(4, 2, dtype=F64)
    versors = _versors(alg, 3, seed=1, even=group == "spin")
    result = assert_equivariant(
        layer,
        alg,
        (mv, s),
        in_specs=(_action(alg, lin), "scalar"),
        out_specs=(_action(alg, lout), "scalar"),
        versors=versors,
        group=group,
        atol=1e-9,
        rtol=1e-9,
    )
    assert result.parities == ((1, 0, 1) if group == "pin" else (0, 0, 0))  # odd versors included


def _copy_into_full(sub: EquiLinear, full: EquiLinear) -> None:
    """Copy a layout layer's parameters into a full layer: zero on maps and blades outside the layouts."""
    lin, lout, group = sub.in_layout, sub.out_layout, sub.group
    assert lin is not None and lout is not None
    alg = sub.alg
    fl = Layout.full(alg)
    blocks = layout_equivariant_basis(fl, fl, group).blocks
    keep = [m for m, (a, b) in enumerate(blocks) if lin.has_grade(a) and lout.has_grade(b)]
    inv_full = invariant_components(alg, group, "blades")
    read_full = invariant_components(alg, group, "coefficients")
    inv_sub = [int(lout.blades[i]) for i in layout_invariant_components(lout, group, "blades")]
    read_sub = [int(lin.blades[i]) for i in layout_invariant_components(lin, group, "coefficients")]
    inv_pos = [inv_full.index(b) for b in inv_sub]
    read_pos = [read_full.index(b) for b in read_sub]
    with torch.no_grad():
        for p in full.parameters():
            p.zero_()
        full.weight[:, :, keep] = sub.weight
        if sub.bias is not None:
            full.bias[:, inv_pos] = sub.bias
        if sub.s_to_mv is not None:
            full.s_to_mv[:, inv_pos] = sub.s_to_mv
        if sub.mv_to_s is not None:
            full.mv_to_s[:, :, read_pos] = sub.mv_to_s
        if sub.s_to_s is not None:
            full.s_to_s.load_state_dict(sub.s_to_s.state_dict())


@pytest.mark.parametrize(
    ("alg", "gin", "gout", "group"),
    [
        (PGA3, (0, 1, 2), (1, 2, 3, 4), "pin"),
        (PGA3, (0, 3), (0, 1, 4), "spin"),
        (STA, (0, 4), (0, 2, 4), "spin"),
        (Algebra(2, 0, 2), (0, 1), (0, 1, 2), "pin"),
    ],
    ids=lambda v: repr(v),
)
def test_layout_equilinear_equals_zero_padded_full_layer(
    alg: Algebra, gin: tuple, gout: tuple, group: str
) -> None:
    torch.manual_seed(0)
    lin, lout = Layout(alg, gin), Layout(alg, gout)
    kw = {"in_s_channels": 2, "out_s_channels": 3, "group": group}
    sub = EquiLinear(alg, 3, 2, in_layout=lin, out_layout=lout, **kw).double()  # type: ignore[arg-type]
    full = EquiLinear(alg, 3, 2, **kw).double()  # type: ignore[arg-type]
    with torch.no_grad():
        for p in sub.parameters():
            p.normal_()
    _copy_into_full(sub, full)
    mv, s = torch.randn(5, 3, lin.dim, dtype=F64), torch.randn(5, 2, dtype=F64)
    y_sub, t_sub = sub(mv, s)
    y_full, t_full = full(lin.embed(mv), s)
    torch.testing.assert_close(y_sub, lout.project(y_full), atol=1e-12, rtol=0)
    torch.testing.assert_close(t_sub, t_full, atol=1e-12, rtol=0)


def test_full_layouts_are_todays_layer() -> None:
    torch.manual_seed(3)
    a = EquiLinear(PGA3, 3, 4, in_s_channels=2, out_s_channels=1)
    torch.manual_seed(3)
    b = EquiLinear(
        PGA3,
        3,
        4,
        in_s_channels=2,
        out_s_channels=1,
        in_layout=Layout.full(PGA3),
        out_layout=Layout.full(PGA3),
    )
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    mv, s = torch.randn(2, 3, 16), torch.randn(2, 2)
    assert all(torch.equal(u, v) for u, v in zip(a(mv, s), b(mv, s), strict=True))


def test_layout_equilinear_errors() -> None:
    lay = Layout(PGA3, (0, 1))
    layer = EquiLinear(PGA3, 3, 2, in_layout=lay)
    assert layer(torch.randn(4, 3, 5))[0].shape == (4, 2, 16)
    with pytest.raises(
        ValueError,
        match=r"expected input of shape \(\.\.\., 3, 5\) \(the blades of grades \(0, 1\)\), got \(4, 3, 16\)",
    ):
        layer(torch.randn(4, 3, 16))
    with pytest.raises(
        ValueError, match=r"expected in_layout of Algebra\(3, 0, 1\) .*got a layout of metric \[1, 1, 1\]"
    ):
        EquiLinear(PGA3, 3, 2, in_layout=Layout([1, 1, 1], (0, 1)))
    with pytest.raises(
        TypeError, match=r"expected out_layout a gatorch\.algebras\.Layout or None, got tuple"
    ):
        EquiLinear(PGA3, 3, 2, out_layout=(0, 1))  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"bias='scalar' needs grade 0 in out_layout, got out_layout grades \(1, 2\)"
    ):
        EquiLinear(PGA3, 3, 2, out_layout=Layout(PGA3, (1, 2)), bias="scalar")


def test_layout_equilinear_without_invariant_blades_or_maps() -> None:
    lin, lout = Layout(PGA3, (1, 2)), Layout(PGA3, (2, 3))
    layer = EquiLinear(PGA3, 3, 2, in_s_channels=2, out_s_channels=3, in_layout=lin, out_layout=lout)
    assert layer.bias is None and layer.weight.shape == (2, 3, 3)  # (1, 2) e0-wedge, (2, 2), (2, 3)
    y, t = layer(torch.randn(4, 3, 10), torch.randn(4, 2))
    assert y.shape == (4, 2, 10) and t.shape == (4, 3)
    vga = Algebra(3, 0, 0)
    with pytest.raises(ValueError, match=r"got none from grades \(1,\) to grades \(2,\)"):
        EquiLinear(vga, 3, 2, in_layout=Layout(vga, (1,)), out_layout=Layout(vga, (2,)))


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_layout_equilinear_compiles_fresh(backend: str) -> None:
    """One graph (fullgraph), forward and backward; float64 through the traced graph, float32 in inductor."""
    lay, out = Layout(PGA3, (0, 1, 2)), Layout(PGA3, (1, 2, 3))
    dtype = F64 if backend == "aot_eager" else torch.float32
    layer = EquiLinear(PGA3, 3, 4, in_s_channels=2, out_s_channels=2, in_layout=lay, out_layout=out).to(dtype)
    args = (torch.randn(6, 3, lay.dim, dtype=dtype), torch.randn(6, 2, dtype=dtype))
    tol = 1e-10 if dtype == F64 else 1e-4
    assert_compiles(layer, args, backend=backend, grads=backend == "aot_eager", atol=tol, rtol=tol)


def test_layout_equilinear_bf16_autocast() -> None:
    lay = Layout(STA, (0, 1, 2))
    layer = EquiLinear(STA, 3, 4, in_s_channels=2, out_s_channels=2, in_layout=lay, out_layout=lay)
    mv, s = torch.randn(6, 3, lay.dim), torch.randn(6, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, t = layer(mv, s)
    assert y.shape == (6, 4, lay.dim) and t.shape == (6, 2)
    assert torch.isfinite(y).all() and torch.isfinite(t).all()
    y32, _ = layer(mv, s)
    torch.testing.assert_close(y.float(), y32, atol=0.1, rtol=0.05)


# -- GeometricBilinear on a layout ----------------------------------------------------------------
BILINEAR_CASES = [
    (PGA3, (0, 1, 2, 4), True, "pin"),
    (STA, (0, 1, 2), False, "spin"),
    (CGA3, (0, 1, 5), True, "pin"),
    (Algebra(8, 0, 0), (0, 1, 2), False, "pin"),
]


@pytest.mark.parametrize(("alg", "grades", "join", "group"), BILINEAR_CASES, ids=lambda v: repr(v))
def test_layout_geometric_bilinear_is_equivariant(
    alg: Algebra, grades: tuple, join: bool, group: str
) -> None:
    torch.manual_seed(0)
    lay = Layout(alg, grades)
    layer = GeometricBilinear(
        alg, 3, 2, in_s_channels=2, out_s_channels=2, join=join, group=group, layout=lay
    )
    layer = layer.double()
    mv, s = torch.randn(4, 3, lay.dim, dtype=F64), torch.randn(4, 2, dtype=F64)
    result = assert_equivariant(
        layer,
        alg,
        (mv, s),
        in_specs=(_action(alg, lay), "scalar"),
        out_specs=(_action(alg, lay), "scalar"),
        versors=_versors(alg, 3, seed=2, even=group == "spin"),
        group=group,
        atol=1e-9,
        rtol=1e-9,
    )
    assert result.parities == ((1, 0, 1) if group == "pin" else (0, 0, 0))


@pytest.mark.parametrize(
    ("alg", "grades", "join"), [(PGA3, (0, 1, 2, 4), True), (STA, (0, 2, 3), False)], ids=repr
)
def test_layout_geometric_bilinear_equals_zero_padded_full_layer(
    alg: Algebra, grades: tuple, join: bool
) -> None:
    torch.manual_seed(0)
    lay = Layout(alg, grades)
    kw = {"in_s_channels": 2, "out_s_channels": 2, "join": join}
    sub = GeometricBilinear(alg, 3, 4, layout=lay, **kw).double()  # type: ignore[arg-type]
    full = GeometricBilinear(alg, 3, 4, **kw).double()  # type: ignore[arg-type]
    with torch.no_grad():
        for p in sub.parameters():
            p.normal_()
    names = ["left", "right", "linear_out"] + (["join_left", "join_right"] if join else [])
    for name in names:
        _copy_into_full(getattr(sub, name), getattr(full, name))
    mv, s = torch.randn(5, 3, lay.dim, dtype=F64), torch.randn(5, 2, dtype=F64)
    y_sub, t_sub = sub(mv, s)
    y_full, t_full = full(lay.embed(mv), s)
    torch.testing.assert_close(y_sub, lay.project(y_full), atol=1e-11, rtol=0)
    torch.testing.assert_close(t_sub, t_full, atol=1e-11, rtol=0)


def test_layout_geometric_bilinear_join_needs_the_pseudoscalar() -> None:
    with pytest.raises(
        ValueError,
        match=r"the join needs the pseudoscalar \(grade 4\) in the layout, got layout grades \(0, 1, 2\)",
    ):
        GeometricBilinear(PGA3, 3, 4, layout=Layout(PGA3, (0, 1, 2)))
    layer = GeometricBilinear(PGA3, 3, 4, layout=Layout(PGA3, (0, 1, 2)), join=False)
    assert layer(torch.randn(2, 3, 11))[0].shape == (2, 4, 11)


def test_layout_geometric_bilinear_compiles_fresh() -> None:
    lay = Layout(PGA3, (0, 1, 2, 4))
    layer = GeometricBilinear(PGA3, 3, 4, in_s_channels=2, out_s_channels=2, layout=lay).double()
    args = (torch.randn(6, 3, lay.dim, dtype=F64), torch.randn(6, 2, dtype=F64))
    assert_compiles(layer, args, backend="aot_eager", grads=True, atol=1e-10, rtol=1e-10)


def test_layout_geometric_bilinear_bf16_autocast() -> None:
    lay = Layout(PGA3, (0, 1, 2, 4))
    layer = GeometricBilinear(PGA3, 3, 4, in_s_channels=2, out_s_channels=2, layout=lay)
    mv, s = torch.randn(6, 3, lay.dim), torch.randn(6, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, t = layer(mv, s)
    assert y.shape == (6, 4, lay.dim) and torch.isfinite(y).all() and torch.isfinite(t).all()
    y32, _ = layer(mv, s)
    torch.testing.assert_close(y.float(), y32, atol=0.15, rtol=0.1)


# -- SteerableGeometricProduct on a layout --------------------------------------------------------
@pytest.mark.parametrize(
    ("alg", "grades"), [(PGA3, (0, 1, 2)), (STA, (0, 2, 4)), (Algebra(8, 0, 0), (0, 1, 2))], ids=repr
)
def test_layout_steerable_product_is_equivariant(alg: Algebra, grades: tuple) -> None:
    torch.manual_seed(0)
    lay = Layout(alg, grades)
    layer = SteerableGeometricProduct(alg, 3, in_s_channels=2, layout=lay).double()
    mv, s = torch.randn(4, 3, lay.dim, dtype=F64), torch.randn(4, 2, dtype=F64)
    result = assert_equivariant(
        layer,
        alg,
        (mv, s),
        in_specs=(_action(alg, lay), "scalar"),
        out_specs=(_action(alg, lay), "scalar"),
        versors=_versors(alg, 3, seed=3),
        atol=1e-9,
        rtol=1e-9,
    )
    assert result.parities == (1, 0, 1)


@pytest.mark.parametrize(("alg", "grades"), [(PGA3, (0, 1, 2)), (STA, (1, 3, 4))], ids=repr)
def test_layout_steerable_product_equals_zero_padded_full_layer(alg: Algebra, grades: tuple) -> None:
    from gatorch.functional.steerable import steerable_paths

    torch.manual_seed(0)
    lay = Layout(alg, grades)
    sub = SteerableGeometricProduct(alg, 3, in_s_channels=2, layout=lay).double()
    full = SteerableGeometricProduct(alg, 3, in_s_channels=2).double()
    with torch.no_grad():
        for p in sub.parameters():
            p.normal_()
    _copy_into_full(sub.right, full.right)
    _copy_into_full(sub.left, full.left)
    paths = steerable_paths(alg)
    assert sub._layout_plan is not None
    keep = [paths.index(p) for p in sub._layout_plan.paths]
    assert keep == sorted(keep) and all(
        p in sub._layout_plan.paths for p in paths if all(lay.has_grade(g) for g in p)
    )
    with torch.no_grad():
        full.weight.zero_()
        full.weight[:, keep] = sub.weight
    mv, s = torch.randn(5, 3, lay.dim, dtype=F64), torch.randn(5, 2, dtype=F64)
    y_sub, _ = sub(mv, s)
    y_full, _ = full(lay.embed(mv), s)
    torch.testing.assert_close(y_sub, lay.project(y_full), atol=1e-11, rtol=0)


def test_layout_steerable_product_refuses_what_it_cannot_do() -> None:
    from gatorch.functional.layout import layout_steerable_gp, layout_steerable_plan
    from gatorch.layers.zoo.glgenn import QTLinear

    class OtherLinear(SteerableGeometricProduct):
        linear_class = QTLinear

    lay = Layout(PGA3, (0, 1, 2))
    with pytest.raises(TypeError, match="layouts need EquiLinear linear maps, got linear_class"):
        OtherLinear(PGA3, 3, layout=lay)
    with pytest.raises(ValueError, match=r"expected a layout with a grade path \(a, b, c\) of the geometric"):
        SteerableGeometricProduct(PGA3, 3, layout=Layout(PGA3, (1, 3)))  # 1*1, 1*3, 3*3 give grades 0, 2, 4
    empty = layout_steerable_plan(Layout(PGA3, (1, 3)))
    y = layout_steerable_gp(torch.randn(2, 3, 8), torch.randn(2, 3, 8), torch.randn(3, 0), empty)
    assert empty.paths == () and y.shape == (2, 3, 8) and not y.any()  # the empty sum
    layer = SteerableGeometricProduct(PGA3, 3, layout=lay)
    with pytest.raises(ValueError, match=r"expected input of shape \(\.\.\., 3, 11\)"):
        layer(torch.randn(2, 3, 16))
    with pytest.raises(ValueError, match="expected a layer on all blades"):
        layer.tables()


def test_layout_steerable_product_compiles_fresh() -> None:
    lay = Layout(PGA3, (0, 1, 2))
    layer = SteerableGeometricProduct(PGA3, 3, in_s_channels=2, layout=lay).double()
    args = (torch.randn(6, 3, lay.dim, dtype=F64), torch.randn(6, 2, dtype=F64))
    assert_compiles(layer, args, backend="aot_eager", grads=True, atol=1e-10, rtol=1e-10)


def test_layout_tables_are_rebuilt_from_their_keys() -> None:
    # a compiled graph names a layout table by its key (the opaque bilinear op rebuilds it)
    from gatorch.algebras.layout import layout_table_key
    from gatorch.functional.bilinear import _table_for_key
    from gatorch.functional.layout import layout_steerable_plan

    alg = Algebra.from_signature([1, 0, -1, 1], start_index=0)  # an unusual basis order
    lay, out = Layout(alg, (0, 1, 2)), Layout(alg, (1, 3))
    for product in ("gp", "regressive"):
        table = layout_product_table(lay, lay, out, product)
        assert table.key == layout_table_key(lay, lay, out, product)
        for key, expected in ((table.key, table), (table.key + ";x", table.transposed("x"))):
            rebuilt = _table_for_key(key)
            assert rebuilt.dims == expected.dims
            for a in ("i", "j", "k", "s"):
                np.testing.assert_array_equal(getattr(rebuilt, a), getattr(expected, a))
    plan = layout_steerable_plan(lay)
    assert len({t.key for t in plan.tables}) == len(plan.paths)  # one key per path
    for path_table in plan.tables:
        rebuilt = _table_for_key(path_table.key)
        for a in ("i", "j", "k", "s"):
            np.testing.assert_array_equal(getattr(rebuilt, a), getattr(path_table, a))
    assert _table_for_key(table.key) is _table_for_key(table.key)  # built once per algebra
