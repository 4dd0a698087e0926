"""``EquiLinear``: the equivariant linear layer on multivector and scalar channels, and
``MVScalarLinear``, the base of every linear layer on ``(mv, scalars)`` channel pairs."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gatorch.algebras.layout import Layout
from gatorch.functional.algebra import Algebra
from gatorch.functional.linear import (
    LayoutLinearPlan,
    equi_linear,
    equi_linear_layout,
    equi_linear_readout,
    invariant_components,
    linear_plan,
    linear_plan_layouts,
)
from gatorch.functional.policy import KernelPolicy
from gatorch.layers._checks import (
    check_algebra,
    check_layout,
    check_layout_mv,
    check_linear_channels,
    check_mv,
    check_scalars,
    module_dtype,
)
from gatorch.layers.policy import check_kernel_policy

__all__ = ["EquiLinear", "MVScalarLinear"]


class MVScalarLinear(nn.Module):
    r"""Base of the linear layers on ``(mv, scalars)`` channel pairs: the scalar-channel plumbing.

    A linear layer on multivector channels ``x: (..., in_channels, dim)`` and scalar channels
    ``s: (..., in_s_channels)`` has, besides its own multivector map, four scalar-side pieces,
    which this class creates, initialises and applies for :class:`EquiLinear`,
    :class:`~gatorch.layers.zoo.glgenn.QTLinear` and :class:`~gatorch.layers.zoo.gcan.GroupActionLinear`:

    .. math::
        y_o \mathrel{+}= \Big(\sum_j V_{o\cdot j}\, s_j + b_o\Big) e_{\mathrm{inv}},
        \qquad t_p = \sum_{i} U_{p i \cdot}\, x_{i, \mathrm{read}} + \sum_j T_{pj}\, s_j + \beta_p

    * ``s_to_mv`` (:math:`V`): scalars into the invariant blades of the multivector outputs,
      shape ``(out_channels, in_s_channels)`` or, with several invariant blades,
      ``(out_channels, inv_blades, in_s_channels)``; ``None`` without scalar inputs.
    * ``mv_to_s`` (:math:`U`): invariant coefficients of the multivector inputs into the
      scalar outputs, shape ``(out_s_channels, in_channels)`` or ``(out_s_channels,
      in_channels, read_coefficients)``; ``None`` without scalar outputs. The subclass
      applies it (usually fused with its multivector map).
    * ``s_to_s`` (:math:`T`): ``nn.Linear(in_s_channels, out_s_channels, bias=bias)`` or a bare
      ``(out_s_channels, in_s_channels)`` matrix; ``None`` unless both scalar sides exist.
    * ``s_bias`` (:math:`\beta`): ``(out_s_channels,)``, present when ``bias`` and there are
      scalar outputs whose bias ``s_to_s`` does not already hold.

    The multivector bias :math:`b` (``self.bias``) belongs to the subclass, which registers its
    parameters in its own order (the order of ``named_parameters`` and the ``state_dict``):
    :meth:`_add_scalar_maps` registers ``s_to_mv``, ``mv_to_s``, ``s_to_s`` and
    :meth:`_add_scalar_bias` registers ``s_bias``.

    Parameters
    ----------
    who : str
        The layer's name in error messages.
    alg : Algebra
    in_channels, out_channels : int
        Multivector channels.
    in_s_channels, out_s_channels : int
        Scalar channels (0: none).
    """

    s_to_mv: nn.Parameter | None
    mv_to_s: nn.Parameter | None
    s_to_s: nn.Linear | nn.Parameter | None
    s_bias: nn.Parameter | None
    bias: nn.Parameter | None
    #: ``(left, right)`` zero padding that places a bias on fewer blades than the invariant ones
    #: (``EquiLinear(bias="scalar")``) on the invariant blades; ``None``: the bias covers them all.
    _bias_pad: tuple[int, int] | None = None

    def __init__(
        self,
        who: str,
        alg: Algebra,
        in_channels: int,
        out_channels: int,
        in_s_channels: int,
        out_s_channels: int,
    ) -> None:
        super().__init__()
        check_algebra(alg, who)
        check_linear_channels(who, in_channels, out_channels, in_s_channels, out_s_channels)
        self._who = who
        self.alg = alg
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_s_channels, self.out_s_channels = in_s_channels, out_s_channels

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(mv_out, s_out)``: the subclass's multivector map (:meth:`_mv_map`) plus the scalar plumbing.

        ``mv: (..., in_channels, dim)``, ``scalars: (..., in_s_channels)`` (required when
        ``in_s_channels > 0``); ``mv_out: (..., out_channels, dim)``, ``s_out: (...,
        out_s_channels)``.
        """
        dtype = module_dtype(self)
        check_mv(self.alg, mv, self.in_channels, self._who, dtype)
        check_scalars(scalars, self.in_s_channels, self._who, dtype)
        extra = self._invariant_term(scalars)  # added to the invariant blades: scalar inputs and the bias
        out, s_out = self._mv_map(mv, extra)
        if s_out is None:
            s_out = mv.new_zeros(*mv.shape[:-2], self.out_s_channels)
        return out, self._scalar_outputs(s_out, scalars)

    def _mv_map(self, mv: Tensor, extra: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """The subclass's multivector map with ``extra`` added to its invariant blades.

        Returns the multivector output and the readout of ``mv_to_s`` (``None`` when the layer
        has no scalar outputs). Subclasses whose forward fits :meth:`forward` implement this.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement _mv_map")

    def _add_scalar_maps(
        self,
        *,
        bias: bool,
        inv_blades: int | None = None,
        read_coefficients: int | None = None,
        s_to_s_linear: bool = True,
    ) -> None:
        """Register ``s_to_mv``, ``mv_to_s`` and ``s_to_s`` (uninitialised, see :meth:`_reset_scalar_maps`).

        ``inv_blades`` / ``read_coefficients``: the blade axis of ``s_to_mv`` / ``mv_to_s``
        (``None``: no such axis, one invariant blade). ``s_to_s_linear``: ``s_to_s`` as
        ``nn.Linear`` with a bias when ``bias`` (``True``) or as a bare matrix (``False``).
        """
        i, o, si, so = self.in_channels, self.out_channels, self.in_s_channels, self.out_s_channels
        inv = () if inv_blades is None else (inv_blades,)
        read = () if read_coefficients is None else (read_coefficients,)
        self.s_to_mv = nn.Parameter(torch.empty(o, *inv, si)) if si else None
        self.mv_to_s = nn.Parameter(torch.empty(so, i, *read)) if so else None
        if si and so:
            self.s_to_s = nn.Linear(si, so, bias=bias) if s_to_s_linear else nn.Parameter(torch.empty(so, si))
        else:
            self.s_to_s = None

    def _add_scalar_bias(self, bias: bool) -> None:
        """Register ``s_bias`` (zeros) when ``bias`` and the scalar outputs have no bias in ``s_to_s``."""
        in_s_to_s = isinstance(self.s_to_s, nn.Linear) and self.s_to_s.bias is not None
        needs = bias and self.out_s_channels > 0 and not in_s_to_s
        self.s_bias = nn.Parameter(torch.zeros(self.out_s_channels)) if needs else None

    def _reset_scalar_maps(self, fan_mv: int, fan_s: int) -> None:
        """``s_to_mv ~ N(0, 1 / fan_mv)``; ``mv_to_s``, ``s_to_s ~ N(0, 1 / fan_s)``; zero scalar biases.

        Drawn in this order (``s_to_mv``, ``mv_to_s``, ``s_to_s``), after the subclass's own weights.
        """
        with torch.no_grad():
            if self.s_to_mv is not None:
                self.s_to_mv.normal_().mul_(1.0 / math.sqrt(fan_mv))
            if self.mv_to_s is not None:
                self.mv_to_s.normal_().mul_(1.0 / math.sqrt(fan_s))
            if isinstance(self.s_to_s, nn.Linear):
                self.s_to_s.weight.normal_().mul_(1.0 / math.sqrt(fan_s))
                if self.s_to_s.bias is not None:
                    self.s_to_s.bias.zero_()
            elif self.s_to_s is not None:
                self.s_to_s.normal_().mul_(1.0 / math.sqrt(fan_s))
            if self.s_bias is not None:
                self.s_bias.zero_()

    def _invariant_term(self, scalars: Tensor | None, dtype: torch.dtype | None = None) -> Tensor | None:
        """``s_to_mv(scalars) + bias``, added to the invariant blades: ``(..., out_channels[, inv_blades])``.

        ``None`` when the layer has neither scalar inputs nor a bias. ``dtype``: cast the
        parameters to it first (``None``: use them as they are).
        """
        extra = None
        if self.s_to_mv is not None:
            assert scalars is not None
            w = self.s_to_mv if dtype is None else self.s_to_mv.to(dtype)
            extra = torch.einsum("...j,ocj->...oc", scalars, w) if w.ndim == 3 else scalars @ w.T
        if self.bias is not None:
            b = self.bias if dtype is None else self.bias.to(dtype)
            if self._bias_pad is not None:
                b = nn.functional.pad(b, self._bias_pad)
            extra = b if extra is None else extra + b
        return extra

    def _scalar_outputs(
        self, s_out: Tensor, scalars: Tensor | None, dtype: torch.dtype | None = None
    ) -> Tensor:
        """``s_out + s_to_s(scalars) + s_bias``, with ``s_out`` the readout of the multivector inputs."""
        if self.s_to_s is not None:
            assert scalars is not None
            if isinstance(self.s_to_s, nn.Linear):
                s_out = s_out + self.s_to_s(scalars)
            else:
                w = self.s_to_s if dtype is None else self.s_to_s.to(dtype)
                s_out = s_out + scalars @ w.T
        if self.s_bias is not None:
            s_out = s_out + (self.s_bias if dtype is None else self.s_bias.to(dtype))
        return s_out


class EquiLinear(MVScalarLinear):
    r"""Equivariant linear map of multivector channels, with optional scalar channels.

    .. math::
        y_o = \sum_{i, m} W_{oim} B_m x_i
              + \sum_{c \in \mathrm{inv}} \big(\textstyle\sum_j V_{ocj} s_j + b_{oc}\big) e_c,
        \qquad t_p = \sum_{i, c \in \mathrm{read}} U_{pic} x_{i, c} + \sum_j T_{pj} s_j + \beta_p

    with :math:`B_m` the algebra's equivariant basis (``alg.equivariant_basis(group)``),
    ``inv`` the blades fixed by the group (the scalar; ``e0`` in degenerate algebras; the
    pseudoscalar for ``"spin"``) and ``read`` the components with invariant coefficients
    (the scalar; the pseudoscalar for ``"spin"``), see
    :func:`gatorch.functional.linear.invariant_components`. The layer commutes with the
    twisted versor action for any weights and the scalar outputs are invariant. The
    multivector bias sits on the invariant blades only.

    Initialisation keeps the activation variance near 1 for unit-variance inputs: each
    output component receives contributions from ``fan_in`` independent terms (input
    channels times the basis maps that reach its grade, plus scalar channels), and the
    weights are drawn with variance ``1 / fan_in``.

    Parameters
    ----------
    alg : Algebra
    in_channels, out_channels : int
        Multivector channels.
    in_s_channels, out_s_channels : int
        Scalar channels (0: none).
    group : {"pin", "spin"}
    bias : bool or "scalar"
        ``True``: a bias on every invariant blade (``bias`` of shape ``(out_channels,
        len(inv))``); ``"scalar"``: on the scalar blade only (shape ``(out_channels, 1)``; L-GATr's
        linear maps without scalar inputs, which have no pseudoscalar bias under ``"spin"``);
        ``False``: none. The blades it sits on are ``bias_blades``.
    kernel_policy : KernelPolicy, optional
        Kept as ``kernel_policy``: see :mod:`gatorch.layers.policy` (``None``: the ambient one).
    in_layout, out_layout : Layout, optional
        The grades the input and output channels store (:class:`~gatorch.algebras.Layout`);
        ``None`` (or a full layout): all blades, today's layer. With layouts, ``mv`` is
        ``(..., in_channels, in_layout.dim)``, ``mv_out`` is ``(..., out_channels,
        out_layout.dim)`` and the weight has one coefficient per basis map between the
        layouts (:func:`~gatorch.algebras.layout.layout_equivariant_basis`: the maps of the
        full basis whose input and output grades both are stored, in the same order). The
        bias, ``s_to_mv`` and ``mv_to_s`` cover the invariant blades / coefficients the
        layouts store. The layer then equals the full layer with zero weights on the other
        maps, between ``in_layout.embed`` and ``out_layout.project``.

    Shapes
    ------
    ``forward(mv, scalars=None) -> (mv_out, scalars_out)`` with ``mv: (..., in_channels, dim)``,
    ``scalars: (..., in_s_channels)`` (required when ``in_s_channels > 0``), ``mv_out:
    (..., out_channels, dim)`` and ``scalars_out: (..., out_s_channels)``.

    Examples
    --------
    >>> import torch
    >>> from gatorch import PGA3
    >>> from gatorch.layers import EquiLinear
    >>> layer = EquiLinear(PGA3, 4, 8, in_s_channels=2, out_s_channels=3)
    >>> mv, s = layer(torch.randn(10, 4, 16), torch.randn(10, 2))
    >>> mv.shape, s.shape
    (torch.Size([10, 8, 16]), torch.Size([10, 3]))
    >>> layer.weight.shape  # one weight per (out, in, basis map): 9 E(3)-equivariant maps
    torch.Size([8, 4, 9])
    """

    _readable: Tensor
    s_to_s: nn.Linear | None

    def __init__(
        self,
        alg: Algebra,
        in_channels: int,
        out_channels: int,
        *,
        in_s_channels: int = 0,
        out_s_channels: int = 0,
        group: str = "pin",
        bias: bool | str = True,
        kernel_policy: KernelPolicy | None = None,
        in_layout: Layout | None = None,
        out_layout: Layout | None = None,
    ) -> None:
        super().__init__("EquiLinear", alg, in_channels, out_channels, in_s_channels, out_s_channels)
        if not (isinstance(bias, bool) or bias == "scalar"):
            raise ValueError(f"EquiLinear: bias must be True, False or 'scalar', got {bias!r}")
        self.kernel_policy = check_kernel_policy("EquiLinear", kernel_policy, "kernel_policy")
        self.in_layout = _check_layout(alg, in_layout, "in_layout")
        self.out_layout = _check_layout(alg, out_layout, "out_layout")
        self._layout_plan: LayoutLinearPlan | None = None
        if self.in_layout is not None or self.out_layout is not None:
            self._init_layouts(group, bias)
            return
        plan = linear_plan(alg, group)  # validates group
        self.group = group
        self._bias_option = bias
        inv = invariant_components(alg, group, "blades")
        readable = invariant_components(alg, group, "coefficients")
        self.register_buffer("_readable", torch.tensor(readable, dtype=torch.long), persistent=False)
        n_inv, n_read = len(inv), len(readable)

        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, plan.num_maps))
        #: The blades the multivector bias sits on (blade indices of ``alg``).
        self.bias_blades: tuple[int, ...] = tuple(inv) if bias is True else (0,) if bias else ()
        self.bias = nn.Parameter(torch.zeros(out_channels, len(self.bias_blades))) if bias else None
        if bias == "scalar" and n_inv > 1:
            k = list(inv).index(0)
            self._bias_pad = (k, n_inv - 1 - k)
        self._add_scalar_maps(bias=bool(bias), inv_blades=n_inv, read_coefficients=n_read)
        self._add_scalar_bias(bool(bias))
        self.reset_parameters()

    def _init_layouts(self, group: str, bias: bool | str) -> None:
        """The layer between layouts: parameters for the maps and invariant blades they store."""
        alg = self.alg
        in_layout = self.in_layout or Layout.full(alg)
        out_layout = self.out_layout or Layout.full(alg)
        self.in_layout, self.out_layout = in_layout, out_layout
        plan = linear_plan_layouts(alg, in_layout, out_layout, group)  # validates group
        if plan.num_maps == 0:
            raise ValueError(
                f"EquiLinear: expected layouts with at least one {group!r}-equivariant map between them, "
                f"got none from grades {in_layout.grades} to grades {out_layout.grades}"
            )
        self._layout_plan = plan
        self.group = group
        self._bias_option = bias
        inv, readable = plan.inv_blades, plan.read_coefficients
        if bias == "scalar" and not out_layout.has_grade(0):
            raise ValueError(
                "EquiLinear: bias='scalar' needs grade 0 in out_layout, got out_layout grades "
                f"{out_layout.grades}"
            )
        self.register_buffer("_readable", torch.tensor(readable, dtype=torch.long), persistent=False)
        n_inv = len(inv)
        self.weight = nn.Parameter(torch.empty(self.out_channels, self.in_channels, plan.num_maps))
        #: The blades the multivector bias sits on (indices into ``out_layout``).
        self.bias_blades = tuple(inv) if bias is True else (0,) if bias else ()
        has_bias = bool(self.bias_blades)  # none when out_layout stores no invariant blade
        self.bias = nn.Parameter(torch.zeros(self.out_channels, len(self.bias_blades))) if has_bias else None
        if bias == "scalar" and n_inv > 1:
            k = list(inv).index(0)
            self._bias_pad = (k, n_inv - 1 - k)
        self._add_scalar_maps(bias=bool(bias), inv_blades=n_inv, read_coefficients=len(readable))
        self._add_scalar_bias(bool(bias))
        self.reset_parameters()

    def _blocks(self) -> list[tuple[int, list[int]]]:
        """``(out_grade, map indices)`` per block of the weight's basis maps."""
        if self._layout_plan is not None:
            return [(b, [m]) for m, (_, b) in enumerate(self._layout_plan.blocks)]
        plan = linear_plan(self.alg, self.group)
        return [(b, list(maps)) for _, b, maps in plan.blocks]

    def reset_parameters(self) -> None:
        """Variance-preserving initialisation (see the class docstring)."""
        blocks = self._blocks()
        maps_into: dict[int, int] = {}  # output grade -> number of basis maps reaching it
        for b, maps in blocks:
            maps_into[b] = maps_into.get(b, 0) + len(maps)
        # a map of the weight reaches one output grade; scale it by that grade's fan-in
        std = torch.empty(self.weight.shape[-1])
        for b, maps in blocks:
            fan = self.in_channels * maps_into[b] + (self.in_s_channels if b == 0 else 0)
            std[list(maps)] = 1.0 / math.sqrt(fan)
        with torch.no_grad():
            self.weight.normal_().mul_(std)
        fan_0 = max(self.in_channels * maps_into.get(0, 0) + self.in_s_channels, 1)
        fan_s = max(self.in_channels * int(self._readable.numel()) + self.in_s_channels, 1)
        self._reset_scalar_maps(fan_0, fan_s)

    def extra_repr(self) -> str:
        layouts = ""
        if self.in_layout is not None and self.out_layout is not None:
            layouts = f", grades {self.in_layout.grades} -> {self.out_layout.grades}"
        return (
            f"{self.alg!r}, {self.in_channels} -> {self.out_channels} mv, "
            f"{self.in_s_channels} -> {self.out_s_channels} scalars, group={self.group!r}"
            + {"scalar": ", bias='scalar'", False: ", bias=False"}.get(self._bias_option, "")
            + layouts
        )

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(mv_out, s_out)``; see the class docstring for the shapes (with and without layouts)."""
        if self._layout_plan is None:
            return super().forward(mv, scalars)
        check_layout_mv(self.in_layout, mv, self.in_channels, "EquiLinear", module_dtype(self))
        check_scalars(scalars, self.in_s_channels, "EquiLinear")
        extra = self._invariant_term(scalars)
        out, s_out = equi_linear_layout(
            self.alg,
            mv,
            self.weight,
            self._layout_plan,
            bias=extra,
            readout=self.mv_to_s,
            policy=self.kernel_policy,
        )
        if s_out is None:
            s_out = mv.new_zeros(*mv.shape[:-2], self.out_s_channels)
        return out, self._scalar_outputs(s_out, scalars)

    def _mv_map(self, mv: Tensor, extra: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if self.mv_to_s is not None:
            return equi_linear_readout(
                self.alg, mv, self.weight, self.mv_to_s, self.group, bias=extra, policy=self.kernel_policy
            )
        return equi_linear(self.alg, mv, self.weight, self.group, bias=extra, policy=self.kernel_policy), None


def _check_layout(alg: Algebra, layout: object, name: str) -> Layout | None:
    """``layout`` if it is a partial layout of ``alg``; ``None`` for ``None`` or a full layout."""
    return check_layout(alg, layout, "EquiLinear", name)
