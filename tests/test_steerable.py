"""CGENN pieces: steerable geometric product, MVSiLU, grade dropout; kernels, equivariance, init, errors."""

import itertools

import numpy as np
import pytest
import torch

from gatorch import PGA3, VGA3
from gatorch.functional.dropout import grade_dropout
from gatorch.functional.steerable import mv_silu, steerable_gp, steerable_gp_dense, steerable_paths
from gatorch.layers.bilinear import SteerableGeometricProduct
from gatorch.layers.dropout import GradeDropout
from gatorch.layers.nonlinear import MVSiLU
from gatorch.testing import ALGEBRAS, random_versors

F64 = torch.float64
IDS = list(ALGEBRAS)


def _randn(*shape, seed=0, dtype=F64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _weight(alg, channels, seed=0):
    return _randn(channels, len(steerable_paths(alg)), seed=seed)


# -- paths and the kernel against CGENN's dense formulation ---------------------------------------------
@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_paths_match_cayley(alg):
    cayley = alg.cayley()
    g = np.asarray(alg.grades)
    expected = [
        (a, b, c)
        for a, b, c in itertools.product(range(alg.n + 1), repeat=3)
        if np.any(cayley[np.ix_(g == a, g == b, g == c)] != 0)
    ]
    assert list(steerable_paths(alg)) == expected
    assert steerable_paths(alg) is steerable_paths(alg)  # cached


def test_path_counts():
    assert len(steerable_paths(VGA3)) == 20
    assert len(steerable_paths(PGA3)) == 34
    assert len(steerable_paths(ALGEBRAS["CGA3"])) == 56


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_matches_dense(alg):
    x = _randn(3, 1, 4, alg.dim, seed=1)
    y = _randn(5, 4, alg.dim, seed=2)  # batch dimensions broadcast
    w = _weight(alg, 4, seed=3)
    out = steerable_gp(alg, x, y, w)
    assert out.shape == (3, 5, 4, alg.dim)
    torch.testing.assert_close(out, steerable_gp_dense(alg, x, y, w), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_gradients_match_dense(alg):
    args = [_randn(4, 3, alg.dim, seed=1), _randn(4, 3, alg.dim, seed=2), _weight(alg, 3, seed=3)]
    g = _randn(4, 3, alg.dim, seed=4)
    grads = []
    for fn in (steerable_gp, steerable_gp_dense):
        leaves = [a.clone().requires_grad_(True) for a in args]
        grads.append(torch.autograd.grad(fn(alg, *leaves), leaves, g))
    for fast, ref in zip(*grads, strict=True):
        torch.testing.assert_close(fast, ref, atol=1e-12, rtol=1e-12)


def test_unweighted_is_geometric_product():
    for alg in (VGA3, PGA3):
        x, y = _randn(6, 2, alg.dim, seed=1), _randn(6, 2, alg.dim, seed=2)
        ones = torch.ones(2, len(steerable_paths(alg)), dtype=F64)
        torch.testing.assert_close(steerable_gp(alg, x, y, ones), alg.gp(x, y), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("name", ["PGA3", "STA"])
def test_gradcheck(name):
    alg = ALGEBRAS[name]
    args = (_randn(2, 3, alg.dim, seed=1), _randn(1, 3, alg.dim, seed=2), _weight(alg, 3, seed=3))
    args = tuple(a.requires_grad_(True) for a in args)
    assert torch.autograd.gradcheck(lambda x, y, w: steerable_gp(alg, x, y, w), args)


def test_gradgradcheck():
    alg = ALGEBRAS["Cl(2,0,1)"]
    args = (_randn(2, 2, alg.dim, seed=1), _randn(2, 2, alg.dim, seed=2), _weight(alg, 2, seed=3))
    args = tuple(a.requires_grad_(True) for a in args)
    assert torch.autograd.gradgradcheck(lambda x, y, w: steerable_gp(alg, x, y, w), args)


def test_dtype_promotion_and_empty_batch():
    x, y = _randn(3, 2, 8, dtype=torch.float32), _randn(3, 2, 8, dtype=torch.float32)
    assert steerable_gp(VGA3, x, y, _weight(VGA3, 2)).dtype == F64
    assert steerable_gp(VGA3, x, y, _weight(VGA3, 2).float()).dtype == torch.float32
    empty = torch.zeros(0, 2, 8)
    assert steerable_gp(VGA3, empty, empty, _weight(VGA3, 2).float()).shape == (0, 2, 8)


def test_compile_matches_eager():
    torch._dynamo.reset()
    alg = VGA3
    leaves = [_randn(5, 3, alg.dim, seed=1), _randn(5, 3, alg.dim, seed=2), _weight(alg, 3, seed=3)]
    leaves = [t.requires_grad_(True) for t in leaves]

    def fn(x, y, w):
        return steerable_gp(alg, x, y, w).square().sum()

    eager = fn(*leaves)
    g_eager = torch.autograd.grad(eager, leaves)
    compiled = torch.compile(fn, fullgraph=True, dynamic=False)(*leaves)
    g_comp = torch.autograd.grad(compiled, leaves)
    torch.testing.assert_close(compiled, eager, atol=1e-10, rtol=1e-10)
    for a, b in zip(g_comp, g_eager, strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


# -- equivariance (half the versors odd) ------------------------------------------------------------------
def _act(alg, w, x):
    return alg.sandwich(w.reshape(w.shape[0], *([1] * (x.ndim - 2)), alg.dim), x)


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_steerable_gp_equivariant(alg):
    w = random_versors(alg, 6, seed=1)
    x, y = _randn(6, 3, alg.dim, seed=2), _randn(6, 3, alg.dim, seed=3)
    weight = _weight(alg, 3, seed=4)
    lhs = steerable_gp(alg, _act(alg, w, x), _act(alg, w, y), weight)
    torch.testing.assert_close(lhs, _act(alg, w, steerable_gp(alg, x, y, weight)), atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_mv_silu_equivariant(alg):
    w = random_versors(alg, 6, seed=1)
    x = _randn(6, 3, alg.dim, seed=2)
    a, b = _randn(3, alg.n + 1, seed=3), _randn(3, alg.n + 1, seed=4)
    lhs = mv_silu(alg, _act(alg, w, x), a, b)
    torch.testing.assert_close(lhs, _act(alg, w, mv_silu(alg, x, a, b)), atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_grade_dropout_equivariant(alg):
    w = random_versors(alg, 6, seed=1)
    x = _randn(6, 3, alg.dim, seed=2)
    torch.manual_seed(5)
    lhs = grade_dropout(alg, _act(alg, w, x), 0.5)
    torch.manual_seed(5)
    rhs = _act(alg, w, grade_dropout(alg, x, 0.5))
    torch.testing.assert_close(lhs, rhs, atol=1e-9, rtol=1e-9)


def _modules(alg):
    return {
        "sgp": SteerableGeometricProduct(alg, 3, in_s_channels=2),
        "sgp_no_first_order": SteerableGeometricProduct(alg, 3, include_first_order=False),
        "mvsilu": MVSiLU(alg, 3),
        "dropout": GradeDropout(alg, 0.5),
    }


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_modules_equivariant(alg):
    torch.manual_seed(0)
    w = random_versors(alg, 6, seed=1)
    x, s = _randn(6, 3, alg.dim, seed=2), _randn(6, 2, seed=3)
    for name, module in _modules(alg).items():
        module = module.double()
        with torch.no_grad():  # non-trivial gate parameters
            for p in module.parameters():
                p.add_(0.3 * torch.randn_like(p))
        scalars = s if name != "sgp_no_first_order" else None
        torch.manual_seed(7)
        lhs, lhs_s = module(_act(alg, w, x), scalars)
        torch.manual_seed(7)
        out, out_s = module(x, scalars)
        torch.testing.assert_close(lhs, _act(alg, w, out), atol=1e-9, rtol=1e-9, msg=name)
        torch.testing.assert_close(lhs_s, out_s, atol=1e-12, rtol=1e-12, msg=name)


# -- behaviour -------------------------------------------------------------------------------------------
def test_mv_silu_formula():
    alg = PGA3
    x = _randn(4, 2, alg.dim, seed=1)
    a, b = _randn(2, alg.n + 1, seed=2), _randn(2, alg.n + 1, seed=3)
    inner = alg.constant("inner", "cpu", F64)
    out = mv_silu(alg, x, a, b)
    for k in range(alg.n + 1):
        sl = alg.grade_slice(k)
        q = x[..., sl][..., 0] if k == 0 else (x[..., sl] ** 2 * inner[sl]).sum(-1).abs()
        gate = torch.sigmoid(a[:, k] * q + b[:, k])
        torch.testing.assert_close(out[..., sl], x[..., sl] * gate[..., None])


def test_layers_pass_scalars():
    alg = VGA3
    x, s = _randn(4, 3, alg.dim, seed=1, dtype=torch.float32), _randn(4, 2, seed=2, dtype=torch.float32)
    out, s_out = SteerableGeometricProduct(alg, 3, in_s_channels=2)(x, s)
    assert out.shape == x.shape and s_out is s
    out, s_out = SteerableGeometricProduct(alg, 3)(x)
    assert s_out.shape == (4, 0)
    _, s_out = MVSiLU(alg, 3)(x, s)
    torch.testing.assert_close(s_out, torch.nn.functional.silu(s))
    assert MVSiLU(alg, 3)(x)[1].shape == (4, 0)


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_init_variance_near_one(alg):
    torch.manual_seed(0)
    x = torch.randn(512, 8, alg.dim)
    for first_order in (True, False):
        layer = SteerableGeometricProduct(alg, 8, include_first_order=first_order)
        with torch.no_grad():
            var = layer(x)[0].var().item()
        assert 0.5 < var < 2.0, (first_order, var)


def test_grade_dropout_keeps_whole_grades():
    alg = ALGEBRAS["CGA3"]
    x = torch.ones(200, 4, alg.dim)
    torch.manual_seed(0)
    y = grade_dropout(alg, x, 0.25)
    for k in range(alg.n + 1):
        block = y[..., alg.grade_slice(k)]
        assert torch.all(block == block[..., :1])  # one decision per (item, channel, grade)
        values = block.unique()
        assert values.tolist()[0] == 0.0 and len(values) == 2
        assert values[1].item() == pytest.approx(1 / 0.75)
    assert abs(y.mean().item() - 1.0) < 0.05
    assert grade_dropout(alg, x, 0.25, training=False) is x
    assert grade_dropout(alg, x, 0.0) is x
    layer = GradeDropout(alg, 0.9).eval()
    s = torch.randn(200, 3)
    out, s_out = layer(x, s)
    assert torch.equal(out, x) and torch.equal(s_out, s)


# -- errors ----------------------------------------------------------------------------------------------
def test_bad_input():
    alg = VGA3
    x = torch.randn(4, 3, alg.dim)
    w = torch.randn(3, len(steerable_paths(alg)))
    with pytest.raises(ValueError, match=r"\(3, 20\)"):
        steerable_gp(alg, x, x, torch.randn(3, 19))
    with pytest.raises(ValueError, match="channels"):
        steerable_gp(alg, x, torch.randn(4, 2, alg.dim), w)
    with pytest.raises(ValueError, match="last dimension 8"):
        steerable_gp(alg, torch.randn(4, 3, 16), x, w)
    with pytest.raises(ValueError, match="broadcast"):
        steerable_gp(alg, x, torch.randn(5, 3, alg.dim), w)
    with pytest.raises(TypeError, match="weight"):
        steerable_gp(alg, x, x, w.tolist())
    with pytest.raises(ValueError, match="expected a"):
        mv_silu(alg, x, torch.ones(3, 3), torch.zeros(3, 4))
    with pytest.raises(TypeError, match="Algebra"):
        SteerableGeometricProduct("VGA3", 3)
    with pytest.raises(ValueError, match="channels"):
        SteerableGeometricProduct(alg, 0)
    with pytest.raises(ValueError, match=r"\(\.\.\., 4, 8\)"):
        SteerableGeometricProduct(alg, 4)(x)
    with pytest.raises(ValueError, match="scalars"):
        SteerableGeometricProduct(alg, 3, in_s_channels=2)(x)
    with pytest.raises(ValueError, match="scalars"):
        SteerableGeometricProduct(alg, 3)(x, torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, 8\)"):
        MVSiLU(alg, 2)(x)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        grade_dropout(alg, x, 1.0)
