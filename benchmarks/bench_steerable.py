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

With ``--compile``, also ``torch.compile(steerable_gp, fullgraph=True, dynamic=False)``
(inductor) under ``KernelPolicy(compiled=...)`` of ``--policy`` (``"fused"`` by default:
the bitmap form of :mod:`gatorch.functional.steerable`; ``"opaque"``: the eager kernels
as custom ops): its compile time (the first forward + backward
call and the first no-grad call, both graphs, after ``torch._dynamo.reset()``), its
times and its speed-up over the dense reference. Unless ``TORCHINDUCTOR_CACHE_DIR`` is
already set, the script points it at a new empty folder before importing torch, so the
compile times are cold (no cached kernels); inductor's one-time start-up (its worker
pool, the first C++ compile) is paid by a trivial warm-up compile and printed separately.

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
    python benchmarks/bench_steerable.py --compile --threads 1   # compiled rows, cold cache

``run(algebras, items, channels, repeats, warmup)`` returns the rows as dicts (used by
``bench_nets.py``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

if __name__ == "__main__" and "--compile" in sys.argv and "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
    # before torch is imported: compile times are measured with an empty inductor cache
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_steerable_inductor_")

import torch
from timing import median_ms as _median_ms

import gatorch
from gatorch import Algebra
from gatorch.functional import KernelPolicy, kernel_policy
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
    compile: bool = False,
    policy: str = "fused",
) -> list[dict[str, object]]:
    """Time sparse vs dense steerable products; one dict per algebra.

    Parameters
    ----------
    algebras : sequence of names (``"VGA3"``, ``"PGA3"``, ``"STA"``, ``"CGA3"``) or Algebras
    items, channels : int
        Operands have shape ``(items, channels, dim)``; the weights ``(channels, num_paths)``.
    repeats, warmup : int
        Timed calls (the median is reported) and untimed calls before them.
    compile : bool
        Also time ``torch.compile(steerable_gp)`` (see the module docstring).
    policy : {"fused", "opaque"}
        ``KernelPolicy.compiled`` for the compiled rows.

    Returns
    -------
    list of dict
        Keys: ``algebra, dim, paths, fwd_dense_ms, fwd_sparse_ms, fwd_speedup,
        fwdbwd_dense_ms, fwdbwd_sparse_ms, fwdbwd_speedup, max_rel_err``; with ``compile``
        also ``compile_s, fwd_compiled_ms, fwd_compiled_speedup, fwdbwd_compiled_ms,
        fwdbwd_compiled_speedup, compiled_rel_err`` (speed-ups over the dense reference).
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

        ref = steerable_gp_dense(alg, x[:CHECK_ITEMS].double(), y[:CHECK_ITEMS].double(), w.double())
        out = steerable_gp(alg, x[:CHECK_ITEMS], y[:CHECK_ITEMS], w).double()
        rel_err = ((out - ref).abs().max() / ref.abs().max()).item()

        times: dict[str, float] = {}
        for label, fn in (("sparse", steerable_gp), ("dense", steerable_gp_dense)):
            fwd, fwdbwd = _time_fn(fn, alg, (x, y, w), (xs, ys, ws), grad, repeats, warmup)
            times[f"fwd_{label}"], times[f"fwdbwd_{label}"] = fwd, fwdbwd
        extra: dict[str, object] = {}
        if compile:
            with kernel_policy(KernelPolicy(compiled=policy)):
                extra = _compiled_row(alg, (x, y, w), (xs, ys, ws), grad, ref, times, repeats, warmup)
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
                **extra,
            }
        )
    return rows


def _compiled_row(
    alg: Algebra,
    args: tuple[torch.Tensor, ...],
    leaves: tuple[torch.Tensor, ...],
    grad: torch.Tensor,
    ref: torch.Tensor,
    times: dict[str, float],
    repeats: int,
    warmup: int,
) -> dict[str, object]:
    """Compile ``steerable_gp`` afresh, time it, and compare with the dense reference."""
    torch._dynamo.reset()

    def product(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return steerable_gp(alg, x, y, w)

    compiled = torch.compile(product, fullgraph=True, dynamic=False)
    start = time.perf_counter()
    for t in leaves:
        t.grad = None
    compiled(*leaves).backward(grad)  # the forward and backward graphs
    with torch.no_grad():
        out = compiled(*args)  # the inference graph
    compile_s = time.perf_counter() - start
    out = compiled(args[0][:CHECK_ITEMS], args[1][:CHECK_ITEMS], args[2]).double()  # a third graph
    rel_err = ((out - ref).abs().max() / ref.abs().max()).item()

    def call(alg_: Algebra, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return compiled(x, y, w)

    fwd, fwdbwd = _time_fn(call, alg, args, leaves, grad, repeats, warmup)
    return {
        "compile_s": compile_s,
        "fwd_compiled_ms": fwd,
        "fwd_compiled_speedup": times["fwd_dense"] / fwd,
        "fwdbwd_compiled_ms": fwdbwd,
        "fwdbwd_compiled_speedup": times["fwdbwd_dense"] / fwdbwd,
        "compiled_rel_err": rel_err,
    }


def warm_up_inductor() -> float:
    """Compile and run a trivial function: inductor's one-time start-up, in seconds."""
    start = time.perf_counter()
    torch.compile(lambda t: t * 2.0 + 1.0, fullgraph=True)(torch.ones(4))
    torch._dynamo.reset()
    return time.perf_counter() - start


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
    if rows and "compile_s" in rows[0]:
        lines += [
            "",
            "| algebra | compile s | fwd compiled ms | fwd speed-up vs dense | fwd+bwd compiled ms "
            "| fwd+bwd speed-up vs dense | max rel err |",
            "|" + "---|" * 7,
        ]
        for r in rows:
            lines.append(
                f"| {r['algebra']} | {r['compile_s']:.1f} | {r['fwd_compiled_ms']:.2f} "
                f"| {r['fwd_compiled_speedup']:.1f}x | {r['fwdbwd_compiled_ms']:.2f} "
                f"| {r['fwdbwd_compiled_speedup']:.1f}x | {r['compiled_rel_err']:.1e} |"
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
    parser.add_argument(
        "--compile", action="store_true", help="also torch.compile the sparse product (cold inductor cache)"
    )
    parser.add_argument(
        "--policy", default="fused", choices=["fused", "opaque"], help="KernelPolicy.compiled for --compile"
    )
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
    if args.compile:
        cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR", "(default)")
        print(
            f"# compiled rows: KernelPolicy(compiled={args.policy!r}); inductor cache {cache}; "
            f"start-up (trivial compile) {warm_up_inductor():.1f} s"
        )
    rows = run(
        args.algebras,
        args.items,
        args.channels,
        args.repeats,
        args.warmup,
        compile=args.compile,
        policy=args.policy,
    )
    print(markdown(rows))


if __name__ == "__main__":
    main()
