"""gatorch's ``GATrSlim`` next to lgatr's ``LGATrSlim``: forward and forward + backward.

Usage::

    python benchmarks/bench_slim.py              # eager, 8 x 128 items, 4 blocks, 16 v + 32 s channels
    python benchmarks/bench_slim.py --quick      # fewer repeats and rounds
    python benchmarks/bench_slim.py --compile    # also both compiled (inductor; minutes on CPU)
    python benchmarks/bench_slim.py --markdown   # a table for the docs
    python benchmarks/bench_slim.py --device cuda

Both nets are built in the same process with the same configuration and the same weights
(the gatorch net is ``from_lgatr_slim`` of the lgatr one, and the script checks that their
outputs agree), on the same inputs and thread count. "forward" is one call under
``torch.no_grad()``; "fwd+bwd" is a training step without the optimiser (zero the
gradients, forward, a squared-mean loss of both outputs, backward). The configurations run
``--rounds`` times, interleaved, in alternating order (the machine's speed drifts, and a
slow spell must not land on one net only); each number is the median over the rounds of the
per-round medians, and the ratio is gatorch's time over lgatr's, both measured in this run.
``--compile`` compiles ``GATrSlim`` with ``fullgraph=True`` and ``LGATrSlim`` with torch.compile's defaults
(``dynamic=False`` for both) from an empty inductor cache; the compile time (the first
forward + backward and the first no-grad forward) is printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import median_ms

SHAPE = {"batch": 8, "items": 128, "v": 16, "s": 32, "blocks": 4, "heads": 4}


def build(device: str) -> tuple[torch.nn.Module, torch.nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    """The lgatr net, the gatorch net with the same weights, and the inputs."""
    from lgatr import LGATrSlim  # type: ignore[import-untyped, unused-ignore]

    from gatorch.interop.lgatr_slim import from_lgatr_slim

    torch.manual_seed(0)
    c, s = SHAPE["v"], SHAPE["s"]
    ref = LGATrSlim(
        num_blocks=SHAPE["blocks"],
        in_v_channels=c,
        out_v_channels=c,
        hidden_v_channels=c,
        in_s_channels=s,
        out_s_channels=s,
        hidden_s_channels=s,
        num_heads=SHAPE["heads"],
    ).to(device)
    net = from_lgatr_slim(ref)
    g = torch.Generator().manual_seed(0)
    v = torch.randn(SHAPE["batch"], SHAPE["items"], c, 4, generator=g).to(device)
    sc = torch.randn(SHAPE["batch"], SHAPE["items"], s, generator=g).to(device)
    return ref, net, (v, sc)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def make_fns(
    model: torch.nn.Module, call: Callable, inputs: tuple, device: str
) -> tuple[Callable[[], None], Callable[[], None]]:
    """``forward()`` (no grad) and ``step()`` (forward + backward) of one net."""

    def forward() -> None:
        with torch.no_grad():
            call(*inputs)
        _sync(device)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        out_v, out_s = call(*inputs)
        (out_v.square().mean() + out_s.square().mean()).backward()
        _sync(device)

    return forward, step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="3 repeats, 1 warmup, 1 round")
    parser.add_argument("--compile", action="store_true", help="also time both nets compiled")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.warmup, args.rounds = 3, 1, 1
    if args.compile:  # an empty inductor cache: "compile s" is the whole compile time
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="gatorch-bench-slim-")

    ref, net, inputs = build(args.device)
    with torch.no_grad():
        diff = max((a - b).abs().max().item() for a, b in zip(ref(*inputs), net(*inputs), strict=True))
    configs: dict[str, tuple[torch.nn.Module, Callable]] = {
        "lgatr LGATrSlim": (ref, ref),
        "gatorch GATrSlim": (net, net),
    }
    compile_s: dict[str, float] = {}
    if args.compile:
        compiled = {
            "lgatr LGATrSlim (compiled)": (ref, torch.compile(ref, dynamic=False)),
            "gatorch GATrSlim (compiled)": (net, torch.compile(net, fullgraph=True, dynamic=False)),
        }
        for name, (model, call) in compiled.items():
            _, step = make_fns(model, call, inputs, args.device)
            t0 = time.perf_counter()
            step()
            forward, _ = make_fns(model, call, inputs, args.device)
            forward()
            compile_s[name] = time.perf_counter() - t0
        configs.update(compiled)

    fns = {name: make_fns(model, call, inputs, args.device) for name, (model, call) in configs.items()}
    times: dict[str, dict[str, list[float]]] = {name: {"fwd": [], "step": []} for name in configs}
    for k in range(args.rounds):
        order = list(fns.items()) if k % 2 == 0 else list(reversed(fns.items()))
        for name, (forward, step) in order:
            times[name]["fwd"].append(median_ms(forward, args.repeats, args.warmup))
            times[name]["step"].append(median_ms(step, args.repeats, args.warmup))
    med = {name: {k: statistics.median(v) for k, v in t.items()} for name, t in times.items()}

    def baseline(name: str) -> str:
        return "lgatr LGATrSlim (compiled)" if "compiled" in name else "lgatr LGATrSlim"

    print(
        f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, device {args.device}, "
        f"{torch.get_num_threads()} threads; batch {SHAPE['batch']} x {SHAPE['items']} items, "
        f"{SHAPE['blocks']} blocks, {SHAPE['v']} v + {SHAPE['s']} s channels, {SHAPE['heads']} heads, "
        f"float32; {args.rounds} rounds x {args.repeats} repeats"
    )
    print(f"# max |gatorch - lgatr| on the outputs: {diff:.2e}")
    rows = []
    for name, t in med.items():
        b = med[baseline(name)]
        rows.append(
            (
                name,
                f"{t['fwd']:.2f}",
                f"{t['fwd'] / b['fwd']:.2f}",
                f"{t['step']:.2f}",
                f"{t['step'] / b['step']:.2f}",
                f"{compile_s[name]:.1f}" if name in compile_s else "",
            )
        )
    header = ("net", "forward ms", "vs lgatr", "fwd+bwd ms", "vs lgatr", "compile s")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
