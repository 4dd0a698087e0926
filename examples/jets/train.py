"""Train a top tagger on the toy jets: checkpoints that resume, a CSV log, ROC curves, boosted test sets.

Run from the repository root::

    python -m examples.jets.train --model all --preset quick        # the three models, one table
    python -m examples.jets.train --model gatr --preset full --run-dir runs/jets-gatr
    python -m examples.jets.train ... --resume                      # continue an interrupted run
    torchrun --nproc_per_node=2 -m examples.jets.train --model gatr ...   # data-parallel (DDP)

Each epoch trains on the training jets (a progress bar shows the live loss), measures the
validation loss and AUC and writes ``last.pt`` (everything needed to resume) and, when the
validation AUC improved, ``best.pt``. At the end the best checkpoint is evaluated on three
test sets: ``test``, ``boosted`` (the same jets, each boosted along the beam with a rapidity
up to 1 and rotated about it: the collider symmetry, which the equivariant models with the
beam spurion keep exactly) and ``lorentz`` (a random rotation and a boost of rapidity up to
1 in a random direction, which the beam spurion is meant to break). Metrics: accuracy, AUC
and the background rejection ``1 / eps_B`` at 30% signal efficiency. The run directory gets
``log.csv``, ``train.log``, ``results.json``, ``loss.png`` and ``roc.png``; ``--model all``
also writes a table and a ROC plot of all models to ``runs/jets-PRESET``.

A preset fixes the models' sizes, the optimisation and the data sizes; ``--time-budget``
(seconds of training per model; the ``quick`` preset sets one) ends a run early, and the
learning-rate schedule follows whichever of steps and time runs out first.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from examples import harness
from examples.jets import simulate
from examples.jets.models import MODELS, build_model

log = logging.getLogger("jets")

#: Per preset: optimisation, data sizes, and per model its size (and, where it differs, its
#: learning rate and time budget).
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "epochs": 100,
        "time_budget": 45.0,
        "batch_size": 64,
        "lr": 2e-3,
        "weight_decay": 1e-4,
        "warmup_steps": 20,
        "train_size": 2048,
        "val_size": 512,
        "test_size": 2000,
        "constituents": 32,
        "models": {
            # small and a higher rate: on 2 CPU cores GATr gets ~150 steps in its budget
            "gatr": {"hidden_mv_channels": 4, "hidden_s_channels": 8, "num_blocks": 2, "num_heads": 2,
                     "lr": 3e-3, "time_budget": 60.0},
            "slim": {"hidden_v_channels": 8, "hidden_s_channels": 16, "num_blocks": 2, "num_heads": 4,
                     "time_budget": 40.0},
            "transformer": {"hidden": 64, "num_layers": 2, "num_heads": 4, "time_budget": 30.0},
        },
    },
    "full": {
        "epochs": 20,
        "time_budget": None,
        "batch_size": 128,
        "lr": 1e-3,
        "weight_decay": 1e-4,
        "warmup_steps": 200,
        "train_size": None,
        "val_size": None,
        "test_size": None,
        "constituents": 50,
        "models": {
            "gatr": {"hidden_mv_channels": 16, "hidden_s_channels": 32, "num_blocks": 4, "num_heads": 8},
            "slim": {"hidden_v_channels": 16, "hidden_s_channels": 32, "num_blocks": 4, "num_heads": 8},
            "transformer": {"hidden": 128, "num_layers": 4, "num_heads": 8},
        },
    },
}  # fmt: skip

TEST_SPLITS = ("test", "boosted", "lorentz")
SIGNAL_EFFICIENCY = 0.3

MODEL_LABELS = {
    "gatr": "gatorch GATr (STA, xy-plane spurion)",
    "slim": "gatorch GATrSlim (STA, pT from the xy-plane)",
    "transformer": "Transformer baseline",
}


@dataclass
class TrainConfig(harness.RunConfig):
    """Everything that defines a training run (stored in every checkpoint).

    The fields of :class:`examples.harness.RunConfig` and the jets': ``None`` fields take the
    preset's value; ``model_kwargs`` update the preset's model size.
    ``train_size`` / ``val_size`` / ``test_size``: the first jets of each split (``None``:
    all); ``constituents``: the leading constituents per jet that the models see.
    """

    model: str = "gatr"
    val_size: int | None = None
    test_size: int | None = None
    constituents: int | None = None

    def resolved(self) -> TrainConfig:
        """A copy with every preset-dependent field filled in and the options checked."""
        fields = ("epochs", "time_budget", "batch_size", "lr", "weight_decay", "warmup_steps",
                  "train_size", "val_size", "test_size", "constituents")  # fmt: skip
        cfg, model_preset, _ = harness.from_preset(self, PRESETS, MODELS, fields=fields)
        cfg.model_kwargs = {**model_preset, **self.model_kwargs}
        if cfg.run_dir is None:
            cfg.run_dir = str(Path("runs") / f"jets-{cfg.model}-{cfg.preset}")
        harness.check_positive(
            cfg, ("epochs", "batch_size", "eval_batch_size", "constituents"),
            optional=("train_size", "val_size", "test_size", "max_steps"),
        )  # fmt: skip
        return cfg


# -- metrics ----------------------------------------------------------------------------------------------
def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signal and background efficiencies ``(eps_s, eps_b)`` at every threshold, from the top score down.

    ``eps_s[k]`` (``eps_b[k]``): the fraction of signal (background) jets whose score is at
    least the ``k``-th distinct score; both start at 0 and end at 1. Ties move together.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.all() or not labels.any():
        raise ValueError("roc_curve: needs both signal (1) and background (0) jets")
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    last_of_tie = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp, fp = np.cumsum(y)[last_of_tie], np.cumsum(~y)[last_of_tie]
    return np.r_[0.0, tp / y.sum()], np.r_[0.0, fp / (~y).sum()]


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: P(a random signal jet outscores a random background jet), ties 1/2."""
    eps_s, eps_b = roc_curve(labels, scores)
    return float(np.sum(np.diff(eps_b) * (eps_s[1:] + eps_s[:-1]) / 2.0))


def background_rejection(
    labels: np.ndarray, scores: np.ndarray, efficiency: float = SIGNAL_EFFICIENCY
) -> float:
    """``1 / eps_B`` at the signal efficiency ``efficiency`` (linear interpolation on the ROC curve).

    ``inf`` if no background jet passes the threshold.
    """
    eps_s, eps_b = roc_curve(labels, scores)
    e_b = float(np.interp(efficiency, eps_s, eps_b))
    return math.inf if e_b <= 0 else 1.0 / e_b


def metrics(labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """Accuracy (threshold at logit 0), AUC, background rejection at 30% efficiency and the BCE loss."""
    labels = np.asarray(labels).astype(np.float64)
    logits = np.asarray(logits, dtype=np.float64)
    bce = np.mean(np.logaddexp(0.0, logits) - labels * logits)
    return {
        "accuracy": float(np.mean((logits > 0) == (labels > 0.5))),
        "auc": auc(labels, logits),
        "rejection": background_rejection(labels, logits),
        "loss": float(bce),
    }


# -- data -------------------------------------------------------------------------------------------------
def _to_tensors(
    arrays: dict[str, np.ndarray], device: torch.device, limit: int | None, constituents: int
) -> dict[str, Tensor]:
    sl = slice(None, limit)
    return {
        "momenta": torch.as_tensor(arrays["momenta"][sl, :constituents], dtype=torch.float32, device=device),
        "mask": torch.as_tensor(arrays["mask"][sl, :constituents], dtype=torch.bool, device=device),
        "label": torch.as_tensor(arrays["label"][sl], dtype=torch.float32, device=device),
    }


@torch.no_grad()
def predict(model: nn.Module, data: dict[str, Tensor], batch_size: int = 500) -> np.ndarray:
    """The model's logits for every jet of a split, as a float64 numpy array."""
    was_training = model.training
    model.eval()
    out = [model(data["momenta"][s : s + batch_size], data["mask"][s : s + batch_size]).double().cpu()
           for s in range(0, data["momenta"].shape[0], batch_size)]  # fmt: skip
    model.train(was_training)
    return torch.cat(out).numpy()


def evaluate(model: nn.Module, data: dict[str, Tensor], batch_size: int = 500) -> dict[str, float]:
    """:func:`metrics` of the model on one split."""
    return metrics(data["label"].cpu().numpy(), predict(model, data, batch_size))


# -- the run ------------------------------------------------------------------------------------------------
def train(config: TrainConfig, *, resume: bool = False) -> dict[str, Any]:
    """Train (or resume) one model; returns the results also written to ``results.json``.

    Parameters
    ----------
    config : TrainConfig
    resume : bool
        Continue from ``run_dir/last.pt`` if it exists (with its stored config; the given
        config must name the same model and preset).

    Returns
    -------
    dict
        ``{"model", "preset", "parameters", "epochs", "wall_time_s", "val": {...},
        "test": {...}, "boosted": {...}, "lorentz": {...}, ...}``, each split's value a
        :func:`metrics` dict.
    """
    cfg = config.resolved()
    run = harness.Run.start(str(cfg.run_dir), cfg.device, cfg.threads, log)
    cfg, state = run.resume(cfg, resume=resume, same=("model", "preset"))
    device = run.device

    # Data: the main process generates the cache first, the others then read it.
    arrays: dict[str, dict[str, np.ndarray]] = run.main_first(
        lambda: {split: simulate.load_split(split, cfg.cache_dir) for split in ("train", "val", *TEST_SPLITS)}
    )
    limits = {"train": cfg.train_size, "val": cfg.val_size}
    constituents = int(cfg.constituents or simulate.MAX_CONSTITUENTS)
    data = {s: _to_tensors(a, device, limits.get(s, cfg.test_size), constituents) for s, a in arrays.items()}
    n_train = data["train"]["label"].shape[0]

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, **cfg.model_kwargs).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    log.info(
        "model %s (%d parameters), preset %s: %d training jets of %d constituents, "
        "batch %d x %d process(es), up to %d epochs%s, lr %.2g, device %s",
        cfg.model, n_params, cfg.preset, n_train, constituents, cfg.batch_size, run.world, cfg.epochs,
        f" or {cfg.time_budget:.0f} s" if cfg.time_budget else "", cfg.lr, device,
    )  # fmt: skip

    def loss(forward: nn.Module, idx: Tensor, epoch: int, b: int) -> Tensor:
        batch = {k: v.index_select(0, idx) for k, v in data["train"].items()}
        logits = forward(batch["momenta"], batch["mask"])
        return nn.functional.binary_cross_entropy_with_logits(logits, batch["label"])

    def validate(scored: nn.Module) -> dict[str, float]:
        val = evaluate(scored, data["val"], cfg.eval_batch_size)
        return {"val_loss": val["loss"], "val_auc": val["auc"], "val_accuracy": val["accuracy"]}

    fitted = harness.fit(
        run, cfg, model, optimizer, n_train=n_train, loss=loss, validate=validate,
        monitor="val_auc", maximize=True, state=state, desc=f"{cfg.model} ", loss_format=".4f",
        val_format="val loss {val_loss:.4f}  AUC {val_auc:.4f}",
    )  # fmt: skip
    return _finish(cfg, fitted.model, data, run, fitted, n_params)


def _finish(
    cfg: TrainConfig,
    model: nn.Module,
    data: dict[str, dict[str, Tensor]],
    run: harness.Run,
    fitted: harness.Fitted,
    n_params: int,
) -> dict[str, Any]:
    """Evaluate the best checkpoint on the validation and test sets; write results and plots."""
    run_dir = run.run_dir
    harness.load_best(model, run_dir)
    results: dict[str, Any] = {
        **fitted.summary(cfg, n_params),
        "constituents": cfg.constituents,
        "train_jets": int(data["train"]["label"].shape[0]),
        "hardware": harness.hardware(data["val"]["momenta"].device),
    }
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in ("val", *TEST_SPLITS):
        labels = data[split]["label"].cpu().numpy()
        logits = predict(model, data[split], cfg.eval_batch_size)
        results[split] = metrics(labels, logits)
        if split != "val":
            curves[split] = roc_curve(labels, logits)
    if not run.main:
        return results
    (run_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    np.savez(
        run_dir / "roc.npz",
        **{f"{s}_{k}": c[i] for s, c in curves.items() for i, k in enumerate(("eps_s", "eps_b"))},
    )
    if cfg.plots:
        from examples.jets.plots import plot_losses, plot_rocs

        if (run_dir / "log.csv").exists():
            plot_losses(run_dir / "log.csv", run_dir / "loss.png", title=f"jets: {cfg.model}")
        plot_rocs({f"{cfg.model} {s}": c for s, c in curves.items()}, run_dir / "roc.png",
                  title=f"{MODEL_LABELS.get(cfg.model, cfg.model)}, {cfg.preset} preset")  # fmt: skip
    return results


def results_table(all_results: Sequence[dict[str, Any]]) -> str:
    """A markdown table: per model the test metrics and the AUC on the boosted and Lorentz sets."""
    lines = [
        "| model | params | train s | test acc | test AUC | 1/eps_B @ 30% "
        "| boosted AUC | boosted 1/eps_B | lorentz AUC |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in all_results:
        t, b, lz = r["test"], r["boosted"], r["lorentz"]
        lines.append(
            f"| {MODEL_LABELS.get(r['model'], r['model'])} | {r['parameters']} | {r['wall_time_s']:.0f} | "
            f"{t['accuracy']:.3f} | {t['auc']:.4f} | {t['rejection']:.1f} | {b['auc']:.4f} | "
            f"{b['rejection']:.1f} | {lz['auc']:.4f} |"
        )
    first = all_results[0]
    head = (f"\ntoy top tagging ({first['preset']} preset, seed {first['seed']}, {first['train_jets']} "
            f"training jets, {first['constituents']} constituents, {first['hardware']}):\n")  # fmt: skip
    return head + "\n".join(lines)


def run_models(config: TrainConfig, models: Sequence[str], *, resume: bool = False) -> list[dict[str, Any]]:
    """Train every model in ``models`` (one run directory each); print and save the common table."""
    base = Path(config.run_dir) if config.run_dir else None
    results = harness.train_models(
        train, config, models, lambda name: str(base / name) if base is not None else None, resume=resume
    )
    if not harness.is_main_process():
        return results
    table = results_table(results)
    out = base if base is not None else Path("runs") / f"jets-{config.preset}"
    harness.write_results(out, table, results)
    if config.plots and len(models) > 1:
        from examples.jets.plots import load_rocs, plot_rocs

        dirs = {name: (base / name if base is not None else Path("runs") / f"jets-{name}-{config.preset}")
                for name in models}  # fmt: skip
        plot_rocs(load_rocs(dirs), out / "roc.png", title=f"toy top tagging, {config.preset} preset")
        table += f"\n\nplots: {out / 'roc.png'}"
    print(table)
    return results


# -- command line -------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> tuple[TrainConfig, list[str], bool]:
    """The :class:`TrainConfig`, the models to run and the ``--resume`` flag."""
    p = argparse.ArgumentParser(prog="python -m examples.jets.train", description=__doc__.split("\n")[0])
    harness.add_model_arguments(p, sorted(MODELS), PRESETS)
    harness.add_run_arguments(
        p, run_dir_help="where checkpoints, logs and plots go (default runs/jets-MODEL-PRESET; "
                        "with --model all, one folder per model inside it)",
        cache_default=simulate.DEFAULT_CACHE,
    )  # fmt: skip
    harness.add_schedule_arguments(p, per_model=True)
    p.add_argument("--train-size", type=harness.int_option(1), help="use the first N training jets")
    p.add_argument("--val-size", type=harness.int_option(1), help="use the first N validation jets")
    p.add_argument("--test-size", type=harness.int_option(1), help="use the first N jets of each test set")
    most = simulate.MAX_CONSTITUENTS
    p.add_argument(
        "--constituents", type=harness.int_option(1, most), help=f"leading constituents per jet (1 to {most})"
    )
    harness.add_runtime_arguments(p)
    harness.add_output_arguments(p, model_arg_example="hidden_mv_channels=16")
    a = p.parse_args(argv)
    harness.validate_common(p, a)
    models = harness.selected_models(p, a, sorted(MODELS))
    cfg = TrainConfig(
        model=models[0], preset=a.preset, **harness.run_options(p, a),
        val_size=a.val_size, test_size=a.test_size, constituents=a.constituents,
    )  # fmt: skip
    return cfg, models, a.resume


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m examples.jets.train``: see the module docstring."""
    cfg, models, resume = parse_args(argv)
    harness.run_command(train, results_table, run_models, cfg, models, resume=resume)


if __name__ == "__main__":
    main()
