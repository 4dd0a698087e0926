"""CSMPN's hot path: the Rips lift, the simplex embedding, the message layers; CliffordGNN alongside.

What it measures
----------------
On a batch of point clouds (the convex-hull task of ``examples/zoo/csmpn_hull.py``: 16
standard-normal points in R^5, Cl(5, 0, 0), one position vector per point), the median
time of

* ``rips_lift`` of the batch (radius graph, triangles, boundary and adjacency relations);
* CSMPN forward, split into the simplex embedding (every ``k``-simplex through ``k``
  CliffordMLPs for each of its ``(k + 1)!`` vertex orderings) and the rest (message
  layers and readout), and forward + backward of the whole net;
* CliffordGNN (CGENN style) forward and forward + backward on the fully connected graph
  of the same clouds,

after ``warmup`` untimed calls, float32. The work of CSMPN grows with the number of
cells and relations, printed with the table: triangles cost ``6 x 2`` CliffordMLP
evaluations each in the embedding, and each relation one message-network evaluation per
layer. On a shared machine, use ``--threads 1``; the load average is printed.

Run
---
::

    python benchmarks/bench_csmpn.py                  # 32 clouds, radius 2.0
    python benchmarks/bench_csmpn.py --quick          # smoke run
    python benchmarks/bench_csmpn.py --batch 64 --radius 2.5 --hidden 8 --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Callable, Sequence

import torch
from timing import median_ms as _median_ms

from gatorch import Algebra
from gatorch.nets.csmpn import CSMPN
from gatorch.nets.gnn import CliffordGNN
from gatorch.nets.simplicial import rips_lift

ALG = Algebra(5, 0, 0)
POINTS = 16
QUICK = {"batch": 4, "repeats": 2, "warmup": 1}


def run(
    batch: int, radius: float, hidden: int, hidden_s: int, layers: int, repeats: int, warmup: int
) -> dict:
    """Time the pieces on ``batch`` clouds; returns the timings (ms) and the complex's sizes."""
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(batch, POINTS, ALG.n, generator=g)
    pos = pos - pos.mean(dim=1, keepdim=True)
    mv = torch.zeros(batch * POINTS, 1, ALG.dim)
    mv[:, 0, ALG.grade_slice(1)] = pos.reshape(-1, ALG.n)
    config = dict(
        in_mv_channels=1,
        out_mv_channels=1,
        hidden_mv_channels=hidden,
        out_s_channels=1,
        hidden_s_channels=hidden_s,
        num_layers=layers,
    )
    torch.manual_seed(0)
    csmpn = CSMPN(ALG, max_dim=2, **config)
    gnn = CliffordGNN(ALG, **config)
    cx = rips_lift(pos, radius=radius)
    pairs = torch.tensor([(j, i) for i in range(POINTS) for j in range(POINTS) if i != j]).t()
    edges = torch.cat([pairs + b * POINTS for b in range(batch)], dim=1)
    empty = mv.new_zeros(mv.shape[0], 0)

    def embed() -> None:
        with torch.no_grad():
            for k, simplices in enumerate(cx.simplices):
                csmpn.embed[k](mv, empty, simplices)

    def forward(net: torch.nn.Module, *args: object) -> Callable[[], object]:
        def call() -> None:
            with torch.no_grad():
                net(*args)

        return call

    def step(net: torch.nn.Module, *args: object) -> Callable[[], object]:
        def call() -> None:
            net.zero_grad(set_to_none=True)
            _, s = net(*args)
            s.sum().backward()

        return call

    timings = {
        "rips_lift": _median_ms(lambda: rips_lift(pos, radius=radius), repeats, warmup),
        "CSMPN embedding (fwd)": _median_ms(embed, repeats, warmup),
        "CSMPN forward": _median_ms(forward(csmpn, mv, None, cx), repeats, warmup),
        "CSMPN forward + backward": _median_ms(step(csmpn, mv, None, cx), repeats, warmup),
        "CliffordGNN forward": _median_ms(forward(gnn, mv, None, edges), repeats, warmup),
        "CliffordGNN forward + backward": _median_ms(step(gnn, mv, None, edges), repeats, warmup),
    }
    sizes = {"cells": cx.counts, "relations": {k: int(v.shape[1]) for k, v in cx.relations.items()}}
    return {"timings": timings, "sizes": sizes, "graph_edges": int(edges.shape[1])}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32, help="point clouds per batch")
    parser.add_argument("--radius", type=float, default=2.0, help="Rips radius")
    parser.add_argument("--hidden", type=int, default=4, help="hidden multivector channels")
    parser.add_argument("--hidden-s", type=int, default=8, help="hidden scalar channels")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    result = run(args.batch, args.radius, args.hidden, args.hidden_s, args.layers, args.repeats, args.warmup)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, load {load:.2f}; Cl(5,0,0), "
        f"{args.batch} clouds x {POINTS} points, {args.hidden} mv + {args.hidden_s} scalar channels, "
        f"{args.layers} layers, float32"
    )
    cells, rel = result["sizes"]["cells"], result["sizes"]["relations"]
    print(
        f"complex at radius {args.radius}: cells per dimension {cells}, relations {rel}; "
        f"CliffordGNN graph: {result['graph_edges']} edges"
    )
    width = max(len(k) for k in result["timings"])
    print(f"{'step':<{width}}  {'median ms':>10}")
    for name, ms in result["timings"].items():
        print(f"{name:<{width}}  {ms:>10.1f}")


if __name__ == "__main__":
    main()
