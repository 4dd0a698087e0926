"""The gatorch n-body models: E(3) equivariance of the predictions, permutations, bad input."""

from __future__ import annotations

import pytest
import torch

from examples.nbody.models import MODELS, NBodyCGENN, NBodyGATr, build_model

SMALL = {
    "gatr": {"hidden_mv_channels": 4, "hidden_s_channels": 8, "num_blocks": 2, "num_heads": 2},
    "cgenn": {"hidden_mv_channels": 4, "hidden_s_channels": 8, "num_layers": 2},
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


@pytest.mark.parametrize("det", [1.0, -1.0])
@pytest.mark.parametrize("task", ["charged", "gravity"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_prediction_is_e3_equivariant(name, task, det):
    gen = torch.Generator().manual_seed(7)
    kwargs = {**SMALL[name], "attr_features": "raw" if task == "charged" else "log"}
    torch.manual_seed(0)
    model = build_model(name, **kwargs).double()
    loc, vel, attr = _inputs(task, gen)
    q = _orthogonal(det, gen)
    t = torch.randn(3, dtype=torch.float64, generator=gen) * 20  # the gravity protocol's scale
    moved = model(loc @ q.T + t, vel @ q.T, attr)
    expected = model(loc, vel, attr) @ q.T + t
    torch.testing.assert_close(moved, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["gatr", "cgenn"])
def test_prediction_is_permutation_equivariant(name):
    gen = torch.Generator().manual_seed(3)
    model = build_model(name, **SMALL[name]).double()
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
    for name in ("gatr", "cgenn"):
        model = build_model(name, **SMALL[name])
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
