"""Clifford-steerable 2-D convolution against a plain ``torch.nn.Conv2d`` of the same real size.

What it measures
----------------
``CliffordSteerableConv2d(Cl(2, 0), 16 -> 16, kernel 5)`` on a ``(8, 16, 64, 64, 4)`` float32
field (defaults), median wall times after warm-up calls:

* ``kernel build``: :meth:`~gatorch.layers.fields.steerable_conv.CliffordSteerableConvNd.build_kernel`
  alone (the kernel network on the 25 grid positions and the assembly of the structured
  ``(64, 64, 5, 5)`` real kernel), forward only and forward + backward;
* ``conv, given kernel``: ``layer(x, kernel=k)`` with a prebuilt kernel (blade axis moved
  next to the channels, one ``conv2d``, and back);
* ``full layer``: ``layer(x)``, kernel built inside, forward only (``torch.no_grad()``) and
  forward + backward (gradients of the input and every parameter);
* reference: ``torch.nn.Conv2d(16 * 4, 16 * 4, 5, padding=2)`` on ``(8, 64, 64, 64)``, the
  size of a plain (non-equivariant) Clifford convolution with a free kernel.

The ``x ref`` column divides each time by the reference time of the same mode.

Run
---
::

    python benchmarks/bench_steerable_conv.py              # defaults, all threads
    python benchmarks/bench_steerable_conv.py --threads 1  # steadier on a shared machine
    python benchmarks/bench_steerable_conv.py --quick      # smoke run (small field)

``run(...)`` returns the rows as dicts.
"""

from __future__ import annotations

import argparse
import os
import platform

import torch
from timing import median_ms

from gatorch import Algebra
from gatorch.layers.fields.steerable_conv import CliffordSteerableConv2d

SEED = 0
QUICK = {"batch": 2, "size": 16, "repeats": 2, "warmup": 1}


def run(
    batch: int = 8,
    channels: int = 16,
    size: int = 64,
    kernel_size: int = 5,
    repeats: int = 10,
    warmup: int = 2,
) -> list[dict[str, object]]:
    """Time the steerable layer's parts and the ``nn.Conv2d`` reference; one dict per row."""
    torch.manual_seed(SEED)
    alg = Algebra(2, 0)
    dim = alg.dim
    layer = CliffordSteerableConv2d(alg, channels, channels, kernel_size)
    reference = torch.nn.Conv2d(channels * dim, channels * dim, kernel_size, padding=kernel_size // 2)
    x = torch.randn(batch, channels, size, size, dim)
    x_ref = torch.randn(batch, channels * dim, size, size)

    def fwd_bwd(fn: object, inp: torch.Tensor) -> None:
        inp = inp.detach().requires_grad_(True)
        out = fn(inp)  # type: ignore[operator]
        out.square().mean().backward()

    def kernel_fwd_bwd() -> None:
        layer.build_kernel().square().mean().backward()

    with torch.no_grad():
        built = layer.build_kernel()
        t_kernel = median_ms(layer.build_kernel, repeats, warmup)
        t_given = median_ms(lambda: layer(x, kernel=built), repeats, warmup)
        t_layer = median_ms(lambda: layer(x), repeats, warmup)
        t_ref = median_ms(lambda: reference(x_ref), repeats, warmup)
    t_kernel_b = median_ms(kernel_fwd_bwd, repeats, warmup)
    t_layer_b = median_ms(lambda: fwd_bwd(layer, x), repeats, warmup)
    t_ref_b = median_ms(lambda: fwd_bwd(reference, x_ref), repeats, warmup)
    rows: list[dict[str, object]] = [
        {"what": "steerable: kernel build", "mode": "forward", "ms": t_kernel, "x ref": t_kernel / t_ref},
        {"what": "steerable: conv, given kernel", "mode": "forward", "ms": t_given, "x ref": t_given / t_ref},
        {"what": "steerable: full layer", "mode": "forward", "ms": t_layer, "x ref": t_layer / t_ref},
        {"what": "nn.Conv2d reference", "mode": "forward", "ms": t_ref, "x ref": 1.0},
        {
            "what": "steerable: kernel build",
            "mode": "fwd+bwd",
            "ms": t_kernel_b,
            "x ref": t_kernel_b / t_ref_b,
        },
        {"what": "steerable: full layer", "mode": "fwd+bwd", "ms": t_layer_b, "x ref": t_layer_b / t_ref_b},
        {"what": "nn.Conv2d reference", "mode": "fwd+bwd", "ms": t_ref_b, "x ref": 1.0},
    ]
    return rows


def print_table(rows: list[dict[str, object]], header: str) -> None:
    """Print the rows as a Markdown table under a one-line header."""
    print(header)
    print("| what | mode | ms | x ref |")
    print("|---|---|---:|---:|")
    for r in rows:
        print(f"| {r['what']} | {r['mode']} | {float(r['ms']):.2f} | {float(r['x ref']):.2f} |")  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--kernel-size", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="smoke run: small field, few repeats")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    opts = {
        "batch": args.batch,
        "channels": args.channels,
        "size": args.size,
        "kernel_size": args.kernel_size,
        "repeats": args.repeats,
        "warmup": args.warmup,
    }
    if args.quick:
        opts.update(QUICK)
    rows = run(**opts)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = (
        f"Cl(2,0), batch {opts['batch']}, {opts['channels']} -> {opts['channels']} channels, "
        f"{opts['size']} x {opts['size']}, kernel {opts['kernel_size']}, float32, "
        f"{torch.get_num_threads()} thread(s), torch {torch.__version__}, {platform.machine()}, "
        f"load {load:.1f}"
    )
    print_table(rows, header)


if __name__ == "__main__":
    main()
