r"""GCAN's layers: group action linear layers, the multivector activation and group norm.

Geometric Clifford Algebra Networks (Ruhe, Gupta, de Keninck, Welling, Brandstetter,
ICML 2023) build networks from *group action layers*: every output channel is a learned
combination of the input channels, each moved by its own learned versor,

.. math::
    y_o = \sum_i w_{oi}\, V_{oi}\, x_i\, V_{oi}^{-1}.

The versors act as adjustable "geometric templates" (in PGA3 they are motors: rotations,
translations and screw motions). The reference implementation is ``PGAConjugateLinear``,
``MultiVectorAct`` and ``CliffordG3GroupNorm`` in ``microsoft/cliffordlayers``
(``cliffordlayers/nn/modules/gcan.py``); here they are generic over the algebra:

* :class:`GroupActionLinear`: the group action layer, versors ``V = exp(B)`` of learned
  bivectors, per-grade weights, computed through per-grade action matrices.
* :class:`GCANActivation`: ``MultiVectorAct``, each channel gated by a sigmoid of a learned
  linear function (or the sum / mean) of its blade coefficients.
* :class:`GCANGroupNorm`: ``CliffordG3GroupNorm``, channel groups centred, optionally scaled
  by their mean norm, then a per-channel scale and a per-(channel, blade) bias.
* :func:`transform_parameters`: acts with a versor on the parameters of these layers,
  the other half of their covariance property (below).

Covariance, not equivariance
----------------------------
With :math:`\rho_g(x) = g\,\hat x^{|g|} g^{-1}` the twisted action of a versor ``g`` (odd
versors, reflections, included), these layers are **not** equivariant for generic
parameters: ``f(rho_g(x)) != rho_g(f(x))``. What holds, for every versor ``g`` and every
parameter value, is *covariance*: acting with ``g`` on the inputs **and** on the parameters
gives the transformed output,

.. math::
    f_{g \cdot \theta}(\rho_g(x), s) = (\rho_g(y), t) \quad\text{where } (y, t) = f_\theta(x, s),

with ``g . theta`` as done by :func:`transform_parameters`: bivectors
:math:`B \mapsto \rho_g(B)` (so :math:`V = e^B \mapsto \rho_g(V) = g V g^{-1}`), gate covectors
:math:`a \mapsto \rho_g^{-\top} a`, biases :math:`b \mapsto \rho_g(b)`; scalar channels
are unchanged. Stacks of these layers (and of gatorch's equivariant layers, whose
parameters need no transforming) inherit it. Layers whose transformed parameters equal the
originals (zero bivectors, activation gates on invariant grades only, no norm bias) are
equivariant outright.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gatorch.functional import versors
from gatorch.functional.algebra import Algebra
from gatorch.functional.nonlinear import grade_invariants
from gatorch.functional.unary import safe_sqrt
from gatorch.functional.zoo.gcan import group_action_matrices, per_grade_weight
from gatorch.layers._checks import check_algebra, check_int, check_mv, check_scalars
from gatorch.layers.linear import MVScalarLinear

__all__ = ["GCANActivation", "GCANGroupNorm", "GroupActionLinear", "transform_parameters"]


def _check_versor(alg: Algebra, w: object, who: str) -> Tensor:
    """One versor of shape ``(dim,)``, checked to be invertible (raises ValueError/TypeError)."""
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"{who}: expected the versor as a torch.Tensor of shape ({alg.dim},), got {type(w)}")
    alg.check_dim(w, f"{who} versor")
    if w.ndim != 1:
        raise ValueError(f"{who}: expected one versor of shape ({alg.dim},), got shape {tuple(w.shape)}")
    versors.inverse(alg, w)  # raises ValueError unless w is an invertible versor
    return w


def _action_rows(alg: Algebra, w: Tensor, like: Tensor) -> Tensor:
    """``R[j, k] = rho_w(e_j)_k`` as a ``(dim, dim)`` tensor in the dtype/device of ``like``."""
    w = w.to(device=like.device, dtype=like.dtype)
    eye = torch.eye(alg.dim, dtype=like.dtype, device=like.device)
    return versors.sandwich(alg, w, eye)


# -- layers -------------------------------------------------------------------------------------------
class GroupActionLinear(MVScalarLinear):
    r"""GCAN's group action layer: input channels moved by learned versors, then mixed.

    .. math::
        y_o = \sum_i \sum_k w_{oik}\, \big\langle V_{oi}\, x_i\, V_{oi}^{-1} \big\rangle_k
              + \Big(\sum_j S_{oj} s_j + b_o\Big)\, 1,
        \qquad V_{oi} = \exp(B_{oi}),

        t_p = \sum_i U_{pi} \langle x_i\rangle_0 + \sum_j T_{pj} s_j + \beta_p,

    with :math:`B_{oi}` learned bivectors (``alg.exp``: rotors, boosts, translators, motors;
    in PGA3 the motors of GCAN's ``PGAConjugateLinear``) and per-grade weights
    :math:`w_{oik}` (``grade_weights=True``; GCAN uses one weight per pair,
    ``grade_weights=False``). Per-grade weights are natural because the sandwich
    preserves grades. Scalar channels enter and leave through the scalar blade, which every
    versor fixes. The versors are parametrised through the exponential (GCAN parametrises
    motor coefficients directly and normalises them at initialisation); ``exp(B)`` is a
    versor for any ``B``, so no normalisation is needed during training.

    Computation: the action of each :math:`V_{oi}` is a grade-block-diagonal linear map;
    the blocks are built once per forward
    (:func:`~gatorch.functional.zoo.gcan.group_action_matrices`, two geometric products per
    basis blade and pair), scaled by the weights, and applied with one GEMM per grade over the
    whole batch, ``(N, in * d_k) @ (in * d_k, out * d_k)``. The naive formulation
    (:func:`~gatorch.functional.zoo.gcan.group_action_linear_naive`) needs two geometric
    products per pair *per item*. Building the blocks costs about as much as the naive formulation on
    ``dim`` items, so it pays for batches larger than that (``benchmarks/bench_gcan.py``:
    about 8-10x faster forward at 1024 items x 16 channels, no faster at 32 items).

    Equivariance: not equivariant to a versor acting on the inputs alone (unless all
    bivectors vanish). Covariant: ``f_{g.theta}(rho_g(x), s) = (rho_g(y), t)`` with
    ``g.theta`` the bivectors :math:`B \mapsto \rho_g(B)`, i.e. versors
    :math:`V \mapsto g V g^{-1}`, for every versor ``g`` including odd ones; see
    :meth:`transform_parameters_` and the module docstring. Scalar outputs are invariant.

    Initialisation (as GCAN): bivector components on blades without a degenerate factor
    (rotation planes, and boost planes in indefinite signatures) uniform in
    ``[-1, 1]``; components with a degenerate factor (translations in PGA) zero. Weights
    normal with variance ``1 / fan_in`` (``fan_in = in_channels``, plus ``in_s_channels``
    for grade 0); the versor action preserves the norm in Euclidean signatures, so unit
    variance inputs give outputs of variance near 1.

    Parameters
    ----------
    alg : Algebra
    in_channels, out_channels : int
        Multivector channels.
    in_s_channels, out_s_channels : int
        Scalar channels (0: none).
    grade_weights : bool
        One weight per (output, input, grade) if True, per (output, input) if False.
    bias : bool
        Bias on the scalar blade of the multivector outputs and on the scalar outputs
        (GCAN has none: default False).

    Shapes
    ------
    ``forward(mv, scalars=None) -> (mv_out, scalars_out)`` with ``mv: (..., in_channels, dim)``,
    ``scalars: (..., in_s_channels)`` (required when ``in_s_channels > 0``), ``mv_out:
    (..., out_channels, dim)``, ``scalars_out: (..., out_s_channels)``.

    Attributes
    ----------
    bivector : Parameter, shape (out_channels, in_channels, C(n, 2))
        Grade-2 components of :math:`B_{oi}`, in the order of ``alg.grade_slice(2)``.
    weight : Parameter, shape (out_channels, in_channels, n + 1) or (out_channels, in_channels, 1)
    """

    _rotational: Tensor
    s_to_s: nn.Parameter | None

    def __init__(
        self,
        alg: Algebra,
        in_channels: int,
        out_channels: int,
        *,
        in_s_channels: int = 0,
        out_s_channels: int = 0,
        grade_weights: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__("GroupActionLinear", alg, in_channels, out_channels, in_s_channels, out_s_channels)
        if alg.n < 2:
            raise ValueError(f"GroupActionLinear: {alg!r} has no bivectors (needs n >= 2, got n = {alg.n})")
        self.grade_weights = bool(grade_weights)
        biv = alg.grade_slice(2)
        self.bivector = nn.Parameter(torch.empty(out_channels, in_channels, biv.stop - biv.start))
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, alg.n + 1 if grade_weights else 1))
        self._add_scalar_maps(bias=bias, s_to_s_linear=False)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self._add_scalar_bias(bias)
        # bivector blades with a degenerate factor (<~e_A e_A>_0 = 0): translations in PGA
        inner = alg.constant("inner", None, torch.float64)[biv]
        self.register_buffer("_rotational", inner != 0, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GCAN's initialisation of the versors, variance-preserving weights (class docstring)."""
        with torch.no_grad():
            self.bivector.uniform_(-1.0, 1.0).mul_(self._rotational.to(self.bivector.dtype))
            std = torch.full((self.weight.shape[-1],), 1.0 / math.sqrt(self.in_channels))
            if self.grade_weights:
                std[0] = 1.0 / math.sqrt(self.in_channels + self.in_s_channels)
            self.weight.normal_().mul_(std.to(self.weight.dtype))
            if self.bias is not None:
                self.bias.zero_()
        fan = self.in_channels + self.in_s_channels  # of the scalar blade and of the scalar outputs
        self._reset_scalar_maps(fan, fan)

    def extra_repr(self) -> str:
        return (
            f"{self.alg!r}, {self.in_channels} -> {self.out_channels} mv, "
            f"{self.in_s_channels} -> {self.out_s_channels} scalars, grade_weights={self.grade_weights}"
        )

    def bivectors(self) -> Tensor:
        """The bivectors :math:`B_{oi}` as multivectors, shape (out_channels, in_channels, dim)."""
        biv = self.alg.grade_slice(2)
        b = self.bivector
        zeros = b.new_zeros(*b.shape[:-1], biv.start), b.new_zeros(*b.shape[:-1], self.alg.dim - biv.stop)
        return torch.cat([zeros[0], b, zeros[1]], dim=-1)

    def versors(self) -> Tensor:
        r"""The versors :math:`V_{oi} = \exp(B_{oi})`, shape (out_channels, in_channels, dim)."""
        return versors.exp(self.alg, self.bivectors())

    def action_matrices(self) -> list[Tensor]:
        """Per-grade action blocks of the versors.

        See :func:`~gatorch.functional.zoo.gcan.group_action_matrices`.
        """
        return group_action_matrices(self.alg, self.versors())

    @torch.no_grad()
    def transform_parameters_(self, w: Tensor) -> GroupActionLinear:
        r"""Act on the layer's versors with a versor ``w`` in place: :math:`B \mapsto \rho_w(B)`.

        Then :math:`V \mapsto \rho_w(V) = w V w^{-1}` and the layer ``f'`` satisfies
        ``f'(rho_w(x), s) = (rho_w(y), t)`` with ``(y, t) = f(x, s)``. Returns ``self``.

        Parameters
        ----------
        w : Tensor, shape (dim,)
            An invertible versor (even or odd); ``ValueError`` otherwise.
        """
        w = _check_versor(self.alg, w, "GroupActionLinear.transform_parameters_")
        moved = versors.sandwich(self.alg, w.to(self.bivector), self.bivectors())
        self.bivector.copy_(moved[..., self.alg.grade_slice(2)])
        return self

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor]:
        who = "GroupActionLinear"
        check_mv(self.alg, mv, self.in_channels, who)
        check_scalars(scalars, self.in_s_channels, who)
        batch = mv.shape[:-2]
        weight = per_grade_weight(self.weight, self.alg).to(mv.dtype)
        blocks = [a.to(mv.dtype) for a in self.action_matrices()]
        x = mv.reshape(-1, self.in_channels, self.alg.dim)
        flat_s = None  # (N, in_s_channels), N the flattened batch
        if scalars is not None and self.in_s_channels:
            flat_s = scalars.reshape(-1, self.in_s_channels)
        extra = self._invariant_term(flat_s, mv.dtype)  # on the scalar blade: scalar inputs and the bias
        outs = []
        slices = [self.alg.grade_slice(k) for k in range(self.alg.n + 1)]
        for k, (s, a) in enumerate(zip(slices, blocks, strict=True)):
            d = s.stop - s.start
            # m[i, j, o, l] = w_{oik} A_{oi}[j, l]: one (in * d, out * d) GEMM per grade
            m = (weight[:, :, k, None, None] * a).permute(1, 2, 0, 3).reshape(self.in_channels * d, -1)
            y = (x[..., s].reshape(x.shape[0], -1) @ m).reshape(x.shape[0], self.out_channels, d)
            if k == 0 and extra is not None:
                y = y + extra[..., None]
            outs.append(y)
        out = torch.cat(outs, dim=-1).reshape(*batch, self.out_channels, self.alg.dim)
        s_out = mv.new_zeros(*batch, self.out_s_channels)
        if self.mv_to_s is not None:
            s_out = s_out + mv[..., self.alg.grade_slice(0)][..., 0] @ self.mv_to_s.to(mv.dtype).T
        return out, self._scalar_outputs(s_out, scalars, mv.dtype)


_AGGREGATIONS = ("linear", "sum", "mean")


class GCANActivation(nn.Module):
    r"""GCAN's multivector activation (``MultiVectorAct``): each channel gated by one sigmoid.

    .. math::
        y_c = \sigma\big(f_c(x_c)\big)\, x_c, \qquad
        f_c(x) = \sum_{A \in K} a_{cA}\, x_A + \beta_c \ (\texttt{"linear"}),\quad
        \sum_{A \in K} x_A \ (\texttt{"sum"}),\quad \tfrac{1}{|K|}\sum_{A \in K} x_A \ (\texttt{"mean"}),

    with :math:`K` the blades of ``kernel_grades`` (default: all). Unlike
    :class:`~gatorch.layers.MVSiLU` (one gate per grade, from invariants) the gate is one
    per channel and a *linear* function of the blade coefficients, as in GCAN. GCAN selects
    gate blades by index; here by whole grades, which the versor action preserves.
    Scalar channels go through ``torch.nn.functional.silu``.

    Equivariance: only when the gate reads invariant blades, e.g. ``kernel_grades=(0,)``.
    Otherwise covariant (``"linear"`` only): ``f_{g.a}(rho_g(x)) = rho_g(f_a(x))`` with
    :math:`a_c \mapsto \rho_g^{-\top} a_c`, because then
    :math:`\langle \rho_g^{-\top} a, \rho_g x\rangle = \langle a, x\rangle`; see
    :meth:`transform_parameters_`. ``"sum"`` and ``"mean"`` have no parameters to move and
    are neither (unless ``kernel_grades=(0,)``).

    Initialisation: ``a`` and ``beta`` uniform in :math:`\pm 1/\sqrt{|K|}` (the default of
    the ``Conv1d`` GCAN uses).

    Parameters
    ----------
    alg : Algebra
    channels : int
    kernel_grades : sequence of int, optional
        Grades whose blades feed the gate (default all).
    agg : {"linear", "sum", "mean"}

    Shapes
    ------
    ``forward(mv, scalars=None) -> (mv, scalars)``, ``mv: (..., channels, dim)``,
    ``scalars: (..., s_channels)`` (an empty ``(..., 0)`` tensor is returned when ``None``).

    Attributes
    ----------
    gate_weight : Parameter, shape (channels, |K|) (``"linear"`` only)
        Coefficients :math:`a_{cA}` on the blades of ``kernel_grades``, in blade order.
    gate_bias : Parameter, shape (channels,) (``"linear"`` only)
    """

    _kernel: Tensor

    def __init__(
        self, alg: Algebra, channels: int, kernel_grades: Sequence[int] | None = None, agg: str = "linear"
    ) -> None:
        super().__init__()
        check_algebra(alg, "GCANActivation")
        check_int("GCANActivation", "channels", channels, 1)
        if agg not in _AGGREGATIONS:
            raise ValueError(f"GCANActivation: unknown agg {agg!r}; expected one of {list(_AGGREGATIONS)}")
        grades = tuple(range(alg.n + 1)) if kernel_grades is None else tuple(kernel_grades)
        bad = [k for k in grades if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= alg.n]
        if bad or not grades or len(set(grades)) != len(grades):
            raise ValueError(
                f"GCANActivation: kernel_grades must be distinct ints in [0, {alg.n}] for {alg!r}, "
                f"got {kernel_grades!r}"
            )
        self.alg, self.channels, self.agg = alg, channels, agg
        self.kernel_grades = tuple(sorted(grades))
        idx = [i for i, g in enumerate(alg.grades) if g in self.kernel_grades]
        self.register_buffer("_kernel", torch.tensor(idx, dtype=torch.long), persistent=False)
        if agg == "linear":
            self.gate_weight: nn.Parameter | None = nn.Parameter(torch.empty(channels, len(idx)))
            self.gate_bias: nn.Parameter | None = nn.Parameter(torch.empty(channels))
        else:
            self.gate_weight = self.gate_bias = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform in ``+-1/sqrt(|K|)`` (class docstring)."""
        bound = 1.0 / math.sqrt(int(self._kernel.numel()))
        with torch.no_grad():
            for p in (self.gate_weight, self.gate_bias):
                if p is not None:
                    p.uniform_(-bound, bound)

    def extra_repr(self) -> str:
        return f"{self.alg!r}, channels={self.channels}, kernel_grades={self.kernel_grades}, agg={self.agg!r}"

    def gate(self, mv: Tensor) -> Tensor:
        """The pre-sigmoid gate :math:`f_c(x_c)`, shape (..., channels)."""
        check_mv(self.alg, mv, self.channels, "GCANActivation")
        xk = mv.index_select(-1, self._kernel)
        if self.agg == "linear":
            assert self.gate_weight is not None and self.gate_bias is not None
            return (xk * self.gate_weight.to(mv.dtype)).sum(-1) + self.gate_bias.to(mv.dtype)
        return xk.sum(-1) if self.agg == "sum" else xk.mean(-1)

    @torch.no_grad()
    def transform_parameters_(self, w: Tensor) -> GCANActivation:
        r"""Move the gate covectors contragrediently, :math:`a_c \mapsto \rho_w^{-\top} a_c`, in place.

        Afterwards ``f'(rho_w(x)) = rho_w(f(x))``. With ``agg`` ``"sum"``/``"mean"`` there is
        nothing to move (``ValueError`` unless the gate reads grade 0 only, where the action is
        trivial). Returns ``self``.

        Parameters
        ----------
        w : Tensor, shape (dim,)
            An invertible versor (even or odd).
        """
        w = _check_versor(self.alg, w, "GCANActivation.transform_parameters_")
        if self.gate_weight is None:
            if self.kernel_grades != (0,):
                raise ValueError(
                    f"GCANActivation.transform_parameters_: agg={self.agg!r} has no parameters to move, "
                    f"so it is covariant only for kernel_grades=(0,), got {self.kernel_grades}"
                )
            return self
        p = self.gate_weight
        # rows of the matrix of rho_w^{-1} = rho_{w^-1}: R_inv[j, k] = rho_{w^-1}(e_j)_k
        r_inv = _action_rows(self.alg, versors.inverse(self.alg, w), p)
        k = self._kernel
        full = p.new_zeros(p.shape[0], self.alg.dim).index_copy(-1, k, p)
        moved = full @ r_inv.T  # a'_j = sum_k rho_{w^-1}(e_j)_k a_k; stays on the kernel grades
        p.copy_(moved.index_select(-1, k))
        return self

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor]:
        out = mv * torch.sigmoid(self.gate(mv))[..., None]
        if scalars is None:
            return out, mv.new_zeros(*mv.shape[:-2], 0)
        return out, nn.functional.silu(scalars)


class GCANGroupNorm(nn.Module):
    r"""GCAN's group normalisation (``CliffordG3GroupNorm``) for any algebra.

    Channels are split into ``num_groups`` groups of ``m = channels / num_groups``; in each
    group

    .. math::
        z_c = x_c - \tfrac{1}{m}\textstyle\sum_{c' \in G} x_{c'}, \qquad
        z_c \leftarrow z_c \Big/ \Big(\tfrac{1}{m}\textstyle\sum_{c' \in G} \|z_{c'}\| + \epsilon\Big)
        \ (\texttt{scale\_norm}), \qquad y_c = \gamma_c\, z_c + b_c,

    with :math:`\gamma_c` a scalar per channel (init 1) and :math:`b_c` a multivector per
    channel (init 0). GCAN's norm is the Euclidean norm of the coefficients, which is the
    invariant norm of Euclidean algebras; here :math:`\|z\| = \sqrt{\sum_k |\langle z_k,
    z_k\rangle|}` (degenerate blades dropped, absolute value per grade, the invariants of
    :func:`gatorch.functional.nonlinear.grade_invariants`), the same for VGA and invariant
    for every signature. GCAN also averages over the spatial positions of its convolutions;
    on ``(..., channels, dim)`` inputs the statistics are per item. ``scale_norm`` defaults
    to False as in GCAN's code. This differs from :class:`~gatorch.layers.EquiLayerNorm`
    (no centring, no affine map, RMS over all channels).

    Equivariance: the centring, the invariant scaling and :math:`\gamma` commute with the
    action; the bias does not. With ``bias=False`` the layer is equivariant; with a bias it is
    covariant under :math:`b_c \mapsto \rho_g(b_c)` (:meth:`transform_parameters_`).
    Scalar channels, if any, go through ``nn.LayerNorm``.

    Parameters
    ----------
    alg : Algebra
    channels : int
    num_groups : int
        Must divide ``channels``, with at least 2 channels per group (a group of one is
        centred to zero).
    scale_norm : bool
    bias : bool
    s_channels : int
        Scalar channels normalised by ``nn.LayerNorm`` (0: none).
    eps : float

    Shapes
    ------
    ``forward(mv, scalars=None) -> (mv, scalars)``, ``mv: (..., channels, dim)``.
    """

    def __init__(
        self,
        alg: Algebra,
        channels: int,
        num_groups: int = 1,
        *,
        scale_norm: bool = False,
        bias: bool = True,
        s_channels: int = 0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        who = "GCANGroupNorm"
        check_algebra(alg, who)
        check_int(who, "channels", channels, 1)
        check_int(who, "num_groups", num_groups, 1)
        check_int(who, "s_channels", s_channels, 0)
        if channels % num_groups != 0 or channels // num_groups < 2:
            raise ValueError(
                f"{who}: num_groups must divide channels into groups of at least 2, "
                f"got channels={channels}, num_groups={num_groups}"
            )
        self.alg, self.channels, self.num_groups = alg, channels, num_groups
        self.scale_norm, self.eps, self.s_channels = bool(scale_norm), float(eps), s_channels
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels, alg.dim)) if bias else None
        self.scalar_norm = nn.LayerNorm(s_channels, eps=eps) if s_channels else None

    def extra_repr(self) -> str:
        return (
            f"{self.alg!r}, channels={self.channels}, num_groups={self.num_groups}, "
            f"scale_norm={self.scale_norm}, bias={self.bias is not None}, s_channels={self.s_channels}"
        )

    @torch.no_grad()
    def transform_parameters_(self, w: Tensor) -> GCANGroupNorm:
        r"""Act on the bias with a versor in place, :math:`b_c \mapsto \rho_w(b_c)`; returns ``self``."""
        w = _check_versor(self.alg, w, "GCANGroupNorm.transform_parameters_")
        if self.bias is not None:
            self.bias.copy_(versors.sandwich(self.alg, w.to(self.bias), self.bias))
        return self

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor]:
        who = "GCANGroupNorm"
        check_mv(self.alg, mv, self.channels, who)
        check_scalars(scalars, self.s_channels, who)
        batch = mv.shape[:-2]
        z = mv.reshape(*batch, self.num_groups, -1, self.alg.dim)
        z = z - z.mean(-2, keepdim=True)
        if self.scale_norm:
            norms = safe_sqrt(grade_invariants(self.alg, z).sum(-1))  # (..., groups, m)
            z = z / (norms.mean(-1, keepdim=True) + self.eps)[..., None]
        out = z.reshape(*batch, self.channels, self.alg.dim) * self.weight.to(mv.dtype)[:, None]
        if self.bias is not None:
            out = out + self.bias.to(mv.dtype)
        if self.scalar_norm is None:
            return out, mv.new_zeros(*batch, 0)
        assert scalars is not None
        return out, self.scalar_norm(scalars)


def transform_parameters(module: nn.Module, w: Tensor) -> nn.Module:
    r"""A deep copy of ``module`` with every GCAN layer's parameters acted on by the versor ``w``.

    Calls ``transform_parameters_(w)`` on each :class:`GroupActionLinear`,
    :class:`GCANActivation` and :class:`GCANGroupNorm` inside ``module`` (itself included).
    Other submodules are left as they are, which is right for gatorch's equivariant layers
    and for maps of invariant scalars. For a network ``F`` built from such pieces,

    .. math:: F_{w \cdot \theta}(\rho_w(x), s) = (\rho_w(y), t), \qquad (y, t) = F_\theta(x, s).

    Parameters
    ----------
    module : nn.Module
    w : Tensor, shape (dim,)
        An invertible versor (even or odd) of the layers' algebra.

    Returns
    -------
    nn.Module
        The transformed copy; ``module`` is unchanged.
    """
    out = copy.deepcopy(module)
    for m in out.modules():
        if isinstance(m, (GroupActionLinear, GCANActivation, GCANGroupNorm)):
            m.transform_parameters_(w)
    return out
