"""CGENN's steerable geometric product: gatorch's sparse kernel against the dense reference.

What it measures
----------------
For each algebra, on ``items x channels`` random float32 multivector pairs with random
per-(channel, path) weights, the median time of

* ``steerable_gp`` (gatorch: per-left-blade gather + fused multiply-adds, no Cayley tensor);
* ``steerable_gp_dense`` (CGENN's formulation: a ``(channels, dim, dim, dim)`` weighted
  Cayley tensor built every call, then one einsum),

forward only (under ``torch.no_grad()``) and forward + backward (gradients of ``x``, ``y``
and the weights), after ``warmup`` untimed calls. The ``speedup`` columns are
``dense time / sparse time``; ``max_rel_err`` compares the float32 sparse forward with a
float64 dense one.

On a shared machine, other processes on the cores make every multi-threaded op wait for
a descheduled thread, and the sparse kernel (``3 * dim`` ops per call) suffers more than
the dense one (a few large ops): ``--threads 1`` is then the steadier measurement. The
load average is printed with the table.

Run
---
::

    python benchmarks/bench_steerable.py                    # VGA3 PGA3 STA CGA3, 1024 x 16
    python benchmarks/bench_steerable.py --quick            # smoke run
    python benchmarks/bench_steerable.py --algebras STA --items 4096 --threads 1

``run(algebras, items, channels, repeats, warmup)`` returns the rows as dicts (used by
``bench_nets.py``).
"""

from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Callable, Sequence

import torch
from timing import median_ms as _median_ms

import gatorch
from gatorch import Algebra
from gatorch.functional.steerable import steerable_gp, steerable_gp_dense, steerable_paths

ALGEBRAS: dict[str, Algebra] = {
    "VGA3": gatorch.VGA3,
    "PGA3": gatorch.PGA3,
    "STA": gatorch.STA,
    "CGA3": gatorch.CGA3,
}
DEFAULT_ITEMS = 1024
DEFAULT_CHANNELS = 16
DEFAULT_REPEATS = 10
DEFAULT_WARMUP = 2
QUICK = {"items": 128, "repeats": 2, "warmup": 1}
#: Items compared against the float64 dense reference.
CHECK_ITEMS = 64
SEED = 0


def _time_fn(
    fn: Callable[..., torch.Tensor],
    alg: Algebra,
    args: tuple[torch.Tensor, ...],
    leaves: tuple[torch.Tensor, ...],
    grad: torch.Tensor,
    repeats: int,
    warmup: int,
) -> tuple[float, float]:
    """Median ms of ``fn(alg, *args)`` without grad, and of forward + backward on ``leaves``."""

    def forward() -> None:
        with torch.no_grad():
            fn(alg, *args)

    def forward_backward() -> None:
        for t in leaves:
            t.grad = None
        fn(alg, *leaves).backward(grad)

    return _median_ms(forward, repeats, warmup), _median_ms(forward_backward, repeats, warmup)


def _resolve(alg: str | Algebra) -> tuple[str, Algebra]:
    if isinstance(alg, Algebra):
        return repr(alg), alg
    if alg not in ALGEBRAS:
        raise ValueError(f"unknown algebra {alg!r}; expected one of {sorted(ALGEBRAS)} or an Algebra")
    return alg, ALGEBRAS[alg]


def run(
    algebras: Sequence[str | Algebra] = tuple(ALGEBRAS),
    items: int = DEFAULT_ITEMS,
    channels: int = DEFAULT_CHANNELS,
    repeats: int = DEFAULT_REPEATS,
    warmup: int = DEFAULT_WARMUP,
) -> list[dict[str, object]]:
    """Time sparse vs dense steerable products; one dict per algebra.

    Parameters
    ----------
    algebras : sequence of names (``"VGA3"``, ``"PGA3"``, ``"STA"``, ``"CGA3"``) or Algebras
    items, channels : int
        Operands have shape ``(items, channels, dim)``; the weights ``(channels, num_paths)``.
    repeats, warmup : int
        Timed calls (the median is reported) and untimed calls before them.

    Returns
    -------
    list of dict
        Keys: ``algebra, dim, paths, fwd_dense_ms, fwd_sparse_ms, fwd_speedup,
        fwdbwd_dense_ms, fwdbwd_sparse_ms, fwdbwd_speedup, max_rel_err``.
    """
    rows: list[dict[str, object]] = []
    for spec in algebras:
        name, alg = _resolve(spec)
        g = torch.Generator().manual_seed(SEED)
        x = torch.randn(items, channels, alg.dim, generator=g)
        y = torch.randn(items, channels, alg.dim, generator=g)
        w = torch.randn(channels, len(steerable_paths(alg)), generator=g)
        grad = torch.randn(items, channels, alg.dim, generator=g)
        xs, ys, ws = (t.clone().requires_grad_(True) for t in (x, y, w))

        ref = steerable_gp_dense(alg, *(t[:CHECK_ITEMS].double() for t in (x, y)), w.double())
        out = steerable_gp(alg, x[:CHECK_ITEMS], y[:CHECK_ITEMS], w).double()
        rel_err = ((out - ref).abs().max() / ref.abs().max()).item()

        times: dict[str, float] = {}
        for label, fn in (("sparse", steerable_gp), ("dense", steerable_gp_dense)):
            fwd, fwdbwd = _time_fn(fn, alg, (x, y, w), (xs, ys, ws), grad, repeats, warmup)
            times[f"fwd_{label}"], times[f"fwdbwd_{label}"] = fwd, fwdbwd
        rows.append(
            {
                "algebra": name,
                "dim": alg.dim,
                "paths": len(steerable_paths(alg)),
                "fwd_dense_ms": times["fwd_dense"],
                "fwd_sparse_ms": times["fwd_sparse"],
                "fwd_speedup": times["fwd_dense"] / times["fwd_sparse"],
                "fwdbwd_dense_ms": times["fwdbwd_dense"],
                "fwdbwd_sparse_ms": times["fwdbwd_sparse"],
                "fwdbwd_speedup": times["fwdbwd_dense"] / times["fwdbwd_sparse"],
                "max_rel_err": rel_err,
            }
        )
    return rows


def markdown(rows: list[dict[str, object]]) -> str:
    """The rows as a markdown table."""
    header = (
        "| algebra | dim | paths | fwd dense ms | fwd sparse ms | fwd speed-up "
        "| fwd+bwd dense ms | fwd+bwd sparse ms | fwd+bwd speed-up | max rel err |"
    )
    lines = [header, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['algebra']} | {r['dim']} | {r['paths']} | {r['fwd_dense_ms']:.2f} "
            f"| {r['fwd_sparse_ms']:.2f} | {r['fwd_speedup']:.1f}x | {r['fwdbwd_dense_ms']:.2f} "
            f"| {r['fwdbwd_sparse_ms']:.2f} | {r['fwdbwd_speedup']:.1f}x | {r['max_rel_err']:.1e} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--algebras", nargs="+", default=list(ALGEBRAS), choices=list(ALGEBRAS))
    parser.add_argument("--items", type=int, default=DEFAULT_ITEMS)
    parser.add_argument("--channels", type=int, default=DEFAULT_CHANNELS)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 128 items, 2 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.items, args.repeats, args.warmup = QUICK["items"], QUICK["repeats"], QUICK["warmup"]
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"# steerable geometric product, {args.items} items x {args.channels} channels, float32, "
        f"median of {args.repeats} (warm-up {args.warmup}); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.machine()} {os.cpu_count()} CPUs, load {load:.2f}"
    )
    rows = run(args.algebras, args.items, args.channels, args.repeats, args.warmup)
    print(markdown(rows))


if __name__ == "__main__":
    main()
