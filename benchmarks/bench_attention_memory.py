"""Peak memory of GATr's geometric attention: linear in the number of tokens.

What it measures
----------------
For each number of tokens ``N``, in a fresh Python process, the growth of the resident
set (peak during the step minus the resident set just before it) and the wall time of one
forward + backward pass (gradients of every weight and of the input) of::

    GATr(PGA3, in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=16,
         in_s_channels=1, out_s_channels=1, hidden_s_channels=32,
         num_blocks=1, num_heads=4, attention={"distance_features": True})

on one set of ``N`` float32 tokens (``mv: (1, N, 1, 16)``, ``s: (1, N, 1)``). Attention
that materialises the ``(batch, heads, N, N)`` logits grows by ``O(N^2)`` (12.6 GB at
16384 tokens); on torch's flash / memory-efficient kernels it grows by ``O(N)``.

The peak is the kernel's own high-water mark of the resident set (``VmHWM`` in
``/proc/self/status``, reset by writing ``5`` to ``/proc/self/clear_refs`` before the
step); where that reset is not allowed, a thread samples ``/proc/self/statm`` every
millisecond instead (``--poll`` forces it). Linux only. One process per size, so that
memory the allocator kept from a larger run does not hide the growth of a smaller one.

``--backend`` forces one :class:`torch.nn.attention.SDPBackend` (``math`` shows the
quadratic baseline; keep ``--sizes`` small with it).

Run
---
::

    python benchmarks/bench_attention_memory.py                      # N = 4096, 16384, 65536
    python benchmarks/bench_attention_memory.py --sizes 1024 4096 --backend math
    python benchmarks/bench_attention_memory.py --sizes 16384 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TypedDict

import torch

from gatorch import PGA3
from gatorch.nets import GATr

_PAGE = os.sysconf("SC_PAGE_SIZE")
_BACKENDS = ("default", "flash", "efficient", "math")


class Result(TypedDict):
    """One size's measurement."""

    growth_bytes: int
    seconds: float
    baseline_bytes: int
    method: str


def _rss_bytes() -> int:
    """Current resident set of this process, from ``/proc/self/statm``."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def _hwm_bytes() -> int:
    """Peak resident set (``VmHWM``) of this process since start or the last reset."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _reset_hwm() -> bool:
    """Reset ``VmHWM`` to the current resident set; ``False`` where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


class _Poller:
    """Samples the resident set every ``interval`` seconds in a thread and keeps the maximum."""

    def __init__(self, interval: float = 1e-3) -> None:
        self.interval, self.peak = interval, _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> _Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def _sdpa_context(backend: str) -> AbstractContextManager[object]:
    """``sdpa_kernel`` restricted to one backend, or nothing for ``"default"``."""
    if backend == "default":
        return nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    chosen = {
        "flash": SDPBackend.FLASH_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "math": SDPBackend.MATH,
    }[backend]
    return sdpa_kernel([chosen])


def _gatr() -> GATr:
    """The measured net (float32, randomly initialised)."""
    return GATr(
        PGA3,
        in_mv_channels=1,
        out_mv_channels=1,
        hidden_mv_channels=16,
        in_s_channels=1,
        out_s_channels=1,
        hidden_s_channels=32,
        num_blocks=1,
        num_heads=4,
        attention={"distance_features": True},
    )


def _step(net: GATr, mv: torch.Tensor, s: torch.Tensor) -> None:
    """One forward + backward pass (gradients of every weight and of the inputs)."""
    out_mv, out_s = net(mv, s)
    (out_mv.square().sum() + out_s.square().sum()).backward()


def measure(tokens: int, backend: str, poll: bool, seed: int = 0, warmup_tokens: int = 64) -> Result:
    """Resident-set growth (bytes) and wall time (s) of one GATr forward + backward on ``tokens`` tokens.

    Parameters
    ----------
    tokens : int
        ``N``: the input is ``mv: (1, N, 1, 16)``, ``s: (1, N, 1)``.
    backend : {"default", "flash", "efficient", "math"}
    poll : bool
        Sample ``/proc/self/statm`` in a thread instead of reading the kernel's high-water mark.
    warmup_tokens : int
        One untimed step on this many tokens first, so that one-time set-up (thread pools,
        kernel selection) counts neither in the time nor in the growth.

    Returns
    -------
    Result
    """
    torch.manual_seed(seed)
    net = _gatr()
    with _sdpa_context(backend):
        _step(net, torch.randn(1, warmup_tokens, 1, 16), torch.randn(1, warmup_tokens, 1))
    net.zero_grad(set_to_none=False)  # the gradient buffers exist before the measured step
    mv = torch.randn(1, tokens, 1, 16, requires_grad=True)
    s = torch.randn(1, tokens, 1, requires_grad=True)
    baseline = _rss_bytes()
    use_hwm = not poll and _reset_hwm()
    poller = None if use_hwm else _Poller()
    with _sdpa_context(backend), poller if poller is not None else nullcontext():
        start = time.perf_counter()
        _step(net, mv, s)
        seconds = time.perf_counter() - start
    peak = poller.peak if poller is not None else _hwm_bytes()
    return Result(
        growth_bytes=peak - baseline,
        seconds=seconds,
        baseline_bytes=baseline,
        method="VmHWM" if use_hwm else "poll",
    )


def _run_child(tokens: int, args: argparse.Namespace) -> Result | str:
    """One size in a fresh interpreter; the result, or the child's error text."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(tokens), "--backend", args.backend]
    if args.poll:
        cmd.append("--poll")
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        return tail[-1] if tail else f"exit status {proc.returncode}"
    result: Result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[4096, 16384, 65536], help="numbers of tokens"
    )
    parser.add_argument("--backend", choices=_BACKENDS, default="default", help="force one SDPA backend")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--poll", action="store_true", help="sample /proc/self/statm instead of VmHWM")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.child is not None:
        print(json.dumps(measure(args.child, args.backend, args.poll)))
        return

    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, backend {args.backend}; GATr(PGA3, 16 mv + 32 s hidden, "
        "1 block, 4 heads, distance features), forward + backward, float32, one set of N tokens\n"
    )
    print("| tokens | time (s) | peak RSS growth (MB) | MB per 1k tokens | measured by |")
    print("|---:|---:|---:|---:|:---|")
    for n in args.sizes:
        res = _run_child(n, args)
        if isinstance(res, str):
            print(f"| {n} | failed | {res[:80]} | | |", flush=True)
            continue
        mb = res["growth_bytes"] / 2**20
        print(
            f"| {n} | {res['seconds']:.2f} | {mb:.0f} | {mb / (n / 1000):.1f} | {res['method']} |", flush=True
        )
    print("\nMB = 2**20 bytes; growth = peak resident set during the step minus the resident set before it.")


if __name__ == "__main__":
    main()
