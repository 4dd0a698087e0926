"""The Navier-Stokes smoke simulator of examples/pde: projection, conservation, symmetry, cache."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from examples.pde import simulate as sim

SMALL = {
    **sim.NAVIER_STOKES,
    "grid": 32,
    "length": 16.0,
    "frames": 4,
    "substeps": 8,
}


def _solve(smoke, velocity, source=None, direction=(0.0, 1.0), frames=4):
    p = SMALL
    return sim.solve(
        smoke,
        velocity,
        source,
        frames=frames,
        frame_dt=p["frame_dt"],
        substeps=p["substeps"],
        length=p["length"],
        buoyancy=p["buoyancy"],
        direction=direction,
        viscosity=p["viscosity"],
        diffusivity=p["diffusivity"],
    )


def _initial(num=2, seed=0):
    return sim.sample_initial(num, torch.Generator().manual_seed(seed), SMALL)


def test_projection_is_divergence_free_and_removes_gradients():
    n, length = 32, 16.0
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(3, 2, n, n, generator=gen, dtype=torch.float64)
    assert sim.spectral_divergence(u, length).abs().max() > 1.0  # a random field is not
    kx, ky = sim.wavenumbers(n, length)
    mask = sim.dealias_mask(n)
    u_hat = torch.fft.rfft2(u) * mask
    v = torch.fft.irfft2(sim.project(u_hat, kx, ky), s=(n, n))
    assert sim.spectral_divergence(v, length).abs().max() < 1e-10
    # idempotent, and a pure gradient (written down by hand in physical space) is removed
    v2 = torch.fft.irfft2(sim.project(torch.fft.rfft2(v), kx, ky), s=(n, n))
    torch.testing.assert_close(v2, v, atol=1e-12, rtol=0)
    x = torch.arange(n, dtype=torch.float64) * (length / n)
    w = 2 * math.pi / length
    X, Y = torch.meshgrid(x, x, indexing="ij")
    # phi = sin(w x) cos(2 w y): grad phi = (w cos(w x) cos(2 w y), -2 w sin(w x) sin(2 w y))
    grad = torch.stack(
        (w * torch.cos(w * X) * torch.cos(2 * w * Y), -2 * w * torch.sin(w * X) * torch.sin(2 * w * Y))
    )
    removed = torch.fft.irfft2(sim.project(torch.fft.rfft2(grad), kx, ky), s=(n, n))
    assert removed.abs().max() < 1e-12
    # ... and a divergence-free field (curl of psi = cos(w x) sin(w y)) is kept
    curl = torch.stack((w * torch.cos(w * X) * torch.cos(w * Y), w * torch.sin(w * X) * torch.sin(w * Y)))
    kept = torch.fft.irfft2(sim.project(torch.fft.rfft2(curl), kx, ky), s=(n, n))
    torch.testing.assert_close(kept, curl, atol=1e-12, rtol=0)


def test_solver_velocity_stays_divergence_free():
    smoke, velocity, source = _initial()
    _, u = _solve(smoke, velocity, source)
    assert sim.spectral_divergence(u, SMALL["length"]).abs().max() < 1e-10
    assert u[:, -1].abs().max() > 0.1  # the flow is not trivial


def test_total_smoke_is_conserved_without_source():
    smoke, velocity, _ = _initial()
    s, _ = _solve(smoke, velocity, None)
    total = s.sum(dim=(-2, -1))
    rel = ((total - total[:, :1]).abs() / total[:, :1]).max()
    assert rel < 1e-6
    assert (s[:, -1] - s[:, 0]).abs().max() > 1e-2  # the smoke did move


def test_source_adds_exactly_its_amount():
    smoke, velocity, source = _initial()
    s, _ = _solve(smoke, velocity, source)
    total = s.sum(dim=(-2, -1))
    added = source.sum(dim=(-2, -1))[:, None] * SMALL["frame_dt"] * torch.arange(4, dtype=torch.float64)
    torch.testing.assert_close(total - total[:, :1], added, rtol=1e-9, atol=1e-9)


def test_rotation_by_90_degrees_rotates_the_trajectory():
    smoke, velocity, source = _initial(seed=3)
    s, u = _solve(smoke, velocity, source)

    def rot(field):  # rot90 maps the value at grid point (j, -1 - i) to (i, j): (x, y) -> (-y, x) + shift
        return torch.rot90(field, 1, dims=(-2, -1))

    def rot_vec(vec):  # values rotate like the points: (v_x, v_y) -> (-v_y, v_x)
        r = rot(vec)
        return torch.stack((-r[..., 1, :, :], r[..., 0, :, :]), dim=-3)

    s_r, u_r = _solve(rot(smoke), rot_vec(velocity), rot(source), direction=(-1.0, 0.0))
    torch.testing.assert_close(s_r, rot(s), atol=1e-10, rtol=0)
    torch.testing.assert_close(u_r, rot_vec(u), atol=1e-10, rtol=0)
    # with the buoyancy left pointing along +y, the rotated state does not follow the rotated trajectory
    s_w, _ = _solve(rot(smoke), rot_vec(velocity), rot(source), direction=(0.0, 1.0))
    assert (s_w[:, -1] - rot(s)[:, -1]).abs().max() > 1e-3


def test_reflection_symmetry():
    # mirror x -> -x (flip of the first grid axis about a grid point): u_x flips sign, buoyancy along y kept
    smoke, velocity, source = _initial(seed=5)
    s, u = _solve(smoke, velocity, source)

    def flip(field):
        return torch.roll(torch.flip(field, dims=(-2,)), 1, dims=-2)  # i -> -i mod n

    def flip_vec(vec):
        f = flip(vec)
        return torch.stack((-f[..., 0, :, :], f[..., 1, :, :]), dim=-3)

    s_f, u_f = _solve(flip(smoke), flip_vec(velocity), flip(source))
    torch.testing.assert_close(s_f, flip(s), atol=1e-10, rtol=0)
    torch.testing.assert_close(u_f, flip_vec(u), atol=1e-10, rtol=0)


def test_seeded_shapes_and_layout():
    a = sim.simulate(2, seed=7, params=SMALL)
    b = sim.simulate(2, seed=7, params=SMALL)
    c = sim.simulate(2, seed=8, params=SMALL)
    assert a.shape == (2, SMALL["frames"], 1, 32, 32, 4)
    assert a.dtype == torch.float64
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert (a - c).abs().max() > 1e-3
    assert torch.all(a[..., 3] == 0)  # no bivector
    assert a[..., 0].max() > 0.1 and a[..., 1:3].abs().max() > 0.1
    # frame 0 is the initial (dealiased) state: the velocity rms is the protocol's
    rms = a[:, 0, 0, :, :, 1:3].pow(2).sum(-1).mean(dim=(-2, -1)).sqrt()
    torch.testing.assert_close(
        rms, torch.full((2,), SMALL["noise_velocity"], dtype=torch.float64), atol=1e-3, rtol=0
    )


def test_solve_rejects_bad_shapes():
    with pytest.raises(ValueError, match="smoke must be"):
        _solve(torch.zeros(2, 8, 9), torch.zeros(2, 2, 8, 9))
    with pytest.raises(ValueError, match="velocity must be"):
        _solve(torch.zeros(2, 8, 8), torch.zeros(2, 3, 8, 8))


def test_cache_roundtrip_and_protocol(tmp_path, monkeypatch):
    monkeypatch.setattr(sim, "NAVIER_STOKES", {**SMALL, "grid": 16, "frames": 3, "substeps": 4})
    monkeypatch.setattr(sim, "SPLIT_SIZES", {"train": 3, "val": 2, "test": 2})
    with pytest.raises(ValueError, match="unknown split"):
        sim.load_split("dev", tmp_path)
    train = sim.load_split("train", tmp_path)
    assert train.shape == (3, 3, 1, 16, 16, 4) and train.dtype == np.float32
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == [
        "smoke_test.npz",
        "smoke_train.npz",
        "smoke_val.npz",
    ]
    mtime = (tmp_path / "smoke_train.npz").stat().st_mtime_ns
    np.testing.assert_array_equal(sim.load_split("train", tmp_path), train)  # cached: not rewritten
    assert (tmp_path / "smoke_train.npz").stat().st_mtime_ns == mtime
    monkeypatch.setattr(sim, "SPLIT_SIZES", {"train": 4, "val": 2, "test": 2})  # protocol changed
    assert sim.load_split("train", tmp_path).shape[0] == 4
