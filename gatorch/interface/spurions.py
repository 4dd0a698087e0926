r"""Spurions: fixed reference multivectors that break a symmetry on purpose.

An equivariant net is equivariant under *every* element of its algebra's group, but a task
often has less symmetry: a collider has a beam axis, a scene has a vertical. Appending
fixed reference multivectors ("spurions", L-GATr's name) as extra input channels restricts
the symmetry of the whole model to the *stabiliser* of the spurions, the group elements
that leave every one of them unchanged: if :math:`f` is equivariant and :math:`g\cdot s = s`
for every spurion :math:`s`, then :math:`f(g\cdot x, s) = g\cdot f(x, s)`.

Every helper returns a ``(k, alg.dim)`` tensor (``k`` spurions) to pass to
:func:`append_spurions`, which broadcasts them to every item and appends them as channels.

Generic helpers (any algebra):

* :func:`vector_spurion`: a fixed vector (grade 1), e.g. a direction in VGA or STA;
* :func:`plane_spurion`: the bivector :math:`a \wedge b` spanned by two vectors;
* :func:`point_spurion`: a point (``PGA3``, ``CGA3`` via their ``embed_point``; ``VGA3``: the
  position vector);
* :func:`time_spurion`: the time direction of a Lorentzian algebra;
* :func:`stabiliser_bivectors`: a basis of the Lie algebra of the stabiliser, to check how
  much continuous symmetry a choice keeps.

Presets:

* ``STA`` (L-GATr): :func:`sta_spurions` and :func:`num_sta_spurions`, the same spurions, in
  the same order, as ``lgatr.interface.spurions.get_spurions`` / ``get_num_spurions``;
* ``PGA3`` (GATr): :func:`gravity_spurion` and :func:`ground_plane_spurion`.

The group acts by the twisted versor action :math:`x \mapsto w \hat x^{|w|} w^{-1}`, an
outermorphism: a vector :math:`v` maps to :math:`\Lambda v`, a bivector :math:`a \wedge b` to
:math:`\Lambda a \wedge \Lambda b` (:math:`\Lambda` the orthogonal map of :math:`w`). So a
bivector keeps its sign when a direction orthogonal to its plane is reflected and flips when
a direction in its plane is; PGA points and ideal points (trivectors)
pick up :math:`\det M`. The stabilisers below are for this action, odd versors included.

Stabilisers in ``STA`` (group O(1, 3); :math:`z` is the beam axis):

* time ``e0``: O(3), rotations and spatial reflections;
* ``"xyplane"`` (``e12``): boosts along z, rotations about z, the flips z -> -z and
  t -> -t (so parity too): O(1, 1)_tz x SO(2)_xy, a collider's symmetry;
* ``"xyplane"`` + time: rotations about z and the flip z -> -z;
* spacelike beam ``e3`` (with or without its mirror): O(1, 2) of (t, x, y), i.e. boosts
  along x and y, rotations about z, flips of t, x and y;
* lightlike beam alone: ISO(2), the little group of a massless particle (with the
  reflections in planes that contain z);
* a four-vector beam with its mirror, or any four-vector beam with time: rotations about z
  and reflections in planes that contain z, O(2)_xy.

Stabilisers in ``PGA3`` (group E(3)):

* gravity as an ideal line (default): all translations, rotations about vertical axes,
  reflections in vertical planes;
* gravity as an ideal point: all translations, rotations about vertical axes and the mirror
  z -> -z, not the vertical mirrors (the trivector picks up det M);
* ground plane z = 0: horizontal translations, rotations about vertical axes, reflections in
  vertical planes, E(2);
* a point x0: rotations about x0, SO(3) (reflections flip the point's weight).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from gatorch.functional.algebra import CGA3, PGA3, STA, VGA3, Algebra
from gatorch.interface import cga, pga, sta, vga
from gatorch.interface._common import blade

__all__ = [
    "BEAM_SPURIONS",
    "GRAVITY_REPRESENTATIONS",
    "append_spurions",
    "gravity_spurion",
    "ground_plane_spurion",
    "num_sta_spurions",
    "plane_spurion",
    "point_spurion",
    "sta_spurions",
    "stabiliser_bivectors",
    "time_spurion",
    "vector_spurion",
]

#: Beam options of :func:`sta_spurions` (``None``: no beam spurion), as in L-GATr.
BEAM_SPURIONS: tuple[str, ...] = ("xyplane", "lightlike", "spacelike", "timelike")
#: How :func:`gravity_spurion` represents the direction of gravity in PGA.
GRAVITY_REPRESENTATIONS: tuple[str, ...] = ("ideal_line", "ideal_point")

#: A vector given as a basis-vector name (``"e3"``), components ``(n,)`` or ``(k, n)``.
VectorLike = str | Sequence[float] | Sequence[Sequence[float]] | Tensor | np.ndarray


def _dtype(dtype: torch.dtype | None) -> torch.dtype:
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not dtype.is_floating_point:
        raise TypeError(f"spurions: expected a floating-point dtype, got {dtype}")
    return dtype


def _check_algebra(alg: object, fn: str) -> Algebra:
    if not isinstance(alg, Algebra):
        raise TypeError(f"{fn}: expected an Algebra as first argument, got {type(alg).__name__}")
    return alg


def _basis_vector_names(alg: Algebra) -> tuple[str, ...]:
    return alg.blade_names[alg.grade_slice(1)]


def _components(
    alg: Algebra, v: VectorLike, fn: str, arg: str, dtype: torch.dtype, device: torch.device | str | None
) -> Tensor:
    """Vector components ``(k, alg.n)`` of a basis-vector name or a ``(n,)`` / ``(k, n)`` array."""
    names = _basis_vector_names(alg)
    if isinstance(v, str):
        if v not in names:
            raise ValueError(f"{fn}: {arg}={v!r} is not a basis vector of {alg!r}; expected one of {names}")
        out = torch.zeros(1, alg.n, dtype=dtype, device=device)
        out[0, names.index(v)] = 1
        return out
    try:
        t = torch.as_tensor(v, dtype=dtype, device=device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{fn}: {arg} must be a basis-vector name or numbers, got {v!r} ({err})") from None
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.ndim != 2 or t.shape[-1] != alg.n:
        raise ValueError(
            f"{fn}: expected {arg} of shape ({alg.n},) or (k, {alg.n}) (components on {', '.join(names)}), "
            f"got shape {tuple(torch.as_tensor(v).shape)}"
        )
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{fn}: {arg} has non-finite components: {t.tolist()}")
    if bool((t.abs().amax(-1) == 0).any()):
        raise ValueError(f"{fn}: {arg} must be non-zero, got {t.tolist()}")
    return t


def _vectors(alg: Algebra, comps: Tensor) -> Tensor:
    out = comps.new_zeros(comps.shape[0], alg.dim)
    out[:, alg.grade_slice(1)] = comps
    return out


# -- generic helpers ---------------------------------------------------------------------------------
def vector_spurion(
    alg: Algebra,
    direction: VectorLike,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""A fixed vector (grade 1) as a spurion, e.g. a beam axis or a preferred direction.

    Its stabiliser is the subgroup of O(p, q, r) whose matrices fix the vector: for a unit
    vector :math:`n` of a Euclidean algebra, the rotations about :math:`n` and the
    reflections in planes containing :math:`n`, i.e. :math:`O(n - 1)`.

    Parameters
    ----------
    alg : Algebra
    direction : str or array-like, shape (n,) or (k, n)
        A basis-vector name (``"e3"``) or the components on ``alg``'s basis vectors, in basis
        order; ``k`` rows give ``k`` spurions. Must be non-zero.
    dtype, device : optional
        Of the result (default: torch's default dtype, CPU).

    Returns
    -------
    Tensor, shape (k, alg.dim)

    Examples
    --------
    >>> from gatorch import VGA3
    >>> from gatorch.interface.spurions import vector_spurion
    >>> vector_spurion(VGA3, "e3")[0, VGA3.index("e3")].item()
    1.0
    """
    alg = _check_algebra(alg, "vector_spurion")
    dt = _dtype(dtype)
    return _vectors(alg, _components(alg, direction, "vector_spurion", "direction", dt, device))


def plane_spurion(
    alg: Algebra,
    first: VectorLike,
    second: VectorLike,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""The oriented plane :math:`a \wedge b` spanned by two vectors, a bivector spurion.

    Under the twisted action it maps to :math:`\Lambda a \wedge \Lambda b`, so it is fixed
    by every element that maps the plane to itself with determinant +1 there and acts
    arbitrarily (within the group) on its orthogonal complement. In ``STA``,
    ``plane_spurion(STA, "e1", "e2")`` is L-GATr's ``"xyplane"``: it keeps rotations about
    z and boosts along z (the symmetry of a collider with symmetric beams).

    Parameters
    ----------
    alg : Algebra
        Needs at least two basis vectors.
    first, second : str or array-like, shape (n,) or (k, n)
        Basis-vector names or components (as in :func:`vector_spurion`); ``k`` rows
        broadcast against each other.
    dtype, device : optional

    Returns
    -------
    Tensor, shape (k, alg.dim)
        Bivectors :math:`a \wedge b` (not normalised).

    Raises
    ------
    ValueError
        If ``a`` and ``b`` are parallel (:math:`a \wedge b = 0`).
    """
    alg = _check_algebra(alg, "plane_spurion")
    if alg.n < 2:
        raise ValueError(f"plane_spurion: {alg!r} has fewer than two basis vectors, so no planes")
    dt = _dtype(dtype)
    a = _vectors(alg, _components(alg, first, "plane_spurion", "first", dt, device))
    b = _vectors(alg, _components(alg, second, "plane_spurion", "second", dt, device))
    try:
        a, b = torch.broadcast_tensors(a, b)
    except RuntimeError:
        raise ValueError(
            f"plane_spurion: first ({a.shape[0]} rows) and second ({b.shape[0]} rows) do not broadcast"
        ) from None
    plane = alg.outer(a, b)
    size = plane.abs().amax(-1)
    scale = a.abs().amax(-1) * b.abs().amax(-1)
    if bool((size <= 1e3 * torch.finfo(dt).eps * scale).any()):
        raise ValueError("plane_spurion: first and second are parallel (a ^ b = 0), they span no plane")
    return plane


def point_spurion(
    alg: Algebra,
    coordinates: Sequence[float] | Sequence[Sequence[float]] | Tensor | np.ndarray,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""A fixed point of 3-space: ``pga.embed_point`` (``PGA3``), ``cga.embed_point`` (``CGA3``).

    For ``VGA3`` the point is its position vector (``vga.embed_vector``; the origin is not
    allowed, it is the zero vector). Stabilisers among the isometries: in ``PGA3`` the
    rotations about the point (SO(3); improper elements flip the sign of the point's weight),
    in ``CGA3`` all of O(3) about the point, in ``VGA3`` the rotations about, and reflections
    in planes containing, the line through the origin and the point.

    Parameters
    ----------
    alg : Algebra
        ``PGA3``, ``CGA3`` or ``VGA3``.
    coordinates : array-like, shape (3,) or (k, 3)
    dtype, device : optional

    Returns
    -------
    Tensor, shape (k, alg.dim)
    """
    alg = _check_algebra(alg, "point_spurion")
    dt = _dtype(dtype)
    x = torch.as_tensor(coordinates, dtype=dt, device=device)
    if x.ndim == 1:
        x = x.unsqueeze(0)
    if x.ndim != 2 or x.shape[-1] != 3:
        raise ValueError(
            f"point_spurion: expected coordinates of shape (3,) or (k, 3), got shape {tuple(x.shape)}"
        )
    if alg == PGA3:
        return pga.embed_point(x)
    if alg == CGA3:
        return cga.embed_point(x)
    if alg == VGA3:
        if bool((x.abs().amax(-1) == 0).any()):
            raise ValueError(
                "point_spurion: in VGA3 a point is its position vector; the origin is the zero vector"
            )
        return vga.embed_vector(x)
    raise ValueError(
        f"point_spurion: points are defined for PGA3, CGA3 and VGA3 (gatorch.interface.pga / cga / vga), "
        f"got {alg!r}"
    )


def time_spurion(
    alg: Algebra,
    time: str | None = None,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""The unit time direction of a Lorentzian algebra, a vector spurion.

    Lorentzian means non-degenerate with exactly one basis vector of one sign and at least one
    of the other (``STA = Cl(1, 3)``: ``e0``; ``Cl(3, 1)``: the vector squaring to -1). Its
    stabiliser is the subgroup that fixes the frame's time axis: the spatial rotations and
    reflections, :math:`O(n - 1)`; boosts and time reversal move it.

    Parameters
    ----------
    alg : Algebra
    time : str, optional
        The timelike basis vector's name. Default: the basis vector whose sign is the odd one
        out (required when both signs occur once, as in ``Cl(1, 1)``).
    dtype, device : optional

    Returns
    -------
    Tensor, shape (1, alg.dim)
    """
    alg = _check_algebra(alg, "time_spurion")
    p, q, r = alg.signature
    if r != 0 or p < 1 or q < 1 or min(p, q) != 1:
        raise ValueError(
            f"time_spurion: expected a Lorentzian algebra (no degenerate vectors, one basis vector of "
            f"one sign and the rest of the other), got {alg!r} with signature (p, q, r) = {(p, q, r)}"
        )
    names = _basis_vector_names(alg)
    minority = 1 if p == 1 else -1
    if time is None:
        if p == q:
            raise ValueError(
                f"time_spurion: {alg!r} has one vector of each sign; name the timelike one (time=...)"
            )
        time = names[alg.metric.index(minority)]
    elif time not in names:
        raise ValueError(
            f"time_spurion: time={time!r} is not a basis vector of {alg!r}; expected one of {names}"
        )
    elif p != q and alg.metric[names.index(time)] != minority:
        raise ValueError(
            f"time_spurion: {time!r} is not the timelike basis vector of {alg!r} "
            f"(that is {names[alg.metric.index(minority)]!r})"
        )
    return vector_spurion(alg, time, dtype=dtype, device=device)


def append_spurions(mv: Tensor, spurions: Tensor, alg: Algebra | None = None) -> Tensor:
    """Append spurions as extra multivector channels of every item.

    Parameters
    ----------
    mv : Tensor, shape (..., items, channels, dim)
        Per-item multivectors (at least ``(channels, dim)``: the channel axis is ``-2``).
    spurions : Tensor, shape (k, dim)
        E.g. from :func:`sta_spurions`; cast to the dtype and device of ``mv``. ``k = 0`` is
        allowed (returns ``mv``).
    alg : Algebra, optional
        If given, both last dimensions must be ``alg.dim``.

    Returns
    -------
    Tensor, shape (..., items, channels + k, dim)
        ``mv`` with the spurions, the same for every item, appended after its channels.

    Examples
    --------
    >>> import torch
    >>> from gatorch import STA
    >>> from gatorch.interface.spurions import append_spurions, sta_spurions
    >>> append_spurions(torch.zeros(8, 30, 1, 16), sta_spurions(), STA).shape
    torch.Size([8, 30, 3, 16])
    """
    if not isinstance(mv, Tensor) or not isinstance(spurions, Tensor):
        raise TypeError(
            "append_spurions: expected torch.Tensor inputs, "
            f"got {type(mv).__name__} and {type(spurions).__name__}"
        )
    if mv.ndim < 2:
        raise ValueError(f"append_spurions: expected mv of shape (..., channels, dim), got {tuple(mv.shape)}")
    if spurions.ndim != 2:
        raise ValueError(f"append_spurions: expected spurions of shape (k, dim), got {tuple(spurions.shape)}")
    if alg is not None:
        _check_algebra(alg, "append_spurions")
        alg.check_dim(mv, "append_spurions (mv)")
        alg.check_dim(spurions, "append_spurions (spurions)")
    if spurions.shape[-1] != mv.shape[-1]:
        raise ValueError(
            f"append_spurions: mv has {mv.shape[-1]} blades but spurions have {spurions.shape[-1]}: "
            "they belong to different algebras"
        )
    if not mv.is_floating_point():
        raise TypeError(f"append_spurions: expected a floating-point mv, got dtype {mv.dtype}")
    s = spurions.to(dtype=mv.dtype, device=mv.device)
    s = s.expand(*mv.shape[:-2], *s.shape)
    return torch.cat([mv, s], dim=-2)


def stabiliser_bivectors(alg: Algebra, spurions: Tensor, atol: float = 1e-9) -> Tensor:
    r"""A basis of the Lie algebra of the spurions' stabiliser, as bivectors.

    A one-parameter subgroup :math:`\exp(tB)` (``B`` a bivector) fixes a multivector ``s``
    for all ``t`` iff the commutator :math:`Bs - sB` vanishes. This returns an orthonormal
    basis (in bivector components) of the ``B`` with :math:`Bs = sB` for every spurion: its
    length is the dimension of the continuous symmetry that the spurions keep (e.g. 6 for
    nothing in ``STA``, 2 for the ``"xyplane"``: the z rotation ``e12`` and the z boost
    ``e03``). Discrete elements (reflections) are not seen; check them with
    ``alg.sandwich``.

    Parameters
    ----------
    alg : Algebra
    spurions : Tensor, shape (k, alg.dim)
    atol : float
        Singular values below ``atol`` times the largest (or ``atol`` if all are small)
        count as zero.

    Returns
    -------
    Tensor, shape (m, alg.dim)
        Bivectors, float64 on the CPU; ``m = 0`` when no continuous symmetry is left.
    """
    alg = _check_algebra(alg, "stabiliser_bivectors")
    alg.check_dim(spurions, "stabiliser_bivectors (spurions)")
    if spurions.ndim != 2:
        raise ValueError(
            f"stabiliser_bivectors: expected spurions of shape (k, dim), got {tuple(spurions.shape)}"
        )
    sl = alg.grade_slice(2)
    nb = sl.stop - sl.start
    basis = torch.zeros(nb, alg.dim, dtype=torch.float64)
    basis[:, sl] = torch.eye(nb, dtype=torch.float64)
    if nb == 0:
        return basis
    s = spurions.detach().to("cpu", torch.float64)
    comm = alg.gp(basis[:, None], s[None]) - alg.gp(s[None], basis[:, None])  # (nb, k, dim)
    mat = comm.reshape(nb, -1).T  # columns: bivectors
    if mat.shape[0] == 0:
        return basis
    _, sv, vh = torch.linalg.svd(mat, full_matrices=True)
    top = float(sv.max()) if sv.numel() else 0.0
    rank = int((sv > atol * max(top, 1.0)).sum())
    null = vh[rank:]  # (nb - rank, nb)
    out = torch.zeros(null.shape[0], alg.dim, dtype=torch.float64)
    out[:, sl] = null
    return out


# -- STA (L-GATr) ----------------------------------------------------------------------------------------
def _check_sta_options(beam_spurion: str | None, fn: str) -> None:
    if beam_spurion is not None and beam_spurion not in BEAM_SPURIONS:
        raise ValueError(f"{fn}: beam_spurion must be one of {BEAM_SPURIONS} or None, got {beam_spurion!r}")


def num_sta_spurions(
    beam_spurion: str | None = "xyplane", add_time_spurion: bool = True, beam_mirror: bool = True
) -> int:
    """How many spurions :func:`sta_spurions` returns (``lgatr``'s ``get_num_spurions``).

    Parameters
    ----------
    beam_spurion, add_time_spurion, beam_mirror
        As in :func:`sta_spurions`.

    Returns
    -------
    int
    """
    _check_sta_options(beam_spurion, "num_sta_spurions")
    count = 0
    if beam_spurion == "xyplane":
        count += 1
    elif beam_spurion is not None:
        count += 2 if beam_mirror else 1
    return count + (1 if add_time_spurion else 0)


def sta_spurions(
    beam_spurion: str | None = "xyplane",
    add_time_spurion: bool = True,
    beam_mirror: bool = True,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    r"""L-GATr's spurions for collider physics in ``STA`` (``lgatr``'s ``get_spurions``).

    Same options, values and order as ``lgatr.interface.spurions.get_spurions``: first the
    beam, then the time direction. The beam (the z axis) is

    * ``"xyplane"``: the bivector ``e12`` (the plane transverse to the beam);
    * ``"lightlike"``: the four-vector ``(1, 0, 0, 1)``;
    * ``"timelike"``: ``(sqrt 2, 0, 0, 1)``;
    * ``"spacelike"``: ``(0, 0, 0, 1)``;
    * ``None``: no beam spurion.

    With ``beam_mirror`` the four-vector beams are followed by their mirror images
    (``pz -> -pz``), so the two beams of a symmetric collider are both present.

    Symmetry kept (stabiliser in O(1, 3), see the module docstring):

    * ``"xyplane"``, no time: boosts along z, rotations about z, the flips z -> -z and
      t -> -t;
    * ``"xyplane"`` + time: rotations about z and the flip z -> -z;
    * a four-vector beam with its mirror, or any beam with the time: rotations about z and
      reflections in planes containing z (O(2));
    * time alone: O(3).

    Parameters
    ----------
    beam_spurion : {"xyplane", "lightlike", "spacelike", "timelike"} or None
    add_time_spurion : bool
        Append the time direction ``(1, 0, 0, 0)`` (``e0``).
    beam_mirror : bool
        For four-vector beams, also include ``(E, 0, 0, -pz)``.
    device, dtype : optional

    Returns
    -------
    Tensor, shape (num_sta_spurions(...), 16)
    """
    _check_sta_options(beam_spurion, "sta_spurions")
    parts = []
    if beam_spurion == "xyplane":
        parts.append(plane_spurion(STA, "e1", "e2", dtype=dtype, device=device))
    elif beam_spurion is not None:
        root2 = 2.0**0.5
        energy = {"lightlike": 1.0, "timelike": root2, "spacelike": 0.0}[beam_spurion]
        beams = [[energy, 0.0, 0.0, 1.0]]
        if beam_mirror:
            beams.append([energy, 0.0, 0.0, -1.0])
        parts.append(sta.embed_vector(torch.tensor(beams, dtype=dtype, device=device)))
    if add_time_spurion:
        parts.append(time_spurion(STA, "e0", dtype=dtype, device=device))
    if not parts:
        return torch.zeros(0, STA.dim, dtype=dtype, device=device)
    return torch.cat(parts, dim=0)


# -- PGA3 (GATr) ----------------------------------------------------------------------------------------
def gravity_spurion(
    direction: Sequence[float] | Tensor = (0.0, 0.0, -1.0),
    representation: str = "ideal_line",
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""The direction of gravity in ``PGA3`` (default :math:`-z`), invariant under translations.

    Two translation-invariant ways to write a direction :math:`g` in PGA:

    * ``"ideal_line"`` (default): the bivector :math:`e_0 \wedge (g_1 e_1 + g_2 e_2 + g_3 e_3)`,
      the meet of the plane at infinity with the plane through the origin normal to
      :math:`g` (``PGA3.outer(e0, pga.embed_plane(g, 0))``): the horizon,
      oriented by :math:`g`. It maps as :math:`e_0 \wedge M g`, a true vector, so it keeps
      all translations, the rotations about vertical axes and the reflections in vertical
      planes: the symmetry of a scene under gravity.
    * ``"ideal_point"``: the point at infinity ``pga.embed_direction(g)``, a trivector that
      maps as :math:`\det M\, M g`. It keeps all translations and the rotations about
      vertical axes, but it is fixed by the mirror z -> -z (:math:`\det M = -1`,
      :math:`Mg = -g`) and flipped by the vertical mirrors: a pseudovector.

    Parameters
    ----------
    direction : array-like, shape (3,)
        Non-zero; not normalised.
    representation : {"ideal_line", "ideal_point"}
    dtype, device : optional

    Returns
    -------
    Tensor, shape (1, 16)
    """
    if representation not in GRAVITY_REPRESENTATIONS:
        raise ValueError(
            f"gravity_spurion: representation must be one of {GRAVITY_REPRESENTATIONS}, "
            f"got {representation!r}"
        )
    g = _three_vector(direction, "gravity_spurion", "direction", _dtype(dtype), device)
    if representation == "ideal_point":
        return pga.embed_direction(g)
    at_infinity = blade(PGA3, "e0", g).expand(*g.shape[:-1], PGA3.dim)  # the plane at infinity
    through_origin = pga.embed_plane(g, torch.zeros_like(g[..., :1]))
    return PGA3.outer(at_infinity, through_origin)


def ground_plane_spurion(
    normal: Sequence[float] | Tensor = (0.0, 0.0, 1.0),
    offset: float = 0.0,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""An oriented ground plane :math:`n \cdot x + d = 0` in ``PGA3`` (default z = 0, up = +z).

    ``pga.embed_plane(n, d)``. Planes map exactly under E(3), so the stabiliser is the
    plane's own isometry group that keeps its up side: translations along the plane,
    rotations about axes normal to it, reflections in planes normal to it (E(2)). Vertical
    translations and the mirror in the plane itself (which flips its orientation) are lost.

    Parameters
    ----------
    normal : array-like, shape (3,)
        Non-zero; it points "up".
    offset : float
        ``d``: the plane ``z = h`` with normal ``(0, 0, 1)`` has ``d = -h``.
    dtype, device : optional

    Returns
    -------
    Tensor, shape (1, 16)
    """
    n = _three_vector(normal, "ground_plane_spurion", "normal", _dtype(dtype), device)
    if not np.isfinite(float(offset)):
        raise ValueError(f"ground_plane_spurion: offset must be finite, got {offset!r}")
    return pga.embed_plane(n, torch.full_like(n[..., :1], float(offset)))


def _three_vector(
    v: Sequence[float] | Tensor, fn: str, arg: str, dtype: torch.dtype, device: torch.device | str | None
) -> Tensor:
    t = torch.as_tensor(v, dtype=dtype, device=device)
    if t.shape != (3,):
        raise ValueError(f"{fn}: expected {arg} of shape (3,), got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()) or float(t.abs().max()) == 0.0:
        raise ValueError(f"{fn}: {arg} must be finite and non-zero, got {t.tolist()}")
    return t.unsqueeze(0)
