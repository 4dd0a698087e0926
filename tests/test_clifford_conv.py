"""Clifford convolutions and the Clifford linear layer (``gatorch.layers.fields.conv``).

Two kinds of checks:

* against the installed ``cliffordlayers`` package (skipped where it is missing): every
  signature it supports in 1, 2 and 3 dimensions, kernel sizes, stride, padding (ints and
  'same'), dilation, bias on and off, ``rotation=True``, outputs and gradients in float32
  (1e-5) and float64 (1e-10), through :func:`gatorch.interop.cliffordlayers.from_cliffordlayers`;
  padding modes against cliffordlayers on a pre-padded input, groups against cliffordlayers
  run group by group (its own ``groups`` is not a Clifford convolution, see the interop module);
* independent of it: the convolution equals a direct loop over kernel offsets of ``alg.gp``
  (degenerate Cl(2,0,1), spacetime algebra, VGA3 on 1-D / 2-D / 3-D grids), the kernel equals the
  formula on the dense Cayley tensor, commutation with left multiplication, the rotational
  kernel's rotation, errors, and fresh ``torch.compile(fullgraph=True)`` equal to eager.
"""

from __future__ import annotations

import itertools
import math
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gatorch import STA, VGA3, Algebra
from gatorch.functional.fields.conv import (
    clifford_conv,
    clifford_kernel,
    clifford_linear,
    clifford_rotation_kernel,
    conv_plan,
)
from gatorch.layers.fields.conv import CliffordConv1d, CliffordConv2d, CliffordConv3d, CliffordLinear

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
#: Every signature cliffordlayers supports with entries +-1, per number of basis vectors.
SIGNATURES = {n: [list(g) for g in itertools.product([1, -1], repeat=n)] for n in (1, 2, 3)}
SIG_CASES = [(n, g) for n in (1, 2, 3) for g in SIGNATURES[n]]
OURS = {1: CliffordConv1d, 2: CliffordConv2d, 3: CliffordConv3d}
GRID = {1: (9,), 2: (7, 6), 3: (5, 4, 5)}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape: int, seed: int, dtype: torch.dtype = torch.float64) -> Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=torch.float64).to(dtype)


def _cl() -> Any:
    pytest.importorskip("cliffordlayers")
    from cliffordlayers.nn.modules import cliffordconv, cliffordlinear

    return cliffordconv, cliffordlinear


def _their_conv(n: int, g: Sequence[float], cin: int, cout: int, seed: int, **kw: Any) -> Any:
    """A cliffordlayers convolution with random weights, bias, scale and (non-zero) zero kernel."""
    conv, _ = _cl()
    cls = {1: conv.CliffordConv1d, 2: conv.CliffordConv2d, 3: conv.CliffordConv3d}[n]
    torch.manual_seed(seed)
    m = cls(list(g), cin, cout, **kw).double()
    with torch.no_grad():  # unit-variance outputs for unit-variance inputs (what training sees)
        std = 1.0 / math.sqrt(m.weight[0][0].numel() * len(g) ** 2)
        for k, w in enumerate(m.weight):
            w.copy_(std * _randn(*w.shape, seed=seed + 100 + k))
        if m.bias is not None:
            m.bias.copy_(_randn(*m.bias.shape, seed=seed + 99))
    return m


def _grads(module: nn.Module) -> dict[str, Tensor]:
    return {k: p.grad for k, p in module.named_parameters() if p.grad is not None}


def _run(
    module: nn.Module, x: Tensor, seed: int, fn: Callable[[Tensor], Tensor] | None = None
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Output, input gradient and parameter gradients of ``fn`` (default ``module``) at ``x``."""
    module.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    y = (module if fn is None else fn)(x)
    cot = _randn(*y.shape, seed=seed, dtype=y.dtype)
    (y * cot).sum().backward()
    assert x.grad is not None
    return y.detach(), x.grad, _grads(module)


def _compare_with_theirs(theirs: Any, x_shape: tuple[int, ...], seed: int = 0) -> None:
    """Convert, run both in float64 and float32: outputs and all gradients equal (``TOL``)."""
    from gatorch.interop.cliffordlayers import from_cliffordlayers

    for dtype in (torch.float64, torch.float32):
        src = theirs.to(dtype)
        ours = from_cliffordlayers(src)
        assert next(ours.parameters()).dtype == dtype
        x = _randn(*x_shape, seed=seed + 1, dtype=dtype)
        y_t, gx_t, gw_t = _run(src, x, seed + 2)
        y_o, gx_o, gw_o = _run(ours, x, seed + 2)
        assert y_o.shape == y_t.shape
        tol = TOL[dtype]
        torch.testing.assert_close(y_o, y_t, atol=tol, rtol=tol)
        torch.testing.assert_close(gx_o, gx_t, atol=tol, rtol=tol)
        # parameter gradients are sums over the batch and the whole grid: compare them to
        # ``tol`` relative to their largest entry (the scale of the rounding of such sums)
        pairs = []
        dim = int(src.n_blades)
        if isinstance(src.weight, nn.ParameterList):  # convolutions: one tensor per blade (+ rotation)
            pairs += [(gw_o["weight"][..., b], gw_t[f"weight.{b}"]) for b in range(dim)]
            if src.rotation:
                pairs.append((gw_o["scale_param"], gw_t["scale_param"]))
        else:  # linear: (blades, out, in)
            pairs.append((gw_o["weight"].permute(2, 0, 1), gw_t["weight"]))
        if src.bias is not None:
            pairs.append((gw_o["bias"].T, gw_t["bias"]))
        for a, b in pairs:
            torch.testing.assert_close(a, b, atol=tol * max(1.0, b.abs().max().item()), rtol=tol)


# -- against cliffordlayers ----------------------------------------------------------------------------
CONV_CONFIGS = {
    "k3-pad1-bias": {"kernel_size": 3, "padding": 1},
    "stride2-dilation2-nobias": {"kernel_size": 2, "stride": 2, "dilation": 2, "padding": 1, "bias": False},
    "k1": {"kernel_size": 1},
}


@pytest.mark.parametrize("config", sorted(CONV_CONFIGS))
@pytest.mark.parametrize(("n", "g"), SIG_CASES, ids=[f"{n}d-{g}" for n, g in SIG_CASES])
def test_conv_matches_cliffordlayers(n: int, g: list[int], config: str) -> None:
    theirs = _their_conv(n, g, 3, 4, seed=n, **CONV_CONFIGS[config])
    _compare_with_theirs(theirs, (2, 3, *GRID[n], 2**n))


@pytest.mark.parametrize(
    ("n", "kw"),
    [
        (2, {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 0), "dilation": (1, 2)}),
        (2, {"kernel_size": 3, "padding": "same"}),
        (2, {"kernel_size": (2, 3), "padding": "same", "dilation": (2, 1)}),
        (3, {"kernel_size": (1, 2, 3), "stride": (1, 2, 1), "padding": (0, 1, 2)}),
        (3, {"kernel_size": 2, "padding": "valid", "bias": False}),
        (1, {"kernel_size": 4, "stride": 3, "padding": 2}),
    ],
)
def test_conv_tuples_and_string_padding_match_cliffordlayers(n: int, kw: dict[str, Any]) -> None:
    g = SIGNATURES[n][-1 if n != 2 else 1]
    _compare_with_theirs(_their_conv(n, g, 2, 3, seed=7, **kw), (2, 2, *GRID[n], 2**n))


@pytest.mark.parametrize("g", [[1, 0], [0, -1], [1, 0, -1]])
def test_degenerate_signature_matches_cliffordlayers(g: list[int]) -> None:
    """cliffordlayers also takes 0 entries; its kernels are multilinear in g, so they stay exact."""
    n = len(g)
    _compare_with_theirs(_their_conv(n, g, 2, 3, seed=3, kernel_size=3, padding=1), (2, 2, *GRID[n], 2**n))


@pytest.mark.parametrize(
    "kw",
    [
        {"kernel_size": 3, "padding": 1},
        {"kernel_size": (1, 3), "stride": 2, "bias": False},
        {"kernel_size": 1},
    ],
)
def test_rotation_matches_cliffordlayers(kw: dict[str, Any]) -> None:
    theirs = _their_conv(2, [-1, -1], 3, 4, seed=11, rotation=True, **kw)
    with torch.no_grad():  # exercise every parameter: cliffordlayers' zero kernel is zeros by default
        std = 1.0 / math.sqrt(theirs.scale_param[0].numel() * 3)  # three rotated blades
        theirs.scale_param.copy_(std * _randn(*theirs.scale_param.shape, seed=12))
        theirs.zero_kernel.copy_(_randn(*theirs.zero_kernel.shape, seed=13))
    _compare_with_theirs(theirs, (2, 3, 7, 6, 4))


def test_rotation_default_init_matches_cliffordlayers() -> None:
    """cliffordlayers' own initialisation (small weights, where the 1e-4 in the norm matters)."""
    conv, _ = _cl()
    torch.manual_seed(0)
    theirs = conv.CliffordConv2d([-1, -1], 4, 4, kernel_size=3, padding=1, rotation=True).double()
    _compare_with_theirs(theirs, (2, 4, 6, 6, 4))


@pytest.mark.parametrize("g", [g for n in (1, 2, 3) for g in SIGNATURES[n]], ids=str)
def test_linear_matches_cliffordlayers(g: list[int]) -> None:
    _, lin = _cl()
    torch.manual_seed(0)
    theirs = lin.CliffordLinear(g, 3, 5).double()
    with torch.no_grad():
        theirs.weight.copy_(_randn(*theirs.weight.shape, seed=1))
        theirs.bias.copy_(_randn(*theirs.bias.shape, seed=2))
    _compare_with_theirs(theirs, (4, 3, 2 ** len(g)))


def test_linear_without_bias_matches_cliffordlayers_kernel() -> None:
    """cliffordlayers' CliffordLinear(bias=False) fails in its forward (``None.view``); compare
    with its kernel through ``F.linear`` instead, as its forward would compute."""
    from gatorch.interop.cliffordlayers import from_cliffordlayers

    _, lin = _cl()
    theirs = lin.CliffordLinear([1, -1, 1], 3, 2, bias=False).double()
    x = _randn(5, 3, 8, seed=3)
    with pytest.raises(AttributeError):
        theirs(x)
    _, k = theirs._get_kernel(theirs.weight, theirs.g)
    ref = F.linear(x.permute(0, 2, 1).reshape(5, -1), k).view(5, 8, -1).permute(0, 2, 1)
    ours = from_cliffordlayers(theirs)
    assert ours.bias is None
    torch.testing.assert_close(ours(x), ref, atol=1e-12, rtol=0)


def _pad_field(x: Tensor, pads: Sequence[int], mode: str) -> Tensor:
    """``F.pad`` of the spatial axes of a ``(B, C, *spatial, dim)`` field."""
    b, c, dim = x.shape[0], x.shape[1], x.shape[-1]
    flat = x.movedim(-1, 1).reshape(b, dim * c, *x.shape[2:-1])
    padded = F.pad(flat, list(pads), mode=mode)
    return padded.reshape(b, dim, c, *padded.shape[2:]).movedim(1, -1)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_padding_modes_match_cliffordlayers_on_padded_input(n: int, mode: str) -> None:
    """cliffordlayers has only zero padding: compare with it on the input padded by ``F.pad``."""
    from gatorch.interop.cliffordlayers import from_cliffordlayers

    pad = (1, 2, 1)[:n]
    theirs = _their_conv(n, SIGNATURES[n][1], 2, 3, seed=5, kernel_size=3, stride=2)
    base: Any = from_cliffordlayers(theirs)
    ours = OURS[n](base.alg, 2, 3, 3, stride=2, padding=pad, padding_mode=mode).double()
    ours.load_state_dict(base.state_dict())
    x = _randn(2, 2, *GRID[n], 2**n, seed=6)
    pads = [p for p in reversed(pad) for _ in range(2)]
    ref = theirs(_pad_field(x, pads, mode))
    torch.testing.assert_close(ours(x), ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize(("n", "groups"), [(1, 2), (2, 2), (2, 3), (3, 2)])
def test_groups_match_cliffordlayers_per_group(n: int, groups: int) -> None:
    """gatorch's groups split channels: each group is a cliffordlayers convolution of its channels."""
    from gatorch.interop.cliffordlayers import from_cliffordlayers

    cin, cout = 2 * groups, 3 * groups
    g = SIGNATURES[n][-1]
    parts = [_their_conv(n, g, 2, 3, seed=20 + k, kernel_size=2, padding=1) for k in range(groups)]
    converted: list[Any] = [from_cliffordlayers(p) for p in parts]
    ours: Any = OURS[n](converted[0].alg, cin, cout, 2, padding=1, groups=groups).double()
    with torch.no_grad():
        ours.weight.copy_(torch.cat([c.weight for c in converted]))
        ours.bias.copy_(torch.cat([c.bias for c in converted]))
    x = _randn(2, cin, *GRID[n], 2**n, seed=8)
    ref = torch.cat([p(x[:, 2 * k : 2 * k + 2]) for k, p in enumerate(parts)], dim=1)
    torch.testing.assert_close(ours(x), ref, atol=1e-10, rtol=0)


def test_blade_order_matches_cliffordlayers_by_name() -> None:
    """The blade names cliffordlayers documents are gatorch's component order for its signatures."""
    from gatorch.interop.cliffordlayers import algebra_from_signature

    assert algebra_from_signature([1, 1]).blade_names == ("1", "e1", "e2", "e12")
    assert algebra_from_signature([-1, 1, -1]).blade_names == (
        *("1", "e1", "e2", "e3"),
        *("e12", "e13", "e23", "e123"),
    )
    alg = algebra_from_signature(torch.tensor([1.0, -1.0, -1.0]))
    assert alg.metric == (1, -1, -1)  # cliffordlayers' order is kept (not sorted into (p, q, r))


def test_interop_errors() -> None:
    from gatorch.interop.cliffordlayers import from_cliffordlayers

    conv, lin = _cl()
    with pytest.raises(ValueError, match=r"groups=2 is not convertible"):
        from_cliffordlayers(conv.CliffordConv2d([1, 1], 4, 4, kernel_size=1, groups=2))
    with pytest.raises(ValueError, match=r"must be \+1, -1 or 0.*2\.0"):
        from_cliffordlayers(conv.CliffordConv2d([1, 2], 2, 2, kernel_size=1))
    with pytest.raises(ValueError, match=r"must be \+1, -1 or 0"):
        from_cliffordlayers(lin.CliffordLinear([1, 0.5], 2, 2))
    with pytest.raises(TypeError, match=r"cannot convert torch\.nn\.modules\.linear\.Linear"):
        from_cliffordlayers(nn.Linear(2, 2))
    with pytest.raises(TypeError, match=r"expected a cliffordlayers nn\.Module, got list"):
        from_cliffordlayers([1, 2])  # type: ignore[arg-type]


def test_cliffordlayers_groups_mix_blades() -> None:
    """Why groups > 1 is refused: in cliffordlayers an output blade then misses some input blades."""
    conv, _ = _cl()
    torch.manual_seed(0)
    m = conv.CliffordConv2d([1, 1], 2, 2, kernel_size=1, groups=2, bias=False).double()
    x = _randn(1, 2, 3, 3, 4, seed=0)
    x_cut = x.clone()
    x_cut[..., 2:] = 0  # remove the e2 and e12 components
    # a Clifford convolution's scalar output reads every input blade (x_a w_a has a scalar part)
    assert torch.equal(m(x)[..., 0], m(x_cut)[..., 0])


def test_converted_module_keeps_mode_device_dtype() -> None:
    from gatorch.interop.cliffordlayers import from_cliffordlayers

    theirs = _their_conv(3, [1, 1, 1], 2, 2, seed=0, kernel_size=1).float().eval()
    ours = from_cliffordlayers(theirs)
    assert isinstance(ours, CliffordConv3d) and not ours.training
    assert ours.weight.dtype == torch.float32 and ours.weight.shape == (2, 2, 1, 1, 1, 8)
    assert ours.alg == Algebra(3, 0, 0)


def test_extension_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    """Classes it does not know go to ``gatorch.interop.cliffordlayers_fourier.convert`` if present."""
    from gatorch.interop import cliffordlayers as interop

    _cl()

    class Spectral(nn.Module):
        pass

    made = nn.Identity()
    fake = types.ModuleType(interop.EXTENSION_MODULE)
    fake.convert = lambda m: made if isinstance(m, Spectral) else None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, interop.EXTENSION_MODULE, fake)
    assert interop.from_cliffordlayers(Spectral()) is made
    with pytest.raises(TypeError, match="cannot convert"):
        interop.from_cliffordlayers(nn.ReLU())
    fake.convert = lambda m: "not a module"  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="returned str"):
        interop.from_cliffordlayers(Spectral())
    monkeypatch.setitem(sys.modules, interop.EXTENSION_MODULE, None)  # the module does not exist
    with pytest.raises(TypeError, match="cannot convert"):
        interop.from_cliffordlayers(Spectral())


def test_missing_cliffordlayers_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from gatorch.interop.cliffordlayers import from_cliffordlayers

    monkeypatch.setitem(sys.modules, "cliffordlayers.nn.modules.cliffordconv", None)
    with pytest.raises(ImportError, match="pip install cliffordlayers"):
        from_cliffordlayers(nn.Linear(1, 1))


# -- independent of cliffordlayers: a direct loop over kernel offsets of alg.gp -------------------------
def _reference_conv(
    alg: Algebra,
    x: Tensor,
    w: Tensor,
    bias: Tensor | None,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
    mode: str,
) -> Tensor:
    n = w.ndim - 3
    pads = [p for p in reversed(padding) for _ in range(2)]
    xp = _pad_field(x, pads, "constant" if mode == "zeros" else mode)
    kernel = w.shape[2:-1]
    sizes = [(xp.shape[2 + d] - dilation[d] * (kernel[d] - 1) - 1) // stride[d] + 1 for d in range(n)]
    cin, cout = w.shape[1], w.shape[0] // groups
    out = x.new_zeros(x.shape[0], w.shape[0], *sizes, alg.dim)
    for offset in itertools.product(*(range(k) for k in kernel)):
        cut = tuple(
            slice(
                dilation[d] * offset[d], dilation[d] * offset[d] + stride[d] * (sizes[d] - 1) + 1, stride[d]
            )
            for d in range(n)
        )
        window: tuple[Any, ...] = (slice(None), slice(None), *cut)
        xs = xp[window]  # (B, C, *sizes, dim)
        at_offset: tuple[Any, ...] = (slice(None), slice(None), *offset)
        expand: tuple[Any, ...] = (None, slice(None), slice(None), *([None] * n))  # (1, cout, cin, *1, dim)
        for grp in range(groups):
            xg = xs[:, grp * cin : (grp + 1) * cin]
            wg = w[grp * cout : (grp + 1) * cout][at_offset]  # (cout, cin, dim)
            prod = alg.gp(xg[:, None], wg[expand])
            out[:, grp * cout : (grp + 1) * cout] += prod.sum(2)
    if bias is not None:
        per_channel: tuple[Any, ...] = (None, slice(None), *([None] * n))
        out = out + bias[per_channel]
    return out


LOOP_CASES = [
    ("Cl(2,0,1)", Algebra(2, 0, 1), 2, {"kernel_size": 3, "padding": 1}),
    (
        "Cl(2,0,1)-reflect-groups",
        Algebra(2, 0, 1),
        2,
        {"kernel_size": 3, "padding": (1, 2), "groups": 2, "padding_mode": "reflect"},
    ),
    ("STA-2d", STA, 2, {"kernel_size": (2, 3), "stride": (2, 1), "dilation": (1, 2), "padding": 1}),
    ("STA-2d-circular", STA, 2, {"kernel_size": 3, "padding": 1, "padding_mode": "circular"}),
    ("VGA3-1d-replicate", VGA3, 1, {"kernel_size": 3, "padding": 2, "padding_mode": "replicate"}),
    ("VGA3-3d", VGA3, 3, {"kernel_size": 2, "stride": (1, 2, 1), "padding": (1, 0, 1), "bias": False}),
    ("Cl(1,1)-3d-reflect", Algebra(1, 1), 3, {"kernel_size": 3, "padding": 1, "padding_mode": "reflect"}),
    ("Cl(0,3)-1d", Algebra(0, 3), 1, {"kernel_size": 2, "dilation": 3}),
]


@pytest.mark.parametrize(("name", "alg", "n", "kw"), LOOP_CASES, ids=[c[0] for c in LOOP_CASES])
def test_conv_equals_loop_over_offsets(name: str, alg: Algebra, n: int, kw: dict[str, Any]) -> None:
    groups = kw.get("groups", 1)
    cin, cout = 2 * groups, 3 * groups
    layer = OURS[n](alg, cin, cout, **kw).double()
    with torch.no_grad():
        if layer.bias is not None:
            layer.bias.copy_(_randn(*layer.bias.shape, seed=1))
    x = _randn(2, cin, *GRID[n], alg.dim, seed=2)
    ref = _reference_conv(
        alg,
        x,
        layer.weight.detach(),
        None if layer.bias is None else layer.bias.detach(),
        layer.stride,
        layer.padding,  # type: ignore[arg-type]
        layer.dilation,
        groups,
        layer.padding_mode,
    )
    torch.testing.assert_close(layer(x), ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize("alg", [Algebra(2, 0, 1), STA, Algebra(1, 0)], ids=repr)
def test_kernel_is_the_cayley_formula(alg: Algebra) -> None:
    """``K[o*dim + c, i*dim + a] = sum_b W[o, i, b] T[a, b, c]`` with the dense Cayley tensor."""
    w = _randn(3, 2, 2, alg.dim, seed=0)  # (out, in, kernel 2, dim)
    table = torch.from_numpy(alg.cayley("gp"))
    expected = torch.einsum("oikb,abc->ocaik", w, table)  # (out, c, a, in, k)
    expected = expected.permute(0, 1, 3, 2, 4).reshape(3 * alg.dim, 2 * alg.dim, 2)
    torch.testing.assert_close(clifford_kernel(alg, w), expected, atol=0, rtol=0)


@pytest.mark.parametrize("alg", [Algebra(3, 0, 1), Algebra(1, 3), Algebra(0, 2)], ids=repr)
def test_linear_equals_sum_of_products(alg: Algebra) -> None:
    layer: Any = CliffordLinear(alg, 3, 2).double()
    with torch.no_grad():
        layer.bias.copy_(_randn(2, alg.dim, seed=1))
    x = _randn(4, 5, 3, alg.dim, seed=2)
    ref = alg.gp(x[..., None, :, :], layer.weight.detach()).sum(-2) + layer.bias.detach()
    torch.testing.assert_close(layer(x), ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(clifford_linear(alg, x, layer.weight, layer.bias), ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize(
    ("alg", "n", "kernel", "mode"),
    [
        (VGA3, 2, 1, "zeros"),
        (STA, 2, 1, "zeros"),
        (Algebra(2, 0, 1), 2, 3, "reflect"),
        (Algebra(0, 2), 1, 3, "circular"),
        (VGA3, 3, 2, "replicate"),
    ],
    ids=lambda v: repr(v) if isinstance(v, Algebra) else str(v),
)
def test_commutes_with_left_multiplication(alg: Algebra, n: int, kernel: int, mode: str) -> None:
    """With the weight on the right, ``conv(u x) = u conv(x)`` for a fixed multivector ``u``
    (pointwise or any kernel, any padding mode: padding commutes with a pointwise map)."""
    layer = OURS[n](alg, 3, 2, kernel, padding=kernel // 2, padding_mode=mode, bias=False).double()
    x = _randn(2, 3, *GRID[n], alg.dim, seed=4)
    u = _randn(alg.dim, seed=5)
    left = layer(alg.gp(u, x))
    torch.testing.assert_close(left, alg.gp(u, layer(x)), atol=1e-10, rtol=0)
    # the other side does not commute (the check can fail): x -> x u
    assert (layer(alg.gp(x, u)) - alg.gp(layer(x), u)).abs().max() > 1e-3


def test_rotation_kernel_rotates() -> None:
    """With eps = 0 the rotational kernel maps the non-scalar part by ``scale * w v conj(w) / |w|^2``
    (a rotation: norms scale by |scale|), the scalar output is ``<x w>_0``, and the input scalar
    reaches the other blades through ``zero_kernel``."""
    alg = Algebra.from_signature([-1, -1])
    w = _randn(1, 1, 1, 4, seed=0)
    scale, zero = _randn(1, 1, 1, seed=1), _randn(1, 1, 1, seed=2)
    k = clifford_rotation_kernel(alg, w, scale, zero, eps=0.0)[..., 0]  # (4, 4)
    x = _randn(6, 4, seed=3)
    y = x @ k.T
    wv = w[0, 0, 0]
    s = alg.index("1")
    vec = x.clone()
    vec[:, s] = 0
    rotated = alg.gp(alg.gp(wv, vec), alg.conjugate(wv)) / wv.square().sum()
    expected = scale[0, 0, 0] * rotated + zero[0, 0, 0] * x[:, s : s + 1]
    expected[:, s] = alg.gp(x, wv)[:, s]
    torch.testing.assert_close(y, expected, atol=1e-12, rtol=0)
    nonscalar = [c for c in range(4) if c != s]
    torch.testing.assert_close(
        (y - zero[0, 0, 0] * x[:, s : s + 1])[:, nonscalar].norm(dim=-1),
        scale[0, 0, 0].abs() * x[:, nonscalar].norm(dim=-1),
        atol=1e-12,
        rtol=0,
    )


def test_rotation_on_other_grids() -> None:
    """The rotational kernel is the algebra's, not the grid's: Cl(0, 2) on a 1-D and a 3-D grid."""
    alg = Algebra.from_signature([-1, -1])
    for n in (1, 3):
        layer: Any = OURS[n](alg, 2, 3, 2, rotation=True).double()
        x = _randn(2, 2, *GRID[n], 4, seed=n)
        k = clifford_rotation_kernel(alg, layer.weight, layer.scale_param, layer.zero_kernel)
        conv = {1: F.conv1d, 3: F.conv3d}[n]
        flat = x.movedim(-1, 2).reshape(2, 8, *GRID[n])
        ref = conv(flat, k, layer.bias.reshape(-1)).unflatten(1, (3, 4)).movedim(2, -1)
        torch.testing.assert_close(layer(x), ref, atol=1e-12, rtol=0)


def test_initialisation_preserves_variance() -> None:
    torch.manual_seed(0)
    for alg in (VGA3, Algebra(2, 0, 1)):
        layer = CliffordConv2d(alg, 16, 16, 3, padding=1)
        y = layer(torch.randn(4, 16, 12, 12, alg.dim))
        assert 0.6 < y[:, :, 1:-1, 1:-1].var().item() < 1.5
    assert layer.bias is not None and torch.count_nonzero(layer.bias) == 0


def test_plan_is_a_signed_permutation_per_row() -> None:
    """Every output blade reads each input blade through exactly one weight blade (non-degenerate)."""
    plan = conv_plan(STA)
    for row in plan.source:
        assert sorted(row) == list(range(STA.dim))
    assert all(abs(s) == 1.0 for row in plan.sign for s in row)
    degenerate = conv_plan(Algebra(2, 0, 1))
    assert Algebra(2, 0, 1).gp_table.nnz == 4**2 * 3  # products with e0 vanish
    assert sum(s == 0.0 for row in degenerate.sign for s in row) == 8 * 8 - 48


# -- errors ---------------------------------------------------------------------------------------------
def test_layer_errors() -> None:
    alg = VGA3
    conv = CliffordConv2d(alg, 3, 4, 3)
    with pytest.raises(ValueError, match=r"expected last dimension 8"):
        conv(torch.randn(2, 3, 5, 5, 4))
    with pytest.raises(
        ValueError, match=r"expected input of shape \(batch, 3, \*, \*, 8\).*got \(2, 2, 5, 5, 8\)"
    ):
        conv(torch.randn(2, 2, 5, 5, 8))
    with pytest.raises(ValueError, match=r"2 spatial dimensions.*got \(2, 3, 5, 8\)"):
        conv(torch.randn(2, 3, 5, 8))
    with pytest.raises(ValueError, match=r"multiples of groups \(2\)"):
        CliffordConv1d(alg, 3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"padding_mode must be one of .* got 'mirror'"):
        CliffordConv1d(alg, 2, 2, 3, padding_mode="mirror")
    with pytest.raises(
        ValueError, match=r"kernel_size must be an int >= 1 or a tuple of 3 such ints, got \(3, 3\)"
    ):
        CliffordConv3d(alg, 2, 2, (3, 3))
    with pytest.raises(ValueError, match=r"padding='same' needs stride 1"):
        CliffordConv2d(alg, 2, 2, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"metric \[-1, -1\].*got Algebra\(2, 0, 0\)"):
        CliffordConv2d(Algebra(2, 0), 2, 2, 3, rotation=True)
    with pytest.raises(TypeError, match=r"alg must be a gatorch.Algebra"):
        CliffordConv2d([1, 1], 2, 2, 3)  # type: ignore[arg-type]
    lin = CliffordLinear(alg, 3, 2)
    with pytest.raises(ValueError, match=r"expected input of shape \(\.\.\., 3, 8\), got \(5, 2, 8\)"):
        lin(torch.randn(5, 2, 8))


def test_functional_errors() -> None:
    alg = VGA3
    x, w = torch.randn(2, 4, 6, 6, 8), torch.randn(3, 2, 3, 3, 8)
    with pytest.raises(ValueError, match=r"expected 4 input channels"):
        clifford_conv(alg, x[:, :3], torch.randn(4, 2, 3, 3, 8), groups=2)
    with pytest.raises(
        ValueError, match=r"out_channels \(3, weight axis 0\) must be a multiple of groups \(2\)"
    ):
        clifford_conv(alg, x, w, groups=2)
    with pytest.raises(ValueError, match=r"expected a bias of shape \(3, 8\) or None, got \(3,\)"):
        clifford_conv(alg, x[:, :2], w, torch.zeros(3))
    with pytest.raises(ValueError, match=r"1, 2 or 3 spatial dimensions"):
        clifford_conv(alg, torch.randn(1, 2, 3, 3, 3, 3, 8), torch.randn(3, 2, 1, 1, 1, 1, 8))
    with pytest.raises(ValueError, match=r"blades of Algebra\(3, 0, 0\) last"):
        clifford_conv(alg, x, torch.randn(3, 2, 3, 3, 4))
    with pytest.raises(ValueError, match=r"rotation=True needs scale_param"):
        clifford_conv(Algebra(0, 2), torch.randn(1, 2, 4, 4), torch.randn(1, 2, 1, 4), rotation=True)
    with pytest.raises(ValueError, match=r"stride must be an int >= 1"):
        clifford_conv(alg, x[:, :2], w, stride=0)
    with pytest.raises(ValueError, match=r"expected scale_param of shape \(1, 2, 1\)"):
        clifford_rotation_kernel(Algebra(0, 2), torch.randn(1, 2, 1, 4), torch.randn(2), torch.randn(1, 2, 1))


# -- compile ----------------------------------------------------------------------------------------------
COMPILE_CASES = {
    "conv1d-VGA3": (lambda: CliffordConv1d(VGA3, 2, 3, 3, padding=1), (2, 2, 7, 8)),
    "conv2d-Cl(2,0,1)-reflect-groups": (
        lambda: CliffordConv2d(Algebra(2, 0, 1), 4, 2, 3, padding=1, padding_mode="reflect", groups=2),
        (2, 4, 5, 6, 8),
    ),
    "conv2d-rotation": (
        lambda: CliffordConv2d(Algebra.from_signature([-1, -1]), 2, 3, 3, stride=2, rotation=True),
        (2, 2, 7, 7, 4),
    ),
    "conv3d-STA": (lambda: CliffordConv3d(STA, 2, 2, 2, padding="same"), (1, 2, 3, 4, 3, 16)),
    "linear-PGA3": (lambda: CliffordLinear(Algebra(3, 0, 1), 3, 2), (4, 5, 3, 16)),
}


@pytest.mark.parametrize("case", sorted(COMPILE_CASES))
def test_fresh_compile_matches_eager(case: str) -> None:
    build, shape = COMPILE_CASES[case]
    torch._dynamo.reset()
    layer = build().double()
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    x = _randn(*shape, seed=0)
    y_c, gx_c, gw_c = _run(layer, x, seed=1, fn=compiled)
    y_e, gx_e, gw_e = _run(layer, x, seed=1)
    torch.testing.assert_close(y_c, y_e, atol=1e-10, rtol=0)
    torch.testing.assert_close(gx_c, gx_e, atol=1e-10, rtol=0)
    assert gw_c.keys() == gw_e.keys() and "weight" in gw_c
    for k in gw_c:
        torch.testing.assert_close(gw_c[k], gw_e[k], atol=1e-10, rtol=0)


def test_fresh_compile_inductor() -> None:
    torch._dynamo.reset()
    layer = CliffordConv2d(Algebra(2, 0), 3, 4, 3, padding=1, padding_mode="circular")
    compiled = torch.compile(layer, fullgraph=True)
    x = _randn(2, 3, 8, 8, 4, seed=0, dtype=torch.float32)
    y_c, gx_c, gw_c = _run(layer, x, seed=1, fn=compiled)
    y_e, gx_e, gw_e = _run(layer, x, seed=1)
    torch.testing.assert_close(y_c, y_e, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gx_c, gx_e, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gw_c["weight"], gw_e["weight"], atol=1e-4, rtol=1e-5)


def test_output_layout_chains_without_copy() -> None:
    """2-D / 3-D outputs are a contiguous (batch, *spatial, channels, dim) tensor (channels-last,
    what the next convolution reads without a copy); 1-D outputs a contiguous (batch, channels,
    dim, length) one."""
    alg = Algebra(2, 0)
    for n, check in (
        (2, lambda y: y.movedim(1, -2)),
        (3, lambda y: y.movedim(1, -2)),
        (1, lambda y: y.movedim(-1, 2)),
    ):
        layer = OURS[n](alg, 2, 3, 3, padding=1, padding_mode="circular" if n == 2 else "zeros")
        y = layer(torch.randn(2, 2, *GRID[n], alg.dim))
        assert check(y).is_contiguous(), (n, y.stride())
