"""PNG plots of an n-body run: loss curves, and predicted vs true final positions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from examples.harness import plot_log, pyplot

__all__ = ["plot_losses", "plot_predictions"]


def plot_losses(csv_path: str | Path, out: str | Path, title: str = "") -> Path:
    """Training loss and validation MSE per epoch (log scale) from a run's ``log.csv``.

    The columns ``train_loss`` and ``val_mse`` of the trainer's CSV, drawn by
    :func:`examples.harness.plot_log` into the PNG ``out`` (returned).
    """
    curves = [("train_loss", "train loss (MSE)"), ("val_mse", "validation MSE")]
    return plot_log(csv_path, out, [("MSE", curves, True)], title)


@torch.no_grad()
def plot_predictions(
    model: nn.Module, arrays: dict[str, np.ndarray], out: str | Path, task: str, systems: int = 3
) -> Path:
    """Input, true and predicted final positions of a few test systems (x-y view).

    The model runs on the whole split; the panels show the systems at evenly spaced
    quantiles of the per-system error, from the median to the hardest one, so the plot
    shows both what is typical and where the error comes from.

    Parameters
    ----------
    model : nn.Module
        An n-body model, ``(loc, vel, attr) -> positions``.
    arrays : dict of numpy arrays
        A split from :func:`examples.nbody.simulate.load_split`; for the charged task its
        ``frames_loc`` draw the true path between input and target.
    out : path
    task : str
        Used in the title.
    systems : int
        Number of panels.

    Returns
    -------
    Path
        ``out``.
    """
    param = next(model.parameters())
    was_training = model.training
    model.eval()
    preds = []
    for start in range(0, len(arrays["loc"]), 500):
        chunk = [torch.as_tensor(arrays[k][start : start + 500], dtype=param.dtype, device=param.device)
                 for k in ("loc", "vel", "attr")]  # fmt: skip
        preds.append(model(*chunk).cpu().numpy())
    model.train(was_training)
    all_pred = np.concatenate(preds)
    errors = ((all_pred - arrays["target"]) ** 2).mean(axis=(1, 2))
    order = np.argsort(errors)
    quantiles = np.linspace(0.5, 1.0, systems) if systems > 1 else np.array([0.5])
    picks = [int(order[min(len(order) - 1, int(q * len(order)))]) for q in quantiles]
    labels = ["median" if q == 0.5 else ("hardest" if q == 1.0 else f"{100 * q:.0f}th percentile")
              for q in quantiles]  # fmt: skip
    pred, loc, target = all_pred[picks], arrays["loc"][picks], arrays["target"][picks]
    plt = pyplot()
    fig, axes = plt.subplots(1, systems, figsize=(4.2 * systems, 4.2), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for s, ax in enumerate(axes[0]):
        for i in range(loc.shape[1]):
            c = colors[i % len(colors)]
            if "frames_loc" in arrays:
                path = arrays["frames_loc"][picks[s], 30:41, i]
                ax.plot(path[:, 0], path[:, 1], color=c, alpha=0.35, lw=1)
            ax.scatter(*loc[s, i, :2], color=c, marker="o", s=25, alpha=0.5)
            ax.scatter(*target[s, i, :2], color=c, marker="x", s=60)
            ax.scatter(*pred[s, i, :2], facecolors="none", edgecolors=c, marker="o", s=90)
        mse = float(((pred[s] - target[s]) ** 2).mean())
        ax.set_title(f"{labels[s]} system (#{picks[s]}): MSE {mse:.1e}")
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(True, alpha=0.3)
    handles = [
        plt.Line2D([], [], color="gray", marker="o", ls="", alpha=0.5, label="input"),
        plt.Line2D([], [], color="gray", marker="x", ls="", label="true final"),
        plt.Line2D([], [], color="gray", marker="o", ls="", mfc="none", label="predicted final"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=3)
    fig.suptitle(f"{task}: x-y projection, one colour per particle")
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return Path(out)
