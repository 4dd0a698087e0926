"""``from_lgatr_slim`` / ``to_lgatr_slim`` against the installed lgatr package.

Every parameter of the lgatr model is moved away from its initialisation (so zero biases
and unit gains matter), the model is converted, and both are called with the same
positional arguments: outputs agree to 1e-5 in float32 and 1e-10 in float64 (measured:
exactly equal, the gatorch layers perform lgatr's operations in lgatr's order).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
import torch
from torch import Tensor

lgatr = pytest.importorskip("lgatr")

from gatorch import STA, VGA3, Algebra  # noqa: E402
from gatorch.interop.lgatr_slim import from_lgatr_slim, to_lgatr_slim  # noqa: E402
from gatorch.nets.slim import ConditionalGATrSlim, GATrSlim  # noqa: E402

BASE: dict[str, Any] = dict(
    num_blocks=2,
    in_v_channels=2,
    out_v_channels=3,
    hidden_v_channels=8,
    in_s_channels=3,
    out_s_channels=2,
    hidden_s_channels=8,
    num_heads=2,
)
COND: dict[str, Any] = dict(BASE, v_channels_cond=3, s_channels_cond=4)

#: Every option that changes the function (dropout in eval mode).
OPTIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "relu": {"nonlinearity": "relu"},
    "sigmoid": {"nonlinearity": "sigmoid"},
    "tanh": {"nonlinearity": "tanh"},
    "silu": {"nonlinearity": "silu"},
    "v-tanh": {"nonlinearity_v": "tanh"},
    "v-gelu": {"nonlinearity_v": "gelu"},
    "v-None": {"nonlinearity_v": None},
    "v-None-silu": {"nonlinearity_v": None, "nonlinearity": "silu"},
    "mlp_ratio-3": {"mlp_ratio": 3},
    "attn_ratio-2": {"attn_ratio": 2},
    "attn_ratio-3-heads-4": {"attn_ratio": 3, "num_heads": 4},
    "num_layers_mlp-3": {"num_layers_mlp": 3},
    "num_layers_mlp-4": {"num_layers_mlp": 4, "mlp_ratio": 1},
    "no-affine": {"norm_elementwise_affine": False},
    "dropout-eval": {"dropout_prob": 0.2},
    "one-block": {"num_blocks": 1},
    "zero-blocks": {"num_blocks": 0},
    "no-scalar-out": {"out_s_channels": 0},
    "no-vector-out": {"out_v_channels": 0},
    "narrow": {"hidden_v_channels": 3, "hidden_s_channels": 2, "num_heads": 4},
    # head counts (the conditional net's cross-attention has the self-attention's)
    "one-head": {"num_heads": 1},
    "three-heads": {"num_heads": 3},
}
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
DTYPES = [torch.float32, torch.float64]


def _perturb(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype))


def _inputs(dtype: torch.dtype, conditional: bool, seed: int = 0) -> tuple[Tensor, ...]:
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)

    if conditional:
        return r(3, 6, 2, 4), r(3, 5, 3, 4), r(3, 6, 3), r(3, 5, 4)
    return r(3, 6, 2, 4), r(3, 6, 3)


def _max_diff(a: tuple[Tensor, ...], b: tuple[Tensor, ...]) -> float:
    assert len(a) == len(b) == 2
    diffs = []
    for x, y in zip(a, b, strict=True):
        assert x.shape == y.shape and x.dtype == y.dtype
        diffs.append((x - y).abs().max().item() if x.numel() else 0.0)
    return max(diffs)


def _build(conditional: bool, options: dict[str, Any], dtype: torch.dtype) -> torch.nn.Module:
    torch.manual_seed(0)
    cls = lgatr.ConditionalLGATrSlim if conditional else lgatr.LGATrSlim
    model = cls(**{**(COND if conditional else BASE), **options}).to(dtype).eval()
    _perturb(model)
    return model


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(OPTIONS))
def test_same_outputs(name: str, dtype: torch.dtype) -> None:
    ref = _build(False, OPTIONS[name], dtype)
    net = from_lgatr_slim(ref)
    assert isinstance(net, GATrSlim) and net.alg is STA
    assert not net.training
    args = _inputs(dtype, False)
    out_ref, out = ref(*args), net(*args)
    assert out[0].numel() == 0 or out[0].abs().max() > 1e-2
    assert _max_diff(out, out_ref) <= TOL[dtype]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", [k for k in OPTIONS if k != "zero-blocks"])
def test_same_outputs_conditional(name: str, dtype: torch.dtype) -> None:
    ref = _build(True, OPTIONS[name], dtype)
    net = from_lgatr_slim(ref)
    assert isinstance(net, ConditionalGATrSlim) and net.alg is STA
    args = _inputs(dtype, True)
    assert _max_diff(net(*args), ref(*args)) <= TOL[dtype]
    # masks: lgatr's attn_kwargs / crossattn_kwargs are gatorch's attn_mask / crossattn_mask
    g = torch.Generator().manual_seed(3)
    mask = torch.rand(3, 1, 6, 6, generator=g) > 0.4
    mask |= torch.eye(6, dtype=torch.bool)
    cmask = torch.rand(3, 1, 6, 5, generator=g) > 0.3
    cmask[..., 0] = True
    out_ref = ref(*args, attn_kwargs={"attn_mask": mask}, crossattn_kwargs={"attn_mask": cmask})
    out = net(*args, attn_mask=mask, crossattn_mask=cmask)
    assert _max_diff(out, out_ref) <= TOL[dtype]
    assert _max_diff(out, net(*args)) > 1e-4  # the masks did something


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_masks_causal_and_gradients(dtype: torch.dtype) -> None:
    ref = _build(False, {}, dtype).train()
    net = from_lgatr_slim(ref)
    assert net.training
    v, s = _inputs(dtype, False)
    mask = torch.rand(3, 1, 6, 6, generator=torch.Generator().manual_seed(1)) > 0.4
    mask |= torch.eye(6, dtype=torch.bool)
    additive = torch.zeros(6, 6, dtype=dtype).masked_fill(~torch.eye(6, dtype=torch.bool), -0.7)
    for kwargs in ({"attn_mask": mask}, {"is_causal": True}, {"attn_mask": additive}):
        assert _max_diff(net(v, s, **kwargs), ref(v, s, **kwargs)) <= TOL[dtype]
    # gradients of inputs and parameters (same names) agree too
    grads = []
    for model in (ref, net):
        vv, ss = v.clone().requires_grad_(True), s.clone().requires_grad_(True)
        out_v, out_s = model(vv, ss, attn_mask=mask)
        (out_v.square().sum() + out_s.square().sum()).backward()
        grads.append({"v": vv.grad, "s": ss.grad, **{k: p.grad for k, p in model.named_parameters()}})
    assert grads[0].keys() == grads[1].keys()
    for k, g_ref in grads[0].items():
        g = grads[1][k]
        assert (g is None) == (g_ref is None), k
        if g is not None and g_ref is not None:
            scale = g_ref.abs().max().item() + 1.0
            torch.testing.assert_close(g, g_ref, atol=TOL[dtype] * scale, rtol=TOL[dtype], msg=k)


def test_requires_grad_flags_and_state_dict_identity() -> None:
    ref: Any = _build(False, {"out_s_channels": 0}, torch.float32)
    ref.linear_in.weight_v.requires_grad_(False)  # a user freeze carries over
    net = from_lgatr_slim(ref)
    flags_ref = {k: p.requires_grad for k, p in ref.named_parameters()}
    flags = {k: p.requires_grad for k, p in net.named_parameters()}
    assert flags == flags_ref and not all(flags.values())
    sd_ref, sd = ref.state_dict(), net.state_dict()
    assert sd.keys() == sd_ref.keys()
    for k in sd:
        assert torch.equal(sd[k], sd_ref[k]), k
        assert sd[k].data_ptr() != sd_ref[k].data_ptr()  # copied, not shared


@pytest.mark.parametrize("conditional", [False, True])
def test_round_trip(conditional: bool) -> None:
    options = {
        "nonlinearity": "tanh",
        "nonlinearity_v": None,
        "mlp_ratio": 3,
        "attn_ratio": 2,
        "dropout_prob": 0.1,
    }
    ref = _build(conditional, options, torch.float64)
    net = from_lgatr_slim(ref)
    back = to_lgatr_slim(net)
    assert type(back) is type(ref) and not back.training
    for k, t in ref.state_dict().items():
        assert torch.equal(back.state_dict()[k], t), k
    args = _inputs(torch.float64, conditional)
    assert _max_diff(back(*args), ref(*args)) == 0.0
    # from gatorch: a gatorch net (random weights) -> lgatr -> gatorch computes the same function
    cls = ConditionalGATrSlim if conditional else GATrSlim
    cfg = {k: v for k, v in (COND if conditional else BASE).items()}
    mine = cls(STA, **cfg, nonlinearity="silu", num_layers_mlp=3).double()
    _perturb(mine, seed=5)
    theirs = to_lgatr_slim(mine)
    assert theirs.state_dict().keys() == mine.state_dict().keys()
    assert _max_diff(theirs(*args), mine(*args)) <= 1e-10
    again = from_lgatr_slim(theirs)
    assert again.config == mine.config
    assert _max_diff(again(*args), mine(*args)) == 0.0


def test_unconvertible_options() -> None:
    with pytest.raises(ValueError, match="naive_amp"):
        from_lgatr_slim(lgatr.LGATrSlim(**BASE, naive_amp=True))
    model = lgatr.LGATrSlim(**BASE)
    model.blocks[0].norm1.epsilon = 1e-3
    with pytest.raises(ValueError, match=r"blocks\.0\.norm1\.epsilon"):
        from_lgatr_slim(model)
    with pytest.raises(ValueError, match="num_blocks=0"):
        from_lgatr_slim(lgatr.ConditionalLGATrSlim(**{**COND, "num_blocks": 0}))
    with pytest.raises(ValueError, match="hidden_v_channels=0"):
        from_lgatr_slim(lgatr.LGATrSlim(**{**BASE, "hidden_v_channels": 0}))
    with pytest.raises(TypeError, match="LGATrSlim"):
        from_lgatr_slim(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"Minkowski.*Algebra\(3, 0, 0\)"):
        to_lgatr_slim(GATrSlim(VGA3, **{k: v for k, v in BASE.items()}))
    with pytest.raises(TypeError, match="GATrSlim"):
        to_lgatr_slim(torch.nn.Linear(2, 2))  # type: ignore[arg-type]
    # Cl(1, 3) with e1 timelike has the same metric in basis order: it converts
    net = GATrSlim(Algebra(1, 3), **BASE)
    args = _inputs(torch.float32, False)
    assert _max_diff(to_lgatr_slim(net)(*args), net(*args)) == 0.0


def test_compiled_lgatr_model_converts() -> None:
    """lgatr's compile=True wraps forward only: the weights (and the function) convert."""
    ref = lgatr.LGATrSlim(**BASE, compile=True, compile_kwargs={"backend": "eager"})
    net = from_lgatr_slim(ref)
    args = _inputs(torch.float32, False)
    assert _max_diff(net(*args), ref(*args)) <= 1e-5


def test_missing_lgatr_raises_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lgatr", None)
    with pytest.raises(ImportError, match="lgatr"):
        to_lgatr_slim(GATrSlim(STA, **BASE))


def _other_heads(model: torch.nn.Module) -> None:
    model.blocks[1].attention = lgatr.LGATrSlim(**{**BASE, "num_heads": 4}).blocks[0].attention


def _other_nonlinearity(model: torch.nn.Module) -> None:
    model.blocks[1].mlp = lgatr.LGATrSlim(**BASE, nonlinearity="relu").blocks[0].mlp


def _set(path: str, module: torch.nn.Module | None) -> Any:
    def edit(model: torch.nn.Module) -> None:
        parent, _, name = path.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        if module is None:
            delattr(owner, name)
        else:
            setattr(owner, name, module)

    return edit


REPLACED: dict[str, tuple[Any, type[Exception], str]] = {
    # a parameter-free module swapped for the user's: before, a silently different function
    "norm-without-gains": (
        _set("blocks.1.norm1", torch.nn.Identity()),
        TypeError,
        r"model\.blocks\.1\.norm1 is a torch\.nn\.modules\.linear\.Identity, not a module lgatr builds "
        r"there \(expected lgatr's SlimRMSNorm\)",
    ),
    "linear-out": (
        _set("linear_out", torch.nn.Linear(8, 3)),
        TypeError,
        r"model\.linear_out is a torch\.nn\.modules\.linear\.Linear.*expected lgatr's SlimLinear",
    ),
    "attention-of-block-0": (
        _set("blocks.0.attention", torch.nn.Identity()),
        TypeError,
        r"model\.blocks\.0\.attention is a .*Identity.*expected lgatr's SlimSelfAttention",
    ),
    "deleted-attention": (
        _set("blocks.0.attention", None),
        ValueError,
        r"model\.blocks\.0\.attention is missing \(expected lgatr's SlimSelfAttention\)",
    ),
    "glu-of-block-0": (
        lambda m: m.blocks[0].mlp.layers.__setitem__(0, torch.nn.Identity()),
        ValueError,
        r"model\.blocks\.0\.mlp\.layers has no SlimGLU",
    ),
    "extra-module": (
        _set("blocks.1.extra", torch.nn.ReLU()),
        ValueError,
        r"model\.blocks\.1\.extra is a module lgatr does not build for these options \(ReLU\)",
    ),
    # same parameter shapes, other heads: before, a silently different function
    "block-with-other-heads": (
        _other_heads,
        ValueError,
        r"model\.blocks\.1\.attention\.hidden_v_channels is 2 where an lgatr net built like "
        r"model\.blocks\.0 has 4",
    ),
    "block-with-other-nonlinearity": (
        _other_nonlinearity,
        ValueError,
        r"model\.blocks\.1\.mlp\.layers\.0\.nonlinearity is <function relu",
    ),
}


@pytest.mark.parametrize("name", list(REPLACED))
def test_replaced_modules_are_named(name: str) -> None:
    edit, error, match = REPLACED[name]
    model = lgatr.LGATrSlim(**BASE, norm_elementwise_affine=False)
    edit(model)
    with pytest.raises(error, match=match):
        from_lgatr_slim(model)


def test_replaced_cross_attention_module_is_named() -> None:
    model = lgatr.ConditionalLGATrSlim(**COND)
    model.blocks[1].crossattention.linear_in_kv = torch.nn.Identity()
    with pytest.raises(TypeError, match=r"model\.blocks\.1\.crossattention\.linear_in_kv is a .*Identity"):
        from_lgatr_slim(model)
