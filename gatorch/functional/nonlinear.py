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

import itertools
import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gatorch.algebras.layout import Layout, check_layout
from gatorch.functional.activations import ACTIVATIONS

if TYPE_CHECKING:
    from gatorch.algebras.algebra import AlgebraData as Algebra

__all__ = [
    "EPS_MODES",
    "GATES",
    "NORM_DEFAULTS",
    "NORM_STATISTICS",
    "blade_grade_index",
    "equi_layer_norm",
    "gated",
    "grade_invariants",
    "layout_blade_inner",
    "power_of_two_scale",
    "scalar_layer_norm",
    "smooth_norm",
]

#: The gates by name: :data:`gatorch.functional.activations.ACTIVATIONS` (one registry, one
#: meaning per name; ``"gelu"`` is the tanh approximation).
GATES = ACTIVATIONS


def gated(alg: Algebra, x: Tensor, gate: str = "gelu", *, layout: Layout | None = None) -> Tensor:
    r"""Scalar-gated nonlinearity :math:`x \mapsto \sigma(\langle x\rangle_0)\, x` (GATr's gating).

    The gate is the activation of the scalar coefficient, an invariant, so the map is
    equivariant: ``x * act(x_0)`` with GELU (tanh approximation), ReLU, sigmoid, SiLU or tanh.

    Parameters
    ----------
    x : Tensor, shape (..., dim) or (..., layout.dim)
    gate : {"gelu", "relu", "sigmoid", "silu", "tanh"}
    layout : Layout, optional
        The grades ``x`` stores (:class:`~gatorch.algebras.Layout`); it must store grade 0
        (the scalar blade, first in every layout). ``None``: all blades.
    """
    check_layout_dim(alg, layout, x, "gated", need_scalar=True)
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


def check_layout_dim(
    alg: Algebra, layout: Layout | None, x: Tensor, who: str, *, need_scalar: bool = False
) -> None:
    """Raise ``ValueError`` unless the last axis of ``x`` holds the blades of ``layout``
    (all of ``alg``'s for ``None``), and, with ``need_scalar``, unless the layout stores grade 0."""
    if layout is None:
        alg.check_dim(x, who)
        return
    layout = check_layout(alg, layout, who)
    assert layout is not None
    if need_scalar and not layout.has_grade(0):
        raise ValueError(
            f"{who}: the scalar gate needs grade 0 in the layout, got layout grades {layout.grades}"
        )
    if not isinstance(x, torch.Tensor) or x.ndim == 0 or x.shape[-1] != layout.dim:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(
            f"{who}: expected last dimension {layout.dim} (the blades of grades {layout.grades}), got {got}"
        )


def blade_grade_index(alg: Algebra, layout: Layout | None, device: torch.device) -> Tensor:
    """The grade of each stored blade, shape ``(dim,)`` (``(layout.dim,)`` with a layout), long.

    ``per_grade.index_select(-1, blade_grade_index(...))`` spreads ``(..., n + 1)`` per-grade
    values over the blades of ``x``.
    """
    if layout is None:
        return alg.tensor_constant("blade_grades", device, torch.long, lambda: torch.tensor(alg.grades))
    grades = layout.blade_grades.tolist()
    key = ("layout_blade_grades", layout.grades)
    return alg.tensor_constant(key, device, torch.long, lambda: torch.tensor(grades))


def layout_blade_inner(layout: Layout) -> list[int]:
    r"""``<~e_A e_A>_0`` of each blade ``A`` the layout stores: the product of its basis vectors'
    squares (0 for blades with a degenerate vector, -1 or +1 otherwise), from the layout's metric.

    Pure Python (blades of each stored grade in lexicographic order, the layout's order), so
    that it traces under ``torch.compile``."""
    return [_blade_square(layout.metric, c) for _, c in _layout_blades(layout)]


def _blade_square(metric: tuple[int, ...], vectors: tuple[int, ...]) -> int:
    """The product of the squares of ``vectors`` (a loop: traces under ``torch.compile``)."""
    w = 1
    for i in vectors:
        w *= metric[i]
    return w


def _layout_blades(layout: Layout) -> list[tuple[int, tuple[int, ...]]]:
    """``(grade, basis vectors)`` of each stored blade, in the layout's order (pure Python)."""
    return [(g, c) for g in layout.grades for c in itertools.combinations(range(layout.n), g)]


def grade_invariants(alg: Algebra, x: Tensor, *, layout: Layout | None = None) -> Tensor:
    """Per-grade invariants ``|<x_k, x_k>|`` (degenerate blades dropped), shape (..., n + 1).

    With a ``layout`` (:class:`~gatorch.algebras.Layout`), ``x`` holds its blades,
    ``(..., layout.dim)``, and the sums run over them only (the metric signs of the stored
    blades, from the layout); the grades it does not store get 0.
    """
    check_layout_dim(alg, layout, x, "grade_invariants")
    # (x * x) @ G with G[A, k] = <~e_A e_A>_0 [grade(A) == k]: the per-grade sums in one matmul
    if layout is None or layout.is_full:
        return torch.matmul(x * x, _grade_inner_matrix(alg, x.device, x.dtype)).abs()
    return torch.matmul(x * x, _layout_grade_inner_matrix(alg, layout, x.device, x.dtype)).abs()


def _layout_grade_inner_matrix(
    alg: Algebra, layout: Layout, device: torch.device, dtype: torch.dtype, stored: bool = False
) -> Tensor:
    """``G[A, k]`` of :func:`_grade_inner_matrix` for the blades of ``layout``, shape (layout.dim, n + 1).

    ``stored``: only the columns of the grades the layout stores, shape
    (layout.dim, len(layout.grades)) (the others are zero).
    """
    columns = layout.grades if stored else tuple(range(layout.n + 1))

    def build() -> Tensor:
        rows = [
            [float(_blade_square(layout.metric, c)) if k == g else 0.0 for k in columns]
            for g, c in _layout_blades(layout)
        ]
        return torch.tensor(rows, dtype=torch.float64)

    key = ("layout_grade_inner_matrix", layout.grades) + (("stored",) if stored else ())
    return alg.tensor_constant(key, device, dtype, build)


def _invariant_sum(alg: Algebra, x: Tensor, layout: Layout | None) -> Tensor:
    """``sum_k |<x_k, x_k>|`` (``grade_invariants(...).sum(-1)``), shape (...).

    On a partial layout, over the stored grades only (the others add exact zeros) and from
    ``square(x)``: autograd then keeps ``x`` once and ``len(layout.grades)`` invariants per
    channel, not ``n + 1``.
    """
    if layout is None or layout.is_full:
        return grade_invariants(alg, x).sum(-1)
    return (
        torch.matmul(torch.square(x), _layout_grade_inner_matrix(alg, layout, x.device, x.dtype, True))
        .abs()
        .sum(-1)
    )


def _grade_inner_matrix(alg: Algebra, device: torch.device, dtype: torch.dtype) -> Tensor:
    """``G[A, k] = <~e_A e_A>_0 [grade(A) == k]``, shape (dim, n + 1), from the algebra's store."""

    def build() -> Tensor:
        inner = torch.from_numpy(alg._constant_array("inner"))
        return inner[:, None] * torch.nn.functional.one_hot(torch.tensor(alg.grades), alg.n + 1)

    return alg.tensor_constant("grade_inner_matrix", device, dtype, build)


NORM_STATISTICS = ("rms", "mean")
EPS_MODES = ("add", "clamp")
#: The default ``(eps, eps_mode)`` of :class:`~gatorch.layers.EquiLayerNorm` per statistic: GATr's and
#: L-GATr's floor for ``"rms"`` (gain at most 10 on null inputs), CGENN's for ``"mean"``.
NORM_DEFAULTS = {"rms": (0.01, "clamp"), "mean": (1e-6, "add")}


def smooth_norm(q: Tensor, eps: float = 1e-16) -> Tensor:
    r"""The square root of a non-negative invariant, smoothed at 0: :math:`(q^2 + \epsilon)^{1/4}`.

    CGENN's "smooth absolute square root": finite value and gradient at ``q = 0``
    (:math:`\epsilon^{1/4}`, 1e-4 by default), equal to :math:`\sqrt{|q|}` up to
    :math:`O(\epsilon / q^2)` elsewhere.
    """
    return (q * q + eps) ** 0.25


def power_of_two_scale(magnitude: Tensor) -> Tensor:
    """The power of two ``s >= 1`` with ``magnitude <= s`` (within a factor 2; 1 for ``magnitude <= 1``).

    Dividing a tensor by it is exact (a shift of the exponent), so a norm computed on
    ``x / s`` with its epsilon divided by ``s**2`` gives bit for bit the result computed on
    ``x`` wherever that does not overflow, and a finite one where squaring ``x`` would (1e20
    in float32). Pass it a detached ``max |x|``; the norms divide by it before squaring.

    Parameters
    ----------
    magnitude : Tensor
        Non-negative.

    Returns
    -------
    Tensor, the shape and dtype of ``magnitude``.
    """
    return torch.exp2(torch.ceil(torch.log2(magnitude.clamp_min(1.0))))


def _safe_sqrt(v: Tensor) -> Tensor:
    """``sqrt(v)`` for ``v >= 0`` with a zero (not infinite) gradient at ``v == 0``."""
    positive = v > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, v, torch.ones_like(v))), 0.0)


def equi_layer_norm(
    alg: Algebra,
    x: Tensor,
    eps: float = 1e-6,
    *,
    statistic: str = "rms",
    eps_mode: str = "add",
    layout: Layout | None = None,
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

    Null inputs. For a null multivector (``e0`` in PGA, a lightlike ``e0 + e1`` in STA, a
    conformal point in CGA) every :math:`Q_c` is 0, and no invariant can do better: the
    Lorentz and conformal groups are not compact, a boost maps ``e0 + e1`` to any positive
    multiple of it, so every invariant takes one value on all of them. The floor ``eps`` is
    what bounds the result: for ``"rms"`` the gain :math:`|y|/|x|` is at most
    :math:`1/\sqrt{\epsilon}` (``"mean"``: :math:`1/\epsilon`). With ``"clamp"``, below the
    floor the map is linear, :math:`y = x/\sqrt{\epsilon}`, so the Jacobian is
    :math:`I/\sqrt{\epsilon}`; with ``"add"`` it also has the term
    :math:`-x\,(\nabla Q)^\top / (2 (\bar Q + \epsilon)^{3/2})`, of size
    :math:`|x|^2/\epsilon^{3/2}` on null inputs (5e6 for :math:`|x| = 3`, ``eps=1e-6``).
    The layers (:class:`~gatorch.layers.EquiLayerNorm`, :class:`~gatorch.layers.NormConfig`)
    therefore clamp at 0.01 by default (GATr's and L-GATr's floor, gain at most 10).

    Large inputs. The statistic is homogeneous, so it is computed on :math:`u = x / s` with
    :math:`s \ge \max(1, \max |x|)` a power of two per item (over channels and blades,
    :func:`power_of_two_scale`) and the floor in the
    units of :math:`u` (:math:`\sqrt{\epsilon}/s`, ``"mean"``: :math:`\epsilon/s`): the same
    value, without squaring :math:`|x|`, so inputs of 1e20 give finite, normalised outputs in
    float32 (squaring them overflows to inf, and inf / inf is NaN), and exact nulls of any
    size get the gain :math:`1/\sqrt{\epsilon}`. Only ``"mean"``'s smoothing :math:`10^{-16}`
    underflows for exact nulls beyond :math:`|x| \approx 10^7` (float32), where the floor
    alone bounds the gain (:math:`1/\epsilon`).

    Parameters
    ----------
    x : Tensor, shape (..., channels, dim)
    eps : float
        The floor of the statistic: keeps null inputs (e.g. pure ``e0`` in PGA) finite,
        with finite gradients, and bounds the gain on them (see above).
    statistic : {"rms", "mean"}
    eps_mode : {"add", "clamp"}
    layout : Layout, optional
        The grades ``x`` stores (:class:`~gatorch.algebras.Layout`): ``x`` is
        ``(..., channels, layout.dim)`` and :math:`Q_c` sums over the stored blades only
        (:func:`grade_invariants` with the layout), so the result equals the full norm of
        ``layout.embed(x)``, projected. ``None``: all blades.

    Returns
    -------
    Tensor, shape (..., channels, dim), in the dtype of ``x``.
    """
    check_layout_dim(alg, layout, x, "equi_layer_norm")
    if x.ndim < 2:
        dim = alg.dim if layout is None else layout.dim
        raise ValueError(f"equi_layer_norm: expected (..., channels, {dim}), got {tuple(x.shape)}")
    if statistic not in NORM_STATISTICS:
        raise ValueError(f"equi_layer_norm: statistic must be one of {NORM_STATISTICS}, got {statistic!r}")
    if eps_mode not in EPS_MODES:
        raise ValueError(f"equi_layer_norm: eps_mode must be one of {EPS_MODES}, got {eps_mode!r}")
    wide = torch.promote_types(x.dtype, torch.float32)
    with torch.autocast(device_type=x.device.type, enabled=False):
        xw = x.to(wide)
        # The statistic is homogeneous in x, so x = s * u, s the power of two >= max(1, max |x|)
        # of the item (detached: the result does not depend on s), gives the same y from u,
        # whose squares cannot overflow (1e20 ** 2 is inf in float32); s = 1 (u = x) unless
        # some |component| exceeds 1.
        s = power_of_two_scale(xw.detach().abs().amax(dim=(-2, -1)))[..., None]  # (..., 1)
        u = xw * torch.reciprocal(s)[..., None]  # exact: s is a power of two
        q = _invariant_sum(alg, u, layout)  # (..., C): Q(u) = Q(x) / s^2
        clamp = eps_mode == "clamp"
        if statistic == "rms":
            # sqrt(max(m, eps)) or sqrt(m + eps) in units of u: max(sqrt(m(u)), t) or hypot(sqrt(m(u)), t)
            # with t = sqrt(eps) / s, which stays representable where eps / s^2 would underflow
            root = _safe_sqrt(q.mean(-1, keepdim=True))
            t = math.sqrt(eps) / s
            denominator = torch.maximum(root, t) if clamp else torch.hypot(root, t)
        else:
            # smooth_norm(Q(x)) = s * (Q(u)^2 + 1e-16 / s^4)^(1/4); the smoothing may underflow
            # for huge s, where the floor eps / s (representable) takes over
            smoothing = 1e-16 / s / s / s / s
            m = _safe_sqrt(_safe_sqrt(q * q + smoothing)).mean(-1, keepdim=True)
            floor = eps / s
            denominator = torch.maximum(m, floor) if clamp else m + floor
        gain = torch.reciprocal(denominator.clamp_min(torch.finfo(wide).tiny))  # eps = 0 on a zero input
        out = u * gain[..., None]
    return out.to(x.dtype)


def scalar_layer_norm(
    s: Tensor, eps: float = 1e-5, weight: Tensor | None = None, bias: Tensor | None = None
) -> Tensor:
    r"""Layer norm of the last axis that does not overflow: ``torch.nn.functional.layer_norm``'s result.

    .. math::
        y = \frac{s - \bar s}{\sqrt{\operatorname{Var}(s) + \epsilon}} \odot w + b

    computed on :math:`s / c` with :math:`c \ge \max(1, \max_j |s_j|)` a power of two
    (:func:`power_of_two_scale`) and :math:`\epsilon / c^2`: the same value, so inputs of 1e20
    give finite outputs in float32 where squaring them would overflow. Computed in float32
    (or wider) under autocast.

    Parameters
    ----------
    s : Tensor, shape (..., channels)
    eps : float
    weight, bias : Tensor, shape (channels,), optional

    Returns
    -------
    Tensor, shape (..., channels), in the dtype of ``s``.
    """
    wide = torch.promote_types(s.dtype, torch.float32)
    with torch.autocast(device_type=s.device.type, enabled=False):
        sw = s.to(wide)
        c = power_of_two_scale(sw.detach().abs().amax(-1, keepdim=True))
        u = sw / c
        d = u - u.mean(-1, keepdim=True)
        var = (d * d).mean(-1, keepdim=True)
        # eps / c / c: c * c would overflow first; the clamp keeps constant huge rows at 0, not NaN
        out = d * torch.rsqrt((var + eps / c / c).clamp_min(torch.finfo(wide).tiny))
        if weight is not None:
            out = out * weight.to(wide)
        if bias is not None:
            out = out + bias.to(wide)
    return out.to(s.dtype)
