"""Shared helpers for equivariance tests: random group elements and the check itself."""

from __future__ import annotations

from collections.abc import Callable

import torch

from gatorch import Algebra

#: Algebras every equivariance test runs on: the presets and two random-looking signatures.
ALGEBRAS: dict[str, Algebra] = {
    "VGA3": Algebra(3, 0, 0),
    "PGA3": Algebra(3, 0, 1),
    "STA": Algebra.from_signature([1, -1, -1, -1], start_index=0),
    "CGA3": Algebra(4, 1, 0),
    "Cl(2,0,1)": Algebra(2, 0, 1),
    "Cl(2,2,1)": Algebra(2, 2, 1),
}


def versors(alg: Algebra, batch: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``batch`` random versors, the first half even (rotations) and the second half odd."""
    g = torch.Generator().manual_seed(seed)
    even = alg.random_versor((batch,), spin=True, generator=g, dtype=dtype)
    vec = alg.random_vector((batch,), generator=g, dtype=dtype)
    odd = alg.gp(even, vec)
    half = batch // 2
    return torch.cat([even[:half], odd[half:]])


def parity(alg: Algebra, w: torch.Tensor) -> torch.Tensor:
    """0 for even versors, 1 for odd ones."""
    odd = torch.tensor([g % 2 == 1 for g in alg.grades])
    return (w[..., odd].abs().sum(-1) > w[..., ~odd].abs().sum(-1)).long()


def check_equivariant(
    alg: Algebra,
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    w: torch.Tensor,
    atol: float = 1e-9,
    rtol: float = 1e-9,
) -> None:
    """Assert ``fn(w . x) == w . fn(x)`` for versors ``w: (B, dim)`` and inputs ``x: (B, ..., dim)``."""
    wb = w.reshape(w.shape[0], *([1] * (x.ndim - 2)), alg.dim)
    lhs = fn(alg.sandwich(wb, x))
    rhs = alg.sandwich(wb, fn(x))
    torch.testing.assert_close(lhs, rhs, atol=atol, rtol=rtol)
