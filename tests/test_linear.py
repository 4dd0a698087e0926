"""EquiLinear: equivariance (odd versors included), invariant scalars, linearity, init variance, errors."""

import pytest
import torch

from gatorch import PGA3, VGA3
from gatorch.functional.linear import equi_linear, invariant_components
from gatorch.layers import EquiLinear
from gatorch.testing import ALGEBRAS, random_versors

F64 = torch.float64


def _layer(alg, group="pin", bias=True, seed=0):
    torch.manual_seed(seed)
    return EquiLinear(alg, 5, 7, in_s_channels=3, out_s_channels=4, group=group, bias=bias).to(F64)


def _inputs(alg, batch=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, 5, alg.dim, generator=g, dtype=F64),
        torch.randn(batch, 3, generator=g, dtype=F64),
    )


@pytest.mark.parametrize("group", ["pin", "spin"])
@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=ALGEBRAS.keys())
def test_equivariant_and_scalars_invariant(alg, group):
    layer = _layer(alg, group)
    with torch.no_grad():  # non-zero biases, so they are tested too
        layer.bias.normal_()
    x, s = _inputs(alg)
    if group == "pin":
        w = random_versors(alg, 6, seed=2)  # half even, half odd
    else:
        w = alg.random_versor((6,), spin=True, generator=torch.Generator().manual_seed(2), dtype=F64)
    y, t = layer(x, s)
    y_rot, t_rot = layer(alg.sandwich(w[:, None, :], x), s)
    torch.testing.assert_close(y_rot, alg.sandwich(w[:, None, :], y), atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(t_rot, t, atol=1e-9, rtol=1e-9)


def test_spin_layer_is_not_pin_equivariant():
    """The extra Spin maps really break reflection equivariance (the test can fail)."""
    layer = _layer(PGA3, "spin")
    x, s = _inputs(PGA3)
    w = random_versors(PGA3, 6, seed=3)[3:]  # odd versors
    y_rot, _ = layer(PGA3.sandwich(w[:, None, :], x[:3]), s[:3])
    assert (y_rot - PGA3.sandwich(w[:, None, :], layer(x[:3], s[:3])[0])).abs().max() > 1e-3


def test_linear_without_bias():
    layer = _layer(PGA3, bias=False)
    x1, s1 = _inputs(PGA3, seed=4)
    x2, s2 = _inputs(PGA3, seed=5)
    a, b = 0.7, -1.3
    y, t = layer(a * x1 + b * x2, a * s1 + b * s2)
    y1, t1 = layer(x1, s1)
    y2, t2 = layer(x2, s2)
    torch.testing.assert_close(y, a * y1 + b * y2, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(t, a * t1 + b * t2, atol=1e-12, rtol=1e-12)


def test_weights_are_per_basis_map_and_match_the_basis():
    """With one weight switched on, the layer is exactly that basis map (independent of the kernel)."""
    layer = EquiLinear(PGA3, 1, 1, bias=False).to(F64)
    basis = PGA3.equivariant_basis("pin")
    x = torch.randn(3, 1, PGA3.dim, dtype=F64)
    for m in range(basis.shape[0]):
        with torch.no_grad():
            layer.weight.zero_()
            layer.weight[0, 0, m] = 1.0
        y, _ = layer(x)
        torch.testing.assert_close(y[:, 0], x[:, 0] @ basis[m].T, atol=1e-12, rtol=0)


@pytest.mark.parametrize("alg", [VGA3, PGA3, ALGEBRAS["STA"], ALGEBRAS["CGA3"]], ids=str)
def test_variance_near_one_at_init(alg):
    torch.manual_seed(0)
    layer = EquiLinear(alg, 32, 32, in_s_channels=16, out_s_channels=16)
    x = torch.randn(2048, 32, alg.dim)
    s = torch.randn(2048, 16)
    with torch.no_grad():
        y, t = layer(x, s)
    assert 0.6 < float(y.var()) < 1.6
    assert 0.6 < float(t.var()) < 1.6


def test_invariant_components():
    assert invariant_components(PGA3, "pin", "blades") == (PGA3.index("1"), PGA3.index("e0"))
    assert invariant_components(PGA3, "pin", "coefficients") == (PGA3.index("1"),)
    assert PGA3.index("e0123") in invariant_components(PGA3, "spin", "coefficients")


def test_bad_input():
    layer = EquiLinear(PGA3, 5, 7, in_s_channels=3)
    with pytest.raises(ValueError, match="16"):
        layer(torch.randn(2, 5, 8), torch.randn(2, 3))
    with pytest.raises(ValueError, match="5"):
        layer(torch.randn(2, 4, 16), torch.randn(2, 3))
    with pytest.raises(ValueError, match="scalars"):
        layer(torch.randn(2, 5, 16))
    with pytest.raises(ValueError, match="group"):
        EquiLinear(PGA3, 1, 1, group="lorentz")
    with pytest.raises(ValueError, match="in_channels"):
        EquiLinear(PGA3, 0, 1)
    with pytest.raises(TypeError, match="Algebra"):
        EquiLinear("PGA3", 1, 1)


def test_state_dict_round_trip_and_dtype():
    a, b = _layer(PGA3, seed=0), _layer(PGA3, seed=1)
    x, s = _inputs(PGA3)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(x, s)[0], b(x, s)[0])
    c = b.float()
    y32, _ = c(x.float(), s.float())
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), a(x, s)[0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("group", ["pin", "spin"])
@pytest.mark.parametrize("name", list(ALGEBRAS))
def test_blade_first_kernel_matches_block_kernel(name: str, group: str) -> None:
    """The signed-selection GEMM kernel and the general per-block kernel agree (values and grads)."""
    from gatorch.functional.linear import _equi_linear_blocks, _slot_plan, linear_plan

    alg = ALGEBRAS[name]
    assert _slot_plan(alg, group) is not None
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5, alg.dim, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 5, linear_plan(alg, group).num_maps, dtype=torch.float64, requires_grad=True)
    fast = equi_linear(alg, x, w, group)
    slow = _equi_linear_blocks(alg, x, w, group)
    torch.testing.assert_close(fast, slow, atol=1e-12, rtol=1e-12)
    g = torch.randn_like(fast)
    gf = torch.autograd.grad(fast, (x, w), g)
    gs = torch.autograd.grad(slow, (x, w), g)
    for a, b in zip(gf, gs, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)


def _readout_reference(alg, x, w, u, group, bias):
    """The plain-autograd formulation: block kernel, bias by index_add, readout by index_select."""
    from gatorch.functional.linear import _equi_linear_blocks

    inv = torch.tensor(invariant_components(alg, group, "blades"))
    read = torch.tensor(invariant_components(alg, group, "coefficients"))
    y = _equi_linear_blocks(alg, x, w, group)
    y = y.index_add(-1, inv, bias.expand(*x.shape[:-2], w.shape[0], len(inv)))
    t = torch.einsum("...ic,pic->...p", x.index_select(-1, read), u)
    return y, t


@pytest.mark.parametrize("layout", ["batch-last", "blade-first"])
@pytest.mark.parametrize("group", ["pin", "spin"])
@pytest.mark.parametrize("name", list(ALGEBRAS))
def test_fused_readout_kernel_matches_reference(name: str, group: str, layout: str) -> None:
    """equi_linear_readout (the fused eager kernel, hand-written backward) against plain autograd."""
    from gatorch.functional.linear import equi_linear_readout, linear_plan

    alg = ALGEBRAS[name]
    n_inv = len(invariant_components(alg, group, "blades"))
    n_read = len(invariant_components(alg, group, "coefficients"))
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(3, 4, 5, alg.dim, generator=g, dtype=F64)
    if layout == "blade-first":  # a (..., C, dim) view of (dim, ...) storage, as layers return
        x0 = x0.movedim(-1, 0).contiguous().movedim(0, -1)
    x = x0.requires_grad_(True)
    w = torch.randn(6, 5, linear_plan(alg, group).num_maps, generator=g, dtype=F64, requires_grad=True)
    u = torch.randn(2, 5, n_read, generator=g, dtype=F64, requires_grad=True)
    b = torch.randn(3, 1, 6, n_inv, generator=g, dtype=F64, requires_grad=True)  # broadcast over items
    y, t = equi_linear_readout(alg, x, w, u, group, bias=b)
    y_ref, t_ref = _readout_reference(alg, x, w, u, group, b)
    torch.testing.assert_close(y, y_ref, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(t, t_ref, atol=1e-12, rtol=1e-12)
    gy, gt = torch.randn_like(y), torch.randn_like(t)
    got = torch.autograd.grad((y, t), (x, w, u, b), (gy, gt), retain_graph=True)
    want = torch.autograd.grad((y_ref, t_ref), (x, w, u, b), (gy, gt), retain_graph=True)
    for a, c in zip(got, want, strict=True):
        torch.testing.assert_close(a, c, atol=1e-12, rtol=1e-12)
    # only one output used: the other's gradient is absent, not an error
    gx = torch.autograd.grad(t.sum(), x)[0]
    torch.testing.assert_close(gx, torch.autograd.grad(t_ref.sum(), x)[0], atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("alg", [PGA3, VGA3], ids=["PGA3", "VGA3"])
def test_fused_kernel_gradgradcheck(alg) -> None:
    """The hand-written backward is differentiable again (forces-from-energies training needs it)."""
    layer = EquiLinear(alg, 2, 3, in_s_channels=2, out_s_channels=2).to(F64)
    x = torch.randn(2, 2, alg.dim, dtype=F64, requires_grad=True)
    s = torch.randn(2, 2, dtype=F64, requires_grad=True)

    def f(x, s):
        y, t = layer(x, s)
        return y, t

    assert torch.autograd.gradcheck(f, (x, s))
    assert torch.autograd.gradgradcheck(f, (x, s))
