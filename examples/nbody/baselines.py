r"""Non-gatorch baselines for the n-body examples: :class:`EGNN` and :class:`Transformer`.

Both are pure PyTorch and share the n-body model interface::

    model(loc, vel, attr) -> predicted final positions
    loc: (B, N, 3), vel: (B, N, 3), attr: (B, N)  ->  (B, N, 3)

``attr`` is the per-particle scalar: the charge (+-1) in the charged-particles task of
EGNN, the mass in the gravity task. Every system of a batch has the same number of
particles ``N >= 2`` and is a fully connected graph (no self-edges).

``attr_features`` picks how ``attr`` enters the models:

* ``"raw"``: the node feature is ``attr``; the edge feature of a pair is ``attr_i * attr_j``
  (EGNN's charge product); 1 edge feature.
* ``"log"`` (for masses, which must be positive): the node feature is ``log(attr)``; the edge
  features are ``attr_i * attr_j`` and ``log(attr_i) + log(attr_j)``; 2 edge features.
  Non-positive masses give ``nan``/``inf`` features (not checked, to keep the forward free of
  data-dependent control flow).

:class:`EGNN` is E(3)-equivariant (rotations, reflections, translations) and permutation
equivariant; :class:`Transformer` is permutation equivariant only, which is the point of
that baseline.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["ATTR_FEATURES", "EGNN", "Transformer"]

ATTR_FEATURES = ("raw", "log")


def _check_attr_features(attr_features: str) -> str:
    if attr_features not in ATTR_FEATURES:
        raise ValueError(f"attr_features must be one of {ATTR_FEATURES}, got {attr_features!r}")
    return attr_features


def _check_positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _check_inputs(loc: Tensor, vel: Tensor, attr: Tensor) -> tuple[int, int]:
    """Check ``loc: (B, N, 3)``, ``vel: (B, N, 3)``, ``attr: (B, N)`` with ``N >= 2``; return ``(B, N)``."""
    if loc.dim() != 3 or loc.shape[-1] != 3:
        raise ValueError(f"loc must have shape (B, N, 3), got {tuple(loc.shape)}")
    b, n, _ = loc.shape
    if n < 2:
        raise ValueError(f"need at least 2 particles per system, got loc of shape {tuple(loc.shape)}")
    if vel.shape != loc.shape:
        raise ValueError(f"vel must have shape (B, N, 3) = {(b, n, 3)} like loc, got {tuple(vel.shape)}")
    if attr.shape != (b, n):
        raise ValueError(f"attr must have shape (B, N) = {(b, n)}, got {tuple(attr.shape)}")
    return b, n


def _node_attr(attr: Tensor, attr_features: str) -> Tensor:
    """Per-particle attr feature, ``(B, N) -> (B, N)``."""
    return attr.log() if attr_features == "log" else attr


def _others(n: int, device: torch.device) -> Tensor:
    """Index ``(N, N - 1)`` whose row ``i`` lists the particles ``j != i`` in increasing order."""
    k = torch.arange(n - 1, device=device)
    i = torch.arange(n, device=device)[:, None]
    return k + (k >= i).long()


class _EGNNLayer(nn.Module):
    """One ``E_GCL_vel`` layer of EGNN (``coords_agg='mean'``, ``tanh=False``, recurrent ``h``).

    ``update_h=False`` (the last layer) leaves out ``phi_h``: its output would not reach ``x``.
    """

    def __init__(self, hidden: int, edge_features: int, update_h: bool = True) -> None:
        super().__init__()
        self.phi_e = nn.Sequential(
            nn.Linear(2 * hidden + 1 + edge_features, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
        )
        last = nn.Linear(hidden, 1, bias=False)
        nn.init.xavier_uniform_(last.weight, gain=0.001)
        self.phi_x = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), last)
        self.phi_v = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        self.phi_h = (
            nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
            if update_h
            else None
        )

    def forward(
        self, h: Tensor, x: Tensor, v: Tensor, edge_attr: Tensor, others: Tensor
    ) -> tuple[Tensor, Tensor]:
        # h: (B, N, H), x, v: (B, N, 3), edge_attr: (B, N, N-1, E), others: (N, N-1)
        diff = x[:, :, None, :] - x[:, others]  # (B, N, N-1, 3): x_i - x_j
        radial = diff.square().sum(-1, keepdim=True)  # (B, N, N-1, 1)
        h_i = h[:, :, None, :].expand(-1, -1, others.shape[1], -1)
        m = self.phi_e(torch.cat([h_i, h[:, others], radial, edge_attr], dim=-1))  # (B, N, N-1, H)
        x = x + (diff * self.phi_x(m)).mean(dim=2) + self.phi_v(h) * v
        if self.phi_h is not None:
            h = h + self.phi_h(torch.cat([h, m.sum(dim=2)], dim=-1))
        return h, x


class EGNN(nn.Module):
    r"""EGNN for n-body dynamics (Satorras et al., 2021, the ``EGNN_vel`` variant).

    The node features start as ``h_i = Linear([|v_i|, a_i])`` with ``a_i`` the attr feature;
    each of ``num_layers`` layers updates, for every ordered pair ``j != i`` of a system,

    .. math::
        m_{ij} &= \phi_e(h_i, h_j, \|x_i - x_j\|^2, e_{ij}) \\
        x_i &\leftarrow x_i + \frac{1}{N - 1} \sum_{j \ne i} (x_i - x_j)\, \phi_x(m_{ij})
            + \phi_v(h_i)\, s\, v_i \\
        h_i &\leftarrow h_i + \phi_h\big(h_i, \textstyle\sum_{j \ne i} m_{ij}\big)

    with every :math:`\phi` a 2-layer SiLU MLP (:math:`\phi_e` also ends in SiLU; the last
    Linear of :math:`\phi_x` has no bias and a xavier init of gain 0.001, as in EGNN),
    :math:`e_{ij}` the edge attrs (see the module docstring) and :math:`s` ``time_scale``.
    :math:`\phi_e`, :math:`\phi_x` and :math:`\phi_v` read the layer's input ``h`` and ``x``.
    The output is the final ``x``, so the last layer has no :math:`\phi_h` (EGNN's code
    keeps it, unused). Only coordinate differences, norms and ``v`` enter, so
    the model is E(3)-equivariant and permutation equivariant. All pairs are evaluated at
    once as ``(B, N, N - 1)`` tensors.

    Parameters
    ----------
    hidden : int
        Width of ``h`` and of every MLP (default 64, as in EGNN).
    num_layers : int
        Number of message-passing layers (default 4).
    attr_features : {"raw", "log"}
        How ``attr`` enters: ``"raw"`` for charges, ``"log"`` for (positive) masses.
    time_scale : float
        Multiplies ``v`` in the velocity term (default 1.0: ``v`` as given). The velocity
        norm in the node embedding is not scaled.

    Shapes
    ------
    ``forward(loc, vel, attr) -> loc_pred`` with ``loc, vel: (B, N, 3)``, ``attr: (B, N)``,
    ``loc_pred: (B, N, 3)``, ``N >= 2``.
    """

    def __init__(
        self,
        *,
        hidden: int = 64,
        num_layers: int = 4,
        attr_features: str = "raw",
        time_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.hidden = _check_positive_int("hidden", hidden)
        self.num_layers = _check_positive_int("num_layers", num_layers)
        self.attr_features = _check_attr_features(attr_features)
        self.time_scale = float(time_scale)
        self.edge_features = 2 if attr_features == "log" else 1
        self.embedding = nn.Linear(2, hidden)
        self.layers = nn.ModuleList(
            _EGNNLayer(hidden, self.edge_features, update_h=k < num_layers - 1) for k in range(num_layers)
        )

    def edge_attr(self, attr: Tensor, others: Tensor) -> Tensor:
        """Edge attrs ``(B, N, N - 1, edge_features)`` of the pairs ``(i, others[i, k])``."""
        attr_j = attr[:, others]  # (B, N, N-1)
        feats = [attr[:, :, None] * attr_j]
        if self.attr_features == "log":
            log_attr = attr.log()
            feats.append(log_attr[:, :, None] + log_attr[:, others])
        return torch.stack(feats, dim=-1)

    def forward(self, loc: Tensor, vel: Tensor, attr: Tensor) -> Tensor:
        """Predict the final positions ``(B, N, 3)`` from ``loc, vel: (B, N, 3)``, ``attr: (B, N)``."""
        _, n = _check_inputs(loc, vel, attr)
        others = _others(n, loc.device)
        speed = vel.square().sum(-1).sqrt()  # (B, N)
        h = self.embedding(torch.stack([speed, _node_attr(attr, self.attr_features)], dim=-1))
        edge_attr = self.edge_attr(attr, others)
        v = vel * self.time_scale
        x = loc
        for layer in self.layers:
            h, x = layer(h, x, v, edge_attr, others)
        return x

    def extra_repr(self) -> str:
        return (
            f"hidden={self.hidden}, num_layers={self.num_layers}, attr_features={self.attr_features!r}, "
            f"edge_features={self.edge_features}, time_scale={self.time_scale}"
        )


class Transformer(nn.Module):
    r"""Non-equivariant baseline: a transformer encoder over the particles of each system.

    Each particle is one token ``[loc / loc_scale, vel, a]`` (``a`` the attr feature) ->
    Linear -> ``nn.TransformerEncoder`` (pre-norm, GELU, no dropout, feed-forward width
    ``4 * hidden``, final LayerNorm) -> Linear(hidden, 3) = ``d``, and the prediction is a
    correction to linear extrapolation:

    .. math:: \hat x_i = x_i + s\, v_i + \text{loc\_scale}\; d_i

    with :math:`s` ``time_scale``. ``d`` is in the normalised units of the input
    coordinates, hence the factor ``loc_scale``. There is no positional encoding, so the
    model is permutation equivariant; it is neither rotation nor translation equivariant
    (absolute coordinates enter the tokens), which is what this baseline is for.

    Parameters
    ----------
    hidden : int
        Token width (default 128).
    num_layers : int
        Number of encoder layers (default 4).
    num_heads : int
        Attention heads; must divide ``hidden`` (default 8).
    attr_features : {"raw", "log"}
        ``"raw"``: ``a = attr``; ``"log"``: ``a = log(attr)`` (for positive masses).
    time_scale : float
        Time between input and target in the units of ``vel`` (default 1.0).
    loc_scale : float
        Coordinates are divided by it before entering the tokens (a normalisation set by
        the trainer; default 1.0). Not a translation: the model stays non-invariant.

    Shapes
    ------
    ``forward(loc, vel, attr) -> loc_pred`` with ``loc, vel: (B, N, 3)``, ``attr: (B, N)``,
    ``loc_pred: (B, N, 3)``, ``N >= 2``.
    """

    def __init__(
        self,
        *,
        hidden: int = 128,
        num_layers: int = 4,
        num_heads: int = 8,
        attr_features: str = "raw",
        time_scale: float = 1.0,
        loc_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.hidden = _check_positive_int("hidden", hidden)
        self.num_layers = _check_positive_int("num_layers", num_layers)
        self.num_heads = _check_positive_int("num_heads", num_heads)
        if hidden % num_heads:
            raise ValueError(f"num_heads must divide hidden, got hidden={hidden}, num_heads={num_heads}")
        self.attr_features = _check_attr_features(attr_features)
        self.time_scale = float(time_scale)
        self.loc_scale = float(loc_scale)
        if not (math.isfinite(self.loc_scale) and self.loc_scale > 0):
            raise ValueError(f"loc_scale must be a positive finite float, got {loc_scale!r}")
        self.embedding = nn.Linear(7, hidden)
        layer = nn.TransformerEncoderLayer(
            hidden,
            num_heads,
            dim_feedforward=4 * hidden,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers, norm=nn.LayerNorm(hidden), enable_nested_tensor=False
        )
        self.head = nn.Linear(hidden, 3)

    def forward(self, loc: Tensor, vel: Tensor, attr: Tensor) -> Tensor:
        """Predict the final positions ``(B, N, 3)`` from ``loc, vel: (B, N, 3)``, ``attr: (B, N)``."""
        _check_inputs(loc, vel, attr)
        a = _node_attr(attr, self.attr_features)[..., None]
        tokens = self.embedding(torch.cat([loc / self.loc_scale, vel, a], dim=-1))
        d = self.head(self.encoder(tokens))
        return loc + vel * self.time_scale + d * self.loc_scale

    def extra_repr(self) -> str:
        return (
            f"hidden={self.hidden}, num_layers={self.num_layers}, num_heads={self.num_heads}, "
            f"attr_features={self.attr_features!r}, time_scale={self.time_scale}, loc_scale={self.loc_scale}"
        )
