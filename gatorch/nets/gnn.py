r"""``CliffordGNN``: an E(n)/O(n)-equivariant message-passing network on multivector features.

EGNN's structure (Satorras et al., 2021) with CGENN's Clifford layers (Ruhe et al., 2023)
in every place a multilayer perceptron would be, for any algebra: a stack of
:class:`~gatorch.layers.message_passing.CliffordGNNLayer` (its docstring gives the update of
one layer), between an input and an output map. Every layer is equivariant under the
algebra's versor group, so the network is, and its scalar outputs are invariant.

The layers live in :mod:`gatorch.layers` (:class:`~gatorch.layers.message_passing.CliffordGNNLayer`,
:class:`~gatorch.layers.mlp.CliffordMLP`, :class:`~gatorch.layers.config.CliffordMLPConfig`); this
module composes them and re-exports their names at their old path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from gatorch.algebras.layout import Layout
from gatorch.functional.algebra import Algebra
from gatorch.functional.message_passing import aggregate
from gatorch.layers._checks import (
    check_algebra,
    check_int,
    check_layout,
    check_mv_in,
    check_scalars,
    module_dtype,
)
from gatorch.layers.config import BLOCK_NORMS, MLP_STYLES, CliffordMLPConfig
from gatorch.layers.linear import EquiLinear
from gatorch.layers.message_passing import AGGREGATIONS, MESSAGES, CliffordGNNLayer
from gatorch.layers.mlp import CliffordMLP

__all__ = [
    "AGGREGATIONS",
    "BLOCK_NORMS",
    "MESSAGES",
    "MLP_STYLES",
    "CliffordGNN",
    "CliffordGNNLayer",
    "CliffordMLP",
    "CliffordMLPConfig",
]

#: The former private name of :func:`gatorch.functional.message_passing.aggregate`.
_aggregate = aggregate


class CliffordGNN(nn.Module):
    r"""Clifford message-passing graph network (EGNN structure, CGENN layers), any algebra.

    ``embed`` (EquiLinear) -> ``num_layers`` x
    :class:`~gatorch.layers.message_passing.CliffordGNNLayer` -> ``readout`` (EquiLinear), see
    the module docstring for the layer. Messages flow from ``edge_index[0]`` (source ``j``) to
    ``edge_index[1]`` (target ``i``); add both directions for an undirected graph. Aggregation
    uses torch's own ``index_add`` (no torch_scatter / torch_geometric); nodes without incoming
    edges aggregate zeros.

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
    message : {"all", "difference"}
        Multivector input of a message: ``[h_i, h_j, h_i - h_j]`` (the default) or CGENN's
        ``h_i - h_j``.
    edge_s_channels : int
        Invariant edge attributes (e.g. the product of two charges) fed to every message
        with the scalar channels (0: none).
    mlp : CliffordMLPConfig or mapping, optional
        Style and options of the message and update MLPs
        (:class:`~gatorch.layers.config.CliffordMLPConfig`).
    layout : Layout, optional
        The grades every multivector channel stores (:class:`~gatorch.algebras.Layout`):
        inputs and outputs are ``(nodes, channels, layout.dim)`` and every layer (linear maps,
        steerable products, MVSiLU, layer norms) works on the stored blades only. Not with
        ``mlp={"normalization_init": ...}`` (CGENN's n-body preset) yet. ``None`` (the default)
        or a full layout: all blades, today's net and state dict.

    Shapes
    ------
    ``forward(mv, scalars, edge_index, edge_attr=None) -> (mv, scalars)`` with ``mv: (nodes,
    in_mv_channels, dim)``, ``scalars: (nodes, in_s_channels)`` (or ``None`` when
    ``in_s_channels == 0``), ``edge_index: (2, edges)`` int64 with entries in
    ``[0, nodes)`` and ``edge_attr: (edges, edge_s_channels)`` (required when
    ``edge_s_channels > 0``); returns ``(nodes, out_mv_channels, dim)`` and
    ``(nodes, out_s_channels)``.

    Compilation: a freshly built net compiles with ``torch.compile(fullgraph=True)``, and
    with dynamic shapes a change of node or edge count recompiles once (to a graph
    generic in both). The range check of the ``edge_index`` *values* runs in eager mode
    only: under ``torch.compile`` it is skipped (reading the values would break the graph
    and force a host-device sync); its dtype and shape are always checked.

    Notes
    -----
    CGENN's n-body network (Ruhe et al. 2023) is ``layer_norm=False, message="difference",
    edge_s_channels=1, mlp={"style": "cgenn", "normalization_init": 0.0, "weight_init":
    "cgenn"}`` with 28 hidden channels, no scalar channels and 3 layers. CGENN embeds the
    edge attribute on the scalar blade of an extra multivector channel, which the first
    EquiLinear maps exactly as it maps an invariant scalar channel.

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
        message: str = "all",
        edge_s_channels: int = 0,
        mlp: CliffordMLPConfig | Mapping[str, Any] | None = None,
        layout: Layout | None = None,
    ) -> None:
        super().__init__()
        check_algebra(alg, "CliffordGNN")
        #: The grades every multivector channel stores (``None``: all blades).
        self.layout = lay = check_layout(alg, layout, "CliffordGNN")
        self._dim = alg.dim if lay is None else lay.dim
        for name, value, least in (
            ("in_mv_channels", in_mv_channels, 1),
            ("out_mv_channels", out_mv_channels, 1),
            ("hidden_mv_channels", hidden_mv_channels, 1),
            ("in_s_channels", in_s_channels, 0),
            ("out_s_channels", out_s_channels, 0),
            ("hidden_s_channels", hidden_s_channels, 0),
            ("num_layers", num_layers, 1),
            ("edge_s_channels", edge_s_channels, 0),
        ):
            check_int("CliffordGNN", name, value, least)
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"CliffordGNN: aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        if message not in MESSAGES:
            raise ValueError(f"CliffordGNN: message must be one of {MESSAGES}, got {message!r}")
        mlp = CliffordMLPConfig.cast(mlp)
        self.message, self.edge_s_channels = message, edge_s_channels
        self.alg, self.aggregation = alg, aggregation
        self.in_mv_channels, self.out_mv_channels = in_mv_channels, out_mv_channels
        self.in_s_channels, self.out_s_channels = in_s_channels, out_s_channels
        self.embed = EquiLinear(
            alg,
            in_mv_channels,
            hidden_mv_channels,
            in_s_channels=in_s_channels,
            out_s_channels=hidden_s_channels,
            in_layout=lay,
            out_layout=lay,
        )
        self.layers = nn.ModuleList(
            CliffordGNNLayer(
                alg,
                hidden_mv_channels,
                hidden_s_channels,
                layer_norm,
                message=message,
                edge_s_channels=edge_s_channels,
                mlp=mlp,
                layout=lay,
            )
            for _ in range(num_layers)
        )
        self.readout = EquiLinear(
            alg,
            hidden_mv_channels,
            out_mv_channels,
            in_s_channels=hidden_s_channels,
            out_s_channels=out_s_channels,
            in_layout=lay,
            out_layout=lay,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.alg!r}, aggregation={self.aggregation!r}, message={self.message!r}, "
            f"edge_s_channels={self.edge_s_channels}"
        )

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

    def forward(
        self, mv: Tensor, scalars: Tensor | None, edge_index: Tensor, edge_attr: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        dtype = module_dtype(self)
        check_mv_in(self.alg, self.layout, mv, self.in_mv_channels, "CliffordGNN", dtype)
        if mv.ndim != 3:
            raise ValueError(
                f"CliffordGNN: expected mv of shape (nodes, {self.in_mv_channels}, {self._dim}), "
                f"got {tuple(mv.shape)}"
            )
        check_scalars(scalars, self.in_s_channels, "CliffordGNN", dtype)
        num_nodes = mv.shape[0]
        if scalars is not None and scalars.shape[:-1] != mv.shape[:1]:
            raise ValueError(
                f"CliffordGNN: scalars must have shape ({num_nodes}, {self.in_s_channels}), "
                f"got {tuple(scalars.shape)}"
            )
        source, target = self._check_edges(edge_index, num_nodes).to(mv.device).unbind(0)
        if self.edge_s_channels:
            expected = (edge_index.shape[1], self.edge_s_channels)
            if not isinstance(edge_attr, Tensor) or tuple(edge_attr.shape) != expected:
                got = tuple(edge_attr.shape) if isinstance(edge_attr, Tensor) else edge_attr
                raise ValueError(
                    "CliffordGNN: expected edge_attr of shape (edges, edge_s_channels) = "
                    f"{expected}, got {got}"
                )
        elif edge_attr is not None:
            raise ValueError(
                "CliffordGNN: edge_attr given, but the net was built with edge_s_channels=0 "
                f"(got edge_attr of shape {tuple(edge_attr.shape)})"
            )
        inv_count = None
        if self.aggregation == "mean":
            count = mv.new_zeros(num_nodes).index_add(0, target, mv.new_ones(target.shape[0]))
            inv_count = 1.0 / count.clamp_min(1.0)
        h, s = self.embed(mv, scalars)
        for layer in self.layers:
            h, s = layer(h, s, source, target, inv_count, edge_attr)
        return self.readout(h, s)
