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
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from examples import harness
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


MODEL_LABELS = {
    "clifford-resnet": "gatorch CliffordResNet",
    "resnet": "ResNet baseline",
    "clifford-fno": "gatorch CliffordFNO",
    "fno": "FNO baseline",
    "steerable": "gatorch CliffordSteerableResNet",
}


@dataclass
class TrainConfig(harness.RunConfig):
    """Everything that defines a training run (stored in every checkpoint).

    The fields of :class:`examples.harness.RunConfig` and the PDE's: ``None`` fields take the
    preset's value; ``model_kwargs`` update the preset's model size.
    ``train_size``: the first trajectories of the training split (``None``: all); ``history``:
    input frames per prediction.
    """

    model: str = "clifford-resnet"
    eval_batch_size: int = 32
    history: int = 4

    def resolved(self) -> TrainConfig:
        """A copy with every preset-dependent field filled in and the options checked."""
        fields = ("epochs", "time_budget", "batch_size", "lr", "weight_decay", "warmup_steps", "train_size")
        cfg, model_preset, _ = harness.from_preset(self, PRESETS, MODELS, fields=fields)
        cfg.model_kwargs = {**model_preset, "history": self.history, **self.model_kwargs}
        if cfg.run_dir is None:
            cfg.run_dir = str(Path("runs") / f"pde-{cfg.model}-{cfg.preset}")
        harness.check_positive(cfg, ("epochs", "batch_size", "eval_batch_size", "history"))
        return cfg


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
    run = harness.Run.start(str(cfg.run_dir), cfg.device, cfg.threads, log)
    cfg, state = run.resume(cfg, resume=resume, same=("model", "preset"))
    device = run.device

    # the main process generates the cache first, the others then read it
    arrays = run.main_first(lambda: {s: simulate.load_split(s, cfg.cache_dir) for s in simulate.SPLITS})
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
    log.info(
        "pde: model %s (%d parameters), preset %s: %d training windows (%d trajectories, history %d), "
        "batch %d x %d process(es), up to %d epochs%s, lr %.2g, device %s",
        cfg.model, n_params, cfg.preset, n_train, data["train"].shape[0], cfg.history, cfg.batch_size,
        run.world, cfg.epochs, f" or {cfg.time_budget:.0f} s" if cfg.time_budget else "", cfg.lr, device,
    )  # fmt: skip

    def loss(forward: nn.Module, idx: Tensor, epoch: int, b: int) -> Tensor:
        x, y = gather(data["train"], traj_all[idx], frame_all[idx], cfg.history)
        pred = forward(x)
        return ((pred[..., :3] - y[..., :3]) / scale).pow(2).mean()  # smoke and velocity at unit scale

    def validate(scored: nn.Module) -> dict[str, float]:
        return {"val_mse": one_step_mse(scored, data["val"], cfg.history, cfg.eval_batch_size)}

    fitted = harness.fit(
        run, cfg, model, optimizer, n_train=n_train, loss=loss, validate=validate,
        monitor="val_mse", state=state, desc=f"{cfg.model} ", val_format="val one-step MSE {val_mse:.3e}",
    )  # fmt: skip
    return _finish(cfg, fitted.model, data, run, fitted, n_params)


def _finish(
    cfg: TrainConfig,
    model: nn.Module,
    data: dict[str, Tensor],
    run: harness.Run,
    fitted: harness.Fitted,
    n_params: int,
) -> dict[str, Any]:
    """Evaluate the best checkpoint on the test trajectories; write results and plots."""
    run_dir = run.run_dir
    harness.load_best(model, run_dir)
    t0 = time.perf_counter()
    pred = rollout(model, data["test"], cfg.history, cfg.eval_batch_size)
    results: dict[str, Any] = {
        **fitted.summary(cfg, n_params),
        "train_trajectories": int(data["train"].shape[0]),
        "history": cfg.history,
        "val_onestep_mse": one_step_mse(model, data["val"], cfg.history, cfg.eval_batch_size),
        "test_onestep_mse": one_step_mse(model, data["test"], cfg.history, cfg.eval_batch_size),
        **rollout_metrics(pred, data["test"], cfg.history),
        "hardware": harness.hardware(data["val"].device),
    }
    results["eval_time_s"] = round(time.perf_counter() - t0, 1)
    if not run.main:
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
    base = Path(config.run_dir) if config.run_dir else Path("runs") / f"pde-{config.preset}"
    results = harness.train_models(train, config, models, lambda name: str(base / name), resume=resume)
    if not harness.is_main_process():
        return results
    table = results_table(results) + f"\n\ntotal wall time {time.perf_counter() - start:.0f} s"
    harness.write_results(base, table, results)
    print(table)
    return results


# -- command line -------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> tuple[TrainConfig, list[str], bool]:
    """The :class:`TrainConfig`, the models to run and the ``--resume`` flag."""
    p = argparse.ArgumentParser(prog="python -m examples.pde.train", description=__doc__.split("\n")[0])
    harness.add_model_arguments(p, list(MODELS), PRESETS)
    harness.add_run_arguments(
        p, run_dir_help="where checkpoints, logs and plots go (default runs/pde-MODEL-PRESET;"
                        " with --model all, one folder per model inside runs/pde-PRESET)",
        cache_default=simulate.DEFAULT_CACHE,
    )  # fmt: skip
    harness.add_schedule_arguments(p, per_model=True)
    p.add_argument("--train-size", type=harness.int_option(1), help="use the first N training trajectories")
    frames = int(simulate.NAVIER_STOKES["frames"])
    p.add_argument(
        "--history", type=harness.int_option(1, frames - 1), default=4,
        help=f"input frames per prediction (1 to {frames - 1}: a trajectory has {frames} frames)",
    )  # fmt: skip
    harness.add_runtime_arguments(p)
    harness.add_output_arguments(p, model_arg_example="hidden_channels=16")
    a = p.parse_args(argv)
    harness.validate_common(p, a)
    models = harness.selected_models(p, a, list(MODELS))
    cfg = TrainConfig(model=models[0], preset=a.preset, **harness.run_options(p, a), history=a.history)
    return cfg, models, a.resume


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m examples.pde.train``: see the module docstring."""
    cfg, models, resume = parse_args(argv)
    harness.run_command(train, results_table, run_models, cfg, models, resume=resume)


if __name__ == "__main__":
    main()
