"""PNG plots of a jet-tagging run: loss and AUC per epoch, ROC curves (rejection vs efficiency)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from examples.harness import plot_log, pyplot

__all__ = ["load_rocs", "plot_losses", "plot_rocs"]


def plot_losses(csv_path: str | Path, out: str | Path, title: str = "") -> Path:
    """Training and validation loss, and the validation AUC, per epoch from a run's ``log.csv``.

    The columns ``train_loss``, ``val_loss`` and ``val_auc`` of the trainer's CSV, drawn by
    :func:`examples.harness.plot_log` into the PNG ``out`` (returned).
    """
    bce = [("train_loss", "train (BCE)"), ("val_loss", "validation (BCE)")]
    panels = [("loss", bce, False), ("validation AUC", [("val_auc", "validation AUC")], False)]
    return plot_log(csv_path, out, panels, title, figsize=(9, 3.6))


def plot_rocs(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    out: str | Path,
    title: str = "",
    efficiency: float = 0.3,
) -> Path:
    """Background rejection ``1 / eps_B`` (log scale) against signal efficiency ``eps_S``.

    Parameters
    ----------
    curves : mapping
        ``label -> (eps_s, eps_b)`` as from :func:`examples.jets.train.roc_curve`. Curves whose
        label contains ``"boosted"`` or ``"lorentz"`` are dashed / dotted.
    out : path
    title : str
    efficiency : float
        A vertical line marks the working point of the quoted rejection.

    Returns
    -------
    Path
        ``out``.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    colours: dict[str, str] = {}
    for label, (eps_s, eps_b) in curves.items():
        keep = (eps_b > 0) & (eps_s > 0)
        style = ":" if "lorentz" in label else ("--" if "boosted" in label else "-")
        model = label.split()[0]
        colour = colours.setdefault(model, f"C{len(colours)}")
        ax.plot(eps_s[keep], 1.0 / eps_b[keep], ls=style, color=colour, label=label)
    ax.axvline(efficiency, color="gray", lw=0.8, alpha=0.6)
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel("signal efficiency $\\epsilon_S$")
    ax.set_ylabel("background rejection $1/\\epsilon_B$")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return Path(out)


def load_rocs(run_dirs: Mapping[str, str | Path]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The test-set ROC curves (``roc.npz``) of several runs: ``"model split" -> (eps_s, eps_b)``."""
    curves = {}
    for model, run_dir in run_dirs.items():
        path = Path(run_dir) / "roc.npz"
        if not path.exists():
            continue
        with np.load(path) as z:
            for split in ("test", "boosted", "lorentz"):
                if f"{split}_eps_s" in z.files:
                    curves[f"{model} {split}"] = (z[f"{split}_eps_s"], z[f"{split}_eps_b"])
    return curves
