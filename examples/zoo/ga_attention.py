r"""Geometric algebra attention (Spellings 2021) learning properties of small point clouds, on VGA3.

Run from the repository root::

    python -m examples.zoo.ga_attention              # 300 steps, well under two minutes on one core
    python -m examples.zoo.ga_attention --steps 50

Task: clouds of 8 points drawn from a standard Gaussian. Predict, from the positions alone,

.. math::
    d = \frac1N \sum_i \min_{j \ne i} |x_i - x_j| \quad\text{(O(3)-invariant: the mean
    nearest-neighbour distance)}, \qquad
    m = \frac1N \sum_i |x_i - \bar x|^2 (x_i - \bar x) \quad\text{(O(3)-covariant vector)}.

Model (M. Spellings, *Geometric algebra attention networks for small point clouds*, 2021),
on the centred positions :math:`r_i = x_i - \bar x` embedded as VGA3 vectors:

1. per-point values :math:`v_i = \mathrm{MLP}(|r_i|)`;
2. :class:`~gatorch.layers.zoo.ga_attention.GAInvariantAttention`, rank 2, ``reduce=False``:
   every point attends over the pairs :math:`(i, j)`, with the invariants of
   :math:`r_i r_j`, :math:`r_i` and :math:`r_j` (``invariant_mode="full"``); added to
   :math:`v_i`;
3. invariant head: a rank-3 ``GAInvariantAttention`` with ``reduce=True`` (attention over
   all triples) and an MLP to :math:`d`;
4. covariant head: :class:`~gatorch.layers.zoo.ga_attention.GACovariantAttention`, rank 2,
   ``reduce=True``, ``covariant_mode="full"``; its vector part is :math:`m`.

Every layer uses ``group="pin"``, so the model is invariant / covariant under all of O(3),
reflections included (and translation-invariant by the centring). It prints both losses
going down (as a fraction of the variance of the target: 1 is predicting the mean) and then
checks in float64, for random rotations and reflections :math:`M`, that
``d(x M^T) == d(x)`` and ``m(x M^T) == m(x) M^T``.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gatorch import VGA3
from gatorch.interface.vga import embed_vector, extract_vector
from gatorch.layers.zoo.ga_attention import (
    GACovariantAttention,
    GAInvariantAttention,
    ga_attention_invariant_dims,
)

NUM_POINTS = 8


def make_data(
    batch: int, generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, ...]:
    """Clouds ``x: (batch, 8, 3)``, targets ``d: (batch,)`` and ``m: (batch, 3)`` (module doc)."""
    x = torch.randn(batch, NUM_POINTS, 3, generator=generator, dtype=dtype)
    dist = torch.cdist(x, x) + torch.eye(NUM_POINTS, dtype=dtype) * 1e9
    d = dist.amin(-1).mean(-1)
    r = x - x.mean(1, keepdim=True)
    m = (r.square().sum(-1, keepdim=True) * r).mean(1)
    return x, d, m


def _mlp(n_in: int, n_out: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, n_out)
    )


def _attention(kind: str, n_dim: int, rank: int, reduce: bool, mode: str) -> nn.Module:
    """A pin-group attention layer with fresh MLP score / value (/ scale) networks."""
    value = _mlp(ga_attention_invariant_dims(rank, mode), n_dim, n_dim)
    common = dict(
        rank=rank, reduce=reduce, merge_fun="concat", join_fun="concat", invariant_mode=mode, group="pin"
    )
    if kind == "invariant":
        return GAInvariantAttention(VGA3, n_dim, _mlp(n_dim, 1, n_dim), value, **common)
    return GACovariantAttention(
        VGA3, n_dim, _mlp(n_dim, 1, n_dim), value, _mlp(n_dim, 1, n_dim), covariant_mode="full", **common
    )


class CloudModel(nn.Module):
    """Point values -> pairwise attention block -> triple-attention invariant head + covariant head.

    Shapes
    ------
    ``forward(x: (..., N, 3)) -> (d: (...), m: (..., 3))``.
    """

    def __init__(self, n_dim: int = 32) -> None:
        super().__init__()
        self.embed = _mlp(1, n_dim, n_dim)
        self.block = _attention("invariant", n_dim, rank=2, reduce=False, mode="full")
        self.pool = _attention("invariant", n_dim, rank=3, reduce=True, mode="partial")
        self.head = _mlp(n_dim, 1, n_dim)
        self.vector = _attention("covariant", n_dim, rank=2, reduce=True, mode="full")

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r = x - x.mean(-2, keepdim=True)
        pos = embed_vector(r)  # (..., N, 8)
        v = self.embed(r.norm(dim=-1, keepdim=True))
        v = v + self.block(pos, v)
        d = self.head(self.pool(pos, v))[..., 0]
        m = extract_vector(self.vector(pos, v))  # the vector part; the bivector part is unused
        return d, m


def equivariance_errors(model: CloudModel, seed: int = 1, count: int = 8) -> dict[str, float]:
    """Max errors in float64 over ``count`` random rotations and ``count`` reflections."""
    g = torch.Generator().manual_seed(seed)
    model = copy.deepcopy(model).double().eval()
    x, _, _ = make_data(count, g, torch.float64)
    q, _ = torch.linalg.qr(torch.randn(2 * count, 3, 3, generator=g, dtype=torch.float64))
    q = q * torch.linalg.det(q)[:, None, None]  # rotations (det +1) ...
    q[count:, :, 0] *= -1  # ... and, for the second half, rotations composed with a reflection
    errors = {}
    with torch.no_grad():
        for name, mats in (("rotation", q[:count]), ("reflection", q[count:])):
            d, m = model(x)
            d_t, m_t = model(x @ mats.transpose(-1, -2))
            errors[f"invariant {name}"] = (d_t - d).abs().max().item()
            errors[f"covariant {name}"] = (m_t - (mats @ m[..., None])[..., 0]).abs().max().item()
    assert (torch.linalg.det(q[count:]) < 0).all()
    return errors


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    """Train, print the losses and the equivariance errors; return them (for tests)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    parser.add_argument("--batch", type=int, default=32, help="clouds per step (default 32)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    model = CloudModel()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    val_x, val_d, val_m = make_data(256, g)
    d_mean, d_var = val_d.mean(), val_d.var()
    m_var = val_m.square().sum(-1).mean()  # the mean of m is 0 by symmetry

    def losses(x: Tensor, d: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
        pred_d, pred_m = model(x)
        return (pred_d + d_mean - d).square().mean() / d_var, (pred_m - m).square().sum(-1).mean() / m_var

    print(f"model: {sum(p.numel() for p in model.parameters())} parameters; {NUM_POINTS}-point clouds")
    print("losses are mse / variance of the target (1.0 = predicting the mean)")
    history = []
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        loss_d, loss_m = losses(*make_data(args.batch, g))
        opt.zero_grad()
        (loss_d + loss_m).backward()
        opt.step()
        sched.step()
        if step == 1 or step % max(1, args.steps // 6) == 0 or step == args.steps:
            with torch.no_grad():
                val = [t.item() for t in losses(val_x, val_d, val_m)]
            history.append((step, *val))
            print(
                f"step {step:4d}  train inv {loss_d.item():.3f} cov {loss_m.item():.3f}  "
                f"val inv (nn distance) {val[0]:.3f}  cov (3rd moment) {val[1]:.3f}"
            )
    print(f"trained {args.steps} steps in {time.perf_counter() - start:.1f} s")
    errors = equivariance_errors(model)
    print("O(3) check (float64, max abs error): " + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))
    return {"history": history, "errors": errors}


if __name__ == "__main__":
    main()
