r"""A GCAN (Geometric Clifford Algebra Network) learning particle motion in a vortex, on PGA3.

Run from the repository root::

    python -m examples.zoo.gcan              # 400 steps, well under a minute on one core
    python -m examples.zoo.gcan --steps 50

Task: particles in a swirling flow. A particle at :math:`x` moves in one time step by a
rotation about the vertical axis whose angle decays with the distance from the axis, plus
a rise along it:

.. math::
    x_{t+1} = R_z\big(\omega(r)\big)\, x_t + (0, 0, h), \qquad
    \omega(r) = \frac{\omega_0}{1 + r^2}, \quad r = \sqrt{x_1^2 + x_2^2},
    \quad \omega_0 = 1.2,\ h = 0.2.

From the two last positions :math:`(x_{t-1}, x_t)`, embedded as PGA points (two
multivector channels), predict :math:`x_{t+1}`. Each step is a motor (a screw motion)
that depends on the particle: a single learned motor cannot fit it, a combination of
motors blended by input-dependent gates can.

Model (GCAN, Ruhe et al., ICML 2023): :class:`~gatorch.layers.zoo.gcan.GroupActionLinear`
(every hidden channel a weighted sum of the inputs moved by learned motors
:math:`\exp(B)`) -> :class:`~gatorch.layers.zoo.gcan.GCANActivation` (sigmoid gate, linear in
the blades) -> :class:`~gatorch.layers.zoo.gcan.GCANGroupNorm` -> a second group action layer
-> gate -> a group action layer to one output channel. The group action layers preserve
grades. Loss: mean squared error of the predicted multivector against
``embed_point(x_{t+1})`` (which also pins the homogeneous weight to 1).

It prints the training loss going down (next to the loss of predicting "no motion"),
the test error in coordinates, and then checks in float64 the property GCAN layers have,
covariance: moving the inputs by a versor :math:`g` **and** conjugating every learned motor
by :math:`g` (gate covectors moved contragrediently, norm biases moved by :math:`g`) moves the
output by :math:`g`, for a screw motion and for a reflection. It also prints how far the
net is from *equivariance* (moving the inputs alone), which GCAN layers do not have.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch import Tensor, nn

from gatorch import PGA3
from gatorch.interface.pga import embed_point, extract_point
from gatorch.layers.zoo.gcan import GCANActivation, GCANGroupNorm, GroupActionLinear, transform_parameters

OMEGA_0 = 1.2
RISE = 0.2


def vortex_step(x: Tensor, sign: float = 1.0) -> Tensor:
    """One step of the flow (``sign=-1``: one step back), ``x: (..., 3)``."""
    r2 = x[..., 0] ** 2 + x[..., 1] ** 2
    angle = sign * OMEGA_0 / (1.0 + r2)
    c, s = torch.cos(angle), torch.sin(angle)
    x1 = c * x[..., 0] - s * x[..., 1]
    x2 = s * x[..., 0] + c * x[..., 1]
    return torch.stack([x1, x2, x[..., 2] + sign * RISE], dim=-1)


def make_data(
    n: int, generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor]:
    """Inputs ``(n, 2, 16)`` (points at ``t-1`` and ``t``) and targets ``(n, 1, 16)`` (point at ``t+1``)."""
    x_t = (torch.rand(n, 3, generator=generator, dtype=dtype) * 2 - 1) * torch.tensor(
        [2.0, 2.0, 1.0], dtype=dtype
    )
    frames = torch.stack([vortex_step(x_t, -1.0), x_t], dim=1)
    return embed_point(frames), embed_point(vortex_step(x_t))[:, None]


class GCAN(nn.Module):
    """Group action layers, GCAN gates and a group norm, ``(N, 2, 16) -> (N, 1, 16)``."""

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [
                GroupActionLinear(PGA3, 2, hidden),
                GCANActivation(PGA3, hidden),
                GCANGroupNorm(PGA3, hidden, scale_norm=True),
                GroupActionLinear(PGA3, hidden, hidden),
                GCANActivation(PGA3, hidden),
                GroupActionLinear(PGA3, hidden, 1),
            ]
        )
        with torch.no_grad():  # start with translations too (GCAN starts them at zero)
            for m in self.modules():
                if isinstance(m, GroupActionLinear):
                    m.bivector.mul_(0.3)

    def forward(self, mv: Tensor) -> Tensor:
        s = None
        for layer in self.layers:
            mv, s = layer(mv, s)
        return mv


def covariance_check(model: nn.Module, x: Tensor) -> None:
    """Print ``|F_{g.theta}(g.x) - g.F_theta(x)|`` (covariance) and ``|F(g.x) - g.F(x)|`` (equivariance)."""
    model = model.double()
    x = x.double()
    g = torch.Generator().manual_seed(7)
    rotor = PGA3.random_versor((), spin=True, generator=g, dtype=torch.float64)
    plane = PGA3.random_vector((), generator=g, dtype=torch.float64)
    plane[PGA3.index("e0")] = 0.7  # a plane off the origin: a reflection with a translation part
    with torch.no_grad():
        y = model(x)
        for name, w in (("screw motion", rotor), ("reflection", plane)):
            y_cov = transform_parameters(model, w)(PGA3.sandwich(w, x))
            y_eqv = model(PGA3.sandwich(w, x))
            ref = PGA3.sandwich(w, y)
            cov = float((y_cov - ref).abs().max() / ref.abs().max())
            eqv = float((y_eqv - ref).abs().max() / ref.abs().max())
            print(
                f"  {name:22s} covariance rel. error {cov:.1e}   (inputs moved alone: rel. gap {eqv:.1e}, "
                "not equivariant, as expected)"
            )
            assert cov < 1e-9, f"covariance violated: {cov:.2e}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    x_test, y_test = make_data(2048, gen)
    model = GCAN(args.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    loss_fn = nn.MSELoss()
    no_motion = loss_fn(x_test[:, 1:], y_test).item()
    params = sum(p.numel() for p in model.parameters())
    print(f"GCAN on PGA3: {params} parameters; test MSE of predicting 'no motion': {no_motion:.4f}")

    start = time.perf_counter()
    report = max(1, args.steps // 8)
    for step in range(1, args.steps + 1):
        x, y = make_data(args.batch, gen)
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % report == 0 or step == 1:
            with torch.no_grad():
                test = loss_fn(model(x_test), y_test).item()
            print(f"step {step:4d}  train MSE {loss.item():.5f}  test MSE {test:.5f}")
    elapsed = time.perf_counter() - start

    with torch.no_grad():
        pred = extract_point(model(x_test)[:, 0], threshold=1e-3)
        err = (pred - extract_point(y_test[:, 0])).norm(dim=-1)
        step_len = (extract_point(x_test[:, 1]) - extract_point(y_test[:, 0])).norm(dim=-1)
    print(
        f"trained {args.steps} steps in {elapsed:.1f} s; test position error {err.mean():.4f} "
        f"(mean step length {step_len.mean():.3f}, rel. {err.mean() / step_len.mean():.1%})"
    )
    print("covariance, float64: transform inputs and the layers' motors by g")
    covariance_check(model, x_test[:256])
    assert math.isfinite(err.mean().item())


if __name__ == "__main__":
    main()
