"""Which kernels the sparse ops run: an explicit policy, chosen per device, forceable in tests.

The bilinear products and equivariant linear maps have several implementations that
compute the same numbers:

* **eager, CPU family** (``"cpu"``): per-term row kernels (one fused multiply-add per
  non-zero table term over a contiguous row) for large batches, a chunked
  gather-multiply-reduce for small ones, cache-blocked transposes. Launches are cheap on
  a CPU, so many small ops win.
* **eager, CUDA family** (``"cuda"``): a kernel-launch budget instead: every product is
  one unchunked gather-multiply-reduce (five launches, whatever the table), transposes are
  single copies, no loop over table terms or over blocks of items.
* **compiled** (under ``torch.compile``): ``"fused"`` writes each product out as one
  expression per output blade, which inductor fuses into a single loop that reads each
  operand once, and each equivariant linear map as plain batched GEMMs that inductor
  schedules; ``"opaque"`` runs the eager kernels of the device family (products and
  linear maps, forward and backward, with their tuned layouts) as custom ops
  (``gatorch::bilinear``, ``gatorch::equi_linear``) that the compiler does not trace into;
  the rest of the graph (norms, gates, attention features, residuals) is fused around them.

:class:`KernelPolicy` holds the choice. The default, ``KernelPolicy()``, picks the
family from each tensor's device and lets each op take the compiled form that measured
best (``compiled="auto"``): opaque for the bilinear products and equivariant linear maps
of GATr-style nets (their fused form costs minutes of compile on a small CPU and ran no
faster), fused for CGENN's steerable product and GLGENN's product (seconds of compile,
several times faster than their eager kernels). The policy is read once per call
(eagerly) or once per trace (under ``torch.compile``: dynamo guards on it, so changing
the policy recompiles).

Examples
--------
>>> import torch
>>> from gatorch import STA
>>> from gatorch.functional import KernelPolicy, kernel_policy
>>> x, y = torch.randn(2, 5, 16, dtype=torch.float64)
>>> with kernel_policy(KernelPolicy(device="cuda")):  # the GPU kernels, run on the CPU
...     z = STA.gp(x, y)
>>> torch.allclose(z, STA.gp_dense(x, y))
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

__all__ = ["KernelPolicy", "current_kernel_policy", "kernel_policy"]

_DEVICES = ("auto", "cpu", "cuda")
_COMPILED = ("auto", "fused", "opaque")


@dataclass(frozen=True)
class KernelPolicy:
    """The kernel choice of the sparse ops.

    Attributes
    ----------
    device : {"auto", "cpu", "cuda"}
        Eager kernel family. ``"auto"``: ``"cpu"`` for CPU tensors, ``"cuda"`` for every
        other device. Forcing ``"cuda"`` on CPU tensors runs (and tests) the GPU path.
    compiled : {"auto", "fused", "opaque"}
        How products and linear maps are compiled (see the module docstring); ``"auto"``
        lets each op choose (:meth:`compiled_form`).
    """

    device: str = "auto"
    compiled: str = "auto"

    def __post_init__(self) -> None:
        if self.device not in _DEVICES:
            raise ValueError(f"KernelPolicy: device must be one of {_DEVICES}, got {self.device!r}")
        if self.compiled not in _COMPILED:
            raise ValueError(f"KernelPolicy: compiled must be one of {_COMPILED}, got {self.compiled!r}")

    def compiled_form(self, auto: str) -> str:
        """``"fused"`` or ``"opaque"``: the compiled form of an op whose own preference is ``auto``."""
        return auto if self.compiled == "auto" else self.compiled

    def family(self, device: torch.device) -> str:
        """``"cpu"`` or ``"cuda"``: the eager kernel family for tensors on ``device``."""
        if self.device != "auto":
            return self.device
        return "cpu" if device.type == "cpu" else "cuda"


_DEFAULT = KernelPolicy()
_STACK: list[KernelPolicy] = []


def current_kernel_policy() -> KernelPolicy:
    """The innermost :func:`kernel_policy` in effect, else the default ``KernelPolicy()``."""
    return _STACK[-1] if _STACK else _DEFAULT


@contextlib.contextmanager
def kernel_policy(policy: KernelPolicy | str) -> Iterator[KernelPolicy]:
    """Run the enclosed ops under ``policy``.

    Parameters
    ----------
    policy : KernelPolicy or str
        A policy, or a device family name (``"auto"``, ``"cpu"``, ``"cuda"``) as shorthand
        for ``KernelPolicy(device=name)``.
    """
    if isinstance(policy, str):
        policy = KernelPolicy(device=policy)
    if not isinstance(policy, KernelPolicy):
        raise TypeError(f"kernel_policy: expected a KernelPolicy or a str, got {type(policy).__name__}")
    _STACK.append(policy)
    try:
        yield policy
    finally:
        _STACK.pop()
