"""Layouts at growing n: what grades (0, 1, 2) of Cl(n, 0) cost to build and to run.

Usage::

    python benchmarks/bench_layouts.py            # n = 4, 6, 8, 10, 12, 16; 1 thread
    python benchmarks/bench_layouts.py --quick    # fewer repeats
    python benchmarks/bench_layouts.py --n 8 16   # chosen n only
    python benchmarks/bench_layouts.py --markdown # a table for the docs
    python benchmarks/bench_layouts.py --gatr     # also the GATr training step per layout
    python benchmarks/bench_layouts.py --gatr-n   # also the GATr step on grades (0, 1, 2) per n
    python benchmarks/bench_layouts.py --clifra   # also the restricted product against clifra

Per n, from the metric alone (the layout needs no full table):

* **algebra**: build time and peak Python/numpy memory of ``Algebra(n)`` (``tracemalloc``);
* **layout**: stored blades of grades (0, 1, 2) against ``2**n``;
* **gp table**: build time, peak Python/numpy memory of the build (``tracemalloc``) and the
  number of terms of the geometric product restricted to (0, 1, 2) x (0, 1, 2) -> (0, 1, 2);
* **basis**: build time and map count of the Pin-equivariant linear basis between the
  layouts, and of the slot plan the layer runs;
* **gp fwd**: one restricted product of ``batch * items`` items with ``channels``
  multivector channels each (eager, median);
* **linear fwd**: the layout ``EquiLinear`` kernel (:func:`equi_linear_layout`), channels
  -> channels on the same items (eager, median);
* **GATr step** (``--gatr-n``): the GATr step below on grades (0, 1, 2) of ``Cl(n, 0)``.

With ``--gatr``, the GATr step of the issue's target: one forward + backward of ``GATr``
(4 blocks, 16 mv + 32 scalar channels, 4 heads, 8 x 128 items, join off, eager, median) in
PGA3 and STA at grades (0, 1), (0, 1, 2) and the full layout, with the bytes autograd saves
for the backward pass (the training step's activation memory), each as a ratio to the full
layout, against the target ``1.25 x stored-blade fraction``. *Saved* sums the saved tensors
(a storage saved twice counts twice); *held* counts each storage behind them once.

With ``--clifra`` (needs ``pip install clifra``, which needs Python >= 3.12), the geometric
product restricted to grades G x G -> G, G = (0, 1, 2) and (0, 1), side by side with clifra's
planned product on its compact layouts (``plan_product(left=, right=, output=)``), for PGA3,
STA and Cl(n, 0), n = 4, 8, 16, on the gp fwd shape (8 x 128 items, 16 channels): first the
agreement of the product and both gradients in float64 (clifra's lanes mapped to gatorch's
blade order), then the plan build times and forward and forward + backward medians of both,
with the ratio clifra / gatorch (above 1: gatorch faster). ``--clifra-compile`` adds both
under ``torch.compile(fullgraph=True)``.

Everything runs on one thread (``torch.set_num_threads(1)``), on CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

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


def measure(n: int, repeats: int, warmup: int, step: bool = False) -> dict[str, float]:
    """The row of one n (with ``step``: also the GATr training step on the layout)."""
    metric = [1] * n
    tracemalloc.start()
    t0 = time.perf_counter()
    alg = Algebra.from_signature(metric)  # first use in this process: per-blade data only
    alg_s = time.perf_counter() - t0
    _, alg_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    lay = Layout(alg, GRADES)

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
    lin_ms = median_ms(lambda: equi_linear_layout(alg, x, weight, plan), repeats, warmup)
    step_ms = gatr_step(alg, GRADES, max(2, repeats // 4), 1)[0] if step else float("nan")
    return {
        "n": n,
        "alg_ms": 1e3 * alg_s,
        "alg_mb": alg_peak / 2**20,
        "step_ms": step_ms,
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


# -- against clifra (--clifra) ---------------------------------------------------------------------
#: Algebras of the clifra comparison: name -> (gatorch algebra or metric, clifra (p, q, r)).
CLIFRA_ALGEBRAS: dict[str, tuple[Algebra | list[int], tuple[int, int, int]]] = {
    "PGA3": (PGA3, (3, 0, 1)),
    "STA": (STA, (1, 3, 0)),
    "Cl(4,0)": ([1] * 4, (4, 0, 0)),
    "Cl(8,0)": ([1] * 8, (8, 0, 0)),
    "Cl(16,0)": ([1] * 16, (16, 0, 0)),
}
CLIFRA_GRADES = ((0, 1, 2), (0, 1))


def import_clifra() -> Any:
    """The ``clifra`` module, or ``SystemExit`` with what to install."""
    try:
        import clifra
    except ImportError:
        raise SystemExit(
            "--clifra: expected the clifra package (pip install clifra; it needs Python >= 3.12), "
            f"got no clifra in this Python {sys.version.split()[0]} ({sys.executable})"
        ) from None
    return clifra


def clifra_lanes(lay: Layout, cl_layout: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each gatorch layout blade lies in clifra's compact layout, and its sign.

    clifra orders the basis vectors +1, then -1, then degenerate (gatorch: degenerate first)
    and stores a layout's blades by ascending bitmask (gatorch: by grade, then
    lexicographic). A gatorch blade ``e_{i1 i2 ...}`` is clifra's blade of the mapped vectors
    times the sign of sorting them: ``clifra[..., idx] = sign * gatorch``.
    """
    order = [i for m in (1, -1, 0) for i, v in enumerate(lay.metric) if v == m]
    bit = {i: k for k, i in enumerate(order)}
    lane = {b: k for k, b in enumerate(cl_layout.basis_indices)}
    idx, sign = [], []
    for bm in lay.bitmaps.tolist():
        bits = [bit[i] for i in range(lay.n) if (bm >> i) & 1]
        swaps = sum(a > b for k, a in enumerate(bits) for b in bits[k + 1 :])
        idx.append(lane[sum(1 << b for b in bits)])
        sign.append(-1.0 if swaps % 2 else 1.0)
    return torch.tensor(idx), torch.tensor(sign)


def to_clifra(x: torch.Tensor, idx: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """A gatorch layout tensor ``(..., dim)`` in clifra's compact lane order."""
    out = torch.zeros_like(x)
    out[..., idx] = x * sign.to(x.dtype)
    return out


def clifra_check(lay: Layout, table: Any, op: Any, idx: torch.Tensor, sign: torch.Tensor) -> float:
    """Largest difference (float64) of the products and of both gradients, in clifra's order."""
    gen = torch.Generator().manual_seed(1)
    x, y, g = (torch.randn(4, 3, lay.dim, generator=gen, dtype=torch.float64) for _ in range(3))
    xg, yg = x.clone().requires_grad_(), y.clone().requires_grad_()
    out_g = bilinear(xg, yg, table)
    out_g.backward(g)
    xc, yc = to_clifra(x, idx, sign).requires_grad_(), to_clifra(y, idx, sign).requires_grad_()
    out_c = op.to(dtype=torch.float64)(xc, yc)
    out_c.backward(to_clifra(g, idx, sign))
    pairs = ((out_g.detach(), out_c.detach()), (xg.grad, xc.grad), (yg.grad, yc.grad))
    return max(float((to_clifra(a, idx, sign) - b).abs().max()) for a, b in pairs)


def clifra_row(
    name: str, grades: tuple[int, ...], clifra: Any, repeats: int, warmup: int, compiled: bool
) -> dict[str, Any]:
    """One algebra and grade subset: agreement, build and run times of both libraries."""
    alg, (p, q, r) = CLIFRA_ALGEBRAS[name]
    lay = Layout(alg, grades)

    t0 = time.perf_counter()
    table = layout_product_table(lay, lay, lay, "gp")
    build_g = time.perf_counter() - t0
    t0 = time.perf_counter()
    cl = clifra.make_algebra(p, q, r)
    cl_lay = cl.layout(grades)
    op = cl.plan_product(left=cl_lay, right=cl_lay, output=cl_lay)
    build_c = time.perf_counter() - t0

    idx, sign = clifra_lanes(lay, cl_lay)
    diff = clifra_check(lay, table, op, idx, sign)
    op = op.to(dtype=torch.float32)

    items, c = SHAPE["batch"] * SHAPE["items"], SHAPE["channels"]
    gen = torch.Generator().manual_seed(0)
    x, y, g = (torch.randn(items, c, lay.dim, generator=gen) for _ in range(3))
    xc, yc, gc = (to_clifra(t, idx, sign) for t in (x, y, g))

    def gatorch_gp(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return bilinear(a, b, table)

    fns = {"gatorch": gatorch_gp, "clifra": op}
    if compiled:
        torch._dynamo.reset()
        fns.update(
            {f"{k} compiled": torch.compile(f, fullgraph=True, dynamic=False) for k, f in list(fns.items())}
        )
    row: dict[str, Any] = {
        "name": name, "grades": grades, "blades": lay.dim, "terms": table.nnz,
        "clifra terms": getattr(op._kernel, "pair_count", "?"), "diff": diff, "build gatorch": 1e3 * build_g,
        "build clifra": 1e3 * build_c,
    }  # fmt: skip
    for key, fn in fns.items():
        a, b, grad = (x, y, g) if key.startswith("gatorch") else (xc, yc, gc)
        ar, br = a.clone().requires_grad_(), b.clone().requires_grad_()

        def step(fn: Any = fn, ar: torch.Tensor = ar, br: torch.Tensor = br, gr: torch.Tensor = grad) -> None:
            ar.grad = br.grad = None
            fn(ar, br).backward(gr)

        for mode, call in (("fwd", lambda fn=fn, a=a, b=b: fn(a, b)), ("fwd+bwd", step)):
            try:
                row[f"{key} {mode}"] = median_ms(call, repeats, warmup)
            except Exception as err:  # a library that does not compile: say so, keep the row
                row[f"{key} {mode}"] = f"fails ({type(err).__name__})"
    return row


def clifra_table(repeats: int, warmup: int, compiled: bool) -> None:
    """The grade-restricted geometric product, gatorch against clifra, in one run."""
    clifra = import_clifra()
    items, c = SHAPE["batch"] * SHAPE["items"], SHAPE["channels"]
    print(
        f"\nGeometric product restricted to grades G x G -> G, gatorch against clifra "
        f"{clifra.__version__}; {items} items x {c} channels, float32, 1 thread, eager"
        f"{' and compiled' if compiled else ''}; torch {torch.__version__}, Python "
        f"{sys.version.split()[0]}. Agreement: largest |difference| of the product and both "
        "gradients in float64 after mapping clifra's lane order to gatorch's."
    )
    modes = ["fwd", "fwd+bwd"]
    kinds = ["", " compiled"] if compiled else [""]
    head = ["algebra", "grades", "blades", "terms", "agree (max abs diff)", "build ms gatorch / clifra"]
    for kind in kinds:
        for mode in modes:
            head.append(f"{mode}{kind} ms gatorch / clifra (clifra / gatorch)")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name in CLIFRA_ALGEBRAS:
        for grades in CLIFRA_GRADES:
            r = clifra_row(name, grades, clifra, repeats, warmup, compiled)
            terms = f"{r['terms']}" + ("" if r["terms"] == r["clifra terms"] else f" / {r['clifra terms']}")
            line = [
                name, f"{grades}", f"{r['blades']}", terms, f"{r['diff']:.1e}",
                f"{r['build gatorch']:.1f} / {r['build clifra']:.1f}",
            ]  # fmt: skip
            for kind in kinds:
                for mode in modes:
                    gm, cm = r[f"gatorch{kind} {mode}"], r[f"clifra{kind} {mode}"]
                    if isinstance(gm, str) or isinstance(cm, str):  # one of them did not run
                        line.append(" / ".join(v if isinstance(v, str) else f"{v:.2f}" for v in (gm, cm)))
                    else:
                        line.append(f"{gm:.2f} / {cm:.2f} ({cm / gm:.2f}x)")
            print("| " + " | ".join(line) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[4, 6, 8, 10, 12, 16])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--gatr", action="store_true", help="also the GATr step per layout (PGA3, STA)")
    parser.add_argument(
        "--gatr-n", action="store_true", help="also the GATr step on grades (0, 1, 2) of every Cl(n, 0)"
    )
    parser.add_argument(
        "--clifra", action="store_true", help="also the restricted product against clifra (needs clifra)"
    )
    parser.add_argument(
        "--clifra-compile", action="store_true", help="with --clifra: also both under torch.compile"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.clifra:
        import_clifra()  # fail before the long runs, not after
    repeats, warmup = (5, 1) if args.quick else (20, 3)
    rows = [measure(n, repeats, warmup, args.gatr_n) for n in args.n]
    head = [
        "n",
        "algebra build ms",
        "algebra build MB",
        "blades / 2^n",
        "gp terms",
        "table build ms",
        "table build MB",
        "basis maps",
        "basis build ms",
        "gp fwd ms",
        "linear fwd ms",
    ] + (["GATr step ms"] if args.gatr_n else [])
    lines = []
    for r in rows:
        lines.append(
            [
                f"{r['n']}",
                f"{r['alg_ms']:.1f}",
                f"{r['alg_mb']:.1f}",
                f"{r['blades']} / {r['full']}",
                f"{r['terms']}",
                f"{r['table_ms']:.1f}",
                f"{r['table_mb']:.2f}",
                f"{r['maps']}",
                f"{r['basis_ms']:.1f}",
                f"{r['gp_ms']:.2f}",
                f"{r['lin_ms']:.2f}",
            ]
            + ([f"{r['step_ms']:.0f}"] if args.gatr_n else [])
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
            + (f"GATr step {top['step_ms'] / base['step_ms']:.1f}x " if args.gatr_n else "")
            + f"(blades {top['blades'] / base['blades']:.1f}x; 2^n {2**8}x)"
        )

    if args.gatr:
        gatr_table(*((3, 1) if args.quick else (7, 2)))

    if args.clifra:
        clifra_table(*((5, 1) if args.quick else (20, 3)), args.clifra_compile)


if __name__ == "__main__":
    main()
