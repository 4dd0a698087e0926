"""One training step (forward + backward) of gatorch's GATr next to L-GATr, plus peak memory.

Usage::

    python benchmarks/bench_nets.py            # STA and PGA GATr steps, steerable GP
    python benchmarks/bench_nets.py --quick    # fewer repeats, one round
    python benchmarks/bench_nets.py --markdown # tables for docs/performance.md
    python benchmarks/bench_nets.py --compile --no-steerable --rounds 1   # compiled rows too
    python benchmarks/bench_nets.py --compile --shape nbody --only \
        "gatorch GATr (PGA3, n-body full preset, compiled)"

Every configuration runs in its own subprocess (same shapes, same thread count), so the
peak-memory column is that process's resident-set growth during the steps, and one
configuration's caches cannot help another. The configurations run ``--rounds`` times,
interleaved, and each row is the round with the median step time: the machine's speed
drifts, and one slow spell must not land on one configuration only. The shape follows the issue: 4 blocks,
16 multivector + 32 scalar channels, 4 heads, batch 8 x 128 tokens, MLP ratio 4, float32.
L-GATr runs with ``subgroup=False`` (the full Lorentz group, like gatorch's ``group="pin"``)
in each of its eager kernel configurations (``sparse_gp`` x ``sparse_linear``), and once
with its defaults (``subgroup=True``, the connected subgroup only); the row
"gatorch from_lgatr(L-GATr defaults)" is that last net converted with
:func:`gatorch.interop.from_lgatr`: the same function and weights, run by gatorch.

Compiled configurations (``--compile``) are built fresh and compiled with an empty inductor
cache (a new ``TORCHINDUCTOR_CACHE_DIR`` per process), so "first step s" is the whole compile
time of forward and backward. Their process also times the same net eagerly, interleaved
with the compiled steps, and prints the ratio ("vs own eager"). gatorch compiles with
``fullgraph=True``; L-GATr with its defaults (graph breaks allowed). ``--shape nbody`` runs
the n-body shape (100 systems x 5 particles) instead of 8 x 128 tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import median_ms

ROOT = Path(__file__).resolve().parents[1]

SHAPES = {
    "bench": {"batch": 8, "items": 128, "mv": 16, "s": 32, "blocks": 4, "heads": 4},
    "nbody": {"batch": 100, "items": 5, "mv": 16, "s": 32, "blocks": 4, "heads": 4},
}
SHAPE = dict(SHAPES["bench"])

#: The GATr inside the n-body example's full-preset model (``examples/nbody/train.py``,
#: ``PRESETS["full"]["models"]["gatr"]`` on the charged task; ``examples/nbody/models.py``,
#: ``NBodyGATr``): PGA3, PGA distance attention, MLP ratio 2, and per particle 3 + K
#: multivector and 1 + K scalar input channels (the points x and x + T v, the velocity, the
#: charge, and K pair-feature channels), one output multivector channel. Built here from
#: gatorch alone (benchmarks do not import ``examples``), so the row times this network on
#: random embedded inputs; the example's embedding, pair-feature MLP and readout around it are
#: not part of the step. ``tests/test_harness.py`` checks these numbers against the preset.
NBODY_FULL_GATR = {
    "hidden_mv_channels": 16,
    "hidden_s_channels": 32,
    "num_blocks": 4,
    "num_heads": 4,
    "pair_channels": 8,
    "mlp_ratio": 2,
}

#: name -> (library, options)
CONFIGS: dict[str, tuple[str, dict[str, object]]] = {
    "gatorch GATr (STA)": ("gatorch", {"algebra": "STA"}),
    "gatorch GATr (STA, compiled)": ("gatorch", {"algebra": "STA", "compile": True}),
    "L-GATr sparse_gp + sparse_linear": (
        "lgatr",
        {"sparse_gp": True, "sparse_linear": True, "subgroup": False},
    ),
    "L-GATr sparse_gp + dense linear": (
        "lgatr",
        {"sparse_gp": True, "sparse_linear": False, "subgroup": False},
    ),
    "L-GATr dense gp + sparse_linear": (
        "lgatr",
        {"sparse_gp": False, "sparse_linear": True, "subgroup": False},
    ),
    "L-GATr dense gp + dense linear": (
        "lgatr",
        {"sparse_gp": False, "sparse_linear": False, "subgroup": False},
    ),
    "L-GATr defaults (subgroup)": ("lgatr", {}),
    "gatorch from_lgatr(L-GATr defaults)": ("lgatr", {"convert": True}),
    "gatorch GATr (PGA3, distance + join)": ("gatorch", {"algebra": "PGA3", "distance": True}),
    "gatorch GATr (STA, compiled, fused products)": (
        "gatorch",
        {"algebra": "STA", "compile": True, "products": "fused"},
    ),
    "gatorch GATr (PGA3, distance + join, compiled)": (
        "gatorch",
        {"algebra": "PGA3", "distance": True, "compile": True},
    ),
    "gatorch GATr (CGA3, compiled)": ("gatorch", {"algebra": "CGA3", "compile": True}),
    "gatorch GATr (PGA3, n-body full preset, compiled)": ("nbody", {"compile": True}),
    "L-GATr dense gp + sparse_linear (compiled)": (
        "lgatr",
        {"sparse_gp": False, "sparse_linear": True, "subgroup": False, "compile": True},
    ),
}


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _build(library: str, options: dict[str, object]):  # type: ignore[no-untyped-def]
    import torch

    b, n, c, s = SHAPE["batch"], SHAPE["items"], SHAPE["mv"], SHAPE["s"]
    if library == "gatorch":
        import gatorch
        from gatorch.nets import GATr

        alg = getattr(gatorch, str(options["algebra"]))
        net = GATr(
            alg,
            in_mv_channels=c,
            out_mv_channels=c,
            hidden_mv_channels=c,
            in_s_channels=s,
            out_s_channels=s,
            hidden_s_channels=s,
            num_blocks=SHAPE["blocks"],
            num_heads=SHAPE["heads"],
            attention={"distance_features": bool(options.get("distance", False))},
            mlp={"mlp_ratio": 4, "num_layers": 2},
        )
        dim = alg.dim
        step_net = torch.compile(net, fullgraph=True, dynamic=False) if options.get("compile") else net
    elif library == "nbody":  # the n-body full-preset GATr (charged task), on its embedded inputs
        from gatorch import PGA3
        from gatorch.nets import GATr

        cfg = NBODY_FULL_GATR
        extra = cfg["pair_channels"]
        net = GATr(
            PGA3,
            in_mv_channels=3 + extra,
            out_mv_channels=1,
            hidden_mv_channels=cfg["hidden_mv_channels"],
            in_s_channels=1 + extra,
            hidden_s_channels=cfg["hidden_s_channels"],
            num_blocks=cfg["num_blocks"],
            num_heads=cfg["num_heads"],
            attention={"distance_features": True},
            mlp={"mlp_ratio": cfg["mlp_ratio"]},
        )
        step_net = torch.compile(net, fullgraph=True, dynamic=False) if options.get("compile") else net
        g = torch.Generator().manual_seed(0)
        mv = torch.randn(b, n, 3 + extra, PGA3.dim, generator=g)
        sc = torch.randn(b, n, 1 + extra, generator=g)
        return net, step_net, (mv, sc)
    else:
        from lgatr import LGATr

        net = LGATr(
            num_blocks=SHAPE["blocks"],
            in_mv_channels=c,
            out_mv_channels=c,
            hidden_mv_channels=c,
            in_s_channels=s,
            out_s_channels=s,
            hidden_s_channels=s,
            attention={"num_heads": SHAPE["heads"]},
            mlp={"mlp_ratio": 4, "num_layers_mlp": 2},
            primitives={k: v for k, v in options.items() if k not in ("compile", "convert")} or None,
        )
        dim = 16
        if options.get("convert"):  # the same function and weights as a gatorch GATr
            from gatorch.interop import from_lgatr

            net = from_lgatr(net)
        step_net = torch.compile(net) if options.get("compile") else net
    g = torch.Generator().manual_seed(0)
    mv = torch.randn(b, n, c, dim, generator=g)
    sc = torch.randn(b, n, s, generator=g)
    return net, step_net, (mv, sc)


def worker(name: str, repeats: int, warmup: int) -> dict[str, object]:
    """Time ``repeats`` training steps of one configuration (runs in a subprocess)."""
    import torch

    library, options = CONFIGS[name]
    compiled = bool(options.get("compile"))
    if compiled:  # compile from an empty inductor cache: the first step is the whole compile
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="gatorch-bench-inductor-")
    from gatorch.functional import KernelPolicy, kernel_policy

    policy = KernelPolicy(compiled=str(options.get("products", "auto")))
    net, step_net, inputs = _build(library, options)
    params = sum(p.numel() for p in net.parameters())

    def make_step(f):  # type: ignore[no-untyped-def]
        def step() -> None:
            net.zero_grad(set_to_none=True)
            with kernel_policy(policy):
                out = f(*inputs)
            loss = sum(o.square().mean() for o in (out if isinstance(out, tuple) else (out,)))
            loss.backward()  # type: ignore[union-attr]

        return step

    step = make_step(step_net)
    t0 = time.perf_counter()
    step()  # first call: builds caches (and compiles, for compiled configurations)
    first = time.perf_counter() - t0
    base = _rss_mb()
    ms = median_ms(step, repeats, warmup)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    eager_ms = None
    if compiled:  # the same net eagerly, interleaved with compiled steps (machine drift)
        eager_step = make_step(net)
        eager_step()
        e_times, c_times = [], []
        for _ in range(max(3, repeats // 2)):
            e_times.append(median_ms(eager_step, 1, 0))
            c_times.append(median_ms(step, 1, 0))
        eager_ms = statistics.median(e_times)
        ms = statistics.median(c_times)
    return {
        "name": name,
        "ms": ms,
        "eager_ms": eager_ms,
        "first_s": first,
        "peak_mb": peak - base if peak > base else 0.0,
        "params": params,
        "threads": torch.get_num_threads(),
    }


def run_config(name: str, repeats: int, warmup: int) -> dict[str, object]:
    """Run :func:`worker` for one configuration in a fresh interpreter."""
    cmd = [sys.executable, __file__, "--worker", name, "--repeats", str(repeats), "--warmup", str(warmup)]
    cmd += ["--shape", next(k for k, v in SHAPES.items() if v == SHAPE)]
    res = subprocess.run(
        cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    if res.returncode != 0:
        return {"name": name, "error": (res.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def _median_run(results: list[dict[str, object]]) -> dict[str, object]:
    """The run with the median step time of one configuration's rounds (an error if any failed)."""
    failed = [r for r in results if "error" in r]
    if failed:
        return failed[0]
    ordered = sorted(results, key=lambda r: float(r["ms"]))  # type: ignore[arg-type]
    return ordered[len(ordered) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="run every configuration this many times, interleaved, and keep the median (machine drift)",
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="3 repeats, 1 warmup step")
    parser.add_argument(
        "--compile", action="store_true", help="also time the compiled gatorch GATr (compiling takes minutes)"
    )
    parser.add_argument("--no-steerable", action="store_true", help="skip the steerable geometric product")
    parser.add_argument("--only", nargs="*", help="run only these configuration names")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument(
        "--shape", choices=sorted(SHAPES), default="bench", help="8 x 128 tokens or n-body 100 x 5"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.warmup, args.rounds = 3, 1, 1
    SHAPE.update(SHAPES[args.shape])
    if args.worker:
        print(json.dumps(worker(args.worker, args.repeats, args.warmup)))
        return

    names = list(CONFIGS) if not args.only else args.only
    if not args.compile:
        names = [n for n in names if "compiled" not in n]
    print(
        f"# GATr training step: batch {SHAPE['batch']} x {SHAPE['items']} tokens, {SHAPE['blocks']} blocks, "
        f"{SHAPE['mv']} mv + {SHAPE['s']} scalar channels, {SHAPE['heads']} heads, float32, "
        f"median of {args.repeats} steps, median of {args.rounds} interleaved rounds; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    )
    runs: dict[str, list[dict[str, object]]] = {name: [] for name in names}
    for r in range(args.rounds):  # interleaved, so a slow spell of the machine hits every configuration
        for name in names:
            print(f"  round {r + 1}/{args.rounds}: {name} ...", file=sys.stderr, flush=True)
            runs[name].append(run_config(name, args.repeats, args.warmup))
    rows = [_median_run(runs[name]) for name in names]
    lgatr = [
        r
        for r in rows
        if r["name"].startswith("L-GATr")
        and "ms" in r
        and "defaults" not in r["name"]
        and "compiled" not in r["name"]
    ]
    best = min(lgatr, key=lambda r: r["ms"]) if lgatr else None
    header = (
        "| configuration | step ms | vs best L-GATr (Pin) | vs own eager | peak MB | params "
        "| first step (compile) s |"
    )
    print(header)
    print("|" + "---|" * 7)
    for r in rows:
        if "error" in r:
            print(f"| {r['name']} | error: {r['error']} | | | | | |")
            continue
        own = f"{r['eager_ms'] / r['ms']:.2f}x ({r['eager_ms']:.1f} eager)" if r.get("eager_ms") else ""
        ratio = (
            f"{best['ms'] / r['ms']:.2f}x"
            if best and r["name"] != best["name"]
            else ("1.00x" if best else "")
        )
        print(
            f"| {r['name']} | {r['ms']:.1f} | {ratio} | {own} | {r['peak_mb']:.0f} | {r['params']} "
            f"| {r['first_s']:.1f} |"
        )
    if best:
        print(f"\nbest L-GATr (Pin) configuration: {best['name']} ({best['ms']:.1f} ms)")
    if not args.no_steerable:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_steerable import run as run_steerable  # type: ignore[import-not-found]

        print("\n# SteerableGeometricProduct vs CGENN's dense weighted-Cayley product")
        rows_s = run_steerable(
            algebras=["VGA3", "PGA3", "STA", "CGA3"],
            items=1024,
            channels=16,
            repeats=args.repeats,
            warmup=args.warmup,
        )
        keys = list(rows_s[0]) if rows_s else []
        print("| " + " | ".join(keys) + " |")
        print("|" + "---|" * len(keys))
        for r in rows_s:
            print(
                "| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r.values()) + " |"
            )


if __name__ == "__main__":
    main()
