"""The public API walked with the bad inputs a new user gives it, and NaN isolation.

Every case asserts the exception type and a fragment of its message (what was expected and
what came). Masks are checked by one validator (``functional.attention.masks.check_attn_mask``),
dtypes and tensor-ness by ``layers._checks`` (``check_tensor`` / ``check_dtype``), packed sets by
``functional.attention.sets.check_packed_sets``. Tiny sizes throughout: the file runs in seconds.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

from gatorch import PGA3, STA, VGA3, Algebra
from gatorch.functional.attention import geometric_attention, offsets_from_sizes, slim_attention
from gatorch.layers import (
    ConditionalGATrBlock,
    CrossAttention,
    EquiLayerNorm,
    EquiLinear,
    GATrBlock,
    GeometricBilinear,
    GeoMLP,
    SelfAttention,
    SlimBlock,
    SlimSelfAttention,
)
from gatorch.layers.fields import (
    CliffordBatchNorm2d,
    CliffordConv2d,
    CliffordLinear,
    CliffordSpectralConv2d,
    EquiFieldGroupNorm,
)
from gatorch.nets import ConditionalGATr, ConditionalGATrSlim, GATr, GATrSlim
from gatorch.nets.csmpn import CSMPN
from gatorch.nets.fields import CliffordResNet
from gatorch.nets.gnn import CliffordGNN
from gatorch.nets.simplicial import rips_lift

B, N, NC, HEADS = 2, 5, 3, 2  # batch, items, condition items, heads


def _gatr() -> GATr:
    torch.manual_seed(0)
    return GATr(
        PGA3, in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=4, in_s_channels=2,
        out_s_channels=1, hidden_s_channels=4, num_blocks=2, num_heads=HEADS,
    ).eval()  # fmt: skip


def _cgatr() -> ConditionalGATr:
    torch.manual_seed(0)
    return ConditionalGATr(
        PGA3, in_mv_channels=1, condition_mv_channels=1, out_mv_channels=1, hidden_mv_channels=4,
        in_s_channels=2, condition_s_channels=2, out_s_channels=1, hidden_s_channels=4, num_blocks=1,
        num_heads=HEADS,
    ).eval()  # fmt: skip


def _slim() -> GATrSlim:
    torch.manual_seed(0)
    return GATrSlim(
        STA, in_v_channels=1, out_v_channels=1, hidden_v_channels=4, in_s_channels=2, out_s_channels=1,
        hidden_s_channels=4, num_blocks=2, num_heads=HEADS,
    ).eval()  # fmt: skip


def _cslim() -> ConditionalGATrSlim:
    torch.manual_seed(0)
    return ConditionalGATrSlim(
        STA, in_v_channels=1, v_channels_cond=1, out_v_channels=1, hidden_v_channels=4, in_s_channels=2,
        s_channels_cond=2, out_s_channels=1, hidden_s_channels=4, num_blocks=1, num_heads=HEADS,
    ).eval()  # fmt: skip


def _mv(*lead: int) -> Tensor:
    return torch.randn(*lead, 1, 16)


def _v(*lead: int) -> Tensor:
    return torch.randn(*lead, 1, 4)


def _s(*lead: int) -> Tensor:
    return torch.randn(*lead, 2)


def _cut(mask: Any) -> Any:
    """The first ``NC`` key columns of a mask tensor (a cross-attention mask); anything else as is."""
    return mask[..., :NC] if isinstance(mask, Tensor) else mask


# -- one callable per public entry point that takes a self-attention mask, ``mask -> output`` --
def _mask_callers() -> dict[str, Callable[[Any], Any]]:
    g, cg, sl, csl = _gatr(), _cgatr(), _slim(), _cslim()
    sa = SelfAttention(PGA3, 2, 2, {"num_heads": HEADS})
    ca = CrossAttention(PGA3, 2, 2, 2, 2, {"num_heads": HEADS})
    ssa = SlimSelfAttention(STA, 2, 2, HEADS)
    q = torch.randn(B, HEADS, N, 2, 16)
    fq = torch.randn(B, HEADS, N, 8)
    return {
        "GATr": lambda m: g(_mv(B, N), _s(B, N), attn_mask=m),
        "ConditionalGATr": lambda m: cg(_mv(B, N), _mv(B, NC), _s(B, N), _s(B, NC), attn_mask=m),
        "ConditionalGATr crossattn": lambda m: cg(
            _mv(B, N), _mv(B, NC), _s(B, N), _s(B, NC), crossattn_mask=_cut(m)
        ),
        "GATrSlim": lambda m: sl(_v(B, N), _s(B, N), attn_mask=m),
        "ConditionalGATrSlim": lambda m: csl(_v(B, N), _v(B, NC), _s(B, N), _s(B, NC), attn_mask=m),
        "ConditionalGATrSlim crossattn": lambda m: csl(
            _v(B, N), _v(B, NC), _s(B, N), _s(B, NC), crossattn_mask=_cut(m)
        ),
        "SelfAttention": lambda m: sa(torch.randn(B, N, 2, 16), _s(B, N), attn_mask=m),
        "CrossAttention": lambda m: ca(
            torch.randn(B, N, 2, 16), torch.randn(B, NC, 2, 16), _s(B, N), _s(B, NC), attn_mask=_cut(m)
        ),
        "SlimSelfAttention": lambda m: ssa(torch.randn(B, N, 4, 2), _s(B, N), attn_mask=m),
        "geometric_attention": lambda m: geometric_attention(PGA3, q, q, q, attn_mask=m),
        "slim_attention": lambda m: slim_attention(fq, fq, fq, attn_mask=m),
    }


MASK_CALLERS = [
    "GATr", "ConditionalGATr", "ConditionalGATr crossattn", "GATrSlim", "ConditionalGATrSlim",
    "ConditionalGATrSlim crossattn", "SelfAttention", "CrossAttention", "SlimSelfAttention",
    "geometric_attention", "slim_attention",
]  # fmt: skip


@pytest.fixture(scope="module")
def mask_callers() -> dict[str, Callable[[Any], Any]]:
    callers = _mask_callers()
    assert sorted(callers) == sorted(MASK_CALLERS)
    return callers


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8])
@pytest.mark.parametrize("who", MASK_CALLERS)
def test_integer_masks_are_refused(mask_callers: dict, who: str, dtype: torch.dtype) -> None:
    """A 0/1 integer mask used to be added to the logits (a silent wrong answer)."""
    mask = torch.ones(N, N, dtype=dtype)
    with pytest.raises(TypeError, match=rf"bool tensor .* got dtype {dtype}; convert a 0/1 mask with"):
        mask_callers[who](mask)


@pytest.mark.parametrize("who", MASK_CALLERS)
def test_non_tensor_masks_are_refused(mask_callers: dict, who: str) -> None:
    with pytest.raises(TypeError, match=r"mask must be a torch.Tensor \(bool or float\), got list"):
        mask_callers[who]([[True] * N] * N)


@pytest.mark.parametrize("who", ["GATr", "GATrSlim", "ConditionalGATr", "ConditionalGATrSlim"])
def test_nets_accept_the_same_mask_shapes(mask_callers: dict, who: str) -> None:
    """(N, N), (B, N, N), (B, 1, N, N) (lgatr's) and (B, H, N, N), bool or additive float."""
    base = torch.rand(B, N, N, generator=torch.Generator().manual_seed(1)) > 0.4
    base |= torch.eye(N, dtype=torch.bool)
    run = mask_callers[who]

    def out(mask: Tensor) -> Tensor:
        torch.manual_seed(3)
        return run(mask)[0]

    ref = out(base)
    for mask in (base[:, None], base[:, None].expand(B, HEADS, N, N)):
        torch.testing.assert_close(out(mask), ref)
    additive = torch.zeros(B, N, N).masked_fill(~base, float("-inf"))
    torch.testing.assert_close(out(additive[:, None]), ref)
    shared = base[0]
    torch.testing.assert_close(out(shared), out(shared.expand(B, 1, N, N)))


@pytest.mark.parametrize("who", ["GATr", "GATrSlim", "SelfAttention", "SlimSelfAttention"])
@pytest.mark.parametrize(
    ("shape", "fragment"),
    [
        ((B, 3, N, N), "does not broadcast against"),  # 3 heads, the layer has 2
        ((3, N, N), "does not broadcast against"),  # batch 3, the input has 2
        ((B, N, N + 1), r"must have shape \(\.\.\., 5, 5\) \(queries x keys\)"),
        ((1, B, 1, N, N), r"must have shape \(5, 5\), \(batch\.\.\., 5, 5\) or"),
    ],
)
def test_bad_mask_shapes_name_the_accepted_ones(
    mask_callers: dict, who: str, shape: tuple[int, ...], fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment):
        mask_callers[who](torch.ones(shape, dtype=torch.bool))


def test_cross_mask_keywords_are_the_same_for_both_conditional_nets() -> None:
    """``crossattn_mask`` (lgatr's spelling) is canonical; ``cross_attn_mask`` is an alias."""
    for net in (ConditionalGATr, ConditionalGATrSlim):
        params = inspect.signature(net.forward).parameters
        assert {"attn_mask", "crossattn_mask", "cross_attn_mask", "is_causal", "offsets", "max_items"} <= set(
            params
        ), net
        assert {"condition_offsets", "condition_max_items"} <= set(params), net
    for net in (GATr, GATrSlim):
        assert {"attn_mask", "is_causal", "offsets", "max_items"} <= set(
            inspect.signature(net.forward).parameters
        )
    cmask = torch.ones(N, NC, dtype=torch.bool)
    cmask[:, 0] = False
    for net, args in (
        (_cgatr(), (_mv(B, N), _mv(B, NC), _s(B, N), _s(B, NC))),
        (_cslim(), (_v(B, N), _v(B, NC), _s(B, N), _s(B, NC))),
    ):
        canonical = net(*args, crossattn_mask=cmask)[0]
        torch.testing.assert_close(net(*args, cross_attn_mask=cmask)[0], canonical)
        assert not torch.allclose(net(*args)[0], canonical)  # the mask is used
        with pytest.raises(TypeError, match="got both crossattn_mask= and its alias cross_attn_mask="):
            net(*args, crossattn_mask=cmask, cross_attn_mask=cmask)


# -- NaN isolation -------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("kind", ["bool", "float", "per-head"])
def test_gatr_masked_nan_item_reaches_no_other_item(bad: float, kind: str) -> None:
    net = _gatr()
    mv, s = _mv(B, N), _s(B, N)
    mv[0, N - 1], s[0, N - 1] = bad, bad  # item N-1 of set 0 is padding, masked out of every key
    keep = torch.ones(B, N, dtype=torch.bool)
    keep[0, N - 1] = False
    mask: Tensor = keep[:, None, :].expand(B, N, N)
    if kind == "float":
        mask = torch.zeros(B, N, N).masked_fill(~mask, float("-inf"))
    elif kind == "per-head":
        mask = mask[:, None].expand(B, HEADS, N, N)
    out, out_s = net(mv, s, attn_mask=mask)
    assert torch.isfinite(out[0, : N - 1]).all() and torch.isfinite(out[1]).all()
    alone, alone_s = net(mv[:1, : N - 1], s[:1, : N - 1])
    torch.testing.assert_close(out[0, : N - 1], alone[0])
    torch.testing.assert_close(out_s[0, : N - 1], alone_s[0])
    torch.testing.assert_close(out[1], net(mv[1:], s[1:])[0][0])


def test_gatr_packed_nan_item_stays_in_its_set() -> None:
    net = _gatr()
    mv, s = _mv(9), _s(9)
    mv[5], s[5] = float("nan"), float("inf")  # in the second set
    out, _ = net(mv, s, offsets=offsets_from_sizes([4, 3, 2]), max_items=4)
    assert torch.isfinite(out[:4]).all() and torch.isfinite(out[7:]).all()
    torch.testing.assert_close(out[:4], net(mv[None, :4], s[None, :4])[0][0])


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_slim_masked_nan_item_reaches_no_other_item(bad: float) -> None:
    net = _slim()
    v, s = _v(1, N), _s(1, N)
    v[0, 2], s[0, 2] = bad, bad
    keep = torch.ones(N, dtype=torch.bool)
    keep[2] = False
    out, out_s = net(v, s, attn_mask=keep[None, :].expand(N, N))
    others = keep.nonzero()[:, 0]
    alone, alone_s = net(v[:, others], s[:, others])
    torch.testing.assert_close(out[:, others], alone)
    torch.testing.assert_close(out_s[:, others], alone_s)


def test_conditional_gatr_masked_nan_condition_and_item() -> None:
    net = _cgatr()
    mv, c, s, cs = _mv(1, N), _mv(1, NC), _s(1, N), _s(1, NC)
    c[0, 1], cs[0, 1] = float("nan"), float("nan")  # condition item 1: masked out of every query
    mv[0, 0] = float("inf")  # item 0: masked out of every key of the self-attention
    cmask = torch.ones(N, NC, dtype=torch.bool)
    cmask[:, 1] = False
    smask = torch.ones(N, N, dtype=torch.bool)
    smask[:, 0] = False
    out = net(mv, c, s, cs, attn_mask=smask, crossattn_mask=cmask)[0]
    alone = net(mv[:, 1:], c[:, [0, 2]], s[:, 1:], cs[:, [0, 2]])[0]
    torch.testing.assert_close(out[:, 1:], alone)


def test_unmasked_nan_still_propagates() -> None:
    """Documented: a non-finite value in an item others attend to reaches their outputs."""
    net = _gatr()
    mv = _mv(1, N)
    mv[0, 0] = float("nan")
    assert torch.isnan(net(mv, _s(1, N))[0]).all()


# -- packed / nested sets --------------------------------------------------------------------------
def _packed_callers() -> dict[str, Callable[[Any], Any]]:
    g, cg, sl, csl = _gatr(), _cgatr(), _slim(), _cslim()
    return {
        "GATr": lambda o: g(_mv(12), _s(12), offsets=o),
        "ConditionalGATr": lambda o: cg(_mv(12), _mv(12), _s(12), _s(12), offsets=o, condition_offsets=o),
        "GATrSlim": lambda o: sl(_v(12), _s(12), offsets=o),
        "ConditionalGATrSlim": lambda o: csl(_v(12), _v(12), _s(12), _s(12), offsets=o, condition_offsets=o),
    }


@pytest.mark.parametrize("who", ["GATr", "ConditionalGATr", "GATrSlim", "ConditionalGATrSlim"])
@pytest.mark.parametrize(
    ("offsets", "error", "fragment"),
    [
        ([0, 3, 8, 12], TypeError, r"offsets must be a 1-D integer tensor .* got list"),
        (torch.tensor([0, 3, 8, 10]), ValueError, r"offsets\[-1\] must equal the number of packed items 12"),
        (torch.tensor([[0, 3, 12]]), ValueError, r"1-D integer tensor .* got shape \(1, 3\)"),
        (torch.tensor([0]), ValueError, r"describe no set"),
        (torch.tensor([0, 8, 3, 12]), ValueError, r"non-decreasing .* offsets\[1\] = 8 > offsets\[2\] = 3"),
        (torch.tensor([2, 8, 12]), ValueError, r"must start at 0, got offsets\[0\] = 2"),
        (torch.tensor([0.0, 12.0]), ValueError, r"integer tensor .* dtype torch.float32"),
    ],
)
def test_bad_offsets_are_refused_before_use(who: str, offsets: Any, error: type, fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        _packed_callers()[who](offsets)


@pytest.mark.parametrize("who", ["GATr", "GATrSlim"])
def test_nested_scalars_with_other_splits_are_refused(who: str) -> None:
    """Equal totals (5 items) but other per-set splits: (2, 3) vs (3, 2)."""
    net, tail = (_gatr(), (1, 16)) if who == "GATr" else (_slim(), (1, 4))
    items = torch.nested.nested_tensor([torch.randn(2, *tail), torch.randn(3, *tail)], layout=torch.jagged)
    scalars = torch.nested.nested_tensor([torch.randn(3, 2), torch.randn(2, 2)], layout=torch.jagged)
    with pytest.raises(ValueError, match=r"hold different sets: set sizes \[3, 2\] and \[2, 3\]"):
        net(items, scalars)


def test_nested_condition_with_other_splits_is_refused() -> None:
    net = _cgatr()
    nest = torch.nested.nested_tensor
    mv = nest([_mv(2), _mv(3)], layout=torch.jagged)
    s = nest([_s(2), _s(3)], layout=torch.jagged)
    c = nest([_mv(1), _mv(2)], layout=torch.jagged)
    cs = nest([_s(2), _s(1)], layout=torch.jagged)
    with pytest.raises(ValueError, match=r"condition: nested scalars and mv hold different sets"):
        net(mv, c, s, cs)


# -- empty inputs ------------------------------------------------------------------------------------
def test_zero_items_give_empty_outputs() -> None:
    g, sl, cg = _gatr(), _slim(), _cgatr()
    out, out_s = g(_mv(B, 0), _s(B, 0))
    assert out.shape == (B, 0, 1, 16) and out_s.shape == (B, 0, 1)
    out, out_s = g(_mv(0), _s(0), offsets=torch.tensor([0, 0]), max_items=0)
    assert out.shape == (0, 1, 16) and out_s.shape == (0, 1)
    out, out_s = g(_mv(0), _s(0), offsets=torch.tensor([0]))
    assert out.shape == (0, 1, 16) and out_s.shape == (0, 1)
    out, _ = cg(_mv(B, 0), _mv(B, NC), _s(B, 0), _s(B, NC))
    assert out.shape == (B, 0, 1, 16)
    out, out_s = sl(_v(B, 0), _s(B, 0))
    assert out.shape == (B, 0, 1, 4) and out_s.shape == (B, 0, 1)
    out, _ = SelfAttention(PGA3, 2)(torch.randn(0, 2, 16))
    assert out.shape == (0, 2, 16)


# -- numpy, leading dims, dtypes ---------------------------------------------------------------------
def _field_callers() -> dict[str, tuple[torch.nn.Module, Tensor]]:
    alg2 = Algebra(2)
    return {
        "CliffordConv2d": (CliffordConv2d(alg2, 2, 2, kernel_size=3, padding=1), torch.randn(1, 2, 4, 4, 4)),
        "CliffordLinear": (CliffordLinear(alg2, 2, 2), torch.randn(3, 2, 4)),
        "CliffordSpectralConv2d": (CliffordSpectralConv2d(alg2, 2, 2, 2, 2), torch.randn(1, 2, 4, 4, 4)),
        "CliffordBatchNorm2d": (CliffordBatchNorm2d(alg2, 2), torch.randn(2, 2, 3, 3, 4)),
        "EquiFieldGroupNorm": (EquiFieldGroupNorm(alg2, 1, 2), torch.randn(1, 2, 3, 3, 4)),
        "CliffordResNet": (
            CliffordResNet(alg2, in_channels=2, out_channels=1, hidden_channels=2, num_blocks=1),
            torch.randn(1, 2, 4, 4, 4),
        ),
    }


def _entry_points() -> dict[str, Callable[[Callable[[Tensor], Any]], Any]]:
    """``convert -> output``: each public entry point called with ``convert`` applied to its first input."""
    g, cg, sl, csl = _gatr(), _cgatr(), _slim(), _cslim()
    gnn = CliffordGNN(VGA3, in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=2, num_layers=1)
    pos = torch.randn(1, 4, 3)
    cx = rips_lift(pos, radius=3.0)
    csmpn = CSMPN(VGA3, in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=2, num_layers=1)
    edges = torch.tensor([[0, 1, 2], [1, 2, 0]])
    layers: dict[str, tuple[torch.nn.Module, tuple[Any, ...]]] = {
        "EquiLinear": (EquiLinear(PGA3, 1, 2, in_s_channels=2), (_mv(N), _s(N))),
        "GeometricBilinear": (GeometricBilinear(PGA3, 1, 2), (_mv(N),)),
        "EquiLayerNorm": (EquiLayerNorm(PGA3, mv_channels=1, elementwise_affine=True), (_mv(N),)),
        "GeoMLP": (GeoMLP(PGA3, 2, 2), (torch.randn(N, 2, 16), _s(N))),
        "SelfAttention": (
            SelfAttention(PGA3, 2, 2, {"num_heads": HEADS}),
            (torch.randn(B, N, 2, 16), _s(B, N)),
        ),
        "CrossAttention": (
            CrossAttention(PGA3, 2, 2, 2, 2, {"num_heads": HEADS}),
            (torch.randn(B, N, 2, 16), torch.randn(B, NC, 2, 16), _s(B, N), _s(B, NC)),
        ),
        "GATrBlock": (GATrBlock(PGA3, 2, 2, {"num_heads": HEADS}), (torch.randn(B, N, 2, 16), _s(B, N))),
        "ConditionalGATrBlock": (
            ConditionalGATrBlock(PGA3, 2, 2, 2, 2, {"num_heads": HEADS}, {"num_heads": HEADS}),
            (torch.randn(B, N, 2, 16), torch.randn(B, NC, 2, 16), _s(B, N), _s(B, NC)),
        ),
        "SlimSelfAttention": (SlimSelfAttention(STA, 2, 2, HEADS), (torch.randn(B, N, 4, 2), _s(B, N))),
        "SlimBlock": (SlimBlock(STA, 2, 2, HEADS), (torch.randn(B, N, 4, 2), _s(B, N))),
        "GATr": (g, (_mv(B, N), _s(B, N))),
        "ConditionalGATr": (cg, (_mv(B, N), _mv(B, NC), _s(B, N), _s(B, NC))),
        "GATrSlim": (sl, (_v(B, N), _s(B, N))),
        "ConditionalGATrSlim": (csl, (_v(B, N), _v(B, NC), _s(B, N), _s(B, NC))),
        "CliffordGNN": (gnn, (torch.randn(3, 1, 8), None, edges)),
        "CSMPN": (csmpn, (torch.randn(4, 1, 8), None, cx)),
    }
    layers.update({k: (m, (x,)) for k, (m, x) in _field_callers().items()})
    return {
        name: (lambda convert, m=m, a=a: m(convert(a[0]), *a[1:]))  # type: ignore[misc]
        for name, (m, a) in layers.items()
    }


ENTRY_POINTS = [
    "EquiLinear", "GeometricBilinear", "EquiLayerNorm", "GeoMLP", "SelfAttention", "CrossAttention",
    "GATrBlock", "ConditionalGATrBlock", "SlimSelfAttention", "SlimBlock", "GATr", "ConditionalGATr",
    "GATrSlim", "ConditionalGATrSlim",
    "CliffordGNN", "CSMPN", "CliffordConv2d", "CliffordLinear", "CliffordSpectralConv2d",
    "CliffordBatchNorm2d", "EquiFieldGroupNorm", "CliffordResNet",
]  # fmt: skip


@pytest.fixture(scope="module")
def entry_points() -> dict[str, Callable[[Callable[[Tensor], Any]], Any]]:
    points = _entry_points()
    assert sorted(points) == sorted(ENTRY_POINTS)
    return points


@pytest.mark.parametrize("who", ENTRY_POINTS)
def test_entry_points_run_on_good_input(entry_points: dict, who: str) -> None:
    entry_points[who](lambda x: x)  # the fixtures themselves are valid calls


@pytest.mark.parametrize("who", ENTRY_POINTS)
def test_numpy_input_names_torch_from_numpy(entry_points: dict, who: str) -> None:
    with pytest.raises(TypeError, match=r"torch.Tensor, got numpy.ndarray; use torch.from_numpy"):
        entry_points[who](lambda x: x.numpy())


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("who", ENTRY_POINTS)
def test_input_dtype_other_than_the_modules_is_refused(
    entry_points: dict, who: str, dtype: torch.dtype
) -> None:
    with pytest.raises(TypeError, match=rf"has dtype {dtype} but the module's parameters are torch.float32"):
        entry_points[who](lambda x: x.to(dtype))


def test_dtype_check_leaves_autocast_and_converted_modules_alone() -> None:
    net = _gatr()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = net(_mv(B, N).bfloat16(), _s(B, N).bfloat16())
    assert torch.isfinite(out).all()
    out, _ = net.double()(_mv(B, N).double(), _s(B, N).double())
    assert out.dtype == torch.float64


@pytest.mark.parametrize(
    ("who", "call"),
    [
        ("GATr", lambda: _gatr()(_mv(B, N), _s(3, N))),
        ("ConditionalGATr", lambda: _cgatr()(_mv(B, N), _mv(B, NC), _s(B, N + 1), _s(B, NC))),
        ("ConditionalGATr", lambda: _cgatr()(_mv(B, N), _mv(B, NC), _s(B, N), _s(3, NC))),
        ("GATrSlim", lambda: _slim()(_v(B, N), _s(3, N))),
    ],
)
def test_scalars_with_other_leading_dims_name_both_shapes(who: str, call: Callable[[], Any]) -> None:
    with pytest.raises(
        ValueError, match=rf"^{who}.*expected scalars of shape \(.*to match .* got \(\d, \d, 2\)"
    ):
        call()


def test_conditional_nets_take_lgatrs_condition_keywords() -> None:
    """``ConditionalGATr`` takes lgatr's ``multivectors_cond=`` / ``scalars_cond=`` and
    ``ConditionalGATrSlim`` ``ConditionalGATr``'s ``condition_scalars=``, with equal results;
    both spellings at once, or no condition, is a ``TypeError``."""
    from gatorch import STA
    from gatorch.nets import ConditionalGATr, ConditionalGATrSlim

    torch.manual_seed(0)
    net = ConditionalGATr(STA, in_mv_channels=1, condition_mv_channels=2, out_mv_channels=1,
                          hidden_mv_channels=4, in_s_channels=0, condition_s_channels=3,
                          out_s_channels=0, hidden_s_channels=4, num_blocks=1, num_heads=1)  # fmt: skip
    mv, cmv, cs = torch.randn(2, 5, 1, 16), torch.randn(2, 4, 2, 16), torch.randn(2, 4, 3)
    ref = net(mv, cmv, None, cs)[0]
    torch.testing.assert_close(net(mv, multivectors_cond=cmv, scalars_cond=cs)[0], ref, rtol=0, atol=0)
    with pytest.raises(TypeError, match="got both condition_scalars= and its alias scalars_cond="):
        net(mv, cmv, condition_scalars=cs, scalars_cond=cs)
    with pytest.raises(TypeError, match="missing the condition"):
        net(mv)

    slim = ConditionalGATrSlim(STA, in_v_channels=1, v_channels_cond=2, out_v_channels=1, hidden_v_channels=4,
                               in_s_channels=1, s_channels_cond=3, out_s_channels=1, hidden_s_channels=4,
                               num_blocks=1, num_heads=1)  # fmt: skip
    v, cv, s = torch.randn(2, 5, 1, 4), torch.randn(2, 4, 2, 4), torch.randn(2, 5, 1)
    ref_v = slim(v, cv, s, cs)[0]
    torch.testing.assert_close(slim(v, cv, s, condition_scalars=cs)[0], ref_v, rtol=0, atol=0)
    with pytest.raises(TypeError, match="got both scalars_cond= and its alias condition_scalars="):
        slim(v, cv, s, cs, condition_scalars=cs)
