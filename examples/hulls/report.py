"""The runs of the hull example side by side: test MSE mean and std over seeds, and the curves.

Run from the repository root::

    python -m examples.hulls.report runs/hulls        # every RUN_DIR below with a results.json

writes ``results.md`` (one row per model: runs, steps, test MSE mean and standard deviation
over the seeds, seconds per step) and ``val_mse.png`` (validation MSE against the step, one
colour per model, one line per seed) into the given directory.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from examples import harness

LABELS = {"csmpn": "CSMPN", "cgenn": "CliffordGNN (cgenn)", "mlp": "MLP"}


def read_runs(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """``(run_dir, results)`` of every directory at or under ``root`` with a results.json."""
    found = sorted(p.parent for p in Path(root).rglob("results.json"))
    return [(d, json.loads((d / "results.json").read_text())) for d in found]


def summary_table(runs: Sequence[dict[str, Any]]) -> str:
    """Per model: seeds, steps, test MSE mean and std (sample std over the seeds), s / step."""
    models = sorted({r["model"] for r in runs}, key=lambda m: list(LABELS).index(m) if m in LABELS else 99)
    lines = [
        "| model | parameters | seeds | steps | test MSE (mean +- std) | s / step |",
        "|---|---|---|---|---|---|",
    ]
    for m in models:
        rows = [r for r in runs if r["model"] == m]
        mses = [float(r["test_mse"]) for r in rows]
        std = statistics.stdev(mses) if len(mses) > 1 else 0.0
        steps = sorted({int(r["steps"]) for r in rows})
        sps = statistics.mean(float(r["s_per_step"]) for r in rows)
        lines.append(
            f"| {LABELS.get(m, m)} | {rows[0]['parameters']} | {len(rows)} | "
            f"{'/'.join(map(str, steps))} | {statistics.mean(mses):.4f} +- {std:.4f} | {sps:.3f} |"
        )
    if runs:
        lines.append(f"\npredicting the training mean: test MSE {runs[0]['mean_predictor_test_mse']:.4f}")
    return "\n".join(lines)


def plot_curves(run_dirs: Sequence[Path], out: Path) -> Path:
    """Validation MSE against the step of every run's ``log.csv``; one colour per model."""
    plt = harness.pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    colours: dict[str, str] = {}
    for d in run_dirs:
        with (Path(d) / "log.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        results = Path(d) / "results.json"
        model = json.loads(results.read_text())["model"] if results.exists() else Path(d).name
        label = None
        if model not in colours:
            colours[model] = f"C{len(colours)}"
            label = LABELS.get(model, model)
        ax.plot([int(r["step"]) for r in rows], [float(r["val_mse"]) for r in rows], marker=".",
                color=colours[model], label=label, alpha=0.8)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("validation MSE")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return Path(out)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m examples.hulls.report ROOT``: see the module docstring."""
    p = argparse.ArgumentParser(prog="python -m examples.hulls.report", description=__doc__.split("\n")[0])
    p.add_argument("root", type=Path, help="a directory holding run directories (or one run directory)")
    p.add_argument("--no-plots", action="store_true")
    a = p.parse_args(argv)
    if not a.root.is_dir():
        p.error(f"argument root: expected a directory, got {str(a.root)!r}")
    runs = read_runs(a.root)
    if not runs:
        p.error(
            f"argument root: expected run directories with a results.json under {str(a.root)!r}, found none"
        )
    table = summary_table([r for _, r in runs])
    (a.root / "results.md").write_text(table + "\n")
    print(table)
    if not a.no_plots:
        print(f"plot: {plot_curves([d for d, _ in runs], a.root / 'val_mse.png')}")


if __name__ == "__main__":
    main()
