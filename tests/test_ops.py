"""Autograd, inverses, exponentials, norms, random versors and input validation."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from gatorch import CGA3, PGA3, STA, VGA3, Algebra
from gatorch import functional as F
from gatorch.testing import random_versors

F64 = torch.float64


def _rand(alg: Algebra, *shape: int, seed: int = 0, requires_grad: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, alg.dim, generator=g, dtype=F64).requires_grad_(requires_grad)


def _blade(alg: Algebra, name: str, coeff: float = 1.0) -> torch.Tensor:
    out = torch.zeros(alg.dim, dtype=F64)
    out[alg.index(name)] = coeff
    return out


def _one(alg: Algebra, *shape: int) -> torch.Tensor:
    out = torch.zeros(*shape, alg.dim, dtype=F64)
    out[..., 0] = 1
    return out


def _bivector(alg: Algebra, coeffs: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(*coeffs.shape[:-1], alg.dim, dtype=coeffs.dtype)
    out[..., alg.grade_slice(2)] = coeffs
    return out


# -- gradients ------------------------------------------------------------------------------------
# gradcheck's fast mode compares a random projection of the Jacobian with finite differences
# (any wrong entry is caught with probability 1) at a fraction of the cost of the full
# Jacobian; the full check runs on the geometric product.
def gc(fn, inputs, full: bool = False) -> bool:
    return gradcheck(fn, inputs, fast_mode=not full)


@pytest.mark.parametrize("name", ["gp", "outer", "lcontract", "regressive"])
@pytest.mark.parametrize("alg", [PGA3, STA], ids=repr)
def test_gradcheck_products(alg: Algebra, name: str) -> None:
    fn = getattr(F, name)
    x = _rand(alg, 2, seed=1, requires_grad=True)
    y = _rand(alg, 2, seed=2, requires_grad=True)
    assert gc(lambda a, b: fn(alg, a, b), (x, y), full=name == "gp")
    # broadcast: one operand with a batch dim of 1, the other unbatched
    xb = _rand(alg, 3, 1, seed=3, requires_grad=True)
    yb = _rand(alg, 1, 2, seed=4, requires_grad=True)
    assert gc(lambda a, b: fn(alg, a, b), (xb, yb))
    y1 = _rand(alg, 1, seed=5, requires_grad=True)
    assert gc(lambda a, b: fn(alg, a, b), (x, y1))
    yv = torch.randn(alg.dim, dtype=F64, requires_grad=True)
    assert gc(lambda a, b: fn(alg, a, b), (x, yv))
    # blade-first layout, with a broadcast batch dim of 1
    xt = x.detach().T.clone().requires_grad_()
    assert gc(lambda a, b: fn(alg, a, b, blade_dim=0), (xt, yv.detach()[:, None].clone().requires_grad_()))
    assert gc(lambda a, b: fn(alg, a, b, blade_dim=0), (xt, yv))


def test_blade_first_broadcast_of_unbatched_operand() -> None:
    """With blade_dim=0, batch axes align on the right, as for blade_dim=-1 (a regression test)."""
    x = torch.randn(16, 2, dtype=F64)
    y = torch.randn(16, dtype=F64)
    out = F.gp(PGA3, x, y, blade_dim=0)
    assert out.shape == (16, 2)
    torch.testing.assert_close(out, F.gp(PGA3, x.T, y).T, rtol=0, atol=1e-12)
    x3 = torch.randn(16, 4, 1, 3, dtype=F64)
    y2 = torch.randn(16, 2, 1, dtype=F64)
    out = F.outer(PGA3, x3, y2, blade_dim=0)
    assert out.shape == (16, 4, 2, 3)
    torch.testing.assert_close(out, F.outer(PGA3, x3.movedim(0, -1), y2.movedim(0, -1)).movedim(-1, 0))


def test_gradgradcheck_gp() -> None:
    alg = PGA3
    x = _rand(alg, 2, seed=6, requires_grad=True)
    y = _rand(alg, 1, seed=7, requires_grad=True)
    assert gradgradcheck(lambda a, b: alg.gp(a, b), (x, y), fast_mode=True)
    alg = VGA3
    x = _rand(alg, 2, seed=8, requires_grad=True)
    assert gradgradcheck(lambda a: alg.gp(a, a), (x,))


@pytest.mark.parametrize("alg", [PGA3, STA], ids=repr)
def test_gradcheck_inner_product_and_norm(alg: Algebra) -> None:
    x = _rand(alg, 3, seed=9, requires_grad=True)
    y = _rand(alg, 3, seed=10, requires_grad=True)
    assert gc(lambda a, b: alg.inner_product(a, b), (x, y))
    assert gc(lambda a, b: alg.inner_product(a, b, keepdim=True), (x, y[:1]))
    q = alg.inner_product(x, x).detach().abs()
    assert float(q.min()) > 0.1  # away from zero
    assert gc(lambda a: alg.norm(a), (x,))


@pytest.mark.parametrize("alg", [PGA3, STA, CGA3], ids=repr)
def test_gradcheck_sandwich_and_inverse(alg: Algebra) -> None:
    w = random_versors(alg, 4, seed=1)  # even and odd
    x = _rand(alg, 4, seed=11, requires_grad=True)
    assert gc(lambda a: alg.sandwich(w, a), (x,))
    # w as an input too: perturbed versors are no longer versors, so without the check
    wg = w.clone().requires_grad_()
    assert gc(lambda v, a: F.sandwich(alg, v, a, check=False), (wg, x))
    assert gc(lambda v: F.inverse(alg, v, check=False), (wg,))


@pytest.mark.parametrize("alg", [VGA3, STA, PGA3, Algebra(4, 0, 0), CGA3], ids=repr)
def test_gradcheck_exp(alg: Algebra) -> None:
    """Generic bivectors: simple when n < 4, non-simple (series) otherwise."""
    nb = math.comb(alg.n, 2)
    g = torch.Generator().manual_seed(12)
    c = (0.7 * torch.randn(2, nb, generator=g, dtype=F64)).requires_grad_()
    assert gc(lambda t: alg.exp(_bivector(alg, t)), (c,))


def test_gradcheck_exp_near_zero_and_null() -> None:
    """Small bivectors (series branch) and null ones (PGA translators, beta = 0)."""
    for alg in (VGA3, STA):
        c = (1e-3 * torch.randn(3, math.comb(alg.n, 2), dtype=F64)).requires_grad_()
        assert gc(lambda t, alg=alg: alg.exp(_bivector(alg, t)), (c,))
    # e01, e02, e03 components only: translators
    c = torch.randn(2, 3, dtype=F64, requires_grad=True)

    def translator(t: torch.Tensor) -> torch.Tensor:
        b = torch.zeros(2, 16, dtype=F64)
        b = b.index_put((torch.arange(2)[:, None], torch.tensor([5, 6, 7])[None]), t)
        assert [PGA3.blade_names[i] for i in (5, 6, 7)] == ["e01", "e02", "e03"]
        return PGA3.exp(b)

    assert gc(translator, (c,))


# -- norm ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "alg,parts",
    [(PGA3, {"e0": 1.0}), (PGA3, {"e0": 2.0, "e01": -1.0, "e0123": 3.0}), (STA, {"e0": 1.0, "e1": 1.0})],
    ids=["PGA e0", "PGA degenerate blades", "STA lightlike"],
)
def test_norm_of_null_multivector_is_zero_with_finite_gradient(alg: Algebra, parts: dict[str, float]) -> None:
    x = sum(_blade(alg, k, v) for k, v in parts.items()).requires_grad_()
    n = alg.norm(x)
    assert float(n.detach()) == 0.0
    (grad,) = torch.autograd.grad(n, x)
    assert torch.isfinite(grad).all()
    n2 = alg.norm(torch.stack([x, x]), keepdim=True)
    assert n2.shape == (2, 1)
    (grad2,) = torch.autograd.grad(n2.sum(), x)
    assert torch.isfinite(grad2).all()


def test_norm_values() -> None:
    v = _blade(STA, "e0", 2.0) + _blade(STA, "e1", 1.0)  # <v v> = 4 - 1
    torch.testing.assert_close(STA.norm(v), torch.tensor(math.sqrt(3.0), dtype=F64))
    v = _blade(STA, "e0", 1.0) + _blade(STA, "e1", 2.0)  # 1 - 4: |.| taken
    torch.testing.assert_close(STA.norm(v), torch.tensor(math.sqrt(3.0), dtype=F64))
    x = _blade(PGA3, "e1", 3.0) + _blade(PGA3, "e0", 5.0) + _blade(PGA3, "e23", 4.0)
    torch.testing.assert_close(PGA3.norm(x), torch.tensor(5.0, dtype=F64))


# -- inverse ------------------------------------------------------------------------------------------
def _pga_translator(direction: torch.Tensor, distance: float) -> torch.Tensor:
    """Product of two parallel planes (reflections): a translation, written out."""
    n = direction / direction.norm()
    p1 = torch.zeros(16, dtype=F64)
    p1[PGA3.grade_slice(1)] = torch.cat([torch.zeros(1, dtype=F64), n])
    p2 = p1.clone()
    p2[PGA3.index("e0")] = distance / 2
    return PGA3.gp(p2, p1)


@pytest.mark.parametrize("alg", [STA, PGA3, CGA3, VGA3, Algebra(2, 2, 1)], ids=repr)
def test_inverse_of_random_versors(alg: Algebra) -> None:
    w = random_versors(alg, 8, seed=2)
    w = torch.cat([w, 2.5 * w[:2]])  # not normalised
    if alg is PGA3:
        t = _pga_translator(torch.tensor([1.0, -2.0, 0.5], dtype=F64), 3.0)
        assert float(t[PGA3.grade_slice(2)].abs().max()) > 0.1  # has e0i parts
        w = torch.cat([w, t[None], PGA3.gp(t, w[5])[None]])
    one = _one(alg, w.shape[0])
    wi = alg.inverse(w)
    torch.testing.assert_close(alg.gp(w, wi), one, atol=1e-10, rtol=0)
    torch.testing.assert_close(alg.gp(wi, w), one, atol=1e-10, rtol=0)


def test_inverse_of_a_vector_is_explicit() -> None:
    v = _blade(STA, "e0", 2.0) + _blade(STA, "e2", 1.0)  # v v = 4 - 1 = 3
    torch.testing.assert_close(STA.inverse(v), v / 3.0)


@pytest.mark.parametrize("alg", [VGA3, PGA3, STA, CGA3], ids=repr)
def test_inverse_rejects_non_versors(alg: Algebra) -> None:
    x = _rand(alg, 4, seed=13)
    with pytest.raises(ValueError, match="versor"):
        alg.inverse(x)
    with pytest.raises(ValueError, match="versor"):
        alg.sandwich(x, x)
    # one bad item in an otherwise good batch
    w = random_versors(alg, 4, seed=3)
    w[2, alg.index("1")] += 0.3
    w[2, alg.grade_slice(2).start] += 0.7
    with pytest.raises(ValueError):
        alg.inverse(w)


def test_inverse_rejects_null_versors() -> None:
    with pytest.raises(ValueError, match="null"):
        PGA3.inverse(_blade(PGA3, "e0"))
    with pytest.raises(ValueError):
        PGA3.inverse(_blade(PGA3, "e0", 3.0) + _blade(PGA3, "e012", 1.0))
    with pytest.raises(ValueError):
        STA.inverse(_blade(STA, "e0") + _blade(STA, "e1"))  # lightlike
    assert torch.isfinite(F.inverse(PGA3, _blade(PGA3, "e1"), check=False)).all()


# -- exp ------------------------------------------------------------------------------------------------
def test_exp_rotation_vga3() -> None:
    theta = torch.tensor([0.3, 1.2, -2.5, 3.0, 1e-5], dtype=F64)
    b = _blade(VGA3, "e12") * (-theta[:, None] / 2)
    r = VGA3.exp(b)
    want_r = (
        _one(VGA3, 5) * torch.cos(theta / 2)[:, None] - _blade(VGA3, "e12") * torch.sin(theta / 2)[:, None]
    )
    torch.testing.assert_close(r, want_r, atol=1e-14, rtol=0)
    e1, e2, e3 = (_blade(VGA3, f"e{i}") for i in (1, 2, 3))
    rotated = VGA3.sandwich(r, e1)
    want = torch.cos(theta)[:, None] * e1 + torch.sin(theta)[:, None] * e2
    torch.testing.assert_close(rotated, want, atol=1e-13, rtol=0)
    torch.testing.assert_close(VGA3.sandwich(r, e3), e3.expand(5, 8), atol=1e-13, rtol=0)
    # a plane not aligned with the axes: the rotation axis is fixed
    axis = torch.tensor([1.0, 2.0, 2.0], dtype=F64) / 3
    bv = VGA3.dual(torch.cat([torch.zeros(1, dtype=F64), axis, torch.zeros(4, dtype=F64)]))
    rot = VGA3.exp(0.8 * bv)
    a = torch.cat([torch.zeros(1, dtype=F64), axis, torch.zeros(4, dtype=F64)])
    torch.testing.assert_close(VGA3.sandwich(rot, a), a, atol=1e-13, rtol=0)


def test_exp_boost_sta() -> None:
    phi = torch.tensor([0.2, -1.5, 3.0, 1e-4], dtype=F64)
    e01 = _blade(STA, "e01")
    assert float(STA.gp(e01, e01)[0]) == 1.0  # e0 timelike: (e0 e1)^2 = +1
    r = STA.exp(e01 * (phi[:, None] / 2))
    want_r = _one(STA, 4) * torch.cosh(phi / 2)[:, None] + e01 * torch.sinh(phi / 2)[:, None]
    torch.testing.assert_close(r, want_r, atol=1e-14, rtol=1e-14)
    e0, e1, e2 = (_blade(STA, f"e{i}") for i in (0, 1, 2))
    ch, sh = torch.cosh(phi)[:, None], torch.sinh(phi)[:, None]
    # R e0 ~R = e0 ~R^2 (e0 anticommutes with e01) = cosh(phi) e0 - sinh(phi) e1
    torch.testing.assert_close(STA.sandwich(r, e0), ch * e0 - sh * e1, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(STA.sandwich(r, e1), ch * e1 - sh * e0, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(STA.sandwich(r, e2), e2.expand(4, 16), atol=1e-12, rtol=0)


def _plane(normal: torch.Tensor, through: torch.Tensor) -> torch.Tensor:
    """PGA plane {Y: n·Y + d = 0} through a point: d e0 + n1 e1 + n2 e2 + n3 e3."""
    out = torch.zeros(*normal.shape[:-1], 16, dtype=F64)
    out[..., 1] = -(normal * through).sum(-1)
    out[..., 2:5] = normal
    assert PGA3.blade_names[1:5] == ("e0", "e1", "e2", "e3")
    return out


def _point(x: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """Meet of three planes through x (normals: (3, ..., 3))."""
    p = [_plane(normals[i], x) for i in range(3)]
    return PGA3.outer(PGA3.outer(p[0], p[1]), p[2])


def test_exp_translator_pga() -> None:
    """exp(-t/2 e0∧v) = 1 - t/2 e0 v; it maps the plane n·Y + d = 0 to n·(Y - t v) + d = 0.

    With T = 1 + a e0 v (a = -t/2): T e0 ~T = e0 and T n ~T = n + 2a (v·n) e0 for a
    Euclidean n, because e0 anticommutes with n and v. So points (meets of planes,
    the normals unchanged) move by +t v, exactly.
    """
    g = torch.Generator().manual_seed(14)
    v = torch.randn(6, 3, generator=g, dtype=F64)
    t = torch.randn(6, 1, generator=g, dtype=F64)
    e0v = torch.zeros(6, 16, dtype=F64)
    for i in range(3):
        e0v[:, PGA3.index(f"e0{i + 1}")] = v[:, i]
    T = PGA3.exp(-t / 2 * e0v)
    torch.testing.assert_close(T, _one(PGA3, 6) - t / 2 * e0v, atol=1e-14, rtol=0)
    x = torch.randn(6, 3, generator=g, dtype=F64)
    normals = torch.randn(3, 6, 3, generator=g, dtype=F64)
    moved = PGA3.sandwich(T, _point(x, normals))
    torch.testing.assert_close(moved, _point(x + t * v, normals), atol=1e-12, rtol=1e-12)
    plane = _plane(normals[0], x)
    torch.testing.assert_close(PGA3.sandwich(T, plane), _plane(normals[0], x + t * v), atol=1e-12, rtol=1e-12)


def _taylor_exp(alg: Algebra, b: np.ndarray, terms: int = 80) -> np.ndarray:
    """sum_k B^k / k! in extended precision with the dense Cayley tensor (no scaling, many terms)."""
    cay = alg.cayley("gp").astype(np.longdouble)
    b = b.astype(np.longdouble)
    out = np.zeros_like(b)
    out[..., 0] = 1
    term = out.copy()
    for k in range(1, terms):
        term = np.einsum("...i,...j,ijk->...k", term, b, cay) / k
        out = out + term
    assert float(np.abs(term).max()) < 1e-30
    return out.astype(np.float64)


@pytest.mark.parametrize("alg", [Algebra(4, 0, 0), PGA3, CGA3, Algebra(2, 2, 0)], ids=repr)
def test_exp_non_simple_bivectors(alg: Algebra) -> None:
    g = torch.Generator().manual_seed(15)
    c = 1.5 * torch.randn(6, math.comb(alg.n, 2), generator=g, dtype=F64)
    b = _bivector(alg, c)
    assert float(alg.outer(b, b).abs().amax(-1).min()) > 1e-3  # genuinely non-simple
    r = alg.exp(b)
    torch.testing.assert_close(alg.gp(r, alg.exp(-b)), _one(alg, 6), atol=1e-10, rtol=0)
    want = _taylor_exp(alg, b.numpy())
    rel = np.abs(r.numpy() - want).max(-1) / np.abs(want).max(-1)
    assert rel.max() < 1e-12, rel
    # an even versor: w ~w = 1
    torch.testing.assert_close(alg.gp(r, alg.reverse(r)), _one(alg, 6), atol=1e-10, rtol=0)


def test_exp_screw_motion_pga() -> None:
    """Rotation about the e3 axis and translation along it: commuting parts, exp factorises."""
    a, d = 0.9, 1.7
    b_rot, b_tr = -a / 2 * _blade(PGA3, "e12"), -d / 2 * _blade(PGA3, "e03")
    m = PGA3.exp(b_rot + b_tr)
    torch.testing.assert_close(m, PGA3.gp(PGA3.exp(b_rot), PGA3.exp(b_tr)), atol=1e-13, rtol=0)
    np.testing.assert_allclose(m.numpy(), _taylor_exp(PGA3, (b_rot + b_tr).numpy()), atol=1e-13)


@pytest.mark.parametrize("alg", [VGA3, STA, PGA3, CGA3], ids=repr)
def test_exp_simple_matches_taylor(alg: Algebra) -> None:
    g = torch.Generator().manual_seed(16)
    u, v = torch.zeros(2, 5, alg.dim, dtype=F64)
    u[..., alg.grade_slice(1)] = torch.randn(5, alg.n, generator=g, dtype=F64)
    v[..., alg.grade_slice(1)] = torch.randn(5, alg.n, generator=g, dtype=F64)
    b = alg.outer(u, v)  # a 2-blade: simple
    b = b / b.abs().amax(-1, keepdim=True) * 1.3
    np.testing.assert_allclose(alg.exp(b).numpy(), _taylor_exp(alg, b.numpy()), atol=1e-12, rtol=1e-12)


def test_exp_rejects_non_bivectors() -> None:
    with pytest.raises(ValueError, match="bivector"):
        VGA3.exp(_blade(VGA3, "e1"))


# -- random versors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("alg", [VGA3, PGA3, STA, CGA3, Algebra(2, 2, 1)], ids=repr)
def test_random_versor_is_normalised(alg: Algebra) -> None:
    g = torch.Generator().manual_seed(17)
    w = alg.random_versor((64,), generator=g, dtype=F64)
    ww = alg.gp(w, alg.reverse(w))
    torch.testing.assert_close(ww[:, 1:], torch.zeros(64, alg.dim - 1, dtype=F64), atol=1e-10, rtol=0)
    torch.testing.assert_close(ww[:, 0].abs(), torch.ones(64, dtype=F64), atol=1e-10, rtol=0)
    odd = torch.tensor([k % 2 == 1 for k in alg.grades])
    odd_part = w[:, odd].abs().amax(-1)
    even_part = w[:, ~odd].abs().amax(-1)
    is_odd = odd_part > even_part
    # each versor has a single parity; both parities occur over the batch
    assert float(torch.where(is_odd, even_part, odd_part).max()) < 1e-12
    assert 0 < int(is_odd.sum()) < 64
    spin = alg.random_versor((32,), spin=True, generator=g, dtype=F64)
    assert float(spin[:, odd].abs().max()) < 1e-12
    assert float(spin[:, ~odd].abs().amax(-1).min()) > 1e-3
    sw = alg.gp(spin, alg.reverse(spin))
    torch.testing.assert_close(sw[:, 0].abs(), torch.ones(32, dtype=F64), atol=1e-10, rtol=0)
    vec = alg.random_vector((16, 2), generator=g, dtype=F64)
    assert vec.shape == (16, 2, alg.dim)
    torch.testing.assert_close(
        alg.gp(vec, vec)[..., 0].abs(), torch.ones(16, 2, dtype=F64), atol=1e-12, rtol=0
    )


def test_random_versor_dtype_and_generator() -> None:
    w1 = PGA3.random_versor((3,), generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    w2 = PGA3.random_versor((3,), generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    assert w1.dtype == torch.float32 and w1.shape == (3, 16)
    torch.testing.assert_close(w1, w2, rtol=0, atol=0)


# -- bad input ---------------------------------------------------------------------------------------
def test_wrong_last_dimension() -> None:
    x = torch.randn(5, 8, dtype=F64)
    y = torch.randn(5, 16, dtype=F64)
    calls = [
        lambda: PGA3.gp(x, y),
        lambda: PGA3.gp(y, x),
        lambda: PGA3.outer(x, y),
        lambda: PGA3.lcontract(x, y),
        lambda: PGA3.regressive(y, x),
        lambda: PGA3.reverse(x),
        lambda: PGA3.involute(x),
        lambda: PGA3.conjugate(x),
        lambda: PGA3.grade(x, 1),
        lambda: PGA3.dual(x),
        lambda: PGA3.undual(x),
        lambda: PGA3.inner_product(x, y),
        lambda: PGA3.norm(x),
        lambda: PGA3.sandwich(y, x),
        lambda: PGA3.inverse(x),
        lambda: PGA3.exp(x),
        lambda: PGA3.gp_dense(x, y),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"16") as info:
            call()
        assert "(5, 8)" in str(info.value), str(info.value)
    with pytest.raises(ValueError, match=r"16"):
        PGA3.gp(torch.randn(16, 5, dtype=F64), torch.randn(16, 5, dtype=F64))  # blades not last
    with pytest.raises(ValueError):
        PGA3.gp(torch.tensor(1.0, dtype=F64), y)


def test_non_broadcastable_batch_shapes() -> None:
    x = torch.randn(3, 16, dtype=F64)
    y = torch.randn(4, 16, dtype=F64)
    for name in ("gp", "outer", "lcontract", "regressive"):
        with pytest.raises(ValueError, match=r"broadcast") as info:
            getattr(PGA3, name)(x, y)
        assert "(3, 16)" in str(info.value) and "(4, 16)" in str(info.value)
        with pytest.raises(ValueError):
            getattr(F, name)(PGA3, x.T, y.T, blade_dim=0)
    with pytest.raises(ValueError, match=r"broadcast"):
        PGA3.inner_product(x, y)
    w = random_versors(PGA3, 3)
    with pytest.raises(ValueError):
        PGA3.sandwich(w, y)


def test_integer_and_non_tensor_inputs() -> None:
    xi = torch.ones(2, 16, dtype=torch.int64)
    xf = torch.randn(2, 16, dtype=F64)
    for call in (
        lambda: PGA3.gp(xi, xf),
        lambda: PGA3.gp(xf, xi),
        lambda: PGA3.outer(xi, xi),
        lambda: PGA3.regressive(xi, xf),
        lambda: PGA3.reverse(xi),
        lambda: PGA3.dual(xi),
        lambda: PGA3.grade(xi, 0),
        lambda: PGA3.inner_product(xi, xf),
        lambda: PGA3.norm(xi),
        lambda: PGA3.sandwich(xi, xf),
        lambda: PGA3.inverse(xi),
    ):
        with pytest.raises(TypeError):
            call()
    with pytest.raises(TypeError):
        PGA3.gp(np.ones(16), xf)
    with pytest.raises(TypeError):
        PGA3.reverse([0.0] * 16)


def test_bad_grades() -> None:
    x = torch.randn(16, dtype=F64)
    with pytest.raises(ValueError):
        PGA3.grade(x, 5)
    with pytest.raises(ValueError):
        PGA3.grade(x, [1, -1])
    with pytest.raises(ValueError):
        PGA3.grade_slice(5)


def test_unknown_group_name() -> None:
    with pytest.raises(ValueError, match="pin"):
        VGA3.equivariant_basis("lorentz")
    with pytest.raises(ValueError):
        VGA3.equivariant_basis("Pin")
    with pytest.raises(ValueError):
        Algebra(0, 0, 2).equivariant_basis("pin")  # no invertible vectors, no group


def test_unknown_product_name() -> None:
    with pytest.raises(ValueError, match="gp"):
        VGA3.cayley("inner")


# -- the Algebra object ---------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [(-1,), (3, -1), (0, 0, -2), (1.5,), (True,), ("3",)])
def test_algebra_rejects_bad_signature(args: tuple) -> None:
    with pytest.raises(ValueError):
        Algebra(*args)


def test_from_signature_rejects_bad_metric() -> None:
    with pytest.raises(ValueError):
        Algebra.from_signature([1, 2])
    with pytest.raises(ValueError):
        Algebra.from_signature([1, 0.5])
    with pytest.raises(ValueError):
        Algebra.from_signature([1, -1], start_index=-1)


def test_index() -> None:
    assert PGA3.index("e0123") == 15 and PGA3.index("1") == 0
    assert PGA3.index("e12") == 8
    with pytest.raises(ValueError, match="bad"):
        PGA3.index("bad")
    with pytest.raises(ValueError):
        PGA3.index("e21")  # only canonical names
    with pytest.raises(ValueError):
        VGA3.index("e0")


def test_algebra_is_immutable() -> None:
    with pytest.raises(AttributeError):
        PGA3.dim = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        PGA3._metric = (1, 1)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        PGA3.new_attribute = 1  # type: ignore[attr-defined]
    assert PGA3.dim == 16 and PGA3.metric == (0, 1, 1, 1)


def test_algebra_is_cached_and_hashable() -> None:
    assert Algebra(3, 0, 1) is Algebra(3, 0, 1)
    assert Algebra(3, 0, 1) is PGA3
    assert Algebra.from_signature([0, 1, 1, 1]) is PGA3
    assert Algebra(1, 3, 0) is not STA  # different basis order
    assert Algebra(1, 3, 0) != STA and Algebra(1, 3, 0).signature == STA.signature
    assert len({PGA3, Algebra(3, 0, 1), VGA3}) == 2


@pytest.mark.parametrize(
    "alg", [PGA3, STA, VGA3, Algebra.from_signature([-1, 0, 1], start_index=4)], ids=repr
)
def test_pickle_round_trip_is_the_same_object(alg: Algebra) -> None:
    assert pickle.loads(pickle.dumps(alg)) is alg
    assert copy.deepcopy(alg) is alg and copy.copy(alg) is alg
    assert eval(repr(alg), {"Algebra": Algebra}) is alg
