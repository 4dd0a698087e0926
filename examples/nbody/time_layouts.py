"""Time the quick-preset GATr per grade layout: steps and validation passes, interleaved in one process.

Run from the repository root (one thread; ratios to VGA3 at all grades)::

    python -m examples.nbody.time_layouts --rounds 30

One training step is forward, backward and AdamW on ``--batch`` systems of 5 charged
particles; one validation pass is an eval-mode forward (the charge-flip average, as the
trainer evaluates) of ``--eval-batch`` systems. The nets are timed in turn within every
round, so a change in the machine's load hits them alike; the medians are reported.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch

from examples.nbody.models import build_model

#: The nets compared: name -> ``NBodyGATr`` options (the quick preset's size is added).
CASES: dict[str, dict[str, Any]] = {
    "VGA3 grades (0, 1)": {"algebra": "vga3", "grades": [0, 1]},
    "VGA3 grades (0, 1, 2)": {"algebra": "vga3", "grades": [0, 1, 2]},
    "VGA3 all grades": {"algebra": "vga3"},
    "PGA3 all grades": {},
}
#: The charged quick preset's GATr.
QUICK = {
    "hidden_mv_channels": 8,
    "hidden_s_channels": 16,
    "num_blocks": 2,
    "num_heads": 4,
    "pair_channels": 8,
}


def time_layouts(
    rounds: int,
    *,
    batch: int = 100,
    eval_batch: int = 500,
    size: dict[str, Any] | None = None,
    warmup: int = 2,
) -> dict[str, dict[str, float]]:
    """Median seconds per training step and per validation pass of each net in :data:`CASES`.

    Returns ``{name: {"parameters", "step_s", "eval_s"}}``.
    """
    if rounds < 1 or warmup < 0:
        raise ValueError(f"time_layouts: expected rounds >= 1 and warmup >= 0, got {rounds} and {warmup}")
    gen = torch.Generator().manual_seed(0)
    n = max(batch, eval_batch)
    loc, vel, target = (torch.randn(n, 5, 3, generator=gen) for _ in range(3))
    charges = torch.randint(0, 2, (n, 5), generator=gen).float() * 2 - 1
    torch.manual_seed(0)
    nets = {k: build_model("gatr", charge_symmetric=True, **(size or QUICK), **kw) for k, kw in CASES.items()}
    optims = {k: torch.optim.AdamW(m.parameters(), lr=1e-3) for k, m in nets.items()}
    steps: dict[str, list[float]] = {k: [] for k in nets}
    evals: dict[str, list[float]] = {k: [] for k in nets}
    for r in range(warmup + rounds):
        for k, net in nets.items():
            net.train()
            start = time.perf_counter()
            loss = (net(loc[:batch], vel[:batch], charges[:batch]) - target[:batch]).square().mean()
            optims[k].zero_grad()
            loss.backward()
            optims[k].step()
            mid = time.perf_counter()
            net.eval()
            with torch.no_grad():
                net(loc[:eval_batch], vel[:eval_batch], charges[:eval_batch])
            if r >= warmup:
                steps[k].append(mid - start)
                evals[k].append(time.perf_counter() - mid)
    return {
        k: {
            "parameters": float(sum(p.numel() for p in nets[k].parameters())),
            "step_s": statistics.median(steps[k]),
            "eval_s": statistics.median(evals[k]),
        }
        for k in nets
    }


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m examples.nbody.time_layouts``: see the module docstring."""
    p = argparse.ArgumentParser(
        prog="python -m examples.nbody.time_layouts", description=__doc__.split("\n")[0]
    )
    p.add_argument("--rounds", type=int, default=30, help="timed rounds (after 2 warm-up rounds)")
    p.add_argument("--batch", type=int, default=100, help="systems per training step")
    p.add_argument("--eval-batch", type=int, default=500, help="systems per validation pass")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    res = time_layouts(a.rounds, batch=a.batch, eval_batch=a.eval_batch)
    base = res["VGA3 all grades"]
    print(
        "| GATr | parameters | step (ms) | step / VGA3 all | validation pass (ms) | validation / VGA3 all |"
    )
    print("|---|---|---|---|---|---|")
    for k, r in res.items():
        print(
            f"| {k} | {int(r['parameters'])} | {1e3 * r['step_s']:.1f} | {r['step_s'] / base['step_s']:.2f}x "
            f"| {1e3 * r['eval_s']:.1f} | {r['eval_s'] / base['eval_s']:.2f}x |"
        )


if __name__ == "__main__":
    main()
