"""Side-by-side benchmark of the geometric product: gatorch against other libraries.

What it measures
----------------
For each algebra (VGA3 = Cl(3,0), PGA3 = Cl(3,0,1), STA = Cl(1,3), CGA3 = Cl(4,1)) it
times, on N random float32 pairs of full multivectors (default N = 2**19), the
geometric product ``x * y`` forward only and forward + backward
(``out = f(x, y); out.backward(g)`` with ``requires_grad`` inputs) for

* gatorch eager, batch-last public API ``alg.gp(x, y)`` on ``(N, dim)`` tensors;
* gatorch eager, blade-first ``gatorch.functional.gp(alg, x, y, blade_dim=0)`` on
  ``(dim, N)`` tensors (the kernel's native layout: no transposes);
* gatorch compiled: ``torch.compile(fullgraph=True)`` of both calls above. Each
  compiled callable is built once per algebra and reused for the forward and the
  forward + backward rows (the latter triggers one more compilation, of the joint
  graph); the time of the first call, which includes the compilation, is reported
  apart from the steady-state timings;
* the dense Cayley-tensor reference ``alg.gp_dense`` (one einsum);
* L-GATr 2.0 (STA only), through both of its geometric-product paths;
* kingdon (generated code on torch tensors);
* torch-ga (``GeometricAlgebra.geom_prod``, a dense einsum);
* a memory-bound floor: ``torch.add(x, y)`` on the same two ``(N, dim)`` operands,
  which reads both and writes one result, the minimum traffic of any product.

Every timing is the median of ``--repeats`` calls after ``--warmup`` calls. Each row
also gives its throughput as a percentage of the floor's (``floor_time / time * 100``)
and whether its result agrees (forward and gradients) with a float64 dense reference
on the first items, after mapping the library's blade order to gatorch's. For STA the
speed-ups of the gatorch rows over the faster L-GATr path are printed below the table.
Libraries that are not installed (or fail to import) are reported as skipped.

Absolute times drift between machines and with load: compare ratios from one run. On a
shared machine, other processes on the cores make every multi-threaded op wait for its
descheduled thread, which hits the many-small-op rows (eager gatorch, kingdon) hardest;
``--threads 1`` is then the steadier measurement. torch.compile caches are off by
default so that the compile times are cold (``--compile-cache`` to allow them).

Run
---
::

    python benchmarks/bench_products.py                  # full run (several minutes)
    python benchmarks/bench_products.py --quick          # smoke run: tiny N, no compile
    python benchmarks/bench_products.py --algebras STA --no-compile --markdown

The comparison libraries are the ``bench`` extra: ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch._inductor.config
from torch import Tensor

import gatorch
import gatorch.functional as gaf
from gatorch import Algebra

# -- settings --------------------------------------------------------------------------------------
#: Default number of multivector pairs (log2): 2**19.
DEFAULT_LOG2_N = 19
#: Default number of timed calls (the median is reported) and of untimed warm-up calls.
DEFAULT_REPEATS = 5
DEFAULT_WARMUP = 1
#: ``--quick``: a tiny batch, fewer repeats, no ``torch.compile`` unless ``--compile`` is given.
QUICK_N = 1 << 10
QUICK_REPEATS = 2
#: Items compared against the float64 dense reference.
CHECK_ITEMS = 1024
#: A result agrees when max |out - ref| <= CHECK_RTOL * max |ref| (float32 against float64).
CHECK_RTOL = 1e-4
#: Seed of the random operands.
SEED = 0
#: Longest failure message kept in the table.
MAX_NOTE_CHARS = 60

MS_PER_S = 1e3
PERCENT = 100.0

ALGEBRAS: dict[str, Algebra] = {
    "VGA3": gatorch.VGA3,
    "PGA3": gatorch.PGA3,
    "STA": gatorch.STA,
    "CGA3": gatorch.CGA3,
}
#: L-GATr hard-codes Cl(1,3) with the metric (+, -, -, -).
LGATR_ALGEBRA = "STA"
#: L-GATr's blade order (its multivectors are (..., 16) tensors; ``embed_vector`` puts
#: (t, x, y, z) at indices 1-4). It is gatorch's STA order; the check column verifies it.
LGATR_BLADES = tuple("1 e0 e1 e2 e3 e01 e02 e03 e12 e13 e23 e012 e013 e023 e123 e0123".split())

FLOOR = "floor: torch.add(x, y)"
LABEL_EAGER = "gatorch eager alg.gp (batch-last)"
LABEL_EAGER_BF = "gatorch eager gp(blade_dim=0) (blade-first)"
LABEL_COMPILED = "gatorch compiled alg.gp (batch-last)"
LABEL_COMPILED_BF = "gatorch compiled gp(blade_dim=0) (blade-first)"
LGATR_PREFIX = "L-GATr"


class Skip(Exception):
    """A comparison library cannot be run here; the message says why."""


# -- candidates ------------------------------------------------------------------------------------
@dataclass
class Candidate:
    """One implementation of the product, with the layout and blade order it wants.

    ``fn`` maps the two native operands to the native result tensor. Native operands are
    ``(N, dim)`` (or ``(dim, N)`` when ``blade_first``) with component ``c`` holding
    gatorch blade ``perm[c]`` (``perm=None``: gatorch's order). ``wrap`` turns a native
    tensor into the object ``fn`` takes (untimed; e.g. a kingdon multivector).
    ``setup`` names the one-off cost reported beside the timings (``"compile"``,
    ``"codegen"``): ``setup_s`` if it was measured apart, else the first calls' times.
    """

    label: str
    fn: Callable[[Any, Any], Tensor]
    blade_first: bool = False
    perm: Sequence[int] | None = None
    wrap: Callable[[Tensor], Any] | None = None
    setup: str = ""
    setup_s: float | None = None


@dataclass
class Row:
    """One line of the result table (times in seconds; None where not measured)."""

    algebra: str
    label: str
    fwd: float | None = None
    fwd_bwd: float | None = None
    first_fwd: float | None = None
    first_fwd_bwd: float | None = None
    floor_fwd: float | None = None  # the floor, timed alternately with this row's calls
    floor_fwd_bwd: float | None = None
    setup: str = ""
    setup_s: float | None = None
    check: str = ""


def _bitmap_perm(alg: Algebra, bitmaps: Sequence[int]) -> list[int] | None:
    """gatorch index of each native component, given the native blades as bitmaps.

    Bit ``k`` is the ``k``-th basis vector of ``alg.metric``; both sides name blades by
    ascending indices, so blades match up to order only (no signs). ``None`` if the
    orders are the same.
    """
    where = {int(b): i for i, b in enumerate(alg.bitmaps)}
    perm = [where[int(b)] for b in bitmaps]
    if sorted(perm) != list(range(alg.dim)):
        raise Skip(f"blade bitmaps {list(bitmaps)} do not cover the algebra")
    return None if perm == list(range(alg.dim)) else perm


def _import(module: str) -> Any:
    """Import a comparison library, or raise :class:`Skip` with a clear reason."""
    if importlib.util.find_spec(module) is None:
        raise Skip("skipped (not installed)")
    try:
        return importlib.import_module(module)
    except Exception as exc:  # e.g. torch_ga needs icecream
        raise Skip(f"skipped (import failed: {exc})") from exc


_FUSED = gaf.KernelPolicy(compiled="fused")


def _fused(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` called under ``KernelPolicy(compiled="fused")``."""

    def call(*args: Any, **kwargs: Any) -> Any:
        with gaf.kernel_policy(_FUSED):
            return fn(*args, **kwargs)

    return call


def gatorch_candidates(alg: Algebra, compile_: bool) -> list[Candidate]:
    """gatorch's eager rows, then (with ``compile_``) its compiled rows."""
    blade_first = functools.partial(gaf.gp, alg, blade_dim=0)
    cands = [
        Candidate(LABEL_EAGER, alg.gp),
        Candidate(LABEL_EAGER_BF, blade_first, blade_first=True),
    ]
    if compile_:
        # One compiled callable per variant, reused for the forward and forward+backward
        # rows (grad mode is a guard: the forward+backward row compiles the joint graph).
        # The products are traced into inductor (KernelPolicy(compiled="fused")), not run as
        # the opaque eager kernels that are the default inside compiled nets.
        cands += [
            Candidate(LABEL_COMPILED, _fused(torch.compile(alg.gp, fullgraph=True)), setup="compile"),
            Candidate(
                LABEL_COMPILED_BF,
                _fused(torch.compile(blade_first, fullgraph=True)),
                blade_first=True,
                setup="compile",
            ),
        ]
    return cands


def lgatr_candidates() -> list[Candidate]:
    """L-GATr 2.0's ``lgatr.primitives.geometric_product`` through both of its paths.

    The path is chosen by ``PrimitivesConfig.sparse_gp`` (``lgatr/primitives/config.py``),
    passed as ``config=`` to every primitive:

    * ``sparse_gp=True`` (L-GATr's default): gather ``y[..., indices]`` into an
      ``(..., 16, 16)`` tensor, multiply by signs and ``x``, sum; custom sparse backward.
    * ``sparse_gp=False``: dense path, outer product ``x_j y_k`` as ``(..., 256)`` times
      the flattened ``(16, 256)`` Cayley tensor (one GEMM); autograd backward.
    """
    _import("lgatr")
    from lgatr.primitives import geometric_product
    from lgatr.primitives.config import PrimitivesConfig

    if tuple(LGATR_BLADES) != ALGEBRAS[LGATR_ALGEBRA].blade_names:
        raise Skip("skipped (L-GATr blade order differs from gatorch's STA)")
    cands = []
    for sparse, what in ((True, "sparse_gp=True (sparse)"), (False, "sparse_gp=False (dense)")):
        config = PrimitivesConfig(sparse_gp=sparse)
        fn = functools.partial(geometric_product, config=config)
        cands.append(Candidate(f"{LGATR_PREFIX} {what}", fn))
    return cands


def kingdon_candidate(alg: Algebra) -> Candidate:
    """kingdon: code generated for the full-by-full product, run on torch tensors.

    A kingdon multivector built from a ``(dim, N)`` tensor keeps it as its values
    (blade-first; iterating it yields the component rows), so ``kalg.gp(x, y)`` runs the
    generated sum-of-products (one torch op per multiply and add) on whole rows. The
    result's values are a list of ``dim`` rows; ``torch.stack`` makes it one tensor like
    the other rows (included in the timing). The code is generated (and cached) by a
    first product on a one-item probe, timed apart as the row's one-off cost.
    """
    kingdon = _import("kingdon")
    kalg = kingdon.Algebra(signature=list(alg.metric))
    keys = tuple(kalg.canon2bin.values())  # kingdon's canonical order, bitmaps
    if len(keys) != alg.dim:
        raise Skip(f"skipped (kingdon gives {len(keys)} blades, expected {alg.dim})")

    def wrap(values: Tensor) -> Any:
        return kalg.multivector(values=values, keys=keys)

    start = time.perf_counter()  # the first product generates (and caches) the code
    probe = kalg.gp(wrap(torch.ones(alg.dim, 1)), wrap(torch.ones(alg.dim, 1)))
    codegen_s = time.perf_counter() - start
    if tuple(probe.keys()) != keys:
        raise Skip("skipped (kingdon's result has another blade layout than its operands)")

    def fn(x: Any, y: Any) -> Tensor:
        return torch.stack(kalg.gp(x, y).values())

    perm = _bitmap_perm(alg, keys)
    return Candidate(
        "kingdon gp (codegen)", fn, blade_first=True, perm=perm, wrap=wrap, setup="codegen", setup_s=codegen_s
    )


def torch_ga_candidate(alg: Algebra) -> Candidate:
    """torch-ga: ``GeometricAlgebra(metric).geom_prod(a, b)`` on ``(N, dim)`` tensors.

    It is a dense einsum ``...i,...j,ijk->...k`` through the full Cayley tensor. Its
    basis vectors are named ``0, 1, ...`` in the order of the metric, blades in shortlex
    order by those names.
    """
    torch_ga = _import("torch_ga")
    ga = torch_ga.GeometricAlgebra(list(alg.metric))
    bitmaps = [sum(1 << int(c, 36) for c in blade) for blade in ga.blades]
    return Candidate("torch-ga geom_prod", ga.geom_prod, perm=_bitmap_perm(alg, bitmaps))


# -- measuring -------------------------------------------------------------------------------------
@dataclass
class Data:
    """Operands, output cotangent and float64 references, all batch-last in gatorch order."""

    x: Tensor
    y: Tensor
    g: Tensor
    ref_out: Tensor
    ref_gx: Tensor
    ref_gy: Tensor


def make_data(alg: Algebra, n: int) -> Data:
    gen = torch.Generator().manual_seed(SEED)
    x, y, g = (torch.randn(n, alg.dim, generator=gen) for _ in range(3))
    k = min(n, CHECK_ITEMS)
    x64, y64 = (t[:k].double().requires_grad_() for t in (x, y))
    ref = alg.gp_dense(x64, y64)
    gx, gy = torch.autograd.grad(ref, (x64, y64), g[:k].double())
    return Data(x, y, g, ref.detach(), gx, gy)


def to_native(t: Tensor, cand: Candidate) -> Tensor:
    """Batch-last, gatorch order -> the candidate's layout and order (contiguous)."""
    if cand.perm is not None:
        t = t[:, list(cand.perm)]
    return t.t().contiguous() if cand.blade_first else t.contiguous()


def from_native(t: Tensor, cand: Candidate, k: int) -> Tensor:
    """First ``k`` items of a native tensor, back to batch-last, gatorch order, float64."""
    t = (t[:, :k].t() if cand.blade_first else t[:k]).detach().double()
    if cand.perm is None:
        return t
    out = torch.empty_like(t)
    out[:, list(cand.perm)] = t
    return out


def rel_err(out: Tensor, ref: Tensor) -> float:
    return float((out - ref).abs().max() / ref.abs().max().clamp_min(torch.finfo(ref.dtype).tiny))


@dataclass
class Calls:
    """One candidate bound to one data set: its forward call and its forward+backward step."""

    fwd: Callable[[], Tensor]
    step: Callable[[], None]
    reset: Callable[[], None]
    grads: Callable[[], tuple[Tensor, Tensor]]


def make_calls(cand: Candidate, data: Data) -> Calls:
    wrap = cand.wrap or (lambda t: t)
    x, y = wrap(to_native(data.x, cand)), wrap(to_native(data.y, cand))
    # detach(): a fresh leaf even where to_native returns the operand itself
    xl = to_native(data.x, cand).detach().requires_grad_()
    yl = to_native(data.y, cand).detach().requires_grad_()
    xg, yg = wrap(xl), wrap(yl)
    g = to_native(data.g, cand)

    def step() -> None:
        cand.fn(xg, yg).backward(g)

    def reset() -> None:
        xl.grad = None
        yl.grad = None

    return Calls(lambda: cand.fn(x, y), step, reset, lambda: (xl.grad, yl.grad))


def _no_reset() -> None:
    pass


@dataclass
class Timing:
    first: float  # the first call (compilation included, for compiled callables)
    median: float  # median of the timed calls
    paired: float | None  # median of the paired calls, timed alternately with them
    first_result: Any


def time_calls(
    run: Callable[[], Any],
    reset: Callable[[], None],
    repeats: int,
    warmup: int,
    paired: tuple[Callable[[], Any], Callable[[], None]] | None = None,
) -> Timing:
    """Time ``run`` (after ``reset``, untimed): first call, then ``warmup``, then ``repeats`` calls.

    With ``paired = (run2, reset2)``, ``run2`` is timed just before each timed ``run``, so
    that both see the same machine load.
    """
    reset()
    start = time.perf_counter()
    first_result = run()
    first = time.perf_counter() - start
    for _ in range(warmup):
        reset()
        run()
    times, paired_times = [], []
    for _ in range(repeats):
        if paired is not None:
            paired[1]()
            start = time.perf_counter()
            paired[0]()
            paired_times.append(time.perf_counter() - start)
        reset()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    paired_median = statistics.median(paired_times) if paired_times else None
    return Timing(first, statistics.median(times), paired_median, first_result)


def _check(what: str, err: float) -> str:
    return f"{what} {'ok' if err <= CHECK_RTOL else 'MISMATCH'} {err:.0e}"


def measure(
    alg_name: str, cand: Candidate, data: Data, floor: Calls | None, repeats: int, warmup: int
) -> Row:
    """Forward and forward+backward timings of one candidate, and its agreement check.

    ``floor`` (None for the floor itself) is timed alternately with the candidate's calls.
    """
    row = Row(alg_name, cand.label, setup=cand.setup, setup_s=cand.setup_s)
    calls = make_calls(cand, data)
    k = data.ref_out.shape[0]

    fwd = time_calls(calls.fwd, _no_reset, repeats, warmup, floor and (floor.fwd, _no_reset))
    checks = [_check("out", rel_err(from_native(fwd.first_result, cand, k), data.ref_out))]
    row.first_fwd, row.fwd = fwd.first, fwd.median
    row.floor_fwd = fwd.median if floor is None else fwd.paired
    del fwd
    gc.collect()

    bwd = time_calls(calls.step, calls.reset, repeats, warmup, floor and (floor.step, floor.reset))
    gx, gy = calls.grads()
    err = max(rel_err(from_native(gx, cand, k), data.ref_gx), rel_err(from_native(gy, cand, k), data.ref_gy))
    checks.append(_check("grad", err))
    row.first_fwd_bwd, row.fwd_bwd = bwd.first, bwd.median
    row.floor_fwd_bwd = bwd.median if floor is None else bwd.paired
    if floor is not None:  # the floor row is not a product: nothing to check
        row.check = ", ".join(checks)
    return row


def candidates_for(alg_name: str, alg: Algebra, compile_: bool) -> list[Candidate | Row]:
    """All candidates for one algebra; a :class:`Row` stands for a skipped library."""
    out: list[Candidate | Row] = gatorch_candidates(alg, compile_)
    out.append(Candidate("dense reference alg.gp_dense (einsum)", alg.gp_dense))
    builders: list[tuple[str, Callable[[], Candidate | list[Candidate]]]] = []
    if alg_name == LGATR_ALGEBRA:
        builders.append((LGATR_PREFIX, lgatr_candidates))
    builders += [
        ("kingdon", lambda: kingdon_candidate(alg)),
        ("torch-ga", lambda: torch_ga_candidate(alg)),
    ]
    for name, build in builders:
        try:
            built = build()
        except Skip as exc:
            out.append(Row(alg_name, name, check=str(exc)))
            continue
        except Exception as exc:
            out.append(Row(alg_name, name, check=_failure(exc)))
            continue
        out += built if isinstance(built, list) else [built]
    return out


def _failure(exc: BaseException) -> str:
    text = f"failed: {type(exc).__name__}: {exc}".splitlines()[0]
    return text if len(text) <= MAX_NOTE_CHARS else text[: MAX_NOTE_CHARS - 3] + "..."


def run_algebra(alg_name: str, n: int, args: argparse.Namespace) -> list[Row]:
    alg = ALGEBRAS[alg_name]
    torch._dynamo.reset()  # a fresh compile cache per algebra (the recompile limit is per code object)
    data = make_data(alg, n)
    floor_cand = Candidate(FLOOR, torch.add)
    floor = make_calls(floor_cand, data)
    _progress(f"{alg_name:5s} {FLOOR} ...")
    rows = [measure(alg_name, floor_cand, data, None, args.repeats, args.warmup)]
    for cand in candidates_for(alg_name, alg, args.compile):
        if isinstance(cand, Row):
            _progress(f"{alg_name:5s} {cand.label}: {cand.check}")
            rows.append(cand)
            continue
        _progress(f"{alg_name:5s} {cand.label} ...")
        try:
            row = measure(alg_name, cand, data, floor, args.repeats, args.warmup)
        except Exception as exc:
            row = Row(alg_name, cand.label, check=_failure(exc))
        rows.append(row)
        _progress(f"      fwd {_ms(row.fwd)} ms, fwd+bwd {_ms(row.fwd_bwd)} ms, {row.check}")
        gc.collect()
    return rows


# -- reporting -------------------------------------------------------------------------------------
def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _ms(t: float | None) -> str:
    return "-" if t is None else f"{t * MS_PER_S:.1f}"


def _pct(floor: float | None, t: float | None) -> str:
    return "-" if floor is None or t is None else f"{floor / t * PERCENT:.1f}"


def _setup(row: Row) -> str:
    if not row.setup:
        return ""
    if row.setup_s is not None:
        return f"{row.setup} {row.setup_s:.1f}"
    if row.first_fwd is None or row.first_fwd_bwd is None:
        return ""
    return f"{row.setup} {row.first_fwd:.1f} / {row.first_fwd_bwd:.1f}"


def table(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    header = [
        "algebra",
        "implementation",
        "fwd ms",
        "fwd % floor",
        "fwd+bwd ms",
        "fwd+bwd % floor",
        "one-off s (fwd / fwd+bwd)",
        "check vs float64 reference",
    ]
    body = []
    for r in rows:
        body.append(
            [
                r.algebra,
                r.label,
                _ms(r.fwd),
                _pct(r.floor_fwd, r.fwd),
                _ms(r.fwd_bwd),
                _pct(r.floor_fwd_bwd, r.fwd_bwd),
                _setup(r),
                r.check,
            ]
        )
    return header, body


def format_table(header: list[str], body: list[list[str]], markdown: bool) -> str:
    numeric = {2, 3, 4, 5}
    if markdown:
        lines = ["| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join("---:" if i in numeric else "---" for i in range(len(header))) + "|")
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    lines = [fmt(header), "  ".join("-" * w for w in widths)]
    prev = None
    for row in body:
        if prev is not None and row[0] != prev:
            lines.append("")
        lines.append(fmt(row))
        prev = row[0]
    return "\n".join(lines)


def speedups_vs_lgatr(rows: list[Row]) -> list[str]:
    """Speed-up of each gatorch row over the faster L-GATr path, forward and forward+backward."""
    sta = [r for r in rows if r.algebra == LGATR_ALGEBRA]
    lgatr = [r for r in sta if r.label.startswith(LGATR_PREFIX)]
    lines = []
    for attr, what in (("fwd", "forward"), ("fwd_bwd", "forward+backward")):
        timed = [r for r in lgatr if getattr(r, attr) is not None]
        if not timed:
            continue
        best = min(timed, key=lambda r: getattr(r, attr))
        lines.append(
            f"{LGATR_ALGEBRA} {what}: best L-GATr path = {best.label.removeprefix(LGATR_PREFIX).strip()}"
            f" ({_ms(getattr(best, attr))} ms); speed-up of"
        )
        for r in sta:
            if r.label.startswith("gatorch") and getattr(r, attr) is not None:
                lines.append(f"    {r.label}: {getattr(best, attr) / getattr(r, attr):.1f}x")
    return lines


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def n_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def header_lines(n: int, args: argparse.Namespace) -> list[str]:
    libs = ", ".join(f"{d} {_version(d)}" for d in ("gatorch-nn", "lgatr", "kingdon", "torch-ga"))
    return [
        f"torch {torch.__version__} (CPU capability {torch.backends.cpu.get_cpu_capability()}), "
        f"Python {platform.python_version()}",
        f"CPU: {cpu_name()}, {n_cores()} cores; torch threads: {torch.get_num_threads()}",
        f"libraries: {libs}",
        f"N = {n} pairs ({'2**' + str(n.bit_length() - 1) if n & (n - 1) == 0 else n}), float32; "
        f"median of {args.repeats} calls after {args.warmup} warm-up; "
        f"torch.compile rows {'on' if args.compile else 'off'}"
        f"{' (warm on-disk caches allowed)' if args.compile_cache else ' (caches off: cold compiles)'}",
        "% floor = floor time / time * 100; the floor (torch.add of the two (N, dim) operands, fwd or"
        " fwd+bwd) is re-timed alternately with each row's calls, so that both see the same load",
        "one-off s: compile = first call (compilation included) of the forward / forward+backward rows;"
        " codegen = kingdon's code generation",
    ]


# -- main ------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n", type=int, default=None, help=f"number of pairs (default 2**{DEFAULT_LOG2_N})")
    p.add_argument(
        "--algebras",
        nargs="+",
        choices=list(ALGEBRAS),
        default=list(ALGEBRAS),
        metavar="NAME",
        help=f"algebras to run, among {', '.join(ALGEBRAS)} (default: all)",
    )
    p.add_argument(
        "--repeats", type=int, default=None, help=f"timed calls per row (default {DEFAULT_REPEATS})"
    )
    p.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="untimed calls before timing")
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="include the torch.compile rows (default: yes, no with --quick)",
    )
    p.add_argument(
        "--compile-cache",
        action="store_true",
        help="let torch.compile reuse its on-disk caches (default: off, so compile times are cold)",
    )
    p.add_argument("--markdown", action="store_true", help="print the table as markdown")
    p.add_argument(
        "--quick", action="store_true", help=f"smoke run: N = {QUICK_N}, {QUICK_REPEATS} repeats, no compile"
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: number of cores)")
    args = p.parse_args(argv)
    if args.n is None:
        args.n = QUICK_N if args.quick else 1 << DEFAULT_LOG2_N
    if args.repeats is None:
        args.repeats = QUICK_REPEATS if args.quick else DEFAULT_REPEATS
    if args.compile is None:
        args.compile = not args.quick
    if args.n < 1 or args.repeats < 1 or args.warmup < 0:
        p.error("--n and --repeats must be positive, --warmup non-negative")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads or n_cores())
    # Cold compile times by default: a warm inductor cache (e.g. from an earlier run) hides them.
    torch._inductor.config.force_disable_caches = not args.compile_cache
    warnings.filterwarnings("ignore", message="dynamo_pgo force disabled")  # the consequence, expected
    rows = []
    for name in args.algebras:
        rows += run_algebra(name, args.n, args)
    header, body = table(rows)
    bullet = "- " if args.markdown else ""
    print("\n".join(bullet + line for line in header_lines(args.n, args)))
    print()
    print(format_table(header, body, args.markdown))
    lines = speedups_vs_lgatr(rows)
    if lines:
        print()
        print("\n".join(lines))


if __name__ == "__main__":
    main()
