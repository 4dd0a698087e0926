"""Packed and nested variable-size sets through the slim nets and layers, and the plain
``packed_scaled_dot_product_attention`` underneath.

A packed batch (``offsets``) or a nested jagged batch must give what each set gives alone,
outputs and input gradients, in float64; a fresh ``fullgraph=True`` compile of the packed path
must match eager mode.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from gatorch import PGA3, STA, VGA3, Algebra
from gatorch.functional.attention import offsets_from_sizes, packed_scaled_dot_product_attention
from gatorch.layers.slim import ConditionalSlimBlock, SlimCrossAttention, SlimSelfAttention
from gatorch.nets.slim import ConditionalGATrSlim, GATrSlim

DT = torch.float64
SIZES = [3, 0, 5, 1, 7]  # an empty set and a size-1 set

pytestmark = pytest.mark.filterwarnings(
    "ignore:flex_attention called without torch.compile",
    "ignore:.*nested tensors is in prototype stage",
    "ignore:is_fx_tracing will return true",
)


def _close(actual: Tensor, expected: Tensor, tol: float = 1e-12, what: str = "") -> None:
    torch.testing.assert_close(
        actual, expected, atol=tol, rtol=tol, msg=(lambda m: f"{what}: {m}") if what else None
    )


def _sets(sizes: Sequence[int], *tail: int, seed: int) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, *tail, generator=g, dtype=DT) for n in sizes]


def _slim(alg: Algebra, **options: object) -> GATrSlim:
    torch.manual_seed(0)
    kwargs: dict = {
        "in_v_channels": 2,
        "out_v_channels": 1,
        "hidden_v_channels": 4,
        "in_s_channels": 3,
        "out_s_channels": 2,
        "hidden_s_channels": 6,
        "num_blocks": 2,
        "num_heads": 2,
    }
    kwargs.update(options)
    return GATrSlim(alg, **kwargs).double()


def _conditional(**options: object) -> ConditionalGATrSlim:
    torch.manual_seed(1)
    kwargs: dict = {
        "in_v_channels": 2,
        "v_channels_cond": 1,
        "out_v_channels": 1,
        "hidden_v_channels": 4,
        "in_s_channels": 3,
        "s_channels_cond": 2,
        "out_s_channels": 2,
        "hidden_s_channels": 4,
        "num_blocks": 2,
        "num_heads": 2,
    }
    kwargs.update(options)
    return ConditionalGATrSlim(VGA3, **kwargs).double()


# --------------------------------------------------------------------------------------
# GATrSlim and ConditionalGATrSlim
# --------------------------------------------------------------------------------------

NETS: dict[str, tuple[Algebra, dict[str, object], bool, bool]] = {
    "sta": (STA, {}, False, False),
    "pga3": (PGA3, {"num_layers_mlp": 3, "attn_ratio": 2}, False, False),
    "sta-causal": (STA, {"in_s_channels": 0, "scalars": None}, True, False),
    "pga3-train-checkpoint": (PGA3, {"checkpoint_blocks": True}, False, True),
}


@pytest.mark.parametrize("name", list(NETS))
def test_packed_gatr_slim_equals_each_set_alone(name: str) -> None:
    alg, options, causal, train = NETS[name]
    kwargs = dict(options)
    no_scalars = kwargs.pop("scalars", 0) is None
    net = _slim(alg, **kwargs).train(train)
    sets = _sets(SIZES, 2, alg.n, seed=1)
    ss = _sets(SIZES, 3, seed=2)
    v = torch.cat(sets).requires_grad_(True)
    s = None if no_scalars else torch.cat(ss).requires_grad_(True)
    out_v, out_s = net(v, s, is_causal=causal, offsets=offsets_from_sizes(SIZES), max_items=max(SIZES))
    assert out_v.shape == (sum(SIZES), 1, alg.n) and out_s.shape == (sum(SIZES), 2)
    leaves = [v] if s is None else [v, s]
    grads = torch.autograd.grad(out_v.square().sum() + out_s.square().sum(), leaves)
    start = 0
    for x, y in zip(sets, ss, strict=True):
        n = x.shape[0]
        if n:
            xi = x[None].clone().requires_grad_(True)
            yi = None if no_scalars else y[None].clone().requires_grad_(True)
            o_v, o_s = net(xi, yi, is_causal=causal)
            _close(out_v[start : start + n], o_v[0], what=f"vectors of set at {start}")
            _close(out_s[start : start + n], o_s[0], what=f"scalars of set at {start}")
            ref = torch.autograd.grad(
                o_v.square().sum() + o_s.square().sum(), [xi] if yi is None else [xi, yi]
            )
            for got, want in zip(grads, ref, strict=True):
                _close(got[start : start + n], want[0], tol=1e-11, what=f"gradient of set at {start}")
        start += n


def test_nested_gatr_slim_equals_packed() -> None:
    net = _slim(STA).eval()
    sizes = [4, 1, 0, 6]
    sets, ss = _sets(sizes, 2, 4, seed=3), _sets(sizes, 3, seed=4)
    nv = torch.nested.nested_tensor(sets, layout=torch.jagged)
    ns = torch.nested.nested_tensor(ss, layout=torch.jagged)
    out_v, out_s = net(nv, ns, is_causal=True)
    assert out_v.is_nested and out_s.is_nested
    ref_v, ref_s = net(torch.cat(sets), torch.cat(ss), is_causal=True, offsets=offsets_from_sizes(sizes))
    _close(out_v.values(), ref_v, tol=0.0)
    _close(out_s.values(), ref_s, tol=0.0)
    for got, x, y in zip(out_v.unbind(), sets, ss, strict=True):
        assert got.shape == (x.shape[0], 1, 4)
        if x.shape[0]:
            _close(got, net(x, y, is_causal=True)[0])
    # no scalar inputs: nested vectors alone
    net0 = _slim(VGA3, in_s_channels=0)
    sets3 = _sets(sizes, 2, 3, seed=5)
    out0, out0_s = net0(torch.nested.nested_tensor(sets3, layout=torch.jagged))
    ref0, ref0_s = net0(torch.cat(sets3), offsets=offsets_from_sizes(sizes))
    _close(out0.values(), ref0, tol=0.0)
    _close(out0_s.values(), ref0_s, tol=0.0)


def test_packed_conditional_gatr_slim_equals_each_pair_alone() -> None:
    net = _conditional().eval()
    sizes, csizes = [2, 0, 5, 1], [4, 3, 1, 6]  # an empty query set with a non-empty condition
    sets, ss = _sets(sizes, 2, 3, seed=5), _sets(sizes, 3, seed=6)
    cond, cs = _sets(csizes, 1, 3, seed=7), _sets(csizes, 2, seed=8)
    leaves = [torch.cat(t).requires_grad_(True) for t in (sets, cond, ss, cs)]
    out_v, out_s = net(
        *leaves,
        is_causal=True,
        offsets=offsets_from_sizes(sizes),
        condition_offsets=offsets_from_sizes(csizes),
        max_items=max(sizes),
        condition_max_items=max(csizes),
    )
    assert out_v.shape == (sum(sizes), 1, 3) and out_s.shape == (sum(sizes), 2)
    grads = torch.autograd.grad(out_v.square().sum() + out_s.square().sum(), leaves)
    start = cstart = 0
    for x, c, y, z in zip(sets, cond, ss, cs, strict=True):
        n, m = x.shape[0], c.shape[0]
        if n:
            one = [t[None].clone().requires_grad_(True) for t in (x, c, y, z)]
            o_v, o_s = net(*one, is_causal=True)
            _close(out_v[start : start + n], o_v[0])
            _close(out_s[start : start + n], o_s[0])
            ref = torch.autograd.grad(o_v.square().sum() + o_s.square().sum(), one)
            for k, (got, want) in enumerate(zip(grads, ref, strict=True)):
                lo, hi = (start, start + n) if k in (0, 2) else (cstart, cstart + m)
                _close(got[lo:hi], want[0], tol=1e-11, what=f"gradient {k}")
        else:  # a condition set nobody attends to gets no gradient
            for k in (1, 3):
                assert not grads[k][cstart : cstart + m].any()
        start, cstart = start + n, cstart + m
    nested = net(
        *(torch.nested.nested_tensor(t, layout=torch.jagged) for t in (sets, cond, ss, cs)),
        is_causal=True,
    )
    assert nested[0].is_nested and nested[1].is_nested
    _close(nested[0].values(), out_v, tol=0.0)
    _close(nested[1].values(), out_s, tol=0.0)


def test_packed_slim_layers_equal_each_set_alone() -> None:
    """The layers on the hidden (items, n, channels) layout, cross-attention included."""
    torch.manual_seed(2)
    sizes, csizes = [3, 1, 4], [2, 5, 1]
    cross = SlimCrossAttention(VGA3, 4, 2, 6, 3, num_heads=2).double()
    block = ConditionalSlimBlock(VGA3, 4, 2, 6, 3, num_heads=2).double()
    self_attn = SlimSelfAttention(VGA3, 4, 6, num_heads=2).double()
    v, s = torch.cat(_sets(sizes, 3, 4, seed=9)), torch.cat(_sets(sizes, 6, seed=10))
    c, cs = torch.cat(_sets(csizes, 3, 2, seed=11)), torch.cat(_sets(csizes, 3, seed=12))
    off, coff = offsets_from_sizes(sizes), offsets_from_sizes(csizes)
    out_c = cross(v, c, s, cs, offsets=off, context_offsets=coff)
    out_b = block(v, c, s, cs, offsets=off, condition_offsets=coff)
    out_a = self_attn(v, s, offsets=off, max_items=4)
    for i in range(len(sizes)):
        q, k = slice(off[i], off[i + 1]), slice(coff[i], coff[i + 1])
        for got, want in (
            (out_c, cross(v[q], c[k], s[q], cs[k])),
            (out_b, block(v[q], c[k], s[q], cs[k])),
            (out_a, self_attn(v[q], s[q])),
        ):
            _close(got[0][q], want[0])
            _close(got[1][q], want[1])


def test_packed_slim_under_bf16_autocast_stays_finite() -> None:
    net = _slim(STA).float()
    sets, ss = _sets(SIZES, 2, 4, seed=13), _sets(SIZES, 3, seed=14)
    v, s = torch.cat(sets).float(), torch.cat(ss).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_v, out_s = net(v, s, offsets=offsets_from_sizes(SIZES), max_items=7)
    assert out_v.dtype == torch.float32 and torch.isfinite(out_v).all() and torch.isfinite(out_s).all()


def test_packed_slim_errors() -> None:
    net = _slim(STA)
    v, s = torch.randn(6, 2, 4, dtype=DT), torch.randn(6, 3, dtype=DT)
    off = offsets_from_sizes([2, 4])
    mask = torch.ones(6, 6, dtype=torch.bool)
    with pytest.raises(ValueError, match="either attn_mask or offsets"):
        net(v, s, attn_mask=mask, offsets=off)
    with pytest.raises(
        ValueError, match=r"with offsets \(packed sets\) expected vectors of shape \(total_items, 2, 4\)"
    ):
        net(v[None], s[None], offsets=off)
    nv = torch.nested.nested_tensor([v[:2], v[2:]], layout=torch.jagged)
    ns = torch.nested.nested_tensor([s[:2], s[2:]], layout=torch.jagged)
    with pytest.raises(ValueError, match="nested tensors or with offsets, not both"):
        net(nv, ns, offsets=off)
    with pytest.raises(ValueError, match="nested vectors need nested scalars"):
        net(nv, s)
    with pytest.raises(ValueError, match="nested scalars need nested vectors"):
        net(v, ns)
    with pytest.raises(ValueError, match=r"offsets\[-1\] must equal the number of packed items 6"):
        net(v, s, offsets=torch.tensor([0, 2, 5]))
    # layers: hidden layout (items, n, channels)
    attn = SlimSelfAttention(STA, 4, 6, num_heads=2).double()
    hv, hs = torch.randn(6, 4, 4, dtype=DT), torch.randn(6, 6, dtype=DT)
    with pytest.raises(ValueError, match="either attn_mask or offsets"):
        attn(hv, hs, attn_mask=mask, offsets=off)
    with pytest.raises(ValueError, match=r"expected vectors of shape \(total_items, n, channels\)"):
        attn(hv[None], hs[None], offsets=off)
    cross = SlimCrossAttention(STA, 4, 4, 6, 6, num_heads=2).double()
    with pytest.raises(ValueError, match="both offsets and context_offsets"):
        cross(hv, hv, hs, hs, offsets=off)
    block = ConditionalSlimBlock(STA, 4, 4, 6, 6, num_heads=2).double()
    with pytest.raises(ValueError, match="both offsets and condition_offsets"):
        block(hv, hv, hs, hs, condition_offsets=off)
    # the conditional net
    cnet = _conditional()
    v3, c3 = torch.randn(6, 2, 3, dtype=DT), torch.randn(5, 1, 3, dtype=DT)
    s3, cs3 = torch.randn(6, 3, dtype=DT), torch.randn(5, 2, dtype=DT)
    coff = offsets_from_sizes([1, 4])
    with pytest.raises(ValueError, match="both offsets and condition_offsets"):
        cnet(v3, c3, s3, cs3, offsets=off)
    with pytest.raises(ValueError, match="both offsets and condition_offsets"):
        cnet(v3, c3, s3, cs3, condition_offsets=coff)
    with pytest.raises(ValueError, match="attn_mask / crossattn_mask or offsets"):
        cnet(
            v3,
            c3,
            s3,
            cs3,
            crossattn_mask=torch.ones(6, 5, dtype=torch.bool),
            offsets=off,
            condition_offsets=coff,
        )
    with pytest.raises(ValueError, match=r"expected vectors_cond of shape \(total_items, 1, 3\)"):
        cnet(v3, c3[None], s3, cs3[None], offsets=off, condition_offsets=coff)
    nv3 = torch.nested.nested_tensor([v3[:2], v3[2:]], layout=torch.jagged)
    ns3 = torch.nested.nested_tensor([s3[:2], s3[2:]], layout=torch.jagged)
    with pytest.raises(ValueError, match="both as nested tensors or neither"):
        cnet(nv3, c3, ns3, cs3)
    with pytest.raises(ValueError, match=r"offsets_k\[-1\] must equal the number of packed items 5"):
        cnet(v3, c3, s3, cs3, offsets=off, condition_offsets=torch.tensor([0, 1, 6]))


def test_fresh_packed_gatr_slim_compiles_fullgraph() -> None:
    torch._dynamo.reset()
    net = _slim(PGA3)
    v = torch.cat(_sets(SIZES, 2, 4, seed=15)).requires_grad_(True)
    s = torch.cat(_sets(SIZES, 3, seed=16))
    off = offsets_from_sizes(SIZES)
    compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
    out_c = compiled(v, s, is_causal=True, offsets=off, max_items=max(SIZES))
    out_e = net(v, s, is_causal=True, offsets=off, max_items=max(SIZES))
    for a, b in zip(out_c, out_e, strict=True):
        _close(a, b, tol=1e-10)
    (g_c,) = torch.autograd.grad(out_c[0].square().sum() + out_c[1].square().sum(), v)
    (g_e,) = torch.autograd.grad(out_e[0].square().sum() + out_e[1].square().sum(), v)
    _close(g_c, g_e, tol=1e-9)
    # other offsets with the same number of sets and items reuse the graph
    sizes = [0, 8, 2, 6, 0]
    out2 = compiled(v, s, is_causal=True, offsets=offsets_from_sizes(sizes), max_items=8)
    _close(out2[0], net(v, s, is_causal=True, offsets=offsets_from_sizes(sizes))[0], tol=1e-10)
    torch._dynamo.reset()


# --------------------------------------------------------------------------------------
# packed_scaled_dot_product_attention
# --------------------------------------------------------------------------------------


def _sdpa_per_set(
    q: Tensor, k: Tensor, v: Tensor, sizes_q: Sequence[int], sizes_k: Sequence[int], **kwargs: object
) -> Tensor:
    """The reference: SDPA on each set alone (zeros for a query set without keys)."""
    heads = q.shape[1]
    if k.shape[1] != heads:
        k, v = k.expand(-1, heads, -1, -1), v.expand(-1, heads, -1, -1)
    outs, a, b = [], 0, 0
    for nq, nk in zip(sizes_q, sizes_k, strict=True):
        qi, ki, vi = q[:, :, a : a + nq], k[:, :, b : b + nk], v[:, :, b : b + nk]
        if nk == 0:
            outs.append(v.new_zeros(q.shape[0], heads, nq, v.shape[-1]))
        else:
            outs.append(F.scaled_dot_product_attention(qi, ki, vi, **kwargs))  # type: ignore[arg-type]
        a, b = a + nq, b + nk
    return torch.cat(outs, 2)


SDPA_BACKENDS = ["auto", "padded", "dense", "nested", "flex"]


@pytest.mark.parametrize("backend", SDPA_BACKENDS)
@pytest.mark.parametrize("case", ["self", "self-causal", "cross-multi-query"])
def test_packed_sdpa_equals_per_set_sdpa(backend: str, case: str) -> None:
    causal = case == "self-causal"
    g = torch.Generator().manual_seed(17)
    if case.startswith("cross"):
        # set 1: no queries, 4 keys; set 3: 1 query, 1 key; no non-empty query set without keys
        sizes_q, sizes_k, kv_heads, width_v, scale = [3, 0, 6, 1], [2, 4, 5, 1], 1, 5, 0.3
    else:
        sizes_q = sizes_k = SIZES
        kv_heads, width_v, scale = 3, 7, None
    batch, heads, width = 2, 3, 6
    grad = backend != "flex"  # flex_attention has no backward on CPU
    q = torch.randn(batch, heads, sum(sizes_q), width, generator=g, dtype=DT, requires_grad=grad)
    k = torch.randn(batch, kv_heads, sum(sizes_k), width, generator=g, dtype=DT, requires_grad=grad)
    v = torch.randn(batch, kv_heads, sum(sizes_k), width_v, generator=g, dtype=DT, requires_grad=grad)
    off_q, off_k = offsets_from_sizes(sizes_q), offsets_from_sizes(sizes_k)
    offsets_k = off_k if case.startswith("cross") else None
    if backend == "nested" and causal:
        with pytest.raises(ValueError, match="'nested' does not take is_causal=True"):
            packed_scaled_dot_product_attention(q, k, v, offsets=off_q, is_causal=True, backend=backend)
        return
    out = packed_scaled_dot_product_attention(
        q, k, v, offsets=off_q, offsets_k=offsets_k, is_causal=causal, scale=scale, backend=backend
    )
    ref = _sdpa_per_set(q, k, v, sizes_q, sizes_k, is_causal=causal, scale=scale)
    assert out.shape == (batch, heads, sum(sizes_q), width_v) and out.dtype == DT
    _close(out, ref)
    if grad:
        got = torch.autograd.grad(out.square().sum(), [q, k, v])
        want = torch.autograd.grad(ref.square().sum(), [q, k, v])
        for a, b in zip(got, want, strict=True):
            _close(a, b, tol=1e-11)


def test_packed_sdpa_buckets_and_compile() -> None:
    sizes = [5, 0, 1, 9, 3, 3, 12, 2, 7, 4]
    g = torch.Generator().manual_seed(18)
    q, k, v = (torch.randn(1, 2, sum(sizes), 8, generator=g, dtype=DT) for _ in range(3))
    off = offsets_from_sizes(sizes)
    ref = _sdpa_per_set(q, k, v, sizes, sizes)
    for buckets in (None, 1, 3):
        _close(packed_scaled_dot_product_attention(q, k, v, offsets=off, buckets=buckets), ref)
    torch._dynamo.reset()
    compiled = torch.compile(
        lambda a, b, c, o: packed_scaled_dot_product_attention(a, b, c, offsets=o, max_items=12),
        fullgraph=True,
        backend="aot_eager",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _close(compiled(q, k, v, off), ref)
    torch._dynamo.reset()


def test_packed_sdpa_errors() -> None:
    q = torch.randn(1, 2, 6, 4)
    off = offsets_from_sizes([2, 4])
    with pytest.raises(
        ValueError, match=r"q must have shape \(batch, heads, items, width\), got \(2, 6, 4\)"
    ):
        packed_scaled_dot_product_attention(q[0], q, q, offsets=off)
    with pytest.raises(ValueError, match="one floating-point dtype"):
        packed_scaled_dot_product_attention(q, q.double(), q, offsets=off)
    with pytest.raises(ValueError, match="queries and keys need one width, got 4 and 3"):
        packed_scaled_dot_product_attention(q, q[..., :3], q, offsets=off)
    with pytest.raises(ValueError, match=r"keys/values need 2 heads or 1"):
        packed_scaled_dot_product_attention(q, q[:, :1], q, offsets=off)
    with pytest.raises(
        ValueError, match=r"offsets\[-1\] must equal the number of packed items 6 \(q.shape\[2\]\)"
    ):
        packed_scaled_dot_product_attention(q, q, q, offsets=torch.tensor([0, 2, 5]))
    with pytest.raises(ValueError, match="keys have 5 items and queries 6; pass offsets_k"):
        packed_scaled_dot_product_attention(q, q[:, :, :5], q[:, :, :5], offsets=off)
    with pytest.raises(ValueError, match="backend must be one of"):
        packed_scaled_dot_product_attention(q, q, q, offsets=off, backend="flash")
    with pytest.raises(ValueError, match=r"max_items=3 is below the largest set \(4 items\)"):
        packed_scaled_dot_product_attention(q, q, q, offsets=off, max_items=3)
