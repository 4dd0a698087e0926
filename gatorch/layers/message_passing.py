r"""``CliffordGNNLayer``: one E(n)/O(n)-equivariant message-passing layer on multivector features.

EGNN's structure (Satorras et al., 2021) with CGENN's Clifford layers (Ruhe et al., 2023)
in every place a multilayer perceptron would be, for any algebra. Per layer, with
:math:`h_i` the multivector channels and :math:`s_i` the scalar channels of node ``i``
(after an optional :class:`~gatorch.layers.EquiLayerNorm`):

.. math::
    m_{ij} &= \phi_m\big([h_i, h_j, h_i - h_j],\ [s_i, s_j, e_{ij}]\big)
        \qquad \text{for every edge } j \to i \\
    a_i &= \operatorname{agg}_{j \to i} m_{ij} \qquad (\text{sum or mean; 0 without incoming edges}) \\
    h_i &\leftarrow h_i + \phi_u\big([h_i, a_i]\big)

where :math:`[\cdot]` concatenates channels, :math:`e_{ij}` are optional invariant edge
attributes, and :math:`\phi_m, \phi_u` are :class:`~gatorch.layers.mlp.CliffordMLP`\ s on
``(mv, scalars)`` pairs: EquiLinear -> SteerableGeometricProduct -> MVSiLU -> EquiLinear by
default, or CGENN's blocks (:class:`~gatorch.layers.config.CliffordMLPConfig`). With
``message="difference"`` the message sees :math:`h_i - h_j` alone, as in CGENN. Every step is
equivariant and the aggregation is linear per node, so the layer (and
:class:`~gatorch.nets.gnn.CliffordGNN`, its stack) is equivariant under the algebra's versor group
and its scalar outputs are invariant.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from gatorch.algebras.layout import Layout
from gatorch.functional.algebra import Algebra
from gatorch.functional.message_passing import aggregate
from gatorch.layers.config import CliffordMLPConfig
from gatorch.layers.mlp import CliffordMLP
from gatorch.layers.nonlinear import EquiLayerNorm

__all__ = ["AGGREGATIONS", "MESSAGES", "CliffordGNNLayer"]

#: Aggregations of the messages onto a node.
AGGREGATIONS = ("sum", "mean")
#: What a message sees of its two nodes: ``[h_i, h_j, h_i - h_j]`` or ``h_i - h_j`` (CGENN).
MESSAGES = ("all", "difference")


class CliffordGNNLayer(nn.Module):
    """One message-passing layer of :class:`~gatorch.nets.gnn.CliffordGNN` (see the module docstring).

    Parameters
    ----------
    alg : Algebra
    mv_channels, s_channels : int
        Node features (kept: the update is residual).
    layer_norm : bool
        Normalise the node features (EquiLayerNorm) before the messages.
    message : {"all", "difference"}
        Multivector input of a message: ``[h_i, h_j, h_i - h_j]`` or ``h_i - h_j`` (CGENN).
    edge_s_channels : int
        Invariant edge attributes fed to the messages (0: none).
    mlp : CliffordMLPConfig or mapping, optional
        The message and update MLPs.
    layout : Layout, optional
        The grades the multivectors store (:class:`~gatorch.algebras.Layout`), for every
        layer; ``None``: all blades.

    Shapes
    ------
    ``forward(mv, scalars, source, target, inv_count, edge_attr=None) -> (mv, scalars)`` with
    ``mv: (nodes, mv_channels, dim)``, ``scalars: (nodes, s_channels)``, ``source, target:
    (edges,)`` int64, ``inv_count: (nodes,)`` (``1 / max(in-degree, 1)``) or ``None`` for
    a sum, and ``edge_attr: (edges, edge_s_channels)``.
    """

    def __init__(
        self,
        alg: Algebra,
        mv_channels: int,
        s_channels: int,
        layer_norm: bool = True,
        *,
        message: str = "all",
        edge_s_channels: int = 0,
        mlp: CliffordMLPConfig | Mapping[str, Any] | None = None,
        layout: Layout | None = None,
    ) -> None:
        super().__init__()
        if message not in MESSAGES:
            raise ValueError(f"CliffordGNNLayer: message must be one of {MESSAGES}, got {message!r}")
        self.message_inputs = message
        self.norm = EquiLayerNorm(alg, s_channels, layout=layout) if layer_norm else None
        mv_in = 3 * mv_channels if message == "all" else mv_channels
        ms_in = 2 * s_channels + edge_s_channels
        self.message = CliffordMLP(alg, mv_in, mv_channels, ms_in, s_channels, mlp, layout=layout)
        self.update = CliffordMLP(
            alg, 2 * mv_channels, mv_channels, 2 * s_channels, s_channels, mlp, layout=layout
        )

    def forward(
        self,
        mv: Tensor,
        scalars: Tensor,
        source: Tensor,
        target: Tensor,
        inv_count: Tensor | None,
        edge_attr: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        h, s = self.norm(mv, scalars) if self.norm is not None else (mv, scalars)
        h_i, h_j = h.index_select(0, target), h.index_select(0, source)
        s_i, s_j = s.index_select(0, target), s.index_select(0, source)
        m_in = torch.cat([h_i, h_j, h_i - h_j], dim=-2) if self.message_inputs == "all" else h_i - h_j
        ms_in = [s_i, s_j] if edge_attr is None else [s_i, s_j, edge_attr.to(s.dtype)]
        m, ms = self.message(m_in, torch.cat(ms_in, dim=-1))
        num_nodes = mv.shape[0]
        agg = aggregate(m, target, num_nodes, inv_count)
        agg_s = aggregate(ms, target, num_nodes, inv_count)
        du, dus = self.update(torch.cat([h, agg], dim=-2), torch.cat([s, agg_s], dim=-1))
        return mv + du, scalars + dus
