"""``GeometricBilinear``: geometric product (and equivariant join) of two linear projections."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gatorch.functional.algebra import Algebra
from gatorch.functional.policy import KernelPolicy
from gatorch.functional.products import gp, regressive
from gatorch.layers._checks import check_algebra, check_mv
from gatorch.layers.linear import EquiLinear
from gatorch.layers.policy import check_kernel_policy, set_kernel_policy

__all__ = ["GeometricBilinear"]


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
        The sparse kernels to run (:mod:`gatorch.functional.policy`), kept as the attribute
        ``kernel_policy`` (see :func:`gatorch.layers.set_kernel_policy`); ``None``: the ambient
        policy.

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
        self.alg, self.join, self.in_channels = alg, join, in_channels
        self.gp_channels = hidden // 2 if join else hidden
        self.join_channels = hidden - self.gp_channels if join else 0

        # separate projections (not one fused layer split by channel): each output is its own
        # blade-first tensor that the product kernels read without a copy
        def proj(channels: int) -> EquiLinear:
            return EquiLinear(alg, in_channels, channels, in_s_channels=in_s_channels, group=group)

        self.left, self.right = proj(self.gp_channels), proj(self.gp_channels)
        if join:
            self.join_left, self.join_right = proj(self.join_channels), proj(self.join_channels)
        self.linear_out = EquiLinear(
            alg, hidden, out_channels, in_s_channels=in_s_channels, out_s_channels=out_s_channels, group=group
        )
        self.kernel_policy = check_kernel_policy("GeometricBilinear", kernel_policy)
        set_kernel_policy(self, self.kernel_policy)

    def extra_repr(self) -> str:
        return f"{self.alg!r}, gp_channels={self.gp_channels}, join_channels={self.join_channels}"

    def forward(
        self, mv: Tensor, scalars: Tensor | None = None, join_reference: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        check_mv(self.alg, mv, self.in_channels, "GeometricBilinear")
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
