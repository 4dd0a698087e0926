"""One validator for packed and nested sets: the same bad input gives the same error everywhere.

Every net and layer that takes ``offsets=`` / ``max_items=`` (or nested tensors) checks them
with :func:`gatorch.functional.attention.sets.check_packed_sets` /
:func:`~gatorch.functional.attention.sets.unnest_sets` at its public boundary, before anything
indexes with the offsets (GATr's default join reference used to index first).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from gatorch import PGA3, VGA3
from gatorch.functional.attention import offsets_from_sizes
from gatorch.functional.attention.sets import check_packed_sets, unnest_sets
from gatorch.layers import SelfAttention, SlimSelfAttention
from gatorch.nets import ConditionalGATr, ConditionalGATrSlim, GATr, GATrSlim

pytestmark = pytest.mark.filterwarnings("ignore:.*nested tensors is in prototype stage")

ITEMS = 12


def _gatr() -> GATr:
    torch.manual_seed(0)
    return GATr(
        PGA3, in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=2, in_s_channels=2,
        out_s_channels=1, hidden_s_channels=4, num_blocks=1, num_heads=1,
    )  # fmt: skip


def _slim() -> GATrSlim:
    torch.manual_seed(0)
    return GATrSlim(
        PGA3, in_v_channels=1, out_v_channels=1, hidden_v_channels=2, in_s_channels=2,
        out_s_channels=1, hidden_s_channels=4, num_blocks=1, num_heads=1,
    )  # fmt: skip


def _error(call: Callable[[], object]) -> tuple[type[BaseException], str]:
    """The type and the message of the error ``call`` raises, with the caller's name cut off."""
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    who, _, message = str(info.value).partition(": ")
    assert who, str(info.value)
    return type(info.value), message


END = r"offsets\[-1\] must equal the number of packed items 12"
BAD_OFFSETS: dict[str, tuple[object, type[BaseException], str]] = {
    # offsets, the error, what its message says
    "short-of-the-items": ([0, 3, 8, 10], ValueError, END),
    "past-the-items": ([0, 3, 8, 13], ValueError, END),
    "no-set": ([0], ValueError, r"offsets = \[0\] describe no set"),
    "not-from-zero": ([1, 3, 12], ValueError, r"offsets must start at 0, got offsets\[0\] = 1"),
    "decreasing": ([0, 8, 3, 12], ValueError, r"non-decreasing .* offsets\[1\] = 8 > offsets\[2\] = 3"),
    "list": ("list", TypeError, r"offsets must be a 1-D integer tensor .* got list"),
    "2-d": ("2-d", ValueError, r"1-D integer tensor of shape \(num_sets \+ 1,\), got shape \(2, 2\)"),
    "float": ("float", ValueError, r"1-D integer tensor .* dtype torch\.float32"),
}


def _offsets(spec: object) -> object:
    if spec == "list":
        return [0, 4, 12]
    if spec == "2-d":
        return torch.tensor([[0, 4], [4, 12]])
    if spec == "float":
        return torch.tensor([0.0, 4.0, 12.0])
    return torch.tensor(spec)


@pytest.mark.parametrize("case", list(BAD_OFFSETS))
def test_gatr_and_gatr_slim_give_the_same_error(case: str) -> None:
    spec, kind, pattern = BAD_OFFSETS[case]
    offsets = _offsets(spec)
    mv, v, s = torch.randn(ITEMS, 1, 16), torch.randn(ITEMS, 1, 4), torch.randn(ITEMS, 2)
    gatr = _error(lambda: _gatr()(mv, s, offsets=offsets))
    slim = _error(lambda: _slim()(v, s, offsets=offsets))
    assert gatr == slim
    assert gatr[0] is kind
    with pytest.raises(kind, match=pattern):
        _gatr()(mv, s, offsets=offsets)


@pytest.mark.parametrize("case", ["short-of-the-items", "no-set", "decreasing", "list"])
def test_layers_and_conditional_nets_give_the_same_error(case: str) -> None:
    offsets = _offsets(BAD_OFFSETS[case][0])
    good = offsets_from_sizes([4, 8])
    mv, v, s = torch.randn(ITEMS, 1, 16), torch.randn(ITEMS, 1, 4), torch.randn(ITEMS, 2)
    expected = _error(lambda: _gatr()(mv, s, offsets=offsets))
    attn = SelfAttention(PGA3, 1, 2, {"num_heads": 1})
    slim_attn = SlimSelfAttention(PGA3, 2, 4, num_heads=1)
    cgatr = ConditionalGATr(
        PGA3, in_mv_channels=1, condition_mv_channels=1, out_mv_channels=1, hidden_mv_channels=2,
        num_blocks=1, num_heads=1,
    )  # fmt: skip
    cslim = ConditionalGATrSlim(
        PGA3, in_v_channels=1, v_channels_cond=1, out_v_channels=1, hidden_v_channels=2,
        in_s_channels=0, s_channels_cond=0, out_s_channels=0, hidden_s_channels=4, num_blocks=1,
        num_heads=1,
    )  # fmt: skip
    assert _error(lambda: attn(mv, s, offsets=offsets)) == expected
    hidden_v, hidden_s = torch.randn(ITEMS, 4, 2), torch.randn(ITEMS, 4)
    assert _error(lambda: slim_attn(hidden_v, hidden_s, offsets=offsets)) == expected
    assert _error(lambda: cgatr(mv, mv, offsets=offsets, condition_offsets=good)) == expected
    assert _error(lambda: cslim(v, v, offsets=offsets, condition_offsets=good)) == expected
    # the condition's offsets: one message for both conditional nets too
    assert _error(lambda: cgatr(mv, mv, offsets=good, condition_offsets=offsets)) == _error(
        lambda: cslim(v, v, offsets=good, condition_offsets=offsets)
    )


def test_max_items_below_the_largest_set() -> None:
    offsets = offsets_from_sizes([4, 8])
    mv, v, s = torch.randn(ITEMS, 1, 16), torch.randn(ITEMS, 1, 4), torch.randn(ITEMS, 2)
    gatr = _error(lambda: _gatr()(mv, s, offsets=offsets, max_items=5))
    assert gatr == _error(lambda: _slim()(v, s, offsets=offsets, max_items=5))
    assert gatr == (ValueError, "max_items=5 is below the largest set (8 items)")
    for bad in (-1, 2.0, True):
        assert _error(lambda bad=bad: _gatr()(mv, s, offsets=offsets, max_items=bad))[0] is ValueError


def test_gatr_default_join_reference_never_indexes_unchecked_offsets() -> None:
    # offsets [0, 3, 8, 10] for 12 items used to fail inside the join reference ("index 3 is out of bounds")
    net = _gatr()  # PGA3: the MLPs join, with the default reference
    with pytest.raises(ValueError, match=r"offsets\[-1\] must equal the number of packed items 12"):
        net(torch.randn(ITEMS, 1, 16), torch.randn(ITEMS, 2), offsets=torch.tensor([0, 3, 8, 10]))


def _nested(parts: list[Tensor]) -> Tensor:
    return torch.nested.nested_tensor(parts, layout=torch.jagged)


def test_nested_mv_and_scalars_with_other_splits_raise() -> None:
    # the same totals (12 items, 2 sets), different per-set sizes
    mv = _nested([torch.randn(4, 1, 16), torch.randn(8, 1, 16)])
    v = _nested([torch.randn(4, 1, 4), torch.randn(8, 1, 4)])
    s = _nested([torch.randn(5, 2), torch.randn(7, 2)])
    message = r"nested scalars and .* hold different sets: set sizes \[5, 7\] and \[4, 8\]"
    with pytest.raises(ValueError, match="GATr: " + message):
        _gatr()(mv, s)
    with pytest.raises(ValueError, match="GATrSlim: " + message):
        _slim()(v, s)
    cnet = ConditionalGATrSlim(
        VGA3, in_v_channels=1, v_channels_cond=1, out_v_channels=1, hidden_v_channels=2,
        in_s_channels=2, s_channels_cond=2, out_s_channels=0, hidden_s_channels=4, num_blocks=1,
        num_heads=1,
    )  # fmt: skip
    v3 = _nested([torch.randn(4, 1, 3), torch.randn(8, 1, 3)])
    s_ok = _nested([torch.randn(4, 2), torch.randn(8, 2)])
    with pytest.raises(ValueError, match=r"nested scalars_cond and vectors_cond hold different sets"):
        cnet(v3, v3, s_ok, s)
    # the same splits pass
    _gatr()(mv, _nested([torch.randn(4, 2), torch.randn(8, 2)]))


def test_nested_and_dense_mixed_raise() -> None:
    s = _nested([torch.randn(4, 2), torch.randn(8, 2)])
    with pytest.raises(ValueError, match="nested scalars need nested mv"):
        _gatr()(torch.randn(ITEMS, 1, 16), s)
    with pytest.raises(ValueError, match="nested mv need nested scalars"):
        _gatr()(_nested([torch.randn(4, 1, 16), torch.randn(8, 1, 16)]), torch.randn(ITEMS, 2))


def test_packed_scalars_must_hold_the_same_items() -> None:
    offsets = offsets_from_sizes([4, 8])
    mv = torch.randn(ITEMS, 1, 16)
    gatr = _error(lambda: _gatr()(mv, torch.randn(ITEMS - 1, 2), offsets=offsets))
    assert gatr[0] is ValueError and "total_items = 12" in gatr[1]


def test_value_checks_are_skipped_not_dropped_while_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    items = torch.randn(ITEMS, 1, 16)
    bad = torch.tensor([0, 3, 8, 10])
    with pytest.raises(ValueError, match="offsets"):
        check_packed_sets("net", items, bad, 8)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    check_packed_sets("net", items, bad, 8)  # values are not read while compiling (no host sync)
    with pytest.raises(ValueError, match=r"under torch\.compile packed sets need max_items"):
        check_packed_sets("net", items, offsets_from_sizes([4, 8]))
    with pytest.raises(ValueError, match="1-D integer tensor"):  # shape checks still run
        check_packed_sets("net", items, bad[None], 8)


def test_unnest_sets_dense_inputs_pass_through() -> None:
    mv, s = torch.randn(2, 5, 1, 16), torch.randn(2, 5, 2)
    out = unnest_sets("net", mv, s, None)
    assert out[0] is mv and out[1] is s and out[2] is None and out[3] is False
