"""Product layers: ``GeometricBilinear`` (GATr: geometric product and equivariant join of two
linear projections) and ``SteerableGeometricProduct`` (CGENN: the geometric product with one
weight per channel and grade path)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gatorch.algebras.layout import Layout, layout_product_table
from gatorch.functional.algebra import Algebra
from gatorch.functional.bilinear import bilinear
from gatorch.functional.layout import LayoutSteerablePlan, layout_steerable_gp, layout_steerable_plan
from gatorch.functional.policy import KernelPolicy
from gatorch.functional.products import gp, regressive
from gatorch.functional.steerable import (
    SteerableTables,
    grade_normalize,
    steerable_gp,
    steerable_init_std,
    steerable_paths,
    steerable_plan,
    steerable_tables,
)
from gatorch.layers._checks import (
    check_algebra,
    check_int,
    check_layout,
    check_layout_mv,
    check_mv,
    module_dtype,
)
from gatorch.layers.linear import EquiLinear
from gatorch.layers.policy import check_kernel_policy, set_kernel_policy

__all__ = ["WEIGHT_INITS", "GeometricBilinear", "SteerableGeometricProduct"]


class GeometricBilinear(nn.Module):
    r"""GATr's bilinear layer: products of two equivariant projections, mixed by :class:`EquiLinear`.

    .. math::
        h = \big[\, L(x)\, R(x) \;\big|\; \langle r \rangle_{I}\, (L'(x) \vee R'(x)) \,\big],
        \qquad (y, t) = \mathrm{EquiLinear}(h, s)

    :math:`L, R, L', R'` are :class:`EquiLinear` projections of the input,
    :math:`L(x) R(x)` is the geometric product per channel and
    :math:`\vee` the regressive product (the join). The join changes sign under odd
    versors; multiplying it by the pseudoscalar coefficient :math:`\langle r\rangle_I` of a
    reference multivector :math:`r`, which changes sign the same way, makes it
    Pin-equivariant (GATr's equivariant join). In degenerate algebras such as PGA the join
    is not expressible through the geometric product, so it is on by default there.

    Parameters
    ----------
    alg : Algebra
    in_channels, out_channels : int
    hidden_channels : int, optional
        Channels of the products (default ``out_channels``); with the join, half of them
        (rounded down, at least one) are geometric products and the rest joins.
    in_s_channels, out_s_channels : int
    join : bool, optional
        Add the equivariant join; ``None`` means ``alg.is_degenerate``.
    group : {"pin", "spin"}
    kernel_policy : KernelPolicy, optional
        Kept as ``kernel_policy``: see :mod:`gatorch.layers.policy` (``None``: the ambient one).
    layout : Layout, optional
        The grades the input, the products and the output store
        (:class:`~gatorch.algebras.Layout`); ``None`` or a full layout: all blades. The
        projections and the output map are :class:`EquiLinear` between layouts, and the
        products are built for the layout only (:func:`~gatorch.algebras.layout.layout_product_table`,
        projected onto the layout's grades). The layer equals the full layer with zero
        weights outside the layout, between ``layout.embed`` and ``layout.project``. The
        join needs the pseudoscalar coefficient of the reference, so with ``join`` on the
        layout must store grade ``n``.

    Shapes
    ------
    ``forward(mv, scalars=None, join_reference=None) -> (mv_out, s_out)`` with
    ``mv: (..., in_channels, dim)``, ``scalars: (..., in_s_channels)``,
    ``join_reference`` broadcastable to ``(..., 1, dim)`` (default: the mean of ``mv`` over
    channels), ``mv_out: (..., out_channels, dim)``, ``s_out: (..., out_s_channels)``.

    Examples
    --------
    >>> import torch
    >>> from gatorch import PGA3
    >>> from gatorch.layers import GeometricBilinear
    >>> layer = GeometricBilinear(PGA3, 4, 6)  # degenerate algebra: half products, half joins
    >>> layer.gp_channels, layer.join_channels
    (3, 3)
    >>> layer(torch.randn(5, 4, 16))[0].shape
    torch.Size([5, 6, 16])
    """

    def __init__(
        self,
        alg: Algebra,
        in_channels: int,
        out_channels: int,
        *,
        hidden_channels: int | None = None,
        in_s_channels: int = 0,
        out_s_channels: int = 0,
        join: bool | None = None,
        group: str = "pin",
        kernel_policy: KernelPolicy | None = None,
        layout: Layout | None = None,
    ) -> None:
        super().__init__()
        check_algebra(alg, "GeometricBilinear")
        hidden = out_channels if hidden_channels is None else hidden_channels
        if not isinstance(hidden, int) or hidden < 1:
            raise ValueError(
                f"GeometricBilinear: hidden_channels must be an int >= 1, got {hidden_channels!r}"
            )
        join = alg.is_degenerate if join is None else bool(join)
        if join and hidden < 2:
            raise ValueError("GeometricBilinear: hidden_channels must be >= 2 with the join on")
        lay = None
        if layout is not None:
            if not isinstance(layout, Layout):
                raise TypeError(
                    f"GeometricBilinear: expected layout a gatorch.algebras.Layout or None, "
                    f"got {type(layout).__name__}"
                )
            lay = None if layout.is_full else layout
        if lay is not None and join and not lay.has_grade(alg.n):
            raise ValueError(
                f"GeometricBilinear: the join needs the pseudoscalar (grade {alg.n}) in the layout, "
                f"got layout grades {lay.grades}; pass join=False or store grade {alg.n}"
            )
        self.alg, self.join, self.in_channels = alg, join, in_channels
        self.layout = lay
        self.gp_channels = hidden // 2 if join else hidden
        self.join_channels = hidden - self.gp_channels if join else 0
        # the products, built for the layout's blades only
        self._gp_table = layout_product_table(lay, lay, lay, "gp") if lay is not None else None
        self._join_table = (
            layout_product_table(lay, lay, lay, "regressive") if lay is not None and join else None
        )

        # separate projections (not one fused layer split by channel): each output is its own
        # blade-first tensor that the product kernels read without a copy
        def proj(channels: int) -> EquiLinear:
            return EquiLinear(
                alg,
                in_channels,
                channels,
                in_s_channels=in_s_channels,
                group=group,
                in_layout=lay,
                out_layout=lay,
            )

        self.left, self.right = proj(self.gp_channels), proj(self.gp_channels)
        if join:
            self.join_left, self.join_right = proj(self.join_channels), proj(self.join_channels)
        self.linear_out = EquiLinear(
            alg,
            hidden,
            out_channels,
            in_s_channels=in_s_channels,
            out_s_channels=out_s_channels,
            group=group,
            in_layout=lay,
            out_layout=lay,
        )
        self.kernel_policy = check_kernel_policy("GeometricBilinear", kernel_policy, "kernel_policy")
        set_kernel_policy(self, self.kernel_policy)

    def extra_repr(self) -> str:
        grades = "" if self.layout is None else f", grades={self.layout.grades}"
        return f"{self.alg!r}, gp_channels={self.gp_channels}, join_channels={self.join_channels}{grades}"

    def forward(
        self, mv: Tensor, scalars: Tensor | None = None, join_reference: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        if self.layout is not None:
            return self._forward_layout(mv, scalars, join_reference)
        check_mv(self.alg, mv, self.in_channels, "GeometricBilinear", module_dtype(self))
        policy = self.kernel_policy
        parts = [gp(self.alg, self.left(mv, scalars)[0], self.right(mv, scalars)[0], policy=policy)]
        if self.join:
            left, right = self.join_left(mv, scalars)[0], self.join_right(mv, scalars)[0]
            if join_reference is None:
                join_reference = mv.mean(dim=-2, keepdim=True)
            else:
                self.alg.check_dim(join_reference, "GeometricBilinear join_reference")
            ps = join_reference[..., self.alg.pseudoscalar_index : self.alg.pseudoscalar_index + 1]
            parts.append(regressive(self.alg, left, right, policy=policy) * ps)
        hidden = torch.cat(parts, dim=-2) if len(parts) > 1 else parts[0]
        return self.linear_out(hidden, scalars)

    def _forward_layout(
        self, mv: Tensor, scalars: Tensor | None, join_reference: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        lay = self.layout
        assert lay is not None
        check_layout_mv(lay, mv, self.in_channels, "GeometricBilinear", module_dtype(self))
        policy = self.kernel_policy
        left, right = self.left(mv, scalars)[0], self.right(mv, scalars)[0]
        assert self._gp_table is not None
        parts = [bilinear(left, right, self._gp_table, policy=policy)]
        if self.join:
            assert self._join_table is not None
            left, right = self.join_left(mv, scalars)[0], self.join_right(mv, scalars)[0]
            if join_reference is None:
                join_reference = mv.mean(dim=-2, keepdim=True)
            elif join_reference.shape[-1] != lay.dim:
                raise ValueError(
                    f"GeometricBilinear: expected join_reference with last dimension {lay.dim} (the "
                    f"blades of grades {lay.grades}), got shape {tuple(join_reference.shape)}"
                )
            parts.append(bilinear(left, right, self._join_table, policy=policy) * join_reference[..., -1:])
        hidden = torch.cat(parts, dim=-2) if len(parts) > 1 else parts[0]
        return self.linear_out(hidden, scalars)


#: The initialisations of the path weights of :class:`SteerableGeometricProduct`.
WEIGHT_INITS = ("variance", "cgenn")


def _pass_scalars(mv: Tensor, scalars: Tensor | None) -> Tensor:
    return mv.new_zeros(*mv.shape[:-2], 0) if scalars is None else scalars


class SteerableGeometricProduct(nn.Module):
    r"""CGENN's steerable geometric product layer (with its first-order term).

    .. math::
        y = \tfrac{1}{\sqrt 2}\Big(L(x, s) + \mathrm{sgp}_W\big(x,\ R(x, s)\big)\Big)

    with :math:`R` and :math:`L` :class:`~gatorch.layers.EquiLinear` maps (``channels ->
    channels``; :math:`R` without bias, as in CGENN) and :math:`\mathrm{sgp}_W` the
    per-channel, per-path weighted geometric product
    :func:`gatorch.functional.steerable.steerable_gp`. With
    ``include_first_order=False`` the output is :math:`\mathrm{sgp}_W(x, R(x, s))` alone.
    With ``normalization_init`` set, the right operand is
    :func:`~gatorch.functional.steerable.grade_normalize`\ d first,
    :math:`R(x, s) \to R(x, s) / (\sigma(a)(\lVert R(x, s)^{(k)}\rVert - 1) + 1)` per channel
    and grade with learnt logits ``a`` starting at ``normalization_init`` (CGENN's
    ``NormalizationLayer``, on in its layers with ``a = 0``): the product then grows
    linearly, not quadratically, with the input's scale.
    Equivariant for any weights; scalars pass through unchanged.

    Initialisation (``weight_init``): ``"variance"`` (the default) draws the path weights
    with the standard deviations of :func:`gatorch.functional.steerable.steerable_init_std`,
    so for unit-variance inputs the product, the first-order term and their scaled sum
    all have a variance near 1 (measured 0.9-1.1 on non-degenerate algebras, 0.65-0.8 on
    degenerate ones, where :class:`~gatorch.layers.EquiLinear` itself gives about 0.8);
    ``"cgenn"`` draws every path weight with CGENN's standard deviation
    :math:`1 / \sqrt{n + 1}`.

    Parameters
    ----------
    alg : Algebra
    channels : int
        Multivector channels (in and out).
    in_s_channels : int
        Scalar channels fed into both linear maps (0: none).
    include_first_order : bool
    normalization_init : float, optional
        Start value of the normalisation logits of the right operand (CGENN: 0.0);
        ``None`` (the default): no normalisation.
    weight_init : {"variance", "cgenn"}
    kernel_policy : KernelPolicy, optional
        For the product and its linear maps: see :mod:`gatorch.layers.policy`.
    layout : Layout, optional
        The grades the channels store (:class:`~gatorch.algebras.Layout`); ``None`` or a
        full layout: all blades. The linear maps are :class:`EquiLinear` between the layout
        and itself. The product has one weight per channel and path of stored grades
        (:func:`~gatorch.functional.layout.layout_steerable_gp`: the full layer's paths
        whose three grades are stored, in the same order). The layer then equals the full
        layer with zero weights outside the layout, between ``layout.embed`` and
        ``layout.project`` (the normalisation keeps one logit per grade of the algebra; those
        of grades the layout does not store are unused). Not with another ``linear_class``.

    Shapes
    ------
    ``forward(mv, scalars=None) -> (mv_out, scalars)`` with ``mv, mv_out: (..., channels,
    dim)`` and ``scalars: (..., in_s_channels)`` (required when ``in_s_channels > 0``;
    an empty ``(..., 0)`` tensor is returned when ``None``).

    Compilation: the product's plan (Python tuples) and its ``(dim, dim)`` tables
    (non-persistent buffers, outside the ``state_dict``) are built at construction, so a
    fresh layer compiles with ``torch.compile(fullgraph=True)``.

    Examples
    --------
    >>> import torch
    >>> from gatorch import VGA3
    >>> from gatorch.layers import SteerableGeometricProduct
    >>> layer = SteerableGeometricProduct(VGA3, 4)
    >>> layer.weight.shape  # one weight per channel and grade path (20 paths in Cl(3, 0))
    torch.Size([4, 20])
    >>> layer(torch.randn(7, 4, 8))[0].shape
    torch.Size([7, 4, 8])
    """

    #: The linear maps L and R (GLGENN's subclass swaps in its own).
    linear_class: type[nn.Module] = EquiLinear

    _sign: Tensor
    _path: Tensor
    _right: Tensor

    def __init__(
        self,
        alg: Algebra,
        channels: int,
        *,
        in_s_channels: int = 0,
        include_first_order: bool = True,
        normalization_init: float | None = None,
        weight_init: str = "variance",
        kernel_policy: KernelPolicy | None = None,
        layout: Layout | None = None,
    ) -> None:
        super().__init__()
        who = type(self).__name__
        check_algebra(alg, who)
        check_int(who, "channels", channels, 1)
        check_int(who, "in_s_channels", in_s_channels, 0)
        self.alg, self.channels, self.in_s_channels = alg, channels, in_s_channels
        self.include_first_order = bool(include_first_order)
        if weight_init not in WEIGHT_INITS:
            raise ValueError(f"{who}: weight_init must be one of {WEIGHT_INITS}, got {weight_init!r}")
        if normalization_init is not None and not isinstance(normalization_init, (int, float)):
            raise TypeError(f"{who}: normalization_init must be a float or None, got {normalization_init!r}")
        self.weight_init = weight_init
        self.normalization_init = None if normalization_init is None else float(normalization_init)
        self.layout, self._layout_plan = self._check_layout(who, alg, layout)
        linear = self.linear_class
        kw = {} if self.layout is None else {"in_layout": self.layout, "out_layout": self.layout}
        self.right = linear(alg, channels, channels, in_s_channels=in_s_channels, bias=False, **kw)
        self.left = (
            linear(alg, channels, channels, in_s_channels=in_s_channels, **kw)
            if include_first_order
            else None
        )
        num_paths = len(self.paths(alg)) if self._layout_plan is None else len(self._layout_plan.paths)
        self.weight = nn.Parameter(torch.empty(channels, num_paths))
        self.normalization = (
            nn.Parameter(torch.empty(channels, alg.n + 1)) if self.normalization_init is not None else None
        )
        if self._layout_plan is None:  # the full product's (dim, dim) tables (a layout has its own plan)
            self._plan = steerable_plan(alg)
            tables = steerable_tables(alg)
            self.register_buffer("_sign", tables.sign, persistent=False)
            self.register_buffer("_path", tables.path, persistent=False)
            self.register_buffer("_right", tables.right, persistent=False)
        self.kernel_policy = check_kernel_policy(who, kernel_policy, "kernel_policy")
        set_kernel_policy(self, self.kernel_policy)
        self.reset_parameters()

    def _check_layout(
        self, who: str, alg: Algebra, layout: object
    ) -> tuple[Layout | None, LayoutSteerablePlan | None]:
        """``(layout, plan)`` for a partial layout of ``alg``; ``(None, None)`` for ``None`` or a full one."""
        layout = check_layout(alg, layout, who)
        if layout is None:
            return None, None
        if self.linear_class is not EquiLinear:
            raise TypeError(
                f"{who}: layouts need EquiLinear linear maps, got linear_class {self.linear_class.__name__}"
            )
        plan = layout_steerable_plan(layout)
        if not plan.paths:
            raise ValueError(
                f"{who}: expected a layout with a grade path (a, b, c) of the geometric product "
                f"between its grades, got grades {layout.grades} of {alg!r}, where the product of "
                f"any two stored grades has no stored grade (the layer would output zeros)"
            )
        return layout, plan

    @staticmethod
    def paths(alg: Algebra) -> tuple[tuple[int, int, int], ...]:
        """The weight's paths (grade triples: :func:`~gatorch.functional.steerable.steerable_paths`)."""
        return steerable_paths(alg)

    @staticmethod
    def init_std(alg: Algebra) -> Tensor:
        """Per-path standard deviation of the initial weights."""
        return steerable_init_std(alg)

    @staticmethod
    def product(alg: Algebra, x: Tensor, y: Tensor, weight: Tensor) -> Tensor:
        """The weighted product of ``x`` and the right projection ``y``."""
        return steerable_gp(alg, x, y, weight)

    def tables(self) -> SteerableTables:
        """The plan of the product and its tables (the layer's buffers)."""
        if self._layout_plan is not None:
            raise ValueError(
                f"{type(self).__name__}: expected a layer on all blades for the full product's tables, "
                f"got one on grades {self._layout_plan.layout.grades} (its plan: layout_steerable_plan)"
            )
        return SteerableTables(self._plan, self._sign, self._path, self._right)

    def _weighted_product(self, x: Tensor, y: Tensor) -> Tensor:
        """:meth:`product` with the layer's weights and tables."""
        return steerable_gp(self.alg, x, y, self.weight, tables=self.tables(), policy=self.kernel_policy)

    def reset_parameters(self) -> None:
        """Path weights from :meth:`init_std`; the linear maps reset themselves."""
        if self.weight_init == "cgenn":
            std = torch.full((self.weight.shape[1],), 1.0 / math.sqrt(self.alg.n + 1))
        elif self._layout_plan is not None:
            std = torch.tensor(self._layout_plan.init_std, dtype=torch.float64)
        else:
            std = self.init_std(self.alg)
        with torch.no_grad():
            self.weight.normal_().mul_(std.to(self.weight.dtype))
            if self.normalization is not None:
                assert self.normalization_init is not None
                self.normalization.fill_(self.normalization_init)
        for linear in (self.right, self.left):
            if linear is not None:
                linear.reset_parameters()  # type: ignore[operator]  # EquiLinear / QTLinear method

    def extra_repr(self) -> str:
        return (
            f"{self.alg!r}, channels={self.channels}, in_s_channels={self.in_s_channels}, "
            f"include_first_order={self.include_first_order}, paths={self.weight.shape[1]}"
            + (f", normalization_init={self.normalization_init}" if self.normalization is not None else "")
            + (f", weight_init={self.weight_init!r}" if self.weight_init != "variance" else "")
            + (f", grades={self.layout.grades}" if self.layout is not None else "")
        )

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self._layout_plan is not None:
            check_layout_mv(self.layout, mv, self.channels, type(self).__name__, module_dtype(self))
            right, _ = self.right(mv, scalars)
            if self.normalization is not None:
                right = grade_normalize(self.alg, right, self.normalization, layout=self.layout)
            out = layout_steerable_gp(mv, right, self.weight, self._layout_plan, policy=self.kernel_policy)
            if self.left is not None:
                out = (self.left(mv, scalars)[0] + out) * (1.0 / math.sqrt(2.0))
            return out, _pass_scalars(mv, scalars)
        check_mv(self.alg, mv, self.channels, type(self).__name__, module_dtype(self))
        right, _ = self.right(mv, scalars)
        if self.normalization is not None:
            right = grade_normalize(self.alg, right, self.normalization)
        out = self._weighted_product(mv, right)
        if self.left is not None:
            out = (self.left(mv, scalars)[0] + out) * (1.0 / math.sqrt(2.0))
        return out, _pass_scalars(mv, scalars)
