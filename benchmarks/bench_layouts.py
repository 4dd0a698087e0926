"""Layouts at growing n: what grades (0, 1, 2) of Cl(n, 0) cost to build and to run.

Usage::

    python benchmarks/bench_layouts.py            # n = 4, 6, 8, 10, 12, 16; 1 thread
    python benchmarks/bench_layouts.py --quick    # fewer repeats
    python benchmarks/bench_layouts.py --n 8 16   # chosen n only
    python benchmarks/bench_layouts.py --markdown # a table for the docs
    python benchmarks/bench_layouts.py --gatr     # also the GATr training step per layout

Per n, from the metric alone (the layout needs no full table):

* **layout**: stored blades of grades (0, 1, 2) against ``2**n``;
* **gp table**: build time, peak Python/numpy memory of the build (``tracemalloc``) and the
  number of terms of the geometric product restricted to (0, 1, 2) x (0, 1, 2) -> (0, 1, 2);
* **basis**: build time and map count of the Pin-equivariant linear basis between the
  layouts, and of the slot plan the layer runs;
* **gp fwd**: one restricted product of ``batch * items`` items with ``channels``
  multivector channels each (eager, median);
* **linear fwd**: the layout ``EquiLinear`` kernel (:func:`equi_linear_layout`), channels
  -> channels on the same items (eager, median).

With ``--gatr``, the GATr step of the issue's target: one forward + backward of ``GATr``
(4 blocks, 16 mv + 32 scalar channels, 4 heads, 8 x 128 items, join off, eager, median) in
PGA3 and STA at grades (0, 1), (0, 1, 2) and the full layout, with the bytes autograd saves
for the backward pass (the training step's activation memory), each as a ratio to the full
layout, against the target ``1.25 x stored-blade fraction``. *Saved* sums the saved tensors
(a storage saved twice counts twice); *held* counts each storage behind them once.

Everything runs on one thread (``torch.set_num_threads(1)``), on CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import median_ms

from gatorch import PGA3, STA, Algebra
from gatorch.algebras.layout import Layout, layout_equivariant_basis, layout_product_table
from gatorch.functional.bilinear import bilinear
from gatorch.functional.linear import equi_linear_layout, layout_linear_plan
from gatorch.nets import GATr

SHAPE = {"batch": 8, "items": 128, "channels": 16}
GRADES = (0, 1, 2)


def measure(n: int, repeats: int, warmup: int) -> dict[str, float]:
    """The row of one n."""
    metric = [1] * n
    lay = Layout(metric, GRADES)

    tracemalloc.start()
    t0 = time.perf_counter()
    table = layout_product_table(lay, lay, lay, "gp")
    table_s = time.perf_counter() - t0
    _, table_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    t0 = time.perf_counter()
    basis = layout_equivariant_basis(lay, lay, "pin")
    plan = layout_linear_plan(lay, lay, "pin")
    basis_s = time.perf_counter() - t0

    items, c = SHAPE["batch"] * SHAPE["items"], SHAPE["channels"]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(items, c, lay.dim, generator=gen)
    y = torch.randn(items, c, lay.dim, generator=gen)
    bilinear(x, y, table)  # builds the table's index tensors once
    gp_ms = median_ms(lambda: bilinear(x, y, table), repeats, warmup)

    weight = torch.randn(c, c, plan.num_maps, generator=gen)
    alg = Algebra.from_signature(metric)  # its store holds the plan's index tensors
    lin_ms = median_ms(lambda: equi_linear_layout(alg, x, weight, plan), repeats, warmup)
    return {
        "n": n,
        "blades": lay.dim,
        "full": 2**n,
        "terms": table.nnz,
        "table_ms": 1e3 * table_s,
        "table_mb": table_peak / 2**20,
        "maps": basis.num_maps,
        "basis_ms": 1e3 * basis_s,
        "gp_ms": gp_ms,
        "lin_ms": lin_ms,
    }


GATR = {"blocks": 4, "mv": 16, "s": 32, "heads": 4, "batch": 8, "items": 128}


def gatr_step(
    alg: Algebra, grades: tuple[int, ...] | None, repeats: int, warmup: int
) -> tuple[float, int, int]:
    """Median ms of one GATr forward + backward, the bytes autograd saves for it, and those it holds.

    *Saved*: the sum over saved tensors (a storage saved twice counts twice). *Held*: the
    distinct storages behind them, each once: the activation memory the backward pass keeps.
    """
    lay = None if grades is None else Layout(alg, grades)
    dim = alg.dim if lay is None else lay.dim
    torch.manual_seed(0)
    net = GATr(
        alg,
        in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=GATR["mv"],
        in_s_channels=1, out_s_channels=1, hidden_s_channels=GATR["s"],
        num_blocks=GATR["blocks"], num_heads=GATR["heads"], mlp={"join": False}, layout=lay,
    )  # fmt: skip
    mv = torch.randn(GATR["batch"], GATR["items"], 1, dim)
    s = torch.randn(GATR["batch"], GATR["items"], 1)

    def step() -> None:
        out, out_s = net(mv, s)
        (out.square().mean() + out_s.square().mean()).backward()

    saved = 0
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += t.numel() * t.element_size()
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return median_ms(step, repeats, warmup), saved, sum(storages.values())


def gatr_table(repeats: int, warmup: int) -> None:
    """The GATr step per layout in PGA3 and STA, as ratios to the full layout."""
    print(
        f"\nGATr step (forward + backward; {GATR['blocks']} blocks, {GATR['mv']} mv + {GATR['s']} s "
        f"channels, {GATR['batch']} x {GATR['items']} items, join off), 1 thread"
    )
    head = "algebra | grades | blades | time ms | time / full | saved MB | saved / full | held / full"
    print(f"| {head} | target (1.25 x blades / 2^n) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, alg in (("PGA3", PGA3), ("STA", STA)):
        full = gatr_step(alg, None, repeats, warmup)
        for grades in ((0, 1), (0, 1, 2), None):
            ms, saved, held = full if grades is None else gatr_step(alg, grades, repeats, warmup)
            blades = alg.dim if grades is None else Layout(alg, grades).dim
            target = 1.25 * blades / alg.dim
            t_ratio, m_ratio, h_ratio = ms / full[0], saved / full[1], held / full[2]
            met = max(t_ratio, m_ratio, h_ratio) <= target
            verdict = "reference" if grades is None else "met" if met else "missed"
            print(
                f"| {name} | {'full' if grades is None else grades} | {blades} / {alg.dim} | {ms:.0f} | "
                f"{t_ratio:.2f} | {saved / 2**20:.0f} | {m_ratio:.2f} | {h_ratio:.2f} | "
                f"{target:.2f} ({verdict}) |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[4, 6, 8, 10, 12, 16])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--gatr", action="store_true", help="also the GATr step per layout (PGA3, STA)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    repeats, warmup = (5, 1) if args.quick else (20, 3)
    rows = [measure(n, repeats, warmup) for n in args.n]
    head = [
        "n",
        "blades / 2^n",
        "gp terms",
        "table build ms",
        "table build MB",
        "basis maps",
        "basis build ms",
        "gp fwd ms",
        "linear fwd ms",
    ]
    lines = []
    for r in rows:
        lines.append(
            [
                f"{r['n']}",
                f"{r['blades']} / {r['full']}",
                f"{r['terms']}",
                f"{r['table_ms']:.1f}",
                f"{r['table_mb']:.2f}",
                f"{r['maps']}",
                f"{r['basis_ms']:.1f}",
                f"{r['gp_ms']:.2f}",
                f"{r['lin_ms']:.2f}",
            ]
        )
    print(
        f"Cl(n, 0), grades {GRADES}; {SHAPE['batch']} x {SHAPE['items']} items, {SHAPE['channels']} "
        f"channels; torch {torch.__version__}, 1 thread"
    )
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]
        print("  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True)))
        for line in lines:
            print("  ".join(v.rjust(w) for v, w in zip(line, widths, strict=True)))
    base = next((r for r in rows if r["n"] == 8), None)
    top = next((r for r in rows if r["n"] == 16), None)
    if base and top:
        print(
            f"n = 16 / n = 8: terms {top['terms'] / base['terms']:.1f}x, gp fwd "
            f"{top['gp_ms'] / base['gp_ms']:.1f}x, linear fwd {top['lin_ms'] / base['lin_ms']:.1f}x "
            f"(blades {top['blades'] / base['blades']:.1f}x; 2^n {2**8}x)"
        )

    if args.gatr:
        gatr_table(*((3, 1) if args.quick else (7, 2)))


if __name__ == "__main__":
    main()
