r"""Train a convex-hull volume model in CSMPN's reference protocol, with the shared harness.

Run from the repository root::

    python -m examples.hulls.train --model csmpn --preset budget --seed 0
    python -m examples.hulls.train --model cgenn --preset budget --seed 0 --resume   # continue
    python -m examples.hulls.train --model mlp --preset paper        # the reference's 131072 steps
    python -m examples.hulls.report runs/hulls                       # table and curves of the runs

The protocol (CSMPN's ``csmpn/configs/hulls.yaml``, ``csmpn/hulls.py``): 8 points from a
standard normal in :math:`\mathbb{R}^5`, the target their hull volume (scipy), 16384
training, validation and test clouds (:mod:`examples.hulls.data`, seeded and cached); Adam
with learning rate 1e-3 and batch 16, no weight decay, no clipping; the reference's
schedule (``engineer.schedulers.cosine.CosineAnnealingLR``: a cosine warm-up over the first
1/64 of the steps, the full rate, a cosine decay over the last quarter; the harness's
``"cgenn"`` schedule); the MSE of the raw volumes as the loss; a validation every
``eval_every`` steps (the reference: 1024) and the test MSE of the checkpoint with the best
validation MSE.

The harness trains by "epochs": here one epoch is one evaluation round of ``eval_every``
steps, and the rounds walk through seeded permutations of the whole training split (a pass
over the data does not line up with a round). ``log.csv`` has one row per round, with the
step, the learning rate, the mean training loss, ``val_mse``, ``val_s`` (the seconds the
validation took) and the elapsed seconds; ``results.json`` the test MSE, the parameters and
the training seconds per step (validation excluded).

Presets (``--steps``, ``--eval-every``, ``--val-size``, ``--test-size``, ``--train-size``
override them):

* ``paper``: the reference's budget, 131072 steps, validation every 1024 on all 16384;
* ``budget``: what fits this repository's CPU budget (docs/zoo.md, the CSMPN section);
* ``smoke``: a few steps on a few clouds, for the tests.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from examples import harness
from examples.hulls import data as hull_data
from examples.hulls.models import MODELS, build_model

log = logging.getLogger("hulls")

#: Per preset: the schedule and data sizes, and per model its options (none by default).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "steps": 131072,
        "eval_every": 1024,
        "batch_size": 16,
        "lr": 1e-3,
        "train_size": hull_data.FULL_SIZE,
        "val_size": hull_data.FULL_SIZE,
        "test_size": hull_data.FULL_SIZE,
        "models": {"csmpn": {}, "cgenn": {}, "mlp": {}},
    },
    # ~40 core-minutes for 3 models x 3 seeds on one CPU thread: a CSMPN step at batch 16 takes
    # ~30-50 s there (a validation cloud ~0.5 s), so 16 steps, 32 validation and 128 test clouds
    "budget": {
        "steps": 16,
        "eval_every": 4,
        "batch_size": 16,
        "lr": 1e-3,
        "train_size": hull_data.FULL_SIZE,
        "val_size": 32,
        "test_size": 128,
        "models": {"csmpn": {}, "cgenn": {}, "mlp": {}},
    },
    "smoke": {
        "steps": 4,
        "eval_every": 2,
        "batch_size": 4,
        "lr": 1e-3,
        "train_size": 32,
        "val_size": 8,
        "test_size": 8,
        "models": {
            "csmpn": {"hidden_mv_channels": 4, "num_layers": 1},
            "cgenn": {"hidden_mv_channels": 4, "num_layers": 1},
            "mlp": {"hidden": 16, "num_layers": 1},
        },
    },
}
FIELDS = ("steps", "eval_every", "batch_size", "lr", "train_size", "val_size", "test_size")
MODEL_LABELS = {
    "csmpn": "CSMPN (csmpn-paper preset, hull complex)",
    "cgenn": "CliffordGNN, cgenn configuration (full graph)",
    "mlp": "MLP on sorted distances",
}


@dataclass
class TrainConfig(harness.RunConfig):
    """Everything that defines a run (stored in its checkpoints); ``None`` fields take the preset's.

    ``steps``: optimiser steps of the run (the schedule spans them); ``eval_every``: steps
    between validations; ``val_size`` / ``test_size``: the first clouds of those splits that
    are evaluated; ``compile``: train through ``torch.compile``.
    """

    model: str = "csmpn"
    preset: str = "budget"
    steps: int | None = None
    eval_every: int | None = None
    val_size: int | None = None
    test_size: int | None = None
    schedule: str = "cgenn"
    grad_clip: float | None = 0.0
    weight_decay: float | None = 0.0
    eval_batch_size: int = 64
    compile: bool = False

    def resolved(self) -> TrainConfig:
        """A copy with the preset's values filled in and the options checked."""
        cfg, model_preset, _ = harness.from_preset(self, PRESETS, MODELS, fields=FIELDS, own=())
        cfg.model_kwargs = {**model_preset, **self.model_kwargs}
        harness.check_positive(cfg, ("steps", "eval_every", "batch_size", "val_size", "test_size",
                                     "eval_batch_size"))  # fmt: skip
        for name in ("train_size", "val_size", "test_size"):
            if getattr(cfg, name) > hull_data.FULL_SIZE:
                raise ValueError(f"{name} must be at most {hull_data.FULL_SIZE}, got {getattr(cfg, name)}")
        if cfg.schedule not in harness.SCHEDULES:
            raise ValueError(f"schedule must be one of {harness.SCHEDULES}, got {cfg.schedule!r}")
        # one harness "epoch" = one evaluation round of eval_every steps
        cfg.epochs = math.ceil(int(cfg.steps or 1) / int(cfg.eval_every or 1))
        cfg.time_budget = None
        if cfg.run_dir is None:
            cfg.run_dir = str(Path("runs") / "hulls" / f"{cfg.model}-{cfg.preset}-s{cfg.seed}")
        return cfg


@torch.no_grad()
def evaluate(model: nn.Module, split: hull_data.Split, count: int, batch_size: int) -> float:
    """Mean squared error of the predicted volumes over the first ``count`` clouds of ``split``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    needs_complex = bool(getattr(model, "needs_complex", False))
    total = 0.0
    for start in range(0, count, batch_size):
        idx = torch.arange(start, min(start + batch_size, count))
        cx = hull_data.batch_complex(split, idx).to(device) if needs_complex else None
        pred = model(split["points"][idx].to(device), cx)
        total += float(((pred - split["volumes"][idx].to(device)) ** 2).sum())
    model.train(was_training)
    return total / count


class _Walk:
    """Training clouds of an evaluation round: round ``r``'s batch positions ``idx`` (in
    ``[0, eval_every * batch)``) are positions ``r * eval_every * batch + idx`` of the
    concatenated seeded permutations of the training split (one per pass)."""

    def __init__(self, n_train: int, per_round: int, seed: int) -> None:
        self.n_train, self.per_round, self.seed = n_train, per_round, seed
        self._perms: dict[int, Tensor] = {}

    def _perm(self, p: int) -> Tensor:
        if p not in self._perms:
            order = np.random.default_rng([self.seed, p]).permutation(self.n_train)
            self._perms = {p: torch.from_numpy(order)}
        return self._perms[p]

    def __call__(self, round_: int, idx: Tensor) -> Tensor:
        pos = round_ * self.per_round + idx.cpu()
        passes, within = pos // self.n_train, pos % self.n_train
        out = torch.empty_like(pos)
        for p in passes.unique().tolist():
            sel = passes == p
            out[sel] = self._perm(int(p))[within[sel]]
        return out


def train(config: TrainConfig, *, resume: bool = False) -> dict[str, Any]:
    """Train (or resume) one run; returns the results also written to ``results.json``.

    Returns
    -------
    dict
        ``{"model", "preset", "seed", "parameters", "steps", "test_mse", "val_mse",
        "s_per_step", ...}``.
    """
    cfg = config.resolved()
    run = harness.Run.start(str(cfg.run_dir), cfg.device, cfg.threads, log)
    cfg, state = run.resume(cfg, resume=resume, same=("model", "preset", "seed", "steps"))
    device = run.device
    assert cfg.train_size is not None and cfg.val_size is not None and cfg.test_size is not None
    splits = run.main_first(
        lambda: {
            "train": hull_data.load_split("train", int(cfg.train_size or 1), cfg.cache_dir),
            "val": hull_data.load_split("val", int(cfg.val_size or 1), cfg.cache_dir),
            "test": hull_data.load_split("test", int(cfg.test_size or 1), cfg.cache_dir),
        }
    )
    train_split = splits["train"]
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, **cfg.model_kwargs).to(device)
    needs_complex = bool(getattr(model, "needs_complex", False))
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.Adam(
        model.parameters(), lr=float(cfg.lr or 0.0), weight_decay=cfg.weight_decay or 0.0
    )
    batch, per_round = int(cfg.batch_size or 1), int(cfg.eval_every or 1) * int(cfg.batch_size or 1)
    walk = _Walk(int(cfg.train_size), per_round, cfg.seed)
    log.info(
        "model %s (%d parameters), preset %s, seed %d: %d steps of %d clouds (%d training clouds), "
        "validation every %d steps on %d clouds, test on %d; Adam lr %.2g (%s schedule); device %s",
        cfg.model, n_params, cfg.preset, cfg.seed, cfg.steps, batch, cfg.train_size, cfg.eval_every,
        cfg.val_size, cfg.test_size, cfg.lr, cfg.schedule, device,
    )  # fmt: skip

    def loss(forward: nn.Module, idx: Tensor, round_: int, b: int) -> Tensor:
        clouds = walk(round_, idx)
        cx = hull_data.batch_complex(train_split, clouds).to(device) if needs_complex else None
        pred = forward(train_split["points"][clouds].to(device), cx)
        return nn.functional.mse_loss(pred, train_split["volumes"][clouds].to(device))

    def validate(scored: nn.Module) -> dict[str, float]:
        t0 = time.perf_counter()
        mse = evaluate(scored, splits["val"], int(cfg.val_size or 1), cfg.eval_batch_size)
        return {"val_mse": mse, "val_s": time.perf_counter() - t0}

    fitted = harness.fit(
        run, cfg, model, optimizer, n_train=per_round, loss=loss, validate=validate, monitor="val_mse",
        state=state, schedule=cfg.schedule, compile=cfg.compile, desc=f"{cfg.model} ",
        val_format="val {val_mse:.5f}",
    )  # fmt: skip
    return _finish(cfg, fitted, splits, run, n_params)


def _finish(
    cfg: TrainConfig,
    fitted: harness.Fitted,
    splits: dict[str, hull_data.Split],
    run: harness.Run,
    n_params: int,
) -> dict[str, Any]:
    """Test the best checkpoint; write ``results.json`` and the curve plot."""
    model = fitted.model
    harness.load_best(model, run.run_dir)
    history = harness.load_checkpoint(run.last_path)["history"] if run.last_path.exists() else []
    steps = int(history[-1]["step"]) if history else 0
    val_s = sum(float(row["val_s"]) for row in history)
    best = min(history, key=lambda row: row["val_mse"]) if history else {"step": 0, "val_mse": math.nan}
    train_volumes = splits["train"]["volumes"]
    test_volumes = splits["test"]["volumes"]
    results: dict[str, Any] = {
        **fitted.summary(cfg, n_params),
        "steps": steps,
        "best_step": int(best["step"]),
        "val_mse": float(best.get("val_mse", math.nan)),
        "test_mse": evaluate(model, splits["test"], int(cfg.test_size or 1), cfg.eval_batch_size),
        "mean_predictor_test_mse": float(((test_volumes - train_volumes.mean()) ** 2).mean()),
        "s_per_step": round((fitted.elapsed - val_s) / max(steps, 1), 6),
        "hardware": harness.hardware(next(model.parameters()).device),
        "threads": torch.get_num_threads(),
    }
    if not run.main:
        return results
    (run.run_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    if cfg.plots and (run.run_dir / "log.csv").exists():
        from examples.hulls.report import plot_curves

        plot_curves([run.run_dir], run.run_dir / "val_mse.png")
    print(results_table([results]))
    return results


def results_table(results: Sequence[dict[str, Any]]) -> str:
    """A markdown table of runs: model, seed, steps, test MSE at the best validation, seconds per step."""
    lines = [
        "| model | seed | steps | test MSE | val MSE | s / step | parameters |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {MODEL_LABELS.get(r['model'], r['model'])} | {r['seed']} | {r['steps']} | "
            f"{r['test_mse']:.4f} | {r['val_mse']:.4f} | {r['s_per_step']:.3f} | {r['parameters']} |"
        )
    if results:
        lines.append(f"\npredicting the training mean: test MSE {results[0]['mean_predictor_test_mse']:.4f}")
    return "\n".join(lines)


# -- command line --------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> tuple[TrainConfig, bool]:
    """The :class:`TrainConfig` and the ``--resume`` flag from command-line arguments."""
    p = argparse.ArgumentParser(prog="python -m examples.hulls.train", description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=sorted(MODELS), default="csmpn")
    p.add_argument("--preset", choices=sorted(PRESETS), default="budget")
    harness.add_run_arguments(
        p, run_dir_help="where checkpoints, logs and plots go (default runs/hulls/MODEL-PRESET-sSEED)",
        cache_default=hull_data.DEFAULT_CACHE,
    )  # fmt: skip
    p.add_argument("--steps", type=harness.int_option(1), help="optimiser steps (the schedule spans them)")
    p.add_argument("--eval-every", type=harness.int_option(1), help="steps between validations")
    p.add_argument("--batch-size", type=harness.int_option(1))
    p.add_argument("--lr", type=harness.float_option(0.0, low_open=True))
    p.add_argument(
        "--train-size", type=harness.int_option(1, hull_data.FULL_SIZE), help="first N training clouds"
    )
    p.add_argument(
        "--val-size", type=harness.int_option(1, hull_data.FULL_SIZE), help="first N validation clouds"
    )
    p.add_argument("--test-size", type=harness.int_option(1, hull_data.FULL_SIZE), help="first N test clouds")
    p.add_argument("--schedule", choices=harness.SCHEDULES, default="cgenn",
                   help="cgenn (the reference's warm-up / flat / decay, default) or cosine")  # fmt: skip
    p.add_argument("--compile", action="store_true", help="train through torch.compile")
    harness.add_runtime_arguments(p)
    harness.add_output_arguments(p, model_arg_example="num_layers=2")
    a = p.parse_args(argv)
    harness.validate_common(p, a)
    fixed = {"epochs": None, "time_budget": None, "weight_decay": 0.0}  # set by the steps and the protocol
    opts = harness.run_options(p, argparse.Namespace(**{**vars(a), **fixed}))
    cfg = TrainConfig(
        model=a.model, preset=a.preset, **opts, steps=a.steps, eval_every=a.eval_every,
        val_size=a.val_size, test_size=a.test_size, schedule=a.schedule, compile=a.compile,
    )  # fmt: skip
    return cfg, a.resume


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m examples.hulls.train``: see the module docstring."""
    cfg, resume = parse_args(argv)
    with harness.process_group():
        train(cfg, resume=resume)


if __name__ == "__main__":
    main()
