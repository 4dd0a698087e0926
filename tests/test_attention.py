"""Geometric attention: equivariance, invariant logits, distance features, masks, multi-query, errors."""

from __future__ import annotations

import pytest
import torch

from gatorch import PGA3, STA, VGA3, interface
from gatorch.functional.attention import block_diagonal_mask, geometric_attention, query_key_features
from gatorch.layers import AttentionConfig, CrossAttention, SelfAttention
from tests.equivariance import ALGEBRAS, check_layer_equivariant, versors

CONFIGS = {
    "plain": {"num_heads": 2},
    "multi_query": {"num_heads": 3, "multi_query": True, "head_mv_channels": 2},
}


@pytest.mark.parametrize("cfg", list(CONFIGS), ids=list(CONFIGS))
@pytest.mark.parametrize("name", list(ALGEBRAS))
def test_self_attention_equivariant(name: str, cfg: str) -> None:
    alg = ALGEBRAS[name]
    torch.manual_seed(0)
    layer = SelfAttention(alg, 4, 3, CONFIGS[cfg]).double()
    mv = torch.randn(4, 2, 6, 4, alg.dim, dtype=torch.float64)  # (B, batch, items, channels, dim)
    s = torch.randn(4, 2, 6, 3, dtype=torch.float64)
    check_layer_equivariant(alg, layer, mv, s, versors(alg, 4, seed=1))


def test_distance_features_equivariant_under_translations_and_reflections() -> None:
    torch.manual_seed(0)
    layer = SelfAttention(PGA3, 3, 0, {"num_heads": 2, "distance_features": True}).double()
    mv = torch.randn(6, 5, 3, 16, dtype=torch.float64)
    check_layer_equivariant(PGA3, layer, mv, None, versors(PGA3, 6, seed=3))


@pytest.mark.parametrize("name", ["PGA3", "STA", "Cl(2,2,1)"])
def test_cross_attention_equivariant(name: str) -> None:
    alg = ALGEBRAS[name]
    torch.manual_seed(0)
    layer = CrossAttention(alg, 3, 2, 2, 5, {"num_heads": 2}).double()
    mv = torch.randn(4, 6, 3, alg.dim, dtype=torch.float64)
    ctx = torch.randn(4, 7, 2, alg.dim, dtype=torch.float64)
    s, cs = torch.randn(4, 6, 2, dtype=torch.float64), torch.randn(4, 7, 5, dtype=torch.float64)
    w = versors(alg, 4, seed=2)
    wb = w[:, None, None]
    out, out_s = layer(mv, ctx, s, cs)
    out_t, out_s_t = layer(alg.sandwich(wb, mv), alg.sandwich(wb, ctx), s, cs)
    torch.testing.assert_close(out_t, alg.sandwich(wb, out), atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(out_s_t, out_s, atol=1e-9, rtol=1e-9)
    assert out.shape == (4, 6, 3, alg.dim) and out_s.shape == (4, 6, 2)


def test_logit_is_inner_product_plus_scalars() -> None:
    """The features' dot product is sum_c <q_c, k_c> + q_s . k_s, against the algebra's own inner product."""
    for alg in (STA, PGA3):
        q, k = (
            torch.randn(5, 3, alg.dim, dtype=torch.float64),
            torch.randn(7, 3, alg.dim, dtype=torch.float64),
        )
        qs, ks = torch.randn(5, 2, dtype=torch.float64), torch.randn(7, 2, dtype=torch.float64)
        qf, kf = query_key_features(alg, q, k, qs, ks)
        expected = alg.inner_product(q[:, None], k[None]).sum(-1) + qs @ ks.T
        torch.testing.assert_close(qf @ kf.T, expected, atol=1e-12, rtol=1e-12)


def test_distance_logit_is_minus_squared_distance() -> None:
    torch.manual_seed(0)
    pq, pk = torch.randn(5, 3, dtype=torch.float64), torch.randn(7, 3, dtype=torch.float64)
    q = interface.pga.embed_point(pq)[:, None]  # (items, 1 channel, 16)
    k = interface.pga.embed_point(pk)[:, None]
    qf, kf = query_key_features(PGA3, q, k, distance=True)
    qf0, kf0 = query_key_features(PGA3, q, k, distance=False)
    dist_term = qf @ kf.T - qf0 @ kf0.T
    torch.testing.assert_close(dist_term, -(torch.cdist(pq, pk) ** 2), atol=1e-10, rtol=1e-10)


def test_attends_to_nearest_point() -> None:
    """With distance features, the attention weight falls with Euclidean distance."""
    torch.manual_seed(1)
    keys = torch.randn(9, 3, dtype=torch.float64) * 2
    query = torch.randn(4, 3, dtype=torch.float64) * 2
    q = interface.pga.embed_point(query)[None, None, :, None]  # (B=1, heads=1, items, channels=1, 16)
    k = interface.pga.embed_point(keys)[None, None, :, None]
    values = torch.eye(9, dtype=torch.float64)[None, None]  # value scalar j = indicator of key j
    zero = torch.zeros(1, 1, 9, 0, 16, dtype=torch.float64)
    _, weights = geometric_attention(PGA3, q, k, zero, v_s=values, distance=True)
    weights = weights[0, 0]  # (queries, keys)
    d = torch.cdist(query, keys)
    assert torch.equal(weights.argmax(-1), d.argmin(-1))
    order = d.argsort(-1)
    w_sorted = torch.gather(weights, 1, order)
    assert (w_sorted[:, :-1] >= w_sorted[:, 1:]).all()


def test_permutation_equivariant() -> None:
    torch.manual_seed(0)
    layer = SelfAttention(STA, 4, 3, {"num_heads": 2}).double()
    mv, s = torch.randn(2, 8, 4, 16, dtype=torch.float64), torch.randn(2, 8, 3, dtype=torch.float64)
    perm = torch.randperm(8)
    out, out_s = layer(mv, s)
    out_p, out_s_p = layer(mv[:, perm], s[:, perm])
    torch.testing.assert_close(out_p, out[:, perm])
    torch.testing.assert_close(out_s_p, out_s[:, perm])


@pytest.mark.parametrize("additive", [False, True])
def test_block_diagonal_mask_equals_separate_runs(additive: bool) -> None:
    torch.manual_seed(0)
    layer = SelfAttention(PGA3, 3, 2, {"num_heads": 2, "distance_features": True}).double()
    sizes = [3, 5, 2]
    mv, s = torch.randn(10, 3, 16, dtype=torch.float64), torch.randn(10, 2, dtype=torch.float64)
    mask = block_diagonal_mask(sizes)
    if additive:
        mask = torch.zeros(10, 10, dtype=torch.float64).masked_fill(~mask, float("-inf"))
    out, out_s = layer(mv[None], s[None], attn_mask=mask)
    start = 0
    for n in sizes:
        sep, sep_s = layer(mv[None, start : start + n], s[None, start : start + n])
        torch.testing.assert_close(out[0, start : start + n], sep[0], atol=1e-12, rtol=1e-12)
        torch.testing.assert_close(out_s[0, start : start + n], sep_s[0], atol=1e-12, rtol=1e-12)
        start += n


def test_masked_keys_have_no_influence() -> None:
    torch.manual_seed(0)
    layer = SelfAttention(VGA3, 2, 0, {"num_heads": 2}).double()
    mv = torch.randn(3, 6, 2, 8, dtype=torch.float64)
    mask = torch.ones(3, 6, 6, dtype=torch.bool)
    mask[:, :, 4:] = False  # nobody may look at items 4 and 5
    mask[1, :, 0] = False  # batch element 1 may not look at item 0 either
    out, _ = layer(mv, attn_mask=mask)
    changed = mv.clone()
    changed[:, 4:] = torch.randn(3, 2, 2, 8, dtype=torch.float64)
    changed[1, 0] = torch.randn(2, 8, dtype=torch.float64)
    out2, _ = layer(changed, attn_mask=mask)
    keep = [0, 1, 2, 3]
    torch.testing.assert_close(out2[0, keep], out[0, keep])
    torch.testing.assert_close(out2[1, 1:4], out[1, 1:4])  # item 0 of batch 1 changed itself


def test_bf16_autocast_finite_logits_in_float32() -> None:
    torch.manual_seed(0)
    layer = SelfAttention(PGA3, 4, 4, {"num_heads": 2, "distance_features": True})
    mv, s = torch.randn(2, 16, 4, 16) * 30, torch.randn(2, 16, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, out_s = layer(mv, s)
    assert torch.isfinite(out).all() and torch.isfinite(out_s).all()


def test_config_cast_and_errors() -> None:
    assert AttentionConfig.cast({"num_heads": 2}) == AttentionConfig(num_heads=2)
    assert AttentionConfig.cast(None) == AttentionConfig()
    with pytest.raises(ValueError, match="unknown option"):
        AttentionConfig.cast({"heads": 2})
    with pytest.raises(ValueError, match="num_heads"):
        AttentionConfig(num_heads=0)
    with pytest.raises(ValueError, match="dropout"):
        AttentionConfig(dropout=1.0)
    with pytest.raises(TypeError, match="mapping"):
        AttentionConfig.cast(3)  # type: ignore[arg-type]


def test_bad_input() -> None:
    layer = SelfAttention(PGA3, 4, 2)
    with pytest.raises(ValueError, match="last dimension 16"):
        layer(torch.randn(2, 5, 4, 8), torch.randn(2, 5, 2))
    with pytest.raises(ValueError, match=r"\(\.\.\., 4, 16\)"):
        layer(torch.randn(2, 5, 3, 16), torch.randn(2, 5, 2))
    with pytest.raises(ValueError, match="scalars"):
        layer(torch.randn(2, 5, 4, 16), torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="attn_mask"):
        layer(torch.randn(2, 5, 4, 16), torch.randn(2, 5, 2), attn_mask=torch.ones(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="Cl\\(n, 0, 1\\)"):
        SelfAttention(STA, 4, 0, {"distance_features": True})
    with pytest.raises(TypeError, match=r"gatorch\.Algebra"):
        SelfAttention("PGA3", 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="last dimension 16"):
        CrossAttention(PGA3, 2, 2)(torch.randn(1, 3, 2, 16), torch.randn(1, 3, 2, 8))
    with pytest.raises(ValueError, match="block_diagonal_mask"):
        block_diagonal_mask([2, 0])


@pytest.mark.parametrize("distance", [False, True])
def test_attention_gradcheck(distance: bool) -> None:
    """Gradients through the packed query/key/value features (one-copy concatenation) are exact."""
    layer = SelfAttention(PGA3, 2, 2, {"num_heads": 2, "distance_features": distance}).double()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 2, PGA3.dim, generator=g, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: layer(a, b), (x, s))
    assert torch.autograd.gradgradcheck(lambda a, b: layer(a, b), (x, s), fast_mode=True)
