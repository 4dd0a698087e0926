r"""GLGENN against CGENN on the O(5)-invariant regression task, with the same model shape.

Run from the repository root::

    python -m examples.zoo.glgenn              # about a minute on one core
    python -m examples.zoo.glgenn --quick      # smoke run, a few seconds

Task (the O(5) regression of CGENN, Ruhe et al. 2023, and of GLGENN, Filimoshina & Shirokov,
ICML 2025): from two vectors :math:`x_1, x_2 \in \mathbb{R}^5` with standard normal entries
predict the O(5)-invariant

.. math::
    f(x_1, x_2) = \sin(|x_1|) - \tfrac12 |x_2|^3 + \frac{x_1 \cdot x_2}{|x_1|\,|x_2|},

from a small training set (GLGENN's point: fewer parameters, less overfitting on little data).

Models (identical shape, in Cl(5,0), 32 blades): the two vectors as grade-1 multivectors in 2
channels, a linear layer ``2 -> C``, two geometric-product layers on ``C`` channels, the scalar
parts of the ``C`` channels (invariants) into a small MLP.

* **GLGENN**: :class:`gatorch.layers.zoo.glgenn.QTLinear` and
  :class:`gatorch.layers.zoo.glgenn.QTGeometricProduct` (weights shared by quaternion type: 4 per
  channel pair in the linear maps, 32 qt paths per channel in the product);
* **CGENN**: :class:`gatorch.layers.EquiLinear` and :class:`gatorch.layers.SteerableGeometricProduct`
  (weights per grade: 6 per channel pair, 56 grade paths per channel).

It prints the parameter counts, the train / test mean squared errors (in units of the target's
variance) during training, and an equivariance check: the predictions for inputs moved by a
random rotation and by a reflection of :math:`\mathbb{R}^5` (float64 copies of the models).
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from gatorch import Algebra
from gatorch.layers import EquiLinear, SteerableGeometricProduct
from gatorch.layers.zoo.glgenn import QTGeometricProduct, QTLinear

DIM = 5  # the dimension of the vector space: the group is O(5)
NUM_VECTORS = 2
ALG = Algebra(DIM, 0, 0)


def target(x: Tensor) -> Tensor:
    """``f(x_1, x_2)`` of the module docstring for ``x: (batch, 2, 5)``; returns ``(batch,)``."""
    x1, x2 = x[:, 0], x[:, 1]
    n1, n2 = x1.norm(dim=-1), x2.norm(dim=-1)
    return torch.sin(n1) - 0.5 * n2**3 + (x1 * x2).sum(-1) / (n1 * n2)


def make_data(size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``size`` input pairs ``(size, 2, 5)`` and their targets ``(size,)``."""
    x = torch.randn(size, NUM_VECTORS, DIM, generator=generator)
    return x, target(x)


class InvariantRegressor(nn.Module):
    r"""``vectors -> linear -> product -> product -> scalar parts -> MLP``, from given layer types.

    Parameters
    ----------
    linear : callable
        ``linear(alg, in_channels, out_channels)``: a ``(mv, s) -> (mv, s)`` linear layer.
    product : callable
        ``product(alg, channels)``: a ``(mv, s) -> (mv, s)`` geometric-product layer.
    channels, hidden : int
        Multivector channels; width of the MLP on the invariants.

    Shapes
    ------
    ``forward(x: (batch, 2, 5)) -> (batch,)``
    """

    def __init__(
        self,
        linear: Callable[[Algebra, int, int], nn.Module],
        product: Callable[[Algebra, int], nn.Module],
        channels: int,
        hidden: int,
    ) -> None:
        super().__init__()
        self.embed = linear(ALG, NUM_VECTORS, channels)
        self.products = nn.ModuleList([product(ALG, channels) for _ in range(2)])
        self.head = nn.Sequential(
            nn.Linear(channels, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1)
        )

    def equivariant_parameters(self) -> int:
        """Parameters of the geometric-algebra layers (the MLP head excluded)."""
        layers = [self.embed, *self.products]
        return sum(p.numel() for layer in layers for p in layer.parameters())

    def forward(self, x: Tensor) -> Tensor:
        mv = x.new_zeros(*x.shape[:-1], ALG.dim)
        mv[..., ALG.grade_slice(1)] = x  # vectors e_1 .. e_5
        mv, s = self.embed(mv)
        for layer in self.products:
            mv, s = layer(mv, s)
        invariants = mv[..., ALG.grade_slice(0)].squeeze(-1)  # (batch, channels): scalar parts
        return self.head(invariants).squeeze(-1)


def build(kind: str, channels: int, hidden: int) -> InvariantRegressor:
    """The ``"glgenn"`` or ``"cgenn"`` model (module docstring)."""
    if kind == "glgenn":
        return InvariantRegressor(QTLinear, QTGeometricProduct, channels, hidden)
    if kind == "cgenn":
        return InvariantRegressor(EquiLinear, SteerableGeometricProduct, channels, hidden)
    raise ValueError(f"unknown model kind {kind!r}; expected 'glgenn' or 'cgenn'")


def train(
    model: nn.Module,
    train_set: tuple[Tensor, Tensor],
    test_set: tuple[Tensor, Tensor],
    epochs: int,
    batch: int,
    lr: float,
    seed: int,
    report: Callable[[int, float, float], None],
) -> tuple[float, float]:
    """Adam with cosine decay on the normalised targets; returns the final (train, test) MSE.

    The errors are in units of the training targets' variance (1.0: predicting the mean).
    """
    (x, y), (x_test, y_test) = train_set, test_set
    mean, std = y.mean(), y.std()
    optim = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, epochs)
    g = torch.Generator().manual_seed(seed)

    def mse(xs: Tensor, ys: Tensor) -> float:
        with torch.no_grad():
            return nn.functional.mse_loss(model(xs), (ys - mean) / std).item()

    for epoch in range(1, epochs + 1):
        for idx in torch.randperm(x.shape[0], generator=g).split(batch):
            loss = nn.functional.mse_loss(model(x[idx]), (y[idx] - mean) / std)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
        sched.step()
        if epoch % max(1, epochs // 5) == 0 or epoch == epochs:
            report(epoch, mse(x, y), mse(x_test, y_test))
    return mse(x, y), mse(x_test, y_test)


def random_orthogonal(generator: torch.Generator, reflect: bool) -> Tensor:
    """A random ``(5, 5)`` float64 rotation, or a reflection (determinant -1) when ``reflect``."""
    q, r = torch.linalg.qr(torch.randn(DIM, DIM, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if (torch.linalg.det(q) < 0) != reflect:
        q[:, 0] = -q[:, 0]
    return q


def equivariance_error(model: nn.Module, x: Tensor, generator: torch.Generator) -> dict[str, float]:
    """Max ``|model(x Q^T) - model(x)|`` over the batch for a rotation and a reflection (float64)."""
    model64 = copy.deepcopy(model).double().eval()
    x64 = x.double()
    errors = {}
    with torch.no_grad():
        ref = model64(x64)
        for name, reflect in (("rotation", False), ("reflection", True)):
            q = random_orthogonal(generator, reflect)
            errors[name] = (model64(x64 @ q.T) - ref).abs().max().item()
    return errors


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-size", type=int, default=300)
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a few epochs on little data (smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_size, args.test_size, args.epochs = 64, 128, 3
    torch.set_num_threads(args.threads)

    g = torch.Generator().manual_seed(args.seed)
    train_set, test_set = make_data(args.train_size, g), make_data(args.test_size, g)
    print(
        f"O({DIM}) regression in {ALG!r}: {args.train_size} training / {args.test_size} test pairs, "
        f"{args.epochs} epochs, {args.channels} channels"
    )
    results: dict[str, dict[str, float]] = {}
    for kind in ("glgenn", "cgenn"):
        torch.manual_seed(args.seed)
        model = build(kind, args.channels, args.hidden)
        total = sum(p.numel() for p in model.parameters())
        print(
            f"\n{kind.upper()}: {total} parameters ({model.equivariant_parameters()} in the "
            f"geometric-algebra layers, {total - model.equivariant_parameters()} in the MLP head)"
        )
        start = time.perf_counter()

        def report(epoch: int, train_mse: float, test_mse: float) -> None:
            print(f"  epoch {epoch:4d}  train mse {train_mse:.4f}  test mse {test_mse:.4f}")

        train_mse, test_mse = train(
            model, train_set, test_set, args.epochs, args.batch, args.lr, args.seed, report
        )
        seconds = time.perf_counter() - start
        errors = equivariance_error(model, test_set[0][:256], torch.Generator().manual_seed(args.seed + 1))
        print(
            f"  {seconds:.1f} s; equivariance: max |f(Qx) - f(x)| = {errors['rotation']:.1e} (rotation), "
            f"{errors['reflection']:.1e} (reflection)"
        )
        results[kind] = {
            "parameters": float(total),
            "equivariant_parameters": float(model.equivariant_parameters()),
            "train_mse": train_mse,
            "test_mse": test_mse,
            "seconds": seconds,
            **errors,
        }
    glg, cg = results["glgenn"], results["cgenn"]
    print(
        f"\nGLGENN: {glg['equivariant_parameters']:.0f} / CGENN: {cg['equivariant_parameters']:.0f} "
        f"geometric-algebra parameters; test mse {glg['test_mse']:.4f} / {cg['test_mse']:.4f}"
    )
    return results


if __name__ == "__main__":
    main()
