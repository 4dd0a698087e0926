"""Clifford spectral (Fourier) layers: gatorch next to cliffordlayers, time and peak memory.

Usage::

    python benchmarks/bench_fields_fourier.py                  # every spectral row, 3 rounds
    python benchmarks/bench_fields_fourier.py --threads 1 --rounds 1
    python benchmarks/bench_fields_fourier.py --list

Rows (float32): ``CliffordSpectralConv2d`` at batch 8, 16 -> 16 channels, 64 x 64, 16 modes
per axis, in Cl(2,0) and Cl(0,2): gatorch's ``spectrum="rfft"`` (real FFT per blade, complex
weights on ``2 * 16 x 16`` modes) and ``spectrum="dual"`` (cliffordlayers' transform, real
weights on ``32 x 32`` modes, the same function as cliffordlayers' layer) next to
cliffordlayers' ``CliffordSpectralConv2d``; ``CliffordSpectralConv3d`` in Cl(3,0) at batch 2,
16 -> 16 channels, 16^3, 6 modes per axis, the same three. The measurement (fresh process per
row and mode, median time, peak resident-set growth, interleaved rounds, ratios against the
cliffordlayers row of the same pair in the same run) is :mod:`bench_fields`'s; this file only
adds rows. ``bench_fields.py`` includes them with::

    from bench_fields_fourier import register_rows
    register_rows(register, Row)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

SPECTRAL_2D = {"batch": 8, "channels": 16, "size": 64, "modes": 16}
SPECTRAL_3D = {"batch": 2, "channels": 16, "size": 16, "modes": 6}


def _field(shape: dict[str, int], spatial: int, dim: int, side: int) -> Any:
    import torch

    g = torch.Generator().manual_seed(0)
    return torch.randn(shape["batch"], shape["channels"], *([side] * spatial), dim, generator=g)


def _gatorch(signature: list[int], spatial: int, spectrum: str) -> Callable[[int | None], tuple[Any, Any]]:
    def build(size: int | None) -> tuple[Any, Any]:
        import torch

        from gatorch import Algebra
        from gatorch.layers.fields.fourier import CliffordSpectralConv2d, CliffordSpectralConv3d

        torch.manual_seed(0)
        shape = SPECTRAL_2D if spatial == 2 else SPECTRAL_3D
        side = shape["size"] if size is None else size
        m = min(shape["modes"], side // 2)
        alg = Algebra.from_signature(signature)
        c = shape["channels"]
        if spatial == 2:
            layer: Any = CliffordSpectralConv2d(alg, c, c, m, m, spectrum=spectrum)
        else:
            layer = CliffordSpectralConv3d(alg, c, c, m, m, m, spectrum=spectrum)
        return layer, _field(shape, spatial, alg.dim, side)

    return build


def _cliffordlayers(signature: list[int], spatial: int) -> Callable[[int | None], tuple[Any, Any]]:
    def build(size: int | None) -> tuple[Any, Any]:
        import importlib

        import torch

        cf: Any = importlib.import_module("cliffordlayers.nn.modules.cliffordfourier")
        torch.manual_seed(0)
        shape = SPECTRAL_2D if spatial == 2 else SPECTRAL_3D
        side = shape["size"] if size is None else size
        m = min(shape["modes"], side // 2)
        c = shape["channels"]
        if spatial == 2:
            layer = cf.CliffordSpectralConv2d(signature, c, c, m, m)
        else:
            layer = cf.CliffordSpectralConv3d(signature, c, c, m, m, m)
        return layer, _field(shape, spatial, 2 ** len(signature), side)

    return build


def register_rows(register: Callable[[Any], None], row_cls: Callable[..., Any]) -> list[str]:
    """Register the spectral rows with ``bench_fields``' ``register`` and ``Row``; returns their names."""
    names = []
    cases = [([1, 1], "Cl(2,0)", 2), ([-1, -1], "Cl(0,2)", 2), ([1, 1, 1], "Cl(3,0)", 3)]
    for sig, label, spatial in cases:
        pair = f"spectral{spatial}d {label}"
        cls = f"CliffordSpectralConv{spatial}d"
        rows = [
            (f"gatorch {cls} {label} rfft", "gatorch", _gatorch(sig, spatial, "rfft")),
            (f"gatorch {cls} {label} dual", "gatorch", _gatorch(sig, spatial, "dual")),
            (f"cliffordlayers {cls} g={sig}", "cliffordlayers", _cliffordlayers(sig, spatial)),
        ]
        for name, library, build in rows:
            register(row_cls(name, library, pair, build))
            names.append(name)
    return names


def _run_child(name: str, mode: str, args: argparse.Namespace) -> dict[str, Any] | str:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--mode", mode]
    cmd += ["--repeats", str(args.repeats), "--warmup", str(args.warmup)]
    env = dict(os.environ)
    if args.threads:
        cmd += ["--threads", str(args.threads)]
        env["OMP_NUM_THREADS"] = str(args.threads)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return lines[-1] if lines else f"exit status {proc.returncode}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    import bench_fields as bf  # importing it registers the spectral rows (bench_fields calls register_rows)

    names = [name for name, row in bf.ROWS.items() if (row.pair or "").startswith("spectral")]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", default=None, help="row names (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="forward", choices=bf.MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.list:
        print("\n".join(names))
        return
    if args.worker is not None:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        print(json.dumps(bf.worker(args.worker, args.mode, args.repeats, args.warmup)))
        return
    selected = names if args.only is None else args.only
    unknown = [n for n in selected if n not in names]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; registered: {names}")
    import torch

    threads = args.threads or torch.get_num_threads()
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {threads} thread(s), "
        f"float32; {args.rounds} round(s) x {args.repeats} repeats; 2-D: {SPECTRAL_2D}; 3-D: {SPECTRAL_3D}\n",
        flush=True,
    )
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    errors: dict[tuple[str, str], str] = {}
    for _ in range(args.rounds):
        for name in selected:
            for mode in bf.MODES:
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

    header, rule = "| row | params |", "|:---|---:|"
    for mode in bf.MODES:
        header += f" {mode} ms | {mode} peak MB | time ratio | memory ratio |"
        rule += "---:|---:|---:|---:|"
    print(header)
    print(rule)
    for name in selected:
        row = bf.ROWS[name]
        peer = next(
            (r.name for r in bf.ROWS.values() if r.pair == row.pair and r.library == "cliffordlayers"), None
        )
        line = f"| {name} |"
        first = cell(name, bf.MODES[0])
        line += f" {first['params'] if first else ''} |"
        for mode in bf.MODES:
            c = cell(name, mode)
            p = cell(peer, mode) if peer is not None and row.library != "cliffordlayers" else None
            if c is None:
                line += f" {errors.get((name, mode), '')} | | | |"
                continue
            tr = f"{c['ms'] / p['ms']:.2f}" if p else ""
            mr = f"{c['peak_mb'] / p['peak_mb']:.2f}" if p and p["peak_mb"] > 0 else ""
            line += f" {c['ms']:.1f} | {c['peak_mb']:.1f} | {tr} | {mr} |"
        print(line)


if __name__ == "__main__":
    main()
