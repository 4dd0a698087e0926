"""Tests of the n-body simulators and their cache (``examples/nbody/simulate.py``)."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest

from examples.nbody import simulate

# ----------------------------------------------------------------------------------------------
# helpers (independent references)


def _direct_coulomb(loc: np.ndarray, charges: np.ndarray) -> np.ndarray:
    """Unclipped ``F_i = sum_{j != i} q_i q_j (x_i - x_j) / |x_i - x_j|^3`` by a double loop."""
    b, n, _ = loc.shape
    out = np.zeros_like(loc)
    for s in range(b):
        for i in range(n):
            for j in range(n):
                if i != j:
                    r = loc[s, i] - loc[s, j]
                    out[s, i] += charges[s, i] * charges[s, j] * r / np.linalg.norm(r) ** 3
    return out


def _charged_energy(loc: np.ndarray, vel: np.ndarray, charges: np.ndarray) -> np.ndarray:
    """Kinetic + sum_{i<j} q_i q_j / r_ij; ``loc``, ``vel``: (B, T, n, 3), ``charges``: (B, n)."""
    kinetic = 0.5 * (vel**2).sum(axis=(-1, -2))
    n = loc.shape[-2]
    potential = np.zeros(loc.shape[:2])
    for i in range(n):
        for j in range(i + 1, n):
            r = np.linalg.norm(loc[..., i, :] - loc[..., j, :], axis=-1)
            potential += (charges[:, i] * charges[:, j])[:, None] / r
    return kinetic + potential


def _separated_system(num: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Particles on the vertices of a spread-out bipyramid (pair distances >= ~4): no clipping."""
    rng = np.random.default_rng(seed)
    base = 4.0 * np.array([[1.0, 0, 0], [-0.5, 0.87, 0], [-0.5, -0.87, 0], [0, 0, 1.2], [0, 0, -1.2]])
    loc = base + 0.2 * rng.standard_normal((num, 5, 3))
    vel = rng.standard_normal((num, 5, 3))
    vel *= 0.3 / np.linalg.norm(vel, axis=-1, keepdims=True)
    charges = rng.choice([-1.0, 1.0], size=(num, 5))
    return loc, vel, charges


# ----------------------------------------------------------------------------------------------
# charged


def test_charged_shapes_charges_initial_speed():
    data = simulate.simulate_charged(4, seed=0, frames=2)
    assert data["loc"].shape == (4, 3, 5, 3) and data["loc"].dtype == np.float64
    assert data["vel"].shape == (4, 3, 5, 3) and data["vel"].dtype == np.float64
    assert data["charges"].shape == (4, 5) and data["charges"].dtype == np.float64
    assert data["clipped"].shape == (4,) and data["clipped"].dtype == bool
    assert set(np.unique(data["charges"])) <= {-1.0, 1.0}
    np.testing.assert_allclose(np.linalg.norm(data["vel"][:, 0], axis=-1), 0.5, rtol=0, atol=1e-14)


def test_charged_charges_are_balanced():
    charges = simulate.simulate_charged(2000, seed=3, frames=0)["charges"]
    assert abs(charges.mean()) < 0.05


def test_charged_forces_match_double_loop():
    rng = np.random.default_rng(1)
    loc = rng.standard_normal((3, 5, 3))
    charges = rng.choice([-1.0, 1.0], size=(3, 5))
    ref = _direct_coulomb(loc, charges)
    forces, clipped = simulate.charged_forces(loc, charges, max_force=None)
    np.testing.assert_allclose(forces, ref, rtol=1e-12, atol=1e-12)
    assert not clipped.any()
    # Clipping acts elementwise on the total force, and is reported.
    max_force = 0.5 * np.abs(ref).max()
    forces, clipped = simulate.charged_forces(loc, charges, max_force=max_force)
    np.testing.assert_allclose(forces, np.clip(ref, -max_force, max_force), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(clipped, (np.abs(ref) > max_force).any(axis=(1, 2)))


def test_charged_like_charges_repel():
    loc = np.array([[[0.0, 0, 0], [1.0, 0, 0]]])
    forces, _ = simulate.charged_forces(loc, np.array([[1.0, 1.0]]), max_force=None)
    np.testing.assert_allclose(forces[0], [[-1.0, 0, 0], [1.0, 0, 0]])
    forces, _ = simulate.charged_forces(loc, np.array([[1.0, -1.0]]), max_force=None)
    np.testing.assert_allclose(forces[0], [[1.0, 0, 0], [-1.0, 0, 0]])


def test_charged_integrator_scheme():
    """Frames follow NRI's symplectic Euler, checked against charged_step (and frame 0 is unkicked)."""
    loc, vel, charges = _separated_system(2, seed=2)
    out = simulate.integrate_charged(loc, vel, charges, steps=6, save_every=3)
    np.testing.assert_array_equal(out["loc"][:, 0], loc)
    np.testing.assert_array_equal(out["vel"][:, 0], vel)
    f0, _ = simulate.charged_forces(loc, charges)
    x, v = loc, vel + simulate.CHARGED["dt"] * f0
    for step in range(1, 7):
        x_next = x + simulate.CHARGED["dt"] * v
        if step % 3 == 0:  # saved: the positions after the update, with the velocity that made it
            np.testing.assert_allclose(out["loc"][:, step // 3], x_next, rtol=1e-13, atol=1e-13)
            np.testing.assert_allclose(out["vel"][:, step // 3], v, rtol=1e-13, atol=1e-13)
        x, v, _ = simulate.charged_step(x, v, charges)


def test_charged_momentum_and_energy_on_separated_systems():
    loc, vel, charges = _separated_system(6, seed=0)
    out = simulate.integrate_charged(loc, vel, charges, steps=4000)
    assert not out["clipped"].any()
    momentum = out["vel"].sum(axis=2)  # unit masses: (B, frames, 3)
    assert np.abs(momentum - momentum[:, :1]).max() < 1e-10
    dist = np.linalg.norm(out["loc"][:, :, :, None] - out["loc"][:, :, None], axis=-1)
    iu, ju = np.triu_indices(5, 1)
    assert dist[..., iu, ju].min() > 0.5  # well separated throughout
    energy = _charged_energy(out["loc"], out["vel"], charges)
    # Relative to the energy scale (kinetic + |pair potentials|): E itself can be close to 0.
    scale = _charged_energy(out["loc"][:, :1], out["vel"][:, :1], np.abs(charges))[:, 0]
    drift = np.abs(energy - energy[:, :1]).max(axis=1) / scale
    assert drift.max() < 1e-3, drift  # observed ~1e-5


def test_charged_momentum_conserved_when_unclipped():
    data = simulate.simulate_charged(16, seed=5, frames=40)
    free = ~data["clipped"]
    assert free.sum() >= 3
    momentum = data["vel"][free].sum(axis=2)
    assert np.abs(momentum - momentum[:, :1]).max() < 1e-10


def test_charged_determinism():
    a = simulate.simulate_charged(3, seed=7, frames=1)
    b = simulate.simulate_charged(3, seed=7, frames=1)
    c = simulate.simulate_charged(3, seed=8, frames=1)
    for key in ("loc", "vel", "charges"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["loc"], c["loc"])


# ----------------------------------------------------------------------------------------------
# gravity


def test_gravity_shapes_and_masses():
    data = simulate.simulate_gravity(8, seed=0)
    assert data["masses"].shape == (8, 4)
    for key in ("loc", "vel", "loc_final", "vel_final"):
        assert data[key].shape == (8, 4, 3) and data[key].dtype == np.float64
    assert data["trajectory"].shape == (8, 101, 4, 3)
    np.testing.assert_array_equal(data["trajectory"][:, 0], data["loc"])
    np.testing.assert_array_equal(data["trajectory"][:, -1], data["loc_final"])
    masses = np.sort(data["masses"], axis=1)
    assert ((masses[:, -1] >= 1.0) & (masses[:, -1] <= 10.0)).all()
    assert ((masses[:, :-1] >= 0.01) & (masses[:, :-1] <= 0.1)).all()
    # the star is not always the first body (random permutation)
    assert len(set(np.argmax(data["masses"], axis=1))) > 1


def test_gravity_momentum_conserved():
    data = simulate.simulate_gravity(32, seed=1)
    m = data["masses"][..., None]
    p0 = (m * data["vel"]).sum(axis=1)
    p1 = (m * data["vel_final"]).sum(axis=1)
    scale = np.abs(m * data["vel"]).sum(axis=(1, 2))[:, None]
    assert (np.abs(p1 - p0) / scale).max() < 1e-10


def test_gravity_matches_direct_reintegration():
    data = simulate.simulate_gravity(4, seed=2)
    m, x, v = data["masses"][1], data["loc"][1].copy(), data["vel"][1].copy()
    n = m.shape[0]
    for _ in range(100):
        a = np.zeros_like(x)
        for i in range(n):
            for j in range(n):
                if i != j:
                    r = x[j] - x[i]
                    a[i] += m[j] * r / np.linalg.norm(r) ** 3
        v = v + 0.001 * a
        x = x + 0.001 * v
    np.testing.assert_allclose(data["loc_final"][1], x, rtol=0, atol=1e-10)


def test_gravity_initial_orbits_are_circular_before_transform():
    """Undo the translation by the star; speeds are sqrt(M / r) up to the 0.01 noise."""
    data = simulate.simulate_gravity(16, seed=3)
    star = np.argmax(data["masses"], axis=1)
    idx = np.arange(16)
    rel_x = data["loc"] - data["loc"][idx, star][:, None]
    rel_v = data["vel"] - data["vel"][idx, star][:, None]
    np.testing.assert_allclose(data["vel"][idx, star], 0.0)
    planets = np.ones((16, 4), dtype=bool)
    planets[idx, star] = False
    r = np.linalg.norm(rel_x, axis=-1)[planets]
    speed = np.linalg.norm(rel_v, axis=-1)[planets]
    star_mass = np.repeat(data["masses"][idx, star], 3)
    assert ((r >= 0.1 - 1e-9) & (r <= 1.0 + 1e-9)).all()
    assert np.abs(speed - np.sqrt(star_mass / r)).max() < 0.06  # |noise| < ~5 sigma * sqrt(3)
    # All bodies of a system lie in one plane through the star (the rotated x-y plane).
    normal = np.cross(rel_x[planets].reshape(16, 3, 3)[:, 0], rel_x[planets].reshape(16, 3, 3)[:, 1])
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    assert np.abs(np.einsum("bk,bnk->bn", normal, rel_x[planets].reshape(16, 3, 3))).max() < 1e-12


def test_random_rotations_are_haar_so3():
    rot = simulate.random_rotations(2000, np.random.default_rng(0))
    assert rot.shape == (2000, 3, 3)
    assert np.abs(rot @ rot.transpose(0, 2, 1) - np.eye(3)).max() < 1e-12
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-12)
    assert np.abs(rot.mean(axis=0)).max() < 0.06  # E[R] = 0 under the Haar measure on SO(3)


def test_gravity_outliers_removed_and_resampled(monkeypatch):
    data = simulate.simulate_gravity(64, seed=4)
    disp = np.linalg.norm(data["loc_final"] - data["loc"], axis=-1)
    assert disp.max() <= 2.0
    # A strict threshold rejects many candidates: it must sample more, never return fewer.
    monkeypatch.setitem(simulate.GRAVITY, "outlier_threshold", 0.3)
    data = simulate.simulate_gravity(40, seed=4)
    assert data["loc"].shape[0] == 40
    assert np.linalg.norm(data["loc_final"] - data["loc"], axis=-1).max() <= 0.3


def test_gravity_shift_and_planets5():
    base = simulate.simulate_gravity(200, seed=6)
    shifted = simulate.simulate_gravity(200, seed=6, ood_shift=True)
    diff = shifted["loc"][..., 0].mean() - base["loc"][..., 0].mean()
    assert abs(diff - 200.0) < 10.0
    assert abs(shifted["loc"][..., 1].mean() - base["loc"][..., 1].mean()) < 10.0
    five = simulate.simulate_gravity(4, seed=6, num_planets=5)
    assert five["masses"].shape == (4, 6) and five["trajectory"].shape == (4, 101, 6, 3)


def test_gravity_determinism():
    a = simulate.simulate_gravity(5, seed=9)
    b = simulate.simulate_gravity(5, seed=9)
    c = simulate.simulate_gravity(5, seed=10)
    np.testing.assert_array_equal(a["loc_final"], b["loc_final"])
    assert not np.array_equal(a["loc"], c["loc"])


# ----------------------------------------------------------------------------------------------
# protocol and cache


def test_protocol_is_json_and_complete():
    for task in simulate.TASKS:
        proto = simulate.protocol(task)
        assert json.loads(json.dumps(proto)) == proto
        assert set(proto["splits"]) == set(simulate.SPLITS[task])
    charged = simulate.protocol("charged")
    assert charged["simulator"]["dt"] == 0.001 and charged["simulator"]["max_force"] == 100.0
    assert charged["splits"]["train"]["size"] == 3000
    gravity = simulate.protocol("gravity")
    assert gravity["splits"]["planets5"]["num_planets"] == 5 and gravity["splits"]["shift"]["ood_shift"]
    seeds = [s["seed"] for t in simulate.TASKS for s in simulate.protocol(t)["splits"].values()]
    assert len(set(seeds)) == len(seeds)


@pytest.fixture
def small(monkeypatch):
    """Tiny split sizes, and counters of the simulator calls."""
    monkeypatch.setitem(simulate.SPLIT_SIZES, "charged", {"train": 3, "val": 2, "test": 2})
    monkeypatch.setitem(
        simulate.SPLIT_SIZES, "gravity", {"train": 4, "val": 3, "test": 3, "shift": 3, "planets5": 2}
    )
    calls = {"charged": 0, "gravity": 0}
    sim_charged, sim_gravity = simulate.simulate_charged, simulate.simulate_gravity

    def counting_charged(*args, **kwargs):
        calls["charged"] += 1
        return sim_charged(*args, **kwargs)

    def counting_gravity(*args, **kwargs):
        calls["gravity"] += 1
        return sim_gravity(*args, **kwargs)

    monkeypatch.setattr(simulate, "simulate_charged", counting_charged)
    monkeypatch.setattr(simulate, "simulate_gravity", counting_gravity)
    return calls


def test_load_split_charged_cache(small, tmp_path):
    data = simulate.load_split("charged", "val", tmp_path, progress=False)
    assert small["charged"] == 3  # the whole task on first use
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "charged_test.npz",
        "charged_train.npz",
        "charged_val.npz",
    ]
    assert data["loc"].shape == (2, 5, 3) and data["loc"].dtype == np.float64
    assert data["vel"].shape == (2, 5, 3) and data["target"].shape == (2, 5, 3)
    assert data["attr"].shape == (2, 5) and set(np.unique(data["attr"])) <= {-1.0, 1.0}
    assert data["frames_loc"].shape == (2, 41, 5, 3) and data["frames_loc"].dtype == np.float32
    assert data["frames_vel"].shape == (2, 41, 5, 3) and data["frames_vel"].dtype == np.float32
    np.testing.assert_allclose(data["frames_loc"][:, 30], data["loc"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(data["frames_vel"][:, 30], data["vel"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(data["frames_loc"][:, 40], data["target"], rtol=1e-6, atol=1e-6)
    # the split equals a direct simulation with its seed
    direct = simulate.simulate_charged(2, simulate.SPLIT_SEEDS["charged"]["val"])
    np.testing.assert_array_equal(data["target"], direct["loc"][:, 40])

    with np.load(tmp_path / "charged_val.npz") as z:
        assert json.loads(str(z["protocol"])) == simulate.protocol("charged")

    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    again = simulate.load_split("charged", "train", tmp_path, progress=False)
    assert small["charged"] == 4  # only the direct simulation above, no regeneration
    assert {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == mtimes
    assert again["loc"].shape == (3, 5, 3)


def test_load_split_gravity_cache(small, tmp_path):
    test = simulate.load_split("gravity", "test", tmp_path, progress=False)
    assert small["gravity"] == 5
    assert test["loc"].shape == test["vel"].shape == test["target"].shape == (3, 4, 3)
    assert test["attr"].shape == (3, 4)
    assert set(test) == {"loc", "vel", "attr", "target"}
    five = simulate.load_split("gravity", "planets5", tmp_path, progress=False)
    assert five["loc"].shape == (2, 6, 3)
    shift = simulate.load_split("gravity", "shift", tmp_path, progress=False)
    assert shift["loc"][..., 0].mean() > 100.0
    assert small["gravity"] == 5
    paths = simulate.generate("gravity", tmp_path, progress=False)
    assert [p.name for p in paths] == [f"gravity_{s}.npz" for s in simulate.SPLITS["gravity"]]
    assert small["gravity"] == 5
    simulate.generate("gravity", tmp_path, progress=False, force=True)
    assert small["gravity"] == 10


def test_changed_protocol_regenerates(small, tmp_path, monkeypatch, caplog):
    simulate.load_split("gravity", "val", tmp_path, progress=False)
    assert small["gravity"] == 5
    monkeypatch.setitem(simulate.SPLIT_SIZES["gravity"], "val", 5)
    with caplog.at_level(logging.WARNING, logger=simulate.logger.name):
        data = simulate.load_split("gravity", "val", tmp_path, progress=False)
    assert small["gravity"] == 10  # every split's stored protocol is now stale
    assert data["loc"].shape == (5, 4, 3)
    assert "protocol" in caplog.text
    with np.load(tmp_path / "gravity_train.npz") as z:
        assert json.loads(str(z["protocol"])) == simulate.protocol("gravity")


def test_corrupt_cache_regenerates(small, tmp_path):
    simulate.generate("gravity", tmp_path, progress=False)
    (tmp_path / "gravity_train.npz").write_bytes(b"not a zip file")
    data = simulate.load_split("gravity", "train", tmp_path, progress=False)
    assert small["gravity"] == 6  # only the broken split
    assert data["loc"].shape == (4, 4, 3)


def test_interrupted_write_leaves_no_file(small, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(simulate.np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        simulate.generate("gravity", tmp_path, progress=False)
    assert os.listdir(tmp_path) == []


def test_bad_task_or_split():
    with pytest.raises(ValueError, match="charged, gravity"):
        simulate.load_split("springs", "train")
    with pytest.raises(ValueError, match="train, val, test, shift, planets5"):
        simulate.load_split("gravity", "planets7")
    with pytest.raises(ValueError, match="charged, gravity"):
        simulate.generate("springs")
    with pytest.raises(ValueError, match="charged, gravity"):
        simulate.protocol("springs")
