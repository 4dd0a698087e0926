r"""An e3nn edge embedding feeding a gatorch graph net, through the irreps bridge.

Run from the repository root (needs e3nn: ``pip install "gatorch-nn[irreps]"``)::

    python -m examples.irreps_bridge            # 150 training steps, a few seconds on one core
    python -m examples.irreps_bridge --steps 20

Task: point clouds of 8 points; for every point :math:`i` predict the O(3)-equivariant,
translation-invariant vector

.. math::  y_i = \sum_{j \ne i} e^{-|r_{ij}|^2 / 2}\, r_{ij}, \qquad r_{ij} = x_j - x_i .

Model (e3nn and gatorch layers in one network):

1. **e3nn**: per edge ``j -> i``, spherical harmonics of :math:`r_{ij}` (``0e + 1o``)
   times a Gaussian radial basis of :math:`|r_{ij}|` (``K`` functions), averaged over the
   incoming edges of each node: ``Kx0e + Kx1o`` per node.
2. **bridge in**: :class:`gatorch.irreps.IrrepsToMV` (``o3.Linear`` to ``Cx0e+Cx1o+Cx1e+Cx0o``,
   then the exact map into ``C`` VGA3 multivectors).
3. **gatorch**: :class:`gatorch.nets.CliffordGNN` on the fully connected graph.
4. **bridge out**: :class:`gatorch.irreps.MVToIrreps` to ``1x1o``: the predicted vector.

It prints the training loss going down and then checks, in float64, that the whole mixed
model is equivariant under a random rotation and a reflection (and invariant under a
translation of the inputs): ``model(x M^T + t) == model(x) M^T``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import torch
from e3nn import o3
from e3nn.math import soft_one_hot_linspace
from torch import Tensor, nn

from gatorch import VGA3
from gatorch.irreps import IrrepsToMV, MVToIrreps
from gatorch.nets import CliffordGNN

NUM_POINTS = 8


def make_data(
    batch: int, generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor]:
    """``batch`` point clouds ``(batch, 8, 3)`` and their targets ``y: (batch, 8, 3)`` (module doc)."""
    pos = torch.randn(batch, NUM_POINTS, 3, generator=generator, dtype=dtype)
    rel = pos[:, None, :, :] - pos[:, :, None, :]  # rel[b, i, j] = x_j - x_i
    weight = torch.exp(-0.5 * (rel * rel).sum(-1, keepdim=True))
    return pos, (weight * rel).sum(2)


def full_graph(batch: int, device: torch.device | None = None) -> Tensor:
    """``edge_index: (2, batch * 8 * 7)``: every ordered pair of distinct points of each cloud."""
    i, j = torch.meshgrid(torch.arange(NUM_POINTS), torch.arange(NUM_POINTS), indexing="ij")
    keep = i != j
    src, dst = j[keep], i[keep]  # message j -> i
    offset = (torch.arange(batch) * NUM_POINTS)[:, None]
    return torch.stack([(src + offset).reshape(-1), (dst + offset).reshape(-1)]).to(device)


class MixedModel(nn.Module):
    """e3nn edge embedding -> IrrepsToMV -> CliffordGNN (VGA3) -> MVToIrreps(1x1o).

    Parameters
    ----------
    num_basis : int
        Radial basis functions ``K``.
    mv_channels, hidden_channels : int
        Multivector channels after the bridge and inside the graph net.
    num_layers : int
        Message-passing layers of the graph net.
    r_max : float
        End of the radial basis.

    Shapes
    ------
    ``forward(pos: (nodes, 3), edge_index: (2, edges)) -> (nodes, 3)``.
    """

    def __init__(
        self,
        num_basis: int = 8,
        mv_channels: int = 8,
        hidden_channels: int = 8,
        num_layers: int = 2,
        r_max: float = 4.0,
    ) -> None:
        super().__init__()
        self.num_basis, self.r_max = num_basis, r_max
        self.irreps_sh = o3.Irreps.spherical_harmonics(1)  # 1x0e+1x1o, (x, y, z) order
        self.irreps_node = o3.Irreps(f"{num_basis}x0e+{num_basis}x1o")
        self.to_mv = IrrepsToMV(VGA3, self.irreps_node, mv_channels)
        self.gnn = CliffordGNN(
            VGA3,
            in_mv_channels=mv_channels,
            out_mv_channels=2,
            hidden_mv_channels=hidden_channels,
            num_layers=num_layers,
        )
        self.to_vector = MVToIrreps(VGA3, 2, "1x1o")

    def embed_edges(self, pos: Tensor, edge_index: Tensor) -> Tensor:
        """Mean over incoming edges of ``radial(|r|) Y(r)``: ``(nodes, 4K)``, ``irreps_node`` layout."""
        src, dst = edge_index
        rel = pos[src] - pos[dst]  # r_ij = x_j - x_i on edge j -> i
        sh = o3.spherical_harmonics(self.irreps_sh, rel, normalize=True, normalization="component")
        radial = soft_one_hot_linspace(
            rel.norm(dim=-1), 0.0, self.r_max, self.num_basis, basis="gaussian", cutoff=False
        )
        scalars = radial * sh[:, :1]  # (E, K): Kx0e
        vectors = (radial[:, :, None] * sh[:, None, 1:]).flatten(1)  # (E, 3K): Kx1o, multiplicity outer
        edge = torch.cat([scalars, vectors], dim=-1)
        nodes = pos.shape[0]
        count = pos.new_zeros(nodes).index_add(0, dst, pos.new_ones(dst.shape[0])).clamp_min(1.0)
        return edge.new_zeros(nodes, edge.shape[-1]).index_add(0, dst, edge) / count[:, None]

    def forward(self, pos: Tensor, edge_index: Tensor) -> Tensor:
        node = self.embed_edges(pos, edge_index)  # e3nn irreps
        mv = self.to_mv(node)  # (nodes, C, 8) VGA3 multivectors
        mv, _ = self.gnn(mv, None, edge_index)
        return self.to_vector(mv)  # (nodes, 3), irreps 1x1o


def reflection_matrix(normal: Tensor) -> Tensor:
    """``I - 2 n n^T / |n|^2``: the reflection in the plane orthogonal to ``normal``."""
    n = normal / normal.norm()
    return torch.eye(3, dtype=n.dtype) - 2 * torch.outer(n, n)


def equivariance_errors(model: MixedModel, seed: int = 1) -> dict[str, float]:
    """Max ``|model(x M^T + t) - model(x) M^T|`` in float64 for a rotation, a reflection and a translation."""
    g = torch.Generator().manual_seed(seed)
    model = model.double().eval()
    pos, _ = make_data(4, g, torch.float64)
    pos = pos.reshape(-1, 3)
    edges = full_graph(4)
    rotation, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    rotation = rotation * torch.linalg.det(rotation)  # a random rotation (det +1)
    reflection = reflection_matrix(torch.randn(3, generator=g, dtype=torch.float64)) @ rotation
    shift = 3.0 * torch.randn(3, generator=g, dtype=torch.float64)
    with torch.no_grad():
        out = model(pos, edges)
        errors = {}
        for name, m in (("rotation", rotation), ("reflection", reflection)):
            errors[name] = (model(pos @ m.T, edges) - out @ m.T).abs().max().item()
        errors["translation"] = (model(pos + shift, edges) - out).abs().max().item()
    return errors


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    """Train a few steps, print the loss and the equivariance errors; return them (for tests)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=150, help="training steps (default 150)")
    parser.add_argument("--batch", type=int, default=16, help="point clouds per step (default 16)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    model = MixedModel()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    edges = full_graph(args.batch)
    val_pos, val_y = make_data(64, g)
    val_edges = full_graph(64)
    print(f"model: {sum(p.numel() for p in model.parameters())} parameters; e3nn {model.irreps_node} -> VGA3")
    print(f"validation mse of predicting 0: {val_y.pow(2).mean().item():.4f}")
    losses = []
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        pos, y = make_data(args.batch, g)
        pred = model(pos.reshape(-1, 3), edges)
        loss = (pred - y.reshape(-1, 3)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step == 1 or step % max(1, args.steps // 6) == 0 or step == args.steps:
            with torch.no_grad():
                val = (model(val_pos.reshape(-1, 3), val_edges) - val_y.reshape(-1, 3)).pow(2).mean().item()
            print(f"step {step:4d}  train mse {loss.item():.4f}  val mse {val:.4f}")
    print(f"trained {args.steps} steps in {time.perf_counter() - start:.1f} s")
    errors = equivariance_errors(model)
    print(
        "equivariance of the whole e3nn + gatorch model (float64, max abs error): "
        + ", ".join(f"{k} {v:.1e}" for k, v in errors.items())
    )
    return {"losses": losses, "val_mse": val, "errors": errors}


if __name__ == "__main__":
    main()
