r"""CSMPN's layers: the simplex embedding and the shared simplicial message-passing layer.

Liu, Ruhe, Eijkelboom and Forré, "Clifford Group Equivariant Simplicial Message Passing
Networks" (ICLR 2024). The maths and the network that composes these layers are in
:mod:`gatorch.nets.csmpn`; the simplicial complex is :mod:`gatorch.nets.simplicial`.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from gatorch.functional.algebra import Algebra
from gatorch.functional.message_passing import aggregate
from gatorch.layers._checks import check_algebra, check_int
from gatorch.layers.linear import EquiLinear
from gatorch.layers.mlp import CliffordMLP
from gatorch.layers.nonlinear import EquiLayerNorm

__all__ = ["CSMPNLayer", "SimplexEmbedding"]


class SimplexEmbedding(nn.Module):
    r"""Features of ``k``-simplices from their vertices, averaged over vertex orderings.

    See the module docstring of :mod:`gatorch.nets.csmpn`: :math:`E_0` is an EquiLinear,
    :math:`E_k` is ``k`` stacked :class:`~gatorch.layers.mlp.CliffordMLP`\ s on the ``k + 1``
    vertices' channels of one ordering, and the output is the mean over the :math:`(k + 1)!`
    orderings.

    Parameters
    ----------
    alg : Algebra
    simplex_dim : int
        ``k >= 0``.
    in_channels, out_channels : int
        Multivector channels per vertex in, per simplex out.
    in_s_channels, out_s_channels : int
        Scalar channels per vertex in, per simplex out (0: none).

    Shapes
    ------
    ``forward(mv, scalars, simplices) -> (mv, scalars)`` with ``mv: (N, in_channels, dim)``
    and ``scalars: (N, in_s_channels)`` per vertex, ``simplices: (n_k, k + 1)`` int64
    vertex indices; returns ``(n_k, out_channels, dim)`` and ``(n_k, out_s_channels)``.
    """

    orderings: Tensor

    def __init__(
        self,
        alg: Algebra,
        simplex_dim: int,
        in_channels: int,
        out_channels: int,
        in_s_channels: int = 0,
        out_s_channels: int = 0,
    ) -> None:
        super().__init__()
        check_algebra(alg, "SimplexEmbedding")
        check_int("SimplexEmbedding", "simplex_dim", simplex_dim, 0)
        self.alg, self.simplex_dim = alg, simplex_dim
        self.in_channels, self.in_s_channels = in_channels, in_s_channels
        size = simplex_dim + 1
        perms = torch.tensor(list(itertools.permutations(range(size))), dtype=torch.int64)
        self.register_buffer("orderings", perms, persistent=False)  # ((k+1)!, k+1)
        if simplex_dim == 0:
            self.layers = nn.ModuleList(
                [
                    EquiLinear(
                        alg,
                        in_channels,
                        out_channels,
                        in_s_channels=in_s_channels,
                        out_s_channels=out_s_channels,
                    )
                ]
            )
        else:
            first = CliffordMLP(alg, size * in_channels, out_channels, size * in_s_channels, out_s_channels)
            rest = [
                CliffordMLP(alg, out_channels, out_channels, out_s_channels, out_s_channels)
                for _ in range(simplex_dim - 1)
            ]
            self.layers = nn.ModuleList([first, *rest])

    def extra_repr(self) -> str:
        return f"{self.alg!r}, simplex_dim={self.simplex_dim}, orderings={self.orderings.shape[0]}"

    def forward(self, mv: Tensor, scalars: Tensor, simplices: Tensor) -> tuple[Tensor, Tensor]:
        size = self.simplex_dim + 1
        if simplices.ndim != 2 or simplices.shape[1] != size:
            raise ValueError(
                f"SimplexEmbedding: expected simplices of shape (n, {size}), got {tuple(simplices.shape)}"
            )
        n, orderings = simplices.shape[0], self.orderings.shape[0]
        vertices = simplices[:, self.orderings]  # (n, (k+1)!, k+1)
        h = mv[vertices].reshape(n, orderings, size * mv.shape[-2], mv.shape[-1])
        s = scalars[vertices].reshape(n, orderings, size * scalars.shape[-1])
        for layer in self.layers:
            h, s = layer(h, s)
        return h.mean(1), s.mean(1)


class CSMPNLayer(nn.Module):
    """One shared simplicial message-passing layer of :class:`~gatorch.nets.csmpn.CSMPN`.

    See the module docstring of :mod:`gatorch.nets.csmpn`.

    Parameters
    ----------
    alg : Algebra
    mv_channels, s_channels : int
        Cell features (kept: the update is residual).
    message_attr_channels : int
        Invariant codes of a message (relation and dimensions one-hot), scalars.
    cell_attr_channels : int
        Invariant codes of a cell (its dimension one-hot), scalars.
    layer_norm : bool

    Shapes
    ------
    ``forward(mv, scalars, source, target, message_attr, cell_attr, inv_count) -> (mv,
    scalars)`` with ``mv: (cells, mv_channels, dim)``, ``scalars: (cells, s_channels)``,
    ``source, target: (M,)`` int64 cell indices, ``message_attr: (M,
    message_attr_channels)``, ``cell_attr: (cells, cell_attr_channels)`` and
    ``inv_count: (cells,)`` (``1 / max(incoming, 1)``) or ``None`` for a sum.
    """

    def __init__(
        self,
        alg: Algebra,
        mv_channels: int,
        s_channels: int,
        message_attr_channels: int,
        cell_attr_channels: int,
        layer_norm: bool = True,
    ) -> None:
        super().__init__()
        self.norm = EquiLayerNorm(alg, s_channels) if layer_norm else None
        self.message = CliffordMLP(
            alg, 2 * mv_channels, mv_channels, 2 * s_channels + message_attr_channels, s_channels
        )
        self.update = CliffordMLP(
            alg, 2 * mv_channels, mv_channels, 2 * s_channels + cell_attr_channels, s_channels
        )

    def forward(
        self,
        mv: Tensor,
        scalars: Tensor,
        source: Tensor,
        target: Tensor,
        message_attr: Tensor,
        cell_attr: Tensor,
        inv_count: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        h, s = self.norm(mv, scalars) if self.norm is not None else (mv, scalars)
        m, ms = self.message(
            torch.cat([h.index_select(0, target), h.index_select(0, source)], dim=-2),
            torch.cat([s.index_select(0, target), s.index_select(0, source), message_attr], dim=-1),
        )
        num_cells = mv.shape[0]
        agg = aggregate(m, target, num_cells, inv_count)
        agg_s = aggregate(ms, target, num_cells, inv_count)
        du, dus = self.update(torch.cat([h, agg], dim=-2), torch.cat([s, agg_s, cell_attr], dim=-1))
        return mv + du, scalars + dus
