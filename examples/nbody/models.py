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
* :class:`NBodyCGENN`: :class:`gatorch.nets.CliffordGNN` on ``VGA3`` (CGENN's setting, O(3)),
  fully connected within each system; vectors :math:`x, v, x + T v` as multivector channels;
  the output vector part is :math:`\Delta`.

Both predict :math:`\bar x + x_{\text{lin}} + \Delta`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from examples.nbody.baselines import EGNN, Transformer, _check_attr_features, _check_inputs
from gatorch import PGA3, VGA3
from gatorch.interface import pga, vga
from gatorch.nets import CliffordGNN, GATr

__all__ = ["MODELS", "ChargeSymmetric", "NBodyCGENN", "NBodyGATr", "attr_scalars", "build_model"]

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


class NBodyGATr(nn.Module):
    """GATr on PGA3 for n-body prediction (see the module docstring for the embedding).

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
    ) -> None:
        super().__init__()
        self.attr_features, self.time_scale = attr_features, float(time_scale)
        self.net = GATr(
            PGA3,
            in_mv_channels=3,
            out_mv_channels=1,
            hidden_mv_channels=hidden_mv_channels,
            in_s_channels=_n_attr(attr_features),
            hidden_s_channels=hidden_s_channels,
            num_blocks=num_blocks,
            num_heads=num_heads,
            attention={"distance_features": True, "dropout": dropout},
            mlp={"mlp_ratio": mlp_ratio, "dropout": dropout},
        )

    def forward(self, loc: Tensor, vel: Tensor, attr: Tensor) -> Tensor:
        center, x, x_lin = _centred(loc, vel, attr, self.time_scale)
        mv = torch.stack([pga.embed_point(x), pga.embed_direction(vel), pga.embed_point(x_lin)], dim=-2)
        out, _ = self.net(mv, attr_scalars(attr, self.attr_features))
        y = out[..., 0, :]
        w = y[..., _E123 : _E123 + 1]  # the point's weight
        u = pga.extract_direction(y)
        delta = w * (u - w * x_lin) / (1.0 + w * w)
        return center + x_lin + delta


def _complete_graph(batch: int, n: int, device: torch.device) -> Tensor:
    """Edges ``(2, batch * n * (n - 1))`` of ``batch`` disjoint complete graphs on ``n`` nodes."""
    i, j = torch.meshgrid(torch.arange(n, device=device), torch.arange(n, device=device), indexing="ij")
    keep = i != j
    src, dst = j[keep], i[keep]
    offset = (torch.arange(batch, device=device) * n).unsqueeze(-1)
    return torch.stack([(src + offset).reshape(-1), (dst + offset).reshape(-1)])


class NBodyCGENN(nn.Module):
    """CGENN-style :class:`gatorch.nets.CliffordGNN` on VGA3 for n-body prediction.

    Parameters
    ----------
    hidden_mv_channels, hidden_s_channels : int
    num_layers : int
        Message-passing layers.
    attr_features : {"raw", "log"}
    time_scale : float
        Time from input to target; the linear extrapolation is ``x + time_scale * v``.

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
    ) -> None:
        super().__init__()
        self.attr_features, self.time_scale = attr_features, float(time_scale)
        self.net = CliffordGNN(
            VGA3,
            in_mv_channels=3,
            out_mv_channels=1,
            hidden_mv_channels=hidden_mv_channels,
            in_s_channels=_n_attr(attr_features),
            hidden_s_channels=hidden_s_channels,
            num_layers=num_layers,
            aggregation="mean",
        )

    def forward(self, loc: Tensor, vel: Tensor, attr: Tensor) -> Tensor:
        center, x, x_lin = _centred(loc, vel, attr, self.time_scale)
        batch, n, _ = loc.shape
        mv = torch.stack([vga.embed_vector(x), vga.embed_vector(vel), vga.embed_vector(x_lin)], dim=-2)
        scalars = attr_scalars(attr, self.attr_features)
        edges = _complete_graph(batch, n, loc.device)
        out, _ = self.net(mv.reshape(batch * n, 3, VGA3.dim), scalars.reshape(batch * n, -1), edges)
        delta = vga.extract_vector(out[:, 0, :]).reshape(batch, n, 3)
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
