r"""n-body models built from gatorch layers, and the registry of all models the trainer knows.

Every model maps ``(loc, vel, attr) -> predicted final positions``, with ``loc, vel: (B, N, 3)``
and ``attr: (B, N)`` (charges or masses); see :func:`build_model`.

Both gatorch models work on centred positions :math:`x_i - \bar x` (:math:`\bar x` the mean
position of the system) and add :math:`\bar x` back, which makes translation equivariance exact
and keeps the network's inputs of order one however far the system is from the origin (the
gravity task translates systems by N(0, 20²), its shifted test set by 200 more). Rotation and
reflection equivariance come from the networks. Both also see the linear extrapolation
:math:`x + T v` (``T = time_scale``, the time to the target) and predict a correction to it.

* :class:`NBodyGATr`: :class:`gatorch.nets.GATr` on ``PGA3`` (GATr's algebra, E(3)). Tokens are
  the particles; multivector channels are the point :math:`x`, the direction :math:`v` and the
  point :math:`x + T v`; scalar channels the attribute features. Attention uses the PGA distance
  term. Readout, from the output point :math:`y` with weight :math:`w` (``e123`` coefficient)
  and ideal part :math:`u` (``pga.extract_direction``):

  .. math:: \Delta = \frac{w\,(u - w\,x_{\text{lin}})}{1 + w^2}

  :math:`u - w x_{\text{lin}}` is translation invariant; points pick up :math:`\det M` under
  improper motions, and the extra factor :math:`w` cancels it, so :math:`\Delta` is a proper
  vector. For :math:`w = 1` this is half the offset of the point :math:`y` from the
  extrapolation, without the division by a possibly vanishing weight that
  ``extract_point`` needs.
* ``NBodyGATr(algebra="vga3", grades=...)``: the same transformer on ``VGA3`` (O(3), translations
  by the centring), with :math:`x, v, x + T v` as vectors, no distance term (a PGA term),
  and the output's vector part as :math:`\Delta`. ``grades`` stores only those grades in every
  multivector channel (a :class:`gatorch.algebras.Layout`); on VGA3 the positions are vectors,
  so grades ``(0, 1)`` and ``(0, 1, 2)`` hold them (on PGA3 they are grade 3, and these
  layouts could not).
* :class:`NBodyCGENN`: :class:`gatorch.nets.CliffordGNN` on ``VGA3`` (CGENN's setting, O(3)),
  fully connected within each system; vectors :math:`x, v, x + T v` as multivector channels;
  the output vector part is :math:`\Delta`.

Both predict :math:`\bar x + x_{\text{lin}} + \Delta`.

:class:`PairFeatures` (``NBodyGATr(pair_channels=K)``, off by default) adds what attention
alone lacks: a learned function of each pair. An MLP of the pair's invariants (distance,
closest approach along the linear extrapolation, relative velocity, both attributes) weighs
the relative position :math:`x_i - x_j` and velocity :math:`v_i - v_j`, summed over
:math:`j \ne i` into ``K`` directions and ``K`` scalars per particle, EGNN-style, before
the transformer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from examples.nbody.baselines import EGNN, Transformer, _check_attr_features, _check_inputs
from gatorch import PGA3, VGA3
from gatorch.algebras import Layout
from gatorch.interface import pga, vga
from gatorch.nets import CliffordGNN, GATr

__all__ = [
    "CGENN_INPUTS",
    "GATR_ALGEBRAS",
    "MODELS",
    "ChargeSymmetric",
    "NBodyCGENN",
    "NBodyGATr",
    "PairFeatures",
    "attr_scalars",
    "build_model",
    "gatr_grades",
]

_E123 = PGA3.index("e123")


def attr_scalars(attr: Tensor, mode: str) -> Tensor:
    """Per-particle invariant features ``(B, N, k)`` of ``attr: (B, N)``.

    ``"raw"``: the attribute itself (k = 1, charges). ``"log"``: ``log(attr)`` and ``attr``
    (k = 2, positive masses spanning orders of magnitude).
    """
    if _check_attr_features(mode) == "raw":
        return attr.unsqueeze(-1)
    return torch.stack([attr.log(), attr], dim=-1)


def _centred(loc: Tensor, vel: Tensor, attr: Tensor, time_scale: float) -> tuple[Tensor, Tensor, Tensor]:
    """Check the inputs; the system centres ``(B, 1, 3)``, centred positions and extrapolations."""
    _check_inputs(loc, vel, attr)
    center = loc.mean(dim=-2, keepdim=True)
    x = loc - center
    return center, x, x + time_scale * vel


def _n_attr(mode: str) -> int:
    return 1 if _check_attr_features(mode) == "raw" else 2


def _complete_graph(batch: int, n: int, device: torch.device) -> Tensor:
    """Edges ``(2, batch * n * (n - 1))`` of ``batch`` disjoint complete graphs on ``n`` nodes."""
    # row i lists j = 0..n-1 without i, in order: j = k + (k >= i) for k < n - 1 (no boolean
    # indexing, whose data-dependent size would break a compiled graph)
    i = torch.arange(n, device=device)[:, None]
    k = torch.arange(n - 1, device=device)[None, :]
    src, dst = (k + (k >= i).long()).reshape(-1), i.expand(n, n - 1).reshape(-1)
    offset = (torch.arange(batch, device=device) * n).unsqueeze(-1)
    return torch.stack([(src + offset).reshape(-1), (dst + offset).reshape(-1)])


class PairFeatures(nn.Module):
    r"""Per-particle sums of learned pair messages: E(3)-equivariant directions and invariants.

    For every ordered pair :math:`j \ne i` of a system, with :math:`d = x_i - x_j` and
    :math:`u = v_i - v_j`, the invariants are :math:`r = |d|`, :math:`1 / (r + 0.1)`, the
    radial velocity :math:`d \cdot u / r`, :math:`|u|`, the closest distance
    :math:`r_{\min} = |d + t^* u|` on the linear paths within the horizon
    (:math:`t^* = \operatorname{clip}(-d \cdot u / |u|^2, 0, T)`), :math:`1 / (r_{\min} + 0.1)`,
    :math:`t^* / T`, and the attribute features of ``i``, of ``j`` and their product. An MLP
    maps them to weights :math:`\alpha, \beta \in \mathbb{R}^K` and scalars
    :math:`\gamma \in \mathbb{R}^K`, and

    .. math:: m_i = \sum_{j \ne i} \alpha_{ij}\, d_{ij} + \beta_{ij}\, u_{ij}, \qquad
              c_i = \sum_{j \ne i} \gamma_{ij}.

    :math:`m_i` are ``K`` vectors (rotate and reflect with the system, translation
    invariant), :math:`c_i` ``K`` invariants; both are permutation equivariant.

    Parameters
    ----------
    n_attr : int
        Attribute features per particle (see :func:`attr_scalars`).
    channels : int
        ``K``, the number of vectors and of scalars per particle.
    time_scale : float
        ``T``, the horizon of the closest-approach feature.
    hidden : int
        Width of the MLP.

    Shapes
    ------
    ``forward(x, vel, feats) -> (m, c)`` with ``x, vel: (B, N, 3)`` (centred positions and
    velocities), ``feats: (B, N, n_attr)``; ``m: (B, N, K, 3)``, ``c: (B, N, K)``.
    """

    def __init__(self, n_attr: int, channels: int, time_scale: float, hidden: int = 64) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"PairFeatures needs channels >= 1, got {channels}")
        self.channels, self.time_scale = channels, float(time_scale)
        self.mlp = nn.Sequential(
            nn.Linear(7 + 3 * n_attr, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 3 * channels),
        )

    def forward(self, x: Tensor, vel: Tensor, feats: Tensor) -> tuple[Tensor, Tensor]:
        n = x.shape[-2]
        j, i = _complete_graph(1, n, x.device)  # every ordered pair j != i once, messages j -> i
        d, u = x[..., i, :] - x[..., j, :], vel[..., i, :] - vel[..., j, :]  # (B, P, 3)
        r = d.square().sum(-1, keepdim=True).clamp_min(1e-12).sqrt()
        du = (d * u).sum(-1, keepdim=True)
        u2 = u.square().sum(-1, keepdim=True)
        t = (-du / u2.clamp_min(1e-12)).clamp(0.0, self.time_scale)
        r_min = (d + t * u).square().sum(-1, keepdim=True).clamp_min(1e-12).sqrt()
        fi, fj = feats[..., i, :], feats[..., j, :]
        geometry = [r, 1.0 / (r + 0.1), du / r, u2.sqrt(), r_min, 1.0 / (r_min + 0.1), t / self.time_scale]
        inv = torch.cat([*geometry, fi, fj, fi * fj], dim=-1)
        alpha, beta, gamma = self.mlp(inv).chunk(3, dim=-1)  # (B, P, K) each
        msg = alpha.unsqueeze(-1) * d.unsqueeze(-2) + beta.unsqueeze(-1) * u.unsqueeze(-2)  # (B, P, K, 3)
        m = x.new_zeros(*x.shape[:-2], n, self.channels, 3).index_add_(-3, i, msg)
        c = x.new_zeros(*x.shape[:-2], n, self.channels).index_add_(-2, i, gamma)
        return m, c


#: The algebras :class:`NBodyGATr` runs on, and the grades each one's embedding needs.
GATR_ALGEBRAS: dict[str, tuple[int, ...]] = {"pga3": (0, 3), "vga3": (0, 1)}


def gatr_grades(algebra: str, grades: Sequence[int] | str | None) -> tuple[int, ...] | None:
    """The checked ``grades`` of :class:`NBodyGATr` on ``algebra`` (sorted), ``None`` for all of them."""
    if algebra not in GATR_ALGEBRAS:
        raise ValueError(f"NBodyGATr: algebra must be one of {tuple(GATR_ALGEBRAS)}, got {algebra!r}")
    n = 4 if algebra == "pga3" else 3
    if grades is None or grades in ("full", "all"):
        return None
    if isinstance(grades, str):  # the command line's "0,1,2"
        try:
            grades = [int(g) for g in grades.split(",")]
        except ValueError:
            raise ValueError(
                f"NBodyGATr: expected grades as ints in [0, {n}] (e.g. [0, 1, 2] or '0,1,2') or 'full', "
                f"got {grades!r}"
            ) from None
    if not isinstance(grades, Sequence):
        raise ValueError(f"NBodyGATr: expected grades as distinct ints in [0, {n}] or 'full', got {grades!r}")
    ints = [g for g in grades if isinstance(g, int) and not isinstance(g, bool) and 0 <= g <= n]
    if isinstance(grades, str) or len(ints) != len(grades) or len(set(ints)) != len(ints):
        raise ValueError(f"NBodyGATr: expected grades as distinct ints in [0, {n}] or 'full', got {grades!r}")
    out = tuple(sorted(ints))
    need = GATR_ALGEBRAS[algebra]
    if not set(need) <= set(out):
        why = "points, directions are grade 3" if algebra == "pga3" else "positions, velocities are vectors"
        raise ValueError(
            f"NBodyGATr: algebra {algebra!r} needs grades {need} in the layout (grade 0 for the gates; "
            f"{why}), got grades {out}"
        )
    return None if out == tuple(range(n + 1)) else out


class NBodyGATr(nn.Module):
    r"""GATr for n-body prediction, on PGA3 (default) or VGA3, on all grades or a layout.

    See the module docstring for the PGA3 embedding. ``algebra="vga3"`` is the same net on
    ``VGA3`` (O(3); translations by the centring): multivector channels the vectors
    :math:`x, v, x + T v` (centred), the output's vector part is :math:`\Delta`, and attention
    has no distance term (a PGA term). ``grades`` stores only those grades in every
    multivector channel (a :class:`gatorch.algebras.Layout`): on VGA3 ``(0, 1)``,
    ``(0, 1, 2)`` or all 8 blades (4, 7 and 8 blades per channel); on PGA3 any grade set
    with grades 0 and 3 (the points).

    Parameters
    ----------
    hidden_mv_channels, hidden_s_channels : int
        Width of the transformer.
    num_blocks, num_heads : int
    attr_features : {"raw", "log"}
        How ``attr`` becomes scalar channels, see :func:`attr_scalars`.
    time_scale : float
        Time from input to target; the linear extrapolation is ``x + time_scale * v``.
    mlp_ratio : int
        Hidden width of the MLPs relative to the block width.
    dropout : float
        Dropout in every block (grade dropout on the attention and MLP outputs, dropout on
        the attention weights); 0 turns it off.
    pair_channels : int
        ``K > 0`` adds :class:`PairFeatures`: ``K`` more direction channels and ``K`` more
        scalar channels per token, from learned pair messages. 0 (default): tokens see
        only their own particle, and pairs meet in attention only.
    algebra : {"pga3", "vga3"}
        The algebra of the transformer (see above).
    grades : sequence of int or str, optional
        The grades every multivector channel stores (also ``"0,1,2"``, as ``--model-arg
        grades=0,1,2`` passes them); ``None``, ``"full"`` or every grade: all blades (the
        ordinary GATr, state dict unchanged). ``ValueError`` if a grade the embedding needs
        is missing (0 and 1 on VGA3, 0 and 3 on PGA3).

    Shapes
    ------
    ``forward(loc, vel, attr) -> (B, N, 3)`` with ``loc, vel: (B, N, 3)``, ``attr: (B, N)``.
    """

    def __init__(
        self,
        *,
        hidden_mv_channels: int = 16,
        hidden_s_channels: int = 32,
        num_blocks: int = 4,
        num_heads: int = 4,
        attr_features: str = "raw",
        time_scale: float = 1.0,
        mlp_ratio: int = 2,
        dropout: float = 0.0,
        pair_channels: int = 0,
        algebra: str = "pga3",
        grades: Sequence[int] | str | None = None,
    ) -> None:
        super().__init__()
        self.attr_features, self.time_scale = attr_features, float(time_scale)
        if not isinstance(pair_channels, int) or pair_channels < 0:
            raise ValueError(f"pair_channels must be an int >= 0, got {pair_channels!r}")
        self.algebra = algebra
        self.grades = gatr_grades(algebra, grades)
        alg = PGA3 if algebra == "pga3" else VGA3
        #: The stored grades (``None``: all blades).
        self.layout = None if self.grades is None else Layout(alg, self.grades)
        n_attr = _n_attr(attr_features)
        self.pairs = PairFeatures(n_attr, pair_channels, time_scale) if pair_channels else None
        self.net = GATr(
            alg,
            in_mv_channels=3 + pair_channels,
            out_mv_channels=1,
            hidden_mv_channels=hidden_mv_channels,
            in_s_channels=n_attr + pair_channels,
            hidden_s_channels=hidden_s_channels,
            num_blocks=num_blocks,
            num_heads=num_heads,
            attention={"distance_features": algebra == "pga3", "dropout": dropout},
            mlp={"mlp_ratio": mlp_ratio, "dropout": dropout},
            layout=self.layout,
        )

    def forward(self, loc: Tensor, vel: Tensor, attr: Tensor) -> Tensor:
        center, x, x_lin = _centred(loc, vel, attr, self.time_scale)
        point: Callable[[Tensor], Tensor]
        vector: Callable[[Tensor], Tensor]
        if self.algebra == "pga3":
            point, vector = pga.embed_point, pga.embed_direction
        else:  # VGA3: positions (centred) and velocities are vectors
            point = vector = vga.embed_vector
        mv = torch.stack([point(x), vector(vel), point(x_lin)], dim=-2)
        scalars = attr_scalars(attr, self.attr_features)
        if self.pairs is not None:
            m, c = self.pairs(x, vel, scalars)
            mv = torch.cat([mv, vector(m)], dim=-2)
            scalars = torch.cat([scalars, c], dim=-1)
        if self.layout is not None:  # the stored grades (slices of the full multivectors)
            mv = self.layout.project(mv)
        out, _ = self.net(mv, scalars)
        y = out[..., 0, :] if self.layout is None else self.layout.embed(out[..., 0, :])
        if self.algebra == "vga3":
            return center + x_lin + vga.extract_vector(y)
        w = y[..., _E123 : _E123 + 1]  # the point's weight
        u = pga.extract_direction(y)
        delta = w * (u - w * x_lin) / (1.0 + w * w)
        return center + x_lin + delta


#: Input conventions of :class:`NBodyCGENN`.
CGENN_INPUTS = ("extrapolated", "cgenn")


class NBodyCGENN(nn.Module):
    r"""CGENN-style :class:`gatorch.nets.CliffordGNN` on VGA3 for n-body prediction.

    Two input conventions (``inputs``):

    * ``"extrapolated"`` (default): multivector channels :math:`x, v, x + T v` (centred), the
      attribute features as scalar channels, and the prediction
      :math:`\bar x + x_{\text{lin}} + \Delta`.
    * ``"cgenn"``: CGENN's n-body inputs: the attribute features on the scalar blade of their
      own multivector channels, then :math:`x` (centred) and :math:`v`; the prediction
      :math:`x + \Delta` (the input position plus the output vector).

    ``edge_attr=True`` feeds the product of the two particles' attributes (the charges'
    product on the charged task) to every message as an invariant edge attribute, as CGENN does.

    Parameters
    ----------
    hidden_mv_channels, hidden_s_channels : int
    num_layers : int
        Message-passing layers.
    attr_features : {"raw", "log"}
    time_scale : float
        Time from input to target; the linear extrapolation is ``x + time_scale * v``.
    inputs : {"extrapolated", "cgenn"}
    edge_attr : bool
    layer_norm, message, mlp :
        :class:`~gatorch.nets.CliffordGNN` options (``mlp``: a
        :class:`~gatorch.nets.gnn.CliffordMLPConfig` mapping).
    zero_readout : bool
        Start the readout (the last EquiLinear) at zero, so that the initial prediction is
        the baseline (``x`` or ``x + T v``) for every initialisation. With CGENN's
        initialisation the initial test MSE otherwise ranges from 0.3 to 7 over seeds 0-5
        (the displacement itself has an MSE of 0.26), and an unlucky seed spends its first
        epochs unlearning it (docs/nbody.md).

    Shapes
    ------
    ``forward(loc, vel, attr) -> (B, N, 3)`` with ``loc, vel: (B, N, 3)``, ``attr: (B, N)``.
    """

    def __init__(
        self,
        *,
        hidden_mv_channels: int = 16,
        hidden_s_channels: int = 32,
        num_layers: int = 4,
        attr_features: str = "raw",
        time_scale: float = 1.0,
        inputs: str = "extrapolated",
        edge_attr: bool = False,
        layer_norm: bool = True,
        message: str = "all",
        mlp: dict[str, Any] | None = None,
        zero_readout: bool = False,
    ) -> None:
        super().__init__()
        if inputs not in CGENN_INPUTS:
            raise ValueError(f"NBodyCGENN: inputs must be one of {CGENN_INPUTS}, got {inputs!r}")
        self.attr_features, self.time_scale = attr_features, float(time_scale)
        self.inputs, self.edge_attr = inputs, bool(edge_attr)
        n_attr = _n_attr(attr_features)
        self.net = CliffordGNN(
            VGA3,
            in_mv_channels=3 if inputs == "extrapolated" else n_attr + 2,
            out_mv_channels=1,
            hidden_mv_channels=hidden_mv_channels,
            in_s_channels=n_attr if inputs == "extrapolated" else 0,
            hidden_s_channels=hidden_s_channels,
            num_layers=num_layers,
            aggregation="mean",
            layer_norm=layer_norm,
            message=message,
            edge_s_channels=n_attr if self.edge_attr else 0,
            mlp=mlp,
        )
        if zero_readout:
            with torch.no_grad():
                for p in self.net.readout.parameters():
                    p.zero_()

    def forward(self, loc: Tensor, vel: Tensor, attr: Tensor) -> Tensor:
        center, x, x_lin = _centred(loc, vel, attr, self.time_scale)
        batch, n, _ = loc.shape
        feats = attr_scalars(attr, self.attr_features)  # (B, N, k)
        edges = _complete_graph(batch, n, loc.device)
        edge_attr = None
        if self.edge_attr:
            flat = feats.reshape(batch * n, -1)
            edge_attr = flat.index_select(0, edges[0]) * flat.index_select(0, edges[1])
        if self.inputs == "extrapolated":
            mv = torch.stack([vga.embed_vector(x), vga.embed_vector(vel), vga.embed_vector(x_lin)], dim=-2)
            scalars: Tensor | None = feats.reshape(batch * n, -1)
        else:
            vectors = torch.stack([vga.embed_vector(x), vga.embed_vector(vel)], dim=-2)
            mv = torch.cat([vga.embed_scalar(feats.unsqueeze(-1)), vectors], dim=-2)  # (B, N, k + 2, dim)
            scalars = None
        out, _ = self.net(mv.reshape(batch * n, -1, VGA3.dim), scalars, edges, edge_attr)
        delta = vga.extract_vector(out[:, 0, :]).reshape(batch, n, 3)
        if self.inputs == "cgenn":
            return loc + delta
        return center + x_lin + delta


class ChargeSymmetric(nn.Module):
    r"""Average a model's prediction over the global charge flip :math:`q \to -q` in eval mode.

    The charged dynamics depend on the charges only through the products :math:`q_i q_j`,
    so negating every charge of a system leaves its trajectory unchanged. In eval mode the
    prediction is :math:`\tfrac12 (f(x, v, q) + f(x, v, -q))`, exactly invariant under the
    flip (one forward pass on the doubled batch); in training mode the wrapped model runs
    alone, and the trainer's charge-flip augmentation stands in for the average.

    Parameters
    ----------
    model : nn.Module
        Any n-body model ``(loc, vel, attr) -> (B, N, 3)``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, loc: Tensor, vel: Tensor, attr: Tensor) -> Tensor:
        if self.training:
            return self.model(loc, vel, attr)
        both = self.model(torch.cat([loc, loc]), torch.cat([vel, vel]), torch.cat([attr, -attr]))
        return 0.5 * (both[: loc.shape[0]] + both[loc.shape[0] :])


MODELS: dict[str, type[nn.Module]] = {
    "gatr": NBodyGATr,
    "cgenn": NBodyCGENN,
    "egnn": EGNN,
    "transformer": Transformer,
}


def build_model(name: str, *, charge_symmetric: bool = False, **kwargs: Any) -> nn.Module:
    """The n-body model ``name`` (one of :data:`MODELS`) with keyword options ``kwargs``.

    ``charge_symmetric=True`` wraps it in :class:`ChargeSymmetric` (charged task only: the
    prediction in eval mode is averaged over the global charge flip).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    model = MODELS[name](**kwargs)
    return ChargeSymmetric(model) if charge_symmetric else model
