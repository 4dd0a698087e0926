"""Every product, involution, projection and complement against the independent ``clifford`` package.

Components are matched by blade *name*: gatorch's names (``alg.blade_names``, e.g.
``e013``) are parsed into index sets, clifford's blades are identified by their
index tuples (``layout.bladeTupList``), and a permutation between the two
component orders is built from the sets alone, so neither library's blade order
is trusted. Both sides name blades by ascending indices (asserted), so no reordering
signs are involved.

The operators are clifford's public ones (``*``, ``^``, ``<<``, ``&``, ``~``,
``gradeInvol``, ``conjugate``, ``x(k)``, complements), run un-jitted: numba compiles
every table function of every layout anew (seconds per function and signature),
which would dominate the suite. clifford's layout functions are numba dispatchers
whose ``py_func`` is their plain Python source, so swapping them in changes speed,
not results; one test checks that against the jitted functions.
"""

from __future__ import annotations

import clifford
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gatorch import CGA3, PGA3, STA, VGA3, Algebra
from gatorch import functional as F

ATOL = 1e-12
RTOL = 1e-12

PRESETS = {"VGA3": VGA3, "PGA3": PGA3, "CGA3": CGA3, "STA": STA}

# gatorch function, clifford operator
BINARY = {
    "gp": (lambda alg, x, y: alg.gp(x, y), lambda a, b: a * b),
    "outer": (lambda alg, x, y: alg.outer(x, y), lambda a, b: a ^ b),
    "lcontract": (lambda alg, x, y: alg.lcontract(x, y), lambda a, b: a << b),
    "regressive": (lambda alg, x, y: alg.regressive(x, y), lambda a, b: a & b),
}
UNARY = {
    "reverse": (lambda alg, x: alg.reverse(x), lambda a: ~a),
    "involute": (lambda alg, x: alg.involute(x), lambda a: a.gradeInvol()),
    "conjugate": (lambda alg, x: alg.conjugate(x), lambda a: a.conjugate()),
    "dual": (lambda alg, x: alg.dual(x), lambda a: a.right_complement()),
    "undual": (lambda alg, x: alg.undual(x), lambda a: a.left_complement()),
}

# clifford's jitted layout functions (cached properties); vee_func comes last because its
# closure captures the complement and outer functions when it is built.
_JITTED = (
    "gmt_func",
    "omt_func",
    "lcmt_func",
    "adjoint_func",
    "left_complement_func",
    "right_complement_func",
    "_grade_invol",
)


def gatorch_index_sets(alg: Algebra) -> list[tuple[int, ...]]:
    """Positions (0-based, in ``alg.metric`` order) of the factors of each blade, parsed from its name."""
    first = alg.blade_names[1]  # the first basis vector, 'e0' or 'e1' (or e<start_index>)
    assert alg.grades[1] == 1 and first.startswith("e")
    start = int(first[1:])
    sets = []
    for name in alg.blade_names:
        if name == "1":
            sets.append(())
            continue
        assert name.startswith("e"), name
        body = name[1:]
        labels = body.split("_") if "_" in body else list(body)
        pos = tuple(int(t) - start for t in labels)
        assert list(pos) == sorted(set(pos)), f"gatorch blade name {name!r} is not ascending"
        assert all(0 <= i < alg.n for i in pos), name
        sets.append(pos)
    return sets


class CliffordRef:
    """A clifford layout matched to a gatorch algebra by blade index sets."""

    def __init__(self, alg: Algebra, layout: clifford.Layout):
        self.alg = alg
        self.layout = layout
        tuples = [tuple(t) for t in layout.bladeTupList]
        ids = sorted({i for t in tuples for i in t})
        assert len(ids) == alg.n
        cf_sets = []
        for t in tuples:
            assert list(t) == sorted(set(t)), f"clifford blade {t} is not ascending"
            cf_sets.append(tuple(ids.index(i) for i in t))
        cf_index = {s: k for k, s in enumerate(cf_sets)}
        g_sets = gatorch_index_sets(alg)
        assert sorted(g_sets) == sorted(cf_sets)
        # perm[g] = clifford component of gatorch blade g
        self.perm = np.array([cf_index[s] for s in g_sets])
        # the basis vectors must square to the same metric on both sides
        for pos in range(alg.n):
            vec = np.zeros(alg.n)
            vec[pos] = 1.0
            e = self.mv(self._vector(vec))
            sq = e * e
            assert np.allclose(sq.value[1:], 0) and sq.value[0] == alg.metric[pos], (pos, alg.metric)

    def _vector(self, coeffs: np.ndarray) -> np.ndarray:
        x = np.zeros(self.alg.dim)
        x[self.alg.grade_slice(1)] = coeffs
        return x

    def mv(self, x: np.ndarray) -> clifford.MultiVector:
        value = np.zeros(self.alg.dim)
        value[self.perm] = x
        return self.layout.MultiVector(value=value)

    def values(self, mv: clifford.MultiVector) -> np.ndarray:
        value = np.asarray(mv.value, dtype=np.float64)
        return value[self.perm]


_REFS: dict[tuple[Algebra, bool], CliffordRef] = {}


def clifford_ref(alg: Algebra, jit: bool = False) -> CliffordRef:
    key = (alg, jit)
    if key not in _REFS:
        p, q, r = alg.signature
        if alg.metric == (0,) * r + (1,) * p + (-1,) * q:
            layout, _ = clifford.Cl(p, q, r)
        else:
            layout = clifford.Layout(list(alg.metric))
        assert tuple(int(s) for s in layout.sig) == alg.metric
        if not jit:
            for name in _JITTED:
                setattr(layout, name, getattr(layout, name).py_func)
            layout.vee_func = layout.vee_func.py_func
        _REFS[key] = CliffordRef(alg, layout)
    return _REFS[key]


def _inputs(alg: Algebra, count: int, seed: int, with_blades: bool) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(count, alg.dim, generator=g, dtype=torch.float64)
    y = torch.randn(count, alg.dim, generator=g, dtype=torch.float64)
    # sparse inputs too: single grades, so that missing or extra terms cannot cancel
    k = torch.arange(count) % (alg.n + 1)
    grades = torch.tensor(alg.grades)
    x = torch.cat([x, x * (grades[None] == k[:, None])])
    y = torch.cat([y, y * (grades[None] == k.flip(0)[:, None])])
    if with_blades:  # every pair of basis blades: the whole Cayley table
        eye = torch.eye(alg.dim, dtype=torch.float64)
        x = torch.cat([x, eye.repeat_interleave(alg.dim, 0)])
        y = torch.cat([y, eye.repeat(alg.dim, 1)])
    return x, y


def _check_binary(alg: Algebra, ref: CliffordRef, name: str, x: torch.Tensor, y: torch.Tensor) -> None:
    g_fn, c_fn = BINARY[name]
    got = g_fn(alg, x, y).numpy()
    dense = F.bilinear_dense(alg, x, y, name).numpy()
    want = np.stack(
        [ref.values(c_fn(ref.mv(a), ref.mv(b))) for a, b in zip(x.numpy(), y.numpy(), strict=True)]
    )
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{name} on {alg!r}")
    np.testing.assert_allclose(dense, want, rtol=RTOL, atol=ATOL, err_msg=f"dense {name} on {alg!r}")


def _check_unary(alg: Algebra, ref: CliffordRef, name: str, x: torch.Tensor) -> None:
    g_fn, c_fn = UNARY[name]
    got = g_fn(alg, x).numpy()
    want = np.stack([ref.values(c_fn(ref.mv(a))) for a in x.numpy()])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{name} on {alg!r}")


def _check_grades(alg: Algebra, ref: CliffordRef, x: torch.Tensor) -> None:
    for k in range(alg.n + 1):
        got = alg.grade(x, k).numpy()
        want = np.stack([ref.values(ref.mv(a)(k)) for a in x.numpy()])
        np.testing.assert_allclose(got, want, rtol=0, atol=0, err_msg=f"grade {k} on {alg!r}")
        sl = alg.grade_slice(k)
        mask = np.zeros(alg.dim, dtype=bool)
        mask[sl] = True
        assert np.all(got[:, ~mask] == 0)
        np.testing.assert_array_equal(got[:, sl], x.numpy()[:, sl])
    if alg.n >= 2:  # several grades at once
        got = alg.grade(x, [0, 2]).numpy()
        want = np.stack([ref.values(ref.mv(a)(0, 2)) for a in x.numpy()])
        np.testing.assert_allclose(got, want, rtol=0, atol=0)


# -- presets ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_products_match_clifford_on_presets(preset: str, name: str) -> None:
    alg = PRESETS[preset]
    ref = clifford_ref(alg)
    x, y = _inputs(alg, 8, seed=1, with_blades=True)
    _check_binary(alg, ref, name, x, y)


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_unary_match_clifford_on_presets(preset: str, name: str) -> None:
    alg = PRESETS[preset]
    ref = clifford_ref(alg)
    x, _ = _inputs(alg, 8, seed=2, with_blades=False)
    x = torch.cat([x, torch.eye(alg.dim, dtype=torch.float64)])
    _check_unary(alg, ref, name, x)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_grade_projection_matches_clifford_on_presets(preset: str) -> None:
    alg = PRESETS[preset]
    x, _ = _inputs(alg, 6, seed=3, with_blades=False)
    _check_grades(alg, clifford_ref(alg), x)


def test_preset_blade_names_match_clifford() -> None:
    """Spot check of the name matching itself on PGA3: gatorch's e0 is clifford's degenerate e1."""
    ref = clifford_ref(PGA3)
    e01 = torch.zeros(16, dtype=torch.float64)
    e01[PGA3.index("e01")] = 1
    mv = ref.mv(e01.numpy())
    assert ref.layout.sig[0] == 0
    assert mv == ref.layout.blades["e12"]  # clifford numbers PGA's vectors e1 (degenerate) .. e4
    e = ref.layout.blades
    assert (e["e1"] * e["e1"]) == 0 and (e["e2"] * e["e2"]) == 1


def test_unjitted_clifford_agrees_with_jitted() -> None:
    """The un-jitted clifford functions used here compute what the jitted ones do.

    Only the geometric product and the reverse: compiling clifford's functions costs
    seconds each, and the rest are the same ``py_func`` swap.
    """
    alg = VGA3
    jit, plain = clifford_ref(alg, jit=True), clifford_ref(alg, jit=False)
    assert plain.layout is not jit.layout
    assert plain.layout.gmt_func is not jit.layout.gmt_func
    x, y = _inputs(alg, 4, seed=4, with_blades=False)
    for a, b in zip(x.numpy(), y.numpy(), strict=True):
        np.testing.assert_allclose(
            plain.values(plain.mv(a) * plain.mv(b)), jit.values(jit.mv(a) * jit.mv(b)), rtol=0, atol=1e-14
        )
        np.testing.assert_allclose(plain.values(~plain.mv(a)), jit.values(~jit.mv(a)), rtol=0, atol=0)


# -- random signatures -------------------------------------------------------------------------------
@st.composite
def algebras(draw: st.DrawFn) -> Algebra:
    metric = draw(st.lists(st.sampled_from([1, -1, 0]), min_size=1, max_size=6))
    if draw(st.booleans()):
        return Algebra(metric.count(1), metric.count(-1), metric.count(0))
    start = draw(st.sampled_from([None, 0, 1, 3]))
    return Algebra.from_signature(metric, start_index=start)


@settings(max_examples=25, deadline=None)
@given(alg=algebras(), seed=st.integers(0, 2**31 - 1))
def test_everything_matches_clifford_on_random_signatures(alg: Algebra, seed: int) -> None:
    ref = clifford_ref(alg, jit=False)
    x, y = _inputs(alg, 3, seed=seed, with_blades=alg.n <= 3)
    for name in BINARY:
        _check_binary(alg, ref, name, x, y)
    for name in UNARY:
        _check_unary(alg, ref, name, x)
    _check_grades(alg, ref, x)
