"""Layers on multivector fields: gatorch next to cliffordlayers, time and peak memory.

Usage::

    python benchmarks/bench_fields.py                      # every row, 3 interleaved rounds
    python benchmarks/bench_fields.py --threads 1 --rounds 1
    python benchmarks/bench_fields.py --only "gatorch CliffordConv2d Cl(2,0)" \
        "cliffordlayers CliffordConv2d g=[1, 1]"
    python benchmarks/bench_fields.py --list               # the registered rows

What it measures
----------------
For every row (a layer and its input, float32) and each of two modes, in a fresh Python
process:

* ``forward``: one forward pass under ``torch.no_grad()`` (inference);
* ``forward+backward``: forward, ``out.square().mean()``, backward (gradients of the weights
  and of the input).

Time is the median over ``--repeats`` calls after ``--warmup`` ones. The time ratio of a
gatorch row to its cliffordlayers peer is measured in the gatorch row's process with the two
layers' calls interleaved (so that the machine's drift and other load hit both alike), and
the median over the rounds is printed. Peak memory is the growth
of the resident set during the first full-size call (``VmHWM`` after a reset through
``/proc/self/clear_refs``, else a thread sampling ``/proc/self/statm``), after one call on a
small grid has done the one-time set-up (thread pools, kernel selection); tracemalloc does not
see torch's allocations. Configurations run ``--rounds`` times, interleaved, and each cell is
the round with the median time (the machine's speed drifts). Rows that share a ``pair`` key
are compared in the same run: the ratio columns are gatorch / cliffordlayers (time: below 1
is faster; memory: below 1 is less).

Shapes: 2-D rows batch 8, 16 -> 16 channels, 64 x 64, kernel 3, padding 1; 3-D rows batch 2,
16 -> 16 channels, 16^3, kernel 3, padding 1.

Adding a row
------------
Write a builder ``() -> (module, input)`` (float32, built inside the worker process, so import
optional packages inside it) and register it::

    register(Row("gatorch CliffordSpectralConv2d Cl(2,0)", "gatorch", "spectral2d Cl(2,0)", _ours))
    register(Row("cliffordlayers CliffordSpectralConv2d g=[1, 1]", "cliffordlayers", "spectral2d Cl(2,0)",
                 _theirs))

Rows with the same ``pair`` are compared (ratio of the ``gatorch`` row to the
``cliffordlayers`` row); a row without a peer has ``pair=None``. A builder may raise
``ImportError`` when an optional package is missing: the row then prints as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import median_ms  # noqa: E402

MODES = ("forward", "forward+backward")
SHAPE_2D = {"batch": 8, "channels": 16, "size": 64, "kernel": 3}
SHAPE_3D = {"batch": 2, "channels": 16, "size": 16, "kernel": 3}
#: Grid side of the untimed set-up call (small, so that it pre-allocates nothing of the real size).
WARMUP_SIZE = 8


@dataclass(frozen=True)
class Row:
    """One benchmarked layer.

    Attributes
    ----------
    name : str
        Printed label, unique; ``--only`` selects by it.
    library : str
        ``"gatorch"``, ``"cliffordlayers"`` or another peer.
    pair : str or None
        Rows with the same key are compared (gatorch / cliffordlayers ratios).
    build : callable
        ``build(size) -> (module, input)`` in float32, the input on a grid of side ``size``
        (``None``: the row's full size). Runs in the worker process.
    """

    name: str
    library: str
    pair: str | None
    build: Callable[[int | None], tuple[Any, Any]]


#: The registry: name -> row, in print order.
ROWS: dict[str, Row] = {}


def register(row: Row) -> None:
    """Add a row to :data:`ROWS` (names are unique)."""
    if row.name in ROWS:
        raise ValueError(f"bench_fields: a row named {row.name!r} is already registered")
    ROWS[row.name] = row


# -- builders ---------------------------------------------------------------------------------------
def _field(shape: dict[str, int], spatial: int, dim: int, size: int | None) -> Any:
    import torch

    side = shape["size"] if size is None else size
    g = torch.Generator().manual_seed(0)
    return torch.randn(shape["batch"], shape["channels"], *([side] * spatial), dim, generator=g)


def _gatorch_conv(signature: list[int], spatial: int, rotation: bool = False) -> Callable[[int | None], Any]:
    def build(size: int | None) -> tuple[Any, Any]:
        import torch

        from gatorch import Algebra
        from gatorch.layers.fields.conv import CliffordConv2d, CliffordConv3d

        torch.manual_seed(0)
        shape = SHAPE_2D if spatial == 2 else SHAPE_3D
        alg = Algebra.from_signature(signature)
        cls = CliffordConv2d if spatial == 2 else CliffordConv3d
        c, k = shape["channels"], shape["kernel"]
        layer = cls(alg, c, c, k, padding=k // 2, rotation=rotation)
        return layer, _field(shape, spatial, alg.dim, size)

    return build


def _cliffordlayers_conv(
    signature: list[int], spatial: int, rotation: bool = False
) -> Callable[[int | None], Any]:
    def build(size: int | None) -> tuple[Any, Any]:
        import importlib

        import torch

        conv: Any = importlib.import_module("cliffordlayers.nn.modules.cliffordconv")
        torch.manual_seed(0)
        shape = SHAPE_2D if spatial == 2 else SHAPE_3D
        c, k = shape["channels"], shape["kernel"]
        if spatial == 2:
            layer = conv.CliffordConv2d(signature, c, c, k, padding=k // 2, rotation=rotation)
        else:
            layer = conv.CliffordConv3d(signature, c, c, k, padding=k // 2)
        return layer, _field(shape, spatial, 2 ** len(signature), size)

    return build


for _sig, _label in (([1, 1], "Cl(2,0)"), ([-1, -1], "Cl(0,2)")):
    register(Row(f"gatorch CliffordConv2d {_label}", "gatorch", f"conv2d {_label}", _gatorch_conv(_sig, 2)))
    register(
        Row(
            f"cliffordlayers CliffordConv2d g={_sig}",
            "cliffordlayers",
            f"conv2d {_label}",
            _cliffordlayers_conv(_sig, 2),
        )
    )
register(
    Row(
        "gatorch CliffordConv2d Cl(0,2) rotation",
        "gatorch",
        "conv2d rotation",
        _gatorch_conv([-1, -1], 2, True),
    )
)
register(
    Row(
        "cliffordlayers CliffordConv2d g=[-1, -1] rotation",
        "cliffordlayers",
        "conv2d rotation",
        _cliffordlayers_conv([-1, -1], 2, True),
    )
)
register(Row("gatorch CliffordConv3d Cl(3,0)", "gatorch", "conv3d Cl(3,0)", _gatorch_conv([1, 1, 1], 3)))
register(
    Row(
        "cliffordlayers CliffordConv3d g=[1, 1, 1]",
        "cliffordlayers",
        "conv3d Cl(3,0)",
        _cliffordlayers_conv([1, 1, 1], 3),
    )
)
# no peer: a 3-D algebra on a 2-D grid (cliffordlayers ties the algebra to the grid)
register(Row("gatorch CliffordConv2d Cl(3,0) on a 2-D grid", "gatorch", None, _gatorch_conv([1, 1, 1], 2)))

# the spectral layers' rows (2-D Cl(2,0) and Cl(0,2), 3-D Cl(3,0)): benchmarks/bench_fields_fourier.py
from bench_fields_fourier import register_rows  # noqa: E402

register_rows(register, Row)


# -- measurement (worker process) -------------------------------------------------------------------
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def _hwm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


class _Poller:
    """Samples the resident set every millisecond in a thread and keeps the maximum."""

    def __init__(self) -> None:
        self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(1e-3)

    def __enter__(self) -> _Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def worker(name: str, mode: str, repeats: int, warmup: int) -> dict[str, object]:
    """Time and peak memory of one row in one mode (runs in its own process)."""
    import torch

    row = ROWS[name]

    def make_step(layer: Any, x: Any) -> Callable[[], None]:
        if mode == "forward":

            def step() -> None:
                with torch.no_grad():
                    layer(x)

        else:
            x.requires_grad_(True)

            def step() -> None:
                layer.zero_grad(set_to_none=True)
                x.grad = None
                layer(x).square().mean().backward()

        return step

    small_layer, small_x = row.build(WARMUP_SIZE)  # one-time set-up outside the measurement
    make_step(small_layer, small_x)()
    del small_layer, small_x
    layer, x = row.build(None)
    step = make_step(layer, x)
    baseline = _rss_bytes()
    use_hwm = _reset_hwm()
    poller = None if use_hwm else _Poller()
    if poller is not None:
        poller.__enter__()
    t0 = time.perf_counter()
    step()
    first_ms = 1e3 * (time.perf_counter() - t0)
    if poller is not None:
        poller.__exit__()
    peak = poller.peak if poller is not None else _hwm_bytes()
    ms = median_ms(step, repeats, warmup)
    out: dict[str, object] = {
        "ms": ms,
        "first_ms": first_ms,
        "peak_mb": (peak - baseline) / 2**20,
        "params": sum(p.numel() for p in layer.parameters() if p.requires_grad),
        "method": "VmHWM" if use_hwm else "poll",
    }
    peer = _peer(row)
    if peer is not None:  # the time ratio: both layers in this process, calls interleaved
        peer_layer, peer_x = peer.build(None)
        peer_step = make_step(peer_layer, peer_x)
        for _ in range(warmup):
            step()
            peer_step()
        ours_t: list[float] = []
        theirs_t: list[float] = []
        for _ in range(repeats):
            for f, acc in ((step, ours_t), (peer_step, theirs_t)):
                t0 = time.perf_counter()
                f()
                acc.append(time.perf_counter() - t0)
        out["paired_ratio"] = statistics.median(ours_t) / statistics.median(theirs_t)
    return out


def _peer(row: Row) -> Row | None:
    """The cliffordlayers row with the same ``pair`` (``None`` for cliffordlayers rows themselves)."""
    if row.pair is None or row.library == "cliffordlayers":
        return None
    return next((r for r in ROWS.values() if r.pair == row.pair and r.library == "cliffordlayers"), None)


# -- driver -----------------------------------------------------------------------------------------
def _run_child(name: str, mode: str, args: argparse.Namespace) -> dict[str, Any] | str:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        name,
        "--mode",
        mode,
        "--repeats",
        str(args.repeats),
        "--warmup",
        str(args.warmup),
    ]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        text = lines[-1] if lines else f"exit status {proc.returncode}"
        return "skipped: " + text if "ImportError" in text or "ModuleNotFoundError" in text else text
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", default=None, help="row names (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--list", action="store_true", help="print the registered rows and exit")
    parser.add_argument(
        "--no-steerable", action="store_true", help="skip the steerable convolution's table (kernel build)"
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="forward", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.list:
        for row in ROWS.values():
            print(f"{row.name}  [{row.library}; pair: {row.pair}]")
        return
    if args.worker is not None:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        print(json.dumps(worker(args.worker, args.mode, args.repeats, args.warmup)))
        return

    names = list(ROWS) if args.only is None else args.only
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; registered: {list(ROWS)}")
    import torch

    threads = args.threads or torch.get_num_threads()
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {threads} thread(s), "
        f"float32; {args.rounds} round(s) x {args.repeats} repeats; 2-D: batch {SHAPE_2D['batch']}, "
        f"{SHAPE_2D['channels']} -> {SHAPE_2D['channels']} channels, {SHAPE_2D['size']}^2, kernel "
        f"{SHAPE_2D['kernel']}; 3-D: batch {SHAPE_3D['batch']}, {SHAPE_3D['channels']} -> "
        f"{SHAPE_3D['channels']} channels, {SHAPE_3D['size']}^3, kernel {SHAPE_3D['kernel']}\n",
        flush=True,
    )
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    errors: dict[tuple[str, str], str] = {}
    for _ in range(args.rounds):
        for name in names:
            for mode in MODES:
                res = _run_child(name, mode, args)
                if isinstance(res, str):
                    errors[(name, mode)] = res
                else:
                    runs.setdefault((name, mode), []).append(res)

    def cell(name: str, mode: str) -> dict[str, Any] | None:
        got = runs.get((name, mode))
        if not got:
            return None
        med = statistics.median_low([r["ms"] for r in got])
        return next(r for r in got if r["ms"] == med)

    header = "| row | params |"
    rule = "|:---|---:|"
    for mode in MODES:
        header += f" {mode} ms | {mode} peak MB | time ratio | memory ratio |"
        rule += "---:|---:|---:|---:|"
    print(header)
    print(rule)
    for name in names:
        peer = _peer(ROWS[name])
        cells = {mode: cell(name, mode) for mode in MODES}
        params = next((c["params"] for c in cells.values() if c is not None), "")
        line = f"| {name} | {params} |"
        for mode in MODES:
            c = cells[mode]
            if c is None:
                line += f" {errors.get((name, mode), 'failed')[:60]} | | | |"
                continue
            ref = cell(peer.name, mode) if peer is not None else None
            got = [r["paired_ratio"] for r in runs.get((name, mode), []) if "paired_ratio" in r]
            t_ratio = statistics.median(got) if got else None
            m_ratio = c["peak_mb"] / ref["peak_mb"] if ref and ref["peak_mb"] > 0 else None
            line += f" {c['ms']:.1f} | {c['peak_mb']:.1f} | {_fmt(t_ratio, '.2f')} | {_fmt(m_ratio, '.2f')} |"
        print(line, flush=True)
    methods = {r["method"] for v in runs.values() for r in v}
    print(
        "\ntime ratio: gatorch / cliffordlayers, median over the rounds of the ratio of medians of "
        "calls interleaved in one process; memory ratio: of the peaks, each in its own process. "
        "peak MB = 2**20 bytes of "
        f"resident-set growth during the first full-size call ({', '.join(sorted(methods))})."
    )
    if not args.no_steerable and args.only is None:
        # the Clifford-steerable convolution: its kernel build, the conv with a given kernel, the
        # whole layer, and an nn.Conv2d of the same real size (benchmarks/bench_steerable_conv.py)
        from bench_steerable_conv import print_table
        from bench_steerable_conv import run as run_steerable

        print()
        print_table(
            run_steerable(repeats=args.repeats, warmup=args.warmup),
            f"CliffordSteerableConv2d, Cl(2,0), batch 8, 16 -> 16 channels, 64 x 64, kernel 5, float32, "
            f"{threads} thread(s)",
        )


if __name__ == "__main__":
    main()
