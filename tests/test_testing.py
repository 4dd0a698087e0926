"""gatorch.testing itself: the checks pass on equivariant layers and fail on the others."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from gatorch import PGA3, VGA3, Algebra
from gatorch.layers import EquiLinear
from gatorch.testing import (
    ALGEBRAS,
    assert_compiles,
    assert_equivariant,
    random_multivectors,
    random_versors,
    versor_action,
    versor_parity,
)

F64 = torch.float64


class AddVector(nn.Module):
    """Not equivariant: adds a constant e1."""

    def __init__(self, alg: Algebra) -> None:
        super().__init__()
        e1 = torch.zeros(alg.dim, dtype=F64)
        e1[alg.index("e1")] = 1.0
        self.register_buffer("e1", e1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.e1


class TimesPseudoscalar(nn.Module):
    """``x -> x I`` in VGA3: commutes with rotations, not with reflections (twisted action)."""

    def forward(self, x: Tensor) -> Tensor:
        i = torch.zeros(VGA3.dim, dtype=x.dtype)
        i[VGA3.index("e123")] = 1.0
        return VGA3.gp(x, i)


def _linear(alg: Algebra) -> EquiLinear:
    torch.manual_seed(0)
    return EquiLinear(alg, 3, 2, in_s_channels=2, out_s_channels=4).double()


@pytest.mark.parametrize("name", list(ALGEBRAS))
def test_random_versors_both_parities_and_bounded(name: str) -> None:
    alg = ALGEBRAS[name]
    w = random_versors(alg, 6, seed=2)
    assert w.shape == (6, alg.dim) and w.dtype == F64
    assert versor_parity(alg, w).tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(w, random_versors(alg, 6, seed=2))  # reproducible
    eye = torch.eye(alg.dim, dtype=F64)
    assert versor_action(alg, w[:, None], eye[None]).abs().max() <= 30.0
    assert versor_parity(alg, random_versors(alg, 3, group="spin")).tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="at least 2"):
        random_versors(alg, 1)


def test_random_multivectors() -> None:
    x = random_multivectors(PGA3, 4, 3, seed=1, grades=(0, 2))
    assert x.shape == (4, 3, 16) and x.dtype == F64
    assert torch.equal(x, random_multivectors(PGA3, 4, 3, seed=1, grades=(0, 2)))
    assert (x[..., PGA3.grade_slice(1)] == 0).all() and (x[..., PGA3.grade_slice(2)] != 0).all()


@pytest.mark.parametrize("name", list(ALGEBRAS))
def test_equivariant_layer_passes_global_and_batched(name: str) -> None:
    alg = ALGEBRAS[name]
    layer = _linear(alg)
    x, s = random_multivectors(alg, 4, 3, seed=0), torch.randn(4, 2, dtype=F64)
    specs = {"in_specs": ("mv", "scalar"), "out_specs": ("mv", "invariant")}
    result = assert_equivariant(layer, alg, (x, s), **specs)
    assert result.parities == (0, 0, 1, 1) and result.max_error < 1e-9
    assert set(result.errors) == {"output[0]", "output[1]"}
    w = random_versors(alg, 4, seed=3)
    batched = assert_equivariant(layer, alg, (x, s), versors=w, batched=True, **specs)
    assert batched.max_error < 1e-9 and torch.equal(batched.versors, w)


@pytest.mark.parametrize("batched", [False, True])
def test_non_equivariant_module_fails(batched: bool) -> None:
    x = random_multivectors(VGA3, 4, 2, seed=0)
    with pytest.raises(AssertionError, match=r"output \(spec 'mv'\) is not equivariant.*max error"):
        assert_equivariant(AddVector(VGA3), VGA3, (x,), batched=batched)


def test_reflections_are_checked() -> None:
    """x I passes for rotations only: "spin" passes, "pin" fails on an odd versor."""
    x = random_multivectors(VGA3, 4, 2, seed=0)
    assert assert_equivariant(TimesPseudoscalar(), VGA3, (x,), group="spin").max_error < 1e-12
    with pytest.raises(AssertionError, match=r"worst versor: index \d \(odd, a reflection\)"):
        assert_equivariant(TimesPseudoscalar(), VGA3, (x,), group="pin")


def test_invariant_output_must_not_change() -> None:
    x = random_multivectors(VGA3, 4, 2, seed=0)
    assert_equivariant(lambda y: VGA3.norm(y), VGA3, (x,), out_specs="scalar")
    with pytest.raises(AssertionError, match="is not invariant"):
        assert_equivariant(lambda y: y[..., 1], VGA3, (x,), out_specs="scalar")


def test_group_coverage_is_enforced() -> None:
    x = random_multivectors(VGA3, 2, seed=0)
    w = random_versors(VGA3, 4)
    with pytest.raises(ValueError, match="even and odd"):
        assert_equivariant(lambda y: y, VGA3, (x,), versors=w[:2])
    with pytest.raises(ValueError, match="even versors only"):
        assert_equivariant(lambda y: y, VGA3, (x,), versors=w, group="spin")
    with pytest.raises(ValueError, match="spec must be"):
        assert_equivariant(lambda y: y, VGA3, (x,), in_specs=("vector",))
    with pytest.raises(ValueError, match="2 argument specs for 1"):
        assert_equivariant(lambda y: y, VGA3, (x,), in_specs=("mv", "mv"))


def test_fixed_kwarg_and_callable_specs() -> None:
    """A reference multivector moves with the input (kwarg spec), an offset does not, a callable acts."""
    x, ref = random_multivectors(PGA3, 4, 2, seed=0), random_multivectors(PGA3, 4, 1, seed=1)

    def fn(y: Tensor, offset: int, reference: Tensor) -> tuple[Tensor, Tensor, int]:
        return PGA3.gp(y, reference) + y, PGA3.inner_product(y, y)[..., offset:], offset

    specs = {"in_specs": ("mv", "fixed"), "out_specs": ("mv", "scalar", None)}
    assert_equivariant(fn, PGA3, (x, 1), kwargs={"reference": ref}, kwarg_specs={"reference": "mv"}, **specs)
    with pytest.raises(AssertionError, match=r"output\[0\]"):  # the reference left alone
        assert_equivariant(fn, PGA3, (x, 1), kwargs={"reference": ref}, **specs)

    calls: list[tuple[int, ...]] = []

    def act(w: Tensor, y: Tensor) -> Tensor:
        calls.append(tuple(w.shape))
        return versor_action(PGA3, w, y)

    assert_equivariant(lambda y: 2 * y, PGA3, (x,), in_specs=[act], out_specs=act, n_versors=2)
    assert calls == [(16,)] * 4


def test_assert_compiles_passes_and_checks_gradients() -> None:
    torch.manual_seed(0)
    layer = EquiLinear(VGA3, 2, 2, in_s_channels=1, out_s_channels=1).double()
    x = random_multivectors(VGA3, 5, 2, seed=0, requires_grad=True)
    s = torch.randn(5, 1, dtype=F64)
    result = assert_compiles(layer, (x, s), backend="aot_eager", grads=True, atol=1e-12, rtol=1e-12)
    assert result.n_outputs == 2 and result.n_grads == 1 + len(list(layer.parameters()))  # x, parameters
    assert result.max_error < 1e-12


class CompiledDiffers(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x + 1e-3 if torch.compiler.is_compiling() else x


class GraphBreak(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        torch._dynamo.graph_break()
        return 2 * x


def test_assert_compiles_fails_on_mismatch_and_graph_break() -> None:
    x = torch.randn(3, 4, dtype=F64)
    with pytest.raises(AssertionError, match=r"output 0 differs .*max error 1\.000e-03"):
        assert_compiles(CompiledDiffers(), (x,), backend="eager", atol=1e-6, rtol=0.0)
    with pytest.raises(Exception, match="graph_break"):  # the compile error surfaces as it is
        assert_compiles(GraphBreak(), (x,), backend="eager")
