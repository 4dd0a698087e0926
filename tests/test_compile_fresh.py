"""Freshly built layers and nets compile with ``fullgraph=True``: no graph break, same numbers.

Every case builds its module, resets dynamo and compiles it before any eager call (so
nothing a forward pass needs can have been filled in lazily by an earlier run), then
compares outputs and gradients (inputs and parameters) with eager mode:

* float64 through the ``aot_eager`` backend (the traced graph, forward and backward) to
  ~1e-10, after ``torch._dynamo.explain`` of a fresh instance has shown one graph and no
  break;
* float32 and bf16 autocast (``torch.autocast("cpu", dtype=torch.bfloat16)``) through
  ``aot_eager``, and a few representative modules through ``inductor``;
* both compiled forms of the steerable product (``KernelPolicy(compiled="fused")``, the
  bitmap form, and ``"opaque"``, the eager kernels as custom ops); the other cases run
  under the default policy;
* dynamic shapes: a compiled ``CliffordGNN`` on five node / edge counts compiles at most twice.

Sizes are tiny so that the file runs in a few minutes on two cores.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from gatorch import PGA3, STA, VGA3, Algebra
from gatorch.testing import assert_compiles

Case = tuple[Callable[[], nn.Module], Callable[[torch.dtype], tuple[object, ...]]]


def _randn(*shape: int, dtype: torch.dtype, seed: int = 0, grad: bool = True) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype).requires_grad_(grad)


# -- the modules ---------------------------------------------------------------------------------------
def _gnn() -> nn.Module:
    from gatorch.nets.gnn import CliffordGNN

    return CliffordGNN(
        VGA3,
        in_mv_channels=2,
        out_mv_channels=1,
        hidden_mv_channels=3,
        in_s_channels=2,
        out_s_channels=1,
        hidden_s_channels=2,
        num_layers=1,
    )


def _edges(nodes: int, edges: int, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, nodes, (2, edges), generator=g)


def _gnn_inputs(dtype: torch.dtype) -> tuple[object, ...]:
    return _randn(5, 2, VGA3.dim, dtype=dtype), _randn(5, 2, dtype=dtype, seed=1), _edges(5, 9)


def _gnn_cgenn() -> nn.Module:
    """CGENN's n-body configuration (difference messages, CEMLP blocks, edge attributes), small."""
    from gatorch.nets.gnn import CliffordGNN

    return CliffordGNN(
        VGA3,
        in_mv_channels=3,
        out_mv_channels=1,
        hidden_mv_channels=3,
        num_layers=1,
        layer_norm=False,
        message="difference",
        edge_s_channels=1,
        mlp={"style": "cgenn", "normalization_init": 0.0, "weight_init": "cgenn"},
    )


def _gnn_cgenn_inputs(dtype: torch.dtype) -> tuple[object, ...]:
    return _randn(5, 3, VGA3.dim, dtype=dtype), None, _edges(5, 9), _randn(9, 1, dtype=dtype, seed=2)


def _mv_inputs(alg: Algebra, channels: int, s_channels: int = 0) -> Callable[[torch.dtype], tuple]:
    def make(dtype: torch.dtype) -> tuple[object, ...]:
        mv = _randn(4, channels, alg.dim, dtype=dtype)
        return (mv, _randn(4, s_channels, dtype=dtype, seed=1)) if s_channels else (mv,)

    return make


def _sgp() -> nn.Module:
    from gatorch.layers import SteerableGeometricProduct

    return SteerableGeometricProduct(PGA3, 3, in_s_channels=2)


def _mv_silu() -> nn.Module:
    from gatorch.layers import MVSiLU

    return MVSiLU(STA, 3)


def _group_action_linear() -> nn.Module:
    from gatorch.layers.zoo.gcan import GroupActionLinear

    return GroupActionLinear(PGA3, 3, 2, in_s_channels=2, out_s_channels=2, bias=True)


def _gcan_activation() -> nn.Module:
    from gatorch.layers.zoo.gcan import GCANActivation

    return GCANActivation(PGA3, 3, kernel_grades=(0, 2))


def _gcan_norm() -> nn.Module:
    from gatorch.layers.zoo.gcan import GCANGroupNorm

    return GCANGroupNorm(VGA3, 4, 2, scale_norm=True, s_channels=2)


def _qt_linear() -> nn.Module:
    from gatorch.layers import QTLinear

    return QTLinear(STA, 3, 2, in_s_channels=2, out_s_channels=2)


def _qt_gp() -> nn.Module:
    from gatorch.layers import QTGeometricProduct

    return QTGeometricProduct(Algebra(2, 0, 1), 3, in_s_channels=2)


def _invariant_attention() -> nn.Module:
    from gatorch.layers.zoo.ga_attention import GAInvariantAttention, ga_attention_invariant_dims

    inv = ga_attention_invariant_dims(2, "partial", True)
    return GAInvariantAttention(
        VGA3,
        4,
        nn.Linear(4, 1),
        nn.Linear(inv, 4),
        rank=2,
        reduce=False,
        merge_fun="concat",
        join_fun="concat",
        invariant_mode="partial",
        normalized_products=True,
    )


def _covariant_attention() -> nn.Module:
    from gatorch.layers.zoo.ga_attention import GACovariantAttention

    return GACovariantAttention(VGA3, 4, nn.Linear(4, 1), nn.Linear(2, 4), nn.Linear(4, 1), rank=2)


def _attention_inputs(dtype: torch.dtype) -> tuple[object, ...]:
    mask = torch.tensor([[True, True, True, False, True], [True] * 5])
    return _randn(2, 5, VGA3.dim, dtype=dtype), _randn(2, 5, 4, dtype=dtype, seed=1), mask


def _csmpn() -> nn.Module:
    from gatorch.nets.csmpn import CSMPN

    return CSMPN(
        VGA3,
        in_mv_channels=1,
        out_mv_channels=1,
        hidden_mv_channels=2,
        out_s_channels=1,
        hidden_s_channels=2,
        num_layers=1,
    )


def _csmpn_inputs(dtype: torch.dtype) -> tuple[object, ...]:
    from gatorch.nets.simplicial import rips_lift

    pos = _randn(2, 4, 3, dtype=torch.float64, grad=False)
    cx = rips_lift(pos, radius=1.6)
    mv = torch.zeros(8, 1, VGA3.dim, dtype=torch.float64)
    mv[..., VGA3.grade_slice(1)] = pos.reshape(8, 1, 3)
    return mv.to(dtype).requires_grad_(True), None, cx


def _mv_to_irreps() -> nn.Module:
    from gatorch.irreps import MVToIrreps

    return MVToIrreps(PGA3, 2, "3x0e+2x1o+1x1e+1x0o", part="full", biases=True)


def _irreps_to_mv() -> nn.Module:
    from gatorch.irreps import IrrepsToMV

    return IrrepsToMV(VGA3, "3x0e+2x1o+1x1e+1x0o", 2, biases=True)


def _irreps_inputs(dtype: torch.dtype) -> tuple[object, ...]:
    return (_randn(4, 3 + 6 + 3 + 1, dtype=dtype),)


CASES: dict[str, Case] = {
    "CliffordGNN": (_gnn, _gnn_inputs),
    "CliffordGNN-CGENN": (_gnn_cgenn, _gnn_cgenn_inputs),
    "SteerableGeometricProduct": (_sgp, _mv_inputs(PGA3, 3, 2)),
    "MVSiLU": (_mv_silu, _mv_inputs(STA, 3, 2)),
    "GroupActionLinear": (_group_action_linear, _mv_inputs(PGA3, 3, 2)),
    "GCANActivation": (_gcan_activation, _mv_inputs(PGA3, 3)),
    "GCANGroupNorm": (_gcan_norm, _mv_inputs(VGA3, 4, 2)),
    "QTLinear": (_qt_linear, _mv_inputs(STA, 3, 2)),
    "QTGeometricProduct": (_qt_gp, _mv_inputs(Algebra(2, 0, 1), 3, 2)),
    "GAInvariantAttention": (_invariant_attention, _attention_inputs),
    "GACovariantAttention": (_covariant_attention, _attention_inputs),
    "CSMPN": (_csmpn, _csmpn_inputs),
    "MVToIrreps": (_mv_to_irreps, _mv_inputs(PGA3, 2)),
    "IrrepsToMV": (_irreps_to_mv, _irreps_inputs),
}
NEEDS_E3NN = {"MVToIrreps", "IrrepsToMV"}


# -- helpers -------------------------------------------------------------------------------------------
def _build(name: str, dtype: torch.dtype) -> nn.Module:
    if name in NEEDS_E3NN:
        pytest.importorskip("e3nn")
    torch.manual_seed(0)
    module = CASES[name][0]()
    return module.to(torch.float64 if dtype == torch.float64 else torch.float32)


def _no_breaks(module: nn.Module, args: tuple) -> None:
    explanation = torch._dynamo.explain(module)(*args)
    reasons = [str(b.reason) for b in explanation.break_reasons]
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1, reasons


def _check(
    name: str, dtype: torch.dtype, backend: str, autocast: bool = False, policy: str | None = None
) -> None:
    from gatorch.functional import KernelPolicy, kernel_policy

    args = CASES[name][1](dtype)
    module = _build(name, dtype)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    forced = kernel_policy(KernelPolicy(compiled=policy)) if policy else contextlib.nullcontext()
    if dtype == torch.float64:
        atol = rtol = 1e-10
    elif autocast:
        atol, rtol = 3e-2, 3e-2
    else:
        atol, rtol = 1e-4, 1e-4
    with forced, ctx:  # assert_compiles resets dynamo and runs the compiled module first: nothing warmed up
        # outputs and gradients (inputs and parameters), atol scaled by 1 + max |eager| per tensor
        assert_compiles(module, args, backend=backend, grads=True, atol=atol, rtol=rtol, scale_atol=True)


# -- tests ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CASES))
def test_fresh_module_compiles_float64(name: str) -> None:
    """One graph, no break (explain on a fresh instance); aot_eager matches eager to ~1e-10."""
    args = CASES[name][1](torch.float64)
    torch._dynamo.reset()
    _no_breaks(_build(name, torch.float64), args)
    _check(name, torch.float64, "aot_eager")


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("precision", ["float32", "bf16-autocast"])
def test_fresh_module_compiles_float32_and_bf16(name: str, precision: str) -> None:
    """float32, and bf16 autocast on float32 modules, through the traced graph (aot_eager)."""
    _check(name, torch.float32, "aot_eager", autocast=precision != "float32")


@pytest.mark.parametrize(
    ("name", "precision", "policy"),
    [
        ("QTGeometricProduct", "float32", "fused"),  # the steerable product's bitmap form
        ("QTGeometricProduct", "bf16-autocast", "fused"),
        ("SteerableGeometricProduct", "float32", "opaque"),  # the eager kernels as custom ops
        ("CliffordGNN", "float32", None),
        ("GCANGroupNorm", "bf16-autocast", None),
        ("MVSiLU", "bf16-autocast", None),
    ],
)
def test_fresh_module_inductor(name: str, precision: str, policy: str | None) -> None:
    """Inductor itself (generated kernels, not only the traced graph) on representative modules."""
    _check(name, torch.float32, "inductor", autocast=precision == "bf16-autocast", policy=policy)


@pytest.mark.parametrize("name", ["SteerableGeometricProduct", "QTGeometricProduct", "CliffordGNN", "CSMPN"])
@pytest.mark.parametrize("policy", ["fused", "opaque"])
def test_steerable_product_policies(name: str, policy: str) -> None:
    """Both compiled forms of the steerable product (bitmap form, opaque custom op) match eager."""
    _check(name, torch.float64, "aot_eager", policy=policy)


@pytest.mark.parametrize("policy", ["fused", "opaque"])
def test_gnn_dynamic_node_counts_compile_at_most_twice(policy: str) -> None:
    """Five node / edge counts: one static compile, then one graph generic in both."""
    from torch._dynamo.testing import CompileCounter

    from gatorch.functional import KernelPolicy, kernel_policy

    torch._dynamo.reset()
    torch.manual_seed(0)
    net = _gnn()
    counter = CompileCounter()
    compiled = torch.compile(net, backend=counter, fullgraph=True)
    with kernel_policy(KernelPolicy(compiled=policy)):
        for k, (nodes, edges) in enumerate(((5, 9), (7, 12), (11, 17), (13, 30), (20, 41))):
            mv = _randn(nodes, 2, VGA3.dim, dtype=torch.float32, seed=k, grad=False)
            s, edge_index = torch.randn(nodes, 2), _edges(nodes, edges, seed=k)
            out_c = compiled(mv, s, edge_index)
            out_e = net(mv, s, edge_index)
            torch.testing.assert_close(out_c, out_e, atol=1e-5, rtol=1e-5)
    assert counter.frame_count <= 2


def test_tables_are_buffers_outside_the_state_dict() -> None:
    """The precomputed tables follow ``.to(dtype)`` and leave the ``state_dict`` keys unchanged."""
    from gatorch.layers import MVSiLU, QTGeometricProduct, SteerableGeometricProduct

    sgp = SteerableGeometricProduct(PGA3, 2)
    assert {k.split(".")[0] for k in sgp.state_dict()} == {"weight", "right", "left"}
    assert MVSiLU(PGA3, 2).state_dict().keys() == {"a", "b"}
    qt = QTGeometricProduct(STA, 2)
    assert not any(k.startswith("_") for k in qt.state_dict())
    sgp = sgp.double()
    assert sgp._sign.dtype == torch.float64 and sgp._path.dtype == torch.int64
