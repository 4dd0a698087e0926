"""Layer norms, gates, attention, GATr blocks and nets on layouts (issue 24: pay only for the
blades you keep): equivariance, equality with the zero-padded full net, errors, compile, bf16."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gatorch import CGA3, PGA3, STA, Algebra
from gatorch.algebras import Layout
from gatorch.functional.nonlinear import equi_layer_norm, gated, grade_invariants
from gatorch.functional.steerable import steerable_paths
from gatorch.layers import (
    EquiLayerNorm,
    EquiLinear,
    MVSiLU,
    ScalarGatedNonlinearity,
    SelfAttention,
    SteerableGeometricProduct,
)
from gatorch.nets import ConditionalGATr, GATr
from gatorch.nets.gnn import CliffordGNN
from gatorch.testing import assert_compiles, assert_equivariant
from tests.test_layouts import _action, _copy_into_full, _versors

F64 = torch.float64
CL8 = Algebra(8, 0, 0)
CL53 = Algebra(5, 3, 0)


def _net_kw(**extra: object) -> dict[str, object]:
    kw: dict[str, object] = {
        "in_mv_channels": 2,
        "out_mv_channels": 1,
        "hidden_mv_channels": 4,
        "in_s_channels": 2,
        "out_s_channels": 2,
        "hidden_s_channels": 4,
        "num_blocks": 1,
        "num_heads": 2,
    }
    kw.update(extra)
    return kw


def _randomise(module: nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5)


def _copy_net_into_full(sub: nn.Module, full: nn.Module, lay: Layout) -> None:
    """The full net with the layout net's weights: zero on maps and blades outside the layout."""
    subs = dict(sub.named_modules())
    done: list[str] = []  # modules copied as a whole (their submodules with them)
    for name, f in full.named_modules():
        if any(name.startswith(d + ".") for d in done):
            continue
        s = subs[name]
        with torch.no_grad():
            if isinstance(f, EquiLinear):
                _copy_into_full(s, f)
                done.append(name)
            elif isinstance(f, EquiLayerNorm):
                if f.weight is not None and f.affine == "channel":
                    f.weight.copy_(s.weight)
                elif f.weight is not None:
                    f.weight.zero_()
                    f.weight[:, list(lay.grades)] = s.weight
                if f.scalar_norm is not None:
                    f.scalar_norm.load_state_dict(s.scalar_norm.state_dict())
                done.append(name)
            elif isinstance(f, MVSiLU):
                for name_ in ("a", "b"):
                    getattr(f, name_).zero_()
                    getattr(f, name_)[:, list(lay.grades)] = getattr(s, name_)
            elif isinstance(f, SteerableGeometricProduct):  # its EquiLinear children come next
                assert s._layout_plan is not None
                paths = steerable_paths(f.alg)
                f.weight.zero_()  # paths into grades outside the layout stay off
                f.weight[:, [paths.index(q) for q in s._layout_plan.paths]] = s.weight
                if f.normalization is not None:  # one logit per grade of the algebra in both
                    f.normalization.copy_(s.normalization)
            else:  # parameters without blades (head_scale, ...)
                own = dict(s.named_parameters(recurse=False))
                for pname, p in f.named_parameters(recurse=False):
                    p.copy_(own[pname])


# -- layer norm and gates ------------------------------------------------------------------------------
NORM_CASES = [
    (PGA3, (0, 1, 2)),
    (PGA3, (1, 3)),
    (STA, (0, 1, 2)),
    (CGA3, (0, 1, 2)),
    (CL53, (0, 1, 2)),
    (CL8, (0, 1, 2)),
]


@pytest.mark.parametrize(("alg", "grades"), NORM_CASES, ids=repr)
@pytest.mark.parametrize("statistic", ["rms", "mean"])
def test_layout_layer_norm_equals_the_full_norm_on_embedded_inputs(
    alg: Algebra, grades: tuple, statistic: str
) -> None:
    torch.manual_seed(0)
    lay = Layout(alg, grades)
    kw = {"statistic": statistic, "mv_channels": 3, "elementwise_affine": True, "affine": "grade"}
    sub = EquiLayerNorm(alg, 2, layout=lay, **kw).double()  # type: ignore[arg-type]
    full = EquiLayerNorm(alg, 2, **kw).double()  # type: ignore[arg-type]
    assert sub.weight is not None and sub.weight.shape == (3, len(grades))  # one gain per stored grade
    _randomise(sub)
    _copy_net_into_full(sub, full, lay)
    x, s = torch.randn(4, 3, lay.dim, dtype=F64) * 3, torch.randn(4, 2, dtype=F64)
    y, t = sub(x, s)
    y_full, t_full = full(lay.embed(x), s)
    torch.testing.assert_close(y, lay.project(y_full), atol=1e-13, rtol=0)
    torch.testing.assert_close(t, t_full, atol=0, rtol=0)
    # the per-grade invariants read the stored blades only, with their metric signs
    inv = grade_invariants(alg, x, layout=lay)
    torch.testing.assert_close(inv, grade_invariants(alg, lay.embed(x)), atol=1e-12, rtol=0)


@pytest.mark.parametrize(("alg", "grades"), [(PGA3, (0, 1)), (STA, (0, 1, 2)), (CL53, (0, 1, 2))], ids=repr)
def test_layout_layer_norm_and_gate_are_equivariant(alg: Algebra, grades: tuple) -> None:
    torch.manual_seed(1)
    lay = Layout(alg, grades)
    act = _action(alg, lay)
    x = torch.randn(5, 3, lay.dim, dtype=F64)
    for layer in (EquiLayerNorm(alg, layout=lay), ScalarGatedNonlinearity(alg, "gelu", layout=lay)):
        result = assert_equivariant(
            layer,
            alg,
            (x,),
            in_specs=(act,),
            out_specs=(act, "scalar"),
            versors=_versors(alg, 3, seed=3),
            atol=1e-9,
            rtol=1e-9,
        )
        assert result.parities == (1, 0, 1)  # odd versors included


def test_layout_gate_equals_the_full_gate_and_needs_the_scalar() -> None:
    lay = Layout(PGA3, (0, 1, 2))
    x = torch.randn(4, 3, lay.dim, dtype=F64)
    y = ScalarGatedNonlinearity(PGA3, "relu", layout=lay)(x)[0]
    assert torch.equal(y, lay.project(ScalarGatedNonlinearity(PGA3, "relu")(lay.embed(x))[0]))
    with pytest.raises(
        ValueError,
        match=r"ScalarGatedNonlinearity: the scalar gate needs grade 0 in the layout, got layout "
        r"grades \(1, 2\)",
    ):
        ScalarGatedNonlinearity(PGA3, layout=Layout(PGA3, (1, 2)))
    with pytest.raises(ValueError, match=r"gated: the scalar gate needs grade 0 in the layout"):
        gated(PGA3, torch.randn(2, 9), layout=Layout(PGA3, (1, 2)))
    with pytest.raises(
        ValueError,
        match=r"gated: expected last dimension 11 \(the blades of grades \(0, 1, 2\)\), " r"got \(2, 16\)",
    ):
        gated(PGA3, torch.randn(2, 16), layout=lay)
    with pytest.raises(ValueError, match=r"equi_layer_norm: expected last dimension 11"):
        equi_layer_norm(PGA3, torch.randn(2, 3, 16), layout=lay)
    with pytest.raises(ValueError, match=r"EquiLayerNorm: expected layout of Algebra\(3, 0, 1\)"):
        EquiLayerNorm(PGA3, layout=Layout(STA, (0, 1)))
    with pytest.raises(ValueError, match=r"EquiLayerNorm: expected input of shape \(\.\.\., 3, 11\)"):
        EquiLayerNorm(PGA3, mv_channels=3, elementwise_affine=True, layout=lay)(torch.randn(2, 3, 16))


# -- attention ------------------------------------------------------------------------------------------
ATTN_CASES = [
    (PGA3, (0, 1), False),
    (PGA3, (0, 1, 2), False),
    (PGA3, (0, 1, 3), True),  # the distance features need the points (grade 3)
    (STA, (0, 1, 2), False),
    (CGA3, (0, 1, 2), False),
    (CL8, (0, 1, 2), False),
]


@pytest.mark.parametrize(("alg", "grades", "distance"), ATTN_CASES, ids=repr)
def test_layout_attention_is_equivariant_and_equals_the_full_attention(
    alg: Algebra, grades: tuple, distance: bool
) -> None:
    torch.manual_seed(2)
    lay = Layout(alg, grades)
    cfg = {"num_heads": 2, "distance_features": distance, "qkv_norm": True}
    sub = SelfAttention(alg, 3, 2, cfg, layout=lay).double()
    full = SelfAttention(alg, 3, 2, cfg).double()
    _randomise(sub)
    _copy_net_into_full(sub, full, lay)
    x, s = torch.randn(2, 5, 3, lay.dim, dtype=F64), torch.randn(2, 5, 2, dtype=F64)
    y, t = sub(x, s)
    y_full, t_full = full(lay.embed(x), s)
    torch.testing.assert_close(y, lay.project(y_full), atol=1e-11, rtol=0)
    torch.testing.assert_close(t, t_full, atol=1e-11, rtol=0)
    result = assert_equivariant(
        sub,
        alg,
        (x, s),
        in_specs=(_action(alg, lay), "scalar"),
        out_specs=(_action(alg, lay), "scalar"),
        versors=_versors(alg, 3, seed=4),
        atol=1e-9,
        rtol=1e-9,
    )
    assert result.parities == (1, 0, 1)


def test_layout_attention_errors_name_what_is_missing() -> None:
    with pytest.raises(
        ValueError,
        match=r"SelfAttention: distance_features need grade 3 \(the points of Algebra\(3, 0, 1\)\) in the "
        r"layout, got layout grades \(0, 1, 2\)",
    ):
        SelfAttention(PGA3, 2, 0, {"distance_features": True}, layout=Layout(PGA3, (0, 1, 2)))
    attn = SelfAttention(PGA3, 2, 0, layout=Layout(PGA3, (0, 1)))
    with pytest.raises(
        ValueError,
        match=r"SelfAttention: expected input of shape \(\.\.\., 2, 5\) \(the blades "
        r"of grades \(0, 1\)\), got \(1, 4, 2, 16\)",
    ):
        attn(torch.randn(1, 4, 2, 16))


# -- GATr ------------------------------------------------------------------------------------------------
NET_CASES = [
    (PGA3, (0, 1), {}),
    (PGA3, (0, 1, 2), {}),
    (PGA3, (0, 1, 2, 4), {}),  # the pseudoscalar is stored: the join is on
    (STA, (0, 1, 2), {"attention": {"qkv_norm": True}, "mlp": {"bilinear_norm": True}, "group": "spin"}),
    (CGA3, (0, 1, 2), {}),
    (CL53, (0, 1, 2), {}),
    (CL8, (0, 1, 2), {}),
]


@pytest.mark.parametrize(("alg", "grades", "extra"), NET_CASES, ids=repr)
def test_layout_gatr_is_equivariant(alg: Algebra, grades: tuple, extra: dict) -> None:
    torch.manual_seed(5)
    lay = Layout(alg, grades)
    net = GATr(alg, layout=lay, **_net_kw(**extra)).double()  # type: ignore[arg-type]
    _randomise(net)
    spin = extra.get("group") == "spin"
    x, s = torch.randn(2, 4, 2, lay.dim, dtype=F64), torch.randn(2, 4, 2, dtype=F64)
    result = assert_equivariant(
        net,
        alg,
        (x, s),
        in_specs=(_action(alg, lay), "scalar"),
        out_specs=(_action(alg, lay), "scalar"),
        versors=_versors(alg, 3, seed=6, even=spin),
        group="spin" if spin else "pin",
        atol=1e-9,
        rtol=1e-9,
    )
    assert result.parities == ((0, 0, 0) if spin else (1, 0, 1))


@pytest.mark.parametrize(
    ("alg", "grades", "extra"),
    [
        (PGA3, (0, 1, 2), {"mlp": {"join": False}}),
        (PGA3, (0, 1, 2, 4), {"attention": {"distance_features": False}}),
        (STA, (0, 1, 2), {"attention": {"qkv_norm": True}, "mlp": {"bilinear_norm": True}}),
    ],
    ids=repr,
)
def test_layout_gatr_equals_the_zero_padded_full_gatr(alg: Algebra, grades: tuple, extra: dict) -> None:
    torch.manual_seed(7)
    lay = Layout(alg, grades)
    sub = GATr(alg, layout=lay, **_net_kw(**extra)).double()  # type: ignore[arg-type]
    full = GATr(alg, **_net_kw(**extra)).double()  # type: ignore[arg-type]
    _randomise(sub)
    _copy_net_into_full(sub, full, lay)
    x, s = torch.randn(2, 4, 2, lay.dim, dtype=F64), torch.randn(2, 4, 2, dtype=F64)
    y, t = sub(x, s)
    y_full, t_full = full(lay.embed(x), s)
    torch.testing.assert_close(y, lay.project(y_full), atol=1e-10, rtol=0)
    torch.testing.assert_close(t, t_full, atol=1e-10, rtol=0)


def test_full_layout_gatr_is_todays_gatr() -> None:
    kw = _net_kw(num_blocks=2)
    torch.manual_seed(8)
    a = GATr(PGA3, **kw)  # type: ignore[arg-type]
    torch.manual_seed(8)
    b = GATr(PGA3, layout=Layout.full(PGA3), **kw)  # type: ignore[arg-type]
    assert b.layout is None
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    x, s = torch.randn(2, 5, 2, 16), torch.randn(2, 5, 2)
    assert all(torch.equal(u, v) for u, v in zip(a(x, s), b(x, s), strict=True))


@pytest.mark.parametrize(("alg", "grades"), [(PGA3, (0, 1, 2)), (STA, (0, 1))], ids=repr)
def test_layout_gatr_with_dropout_equals_the_zero_padded_full_gatr_in_training(
    alg: Algebra, grades: tuple
) -> None:
    # grade dropout in attention and MLP draws one keep/drop per (item, channel, grade of the
    # algebra) on layouts too: under the same random state it drops the same grades as the full net
    torch.manual_seed(9)
    lay = Layout(alg, grades)
    kw = _net_kw(attention={"dropout": 0.4}, mlp={"dropout": 0.4, "join": False}, num_blocks=2)
    sub = GATr(alg, layout=lay, **kw).double().train()  # type: ignore[arg-type]
    full = GATr(alg, **kw).double().train()  # type: ignore[arg-type]
    _randomise(sub)
    _copy_net_into_full(sub, full, lay)
    x, s = torch.randn(2, 4, 2, lay.dim, dtype=F64), torch.randn(2, 4, 2, dtype=F64)
    torch.manual_seed(10)
    y, t = sub(x, s)
    torch.manual_seed(10)
    y_full, t_full = full(lay.embed(x), s)
    torch.testing.assert_close(y, lay.project(y_full), atol=1e-10, rtol=0)
    torch.testing.assert_close(t, t_full, atol=1e-10, rtol=0)
    torch.manual_seed(11)
    y_other, _ = sub(x, s)
    assert not torch.allclose(y_other, y)  # the dropout is on: another draw gives another output
    y_eval, _ = sub.eval()(x, s)
    torch.testing.assert_close(y_eval, lay.project(full.eval()(lay.embed(x), s)[0]), atol=1e-10, rtol=0)


def test_layout_grade_dropout_drops_whole_grades() -> None:
    from gatorch.layers import GradeDropout

    lay = Layout(PGA3, (0, 1, 2))
    sub, full = GradeDropout(PGA3, 0.5, layout=lay), GradeDropout(PGA3, 0.5)
    x = torch.randn(64, 3, lay.dim, dtype=F64)
    torch.manual_seed(3)
    y, _ = sub(x)
    torch.manual_seed(3)
    torch.testing.assert_close(y, lay.project(full(lay.embed(x))[0]), atol=0, rtol=0)
    for k in lay.grades:  # each grade of each channel is kept (scaled by 2) or dropped whole
        ratio = y[..., lay.grade_slice(k)] / x[..., lay.grade_slice(k)]
        first = ratio[..., :1]
        assert torch.all(ratio == first) and torch.all((first == 0) | (first == 2))
    with pytest.raises(ValueError, match=r"grade_dropout: expected last dimension 11 \(the blades of grades"):
        sub(torch.randn(4, 3, 16))
    with pytest.raises(TypeError, match=r"GradeDropout: expected layout a gatorch\.algebras\.Layout or None"):
        GradeDropout(PGA3, 0.5, layout=(0, 1))  # type: ignore[arg-type]


def test_layout_gatr_errors() -> None:
    lay = Layout(PGA3, (0, 1, 2))
    with pytest.raises(
        ValueError,
        match=r"the join needs the pseudoscalar \(grade 4\) in the layout, got layout " r"grades \(0, 1, 2\)",
    ):
        GATr(PGA3, layout=lay, mlp={"join": True}, **_net_kw())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"the scalar gate needs grade 0 in the layout"):
        GATr(PGA3, layout=Layout(PGA3, (1, 2)), **_net_kw())  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"GATr: expected layout a gatorch.algebras.Layout or None, got tuple"
    ):
        GATr(PGA3, layout=(0, 1), **_net_kw())  # type: ignore[arg-type]
    net = GATr(PGA3, layout=lay, **_net_kw())  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=r"GATr: expected input of shape \(\.\.\., 2, 11\) \(the blades of grades "
        r"\(0, 1, 2\)\), got \(1, 3, 2, 16\)",
    ):
        net(torch.randn(1, 3, 2, 16), torch.randn(1, 3, 2))
    assert not net.blocks[0].mlp.bilinear.join  # off by default without the pseudoscalar


def test_layout_conditional_gatr_is_equivariant() -> None:
    torch.manual_seed(9)
    lay = Layout(PGA3, (0, 1, 2))
    net = ConditionalGATr(PGA3, layout=lay, condition_mv_channels=2, **_net_kw()).double()  # type: ignore[arg-type]
    _randomise(net)
    x, c = torch.randn(2, 4, 2, lay.dim, dtype=F64), torch.randn(2, 3, 2, lay.dim, dtype=F64)
    s = torch.randn(2, 4, 2, dtype=F64)
    act = _action(PGA3, lay)
    result = assert_equivariant(
        net,
        PGA3,
        (x, c, s),
        in_specs=(act, act, "scalar"),
        out_specs=(act, "scalar"),
        versors=_versors(PGA3, 3, seed=10),
        atol=1e-9,
        rtol=1e-9,
    )
    assert result.parities == (1, 0, 1)


def test_layout_conditional_gatr_equals_the_zero_padded_full_net() -> None:
    torch.manual_seed(14)
    lay = Layout(STA, (0, 1, 2))
    kw = _net_kw(condition_mv_channels=2, condition_s_channels=1, attention={"qkv_norm": True})
    sub = ConditionalGATr(STA, layout=lay, **kw).double()  # type: ignore[arg-type]
    full = ConditionalGATr(STA, **kw).double()  # type: ignore[arg-type]
    _randomise(sub)
    _copy_net_into_full(sub, full, lay)
    x, c = torch.randn(2, 4, 2, lay.dim, dtype=F64), torch.randn(2, 3, 2, lay.dim, dtype=F64)
    s, cs = torch.randn(2, 4, 2, dtype=F64), torch.randn(2, 3, 1, dtype=F64)
    y, t = sub(x, c, s, cs)
    y_full, t_full = full(lay.embed(x), lay.embed(c), s, cs)
    torch.testing.assert_close(y, lay.project(y_full), atol=1e-10, rtol=0)
    torch.testing.assert_close(t, t_full, atol=1e-10, rtol=0)


def test_layout_gatr_compiles_fresh() -> None:
    lay = Layout(STA, (0, 1, 2))
    net = GATr(STA, layout=lay, **_net_kw(attention={"qkv_norm": True})).double()  # type: ignore[arg-type]
    args = (torch.randn(2, 4, 2, lay.dim, dtype=F64), torch.randn(2, 4, 2, dtype=F64))
    assert_compiles(net, args, backend="aot_eager", grads=True, atol=1e-10, rtol=1e-10)


def test_layout_gatr_bf16_autocast() -> None:
    lay = Layout(PGA3, (0, 1, 2))
    net = GATr(PGA3, layout=lay, **_net_kw())  # type: ignore[arg-type]
    x, s = torch.randn(2, 4, 2, lay.dim), torch.randn(2, 4, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, t = net(x * 1e3, s)
    assert y.shape == (2, 4, 1, lay.dim) and t.shape == (2, 4, 2)
    assert bool(torch.isfinite(y).all()) and bool(torch.isfinite(t).all())
    y32, _ = net(x * 1e3, s)
    torch.testing.assert_close(y.float(), y32, atol=0.1 * float(y32.abs().max()), rtol=0.1)


# -- CliffordGNN --------------------------------------------------------------------------------------------
def _gnn_kw(**extra: object) -> dict[str, object]:
    kw: dict[str, object] = {
        "in_mv_channels": 2,
        "out_mv_channels": 1,
        "hidden_mv_channels": 3,
        "in_s_channels": 1,
        "out_s_channels": 1,
        "hidden_s_channels": 2,
        "num_layers": 2,
    }
    kw.update(extra)
    return kw


EDGES = torch.tensor([[0, 1, 2, 3, 1, 4], [1, 2, 3, 0, 4, 0]])


@pytest.mark.parametrize(
    ("alg", "grades", "extra"),
    [
        (PGA3, (0, 1, 2), {}),
        (STA, (0, 1, 2), {"mlp": {"style": "cgenn", "block_norm": "mean"}, "message": "difference"}),
        (CGA3, (0, 1, 2), {}),
        (CL53, (0, 1, 2), {"mlp": {"style": "cgenn", "normalization_init": 0.0, "weight_init": "cgenn"}}),
        (PGA3, (0, 1, 3), {"mlp": {"style": "cgenn", "normalization_init": 0.5}}),
    ],
    ids=repr,
)
def test_layout_clifford_gnn_is_equivariant_and_equals_the_full_gnn(
    alg: Algebra, grades: tuple, extra: dict
) -> None:
    torch.manual_seed(11)
    lay = Layout(alg, grades)
    sub = CliffordGNN(alg, layout=lay, **_gnn_kw(**extra)).double()  # type: ignore[arg-type]
    full = CliffordGNN(alg, **_gnn_kw(**extra)).double()  # type: ignore[arg-type]
    _randomise(sub)
    _copy_net_into_full(sub, full, lay)
    x, s = torch.randn(5, 2, lay.dim, dtype=F64), torch.randn(5, 1, dtype=F64)
    y, t = sub(x, s, EDGES)
    y_full, t_full = full(lay.embed(x), s, EDGES)
    torch.testing.assert_close(y, lay.project(y_full), atol=1e-10, rtol=0)
    torch.testing.assert_close(t, t_full, atol=1e-10, rtol=0)
    result = assert_equivariant(
        lambda m, sc: sub(m, sc, EDGES),
        alg,
        (x, s),
        in_specs=(_action(alg, lay), "scalar"),
        out_specs=(_action(alg, lay), "scalar"),
        versors=_versors(alg, 3, seed=12),
        atol=1e-9,
        rtol=1e-9,
    )
    assert result.parities == (1, 0, 1)


def test_full_layout_clifford_gnn_is_todays_gnn() -> None:
    torch.manual_seed(13)
    a = CliffordGNN(PGA3, **_gnn_kw())  # type: ignore[arg-type]
    torch.manual_seed(13)
    b = CliffordGNN(PGA3, layout=Layout.full(PGA3), **_gnn_kw())  # type: ignore[arg-type]
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    x, s = torch.randn(5, 2, 16), torch.randn(5, 1)
    assert all(torch.equal(u, v) for u, v in zip(a(x, s, EDGES), b(x, s, EDGES), strict=True))
    with pytest.raises(ValueError, match=r"CliffordGNN: expected input of shape \(\.\.\., 2, 11\)"):
        CliffordGNN(PGA3, layout=Layout(PGA3, (0, 1, 2)), **_gnn_kw())(x, s, EDGES)  # type: ignore[arg-type]


def test_layout_mvsilu_compiles_fresh_and_equals_the_full_mvsilu() -> None:
    # the GNN's new piece on layouts (its other layers are compiled in tests/test_layouts.py)
    lay = Layout(STA, (0, 1, 3))
    sub, full = MVSiLU(STA, 3, layout=lay).double(), MVSiLU(STA, 3).double()
    _randomise(sub)
    _copy_net_into_full(sub, full, lay)
    x = torch.randn(4, 3, lay.dim, dtype=F64)
    torch.testing.assert_close(sub(x)[0], lay.project(full(lay.embed(x))[0]), atol=1e-13, rtol=0)
    assert_compiles(sub, (x,), backend="aot_eager", grads=True, atol=1e-10, rtol=1e-10)


def test_clifford_gnn_layers_on_cl16_build_without_the_full_tables() -> None:
    # MVSiLU built a per-blade buffer over all 2**16 blades from the full product table
    # (refused above n = 11), although its layout path never read it
    alg = Algebra(16, 0, 0)
    lay = Layout(alg, (0, 1, 2))
    silu = MVSiLU(alg, 2, layout=lay)
    assert silu._inner.numel() == 0
    net = CliffordGNN(alg, layout=lay, **_gnn_kw(mlp={"style": "cgenn", "normalization_init": 0.0}))
    y, t = net(torch.randn(5, 2, lay.dim), torch.randn(5, 1), EDGES)
    assert y.shape == (5, 1, 137) and t.shape == (5, 1) and bool(torch.isfinite(y).all())
