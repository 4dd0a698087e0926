"""ConditionalGATr and the L-GATr options of GATr's layers (any algebra).

Equivariance in float64 at ~1e-9 under random versors, odd ones included (even ones only for
``group="spin"``), permutation symmetry, the options' formulas written out, errors, and a
fresh ``fullgraph=True`` compile.
"""

from __future__ import annotations

import pytest
import torch

from gatorch import PGA3, STA, VGA3
from gatorch.functional.nonlinear import equi_layer_norm, grade_invariants
from gatorch.layers import CrossAttention, EquiLayerNorm, GATrBlock, GeoMLP, NormConfig, SelfAttention
from gatorch.nets import ConditionalGATr
from gatorch.testing import (
    ALGEBRAS,
    assert_equivariant,
    assert_layer_equivariant,
    random_versors,
    versor_parity,
)

LGATR_STYLE = {
    "attention": {"qkv_norm": True, "head_scale": True, "qkv_bias": False},
    "cross_attention": {"qkv_norm": True, "multi_query": True, "qkv_bias": False},
    "mlp": {"bilinear_norm": True, "activation": "silu"},
    "norm": NormConfig.lgatr(),
}


def _net(alg, **options) -> ConditionalGATr:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    net = ConditionalGATr(
        alg,
        in_mv_channels=2,
        condition_mv_channels=3,
        out_mv_channels=2,
        hidden_mv_channels=6,
        in_s_channels=2,
        condition_s_channels=3,
        out_s_channels=2,
        hidden_s_channels=8,
        num_blocks=2,
        num_heads=2,
        **options,
    ).double()
    # randomise learnt gains and head scales so that they are tested, not left at 1
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "head_scale" in name or name.endswith("norm_attn.weight") or "scalar_norm" in name:
                p.add_(0.3 * torch.randn_like(p))
    return net.eval()


def _inputs(alg, batch: int = 4, items: int = 5, cond_items: int = 4, seed: int = 0):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    mv = torch.randn(batch, items, 2, alg.dim, generator=g, dtype=torch.float64)
    s = torch.randn(batch, items, 2, generator=g, dtype=torch.float64)
    c = torch.randn(batch, cond_items, 3, alg.dim, generator=g, dtype=torch.float64)
    cs = torch.randn(batch, cond_items, 3, generator=g, dtype=torch.float64)
    return mv, s, c, cs


@pytest.mark.parametrize("style", ["gatr", "lgatr"])
@pytest.mark.parametrize("name", list(ALGEBRAS))
def test_conditional_gatr_equivariant(name: str, style: str) -> None:
    alg = ALGEBRAS[name]
    net = _net(alg, **(LGATR_STYLE if style == "lgatr" else {}))
    mv, s, c, cs = _inputs(alg)
    w = random_versors(alg, 4, seed=1)
    # the condition c transforms with the inputs; its scalars cs are invariant
    specs = {"in_specs": ("mv", "mv", "scalar", "scalar"), "out_specs": ("mv", "scalar")}
    assert_equivariant(net, alg, (mv, c, s, cs), **specs, versors=w, batched=True, atol=1e-8, rtol=1e-8)


def test_conditional_gatr_permutations() -> None:
    net = _net(PGA3, **LGATR_STYLE)
    mv, s, c, cs = _inputs(PGA3, items=6, cond_items=5)
    out = net(mv, c, s, cs)
    perm, cperm = torch.randperm(6), torch.randperm(5)
    out_p = net(mv[:, perm], c[:, cperm], s[:, perm], cs[:, cperm])
    torch.testing.assert_close(out_p[0], out[0][:, perm], atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(out_p[1], out[1][:, perm], atol=1e-10, rtol=1e-10)


def test_conditional_gatr_uses_the_condition_and_masks() -> None:
    net = _net(VGA3)
    mv, s, c, cs = _inputs(VGA3)
    out = net(mv, c, s, cs)[0]
    assert (net(mv, c + 1.0, s, cs)[0] - out).abs().max() > 1e-3
    # masking out the last condition item is the same as leaving it out
    mask = torch.ones(5, 4, dtype=torch.bool)
    mask[:, -1] = False
    torch.testing.assert_close(
        net(mv, c, s, cs, cross_attn_mask=mask)[0], net(mv, c[:, :3], s, cs[:, :3])[0], atol=1e-10, rtol=1e-10
    )


def test_spin_group_is_equivariant_under_even_versors_only() -> None:
    """``group="spin"`` mixes the pseudoscalar like a scalar: Spin- but not Pin-equivariant (L-GATr's)."""
    net = _net(STA, group="spin", **LGATR_STYLE)
    mv, s, c, cs = _inputs(STA, batch=8)
    w = random_versors(STA, 8, seed=2)
    odd = versor_parity(STA, w).bool()
    wb = w[:, None, None, :]
    out = net(mv, c, s, cs)[0]
    out_t = net(STA.sandwich(wb, mv), STA.sandwich(wb, c), s, cs)[0]
    err = (out_t - STA.sandwich(wb, out)).abs().amax(dim=(1, 2, 3))
    assert (err[~odd] < 1e-8).all() and (err[odd] > 1e-4).all()
    assert net.linear_in.weight.shape[-1] == 10  # L-GATr's subgroup basis


@pytest.mark.parametrize("name", ["PGA3", "STA", "Cl(2,2,1)"])
def test_lgatr_options_keep_gatr_blocks_equivariant(name: str) -> None:
    alg = ALGEBRAS[name]
    torch.manual_seed(0)
    block = GATrBlock(
        alg,
        4,
        3,
        {"num_heads": 2, "qkv_norm": True, "head_scale": True, "multi_query": True, "qkv_bias": False},
        {"bilinear_norm": True, "num_layers": 1, "activation": "tanh"},
        norm=NormConfig.lgatr(),
    ).double()
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.2 * torch.randn_like(p))
    mv, s = torch.randn(4, 5, 4, alg.dim, dtype=torch.float64), torch.randn(4, 5, 3, dtype=torch.float64)
    w = random_versors(alg, 4, seed=3)
    assert_layer_equivariant(block, alg, mv, s, versors=w, batched=True, atol=1e-8, rtol=1e-8)


def test_layer_norm_clamp_and_grade_gains_written_out() -> None:
    """L-GATr's norm: x / sqrt(max(mean_c sum_k |<x_c,x_c>_k|, eps)), times a gain per channel and grade."""
    torch.manual_seed(0)
    x = torch.randn(3, 4, 16, dtype=torch.float64)
    small = 1e-3 * x
    for inp in (x, small):
        q = grade_invariants(STA, inp).sum(-1).mean(-1, keepdim=True)
        expected = inp / torch.sqrt(torch.clamp(q, min=0.01))[..., None]
        got = equi_layer_norm(STA, inp, 0.01, eps_mode="clamp")
        torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-12)
    norm = EquiLayerNorm(
        STA, 2, 0.01, mv_channels=4, elementwise_affine=True, affine="grade", eps_mode="clamp"
    ).double()
    with torch.no_grad():
        norm.weight.copy_(torch.randn(4, 5, dtype=torch.float64))
    out = norm(x, torch.randn(3, 2, dtype=torch.float64))[0]
    gains = norm.weight[:, torch.tensor(STA.grades)]
    torch.testing.assert_close(out, equi_layer_norm(STA, x, 0.01, eps_mode="clamp") * gains)
    null = torch.zeros(2, 3, 16)
    null[..., PGA3.index("e0")] = 5.0
    assert torch.isfinite(equi_layer_norm(PGA3, null, 0.01, eps_mode="clamp")).all()


def test_head_scale_and_qkv_norm_written_out() -> None:
    """Head scale multiplies each head's output; the qkv norm normalises each head's channels."""
    torch.manual_seed(0)
    attn = SelfAttention(VGA3, 4, 0, {"num_heads": 2, "head_scale": True, "qkv_norm": True}).double()
    plain = SelfAttention(VGA3, 4, 0, {"num_heads": 2, "qkv_norm": True}).double()
    plain.load_state_dict({k: v for k, v in attn.state_dict().items() if k != "head_scale"})
    mv = torch.randn(2, 6, 4, 8, dtype=torch.float64)
    with torch.no_grad():
        attn.head_scale.copy_(torch.tensor([2.0, -0.5]))
        # the same function with the head scale folded into the output projection's input channels
        plain.out_proj.weight[:, : attn.hm] *= 2.0
        plain.out_proj.weight[:, attn.hm :] *= -0.5
    torch.testing.assert_close(attn(mv)[0], plain(mv)[0], atol=1e-12, rtol=1e-12)
    # qkv norm: scaling the input does not change the attention weights or the (normalised) values
    torch.testing.assert_close(plain(mv)[0], plain(3.0 * mv)[0], atol=1e-4, rtol=1e-4)


def test_one_layer_mlp_and_bilinear_norm() -> None:
    torch.manual_seed(0)
    mlp = GeoMLP(STA, 3, 2, {"num_layers": 1, "bilinear_norm": True}, group="spin", norm=NormConfig.lgatr())
    assert len(mlp.linears) == 0 and mlp.bilinear.linear_out.out_channels == 3
    mv, s = torch.randn(5, 3, 16), torch.randn(5, 2)
    out, out_s = mlp(mv, s)
    raw, raw_s = mlp.bilinear(mv, s)
    torch.testing.assert_close(out, equi_layer_norm(STA, raw, 0.01, eps_mode="clamp"))
    torch.testing.assert_close(out_s, torch.nn.functional.layer_norm(raw_s, (2,), eps=1e-5))


def test_cross_attention_context_without_scalars() -> None:
    """Queries with scalar channels may attend to a context without them (key scalars read from its mv)."""
    torch.manual_seed(0)
    layer = CrossAttention(PGA3, 3, 2, 4, 0, {"num_heads": 2}).double()
    mv, s = torch.randn(4, 5, 3, 16, dtype=torch.float64), torch.randn(4, 5, 4, dtype=torch.float64)
    c = torch.randn(4, 6, 2, 16, dtype=torch.float64)
    w = random_versors(PGA3, 4, seed=5)
    specs = {"in_specs": ("mv", "mv", "scalar"), "out_specs": ("mv", "scalar")}  # the context c moves too
    assert_equivariant(layer, PGA3, (mv, c, s), **specs, versors=w, batched=True, atol=1e-9, rtol=1e-9)
    with pytest.raises(ValueError, match="scalar queries"):
        CrossAttention(PGA3, 3, 2, 0, 4, {"num_heads": 2, "head_s_channels": 4})


def test_errors() -> None:
    net = _net(VGA3)
    mv, s, c, cs = _inputs(VGA3)
    with pytest.raises(ValueError, match="condition"):
        net(mv, c[..., :2, :], s, cs)
    with pytest.raises(ValueError, match="same batch dims"):
        net(mv, c[:2], s, cs[:2])
    with pytest.raises(ValueError, match="either as eps"):
        GATrBlock(VGA3, 2, 0, eps=1e-3, norm={"eps": 1e-2})
    with pytest.raises(ValueError, match="eps_mode"):
        NormConfig(eps_mode="max")
    with pytest.raises(ValueError, match="scalar_affine"):
        NormConfig(scalar_affine="bias")
    with pytest.raises(ValueError, match="unknown option"):
        NormConfig.cast({"epsilon": 0.1})
    with pytest.raises(ValueError, match="head_scale must be True or False"):
        ConditionalGATr(
            VGA3,
            in_mv_channels=1,
            condition_mv_channels=1,
            out_mv_channels=1,
            hidden_mv_channels=2,
            num_blocks=1,
            attention={"head_scale": 1},
        )
    with pytest.raises(ValueError, match="affine must be"):
        EquiLayerNorm(VGA3, affine="blade")


def test_fresh_conditional_gatr_compiles_fullgraph() -> None:
    from gatorch.functional import KernelPolicy, kernel_policy

    torch._dynamo.reset()
    net = _net(PGA3, **LGATR_STYLE)
    mv, s, c, cs = _inputs(PGA3)
    mv.requires_grad_(True)
    with kernel_policy(KernelPolicy(compiled="opaque")):
        explanation = torch._dynamo.explain(net)(mv, c, s, cs)
        assert explanation.graph_break_count == 0 and explanation.graph_count == 1
        torch._dynamo.reset()
        compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
        out_c = compiled(mv, c, s, cs)
    out_e = net(mv, c, s, cs)
    torch.testing.assert_close(out_c, out_e, atol=1e-10, rtol=1e-10)
    (g_c,) = torch.autograd.grad(out_c[0].square().sum(), mv)
    (g_e,) = torch.autograd.grad(out_e[0].square().sum(), mv)
    torch.testing.assert_close(g_c, g_e, atol=1e-9, rtol=1e-9)
