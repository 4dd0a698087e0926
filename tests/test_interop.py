"""Tests of gatorch.interop: conversion to and from the ``clifford`` package.

The correspondence is checked to be meaningful, not only self-consistent: products computed
by clifford on converted inputs must equal gatorch's, blade names must agree, and clifford's
own conventions (PGA's degenerate vector named ``e1`` by ``clifford.Cl(3, 0, 1)``, custom
basis-vector ids) must be read correctly. clifford's product functions are swapped for their
un-jitted ``py_func`` (as in test_clifford_reference.py): numba would compile them anew for
every layout, for seconds each.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("clifford")
import clifford

from gatorch import CGA3, PGA3, STA, VGA3, Algebra
from gatorch.interop.clifford import (
    _permutation_sign,
    algebra_of,
    clifford_layout,
    from_clifford,
    to_clifford,
)

DT = torch.float64
PRESETS = {
    "VGA3": VGA3,
    "PGA3": PGA3,
    "STA": STA,
    "CGA3": CGA3,
    "Cl(2,0,1)": Algebra(2, 0, 1),
    "mixed-order": Algebra.from_signature([-1, 0, 1, 1, 0], start_index=3),
    "Cl(1,0)": Algebra(1, 0, 0),
}


def unjitted(layout: clifford.Layout, monkeypatch: pytest.MonkeyPatch) -> clifford.Layout:
    """Swap the layout's numba product functions for their plain Python source (undone after the test)."""
    for name in ("gmt_func", "omt_func", "adjoint_func"):
        monkeypatch.setattr(layout, name, getattr(layout, name).py_func)
    return layout


def random_mv(alg: Algebra, *shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, alg.dim, generator=torch.Generator().manual_seed(seed), dtype=DT)


# -- round trips and the correspondence ----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_round_trip_is_exact(name: str) -> None:
    alg = PRESETS[name]
    layout = clifford_layout(alg)
    assert tuple(int(s) for s in layout.sig) == alg.metric
    x = random_mv(alg, 2, 3, seed=1)
    mvs = to_clifford(alg, x)
    assert isinstance(mvs, clifford.MVArray) and mvs.shape == (2, 3)
    assert all(m.layout is layout for m in mvs.flat)
    assert torch.equal(from_clifford(layout, mvs), x)
    assert torch.equal(from_clifford(alg, mvs), x)
    one = to_clifford(alg, x[1, 2])
    assert isinstance(one, clifford.MultiVector)
    assert torch.equal(from_clifford(alg, one), x[1, 2])
    assert algebra_of(layout) == alg


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_blade_names_agree(name: str) -> None:
    """Each gatorch basis blade becomes the clifford blade of the same name (same first index)."""
    alg = PRESETS[name]
    layout = clifford_layout(alg)
    eye = torch.eye(alg.dim, dtype=DT)
    for k, blade in enumerate(alg.blade_names):
        mv = to_clifford(alg, eye[k])
        if blade == "1":
            assert mv == layout.scalar
        else:
            assert mv == layout.blades[blade], blade


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_products_in_clifford_match_gatorch(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    alg = PRESETS[name]
    layout = unjitted(clifford_layout(alg), monkeypatch)
    x, y = random_mv(alg, 4, seed=2), random_mv(alg, 4, seed=3)
    a, b = to_clifford(alg, x, layout), to_clifford(alg, y, layout)
    gp = from_clifford(alg, [p * q for p, q in zip(a, b, strict=True)])
    torch.testing.assert_close(gp, alg.gp(x, y), atol=1e-12, rtol=1e-12)
    outer = from_clifford(alg, [p ^ q for p, q in zip(a, b, strict=True)])
    torch.testing.assert_close(outer, alg.outer(x, y), atol=1e-12, rtol=1e-12)
    rev = from_clifford(alg, [~p for p in a])
    torch.testing.assert_close(rev, alg.reverse(x), atol=0, rtol=0)


@st.composite
def algebras(draw: st.DrawFn) -> Algebra:
    metric = draw(st.lists(st.sampled_from([1, -1, 0]), min_size=1, max_size=5))
    if draw(st.booleans()):
        return Algebra(metric.count(1), metric.count(-1), metric.count(0))
    return Algebra.from_signature(metric, start_index=draw(st.sampled_from([None, 0, 1, 3])))


@settings(max_examples=15, deadline=None)
@given(alg=algebras(), seed=st.integers(0, 2**31 - 1))
def test_random_signatures(alg: Algebra, seed: int) -> None:
    layout = clifford_layout(alg)
    x, y = random_mv(alg, 3, seed=seed), random_mv(alg, 3, seed=seed + 1)
    a, b = to_clifford(alg, x), to_clifford(alg, y)
    assert torch.equal(from_clifford(layout, a), x)
    assert algebra_of(layout) == alg
    gmt = layout.gmt_func.py_func  # un-jitted geometric product on the raw value arrays
    want = np.stack([gmt(p.value, q.value) for p, q in zip(a, b, strict=True)])
    got = to_clifford(alg, alg.gp(x, y))
    np.testing.assert_allclose(np.stack([m.value for m in got]), want, atol=1e-12, rtol=1e-12)


def test_large_algebra_round_trip() -> None:
    """n = 10: gatorch names blades e1_2_10..., clifford differently; matching is by index sets."""
    alg = Algebra(10, 0, 0)
    x = random_mv(alg, 2, seed=4)
    assert torch.equal(from_clifford(alg, to_clifford(alg, x)), x)


# -- clifford's own conventions ----------------------------------------------------------------------
def test_cl_pga_numbers_the_degenerate_vector_e1() -> None:
    """``clifford.Cl(3, 0, 1)`` names PGA's vectors e1 (degenerate) .. e4; the data maps by position."""
    layout, blades = clifford.Cl(3, 0, 1)
    assert layout.sig[0] == 0
    alg = algebra_of(layout)
    assert alg.metric == PGA3.metric and alg != PGA3  # same algebra, names from e1
    e01 = torch.zeros(16, dtype=DT)
    e01[PGA3.index("e01")] = 1
    assert torch.equal(from_clifford(PGA3, blades["e12"]), e01)
    assert torch.equal(from_clifford(layout, blades["e12"]), e01)
    assert to_clifford(PGA3, e01, layout) == blades["e12"]
    x = random_mv(PGA3, 5, seed=5)
    assert torch.equal(from_clifford(PGA3, to_clifford(PGA3, x, layout)), x)


def test_custom_basis_vector_ids() -> None:
    """A layout with ids [5, 3, 7]: e53 is the blade of the first two basis vectors, i.e. e12."""
    layout = clifford.Layout([1, 1, 1], ids=clifford.BasisVectorIds([5, 3, 7]))
    e12 = torch.zeros(8, dtype=DT)
    e12[VGA3.index("e12")] = 1
    assert torch.equal(from_clifford(VGA3, layout.blades["e53"]), e12)
    assert algebra_of(layout).metric == VGA3.metric
    x = random_mv(VGA3, 3, seed=6)
    assert torch.equal(from_clifford(VGA3, to_clifford(VGA3, x, layout)), x)


def test_permutation_sign() -> None:
    assert _permutation_sign([0, 1, 2]) == 1 and _permutation_sign([1, 0]) == -1
    assert _permutation_sign([2, 0, 1]) == 1 and _permutation_sign([2, 1, 0]) == -1
    assert _permutation_sign([]) == 1


# -- input forms --------------------------------------------------------------------------------------
def test_input_forms_and_shapes() -> None:
    x = random_mv(VGA3, 2, 3, seed=7)
    mvs = to_clifford(VGA3, x)
    nested = [[mvs[i, j] for j in range(3)] for i in range(2)]
    assert torch.equal(from_clifford(VGA3, nested), x)
    assert torch.equal(from_clifford(VGA3, tuple(nested[0])), x[0])
    obj = np.empty((2, 3), dtype=object)
    for i in range(2):
        for j in range(3):
            obj[i, j] = mvs[i, j]
    assert torch.equal(from_clifford(VGA3, obj), x)
    assert from_clifford(VGA3, []).shape == (0, 8)
    assert to_clifford(VGA3, torch.zeros(0, 8)).shape == (0,)
    out = from_clifford(VGA3, mvs, dtype=torch.float32)
    assert out.dtype == torch.float32 and out.shape == (2, 3, 8)
    y = torch.randn(4, 8, requires_grad=True)  # float32 with grad: detached, values kept
    assert torch.equal(from_clifford(VGA3, to_clifford(VGA3, y), dtype=torch.float32), y.detach())


def test_bad_inputs() -> None:
    layout = clifford_layout(VGA3)
    with pytest.raises(ValueError, match=r"expected last dimension 8.*got shape \(2, 16\)"):
        to_clifford(VGA3, torch.zeros(2, 16))
    with pytest.raises(TypeError, match=r"gatorch\.Algebra"):
        to_clifford("VGA3", torch.zeros(8))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"clifford\.Layout"):
        to_clifford(VGA3, torch.zeros(8), layout="VGA3")
    with pytest.raises(ValueError, match=r"signature \[0, 1, 1, 1\] does not match Algebra\(3, 0, 0\)"):
        to_clifford(VGA3, torch.zeros(8), clifford_layout(PGA3))
    pga_mv = to_clifford(PGA3, torch.zeros(16))
    with pytest.raises(ValueError, match="does not match"):
        from_clifford(VGA3, pga_mv)
    with pytest.raises(ValueError, match="does not match"):
        from_clifford(layout, [to_clifford(VGA3, torch.zeros(8)), pga_mv])
    with pytest.raises(ValueError, match="ragged"):
        from_clifford(VGA3, [[to_clifford(VGA3, torch.zeros(8))], []])
    with pytest.raises(TypeError, match="expected clifford MultiVectors, got float"):
        from_clifford(VGA3, [1.0])
    with pytest.raises(TypeError, match="dtype float64"):
        from_clifford(VGA3, np.zeros((2, 8)))
    with pytest.raises(TypeError, match=r"clifford\.Layout or gatorch\.Algebra"):
        from_clifford("VGA3", [])


def test_missing_clifford_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    clifford_layout(VGA3)  # cached: the check must not depend on the cache
    monkeypatch.setitem(sys.modules, "clifford", None)
    for call in (
        lambda: clifford_layout(VGA3),
        lambda: to_clifford(VGA3, torch.zeros(8)),
        lambda: from_clifford(VGA3, []),
    ):
        with pytest.raises(
            ImportError, match=r"needs the optional dependency clifford.*pip install clifford"
        ):
            call()
