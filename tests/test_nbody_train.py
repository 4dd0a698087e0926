"""The n-body trainer: one run per model, resume, predict, data-parallel, command line."""

from __future__ import annotations

import csv
import itertools
import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from examples import harness
from examples.nbody import predict as predict_mod
from examples.nbody import simulate
from examples.nbody import train as train_mod
from examples.nbody.models import MODELS
from examples.nbody.train import PUBLISHED, TrainConfig, parse_args, results_table, train

SIZES = {"train": 24, "val": 10, "test": 10, "shift": 6, "planets5": 6}
TINY = {
    "gatr": {"hidden_mv_channels": 2, "hidden_s_channels": 4, "num_blocks": 1, "num_heads": 1},
    "cgenn": {"hidden_mv_channels": 2, "hidden_s_channels": 4, "num_layers": 1},
    "egnn": {"hidden": 8, "num_layers": 1},
    "transformer": {"hidden": 8, "num_layers": 1, "num_heads": 2},
}


def fake_split(task: str, split: str, cache_dir=None, *, progress: bool = True) -> dict[str, np.ndarray]:
    """Small stand-in data with the shapes and value ranges of the real splits (fast)."""
    rng = np.random.default_rng([hash(task) % 1000, len(split)])
    b = SIZES[split]
    n = 5 if task == "charged" else (6 if split == "planets5" else 4)
    loc, vel = rng.normal(size=(b, n, 3)), rng.normal(size=(b, n, 3))
    attr = rng.choice([-1.0, 1.0], size=(b, n)) if task == "charged" else rng.uniform(0.01, 10, size=(b, n))
    target = loc + vel + 0.1 * np.tanh(loc)
    return {"loc": loc, "vel": vel, "attr": attr, "target": target}


@pytest.fixture
def tiny_data(monkeypatch):
    monkeypatch.setattr(simulate, "load_split", fake_split)


def _config(tmp_path, model="egnn", task="charged", **kw) -> TrainConfig:
    base = {"epochs": 2, "time_budget": 0.0, "batch_size": 8, "warmup_steps": 2, "threads": 1,
            "plots": False, "progress": False, "run_dir": str(tmp_path / "run")}  # fmt: skip
    base.update(kw)
    return TrainConfig(task=task, model=model, model_kwargs=TINY[model], **base)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_one_run_per_model(tiny_data, tmp_path, model):
    results = train(_config(tmp_path, model, max_steps=3))
    assert np.isfinite(results["test_mse"]) and results["test_mse"] > 0
    run = tmp_path / "run"
    assert (run / "best.pt").exists() and (run / "last.pt").exists() and (run / "train.log").exists()
    with (run / "log.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [3]  # max_steps ends the first epoch (3 batches of 8)
    assert json.loads((run / "results.json").read_text())["test_mse"] == results["test_mse"]


def test_gravity_run_reports_generalisation_sets(tiny_data, tmp_path):
    results = train(_config(tmp_path, "gatr", task="gravity", max_steps=2))
    assert {"test_mse", "shift_mse", "planets5_mse"} <= set(results)
    assert all(np.isfinite(results[k]) for k in ("test_mse", "shift_mse", "planets5_mse"))


def _params(path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_resume_continues_without_lost_progress(tiny_data, tmp_path, monkeypatch, ema):
    """Interrupted after epoch 1 and resumed: the same weights (and weight average) as a straight run."""
    straight = train(_config(tmp_path / "a", "egnn", epochs=3, ema=ema))
    reference = _params(tmp_path / "a" / "run" / "last.pt")
    best_ref = _params(tmp_path / "a" / "run" / "best.pt")

    calls = {"n": 0}
    real_write = harness.write_csv

    def interrupt_after_first_epoch(history, path):
        real_write(history, path)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(harness, "write_csv", interrupt_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tmp_path / "b", "egnn", epochs=3, ema=ema))
    assert torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=True)["epoch"] == 1
    resumed = train(_config(tmp_path / "b", "egnn", epochs=3, ema=ema), resume=True)
    for name, value in _params(tmp_path / "b" / "run" / "last.pt").items():
        torch.testing.assert_close(value, reference[name], rtol=0, atol=0)
    for name, value in _params(tmp_path / "b" / "run" / "best.pt").items():
        torch.testing.assert_close(value, best_ref[name], rtol=0, atol=0)
    assert resumed["test_mse"] == straight["test_mse"]
    with (tmp_path / "b" / "run" / "log.csv").open() as fh:
        assert [int(r["epoch"]) for r in csv.DictReader(fh)] == [1, 2, 3]


def test_resume_refuses_another_model(tiny_data, tmp_path):
    train(_config(tmp_path, "egnn", max_steps=1))
    with pytest.raises(ValueError, match="model='egnn'"):
        train(_config(tmp_path, "transformer", max_steps=1), resume=True)


def test_predict_round_trip(tiny_data, tmp_path):
    train(_config(tmp_path, "gatr", max_steps=2))
    ckpt = tmp_path / "run" / "best.pt"
    data = fake_split("charged", "test")
    out = predict_mod.predict(ckpt, data["loc"], data["vel"], data["attr"])
    assert out.shape == (10, 5, 3) and out.dtype == np.float64
    model, task = predict_mod.load_model(ckpt)
    assert task == "charged"
    with torch.no_grad():
        direct = model(*(torch.as_tensor(data[k], dtype=torch.float32) for k in ("loc", "vel", "attr")))
    np.testing.assert_allclose(out, direct.double().numpy(), rtol=0, atol=0)
    with pytest.raises(ValueError, match="trained on the 'charged' task"):
        predict_mod.predict_gravity(ckpt, data["loc"], data["vel"], data["attr"])
    with pytest.raises(ValueError, match=r"charges must have shape \(10, 5\)"):
        predict_mod.predict(ckpt, data["loc"], data["vel"], data["attr"][:, :4])
    with pytest.raises(ValueError, match=r"loc must have shape \(B, N, 3\)"):
        predict_mod.predict(ckpt, data["loc"][..., :2], data["vel"], data["attr"])
    with pytest.raises(FileNotFoundError):
        predict_mod.predict(tmp_path / "missing.pt", data["loc"], data["vel"], data["attr"])


@pytest.mark.parametrize("grades", ["0,1", "0,1,2", "full"])
def test_vga3_layout_gatr_run_from_the_command_line(tiny_data, tmp_path, grades):
    """``--model-arg algebra=vga3 --model-arg grades=...`` trains, labels its results and
    round-trips through ``best.pt`` (the layout study of examples/nbody/README.md)."""
    args = ["--model", "gatr", "--max-steps", "2", "--epochs", "1", "--batch-size", "8", "--threads", "1",
            "--no-plots", "--no-progress", "--run-dir", str(tmp_path / "run"), "--model-arg", "algebra=vga3",
            "--model-arg", f"grades={grades}"]  # fmt: skip
    for key, value in TINY["gatr"].items():
        args += ["--model-arg", f"{key}={value}"]
    cfg, _ = parse_args(args)
    results = train(cfg)
    assert np.isfinite(results["test_mse"]) and results["test_mse"] > 0
    stored = {"0,1": ", grades 0,1", "0,1,2": ", grades 0,1,2", "full": ""}[grades]
    assert results["label"] == f"gatorch GATr (VGA3{stored})"
    assert f"| **gatorch GATr (VGA3{stored}), quick preset (this run)** |" in results_table(results)
    model, _ = predict_mod.load_model(tmp_path / "run" / "best.pt")
    net = model.model.net if hasattr(model, "model") else model.net  # ChargeSymmetric wraps it
    assert net._dim == {"0,1": 4, "0,1,2": 7, "full": 8}[grades]
    data = fake_split("charged", "test")
    assert np.isfinite(
        predict_mod.predict(tmp_path / "run" / "best.pt", data["loc"], data["vel"], data["attr"])
    ).all()


def test_plots_written(tiny_data, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    train(_config(tmp_path, "egnn", max_steps=2, plots=True))
    for name in ("loss.png", "predictions.png"):
        png = tmp_path / "run" / name
        assert png.exists() and png.read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "| CGENN | 0.0039 (published) |" in printed and "loss.png" in printed


def test_results_table_orders_and_marks_rows():
    table = results_table({"task": "charged", "model": "gatr", "preset": "quick", "epochs": 3,
                           "wall_time_s": 12.0, "hardware": "CPU", "test_mse": 0.005})  # fmt: skip
    lines = [line for line in table.splitlines() if line.startswith("| ") and "method" not in line]
    assert len(lines) == len(PUBLISHED["charged"]) + 1
    values = [float(line.split("|")[2].split()[0]) for line in lines]
    assert values == sorted(values, reverse=True)
    assert "| **gatorch GATr (PGA3), quick preset (this run)** | 0.0050 |" in table


def test_command_line_options():
    cfg, resume = parse_args(["--model", "cgenn", "--preset", "full", "--resume", "--model-arg",
                              "hidden_mv_channels=4", "--model-arg", "attr_features=log"])  # fmt: skip
    assert resume and cfg.model == "cgenn" and cfg.preset == "full"
    assert cfg.model_kwargs == {"hidden_mv_channels": 4, "attr_features": "log"}
    resolved = cfg.resolved()
    assert resolved.model_kwargs["hidden_mv_channels"] == 4 and resolved.lr == train_mod.PRESETS["full"]["lr"]
    with pytest.raises(SystemExit):
        parse_args(["--model", "mlp"])
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        TrainConfig(preset="huge").resolved()


def test_cgenn_paper_preset_resolves_to_cgenns_settings():
    cfg = TrainConfig(task="charged", model="cgenn", preset="cgenn-paper").resolved()
    assert (cfg.optimizer, cfg.schedule, cfg.grad_clip, cfg.lr, cfg.weight_decay) == (
        "adam",
        "cosine",
        0.0,
        4e-3,
        1e-4,
    )
    assert (cfg.batch_size, cfg.ema, cfg.charge_flip, cfg.epochs) == (100, 0.0, False, 30)
    kw = cfg.model_kwargs
    assert kw["hidden_mv_channels"] == 28 and kw["num_layers"] == 3 and kw["mlp"]["style"] == "cgenn"
    assert "charge_symmetric" not in kw
    # the command line overrides the preset's training options
    cli, _ = parse_args(["--model", "cgenn", "--preset", "cgenn-paper", "--optimizer", "adamw",
                         "--schedule", "cgenn", "--grad-clip", "1"])  # fmt: skip
    over = cli.resolved()
    assert (over.optimizer, over.schedule, over.grad_clip, over.warmup_steps) == ("adamw", "cgenn", 1.0, 15)
    # the other presets keep the trainer's defaults
    full = TrainConfig(task="charged", model="cgenn", preset="full").resolved()
    assert (full.optimizer, full.schedule, full.grad_clip, full.warmup_steps) == ("adamw", "cosine", 1.0, 100)
    with pytest.raises(ValueError, match="preset 'cgenn-paper' has no model 'gatr'"):
        TrainConfig(model="gatr", preset="cgenn-paper").resolved()
    with pytest.raises(ValueError, match="schedule must be one of"):
        TrainConfig(model="cgenn", preset="cgenn-paper", schedule="step").resolved()
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainConfig(model="cgenn", optimizer="sgd").resolved()


def test_cgenn_schedule_shape():
    """CGENN's CosineAnnealingLR: warm-up over 1/64, the full rate, cosine decay over the last 1/4."""
    f = [harness.lr_factor(p / 640, 0, 0, "cgenn", 4e-3) for p in range(641)]
    floor = 1e-7 / 4e-3
    assert f[0] == pytest.approx(floor) and f[10] == pytest.approx(1.0)  # 10 / 640 = 1 / 64
    assert f[5] == pytest.approx(0.5 * (1 + floor))
    assert all(v == 1.0 for v in f[10:480])
    assert f[560] == pytest.approx(0.5 * (1 + floor)) and f[640] == pytest.approx(floor)
    assert all(a >= b for a, b in itertools.pairwise(f[480:]))
    cos = [harness.lr_factor(p / 10, 100, 10) for p in range(11)]
    assert cos[0] == 1.0 and cos[10] == pytest.approx(0.01)


def test_cgenn_paper_run(tiny_data, tmp_path):
    small = {"hidden_mv_channels": 2, "num_layers": 1}
    cfg = TrainConfig(task="charged", model="cgenn", preset="cgenn-paper", epochs=2, batch_size=8,
                      threads=1, plots=False, progress=False, run_dir=str(tmp_path / "run"),
                      model_kwargs=small)  # fmt: skip
    results = train(cfg)
    assert np.isfinite(results["test_mse"]) and results["epochs"] == 2
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert best["model_kwargs"]["inputs"] == "cgenn" and best["config"]["optimizer"] == "adam"


def test_preset_model_options_may_depend_on_the_task(monkeypatch):
    full = train_mod.PRESETS["full"]
    gatr = {**full["models"]["gatr"], "pair_channels": {"charged": 8, "gravity": 0}}
    monkeypatch.setitem(train_mod.PRESETS, "full", {**full, "models": {**full["models"], "gatr": gatr}})
    charged = TrainConfig(task="charged", model="gatr", preset="full").resolved()
    gravity = TrainConfig(task="gravity", model="gatr", preset="full").resolved()
    assert charged.model_kwargs["pair_channels"] == 8 and gravity.model_kwargs["pair_channels"] == 0
    override = TrainConfig(task="charged", model="gatr", preset="full", model_kwargs={"pair_channels": 2})
    assert override.resolved().model_kwargs["pair_channels"] == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, tmp: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
    simulate.load_split = fake_split  # this process's copy of the module
    captured = {}
    real_finish = train_mod._finish

    def keep_model(cfg, model, *args, **kwargs):
        captured["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return real_finish(cfg, model, *args, **kwargs)

    train_mod._finish = keep_model
    cfg = TrainConfig(model="egnn", model_kwargs=TINY["egnn"], epochs=2, time_budget=0.0, batch_size=4,
                      threads=1, plots=False, progress=False, run_dir=os.path.join(tmp, "run"))  # fmt: skip
    try:
        train(cfg)
        torch.save(captured["state"], os.path.join(tmp, f"rank{rank}.pt"))
    finally:
        torch.distributed.destroy_process_group()
    os._exit(0)  # skip teardown: see tests/test_distributed.py (gloo reducer teardown deadlock)


def test_data_parallel_two_processes(tmp_path):
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
    with (tmp_path / "run" / "log.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    # 24 systems over 2 processes in batches of 4: 3 steps per epoch
    assert [int(r["step"]) for r in rows] == [3, 6]


def test_weight_average_warms_up_then_decays():
    """harness.EMA: decay min(d, (1 + t) / (10 + t)) at update t, on floating-point state only."""
    lin = torch.nn.Linear(2, 1)
    ema = harness.EMA(lin, 0.9)
    start = lin.weight.detach().clone()
    values = []
    for t in range(1, 40):
        with torch.no_grad():
            lin.weight.fill_(float(t))
        ema.update(lin)
        values.append(float(t))
    want = start.clone()
    for t, v in enumerate(values, start=1):
        d = min(0.9, (1 + t) / (10 + t))
        want = d * want + (1 - d) * v
    torch.testing.assert_close(ema.averaged(lin)["weight"], want)
    assert not torch.equal(ema.averaged(lin)["weight"], lin.weight.detach())
