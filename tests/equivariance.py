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


def versors(
    alg: Algebra, batch: int, seed: int = 0, dtype: torch.dtype = torch.float64, max_entry: float = 30.0
) -> torch.Tensor:
    """``batch`` random versors, the first half even (rotations) and the second half odd.

    Boosts are bounded: only versors whose action matrix has entries of size at most
    ``max_entry`` are kept (indefinite signatures otherwise draw boosts large enough to
    eat float64 precision in quadratic invariants).
    """
    g = torch.Generator().manual_seed(seed)
    pool = 16 * batch
    even = alg.random_versor((pool,), spin=True, generator=g, dtype=dtype)
    vec = alg.random_vector((pool,), generator=g, dtype=dtype)
    odd = alg.gp(even, vec)
    eye = torch.eye(alg.dim, dtype=dtype)

    def bounded(w: torch.Tensor, count: int) -> torch.Tensor:
        size = alg.sandwich(w[:, None], eye[None]).abs().amax(dim=(-2, -1))
        keep = w[size <= max_entry]
        if keep.shape[0] < count:
            raise RuntimeError(f"versors: only {keep.shape[0]} of {pool} draws within max_entry={max_entry}")
        return keep[:count]

    half = batch // 2
    return torch.cat([bounded(even, half), bounded(odd, batch - half)])


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


def check_layer_equivariant(
    alg: Algebra,
    layer: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    mv: torch.Tensor,
    scalars: torch.Tensor | None,
    w: torch.Tensor,
    atol: float = 1e-9,
    rtol: float = 1e-9,
    **kwargs: object,
) -> None:
    """Assert a ``(mv, s) -> (mv, s)`` layer commutes with the action and its scalars are invariant.

    ``mv: (B, ..., channels, dim)`` with one versor per leading batch entry, ``w: (B, dim)``.
    """
    wb = w.reshape(w.shape[0], *([1] * (mv.ndim - 2)), alg.dim)
    mv_t = alg.sandwich(wb, mv)
    out_mv, out_s = layer(mv, scalars, **kwargs)
    out_mv_t, out_s_t = layer(mv_t, scalars, **kwargs)
    wo = w.reshape(w.shape[0], *([1] * (out_mv.ndim - 2)), alg.dim)
    torch.testing.assert_close(out_mv_t, alg.sandwich(wo, out_mv), atol=atol, rtol=rtol)
    torch.testing.assert_close(out_s_t, out_s, atol=atol, rtol=rtol)


def small_gatr(alg: Algebra, num_blocks: int = 2, **options: object):  # type: ignore[no-untyped-def]
    """A small ``GATr`` (2 -> 8 -> 1 mv channels, 3 -> 8 -> 2 scalar channels, 2 heads) for tests."""
    from gatorch.nets import GATr

    return GATr(
        alg,
        in_mv_channels=2,
        out_mv_channels=1,
        hidden_mv_channels=8,
        in_s_channels=3,
        out_s_channels=2,
        hidden_s_channels=8,
        num_blocks=num_blocks,
        num_heads=2,
        **options,  # type: ignore[arg-type]
    )
