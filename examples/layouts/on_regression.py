r"""O(n)-invariant regression (CGENN's O(5) experiment, from EMLP) at n = 5, 8 and 16.

Two vectors :math:`x_1, x_2 \sim N(0, I_n)` in :math:`\mathbb R^n` and the target

.. math::
    f(x_1, x_2) = \sin(\lVert x_1\rVert) - \tfrac12 \lVert x_2\rVert^3
    + \frac{x_1 \cdot x_2}{\lVert x_1\rVert \lVert x_2\rVert},

an O(n)-invariant function. Models, all reading ``x: (batch, 2, n)``:

* ``gatorch``: a CGENN-style net on :math:`Cl(n, 0)` whose channels store grades (0, 1, 2)
  (a :class:`gatorch.Layout`): ``x1, x2`` as two grade-1 channels, an
  :class:`~gatorch.layers.EquiLinear` to ``channels`` channels, the layers of a
  :class:`~gatorch.layers.CliffordMLP` in CGENN's style (``blocks`` x EquiLinear -> MVSiLU ->
  SteerableGeometricProduct -> EquiLayerNorm), then the
  scalar part of every channel through a small MLP (Linear, SiLU, Linear) to one number.
  Grades (0, 1, 2) of :math:`Cl(n, 0)` are :math:`1 + n + n(n-1)/2` blades: 16, 37 and 137
  for n = 5, 8, 16, against 32, 256 and 65536 for the full algebra.
* ``gatorch-full``: the same net on all :math:`2^n` blades (n = 5 only: 32 blades).
* ``mlp``: an MLP on the ``2n`` raw coordinates (3 hidden SiLU layers), its width chosen per
  n so that its parameter count is the ``gatorch`` net's within a few per cent.

Data: for each (n, seed) one pool of training examples is drawn, and a training set of size
N is its first N examples (so the sets are nested); the test set (2000 examples) and the
standardisation depend on n only. Targets are standardised by the mean and standard deviation
of f over 100 000 reference draws for that n (a property of the distribution, not of any
training set), so a test MSE of 1 is what predicting the mean gives.

Training: a fixed number of Adam steps on mini-batches (``--batch-size``, the whole set when
smaller), learning rate ``--lr`` with a linear warm-up and a cosine decay to 1% (the
harness's :func:`examples.harness.lr_factor`), gradient-norm clip 1, no weight decay and no
model selection: the test MSE is that of the weights after the last step.

Run from the repository root::

    python -m examples.layouts.on_regression                 # the sweep of the README (about 25 core-minutes)
    python -m examples.layouts.on_regression --resume        # continue it, skipping finished rows
    python -m examples.layouts.on_regression --n 5 --sizes 100 --seeds 0 --steps 50   # a smoke run
    python -m examples.layouts.on_regression --report-only   # the table and plot of the CSV's rows

Each finished (n, model, train size, seed) appends a row to ``<out-dir>/on_regression.csv``
(``--resume`` skips the rows already there); at the end the mean and std over seeds go to
``<out-dir>/on_regression.md``, the plot (test MSE against training-set size, log-log, one
panel per n) to ``--plot``, and every trained equivariant model is checked for invariance
under a random orthogonal map with a reflection, in float64.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from examples import harness
from gatorch import Algebra, Layout
from gatorch.layers import CliffordMLP, EquiLinear

__all__ = [
    "CSV_COLUMNS",
    "MODELS",
    "GANet",
    "MLPNet",
    "build_model",
    "count_parameters",
    "main",
    "make_split",
    "mlp_width_for",
    "random_orthogonal",
    "target",
    "train_one",
]

log = logging.getLogger("examples.layouts.on_regression")

#: The models of the sweep; ``gatorch-full`` only runs where the full algebra is small (n <= 6).
MODELS = ("gatorch", "gatorch-full", "mlp")
#: Columns of the results CSV, in order; (n, model, train_size, seed) is a row's key.
CSV_COLUMNS = ("n", "model", "params", "train_size", "seed", "steps", "test_mse", "train_mse", "seconds")
#: The largest n for which ``gatorch-full`` runs (2**n blades per channel).
FULL_MAX_N = 6
#: Grades the ``gatorch`` model stores.
GRADES = (0, 1, 2)
#: Reference draws for the target's mean and standard deviation.
REFERENCE_SIZE = 100_000


# -- the task ---------------------------------------------------------------------------------------------
def target(x: Tensor) -> Tensor:
    r"""``f(x1, x2) = sin(|x1|) - |x2|^3 / 2 + x1.x2 / (|x1| |x2|)`` for ``x: (..., 2, n)`` -> ``(...)``."""
    x1, x2 = x[..., 0, :], x[..., 1, :]
    r1, r2 = x1.norm(dim=-1), x2.norm(dim=-1)
    return torch.sin(r1) - 0.5 * r2**3 + (x1 * x2).sum(-1) / (r1 * r2)


_SPLIT_CODES = {"train": 0, "test": 1, "reference": 2}


def make_split(n: int, size: int, split: str, seed: int = 0) -> Tensor:
    """``size`` inputs ``(size, 2, n)`` (float64) of a split, drawn from ``N(0, I)``.

    ``"train"``: the first ``size`` draws of the pool of (n, seed), so smaller training sets
    are prefixes of larger ones; ``"test"`` and ``"reference"`` depend on n only (``seed`` is
    ignored).
    """
    if split not in _SPLIT_CODES:
        raise ValueError(f"make_split: expected split in {sorted(_SPLIT_CODES)}, got {split!r}")
    key = [n, _SPLIT_CODES[split], seed if split == "train" else 0]
    rng = np.random.default_rng(key)
    return torch.from_numpy(rng.standard_normal((size, 2, n)))


_STATS: dict[int, tuple[float, float]] = {}


def target_stats(n: int) -> tuple[float, float]:
    """Mean and standard deviation of ``f`` for this n, over :data:`REFERENCE_SIZE` reference draws."""
    if n not in _STATS:
        y = target(make_split(n, REFERENCE_SIZE, "reference"))
        _STATS[n] = (float(y.mean()), float(y.std()))
    return _STATS[n]


def standardized(n: int, x: Tensor) -> Tensor:
    """The standardised target of the inputs ``x`` (float64)."""
    mean, std = target_stats(n)
    return (target(x.double()) - mean) / std


# -- the models -------------------------------------------------------------------------------------------
class GANet(nn.Module):
    """The CGENN-style net on ``Cl(n, 0)`` with channels on ``grades`` (``None``: all blades).

    Parameters
    ----------
    n : int
        Dimension of the vectors (the algebra is ``Cl(n, 0)``).
    channels : int
        Hidden multivector channels.
    grades : sequence of int, optional
        The layout's grades; must hold 0 and 1. ``None``: the full algebra.
    blocks : int
        Blocks of the CGENN-style :class:`~gatorch.layers.CliffordMLP`.
    head : int
        Hidden width of the scalar read-out MLP.

    Shapes
    ------
    ``forward(x) -> y`` with ``x: (batch, 2, n)`` and ``y: (batch,)``.
    """

    def __init__(
        self,
        n: int,
        channels: int = 16,
        grades: Sequence[int] | None = GRADES,
        blocks: int = 2,
        head: int = 32,
    ) -> None:
        super().__init__()
        self.alg = alg = Algebra(n)
        self.layout = Layout(alg, grades) if grades is not None else Layout.full(alg)
        if not (self.layout.has_grade(0) and self.layout.has_grade(1)):
            raise ValueError(f"GANet: expected grades holding 0 and 1, got {self.layout.grades}")
        self.n = n
        lay = self.layout
        self.embed = EquiLinear(alg, 2, channels, in_layout=lay, out_layout=lay)
        # CGENN's CEMLP: blocks x (EquiLinear -> MVSiLU -> SteerableGeometricProduct -> EquiLayerNorm)
        cemlp = {"style": "cgenn", "blocks": blocks}
        self.mlp = CliffordMLP(alg, channels, channels, config=cemlp, layout=lay)
        self.head = nn.Sequential(nn.Linear(channels, head), nn.SiLU(), nn.Linear(head, 1))
        self._vectors = lay.grade_slice(1)
        self._scalar = lay.grade_slice(0).start

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[1:] != (2, self.n):
            raise ValueError(f"GANet: expected input of shape (batch, 2, {self.n}), got {tuple(x.shape)}")
        mv = x.new_zeros(x.shape[0], 2, self.layout.dim)
        mv[..., self._vectors] = x
        h, _ = self.embed(mv)
        h, _ = self.mlp(h)
        return self.head(h[..., self._scalar]).squeeze(-1)


class MLPNet(nn.Module):
    """An MLP on the ``2n`` raw coordinates: ``depth`` hidden SiLU layers of ``width``.

    Shapes
    ------
    ``forward(x) -> y`` with ``x: (batch, 2, n)`` and ``y: (batch,)``.
    """

    def __init__(self, n: int, width: int, depth: int = 3) -> None:
        super().__init__()
        self.n = n
        layers: list[nn.Module] = []
        fan_in = 2 * n
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), nn.SiLU()]
            fan_in = width
        layers.append(nn.Linear(fan_in, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[1:] != (2, self.n):
            raise ValueError(f"MLPNet: expected input of shape (batch, 2, {self.n}), got {tuple(x.shape)}")
        return self.net(x.flatten(1)).squeeze(-1)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def mlp_parameters(n: int, width: int, depth: int = 3) -> int:
    """Parameters of :class:`MLPNet` ``(n, width, depth)``."""
    return (2 * n + 1) * width + (depth - 1) * (width + 1) * width + width + 1


def mlp_width_for(n: int, params: int, depth: int = 3) -> int:
    """The width whose :class:`MLPNet` has the parameter count closest to ``params``."""
    if params < mlp_parameters(n, 1, depth):
        raise ValueError(
            f"mlp_width_for: expected a parameter count >= {mlp_parameters(n, 1, depth)}, got {params}"
        )
    width = 1
    while mlp_parameters(n, width + 1, depth) <= params:
        width += 1
    above = width + 1
    return (
        above
        if mlp_parameters(n, above, depth) - params < params - mlp_parameters(n, width, depth)
        else width
    )


def build_model(name: str, n: int, channels: int = 16) -> nn.Module:
    """A fresh model of the sweep (float32; seed the generator before calling)."""
    if name == "gatorch":
        return GANet(n, channels)
    if name == "gatorch-full":
        if n > FULL_MAX_N:
            raise ValueError(
                f"build_model: expected n <= {FULL_MAX_N} for gatorch-full (2**n blades), got n={n}"
            )
        return GANet(n, channels, grades=None)
    if name == "mlp":
        # the parameter count of the grades-(0, 1, 2) net does not depend on the weights' values
        with torch.random.fork_rng():
            reference = count_parameters(GANet(n, channels))
        return MLPNet(n, mlp_width_for(n, reference))
    raise ValueError(f"build_model: expected a model in {MODELS}, got {name!r}")


# -- training ---------------------------------------------------------------------------------------------
def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch: int = 1000) -> float:
    """Mean squared error of ``model`` on ``(x, y)`` (in the model's dtype, accumulated in float64)."""
    dtype = next(model.parameters()).dtype
    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            pred = model(x[i : i + batch].to(dtype)).double()
            total += float(((pred - y[i : i + batch]) ** 2).sum())
    model.train()
    return total / x.shape[0]


def train_one(
    n: int,
    model_name: str,
    size: int,
    seed: int,
    *,
    steps: int,
    lr: float,
    batch_size: int,
    channels: int = 16,
    warmup: int = 50,
    test_size: int = 2000,
    progress: bool = False,
) -> tuple[dict[str, Any], nn.Module]:
    """Train one model on the first ``size`` training examples of (n, seed); its CSV row and the model."""
    x_train = make_split(n, size, "train", seed)
    y_train = standardized(n, x_train)
    x_test = make_split(n, test_size, "test")
    y_test = standardized(n, x_test)
    torch.manual_seed(seed)
    model = build_model(model_name, n, channels)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    xs, ys = x_train.float(), y_train.float()
    batch = min(batch_size, size)
    order = torch.Generator().manual_seed(seed)
    perm, at = torch.randperm(size, generator=order), 0
    t0 = time.perf_counter()
    bar = harness.progress_bar(range(steps), f"n={n} {model_name} N={size} seed={seed}", progress)
    for step in bar:
        if at + batch > size:
            perm, at = torch.randperm(size, generator=order), 0
        idx = perm[at : at + batch]
        at += batch
        for group in optimizer.param_groups:
            group["lr"] = lr * harness.lr_factor(step / steps, step, warmup)
        loss = ((model(xs[idx]) - ys[idx]) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    bar.close()
    seconds = time.perf_counter() - t0
    row = {
        "n": n,
        "model": model_name,
        "params": count_parameters(model),
        "train_size": size,
        "seed": seed,
        "steps": steps,
        "test_mse": evaluate(model, x_test, y_test),
        "train_mse": evaluate(model, x_train, y_train),
        "seconds": round(seconds, 2),
    }
    return row, model


# -- invariance -------------------------------------------------------------------------------------------
def random_orthogonal(n: int, seed: int = 0, *, reflection: bool = True) -> Tensor:
    """A random ``(n, n)`` orthogonal matrix (float64) with determinant -1 (``reflection``) or +1."""
    gen = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))  # Haar-distributed
    if (torch.linalg.det(q) < 0) != reflection:
        q[:, 0] = -q[:, 0]
    return q


def invariance_error(model: nn.Module, n: int, seed: int = 0, size: int = 64) -> float:
    """Relative max deviation of a float64 copy of ``model`` under ``x -> x Q^T`` (Q with a reflection)."""
    import copy

    model64 = copy.deepcopy(model).double().eval()
    x = make_split(n, size, "test")
    q = random_orthogonal(n, seed, reflection=True)
    with torch.no_grad():
        y, y_rot = model64(x), model64(x @ q.T)
    return float((y - y_rot).abs().max() / y.abs().max().clamp_min(1e-300))


# -- results ----------------------------------------------------------------------------------------------
def _key(row: dict[str, Any]) -> tuple[int, str, int, int]:
    return int(row["n"]), str(row["model"]), int(row["train_size"]), int(row["seed"])


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a results CSV (empty when it does not exist)."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or tuple(reader.fieldnames) != CSV_COLUMNS:
            raise ValueError(f"{path}: expected the columns {list(CSV_COLUMNS)}, got {reader.fieldnames}")
        return list(reader)


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one row to the results CSV (writing the header first when the file is new)."""
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow({c: row[c] for c in CSV_COLUMNS})


def summarize(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and std (over seeds; 0 for one seed) of the test MSE per (n, model, train size)."""
    groups: dict[tuple[int, str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((int(row["n"]), str(row["model"]), int(row["train_size"])), []).append(row)
    out = []
    order = {m: i for i, m in enumerate(MODELS)}
    for (n, model, size), rs in sorted(
        groups.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9), kv[0][2])
    ):
        mse = np.array([float(r["test_mse"]) for r in rs])
        std = float(mse.std(ddof=1)) if len(rs) > 1 else 0.0
        seconds = float(np.mean([float(r["seconds"]) for r in rs]))
        out.append({"n": n, "model": model, "params": int(rs[0]["params"]), "train_size": size,
                    "seeds": len(rs), "mean": float(mse.mean()), "std": std, "seconds": seconds})  # fmt: skip
    return out


def markdown_table(summary: Sequence[dict[str, Any]]) -> str:
    """The summary as a markdown table: one row per (n, model), one column per training-set size."""
    sizes = sorted({s["train_size"] for s in summary})
    lines = ["| n | model | params | " + " | ".join(f"N = {s}" for s in sizes) + " |",
             "|---|---|---:|" + "---:|" * len(sizes)]  # fmt: skip
    rows: dict[tuple[int, str], dict[int, dict[str, Any]]] = {}
    params: dict[tuple[int, str], int] = {}
    for s in summary:
        rows.setdefault((s["n"], s["model"]), {})[s["train_size"]] = s
        params[(s["n"], s["model"])] = s["params"]
    for (n, model), by_size in rows.items():
        cells = []
        for size in sizes:
            s = by_size.get(size)
            if s is None:
                cells.append("")
            elif s["seeds"] > 1:
                cells.append(f"{s['mean']:.3g} ± {s['std']:.2g}")
            else:
                cells.append(f"{s['mean']:.3g}")
        lines.append(f"| {n} | {model} | {params[(n, model)]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(summary: Sequence[dict[str, Any]], path: Path) -> None:
    """Test MSE against training-set size, log-log, one panel per n (error bars: std over seeds)."""
    plt = harness.pyplot()
    ns = sorted({s["n"] for s in summary})
    fig, axes = plt.subplots(1, len(ns), figsize=(4.2 * len(ns), 3.6), squeeze=False, sharey=True)
    styles = {"gatorch": ("C0", "o", "gatorch, grades (0,1,2)"),
              "gatorch-full": ("C2", "s", "gatorch, all grades"),
              "mlp": ("C3", "^", "MLP, same params")}  # fmt: skip
    for ax, n in zip(axes[0], ns, strict=True):
        for model in MODELS:
            pts = sorted(
                (s for s in summary if s["n"] == n and s["model"] == model), key=lambda s: s["train_size"]
            )
            if not pts:
                continue
            color, marker, label = styles[model]
            sizes, means, stds = ([s[k] for s in pts] for k in ("train_size", "mean", "std"))
            ax.errorbar(sizes, means, yerr=stds, color=color, marker=marker, capsize=3, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"O({n}) regression")
        ax.set_xlabel("training-set size")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("test MSE (standardised target)")
    axes[0][0].legend(fontsize=8)  # the first panel (n = 5) has every model
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- command line -----------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m examples.layouts.on_regression",
        description="O(n)-invariant regression: gatorch nets on grade layouts against an MLP of equal size.",
    )
    p.add_argument("--n", type=harness.int_option(4, 20), nargs="+", default=[5, 8, 16],
                   help="vector dimensions (default: 5 8 16)")  # fmt: skip
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                   help=f"models (gatorch-full runs for n <= {FULL_MAX_N} only)")  # fmt: skip
    p.add_argument("--sizes", type=harness.int_option(1), nargs="+", default=[100, 300, 1000, 3000],
                   help="training-set sizes")  # fmt: skip
    p.add_argument("--seeds", type=harness.int_option(0), nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=harness.int_option(1), default=500, help="Adam steps per run")
    p.add_argument("--lr", type=harness.float_option(0, low_open=True), default=3e-3)
    p.add_argument("--batch-size", type=harness.int_option(1), default=64)
    p.add_argument("--channels", type=harness.int_option(1), default=16, help="multivector channels")
    p.add_argument("--test-size", type=harness.int_option(1), default=2000)
    p.add_argument("--out-dir", default="examples/layouts/results", help="where the CSV and the table go")
    p.add_argument("--plot", default="docs/img/on_regression.png", help="the PNG of the plot")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument(
        "--resume", action="store_true", help="skip the (n, model, size, seed) rows already in the CSV"
    )
    p.add_argument("--threads", type=harness.int_option(1), default=None)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--report-only", action="store_true", help="train nothing: the table and plot of the rows in the CSV"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "on_regression.csv"
    if args.report_only and not csv_path.exists():
        log.error("--report-only: expected a results CSV at %s, found none", csv_path)
        return 2
    if not (args.resume or args.report_only) and csv_path.exists():
        csv_path.unlink()
    done = {_key(r) for r in read_rows(csv_path)}
    # seed by seed, so that an interrupted sweep has whole seeds done
    todo = [(n, m, size, seed) for seed in args.seeds for n in args.n for size in args.sizes
            for m in args.models if m != "gatorch-full" or n <= FULL_MAX_N]  # fmt: skip
    for n in args.n:
        counts = {m: count_parameters(build_model(m, n, args.channels)) for m in args.models
                  if m != "gatorch-full" or n <= FULL_MAX_N}  # fmt: skip
        log.info("n=%d  parameters: %s", n, "  ".join(f"{m} {c}" for m, c in counts.items()))
    skipped = sum(k in done for k in todo)
    if skipped:
        log.info("resume: %d of %d runs already in %s", skipped, len(todo), csv_path)
    trained: dict[tuple[int, str], nn.Module] = {}
    for i, key in enumerate(todo):
        if key in done or args.report_only:
            continue
        n, model_name, size, seed = key
        row, model = train_one(n, model_name, size, seed, steps=args.steps, lr=args.lr,
                               batch_size=args.batch_size, channels=args.channels, test_size=args.test_size,
                               progress=not args.no_progress)  # fmt: skip
        append_row(csv_path, row)
        trained[(n, model_name)] = model
        log.info("[%d/%d] n=%d %-12s N=%-5d seed=%d  params %d  test MSE %.4f  train MSE %.4f  (%.1f s)",
                 i + 1, len(todo), n, model_name, size, seed, row["params"], row["test_mse"],
                 row["train_mse"], row["seconds"])  # fmt: skip
    rows = [r for r in read_rows(csv_path) if _key(r) in set(todo)]
    summary = summarize(rows)
    table = markdown_table(summary)
    (out / "on_regression.md").write_text(table)
    print(table)
    if not args.no_plot and summary:
        plot(summary, Path(args.plot))
        log.info("plot: %s", args.plot)
    # invariance: every equivariant model trained in this call (or a fresh one), float64, a reflection
    worst = 0.0
    for n in args.n:
        for model_name in args.models:
            if model_name == "gatorch-full" and n > FULL_MAX_N:
                continue
            model = trained.get((n, model_name)) or build_model(model_name, n, args.channels)
            err = invariance_error(model, n, seed=n)
            invariant = model_name != "mlp"
            log.info("invariance n=%d %-12s deviation under an O(n) map with a reflection: %.2e%s",
                     n, model_name, err, "" if invariant else " (not invariant by construction)")  # fmt: skip
            if invariant:
                worst = max(worst, err)
    if worst > 1e-9:
        log.error("invariance check failed: relative deviation %.2e > 1e-9", worst)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
