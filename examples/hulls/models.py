r"""The three models of the hull example: CSMPN (reference preset), a CGENN-style graph net, an MLP.

All read a batch of clouds ``points: (B, 8, 5)`` (and, for CSMPN, the batch's hull complex)
and predict the hull volume ``(B,)``; all are invariant under O(5) (reflections included) and
translations, and under the order of the points.

* :class:`HullCSMPN`: ``CSMPN.preset("csmpn-paper", Algebra(5, 0, 0))`` on the reference's hull
  complex (vertices, the edges and triangles of the hull's facets): the centred points as
  vectors, the scalar blade of the output mean-pooled over all cells (the reference's readout).
* :class:`HullCGENN`: :class:`~gatorch.nets.CliffordGNN` in the configuration of the n-body
  example's ``cgenn-paper`` preset (28 multivector channels, no scalar channels, 3 layers,
  no layer norm, messages from the difference of the two nodes, CGENN's MLPs and
  initialisation, mean aggregation) on the fully connected graph of the 8 points (56
  directed edges); the scalar blade of the output mean-pooled over the points.
* :class:`HullMLP`: a plain MLP on invariant features: the 28 pairwise distances and the 8
  distances to the centroid, each sorted (so the features do not depend on the order of the
  points), then ``num_layers`` hidden layers of ``hidden`` SiLU units. The default
  ``hidden=300, num_layers=3`` has ~192k parameters, next to CSMPN's ~251k and CliffordGNN's ~210k.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from examples.zoo.csmpn_hull_data import ALG, POINTS, SPACE, vertex_multivectors
from gatorch.nets.csmpn import CSMPN
from gatorch.nets.gnn import CliffordGNN
from gatorch.nets.simplicial import SimplicialComplex

#: The CliffordGNN options of the n-body example's ``cgenn-paper`` preset (CGENN's network).
CGENN_CONFIG: dict[str, Any] = {
    "hidden_mv_channels": 28,
    "hidden_s_channels": 0,
    "num_layers": 3,
    "aggregation": "mean",
    "layer_norm": False,
    "message": "difference",
    "mlp": {"style": "cgenn", "blocks": 2, "normalization_init": 0.0, "weight_init": "cgenn"},
}


def _check_points(points: Tensor, who: str) -> None:
    if not isinstance(points, Tensor):
        raise TypeError(f"{who}: expected points as a torch.Tensor, got {type(points).__name__}")
    if points.ndim != 3 or tuple(points.shape[1:]) != (POINTS, SPACE):
        raise ValueError(f"{who}: expected points of shape (B, {POINTS}, {SPACE}), got {tuple(points.shape)}")


class HullCSMPN(nn.Module):
    """The reference's hull network: CSMPN's ``csmpn-paper`` preset; ``overrides`` go to the preset."""

    needs_complex = True

    def __init__(self, **overrides: Any) -> None:
        super().__init__()
        self.net = CSMPN.preset("csmpn-paper", ALG, in_mv_channels=1, out_mv_channels=1, **overrides)

    def forward(self, points: Tensor, cx: SimplicialComplex) -> Tensor:
        _check_points(points, "HullCSMPN")
        if cx.num_graphs != points.shape[0] or cx.num_vertices != points.shape[0] * POINTS:
            raise ValueError(
                f"HullCSMPN: expected the complex of {points.shape[0]} clouds of {POINTS} vertices, "
                f"got {cx.num_graphs} clouds and {cx.num_vertices} vertices"
            )
        out, _ = self.net(vertex_multivectors(points), None, cx)
        return cx.pool(out[:, 0, 0])


class HullCGENN(nn.Module):
    """CliffordGNN in CGENN's configuration (:data:`CGENN_CONFIG`, overridable) on the full graph."""

    needs_complex = False

    def __init__(self, **overrides: Any) -> None:
        super().__init__()
        self.net = CliffordGNN(ALG, in_mv_channels=1, out_mv_channels=1, **{**CGENN_CONFIG, **overrides})
        pairs = [(j, i) for i in range(POINTS) for j in range(POINTS) if i != j]
        self.register_buffer("pairs", torch.tensor(pairs, dtype=torch.int64).t(), persistent=False)

    def forward(self, points: Tensor, cx: SimplicialComplex | None = None) -> Tensor:
        _check_points(points, "HullCGENN")
        clouds = points.shape[0]
        pairs = self.pairs
        assert isinstance(pairs, Tensor)
        shift = (torch.arange(clouds, device=points.device) * POINTS).repeat_interleave(pairs.shape[1])
        edge_index = pairs.repeat(1, clouds) + shift
        out, _ = self.net(vertex_multivectors(points), None, edge_index)
        return out[:, 0, 0].reshape(clouds, POINTS).mean(dim=1)


def invariant_features(points: Tensor) -> Tensor:
    """``(B, 36)``: the sorted pairwise distances (28) and sorted distances to the centroid (8)."""
    centred = points - points.mean(dim=1, keepdim=True)
    rows, cols = torch.triu_indices(POINTS, POINTS, offset=1, device=points.device)
    pair = (centred[:, rows] - centred[:, cols]).norm(dim=-1)
    radial = centred.norm(dim=-1)
    return torch.cat([pair.sort(dim=-1).values, radial.sort(dim=-1).values], dim=-1)


class HullMLP(nn.Module):
    """A plain MLP (SiLU) on :func:`invariant_features`."""

    needs_complex = False

    def __init__(self, hidden: int = 300, num_layers: int = 3) -> None:
        super().__init__()
        if not isinstance(hidden, int) or hidden < 1 or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(
                f"HullMLP: hidden and num_layers must be ints >= 1, got hidden={hidden!r}, "
                f"num_layers={num_layers!r}"
            )
        width = POINTS * (POINTS - 1) // 2 + POINTS
        layers: list[nn.Module] = []
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, points: Tensor, cx: SimplicialComplex | None = None) -> Tensor:
        _check_points(points, "HullMLP")
        return self.mlp(invariant_features(points))[:, 0]


MODELS: dict[str, type[nn.Module]] = {"csmpn": HullCSMPN, "cgenn": HullCGENN, "mlp": HullMLP}


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """One of :data:`MODELS` by name, with its keyword options."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    return MODELS[name](**kwargs)
