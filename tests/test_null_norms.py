"""Numerics at the edges of the norms: null multivectors of indefinite algebras, huge and tiny inputs.

The layer norm's floor bounds its gain on null inputs (no invariant norm is positive on them),
the norms never square an input that would overflow float32, and a small conformal GATr
trains on conformal points (null vectors) with bounded gradients.
"""

import copy

import pytest
import torch

from gatorch import CGA3, STA
from gatorch.functional.nonlinear import equi_layer_norm, grade_invariants
from gatorch.interface.cga import embed_point
from gatorch.layers import EquiLayerNorm, NormConfig
from gatorch.layers.slim import SlimRMSNorm
from gatorch.nets import GATr
from gatorch.nets.slim import GATrSlim

F64 = torch.float64


def _lightlike(magnitudes: torch.Tensor) -> torch.Tensor:
    """STA null vectors ``a (e0 + e1)`` and ``a (e0 - e2)``, two channels, shape (items, 2, 16)."""
    x = torch.zeros(magnitudes.shape[0], 2, STA.dim)
    x[:, 0, STA.index("e0")] = x[:, 0, STA.index("e1")] = 1.0
    x[:, 1, STA.index("e0")], x[:, 1, STA.index("e2")] = 1.0, -1.0
    return x * magnitudes[:, None, None]


MAGNITUDES = torch.tensor([1e-3, 0.1, 1.0, 3.0, 100.0])


def test_layer_norm_default_gain_on_lightlike_vectors() -> None:
    # the default floor (0.01, clamped): a null input is scaled by exactly 1/sqrt(0.01) = 10,
    # and so is the gradient (no term through the vanishing norm); main gave 1000x and 5e6
    x = _lightlike(MAGNITUDES).requires_grad_(True)
    assert torch.equal(grade_invariants(STA, x.detach()), torch.zeros(5, 2, 5))  # null indeed
    y, _ = EquiLayerNorm(STA)(x)
    torch.testing.assert_close(y, 10 * x.detach())
    g = torch.randn_like(y)
    (y * g).sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad, 10 * g)


@pytest.mark.parametrize(("eps", "eps_mode"), [(0.01, "clamp"), (1.0, "clamp"), (1e-6, "add"), (0.01, "add")])
@pytest.mark.parametrize("statistic", ["rms", "mean"])
def test_layer_norm_gain_bounded_by_the_floor(eps: float, eps_mode: str, statistic: str) -> None:
    # the documented bound: |y| <= |x| / sqrt(eps) ("rms"), |x| / eps ("mean"), on null inputs,
    # near-null ones and ordinary ones alike
    torch.manual_seed(0)
    near = _lightlike(MAGNITUDES) + 1e-3 * torch.randn(5, 2, STA.dim)
    x = torch.cat([_lightlike(MAGNITUDES), near, torch.randn(5, 2, STA.dim)]).requires_grad_(True)
    y = equi_layer_norm(STA, x, eps, statistic=statistic, eps_mode=eps_mode)
    bound = 1 / eps**0.5 if statistic == "rms" else 1 / eps
    gain = y.detach().abs().amax((-2, -1)) / x.detach().abs().amax((-2, -1))  # y = gain * x per item
    assert gain.max() <= bound * (1 + 1e-5), gain.max()
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def _float64_reference(layer: torch.nn.Module, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    ref = copy.deepcopy(layer).double()
    return ref(*(t.double() for t in inputs))


@pytest.mark.parametrize("scale", [1e20, 1e-20, 1e30])
def test_layer_norm_huge_and_tiny_inputs_float32(scale: float) -> None:
    # 1e20 ** 2 overflows float32: main gave inf / inf = NaN; now the same result as float64
    torch.manual_seed(1)
    layer = EquiLayerNorm(STA, s_channels=3)
    x = (scale * torch.randn(4, 3, STA.dim)).requires_grad_(True)
    s = scale * torch.randn(4, 3)
    y, t = layer(x, s)
    y_ref, t_ref = _float64_reference(layer, x.detach(), s)
    torch.testing.assert_close(y.double(), y_ref, rtol=1e-5, atol=1e-5 * y_ref.abs().max().item())
    torch.testing.assert_close(t.double(), t_ref, rtol=1e-4, atol=1e-4)
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    if scale > 1:  # normalised: the mean invariant is 1
        mean_q = grade_invariants(STA, y.detach()).sum(-1).mean(-1)
        torch.testing.assert_close(mean_q, torch.ones(4), rtol=1e-4, atol=0)


@pytest.mark.parametrize(("statistic", "eps"), [("rms", 1e-6), ("rms", 0.01), ("mean", 1e-6)])
def test_functional_layer_norm_huge_null_and_ordinary(statistic: str, eps: float) -> None:
    torch.manual_seed(4)
    null = _lightlike(torch.tensor([1e20, 1e15, 1e-20]))
    x = torch.cat([1e20 * torch.randn(3, 2, STA.dim), null, 1e20 * torch.randn(3, 2, STA.dim) + null])
    x.requires_grad_(True)
    y = equi_layer_norm(STA, x, eps, statistic=statistic)
    (grad,) = torch.autograd.grad((y * torch.randn_like(y)).sum(), x)  # y**2 would overflow
    assert torch.isfinite(y).all() and torch.isfinite(grad).all()
    ref = equi_layer_norm(STA, x.detach().double(), eps, statistic=statistic)
    exact = [0, 1, 2, 5, 6, 7, 8] if statistic == "mean" else list(range(9))  # see the docstring
    torch.testing.assert_close(y[exact].double(), ref[exact], rtol=1e-5, atol=1e-5 * ref.abs().max().item())
    gain = y.detach().abs().amax((-2, -1)) / x.detach().abs().amax((-2, -1))  # y = gain * x per item
    assert gain.max() <= (1 / eps**0.5 if statistic == "rms" else 1 / eps) * (1 + 1e-5)


def test_slim_rms_norm_huge_inputs_float32() -> None:
    torch.manual_seed(2)
    norm = SlimRMSNorm(STA, 3, 2)
    v, s = 1e20 * torch.randn(5, STA.n, 3), 1e20 * torch.randn(5, 2)
    out = norm(v, s)
    ref = _float64_reference(norm, v, s)
    for a, b in zip(out, ref, strict=True):
        torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scale", [1e20, 1e-20])
def test_nets_finite_on_huge_and_tiny_inputs(scale: float) -> None:
    torch.manual_seed(3)
    kw = dict(num_blocks=2, num_heads=1)
    for alg in (STA, CGA3):
        net = GATr(alg, in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=4, in_s_channels=1,
                   out_s_channels=1, hidden_s_channels=4, **kw)  # fmt: skip
        mv, s = net(scale * torch.randn(2, 6, 1, alg.dim), scale * torch.randn(2, 6, 1))
        assert torch.isfinite(mv).all() and torch.isfinite(s).all(), alg
    slim = GATrSlim(STA, in_v_channels=1, out_v_channels=1, hidden_v_channels=4, in_s_channels=1,
                    out_s_channels=1, hidden_s_channels=4, **kw)  # fmt: skip
    v, s = slim(scale * torch.randn(2, 6, 1, STA.n), scale * torch.randn(2, 6, 1))
    assert torch.isfinite(v).all() and torch.isfinite(s).all()


def test_conformal_gatr_trains_on_points_with_bounded_gradients() -> None:
    # conformal points are null vectors; main's default floor (1e-6, added) gave gradients of 1e6
    torch.manual_seed(0)
    net = GATr(CGA3, in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=4, out_s_channels=1,
               hidden_s_channels=4, num_blocks=2, num_heads=1)  # fmt: skip
    assert net.norm_config == NormConfig()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    points = torch.randn(16, 8, 3)
    target = torch.cdist(points, points).mean(-1, keepdim=True)  # an invariant per point
    mv = embed_point(points)[..., None, :]  # (16, 8, 1, 32)
    losses, grad_norms = [], []
    for _ in range(30):
        _, s = net(mv)
        loss = (s - target).square().mean()
        opt.zero_grad()
        loss.backward()
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        grad_norms.append(torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])).item())
        losses.append(loss.item())
        opt.step()
    assert max(grad_norms) < 1e4, max(grad_norms)
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("eps", [-1.0, "0.01", True, float("nan")])
def test_layer_norm_rejects_a_bad_floor(eps: object) -> None:
    with pytest.raises(ValueError, match=r"EquiLayerNorm: eps must be a float >= 0, got"):
        EquiLayerNorm(STA, eps=eps)  # type: ignore[arg-type]


def test_layer_norm_defaults_per_statistic() -> None:
    # GATr's / L-GATr's floor for "rms", CGENN's for "mean" (unchanged)
    rms, mean = EquiLayerNorm(STA), EquiLayerNorm(STA, statistic="mean")
    assert (rms.eps, rms.eps_mode, mean.eps, mean.eps_mode) == (0.01, "clamp", 1e-6, "add")
    assert (NormConfig().eps, NormConfig().eps_mode) == (0.01, "clamp")
