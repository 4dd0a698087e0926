"""Migrating real L-GATr models: fine-tuning after ``from_lgatr``, and models that are not lgatr's own.

* Without scalar inputs lgatr's input layer has a bias on the scalar blade only; the converted
  net has no other free parameter (``EquiLinear(bias="scalar")``), so after fine-tuning every
  gatorch parameter ``to_lgatr`` still succeeds and gives the same function.
* A model whose modules were replaced (a user's own ``nn.Module`` in place of an lgatr layer,
  a deleted block, blocks built differently) is refused with an error naming the module path
  and what was expected, not an ``AttributeError`` / ``IndexError`` from deep inside.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

lgatr = pytest.importorskip("lgatr")

from gatorch import STA  # noqa: E402
from gatorch.interop import from_lgatr, to_lgatr  # noqa: E402
from gatorch.layers import EquiLinear  # noqa: E402
from gatorch.nets import GATr  # noqa: E402
from gatorch.testing import assert_compiles  # noqa: E402
from tests.test_lgatr_interop import _close, _cond_net, _inputs, _lgatr_net, _roundtrip  # noqa: E402

# relative to the largest output; float32: two implementations round differently (measured 1.7e-6)
FINETUNED_TOL = {torch.float32: 5e-6, torch.float64: 1e-12}


def _outputs(net: nn.Module, model: nn.Module, conditional: bool, dtype: torch.dtype) -> tuple[Any, Any]:
    mv, s = _inputs(dtype, model.linear_in._in_mv_channels, model.linear_in._in_s_channels, items=5)
    with torch.no_grad():
        if not conditional:
            return net(mv, s), model(mv, s)
        kv = model.blocks[0].crossattention.kv_linear
        c, cs = _inputs(dtype, kv._in_mv_channels, kv._in_s_channels, items=4, seed=2)
        return net(mv, c, s, cs), model(mv, c, s, cs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("conditional", [False, True], ids=["LGATr", "ConditionalLGATr"])
def test_finetuned_net_without_scalar_inputs_goes_back(conditional: bool, dtype: torch.dtype) -> None:
    options: dict[str, Any] = {"in_s_channels": 0, "num_blocks": 1}
    model = (_cond_net if conditional else _lgatr_net)(dtype, **options)
    net = from_lgatr(model)
    assert net.linear_in.bias is not None and net.linear_in.bias.shape == (8, 1)  # the scalar blade only
    ours = [p for p in net.parameters() if p.requires_grad]
    assert sum(p.numel() for p in ours) == sum(p.numel() for p in model.parameters())
    # fine-tune every gatorch parameter a few steps
    net.train()
    opt = torch.optim.Adam(ours, lr=1e-2)
    for step in range(3):
        opt.zero_grad()
        mv, _ = _inputs(dtype, model.linear_in._in_mv_channels, 0, items=5, seed=10 + step)
        if conditional:
            kv = model.blocks[0].crossattention.kv_linear
            c, cs = _inputs(dtype, kv._in_mv_channels, kv._in_s_channels, items=4, seed=20 + step)
            out, out_s = net(mv, c, None, cs)
        else:
            out, out_s = net(mv, None)
        (out.square().mean() + out_s.square().mean()).backward()
        opt.step()
    net.eval()
    back = to_lgatr(net)  # main: "linear_in: a pseudoscalar bias is not zero and has no counterpart"
    assert type(back) is type(model)
    ours_out, theirs_out = _outputs(net, back, conditional, dtype)
    for a, b in zip(ours_out, theirs_out, strict=True):
        err = (a - b).abs().max().item() / max(1.0, b.abs().max().item())
        assert err <= FINETUNED_TOL[dtype], err
    _roundtrip(back, from_lgatr(back))


def test_scalar_only_bias_layer() -> None:
    """``EquiLinear(bias="scalar")``: one bias per channel, on the scalar blade; compiles fresh."""
    torch.manual_seed(0)
    layer = EquiLinear(STA, 2, 3, out_s_channels=2, group="spin", bias="scalar").double()
    assert layer.bias is not None and layer.bias.shape == (3, 1) and layer.bias_blades == (0,)
    assert EquiLinear(STA, 2, 3, group="spin").bias_blades == (0, STA.pseudoscalar_index)
    with torch.no_grad():
        layer.bias.fill_(2.0)
    out, _ = layer(torch.zeros(4, 2, 16, dtype=torch.float64))
    expected = torch.zeros(4, 3, 16, dtype=torch.float64)
    expected[..., 0] = 2.0
    torch.testing.assert_close(out, expected)  # nothing on the pseudoscalar
    fresh = EquiLinear(STA, 2, 3, in_s_channels=1, out_s_channels=2, group="spin", bias="scalar").double()
    x, s = torch.randn(4, 2, 16, dtype=torch.float64), torch.randn(4, 1, dtype=torch.float64)
    assert_compiles(fresh, (x, s), backend="aot_eager", grads=True, atol=1e-10, rtol=1e-10)
    with pytest.raises(ValueError, match=r"bias must be True, False or 'scalar', got 'pseudoscalar'"):
        EquiLinear(STA, 2, 3, bias="pseudoscalar")
    net = GATr(STA, in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=4, hidden_s_channels=4,
               num_blocks=1, num_heads=2, group="spin", linear_in_bias="scalar")  # fmt: skip
    assert net.linear_in.bias is not None and net.linear_in.bias.shape == (4, 1)


# -- models that are not lgatr's own ---------------------------------------------------------------
class _MyLinear(nn.Module):
    def forward(self, mv: torch.Tensor, scalars: torch.Tensor | None = None) -> Any:
        return mv, scalars


def _swap(path: str, new: nn.Module) -> Any:
    def edit(model: nn.Module) -> None:
        parent, _, name = path.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, name, new)

    return edit


def _subclassed(model: nn.Module) -> None:
    from lgatr.layers.linear import EquiLinear as LgLinear

    class Logged(LgLinear):  # a subclass may change forward: refused too
        pass

    old = model.blocks[0].attention.out_linear
    model.blocks[0].attention.out_linear = Logged(
        old._in_mv_channels, old._out_mv_channels, old.primitives, in_s_channels=old._in_s_channels,
        out_s_channels=old._out_s_channels,
    )  # fmt: skip


def _other_heads(model: nn.Module) -> None:
    other = lgatr.LGATr(
        num_blocks=1, in_mv_channels=3, out_mv_channels=2, hidden_mv_channels=8, in_s_channels=4,
        out_s_channels=3, hidden_s_channels=12, attention={"num_heads": 4}, mlp={},
    )  # fmt: skip
    model.blocks[1] = other.blocks[0]


def _wider_linear(model: nn.Module) -> None:
    from lgatr.layers.linear import EquiLinear as LgLinear

    old = model.blocks[1].attention.out_linear
    model.blocks[1].attention.out_linear = LgLinear(
        old._in_mv_channels, old._out_mv_channels + 1, old.primitives, in_s_channels=old._in_s_channels,
        out_s_channels=old._out_s_channels,
    )  # fmt: skip


def _no_blocks(model: nn.Module) -> None:
    model.blocks = nn.ModuleList()


def _mlp_layer(model: nn.Module) -> None:
    model.blocks[1].mlp.layers[2] = _MyLinear()


def _no_out_linear(model: nn.Module) -> None:
    del model.blocks[0].attention.out_linear


REPLACED = {
    "own-linear": (
        _swap("blocks.0.attention.out_linear", _MyLinear()),
        TypeError,
        r"model\.blocks\.0\.attention\.out_linear is a .*_MyLinear, not a module lgatr builds there "
        r"\(expected lgatr's EquiLinear\)",
    ),
    "own-qkv-module": (
        _swap("blocks.1.attention.qkv_module", _MyLinear()),
        TypeError,
        r"model\.blocks\.1\.attention\.qkv_module is a .*_MyLinear.*expected lgatr's QKVModule or "
        r"lgatr's MultiQueryQKVModule",
    ),
    "own-attention": (
        _swap("blocks.0.attention", _MyLinear()),
        TypeError,
        r"model\.blocks\.0\.attention is a .*expected lgatr's SelfAttention",
    ),
    "own-linear-in": (
        _swap("linear_in", nn.Linear(3, 8)),
        TypeError,
        r"model\.linear_in is a torch\.nn\.modules\.linear\.Linear.*expected lgatr's EquiLinear",
    ),
    "subclassed-linear": (_subclassed, TypeError, r"model\.blocks\.0\.attention\.out_linear is a .*Logged"),
    "deleted-module": (
        _no_out_linear,
        ValueError,
        r"model\.blocks\.0\.attention\.out_linear is missing \(expected lgatr's EquiLinear\)",
    ),
    "no-blocks": (_no_blocks, ValueError, r"model\.blocks is empty; gatorch's GATr needs num_blocks >= 1"),
    "mlp-layer": (
        _mlp_layer,
        ValueError,
        r"model\.blocks\.1\.mlp\.layers holds \['GeometricBilinear', 'ScalarGatedNonlinearity', "
        r"'_MyLinear'\], not lgatr's GeoMLP layout",
    ),
    "block-with-other-heads": (
        _other_heads,
        ValueError,
        r"the attention of model\.blocks\.1 differs from model\.blocks\.0's in num_heads \(4 vs 2\)",
    ),
    "linear-with-other-channels": (
        _wider_linear,
        ValueError,
        r"model\.blocks\.1\.attention\.out_linear gives a weight of shape \(9, 8, 10\) where the gatorch "
        r"net built from model\.blocks\.0 expects \(8, 8, 10\)",
    ),
}


@pytest.mark.parametrize("name", list(REPLACED))
def test_replaced_modules_are_named(name: str) -> None:
    edit, error, match = REPLACED[name]
    model = _lgatr_net(torch.float32)
    edit(model)
    with pytest.raises(error, match=match):
        from_lgatr(model)


def test_replaced_module_in_conditional_net_is_named() -> None:
    model = _cond_net(torch.float32)
    model.blocks[1].crossattention.kv_linear = _MyLinear()
    with pytest.raises(TypeError, match=r"model\.blocks\.1\.crossattention\.kv_linear is a .*_MyLinear"):
        from_lgatr(model)
    del model.blocks[1].crossattention
    with pytest.raises(ValueError, match=r"model\.blocks\.1\.crossattention is missing"):
        from_lgatr(model)


def test_deleting_a_block_gives_the_shorter_net() -> None:
    """A block deleted from an lgatr model (a shorter lgatr net) converts, with the same function."""
    model = _lgatr_net(torch.float64, num_blocks=3)
    del model.blocks[1]
    net = from_lgatr(model)
    assert len(net.blocks) == 2
    _close(*_outputs(net, model, False, torch.float64), torch.float64)
    _roundtrip(model, net)
