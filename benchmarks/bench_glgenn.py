"""GLGENN's layers next to their CGENN counterparts, and GLGENN's product against its dense formulation.

What it measures
----------------
For each algebra, on ``items x channels`` random float32 multivectors, the median time
(forward under ``torch.no_grad()``, and forward + backward to the input and every parameter)
and the parameter count of

* ``linear``: :class:`gatorch.layers.zoo.glgenn.QTLinear` (4 weights per channel pair) against
  :class:`gatorch.layers.EquiLinear` (one per channel pair and equivariant basis map), both
  ``channels -> channels`` with bias;
* ``product``: :class:`gatorch.layers.zoo.glgenn.QTGeometricProduct` against
  :class:`gatorch.layers.SteerableGeometricProduct` (first-order term included);
* ``qt_gp``: :func:`gatorch.functional.zoo.glgenn.qt_gp` (qt weights broadcast onto the sparse
  steerable kernel) against the formulation of the GLGENN reference code (qt weights repeated
  to a ``(channels, dim, dim, dim)`` tensor, times the Cayley tensor, one einsum) in the
  "other" columns.

On a shared machine ``--threads 1`` is the steadier measurement; the load average is printed.

Run
---
::

    python benchmarks/bench_glgenn.py                     # VGA3 PGA3 CGA3 Cl(5,0), 1024 x 16
    python benchmarks/bench_glgenn.py --quick             # smoke run
    python benchmarks/bench_glgenn.py --algebras Cl5 --items 4096 --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Callable, Sequence

import torch
from timing import median_ms as _median_ms
from torch import Tensor, nn

import gatorch
from gatorch import Algebra
from gatorch.functional.zoo.glgenn import qt_gp, qt_index, qt_paths
from gatorch.layers import EquiLinear, SteerableGeometricProduct
from gatorch.layers.zoo.glgenn import QTGeometricProduct, QTLinear

ALGEBRAS: dict[str, Algebra] = {
    "VGA3": gatorch.VGA3,
    "PGA3": gatorch.PGA3,
    "CGA3": gatorch.CGA3,
    "Cl5": Algebra(5, 0, 0),
}
DEFAULT_ITEMS = 1024
DEFAULT_CHANNELS = 16
DEFAULT_REPEATS = 10
DEFAULT_WARMUP = 2
QUICK = {"items": 128, "repeats": 2, "warmup": 1}
SEED = 0


def qt_gp_dense(alg: Algebra, x: Tensor, y: Tensor, weight: Tensor) -> Tensor:
    """:func:`qt_gp` as the GLGENN reference code computes it (``dim**3`` work per channel and item)."""
    qt = qt_index(alg, x.device)
    lookup = torch.full((4, 4, 4), -1, dtype=torch.long, device=x.device)
    for n, (a, b, c) in enumerate(qt_paths(alg)):
        lookup[a, b, c] = n
    path = lookup[qt[:, None, None], qt[None, :, None], qt[None, None, :]]
    cayley = torch.as_tensor(alg.cayley(), dtype=x.dtype, device=x.device)
    full = weight[:, path.clamp(min=0)] * (path >= 0) * cayley
    return torch.einsum("...ci,cijk,...cj->...ck", x, full, y)


def _time(fn: Callable[[Tensor], Tensor], x: Tensor, repeats: int, warmup: int) -> tuple[float, float]:
    """Median ms of ``fn(x)`` without grad, and of forward + backward (``x`` and the parameters)."""
    xs = x.clone().requires_grad_(True)

    def forward() -> None:
        with torch.no_grad():
            fn(x)

    def forward_backward() -> None:
        xs.grad = None
        fn(xs).sum().backward()

    return _median_ms(forward, repeats, warmup), _median_ms(forward_backward, repeats, warmup)


def _count(obj: nn.Module | Tensor) -> int:
    """Parameters of a module, or elements of a weight tensor."""
    return obj.numel() if isinstance(obj, Tensor) else sum(p.numel() for p in obj.parameters())


def run(
    algebras: Sequence[str] = tuple(ALGEBRAS),
    items: int = DEFAULT_ITEMS,
    channels: int = DEFAULT_CHANNELS,
    repeats: int = DEFAULT_REPEATS,
    warmup: int = DEFAULT_WARMUP,
) -> list[dict[str, object]]:
    """One dict per (algebra, comparison): ``algebra, dim, what, params_glgenn, params_other,
    fwd_glgenn_ms, fwd_other_ms, fwdbwd_glgenn_ms, fwdbwd_other_ms``."""
    rows: list[dict[str, object]] = []
    for name in algebras:
        alg = ALGEBRAS[name]
        g = torch.Generator().manual_seed(SEED)
        x = torch.randn(items, channels, alg.dim, generator=g)
        y = torch.randn(items, channels, alg.dim, generator=g)
        torch.manual_seed(SEED)
        pairs: list[tuple[str, nn.Module | Tensor, nn.Module | Tensor, Callable, Callable]] = []
        lin_q, lin_c = QTLinear(alg, channels, channels), EquiLinear(alg, channels, channels)
        pairs.append(("linear", lin_q, lin_c, lambda t, m=lin_q: m(t)[0], lambda t, m=lin_c: m(t)[0]))
        gp_q, gp_c = QTGeometricProduct(alg, channels), SteerableGeometricProduct(alg, channels)
        pairs.append(("product", gp_q, gp_c, lambda t, m=gp_q: m(t)[0], lambda t, m=gp_c: m(t)[0]))
        w = torch.randn(channels, len(qt_paths(alg)), generator=g, requires_grad=True)
        pairs.append(
            (
                "qt_gp vs dense",
                w,
                w,
                lambda t, a=alg, w=w, y=y: qt_gp(a, t, y, w),
                lambda t, a=alg, w=w, y=y: qt_gp_dense(a, t, y, w),
            )
        )
        for what, mod_q, mod_c, fn_q, fn_c in pairs:
            fwd_q, fb_q = _time(fn_q, x, repeats, warmup)
            fwd_c, fb_c = _time(fn_c, x, repeats, warmup)
            rows.append(
                {
                    "algebra": name,
                    "dim": alg.dim,
                    "what": what,
                    "params_glgenn": _count(mod_q),
                    "params_other": _count(mod_c),
                    "fwd_glgenn_ms": fwd_q,
                    "fwd_other_ms": fwd_c,
                    "fwdbwd_glgenn_ms": fb_q,
                    "fwdbwd_other_ms": fb_c,
                }
            )
    return rows


def markdown(rows: list[dict[str, object]]) -> str:
    """The rows as a markdown table ("other": the CGENN layer, or the dense formulation)."""
    header = (
        "| algebra | dim | layer | params GLGENN | params other | fwd GLGENN ms | fwd other ms "
        "| fwd+bwd GLGENN ms | fwd+bwd other ms |"
    )
    lines = [header, "|" + "---|" * 9]
    for r in rows:
        lines.append(
            f"| {r['algebra']} | {r['dim']} | {r['what']} | {r['params_glgenn']} | {r['params_other']} "
            f"| {r['fwd_glgenn_ms']:.2f} | {r['fwd_other_ms']:.2f} | {r['fwdbwd_glgenn_ms']:.2f} "
            f"| {r['fwdbwd_other_ms']:.2f} |"
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
        f"# GLGENN vs CGENN layers, {args.items} items x {args.channels} channels, float32, "
        f"median of {args.repeats} (warm-up {args.warmup}); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.machine()} {os.cpu_count()} CPUs, load {load:.2f}"
    )
    print(markdown(run(args.algebras, args.items, args.channels, args.repeats, args.warmup)))


if __name__ == "__main__":
    main()
