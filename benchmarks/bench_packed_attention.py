"""Packed (jagged) geometric attention against the dense block-diagonal mask and padding to the max size.

What it measures
----------------
``num_sets`` sets (default 64) of seeded random sizes between ``--min-size`` and
``--max-size`` items (default 10 to 200), in PGA3 with 4 heads, 8 multivector and 16 scalar
channels per head and the distance features, float32 — the attention call of one GATr
block on that batch. For each way of running it, in a fresh Python process, the wall time
(median) and the peak memory of the forward pass and of forward + backward (gradients of
every input):

* ``packed``: :func:`packed_geometric_attention`, default backend and options (on CPU:
  ``"padded"`` with 4 buckets, the sets sorted by size into 4 groups, each padded to its
  own largest set, with a key-padding mask);
* ``packed-1-bucket``: the same padded to one common length, ``(num_sets, heads,
  max_items, width)`` (what runs under ``torch.compile`` and on CUDA);
* ``packed-nested``: the same on torch's nested jagged tensors (``backend="nested"``);
* ``block-diagonal``: the sets packed along one items axis and a dense
  ``(N, N)`` block-diagonal mask (:func:`block_diagonal_mask`; ``backend="dense"``), the
  ``O(N^2)`` baseline;
* ``pad-to-max``: the inputs themselves padded to ``(num_sets, heads, max_size, ...)``
  and :func:`geometric_attention` with a ``(num_sets, 1, 1, max_size)`` key-padding mask.

Peak memory: the high-water mark of the tensor memory torch holds during one step, above
what it held before (the inputs): on CPU replayed from the allocation / free events of
:mod:`torch.profiler` (``profile_memory=True``), on CUDA ``torch.cuda.max_memory_allocated``.
It counts what the step allocates (features, padding, logits or masks, saved activations,
gradients), not allocator caching. One process per (method, pass).

Run
---
::

    OMP_NUM_THREADS=1 python benchmarks/bench_packed_attention.py --threads 1
    python benchmarks/bench_packed_attention.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import median_ms

from gatorch import PGA3
from gatorch.functional.attention import (
    feature_layout,
    geometric_attention,
    offsets_from_sizes,
    packed_geometric_attention,
)

METHODS = ("packed", "packed-1-bucket", "packed-nested", "block-diagonal", "pad-to-max")
PASSES = ("forward", "forward+backward")
HEADS, MV_PER_HEAD, S_PER_HEAD = 4, 8, 16


class Result(TypedDict):
    """One (method, pass) measurement."""

    ms: float
    peak_bytes: int
    method: str


def _profiled_peak_bytes(fn: Callable[[], object]) -> int:
    """Peak of the bytes torch holds on the CPU during ``fn()``, above what it held before.

    Replays the allocation and free events of :mod:`torch.profiler` (``profile_memory=True``)
    in order: the exact high-water mark of tensor memory, free of allocator effects.
    """
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities, profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    current = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        if e.device_type() == torch.autograd.DeviceType.CPU:
            current += e.nbytes()
            peak = max(peak, current)
    return peak


def set_sizes(num_sets: int, low: int, high: int, seed: int) -> list[int]:
    """Seeded random set sizes, uniform in ``[low, high]``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, high + 1, (num_sets,), generator=g).tolist()


def _inputs(method: str, sizes: list[int], device: str, grad: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The attention inputs of one method and the keyword arguments of its call."""
    g = torch.Generator().manual_seed(1)
    total, longest = sum(sizes), max(sizes)
    packed = {
        "q_mv": torch.randn(1, HEADS, total, MV_PER_HEAD, 16, generator=g),
        "k_mv": torch.randn(1, HEADS, total, MV_PER_HEAD, 16, generator=g),
        "v_mv": torch.randn(1, HEADS, total, MV_PER_HEAD, 16, generator=g),
        "q_s": torch.randn(1, HEADS, total, S_PER_HEAD, generator=g),
        "k_s": torch.randn(1, HEADS, total, S_PER_HEAD, generator=g),
        "v_s": torch.randn(1, HEADS, total, S_PER_HEAD, generator=g),
    }
    kwargs: dict[str, Any] = {"distance": True, "layout": feature_layout(PGA3)}
    if method == "pad-to-max":  # the data stored padded: (num_sets, heads, longest, ...)
        labels = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
        pos = torch.arange(total) - offsets_from_sizes(sizes)[labels]
        x = {}
        for name, t in packed.items():
            out = t.new_zeros(len(sizes), HEADS, longest, *t.shape[3:])
            out[labels, :, pos] = t[0].transpose(0, 1)
            x[name] = out
        valid = torch.arange(longest)[None, :] < torch.tensor(sizes)[:, None]
        kwargs["attn_mask"] = valid[:, None, None, :].to(device)
    else:
        x = packed
        kwargs["offsets"] = offsets_from_sizes(sizes, device=device)
        kwargs["max_items"] = longest
        kwargs["backend"] = {
            "packed": "auto",
            "packed-1-bucket": "padded",
            "packed-nested": "nested",
            "block-diagonal": "dense",
        }[method]
        if method == "packed-1-bucket":
            kwargs["buckets"] = 1
    return {n: t.to(device).requires_grad_(grad) for n, t in x.items()}, kwargs


def measure(method: str, pass_: str, sizes: list[int], device: str, repeats: int) -> Result:
    """Median time (ms) and peak memory growth (bytes) of one pass of one method."""
    grad = pass_ == "forward+backward"
    x, kwargs = _inputs(method, sizes, device, grad)
    fn = geometric_attention if method == "pad-to-max" else packed_geometric_attention

    def step() -> None:
        with torch.set_grad_enabled(grad):
            mv, s = fn(PGA3, **x, **kwargs)
            if grad:
                (mv.square().sum() + s.square().sum()).backward()
                for t in x.values():
                    t.grad = None
        if device == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up: thread pools, kernel selection
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        peak, how = torch.cuda.max_memory_allocated() - before, "cuda allocator"
    else:
        peak, how = _profiled_peak_bytes(step), "torch.profiler"
    ms = median_ms(step, repeats=repeats, warmup=0)
    return Result(ms=ms, peak_bytes=peak, method=how)


def _child(args: argparse.Namespace, method: str, pass_: str) -> Result | str:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        method,
        pass_,
        "--num-sets",
        str(args.num_sets),
        "--min-size",
        str(args.min_size),
        "--max-size",
        str(args.max_size),
        "--seed",
        str(args.seed),
        "--device",
        args.device,
        "--threads",
        str(args.threads),
        "--repeats",
        str(args.repeats),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        return tail[-1] if tail else f"exit status {proc.returncode}"
    result: Result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-sets", type=int, default=64)
    parser.add_argument("--min-size", type=int, default=10)
    parser.add_argument("--max-size", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = set_sizes(args.num_sets, args.min_size, args.max_size, args.seed)

    if args.child is not None:
        print(json.dumps(measure(args.child[0], args.child[1], sizes, args.device, args.repeats)))
        return

    total, longest = sum(sizes), max(sizes)
    print(
        f"torch {torch.__version__}, {args.device} ({platform.processor() or platform.machine()}), "
        f"{torch.get_num_threads()} threads; PGA3, {HEADS} heads x ({MV_PER_HEAD} mv + {S_PER_HEAD} s) "
        f"channels, distance features, float32; {len(sizes)} sets of {min(sizes)}..{longest} items "
        f"(seed {args.seed}): N = {total} items, sum n_i^2 = {sum(n * n for n in sizes)}, "
        f"N^2 = {total * total}, sets x max^2 = {len(sizes) * longest * longest}\n"
    )
    results: dict[tuple[str, str], Result | str] = {}
    for method in args.methods:
        for pass_ in PASSES:
            results[method, pass_] = _child(args, method, pass_)
    print("| method | pass | time (ms) | x packed | peak (MB) | x packed | measured by |")
    print("|:---|:---|---:|---:|---:|---:|:---|")
    for pass_ in PASSES:
        ref = results.get(("packed", pass_))
        for method in args.methods:
            res = results[method, pass_]
            if isinstance(res, str):
                print(f"| {method} | {pass_} | failed: {res[:80]} | | | | |")
                continue
            mb = res["peak_bytes"] / 2**20
            t_ratio = m_ratio = ""
            if isinstance(ref, dict):
                t_ratio = f"{res['ms'] / ref['ms']:.2f}"
                m_ratio = f"{res['peak_bytes'] / max(ref['peak_bytes'], 1):.2f}"
            cells = [method, pass_, f"{res['ms']:.1f}", t_ratio, f"{mb:.0f}", m_ratio, res["method"]]
            print("| " + " | ".join(cells) + " |")
    print(
        "\nMB = 2**20 bytes; peak = high-water mark of tensor memory during one step above the inputs "
        "(torch.profiler memory events on CPU, torch.cuda.max_memory_allocated on CUDA)."
    )


if __name__ == "__main__":
    main()
