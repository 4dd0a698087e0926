"""GCAN's group action layer: per-grade action matrices against the naive per-pair sandwich.

What it measures
----------------
For each algebra, a :class:`gatorch.layers.zoo.gcan.GroupActionLinear` with ``channels ->
channels`` multivector channels (generic bivectors, so in PGA3 the versors are screw
motions) on ``items`` random float32 inputs, the median time of

* ``matrices`` (gatorch): the versors ``exp(B)``, their per-grade action blocks built once
  (two geometric products per basis blade and (output, input) pair), then one GEMM per
  grade over the batch: the layer's ``forward``;
* ``naive``: the versors ``exp(B)``, then ``V x V^-1`` for every item and every (output,
  input) pair (two geometric products per pair per item, batched, no Python loop), weighted
  per grade and summed over inputs: :func:`gatorch.functional.zoo.gcan.group_action_linear_naive`,

forward only (under ``torch.no_grad()``) and forward + backward (gradients of the inputs,
bivectors and weights), after ``warmup`` untimed calls. ``speed-up`` is ``naive time /
matrices time``; ``max_rel_err`` compares the two outputs (float32).

On a shared machine ``--threads 1`` is the steadier measurement; the load average is
printed with the table.

Run
---
::

    python benchmarks/bench_gcan.py                      # VGA3 PGA3 CGA3, 1024 items x 16 channels
    python benchmarks/bench_gcan.py --quick              # smoke run
    python benchmarks/bench_gcan.py --algebras PGA3 --items 1024 --threads 1

``run(algebras, items, channels, repeats, warmup)`` returns the rows as dicts.
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
from gatorch.functional.zoo.gcan import group_action_linear_naive, group_action_matrices
from gatorch.layers.zoo.gcan import GroupActionLinear

ALGEBRAS: dict[str, Algebra] = {"VGA3": gatorch.VGA3, "PGA3": gatorch.PGA3, "CGA3": gatorch.CGA3}
DEFAULT_ITEMS = 1024
DEFAULT_CHANNELS = 16
DEFAULT_REPEATS = 5
DEFAULT_WARMUP = 1
QUICK = {"items": 32, "channels": 4, "repeats": 2, "warmup": 1}
SEED = 0


def _time_fn(
    fn: Callable[[torch.Tensor], torch.Tensor],
    layer: torch.nn.Module,
    x: torch.Tensor,
    xs: torch.Tensor,
    grad: torch.Tensor,
    repeats: int,
    warmup: int,
) -> tuple[float, float]:
    """Median ms of ``fn(x)`` without grad, and of forward + backward (``xs`` and the layer's parameters)."""

    def forward() -> None:
        with torch.no_grad():
            fn(x)

    def forward_backward() -> None:
        layer.zero_grad(set_to_none=True)
        xs.grad = None
        fn(xs).backward(grad)

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
    """Time the layer against the naive formulation; one dict per algebra.

    Returns
    -------
    list of dict
        Keys: ``algebra, dim, items, channels, fwd_naive_ms, fwd_matrices_ms, fwd_speedup,
        fwd_build_ms`` (of the layer's forward: ``exp`` and the action matrices, independent
        of ``items``), ``fwdbwd_naive_ms, fwdbwd_matrices_ms, fwdbwd_speedup, max_rel_err``.
    """
    rows: list[dict[str, object]] = []
    for spec in algebras:
        name, alg = _resolve(spec)
        torch.manual_seed(SEED)
        layer = GroupActionLinear(alg, channels, channels)
        with torch.no_grad():
            layer.bivector.normal_(0.0, 0.5)  # generic: translations / boosts too, non-simple
        g = torch.Generator().manual_seed(SEED)
        x = torch.randn(items, channels, alg.dim, generator=g)
        grad = torch.randn(items, channels, alg.dim, generator=g)
        xs = x.clone().requires_grad_(True)

        def fast(inp: torch.Tensor, layer: GroupActionLinear = layer) -> torch.Tensor:
            return layer(inp)[0]

        def naive(inp: torch.Tensor, layer: GroupActionLinear = layer, alg: Algebra = alg) -> torch.Tensor:
            return group_action_linear_naive(alg, inp, layer.versors(), layer.weight)

        with torch.no_grad():
            ref, out = naive(x), fast(x)
        rel_err = ((out - ref).abs().max() / ref.abs().max()).item()

        times: dict[str, float] = {}
        for label, fn in (("matrices", fast), ("naive", naive)):
            fwd, fwdbwd = _time_fn(fn, layer, x, xs, grad, repeats, warmup)
            times[f"fwd_{label}"], times[f"fwdbwd_{label}"] = fwd, fwdbwd
        with torch.no_grad():
            build = _median_ms(
                lambda layer=layer, alg=alg: group_action_matrices(alg, layer.versors()), repeats, warmup
            )
        rows.append(
            {
                "algebra": name,
                "dim": alg.dim,
                "items": items,
                "channels": channels,
                "fwd_naive_ms": times["fwd_naive"],
                "fwd_matrices_ms": times["fwd_matrices"],
                "fwd_speedup": times["fwd_naive"] / times["fwd_matrices"],
                "fwd_build_ms": build,
                "fwdbwd_naive_ms": times["fwdbwd_naive"],
                "fwdbwd_matrices_ms": times["fwdbwd_matrices"],
                "fwdbwd_speedup": times["fwdbwd_naive"] / times["fwdbwd_matrices"],
                "max_rel_err": rel_err,
            }
        )
    return rows


def markdown(rows: list[dict[str, object]]) -> str:
    """The rows as a markdown table."""
    header = (
        "| algebra | dim | fwd naive ms | fwd matrices ms | fwd speed-up | of which exp + matrices ms "
        "| fwd+bwd naive ms | fwd+bwd matrices ms | fwd+bwd speed-up | max rel err |"
    )
    lines = [header, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['algebra']} | {r['dim']} | {r['fwd_naive_ms']:.2f} | {r['fwd_matrices_ms']:.2f} "
            f"| {r['fwd_speedup']:.1f}x | {r['fwd_build_ms']:.2f} | {r['fwdbwd_naive_ms']:.2f} "
            f"| {r['fwdbwd_matrices_ms']:.2f} "
            f"| {r['fwdbwd_speedup']:.1f}x | {r['max_rel_err']:.1e} |"
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
    parser.add_argument("--quick", action="store_true", help="smoke run: 32 items x 4 channels, 2 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.items, args.channels = QUICK["items"], QUICK["channels"]
        args.repeats, args.warmup = QUICK["repeats"], QUICK["warmup"]
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"# GroupActionLinear, {args.items} items x {args.channels} -> {args.channels} channels, float32, "
        f"median of {args.repeats} (warm-up {args.warmup}); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.machine()} {os.cpu_count()} CPUs, load {load:.2f}"
    )
    rows = run(args.algebras, args.items, args.channels, args.repeats, args.warmup)
    print(markdown(rows))


if __name__ == "__main__":
    main()
