r"""``CliffordGNN``: an E(n)/O(n)-equivariant message-passing network on multivector features.

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
attributes, and :math:`\phi_m, \phi_u` are :class:`CliffordMLP`\ s on ``(mv, scalars)``
pairs: EquiLinear -> SteerableGeometricProduct -> MVSiLU -> EquiLinear by default, or
CGENN's blocks (:class:`CliffordMLPConfig`). With ``message="difference"`` the message
sees :math:`h_i - h_j` alone, as in CGENN. Every step is equivariant and the aggregation
is linear per node, so the network is equivariant under the algebra's versor group and its
scalar outputs are invariant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gatorch.algebras.algebra import Algebra
from gatorch.layers._checks import check_algebra, check_int, check_mv, check_scalars
from gatorch.layers.config import _Config
from gatorch.layers.linear import EquiLinear
from gatorch.layers.nonlinear import EquiLayerNorm
from gatorch.layers.steerable import WEIGHT_INITS, MVSiLU, SteerableGeometricProduct

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

AGGREGATIONS = ("sum", "mean")
#: What a message sees of its two nodes: ``[h_i, h_j, h_i - h_j]`` or ``h_i - h_j`` (CGENN).
MESSAGES = ("all", "difference")
MLP_STYLES = ("gatorch", "cgenn")
BLOCK_NORMS = ("mean", "rms", "none")


@dataclass(frozen=True)
class CliffordMLPConfig(_Config):
    """Options of :class:`CliffordMLP` (and of the message and update MLPs of :class:`CliffordGNN`).

    Attributes
    ----------
    style : {"gatorch", "cgenn"}
        ``"gatorch"``: EquiLinear -> SteerableGeometricProduct -> MVSiLU -> EquiLinear.
        ``"cgenn"``: ``blocks`` x (EquiLinear -> MVSiLU -> SteerableGeometricProduct ->
        EquiLayerNorm), CGENN's ``CEMLP``, whose layer norm is the mean-of-norms statistic
        with a learnt scale per channel.
    blocks : int
        Blocks of the ``"cgenn"`` style (CGENN: 2); must be 2 for ``"gatorch"``, whose
        structure is fixed.
    normalization_init : float, optional
        The steerable product's right-operand normalisation
        (:func:`~gatorch.functional.steerable.grade_normalize`), with logits starting here;
        ``None``: off. CGENN: 0.0.
    weight_init : {"variance", "cgenn"}
        Initialisation of the steerable product's path weights
        (:class:`~gatorch.layers.SteerableGeometricProduct`).
    block_norm : {"mean", "rms", "none"}
        The layer norm closing each block of the ``"cgenn"`` style: CGENN's mean of the
        channel norms with a learnt scale per channel (``"mean"``), GATr's root mean square
        without a scale (``"rms"``), or none.
    """

    style: str = "gatorch"
    blocks: int = 2
    normalization_init: float | None = None
    weight_init: str = "variance"
    block_norm: str = "mean"

    def __post_init__(self) -> None:
        if self.style not in MLP_STYLES:
            raise ValueError(f"CliffordMLPConfig: style must be one of {MLP_STYLES}, got {self.style!r}")
        check_int("CliffordMLPConfig", "blocks", self.blocks, 1)
        if self.style == "gatorch" and self.blocks != 2:
            raise ValueError(
                f"CliffordMLPConfig: the 'gatorch' style has 2 linear maps (blocks=2), got {self.blocks}"
            )
        if self.normalization_init is not None and not isinstance(self.normalization_init, (int, float)):
            raise TypeError(
                "CliffordMLPConfig: normalization_init must be a float or None, "
                f"got {self.normalization_init!r}"
            )
        if self.block_norm not in BLOCK_NORMS:
            raise ValueError(
                f"CliffordMLPConfig: block_norm must be one of {BLOCK_NORMS}, got {self.block_norm!r}"
            )
        if self.weight_init not in WEIGHT_INITS:
            raise ValueError(
                f"CliffordMLPConfig: weight_init must be one of {WEIGHT_INITS}, got {self.weight_init!r}"
            )


class CliffordMLP(nn.Module):
    r"""CGENN's multivector MLP on ``(mv, scalars)``, in one of two styles (:class:`CliffordMLPConfig`).

    * ``"gatorch"`` (default): EquiLinear -> SteerableGeometricProduct -> MVSiLU -> EquiLinear.
    * ``"cgenn"``: ``blocks`` x (EquiLinear -> MVSiLU -> SteerableGeometricProduct ->
      EquiLayerNorm(statistic="mean", elementwise_affine=True)), CGENN's ``CEMLP``.

    Parameters
    ----------
    alg : Algebra
    in_channels, out_channels : int
        Multivector channels in and out; the hidden width is ``out_channels``.
    in_s_channels, out_s_channels : int
        Scalar channels in and out (0: none); the hidden width is ``out_s_channels``.
    config : CliffordMLPConfig or mapping, optional

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
        config: CliffordMLPConfig | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.config = cfg = CliffordMLPConfig.cast(config)
        norm_init, weight_init = cfg.normalization_init, cfg.weight_init
        if cfg.style == "gatorch":
            self.linear_in = EquiLinear(
                alg, in_channels, out_channels, in_s_channels=in_s_channels, out_s_channels=out_s_channels
            )
            self.product = SteerableGeometricProduct(
                alg,
                out_channels,
                in_s_channels=out_s_channels,
                normalization_init=norm_init,
                weight_init=weight_init,
            )
            self.activation = MVSiLU(alg, out_channels)
            self.linear_out = EquiLinear(
                alg, out_channels, out_channels, in_s_channels=out_s_channels, out_s_channels=out_s_channels
            )
            self.blocks: nn.ModuleList | None = None
            return
        layers: list[nn.Module] = []
        for block in range(cfg.blocks):
            c_in, s_in = (in_channels, in_s_channels) if block == 0 else (out_channels, out_s_channels)
            layers += [
                EquiLinear(alg, c_in, out_channels, in_s_channels=s_in, out_s_channels=out_s_channels),
                MVSiLU(alg, out_channels),
                SteerableGeometricProduct(
                    alg,
                    out_channels,
                    in_s_channels=out_s_channels,
                    normalization_init=norm_init,
                    weight_init=weight_init,
                ),
            ]
            if cfg.block_norm == "mean":
                layers.append(
                    EquiLayerNorm(
                        alg,
                        out_s_channels,
                        statistic="mean",
                        mv_channels=out_channels,
                        elementwise_affine=True,
                    )
                )
            elif cfg.block_norm == "rms":
                layers.append(EquiLayerNorm(alg, out_s_channels))
        self.blocks = nn.ModuleList(layers)

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor]:
        s: Tensor | None = scalars
        sequence = (
            (self.linear_in, self.product, self.activation, self.linear_out)
            if self.blocks is None
            else self.blocks
        )
        for layer in sequence:
            mv, s = layer(mv, s)
        assert s is not None
        return mv, s


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
    message : {"all", "difference"}
        Multivector input of a message: ``[h_i, h_j, h_i - h_j]`` or ``h_i - h_j`` (CGENN).
    edge_s_channels : int
        Invariant edge attributes fed to the messages (0: none).
    mlp : CliffordMLPConfig or mapping, optional
        The message and update MLPs.

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
    ) -> None:
        super().__init__()
        if message not in MESSAGES:
            raise ValueError(f"CliffordGNNLayer: message must be one of {MESSAGES}, got {message!r}")
        self.message_inputs = message
        self.norm = EquiLayerNorm(alg, s_channels) if layer_norm else None
        mv_in = 3 * mv_channels if message == "all" else mv_channels
        self.message = CliffordMLP(alg, mv_in, mv_channels, 2 * s_channels + edge_s_channels, s_channels, mlp)
        self.update = CliffordMLP(alg, 2 * mv_channels, mv_channels, 2 * s_channels, s_channels, mlp)

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
    message : {"all", "difference"}
        Multivector input of a message: ``[h_i, h_j, h_i - h_j]`` (the default) or CGENN's
        ``h_i - h_j``.
    edge_s_channels : int
        Invariant edge attributes (e.g. the product of two charges) fed to every message
        with the scalar channels (0: none).
    mlp : CliffordMLPConfig or mapping, optional
        Style and options of the message and update MLPs (:class:`CliffordMLPConfig`).

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
            )
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
