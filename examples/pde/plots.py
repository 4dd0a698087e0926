"""PNG plots of a PDE run: loss curves, and predicted against true rollouts (smoke, speed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from examples.harness import plot_log, pyplot

__all__ = ["plot_losses", "plot_rollout"]


def plot_losses(csv_path: str | Path, out: str | Path, title: str = "") -> Path:
    """Training loss and validation one-step MSE per epoch (log scale) from a run's ``log.csv``."""
    curves = [("train_loss", "train loss (MSE)"), ("val_mse", "validation MSE")]
    return plot_log(csv_path, out, [("MSE", curves, True)], title)


def plot_rollout(
    true: np.ndarray,
    pred: np.ndarray,
    out: str | Path,
    *,
    history: int,
    frame_dt: float = 1.5,
    steps: Sequence[int] | None = None,
    title: str = "",
) -> Path:
    """True and predicted frames side by side: smoke and velocity magnitude at a few time steps.

    Parameters
    ----------
    true : np.ndarray
        ``(frames, N, N, 4)`` one trajectory (smoke, ``u_x``, ``u_y``, 0).
    pred : np.ndarray
        ``(frames - history, N, N, 4)``: the autoregressive rollout from the first ``history`` frames.
    out : path
    history : int
        Frames given to the model.
    frame_dt : float
        Time between frames (for the column titles).
    steps : sequence of int, optional
        Rollout steps to show (indices into ``pred``); default 4 evenly spaced ones, the last included.
    title : str

    Returns
    -------
    Path
        ``out``. Rows: true smoke, predicted smoke, true speed, predicted speed. The first grid axis
        (x) is drawn horizontally, y upwards (the buoyancy direction).
    """
    n_pred = pred.shape[0]
    if steps is None:
        steps = sorted({round(float(v)) for v in np.linspace(0, n_pred - 1, min(4, n_pred))})
    plt = pyplot()
    fig, axes = plt.subplots(4, len(steps), figsize=(2.6 * len(steps), 10.4), squeeze=False)
    smoke_max = float(max(true[..., 0].max(), 1e-6))
    speed_true = np.sqrt(true[..., 1] ** 2 + true[..., 2] ** 2)
    speed_pred = np.sqrt(pred[..., 1] ** 2 + pred[..., 2] ** 2)
    speed_max = float(max(speed_true.max(), 1e-6))
    rows = (
        ("true smoke", lambda k: true[history + k, ..., 0], smoke_max, "magma"),
        ("predicted smoke", lambda k: pred[k, ..., 0], smoke_max, "magma"),
        ("true |u|", lambda k: speed_true[history + k], speed_max, "viridis"),
        ("predicted |u|", lambda k: speed_pred[k], speed_max, "viridis"),
    )
    for r, (label, get, vmax, cmap) in enumerate(rows):
        for c, k in enumerate(steps):
            ax = axes[r][c]
            ax.imshow(get(k).T, origin="lower", vmin=0.0, vmax=vmax, cmap=cmap)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"step {k + 1} (t = {(history + k) * frame_dt:.1f})", fontsize=9)
            if c == 0:
                ax.set_ylabel(label)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Path(out)
