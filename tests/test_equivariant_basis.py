"""The derived equivariant linear maps: counts, commutation with the versor action, independence, form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gatorch import STA, Algebra
from gatorch.testing import random_versors, versor_parity

#: (p, q, r) -> (Pin count, Spin count), from ARCHITECTURE.md
COUNTS = {
    (3, 0, 0): (4, 8),
    (3, 0, 1): (9, 16),
    (1, 3, 0): (5, 10),
    (4, 1, 0): (6, 12),
    (2, 0, 1): (7, 13),
    (4, 0, 0): (5, 10),
}
ALGEBRAS = {f"Cl{sig}": Algebra(*sig) for sig in COUNTS} | {"STA": STA}


def _counts(alg: Algebra) -> tuple[int, int]:
    return COUNTS[alg.signature]


def action_matrices(alg: Algebra, w: torch.Tensor) -> np.ndarray:
    """``(B, dim, dim)``: ``R[b] @ x = sandwich(w[b], x)``, column j the image of blade j."""
    eye = torch.eye(alg.dim, dtype=torch.float64)
    images = alg.sandwich(w[:, None, :], eye[None])  # (B, j, :) = rho(e_j)
    return images.transpose(-1, -2).numpy()


def commutator_error(basis: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """max |B_a R_b - R_b B_a| per map a, relative to the size of R_b."""
    c = np.einsum("aij,bjk->abik", basis, rho) - np.einsum("bij,ajk->abik", rho, basis)
    scale = np.abs(rho).reshape(rho.shape[0], -1).max(-1)
    return (np.abs(c).reshape(*c.shape[:2], -1).max(-1) / scale).max(-1)


def _rank(m: np.ndarray) -> int:
    s = np.linalg.svd(m, compute_uv=False)
    return int((s > 1e-8 * s[0]).sum()) if s.size else 0


@pytest.mark.parametrize("key", sorted(ALGEBRAS))
def test_counts(key: str) -> None:
    alg = ALGEBRAS[key]
    pin, spin = _counts(alg)
    b_pin, b_spin = alg.equivariant_basis("pin"), alg.equivariant_basis("spin")
    assert b_pin.shape == (pin, alg.dim, alg.dim) and b_pin.dtype == torch.float64
    assert b_spin.shape == (spin, alg.dim, alg.dim)
    assert alg.equivariant_basis().shape[0] == pin  # default group


@pytest.mark.parametrize("key", sorted(ALGEBRAS))
def test_pin_maps_commute_with_odd_and_even_versors(key: str) -> None:
    alg = ALGEBRAS[key]
    w = random_versors(alg, 12, seed=1)
    assert versor_parity(alg, w).tolist() == [0] * 6 + [1] * 6
    rho = action_matrices(alg, w)
    basis = alg.equivariant_basis("pin").numpy()
    assert commutator_error(basis, rho).max() < 1e-9
    # also as maps on batches of multivectors: B(rho_w(x)) == rho_w(B(x))
    x = torch.randn(12, alg.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    bt = torch.from_numpy(basis)
    lhs = torch.einsum("aij,bj->abi", bt, alg.sandwich(w, x))
    rhs = alg.sandwich(w, torch.einsum("aij,bj->abi", bt, x))
    torch.testing.assert_close(lhs, rhs, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("key", sorted(ALGEBRAS))
def test_spin_maps_commute_with_even_versors_and_pin_is_the_right_subset(key: str) -> None:
    alg = ALGEBRAS[key]
    n_pin, n_spin = _counts(alg)
    w = random_versors(alg, 12, seed=2)
    even, odd = action_matrices(alg, w[:6]), action_matrices(alg, w[6:])
    b_spin = alg.equivariant_basis("spin").numpy()
    b_pin = alg.equivariant_basis("pin").numpy()
    assert commutator_error(b_spin, even).max() < 1e-9
    # the Pin maps lie in the span of the Spin maps...
    assert _rank(np.concatenate([b_spin, b_pin]).reshape(n_pin + n_spin, -1)) == n_spin
    # ...and are exactly the part of it that also commutes with reflections: the linear
    # combinations sum_a c_a S_a commuting with every odd versor form an n_pin-dim space
    comm = np.einsum("aij,bjk->abik", b_spin, odd) - np.einsum("bij,ajk->abik", odd, b_spin)
    assert _rank(comm.reshape(n_spin, -1)) == n_spin - n_pin
    # so at least n_spin - n_pin of the Spin maps do not commute with odd versors
    errs = commutator_error(b_spin, odd)
    assert (errs > 1e-3).sum() >= n_spin - n_pin


@pytest.mark.parametrize("key", sorted(ALGEBRAS))
def test_a_non_equivariant_map_is_caught(key: str) -> None:
    """The commutation check can fail: a random map within grade 1 does not commute."""
    alg = ALGEBRAS[key]
    m = np.zeros((1, alg.dim, alg.dim))
    sl = alg.grade_slice(1)
    m[0, sl, sl] = np.random.default_rng(0).standard_normal((alg.n, alg.n))
    rho = action_matrices(alg, random_versors(alg, 4, seed=3))
    assert commutator_error(m, rho).max() > 1e-3


@pytest.mark.parametrize("group", ["pin", "spin"])
@pytest.mark.parametrize("key", sorted(ALGEBRAS))
def test_maps_are_independent_and_clean(key: str, group: str) -> None:
    alg = ALGEBRAS[key]
    basis = alg.equivariant_basis(group).numpy()
    k = basis.shape[0]
    assert _rank(basis.reshape(k, -1)) == k
    # entries: exact small numbers (multiples of 1/2), largest 1 in every map, sparse
    assert np.array_equal(basis * 2, np.round(basis * 2))
    np.testing.assert_array_equal(np.abs(basis).reshape(k, -1).max(-1), np.ones(k))
    assert ((basis != 0).reshape(k, -1).sum(-1) <= alg.dim).all()
    # each map takes one input grade to one output grade
    grades = np.asarray(alg.grades)
    for m in basis:
        rows, cols = np.nonzero(m)
        assert len(set(grades[rows])) == 1 and len(set(grades[cols])) == 1


@pytest.mark.parametrize("key", sorted(ALGEBRAS))
def test_grade_projections_are_in_the_pin_span(key: str) -> None:
    alg = ALGEBRAS[key]
    basis = alg.equivariant_basis("pin").numpy().reshape(-1, alg.dim**2)
    for g in range(alg.n + 1):
        proj = np.diag((np.asarray(alg.grades) == g).astype(float)).reshape(1, -1)
        assert _rank(np.concatenate([basis, proj])) == basis.shape[0]


def test_basis_is_a_copy() -> None:
    alg = Algebra(3, 0, 0)
    b = alg.equivariant_basis("pin")
    b.zero_()
    assert float(alg.equivariant_basis("pin").abs().max()) == 1.0


def test_random_six_dimensional_signature() -> None:
    rng = np.random.default_rng(2024)
    metric = rng.choice([1, -1, 0], size=6).tolist()
    # a start index used nowhere else, so the cached basis cannot be reused
    alg = Algebra.from_signature(metric, start_index=3)
    assert alg.signature[0] + alg.signature[1] > 0
    basis = alg.equivariant_basis("pin").numpy()  # speed is measured, not asserted (see the note)
    k = basis.shape[0]
    assert k >= alg.n + 1  # at least the grade projections
    assert _rank(basis.reshape(k, -1)) == k
    rho = action_matrices(alg, random_versors(alg, 6, seed=4))
    assert commutator_error(basis, rho).max() < 1e-9
