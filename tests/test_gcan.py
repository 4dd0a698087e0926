"""GCAN layers: group action linear (vs the naive sandwich), covariance, non-equivariance, norm, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gatorch import PGA3, VGA3, Algebra
from gatorch.functional.zoo.gcan import group_action_linear_naive, group_action_matrices
from gatorch.layers.nonlinear import EquiLayerNorm, MVSiLU
from gatorch.layers.zoo.gcan import GCANActivation, GCANGroupNorm, GroupActionLinear, transform_parameters
from gatorch.testing import ALGEBRAS, assert_layer_equivariant, random_versors, versor_parity

F64 = torch.float64
IDS = list(ALGEBRAS)


def _randn(*shape, seed=0, dtype=F64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _layer(alg, cin=3, cout=4, s_in=2, s_out=2, seed=0, scale=0.5, **kw):
    """A float64 layer with random, non-trivial bivectors (translations too) and biases."""
    torch.manual_seed(seed)
    layer = GroupActionLinear(alg, cin, cout, in_s_channels=s_in, out_s_channels=s_out, **kw).double()
    with torch.no_grad():
        layer.bivector.copy_(scale * _randn(*layer.bivector.shape, seed=seed + 1))
        if layer.bias is not None:
            layer.bias.normal_()
    return layer


def _moved(alg, w, x):
    return alg.sandwich(w, x)


def _assert_covariant(alg, module, mv, s, w, atol=1e-9, rtol=1e-9):
    """``module_{w.theta}(rho_w(mv), s) == (rho_w(y), t)``.

    ``atol`` is relative to the largest output entry: boosts of indefinite signatures make
    entries of size ~1e3 next to entries of size ~1.
    """
    y, t = module(mv, s)
    y2, t2 = transform_parameters(module, w)(_moved(alg, w, mv), s)
    ref = _moved(alg, w, y)
    torch.testing.assert_close(y2, ref, atol=atol * max(1.0, float(ref.detach().abs().max())), rtol=rtol)
    torch.testing.assert_close(t2, t, atol=atol, rtol=rtol)


# -- the group action layer ------------------------------------------------------------------------------
@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
@pytest.mark.parametrize("grade_weights", [True, False])
def test_matches_naive_sandwich(alg, grade_weights):
    layer = _layer(alg, s_in=0, s_out=0, grade_weights=grade_weights)
    x = _randn(2, 5, 3, alg.dim, seed=7)
    y, s = layer(x)
    assert y.shape == (2, 5, 4, alg.dim) and s.shape == (2, 5, 0)
    torch.testing.assert_close(
        y, group_action_linear_naive(alg, x, layer.versors(), layer.weight), atol=1e-12, rtol=1e-12
    )


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_action_matrices_are_the_sandwich(alg):
    v = alg.exp(GroupActionLinear(alg, 2, 2).double().bivectors())
    x = _randn(2, 2, alg.dim, seed=3)
    ref = alg.sandwich(v, x)
    blocks = group_action_matrices(alg, v)
    for k, a in enumerate(blocks):
        s = alg.grade_slice(k)
        assert a.shape == (2, 2, s.stop - s.start, s.stop - s.start)
        torch.testing.assert_close((x[..., None, s] @ a)[..., 0, :], ref[..., s], atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_covariance(alg):
    """f_{rho_g(B)}(rho_g x, s) = (rho_g f_B(x, s), t) for even and odd g (twisted action)."""
    layer = _layer(alg, bias=True)
    mv, s = _randn(6, 3, alg.dim, seed=2), _randn(6, 2, seed=3)
    ws = random_versors(alg, 4, seed=5)
    assert versor_parity(alg, ws).tolist() == [0, 0, 1, 1]
    for w in ws:
        _assert_covariant(alg, layer, mv, s, w)
        # the moved versors are g V g^-1 (twisted: the same, since V is even)
        moved = transform_parameters(layer, w).versors()
        torch.testing.assert_close(moved, alg.sandwich(w, layer.versors()), atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("name", ["VGA3", "PGA3", "STA"])
def test_generic_layer_not_equivariant(name):
    """A versor acting on the inputs alone does not commute with a generic layer (no over-claiming)."""
    alg = ALGEBRAS[name]
    layer = _layer(alg, s_in=0, s_out=0)
    x = _randn(4, 3, alg.dim, seed=4)
    y, _ = layer(x)
    for w in random_versors(alg, 2, seed=6):  # one rotation, one reflection
        y_moved, _ = layer(_moved(alg, w, x))
        gap = (y_moved - _moved(alg, w, y)).abs().max() / y.abs().max()
        assert gap > 1e-2, f"{name}: generic GroupActionLinear unexpectedly equivariant (gap {gap:.1e})"


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_identity_versors_give_per_grade_linear(alg):
    layer = _layer(alg, s_in=0, s_out=0)
    with torch.no_grad():
        layer.bivector.zero_()
    x = _randn(5, 3, alg.dim, seed=1)
    y, _ = layer(x)
    w = layer.weight[..., torch.tensor(alg.grades)]  # (out, in, dim)
    torch.testing.assert_close(y, torch.einsum("bid,oid->bod", x, w), atol=1e-12, rtol=1e-12)
    w = random_versors(alg, 4, seed=2)
    assert_layer_equivariant(layer, alg, x[:4], None, versors=w, batched=True)  # then equivariant outright


@pytest.mark.parametrize("name", ["PGA3", "CGA3"])
def test_grades_preserved(name):
    alg = ALGEBRAS[name]
    layer = _layer(alg, s_in=0, s_out=0)
    for k in range(alg.n + 1):
        x = alg.grade(_randn(3, 3, alg.dim, seed=k), k)
        y, _ = layer(x)
        assert y.abs().max() > 1e-3
        torch.testing.assert_close(y, alg.grade(y, k), atol=1e-12, rtol=0)


def test_scalar_channels():
    """Scalars enter through the scalar blade, leave from the scalar coefficients; both invariant."""
    alg = PGA3
    layer = _layer(alg, bias=True)
    mv, s = _randn(4, 3, alg.dim, seed=1), _randn(4, 2, seed=2)
    y, t = layer(mv, s)
    y0, t0 = layer(mv, torch.zeros_like(s))
    delta = torch.zeros_like(y)
    delta[..., alg.grade_slice(0)] = (s @ layer.s_to_mv.T)[..., None]
    torch.testing.assert_close(y - y0, delta, atol=1e-12, rtol=1e-12)
    expected_t = mv[..., alg.index("1")] @ layer.mv_to_s.T + s @ layer.s_to_s.T + layer.s_bias
    torch.testing.assert_close(t, expected_t, atol=1e-12, rtol=1e-12)
    assert t0.shape == (4, 2)


def test_init_and_gradients():
    alg = PGA3
    layer = GroupActionLinear(alg, 8, 8)
    biv = layer.bivector.detach()
    rot = torch.tensor(["0" not in name for name in alg.blade_names])[alg.grade_slice(2)]
    assert biv[..., ~rot].abs().max() == 0 and biv[..., rot].abs().max() > 0.1  # GCAN: no translation
    x = torch.randn(64, 8, alg.dim)
    y, _ = layer(x)
    assert 0.3 < float(y.detach().var()) / float(x.var()) < 3.0
    y.square().sum().backward()
    for p in (layer.bivector, layer.weight):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().max() > 0


def test_gradcheck():
    layer = GroupActionLinear(VGA3, 2, 2, in_s_channels=1, out_s_channels=1, bias=True).double()
    mv, s = _randn(3, 2, VGA3.dim, seed=1).requires_grad_(), _randn(3, 1, seed=2).requires_grad_()
    params = (layer.bivector, layer.weight)

    def fn(mv, s, *_):
        y, t = layer(mv, s)
        return y, t

    assert torch.autograd.gradcheck(fn, (mv, s, *params))


def test_state_dict_round_trip_and_float64():
    alg = PGA3
    a = GroupActionLinear(alg, 3, 4, in_s_channels=2, out_s_channels=1, bias=True)
    b = GroupActionLinear(alg, 3, 4, in_s_channels=2, out_s_channels=1, bias=True)
    b.load_state_dict(a.state_dict())
    mv, s = torch.randn(5, 3, alg.dim), torch.randn(5, 2)
    for ya, yb in zip(a(mv, s), b(mv, s), strict=True):
        torch.testing.assert_close(ya, yb, atol=0, rtol=0)
    a64 = a.double()
    y64, t64 = a64(mv.double(), s.double())
    assert y64.dtype == t64.dtype == F64 and a64.bivector.dtype == F64
    y32, _ = b(mv, s)
    torch.testing.assert_close(y64.float(), y32, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("mv_shape", "s_shape", "match"),
    [
        ((4, 3, 8), (4, 2), "last dimension 16"),
        ((4, 5, 16), (4, 2), r"\(\.\.\., 3, 16\), got \(4, 5, 16\)"),
        ((4, 3, 16), (4, 7), r"scalars of shape \(\.\.\., 2\), got \(4, 7\)"),
        ((4, 3, 16), None, r"scalars of shape \(\.\.\., 2\), got None"),
    ],
)
def test_bad_inputs(mv_shape, s_shape, match):
    layer = GroupActionLinear(PGA3, 3, 4, in_s_channels=2)
    s = None if s_shape is None else torch.randn(*s_shape)
    with pytest.raises(ValueError, match=match):
        layer(torch.randn(*mv_shape), s)


def test_bad_construction_and_versor():
    with pytest.raises(TypeError, match=r"gatorch\.Algebra"):
        GroupActionLinear("PGA3", 3, 4)
    with pytest.raises(ValueError, match="in_channels must be an int >= 1, got 0"):
        GroupActionLinear(PGA3, 0, 4)
    with pytest.raises(ValueError, match="no bivectors"):
        GroupActionLinear(Algebra(1, 0, 0), 1, 1)
    layer = GroupActionLinear(PGA3, 1, 1)
    with pytest.raises(ValueError, match=r"one versor of shape \(16,\), got shape \(2, 16\)"):
        layer.transform_parameters_(PGA3.random_versor((2,)))
    null = torch.zeros(PGA3.dim)
    null[PGA3.index("e0")] = 1.0
    with pytest.raises(ValueError, match="versor"):
        layer.transform_parameters_(null)
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        layer.transform_parameters_([1.0] * 16)


# -- activation ----------------------------------------------------------------------------------------
def test_activation_formula():
    alg = PGA3
    act = GCANActivation(alg, 3, kernel_grades=(3, 0)).double()
    assert act.kernel_grades == (0, 3) and act.gate_weight.shape == (3, 5)
    x, s = _randn(4, 3, alg.dim, seed=1), _randn(4, 2, seed=2)
    y, t = act(x, s)
    blades = [alg.index(n) for n in ("1", "e012", "e013", "e023", "e123")]
    gate = torch.sigmoid((x[..., blades] * act.gate_weight).sum(-1) + act.gate_bias)
    torch.testing.assert_close(y, x * gate[..., None], atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(t, nn.functional.silu(s))
    for agg, red in (("sum", torch.sum), ("mean", torch.mean)):
        y, _ = GCANActivation(alg, 3, agg=agg)(x)
        torch.testing.assert_close(y, x * torch.sigmoid(red(x, -1, keepdim=True)), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_activation_covariance(alg):
    act = GCANActivation(alg, 3).double()
    x = _randn(5, 3, alg.dim, seed=1) * 0.3
    for w in random_versors(alg, 2, seed=3):
        _assert_covariant(alg, act, x, None, w)
    y, _ = act(x)
    w = random_versors(alg, 2, seed=3)[0]
    assert (act(_moved(alg, w, x))[0] - _moved(alg, w, y)).abs().max() > 1e-3  # not equivariant alone


def test_activation_equivariant_on_scalar_gate():
    for agg in ("linear", "sum"):
        act = GCANActivation(PGA3, 3, kernel_grades=(0,), agg=agg).double()
        w = random_versors(PGA3, 4, seed=2)
        assert_layer_equivariant(act, PGA3, _randn(4, 3, 16, seed=1), None, versors=w, batched=True)
    with pytest.raises(ValueError, match="no parameters to move"):
        GCANActivation(PGA3, 3, agg="mean").transform_parameters_(random_versors(PGA3, 2)[0])
    with pytest.raises(ValueError, match="unknown agg 'max'"):
        GCANActivation(PGA3, 3, agg="max")
    with pytest.raises(ValueError, match="kernel_grades"):
        GCANActivation(PGA3, 3, kernel_grades=(5,))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, 16\), got \(2, 4, 16\)"):
        GCANActivation(PGA3, 3)(torch.randn(2, 4, 16))


# -- group norm -----------------------------------------------------------------------------------------
def test_group_norm_matches_gcan_formula_on_vga():
    """On VGA3 the invariant norm is GCAN's Euclidean coefficient norm: compare with its formula."""
    norm = GCANGroupNorm(VGA3, 6, num_groups=2, scale_norm=True).double()
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = _randn(4, 6, 8, seed=1)
    z = x.view(4, 2, 3, 8)
    z = z - z.mean(-2, keepdim=True)
    z = z / (z.norm(dim=-1, keepdim=True).mean(-2, keepdim=True) + norm.eps)
    expected = z.view(4, 6, 8) * norm.weight[:, None] + norm.bias
    torch.testing.assert_close(norm(x)[0], expected, atol=1e-12, rtol=1e-12)
    centred, _ = GCANGroupNorm(VGA3, 6, num_groups=3).double()(x)  # scale_norm off: only centring
    torch.testing.assert_close(centred.view(4, 3, 2, 8).sum(-2), torch.zeros(4, 3, 8, dtype=F64))


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=IDS)
def test_group_norm_equivariance(alg):
    x = _randn(4, 4, alg.dim, seed=1)
    plain = GCANGroupNorm(alg, 4, num_groups=2, scale_norm=True, bias=False).double()
    assert_layer_equivariant(plain, alg, x, None, versors=random_versors(alg, 4, seed=2), batched=True)
    biased = GCANGroupNorm(alg, 4, scale_norm=True, s_channels=2).double()
    with torch.no_grad():
        biased.bias.normal_()
    for w in random_versors(alg, 2, seed=3):
        _assert_covariant(alg, biased, x, _randn(4, 2, seed=4), w)


def test_group_norm_null_inputs_and_errors():
    norm = GCANGroupNorm(PGA3, 2, scale_norm=True)
    x = torch.zeros(3, 2, 16)
    x[..., PGA3.index("e0")] = torch.tensor([1.0, -1.0])  # null: invariant norm 0
    x.requires_grad_()
    y, _ = norm(x)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="groups of at least 2, got channels=4, num_groups=4"):
        GCANGroupNorm(PGA3, 4, num_groups=4)
    with pytest.raises(ValueError, match=r"scalars of shape \(\.\.\., 3\), got \(2, 1\)"):
        GCANGroupNorm(PGA3, 2, s_channels=3)(torch.randn(2, 2, 16), torch.randn(2, 1))


# -- a GCAN network -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["PGA3", "Cl(2,2,1)"])
def test_network_covariance(name):
    """A stack of GCAN layers and gatorch's equivariant MVSiLU / EquiLayerNorm is covariant."""
    alg = ALGEBRAS[name]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(
                [
                    GroupActionLinear(alg, 2, 6, in_s_channels=1, out_s_channels=3),
                    GCANActivation(alg, 6),
                    GCANGroupNorm(alg, 6, num_groups=2, scale_norm=True, s_channels=3),
                    MVSiLU(alg, 6),
                    EquiLayerNorm(alg, s_channels=3),
                    GroupActionLinear(alg, 6, 1, in_s_channels=3, out_s_channels=1),
                ]
            )

        def forward(self, mv, s):
            for layer in self.layers:
                mv, s = layer(mv, s)
            return mv, s

    torch.manual_seed(0)
    net = Net().double()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, GroupActionLinear):
                m.bivector.normal_(0.0, 0.4)  # translations / degenerate planes too
    mv, s = _randn(5, 2, alg.dim, seed=1) * 0.5, _randn(5, 1, seed=2)
    for w in random_versors(alg, 2, seed=3):
        _assert_covariant(alg, net, mv, s, w, atol=1e-9, rtol=1e-8)
