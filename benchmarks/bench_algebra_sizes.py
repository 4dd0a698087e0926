"""What an algebra costs by dimension: tables, equivariant bases, EquiLinear, a GATr step.

For ``n = 4 .. 10`` basis vectors, for ``Cl(n, 0)`` and the degenerate ``Cl(n-1, 0, 1)``,
each in a fresh subprocess on one thread (so nothing is cached and the peak memory is the
process's own):

* ``Algebra(p, q, r)``: build time (tables, constants) and the process's peak RSS after it;
* ``alg.equivariant_basis("pin")`` and ``("spin")``: derivation time and map count;
* ``EquiLinear(alg, 16, 16)`` construction (basis already derived);
* a GATr step: ``GATr(alg, 2 blocks, 8 mv + 16 scalar channels)``, forward + backward on a
  batch of 2 sets of 32 items (median of 3 after one warm-up; where the warm-up step alone
  takes over 10 s, that step, marked ``*``).

Every measurement is capped (``--cap`` seconds per subprocess); what exceeds it is printed
as ``> cap``. Run::

    OMP_NUM_THREADS=1 python benchmarks/bench_algebra_sizes.py [--nmin 4] [--nmax 10] [--cap 600]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

_CHILD = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(1)
from gatorch import Algebra
p, q, r = map(int, sys.argv[1:4])
out = {}
t = time.perf_counter()
alg = Algebra(p, q, r)
out["build_s"] = time.perf_counter() - t
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out), flush=True)
for group in ("pin", "spin"):
    t = time.perf_counter()
    k = alg.equivariant_basis(group).shape[0]
    out[f"{group}_s"], out[f"{group}_maps"] = time.perf_counter() - t, k
    print(json.dumps(out), flush=True)
from gatorch.layers import EquiLinear
t = time.perf_counter()
EquiLinear(alg, 16, 16)
out["equilinear_s"] = time.perf_counter() - t
print(json.dumps(out), flush=True)
from gatorch.nets import GATr
torch.manual_seed(0)
net = GATr(alg, in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=8, in_s_channels=1,
           out_s_channels=1, hidden_s_channels=16, num_blocks=2)
mv = torch.randn(2, 32, 1, alg.dim)
s = torch.randn(2, 32, 1)
def step():
    o, os_ = net(mv, s)
    (o.square().mean() + os_.square().mean()).backward()
t = time.perf_counter()
step()
first = time.perf_counter() - t
if first > 10.0:  # a slow step: report the first one (marked) rather than wait for three more
    out["gatr_step_ms"], out["gatr_first_only"] = 1e3 * first, True
else:
    times = []
    for _ in range(3):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    out["gatr_step_ms"] = 1e3 * sorted(times)[1]
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out), flush=True)
"""

_COLUMNS = [
    ("build_s", "Algebra build (s)", "{:.2f}"),
    ("rss_mb", "peak RSS (MB)", "{:.0f}"),
    ("pin_s", "Pin basis (s)", "{:.2f}"),
    ("pin_maps", "Pin maps", "{}"),
    ("spin_s", "Spin basis (s)", "{:.2f}"),
    ("spin_maps", "Spin maps", "{}"),
    ("equilinear_s", "EquiLinear(16, 16) (s)", "{:.2f}"),
    ("gatr_step_ms", "GATr fwd+bwd (ms)", "{:.0f}"),
]


def measure(sig: tuple[int, int, int], cap: float) -> dict[str, float]:
    """Run the child for one signature; the last complete JSON line it printed (partial on a cap)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, *map(str, sig)],
            capture_output=True, text=True, timeout=cap, env=env, check=False,
        )
        stdout, capped = proc.stdout, False
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout or b""
        stdout, capped = raw.decode() if isinstance(raw, bytes) else raw, True
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    out = json.loads(lines[-1]) if lines else {}
    out["capped"] = capped
    return out


def torch_version() -> str:
    """The version of torch the children import (without importing it here)."""
    cmd = [sys.executable, "-c", "import torch; print(torch.__version__)"]
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nmin", type=int, default=4)
    parser.add_argument("--nmax", type=int, default=10)
    parser.add_argument("--cap", type=float, default=600.0, help="seconds per signature")
    args = parser.parse_args()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine = platform.processor() or platform.machine()
    print(f"# {when}, {machine}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"torch {torch_version()}, one thread, cap {args.cap:.0f} s")
    print("| algebra | " + " | ".join(title for _, title, _ in _COLUMNS) + " |")
    print("|---" * (len(_COLUMNS) + 1) + "|")
    for n in range(args.nmin, args.nmax + 1):
        for sig in ((n, 0, 0), (n - 1, 0, 1)):
            out = measure(sig, args.cap)
            missing = f"> {args.cap:.0f} s" if out["capped"] else "error"
            cells = [fmt.format(out[key]) if key in out else missing for key, _, fmt in _COLUMNS]
            if out.get("gatr_first_only"):
                cells[-1] += "*"
            print(f"| Cl{sig} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
