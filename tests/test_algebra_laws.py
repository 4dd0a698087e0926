"""Algebraic laws on random inputs, over several signatures (degenerate and indefinite included).

Expected values come from the laws themselves or from formulas written out here
(the quadratic form from ``alg.metric``, the reflection formula, incidence of planes),
never from the operation under test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gatorch import PGA3, Algebra
from gatorch import functional as F
from gatorch.testing import ALGEBRAS as SHARED_ALGEBRAS
from gatorch.testing import random_versors, versor_parity

ALGEBRAS: dict[str, Algebra] = {
    **SHARED_ALGEBRAS,
    "Cl(4,0)": Algebra(4, 0, 0),
    "Cl(0,3)": Algebra(0, 3, 0),
    "[-1,0,1]": Algebra.from_signature([-1, 0, 1]),
}
ALG_IDS = sorted(ALGEBRAS)
PRODUCTS = ("gp", "outer", "lcontract", "regressive")
TOL = {"atol": 1e-10, "rtol": 1e-10}


def _rand(alg: Algebra, *shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, alg.dim, generator=g, dtype=torch.float64)


def _vectors(alg: Algebra, *shape: int, seed: int = 0) -> torch.Tensor:
    x = torch.zeros(*shape, alg.dim, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    x[..., alg.grade_slice(1)] = torch.randn(*shape, alg.n, generator=g, dtype=torch.float64)
    return x


def _bilinear_form(alg: Algebra, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Symmetric bilinear form of the metric on vector components, written out."""
    m = torch.tensor(alg.metric, dtype=torch.float64)
    sl = alg.grade_slice(1)
    return (u[..., sl] * v[..., sl] * m).sum(-1)


def _scalar(alg: Algebra, s: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(*s.shape, alg.dim, dtype=torch.float64)
    out[..., 0] = s
    return out


def _product(alg: Algebra, name: str):
    return getattr(alg, name)


# -- the product itself ----------------------------------------------------------------------------
@pytest.mark.parametrize("key", ALG_IDS)
def test_gp_associative(key: str) -> None:
    alg = ALGEBRAS[key]
    x, y, z = _rand(alg, 3, 16, seed=1)
    torch.testing.assert_close(alg.gp(alg.gp(x, y), z), alg.gp(x, alg.gp(y, z)), **TOL)


@pytest.mark.parametrize("key", ALG_IDS)
def test_outer_associative(key: str) -> None:
    alg = ALGEBRAS[key]
    x, y, z = _rand(alg, 3, 16, seed=11)
    torch.testing.assert_close(alg.outer(alg.outer(x, y), z), alg.outer(x, alg.outer(y, z)), **TOL)
    torch.testing.assert_close(
        alg.regressive(alg.regressive(x, y), z), alg.regressive(x, alg.regressive(y, z)), **TOL
    )


@pytest.mark.parametrize("name", PRODUCTS)
@pytest.mark.parametrize("key", ALG_IDS)
def test_products_bilinear(key: str, name: str) -> None:
    alg = ALGEBRAS[key]
    op = _product(alg, name)
    x, y, z = _rand(alg, 3, 8, seed=2)
    a, b = 0.7, -1.9
    torch.testing.assert_close(op(x, a * y + b * z), a * op(x, y) + b * op(x, z), **TOL)
    torch.testing.assert_close(op(a * x + b * z, y), a * op(x, y) + b * op(z, y), **TOL)


@pytest.mark.parametrize("key", ALG_IDS)
def test_scalar_is_the_unit(key: str) -> None:
    alg = ALGEBRAS[key]
    x = _rand(alg, 8, seed=3)
    one = _scalar(alg, torch.ones(8, dtype=torch.float64))
    for name in ("gp", "outer"):
        op = _product(alg, name)
        torch.testing.assert_close(op(one, x), x, rtol=0, atol=0)
        torch.testing.assert_close(op(x, one), x, rtol=0, atol=0)
    torch.testing.assert_close(alg.lcontract(one, x), x, rtol=0, atol=0)


@pytest.mark.parametrize("key", ALG_IDS)
def test_reverse_is_an_anti_automorphism(key: str) -> None:
    alg = ALGEBRAS[key]
    x, y = _rand(alg, 2, 16, seed=4)
    torch.testing.assert_close(alg.reverse(alg.gp(x, y)), alg.gp(alg.reverse(y), alg.reverse(x)), **TOL)
    torch.testing.assert_close(alg.conjugate(alg.gp(x, y)), alg.gp(alg.conjugate(y), alg.conjugate(x)), **TOL)
    torch.testing.assert_close(alg.involute(alg.gp(x, y)), alg.gp(alg.involute(x), alg.involute(y)), **TOL)
    for f in (alg.reverse, alg.involute, alg.conjugate):
        torch.testing.assert_close(f(f(x)), x, rtol=0, atol=0)


@pytest.mark.parametrize("key", ALG_IDS)
def test_vector_squares_to_quadratic_form(key: str) -> None:
    alg = ALGEBRAS[key]
    u, v = _vectors(alg, 2, 16, seed=5)
    q = _bilinear_form(alg, v, v)
    torch.testing.assert_close(alg.gp(v, v), _scalar(alg, q), **TOL)
    # polarisation: u v + v u = 2 B(u, v)
    torch.testing.assert_close(
        alg.gp(u, v) + alg.gp(v, u), _scalar(alg, 2 * _bilinear_form(alg, u, v)), **TOL
    )


@pytest.mark.parametrize("key", ALG_IDS)
def test_outer_product_of_vectors_is_antisymmetric(key: str) -> None:
    alg = ALGEBRAS[key]
    u, v, w = _vectors(alg, 3, 16, seed=6)
    uv = alg.outer(u, v)
    torch.testing.assert_close(uv, -alg.outer(v, u), **TOL)
    torch.testing.assert_close(alg.outer(v, v), torch.zeros_like(v), rtol=0, atol=1e-12)
    torch.testing.assert_close(uv, (alg.gp(u, v) - alg.gp(v, u)) / 2, **TOL)
    torch.testing.assert_close(alg.outer(uv, u), torch.zeros_like(u), rtol=0, atol=1e-12)
    if alg.n >= 2:
        assert float(uv.abs().max()) > 0.1
        torch.testing.assert_close(alg.grade(uv, 2), uv, rtol=0, atol=0)
    uvw = alg.outer(uv, w)
    torch.testing.assert_close(uvw, -alg.outer(alg.outer(v, u), w), **TOL)
    torch.testing.assert_close(uvw, -alg.outer(alg.outer(u, w), v), **TOL)


@pytest.mark.parametrize("key", ALG_IDS)
def test_lcontract_vector_on_vector_is_the_bilinear_form(key: str) -> None:
    alg = ALGEBRAS[key]
    u, v = _vectors(alg, 2, 16, seed=7)
    torch.testing.assert_close(alg.lcontract(u, v), _scalar(alg, _bilinear_form(alg, u, v)), **TOL)


# -- the versor action -----------------------------------------------------------------------------
@pytest.mark.parametrize("key", ALG_IDS)
def test_versors_helper_gives_both_parities(key: str) -> None:
    alg = ALGEBRAS[key]
    w = random_versors(alg, 8, seed=1)
    assert versor_parity(alg, w).tolist() == [0] * 4 + [1] * 4
    odd = torch.tensor([g % 2 == 1 for g in alg.grades])
    assert float(w[:4, odd].abs().max()) < 1e-12 and float(w[4:, ~odd].abs().max()) < 1e-12


@pytest.mark.parametrize("key", ALG_IDS)
def test_sandwich_is_an_algebra_automorphism(key: str) -> None:
    alg = ALGEBRAS[key]
    w = random_versors(alg, 8, seed=2)[:, None]  # (8, 1, dim): even and odd
    x, y = _rand(alg, 2, 8, 3, seed=8)
    sx, sy = alg.sandwich(w, x), alg.sandwich(w, y)
    for name in ("gp", "outer", "lcontract"):
        op = _product(alg, name)
        torch.testing.assert_close(alg.sandwich(w, op(x, y)), op(sx, sy), atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(alg.sandwich(w, 2.0 * x - y), 2.0 * sx - sy, atol=1e-9, rtol=1e-9)
    one = _scalar(alg, torch.ones(1, 1, dtype=torch.float64))
    torch.testing.assert_close(alg.sandwich(w, one), one.expand(8, 1, alg.dim), atol=1e-12, rtol=0)
    # the involutions commute with the action
    for f in (alg.reverse, alg.involute, alg.conjugate):
        torch.testing.assert_close(alg.sandwich(w, f(x)), f(sx), atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("key", ALG_IDS)
def test_sandwich_preserves_grades(key: str) -> None:
    alg = ALGEBRAS[key]
    w = random_versors(alg, 8, seed=3)[:, None]
    x = _rand(alg, 8, 1, seed=9)
    for k in range(alg.n + 1):
        xk = alg.grade(x, k)
        out = alg.sandwich(w, xk)
        torch.testing.assert_close(out - alg.grade(out, k), torch.zeros_like(out), rtol=0, atol=1e-10)


@pytest.mark.parametrize("key", ALG_IDS)
def test_sandwich_is_a_group_action(key: str) -> None:
    alg = ALGEBRAS[key]
    w1, w2 = random_versors(alg, 8, seed=4), random_versors(alg, 8, seed=5).flip(0)  # all parity pairings
    x = _rand(alg, 8, seed=10)
    torch.testing.assert_close(
        alg.sandwich(alg.gp(w1, w2), x), alg.sandwich(w1, alg.sandwich(w2, x)), atol=1e-9, rtol=1e-9
    )
    # rescaling a versor does not change its action
    torch.testing.assert_close(alg.sandwich(-3.0 * w1, x), alg.sandwich(w1, x), atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("key", ALG_IDS)
def test_reflection_in_a_vector_is_the_reflection_formula(key: str) -> None:
    """Twisted action of an invertible vector v on a vector x: x - 2 B(v, x) / B(v, v) v."""
    alg = ALGEBRAS[key]
    g = torch.Generator().manual_seed(6)
    v = alg.random_vector((16,), generator=g, dtype=torch.float64)
    x = _vectors(alg, 16, seed=11)
    want = x - (2 * _bilinear_form(alg, v, x) / _bilinear_form(alg, v, v))[:, None] * v
    torch.testing.assert_close(alg.sandwich(v, x), want, **TOL)


@pytest.mark.parametrize("key", ALG_IDS)
def test_sandwich_on_the_pseudoscalar_is_the_determinant(key: str) -> None:
    """Reflections flip the unit pseudoscalar, rotations keep it: rho_w(I) = (-1)^|w| I."""
    alg = ALGEBRAS[key]
    w = random_versors(alg, 8, seed=7)
    pss = torch.zeros(alg.dim, dtype=torch.float64)
    pss[alg.pseudoscalar_index] = 1
    sign = 1.0 - 2.0 * versor_parity(alg, w).double()
    torch.testing.assert_close(alg.sandwich(w, pss), sign[:, None] * pss, atol=1e-10, rtol=0)


@pytest.mark.parametrize("key", ALG_IDS)
def test_inner_product_invariant_under_sandwich(key: str) -> None:
    alg = ALGEBRAS[key]
    w = random_versors(alg, 8, seed=8)[:, None]
    x, y = _rand(alg, 2, 8, 4, seed=12)
    before = alg.inner_product(x, y).expand(8, 4)
    after = alg.inner_product(alg.sandwich(w, x), alg.sandwich(w, y))
    torch.testing.assert_close(after, before, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(alg.norm(alg.sandwich(w, x)), alg.norm(x).expand(8, 4), atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("key", ALG_IDS)
def test_inner_product_is_scalar_part_of_reverse_product(key: str) -> None:
    """<~x y>_0, with the degenerate blades dropped automatically (their metric factor is 0)."""
    alg = ALGEBRAS[key]
    x, y = _rand(alg, 2, 8, seed=13)
    want = alg.gp(alg.reverse(x), y)[..., 0]
    torch.testing.assert_close(alg.inner_product(x, y), want, **TOL)
    torch.testing.assert_close(alg.inner_product(x, y, keepdim=True), want[:, None], **TOL)


# -- complements -------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ALG_IDS)
def test_dual_and_undual_are_inverse(key: str) -> None:
    alg = ALGEBRAS[key]
    x = _rand(alg, 8, seed=14)
    torch.testing.assert_close(alg.undual(alg.dual(x)), x, rtol=0, atol=0)
    torch.testing.assert_close(alg.dual(alg.undual(x)), x, rtol=0, atol=0)


@pytest.mark.parametrize("key", ALG_IDS)
def test_complements_of_blades(key: str) -> None:
    """e_A ∧ dual(e_A) = I = undual(e_A) ∧ e_A, and grade k goes to grade n - k."""
    alg = ALGEBRAS[key]
    eye = torch.eye(alg.dim, dtype=torch.float64)
    pss = eye[alg.pseudoscalar_index].expand(alg.dim, alg.dim)
    d, u = alg.dual(eye), alg.undual(eye)
    torch.testing.assert_close(alg.outer(eye, d), pss, rtol=0, atol=0)
    torch.testing.assert_close(alg.outer(u, eye), pss, rtol=0, atol=0)
    for i, k in enumerate(alg.grades):
        assert alg.grades[int(d[i].abs().argmax())] == alg.n - k
        assert float(d[i].abs().sum()) == 1.0


# -- regressive product in PGA ---------------------------------------------------------------------
def _pga_plane(normal: torch.Tensor, through: torch.Tensor) -> torch.Tensor:
    """The plane {Y: n·Y + d = 0} through a point, as the vector d e0 + n1 e1 + n2 e2 + n3 e3."""
    out = torch.zeros(*normal.shape[:-1], 16, dtype=torch.float64)
    out[..., PGA3.index("e0")] = -(normal * through).sum(-1)
    for i in range(3):
        out[..., PGA3.index(f"e{i + 1}")] = normal[..., i]
    return out


def _pga_point(x: torch.Tensor, seed: int) -> torch.Tensor:
    """A point as the meet (outer product) of three random planes through it."""
    g = torch.Generator().manual_seed(seed)
    n1, n2, n3 = torch.randn(3, *x.shape, generator=g, dtype=torch.float64)
    return PGA3.outer(PGA3.outer(_pga_plane(n1, x), _pga_plane(n2, x)), _pga_plane(n3, x))


def _orthogonal_normal(d: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n = torch.randn(d.shape, generator=g, dtype=torch.float64)
    return n - ((n * d).sum(-1, keepdim=True) / (d * d).sum(-1, keepdim=True)) * d


def test_regressive_of_two_pga_points_is_the_line_through_them() -> None:
    alg = PGA3
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 32, 3, generator=g, dtype=torch.float64)
    px, py = _pga_point(x, seed=1), _pga_point(y, seed=2)
    # sanity of the construction (outer products only): P_X lies on every plane through X
    n = torch.randn(32, 3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(alg.outer(px, _pga_plane(n, x)), torch.zeros_like(px), rtol=0, atol=1e-10)
    assert float(alg.outer(px, _pga_plane(n, y)).abs().amax(-1).min()) > 1e-6

    line = alg.regressive(px, py)
    torch.testing.assert_close(alg.grade(line, 2), line, rtol=0, atol=0)
    scale = line.abs().amax(-1)
    assert float(scale.min()) > 1e-6
    # every plane containing both points contains the line: line ∧ plane = 0
    for _ in range(3):
        sigma = _pga_plane(_orthogonal_normal(y - x, g), x)
        err = alg.outer(line, sigma).abs().amax(-1) / (scale * sigma.abs().amax(-1))
        assert float(err.max()) < 1e-10
    # ...and a plane through X only does not
    tau = _pga_plane(torch.randn(32, 3, generator=g, dtype=torch.float64), x)
    assert float((alg.outer(line, tau).abs().amax(-1) / scale).min()) > 1e-6
    # the line is the meet of two planes through both points, up to scale
    s1 = _pga_plane(_orthogonal_normal(y - x, g), x)
    s2 = _pga_plane(_orthogonal_normal(y - x, g), x)
    meet = alg.outer(s1, s2)
    c = (line * meet).sum(-1, keepdim=True) / (meet * meet).sum(-1, keepdim=True)
    torch.testing.assert_close(line, c * meet, atol=1e-10, rtol=1e-10)


# -- layouts and broadcasting ------------------------------------------------------------------------
@pytest.mark.parametrize("name", PRODUCTS)
@pytest.mark.parametrize("key", ["PGA3", "CGA3", "Cl(0,3)"])
def test_blade_first_layout_matches_blade_last(key: str, name: str) -> None:
    alg = ALGEBRAS[key]
    fn = getattr(F, name)
    x = _rand(alg, 5, 3, seed=15)
    y = _rand(alg, 1, 3, seed=16)  # broadcast on the first batch axis
    want = fn(alg, x, y)
    got = fn(alg, x.movedim(-1, 0), y.movedim(-1, 0), blade_dim=0)
    assert got.shape == (alg.dim, 5, 3)
    torch.testing.assert_close(got, want.movedim(-1, 0), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", PRODUCTS)
@pytest.mark.parametrize("key", ["STA", "Cl(2,2,1)"])
def test_products_broadcast_batch_dims(key: str, name: str) -> None:
    alg = ALGEBRAS[key]
    op = _product(alg, name)
    x = _rand(alg, 2, 1, 3, seed=17)
    y = _rand(alg, 4, 1, seed=18)
    out = op(x, y)
    assert out.shape == (2, 4, 3, alg.dim)
    xe, ye = x.expand(2, 4, 3, alg.dim), y.expand(2, 4, 3, alg.dim)
    for idx in np.ndindex(2, 4, 3):
        torch.testing.assert_close(out[idx], op(xe[idx], ye[idx]), rtol=0, atol=1e-12)
    # unbatched against batched, and a non-contiguous operand
    torch.testing.assert_close(op(x[1, 0, 2], y[3, 0]), out[1, 3, 2], rtol=0, atol=1e-12)
    xt = _rand(alg, 3, 2, seed=19).transpose(0, 1)
    torch.testing.assert_close(op(xt, y[:2]), op(xt.contiguous(), y[:2]), rtol=0, atol=0)


@pytest.mark.parametrize("key", ["PGA3", "STA"])
def test_other_ops_broadcast_batch_dims(key: str) -> None:
    alg = ALGEBRAS[key]
    w = random_versors(alg, 4, seed=9).reshape(4, 1, alg.dim)
    x = _rand(alg, 3, seed=20)
    out = alg.sandwich(w, x)
    assert out.shape == (4, 3, alg.dim)
    for i in range(4):
        for j in range(3):
            torch.testing.assert_close(out[i, j], alg.sandwich(w[i, 0], x[j]), rtol=0, atol=1e-12)
    ip = alg.inner_product(w, x)
    assert ip.shape == (4, 3)
    torch.testing.assert_close(ip[2, 1], alg.inner_product(w[2, 0], x[1]), rtol=0, atol=1e-12)
    assert alg.norm(x[None], keepdim=True).shape == (1, 3, 1)
