"""Packed and nested variable-size sets through GATr, ConditionalGATr and the attention layers.

A packed batch (``offsets``) or a nested jagged batch must give what each set gives alone,
outputs and gradients, in float64; a fresh ``fullgraph=True`` compile of the packed path.
"""

from __future__ import annotations

import pytest
import torch

from gatorch import PGA3, STA, VGA3
from gatorch.functional.attention import offsets_from_sizes
from gatorch.layers import CrossAttention, NormConfig, SelfAttention
from gatorch.nets import ConditionalGATr
from tests.conftest import small_gatr

SIZES = [3, 0, 5, 1, 7]


def _sets(sizes: list[int], channels: int, dim: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, channels, dim, generator=g, dtype=torch.float64) for n in sizes]


def _scalars(sizes: list[int], channels: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, channels, generator=g, dtype=torch.float64) for n in sizes]


GATR_OPTIONS = {
    "pga-distance-join": (PGA3, {"attention": {"distance_features": True}, "mlp": {"join": True}}),
    "sta-lgatr-options": (
        STA,
        {
            "attention": {"qkv_norm": True, "head_scale": True, "multi_query": True, "qkv_bias": False},
            "mlp": {"bilinear_norm": True},
            "norm": NormConfig.lgatr(),
            "group": "spin",
        },
    ),
}


@pytest.mark.parametrize("name", list(GATR_OPTIONS))
def test_packed_gatr_equals_each_set_alone(name: str) -> None:
    alg, options = GATR_OPTIONS[name]
    torch.manual_seed(0)
    net = small_gatr(alg, **options).double().eval()
    sets, ss = _sets(SIZES, 2, alg.dim, 1), _scalars(SIZES, 3, 2)
    mv = torch.cat(sets).requires_grad_(True)
    s = torch.cat(ss)
    out, out_s = net(mv, s, offsets=offsets_from_sizes(SIZES), max_items=max(SIZES))
    assert out.shape == (sum(SIZES), 1, alg.dim) and out_s.shape == (sum(SIZES), 2)
    (grad,) = torch.autograd.grad(out.square().sum() + out_s.square().sum(), mv)
    start = 0
    for x, y in zip(sets, ss, strict=True):
        n = x.shape[0]
        if n:
            xi = x[None].clone().requires_grad_(True)
            o, o_s = net(xi, y[None])
            torch.testing.assert_close(out[start : start + n], o[0], atol=1e-12, rtol=1e-12)
            torch.testing.assert_close(out_s[start : start + n], o_s[0], atol=1e-12, rtol=1e-12)
            (g,) = torch.autograd.grad(o.square().sum() + o_s.square().sum(), xi)
            torch.testing.assert_close(grad[start : start + n], g[0], atol=1e-11, rtol=1e-11)
        start += n


def test_nested_gatr_equals_packed() -> None:
    torch.manual_seed(0)
    net = small_gatr(PGA3, attention={"distance_features": True}).double().eval()
    sizes = [4, 2, 6]
    sets, ss = _sets(sizes, 2, 16, 3), _scalars(sizes, 3, 4)
    nt = torch.nested.nested_tensor(sets, layout=torch.jagged)
    nts = torch.nested.nested_tensor(ss, layout=torch.jagged)
    out, out_s = net(nt, nts)
    assert out.is_nested and out_s.is_nested
    ref, ref_s = net(torch.cat(sets), torch.cat(ss), offsets=offsets_from_sizes(sizes))
    torch.testing.assert_close(out.values(), ref, atol=1e-13, rtol=1e-13)
    torch.testing.assert_close(out_s.values(), ref_s, atol=1e-13, rtol=1e-13)
    with pytest.raises(ValueError, match="nested scalars"):
        net(nt, torch.cat(ss))
    with pytest.raises(ValueError, match="not both"):
        net(nt, nts, offsets=offsets_from_sizes(sizes))


def test_packed_conditional_gatr_equals_each_pair_alone() -> None:
    torch.manual_seed(0)
    net = ConditionalGATr(
        VGA3,
        in_mv_channels=2,
        condition_mv_channels=1,
        out_mv_channels=1,
        hidden_mv_channels=4,
        in_s_channels=3,
        condition_s_channels=2,
        out_s_channels=1,
        hidden_s_channels=4,
        num_blocks=2,
        num_heads=2,
        cross_attention={"multi_query": True},
    ).double()
    sizes, csizes = [2, 5, 3], [4, 1, 6]
    sets, ss = _sets(sizes, 2, 8, 5), _scalars(sizes, 3, 6)
    cond, cs = _sets(csizes, 1, 8, 7), _scalars(csizes, 2, 8)
    out, out_s = net(
        torch.cat(sets),
        torch.cat(cond),
        torch.cat(ss),
        torch.cat(cs),
        offsets=offsets_from_sizes(sizes),
        condition_offsets=offsets_from_sizes(csizes),
        max_items=5,
        condition_max_items=6,
    )
    start = 0
    for x, c, y, z in zip(sets, cond, ss, cs, strict=True):
        o, o_s = net(x[None], c[None], y[None], z[None])
        n = x.shape[0]
        torch.testing.assert_close(out[start : start + n], o[0], atol=1e-12, rtol=1e-12)
        torch.testing.assert_close(out_s[start : start + n], o_s[0], atol=1e-12, rtol=1e-12)
        start += n
    nested = net(
        torch.nested.nested_tensor(sets, layout=torch.jagged),
        torch.nested.nested_tensor(cond, layout=torch.jagged),
        torch.nested.nested_tensor(ss, layout=torch.jagged),
        torch.nested.nested_tensor(cs, layout=torch.jagged),
    )
    torch.testing.assert_close(nested[0].values(), out, atol=1e-13, rtol=1e-13)
    with pytest.raises(ValueError, match="both offsets and condition_offsets"):
        net(torch.cat(sets), torch.cat(cond), torch.cat(ss), torch.cat(cs), offsets=offsets_from_sizes(sizes))


def test_packed_layer_errors() -> None:
    attn = SelfAttention(VGA3, 2, 0, {"num_heads": 2})
    mv = torch.randn(6, 2, 8)
    off = offsets_from_sizes([2, 4])
    with pytest.raises(ValueError, match=r"\(total_items, channels, dim\)"):
        attn(mv[None], offsets=off)
    with pytest.raises(ValueError, match="either attn_mask or offsets"):
        attn(mv, attn_mask=torch.ones(6, 6, dtype=torch.bool), offsets=off)
    cross = CrossAttention(VGA3, 2, 2, config={"num_heads": 2})
    with pytest.raises(ValueError, match="context_offsets"):
        cross(mv, mv, offsets=off)
    net = small_gatr(VGA3)
    with pytest.raises(ValueError, match="total_items"):
        net(torch.randn(2, 6, 2, 8), torch.randn(2, 6, 3), offsets=off)


def test_fresh_packed_gatr_compiles_fullgraph() -> None:
    from gatorch.functional import KernelPolicy, kernel_policy

    torch._dynamo.reset()
    torch.manual_seed(0)
    net = small_gatr(PGA3, attention={"distance_features": True}, mlp={"join": True}).double()
    mv = torch.cat(_sets(SIZES, 2, 16, 9)).requires_grad_(True)
    s = torch.cat(_scalars(SIZES, 3, 10))
    off = offsets_from_sizes(SIZES)
    with kernel_policy(KernelPolicy(compiled="opaque")):
        compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
        out_c = compiled(mv, s, offsets=off, max_items=max(SIZES))
    out_e = net(mv, s, offsets=off, max_items=max(SIZES))
    torch.testing.assert_close(out_c, out_e, atol=1e-10, rtol=1e-10)
    (g_c,) = torch.autograd.grad(out_c[0].square().sum(), mv)
    (g_e,) = torch.autograd.grad(out_e[0].square().sum(), mv)
    torch.testing.assert_close(g_c, g_e, atol=1e-9, rtol=1e-9)
