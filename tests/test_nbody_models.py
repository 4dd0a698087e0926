"""The gatorch n-body models: E(3) equivariance of the predictions, permutations, bad input."""

from __future__ import annotations

import pytest
import torch

from examples.nbody.models import MODELS, NBodyCGENN, NBodyGATr, PairFeatures, build_model

_GATR_SMALL = {"hidden_mv_channels": 4, "hidden_s_channels": 8, "num_blocks": 2, "num_heads": 2}
SMALL = {
    "gatr": _GATR_SMALL,
    "gatr+pairs": {
        "hidden_mv_channels": 4,
        "hidden_s_channels": 8,
        "num_blocks": 2,
        "num_heads": 2,
        "pair_channels": 3,
    },
    # GATr on VGA3 at grades (0, 1), (0, 1, 2) and all (the layout study), and a PGA3 layout
    "gatr+vga3-01": {**_GATR_SMALL, "pair_channels": 2, "algebra": "vga3", "grades": [0, 1]},
    "gatr+vga3-012": {**_GATR_SMALL, "pair_channels": 2, "algebra": "vga3", "grades": "0,1,2"},
    "gatr+vga3-full": {**_GATR_SMALL, "pair_channels": 2, "algebra": "vga3"},
    "gatr+pga3-0123": {**_GATR_SMALL, "grades": [0, 1, 2, 3]},
    "cgenn": {"hidden_mv_channels": 4, "hidden_s_channels": 8, "num_layers": 2},
    "cgenn+paper": {  # the cgenn-paper preset's options, small
        "hidden_mv_channels": 4,
        "hidden_s_channels": 0,
        "num_layers": 2,
        "inputs": "cgenn",
        "edge_attr": True,
        "layer_norm": False,
        "message": "difference",
        "mlp": {"style": "cgenn", "normalization_init": 0.0, "weight_init": "cgenn"},
    },
    "egnn": {"hidden": 16, "num_layers": 2},
}


def _orthogonal(det: float, gen: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=gen))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) * det < 0:
        q[:, 0] = -q[:, 0]
    return q


def _inputs(task: str, gen: torch.Generator, batch: int = 3, n: int = 5):
    loc = torch.randn(batch, n, 3, dtype=torch.float64, generator=gen)
    vel = torch.randn(batch, n, 3, dtype=torch.float64, generator=gen)
    if task == "charged":
        attr = torch.randint(0, 2, (batch, n), generator=gen).double() * 2 - 1
    else:
        attr = torch.rand(batch, n, dtype=torch.float64, generator=gen) * 5 + 0.01
    return loc, vel, attr


def _model(name: str, **kwargs) -> torch.nn.Module:
    """``build_model`` for a key of ``SMALL`` (``"gatr+pairs"``: GATr with pair features)."""
    return build_model(name.partition("+")[0], **{**SMALL[name], **kwargs})


@pytest.mark.parametrize("det", [1.0, -1.0])
@pytest.mark.parametrize("task", ["charged", "gravity"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_prediction_is_e3_equivariant(name, task, det):
    gen = torch.Generator().manual_seed(7)
    torch.manual_seed(0)
    model = _model(name, attr_features="raw" if task == "charged" else "log").double()
    loc, vel, attr = _inputs(task, gen)
    q = _orthogonal(det, gen)
    t = torch.randn(3, dtype=torch.float64, generator=gen) * 20  # the gravity protocol's scale
    moved = model(loc @ q.T + t, vel @ q.T, attr)
    expected = model(loc, vel, attr) @ q.T + t
    torch.testing.assert_close(moved, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["gatr", "gatr+pairs", "gatr+vga3-01", "cgenn", "cgenn+paper"])
def test_prediction_is_permutation_equivariant(name):
    gen = torch.Generator().manual_seed(3)
    model = _model(name).double()
    loc, vel, attr = _inputs("charged", gen)
    perm = torch.randperm(5, generator=gen)
    torch.testing.assert_close(
        model(loc[:, perm], vel[:, perm], attr[:, perm]), model(loc, vel, attr)[:, perm], rtol=0, atol=1e-10
    )


@pytest.mark.parametrize("cls", [NBodyGATr, NBodyCGENN])
def test_zero_output_is_linear_extrapolation(cls):
    """With the last layer zeroed the correction vanishes: the prediction is x + T v."""
    model = cls(**SMALL["gatr" if cls is NBodyGATr else "cgenn"], time_scale=0.5).double()
    readout = model.net.linear_out if cls is NBodyGATr else model.net.readout
    with torch.no_grad():
        for p in readout.parameters():
            p.zero_()
    loc, vel, attr = _inputs("charged", torch.Generator().manual_seed(1))
    torch.testing.assert_close(model(loc, vel, attr), loc + 0.5 * vel, rtol=0, atol=1e-12)


def test_gradients_reach_every_parameter():
    for name in ("gatr", "gatr+pairs", "cgenn", "cgenn+paper"):
        model = _model(name)
        loc, vel, attr = (x.float() for x in _inputs("charged", torch.Generator().manual_seed(2)))
        model(loc, vel, attr).square().mean().backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        assert not missing, f"{name}: no gradient for {missing}"


def test_bad_input_and_options():
    model = NBodyGATr(**SMALL["gatr"])
    loc, vel, attr = (x.float() for x in _inputs("charged", torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match=r"loc must have shape \(B, N, 3\)"):
        model(loc[..., :2], vel, attr)
    with pytest.raises(ValueError, match=r"attr must have shape \(B, N\)"):
        model(loc, vel, attr[..., None])
    with pytest.raises(ValueError, match="attr_features must be one of"):
        NBodyCGENN(attr_features="sqrt")
    with pytest.raises(ValueError, match="inputs must be one of"):
        NBodyCGENN(inputs="raw")
    with pytest.raises(ValueError, match="pair_channels must be an int >= 0, got -1"):
        NBodyGATr(pair_channels=-1)
    with pytest.raises(ValueError, match="unknown model 'mlp'"):
        build_model("mlp")
    assert set(MODELS) == {"gatr", "cgenn", "egnn", "transformer"}


def test_charge_symmetric_wrapper_is_flip_invariant_in_eval_mode():
    gen = torch.Generator().manual_seed(3)
    torch.manual_seed(0)
    model = build_model("gatr", charge_symmetric=True, **SMALL["gatr"]).double()
    loc, vel, q = _inputs("charged", gen)
    model.train()
    torch.testing.assert_close(model(loc, vel, q), model.model(loc, vel, q), atol=0, rtol=0)
    assert not torch.allclose(model.model(loc, vel, q), model.model(loc, vel, -q))  # the flip matters
    model.eval()
    want = 0.5 * (model.model(loc, vel, q) + model.model(loc, vel, -q))
    torch.testing.assert_close(model(loc, vel, q), want, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(model(loc, vel, -q), model(loc, vel, q), atol=1e-12, rtol=1e-12)


def test_trainer_charge_flip_defaults():
    from examples.nbody.train import TrainConfig

    cfg = TrainConfig(task="charged", model="egnn").resolved()
    assert cfg.charge_flip and cfg.model_kwargs["charge_symmetric"]
    assert not TrainConfig(task="gravity", model="egnn").resolved().charge_flip
    with pytest.raises(ValueError, match="charged task only"):
        TrainConfig(task="gravity", model="egnn", charge_flip=True).resolved()
    with pytest.raises(ValueError, match="ema"):
        TrainConfig(task="charged", model="egnn", ema=1.5).resolved()


def test_pair_features_sum_one_message_per_other_particle():
    """Messages of a symmetric pair are equal and opposite, and a particle's sum is the sum of
    its pair messages: the three-body result is the sum of the two two-body ones."""
    torch.manual_seed(0)
    pairs = PairFeatures(1, 2, time_scale=1.0).double()
    gen = torch.Generator().manual_seed(5)
    x = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]], dtype=torch.float64)
    v = torch.tensor([[[0.5, 0.0, 0.0], [-0.5, 0.0, 0.0]]], dtype=torch.float64)
    q = torch.ones(1, 2, 1, dtype=torch.float64)
    m, c = pairs(x, v, q)
    assert m.shape == (1, 2, 2, 3) and c.shape == (1, 2, 2)
    torch.testing.assert_close(m[0, 0], -m[0, 1], rtol=0, atol=1e-12)  # d and u flip with the pair
    torch.testing.assert_close(c[0, 0], c[0, 1], rtol=0, atol=1e-12)
    x3, v3 = (torch.randn(1, 3, 3, dtype=torch.float64, generator=gen) for _ in range(2))
    q3 = torch.tensor([[[1.0], [-1.0], [1.0]]], dtype=torch.float64)
    m3, c3 = pairs(x3, v3, q3)
    m01, c01 = pairs(x3[:, [0, 1]], v3[:, [0, 1]], q3[:, [0, 1]])
    m02, c02 = pairs(x3[:, [0, 2]], v3[:, [0, 2]], q3[:, [0, 2]])
    torch.testing.assert_close(m3[0, 0], m01[0, 0] + m02[0, 0], rtol=0, atol=1e-12)
    torch.testing.assert_close(c3[0, 0], c01[0, 0] + c02[0, 0], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="channels >= 1"):
        PairFeatures(1, 0, time_scale=1.0)


def test_cgenn_inputs_zero_output_is_the_input_position():
    """CGENN's convention: charges on the scalar blade, no extrapolation; a zeroed readout predicts x."""
    model = _model("cgenn+paper").double()
    assert model.net.in_mv_channels == 3 and model.net.in_s_channels == 0 and model.net.edge_s_channels == 1
    with torch.no_grad():
        for p in model.net.readout.parameters():
            p.zero_()
    loc, vel, attr = _inputs("charged", torch.Generator().manual_seed(1))
    torch.testing.assert_close(model(loc, vel, attr), loc, rtol=0, atol=1e-12)


def test_cgenn_edge_attr_is_the_charge_product():
    """The edge attribute fed to the messages is q_i q_j for every ordered pair of a system."""
    model = _model("cgenn+paper").double()
    seen = []
    model.net.register_forward_pre_hook(lambda mod, args: seen.append(args), with_kwargs=False)
    loc, vel, attr = _inputs("charged", torch.Generator().manual_seed(2), batch=2, n=4)
    model(loc, vel, attr)
    _, _, edges, edge_attr = seen[0]
    q = attr.reshape(-1)
    torch.testing.assert_close(edge_attr[:, 0], q[edges[0]] * q[edges[1]], atol=0, rtol=0)
    assert edges.shape[1] == 2 * 4 * 3


def test_compare_cgenn_needs_a_cgenn_checkout(tmp_path):
    """The CGENN comparison script (run by hand against a clone of CGENN's code) names what it needs."""
    from examples.nbody import compare_cgenn

    with pytest.raises(FileNotFoundError, match="not a CGENN checkout"):
        compare_cgenn.main(["--cgenn-dir", str(tmp_path)])


@pytest.mark.parametrize(("grades", "blades"), [([0, 1], 4), ("0,1,2", 7), (None, 8), ("full", 8)])
def test_vga3_gatr_builds_for_each_grade_set(grades, blades):
    """VGA3 GATr on grades (0, 1), (0, 1, 2) and all: channels of 4, 7 and 8 blades, a prediction
    for every particle, fewer parameters for fewer grades; all grades is the ordinary net."""
    torch.manual_seed(0)
    model = NBodyGATr(**_GATR_SMALL, pair_channels=2, algebra="vga3", grades=grades)
    assert model.net._dim == blades
    assert (model.layout is None) == (blades == 8)
    assert model.layout is None or model.layout.grades == ((0, 1) if blades == 4 else (0, 1, 2))
    loc, vel, attr = (x.float() for x in _inputs("charged", torch.Generator().manual_seed(0)))
    out = model(loc, vel, attr)
    assert out.shape == (3, 5, 3) and torch.isfinite(out).all()
    counts = [
        sum(p.numel() for p in NBodyGATr(**_GATR_SMALL, algebra="vga3", grades=g).parameters())
        for g in ([0, 1], [0, 1, 2], None)
    ]
    assert counts[0] < counts[1] < counts[2]


def test_all_grades_is_the_ordinary_gatr():
    """grades naming every grade builds today's net: same state dict, same predictions."""
    gen = torch.Generator().manual_seed(4)
    loc, vel, attr = _inputs("charged", gen)
    for algebra, every in (("pga3", [0, 1, 2, 3, 4]), ("vga3", "0,1,2,3")):
        torch.manual_seed(0)
        plain = NBodyGATr(**_GATR_SMALL, algebra=algebra).double()
        torch.manual_seed(0)
        full = NBodyGATr(**_GATR_SMALL, algebra=algebra, grades=every).double()
        assert full.layout is None
        assert plain.state_dict().keys() == full.state_dict().keys()
        for name, value in plain.state_dict().items():
            assert torch.equal(full.state_dict()[name], value), name
        torch.testing.assert_close(full(loc, vel, attr), plain(loc, vel, attr), rtol=0, atol=0)
    torch.manual_seed(0)
    default = NBodyGATr(**_GATR_SMALL)
    assert default.algebra == "pga3" and default.net.alg.n == 4 and default.layout is None


def test_layout_options_name_what_is_wrong():
    with pytest.raises(ValueError, match=r"algebra 'vga3' needs grades \(0, 1\) .* got grades \(0, 2\)"):
        NBodyGATr(algebra="vga3", grades=[0, 2])
    with pytest.raises(ValueError, match=r"'pga3' needs grades \(0, 3\) .*grade 3\), got grades \(0, 1, 2\)"):
        NBodyGATr(grades=[0, 1, 2])  # PGA3's points are grade 3
    with pytest.raises(ValueError, match=r"algebra must be one of \('pga3', 'vga3'\), got 'cga3'"):
        NBodyGATr(algebra="cga3")
    with pytest.raises(ValueError, match=r"expected grades as ints in \[0, 3\].*got '0,x'"):
        NBodyGATr(algebra="vga3", grades="0,x")
    for bad in ([0, 1, 1], [0, 1, 4], 3, [True, 1]):
        with pytest.raises(ValueError, match=r"expected grades as distinct ints in \[0, 3\] or 'full', got "):
            NBodyGATr(algebra="vga3", grades=bad)
    net = NBodyGATr(algebra="vga3", grades=[0, 1], dropout=0.1)  # grade dropout works on layouts
    assert net.net.layout is not None


def test_time_layouts_times_every_layout():
    """The timing script behind the layout table: every net, positive medians, blade order."""
    from examples.nbody.time_layouts import CASES, time_layouts

    res = time_layouts(1, batch=2, eval_batch=2, size={**_GATR_SMALL, "pair_channels": 2}, warmup=0)
    assert list(res) == list(CASES)
    assert all(r["step_s"] > 0 and r["eval_s"] > 0 for r in res.values())
    params = [r["parameters"] for r in res.values()][:3]  # VGA3 (0, 1), (0, 1, 2), all
    assert params[0] < params[1] < params[2]
    with pytest.raises(ValueError, match="expected rounds >= 1 and warmup >= 0, got 0 and 2"):
        time_layouts(0)
