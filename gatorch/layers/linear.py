"""``EquiLinear``: the equivariant linear layer on multivector and scalar channels."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gatorch.algebras.algebra import Algebra
from gatorch.functional.linear import equi_linear, equi_linear_readout, invariant_components, linear_plan
from gatorch.layers._checks import check_algebra, check_linear_channels, check_mv, check_scalars

__all__ = ["EquiLinear"]


class EquiLinear(nn.Module):
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
    bias : bool

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

    def __init__(
        self,
        alg: Algebra,
        in_channels: int,
        out_channels: int,
        *,
        in_s_channels: int = 0,
        out_s_channels: int = 0,
        group: str = "pin",
        bias: bool = True,
    ) -> None:
        super().__init__()
        check_algebra(alg, "EquiLinear")
        check_linear_channels("EquiLinear", in_channels, out_channels, in_s_channels, out_s_channels)
        plan = linear_plan(alg, group)  # validates group
        self.alg = alg
        self.group = group
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_s_channels, self.out_s_channels = in_s_channels, out_s_channels
        inv = invariant_components(alg, group, "blades")
        readable = invariant_components(alg, group, "coefficients")
        self.register_buffer("_readable", torch.tensor(readable, dtype=torch.long), persistent=False)
        n_inv, n_read = len(inv), len(readable)

        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, plan.num_maps))
        self.bias = nn.Parameter(torch.zeros(out_channels, n_inv)) if bias else None
        self.s_to_mv = (
            nn.Parameter(torch.empty(out_channels, n_inv, in_s_channels)) if in_s_channels else None
        )
        self.mv_to_s = (
            nn.Parameter(torch.empty(out_s_channels, in_channels, n_read)) if out_s_channels else None
        )
        if in_s_channels and out_s_channels:
            self.s_to_s: nn.Linear | None = nn.Linear(in_s_channels, out_s_channels, bias=bias)
        else:
            self.s_to_s = None
        needs_s_bias = bias and out_s_channels > 0 and in_s_channels == 0
        self.s_bias = nn.Parameter(torch.zeros(out_s_channels)) if needs_s_bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Variance-preserving initialisation (see the class docstring)."""
        plan = linear_plan(self.alg, self.group)
        maps_into: dict[int, int] = {}  # output grade -> number of basis maps reaching it
        for _, b, maps in plan.blocks:
            maps_into[b] = maps_into.get(b, 0) + len(maps)
        # a map of the weight reaches one output grade; scale it by that grade's fan-in
        std = torch.empty(plan.num_maps)
        for _, b, maps in plan.blocks:
            fan = self.in_channels * maps_into[b] + (self.in_s_channels if b == 0 else 0)
            std[list(maps)] = 1.0 / math.sqrt(fan)
        with torch.no_grad():
            self.weight.normal_().mul_(std)
            if self.s_to_mv is not None:
                fan_0 = self.in_channels * maps_into[0] + self.in_s_channels
                self.s_to_mv.normal_().mul_(1.0 / math.sqrt(fan_0))
            fan_s = self.in_channels * int(self._readable.numel()) + self.in_s_channels
            if self.mv_to_s is not None:
                self.mv_to_s.normal_().mul_(1.0 / math.sqrt(fan_s))
            if self.s_to_s is not None:
                self.s_to_s.weight.normal_().mul_(1.0 / math.sqrt(fan_s))
                if self.s_to_s.bias is not None:
                    self.s_to_s.bias.zero_()

    def extra_repr(self) -> str:
        return (
            f"{self.alg!r}, {self.in_channels} -> {self.out_channels} mv, "
            f"{self.in_s_channels} -> {self.out_s_channels} scalars, group={self.group!r}"
        )

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_mv(self.alg, mv, self.in_channels, "EquiLinear")
        check_scalars(scalars, self.in_s_channels, "EquiLinear")
        extra = None  # added to the invariant blades: scalar inputs and the bias
        if self.s_to_mv is not None:
            extra = torch.einsum("...j,ocj->...oc", scalars, self.s_to_mv)
        if self.bias is not None:
            extra = self.bias if extra is None else extra + self.bias
        batch = mv.shape[:-2]
        if self.mv_to_s is not None:
            out, s_out = equi_linear_readout(self.alg, mv, self.weight, self.mv_to_s, self.group, bias=extra)
        else:
            out = equi_linear(self.alg, mv, self.weight, self.group, bias=extra)
            s_out = mv.new_zeros(*batch, self.out_s_channels)
        if self.s_to_s is not None:
            s_out = s_out + self.s_to_s(scalars)
        if self.s_bias is not None:
            s_out = s_out + self.s_bias
        return out, s_out
