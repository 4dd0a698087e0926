r"""``CliffordGNN``: an E(n)/O(n)-equivariant message-passing network on multivector features.

EGNN's structure (Satorras et al., 2021) with CGENN's Clifford layers (Ruhe et al., 2023)
in every place a multilayer perceptron would be, for any algebra. Per layer, with
:math:`h_i` the multivector channels and :math:`s_i` the scalar channels of node ``i``
(after an optional :class:`~gatorch.layers.EquiLayerNorm`):

.. math::
    m_{ij} &= \phi_m\big([h_i, h_j, h_i - h_j],\ [s_i, s_j]\big)
        \qquad \text{for every edge } j \to i \\
    a_i &= \operatorname{agg}_{j \to i} m_{ij} \qquad (\text{sum or mean; 0 without incoming edges}) \\
    h_i &\leftarrow h_i + \phi_u\big([h_i, a_i]\big)

where :math:`[\cdot]` concatenates channels and :math:`\phi_m, \phi_u` are each
EquiLinear -> SteerableGeometricProduct -> MVSiLU -> EquiLinear on ``(mv, scalars)``
pairs. Every step is equivariant and the aggregation is linear per node, so the network
is equivariant under the algebra's versor group and its scalar outputs are invariant.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gatorch.algebras.algebra import Algebra
from gatorch.layers._checks import check_algebra, check_int, check_mv, check_scalars
from gatorch.layers.linear import EquiLinear
from gatorch.layers.nonlinear import EquiLayerNorm
from gatorch.layers.steerable import MVSiLU, SteerableGeometricProduct

__all__ = ["AGGREGATIONS", "CliffordGNN", "CliffordGNNLayer", "CliffordMLP"]

AGGREGATIONS = ("sum", "mean")


class CliffordMLP(nn.Module):
    r"""EquiLinear -> SteerableGeometricProduct -> MVSiLU -> EquiLinear, on ``(mv, scalars)``.

    Parameters
    ----------
    alg : Algebra
    in_channels, out_channels : int
        Multivector channels in and out; the hidden width is ``out_channels``.
    in_s_channels, out_s_channels : int
        Scalar channels in and out (0: none); the hidden width is ``out_s_channels``.

    Shapes
    ------
    ``forward(mv, scalars=None) -> (mv, scalars)`` with ``mv: (..., in_channels, dim) ->
    (..., out_channels, dim)`` and ``scalars: (..., in_s_channels) -> (..., out_s_channels)``.
    """

    def __init__(
        self,
        alg: Algebra,
        in_channels: int,
        out_channels: int,
        in_s_channels: int = 0,
        out_s_channels: int = 0,
    ) -> None:
        super().__init__()
        self.linear_in = EquiLinear(
            alg, in_channels, out_channels, in_s_channels=in_s_channels, out_s_channels=out_s_channels
        )
        self.product = SteerableGeometricProduct(alg, out_channels, in_s_channels=out_s_channels)
        self.activation = MVSiLU(alg, out_channels)
        self.linear_out = EquiLinear(
            alg, out_channels, out_channels, in_s_channels=out_s_channels, out_s_channels=out_s_channels
        )

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mv, scalars = self.linear_in(mv, scalars)
        mv, scalars = self.product(mv, scalars)
        mv, scalars = self.activation(mv, scalars)
        return self.linear_out(mv, scalars)


def _aggregate(values: Tensor, target: Tensor, num_nodes: int, inv_count: Tensor | None) -> Tensor:
    """Sum ``values: (E, ...)`` into ``(num_nodes, ...)`` at ``target``; times ``inv_count`` for a mean."""
    out = values.new_zeros(num_nodes, *values.shape[1:]).index_add(0, target, values)
    if inv_count is not None:
        out = out * inv_count.view(num_nodes, *([1] * (values.ndim - 1)))
    return out


class CliffordGNNLayer(nn.Module):
    """One message-passing layer of :class:`CliffordGNN` (see the module docstring).

    Parameters
    ----------
    alg : Algebra
    mv_channels, s_channels : int
        Node features (kept: the update is residual).
    layer_norm : bool
        Normalise the node features (EquiLayerNorm) before the messages.

    Shapes
    ------
    ``forward(mv, scalars, source, target, inv_count) -> (mv, scalars)`` with
    ``mv: (nodes, mv_channels, dim)``, ``scalars: (nodes, s_channels)``, ``source, target:
    (edges,)`` int64 and ``inv_count: (nodes,)`` (``1 / max(in-degree, 1)``) or ``None`` for
    a sum.
    """

    def __init__(self, alg: Algebra, mv_channels: int, s_channels: int, layer_norm: bool = True) -> None:
        super().__init__()
        self.norm = EquiLayerNorm(alg, s_channels) if layer_norm else None
        self.message = CliffordMLP(alg, 3 * mv_channels, mv_channels, 2 * s_channels, s_channels)
        self.update = CliffordMLP(alg, 2 * mv_channels, mv_channels, 2 * s_channels, s_channels)

    def forward(
        self, mv: Tensor, scalars: Tensor, source: Tensor, target: Tensor, inv_count: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        h, s = self.norm(mv, scalars) if self.norm is not None else (mv, scalars)
        h_i, h_j = h.index_select(0, target), h.index_select(0, source)
        s_i, s_j = s.index_select(0, target), s.index_select(0, source)
        m, ms = self.message(torch.cat([h_i, h_j, h_i - h_j], dim=-2), torch.cat([s_i, s_j], dim=-1))
        num_nodes = mv.shape[0]
        agg = _aggregate(m, target, num_nodes, inv_count)
        agg_s = _aggregate(ms, target, num_nodes, inv_count)
        du, dus = self.update(torch.cat([h, agg], dim=-2), torch.cat([s, agg_s], dim=-1))
        return mv + du, scalars + dus


class CliffordGNN(nn.Module):
    r"""Clifford message-passing graph network (EGNN structure, CGENN layers), any algebra.

    ``embed`` (EquiLinear) -> ``num_layers`` x :class:`CliffordGNNLayer` -> ``readout``
    (EquiLinear), see the module docstring for the layer. Messages flow from
    ``edge_index[0]`` (source ``j``) to ``edge_index[1]`` (target ``i``); add both
    directions for an undirected graph. Aggregation uses torch's own ``index_add`` (no
    torch_scatter / torch_geometric); nodes without incoming edges aggregate zeros.

    Parameters
    ----------
    alg : Algebra
    in_mv_channels, out_mv_channels, hidden_mv_channels : int
        Multivector channels of the input, output and hidden node features.
    in_s_channels, out_s_channels, hidden_s_channels : int
        Scalar channels (0: none).
    num_layers : int
        Message-passing layers (>= 1).
    aggregation : {"mean", "sum"}
    layer_norm : bool
        EquiLayerNorm at the start of every layer.

    Shapes
    ------
    ``forward(mv, scalars, edge_index) -> (mv, scalars)`` with ``mv: (nodes,
    in_mv_channels, dim)``, ``scalars: (nodes, in_s_channels)`` (or ``None`` when
    ``in_s_channels == 0``), ``edge_index: (2, edges)`` int64 with entries in
    ``[0, nodes)``; returns ``(nodes, out_mv_channels, dim)`` and ``(nodes, out_s_channels)``.

    Compilation: a freshly built net compiles with ``torch.compile(fullgraph=True)``, and
    with dynamic shapes a change of node or edge count recompiles once (to a graph
    generic in both). The range check of the ``edge_index`` *values* runs in eager mode
    only: under ``torch.compile`` it is skipped (reading the values would break the graph
    and force a host-device sync); its dtype and shape are always checked.

    Examples
    --------
    >>> import torch
    >>> from gatorch import VGA3
    >>> from gatorch.nets.gnn import CliffordGNN
    >>> net = CliffordGNN(VGA3, in_mv_channels=2, out_mv_channels=1, hidden_mv_channels=8, num_layers=2)
    >>> edges = torch.tensor([[0, 1, 2], [1, 2, 0]])
    >>> mv, s = net(torch.randn(3, 2, 8), None, edges)
    >>> mv.shape, s.shape
    (torch.Size([3, 1, 8]), torch.Size([3, 0]))
    """

    def __init__(
        self,
        alg: Algebra,
        *,
        in_mv_channels: int,
        out_mv_channels: int,
        hidden_mv_channels: int,
        in_s_channels: int = 0,
        out_s_channels: int = 0,
        hidden_s_channels: int = 0,
        num_layers: int,
        aggregation: str = "mean",
        layer_norm: bool = True,
    ) -> None:
        super().__init__()
        check_algebra(alg, "CliffordGNN")
        for name, value, least in (
            ("in_mv_channels", in_mv_channels, 1),
            ("out_mv_channels", out_mv_channels, 1),
            ("hidden_mv_channels", hidden_mv_channels, 1),
            ("in_s_channels", in_s_channels, 0),
            ("out_s_channels", out_s_channels, 0),
            ("hidden_s_channels", hidden_s_channels, 0),
            ("num_layers", num_layers, 1),
        ):
            check_int("CliffordGNN", name, value, least)
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"CliffordGNN: aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        self.alg, self.aggregation = alg, aggregation
        self.in_mv_channels, self.out_mv_channels = in_mv_channels, out_mv_channels
        self.in_s_channels, self.out_s_channels = in_s_channels, out_s_channels
        self.embed = EquiLinear(
            alg,
            in_mv_channels,
            hidden_mv_channels,
            in_s_channels=in_s_channels,
            out_s_channels=hidden_s_channels,
        )
        self.layers = nn.ModuleList(
            CliffordGNNLayer(alg, hidden_mv_channels, hidden_s_channels, layer_norm)
            for _ in range(num_layers)
        )
        self.readout = EquiLinear(
            alg,
            hidden_mv_channels,
            out_mv_channels,
            in_s_channels=hidden_s_channels,
            out_s_channels=out_s_channels,
        )

    def extra_repr(self) -> str:
        return f"{self.alg!r}, aggregation={self.aggregation!r}"

    def _check_edges(self, edge_index: object, num_nodes: int) -> Tensor:
        if not isinstance(edge_index, Tensor):
            raise TypeError(
                f"CliffordGNN: edge_index must be a torch.Tensor, got {type(edge_index).__name__}"
            )
        if edge_index.dtype != torch.int64:
            raise TypeError(
                f"CliffordGNN: edge_index must have dtype torch.int64 (long), got {edge_index.dtype}"
            )
        if edge_index.ndim != 2 or edge_index.shape[0] != 2:
            raise ValueError(
                f"CliffordGNN: edge_index must have shape (2, edges) (row 0 source, row 1 target), "
                f"got {tuple(edge_index.shape)}"
            )
        if edge_index.numel() and not torch.compiler.is_compiling():
            low, high = int(edge_index.min()), int(edge_index.max())
            if low < 0 or high >= num_nodes:
                raise ValueError(
                    f"CliffordGNN: edge_index entries must be node indices in [0, {num_nodes}), "
                    f"got values in [{low}, {high}]"
                )
        return edge_index

    def forward(self, mv: Tensor, scalars: Tensor | None, edge_index: Tensor) -> tuple[Tensor, Tensor]:
        check_mv(self.alg, mv, self.in_mv_channels, "CliffordGNN")
        if mv.ndim != 3:
            raise ValueError(
                f"CliffordGNN: expected mv of shape (nodes, {self.in_mv_channels}, {self.alg.dim}), "
                f"got {tuple(mv.shape)}"
            )
        check_scalars(scalars, self.in_s_channels, "CliffordGNN")
        num_nodes = mv.shape[0]
        if scalars is not None and scalars.shape[:-1] != mv.shape[:1]:
            raise ValueError(
                f"CliffordGNN: scalars must have shape ({num_nodes}, {self.in_s_channels}), "
                f"got {tuple(scalars.shape)}"
            )
        source, target = self._check_edges(edge_index, num_nodes).to(mv.device).unbind(0)
        inv_count = None
        if self.aggregation == "mean":
            count = mv.new_zeros(num_nodes).index_add(0, target, mv.new_ones(target.shape[0]))
            inv_count = 1.0 / count.clamp_min(1.0)
        h, s = self.embed(mv, scalars)
        for layer in self.layers:
            h, s = layer(h, s, source, target, inv_count)
        return self.readout(h, s)
