"""Train next-step surrogates of the Navier-Stokes smoke: checkpoints that resume, a CSV log, rollout plots.

Run from the repository root::

    python -m examples.pde.train --model all --preset quick          # the five models, one table
    python -m examples.pde.train --model clifford-resnet --preset full --run-dir runs/pde-cres
    python -m examples.pde.train ... --resume                        # continue an interrupted run
    torchrun --nproc_per_node=2 -m examples.pde.train --model resnet ...   # data-parallel (DDP)

A model sees the last ``history`` (4, as in cliffordlayers) frames of the Cl(2,0) field (smoke,
velocity) as channels and predicts the next frame; training minimises the one-step MSE over
every window of the training trajectories (smoke and velocity scaled to unit size). Each epoch
writes ``last.pt`` (everything needed to resume), ``best.pt`` when the validation one-step MSE
improved, and ``log.csv``. At the end the best checkpoint is evaluated on the test
trajectories: the one-step MSE (every window, true inputs) and the rollout MSE (from the
first ``history`` frames, the model fed its own predictions up to the last frame), both in data
units averaged over smoke, ``u_x`` and ``u_y``. The run directory gets ``results.json``,
``loss.png`` and ``rollout.png``; ``--model all`` also writes the table of all models to
``runs/pde-PRESET/results.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from examples.nbody.train import (
    _barrier,
    _Dist,
    _hardware,
    _init_distributed,
    _lr_factor,
    _pick_device,
    _save_atomic,
    _unwrap,
    _write_csv,
)
from examples.pde import simulate
from examples.pde.models import MODELS, build_model, count_parameters

log = logging.getLogger("pde")

#: Per preset: optimisation, data sizes and per model its size (and, where it differs, its
#: learning rate and time budget, in seconds of training).
PRESETS: dict[str, dict[str, Any]] = {
    # every model gets the same optimiser steps (2 epochs of batch 4), cliffordlayers' protocol of
    # equal epochs; the time budget is only a cap (a Clifford convolution costs 4x the FLOPs of a
    # real one with the same parameters, so equal time would give the plain nets 4x the steps)
    "quick": {
        "epochs": 2,
        "time_budget": 100.0,
        "batch_size": 4,
        "lr": 3e-3,
        "weight_decay": 1e-5,
        "warmup_steps": 10,
        "train_size": 48,
        "models": {
            "clifford-resnet": {"hidden_channels": 8, "num_blocks": 2},
            "resnet": {"hidden_channels": 8, "num_blocks": 2},  # width matched to clifford-resnet
            "clifford-fno": {"hidden_channels": 8, "num_blocks": 2, "modes": 8},
            "fno": {"hidden_channels": 8, "num_blocks": 2, "modes": 8},  # width matched to clifford-fno
            "steerable": {"hidden_channels": 8, "num_blocks": 2},
        },
    },
    "full": {
        "epochs": 60,
        "time_budget": None,
        "batch_size": 16,
        "lr": 1e-3,
        "weight_decay": 1e-5,
        "warmup_steps": 100,
        "train_size": None,
        "models": {
            "clifford-resnet": {"hidden_channels": 16, "num_blocks": 4},
            "resnet": {"hidden_channels": 16, "num_blocks": 4},
            "clifford-fno": {"hidden_channels": 16, "num_blocks": 4, "modes": 12},
            "fno": {"hidden_channels": 16, "num_blocks": 4, "modes": 12},
            "steerable": {"hidden_channels": 16, "num_blocks": 4},
        },
    },
}

CHECKPOINT_FORMAT = 1

MODEL_LABELS = {
    "clifford-resnet": "gatorch CliffordResNet",
    "resnet": "ResNet baseline",
    "clifford-fno": "gatorch CliffordFNO",
    "fno": "FNO baseline",
    "steerable": "gatorch CliffordSteerableResNet",
}


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in every checkpoint).

    ``None`` fields take the preset's value; ``model_kwargs`` update the preset's model size.
    ``train_size``: the first trajectories of the training split (``None``: all); ``history``:
    input frames per prediction.
    """

    model: str = "clifford-resnet"
    preset: str = "quick"
    run_dir: str | None = None
    cache_dir: str | None = None
    epochs: int | None = None
    time_budget: float | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    warmup_steps: int | None = None
    grad_clip: float = 1.0
    train_size: int | None = None
    history: int = 4
    eval_batch_size: int = 32
    seed: int = 0
    max_steps: int | None = None
    device: str = "auto"
    threads: int | None = None
    plots: bool = True
    progress: bool = True
    model_kwargs: dict[str, Any] = field(default_factory=dict)

    def resolved(self) -> TrainConfig:
        """A copy with every preset-dependent field filled in and the options checked."""
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; expected one of {MODELS}")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; expected one of {sorted(PRESETS)}")
        preset = PRESETS[self.preset]
        cfg = dataclasses.replace(self, model_kwargs=dict(self.model_kwargs))
        model_preset = dict(preset["models"][self.model])
        own = {name: model_preset.pop(name) for name in ("lr", "time_budget") if name in model_preset}
        for name in (
            "epochs",
            "time_budget",
            "batch_size",
            "lr",
            "weight_decay",
            "warmup_steps",
            "train_size",
        ):
            if getattr(cfg, name) is None:
                setattr(cfg, name, own.get(name, preset[name]))
        cfg.model_kwargs = {**model_preset, "history": self.history, **self.model_kwargs}
        if cfg.run_dir is None:
            cfg.run_dir = str(Path("runs") / f"pde-{cfg.model}-{cfg.preset}")
        for name in ("epochs", "batch_size", "eval_batch_size", "history"):
            if not isinstance(getattr(cfg, name), int) or getattr(cfg, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(cfg, name)!r}")
        return cfg


def _setup_logging(run_dir: Path, main: bool) -> None:
    log.setLevel(logging.INFO)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    if not main:
        log.addHandler(logging.NullHandler())
        return
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    for handler in (logging.StreamHandler(sys.stdout), logging.FileHandler(run_dir / "train.log")):
        handler.setFormatter(fmt)
        log.addHandler(handler)


# -- data and metrics ----------------------------------------------------------------------------------
def to_tensor(fields: np.ndarray, device: torch.device, limit: int | None = None) -> Tensor:
    """``(T, F, 1, N, N, 4)`` cached fields -> ``(T, F, N, N, 4)`` float32 on ``device``."""
    return torch.as_tensor(fields[:limit, :, 0], dtype=torch.float32, device=device)


def windows(fields: Tensor, history: int) -> tuple[Tensor, Tensor]:
    """Every (trajectory, target frame) pair: ``traj`` and ``frame`` index tensors, ``frame >= history``."""
    t, f = fields.shape[:2]
    traj, frame = torch.meshgrid(torch.arange(t), torch.arange(history, f), indexing="ij")
    return traj.reshape(-1).to(fields.device), frame.reshape(-1).to(fields.device)


def gather(fields: Tensor, traj: Tensor, frame: Tensor, history: int) -> tuple[Tensor, Tensor]:
    """Inputs ``(B, history, N, N, 4)`` (the frames before ``frame``) and targets ``(B, 1, N, N, 4)``."""
    offsets = torch.arange(-history, 0, device=fields.device)
    x = fields[traj[:, None], frame[:, None] + offsets]
    return x, fields[traj, frame].unsqueeze(1)


def field_scales(fields: Tensor) -> tuple[float, float]:
    """Standard deviation of the smoke and root mean square of a velocity component (training set)."""
    smoke = float(fields[..., 0].std())
    velocity = float(fields[..., 1:3].pow(2).mean().sqrt())
    return round(smoke, 5), round(velocity, 5)


def _mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over smoke, ``u_x`` and ``u_y`` (the bivector is not data)."""
    return (pred[..., :3] - target[..., :3]).pow(2).mean()


@torch.no_grad()
def one_step_mse(model: nn.Module, fields: Tensor, history: int, batch_size: int = 32) -> float:
    """One-step MSE over every window of ``fields`` (true inputs), in data units."""
    was_training = model.training
    model.eval()
    traj, frame = windows(fields, history)
    total, count = 0.0, 0
    for start in range(0, traj.numel(), batch_size):
        x, y = gather(fields, traj[start : start + batch_size], frame[start : start + batch_size], history)
        total += float((model(x)[..., :3] - y[..., :3]).pow(2).sum())
        count += y[..., :3].numel()
    model.train(was_training)
    return total / count


@torch.no_grad()
def rollout(model: nn.Module, fields: Tensor, history: int, batch_size: int = 32) -> Tensor:
    """Autoregressive rollout from the first ``history`` frames to the last one.

    Returns
    -------
    Tensor
        ``(T, F - history, N, N, 4)``: frame ``history + k`` predicted from the model's own
        predictions (and the given frames while fewer than ``history`` are predicted).
    """
    was_training = model.training
    model.eval()
    parts = []
    for start in range(0, fields.shape[0], batch_size):
        window = fields[start : start + batch_size, :history]
        preds = []
        for _ in range(fields.shape[1] - history):
            nxt = model(window)
            preds.append(nxt)
            window = torch.cat((window[:, 1:], nxt), dim=1)
        parts.append(torch.cat(preds, dim=1))
    model.train(was_training)
    return torch.cat(parts, dim=0)


def rollout_metrics(pred: Tensor, fields: Tensor, history: int) -> dict[str, Any]:
    """Rollout MSE (all, smoke, velocity) and the MSE per rollout step, in data units."""
    err = (pred[..., :3] - fields[:, history:, ..., :3]).pow(2)
    return {
        "rollout_mse": float(err.mean()),
        "rollout_smoke_mse": float(err[..., 0].mean()),
        "rollout_velocity_mse": float(err[..., 1:].mean()),
        "rollout_mse_per_step": [float(v) for v in err.mean(dim=(0, 2, 3, 4))],
    }


# -- the run ------------------------------------------------------------------------------------------------
def train(config: TrainConfig, *, resume: bool = False) -> dict[str, Any]:
    """Train (or resume) one model; returns the results also written to ``results.json``."""
    cfg = config.resolved()
    run_dir = Path(str(cfg.run_dir))
    device_kind = "cuda" if cfg.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    d = _init_distributed(device_kind)
    device = _pick_device(cfg.device, d.local_rank)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if d.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    _barrier(d)
    _setup_logging(run_dir, d.main)

    state = None
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if resume and last_path.exists():
        state = torch.load(last_path, map_location="cpu", weights_only=False)
        stored = TrainConfig(**state["config"])
        for name in ("model", "preset"):
            if getattr(stored, name) != getattr(cfg, name):
                raise ValueError(
                    f"--resume: {last_path} is a run with {name}={getattr(stored, name)!r}, "
                    f"but this command asks for {name}={getattr(cfg, name)!r}"
                )
        cfg = dataclasses.replace(stored, run_dir=cfg.run_dir, progress=cfg.progress, plots=cfg.plots)
        log.info("resuming %s from epoch %d (step %d)", run_dir, state["epoch"], state["step"])
    elif resume:
        log.info("--resume: no %s yet, starting a fresh run", last_path)

    arrays: dict[str, np.ndarray] = {}
    for turn in (True, False):  # the main process generates the cache first, the others then read it
        if d.main == turn:
            for split in simulate.SPLITS:
                arrays[split] = simulate.load_split(split, cfg.cache_dir)
        _barrier(d)
    data = {s: to_tensor(a, device, cfg.train_size if s == "train" else None) for s, a in arrays.items()}
    if "smoke_scale" not in cfg.model_kwargs:
        cfg.model_kwargs["smoke_scale"], cfg.model_kwargs["velocity_scale"] = field_scales(data["train"])
    scale = torch.tensor(
        [
            cfg.model_kwargs["smoke_scale"],
            cfg.model_kwargs["velocity_scale"],
            cfg.model_kwargs["velocity_scale"],
        ],
        device=device,
    )
    traj_all, frame_all = windows(data["train"], cfg.history)
    n_train = traj_all.numel()

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, **cfg.model_kwargs).to(device)
    n_params = count_parameters(model)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=float(cfg.lr or 0.0), weight_decay=float(cfg.weight_decay or 0.0)
    )
    epoch, step, elapsed, best_val, history = 0, 0, 0.0, math.inf, []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, step, elapsed = state["epoch"], state["step"], state["elapsed"]
        best_val, history = state["best_val"], state["history"]
        torch.set_rng_state(state["torch_rng"])
    if d.world > 1:
        model = nn.parallel.DistributedDataParallel(model)

    batch_size = int(cfg.batch_size or 1)
    steps_per_epoch = math.ceil(math.ceil(n_train / d.world) / batch_size)
    total_steps = int(cfg.epochs or 1) * steps_per_epoch
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    log.info(
        "pde: model %s (%d parameters), preset %s: %d training windows (%d trajectories, history %d), "
        "batch %d x %d process(es), up to %d epochs%s, lr %.2g, device %s",
        cfg.model, n_params, cfg.preset, n_train, data["train"].shape[0], cfg.history, batch_size, d.world,
        cfg.epochs, f" or {cfg.time_budget:.0f} s" if cfg.time_budget else "", cfg.lr, device,
    )  # fmt: skip

    def progress_of() -> float:
        p = step / total_steps
        if cfg.time_budget:
            p = max(p, elapsed / cfg.time_budget)
        return p

    from tqdm import tqdm

    model.train()
    done = progress_of() >= 1.0
    while not done and epoch < int(cfg.epochs or 1):
        t0 = time.perf_counter()
        order = np.random.default_rng([cfg.seed, epoch]).permutation(n_train)[d.rank :: d.world]
        order_t = torch.as_tensor(order, device=device)
        losses = []
        bar = tqdm(range(steps_per_epoch), desc=f"{cfg.model} epoch {epoch + 1}",
                   disable=not (cfg.progress and d.main), leave=False, dynamic_ncols=True)  # fmt: skip
        for b in bar:
            idx = order_t[b * batch_size : (b + 1) * batch_size]
            if idx.numel() == 0:  # ranks with a short shard still step, to keep DDP in sync
                idx = order_t[:batch_size]
            x, y = gather(data["train"], traj_all[idx], frame_all[idx], cfg.history)
            factor = _lr_factor(progress_of(), step, int(cfg.warmup_steps or 0))
            for group in optimizer.param_groups:
                group["lr"] = float(cfg.lr or 0.0) * factor
            pred = model(x)
            loss = ((pred[..., :3] - y[..., :3]) / scale).pow(2).mean()  # smoke and velocity at unit scale
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.1e}")
            if step >= total_steps or (
                cfg.time_budget and elapsed + time.perf_counter() - t0 >= cfg.time_budget
            ):
                break
        bar.close()
        val = one_step_mse(_unwrap(model), data["val"], cfg.history, cfg.eval_batch_size)
        elapsed += time.perf_counter() - t0
        epoch += 1
        improved = val < best_val
        best_val = min(best_val, val)
        train_loss = float(np.mean(losses)) if losses else math.nan
        history.append(
            {"epoch": epoch, "step": step, "lr": optimizer.param_groups[0]["lr"], "train_loss": train_loss,
             "val_mse": val, "best_val_mse": best_val, "elapsed_s": round(elapsed, 3)}
        )  # fmt: skip
        done = progress_of() >= 1.0 or step >= total_steps
        if d.main:
            log.info("epoch %d  step %d  train %.5f  val one-step MSE %.3e%s  (%.0f s)",
                     epoch, step, train_loss, val, "  best" if improved else "", elapsed)  # fmt: skip
            inner = _unwrap(model)
            if improved:
                _save_atomic({"format": CHECKPOINT_FORMAT, "model_name": cfg.model,
                              "model_kwargs": cfg.model_kwargs, "model": inner.state_dict(), "epoch": epoch,
                              "val_mse": val,
                              "config": dataclasses.asdict(cfg)}, best_path)  # fmt: skip
            _save_atomic(
                {"format": CHECKPOINT_FORMAT, "config": dataclasses.asdict(cfg), "model": inner.state_dict(),
                 "optimizer": optimizer.state_dict(), "epoch": epoch, "step": step, "elapsed": elapsed,
                 "best_val": best_val, "history": history, "torch_rng": torch.get_rng_state()},
                last_path,
            )  # fmt: skip
            _write_csv(history, run_dir / "log.csv")
        _barrier(d)

    return _finish(cfg, _unwrap(model), data, run_dir, d, epoch, elapsed, n_params)


def _finish(
    cfg: TrainConfig,
    model: nn.Module,
    data: dict[str, Tensor],
    run_dir: Path,
    d: _Dist,
    epochs: int,
    elapsed: float,
    n_params: int,
) -> dict[str, Any]:
    """Evaluate the best checkpoint on the test trajectories; write results and plots."""
    best_path = run_dir / "best.pt"
    if best_path.exists():
        model.load_state_dict(torch.load(best_path, map_location="cpu", weights_only=False)["model"])
    t0 = time.perf_counter()
    pred = rollout(model, data["test"], cfg.history, cfg.eval_batch_size)
    results: dict[str, Any] = {
        "model": cfg.model,
        "preset": cfg.preset,
        "seed": cfg.seed,
        "parameters": n_params,
        "epochs": epochs,
        "wall_time_s": round(elapsed, 1),
        "train_trajectories": int(data["train"].shape[0]),
        "history": cfg.history,
        "val_onestep_mse": one_step_mse(model, data["val"], cfg.history, cfg.eval_batch_size),
        "test_onestep_mse": one_step_mse(model, data["test"], cfg.history, cfg.eval_batch_size),
        **rollout_metrics(pred, data["test"], cfg.history),
        "hardware": _hardware(data["val"].device),
    }
    results["eval_time_s"] = round(time.perf_counter() - t0, 1)
    if not d.main:
        return results
    (run_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    if cfg.plots:
        from examples.pde.plots import plot_losses, plot_rollout

        if (run_dir / "log.csv").exists():
            plot_losses(run_dir / "log.csv", run_dir / "loss.png", title=f"pde: {cfg.model}")
        plot_rollout(
            data["test"][0].cpu().numpy(), pred[0].cpu().numpy(), run_dir / "rollout.png",
            history=cfg.history,
            frame_dt=float(simulate.NAVIER_STOKES["frame_dt"]),
            title=f"{MODEL_LABELS[cfg.model]}, {cfg.preset} preset: test trajectory 0, rollout",
        )  # fmt: skip
    return results


def results_table(all_results: Sequence[dict[str, Any]]) -> str:
    """A markdown table: per model the parameters, training time, one-step and rollout MSE."""
    lines = [
        "| model | params | epochs | train s | test one-step MSE | test rollout MSE "
        "| rollout smoke | rollout velocity |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in all_results:
        lines.append(
            f"| {MODEL_LABELS.get(r['model'], r['model'])} | {r['parameters']} | {r['epochs']} | "
            f"{r['wall_time_s']:.0f} | {r['test_onestep_mse']:.3e} | {r['rollout_mse']:.3e} | "
            f"{r['rollout_smoke_mse']:.3e} | {r['rollout_velocity_mse']:.3e} |"
        )
    first = all_results[0]
    head = (f"\nNavier-Stokes smoke, 64 x 64 periodic ({first['preset']} preset, seed {first['seed']}, "
            f"{first['train_trajectories']} training trajectories, history {first['history']}, "
            f"{first['hardware']}):\n")  # fmt: skip
    return head + "\n".join(lines)


def run_models(config: TrainConfig, models: Sequence[str], *, resume: bool = False) -> list[dict[str, Any]]:
    """Train every model in ``models`` (one run directory each); print and save the common table."""
    start = time.perf_counter()
    results = []
    base = Path(config.run_dir) if config.run_dir else Path("runs") / f"pde-{config.preset}"
    for name in models:
        results.append(
            train(dataclasses.replace(config, model=name, run_dir=str(base / name)), resume=resume)
        )
    if int(dist.get_rank() if dist.is_initialized() else 0) != 0:
        return results
    table = results_table(results) + f"\n\ntotal wall time {time.perf_counter() - start:.0f} s"
    base.mkdir(parents=True, exist_ok=True)
    (base / "results.md").write_text(table + "\n")
    (base / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table)
    return results


# -- command line -------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> tuple[TrainConfig, list[str], bool]:
    """The :class:`TrainConfig`, the models to run and the ``--resume`` flag."""
    p = argparse.ArgumentParser(prog="python -m examples.pde.train", description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=[*MODELS, "all"], default="all")
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--run-dir", help="where checkpoints, logs and plots go (default runs/pde-MODEL-PRESET;"
                   " with --model all, one folder per model inside runs/pde-PRESET)")  # fmt: skip
    p.add_argument("--cache-dir", help=f"dataset cache (default {simulate.DEFAULT_CACHE})")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    p.add_argument("--epochs", type=int)
    p.add_argument("--time-budget", type=float, help="seconds of training per model (0: no limit)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--train-size", type=int, help="use the first N training trajectories")
    p.add_argument("--history", type=int, default=4, help="input frames per prediction")
    p.add_argument("--max-steps", type=int, help="stop after this many optimiser steps (smoke tests)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model option, e.g. --model-arg hidden_channels=16")  # fmt: skip
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    model_kwargs = {}
    for item in a.model_arg:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--model-arg expects KEY=VALUE, got {item!r}")
        try:
            model_kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            model_kwargs[key] = value
    models = list(MODELS) if a.model == "all" else [a.model]
    if a.model == "all" and model_kwargs:
        p.error("--model-arg needs a single --model")
    cfg = TrainConfig(
        model=models[0], preset=a.preset, run_dir=a.run_dir, cache_dir=a.cache_dir, epochs=a.epochs,
        time_budget=a.time_budget, batch_size=a.batch_size, lr=a.lr, weight_decay=a.weight_decay,
        train_size=a.train_size, history=a.history, max_steps=a.max_steps, seed=a.seed, device=a.device,
        threads=a.threads, plots=not a.no_plots, progress=not a.no_progress, model_kwargs=model_kwargs,
    )  # fmt: skip
    return cfg, models, a.resume


def main(argv: Sequence[str] | None = None) -> None:
    cfg, models, resume = parse_args(argv)
    try:
        if len(models) == 1:
            results = train(cfg, resume=resume)
            if not dist.is_initialized() or dist.get_rank() == 0:
                print(results_table([results]))
        else:
            run_models(cfg, models, resume=resume)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
