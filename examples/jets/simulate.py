r"""A toy Monte-Carlo generator of boosted top jets and QCD-like jets, with a cached data set.

**This is a toy model, not the public top-tagging data set** (Kasieczka et al. 2019, which
cannot be downloaded here): it has no hadronisation, no underlying event, no detector, no
jet clustering, and a splitting model that is only QCD-*like*. It is physics-plausible
enough to give jets whose substructure separates top from light-parton jets the way real
ones do (a three-prong mass of about :math:`m_t` with a two-prong sub-mass near
:math:`m_W`, against a single prong with a falling mass spectrum), and it is exact where
a Lorentz-equivariant model cares: every constituent is a massless four-momentum and every
splitting and decay conserves four-momentum exactly.

The model (all energies in GeV, four-momenta ``(E, px, py, pz)``, metric ``(+, -, -, -)``):

*Jet kinematics.* A jet's parent has transverse momentum uniform in ``PT_RANGE``
(550-650 GeV), pseudorapidity uniform in ``|eta| < 2`` and azimuth uniform; given its mass
:math:`M` its four-momentum is :math:`(\sqrt{p^2 + M^2}, p_T\cos\phi, p_T\sin\phi, p_T\sinh\eta)`.

*Signal.* A top quark of mass :math:`M` drawn from a Breit-Wigner around
:math:`m_t = 173` GeV (width 1.42 GeV, truncated at 5 widths) decays isotropically in its
rest frame, :math:`t \to b W`; the W (Breit-Wigner around :math:`m_W = 80.4` GeV, width
2.085 GeV) decays isotropically in its rest frame, :math:`W \to q \bar q'`. The three quarks
start off-shell, with a virtuality (mass) drawn from a log-normal around
``DECAY_VIRTUALITY`` times the decaying particle's mass (capped so that the decays stay
possible), and each quark then showers as below. Decays with a quark further than
``JET_RADIUS`` = 0.8 in :math:`\Delta R` from the top are redrawn (the public data set also
keeps only top jets that contain their decay partons).

*Background.* A light quark or gluon jet: one parton of mass :math:`M` drawn from a
log-normal (median ``QCD_MASS_MEDIAN`` = 70 GeV, log-width 0.55, between 5 GeV and
``0.8 p_T``), which then showers. So the background mass spectrum overlaps the top mass
(a few per cent of QCD jets are heavier than 150 GeV), as for real jets.

*Shower.* A virtuality-ordered :math:`1 \to 2` cascade. A parton of mass :math:`m` above
the cut-off ``M_CUT`` (1.5 GeV) splits into two daughters of masses
:math:`m_i = m\,u_i^{1/(2\kappa)}` (:math:`u_i` uniform, :math:`\kappa` = ``KAPPA``, so
:math:`P(m_i < x m) = x^{2\kappa}`: virtualities fall, log-uniformly for
:math:`\kappa \to 0`), scaled down together if :math:`m_1 + m_2 > 0.95\,m`; daughters below
the cut-off are set massless and stop. The momentum fraction :math:`z = E_1 / E` is drawn
from the soft-enhanced :math:`dz / (z (1 - z))` on the range that the two-body kinematics
allow, cut to ``Z_MIN`` :math:`\le z \le 1 -` ``Z_MIN`` (0.05, which bounds the emission
angles so the jets stay collimated, like a jet radius) where the kinematics allow, the
azimuth about the parent's direction uniformly; the decay is then built exactly
in the parent's rest frame (helicity frame) and boosted back, so
:math:`p_1 + p_2 = p_{\text{parent}}`. Boosted parents give collinear daughters at angles
:math:`\theta \sim m / (E \sqrt{z (1 - z)})`.

*Constituents.* All final (massless) partons of a jet, sorted by :math:`p_T`, the first
``MAX_CONSTITUENTS`` (50) kept, zero-padded; ``mask`` marks the real ones. Truncation drops
only the softest partons, so a signal jet's mass stays near :math:`m_t`.

Splits (each with its own seed; the cached ``.npz`` files store the protocol and are
regenerated when it changes): ``train``, ``val``, ``test``, and two transformed copies of
``test``: ``boosted`` (each jet boosted along the beam axis z with a rapidity uniform in
[-1, 1] and rotated about z by a uniform angle: the symmetry of a collider, which a model
with the xy-plane spurion keeps exactly) and ``lorentz`` (a uniform random rotation, then a
boost of rapidity uniform in [0, 1] along a uniform random direction: a general Lorentz
transformation that the beam spurions are meant to break).

Everything is NumPy, float64 and vectorised over jets; run
``python -m examples.jets.simulate`` from the repository root to build the cache ahead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import pathlib
import tempfile
import time
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: Default cache folder, ``<repo root>/data/jets`` (``data/`` is git-ignored).
DEFAULT_CACHE: pathlib.Path = pathlib.Path(__file__).resolve().parents[2] / "data" / "jets"

#: Bumped whenever the generator changes in a way that changes the generated data.
PROTOCOL_VERSION = 1

M_TOP, WIDTH_TOP = 173.0, 1.42
M_W, WIDTH_W = 80.4, 2.085
PT_RANGE = (550.0, 650.0)
ETA_MAX = 2.0
MAX_CONSTITUENTS = 50
M_CUT = 1.5
KAPPA = 0.6
Z_MIN = 0.05
JET_RADIUS = 0.8
QCD_MASS_MEDIAN, QCD_MASS_SIGMA, QCD_MASS_MIN, QCD_MASS_MAX_FRACTION = 70.0, 0.55, 5.0, 0.8
DECAY_VIRTUALITY, DECAY_VIRTUALITY_SIGMA = 0.15, 0.5
BOOST_RAPIDITY = 1.0

SPLITS: tuple[str, ...] = ("train", "val", "test", "boosted", "lorentz")
#: Jets per split (half signal, half background, shuffled). ``boosted`` and ``lorentz`` are
#: transformed copies of ``test``. Part of the protocol; tests monkeypatch it.
SPLIT_SIZES: dict[str, int] = {"train": 40000, "val": 5000, "test": 10000}
#: Seed of each split's ``np.random.default_rng``. Part of the protocol.
SPLIT_SEEDS: dict[str, int] = {"train": 3001, "val": 3002, "test": 3003, "boosted": 3004, "lorentz": 3005}


def protocol() -> dict[str, Any]:
    """Everything that defines the data set; stored in every cache file (a change regenerates it)."""
    proto = {
        "version": PROTOCOL_VERSION,
        "m_top": M_TOP,
        "width_top": WIDTH_TOP,
        "m_w": M_W,
        "width_w": WIDTH_W,
        "pt_range": list(PT_RANGE),
        "eta_max": ETA_MAX,
        "max_constituents": MAX_CONSTITUENTS,
        "m_cut": M_CUT,
        "kappa": KAPPA,
        "z_min": Z_MIN,
        "jet_radius": JET_RADIUS,
        "qcd_mass": [QCD_MASS_MEDIAN, QCD_MASS_SIGMA, QCD_MASS_MIN, QCD_MASS_MAX_FRACTION],
        "decay_virtuality": [DECAY_VIRTUALITY, DECAY_VIRTUALITY_SIGMA],
        "boost_rapidity": BOOST_RAPIDITY,
        "sizes": dict(SPLIT_SIZES),
        "seeds": dict(SPLIT_SEEDS),
    }
    return json.loads(json.dumps(proto))


# ----------------------------------------------------------------------------------------------
# four-vector helpers (numpy, (..., 4) arrays, time first)


def minkowski_square(p: np.ndarray) -> np.ndarray:
    """:math:`p^2 = E^2 - |\\vec p|^2` of ``(..., 4)`` four-vectors, shape ``(...)``."""
    return p[..., 0] ** 2 - (p[..., 1:] ** 2).sum(-1)


def invariant_mass(p: np.ndarray) -> np.ndarray:
    """:math:`\\sqrt{\\max(p^2, 0)}` of ``(..., 4)`` four-vectors (sum constituents first for a jet)."""
    return np.sqrt(np.maximum(minkowski_square(p), 0.0))


def transverse_momentum(p: np.ndarray) -> np.ndarray:
    """:math:`p_T = \\sqrt{p_x^2 + p_y^2}`, shape ``(...)``."""
    return np.hypot(p[..., 1], p[..., 2])


def boost(p: np.ndarray, beta: np.ndarray) -> np.ndarray:
    r"""The pure boost of velocity ``beta`` (``(..., 3)``, :math:`|\beta| < 1`) applied to ``p``.

    A particle at rest goes to velocity :math:`\beta`:
    :math:`E' = \gamma (E + \beta\cdot\vec p)`,
    :math:`\vec p\,' = \vec p + \left(\frac{\gamma - 1}{\beta^2}\beta\cdot\vec p + \gamma E\right)\beta`.
    """
    b2 = (beta**2).sum(-1, keepdims=True)
    if np.any(b2 >= 1.0):
        raise ValueError("boost: every |beta| must be < 1")
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = (beta * p[..., 1:]).sum(-1, keepdims=True)
    coef = np.where(b2 > 0, (gamma - 1.0) / np.where(b2 > 0, b2, 1.0), 0.0) * bp + gamma * p[..., :1]
    return np.concatenate([gamma * (p[..., :1] + bp), p[..., 1:] + coef * beta], axis=-1)


def lorentz_matrix_z(rapidity: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """``(..., 4, 4)`` matrices: a rotation by ``angle`` about z, then a boost of ``rapidity`` along z."""
    ch, sh, c, s = np.cosh(rapidity), np.sinh(rapidity), np.cos(angle), np.sin(angle)
    m = np.zeros((*np.shape(rapidity), 4, 4))
    m[..., 0, 0], m[..., 0, 3], m[..., 3, 0], m[..., 3, 3] = ch, sh, sh, ch
    m[..., 1, 1], m[..., 1, 2], m[..., 2, 1], m[..., 2, 2] = c, -s, s, c
    return m


def random_rotations(num: int, rng: np.random.Generator) -> np.ndarray:
    """``(num, 3, 3)`` rotation matrices, uniform on SO(3) (from unit quaternions)."""
    q = rng.normal(size=(num, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def random_lorentz_matrices(num: int, rng: np.random.Generator, kind: str) -> np.ndarray:
    """``(num, 4, 4)`` proper orthochronous Lorentz matrices ``L`` (``L^T eta L = eta``).

    ``kind="boosted"``: rotation about z by a uniform angle, then a boost along z with a
    rapidity uniform in ``[-BOOST_RAPIDITY, BOOST_RAPIDITY]``. ``kind="lorentz"``: a uniform
    rotation, then a boost of rapidity uniform in ``[0, BOOST_RAPIDITY]`` along a uniform
    direction.
    """
    if kind == "boosted":
        return lorentz_matrix_z(
            rng.uniform(-BOOST_RAPIDITY, BOOST_RAPIDITY, num), rng.uniform(0.0, 2 * np.pi, num)
        )
    if kind != "lorentz":
        raise ValueError(f"random_lorentz_matrices: kind must be 'boosted' or 'lorentz', got {kind!r}")
    rot = np.zeros((num, 4, 4))
    rot[:, 0, 0] = 1.0
    rot[:, 1:, 1:] = random_rotations(num, rng)
    n = rng.normal(size=(num, 3))
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    y = rng.uniform(0.0, BOOST_RAPIDITY, num)
    ch, sh = np.cosh(y), np.sinh(y)
    bst = np.zeros((num, 4, 4))
    bst[:, 0, 0] = ch
    bst[:, 0, 1:] = bst[:, 1:, 0] = sh[:, None] * n
    bst[:, 1:, 1:] = np.eye(3) + (ch - 1.0)[:, None, None] * n[:, :, None] * n[:, None, :]
    return bst @ rot


def transform_jets(momenta: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Apply one ``(4, 4)`` Lorentz matrix per jet: ``(J, N, 4)`` -> ``(J, N, 4)`` (padding stays 0)."""
    return np.einsum("jab,jnb->jna", matrices, momenta)


def _momentum(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, mass: np.ndarray) -> np.ndarray:
    p = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], -1)
    energy = np.sqrt((p**2).sum(-1) + mass**2)
    return np.concatenate([energy[:, None], p], -1)


def _breit_wigner(mass: float, width: float, n: int, rng: np.random.Generator) -> np.ndarray:
    lo, hi = 0.5 + np.arctan(-10.0) / np.pi, 0.5 + np.arctan(10.0) / np.pi  # +- 5 widths
    return mass + 0.5 * width * np.tan(np.pi * (rng.uniform(lo, hi, n) - 0.5))


def _lognormal(median: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return median * np.exp(sigma * rng.normal(size=np.shape(median)))


# ----------------------------------------------------------------------------------------------
# two-body decays and the shower


def _frame(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors ``(n, u, v)``: ``n`` along ``direction``, ``u, v`` completing a right-handed frame."""
    n = direction / np.linalg.norm(direction, axis=-1, keepdims=True)
    helper = np.where(np.abs(n[:, 2:3]) < 0.9, np.array([[0.0, 0.0, 1.0]]), np.array([[1.0, 0.0, 0.0]]))
    u = np.cross(helper, n)
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    return n, u, np.cross(n, u)


def two_body_decay(
    parent: np.ndarray,
    mass: np.ndarray,
    m1: np.ndarray,
    m2: np.ndarray,
    cos_theta: np.ndarray,
    phi: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Decay ``parent`` (``(K, 4)``, masses ``mass``) into masses ``m1, m2``, exactly.

    In the parent's rest frame daughter 1 has momentum
    :math:`k^* = \sqrt{\lambda(M^2, m_1^2, m_2^2)} / (2M)` at polar angle
    :math:`\theta^*` (``cos_theta``) to the parent's flight direction and azimuth ``phi``
    (helicity frame); it is boosted to the lab and daughter 2 is ``parent - p1``, so
    four-momentum is conserved to rounding. Uniform ``cos_theta`` and ``phi`` give an
    isotropic decay. Requires ``m1 + m2 <= mass`` and a moving parent.

    Returns
    -------
    p1, p2 : ndarray, shape (K, 4)
    """
    if np.any(m1 + m2 > mass * (1 + 1e-12)):
        raise ValueError("two_body_decay: needs m1 + m2 <= mass")
    lam = np.maximum((mass**2 - (m1 + m2) ** 2) * (mass**2 - (m1 - m2) ** 2), 0.0)
    k = np.sqrt(lam) / (2.0 * mass)
    e1 = np.sqrt(k**2 + m1**2)
    sin_theta = np.sqrt(np.maximum(1.0 - cos_theta**2, 0.0))
    n, u, v = _frame(parent[:, 1:])
    rest = k[:, None] * (
        cos_theta[:, None] * n + sin_theta[:, None] * (np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * v)
    )
    p1 = boost(np.concatenate([e1[:, None], rest], -1), parent[:, 1:] / parent[:, :1])
    return p1, parent - p1


def _split(
    parent: np.ndarray, mass: np.ndarray, rng: np.random.Generator, m_cut: float, kappa: float, z_min: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One soft-collinear splitting of every parent: daughters ``(p1, p2)`` and their masses."""
    k = len(mass)
    m1 = mass * rng.uniform(size=k) ** (0.5 / kappa)
    m2 = mass * rng.uniform(size=k) ** (0.5 / kappa)
    scale = np.minimum(1.0, 0.95 * mass / (m1 + m2))
    m1, m2 = m1 * scale, m2 * scale
    m1, m2 = np.where(m1 < m_cut, 0.0, m1), np.where(m2 < m_cut, 0.0, m2)
    # the lab energy fraction z = E1 / E that the rest-frame angle allows, and z ~ dz / (z (1 - z))
    energy, pabs = parent[:, 0], np.linalg.norm(parent[:, 1:], axis=-1)
    lam = np.maximum((mass**2 - (m1 + m2) ** 2) * (mass**2 - (m1 - m2) ** 2), 0.0)
    kstar = np.sqrt(lam) / (2.0 * mass)
    e1star = (mass**2 + m1**2 - m2**2) / (2.0 * mass)
    z_lo = (energy * e1star - pabs * kstar) / (mass * energy)
    z_hi = (energy * e1star + pabs * kstar) / (mass * energy)
    # keep z_min <= z <= 1 - z_min where the kinematics allow it (a collinear-safe, angle-limiting cut)
    z_lo, z_hi = (
        np.maximum(z_lo, np.minimum(z_min, 0.5 * (z_lo + z_hi))),
        np.minimum(z_hi, np.maximum(1.0 - z_min, 0.5 * (z_lo + z_hi))),
    )
    z_lo, z_hi = np.clip(z_lo, 1e-12, 1 - 1e-12), np.clip(z_hi, 1e-12, 1 - 1e-12)
    logit_lo, logit_hi = np.log(z_lo / (1 - z_lo)), np.log(z_hi / (1 - z_hi))
    z = 1.0 / (1.0 + np.exp(-(logit_lo + rng.uniform(size=k) * (logit_hi - logit_lo))))
    cos_theta = np.clip((z * mass * energy - energy * e1star) / np.maximum(pabs * kstar, 1e-300), -1.0, 1.0)
    p1, p2 = two_body_decay(parent, mass, m1, m2, cos_theta, rng.uniform(0.0, 2 * np.pi, k))
    return p1, p2, m1, m2


def shower(
    partons: np.ndarray,
    masses: np.ndarray,
    rng: np.random.Generator,
    *,
    labels: np.ndarray | None = None,
    m_cut: float = M_CUT,
    kappa: float = KAPPA,
    z_min: float = Z_MIN,
    max_rounds: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """Shower off-shell partons into massless ones (see the module docstring).

    Parameters
    ----------
    partons : ndarray, shape (K, 4)
        Four-momenta of the partons that start the cascade.
    masses : ndarray, shape (K,)
        Their masses (virtualities); partons below ``m_cut`` must be massless already.
    rng : numpy Generator
    labels : ndarray of int, shape (K,), optional
        Carried to every descendant (e.g. the jet index); default ``arange(K)``.
    m_cut, kappa, z_min : float

    Returns
    -------
    momenta : ndarray, shape (M, 4)
        Final massless partons (``E = |p|``); the momenta with one label sum to its parton's.
    labels : ndarray of int, shape (M,)
    """
    p = np.asarray(partons, dtype=np.float64)
    m = np.asarray(masses, dtype=np.float64).copy()
    lab = np.arange(len(m)) if labels is None else np.asarray(labels)
    done_p, done_l = [], []
    for _ in range(max_rounds):
        active = m >= m_cut
        final = ~active
        done_p.append(p[final])
        done_l.append(lab[final])
        if not active.any():
            break
        p, m, lab = p[active], m[active], lab[active]
        p1, p2, m1, m2 = _split(p, m, rng, m_cut, kappa, z_min)
        p, m, lab = np.concatenate([p1, p2]), np.concatenate([m1, m2]), np.concatenate([lab, lab])
    else:
        raise RuntimeError(f"shower: partons still above the cut-off after {max_rounds} rounds")
    out = np.concatenate(done_p)
    out[:, 0] = np.linalg.norm(
        out[:, 1:], axis=-1
    )  # massless to the last bit (the mass is 0 by construction)
    return out, np.concatenate(done_l)


def _kinematics(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        rng.uniform(*PT_RANGE, n),
        rng.uniform(-ETA_MAX, ETA_MAX, n),
        rng.uniform(0.0, 2 * np.pi, n),
    )


def _isotropic(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(-1.0, 1.0, n), rng.uniform(0.0, 2 * np.pi, n)


def delta_r(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    r"""Angular distance :math:`\Delta R = \sqrt{\Delta\eta^2 + \Delta\phi^2}` of ``(..., 4)`` momenta."""
    eta_p = np.arcsinh(p[..., 3] / np.maximum(transverse_momentum(p), 1e-300))
    eta_q = np.arcsinh(q[..., 3] / np.maximum(transverse_momentum(q), 1e-300))
    dphi = (np.arctan2(p[..., 2], p[..., 1]) - np.arctan2(q[..., 2], q[..., 1]) + np.pi) % (2 * np.pi) - np.pi
    return np.sqrt((eta_p - eta_q) ** 2 + dphi**2)


def _top_decays(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    m_top = _breit_wigner(M_TOP, WIDTH_TOP, n, rng)
    m_w = _breit_wigner(M_W, WIDTH_W, n, rng)
    m_b = np.minimum(_lognormal(DECAY_VIRTUALITY * m_top, DECAY_VIRTUALITY_SIGMA, rng), 0.9 * (m_top - m_w))
    m_q1 = _lognormal(np.full(n, DECAY_VIRTUALITY * M_W), DECAY_VIRTUALITY_SIGMA, rng)
    m_q2 = _lognormal(np.full(n, DECAY_VIRTUALITY * M_W), DECAY_VIRTUALITY_SIGMA, rng)
    scale = np.minimum(1.0, 0.9 * m_w / (m_q1 + m_q2))
    m_q1, m_q2 = m_q1 * scale, m_q2 * scale
    m_b, m_q1, m_q2 = (np.where(x < M_CUT, 0.0, x) for x in (m_b, m_q1, m_q2))
    top = _momentum(*_kinematics(n, rng), m_top)
    b, w = two_body_decay(top, m_top, m_b, m_w, *_isotropic(n, rng))
    q1, q2 = two_body_decay(w, m_w, m_q1, m_q2, *_isotropic(n, rng))
    return {"top": top, "b": b, "w": w, "q1": q1, "q2": q2,
            "m_top": m_top, "m_w": m_w, "m_b": m_b, "m_q1": m_q1, "m_q2": m_q2}  # fmt: skip


def top_decays(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    r"""Parton level of ``n`` contained signal jets: the top, its decay products and their masses.

    Decays whose ``b``, ``q1`` or ``q2`` lie further than ``JET_RADIUS`` (0.8) in
    :math:`\Delta R` from the top are rejected and redrawn (the public data set likewise
    keeps top jets whose decay partons are inside the jet).

    Returns
    -------
    dict
        ``"top", "b", "w", "q1", "q2"``: ``(n, 4)`` four-momenta; ``"m_top", "m_w", "m_b",
        "m_q1", "m_q2"``: ``(n,)`` their masses (``w = q1 + q2``, ``top = b + w`` exactly).
    """
    chunks, have = [], 0
    while have < n:
        d = _top_decays(2 * (n - have) + 16, rng)
        inside = np.ones(len(d["m_top"]), dtype=bool)
        for name in ("b", "q1", "q2"):
            inside &= delta_r(d[name], d["top"]) < JET_RADIUS
        chunks.append({k: v[inside] for k, v in d.items()})
        have += int(inside.sum())
    return {k: np.concatenate([c[k] for c in chunks])[:n] for k in chunks[0]}


def pad_constituents(
    momenta: np.ndarray, jet: np.ndarray, n_jets: int, max_constituents: int = MAX_CONSTITUENTS,
    origin: np.ndarray | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Sort each jet's constituents by decreasing :math:`p_T`, keep the first ``max_constituents``, pad.

    Returns
    -------
    dict
        ``"momenta"``: ``(n_jets, max_constituents, 4)`` (zeros past the end), ``"mask"``:
        ``(n_jets, max_constituents)`` bool, ``"multiplicity"``: ``(n_jets,)`` constituents
        before truncation, and ``"origin"`` (same shape as ``mask``, -1 on padding) if given.
    """
    order = np.lexsort((-transverse_momentum(momenta), jet))
    momenta, jet = momenta[order], jet[order]
    counts = np.bincount(jet, minlength=n_jets)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(jet)) - starts[jet]
    keep = rank < max_constituents
    out = np.zeros((n_jets, max_constituents, 4))
    out[jet[keep], rank[keep]] = momenta[keep]
    mask = np.zeros((n_jets, max_constituents), dtype=bool)
    mask[jet[keep], rank[keep]] = True
    result = {"momenta": out, "mask": mask, "multiplicity": counts}
    if origin is not None:
        org = np.full((n_jets, max_constituents), -1, dtype=np.int8)
        org[jet[keep], rank[keep]] = origin[order][keep]
        result["origin"] = org
    return result


def signal_jets(
    n: int, rng: np.random.Generator, max_constituents: int = MAX_CONSTITUENTS
) -> dict[str, np.ndarray]:
    """``n`` top jets: :func:`pad_constituents` output (``"origin"``: 1 b, 2 q1, 3 q2) and ``"partons"``."""
    partons = top_decays(n, rng)
    starts = np.concatenate([partons["b"], partons["q1"], partons["q2"]])
    masses = np.concatenate([partons["m_b"], partons["m_q1"], partons["m_q2"]])
    momenta, label = shower(starts, masses, rng)  # label = origin * n + jet
    jet, origin = label % n, 1 + label // n
    out = pad_constituents(momenta, jet, n, max_constituents, origin)
    out["partons"] = {k: v for k, v in partons.items()}  # type: ignore[assignment]
    return out


def background_jets(
    n: int, rng: np.random.Generator, max_constituents: int = MAX_CONSTITUENTS
) -> dict[str, np.ndarray]:
    """``n`` QCD-like jets: :func:`pad_constituents` output (``"origin"`` all 0 on constituents)."""
    pt, eta, phi = _kinematics(n, rng)
    mass = np.clip(_lognormal(np.full(n, QCD_MASS_MEDIAN), QCD_MASS_SIGMA, rng), QCD_MASS_MIN,
                   QCD_MASS_MAX_FRACTION * pt)  # fmt: skip
    momenta, jet = shower(_momentum(pt, eta, phi, mass), mass, rng)
    out = pad_constituents(momenta, jet, n, max_constituents, np.zeros(len(jet), dtype=np.int8))
    out["parent_mass"] = mass
    return out


def generate_jets(n: int, seed: int, max_constituents: int = MAX_CONSTITUENTS) -> dict[str, np.ndarray]:
    """A shuffled sample of ``n`` jets, half top (label 1) and half QCD (label 0).

    Returns
    -------
    dict
        ``"momenta"``: ``(n, max_constituents, 4)`` float64 ``(E, px, py, pz)`` in GeV,
        sorted by decreasing pT and zero-padded; ``"mask"``: ``(n, max_constituents)`` bool;
        ``"label"``: ``(n,)`` int64; ``"multiplicity"``: ``(n,)`` constituents before
        truncation; ``"origin"``: ``(n, max_constituents)`` int8 (0 QCD, 1 b, 2 q1, 3 q2,
        -1 padding).
    """
    rng = np.random.default_rng(seed)
    n_sig = n // 2
    sig, bkg = signal_jets(n_sig, rng, max_constituents), background_jets(n - n_sig, rng, max_constituents)
    keys = ("momenta", "mask", "multiplicity", "origin")
    out = {k: np.concatenate([sig[k], bkg[k]]) for k in keys}
    out["label"] = np.concatenate([np.ones(n_sig, dtype=np.int64), np.zeros(n - n_sig, dtype=np.int64)])
    perm = rng.permutation(n)
    return {k: v[perm] for k, v in out.items()}


# ----------------------------------------------------------------------------------------------
# cache


def _cache_path(split: str, cache_dir: str | os.PathLike | None) -> pathlib.Path:
    root = DEFAULT_CACHE if cache_dir is None else pathlib.Path(cache_dir)
    return root / f"{split}.npz"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


def _stale_reason(path: pathlib.Path) -> str | None:
    if not path.exists():
        return "missing"
    try:
        with np.load(path) as z:
            stored = json.loads(str(z["protocol"][()]))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as err:
        return f"unreadable ({type(err).__name__}: {err})"
    return None if stored == protocol() else "stored protocol differs from protocol()"


def _write_npz(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically (temp file in the same folder + ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _make_split(split: str, cache_dir: str | os.PathLike | None) -> dict[str, np.ndarray]:
    if split in ("boosted", "lorentz"):
        test = load_split("test", cache_dir)
        rng = np.random.default_rng(SPLIT_SEEDS[split])
        matrices = random_lorentz_matrices(len(test["label"]), rng, split)
        data = dict(test)
        data["momenta"] = transform_jets(test["momenta"].astype(np.float64), matrices)
        data["matrices"] = matrices
    else:
        data = generate_jets(SPLIT_SIZES[split], SPLIT_SEEDS[split])
    arrays = {k: np.ascontiguousarray(v) for k, v in data.items()}
    arrays["momenta"] = arrays["momenta"].astype(np.float32)
    arrays["protocol"] = np.array(json.dumps(protocol(), sort_keys=True))
    return arrays


def _ensure(cache_dir: str | os.PathLike | None, *, force: bool) -> dict[str, tuple[pathlib.Path, str]]:
    status: dict[str, tuple[pathlib.Path, str]] = {}
    for split in SPLITS:  # test before boosted / lorentz, which transform it
        path = _cache_path(split, cache_dir)
        reason = "forced" if force else _stale_reason(path)
        if reason is None:
            status[split] = (path, "cached")
            continue
        level = logging.INFO if reason in ("missing", "forced") else logging.WARNING
        logger.log(level, "generating jets/%s (%s) -> %s", split, reason, path)
        _write_npz(path, _make_split(split, cache_dir))
        status[split] = (path, "written")
    return status


def generate(cache_dir: str | os.PathLike | None = None, *, force: bool = False) -> list[pathlib.Path]:
    """Generate and cache every split (those missing or stale; all if ``force``); their paths."""
    return [path for path, _ in _ensure(cache_dir, force=force).values()]


def load_split(split: str, cache_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Load one split, generating the cache on first use (or when the protocol changed).

    Parameters
    ----------
    split : {"train", "val", "test", "boosted", "lorentz"}
    cache_dir : str or os.PathLike, optional
        Default :data:`DEFAULT_CACHE`; files are ``{cache_dir}/{split}.npz``.

    Returns
    -------
    dict
        ``"momenta"``: ``(J, 50, 4)`` float32 ``(E, px, py, pz)`` in GeV; ``"mask"``:
        ``(J, 50)`` bool; ``"label"``: ``(J,)`` (1 top, 0 QCD); ``"multiplicity"``,
        ``"origin"`` as in :func:`generate_jets`; for ``boosted`` / ``lorentz`` also
        ``"matrices"``: ``(J, 4, 4)``, the Lorentz matrix applied to each test jet.
    """
    _check_split(split)
    path = _cache_path(split, cache_dir)
    if _stale_reason(path) is not None:
        if split in ("boosted", "lorentz"):
            load_split("test", cache_dir)
        logger.info("generating jets/%s -> %s", split, path)
        _write_npz(path, _make_split(split, cache_dir))
    with np.load(path) as z:
        return {k: z[k] for k in z.files if k != "protocol"}


def summary(data: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean jet mass (GeV) of signal and background, mean multiplicity and the padded fraction."""
    p = data["momenta"].astype(np.float64).sum(1)
    mass, label = invariant_mass(p), data["label"].astype(bool)
    return {
        "top_mass_mean": float(mass[label].mean()),
        "qcd_mass_mean": float(mass[~label].mean()),
        "top_constituents": float(data["mask"][label].sum(1).mean()),
        "qcd_constituents": float(data["mask"][~label].sum(1).mean()),
        "signal_fraction": float(label.mean()),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: generate the cached data set and summarise it."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.jets.simulate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--cache-dir", default=None, help=f"cache folder (default {DEFAULT_CACHE})")
    parser.add_argument("--force", action="store_true", help="regenerate even if the cache is current")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    status = _ensure(args.cache_dir, force=args.force)
    print(f"jets: wrote {sum(s == 'written' for _, s in status.values())} of {len(status)} splits "
          f"in {time.perf_counter() - start:.1f} s")  # fmt: skip
    for split, (path, st) in status.items():
        s = summary(load_split(split, args.cache_dir))
        print(f"  {split:8s} {st:7s} {path}  top mass {s['top_mass_mean']:.1f}  "
              f"QCD mass {s['qcd_mass_mean']:.1f}  constituents top {s['top_constituents']:.1f} "
              f"/ QCD {s['qcd_constituents']:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
