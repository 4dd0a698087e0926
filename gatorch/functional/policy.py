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

:class:`KernelPolicy` holds the choice, and it is passed in explicitly: every op that has
several kernels takes ``policy=`` (``gp``, ``outer``, ``lcontract``, ``regressive``,
``bilinear``, ``equi_linear``, ``equi_linear_readout``, ``steerable_gp``, ``qt_gp``), and the
layers that run them take a ``kernel_policy=`` constructor option (or get one later from
:func:`gatorch.layers.set_kernel_policy`, which walks a whole net), so a module carries its
own. ``policy=None`` means the ambient policy: the innermost :func:`kernel_policy` context in
effect in this thread (or asyncio task: it is a :class:`contextvars.ContextVar`, so threads
do not see each other's), else the default ``KernelPolicy()``.

Under ``torch.compile`` the ambient policy is read once, when a graph is traced, and baked
into it (dynamo cannot guard on a context variable): to switch the kernels of a compiled
module, give it its policy explicitly, or ``torch._dynamo.reset()``. An explicit policy is
an ordinary Python value of the module, which dynamo guards on.

The default, ``KernelPolicy()``, picks the
family from each tensor's device and lets each op take the compiled form that measured
best (``compiled="auto"``): opaque for the bilinear products and equivariant linear maps
of GATr-style nets (their fused form costs minutes of compile on a small CPU and ran no
faster), fused for CGENN's steerable product and GLGENN's product (seconds of compile,
several times faster than their eager kernels). The policy is read once per call
(eagerly) or once per trace (under ``torch.compile``: dynamo guards on it, so changing
an explicit policy recompiles).

Examples
--------
>>> import torch
>>> from gatorch import STA
>>> from gatorch.functional import KernelPolicy, kernel_policy
>>> x, y = torch.randn(2, 5, 16, dtype=torch.float64)
>>> from gatorch.functional import gp
>>> z = gp(STA, x, y, policy=KernelPolicy(device="cuda"))  # the GPU kernels, run on the CPU
>>> torch.allclose(z, STA.gp_dense(x, y))
True
>>> with kernel_policy(KernelPolicy(device="cuda")):  # the same, as the ambient policy
...     z = STA.gp(x, y)
>>> torch.allclose(z, STA.gp_dense(x, y))
True
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

import torch

__all__ = [
    "KernelPolicy",
    "check_kernel_policy",
    "current_kernel_policy",
    "kernel_policy",
    "resolve_kernel_policy",
]

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
#: The ambient policy of this thread / task (``None``: the default). Set only by :func:`kernel_policy`.
_AMBIENT: contextvars.ContextVar[KernelPolicy | None] = contextvars.ContextVar(
    "gatorch_kernel_policy", default=None
)


@torch.compiler.assume_constant_result
def _ambient_fields() -> tuple[str, str]:
    """The ambient policy's fields: called (not traced) by dynamo, a constant of the graph."""
    policy = _AMBIENT.get()
    policy = _DEFAULT if policy is None else policy
    return policy.device, policy.compiled


def current_kernel_policy() -> KernelPolicy:
    """The innermost :func:`kernel_policy` in effect in this context, else the default ``KernelPolicy()``.

    Under ``torch.compile`` it is read when the graph is traced (see the module docstring).
    """
    if torch.compiler.is_compiling():
        return KernelPolicy(*_ambient_fields())
    policy = _AMBIENT.get()
    return _DEFAULT if policy is None else policy


def check_kernel_policy(who: str, policy: object, name: str = "policy") -> KernelPolicy | None:
    """``policy`` when it is a :class:`KernelPolicy` or ``None``, else a ``TypeError`` naming ``name``."""
    if policy is not None and not isinstance(policy, KernelPolicy):
        raise TypeError(
            f"{who}: {name} must be a gatorch.functional.KernelPolicy or None, got {type(policy).__name__}"
        )
    return policy


def resolve_kernel_policy(policy: KernelPolicy | None, who: str = "kernel policy") -> KernelPolicy:
    """``policy`` itself when given, else :func:`current_kernel_policy`; ``TypeError`` for anything else."""
    checked = check_kernel_policy(who, policy)
    return current_kernel_policy() if checked is None else checked


@contextlib.contextmanager
def kernel_policy(policy: KernelPolicy | str) -> Iterator[KernelPolicy]:
    """Run the enclosed ops under ``policy`` (where they are not given one explicitly).

    Thread-safe: the policy is a :class:`contextvars.ContextVar`, seen only by this thread
    (or asyncio task) and the code it calls.

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
    token = _AMBIENT.set(policy)
    try:
        yield policy
    finally:
        _AMBIENT.reset(token)
