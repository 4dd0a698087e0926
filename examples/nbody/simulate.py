"""n-body simulators and cached data sets: charged particles (EGNN / NRI) and gravity (GATr).

Two tasks, each a fixed protocol (see :func:`protocol`):

``charged``
    The charged-particle system of NRI (Kipf et al., 2018) in the 3D form used by EGNN
    (Satorras et al., 2021): 5 particles with charges +-1, Coulomb-like pair forces
    ``F_i = sum_{j != i} q_i q_j (x_i - x_j) / |x_i - x_j|^3`` (like charges repel), the total force
    per particle clipped elementwise to +-100, unit masses, symplectic Euler with ``dt = 0.001``, no
    box. A frame is saved every 100 steps; the input is frame 30 (positions, velocities, charges)
    and the target the positions at frame 40.
``gravity``
    The planetary system of GATr (Brehmer et al., 2023): a star and 3 (or 5) planets on
    near-circular orbits, randomly permuted, rotated and translated; 100 Euler steps over a total
    time of 0.1 with ``G = 1``. The input is the initial state (masses, positions, velocities), the
    target the final positions. Two splits test generalisation: ``shift`` (translated by +200 in x)
    and ``planets5`` (5 planets).

Data sets are generated on first use and cached as one ``.npz`` per split (:func:`load_split`);
run ``python -m examples.nbody.simulate --task all`` from the repository root to build them ahead.
Everything here is NumPy (float64) and vectorised over trajectories.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import os
import pathlib
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

logger = logging.getLogger(__name__)

#: Default cache folder, ``<repo root>/data/nbody`` (``data/`` is git-ignored).
DEFAULT_CACHE: pathlib.Path = pathlib.Path(__file__).resolve().parents[2] / "data" / "nbody"

TASKS: tuple[str, ...] = ("charged", "gravity")
SPLITS: dict[str, tuple[str, ...]] = {
    "charged": ("train", "val", "test"),
    "gravity": ("train", "val", "test", "shift", "planets5"),
}

#: Bumped whenever the simulators change in a way that changes the generated data.
PROTOCOL_VERSION = 1

#: Number of samples (trajectories) per split. Part of the protocol; tests monkeypatch it.
SPLIT_SIZES: dict[str, dict[str, int]] = {
    "charged": {"train": 3000, "val": 2000, "test": 2000},
    "gravity": {"train": 1000, "val": 1000, "test": 2000, "shift": 2000, "planets5": 2000},
}

#: Seed of each split's ``np.random.default_rng``. Part of the protocol.
SPLIT_SEEDS: dict[str, dict[str, int]] = {
    "charged": {"train": 1001, "val": 1002, "test": 1003},
    "gravity": {"train": 2001, "val": 2002, "test": 2003, "shift": 2004, "planets5": 2005},
}

#: Parameters of the charged-particle simulator (EGNN / NRI).
CHARGED: dict[str, Any] = {
    "num_particles": 5,
    "dim": 3,
    "charge_values": [-1.0, 1.0],
    "charge_probs": [0.5, 0.5],
    "loc_std": 1.0,
    "vel_norm": 0.5,
    "box_size": None,
    "interaction_strength": 1.0,
    "mass": 1.0,
    "dt": 0.001,
    "max_force": 100.0,  # = 0.1 / dt, as in NRI
    "steps_per_frame": 100,
    "frames": 40,  # frames 0..40 are simulated (4000 steps)
    "input_frame": 30,
    "target_frame": 40,
}

#: Parameters of the gravity simulator (GATr).
GRAVITY: dict[str, Any] = {
    "gravitational_constant": 1.0,
    "star_mass_range": [1.0, 10.0],  # log-uniform
    "planet_mass_range": [0.01, 0.1],  # log-uniform
    "radius_range": [0.1, 1.0],  # uniform in area of the annulus, in the x-y plane
    "vel_noise_std": 0.01,  # per component, planets only
    "shift_std": 20.0,  # per component translation
    "ood_shift": [200.0, 0.0, 0.0],  # extra translation of the "shift" split
    "time": 0.1,
    "steps": 100,
    "dt": 0.001,
    "integrator": "semi-implicit Euler: v += dt a(x); x += dt v",
    "outlier_threshold": 2.0,  # drop samples where a body moves farther than this
    "oversample": 1.1,
}

#: Per-split options of the gravity task.
GRAVITY_SPLITS: dict[str, dict[str, Any]] = {
    "train": {"num_planets": 3, "ood_shift": False},
    "val": {"num_planets": 3, "ood_shift": False},
    "test": {"num_planets": 3, "ood_shift": False},
    "shift": {"num_planets": 3, "ood_shift": True},
    "planets5": {"num_planets": 5, "ood_shift": False},
}


# ----------------------------------------------------------------------------------------------
# protocol, validation


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")


def _check_split(task: str, split: str) -> None:
    _check_task(task)
    if split not in SPLITS[task]:
        raise ValueError(
            f"unknown split {split!r} for task {task!r}; valid splits: {', '.join(SPLITS[task])}"
        )


def protocol(task: str) -> dict[str, Any]:
    """The protocol of a task: every parameter that determines its data, JSON-serialisable.

    Parameters
    ----------
    task : str
        ``"charged"`` or ``"gravity"``.

    Returns
    -------
    dict
        Simulator parameters, split sizes and seeds (and, for gravity, per-split options),
        the input / target definition and :data:`PROTOCOL_VERSION`. Stored in every cache file;
        a cache whose stored protocol differs is regenerated.
    """
    _check_task(task)
    out: dict[str, Any] = {"task": task, "version": PROTOCOL_VERSION}
    splits: dict[str, dict[str, Any]] = {
        s: {"size": int(SPLIT_SIZES[task][s]), "seed": int(SPLIT_SEEDS[task][s])} for s in SPLITS[task]
    }
    if task == "charged":
        out["source"] = "EGNN / NRI charged particles (3D, no box)"
        out["simulator"] = copy.deepcopy(CHARGED)
        out["integrator"] = (
            "symplectic Euler: v += dt F(x0); then per step x += dt v, v += dt F(x); "
            "frame k = (x, v) after 100 k position updates, frame 0 = initial state before the first kick"
        )
        out["input"] = {"loc": "frame 30 positions", "vel": "frame 30 velocities", "attr": "charges"}
        out["target"] = "frame 40 positions"
    else:
        out["source"] = "GATr planetary n-body"
        out["simulator"] = copy.deepcopy(GRAVITY)
        for s in SPLITS[task]:
            splits[s].update(copy.deepcopy(GRAVITY_SPLITS[s]))
        out["input"] = {"loc": "initial positions", "vel": "initial velocities", "attr": "masses"}
        out["target"] = "final positions"
    out["splits"] = splits
    # Round-trip through JSON so that what is returned equals what a cache file stores.
    return json.loads(json.dumps(out))


# ----------------------------------------------------------------------------------------------
# charged particles


def _pair_incidence(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pairs ``i < j`` of ``n`` particles and their incidence matrices.

    Returns
    -------
    i, j : np.ndarray
        ``(P,)`` particle indices of the ``P = n (n - 1) / 2`` pairs.
    diff : np.ndarray
        ``(n, P)`` with ``x @ diff = x_i - x_j`` per pair (``x`` of shape ``(..., n)``).
    scatter : np.ndarray
        ``(P, n)`` with ``f @ scatter`` adding ``+f_p`` to particle ``i`` and ``-f_p`` to ``j``.
    """
    i, j = np.triu_indices(n, k=1)
    diff = np.zeros((n, i.size))
    diff[i, np.arange(i.size)] = 1.0
    diff[j, np.arange(i.size)] = -1.0
    return i, j, diff, np.ascontiguousarray(diff.T)


def _coulomb_kernel(
    xt: np.ndarray, qq: np.ndarray, diff: np.ndarray, scatter: np.ndarray, max_force: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Clipped pair forces in the component-major layout used by the integrator.

    Parameters
    ----------
    xt : np.ndarray
        ``(B, 3, n)`` positions (component-major).
    qq : np.ndarray
        ``(B, P)`` products ``q_i q_j`` of the pairs of :func:`_pair_incidence`.
    diff, scatter : np.ndarray
        ``(n, P)`` and ``(P, n)`` incidence matrices of :func:`_pair_incidence`.
    max_force : float or None
        Elementwise clip of the total force per particle; ``None`` for no clipping.

    Returns
    -------
    forces : np.ndarray
        ``(B, 3, n)`` total force per particle (after clipping).
    clipped : np.ndarray
        ``(B,)`` bool, whether any component was clipped.
    """
    b, d, n = xt.shape
    p = qq.shape[1]
    # (B*3, n) @ (n, P): one small GEMM gives every pair difference x_i - x_j.
    r = (xt.reshape(b * d, n) @ diff).reshape(b, d, p)
    r2 = np.einsum("bkp,bkp->bp", r, r)
    w = qq / (r2 * np.sqrt(r2))
    r *= w[:, None, :]
    forces = (r.reshape(b * d, p) @ scatter).reshape(b, d, n)
    if max_force is None:
        return forces, np.zeros(b, dtype=bool)
    clipped = np.abs(forces).max(axis=(1, 2)) > max_force
    np.clip(forces, -max_force, max_force, out=forces)
    return forces, clipped


def _pair_charges(charges: np.ndarray, i: np.ndarray, j: np.ndarray, strength: float) -> np.ndarray:
    return strength * charges[:, i] * charges[:, j]


def charged_forces(
    loc: np.ndarray, charges: np.ndarray, max_force: float | None = CHARGED["max_force"]
) -> tuple[np.ndarray, np.ndarray]:
    """Coulomb-like forces of the charged task, clipped like NRI.

    ``F_i = sum_{j != i} q_i q_j (x_i - x_j) / |x_i - x_j|^3`` (like charges repel), then each
    component of the total ``F_i`` is clipped to ``[-max_force, max_force]``.

    Parameters
    ----------
    loc : np.ndarray
        ``(B, n, 3)`` positions.
    charges : np.ndarray
        ``(B, n)`` charges.
    max_force : float or None
        Clip value (default 100 = 0.1 / dt); ``None`` disables clipping.

    Returns
    -------
    forces : np.ndarray
        ``(B, n, 3)`` float64 forces.
    clipped : np.ndarray
        ``(B,)`` bool, whether clipping changed any component.
    """
    loc = np.asarray(loc, dtype=np.float64)
    charges = np.asarray(charges, dtype=np.float64)
    i, j, diff, scatter = _pair_incidence(loc.shape[1])
    qq = _pair_charges(charges, i, j, CHARGED["interaction_strength"])
    xt = np.ascontiguousarray(loc.transpose(0, 2, 1))
    forces, clipped = _coulomb_kernel(xt, qq, diff, scatter, max_force)
    return np.ascontiguousarray(forces.transpose(0, 2, 1)), clipped


def charged_step(
    loc: np.ndarray,
    vel: np.ndarray,
    charges: np.ndarray,
    dt: float = CHARGED["dt"],
    max_force: float | None = CHARGED["max_force"],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step of the charged integrator: ``x += dt v``, then ``v += dt F(x)`` (unit masses).

    ``vel`` must already hold the kick of the previous force (see :func:`integrate_charged`).
    The inputs are not modified.

    Parameters
    ----------
    loc, vel : np.ndarray
        ``(B, n, 3)`` positions and velocities.
    charges : np.ndarray
        ``(B, n)`` charges.
    dt : float
        Time step.
    max_force : float or None
        Force clip (``None``: no clipping).

    Returns
    -------
    loc, vel : np.ndarray
        ``(B, n, 3)`` the new state.
    clipped : np.ndarray
        ``(B,)`` bool, whether the force was clipped in this step.
    """
    loc = np.asarray(loc, dtype=np.float64) + dt * np.asarray(vel, dtype=np.float64)
    forces, clipped = charged_forces(loc, charges, max_force)
    return loc, np.asarray(vel, dtype=np.float64) + dt * forces, clipped


def integrate_charged(
    loc: np.ndarray,
    vel: np.ndarray,
    charges: np.ndarray,
    *,
    steps: int,
    save_every: int = CHARGED["steps_per_frame"],
    dt: float = CHARGED["dt"],
    max_force: float | None = CHARGED["max_force"],
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Integrate charged-particle systems from given initial states (vectorised over ``B``).

    The scheme is NRI's symplectic Euler: ``F = F(x_0)``, ``v += dt F``; then ``steps`` times
    ``x += dt v``, ``F = F(x)``, ``v += dt F``. Frame ``k`` is the state right after position update
    ``k * save_every`` (before that step's kick): its velocity is the one that carried the particles
    to its positions, i.e. it has received ``k * save_every`` kicks. Frame 0 is the initial state
    with the initial (unkicked) velocity.

    Parameters
    ----------
    loc, vel : np.ndarray
        ``(B, n, 3)`` initial positions and velocities.
    charges : np.ndarray
        ``(B, n)`` charges.
    steps : int
        Number of position updates; a multiple of ``save_every``.
    save_every : int
        Steps between saved frames.
    dt : float
        Time step.
    max_force : float or None
        Elementwise clip of the total force (``None``: no clipping).
    progress : bool
        Show a tqdm bar over the steps (on a terminal only).

    Returns
    -------
    dict
        ``"loc"``, ``"vel"``: ``(B, steps // save_every + 1, n, 3)`` float64 frames;
        ``"clipped"``: ``(B,)`` bool, whether the force clip ever triggered (the initial force
        included; the force after the last saved position is not computed).
    """
    if steps % save_every:
        raise ValueError(f"steps ({steps}) must be a multiple of save_every ({save_every})")
    loc = np.asarray(loc, dtype=np.float64)
    vel = np.asarray(vel, dtype=np.float64)
    charges = np.asarray(charges, dtype=np.float64)
    b, n, d = loc.shape
    num_frames = steps // save_every + 1
    frames_loc = np.empty((b, num_frames, n, d))
    frames_vel = np.empty((b, num_frames, n, d))
    frames_loc[:, 0], frames_vel[:, 0] = loc, vel

    i, j, diff, scatter = _pair_incidence(n)
    qq = _pair_charges(charges, i, j, CHARGED["interaction_strength"])
    x = np.ascontiguousarray(loc.transpose(0, 2, 1))  # (B, 3, n): component-major for the GEMMs
    v = np.ascontiguousarray(vel.transpose(0, 2, 1))
    forces, clipped = _coulomb_kernel(x, qq, diff, scatter, max_force)
    v += dt * forces
    # a bar on a terminal only: a log file (`make demo > log`) gets the plain "generating" lines
    show = progress and sys.stderr.isatty()
    for step in tqdm(range(1, steps + 1), desc="charged", unit="step", disable=not show):
        x += dt * v
        if step % save_every == 0:
            k = step // save_every
            frames_loc[:, k] = x.transpose(0, 2, 1)
            frames_vel[:, k] = v.transpose(0, 2, 1)
            if step == steps:
                break
        forces, c = _coulomb_kernel(x, qq, diff, scatter, max_force)
        clipped |= c
        v += dt * forces
    return {"loc": frames_loc, "vel": frames_vel, "clipped": clipped}


def simulate_charged(
    num: int, seed: int, *, frames: int = 40, progress: bool = False
) -> dict[str, np.ndarray]:
    """Sample and simulate ``num`` charged-particle systems (EGNN / NRI protocol).

    Charges are +-1 with probability 1/2 each; positions ``N(0, loc_std^2)`` per component;
    velocities a standard normal 3-vector rescaled to norm ``vel_norm`` (0.5) per particle.

    Parameters
    ----------
    num : int
        Number of trajectories.
    seed : int
        Seed of ``np.random.default_rng``.
    frames : int
        Last frame to simulate (``frames * 100`` steps).
    progress : bool
        Show a tqdm bar over the steps.

    Returns
    -------
    dict
        ``"loc"``, ``"vel"``: ``(num, frames + 1, 5, 3)`` float64 (see :func:`integrate_charged` for
        what a frame holds); ``"charges"``: ``(num, 5)`` float64; ``"clipped"``: ``(num,)`` bool,
        whether the force clip ever triggered.
    """
    p = CHARGED
    rng = np.random.default_rng(seed)
    n, d = p["num_particles"], p["dim"]
    charges = rng.choice(np.asarray(p["charge_values"], dtype=np.float64), size=(num, n), p=p["charge_probs"])
    loc = rng.standard_normal((num, n, d)) * p["loc_std"]
    vel = rng.standard_normal((num, n, d))
    vel *= p["vel_norm"] / np.sqrt(np.einsum("bnk,bnk->bn", vel, vel))[..., None]
    out = integrate_charged(
        loc,
        vel,
        charges,
        steps=frames * p["steps_per_frame"],
        save_every=p["steps_per_frame"],
        dt=p["dt"],
        max_force=p["max_force"],
        progress=progress,
    )
    return {"loc": out["loc"], "vel": out["vel"], "charges": charges, "clipped": out["clipped"]}


# ----------------------------------------------------------------------------------------------
# gravity


def random_rotations(num: int, rng: np.random.Generator) -> np.ndarray:
    """Haar-random rotations in SO(3).

    QR of a standard Gaussian matrix, with the signs of ``R``'s diagonal moved into ``Q`` (Haar on
    O(3)); matrices with determinant -1 get their first column negated, which maps Haar on O(3) to
    Haar on SO(3).

    Parameters
    ----------
    num : int
        Number of rotations.
    rng : np.random.Generator
        Random generator.

    Returns
    -------
    np.ndarray
        ``(num, 3, 3)`` float64 rotation matrices (orthogonal, determinant +1).
    """
    q, r = np.linalg.qr(rng.standard_normal((num, 3, 3)))
    signs = np.sign(np.diagonal(r, axis1=1, axis2=2))
    signs[signs == 0] = 1.0
    q = q * signs[:, None, :]
    q[:, :, 0] *= np.sign(np.linalg.det(q))[:, None]
    return q


def gravity_accelerations(masses: np.ndarray, loc: np.ndarray) -> np.ndarray:
    """Newtonian accelerations ``a_i = G sum_{j != i} m_j (x_j - x_i) / |x_j - x_i|^3``.

    Parameters
    ----------
    masses : np.ndarray
        ``(B, n)`` masses.
    loc : np.ndarray
        ``(B, n, 3)`` positions.

    Returns
    -------
    np.ndarray
        ``(B, n, 3)`` accelerations.
    """
    n = loc.shape[1]
    r = loc[:, None, :, :] - loc[:, :, None, :]  # (B, i, j, 3): x_j - x_i
    r2 = np.einsum("bijk,bijk->bij", r, r) + np.eye(n)  # the diagonal (r = 0) gets weight 0 below
    w = (GRAVITY["gravitational_constant"] * masses[:, None, :] * (1.0 - np.eye(n))) / (r2 * np.sqrt(r2))
    return np.einsum("bij,bijk->bik", w, r)


def integrate_gravity(
    masses: np.ndarray, loc: np.ndarray, vel: np.ndarray, *, steps: int = 100, dt: float = 0.001
) -> tuple[np.ndarray, np.ndarray]:
    """Semi-implicit Euler for gravity: per step ``v += dt a(x)``, then ``x += dt v``.

    Parameters
    ----------
    masses : np.ndarray
        ``(B, n)`` masses.
    loc, vel : np.ndarray
        ``(B, n, 3)`` initial positions and velocities.
    steps : int
        Number of steps.
    dt : float
        Time step.

    Returns
    -------
    trajectory : np.ndarray
        ``(B, steps + 1, n, 3)`` positions, the initial ones first.
    vel_final : np.ndarray
        ``(B, n, 3)`` velocities after the last step.
    """
    x = np.array(loc, dtype=np.float64)
    v = np.array(vel, dtype=np.float64)
    masses = np.asarray(masses, dtype=np.float64)
    traj = np.empty((x.shape[0], steps + 1, *x.shape[1:]))
    traj[:, 0] = x
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for step in range(1, steps + 1):
            v += dt * gravity_accelerations(masses, x)
            x += dt * v
            traj[:, step] = x
    return traj, v


def sample_gravity_initial(
    num: int, rng: np.random.Generator, *, num_planets: int = 3, ood_shift: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Initial conditions of the gravity task (GATr protocol), transformed.

    One star (log-uniform mass in [1, 10]) at rest at the origin; planets (log-uniform masses in
    [0.01, 0.1]) uniform in area on the annulus ``0.1 <= r <= 1`` of the x-y plane, on circular
    orbits ``v = (o x x) sqrt(M) / |x|^1.5`` with ``o = (0, 0, +-1)`` per planet plus ``N(0, 0.01^2)``
    noise per component. Then per sample a random permutation of the bodies, a Haar-random rotation
    and a ``N(0, 20^2)`` translation per component (plus ``(200, 0, 0)`` if ``ood_shift``).

    Parameters
    ----------
    num : int
        Number of samples.
    rng : np.random.Generator
        Random generator.
    num_planets : int
        Planets per system (bodies = planets + 1).
    ood_shift : bool
        Add the out-of-distribution translation.

    Returns
    -------
    masses : np.ndarray
        ``(num, n)``.
    loc, vel : np.ndarray
        ``(num, n, 3)``.
    """
    g = GRAVITY
    star_mass = np.exp(rng.uniform(*np.log(g["star_mass_range"]), size=(num, 1)))
    planet_mass = np.exp(rng.uniform(*np.log(g["planet_mass_range"]), size=(num, num_planets)))
    r_min, r_max = g["radius_range"]
    radius = np.sqrt(rng.uniform(r_min**2, r_max**2, size=(num, num_planets)))
    phi = rng.uniform(0.0, 2.0 * np.pi, size=(num, num_planets))
    orientation = rng.choice(np.array([-1.0, 1.0]), size=(num, num_planets))
    planet_x = np.stack([radius * np.cos(phi), radius * np.sin(phi), np.zeros_like(phi)], axis=-1)
    # (0, 0, o) x (x, y, 0) = (-o y, o x, 0); |that| = r, so speed = sqrt(M / r).
    tangent = np.stack(
        [-orientation * planet_x[..., 1], orientation * planet_x[..., 0], np.zeros_like(phi)], axis=-1
    )
    planet_v = tangent * (np.sqrt(star_mass) / radius**1.5)[..., None]
    planet_v += g["vel_noise_std"] * rng.standard_normal(planet_v.shape)

    masses = np.concatenate([star_mass, planet_mass], axis=1)
    loc = np.concatenate([np.zeros((num, 1, 3)), planet_x], axis=1)
    vel = np.concatenate([np.zeros((num, 1, 3)), planet_v], axis=1)

    perm = np.argsort(rng.random(masses.shape), axis=1)
    masses = np.take_along_axis(masses, perm, axis=1)
    loc = np.take_along_axis(loc, perm[..., None], axis=1)
    vel = np.take_along_axis(vel, perm[..., None], axis=1)

    rot = random_rotations(num, rng)
    loc = np.einsum("bij,bnj->bni", rot, loc)
    vel = np.einsum("bij,bnj->bni", rot, vel)
    shift = g["shift_std"] * rng.standard_normal((num, 1, 3))
    if ood_shift:
        shift = shift + np.asarray(g["ood_shift"], dtype=np.float64)
    return masses, loc + shift, vel


def simulate_gravity(
    num: int, seed: int, *, num_planets: int = 3, ood_shift: bool = False
) -> dict[str, np.ndarray]:
    """Sample, simulate and filter ``num`` gravity systems (GATr protocol).

    Samples ``1.1 num`` candidates (:func:`sample_gravity_initial`), integrates 100 Euler steps
    (:func:`integrate_gravity`), drops samples in which any body moves farther than 2.0 between its
    initial and final position (or that became non-finite), and keeps the first ``num``; if fewer
    remain, it samples more (from the same generator) until there are enough.

    Parameters
    ----------
    num : int
        Number of samples.
    seed : int
        Seed of ``np.random.default_rng``.
    num_planets : int
        Planets per system.
    ood_shift : bool
        Translate by ``(200, 0, 0)`` in addition (the ``shift`` split).

    Returns
    -------
    dict
        ``"masses"``: ``(num, n)``; ``"loc"``, ``"vel"``: ``(num, n, 3)`` initial state;
        ``"loc_final"``, ``"vel_final"``: ``(num, n, 3)`` final state;
        ``"trajectory"``: ``(num, steps + 1, n, 3)`` positions (101 frames), all float64.
    """
    g = GRAVITY
    rng = np.random.default_rng(seed)
    parts: list[dict[str, np.ndarray]] = []
    have = 0
    for _ in range(1000):
        if have >= num:
            break
        candidates = max(round(g["oversample"] * (num - have)), 1)
        masses, loc, vel = sample_gravity_initial(
            candidates, rng, num_planets=num_planets, ood_shift=ood_shift
        )
        traj, vel_final = integrate_gravity(masses, loc, vel, steps=g["steps"], dt=g["dt"])
        disp = np.sqrt(np.einsum("bnk,bnk->bn", traj[:, -1] - loc, traj[:, -1] - loc))
        keep = np.all(disp <= g["outlier_threshold"], axis=1)  # NaN compares False: dropped too
        parts.append({"masses": masses, "loc": loc, "vel": vel, "vel_final": vel_final, "trajectory": traj})
        parts[-1] = {k: v[keep] for k, v in parts[-1].items()}
        have += int(keep.sum())
    else:
        raise RuntimeError(f"could not sample {num} gravity systems without outliers (got {have})")
    out = {
        k: np.concatenate([p[k] for p in parts], axis=0)[:num]
        for k in ("masses", "loc", "vel", "vel_final", "trajectory")
    }
    out["loc_final"] = np.ascontiguousarray(out["trajectory"][:, -1])
    return out


# ----------------------------------------------------------------------------------------------
# cache


def _cache_path(task: str, split: str, cache_dir: str | os.PathLike | None) -> pathlib.Path:
    root = DEFAULT_CACHE if cache_dir is None else pathlib.Path(cache_dir)
    return root / f"{task}_{split}.npz"


def _protocol_json(task: str) -> str:
    return json.dumps(protocol(task), sort_keys=True)


def _stale_reason(path: pathlib.Path, task: str) -> str | None:
    """Why the cache file must be (re)generated, or ``None`` if it is up to date."""
    if not path.exists():
        return "missing"
    try:
        with np.load(path) as z:
            stored = json.loads(str(z["protocol"][()]))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as err:
        return f"unreadable ({type(err).__name__}: {err})"
    if stored != protocol(task):
        return "stored protocol differs from protocol(task)"
    return None


def _write_npz(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically (temp file in the same folder + ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        umask = os.umask(0)  # mkstemp creates 0600; give the file the usual permissions
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _make_split(task: str, split: str, progress: bool) -> dict[str, np.ndarray]:
    """Simulate one split and return the arrays stored in its cache file."""
    proto = protocol(task)
    cfg = proto["splits"][split]
    if task == "charged":
        sim = proto["simulator"]
        data = simulate_charged(cfg["size"], cfg["seed"], frames=sim["frames"], progress=progress)
        inp, tgt = sim["input_frame"], sim["target_frame"]
        arrays = {
            "loc": data["loc"][:, inp],
            "vel": data["vel"][:, inp],
            "attr": data["charges"],
            "target": data["loc"][:, tgt],
            "frames_loc": data["loc"].astype(np.float32),
            "frames_vel": data["vel"].astype(np.float32),
        }
    else:
        data = simulate_gravity(
            cfg["size"], cfg["seed"], num_planets=cfg["num_planets"], ood_shift=cfg["ood_shift"]
        )
        arrays = {"loc": data["loc"], "vel": data["vel"], "attr": data["masses"], "target": data["loc_final"]}
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    arrays["protocol"] = np.array(_protocol_json(task))
    return arrays


def _ensure(
    task: str, cache_dir: str | os.PathLike | None, *, progress: bool, force: bool
) -> dict[str, tuple[pathlib.Path, str]]:
    """Make every split of ``task`` present and current; ``split -> (path, "written" | "cached")``."""
    _check_task(task)
    status: dict[str, tuple[pathlib.Path, str]] = {}
    for split in SPLITS[task]:
        path = _cache_path(task, split, cache_dir)
        reason = "forced" if force else _stale_reason(path, task)
        if reason is None:
            status[split] = (path, "cached")
            continue
        level = logging.INFO if reason in ("missing", "forced") else logging.WARNING
        logger.log(level, "generating %s/%s (%s) -> %s", task, split, reason, path)
        _write_npz(path, _make_split(task, split, progress))
        status[split] = (path, "written")
    return status


def generate(
    task: str, cache_dir: str | os.PathLike | None = None, *, progress: bool = True, force: bool = False
) -> list[pathlib.Path]:
    """Generate and cache every split of ``task`` (those missing or stale; all if ``force``).

    Parameters
    ----------
    task : str
        ``"charged"`` or ``"gravity"``.
    cache_dir : str or os.PathLike, optional
        Cache folder (default :data:`DEFAULT_CACHE`).
    progress : bool
        Show tqdm bars while simulating.
    force : bool
        Regenerate even if the cache is current.

    Returns
    -------
    list of pathlib.Path
        The cache file of every split, in :data:`SPLITS` order.
    """
    return [path for path, _ in _ensure(task, cache_dir, progress=progress, force=force).values()]


def load_split(
    task: str, split: str, cache_dir: str | os.PathLike | None = None, *, progress: bool = True
) -> dict[str, np.ndarray]:
    """Load one split, generating the task's cache on first use (or when its protocol changed).

    Parameters
    ----------
    task : str
        ``"charged"`` or ``"gravity"``.
    split : str
        One of ``SPLITS[task]``.
    cache_dir : str or os.PathLike, optional
        Cache folder (default :data:`DEFAULT_CACHE`); files are ``{cache_dir}/{task}_{split}.npz``.
    progress : bool
        Show tqdm bars if it has to simulate.

    Returns
    -------
    dict
        float64 arrays ``"loc"``: ``(B, N, 3)`` input positions; ``"vel"``: ``(B, N, 3)`` input
        velocities; ``"attr"``: ``(B, N)`` charges (charged) or masses (gravity); ``"target"``:
        ``(B, N, 3)`` target positions. For ``charged`` also ``"frames_loc"``, ``"frames_vel"``:
        ``(B, 41, 5, 3)`` float32, every saved frame (for plots).

    Raises
    ------
    ValueError
        Unknown task or split (the message names the valid ones).
    """
    _check_split(task, split)
    path = _cache_path(task, split, cache_dir)
    if _stale_reason(path, task) is not None:
        _ensure(task, cache_dir, progress=progress, force=False)
    with np.load(path) as z:
        return {k: z[k] for k in z.files if k != "protocol"}


# ----------------------------------------------------------------------------------------------
# CLI


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: generate the cached data sets and summarise them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=(*TASKS, "all"), default="all")
    parser.add_argument("--cache-dir", default=None, help=f"cache folder (default {DEFAULT_CACHE})")
    parser.add_argument("--force", action="store_true", help="regenerate even if the cache is current")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    tasks = TASKS if args.task == "all" else (args.task,)
    for task in tasks:
        start = time.perf_counter()
        status = _ensure(task, args.cache_dir, progress=not args.no_progress, force=args.force)
        elapsed = time.perf_counter() - start
        written = [s for s, (_, st) in status.items() if st == "written"]
        print(f"{task}: wrote {len(written)} of {len(status)} splits in {elapsed:.1f} s")
        for split, (path, st) in status.items():
            data = load_split(task, split, args.cache_dir, progress=False)
            moved = np.sqrt(((data["target"] - data["loc"]) ** 2).sum(-1)).mean()
            print(
                f"  {split:9s} {st:7s} {path}  count {data['loc'].shape[0]:5d}  "
                f"bodies {data['loc'].shape[1]}  mean |target - loc| {moved:.4f}"
            )


if __name__ == "__main__":
    main()
