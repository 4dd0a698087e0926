"""gatorch.interop.from_lgatr / to_lgatr against the installed ``lgatr`` package (L-GATr 2.0).

Every L-GATr parameter is drawn at random (so that zero-initialised biases and unit gains
matter), the net is converted, and both are called on the same inputs: outputs agree to
1e-5 in float32 and 1e-10 in float64, for L-GATr's default configuration and for each option
that changes the function. ``to_lgatr`` gives back the same state dict.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

lgatr = pytest.importorskip("lgatr")

from gatorch import PGA3, STA  # noqa: E402
from gatorch.interop import from_lgatr, to_lgatr  # noqa: E402
from gatorch.interop.lgatr import lgatr_basis_change  # noqa: E402
from gatorch.layers import NormConfig  # noqa: E402
from gatorch.nets import ConditionalGATr, GATr  # noqa: E402

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def _randomise(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.4 * torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype))


def _lgatr_net(dtype: torch.dtype, **options: Any) -> torch.nn.Module:
    kwargs: dict[str, Any] = {
        "num_blocks": 2,
        "in_mv_channels": 3,
        "out_mv_channels": 2,
        "hidden_mv_channels": 8,
        "in_s_channels": 4,
        "out_s_channels": 3,
        "hidden_s_channels": 12,
        "attention": {"num_heads": 2},
        "mlp": {},
    }
    kwargs.update(options)
    torch.manual_seed(0)
    model = lgatr.LGATr(**kwargs).to(dtype)
    _randomise(model)
    return model.eval()


def _cond_net(dtype: torch.dtype, **options: Any) -> torch.nn.Module:
    kwargs: dict[str, Any] = {
        "num_blocks": 2,
        "in_mv_channels": 2,
        "mv_channels_cond": 3,
        "out_mv_channels": 2,
        "hidden_mv_channels": 8,
        "in_s_channels": 3,
        "s_channels_cond": 5,
        "out_s_channels": 1,
        "hidden_s_channels": 8,
        "attention": {"num_heads": 2},
        "crossattention": {"num_heads": 2},
        "mlp": {},
    }
    kwargs.update(options)
    torch.manual_seed(0)
    model = lgatr.ConditionalLGATr(**kwargs).to(dtype)
    _randomise(model)
    return model.eval()


def _inputs(dtype: torch.dtype, channels: int, s_channels: int, items: int = 7, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    mv = torch.randn(2, items, channels, 16, generator=g, dtype=torch.float64).to(dtype)
    s = torch.randn(2, items, s_channels, generator=g, dtype=torch.float64).to(dtype) if s_channels else None
    return mv, s


def _close(ours: tuple, theirs: tuple, dtype: torch.dtype) -> float:
    err = 0.0
    for a, b in zip(ours, theirs, strict=True):
        if b is None:  # L-GATr returns None for zero scalar channels, gatorch an empty tensor
            assert a.shape[-1] == 0
            continue
        assert a.shape == b.shape and a.dtype == b.dtype
        scale = max(1.0, b.abs().max().item())
        err = max(err, (a - b).abs().max().item() / scale)
    assert err < TOL[dtype], err
    return err


def _roundtrip(model: torch.nn.Module, net: torch.nn.Module) -> None:
    back = to_lgatr(net)
    assert type(back) is type(model)
    sd, sd2 = model.state_dict(), back.state_dict()
    assert sd.keys() == sd2.keys()
    for k in sd:
        torch.testing.assert_close(
            sd2[k], sd[k], atol=1e-6 if sd[k].dtype == torch.float32 else 1e-12, rtol=0
        )


LGATR_OPTIONS: dict[str, dict[str, Any]] = {
    "default-sizes": {},
    "full-lorentz": {"primitives": {"subgroup": False}},
    "multi-query": {"attention": {"num_heads": 2, "multi_query": True}},
    "head-scale": {"attention": {"num_heads": 2, "head_scale": True}},
    "attn-ratio-2": {"attention": {"num_heads": 2, "attn_ratio": 2}},
    "mq-full-lorentz": {
        "attention": {"num_heads": 4, "multi_query": True},
        "primitives": {"subgroup": False},
    },
    "no-affine": {"norm_elementwise_affine": False},
    "dropout-eval": {"dropout_prob": 0.2},
    "mlp-ratio-2-three-layers": {"mlp": {"mlp_ratio": 2, "num_layers_mlp": 3}},
    "mlp-one-layer": {"mlp": {"num_layers_mlp": 1}},
    "relu": {"mlp": {"nonlinearity": "relu"}},
    "sigmoid": {"mlp": {"nonlinearity": "sigmoid"}},
    "tanh": {"mlp": {"nonlinearity": "tanh"}},
    "silu": {"mlp": {"nonlinearity": "silu"}},
    "no-scalar-inputs": {"in_s_channels": 0},
    "no-scalar-outputs": {"out_s_channels": 0},
    "sparse-kernels": {"primitives": {"sparse_gp": False, "sparse_linear": True}},
    # one head: lgatr's fused QKVModule (the layout follows multi_query, not the head count)
    "one-head": {"attention": {"num_heads": 1}},
    "one-head-multi-query": {"attention": {"num_heads": 1, "multi_query": True}},
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(LGATR_OPTIONS))
def test_lgatr_outputs_equal(name: str, dtype: torch.dtype) -> None:
    model = _lgatr_net(dtype, **LGATR_OPTIONS[name])
    net = from_lgatr(model)
    assert isinstance(net, GATr) and net.alg == STA and not net.training
    assert next(net.parameters()).dtype == dtype
    mv, s = _inputs(dtype, model.linear_in._in_mv_channels, model.linear_in._in_s_channels)
    with torch.no_grad():
        _close(net(mv, s), model(mv, s), dtype)
    _roundtrip(model, net)


def test_lgatr_default_configuration() -> None:
    """L-GATr's own defaults (8 heads, subgroup, affine norms), float64, with a mask and gradients."""
    model = lgatr.LGATr(
        num_blocks=2,
        in_mv_channels=1,
        out_mv_channels=1,
        hidden_mv_channels=16,
        in_s_channels=2,
        out_s_channels=1,
        hidden_s_channels=32,
        attention={},
        mlp={},
    ).double()
    _randomise(model, seed=3)
    model.eval()
    net = from_lgatr(model)
    mv, s = _inputs(torch.float64, 1, 2, items=9)
    mask = torch.rand(9, 9, generator=torch.Generator().manual_seed(0)) > 0.3
    mask |= torch.eye(9, dtype=torch.bool)
    mv.requires_grad_(True)
    ours = net(mv, s, attn_mask=mask)
    theirs = model(mv, s, attn_mask=mask)
    _close(ours, theirs, torch.float64)
    (g1,) = torch.autograd.grad(ours[0].square().sum() + ours[1].square().sum(), mv)
    (g2,) = torch.autograd.grad(theirs[0].square().sum() + theirs[1].square().sum(), mv)
    torch.testing.assert_close(g1, g2, atol=1e-9, rtol=1e-9)
    _roundtrip(model, net)


COND_OPTIONS: dict[str, dict[str, Any]] = {
    "default-sizes": {},
    "full-lorentz": {"primitives": {"subgroup": False}},
    "multi-query-cross": {"crossattention": {"num_heads": 2, "multi_query": True}},
    "multi-query-both-head-scale": {
        "attention": {"num_heads": 2, "multi_query": True, "head_scale": True},
        "crossattention": {"num_heads": 2, "multi_query": True, "head_scale": True},
    },
    "cross-attn-ratio-2": {"crossattention": {"num_heads": 2, "attn_ratio": 2}},
    "no-condition-scalars": {"s_channels_cond": 0},
    "no-affine": {"norm_elementwise_affine": False},
    "one-head-both": {"attention": {"num_heads": 1}, "crossattention": {"num_heads": 1}},
    # cross-attention with another head count than the self-attention
    "cross-one-head-self-two": {"crossattention": {"num_heads": 1}},
    "cross-four-heads-self-one": {"attention": {"num_heads": 1}, "crossattention": {"num_heads": 4}},
    "cross-four-heads-multi-query-ratio-2": {
        "crossattention": {"num_heads": 4, "multi_query": True, "attn_ratio": 2, "head_scale": True}
    },
    "no-scalar-inputs": {"in_s_channels": 0},
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(COND_OPTIONS))
def test_conditional_lgatr_outputs_equal(name: str, dtype: torch.dtype) -> None:
    model = _cond_net(dtype, **COND_OPTIONS[name])
    net = from_lgatr(model)
    assert isinstance(net, ConditionalGATr)
    mv, s = _inputs(dtype, 2, model.linear_in._in_s_channels, items=6)
    c, cs = _inputs(dtype, 3, model.blocks[0].crossattention.kv_linear._in_s_channels, items=5, seed=2)
    with torch.no_grad():
        _close(net(mv, c, s, cs), model(mv, c, s, cs), dtype)
    _roundtrip(model, net)


def test_basis_change_is_exact_and_invertible() -> None:
    for subgroup, k in ((True, 10), (False, 5)):
        t = lgatr_basis_change(subgroup)
        assert t.shape == (k, k)
        assert torch.linalg.matrix_rank(t) == k


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"reinsert_mv_channels": (0,)}, "reinsert_mv_channels"),
        ({"reinsert_s_channels": (0,)}, "reinsert_s_channels"),
        ({"primitives": {"bivector": False}}, "bivector"),
        ({"primitives": {"geometric_product": False}}, "geometric_product"),
    ],
)
def test_unconvertible_options_are_named(options: dict[str, Any], match: str) -> None:
    model = _lgatr_net(torch.float32, **options)
    with pytest.raises(ValueError, match=match):
        from_lgatr(model)


def test_wrong_types_and_non_lgatr_nets() -> None:
    with pytest.raises(TypeError, match=r"lgatr\.LGATr"):
        from_lgatr(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="GATr, ConditionalGATr, GATrSlim"):
        to_lgatr(torch.nn.Linear(2, 2))  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {
        "in_mv_channels": 1,
        "out_mv_channels": 1,
        "hidden_mv_channels": 4,
        "hidden_s_channels": 4,
        "num_blocks": 1,
        "num_heads": 2,
    }
    with pytest.raises(ValueError, match="STA"):
        to_lgatr(GATr(PGA3, **kwargs))
    with pytest.raises(ValueError, match="qkv_norm"):
        to_lgatr(GATr(STA, **kwargs))  # gatorch's defaults are GATr's, not L-GATr's
    lgatr_like = {
        "attention": {"qkv_norm": True, "qkv_bias": False},
        "mlp": {"bilinear_norm": True},
        "group": "spin",
    }
    with pytest.raises(ValueError, match="eps_mode"):
        to_lgatr(GATr(STA, **kwargs, **lgatr_like))
    net = GATr(STA, **kwargs, **lgatr_like, norm=NormConfig.lgatr())
    assert isinstance(to_lgatr(net), lgatr.LGATr)
    with torch.no_grad():  # a pseudoscalar bias has no L-GATr counterpart when there are no scalar inputs
        net.linear_in.bias[:, 1] = 1.0
    with pytest.raises(ValueError, match="pseudoscalar bias"):
        to_lgatr(net)


def test_slim_nets_dispatch_to_the_slim_converters() -> None:
    """from_lgatr / to_lgatr take the slim nets too (converted by gatorch.interop.lgatr_slim)."""
    from gatorch.nets import GATrSlim

    torch.manual_seed(0)
    model = lgatr.LGATrSlim(
        num_blocks=1,
        in_v_channels=2,
        out_v_channels=1,
        hidden_v_channels=4,
        in_s_channels=3,
        out_s_channels=1,
        hidden_s_channels=8,
        num_heads=2,
    ).eval()
    _randomise(model)
    net = from_lgatr(model)
    assert isinstance(net, GATrSlim)
    v, s = torch.randn(2, 5, 2, 4), torch.randn(2, 5, 3)
    with torch.no_grad():
        _close(net(v, s), model(v, s), torch.float32)
    assert isinstance(to_lgatr(net), lgatr.LGATrSlim)
