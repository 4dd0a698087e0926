"""Every op traces under ``torch.compile(fullgraph=True)`` (no graph break) and matches eager."""

import pytest
import torch

import gatorch.functional as F
from gatorch import PGA3


def _all_ops(alg, x, y, w):
    b = alg.grade(x, 2)
    out = (
        alg.gp(x, y)
        + alg.outer(x, y)
        + alg.lcontract(x, y)
        + alg.regressive(x, y)
        + alg.dual(x)
        + alg.undual(y)
        + alg.reverse(x)
        + alg.involute(y)
        + alg.conjugate(x)
        + alg.sandwich(w, x)
        + alg.inverse(w)
        + alg.exp(0.1 * b)
        + F.gp(alg, x.t(), y.t(), blade_dim=0).t()
    )
    return out * (alg.norm(x, keepdim=True) + alg.inner_product(x, y, keepdim=True))


@pytest.mark.parametrize("alg", [PGA3], ids=["PGA3"])  # degenerate, n = 4: every code path
def test_fullgraph_compile_matches_eager(alg):
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, alg.dim, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(8, alg.dim, generator=g, dtype=torch.float64, requires_grad=True)
    w = alg.random_versor((8,), generator=g, dtype=torch.float64)
    eager = _all_ops(alg, x, y, w)
    (gx_e, gy_e) = torch.autograd.grad(eager.square().sum(), (x, y))
    compiled = torch.compile(_all_ops, fullgraph=True, dynamic=False)(alg, x, y, w)
    (gx_c, gy_c) = torch.autograd.grad(compiled.square().sum(), (x, y))
    torch.testing.assert_close(compiled, eager, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(gx_c, gx_e, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(gy_c, gy_e, atol=1e-9, rtol=1e-9)


def test_layers_fullgraph_compile_matches_eager():
    from gatorch.layers import EquiLayerNorm, EquiLinear, ScalarGatedNonlinearity

    torch._dynamo.reset()
    torch.manual_seed(0)
    linear = EquiLinear(PGA3, 4, 6, in_s_channels=3, out_s_channels=2).double()
    norm = EquiLayerNorm(PGA3, s_channels=2).double()
    gate = ScalarGatedNonlinearity(PGA3, "gelu")

    def block(x, s):
        return gate(*norm(*linear(x, s)))

    x = torch.randn(5, 4, PGA3.dim, dtype=torch.float64)
    s = torch.randn(5, 3, dtype=torch.float64)
    y_e, t_e = block(x, s)
    y_c, t_c = torch.compile(block, fullgraph=True)(x, s)
    torch.testing.assert_close(y_c, y_e, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(t_c, t_e, atol=1e-12, rtol=1e-12)
