"""Predictions from a trained n-body checkpoint (the checkpoint carries its own model config).

::

    from examples.nbody.predict import predict, predict_gravity
    final = predict("examples/nbody/checkpoints/charged-gatr.pt", loc, vel, charges)  # (B, 5, 3)

    python -m examples.nbody.predict examples/nbody/checkpoints/charged-gatr.pt --split test
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from examples.nbody.models import build_model

__all__ = ["load_model", "predict", "predict_gravity"]


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> tuple[nn.Module, str]:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    missing = {"model_name", "model_kwargs", "model", "task"} - set(ckpt)
    if missing:
        raise ValueError(
            f"{path} is not an n-body model checkpoint (best.pt of examples.nbody.train): "
            f"it lacks {sorted(missing)}"
        )
    model = build_model(ckpt["model_name"], **ckpt["model_kwargs"])
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt["task"]


def load_model(checkpoint_path: str | os.PathLike) -> tuple[nn.Module, str]:
    """The model of a checkpoint (in eval mode, on the CPU) and the task it was trained on."""
    path = os.fspath(checkpoint_path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    return _load(path, os.path.getmtime(path))


def _predict(task: str, checkpoint_path: str | os.PathLike, loc, vel, attr, attr_name: str) -> np.ndarray:
    model, trained_on = load_model(checkpoint_path)
    if trained_on != task:
        raise ValueError(f"{os.fspath(checkpoint_path)} was trained on the {trained_on!r} task, not {task!r}")
    loc, vel, attr = (np.asarray(a, dtype=np.float64) for a in (loc, vel, attr))
    if loc.ndim != 3 or loc.shape[-1] != 3:
        raise ValueError(f"loc must have shape (B, N, 3), got {loc.shape}")
    if vel.shape != loc.shape:
        raise ValueError(f"vel must have the shape of loc {loc.shape}, got {vel.shape}")
    if attr.shape != loc.shape[:2]:
        raise ValueError(f"{attr_name} must have shape {loc.shape[:2]} (B, N), got {attr.shape}")
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        out = model(*(torch.as_tensor(a, dtype=dtype) for a in (loc, vel, attr)))
    return out.double().numpy()


def predict(checkpoint_path: str | os.PathLike, loc, vel, charges) -> np.ndarray:
    """Positions 1000 steps (time 1.0) later for the charged-particles task.

    Parameters
    ----------
    checkpoint_path : path
        A ``best.pt`` of a charged run (or a shipped checkpoint).
    loc, vel : array_like, shape (B, 5, 3)
        Positions and velocities.
    charges : array_like, shape (B, 5)
        Charges (+-1).

    Returns
    -------
    numpy.ndarray, shape (B, 5, 3), float64
    """
    return _predict("charged", checkpoint_path, loc, vel, charges, "charges")


def predict_gravity(checkpoint_path: str | os.PathLike, loc, vel, masses) -> np.ndarray:
    """Positions 100 Euler steps (time 0.1) later for the gravity task (star + planets).

    Parameters
    ----------
    checkpoint_path : path
        A ``best.pt`` of a gravity run (or a shipped checkpoint).
    loc, vel : array_like, shape (B, N, 3)
    masses : array_like, shape (B, N)

    Returns
    -------
    numpy.ndarray, shape (B, N, 3), float64
    """
    return _predict("gravity", checkpoint_path, loc, vel, masses, "masses")


def main(argv: Sequence[str] | None = None) -> None:
    from examples.nbody import simulate

    p = argparse.ArgumentParser(prog="python -m examples.nbody.predict", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--split", default="test", help="a split of the checkpoint's task (default test)")
    p.add_argument("--cache-dir")
    a = p.parse_args(argv)
    _, task = load_model(a.checkpoint)
    data = simulate.load_split(task, a.split, a.cache_dir)
    fn = predict if task == "charged" else predict_gravity
    pred = fn(a.checkpoint, data["loc"], data["vel"], data["attr"])
    mse = float(((pred - data["target"]) ** 2).mean())
    print(f"{a.checkpoint}: {task} {a.split} split, {len(pred)} systems, MSE {mse:.5f}")


if __name__ == "__main__":
    main()
