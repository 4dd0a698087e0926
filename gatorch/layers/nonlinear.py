"""Equivariant nonlinearity and normalisation modules: ``ScalarGatedNonlinearity``, ``EquiLayerNorm``,
and CGENN's multivector SiLU ``MVSiLU``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gatorch.algebras.layout import Layout
from gatorch.functional.algebra import Algebra
from gatorch.functional.nonlinear import (
    EPS_MODES,
    GATES,
    NORM_DEFAULTS,
    NORM_STATISTICS,
    equi_layer_norm,
    gated,
    grade_invariants,
    scalar_layer_norm,
)
from gatorch.functional.steerable import blade_inner, mv_silu
from gatorch.layers._checks import (
    check_algebra,
    check_int,
    check_layout,
    check_mv_in,
    check_scalars,
)
from gatorch.layers.config import NormConfig

__all__ = ["EquiLayerNorm", "MVSiLU", "ScalarGatedNonlinearity"]


class ScalarGatedNonlinearity(nn.Module):
    """GATr's gated nonlinearity: multivectors times ``act(scalar coefficient)``; scalars ``act(s)``.

    Parameters
    ----------
    alg : Algebra
    gate : {"gelu", "relu", "sigmoid", "silu", "tanh"}
    layout : Layout, optional
        The grades the multivectors store (:class:`~gatorch.algebras.Layout`); it must store
        grade 0 (the gate reads the scalar blade): ``ValueError`` at construction otherwise.
        ``None`` or a full layout: all blades.

    Shapes
    ------
    ``forward(mv, scalars=None) -> (mv, scalars)``, ``mv: (..., channels, dim)`` (``dim`` =
    ``layout.dim`` with a layout), ``scalars: (..., s_channels)`` (an empty tensor is returned
    when ``None``).

    Examples
    --------
    >>> import torch
    >>> from gatorch import VGA3
    >>> from gatorch.layers import ScalarGatedNonlinearity
    >>> gate = ScalarGatedNonlinearity(VGA3, "relu")
    >>> x = torch.ones(1, 8)
    >>> x[0, 0] = -1.0  # negative scalar part: the whole multivector is gated off
    >>> gate(x[None])[0].abs().sum().item()
    0.0
    """

    def __init__(self, alg: Algebra, gate: str = "gelu", *, layout: Layout | None = None) -> None:
        super().__init__()
        check_algebra(alg, "ScalarGatedNonlinearity")
        if gate not in GATES:
            raise ValueError(
                f"ScalarGatedNonlinearity: unknown gate {gate!r}; expected one of {sorted(GATES)}"
            )
        self.layout = check_layout(alg, layout, "ScalarGatedNonlinearity")
        if self.layout is not None and not self.layout.has_grade(0):
            raise ValueError(
                "ScalarGatedNonlinearity: the scalar gate needs grade 0 in the layout, got layout grades "
                f"{self.layout.grades}"
            )
        self.alg, self.gate = alg, gate

    def extra_repr(self) -> str:
        grades = "" if self.layout is None else f", grades={self.layout.grades}"
        return f"{self.alg!r}, gate={self.gate!r}{grades}"

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor]:
        out = gated(self.alg, mv, self.gate, layout=self.layout)
        if scalars is None:
            return out, mv.new_zeros(*mv.shape[:-2], 0)
        return out, GATES[self.gate](scalars)


class EquiLayerNorm(nn.Module):
    r"""Equivariant layer norm of multivector channels (and a plain LayerNorm of scalars).

    See :func:`gatorch.functional.nonlinear.equi_layer_norm`: finite for degenerate and
    indefinite metrics, for null inputs and for inputs of any size (1e20 in float32),
    computed in float32 under autocast.

    Null inputs (a lightlike vector of STA, a conformal point of CGA) have an invariant
    norm of 0, and no invariant norm can be positive on them (the Lorentz and conformal
    groups are not compact), so the epsilon floor is what bounds the layer on them: with
    the ``"rms"`` defaults (``eps=0.01``, ``eps_mode="clamp"``, GATr's and L-GATr's floor)
    the gain :math:`|y| / |x|` is at most :math:`1/\sqrt{\epsilon} = 10`, and below the floor
    the layer is the linear map :math:`x / \sqrt{\epsilon}` (Jacobian :math:`10\,I`, no term
    through the vanishing norm). With ``eps_mode="add"`` and a small ``eps`` the gain reaches
    :math:`1/\sqrt{\epsilon}` (1000 for 1e-6) and the Jacobian on null inputs grows like
    :math:`|x|^2 / \epsilon^{3/2}`.

    Parameters
    ----------
    alg : Algebra
    s_channels : int
        Scalar channels normalised by ``nn.LayerNorm`` (0: none).
    eps : float, optional
        The floor of the statistic; default 0.01 for ``"rms"``, 1e-6 for ``"mean"`` (CGENN's).
    statistic : {"rms", "mean"}
        The shared norm: root mean square over channels (GATr, L-GATr; the default) or the
        mean of the channel norms (CGENN's ``MVLayerNorm``).
    mv_channels : int, optional
        Multivector channels; needed for ``elementwise_affine``.
    elementwise_affine : bool
        A learnt gain (initialised to 1) multiplies the multivector output; invariant, so the
        layer stays equivariant.
    affine : {"channel", "grade"}
        The shape of that gain: one per channel (``weight: (mv_channels, 1)``, CGENN's
        ``MVLayerNorm``) or one per channel and grade (``weight: (mv_channels, n + 1)``,
        L-GATr's ``EquiLayerNorm``).
    eps_mode : {"add", "clamp"}, optional
        See :func:`~gatorch.functional.nonlinear.equi_layer_norm`; default ``"clamp"`` for
        ``"rms"`` (GATr and L-GATr clamp at 0.01), ``"add"`` for ``"mean"`` (CGENN).
    s_eps : float, optional
        Epsilon of the scalar layer norm (default ``eps``).
    s_affine : {"affine", "weight", "none"}
        The scalar layer norm's learnt gain and bias (``nn.LayerNorm``'s default), gain
        only (L-GATr), or neither.
    layout : Layout, optional
        The grades the multivectors store (:class:`~gatorch.algebras.Layout`): inputs are
        ``(..., channels, layout.dim)`` and the invariant sums over the stored blades only
        (:func:`~gatorch.functional.nonlinear.equi_layer_norm` with ``layout=``); with
        ``affine="grade"`` the gain has one column per stored grade, ``(mv_channels,
        len(layout.grades))``. The layer equals the full one (gain columns of the other grades
        anything) between ``layout.embed`` and ``layout.project``. ``None`` or a full layout:
        all blades, today's layer and state dict.

    Shapes
    ------
    ``forward(mv, scalars=None) -> (mv, scalars)``, ``mv: (..., channels, dim)`` (``dim`` =
    ``layout.dim`` with a layout).

    Examples
    --------
    >>> import torch
    >>> from gatorch import PGA3
    >>> from gatorch.layers import EquiLayerNorm
    >>> norm = EquiLayerNorm(PGA3)
    >>> null = torch.zeros(1, 2, 16)
    >>> null[..., PGA3.index("e0")] = 1e3  # a null multivector: finite output, no NaN
    >>> bool(torch.isfinite(norm(null)[0]).all())
    True
    >>> norm(null)[0].abs().max().item()  # the gain is at most 1 / sqrt(0.01) = 10
    10000.0
    """

    _grade_of_blade: Tensor

    def __init__(
        self,
        alg: Algebra,
        s_channels: int = 0,
        eps: float | None = None,
        *,
        statistic: str = "rms",
        mv_channels: int | None = None,
        elementwise_affine: bool = False,
        affine: str = "channel",
        eps_mode: str | None = None,
        s_eps: float | None = None,
        s_affine: str = "affine",
        layout: Layout | None = None,
    ) -> None:
        super().__init__()
        check_algebra(alg, "EquiLayerNorm")
        self.layout = check_layout(alg, layout, "EquiLayerNorm")
        if statistic not in NORM_STATISTICS:
            raise ValueError(f"EquiLayerNorm: statistic must be one of {NORM_STATISTICS}, got {statistic!r}")
        default_eps, default_mode = NORM_DEFAULTS[statistic]
        eps = default_eps if eps is None else eps
        eps_mode = default_mode if eps_mode is None else eps_mode
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
            raise ValueError(f"EquiLayerNorm: eps must be a float >= 0, got {eps!r}")
        if affine not in ("channel", "grade"):
            raise ValueError(f"EquiLayerNorm: affine must be 'channel' or 'grade', got {affine!r}")
        if eps_mode not in EPS_MODES:
            raise ValueError(f"EquiLayerNorm: eps_mode must be one of {EPS_MODES}, got {eps_mode!r}")
        if s_affine not in ("affine", "weight", "none"):
            raise ValueError(
                f"EquiLayerNorm: s_affine must be one of ('affine', 'weight', 'none'), got {s_affine!r}"
            )
        if not isinstance(s_channels, int) or s_channels < 0:
            raise ValueError(f"EquiLayerNorm: s_channels must be an int >= 0, got {s_channels!r}")
        if elementwise_affine and (not isinstance(mv_channels, int) or mv_channels < 1):
            raise ValueError(
                f"EquiLayerNorm: elementwise_affine needs mv_channels, an int >= 1, got {mv_channels!r}"
            )
        self.alg, self.eps, self.s_channels = alg, float(eps), s_channels
        self.statistic, self.mv_channels = statistic, mv_channels
        self.affine, self.eps_mode = affine, eps_mode
        self.s_eps = float(eps if s_eps is None else s_eps)
        self.scalar_norm = (
            nn.LayerNorm(
                s_channels, eps=self.s_eps, elementwise_affine=s_affine != "none", bias=s_affine == "affine"
            )
            if s_channels
            else None
        )
        lay = self.layout
        width = (alg.n + 1 if lay is None else len(lay.grades)) if affine == "grade" else 1
        self.weight = nn.Parameter(torch.ones(int(mv_channels or 0), width)) if elementwise_affine else None
        # blade -> gain column (its grade, or the position of its grade in the layout), to spread
        # a per-grade gain over the blades (static, built once)
        if lay is None:
            column = torch.tensor(alg.grades, dtype=torch.long)
        else:
            position = {g: i for i, g in enumerate(lay.grades)}
            column = torch.tensor([position[int(g)] for g in lay.blade_grades.tolist()], dtype=torch.long)
        self.register_buffer("_grade_of_blade", column, persistent=False)

    def extra_repr(self) -> str:
        affine = (
            f", mv_channels={self.mv_channels}, elementwise_affine=True" if self.weight is not None else ""
        )
        stat = f"statistic={self.statistic!r}"
        if self.weight is not None and self.affine == "grade":
            affine += ", affine='grade'"
        stat += f", eps_mode={self.eps_mode!r}"
        if self.layout is not None:
            affine += f", grades={self.layout.grades}"
        return f"{self.alg!r}, s_channels={self.s_channels}, eps={self.eps}, {stat}{affine}"

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.weight is not None:
            check_mv_in(self.alg, self.layout, mv, self.weight.shape[0], "EquiLayerNorm", self.weight.dtype)
        out = equi_layer_norm(
            self.alg, mv, self.eps, statistic=self.statistic, eps_mode=self.eps_mode, layout=self.layout
        )
        if self.weight is not None:
            w = self.weight[:, self._grade_of_blade] if self.affine == "grade" else self.weight
            out = out * w.to(out.dtype)
        check_scalars(scalars, self.s_channels, "EquiLayerNorm")
        if self.scalar_norm is None:
            return out, mv.new_zeros(*mv.shape[:-2], 0)
        assert scalars is not None
        # nn.LayerNorm's result and parameters, computed so that large inputs do not overflow
        norm = self.scalar_norm
        return out, scalar_layer_norm(scalars, norm.eps, norm.weight, norm.bias)


def norm_from_config(
    alg: Algebra,
    mv_channels: int,
    s_channels: int,
    config: NormConfig,
    *,
    learnt: bool = True,
    layout: Layout | None = None,
) -> EquiLayerNorm:
    """An :class:`EquiLayerNorm` with the options of ``config`` (on ``layout``'s blades, if given).

    ``learnt=False`` drops the learnt gains and bias (the norms inside attention and the
    bilinear layer, which L-GATr builds without them) and keeps the epsilon settings.
    """
    return EquiLayerNorm(
        alg,
        s_channels,
        config.eps,
        mv_channels=mv_channels,
        elementwise_affine=learnt and config.mv_affine,
        affine="grade",
        eps_mode=config.eps_mode,
        s_eps=config.s_eps,
        s_affine=config.scalar_affine if learnt else "none",
        layout=layout,
    )


class MVSiLU(nn.Module):
    r"""CGENN's multivector SiLU: :func:`gatorch.functional.steerable.mv_silu` with learnt gates.

    Each grade ``k`` of each channel ``c`` is scaled by
    :math:`\sigma(a_{ck} q_k(x_c) + b_{ck})`, ``q_0`` the scalar coefficient and ``q_k``
    the invariant :math:`|\langle x_k, x_k\rangle|`; ``a`` starts at 1 and ``b`` at 0.
    Scalars go through ``torch.nn.functional.silu``.

    Parameters
    ----------
    alg : Algebra
    channels : int
    layout : Layout, optional
        The grades the multivectors store (:class:`~gatorch.algebras.Layout`): ``a`` and ``b``
        have one column per stored grade, ``(channels, len(layout.grades))``, and the
        invariants are summed over the stored blades only; the layer equals the full one on
        ``layout.embed(mv)``, projected. ``None`` or a full layout: all blades.

    Shapes
    ------
    ``forward(mv, scalars=None) -> (mv, scalars)``, ``mv: (..., channels, dim)``,
    ``scalars: (..., s_channels)`` (an empty ``(..., 0)`` tensor is returned when ``None``).
    The invariants and gates are computed in at least float32; the output keeps the dtype
    of ``mv``.
    """

    _inner: Tensor
    _column: Tensor

    def __init__(self, alg: Algebra, channels: int, *, layout: Layout | None = None) -> None:
        super().__init__()
        check_algebra(alg, "MVSiLU")
        check_int("MVSiLU", "channels", channels, 1)
        self.alg, self.channels = alg, channels
        self.layout = lay = check_layout(alg, layout, "MVSiLU")
        width = alg.n + 1 if lay is None else len(lay.grades)
        self.a = nn.Parameter(torch.ones(channels, width))
        self.b = nn.Parameter(torch.zeros(channels, width))
        # <~e_A e_A>_0 per blade, for the invariants (not in the state_dict); a layout reads its
        # own blades' signs (grade_invariants), so it builds nothing over all 2**n blades
        inner = blade_inner(alg) if lay is None else []
        self.register_buffer("_inner", torch.tensor(inner, dtype=torch.float64), persistent=False)
        # with a layout: the gate column of each stored blade (the position of its grade)
        column = [] if lay is None else [lay.grades.index(int(g)) for g in lay.blade_grades.tolist()]
        self.register_buffer("_column", torch.tensor(column, dtype=torch.long), persistent=False)

    def extra_repr(self) -> str:
        grades = "" if self.layout is None else f", grades={self.layout.grades}"
        return f"{self.alg!r}, channels={self.channels}{grades}"

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_mv_in(self.alg, self.layout, mv, self.channels, "MVSiLU")
        if self.layout is None:
            out = mv_silu(self.alg, mv, self.a, self.b, inner=self._inner)
        else:
            out = self._silu_layout(mv, self.layout)
        if scalars is None:
            return out, mv.new_zeros(*mv.shape[:-2], 0)
        return out, nn.functional.silu(scalars)

    def _silu_layout(self, mv: Tensor, lay: Layout) -> Tensor:
        """:func:`~gatorch.functional.steerable.mv_silu` on the stored grades (``q_0`` the scalar
        coefficient, ``q_k`` the invariants of the stored blades)."""
        wide = torch.promote_types(mv.dtype, torch.float32)
        xw = mv.to(wide)
        inv = grade_invariants(self.alg, xw, layout=lay)[..., list(lay.grades)]  # (..., C, grades)
        if lay.grades[0] == 0:  # the scalar enters with its sign
            inv = torch.cat([xw[..., :1], inv[..., 1:]], dim=-1)
        gate = torch.sigmoid(self.a.to(wide) * inv + self.b.to(wide)).to(mv.dtype)
        return mv * gate[..., self._column]
