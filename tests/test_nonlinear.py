"""Gated nonlinearities and EquiLayerNorm: equivariance, finiteness on null inputs, autocast, errors."""

import pytest
import torch

from gatorch import PGA3
from gatorch.functional.nonlinear import GATES, gated, grade_invariants
from gatorch.layers import EquiLayerNorm, ScalarGatedNonlinearity
from gatorch.testing import ALGEBRAS, random_versors

F64 = torch.float64


def _x(alg, seed=0, channels=5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(6, channels, alg.dim, generator=g, dtype=F64)


@pytest.mark.parametrize(
    "module",
    [lambda a, g=g: ScalarGatedNonlinearity(a, g) for g in ("gelu", "relu", "sigmoid")] + [EquiLayerNorm],
    ids=["gelu", "relu", "sigmoid", "layernorm"],
)
@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=ALGEBRAS.keys())
def test_equivariant(alg, module):
    layer = module(alg)
    x = _x(alg)
    w = random_versors(alg, 6, seed=1)[:, None, :]  # half even, half odd
    lhs, rhs = layer(alg.sandwich(w, x))[0], alg.sandwich(w, layer(x)[0])
    torch.testing.assert_close(lhs, rhs, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("gate", ["gelu", "relu", "sigmoid"])
def test_gate_formula(gate):
    x = _x(PGA3)
    s0 = x[..., :1]
    expected = {
        "relu": x * s0.clamp_min(0),
        "sigmoid": x / (1 + torch.exp(-s0)),
        "gelu": x * 0.5 * s0 * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (s0 + 0.044715 * s0**3))),
    }[gate]
    torch.testing.assert_close(ScalarGatedNonlinearity(PGA3, gate)(x)[0], expected)


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=ALGEBRAS.keys())
def test_layer_norm_normalises_the_invariant(alg):
    y, _ = EquiLayerNorm(alg, eps=1e-12)(_x(alg, seed=2))
    mean_norm = grade_invariants(alg, y).sum(-1).mean(-1)
    torch.testing.assert_close(mean_norm, torch.ones_like(mean_norm), atol=1e-9, rtol=1e-9)


def test_layer_norm_finite_on_null_input():
    x = torch.zeros(3, 4, PGA3.dim, dtype=F64, requires_grad=True)
    with torch.no_grad():
        x[..., PGA3.index("e0")] = 1e3  # null: the invariant norm is 0
    y, _ = EquiLayerNorm(PGA3)(x)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()


def test_bf16_autocast_finite_and_float32_inside():
    layer = EquiLayerNorm(ALGEBRAS["STA"], s_channels=3)
    x = 1e3 * torch.randn(4, 8, 16)
    s = 1e3 * torch.randn(4, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, t = layer(x.bfloat16(), s.bfloat16())
    assert y.dtype == torch.bfloat16 and torch.isfinite(y.float()).all() and torch.isfinite(t.float()).all()
    ref, _ = layer(x.bfloat16().float(), s.bfloat16().float())
    torch.testing.assert_close(y.float(), ref, atol=2e-2, rtol=2e-2)


def test_bad_input():
    with pytest.raises(ValueError, match="gate"):
        ScalarGatedNonlinearity(PGA3, "softplus")
    with pytest.raises(ValueError, match="16"):
        EquiLayerNorm(PGA3)(torch.randn(2, 3, 8))
    with pytest.raises(ValueError, match="scalars"):
        EquiLayerNorm(PGA3, s_channels=3)(torch.randn(2, 3, 16))
    with pytest.raises(TypeError, match="Algebra"):
        EquiLayerNorm("PGA3")


@pytest.mark.parametrize("gate", sorted(GATES))
def test_gated_gradients(gate: str) -> None:
    """The eager gated op's hand-written backward: gradcheck and gradgradcheck in float64."""
    torch.manual_seed(0)
    x = torch.randn(3, 2, PGA3.dim, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda t: gated(PGA3, t, gate), (x,))
    torch.autograd.gradgradcheck(lambda t: gated(PGA3, t, gate), (x,))
