r"""CSMPN's layers: the simplex embedding and the shared simplicial message-passing layer.

Liu, Ruhe, Eijkelboom and Forré, "Clifford Group Equivariant Simplicial Message Passing
Networks" (ICLR 2024). The maths and the network that composes these layers are in
:mod:`gatorch.nets.csmpn`; the simplicial complex is :mod:`gatorch.nets.simplicial`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from gatorch.functional.algebra import Algebra
from gatorch.functional.message_passing import aggregate
from gatorch.layers._checks import check_algebra, check_int
from gatorch.layers.config import CliffordMLPConfig
from gatorch.layers.linear import EquiLinear
from gatorch.layers.mlp import CliffordMLP
from gatorch.layers.nonlinear import EquiLayerNorm

__all__ = ["EMBEDDINGS", "MESSAGES", "REDUCTIONS", "CSMPNLayer", "SimplexEmbedding"]

#: Structures of :class:`SimplexEmbedding` for ``k >= 1``: ``k`` stacked CliffordMLPs, or
#: one CliffordMLP of ``k`` CGENN blocks (the reference code's ``CEMLP(n_layers=k)``).
EMBEDDINGS = ("stacked", "cemlp")
#: How :class:`SimplexEmbedding` combines the ``(k + 1)!`` vertex orderings.
REDUCTIONS = ("mean", "sum")
#: Inputs of the message network of :class:`CSMPNLayer`: the receiver's and the sender's
#: features side by side, or their difference (receiver minus sender, the reference code's).
MESSAGES = ("concat", "difference")


def _check_choice(who: str, name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{who}: {name} must be one of {choices}, got {value!r}")


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
    mlp : CliffordMLPConfig or mapping, optional
        Options of the CliffordMLPs of :math:`E_k` (``k >= 1``); default
        ``CliffordMLPConfig()``.
    structure : {"stacked", "cemlp"}
        ``"stacked"`` (default): :math:`E_k` is ``k`` CliffordMLPs in the style of ``mlp``.
        ``"cemlp"``: one CliffordMLP of ``"cgenn"`` style with ``k`` blocks (the other
        options from ``mlp``), the reference code's ``CEMLP(n_layers=k)``.
    reduce : {"mean", "sum"}
        Over the orderings: ``"mean"`` (default) keeps unit scale, ``"sum"`` is the
        reference code's (``(k + 1)!`` times the mean).

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
        *,
        mlp: CliffordMLPConfig | Mapping[str, Any] | None = None,
        structure: str = "stacked",
        reduce: str = "mean",
    ) -> None:
        super().__init__()
        who = "SimplexEmbedding"
        check_algebra(alg, who)
        check_int(who, "simplex_dim", simplex_dim, 0)
        _check_choice(who, "structure", structure, EMBEDDINGS)
        _check_choice(who, "reduce", reduce, REDUCTIONS)
        cfg = CliffordMLPConfig.cast(mlp)
        self.alg, self.simplex_dim = alg, simplex_dim
        self.structure, self.reduce = structure, reduce
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
        elif structure == "cemlp":
            blocks = dataclasses.replace(cfg, style="cgenn", blocks=simplex_dim)
            self.layers = nn.ModuleList(
                [
                    CliffordMLP(
                        alg, size * in_channels, out_channels, size * in_s_channels, out_s_channels, blocks
                    )
                ]
            )
        else:
            first = CliffordMLP(
                alg, size * in_channels, out_channels, size * in_s_channels, out_s_channels, cfg
            )
            rest = [
                CliffordMLP(alg, out_channels, out_channels, out_s_channels, out_s_channels, cfg)
                for _ in range(simplex_dim - 1)
            ]
            self.layers = nn.ModuleList([first, *rest])

    def extra_repr(self) -> str:
        return (
            f"{self.alg!r}, simplex_dim={self.simplex_dim}, orderings={self.orderings.shape[0]}, "
            f"structure={self.structure!r}, reduce={self.reduce!r}"
        )

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
        if self.reduce == "sum":
            return h.sum(1), s.sum(1)
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
    mlp : CliffordMLPConfig or mapping, optional
        Options of the message and update CliffordMLPs; default ``CliffordMLPConfig()``.
    message : {"concat", "difference"}
        Multivector (and scalar) input of the message network: ``[h_receiver, h_sender]``
        (default) or ``h_receiver - h_sender`` (the reference code's), besides the codes.

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
        *,
        mlp: CliffordMLPConfig | Mapping[str, Any] | None = None,
        message: str = "concat",
    ) -> None:
        super().__init__()
        _check_choice("CSMPNLayer", "message", message, MESSAGES)
        cfg = CliffordMLPConfig.cast(mlp)
        self.message_input = message
        self.norm = EquiLayerNorm(alg, s_channels) if layer_norm else None
        sides = 2 if message == "concat" else 1
        self.message = CliffordMLP(
            alg, sides * mv_channels, mv_channels, sides * s_channels + message_attr_channels, s_channels, cfg
        )
        self.update = CliffordMLP(
            alg, 2 * mv_channels, mv_channels, 2 * s_channels + cell_attr_channels, s_channels, cfg
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
        h_in, h_out = h.index_select(0, target), h.index_select(0, source)
        s_in, s_out = s.index_select(0, target), s.index_select(0, source)
        if self.message_input == "difference":
            m, ms = self.message(h_in - h_out, torch.cat([s_in - s_out, message_attr], dim=-1))
        else:
            m, ms = self.message(
                torch.cat([h_in, h_out], dim=-2), torch.cat([s_in, s_out, message_attr], dim=-1)
            )
        num_cells = mv.shape[0]
        agg = aggregate(m, target, num_cells, inv_count)
        agg_s = aggregate(ms, target, num_cells, inv_count)
        du, dus = self.update(torch.cat([h, agg], dim=-2), torch.cat([s, agg_s, cell_attr], dim=-1))
        return mv + du, scalars + dus
