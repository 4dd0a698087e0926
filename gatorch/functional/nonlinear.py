r"""Equivariant nonlinearities and normalisation of multivector channels.

Both act through invariants only, so they commute with the twisted versor action:

* gated nonlinearities scale each multivector by a function of its scalar coefficient,
  which is invariant under every versor (GATr's scalar gating);
* layer normalisation divides by an invariant norm: the mean over channels of
  :math:`\sum_k |\langle x, x\rangle_k|` per grade (blades with a degenerate factor
  dropped, absolute value per grade for indefinite metrics, L-GATr's choice). It is
  computed in float32 (or wider) even under autocast, and stays finite for null inputs.
  CGENN's variant divides by the mean of the channel norms instead (``statistic="mean"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gatorch.functional.activations import ACTIVATIONS

if TYPE_CHECKING:
    from gatorch.algebras.algebra import AlgebraData as Algebra

__all__ = [
    "EPS_MODES",
    "GATES",
    "NORM_STATISTICS",
    "equi_layer_norm",
    "gated",
    "grade_invariants",
    "smooth_norm",
]

#: The gates by name: :data:`gatorch.functional.activations.ACTIVATIONS` (one registry, one
#: meaning per name; ``"gelu"`` is the tanh approximation).
GATES = ACTIVATIONS


def gated(alg: Algebra, x: Tensor, gate: str = "gelu") -> Tensor:
    r"""Scalar-gated nonlinearity :math:`x \mapsto \sigma(\langle x\rangle_0)\, x` (GATr's gating).

    The gate is the activation of the scalar coefficient, an invariant, so the map is
    equivariant: ``x * act(x_0)`` with GELU (tanh approximation), ReLU, sigmoid, SiLU or tanh.

    Parameters
    ----------
    x : Tensor, shape (..., dim)
    gate : {"gelu", "relu", "sigmoid", "silu", "tanh"}
    """
    alg.check_dim(x, "gated")
    if gate not in GATES:
        raise ValueError(f"gated: unknown gate {gate!r}; expected one of {sorted(GATES)}")
    if torch.compiler.is_compiling() or not (torch.is_grad_enabled() and x.requires_grad):
        return x * GATES[gate](x[..., :1])  # inductor fuses this; no autograd bookkeeping needed
    return _Gated.apply(x, gate)


class _Gated(torch.autograd.Function):
    """Eager ``x * act(x_0)`` whose backward adds the gate's gradient to component 0 in place.

    Plain autograd would route that gradient through a slice backward (a zero-filled copy
    of ``x`` and one more full-size add).
    """

    @staticmethod
    def forward(ctx, x: Tensor, gate: str) -> Tensor:
        ctx.gate = gate
        ctx.save_for_backward(x)
        return x * GATES[gate](x[..., :1])

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        create = torch.is_grad_enabled()  # double backward: keep the graph through x
        with torch.enable_grad():
            x0 = x[..., :1]
            if not x0.requires_grad:
                x0 = x0.detach().requires_grad_(True)
            g = GATES[ctx.gate](x0)
            # d/dx (x * g(x_0)) = g(x_0) + e_0 (x . grad) g'(x_0)
            (dg,) = torch.autograd.grad(g, x0, (grad * x).sum(-1, keepdim=True), create_graph=create)
        gx = grad * g
        gx[..., :1] += dg
        return gx, None


def grade_invariants(alg: Algebra, x: Tensor) -> Tensor:
    """Per-grade invariants ``|<x_k, x_k>|`` (degenerate blades dropped), shape (..., n + 1)."""
    alg.check_dim(x, "grade_invariants")
    # (x * x) @ G with G[A, k] = <~e_A e_A>_0 [grade(A) == k]: the per-grade sums in one matmul
    return torch.matmul(x * x, _grade_inner_matrix(alg, x.device, x.dtype)).abs()


def _grade_inner_matrix(alg: Algebra, device: torch.device, dtype: torch.dtype) -> Tensor:
    """``G[A, k] = <~e_A e_A>_0 [grade(A) == k]``, shape (dim, n + 1), from the algebra's store."""

    def build() -> Tensor:
        inner = torch.from_numpy(alg._constant_array("inner"))
        return inner[:, None] * torch.nn.functional.one_hot(torch.tensor(alg.grades), alg.n + 1)

    return alg.tensor_constant("grade_inner_matrix", device, dtype, build)


NORM_STATISTICS = ("rms", "mean")
EPS_MODES = ("add", "clamp")


def smooth_norm(q: Tensor, eps: float = 1e-16) -> Tensor:
    r"""The square root of a non-negative invariant, smoothed at 0: :math:`(q^2 + \epsilon)^{1/4}`.

    CGENN's "smooth absolute square root": finite value and gradient at ``q = 0``
    (:math:`\epsilon^{1/4}`, 1e-4 by default), equal to :math:`\sqrt{|q|}` up to
    :math:`O(\epsilon / q^2)` elsewhere.
    """
    return (q * q + eps) ** 0.25


def equi_layer_norm(
    alg: Algebra, x: Tensor, eps: float = 1e-6, *, statistic: str = "rms", eps_mode: str = "add"
) -> Tensor:
    r"""Normalise multivector channels by an invariant norm shared across channels.

    With :math:`Q_c = \sum_k |\langle x_c, x_c\rangle_k|` the invariant squared norm of
    channel ``c`` (:func:`grade_invariants` summed over grades):

    .. math::
        \text{"rms"}:\quad y = x \Big/ \sqrt{\tfrac{1}{C}\sum_c Q_c + \epsilon}
        \qquad
        \text{"mean"}:\quad y = x \Big/ \Big(\tfrac{1}{C}\sum_c (Q_c^2 + 10^{-16})^{1/4}
        + \epsilon\Big)

    ``"rms"`` is GATr's and L-GATr's layer norm; ``"mean"`` divides by the mean of the
    channel norms (:func:`smooth_norm`), as CGENN's ``MVLayerNorm``. With
    ``eps_mode="clamp"`` the statistic is bounded below by ``eps`` instead of having ``eps``
    added: :math:`y = x / \sqrt{\max(\tfrac{1}{C}\sum_c Q_c, \epsilon)}` for ``"rms"``
    (L-GATr's layer norm, with :math:`\epsilon = 0.01`), and
    :math:`\max(\cdot, \epsilon)` of the mean of the norms for ``"mean"``.

    Parameters
    ----------
    x : Tensor, shape (..., channels, dim)
    eps : float
        Keeps null inputs (e.g. pure ``e0`` in PGA) finite, with finite gradients.
    statistic : {"rms", "mean"}
    eps_mode : {"add", "clamp"}

    Returns
    -------
    Tensor, shape (..., channels, dim), in the dtype of ``x``.
    """
    alg.check_dim(x, "equi_layer_norm")
    if x.ndim < 2:
        raise ValueError(f"equi_layer_norm: expected (..., channels, {alg.dim}), got {tuple(x.shape)}")
    if statistic not in NORM_STATISTICS:
        raise ValueError(f"equi_layer_norm: statistic must be one of {NORM_STATISTICS}, got {statistic!r}")
    if eps_mode not in EPS_MODES:
        raise ValueError(f"equi_layer_norm: eps_mode must be one of {EPS_MODES}, got {eps_mode!r}")
    wide = torch.promote_types(x.dtype, torch.float32)
    with torch.autocast(device_type=x.device.type, enabled=False):
        xw = x.to(wide)
        q = grade_invariants(alg, xw).sum(-1)  # (..., C)
        clamp = eps_mode == "clamp"
        if statistic == "rms":
            m = q.mean(-1, keepdim=True)
            scale = torch.sqrt(m.clamp_min(eps) if clamp else m + eps)
        else:
            m = smooth_norm(q).mean(-1, keepdim=True)
            scale = m.clamp_min(eps) if clamp else m + eps
        out = xw / scale[..., None]
    return out.to(x.dtype)
