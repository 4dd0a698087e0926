"""Geometric algebra attention: gatorch's layers against the ``geometric-algebra-attention`` package.

What it measures
----------------
For each configuration (layer, rank, reduce, invariant / covariant mode) on ``batch``
random float32 clouds of ``points`` points with ``n_dim``-wide values, the median time of
one forward + backward pass (gradients of positions, values and every weight) of

* gatorch's :class:`~gatorch.layers.zoo.ga_attention.GAInvariantAttention` /
  :class:`~gatorch.layers.zoo.ga_attention.GACovariantAttention` (products through
  ``VGA3``'s sparse geometric product on 8-component multivectors);
* the package's torch backend (``VectorAttention`` / ``Vector2VectorAttention``:
  hand-written 3- and 4-component swizzles),

with the *same* score, value and scale networks and merge / join weights copied across;
the outputs are compared first (``max_abs_diff``). ``ratio`` is gatorch time / package
time (below 1: gatorch is faster). Both spend most of the time in the value and score
networks on the ``batch * points**rank`` tuples, which are identical; the difference is
the products, the invariants and the merge / join. The two are timed alternately, repeat
by repeat, so that load from other processes on a shared machine falls on both.

Run
---
::

    python benchmarks/bench_ga_attention.py             # 64 clouds x 12 points, n_dim 32
    python benchmarks/bench_ga_attention.py --quick     # smoke run
    python benchmarks/bench_ga_attention.py --batch 16 --points 20 --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from gatorch import VGA3
from gatorch.interface.vga import embed_vector
from gatorch.layers.zoo.ga_attention import (
    GACovariantAttention,
    GAInvariantAttention,
    ga_attention_invariant_dims,
)

#: (layer, rank, reduce, invariant_mode, covariant_mode)
CONFIGS = [
    ("invariant", 2, True, "single", None),
    ("invariant", 2, False, "partial", None),
    ("invariant", 3, True, "single", None),
    ("invariant", 3, False, "full", None),
    ("covariant", 2, False, "single", "partial"),
    ("covariant", 3, False, "partial", "partial"),
    ("covariant", 3, True, "full", "full"),
]


def _median_ms_pair(
    fns: tuple[Callable[[], object], Callable[[], object]], repeats: int, warmup: int
) -> tuple[float, float]:
    """Median times of two functions, run alternately so that load on a shared machine hits both."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, acc in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - start)
    return statistics.median(times[0]) * 1e3, statistics.median(times[1]) * 1e3


def _mlp(n_in: int, n_out: int, hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, n_out))


def _pair(gaa, kind: str, rank: int, reduce: bool, mode: str, cmode: str | None, n_dim: int):
    """A gatorch layer and the package's layer with the same nets and weights."""
    k = ga_attention_invariant_dims(rank, mode)
    score, value, scale = _mlp(n_dim, 1, n_dim), _mlp(k, n_dim, n_dim), _mlp(n_dim, 1, n_dim)
    common = dict(rank=rank, reduce=reduce, merge_fun="concat", join_fun="concat", invariant_mode=mode)
    if kind == "invariant":
        ours = GAInvariantAttention(VGA3, n_dim, score, value, **common)
        theirs = gaa.VectorAttention(n_dim, score, value, **common)
    else:
        ours = GACovariantAttention(VGA3, n_dim, score, value, scale, covariant_mode=cmode, **common)
        theirs = gaa.Vector2VectorAttention(n_dim, score, value, scale, covariant_mode=cmode, **common)
    with torch.no_grad():
        for kern, w in zip(theirs.merge_kernels, ours.merge_weight, strict=True):
            kern.copy_(w)
        for kern, w in zip(theirs.join_kernels, ours.join_weight, strict=True):
            kern.copy_(w)
        if getattr(ours, "covariant_count", 1) > 1:
            theirs.vector_kernels.copy_(ours.covariant_weight)
    return ours, theirs


def run(batch: int, points: int, n_dim: int, repeats: int, warmup: int) -> list[dict[str, object]]:
    """Time every configuration; returns one dict per row."""
    import geometric_algebra_attention.pytorch as gaa

    g = torch.Generator().manual_seed(0)
    r = torch.randn(batch, points, 3, generator=g)
    v = torch.randn(batch, points, n_dim, generator=g)
    rows = []
    for kind, rank, reduce, mode, cmode in CONFIGS:
        ours, theirs = _pair(gaa, kind, rank, reduce, mode, cmode, n_dim)
        r_ours = embed_vector(r).requires_grad_(True)
        r_theirs = r.clone().requires_grad_(True)
        v_ours, v_theirs = v.clone().requires_grad_(True), v.clone().requires_grad_(True)
        with torch.no_grad():
            out, ref = ours(r_ours, v_ours), theirs((r_theirs, v_theirs))
            if kind == "covariant":
                ref = embed_vector(ref)
            diff = (out - ref).abs().max().item()

        def step(layer, args):
            def fn():
                layer.zero_grad(set_to_none=True)
                layer(*args).square().sum().backward()

            return fn

        t_ours, t_theirs = _median_ms_pair(
            (step(ours, (r_ours, v_ours)), step(theirs, ((r_theirs, v_theirs),))), repeats, warmup
        )
        rows.append(
            dict(
                layer=kind,
                rank=rank,
                reduce=reduce,
                modes=mode if cmode is None else f"{mode}/{cmode}",
                tuples=batch * points**rank,
                gatorch_ms=t_ours,
                package_ms=t_theirs,
                ratio=t_ours / t_theirs,
                max_abs_diff=diff,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--points", type=int, default=12)
    parser.add_argument("--n-dim", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="4 clouds x 6 points, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.points, args.repeats, args.warmup = 4, 6, 2, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, load {load:.2f}; float32, forward + backward, "
        f"{args.batch} clouds x {args.points} points, n_dim {args.n_dim}, merge/join concat"
    )
    rows = run(args.batch, args.points, args.n_dim, args.repeats, args.warmup)
    header = f"{'layer':10} {'rank':>4} {'reduce':>6} {'modes':>16} {'tuples':>8} "
    header += f"{'gatorch ms':>11} {'package ms':>11} {'ratio':>6} {'max_abs_diff':>12}"
    print(header)
    for row in rows:
        print(
            f"{row['layer']:10} {row['rank']:>4} {row['reduce']!s:>6} {row['modes']:>16} {row['tuples']:>8} "
            f"{row['gatorch_ms']:>11.2f} {row['package_ms']:>11.2f} {row['ratio']:>6.2f} "
            f"{row['max_abs_diff']:>12.1e}"
        )


if __name__ == "__main__":
    main()
