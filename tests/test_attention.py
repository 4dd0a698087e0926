"""Geometric attention: equivariance, invariant logits, distance features, masks, multi-query, errors."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from gatorch import PGA3, STA, VGA3, Algebra, interface
from gatorch.functional.attention import (
    block_diagonal_mask,
    distance_components,
    feature_layout,
    geometric_attention,
    query_key_features,
)
from gatorch.layers import AttentionConfig, CrossAttention, SelfAttention
from gatorch.testing import ALGEBRAS, assert_layer_equivariant, random_versors

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
    assert_layer_equivariant(layer, alg, mv, s, versors=random_versors(alg, 4, seed=1), batched=True)


def test_distance_features_equivariant_under_translations_and_reflections() -> None:
    torch.manual_seed(0)
    layer = SelfAttention(PGA3, 3, 0, {"num_heads": 2, "distance_features": True}).double()
    mv = torch.randn(6, 5, 3, 16, dtype=torch.float64)
    assert_layer_equivariant(layer, PGA3, mv, None, versors=random_versors(PGA3, 6, seed=3), batched=True)


@pytest.mark.parametrize("name", ["PGA3", "STA", "Cl(2,2,1)"])
def test_cross_attention_equivariant(name: str) -> None:
    alg = ALGEBRAS[name]
    torch.manual_seed(0)
    layer = CrossAttention(alg, 3, 2, 2, 5, {"num_heads": 2}).double()
    mv = torch.randn(4, 6, 3, alg.dim, dtype=torch.float64)
    ctx = torch.randn(4, 7, 2, alg.dim, dtype=torch.float64)
    s, cs = torch.randn(4, 6, 2, dtype=torch.float64), torch.randn(4, 7, 5, dtype=torch.float64)
    w = random_versors(alg, 4, seed=2)
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
    """Gradients through the packed, padded query/key/value features (one-copy concatenation) are exact.

    The fused SDPA kernels have no double backward (a torch limitation), so the second-order
    check runs on the math backend, which is what a user who needs ``create_graph=True``
    through the attention forces.
    """
    layer = SelfAttention(PGA3, 2, 2, {"num_heads": 2, "distance_features": distance}).double()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 2, PGA3.dim, generator=g, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: layer(a, b), (x, s))
    with sdpa_kernel([SDPBackend.MATH]):
        assert torch.autograd.gradgradcheck(lambda a, b: layer(a, b), (x, s), fast_mode=True)


# -- fused SDPA kernels, explicit reference, compile ---------------------------------------------

FUSED_CASES = {
    "default": ({}, False),
    "distance": ({"distance_features": True}, False),
    "multi_query": ({"multi_query": True, "distance_features": True}, False),
    "causal": ({"distance_features": True}, True),
}


def _forward_backward(
    layer: SelfAttention, mv: torch.Tensor, s: torch.Tensor, is_causal: bool
) -> tuple[torch.Tensor, ...]:
    """Outputs and the gradients of the inputs and of every weight, for one fixed cotangent."""
    mv, s = mv.detach().requires_grad_(), s.detach().requires_grad_()
    out_mv, out_s = layer(mv, s, is_causal=is_causal)
    g = torch.Generator().manual_seed(5)
    loss = (out_mv * torch.randn(out_mv.shape, generator=g, dtype=out_mv.dtype)).sum() + (
        out_s * torch.randn(out_s.shape, generator=g, dtype=out_s.dtype)
    ).sum()
    grads = torch.autograd.grad(loss, [mv, s, *layer.parameters()])
    return (out_mv.detach(), out_s.detach(), *grads)


@pytest.mark.parametrize("case", list(FUSED_CASES))
def test_runs_on_flash_kernel_and_matches(case: str) -> None:
    """Forcing the (CPU) flash kernel works for every option it can express, forward and backward.

    The q/k features (width d) and the values (``v_channels * 16 + v_s_channels``) differ in
    size; padded to one head size they are accepted, and the result equals the math backend's.
    """
    cfg, is_causal = FUSED_CASES[case]
    torch.manual_seed(0)
    layer = SelfAttention(PGA3, 6, 5, {"num_heads": 3, **cfg}).double()
    mv, s = torch.randn(2, 11, 6, 16, dtype=torch.float64), torch.randn(2, 11, 5, dtype=torch.float64)
    default = _forward_backward(layer, mv, s, is_causal)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        flash = _forward_backward(layer, mv, s, is_causal)
    with sdpa_kernel([SDPBackend.MATH]):
        math_ = _forward_backward(layer, mv, s, is_causal)
    for a, b, c in zip(flash, default, math_, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)
        torch.testing.assert_close(a, c, atol=1e-12, rtol=1e-12)


def test_flash_kernel_float32_and_masks() -> None:
    """float32 (the GATr case) and a dense boolean mask also run on the CPU flash kernel."""
    torch.manual_seed(0)
    layer = SelfAttention(PGA3, 16, 32, {"num_heads": 4, "distance_features": True})
    mv, s = torch.randn(1, 40, 16, 16), torch.randn(1, 40, 32)
    mask = block_diagonal_mask([15, 25])
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        out, out_s = layer(mv, s, attn_mask=mask)
        (out.sum() + out_s.sum()).backward()
    with sdpa_kernel([SDPBackend.MATH]):
        ref, ref_s = layer(mv, s, attn_mask=mask)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_s, ref_s, atol=1e-5, rtol=1e-5)


def _reference_attention(
    alg: Algebra,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    q_s: torch.Tensor,
    k_s: torch.Tensor,
    v_s: torch.Tensor,
    distance: bool,
    mask: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q . k * scale) @ v, written out: (B, H, N, C, dim) queries, keys/values with H or 1 heads."""
    heads = q.shape[1]
    k, v = k.expand(-1, heads, -1, -1, -1), v.expand(-1, heads, -1, -1, -1)  # multi-query: shared
    k_s, v_s = k_s.expand(-1, heads, -1, -1), v_s.expand(-1, heads, -1, -1)
    inner = alg.constant("inner", None, torch.float64)  # <~e_A e_A>_0 per blade
    logits = torch.einsum("bhicx,bhjcx,x->bhij", q, k, inner) + torch.einsum("bhis,bhjs->bhij", q_s, k_s)
    d = q.shape[-2] * int((inner != 0).sum()) + q_s.shape[-1]
    if distance:
        w = alg.index("e123")
        a = [alg.index(n) for n in ("e012", "e013", "e023")]
        qw, qa = q[..., w], q[..., a]  # (B, H, N, C), (B, H, N, C, 3)
        kw, ka = k[..., w], k[..., a]
        diff = kw[:, :, None, :, :, None] * qa[:, :, :, None] - qw[:, :, :, None, :, None] * ka[:, :, None]
        logits = logits - diff.square().sum((-1, -2))
        d += q.shape[-2] * 5
    logits = logits / d**0.5
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    weights = logits.softmax(-1)
    return torch.einsum("bhij,bhjcx->bhicx", weights, v), torch.einsum("bhij,bhjs->bhis", weights, v_s)


@pytest.mark.parametrize("multi_query", [False, True], ids=["mha", "mqa"])
@pytest.mark.parametrize("mode", ["plain", "distance", "causal", "mask_and_causal"])
def test_equals_explicit_reference(mode: str, multi_query: bool) -> None:
    """Outputs and gradients equal softmax(q.k / sqrt(d)) v written out, in float64 to 1e-12."""
    g = torch.Generator().manual_seed(0)
    B, H, N, C, S = 2, 3, 9, 2, 4
    kv_heads = 1 if multi_query else H

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)

    q, k, v = rand(B, H, N, C, 16), rand(B, kv_heads, N, C, 16), rand(B, kv_heads, N, 3, 16)
    q_s, k_s, v_s = rand(B, H, N, S), rand(B, kv_heads, N, S), rand(B, kv_heads, N, 5)
    inputs = (q, k, v, q_s, k_s, v_s)
    distance = mode != "plain"
    is_causal = "causal" in mode
    user_mask = torch.rand(B, 1, N, N, generator=g) > 0.3 if mode == "mask_and_causal" else None
    if user_mask is not None:
        user_mask[..., 0] = True  # every query keeps a key
    mask = user_mask
    if is_causal:
        tril = torch.ones(N, N, dtype=torch.bool).tril()
        mask = tril if mask is None else mask & tril
    out = geometric_attention(
        PGA3, *inputs[:3], *inputs[3:], attn_mask=user_mask, is_causal=is_causal, distance=distance
    )
    ref = _reference_attention(PGA3, *inputs, distance, mask)
    cot = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in ref]
    grads = torch.autograd.grad(out, inputs, cot)
    ref_grads = torch.autograd.grad(ref, inputs, cot)
    for a, b in zip((*out, *grads), (*ref, *ref_grads), strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)


def test_additive_mask_with_causal_equals_boolean() -> None:
    torch.manual_seed(0)
    layer = CrossAttention(PGA3, 2, 3, 2, 2, {"num_heads": 2}).double()
    mv, ctx = torch.randn(2, 5, 2, 16, dtype=torch.float64), torch.randn(2, 7, 3, 16, dtype=torch.float64)
    s, cs = torch.randn(2, 5, 2, dtype=torch.float64), torch.randn(2, 7, 2, dtype=torch.float64)
    allowed = torch.rand(2, 5, 7) > 0.4
    allowed[..., 0] = True
    additive = torch.zeros(2, 5, 7, dtype=torch.float64).masked_fill(~allowed, float("-inf"))
    both = allowed & torch.ones(5, 7, dtype=torch.bool).tril()
    out_b, out_bs = layer(mv, ctx, s, cs, attn_mask=allowed, is_causal=True)
    out_a, out_as_ = layer(mv, ctx, s, cs, attn_mask=additive, is_causal=True)
    out_r, out_rs = layer(mv, ctx, s, cs, attn_mask=both)
    torch.testing.assert_close(out_b, out_r, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(out_a, out_r, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(out_bs, out_rs, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(out_as_, out_rs, atol=1e-12, rtol=1e-12)
    # causal: query 0 sees context item 0 only, whatever the others hold
    changed = ctx.clone()
    changed[:, 1:] = torch.randn(2, 6, 3, 16, dtype=torch.float64)
    out_c, _ = layer(mv, changed, s, cs, is_causal=True)
    out_0, _ = layer(mv, ctx, s, cs, is_causal=True)
    torch.testing.assert_close(out_c[:, 0], out_0[:, 0], atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("name", list(ALGEBRAS))
def test_feature_layout_matches_algebra_tables(name: str) -> None:
    """The layout, derived from the metric alone, agrees with the algebra's own tables."""
    alg = ALGEBRAS[name]
    layout = feature_layout(alg)
    inner = alg.constant("inner", None, torch.float64)
    assert layout.dim == alg.dim
    assert list(layout.inner_index) == torch.nonzero(inner).flatten().tolist()
    assert layout.signed == bool((inner < 0).any())
    _, q, r = alg.signature
    if (q, r) == (0, 1):
        bit = 1 << alg.metric.index(0)
        sl = alg.grade_slice(alg.n - 1)
        bm = alg.bitmaps
        assert layout.distance == (
            next(i for i in range(sl.start, sl.stop) if not bm[i] & bit),
            tuple(i for i in range(sl.start, sl.stop) if bm[i] & bit),
        )
        assert distance_components(alg) == (layout.distance[0], list(layout.distance[1]))
    else:
        assert layout.distance is None


def test_dropout_on_attention_weights_runs() -> None:
    """Dropout (no fused CPU kernel) falls back to the math backend and still runs."""
    torch.manual_seed(0)
    layer = SelfAttention(PGA3, 4, 2, {"num_heads": 2, "dropout": 0.2}).train()
    out, out_s = layer(torch.randn(2, 6, 4, 16), torch.randn(2, 6, 2))
    (out.sum() + out_s.sum()).backward()
    assert torch.isfinite(out).all() and torch.isfinite(out_s).all()


def test_fresh_layers_compile_fullgraph() -> None:
    """Freshly built self- and cross-attention compile without graph breaks, forward and backward."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    self_attn = SelfAttention(PGA3, 4, 3, {"num_heads": 2, "distance_features": True}).double()
    cross = CrossAttention(STA, 3, 2, 2, 5, {"num_heads": 2, "multi_query": True}).double()
    mv, s = torch.randn(2, 7, 4, 16, dtype=torch.float64), torch.randn(2, 7, 3, dtype=torch.float64)
    x, xs = torch.randn(2, 6, 3, 16, dtype=torch.float64), torch.randn(2, 6, 2, dtype=torch.float64)
    c, cs = torch.randn(2, 9, 2, 16, dtype=torch.float64), torch.randn(2, 9, 5, dtype=torch.float64)
    cases = [
        (self_attn, (mv, s), {}),
        (self_attn, (mv, s), {"is_causal": True}),
        (cross, (x, c, xs, cs), {"is_causal": True}),
    ]
    for layer, args, kwargs in cases:
        compiled = torch.compile(layer, fullgraph=True)
        outs = []
        for fn in (layer, compiled):
            out_mv, out_s = fn(*args, **kwargs)
            loss = out_mv.square().sum() + out_s.square().sum()
            grads = torch.autograd.grad(loss, list(layer.parameters()))
            outs.append((out_mv, out_s, *grads))
        for a, b in zip(*outs, strict=True):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)
