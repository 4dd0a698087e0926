"""Kernel-launch proxy: ATen ops in one eager GATr training step, gatorch against L-GATr.

On a GPU at these sizes, each ATen op that computes is (at least) one kernel launch, and
launches cost more than the arithmetic. No GPU is needed to count them: this script runs one
eager training step (forward, ``mean(mv^2) + mean(s^2)``, backward) on the CPU under a
``TorchDispatchMode`` that records every ATen op reaching the kernels (below autograd, so
the backward's ops count too), with gatorch's kernel policy forced to the CUDA family
(:class:`gatorch.functional.KernelPolicy` ``device="cuda"``: no loops over table terms or
item blocks). It prints, per configuration:

* ``ops``: every ATen op dispatched;
* ``compute ops``: the same without views and metadata ops (``view``, ``expand``,
  ``transpose``, ``unbind``, ... : no kernel on any device), the launch estimate;
* the five most frequent compute ops.

Run::

    python benchmarks/launch_proxy.py                 # STA, 8 x 128 tokens, 4 blocks, 16 mv + 32 s
    python benchmarks/launch_proxy.py --policy cpu    # gatorch's CPU kernels instead

L-GATr (``lgatr``, the ``bench`` extra) runs with ``subgroup=False`` in its dense
configuration (``sparse_gp=False, sparse_linear=False``: a few large einsums) and its
sparse one.
"""

from __future__ import annotations

import argparse
import collections
from collections.abc import Callable

import torch
from bench_nets import SHAPE, _build
from torch.utils._python_dispatch import TorchDispatchMode


class OpCounter(TorchDispatchMode):
    """Counts ATen ops (overload packets) dispatched while active."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter[str] = collections.Counter()
        self.compute: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        name = str(func.overloadpacket.__name__)
        self.ops[name] += 1
        if not _is_metadata(func):
            self.compute[name] += 1
        return func(*args, **(kwargs or {}))


def _is_metadata(func) -> bool:  # type: ignore[no-untyped-def]
    """Views and pure-metadata ops: no kernel runs for them on any device."""
    if func.is_view:
        return True
    return func.overloadpacket.__name__ in {"detach", "alias", "lift_fresh", "_unsafe_view", "sym_size"}


def _gatorch(alg_name: str) -> tuple[torch.nn.Module, Callable[[], tuple]]:
    net, _, inputs = _build("gatorch", {"algebra": alg_name})  # bench_nets' shape and options
    return net, lambda: net(*inputs)


def _lgatr(sparse: bool) -> tuple[torch.nn.Module, Callable[[], tuple]]:
    net, _, inputs = _build("lgatr", {"sparse_gp": sparse, "sparse_linear": sparse, "subgroup": False})
    return net, lambda: net(*inputs)


def count_step(build: Callable[[], tuple[torch.nn.Module, Callable[[], tuple]]]) -> OpCounter:
    """Op counts of the second eager training step (the first may build caches)."""
    net, forward = build()

    def step() -> None:
        net.zero_grad(set_to_none=True)
        out_mv, out_s = forward()
        (out_mv.square().mean() + out_s.square().mean()).backward()

    step()
    counter = OpCounter()
    with counter:
        step()
    return counter


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--policy", choices=["cuda", "cpu"], default="cuda", help="gatorch's kernel family")
    parser.add_argument("--algebra", default="STA")
    parser.add_argument("--no-lgatr", action="store_true")
    args = parser.parse_args()
    from gatorch.functional import kernel_policy

    rows: list[tuple[str, OpCounter]] = []
    with kernel_policy(args.policy):
        rows.append(
            (
                f"gatorch GATr ({args.algebra}, {args.policy} kernels)",
                count_step(lambda: _gatorch(args.algebra)),
            )
        )
    if not args.no_lgatr:
        for sparse in (False, True):
            label = "L-GATr " + ("sparse gp + sparse linear" if sparse else "dense gp + dense linear")
            try:
                rows.append((label, count_step(lambda sparse=sparse: _lgatr(sparse))))
            except ImportError as err:
                print(f"{label}: skipped ({err}; install the bench extra)")
    print(
        f"# ATen ops in one eager training step: batch {SHAPE['batch']} x {SHAPE['items']} tokens, "
        f"{SHAPE['blocks']} blocks, {SHAPE['mv']} mv + {SHAPE['s']} scalar channels, {SHAPE['heads']} heads"
    )
    print("| configuration | ops | compute ops (launch estimate) | most frequent compute ops |")
    print("|---|---|---|---|")
    for label, c in rows:
        top = ", ".join(f"{k} {v}" for k, v in c.compute.most_common(5))
        print(f"| {label} | {sum(c.ops.values())} | {sum(c.compute.values())} | {top} |")


if __name__ == "__main__":
    main()
