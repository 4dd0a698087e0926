"""Products and GATr training steps on a CUDA GPU, gatorch next to L-GATr, as one markdown table.

Run on a machine with a GPU (the ``bench`` extra installs L-GATr)::

    python benchmarks/bench_gpu.py                      # writes gpu-benchmark.md and prints it
    python benchmarks/bench_gpu.py --out results.md --repeats 50
    python benchmarks/bench_gpu.py --no-compile         # eager rows only

What it times (CUDA events, median of ``--repeats`` after ``--warmup`` untimed calls; compile
times are the first call's wall time):

* **products**: ``2**20`` geometric products in float32, forward and forward + backward,
  for VGA3, PGA3, STA and CGA3: gatorch eager (CUDA kernel family), gatorch compiled
  (``fused`` and ``opaque``), the dense Cayley einsum, and on STA L-GATr's dense and sparse
  ``geometric_product``;
* **nets**: one training step (forward, ``mean(mv^2) + mean(s^2)``, backward) of GATr on STA
  with 4 blocks, 16 mv + 32 scalar channels, 4 heads, at 8 x 128 and 64 x 1024 tokens:
  gatorch eager and compiled, L-GATr eager (dense gp) and compiled.

Without a CUDA device it exits with a message (nothing to measure).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ALGEBRAS = ("VGA3", "PGA3", "STA", "CGA3")


def cuda_ms(fn: Callable[[], object], repeats: int, warmup: int) -> float:
    """Median time of ``fn()`` in ms, measured with CUDA events."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def first_call_s(fn: Callable[[], object]) -> float:
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def product_rows(repeats: int, warmup: int, compile_: bool) -> list[dict[str, Any]]:
    import gatorch
    from gatorch.functional import KernelPolicy, kernel_policy

    rows = []
    n = 1 << 20
    for name in ALGEBRAS:
        alg = getattr(gatorch, name)
        g = torch.Generator(device="cuda").manual_seed(0)
        x = torch.randn(n, alg.dim, device="cuda", generator=g, requires_grad=True)
        y = torch.randn(n, alg.dim, device="cuda", generator=g, requires_grad=True)
        cands: dict[str, tuple[Callable[..., torch.Tensor], KernelPolicy]] = {
            "gatorch eager (cuda kernels)": (alg.gp, KernelPolicy()),
            "dense Cayley einsum": (alg.gp_dense, KernelPolicy()),
        }
        if compile_:
            for form in ("fused", "opaque"):
                cands[f"gatorch compiled ({form})"] = (
                    torch.compile(alg.gp, fullgraph=True),
                    KernelPolicy(compiled=form),
                )
        if name == "STA":
            try:
                from lgatr.primitives.bilinear import geometric_product

                cands["L-GATr geometric_product"] = (geometric_product, KernelPolicy())
            except ImportError as err:
                print(f"L-GATr skipped: {err}", file=sys.stderr)
        for label, (fn, policy) in cands.items():

            def fwd(fn=fn, policy=policy, x=x, y=y) -> torch.Tensor:
                with torch.no_grad(), kernel_policy(policy):
                    return fn(x, y)

            def fwd_bwd(fn=fn, policy=policy, x=x, y=y) -> None:
                with kernel_policy(policy):
                    fn(x, y).sum().backward()

            first = first_call_s(fwd_bwd)
            rows.append(
                {
                    "algebra": name,
                    "implementation": label,
                    "fwd ms": cuda_ms(fwd, repeats, warmup),
                    "fwd+bwd ms": cuda_ms(fwd_bwd, repeats, warmup),
                    "first call s": first,
                }
            )
    return rows


def net_rows(repeats: int, warmup: int, compile_: bool) -> list[dict[str, Any]]:
    from gatorch import STA
    from gatorch.nets import GATr

    rows = []
    for batch, items in ((8, 128), (64, 1024)):
        g = torch.Generator(device="cuda").manual_seed(0)
        mv = torch.randn(batch, items, 16, 16, device="cuda", generator=g)
        s = torch.randn(batch, items, 32, device="cuda", generator=g)
        nets: dict[str, tuple[torch.nn.Module, bool]] = {}
        torch.manual_seed(0)
        ours = GATr(
            STA, in_mv_channels=16, out_mv_channels=16, hidden_mv_channels=16, in_s_channels=32,
            out_s_channels=32, hidden_s_channels=32, num_blocks=4, num_heads=4, mlp={"mlp_ratio": 4},
        ).cuda()  # fmt: skip
        nets["gatorch GATr (STA)"] = (ours, False)
        if compile_:
            nets["gatorch GATr (STA), compiled"] = (ours, True)
        try:
            from lgatr import LGATr

            theirs = LGATr(
                num_blocks=4, in_mv_channels=16, out_mv_channels=16, hidden_mv_channels=16,
                in_s_channels=32, out_s_channels=32, hidden_s_channels=32,
                attention={"num_heads": 4}, mlp={"mlp_ratio": 4, "num_layers_mlp": 2},
                primitives={"sparse_gp": False, "sparse_linear": False, "subgroup": False},
            ).cuda()  # fmt: skip
            nets["L-GATr (dense gp)"] = (theirs, False)
            if compile_:
                nets["L-GATr (dense gp), compiled"] = (theirs, True)
        except ImportError as err:
            print(f"L-GATr skipped: {err}", file=sys.stderr)
        for label, (net, compiled) in nets.items():
            f = torch.compile(net, fullgraph=label.startswith("gatorch")) if compiled else net

            def step(f=f, net=net, mv=mv, s=s) -> None:
                net.zero_grad(set_to_none=True)
                out_mv, out_s = f(mv, s)
                (out_mv.square().mean() + out_s.square().mean()).backward()

            first = first_call_s(step)
            torch.cuda.reset_peak_memory_stats()
            ms = cuda_ms(step, repeats, warmup)
            rows.append(
                {
                    "tokens": f"{batch} x {items}",
                    "configuration": label,
                    "step ms": ms,
                    "peak MB": torch.cuda.max_memory_allocated() / 2**20,
                    "first step s": first,
                }
            )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append(
            "| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r.values()) + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="gpu-benchmark.md")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_gpu.py: no CUDA device here; run it on a machine with a GPU")
    compile_ = not args.no_compile
    name = torch.cuda.get_device_name()
    text = (
        f"# gatorch on {name} (torch {torch.__version__})\n\n## Geometric products (2^20 pairs, float32)\n\n"
        + markdown(product_rows(args.repeats, args.warmup, compile_))
        + "\n\n## GATr training step (STA, 4 blocks, 16 mv + 32 s channels, 4 heads)\n\n"
        + markdown(net_rows(args.repeats, args.warmup, compile_))
        + "\n"
    )
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
