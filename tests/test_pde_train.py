"""The PDE example's trainer: tiny runs of every model, checkpoints that resume, the rollout evaluation."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from examples import harness
from examples.pde import simulate as sim
from examples.pde import train as pde_train
from examples.pde.models import MODELS, build_model, count_parameters

TINY_MODEL = {"hidden_channels": 2, "num_blocks": 1}


@pytest.fixture
def tiny_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(
        sim, "NAVIER_STOKES", {**sim.NAVIER_STOKES, "grid": 16, "length": 8.0, "frames": 6, "substeps": 4}
    )
    monkeypatch.setattr(sim, "SPLIT_SIZES", {"train": 3, "val": 2, "test": 2})
    cache = tmp_path / "cache"
    sim.generate(cache)
    return cache


def _config(tmp_path, cache, model, **kw):
    extra = {"modes": 2} if model in ("clifford-fno", "fno") else {}
    opts = dict(
        model=model, preset="quick", run_dir=str(tmp_path / model), cache_dir=str(cache), epochs=1,
        time_budget=0.0, batch_size=4, history=2, progress=False, plots=False,
        model_kwargs={**TINY_MODEL, **extra},
    )  # fmt: skip
    return pde_train.TrainConfig(**{**opts, **kw})


def test_every_model_trains_writes_checkpoints_and_a_table(tmp_path, tiny_cache, capsys):
    results = []
    for name in MODELS:
        kwargs = {**TINY_MODEL, **({"modes": 2} if "fno" in name else {})}
        results.append(
            pde_train.train(_config(tmp_path, tiny_cache, name, max_steps=2, plots=True, model_kwargs=kwargs))
        )
    for name in MODELS:
        run = tmp_path / name
        for f in ("last.pt", "best.pt", "log.csv", "results.json", "train.log", "loss.png", "rollout.png"):
            assert (run / f).exists(), f"{name}: {f} missing"
        with (run / "log.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 1 and int(rows[0]["step"]) == 2
        stored = json.loads((run / "results.json").read_text())
        assert stored["model"] == name and stored["epochs"] == 1
        assert len(stored["rollout_mse_per_step"]) == 6 - 2
        for key in ("test_onestep_mse", "rollout_mse", "val_onestep_mse"):
            assert stored[key] > 0 and stored[key] < 1e3
    table = pde_train.results_table(results)
    for name in MODELS:
        assert pde_train.MODEL_LABELS[name] in table


def test_resume_continues_an_interrupted_run_exactly(tmp_path, tiny_cache, monkeypatch):
    full = pde_train.train(
        _config(tmp_path, tiny_cache, "clifford-resnet", epochs=3, run_dir=str(tmp_path / "full"))
    )
    calls = {"n": 0}
    real_write_csv = harness.write_csv

    def interrupt_after_first_epoch(history, path):
        real_write_csv(history, path)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(harness, "write_csv", interrupt_after_first_epoch)
    cfg = _config(tmp_path, tiny_cache, "clifford-resnet", epochs=3, run_dir=str(tmp_path / "cut"))
    with pytest.raises(KeyboardInterrupt):
        pde_train.train(cfg)
    state = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    resumed = pde_train.train(cfg, resume=True)
    assert resumed["epochs"] == full["epochs"] == 3
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=0, rtol=0)
    assert resumed["rollout_mse"] == full["rollout_mse"]
    # a resume must name the same model
    with pytest.raises(ValueError, match="model"):
        pde_train.train(_config(tmp_path, tiny_cache, "resnet", run_dir=str(tmp_path / "cut")), resume=True)


def test_windows_and_gather():
    fields = torch.randn(3, 7, 4, 4, 4)
    traj, frame = pde_train.windows(fields, history=3)
    assert traj.numel() == 3 * 4 and int(frame.min()) == 3 and int(frame.max()) == 6
    x, y = pde_train.gather(fields, traj, frame, history=3)
    for i in range(traj.numel()):
        t, f = int(traj[i]), int(frame[i])
        torch.testing.assert_close(x[i], fields[t, f - 3 : f])
        torch.testing.assert_close(y[i, 0], fields[t, f])


def test_rollout_matches_a_hand_written_loop():
    torch.manual_seed(0)
    model = build_model(
        "clifford-resnet", history=2, hidden_channels=2, num_blocks=1, smoke_scale=0.5, velocity_scale=2.0
    )
    model = model.double().eval()
    fields = torch.randn(3, 6, 8, 8, 4, dtype=torch.float64)
    fields[..., 3] = 0
    pred = pde_train.rollout(model, fields, history=2, batch_size=2)  # batches of 2 and 1 trajectories
    assert pred.shape == (3, 4, 8, 8, 4)
    with torch.no_grad():
        for t in range(3):
            frames = [fields[t, 0], fields[t, 1]]
            for k in range(4):
                nxt = model(torch.stack(frames[-2:])[None])[0, 0]
                torch.testing.assert_close(pred[t, k], nxt, atol=1e-12, rtol=1e-12)
                frames.append(nxt)
    # the rollout feeds back its own predictions: the second step differs from a one-step prediction
    with torch.no_grad():
        one_step = model(fields[:, 1:3])[:, 0]
    assert (one_step - pred[:, 1]).abs().max() > 1e-6
    metrics = pde_train.rollout_metrics(pred, fields, history=2)
    expected = (pred[..., :3] - fields[:, 2:, ..., :3]).pow(2).mean()
    assert metrics["rollout_mse"] == pytest.approx(float(expected), rel=1e-12)
    assert pred[..., 3].abs().max() == 0  # no bivector in the prediction


def test_baselines_match_the_clifford_parameter_counts():
    for hidden, blocks in ((8, 2), (16, 4)):
        kw = dict(hidden_channels=hidden, num_blocks=blocks)
        res = count_parameters(build_model("clifford-resnet", **kw))
        fno = count_parameters(build_model("clifford-fno", **kw))
        assert abs(count_parameters(build_model("resnet", **kw)) / res - 1) < 0.05
        assert abs(count_parameters(build_model("fno", **kw)) / fno - 1) < 0.05


def test_config_errors():
    with pytest.raises(ValueError, match="unknown model"):
        pde_train.TrainConfig(model="unet").resolved()
    with pytest.raises(ValueError, match="unknown preset"):
        pde_train.TrainConfig(preset="huge").resolved()
    with pytest.raises(ValueError, match="history"):
        pde_train.TrainConfig(history=0).resolved()


def test_steerable_model_is_equivariant_with_its_buoyancy_direction():
    # rotating the input frames by 90 degrees and the buoyancy direction with them rotates the prediction
    torch.manual_seed(0)
    up = build_model(
        "steerable", history=2, hidden_channels=2, num_blocks=1, smoke_scale=0.5, velocity_scale=2.0
    )
    left = build_model(
        "steerable", history=2, hidden_channels=2, num_blocks=1, smoke_scale=0.5, velocity_scale=2.0,
        direction=(-1.0, 0.0),
    )  # fmt: skip
    left.load_state_dict({k: v for k, v in up.state_dict().items() if k != "spurion"}, strict=False)
    up, left = up.double().eval(), left.double().eval()
    assert left.spurion.tolist() == [0.0, -1.0, 0.0, 0.0]

    def rotate(f):  # (B, T, N, N, 4): grid by +90 degrees, values (s, u_x, u_y) -> (s, -u_y, u_x)
        r = torch.rot90(f, 1, dims=(2, 3))
        return torch.stack((r[..., 0], -r[..., 2], r[..., 1], r[..., 3]), dim=-1)

    x = torch.randn(2, 2, 8, 8, 4, dtype=torch.float64)
    x[..., 3] = 0
    with torch.no_grad():
        torch.testing.assert_close(left(rotate(x)), rotate(up(x)), atol=1e-10, rtol=1e-10)
        assert (up(rotate(x)) - rotate(up(x))).abs().max() > 1e-4  # without rotating the direction: not
