r"""``CSMPN``: Clifford group equivariant simplicial message passing (Liu, Ruhe et al., ICLR 2024).

CSMPN (Liu, Ruhe, Eijkelboom and Forré, "Clifford Group Equivariant Simplicial Message
Passing Networks", ICLR 2024) runs CGENN's layers (Ruhe et al., 2023) on a simplicial
complex (:class:`~gatorch.nets.simplicial.SimplicialComplex`, e.g. the Vietoris-Rips lift
:func:`~gatorch.nets.simplicial.rips_lift` of a point cloud). For any algebra; tested on
non-degenerate ones (O(n) and O(p, q)), which is what the paper covers.

Simplex embedding
-----------------
A ``k``-simplex :math:`\sigma = \{v_0, \dots, v_k\}` gets its features from the geometric
products of its vertices' multivector features :math:`x_{v}` (positions embedded as
vectors, for instance). The product of an *ordered* tuple is not symmetric in the
vertices, and the plain symmetrisation cancels every antisymmetric part (for two vectors
:math:`\tfrac12(ab + ba) = a \cdot b`: the wedge is lost). So, as in the paper's
implementation, a learnt network :math:`E_k` reads the vertices of one ordering as
separate channel blocks and the result is averaged over the :math:`(k + 1)!` orderings:

.. math::
    h_\sigma = \frac{1}{(k+1)!} \sum_{\pi \in S_{k+1}}
        E_k\big([x_{v_{\pi(0)}}, \dots, x_{v_{\pi(k)}}],\
                [s_{v_{\pi(0)}}, \dots, s_{v_{\pi(k)}}]\big)

with :math:`E_0` an :class:`~gatorch.layers.EquiLinear` and :math:`E_k` (``k >= 1``)
``k`` stacked :class:`~gatorch.layers.mlp.CliffordMLP` (each one steerable geometric
product), so the embedding of a ``k``-simplex reaches the ``(k + 1)``-fold products
:math:`x_{v_0} x_{v_1} \cdots x_{v_k}` (areas, volumes: bivectors, trivectors). The paper
sums over the orderings; the mean is the same up to the constant :math:`(k + 1)!` and
keeps unit scale. Every term is equivariant, and the mean makes :math:`h_\sigma`
independent of how the vertices of :math:`\sigma` are listed. An unordered simplex has no
orientation, so the parts that alternate with the ordering (the bivector
:math:`v_0 \wedge v_1` of an edge, the trivector of a triangle) average out; their even
functions survive, e.g. the squared area :math:`|v_0 \wedge v_1|^2` formed by the second
product of :math:`E_2` (vertex positions are vectors; centre them per cloud first).

Shared simplicial message passing
---------------------------------
All simplices are cells of one graph whose edges are the relations of
:data:`~gatorch.nets.simplicial.RELATIONS` (``"boundary"``: a simplex hears its faces,
``"coboundary"``: its cofaces, ``"upper"``: the simplices sharing a coface with it,
``"lower"``: those sharing a face; the paper and its code use the first three, the
default). Per layer, after an optional :class:`~gatorch.layers.EquiLayerNorm`:

.. math::
    m_{\tau\sigma} &= \phi_m\big([h_\sigma, h_\tau],\ [s_\sigma, s_\tau, r_{\tau\sigma}]\big)
        \qquad \text{for every relation } \tau \to \sigma \\
    a_\sigma &= \operatorname{agg}_{\tau \to \sigma} m_{\tau\sigma} \\
    h_\sigma &\leftarrow h_\sigma + \phi_u\big([h_\sigma, a_\sigma],\ [s_\sigma, a^s_\sigma, d_\sigma]\big)

with *one* message network :math:`\phi_m` and *one* update network :math:`\phi_u` for all
simplex dimensions and all relations (the paper's parameter sharing), told apart only by
the invariant one-hot codes :math:`r_{\tau\sigma}` (relation, sender dimension, receiver
dimension) and :math:`d_\sigma` (dimension), fed as scalar channels; and one aggregation
(mean or sum, ``index_add``) over the messages of all relations and dimensions together
(the paper's *shared* simplicial message passing). :math:`\phi_m, \phi_u` are
:class:`~gatorch.layers.mlp.CliffordMLP` (EquiLinear -> SteerableGeometricProduct ->
MVSiLU -> EquiLinear). A final EquiLinear reads out per-cell multivectors and scalars;
:meth:`SimplicialComplex.pool <gatorch.nets.simplicial.SimplicialComplex.pool>` pools
them per point cloud.

Equivariance: every map is equivariant and the relations depend on the complex alone, so
for a fixed complex the multivector outputs transform with the input (twisted versor
action, reflections included) and the scalar outputs are invariant. The Rips lift uses
Euclidean distances, which orthogonal maps preserve; for E(n) invariance centre the
positions per cloud first (as the paper does).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gatorch.functional.algebra import Algebra
from gatorch.layers._checks import check_algebra, check_int, check_mv, check_scalars, module_dtype
from gatorch.layers.config import CliffordMLPConfig
from gatorch.layers.linear import EquiLinear
from gatorch.layers.message_passing import AGGREGATIONS
from gatorch.layers.zoo.csmpn import EMBEDDINGS, MESSAGES, REDUCTIONS, CSMPNLayer, SimplexEmbedding
from gatorch.nets.simplicial import RELATIONS, SimplicialComplex

__all__ = [
    "CSMPN",
    "CSMPN_PRESETS",
    "DEFAULT_RELATIONS",
    "INITS",
    "MESSAGE_CODES",
    "CSMPNLayer",
    "SimplexEmbedding",
]

#: The relations of the paper's implementation: boundary, coboundary and upper adjacency.
DEFAULT_RELATIONS = ("boundary", "coboundary", "upper")
#: The invariant codes of a message: relation, sender and receiver dimension one-hot
#: (``"relation"``), or the sender's and receiver's dimensions only (``"dims"``, the
#: reference code's edge attributes).
MESSAGE_CODES = ("relation", "dims")
#: Initialisations of the EquiLinear maps: gatorch's variance-preserving one
#: (``"variance"``) or CGENN's ``MVLinear`` (``"cgenn"``: every weight, the scalar inputs'
#: included, normal with standard deviation ``1 / sqrt(in_channels + in_s_channels)``, zero
#: bias).
INITS = ("variance", "cgenn")

#: Named configurations of :class:`CSMPN` (:meth:`CSMPN.preset`). ``"csmpn-paper"`` is the
#: network of the reference code's convex-hull experiment (``HullsCliffordSharedSimplicialMPNN``):
#: 28 hidden multivector channels and no scalar channels, 3 layers without layer norm, CGENN
#: MLPs (2 blocks, steerable-product normalisation from 0, CGENN's weight initialisation),
#: messages from the difference of the two cells with the one-hot dimensions of sender and
#: receiver, one-hot cell dimensions in the update, mean aggregation, simplex embedding by
#: one CGENN MLP of ``k`` blocks summed over the vertex orderings.
CSMPN_PRESETS: dict[str, dict[str, Any]] = {
    "csmpn-paper": {
        "hidden_mv_channels": 28,
        "hidden_s_channels": 0,
        "num_layers": 3,
        "max_dim": 2,
        "relations": DEFAULT_RELATIONS,
        "aggregation": "mean",
        "layer_norm": False,
        "mlp": {"style": "cgenn", "blocks": 2, "normalization_init": 0.0, "weight_init": "cgenn"},
        "message": "difference",
        "message_codes": "dims",
        "embedding": "cemlp",
        "embedding_reduce": "sum",
        "init": "cgenn",
    },
}


def _one_hot(index: Tensor, classes: int, like: Tensor) -> Tensor:
    """``(M,)`` int64 in ``[0, classes)`` -> ``(M, classes)`` in the dtype of ``like``.

    A comparison with ``arange`` rather than ``nn.functional.one_hot``, which reads the
    index values to check their range (a host sync, and a graph break under ``torch.compile``).
    """
    index = index.to(like.device)
    return (index[:, None] == torch.arange(classes, device=like.device)).to(like.dtype)


class CSMPN(nn.Module):
    r"""Clifford group equivariant simplicial message-passing network (CSMPN), any algebra.

    :class:`~gatorch.layers.zoo.csmpn.SimplexEmbedding` per simplex dimension -> ``num_layers`` x
    :class:`~gatorch.layers.zoo.csmpn.CSMPNLayer` (message and update networks shared by all dimensions and
    relations) -> ``readout`` (EquiLinear), on every cell of a
    :class:`~gatorch.nets.simplicial.SimplicialComplex`; see the module docstring.

    The defaults are gatorch's CSMPN as before these options; :meth:`preset` gives named
    configurations, ``"csmpn-paper"`` the reference code's (:data:`CSMPN_PRESETS`).

    Parameters
    ----------
    alg : Algebra
    in_mv_channels, out_mv_channels, hidden_mv_channels : int
        Multivector channels of the vertex inputs, the cell outputs and the hidden cells.
    in_s_channels, out_s_channels, hidden_s_channels : int
        Scalar channels (0: none).
    num_layers : int
        Message-passing layers (>= 1).
    max_dim : int
        Highest simplex dimension embedded (>= 0); a complex may stop lower.
    relations : sequence of str
        Subset of :data:`~gatorch.nets.simplicial.RELATIONS` messages flow along
        (default :data:`DEFAULT_RELATIONS`, the paper's).
    aggregation : {"mean", "sum"}
        Over all incoming messages of a cell, all relations together.
    layer_norm : bool
        EquiLayerNorm at the start of every layer.
    mlp : CliffordMLPConfig or mapping, optional
        Options of the message, update and simplex-embedding CliffordMLPs (default
        ``CliffordMLPConfig()``, gatorch's style).
    message : {"concat", "difference"}
        Message input ``[h_receiver, h_sender]`` (default) or ``h_receiver - h_sender``.
    message_codes : {"relation", "dims"}
        Invariant codes of a message: relation, sender and receiver dimension one-hot
        (default) or the two dimensions only (:data:`MESSAGE_CODES`).
    embedding : {"stacked", "cemlp"}
        Structure of the simplex embeddings (:class:`~gatorch.layers.zoo.csmpn.SimplexEmbedding`).
    embedding_reduce : {"mean", "sum"}
        How the simplex embeddings combine the vertex orderings.
    init : {"variance", "cgenn"}
        Initialisation of every EquiLinear (:data:`INITS`).

    Shapes
    ------
    ``forward(mv, scalars, cx) -> (mv, scalars)`` with ``cx`` a SimplicialComplex, vertex inputs ``mv:
    (num_vertices, in_mv_channels, dim)`` and ``scalars: (num_vertices, in_s_channels)``
    (or ``None`` when ``in_s_channels == 0``); returns per-cell outputs ``(num_cells,
    out_mv_channels, dim)`` and ``(num_cells, out_s_channels)`` in the complex's cell order
    (vertices first; ``cx.offsets``), to pool with ``cx.pool``.

    Compilation: a freshly built net compiles with ``torch.compile(fullgraph=True)`` (the
    complex is an input like the tensors; its cell dimensions come from the static simplex
    counts and the one-hot codes from comparisons, so nothing reads index values). Build the
    complex outside the compiled function (:func:`~gatorch.nets.simplicial.rips_lift` has
    data-dependent shapes).

    Examples
    --------
    >>> import torch
    >>> from gatorch import VGA3
    >>> from gatorch.nets.simplicial import rips_lift
    >>> pos = torch.randn(2, 6, 3)  # two clouds of six points
    >>> cx = rips_lift(pos, radius=1.5)
    >>> mv = torch.zeros(12, 1, 8)
    >>> mv[..., VGA3.grade_slice(1)] = pos.reshape(12, 1, 3)
    >>> net = CSMPN(VGA3, in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=4,
    ...             out_s_channels=1, hidden_s_channels=4, num_layers=2)
    >>> out, s = net(mv, None, cx)
    >>> out.shape[0] == cx.num_cells, cx.pool(s).shape
    (True, torch.Size([2, 1]))
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
        max_dim: int = 2,
        relations: Sequence[str] = DEFAULT_RELATIONS,
        aggregation: str = "mean",
        layer_norm: bool = True,
        mlp: CliffordMLPConfig | Mapping[str, Any] | None = None,
        message: str = "concat",
        message_codes: str = "relation",
        embedding: str = "stacked",
        embedding_reduce: str = "mean",
        init: str = "variance",
    ) -> None:
        super().__init__()
        who = "CSMPN"
        check_algebra(alg, who)
        for name, value, least in (
            ("in_mv_channels", in_mv_channels, 1),
            ("out_mv_channels", out_mv_channels, 1),
            ("hidden_mv_channels", hidden_mv_channels, 1),
            ("in_s_channels", in_s_channels, 0),
            ("out_s_channels", out_s_channels, 0),
            ("hidden_s_channels", hidden_s_channels, 0),
            ("num_layers", num_layers, 1),
            ("max_dim", max_dim, 0),
        ):
            check_int(who, name, value, least)
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"{who}: aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        for option, choice, choices in (
            ("message", message, MESSAGES),
            ("message_codes", message_codes, MESSAGE_CODES),
            ("embedding", embedding, EMBEDDINGS),
            ("embedding_reduce", embedding_reduce, REDUCTIONS),
            ("init", init, INITS),
        ):
            if choice not in choices:
                raise ValueError(f"{who}: {option} must be one of {choices}, got {choice!r}")
        cfg = CliffordMLPConfig.cast(mlp)
        if isinstance(relations, str) or not isinstance(relations, Sequence):
            raise TypeError(
                f"{who}: relations must be a sequence of names from {RELATIONS}, got {relations!r}"
            )
        unknown = [r for r in relations if r not in RELATIONS]
        if unknown or not relations or len(set(relations)) != len(relations):
            raise ValueError(
                f"{who}: relations must be distinct names from {RELATIONS} (at least one), "
                f"got {tuple(relations)}"
            )
        self.alg, self.aggregation, self.max_dim = alg, aggregation, max_dim
        self.relations = tuple(relations)
        self.in_mv_channels, self.out_mv_channels = in_mv_channels, out_mv_channels
        self.in_s_channels, self.out_s_channels = in_s_channels, out_s_channels
        self.message_input, self.message_codes, self.init = message, message_codes, init
        num_dims = max_dim + 1
        self.message_attr_channels = (
            len(self.relations) if message_codes == "relation" else 0
        ) + 2 * num_dims
        self.embed = nn.ModuleList(
            SimplexEmbedding(
                alg,
                k,
                in_mv_channels,
                hidden_mv_channels,
                in_s_channels,
                hidden_s_channels,
                mlp=cfg,
                structure=embedding,
                reduce=embedding_reduce,
            )
            for k in range(num_dims)
        )
        self.layers = nn.ModuleList(
            CSMPNLayer(
                alg,
                hidden_mv_channels,
                hidden_s_channels,
                self.message_attr_channels,
                num_dims,
                layer_norm,
                mlp=cfg,
                message=message,
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
        if init == "cgenn":
            self._cgenn_init()

    @classmethod
    def preset(cls, name: str, alg: Algebra, **overrides: Any) -> CSMPN:
        """A named configuration of :data:`CSMPN_PRESETS`, with keyword overrides.

        Parameters
        ----------
        name : str
            A key of :data:`CSMPN_PRESETS` (``"csmpn-paper"``: the reference code's hull network).
        alg : Algebra
            The reference code's hull network is on ``Algebra(5, 0, 0)``.
        **overrides
            Any constructor argument; the channel counts of the inputs and outputs have to
            be given here (the hull network: ``in_mv_channels=1, out_mv_channels=1``, the
            prediction being the scalar blade of the output, mean-pooled over all cells).

        Examples
        --------
        >>> from gatorch import Algebra
        >>> net = CSMPN.preset("csmpn-paper", Algebra(5, 0, 0), in_mv_channels=1, out_mv_channels=1)
        >>> net.message_input, net.message_codes, len(net.layers)
        ('difference', 'dims', 3)
        """
        if name not in CSMPN_PRESETS:
            raise ValueError(f"CSMPN.preset: name must be one of {tuple(CSMPN_PRESETS)}, got {name!r}")
        return cls(alg, **{**CSMPN_PRESETS[name], **overrides})

    def _cgenn_init(self) -> None:
        """CGENN's ``MVLinear`` initialisation for every EquiLinear (see :data:`INITS`)."""
        with torch.no_grad():
            for module in self.modules():
                if not isinstance(module, EquiLinear):
                    continue
                std = 1.0 / math.sqrt(module.in_channels + module.in_s_channels)
                module.weight.normal_().mul_(std)
                if module.s_to_mv is not None:
                    module.s_to_mv.normal_().mul_(std)
                if module.bias is not None:
                    module.bias.zero_()

    def extra_repr(self) -> str:
        return (
            f"{self.alg!r}, max_dim={self.max_dim}, relations={self.relations}, "
            f"aggregation={self.aggregation!r}, message={self.message_input!r}, "
            f"message_codes={self.message_codes!r}, init={self.init!r}"
        )

    def _check_inputs(self, mv: Tensor, scalars: Tensor | None, cx: SimplicialComplex) -> Tensor:
        who = "CSMPN"
        if not isinstance(cx, SimplicialComplex):
            raise TypeError(
                f"{who}: cx must be a gatorch.nets.simplicial.SimplicialComplex (e.g. from rips_lift), "
                f"got {type(cx).__name__}"
            )
        if cx.max_dim > self.max_dim:
            raise ValueError(
                f"{who}: the net embeds simplices up to dimension max_dim={self.max_dim}, "
                f"got a complex of dimension {cx.max_dim}"
            )
        dtype = module_dtype(self)
        check_mv(self.alg, mv, self.in_mv_channels, who, dtype)
        expected = (cx.num_vertices, self.in_mv_channels, self.alg.dim)
        if tuple(mv.shape) != expected:
            raise ValueError(
                f"{who}: expected mv of shape {expected} (num_vertices, in_mv_channels, dim), "
                f"got {tuple(mv.shape)}"
            )
        check_scalars(scalars, self.in_s_channels, who, dtype)
        if scalars is None:
            return mv.new_zeros(mv.shape[0], 0)
        if scalars.shape != (cx.num_vertices, self.in_s_channels):
            raise ValueError(
                f"{who}: scalars must have shape ({cx.num_vertices}, {self.in_s_channels}), "
                f"got {tuple(scalars.shape)}"
            )
        return scalars

    def forward(self, mv: Tensor, scalars: Tensor | None, cx: SimplicialComplex) -> tuple[Tensor, Tensor]:
        scalars = self._check_inputs(mv, scalars, cx)
        if cx.device != mv.device:
            cx = cx.to(mv.device)
        num_dims = self.max_dim + 1
        embedded = [self.embed[k](mv, scalars, simplices) for k, simplices in enumerate(cx.simplices)]
        h = torch.cat([e[0] for e in embedded], dim=0)
        s = torch.cat([e[1] for e in embedded], dim=0)
        num_cells = h.shape[0]

        cell_dim = cx.cell_dim
        edges = [cx.relation(name) for name in self.relations]
        source = torch.cat([e[0] for e in edges])
        target = torch.cat([e[1] for e in edges])
        kind = torch.cat(
            [torch.full((e.shape[1],), i, dtype=torch.int64, device=mv.device) for i, e in enumerate(edges)]
        )
        codes = [_one_hot(cell_dim[source], num_dims, h), _one_hot(cell_dim[target], num_dims, h)]
        if self.message_codes == "relation":
            codes.insert(0, _one_hot(kind, len(self.relations), h))
        message_attr = torch.cat(codes, dim=-1)
        cell_attr = _one_hot(cell_dim, num_dims, h)
        inv_count = None
        if self.aggregation == "mean":
            count = h.new_zeros(num_cells).index_add(0, target, h.new_ones(target.shape[0]))
            inv_count = 1.0 / count.clamp_min(1.0)
        for layer in self.layers:
            h, s = layer(h, s, source, target, message_attr, cell_attr, inv_count)
        return self.readout(h, s)
