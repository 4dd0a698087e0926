"""Every op traces under ``torch.compile(fullgraph=True)`` (no graph break) and matches eager."""

import contextlib

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


# -- fresh modules: built, then compiled with no eager call first ------------------------------------
def _gatr(alg, num_blocks=2, **options):
    from tests.conftest import small_gatr

    return small_gatr(alg, num_blocks, **options)


_MASKS = ("none", "bool", "additive", "block")


def _mask(kind: str, items: int):
    from gatorch.functional.attention import block_diagonal_mask

    g = torch.Generator().manual_seed(1)
    if kind == "bool":
        m = torch.rand(items, items, generator=g) > 0.3
        return m | torch.eye(items, dtype=torch.bool)
    if kind == "additive":
        return -torch.rand(items, items, generator=g, dtype=torch.float64)
    if kind == "block":
        return block_diagonal_mask([2, items - 2])
    return None


_GATR_OPTIONS = {
    "default": {},
    "distance": {"attention": {"distance_features": True}},
    "join": {"mlp": {"join": True, "num_layers": 3, "activation": "relu"}},
    "multi-query": {"attention": {"multi_query": True, "distance_features": True}},
    "checkpoint": {"checkpoint_blocks": True},
    "lgatr-options": {
        "attention": {"qkv_norm": True, "head_scale": True, "qkv_bias": False, "multi_query": True},
        "mlp": {"bilinear_norm": True, "activation": "silu", "num_layers": 1},
        "norm": {
            "eps": 0.01,
            "eps_mode": "clamp",
            "scalar_eps": 1e-5,
            "mv_affine": True,
            "scalar_affine": "weight",
        },
        "group": "spin",
    },
}


def _no_breaks(fn, *args) -> None:
    explanation = torch._dynamo.explain(fn)(*args)
    reasons = [b.reason for b in explanation.break_reasons]
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1, reasons


_CASES = [(name, "none") for name in sorted(_GATR_OPTIONS)] + [
    ("distance", mask) for mask in _MASKS if mask != "none"
]


@pytest.mark.parametrize(("name", "mask"), _CASES)
def test_fresh_gatr_compiles_fullgraph(name, mask):
    """A freshly built GATr with each option and each kind of mask compiles in one graph.

    Traced through dynamo and AOT autograd (forward and backward) with products compiled as
    opaque custom ops, so that the option matrix stays fast; the fused products are compiled
    by the tests below.
    """
    from gatorch.functional import KernelPolicy, kernel_policy

    torch._dynamo.reset()
    torch.manual_seed(0)
    net = _gatr(PGA3, **_GATR_OPTIONS[name]).double()
    net.train(name == "checkpoint")
    mv = torch.randn(2, 6, 2, 16, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 6, 3, dtype=torch.float64)
    m = _mask(mask, 6)
    with kernel_policy(KernelPolicy(compiled="opaque")):
        _no_breaks(net, mv, s, m)
        torch._dynamo.reset()
        compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
        out_c = compiled(mv, s, m)
    (g_c,) = torch.autograd.grad(out_c[0].square().sum() + out_c[1].square().sum(), mv)
    out_e = net(mv, s, m)
    (g_e,) = torch.autograd.grad(out_e[0].square().sum() + out_e[1].square().sum(), mv)
    torch.testing.assert_close(out_c, out_e, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(g_c, g_e, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16-autocast"])
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_fresh_gatr_float32_and_bf16(dtype, backend):
    """A fresh float32 net, plain and under bf16 autocast, traced (aot_eager) and through inductor.

    The inductor run uses a one-block net with opaque products to keep the test's compile short.
    """
    from gatorch.functional import KernelPolicy, kernel_policy

    torch._dynamo.reset()
    torch.manual_seed(0)
    inductor = backend == "inductor"
    net = _gatr(PGA3, attention={"distance_features": True}, num_blocks=1 if inductor else 2)
    mv, s = torch.randn(2, 6, 2, 16, requires_grad=True), torch.randn(2, 6, 3)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if dtype != "float32" else contextlib.nullcontext()
    with ctx, kernel_policy(KernelPolicy(compiled="opaque" if inductor else "fused")):
        _no_breaks(net, mv, s)
        torch._dynamo.reset()
        out_c = torch.compile(net, fullgraph=True, backend=backend)(mv, s)
        out_e = net(mv, s)
    (out_c[0].float().square().sum()).backward()
    assert mv.grad is not None and torch.isfinite(mv.grad).all()
    tol = 1e-4 if dtype == "float32" else 5e-2
    scale = out_e[0].abs().max().item() + 1
    torch.testing.assert_close(out_c[0].float(), out_e[0].float(), atol=tol * scale, rtol=tol)


@pytest.mark.parametrize("products", ["fused", "opaque"])
def test_fresh_gatr_compiles_per_product_policy(products):
    """Both ways of compiling products (fused expression, opaque custom op) trace in one graph."""
    from gatorch import STA
    from gatorch.functional import KernelPolicy, kernel_policy

    torch._dynamo.reset()
    torch.manual_seed(0)
    net = _gatr(STA).double()
    mv = torch.randn(2, 5, 2, 16, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 5, 3, dtype=torch.float64)
    with kernel_policy(KernelPolicy(compiled=products)):
        _no_breaks(net, mv, s)
        torch._dynamo.reset()
        out_c = torch.compile(net, fullgraph=True, backend="aot_eager")(mv, s)
    (g_c,) = torch.autograd.grad(out_c[0].square().sum(), mv)
    out_e = net(mv, s)
    (g_e,) = torch.autograd.grad(out_e[0].square().sum(), mv)
    torch.testing.assert_close(out_c, out_e, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(g_c, g_e, atol=1e-9, rtol=1e-9)


def test_gatr_dynamic_item_counts_compile_at_most_twice():
    """Five item counts: one static compile, then one dynamic one that serves the rest."""
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    net = _gatr(PGA3, attention={"distance_features": True})
    counter = CompileCounter()
    compiled = torch.compile(net, backend=counter, fullgraph=True)
    for batch, items in ((3, 5), (3, 7), (3, 11), (3, 13), (3, 20)):
        mv, s = torch.randn(batch, items, 2, 16), torch.randn(batch, items, 3)
        torch.testing.assert_close(compiled(mv, s), net(mv, s))
    assert counter.frame_count <= 2


@pytest.mark.parametrize("compiled", ["fused", "opaque"])
@pytest.mark.parametrize("family", ["cpu", "cuda"])
def test_products_and_linear_compiled_match_eager(compiled, family):
    """Each compiled form of products and linear maps, with each eager kernel family behind it."""
    from gatorch import STA, Algebra
    from gatorch.functional import KernelPolicy, kernel_policy
    from gatorch.layers import EquiLinear

    policy = KernelPolicy(device=family, compiled=compiled)
    # CGA3's fused products (1024 terms) take long to trace; its opaque form covers dim 32
    for alg in (PGA3, STA) if compiled == "fused" else (PGA3, Algebra(4, 1)):
        torch._dynamo.reset()
        torch.manual_seed(0)
        lin = EquiLinear(alg, 3, 4, in_s_channels=2, out_s_channels=5, group="spin").double()
        x = torch.randn(6, 3, alg.dim, dtype=torch.float64, requires_grad=True)
        s = torch.randn(6, 2, dtype=torch.float64)

        def f(x, s, lin=lin, alg=alg):
            h, t = lin(x, s)
            return alg.gp(h, h) + alg.regressive(h, x[..., :1, :]), t

        def grads(out, x=x, lin=lin):
            return torch.autograd.grad(out[0].square().sum() + out[1].square().sum(), [x, *lin.parameters()])

        ref = f(x, s)
        g_ref = grads(ref)
        with kernel_policy(policy):
            out = torch.compile(f, fullgraph=True, backend="aot_eager")(x, s)
        torch.testing.assert_close(out, ref, atol=1e-10, rtol=1e-10)
        for a, b in zip(grads(out), g_ref, strict=True):
            torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-9)


def test_fused_linear_one_scalar_readout_gradients_under_inductor():
    """Regression: an indexed readout of one scalar channel once got wrong input gradients from inductor."""
    from gatorch import VGA3
    from gatorch.functional import KernelPolicy, kernel_policy
    from gatorch.layers import EquiLinear

    torch._dynamo.reset()
    torch.manual_seed(0)
    m = EquiLinear(VGA3, 2, 1, in_s_channels=2, out_s_channels=1)
    mv, s = torch.randn(5, 2, 8, requires_grad=True), torch.randn(5, 2, requires_grad=True)

    def grads(out):
        return torch.autograd.grad(out[0].square().sum() + out[1].square().sum(), [mv, s, *m.parameters()])

    ref = grads(m(mv, s))
    with kernel_policy(KernelPolicy(compiled="fused")):
        got = grads(torch.compile(m, fullgraph=True)(mv, s))
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
