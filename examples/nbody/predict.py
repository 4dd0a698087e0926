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
from typing import Any

import numpy as np
import torch
from torch import nn

from examples import harness
from examples.nbody import simulate
from examples.nbody.models import build_model

__all__ = ["load_model", "predict", "predict_gravity"]


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> tuple[nn.Module, str]:
    ckpt = harness.load_checkpoint(path)  # weights_only=True: an unsafe file is refused, never run
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
    """The model of a checkpoint (in eval mode, on the CPU) and the task it was trained on.

    The file is read with ``torch.load(weights_only=True)``
    (:func:`examples.harness.load_checkpoint`): one that holds anything but plain tensors,
    numbers and strings raises :class:`examples.harness.UnsafeCheckpointError` (a
    :class:`ValueError`) and nothing in it runs.
    """
    path = os.fspath(checkpoint_path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    return _load(path, os.path.getmtime(path))


def _as_array(value: Any, name: str) -> np.ndarray:
    """``value`` (numpy array, torch tensor, nested lists) as a float64 array; ValueError if not numeric."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise ValueError(
            f"{name} must be a real numeric array (numpy array, torch tensor or nested lists), "
            f"got {type(value).__name__} of dtype {array.dtype}"
        )
    return array.astype(np.float64)


def _check_inputs(
    task: str, loc: Any, vel: Any, attr: Any, attr_name: str, atol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The inputs as float64 arrays, checked against what a model of ``task`` was trained on."""
    loc, vel, attr = _as_array(loc, "loc"), _as_array(vel, "vel"), _as_array(attr, attr_name)
    if task == "charged":
        n = int(simulate.CHARGED["num_particles"])
        particles = f"N = {n} particles (the charged model's systems)"
    else:
        n, particles = -1, "N >= 2 bodies (a star and its planets)"
    if loc.ndim != 3 or loc.shape[-1] != 3 or (n > 0 and loc.shape[1] != n) or loc.shape[1] < 2:
        raise ValueError(
            f"loc must have shape (B, N, 3): 3-D positions of {particles}, got shape {loc.shape}"
        )
    if vel.shape != loc.shape:
        raise ValueError(f"vel must have the shape of loc {loc.shape} (3-D velocities), got {vel.shape}")
    if attr.shape != loc.shape[:2]:
        raise ValueError(f"{attr_name} must have shape {loc.shape[:2]} (B, N) like loc, got {attr.shape}")
    for name, array in (("loc", loc), ("vel", vel), (attr_name, attr)):
        if not np.isfinite(array).all():
            raise ValueError(
                f"{name} must be finite, got {int((~np.isfinite(array)).sum())} NaN or inf entries"
            )
    if task == "charged":
        off = np.abs(np.abs(attr) - 1.0) > atol
        if off.any():
            raise ValueError(
                f"charges must be -1 or +1 (within atol={atol:g}), got {float(attr[off].flat[0])!r} "
                f"({int(off.sum())} entries off)"
            )
        attr = np.sign(attr)
    elif (attr <= 0).any():
        bad = attr <= 0
        raise ValueError(
            f"masses must be positive, got {float(attr[bad].flat[0])!r} ({int(bad.sum())} entries)"
        )
    return loc, vel, attr


def _predict(
    task: str, checkpoint_path: str | os.PathLike, loc: Any, vel: Any, attr: Any, attr_name: str, atol: float
) -> np.ndarray:
    model, trained_on = load_model(checkpoint_path)
    if trained_on != task:
        raise ValueError(f"{os.fspath(checkpoint_path)} was trained on the {trained_on!r} task, not {task!r}")
    loc, vel, attr = _check_inputs(task, loc, vel, attr, attr_name, atol)
    if loc.shape[0] == 0:
        return np.zeros(loc.shape)
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        out = model(*(torch.as_tensor(a, dtype=dtype) for a in (loc, vel, attr)))
    return out.double().numpy()


def predict(
    checkpoint_path: str | os.PathLike, loc: Any, vel: Any, charges: Any, *, atol: float = 1e-6
) -> np.ndarray:
    """Positions 1000 steps (time 1.0) later for the charged-particles task.

    Parameters
    ----------
    checkpoint_path : path
        A ``best.pt`` of a charged run (or a shipped checkpoint).
    loc, vel : array_like, shape (B, 5, 3)
        Positions and velocities (numpy arrays, torch tensors or nested lists; finite).
    charges : array_like, shape (B, 5)
        Charges, each -1 or +1.
    atol : float
        How far a charge may be from -1 or +1 (it is then rounded to the sign).

    Returns
    -------
    numpy.ndarray, shape (B, 5, 3), float64

    Raises
    ------
    ValueError
        Inputs of another shape (5 particles, 3-D positions and velocities, one batch size),
        non-numeric, NaN or infinite values, charges other than +-1, or a checkpoint of
        another task (or not a safe checkpoint, :func:`load_model`).
    """
    return _predict("charged", checkpoint_path, loc, vel, charges, "charges", atol)


def predict_gravity(checkpoint_path: str | os.PathLike, loc: Any, vel: Any, masses: Any) -> np.ndarray:
    """Positions 100 Euler steps (time 0.1) later for the gravity task (star + planets).

    Parameters
    ----------
    checkpoint_path : path
        A ``best.pt`` of a gravity run (or a shipped checkpoint).
    loc, vel : array_like, shape (B, N, 3)
        Positions and velocities of ``N >= 2`` bodies (trained on 4; finite).
    masses : array_like, shape (B, N)
        Positive masses.

    Returns
    -------
    numpy.ndarray, shape (B, N, 3), float64

    Raises
    ------
    ValueError
        As :func:`predict`, with positive masses in place of the charges.
    """
    return _predict("gravity", checkpoint_path, loc, vel, masses, "masses", 0.0)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m examples.nbody.predict", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--split", default="test", help="a split of the checkpoint's task (default test)")
    p.add_argument("--cache-dir")
    a = p.parse_args(argv)
    harness.validate_common(p, a)  # --cache-dir
    if not os.path.isfile(a.checkpoint):
        p.error(f"argument checkpoint: expected a checkpoint file, got {a.checkpoint!r}, which is not a file")
    try:
        _, task = load_model(a.checkpoint)
    except harness.UnsafeCheckpointError as err:
        p.error(f"argument checkpoint: {err}")
    if a.split not in simulate.SPLITS[task]:
        p.error(f"argument --split: expected one of {simulate.SPLITS[task]} ({task} task), got {a.split!r}")
    data = simulate.load_split(task, a.split, a.cache_dir)
    fn = predict if task == "charged" else predict_gravity
    pred = fn(a.checkpoint, data["loc"], data["vel"], data["attr"])
    mse = float(((pred - data["target"]) ** 2).mean())
    print(f"{a.checkpoint}: {task} {a.split} split, {len(pred)} systems, MSE {mse:.5f}")


if __name__ == "__main__":
    main()
