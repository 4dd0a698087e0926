r"""2-D incompressible Navier-Stokes smoke on a periodic grid: a pseudo-spectral solver and cached data.

The system (Boussinesq smoke, the setting of cliffordlayers' Navier-Stokes benchmark, here on a
periodic box instead of a closed one):

.. math::

    \partial_t u + \nabla\cdot(u \otimes u) = -\nabla p + \nu \nabla^2 u + b\,(s - \bar s)\,\hat d,
    \qquad \nabla\cdot u = 0, \qquad
    \partial_t s + \nabla\cdot(u s) = \kappa \nabla^2 s + q(x),

with velocity :math:`u`, smoke density :math:`s`, buoyancy :math:`b` along the unit direction
:math:`\hat d` (``+y`` by default; the mean weight :math:`b \bar s` is balanced by the pressure, so
the box as a whole does not accelerate), viscosity :math:`\nu`, smoke diffusivity :math:`\kappa` and
a smoke inflow :math:`q \ge 0` (a Gaussian blob per trajectory).

Solver: Fourier pseudo-spectral on an ``N x N`` periodic grid of side ``length``; the nonlinear terms
in conservative (flux) form, computed in physical space and dealiased with the 2/3 rule (which also
removes the Nyquist modes, so every spectral operator commutes with the symmetries of the square
grid); the pressure by the Leray projection :math:`\hat u \mapsto \hat u - k (k\cdot\hat u)/|k|^2`
(:func:`project`); classical RK4 in time with ``substeps`` steps per saved frame. The conservative
form keeps the total smoke exactly (its zero Fourier mode has no flux term); the source adds exactly
``dt * sum(q)`` per step. Everything is torch, float64 and vectorised over trajectories.

Array conventions: a scalar field is ``(..., N, N)`` indexed ``[ix, iy]`` (the first grid axis is
``x``, the second ``y``); a velocity ``(..., 2, N, N)`` with components ``(u_x, u_y)``. The data set
stores multivector fields of Cl(2,0) with the layout of :mod:`gatorch` fields,
``(trajectories, time, 1, N, N, 4)``, blades ``(1, e1, e2, e12)``: smoke on the scalar blade,
velocity on ``e1, e2``, bivector 0.

Run ``python -m examples.pde.simulate`` from the repository root to build the cache
(``data/pde/*.npz``); :func:`load_split` generates it on first use.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import math
import os
import pathlib
import tempfile
import time
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

logger = logging.getLogger(__name__)

#: Default cache folder, ``<repo root>/data/pde`` (``data/`` is git-ignored).
DEFAULT_CACHE: pathlib.Path = pathlib.Path(__file__).resolve().parents[2] / "data" / "pde"

#: Bumped whenever the simulator changes in a way that changes the generated data.
PROTOCOL_VERSION = 1

SPLITS: tuple[str, ...] = ("train", "val", "test")

#: Trajectories per split (scaled down from cliffordlayers' thousands for a 2-core CPU).
SPLIT_SIZES: dict[str, int] = {"train": 48, "val": 8, "test": 16}

#: Seed of each split's ``torch.Generator``.
SPLIT_SEEDS: dict[str, int] = {"train": 3001, "val": 3002, "test": 3003}

#: Physical and numerical parameters. cliffordlayers (PhiFlow): 128 x 128 cells on a 32 x 32
#: box, dt 1.5 between frames, 14 frames, buoyancy 0.5, viscosity 0.01; here 64 x 64 cells on the
#: same box (cell 0.5), periodic.
NAVIER_STOKES: dict[str, Any] = {
    "grid": 64,
    "length": 32.0,
    "frames": 14,  # saved frames, frame 0 the initial state
    "frame_dt": 1.5,
    "substeps": 24,  # RK4 steps per frame (dt 0.0625)
    "buoyancy": 0.5,
    "direction": [0.0, 1.0],
    "viscosity": 0.01,
    "diffusivity": 0.05,
    # random initial state and inflow (per trajectory)
    "source_radius": [1.5, 3.0],  # Gaussian sigma of the inflow blob, box units
    "source_rate": [0.1, 0.2],  # peak smoke added per unit time
    "blob_amplitude": [0.5, 1.0],  # initial smoke: the inflow blob, scaled
    "noise_velocity": 0.3,  # rms of a random smooth divergence-free initial velocity
    "noise_modes": 4,  # its wavenumbers: |n| <= noise_modes (box harmonics)
}


# ----------------------------------------------------------------------------------------------
# spectral operators


def wavenumbers(n: int, length: float, *, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """Angular wavenumbers of ``torch.fft.rfft2`` on an ``n x n`` grid of side ``length``.

    Returns
    -------
    kx, ky : Tensor
        ``(n, n // 2 + 1)`` each (``kx`` along the first grid axis, ``ky`` along the second).
    """
    scale = 2.0 * math.pi / length
    kx = torch.fft.fftfreq(n, d=1.0 / n, dtype=dtype) * scale
    ky = torch.fft.rfftfreq(n, d=1.0 / n, dtype=dtype) * scale
    return kx[:, None].expand(n, n // 2 + 1), ky[None, :].expand(n, n // 2 + 1)


def dealias_mask(n: int, *, dtype: torch.dtype = torch.float64) -> Tensor:
    """The 2/3-rule mask ``|n_x|, |n_y| <= n // 3`` on the ``rfft2`` grid, ``(n, n // 2 + 1)``.

    It is symmetric under the square's symmetries and removes the Nyquist modes.
    """
    nx = torch.fft.fftfreq(n, d=1.0 / n, dtype=dtype).abs()
    ny = torch.fft.rfftfreq(n, d=1.0 / n, dtype=dtype).abs()
    cut = n // 3
    return ((nx[:, None] <= cut) & (ny[None, :] <= cut)).to(dtype)


def project(u_hat: Tensor, kx: Tensor, ky: Tensor) -> Tensor:
    r"""Leray projection onto divergence-free fields in Fourier space.

    :math:`\hat u \mapsto \hat u - k\,(k\cdot\hat u)/|k|^2` (the zero mode, the mean flow, is kept).

    Parameters
    ----------
    u_hat : Tensor
        ``(..., 2, n, n // 2 + 1)`` complex, the ``rfft2`` of a velocity field.
    kx, ky : Tensor
        From :func:`wavenumbers`.

    Returns
    -------
    Tensor
        Same shape, with ``kx * û_x + ky * û_y = 0`` (up to rounding).
    """
    k2 = kx * kx + ky * ky
    inv = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, torch.ones_like(k2)), torch.zeros_like(k2))
    div = kx * u_hat[..., 0, :, :] + ky * u_hat[..., 1, :, :]
    return torch.stack((u_hat[..., 0, :, :] - kx * div * inv, u_hat[..., 1, :, :] - ky * div * inv), dim=-3)


def spectral_divergence(u: Tensor, length: float) -> Tensor:
    """Spectral divergence ``(..., n, n)`` of a periodic velocity ``(..., 2, n, n)``."""
    n = u.shape[-1]
    kx, ky = wavenumbers(n, length, dtype=u.dtype)
    u_hat = torch.fft.rfft2(u)
    div_hat = 1j * (kx * u_hat[..., 0, :, :] + ky * u_hat[..., 1, :, :])
    return torch.fft.irfft2(div_hat, s=(n, n))


# ----------------------------------------------------------------------------------------------
# the solver


def solve(
    smoke: Tensor,
    velocity: Tensor,
    source: Tensor | None = None,
    *,
    frames: int,
    frame_dt: float,
    substeps: int,
    length: float,
    buoyancy: float,
    direction: Sequence[float] | Tensor = (0.0, 1.0),
    viscosity: float,
    diffusivity: float,
) -> tuple[Tensor, Tensor]:
    """Integrate the smoke system; returns every saved frame.

    Parameters
    ----------
    smoke : Tensor
        ``(B, n, n)`` initial smoke density (real, float64 recommended).
    velocity : Tensor
        ``(B, 2, n, n)`` initial velocity; it is projected (divergence-free) and dealiased first.
    source : Tensor, optional
        ``(B, n, n)`` smoke inflow rate ``q``; ``None`` for none.
    frames : int
        Number of saved frames (frame 0 is the projected, dealiased initial state).
    frame_dt : float
        Time between frames.
    substeps : int
        RK4 steps per frame.
    length : float
        Side of the periodic box.
    buoyancy : float
        ``b``: the force is ``b (s - mean s)`` along ``direction``.
    direction : sequence of 2 floats or Tensor
        The buoyancy direction, ``(2,)`` or ``(B, 2)`` (need not be normalised).
    viscosity, diffusivity : float
        ``nu`` and ``kappa``.

    Returns
    -------
    smoke_frames : Tensor
        ``(B, frames, n, n)``.
    velocity_frames : Tensor
        ``(B, frames, 2, n, n)``.
    """
    if smoke.ndim != 3 or smoke.shape[-1] != smoke.shape[-2]:
        raise ValueError(f"solve: smoke must be (B, n, n), got {tuple(smoke.shape)}")
    b, n, _ = smoke.shape
    if velocity.shape != (b, 2, n, n):
        raise ValueError(f"solve: velocity must be {(b, 2, n, n)}, got {tuple(velocity.shape)}")
    if frames < 1 or substeps < 1:
        raise ValueError(f"solve: frames and substeps must be >= 1, got {frames}, {substeps}")
    dtype = smoke.dtype
    kx, ky = wavenumbers(n, length, dtype=dtype)
    kx, ky = kx.to(smoke.device), ky.to(smoke.device)
    mask = dealias_mask(n, dtype=dtype).to(smoke.device)
    k2 = kx * kx + ky * ky
    d = torch.as_tensor(direction, dtype=dtype, device=smoke.device)
    d = d.expand(b, 2) if d.ndim == 1 else d
    d = d / d.norm(dim=-1, keepdim=True)
    q_hat = torch.fft.rfft2(source) * mask if source is not None else None
    dt = frame_dt / substeps

    def rhs(s_hat: Tensor, u_hat: Tensor) -> tuple[Tensor, Tensor]:
        s = torch.fft.irfft2(s_hat, s=(n, n))
        u = torch.fft.irfft2(u_hat, s=(n, n))  # (B, 2, n, n)
        flux = torch.fft.rfft2(u * s[:, None])  # (B, 2, ...)
        ds = -1j * (kx * flux[:, 0] + ky * flux[:, 1]) * mask - diffusivity * k2 * s_hat
        if q_hat is not None:
            ds = ds + q_hat
        uu = torch.fft.rfft2(u[:, :, None] * u[:, None, :])  # (B, 2, 2, ...): u_a u_b
        adv = 1j * (kx * uu[:, :, 0] + ky * uu[:, :, 1])  # div(u (x) u), component a
        s_rel = s_hat.clone()
        s_rel[:, 0, 0] = 0.0  # s - mean(s): the mean weight is balanced by the pressure
        force = buoyancy * d[:, :, None, None] * s_rel[:, None]
        du = project((force - adv) * mask, kx, ky) - viscosity * k2 * u_hat
        return ds, du

    s_hat = torch.fft.rfft2(smoke) * mask
    u_hat = project(torch.fft.rfft2(velocity) * mask, kx, ky)
    out_s = [torch.fft.irfft2(s_hat, s=(n, n))]
    out_u = [torch.fft.irfft2(u_hat, s=(n, n))]
    for _ in range(frames - 1):
        for _ in range(substeps):
            a_s, a_u = rhs(s_hat, u_hat)
            b_s, b_u = rhs(s_hat + 0.5 * dt * a_s, u_hat + 0.5 * dt * a_u)
            c_s, c_u = rhs(s_hat + 0.5 * dt * b_s, u_hat + 0.5 * dt * b_u)
            e_s, e_u = rhs(s_hat + dt * c_s, u_hat + dt * c_u)
            s_hat = s_hat + dt / 6.0 * (a_s + 2.0 * b_s + 2.0 * c_s + e_s)
            u_hat = u_hat + dt / 6.0 * (a_u + 2.0 * b_u + 2.0 * c_u + e_u)
        out_s.append(torch.fft.irfft2(s_hat, s=(n, n)))
        out_u.append(torch.fft.irfft2(u_hat, s=(n, n)))
    return torch.stack(out_s, dim=1), torch.stack(out_u, dim=1)


# ----------------------------------------------------------------------------------------------
# random initial states


def _gaussian_blobs(centres: Tensor, sigma: Tensor, n: int, length: float) -> Tensor:
    """Periodic Gaussians ``exp(-|x - c|^2 / 2 sigma^2)`` (minimum image), ``(B, n, n)``."""
    x = torch.arange(n, dtype=centres.dtype, device=centres.device) * (length / n)
    dx = x[None, :] - centres[:, :1]  # (B, n)
    dy = x[None, :] - centres[:, 1:]
    dx = dx - length * torch.round(dx / length)
    dy = dy - length * torch.round(dy / length)
    r2 = dx[:, :, None] ** 2 + dy[:, None, :] ** 2
    return torch.exp(-r2 / (2.0 * sigma[:, None, None] ** 2))


def sample_initial(
    num: int, generator: torch.Generator, params: dict[str, Any] | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Random initial smoke, velocity and inflow of ``num`` trajectories (float64).

    One Gaussian inflow blob per trajectory at a uniform position with a uniform width and peak
    rate; the initial smoke is the same blob times a uniform amplitude; the initial velocity a
    smooth random divergence-free field (random Fourier coefficients on ``|n| <= noise_modes``,
    projected, scaled to the given rms).

    Returns
    -------
    smoke : Tensor
        ``(num, n, n)``.
    velocity : Tensor
        ``(num, 2, n, n)``.
    source : Tensor
        ``(num, n, n)``.
    """
    p = NAVIER_STOKES if params is None else params
    n, length = int(p["grid"]), float(p["length"])

    def uniform(lo_hi: Sequence[float], *shape: int) -> Tensor:
        lo, hi = float(lo_hi[0]), float(lo_hi[1])
        return lo + (hi - lo) * torch.rand(*shape, generator=generator, dtype=torch.float64)

    centres = uniform((0.0, length), num, 2)
    sigma = uniform(p["source_radius"], num)
    rate = uniform(p["source_rate"], num)
    amplitude = uniform(p["blob_amplitude"], num)
    blob = _gaussian_blobs(centres, sigma, n, length)
    source = rate[:, None, None] * blob
    smoke = amplitude[:, None, None] * blob

    kx, ky = wavenumbers(n, length)
    nx, ny = kx * (length / (2 * math.pi)), ky * (length / (2 * math.pi))
    low = ((nx.abs() <= p["noise_modes"]) & (ny.abs() <= p["noise_modes"])).to(torch.float64)
    coeff = torch.randn(num, 2, n, n // 2 + 1, 2, generator=generator, dtype=torch.float64)
    u_hat = project(torch.complex(coeff[..., 0], coeff[..., 1]) * low, kx, ky)
    velocity = torch.fft.irfft2(u_hat, s=(n, n))
    velocity = velocity - velocity.mean(dim=(-2, -1), keepdim=True)
    rms = velocity.pow(2).sum(1).mean(dim=(-2, -1)).sqrt()
    velocity = velocity * (float(p["noise_velocity"]) / rms)[:, None, None, None]
    return smoke, velocity, source


def to_multivector(smoke: Tensor, velocity: Tensor) -> Tensor:
    """Pack smoke ``(..., n, n)`` and velocity ``(..., 2, n, n)`` as Cl(2,0) fields ``(..., 1, n, n, 4)``.

    Blades ``(1, e1, e2, e12)``: smoke, ``u_x``, ``u_y``, 0.
    """
    zero = torch.zeros_like(smoke)
    return torch.stack((smoke, velocity[..., 0, :, :], velocity[..., 1, :, :], zero), dim=-1).unsqueeze(-4)


def simulate(num: int, seed: int, params: dict[str, Any] | None = None) -> Tensor:
    """Sample and integrate ``num`` trajectories; ``(num, frames, 1, n, n, 4)`` float64 fields."""
    p = NAVIER_STOKES if params is None else params
    gen = torch.Generator().manual_seed(int(seed))
    smoke, velocity, source = sample_initial(num, gen, p)
    s, u = solve(
        smoke,
        velocity,
        source,
        frames=int(p["frames"]),
        frame_dt=float(p["frame_dt"]),
        substeps=int(p["substeps"]),
        length=float(p["length"]),
        buoyancy=float(p["buoyancy"]),
        direction=tuple(p["direction"]),
        viscosity=float(p["viscosity"]),
        diffusivity=float(p["diffusivity"]),
    )
    if not bool(torch.isfinite(s).all() and torch.isfinite(u).all()):
        raise RuntimeError("simulate: the solver diverged (non-finite fields); lower frame_dt / substeps")
    return to_multivector(s, u)


# ----------------------------------------------------------------------------------------------
# protocol and cache


def protocol() -> dict[str, Any]:
    """Every parameter that determines the data, JSON-serialisable; stored in every cache file."""
    out = {
        "version": PROTOCOL_VERSION,
        "system": "2-D incompressible Navier-Stokes smoke (Boussinesq buoyancy), periodic box",
        "solver": "pseudo-spectral, 2/3 dealiasing, Leray projection, RK4, conservative fluxes",
        "simulator": copy.deepcopy(NAVIER_STOKES),
        "layout": "(trajectories, frames, 1, n, n, 4), Cl(2,0) blades (1, e1, e2, e12)",
        "splits": {s: {"size": int(SPLIT_SIZES[s]), "seed": int(SPLIT_SEEDS[s])} for s in SPLITS},
    }
    return json.loads(json.dumps(out))


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")


def _cache_path(split: str, cache_dir: str | os.PathLike | None) -> pathlib.Path:
    root = DEFAULT_CACHE if cache_dir is None else pathlib.Path(cache_dir)
    return root / f"smoke_{split}.npz"


def _stale_reason(path: pathlib.Path) -> str | None:
    if not path.exists():
        return "missing"
    try:
        with np.load(path) as z:
            stored = json.loads(str(z["protocol"][()]))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as err:
        return f"unreadable ({type(err).__name__}: {err})"
    if stored != protocol():
        return "stored protocol differs from protocol()"
    return None


def _write_npz(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically (temp file in the same folder + ``os.replace``)."""
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


def _ensure(cache_dir: str | os.PathLike | None, *, force: bool) -> dict[str, tuple[pathlib.Path, str]]:
    status: dict[str, tuple[pathlib.Path, str]] = {}
    proto = protocol()
    for split in SPLITS:
        path = _cache_path(split, cache_dir)
        reason = "forced" if force else _stale_reason(path)
        if reason is None:
            status[split] = (path, "cached")
            continue
        level = logging.INFO if reason in ("missing", "forced") else logging.WARNING
        logger.log(level, "generating pde/%s (%s) -> %s", split, reason, path)
        cfg = proto["splits"][split]
        fields = simulate(cfg["size"], cfg["seed"])
        _write_npz(
            path,
            {
                "fields": fields.to(torch.float32).numpy(),
                "protocol": np.array(json.dumps(proto, sort_keys=True)),
            },
        )
        status[split] = (path, "written")
    return status


def generate(cache_dir: str | os.PathLike | None = None, *, force: bool = False) -> list[pathlib.Path]:
    """Generate and cache every split (those missing or stale; all if ``force``); their paths."""
    return [path for path, _ in _ensure(cache_dir, force=force).values()]


def load_split(split: str, cache_dir: str | os.PathLike | None = None) -> np.ndarray:
    """One split's fields, generating the cache on first use (or when the protocol changed).

    Parameters
    ----------
    split : str
        ``"train"``, ``"val"`` or ``"test"``.
    cache_dir : str or os.PathLike, optional
        Cache folder (default :data:`DEFAULT_CACHE`); files are ``{cache_dir}/smoke_{split}.npz``.

    Returns
    -------
    np.ndarray
        ``(trajectories, frames, 1, n, n, 4)`` float32 Cl(2,0) fields: smoke, ``u_x``, ``u_y``, 0.
    """
    _check_split(split)
    path = _cache_path(split, cache_dir)
    if _stale_reason(path) is not None:
        _ensure(cache_dir, force=False)
    with np.load(path) as z:
        return np.asarray(z["fields"])


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: generate the cached data set and summarise it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default=None, help=f"cache folder (default {DEFAULT_CACHE})")
    parser.add_argument("--force", action="store_true", help="regenerate even if the cache is current")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    status = _ensure(args.cache_dir, force=args.force)
    elapsed = time.perf_counter() - start
    print(f"navier-stokes smoke: wrote {sum(st == 'written' for _, st in status.values())} of 3 splits "
          f"in {elapsed:.1f} s")  # fmt: skip
    for split, (path, st) in status.items():
        f = load_split(split, args.cache_dir)
        speed = np.sqrt(f[..., 1] ** 2 + f[..., 2] ** 2)
        print(
            f"  {split:5s} {st:7s} {path}  shape {f.shape}  smoke mean {f[..., 0].mean():.3f} "
            f"max {f[..., 0].max():.2f} min {f[..., 0].min():.3f}  "
            f"speed rms {np.sqrt((speed**2).mean()):.3f} "
            f"max {speed.max():.2f}"
        )


if __name__ == "__main__":
    main()
