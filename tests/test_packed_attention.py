"""Packed (jagged) geometric attention: equal to attention run set by set, on every CPU backend."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import pytest
import torch
from torch import Tensor

from gatorch import PGA3, STA, Algebra
from gatorch.functional.attention import (
    _bucket_plan,
    geometric_attention,
    nested_to_packed,
    offsets_from_sizes,
    packed_geometric_attention,
    packed_to_nested,
)

DT = torch.float64
#: every backend that runs on CPU ("flex" in eager mode: forward only, no backward on CPU)
BACKENDS = ["auto", "padded", "dense", "nested", "flex"]
GRAD_BACKENDS = ["padded", "dense", "nested"]
SIZES_Q = [4, 0, 7, 1, 3]
SIZES_K = [2, 5, 0, 3, 1]  # set 1: no queries, 5 keys; set 2: 7 queries, no keys

pytestmark = pytest.mark.filterwarnings(
    "ignore:flex_attention called without torch.compile",
    "ignore:.*nested tensors is in prototype stage",
)


def _close(actual: Tensor, expected: Tensor, what: str = "") -> None:
    """Equal to float64 round-off (1e-12)."""
    torch.testing.assert_close(
        actual, expected, atol=1e-12, rtol=1e-12, msg=(lambda m: f"{what}: {m}") if what else None
    )


def _inputs(
    alg: Algebra,
    n_q: int,
    n_k: int,
    *,
    batch: int = 1,
    heads: int = 2,
    kv_heads: int = 2,
    channels: int = 2,
    v_channels: int = 3,
    s_channels: int = 3,
    v_s_channels: int = 4,
    seed: int = 0,
) -> dict[str, Tensor | None]:
    """Random packed inputs in the layout of :func:`geometric_attention`."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=DT)

    scalars = s_channels > 0
    return {
        "q_mv": r(batch, heads, n_q, channels, alg.dim),
        "k_mv": r(batch, kv_heads, n_k, channels, alg.dim),
        "v_mv": r(batch, kv_heads, n_k, v_channels, alg.dim),
        "q_s": r(batch, heads, n_q, s_channels) if scalars else None,
        "k_s": r(batch, kv_heads, n_k, s_channels) if scalars else None,
        "v_s": r(batch, kv_heads, n_k, v_s_channels) if scalars else None,
    }


def _per_set(
    alg: Algebra,
    x: dict[str, Tensor | None],
    sizes_q: Sequence[int],
    sizes_k: Sequence[int],
    **kwargs: object,
) -> tuple[Tensor, Tensor]:
    """The reference: :func:`geometric_attention` on each set alone, concatenated along the items."""
    outs_mv, outs_s = [], []
    start_q = start_k = 0
    for nq, nk in zip(sizes_q, sizes_k, strict=True):
        sq, sk = slice(start_q, start_q + nq), slice(start_k, start_k + nk)
        sl = {
            name: None if t is None else t[:, :, sq if name.startswith("q") else sk] for name, t in x.items()
        }
        mv, s = geometric_attention(alg, **sl, **kwargs)  # type: ignore[arg-type]
        outs_mv.append(mv)
        outs_s.append(s)
        start_q, start_k = start_q + nq, start_k + nk
    return torch.cat(outs_mv, 2), torch.cat(outs_s, 2)


def _packed(x: dict[str, Tensor | None], alg: Algebra = PGA3, **kwargs: object) -> tuple[Tensor, Tensor]:
    return packed_geometric_attention(alg, **x, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scalars", [True, False], ids=["scalars", "no_scalars"])
def test_self_attention_equals_per_set(backend: str, scalars: bool) -> None:
    x = _inputs(PGA3, sum(SIZES_Q), sum(SIZES_Q), s_channels=3 if scalars else 0)
    ref_mv, ref_s = _per_set(PGA3, x, SIZES_Q, SIZES_Q, distance=True)
    mv, s = _packed(x, offsets=offsets_from_sizes(SIZES_Q), distance=True, backend=backend)
    assert mv.shape == (1, 2, sum(SIZES_Q), 3, 16) and s.shape == (1, 2, sum(SIZES_Q), 4 if scalars else 0)
    _close(mv, ref_mv)
    _close(s, ref_s)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cross_attention_equals_per_set(backend: str) -> None:
    x = _inputs(PGA3, sum(SIZES_Q), sum(SIZES_K), seed=1)
    off_q, off_k = offsets_from_sizes(SIZES_Q), offsets_from_sizes(SIZES_K)
    if backend == "nested":  # torch's jagged SDPA fails on a query set without keys: a clear error
        with pytest.raises(
            ValueError, match=r"cannot attend from a non-empty query set to an empty key set \(sets \[2\]\)"
        ):
            _packed(x, offsets=off_q, offsets_k=off_k, backend=backend)
        sizes_k = [2, 5, 1, 3, 1]
        x = _inputs(PGA3, sum(SIZES_Q), sum(sizes_k), seed=1)
        ref_mv, ref_s = _per_set(PGA3, x, SIZES_Q, sizes_k, distance=True)
        mv, s = _packed(
            x, offsets=off_q, offsets_k=offsets_from_sizes(sizes_k), distance=True, backend=backend
        )
        _close(mv, ref_mv)
        _close(s, ref_s)
        return
    ref_mv, ref_s = _per_set(PGA3, x, SIZES_Q, SIZES_K, distance=True)
    mv, s = _packed(x, offsets=off_q, offsets_k=off_k, distance=True, backend=backend)
    _close(mv, ref_mv)
    _close(s, ref_s)
    # the query set whose key set is empty gets zeros, like attention over no keys
    assert mv[:, :, 4:11].abs().max() == 0 and s[:, :, 4:11].abs().max() == 0
    assert ref_mv[:, :, 4:11].abs().max() == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_multi_query_batched_indefinite_metric(backend: str) -> None:
    """STA (signed inner product), 3 query heads sharing one key/value head, two batch entries."""
    sizes = [3, 1, 5]
    x = _inputs(STA, 9, 9, batch=2, heads=3, kv_heads=1, seed=2)
    ref_mv, ref_s = _per_set(STA, x, sizes, sizes)
    mv, s = _packed(x, alg=STA, offsets=offsets_from_sizes(sizes), backend=backend)
    assert mv.shape == (2, 3, 9, 3, 16)
    _close(mv, ref_mv)
    _close(s, ref_s)


@pytest.mark.parametrize("backend", ["padded", "dense", "flex"])
@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
def test_causal_within_each_set(backend: str, cross: bool) -> None:
    sizes_k = SIZES_K if cross else SIZES_Q
    x = _inputs(PGA3, sum(SIZES_Q), sum(sizes_k), seed=3)
    ref_mv, ref_s = _per_set(PGA3, x, SIZES_Q, sizes_k, is_causal=True)
    offsets_k = offsets_from_sizes(sizes_k) if cross else None
    mv, s = _packed(
        x, offsets=offsets_from_sizes(SIZES_Q), offsets_k=offsets_k, is_causal=True, backend=backend
    )
    _close(mv, ref_mv)
    _close(s, ref_s)


@pytest.mark.parametrize("backend", GRAD_BACKENDS)
@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
def test_gradients_equal_per_set(backend: str, cross: bool) -> None:
    sizes_k = SIZES_K if cross else SIZES_Q
    if cross and backend == "nested":  # no query set without keys there (see the cross test)
        sizes_k = [2, 5, 1, 3, 1]
    x = _inputs(PGA3, sum(SIZES_Q), sum(sizes_k), heads=2, kv_heads=1, seed=4)
    leaves = {name: t.requires_grad_() for name, t in x.items() if t is not None}
    g = torch.Generator().manual_seed(5)
    w_mv = torch.randn(1, 2, sum(SIZES_Q), 3, 16, generator=g, dtype=DT)
    w_s = torch.randn(1, 2, sum(SIZES_Q), 4, generator=g, dtype=DT)

    def grads(out: tuple[Tensor, Tensor]) -> tuple[Tensor, ...]:
        loss = (out[0] * w_mv).sum() + (out[1] * w_s).sum()
        return torch.autograd.grad(loss, list(leaves.values()))

    ref = grads(_per_set(PGA3, x, SIZES_Q, sizes_k, distance=True))
    offsets_k = offsets_from_sizes(sizes_k) if cross else None
    got = grads(
        _packed(x, offsets=offsets_from_sizes(SIZES_Q), offsets_k=offsets_k, distance=True, backend=backend)
    )
    for name, a, b in zip(leaves, got, ref, strict=True):
        assert torch.isfinite(a).all(), name
        _close(a, b, f"gradient of {name}")
    # keys of the set without queries (set 1 in cross) get no gradient
    if cross:
        assert ref[1][:, :, 2:7].abs().max() == 0


@pytest.mark.parametrize("backend", ["padded", "dense", "nested"])
@pytest.mark.parametrize("sizes", [[1, 1, 1], [0, 2, 0], [0, 0]], ids=["ones", "empty_ends", "all_empty"])
def test_size_one_and_empty_sets(backend: str, sizes: list[int]) -> None:
    n = sum(sizes)
    x = _inputs(PGA3, n, n, seed=6)
    mv, s = _packed(x, offsets=offsets_from_sizes(sizes), backend=backend)
    ref_mv, ref_s = _per_set(PGA3, x, sizes, sizes)
    assert mv.shape == (1, 2, n, 3, 16)
    _close(mv, ref_mv)
    _close(s, ref_s)
    if sizes == [1, 1, 1]:  # one item attends to itself alone: the output is its value
        v_mv = x["v_mv"]
        assert v_mv is not None
        _close(mv, v_mv)


def test_bucket_plan_by_hand() -> None:
    """Sizes 5, 1, 3, 0 in 2 buckets: sets (3, 1) padded to 1 item, then sets (2, 0) to 5."""
    plan = _bucket_plan([5, 1, 3, 0], [5, 1, 3, 0], 2)
    assert plan.counts == (2, 2) and plan.len_q == (1, 5) and plan.len_k == (1, 5)
    assert plan.order == [3, 1, 2, 0]
    assert plan.set_base_q == [7, 1, 2, 0] and plan.set_base_k == [7, 1, 2, 0]
    cross = _bucket_plan([2, 2], [0, 6], 5)  # more buckets than sets: one set each
    assert cross.counts == (1, 1) and cross.len_q == (2, 2) and cross.len_k == (1, 6)
    assert cross.set_base_q == [0, 2] and cross.set_base_k == [0, 1]


@pytest.mark.parametrize("buckets", [None, 1, 2, 3, 50])
@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_buckets_equal_per_set(buckets: int | None, cross: bool, causal: bool) -> None:
    """Sets sorted into buckets, each padded to its own length: same values and gradients."""
    sizes_q = [4, 0, 7, 1, 3, 9, 2, 5, 6, 1]  # 10 sets: the default uses 4 buckets on CPU
    sizes_k = [2, 5, 0, 3, 1, 6, 4, 8, 1, 2] if cross else sizes_q
    x = _inputs(PGA3, sum(sizes_q), sum(sizes_k), batch=2, heads=2, kv_heads=1, seed=13)
    leaves = [t.requires_grad_() for t in x.values() if t is not None]
    ref_mv, ref_s = _per_set(PGA3, x, sizes_q, sizes_k, distance=True, is_causal=causal)
    mv, s = _packed(
        x,
        offsets=offsets_from_sizes(sizes_q),
        offsets_k=offsets_from_sizes(sizes_k) if cross else None,
        distance=True,
        is_causal=causal,
        buckets=buckets,
    )
    _close(mv, ref_mv)
    _close(s, ref_s)
    got = torch.autograd.grad((mv * mv.detach()).sum() + s.sum(), leaves)
    ref = torch.autograd.grad((ref_mv * ref_mv.detach()).sum() + ref_s.sum(), leaves)
    for a, b in zip(got, ref, strict=True):
        _close(a, b, "gradient")


def test_max_items_larger_than_needed_changes_nothing() -> None:
    x = _inputs(PGA3, sum(SIZES_Q), sum(SIZES_Q), seed=7)
    off = offsets_from_sizes(SIZES_Q)
    a = _packed(x, offsets=off, backend="padded")
    b = _packed(x, offsets=off, max_items=12, backend="padded", validate=False)
    _close(b[0], a[0])
    _close(b[1], a[1])


def test_dropout_keeps_sets_apart() -> None:
    """Under attention dropout, changing one set's keys leaves the other sets' outputs as they were."""
    x = _inputs(PGA3, sum(SIZES_Q), sum(SIZES_Q), seed=8)
    off = offsets_from_sizes(SIZES_Q)
    k = x["k_mv"]
    assert k is not None
    y = dict(x, k_mv=k.clone().index_fill_(2, torch.arange(4), 3.0))  # set 0 = items 0..3
    torch.manual_seed(0)
    a, _ = _packed(x, offsets=off, dropout_p=0.5, backend="padded")
    torch.manual_seed(0)
    b, _ = _packed(y, offsets=off, dropout_p=0.5, backend="padded")
    no_drop, _ = _packed(x, offsets=off, backend="padded")
    _close(a[:, :, 4:], b[:, :, 4:])
    assert (a[:, :, :4] - b[:, :, :4]).abs().max() > 1e-3
    assert (a - no_drop).abs().max() > 1e-3


def test_low_precision_inputs_stay_finite() -> None:
    x32 = {n: None if t is None else t.float() for n, t in _inputs(PGA3, 15, 15, seed=9).items()}
    xb = {n: None if t is None else 30 * t.bfloat16() for n, t in x32.items()}
    off = offsets_from_sizes(SIZES_Q)
    mv, s = _packed(xb, offsets=off, distance=True)
    assert mv.dtype == torch.bfloat16 and torch.isfinite(mv).all() and torch.isfinite(s).all()
    ref, _ = _packed({n: None if t is None else t.float() for n, t in xb.items()}, offsets=off, distance=True)
    torch.testing.assert_close(mv.float(), ref, atol=0.5, rtol=0.05)


def test_offsets_from_sizes() -> None:
    assert offsets_from_sizes([3, 0, 2]).tolist() == [0, 3, 3, 5]
    assert offsets_from_sizes(torch.tensor([1, 4], dtype=torch.int32)).tolist() == [0, 1, 5]
    assert offsets_from_sizes([]).tolist() == [0]
    assert offsets_from_sizes([2]).dtype == torch.int64
    with pytest.raises(ValueError, match=r"sizes must be ints >= 0, got \[2, -1\]"):
        offsets_from_sizes([2, -1])
    with pytest.raises(ValueError, match=r"sizes must be >= 0, got \[2, -1\]"):
        offsets_from_sizes(torch.tensor([2, -1]))
    with pytest.raises(ValueError, match="1-D integer tensor"):
        offsets_from_sizes(torch.tensor([2.0, 1.0]))


def test_nested_round_trip_and_attention_on_nested_input() -> None:
    g = torch.Generator().manual_seed(10)
    sets = [torch.randn(n, 2, 16, generator=g, dtype=DT) for n in (3, 1, 4)]
    nt = torch.nested.nested_tensor(sets, layout=torch.jagged)
    values, offsets = nested_to_packed(nt)
    assert values.shape == (8, 2, 16) and offsets.tolist() == [0, 3, 4, 8]
    torch.testing.assert_close(values, torch.cat(sets), atol=0, rtol=0)
    back = packed_to_nested(values, offsets, max_items=4)
    assert back.is_nested and back.layout == torch.jagged
    for a, b in zip(back.unbind(), sets, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    # a layer's packed call: (items, channels, dim) -> (batch=1, heads=1, items, channels, dim)
    packed = values[None, None]
    mv, _ = packed_geometric_attention(PGA3, packed, packed, packed, offsets=offsets, distance=True)
    for i, one in enumerate(sets):
        ref, _ = geometric_attention(PGA3, one[None, None], one[None, None], one[None, None], distance=True)
        _close(mv[:, :, offsets[i] : offsets[i + 1]], ref)
    with pytest.raises(ValueError, match=r"layout torch\.jagged, got torch\.strided"):
        nested_to_packed(values)
    with pytest.raises(ValueError, match=r"offsets\[-1\] must equal the number of packed items 8"):
        packed_to_nested(values, torch.tensor([0, 3, 7]))


@pytest.mark.parametrize(
    ("offsets", "message"),
    [
        ([1, 4, 15], r"offsets must start at 0, got offsets\[0\] = 1"),
        ([0, 9, 4, 15], r"non-decreasing .* got offsets\[1\] = 9 > offsets\[2\] = 4"),
        ([0, 4, 14], r"offsets\[-1\] must equal the number of packed items 15 \(q_mv.shape\[2\]\), got 14"),
        ([0, 4, 16], r"offsets\[-1\] must equal the number of packed items 15 \(q_mv.shape\[2\]\), got 16"),
    ],
    ids=["start", "decreasing", "short", "long"],
)
def test_bad_offsets_raise(offsets: list[int], message: str) -> None:
    x = _inputs(PGA3, 15, 15)
    for backend in BACKENDS:
        with pytest.raises(ValueError, match=message):
            _packed(x, offsets=torch.tensor(offsets), backend=backend)


def test_bad_arguments_raise() -> None:
    x = _inputs(PGA3, 15, 15)
    off = offsets_from_sizes(SIZES_Q)
    with pytest.raises(
        ValueError, match=r"1-D integer tensor of shape \(num_sets \+ 1,\), got shape \(2, 3\)"
    ):
        _packed(x, offsets=off[:6].reshape(2, 3))
    with pytest.raises(ValueError, match=r"1-D integer tensor .* dtype torch\.float32"):
        _packed(x, offsets=off.float())
    with pytest.raises(ValueError, match=r"offsets_k\[-1\] must equal the number of packed items 15"):
        _packed(x, offsets=off, offsets_k=torch.tensor([0, 1, 2, 3, 4, 5]))
    with pytest.raises(ValueError, match=r"as many sets as offsets \(5\), got shape \(3,\)"):
        _packed(x, offsets=off, offsets_k=torch.tensor([0, 5, 15]))
    with pytest.raises(ValueError, match=r"max_items=6 is below the largest set \(7 items\)"):
        _packed(x, offsets=off, max_items=6)
    with pytest.raises(ValueError, match=r"buckets must be an int >= 1 or None, got 0"):
        _packed(x, offsets=off, buckets=0)
    with pytest.raises(ValueError, match=r"backend must be one of .* got 'flash'"):
        _packed(x, offsets=off, backend="flash")
    with pytest.raises(ValueError, match="'nested' does not take is_causal=True"):
        _packed(x, offsets=off, backend="nested", is_causal=True)
    with pytest.raises(ValueError, match="'flex' has no attention dropout"):
        _packed(x, offsets=off, backend="flex", dropout_p=0.1)
    y = _inputs(PGA3, 15, 12)
    with pytest.raises(ValueError, match="keys have 12 items and queries 15; pass offsets_k"):
        _packed(y, offsets=off)
    with pytest.raises(ValueError, match=r"q_mv must have shape \(batch, heads, items, channels, 16\)"):
        _packed(dict(x, q_mv=x["q_mv"][0]), offsets=off)  # type: ignore[index]


def test_compiles_fullgraph_default_cpu_path() -> None:
    torch._dynamo.reset()
    off = offsets_from_sizes(SIZES_Q)
    x = _inputs(PGA3, 15, 15, seed=11)
    x = {n: None if t is None else t.requires_grad_() for n, t in x.items()}

    def f(x: dict[str, Tensor | None], offsets: Tensor) -> tuple[Tensor, Tensor]:
        return _packed(x, offsets=offsets, max_items=7, distance=True)

    compiled = torch.compile(f, fullgraph=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mv, s = compiled(x, off)
    ref_mv, ref_s = _per_set(PGA3, x, SIZES_Q, SIZES_Q, distance=True)
    _close(mv, ref_mv)
    _close(s, ref_s)
    leaves = [t for t in x.values() if t is not None]
    got = torch.autograd.grad(mv.sum() + s.sum(), leaves)
    ref = torch.autograd.grad(ref_mv.sum() + ref_s.sum(), leaves)
    for a, b in zip(got, ref, strict=True):
        _close(a, b)
    # new offsets with the same shape reuse the graph and still give the right answer
    sizes = [2, 6, 0, 7, 0]
    mv2, _ = compiled(x, offsets_from_sizes(sizes))
    _close(mv2, _per_set(PGA3, x, sizes, sizes, distance=True)[0])
    torch._dynamo.reset()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend", ["auto", "padded", "nested", "dense", "flex"])
def test_cuda_float32_equals_per_set(backend: str) -> None:
    """On CUDA, in float32: torch's fused kernels (memory-efficient with a mask, varlen, flex)."""
    sizes_k = [2, 5, 1, 3, 1]  # no query set without keys ("nested")
    x = {
        n: None if t is None else t.float().cuda().requires_grad_()
        for n, t in _inputs(PGA3, sum(SIZES_Q), sum(sizes_k), heads=4, kv_heads=1, seed=12).items()
    }
    off_q, off_k = offsets_from_sizes(SIZES_Q, device="cuda"), offsets_from_sizes(sizes_k, device="cuda")
    ref_mv, ref_s = _per_set(PGA3, x, SIZES_Q, sizes_k, distance=True)
    mv, s = _packed(x, offsets=off_q, offsets_k=off_k, distance=True, backend=backend)
    torch.testing.assert_close(mv, ref_mv, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(s, ref_s, atol=1e-4, rtol=1e-4)
    if backend != "flex":
        leaves = [t for t in x.values() if t is not None]
        got = torch.autograd.grad(mv.square().sum() + s.square().sum(), leaves)
        ref = torch.autograd.grad(ref_mv.square().sum() + ref_s.square().sum(), leaves)
        for a, b in zip(got, ref, strict=True):
            torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)
