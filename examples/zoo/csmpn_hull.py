r"""Convex-hull volumes in R^5: CSMPN (simplicial) next to a CGENN-style CliffordGNN, in Cl(5, 0, 0).

The task of CGENN (Ruhe et al., 2023) and CSMPN (Liu, Ruhe et al., ICLR 2024): from 16
points drawn from a standard normal in :math:`\mathbb{R}^5`, predict the volume of their
convex hull, an E(5) invariant. Targets come from ``scipy.spatial.ConvexHull`` (scipy is
installed with the test extra, through ``clifford``).

Both models embed every point (centred per cloud, which makes them translation invariant)
as a grade-1 multivector of :math:`Cl(5, 0, 0)`, read one invariant scalar per cell or node
and mean-pool it per cloud:

* **CSMPN** (:class:`gatorch.nets.csmpn.CSMPN`) on the Vietoris-Rips complex of the cloud
  (:func:`gatorch.nets.simplicial.rips_lift`, edges up to ``--radius``, triangles whose three
  edges are present), simplices embedded from the geometric products of their vertices,
  messages along boundary, coboundary and upper adjacency, one shared message network;
* **CGENN** (:class:`gatorch.nets.gnn.CliffordGNN`) on the fully connected graph of the cloud
  (16 x 15 directed edges), CGENN's layers in EGNN's structure.

Sizes are picked so that the whole script (data, both trainings, evaluation, the check)
stays under 2 minutes on one CPU core: 1024 training and 512 test clouds, 60 Adam steps
of 32 clouds per model (under two epochs), 4 hidden multivector and 8 scalar channels, 2
message-passing layers without layer norm (``--layer-norm`` turns it on for both; it
normalises away the scale of the points, which the volume grows with as scale^5, and the
fully connected CliffordGNN then stays at the mean in this short run), Rips radius 2.0
(about 18 edges and 10 triangles per cloud, against a mean pairwise distance near 3; 2.5
doubles the complex and the time). That is far from the paper's budget (16384 clouds, many
thousand steps): the numbers show the pipeline working, not the paper's ranking. The target's
variance (the MSE of predicting the training mean) is printed for scale. A final check
applies a random rotation and a random reflection of :math:`\mathbb{R}^5` (versors of
:math:`Cl(5,0,0)`, twisted action) to the test points, re-lifts them and compares the
predictions in float64.

Run from the repository root::

    python -m examples.zoo.csmpn_hull             # the defaults above
    python -m examples.zoo.csmpn_hull --steps 2000 --train 16384   # a longer run
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from examples.zoo.csmpn_hull_data import ALG, vertex_multivectors
from gatorch.nets.csmpn import CSMPN
from gatorch.nets.gnn import CliffordGNN
from gatorch.nets.simplicial import rips_lift

POINTS = 16  # points per cloud
SPACE = 5  # dimension of the space


def hull_volumes(points: np.ndarray) -> np.ndarray:
    """Convex-hull volume of every cloud, ``(B, P, n) -> (B,)``, with scipy's Qhull."""
    try:
        from scipy.spatial import ConvexHull
    except ImportError as err:  # pragma: no cover - scipy comes with the test extra
        raise SystemExit("csmpn_hull needs scipy (pip install scipy) for the hull volumes") from err
    return np.array([ConvexHull(cloud).volume for cloud in points])


def make_data(count: int, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    """``count`` clouds of ``POINTS`` standard-normal points in R^5 and their hull volumes (float64)."""
    points = rng.standard_normal((count, POINTS, SPACE))
    return torch.from_numpy(points), torch.from_numpy(hull_volumes(points))


class HullCSMPN(nn.Module):
    """Rips lift -> CSMPN -> mean over all cells of a cloud of one invariant scalar."""

    def __init__(self, hidden: int, hidden_s: int, layers: int, radius: float, layer_norm: bool) -> None:
        super().__init__()
        self.radius = radius
        self.net = CSMPN(
            ALG,
            in_mv_channels=1,
            out_mv_channels=1,
            hidden_mv_channels=hidden,
            out_s_channels=1,
            hidden_s_channels=hidden_s,
            num_layers=layers,
            max_dim=2,
            layer_norm=layer_norm,
        )

    def forward(self, positions: Tensor) -> Tensor:
        cx = rips_lift(positions - positions.mean(dim=1, keepdim=True), radius=self.radius, max_dim=2)
        _, s = self.net(vertex_multivectors(positions), None, cx)
        return cx.pool(s)[:, 0]


class HullCGENN(nn.Module):
    """Fully connected graph -> CliffordGNN -> mean over the nodes of a cloud of one invariant scalar."""

    def __init__(self, hidden: int, hidden_s: int, layers: int, layer_norm: bool) -> None:
        super().__init__()
        self.net = CliffordGNN(
            ALG,
            in_mv_channels=1,
            out_mv_channels=1,
            hidden_mv_channels=hidden,
            out_s_channels=1,
            hidden_s_channels=hidden_s,
            num_layers=layers,
            layer_norm=layer_norm,
        )
        pairs = [(j, i) for i in range(POINTS) for j in range(POINTS) if i != j]
        self.register_buffer("edges", torch.tensor(pairs, dtype=torch.int64).t(), persistent=False)

    def forward(self, positions: Tensor) -> Tensor:
        clouds = positions.shape[0]
        shift = (torch.arange(clouds, device=positions.device) * POINTS).repeat_interleave(
            self.edges.shape[1]
        )
        edge_index = self.edges.repeat(1, clouds) + shift
        _, s = self.net(vertex_multivectors(positions), None, edge_index)
        return s[:, 0].reshape(clouds, POINTS).mean(dim=1)


def train(
    model: nn.Module,
    positions: Tensor,
    targets: Tensor,
    steps: int,
    batch: int,
    lr: float,
    generator: torch.Generator,
) -> float:
    """Adam with cosine decay on the standardised targets; returns the last step's loss."""
    mean, std = targets.mean(), targets.std()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        pick = torch.randint(0, positions.shape[0], (batch,), generator=generator)
        loss = nn.functional.mse_loss(model(positions[pick]), (targets[pick] - mean) / std)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    return float(loss.detach())


@torch.no_grad()
def predict(model: nn.Module, positions: Tensor, mean: Tensor, std: Tensor, chunk: int = 128) -> Tensor:
    """Volumes predicted for ``positions: (B, P, n)``, in the targets' units."""
    out = [model(positions[i : i + chunk]) for i in range(0, positions.shape[0], chunk)]
    return torch.cat(out) * std + mean


def random_orthogonal_versors(generator: torch.Generator) -> Tensor:
    """A rotation (even versor) and a reflection-rotation (odd versor) of R^5, float64, ``(2, dim)``."""
    even = ALG.random_versor((), spin=True, generator=generator, dtype=torch.float64)
    odd = ALG.gp(
        ALG.random_versor((), spin=True, generator=generator, dtype=torch.float64),
        ALG.random_vector((), generator=generator, dtype=torch.float64),
    )
    return torch.stack([even, odd])


@torch.no_grad()
def invariance_gap(model: nn.Module, positions: Tensor, versors: Tensor) -> float:
    """Largest |f(w . x) - f(x)| / max |f(x)| over the versors, in float64 (positions re-lifted)."""
    model = copy.deepcopy(model).double()
    base = model(positions)
    gap = 0.0
    for w in versors:
        vectors = positions.new_zeros(*positions.shape[:-1], ALG.dim)
        vectors[..., ALG.grade_slice(1)] = positions
        moved = ALG.sandwich(w, vectors)[..., ALG.grade_slice(1)]
        gap = max(gap, float((model(moved) - base).abs().max() / base.abs().max()))
    return gap


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=1024, help="training clouds")
    parser.add_argument("--test", type=int, default=512, help="test clouds")
    parser.add_argument("--steps", type=int, default=60, help="Adam steps per model")
    parser.add_argument("--batch", type=int, default=32, help="clouds per step")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--hidden", type=int, default=4, help="hidden multivector channels")
    parser.add_argument("--hidden-s", type=int, default=8, help="hidden scalar channels")
    parser.add_argument("--layers", type=int, default=2, help="message-passing layers")
    parser.add_argument("--radius", type=float, default=2.0, help="Rips radius of the CSMPN complex")
    parser.add_argument(
        "--layer-norm", action="store_true", help="EquiLayerNorm at the start of every layer (both models)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    rng = np.random.default_rng(args.seed)
    train_x, train_y = make_data(args.train, rng)
    test_x, test_y = make_data(args.test, rng)
    mean, std = train_y.mean(), train_y.std()
    lift = rips_lift(train_x[:256] - train_x[:256].mean(1, keepdim=True), radius=args.radius)
    per_cloud = [c / 256 for c in lift.counts]
    print(
        f"data: {args.train} train / {args.test} test clouds of {POINTS} points in R^{SPACE}; "
        f"hull volume mean {float(mean):.3f}, std {float(std):.3f} (scipy.spatial.ConvexHull)"
    )
    print(
        f"Rips complex at radius {args.radius}: {per_cloud[0]:.0f} vertices, {per_cloud[1]:.1f} edges, "
        f"{per_cloud[2]:.1f} triangles per cloud (CGENN graph: {POINTS * (POINTS - 1)} directed edges)"
    )

    torch.manual_seed(args.seed)
    models = {
        "CSMPN (Rips, simplicial)": HullCSMPN(
            args.hidden, args.hidden_s, args.layers, args.radius, args.layer_norm
        ),
        "CGENN (CliffordGNN, full graph)": HullCGENN(
            args.hidden, args.hidden_s, args.layers, args.layer_norm
        ),
    }
    versors = random_orthogonal_versors(torch.Generator().manual_seed(args.seed + 1))
    rows = []
    for name, model in models.items():
        clock = time.perf_counter()
        generator = torch.Generator().manual_seed(args.seed)
        last = train(model, train_x.float(), train_y.float(), args.steps, args.batch, args.lr, generator)
        pred = predict(model, test_x.float(), mean.float(), std.float())
        mse = float(((pred.double() - test_y) ** 2).mean())
        gap = invariance_gap(model, test_x[:64], versors)
        params = sum(p.numel() for p in model.parameters())
        seconds = time.perf_counter() - clock
        rows.append((name, params, mse, gap, seconds))
        print(
            f"trained {name}: {args.steps} steps, last train loss {last:.3f} (standardised), {seconds:.1f} s"
        )

    baseline = float(((mean - test_y) ** 2).mean())
    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'model':<{width}}  {'params':>7}  {'test MSE':>9}  {'invariance gap':>14}  {'time':>7}")
    for name, params, mse, gap, seconds in rows:
        print(f"{name:<{width}}  {params:>7d}  {mse:>9.3f}  {gap:>14.1e}  {seconds:>6.1f}s")
    print(f"{'predict the training mean':<{width}}  {'':>7}  {baseline:>9.3f}")
    print(
        "invariance gap: max |f(w.x) - f(x)| / max |f(x)| on 64 test clouds, float64, for a random "
        "rotation and a random reflection of R^5 (re-lifted)"
    )
    total = time.perf_counter() - start
    print(f"total {total:.1f} s wall, {time.process_time():.1f} s CPU")
    if not all(math.isfinite(r[2]) for r in rows):
        raise SystemExit("a model produced non-finite predictions")


if __name__ == "__main__":
    main()
