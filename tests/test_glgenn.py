"""GLGENN layers: quaternion types, QTLinear, QTGeometricProduct; dense references, equivariance, errors."""

import io
import itertools

import numpy as np
import pytest
import torch

from gatorch import PGA3, VGA3, Algebra
from gatorch.functional.steerable import steerable_paths
from gatorch.functional.zoo.glgenn import (
    qt_gp,
    qt_gp_init_std,
    qt_grades,
    qt_index,
    qt_linear,
    qt_linear_readout,
    qt_paths,
    qt_project,
    quaternion_type,
)
from gatorch.layers.bilinear import SteerableGeometricProduct
from gatorch.layers.linear import EquiLinear
from gatorch.layers.zoo.glgenn import QTGeometricProduct, QTLinear
from gatorch.testing import ALGEBRAS, assert_layer_equivariant, random_versors

F64 = torch.float64
IDS = list(ALGEBRAS)
QT = 4  # the number of quaternion types


def _randn(*shape, seed=0, dtype=F64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _qt_weight(alg, channels, seed=0):
    return _randn(channels, len(qt_paths(alg)), seed=seed)


def _perturbed(module, seed=0):
    """The module in float64 with every parameter (zero biases included) moved off its init."""
    module = module.to(F64)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=F64))
    return module


# -- quaternion types -----------------------------------------------------------------------------------
@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_quaternion_types_are_the_involution_reversion_eigenspaces(alg):
    """The paper's definition: x in Cl^t iff involute(x) = (-1)^t x and reverse(x) = (-1)^(t(t-1)/2) x."""
    eye = torch.eye(alg.dim, dtype=F64)
    inv, rev = alg.involute(eye).diagonal(), alg.reverse(eye).diagonal()
    signs = {(float((-1) ** t), float((-1) ** (t * (t - 1) // 2))): t for t in range(QT)}
    assert len(signs) == QT  # the two signs tell the four types apart
    expected = [signs[(float(a), float(b))] for a, b in zip(inv, rev, strict=True)]
    assert qt_index(alg).tolist() == expected
    assert [quaternion_type(g) for g in alg.grades] == expected
    x = _randn(3, alg.dim, seed=1)
    torch.testing.assert_close(sum(qt_project(alg, x, t) for t in range(QT)), x)
    for t in range(QT):
        mask = qt_index(alg) == t
        torch.testing.assert_close(qt_project(alg, x, t), x * mask)
        assert all(g % QT == t for g in qt_grades(alg, t))


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_qt_paths_match_cayley(alg):
    cayley = alg.cayley()
    qt = np.asarray(qt_index(alg))
    expected = [
        p
        for p in itertools.product(range(QT), repeat=3)
        if np.any(cayley[np.ix_(*(qt == t for t in p))] != 0)
    ]
    assert list(qt_paths(alg)) == expected
    assert qt_paths(alg) is qt_paths(alg)  # cached


def test_qt_path_counts():
    counts = {name: len(qt_paths(alg)) for name, alg in ALGEBRAS.items()}
    assert counts == {"VGA3": 20, "PGA3": 29, "STA": 29, "CGA3": 32, "Cl(2,0,1)": 19, "Cl(2,2,1)": 32}
    # n >= 5: the output parity is fixed by the operands', so 4 * 4 * 2 paths; CGENN's grow with n
    for n in (5, 7):
        alg = Algebra(n, 0, 0)
        assert len(qt_paths(alg)) == 32
        assert len(steerable_paths(alg)) == {5: 56, 7: 120}[n]


# -- QTLinear ---------------------------------------------------------------------------------------------
def _qt_linear_reference(alg, layer, x, s):
    """The class docstring's formula, term by term."""
    parts = torch.stack([qt_project(alg, x, t) for t in range(QT)], dim=-2)  # (..., in, 4, dim)
    y = torch.einsum("oit,...itd->...od", layer.weight, parts)
    scalar = alg.grade_slice(0).start
    extra = layer.bias + s @ layer.s_to_mv.t()
    y = y.index_add(-1, torch.tensor([scalar]), extra.unsqueeze(-1))
    u = x[..., scalar] @ layer.mv_to_s.t() + layer.s_to_s(s)
    return y, u


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_qt_linear_matches_formula(alg):
    torch.manual_seed(0)
    layer = _perturbed(QTLinear(alg, 3, 5, in_s_channels=2, out_s_channels=4))
    x, s = _randn(2, 6, 3, alg.dim, seed=1), _randn(2, 6, 2, seed=2)
    y, u = layer(x, s)
    assert y.shape == (2, 6, 5, alg.dim) and u.shape == (2, 6, 4)
    y_ref, u_ref = _qt_linear_reference(alg, layer, x, s)
    torch.testing.assert_close(y, y_ref, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(u, u_ref, atol=1e-12, rtol=1e-12)


def test_qt_linear_is_linear():
    alg = PGA3
    torch.manual_seed(0)
    layer = _perturbed(QTLinear(alg, 3, 5, in_s_channels=2, out_s_channels=4, bias=False))
    (x1, s1), (x2, s2) = [(_randn(6, 3, alg.dim, seed=k), _randn(6, 2, seed=k + 10)) for k in (1, 2)]
    a, b = 0.7, -1.3
    y, u = layer(a * x1 + b * x2, a * s1 + b * s2)
    (y1, u1), (y2, u2) = layer(x1, s1), layer(x2, s2)
    torch.testing.assert_close(y, a * y1 + b * y2, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(u, a * u1 + b * u2, atol=1e-12, rtol=1e-12)


def test_qt_linear_parameter_count():
    """The paper's count: 4 weights per channel pair, whatever the algebra; bias and scalars as documented."""
    cin, cout, s_in, s_out = 5, 7, 3, 2
    for alg in ALGEBRAS.values():
        assert sum(p.numel() for p in QTLinear(alg, cin, cout, bias=False).parameters()) == 4 * cin * cout
        assert sum(p.numel() for p in QTLinear(alg, cin, cout).parameters()) == 4 * cin * cout + cout
        full = QTLinear(alg, cin, cout, in_s_channels=s_in, out_s_channels=s_out)
        expected = 4 * cin * cout + cout + cout * s_in + s_out * cin + (s_in * s_out + s_out)
        assert sum(p.numel() for p in full.parameters()) == expected
    # CGENN's grade-wise map: n + 1 per pair for non-degenerate algebras, more for degenerate ones
    assert EquiLinear(Algebra(5, 0, 0), cin, cout, bias=False).weight.numel() == 6 * cin * cout
    assert EquiLinear(PGA3, cin, cout, bias=False).weight.numel() == 9 * cin * cout


def test_qt_linear_blade_first_output_and_dtype():
    alg = VGA3
    layer = QTLinear(alg, 3, 4)
    x = _randn(5, 3, alg.dim, seed=1, dtype=torch.float32)
    y, u = layer(x)
    assert y.dtype == torch.float32 and y.shape == (5, 4, alg.dim) and u.shape == (5, 0)
    assert layer(torch.zeros(0, 3, alg.dim))[0].shape == (0, 4, alg.dim)
    assert not y.is_contiguous()  # a view of blade-first storage: the next layer reads it without a copy
    nxt = QTLinear(alg, 4, 2, out_s_channels=3)
    for a, b in zip(nxt(y), nxt(y.contiguous()), strict=True):
        torch.testing.assert_close(a, b)
    y64, _ = layer.to(F64)(x.to(F64))  # tables follow .to(dtype)
    torch.testing.assert_close(y64.float(), y)


# -- QTGeometricProduct -------------------------------------------------------------------------------------
def _dense_qt_gp(alg, x, y, weight):
    """Reference: the Cayley tensor weighted blade triple by blade triple with the qt-path weights."""
    cayley = torch.as_tensor(alg.cayley(), dtype=F64)  # e_i e_j = sum_k C[i, j, k] e_k
    lookup = torch.full((QT, QT, QT), -1, dtype=torch.long)
    for n, (a, b, c) in enumerate(qt_paths(alg)):
        lookup[a, b, c] = n
    qt = qt_index(alg)
    path = lookup[qt[:, None, None], qt[None, :, None], qt[None, None, :]]  # (dim, dim, dim)
    assert torch.all(cayley[path < 0] == 0)  # every non-zero term lies on a qt path
    full = weight[:, path.clamp(min=0)] * (path >= 0) * cayley  # (C, dim, dim, dim)
    return torch.einsum("...ci,cijk,...cj->...ck", x, full, y)


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_qt_gp_matches_dense(alg):
    x = _randn(3, 1, 4, alg.dim, seed=1)
    y = _randn(5, 4, alg.dim, seed=2)  # batch dimensions broadcast
    w = _qt_weight(alg, 4, seed=3)
    out = qt_gp(alg, x, y, w)
    assert out.shape == (3, 5, 4, alg.dim)
    torch.testing.assert_close(out, _dense_qt_gp(alg, x, y, w), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("name", ["PGA3", "CGA3"])
def test_qt_gp_gradients_match_dense(name):
    alg = ALGEBRAS[name]
    args = [_randn(4, 3, alg.dim, seed=1), _randn(4, 3, alg.dim, seed=2), _qt_weight(alg, 3, seed=3)]
    g = _randn(4, 3, alg.dim, seed=4)
    grads = []
    for fn in (qt_gp, _dense_qt_gp):
        leaves = [a.clone().requires_grad_(True) for a in args]
        grads.append(torch.autograd.grad(fn(alg, *leaves), leaves, g))
    for fast, ref in zip(*grads, strict=True):
        torch.testing.assert_close(fast, ref, atol=1e-12, rtol=1e-12)


def test_qt_gp_unweighted_is_geometric_product():
    for alg in (VGA3, PGA3, ALGEBRAS["CGA3"]):
        x, y = _randn(6, 2, alg.dim, seed=1), _randn(6, 2, alg.dim, seed=2)
        ones = torch.ones(2, len(qt_paths(alg)), dtype=F64)
        torch.testing.assert_close(qt_gp(alg, x, y, ones), alg.gp(x, y), atol=1e-12, rtol=1e-12)


def test_qt_gp_init_variance():
    """Unit-variance operands and ``qt_gp_init_std`` weights: each type's mean output variance near 1."""
    for alg in (PGA3, ALGEBRAS["CGA3"], ALGEBRAS["Cl(2,2,1)"]):
        x, y = _randn(512, 64, alg.dim, seed=1), _randn(512, 64, alg.dim, seed=2)
        w = _qt_weight(alg, 64, seed=3) * qt_gp_init_std(alg)
        var = qt_gp(alg, x, y, w).square().mean(dim=(0, 1))
        for t in range(QT):
            mean = var[qt_index(alg) == t].mean().item()
            assert 0.7 < mean < 1.4, (alg, t, mean)


def test_qt_gp_layer_parameter_count():
    c = 6
    for alg in ALGEBRAS.values():
        layer = QTGeometricProduct(alg, c)
        linear = 4 * c * c
        assert layer.weight.shape == (c, len(qt_paths(alg)))
        assert sum(p.numel() for p in layer.parameters()) == c * len(qt_paths(alg)) + 2 * linear + c
        bare = QTGeometricProduct(alg, c, include_first_order=False)
        assert sum(p.numel() for p in bare.parameters()) == c * len(qt_paths(alg)) + linear
    cl5 = Algebra(5, 0, 0)  # the paper's O(5) setting: 32 product weights per channel against CGENN's 56
    assert QTGeometricProduct(cl5, c).weight.numel() == 32 * c
    assert SteerableGeometricProduct(cl5, c).weight.numel() == 56 * c


def test_qt_gp_layer_formula():
    alg = PGA3
    torch.manual_seed(0)
    layer = _perturbed(QTGeometricProduct(alg, 3, in_s_channels=2))
    x, s = _randn(5, 3, alg.dim, seed=1), _randn(5, 2, seed=2)
    out, s_out = layer(x, s)
    right = layer.right(x, s)[0]
    expected = (layer.left(x, s)[0] + _dense_qt_gp(alg, x, right, layer.weight)) / 2**0.5
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)
    assert s_out is s


# -- equivariance (half the versors odd) ---------------------------------------------------------------------
@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_qt_gp_equivariant(alg):
    w = random_versors(alg, 6, seed=1)
    x, y = _randn(6, 3, alg.dim, seed=2), _randn(6, 3, alg.dim, seed=3)
    weight = _qt_weight(alg, 3, seed=4)

    def act(t):
        return alg.sandwich(w[:, None], t)

    torch.testing.assert_close(
        qt_gp(alg, act(x), act(y), weight), act(qt_gp(alg, x, y, weight)), atol=1e-9, rtol=1e-9
    )


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_layers_equivariant(alg):
    torch.manual_seed(0)
    w = random_versors(alg, 6, seed=1)
    x, s = _randn(6, 3, alg.dim, seed=2), _randn(6, 2, seed=3)
    layers = {
        "linear": (QTLinear(alg, 3, 4, in_s_channels=2, out_s_channels=3), s),
        "gp": (QTGeometricProduct(alg, 3, in_s_channels=2), s),
        "gp_no_first_order": (QTGeometricProduct(alg, 3, include_first_order=False), None),
    }
    for name, (layer, scalars) in layers.items():
        layer = _perturbed(layer, seed=4)
        try:
            assert_layer_equivariant(layer, alg, x, scalars, versors=w, batched=True)
        except AssertionError as err:
            raise AssertionError(f"{name}: {err}") from None


# -- gradients, serialisation, compile ---------------------------------------------------------------------
def test_gradcheck_qt_linear():
    alg = ALGEBRAS["Cl(2,0,1)"]
    args = (
        _randn(2, 3, alg.dim, seed=1),
        _randn(2, 3, QT, seed=2),
        _randn(4, 3, seed=3),
        _randn(2, 1, seed=4),
    )
    args = tuple(a.requires_grad_(True) for a in args)

    def fn(x, weight, readout, bias):
        return qt_linear_readout(alg, x, weight, readout, bias=bias)

    assert torch.autograd.gradcheck(fn, args)
    assert torch.autograd.gradgradcheck(lambda x, weight: qt_linear(alg, x, weight), args[:2])


def test_gradcheck_qt_gp():
    alg = PGA3
    args = (_randn(2, 2, alg.dim, seed=1), _randn(1, 2, alg.dim, seed=2), _qt_weight(alg, 2, seed=3))
    args = tuple(a.requires_grad_(True) for a in args)
    assert torch.autograd.gradcheck(lambda x, y, w: qt_gp(alg, x, y, w), args)


def test_gradcheck_layer_parameters():
    alg = VGA3
    torch.manual_seed(0)
    layer = _perturbed(QTGeometricProduct(alg, 2, in_s_channels=1))
    names, params = zip(*layer.named_parameters(), strict=True)
    x, s = _randn(3, 2, alg.dim, seed=1), _randn(3, 1, seed=2)

    def fn(*p):
        return torch.func.functional_call(layer, dict(zip(names, p, strict=True)), (x, s))[0]

    assert torch.autograd.gradcheck(fn, tuple(p.detach().clone().requires_grad_(True) for p in params))


def test_state_dict_round_trip():
    alg = PGA3
    for make in (
        lambda: QTLinear(alg, 3, 4, in_s_channels=2, out_s_channels=5),
        lambda: QTGeometricProduct(alg, 3, in_s_channels=2),
    ):
        torch.manual_seed(0)
        src = _perturbed(make())
        buf = io.BytesIO()
        torch.save(src.state_dict(), buf)
        buf.seek(0)
        torch.manual_seed(1)
        dst = make().to(F64)
        x, s = _randn(4, 3, alg.dim, seed=1), _randn(4, 2, seed=2)
        assert not torch.allclose(dst(x, s)[0], src(x, s)[0])
        dst.load_state_dict(torch.load(buf, weights_only=True))
        for a, b in zip(dst(x, s), src(x, s), strict=True):
            torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_compile_matches_eager():
    torch._dynamo.reset()
    alg = PGA3
    torch.manual_seed(0)
    model = torch.nn.Sequential(QTLinear(alg, 2, 3), QTGeometricProduct(alg, 3))

    def fn(x):
        mv = model[1](*model[0](x))[0]
        return mv.square().sum()

    x = _randn(5, 2, alg.dim, seed=1, dtype=torch.float32)
    eager = fn(x)
    g_eager = torch.autograd.grad(eager, list(model.parameters()))
    # aot_eager: the full graph traced (no break) and its autograd, without inductor's codegen time
    compiled = torch.compile(fn, fullgraph=True, dynamic=False, backend="aot_eager")(x)
    g_comp = torch.autograd.grad(compiled, list(model.parameters()))
    torch.testing.assert_close(compiled, eager, atol=1e-4, rtol=1e-5)
    for a, b in zip(g_comp, g_eager, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-5)


# -- errors -----------------------------------------------------------------------------------------------
def test_bad_arguments():
    alg = PGA3
    with pytest.raises(TypeError, match=r"alg must be a gatorch\.Algebra, got str"):
        QTLinear("PGA3", 2, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"in_channels must be an int >= 1, got 0$"):
        QTLinear(alg, 0, 3)
    with pytest.raises(ValueError, match=r"channels must be an int >= 1, got 2\.0"):
        QTGeometricProduct(alg, 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"quaternion type must be an int in \[0, 3\], got 4"):
        qt_grades(alg, 4)


def test_bad_inputs():
    alg = PGA3
    linear, gp = QTLinear(alg, 3, 4, in_s_channels=2), QTGeometricProduct(alg, 3)
    x = torch.randn(2, 3, alg.dim)
    with pytest.raises(ValueError, match=r"expected last dimension 16 .* got shape \(2, 3, 8\)"):
        linear(torch.randn(2, 3, 8), torch.randn(2, 2))
    with pytest.raises(ValueError, match=r"expected input of shape \(\.\.\., 3, 16\), got \(2, 5, 16\)"):
        gp(torch.randn(2, 5, alg.dim))
    with pytest.raises(ValueError, match=r"expected scalars of shape \(\.\.\., 2\), got \(2, 1\)"):
        linear(x, torch.randn(2, 1))
    with pytest.raises(TypeError, match="expected a floating-point tensor"):
        gp(torch.ones(2, 3, alg.dim, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected weight of shape \(out_channels, 3, 4\), got \(4, 3, 9\)"):
        qt_linear(alg, x, torch.randn(4, 3, 9))  # an EquiLinear (CGENN) weight
    with pytest.raises(ValueError, match=r"expected readout of shape \(out_s_channels, 3\), got \(2, 3, 1\)"):
        qt_linear_readout(alg, x, torch.randn(4, 3, QT), torch.randn(2, 3, 1))
    with pytest.raises(ValueError, match=r"bias of shape \(5,\) does not broadcast to \(\.\.\., 4\)"):
        qt_linear(alg, x, torch.randn(4, 3, QT), bias=torch.randn(5))
    with pytest.raises(ValueError, match=r"expected weight of shape \(3, 29\), got \(3, 34\)"):
        qt_gp(alg, x, x, torch.randn(3, len(steerable_paths(alg))))  # a CGENN grade-path weight
    with pytest.raises(TypeError, match=r"weight must be a torch\.Tensor, got list"):
        qt_gp(alg, x, x, [[1.0] * 29] * 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a floating-point weight"):
        qt_gp(alg, x, x, torch.ones(3, 29, dtype=torch.long))
    with pytest.raises(ValueError, match="same number of channels"):
        qt_gp(alg, x, torch.randn(2, 4, alg.dim), torch.randn(3, 29))
    with pytest.raises(ValueError, match=r"expected x of shape \(\.\.\., channels, 16\), got \(16,\)"):
        qt_gp(alg, torch.randn(alg.dim), torch.randn(alg.dim), torch.randn(1, 29))
