"""The lean kernels of layout layers (issue 24, the GATr-step target): a layout layer pays only
for the blades it stores, in time and in what autograd saves for the backward pass."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from gatorch import PGA3, STA, Algebra
from gatorch.algebras import Layout
from gatorch.functional.linear import (
    _layout_key,
    _plan_from_key,
    equi_linear_layout,
    layout_linear_plan,
    linear_plan_layouts,
)
from gatorch.functional.policy import KernelPolicy, kernel_policy
from gatorch.layers import EquiLayerNorm, EquiLinear
from gatorch.testing import assert_compiles

F64 = torch.float64

CASES = [
    (PGA3, (0, 1, 2), (0, 1, 2)),
    (PGA3, (0, 1), (0, 1, 2)),
    (STA, (0, 1, 2), (1, 3)),
    (STA, (1, 2), (0, 1)),
]


def _saved_bytes(fn: Any) -> int:
    """Bytes of the tensors autograd saves while ``fn()`` runs (what the backward pass keeps)."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total


@pytest.mark.parametrize(("alg", "gin", "gout"), CASES, ids=repr)
def test_layout_linear_saves_its_input_once(alg: Algebra, gin: tuple, gout: tuple) -> None:
    """Autograd keeps ``x`` and the weights, no gathered copy of ``x`` per slot (as the full layer).

    ``x`` has blade-first storage, as the outputs of the linear and product layers have.
    """
    lin, lout = Layout(alg, gin), Layout(alg, gout)
    layer = EquiLinear(alg, 8, 8, in_s_channels=2, out_s_channels=2, in_layout=lin, out_layout=lout)
    x = torch.randn(lin.dim, 256, 8).movedim(0, -1).requires_grad_(True)
    s = torch.randn(256, 2)
    saved = _saved_bytes(lambda: layer(x, s))
    params = sum(p.numel() * p.element_size() for p in layer.parameters())
    x_bytes = x.numel() * x.element_size()
    assert saved <= x_bytes + 2 * params + 4096, (saved, x_bytes)


@pytest.mark.parametrize(("alg", "gin", "gout"), CASES, ids=repr)
def test_layout_linear_gradients_and_double_backward(alg: Algebra, gin: tuple, gout: tuple) -> None:
    """The hand-written backward (input, weights, bias, readout) is exact and itself differentiable."""
    torch.manual_seed(0)
    lin, lout = Layout(alg, gin), Layout(alg, gout)
    plan = linear_plan_layouts(alg, lin, lout)
    x = torch.randn(5, 3, lin.dim, dtype=F64, requires_grad=True)
    w = torch.randn(2, 3, plan.num_maps, dtype=F64, requires_grad=True)
    b = torch.randn(2, len(plan.inv_blades), dtype=F64, requires_grad=True)
    u = torch.randn(4, 3, len(plan.read_coefficients), dtype=F64, requires_grad=True)

    def fn(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, t = equi_linear_layout(alg, x, w, plan, bias=b, readout=u)
        assert t is not None
        return y, t

    assert torch.autograd.gradcheck(fn, (x, w, b, u))
    assert torch.autograd.gradgradcheck(fn, (x, w, b, u))


def test_layout_plan_is_found_again_from_its_key() -> None:
    """The compiled kernel names the plan by a string; the string gives back the layer's plan."""
    lin, lout = Layout(STA, (0, 1)), Layout(STA, (0, 1, 2))
    plan = linear_plan_layouts(STA, lin, lout, "spin")
    key = _layout_key(STA, plan)
    assert key == "1,-1,-1,-1;0;0,1;0,1,2"
    alg, slots, inv, read = _plan_from_key(key, "spin")
    assert alg == STA and slots is plan and slots == layout_linear_plan(lin, lout, "spin")
    assert (inv, read) == (plan.inv_blades, plan.read_coefficients)
    assert EquiLinear(STA, 2, 2, in_layout=lin, out_layout=lout, group="spin")._layout_plan is plan


def test_equi_linear_layout_errors_name_expected_and_received() -> None:
    lay = Layout(PGA3, (0, 1, 2))
    plan = linear_plan_layouts(PGA3, lay, lay)
    x, w = torch.randn(4, 3, lay.dim), torch.randn(2, 3, plan.num_maps)
    sta_plan = linear_plan_layouts(STA, Layout(STA, (0, 1, 2)), Layout(STA, (0,)))
    for call, match in [
        (lambda: equi_linear_layout(PGA3, x[..., :5], w, plan), r"x of shape \(\.\.\., in_channels, 11\)"),
        (lambda: equi_linear_layout(PGA3, x, w[..., :4], plan), r"weight of shape \(out_channels, 3, 5\)"),
        (
            lambda: equi_linear_layout(PGA3, x, w, plan, readout=torch.randn(2, 3, 2)),
            r"readout of shape \(out_s_channels, 3, 1\)",
        ),
        (
            lambda: equi_linear_layout(PGA3, x, w, sta_plan),
            r"plan\.in_layout of .*metric \[0, 1, 1, 1\]\), got a layout of metric \[1, -1, -1, -1\]",
        ),
    ]:
        with pytest.raises(ValueError, match=f"equi_linear_layout: expected {match}"):
            call()
    with pytest.raises(TypeError, match="expected plan a LayoutLinearPlan, got tuple"):
        equi_linear_layout(PGA3, x, w, ())  # type: ignore[arg-type]


def _graph_code(layer: torch.nn.Module, args: tuple) -> str:
    """The code of the one graph dynamo captures for ``layer(*args)`` (fullgraph)."""
    codes: list[str] = []

    def backend(gm: torch.fx.GraphModule, _: Any) -> Any:
        codes.append(gm.code)
        return gm.forward

    torch._dynamo.reset()
    torch.compile(layer, fullgraph=True, backend=backend)(*args)
    assert len(codes) == 1
    return codes[0]


@pytest.mark.parametrize("compiled", ["opaque", "fused"])
def test_layout_linear_compiled_forms(compiled: str) -> None:
    """Opaque: the layout map is the eager kernel as one custom op; fused: plain ops. Both match eager."""
    lin, lout = Layout(PGA3, (0, 1, 2)), Layout(PGA3, (0, 1))
    with kernel_policy(KernelPolicy(compiled=compiled)):
        layer = EquiLinear(PGA3, 3, 4, in_s_channels=2, out_s_channels=2, in_layout=lin, out_layout=lout)
        args = (torch.randn(6, 3, lin.dim, dtype=F64), torch.randn(6, 2, dtype=F64))
        assert_compiles(layer.double(), args, backend="aot_eager", grads=True, atol=1e-10, rtol=1e-10)
        code = _graph_code(layer, args)
    assert ("gatorch.equi_linear" in code) == (compiled == "opaque")


def _held_bytes(fn: Any) -> int:
    """Bytes of the distinct storages autograd keeps while ``fn()`` runs (each storage once)."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())


@pytest.mark.parametrize(("alg", "grades"), [(PGA3, (0, 1)), (STA, (0, 1, 2))], ids=repr)
def test_layout_layer_norm_keeps_the_stored_grades_only(alg: Algebra, grades: tuple) -> None:
    """The layer norm on a layout keeps its input and one invariant per *stored* grade and channel.

    (Not ``n + 1`` invariants: for grades (0, 1) of PGA3 those were as large as the input.)
    """
    lay = Layout(alg, grades)
    norm = EquiLayerNorm(alg, layout=lay)
    x = torch.randn(lay.dim, 256, 8).movedim(0, -1).requires_grad_(True)
    held = _held_bytes(lambda: norm(x))
    x_bytes = x.numel() * x.element_size()
    assert held <= x_bytes * (1 + (len(grades) + 1) / lay.dim), held / x_bytes
    # and the values are the full norm's, on the embedded input
    full = EquiLayerNorm(alg)
    torch.testing.assert_close(norm(x)[0], lay.project(full(lay.embed(x))[0]), atol=1e-6, rtol=1e-6)
