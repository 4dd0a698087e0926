"""Tests of gatorch.interface: conventions, round trips, equivariance, errors.

Expected values are derived independently of the code under test: group elements are
built as products of reflections (vectors written blade by blade) whose matrices are
explicit Householder products, rotations of quaternions come from an explicit Hamilton
product, and conventions are pinned by blade-name formulas and incidence relations.
"""

from __future__ import annotations

import math

import pytest
import torch

from gatorch import CGA3, PGA3, STA, VGA3, Algebra
from gatorch.interface import cga, pga, sta, vga
from gatorch.testing import random_versors, versor_parity

DT = torch.float64
TOL = dict(atol=1e-9, rtol=1e-9)
B = 16  # items per group of reflections


# -- independent helpers -------------------------------------------------------------------------
def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mv(alg: Algebra, coeffs: dict[str, torch.Tensor | float], batch: tuple[int, ...] = ()) -> torch.Tensor:
    """Multivector with the named blade coefficients (tensors of shape ``batch`` or floats)."""
    out = torch.zeros(*batch, alg.dim, dtype=DT)
    for name, c in coeffs.items():
        out[..., alg.index(name)] = out[..., alg.index(name)] + c
    return out


def comp(alg: Algebra, x: torch.Tensor, name: str) -> torch.Tensor:
    return x[..., alg.index(name)]


def vecs(alg: Algebra, names: tuple[str, ...], coords: torch.Tensor) -> torch.Tensor:
    """Vectors ``sum_i coords[..., i] e_{names[i]}``."""
    return mv(alg, {n: coords[..., i] for i, n in enumerate(names)}, tuple(coords.shape[:-1]))


def householder(n: torch.Tensor) -> torch.Tensor:
    """Euclidean reflection matrices ``I - 2 n n^T / |n|^2``; n: (..., k)."""
    eye = torch.eye(n.shape[-1], dtype=DT)
    return eye - 2 * n[..., :, None] * n[..., None, :] / (n * n).sum(-1)[..., None, None]


def hamilton(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Hamilton product of quaternions (w, x, y, z)."""
    w1, x1, y1, z1 = p.unbind(-1)
    w2, x2, y2, z2 = q.unbind(-1)
    return torch.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        -1,
    )


def quat_rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``q v q*`` for unit quaternions q: (..., 4), vectors v: (..., 3)."""
    conj = q * torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=DT)
    pure = torch.cat([torch.zeros_like(v[..., :1]), v], -1)
    return hamilton(hamilton(q, pure), conj)[..., 1:]


def quat_matrix(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrix of unit quaternions, column j = q e_j q*."""
    eye = torch.eye(3, dtype=DT)
    cols = [quat_rotate(q, eye[j].expand(*q.shape[:-1], 3)) for j in range(3)]
    return torch.stack(cols, -1)


def unit_quaternions(n: int, seed: int) -> torch.Tensor:
    q = torch.randn(n, 4, generator=gen(seed), dtype=DT)
    return q / q.norm(dim=-1, keepdim=True)


def apply(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (m @ x[..., None])[..., 0]


def reflection_products(alg: Algebra, vectors: list[torch.Tensor]) -> torch.Tensor:
    """Versor ``v_1 v_2 ... v_k`` (acts as rho_{v_1} o ... o rho_{v_k})."""
    w = vectors[0]
    for v in vectors[1:]:
        w = alg.gp(w, v)
    return w


def euclidean_group(
    alg: Algebra, names: tuple[str, ...], infinity: dict[str, float] | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random isometries ``x -> M x + t`` of R^3 as products of k = 1..4 plane reflections.

    A plane ``n . x = delta`` is the vector ``n + delta * infinity`` (``infinity`` the blade
    coefficients of the vector that carries the offset; ``None``: planes through 0 only).
    Its reflection is ``x -> H x + 2 delta n / |n|^2``, written out here; the versor's
    twisted action is the composition. Returns ``(versors (4B, dim), M (4B, 3, 3), t (4B, 3))``,
    even and odd elements alike.
    """
    g = gen(seed)
    ws, ms, ts = [], [], []
    for k in (1, 2, 3, 4):
        n = torch.randn(k, B, 3, generator=g, dtype=DT)
        delta = torch.randn(k, B, generator=g, dtype=DT) if infinity else torch.zeros(k, B, dtype=DT)
        vs = []
        m = torch.eye(3, dtype=DT).expand(B, 3, 3)
        t = torch.zeros(B, 3, dtype=DT)
        for i in reversed(range(k)):  # rightmost factor acts first
            v = vecs(alg, names, n[i])
            if infinity:
                v = v + mv(alg, {name: c * delta[i] for name, c in infinity.items()}, (B,))
            vs.insert(0, v)
            h = householder(n[i])
            shift = 2 * delta[i][:, None] * n[i] / (n[i] * n[i]).sum(-1, keepdim=True)
            m, t = h @ m, apply(h, t) + shift
        ws.append(reflection_products(alg, vs))
        ms.append(m)
        ts.append(t)
    return torch.cat(ws), torch.cat(ms), torch.cat(ts)


def det(m: torch.Tensor) -> torch.Tensor:
    return torch.linalg.det(m)[:, None]


PGA_E = ("e1", "e2", "e3")
PGA_E0 = {"e0": -1.0}  # the plane n . x = delta is n - delta e0 in the convention n . x + d = 0


def pga_point_ref(x: torch.Tensor) -> torch.Tensor:
    """GATr's point convention, blade by blade."""
    b = tuple(x.shape[:-1])
    return mv(PGA3, {"e123": 1.0, "e023": -x[..., 0], "e013": x[..., 1], "e012": -x[..., 2]}, b)


def pga_translator_ref(t: torch.Tensor) -> torch.Tensor:
    b = tuple(t.shape[:-1])
    return mv(PGA3, {"1": 1.0, "e01": -0.5 * t[..., 0], "e02": -0.5 * t[..., 1], "e03": -0.5 * t[..., 2]}, b)


def close(a: torch.Tensor, b: torch.Tensor, **kw: float) -> None:
    torch.testing.assert_close(a, b, **(kw or TOL))


def close_up_to_sign(a: torch.Tensor, b: torch.Tensor) -> None:
    sign = torch.sign((a * b).sum(-1, keepdim=True))
    close(a * sign, b)


# -- helpers are right ------------------------------------------------------------------------
def test_reference_helpers():
    q = unit_quaternions(8, 0)
    m = quat_matrix(q)
    close(m.transpose(-1, -2) @ m, torch.eye(3, dtype=DT).expand(8, 3, 3))
    close(torch.linalg.det(m), torch.ones(8, dtype=DT))
    # rotation by 90 degrees about z: q = (cos 45, 0, 0, sin 45) maps x to y
    c = math.sqrt(0.5)
    close(
        quat_matrix(torch.tensor([c, 0, 0, c], dtype=DT)) @ torch.tensor([1.0, 0, 0], dtype=DT),
        torch.tensor([0.0, 1, 0], dtype=DT),
    )
    _, ms, _ = euclidean_group(PGA3, PGA_E, PGA_E0, 0)
    close(ms.transpose(-1, -2) @ ms, torch.eye(3, dtype=DT).expand(4 * B, 3, 3))
    d = torch.linalg.det(ms)
    assert (d[:B] < 0).all() and (d[B : 2 * B] > 0).all() and (d[2 * B : 3 * B] < 0).all()
    assert (d[3 * B :] > 0).all()


# ======================================= PGA ==================================================
def test_pga_point_convention_and_incidence():
    x = torch.randn(5, 3, generator=gen(1), dtype=DT)
    close(pga.embed_point(x), pga_point_ref(x))
    # GATr's layout, literally: components 11..14 = (-z, y, -x, 1)
    p = pga.embed_point(torch.tensor([1.0, 2.0, 3.0], dtype=DT))
    expected = torch.zeros(16, dtype=DT)
    expected[11:15] = torch.tensor([-3.0, 2.0, -1.0, 1.0], dtype=DT)
    close(p, expected)
    # plane n . x + d = 0 contains x: their outer product vanishes, else it does not
    n = torch.randn(5, 3, generator=gen(2), dtype=DT)
    d = -(n * x).sum(-1, keepdim=True)
    plane = pga.embed_plane(n, d)
    close(PGA3.outer(plane, pga.embed_point(x)), torch.zeros(5, 16, dtype=DT))
    off = PGA3.outer(plane, pga.embed_point(x + n))
    assert (off.abs().amax(-1) > 1e-3).all()
    # the e0 coefficient is d, the Euclidean part n
    close(comp(PGA3, plane, "e0"), d[:, 0])
    close(plane[..., [PGA3.index(k) for k in PGA_E]], n)


def test_pga_round_trips():
    g = gen(3)
    x = torch.randn(4, 5, 3, generator=g, dtype=DT)
    close(pga.extract_point(pga.embed_point(x)), x)
    close(pga.extract_point(-2.5 * pga.embed_point(x)), x)  # homogeneous
    close(pga.extract_direction(pga.embed_direction(x)), x)
    close(comp(PGA3, pga.embed_direction(x), "e123"), torch.zeros(4, 5, dtype=DT))
    n, d = torch.randn(4, 5, 3, generator=g, dtype=DT), torch.randn(4, 5, 1, generator=g, dtype=DT)
    for n2, d2 in (
        pga.extract_plane(pga.embed_plane(n, d)),
        pga.extract_reflection(pga.embed_reflection(n, d)),
    ):
        close(n2, n)
        close(d2, d)
    close(pga.extract_translation(pga.embed_translation(x)), x)
    close(pga.extract_translation(3.0 * pga.embed_translation(x)), x)
    q = unit_quaternions(20, 4)
    close(pga.extract_rotation(pga.embed_rotation(q)), q)
    close(pga.extract_rotation(-0.3 * pga.embed_rotation(q)), -q)
    s = torch.randn(4, 5, 1, generator=g, dtype=DT)
    close(pga.extract_scalar(pga.embed_scalar(s)), s)
    close(pga.extract_pseudoscalar(pga.embed_pseudoscalar(s)), s)
    close(pga.embed_scalar(s)[..., 0:1], s)
    close(comp(PGA3, pga.embed_pseudoscalar(s), "e0123"), s[..., 0])


def test_pga_extract_point_threshold():
    mv_ = pga.embed_direction(torch.tensor([[1.0, 2.0, 3.0]], dtype=DT))
    assert not torch.isfinite(pga.extract_point(mv_)).all()
    out = pga.extract_point(mv_, threshold=1e-3)
    close(out, torch.tensor([[1e3, 2e3, 3e3]], dtype=DT))
    neg = pga.embed_point(torch.tensor([[1.0, 2.0, 3.0]], dtype=DT)) * -1e-5
    close(pga.extract_point(neg, threshold=1e-3), torch.tensor([[1e-2, 2e-2, 3e-2]], dtype=DT))


def test_pga_translation_action():
    g = gen(5)
    x, t = torch.randn(2, 10, 3, generator=g, dtype=DT)
    n, d = torch.randn(10, 3, generator=g, dtype=DT), torch.randn(10, 1, generator=g, dtype=DT)
    tr = pga.embed_translation(t)
    close(tr, pga_translator_ref(t))
    close(PGA3.sandwich(tr, pga.embed_point(x)), pga_point_ref(x + t))
    close(PGA3.sandwich(tr, pga.embed_direction(x)), pga.embed_direction(x))  # directions invariant
    # the translated plane {y : n . (y - t) + d = 0}
    close(PGA3.sandwich(tr, pga.embed_plane(n, d)), pga.embed_plane(n, d - (n * t).sum(-1, keepdim=True)))


def test_pga_rotation_action():
    q = unit_quaternions(12, 6)
    x = torch.randn(12, 3, generator=gen(7), dtype=DT)
    r = pga.embed_rotation(q)
    close(PGA3.sandwich(r, pga.embed_point(x)), pga_point_ref(quat_rotate(q, x)))
    close(PGA3.sandwich(r, pga.embed_direction(x)), pga.embed_direction(quat_rotate(q, x)))
    # blade by blade: w - x e23 + y e13 - z e12
    close(r, mv(PGA3, {"1": q[:, 0], "e23": -q[:, 1], "e13": q[:, 2], "e12": -q[:, 3]}, (12,)))


def test_pga_reflection_action():
    g = gen(8)
    x, n = torch.randn(2, 10, 3, generator=g, dtype=DT)
    d = torch.randn(10, 1, generator=g, dtype=DT)
    expected = x - 2 * ((n * x).sum(-1, keepdim=True) + d) * n / (n * n).sum(-1, keepdim=True)
    out = PGA3.sandwich(pga.embed_reflection(n, d), pga.embed_point(x))
    close(pga.extract_point(out), expected)
    close(out, -pga_point_ref(expected))  # an odd versor flips the weight of a point


@pytest.fixture(scope="module")
def pga_group():
    w, m, t = euclidean_group(PGA3, PGA_E, PGA_E0, 10)
    w0, m0, t0 = euclidean_group(PGA3, PGA_E, None, 9)  # O(3): planes through the origin
    # plus pure translations (even) and translated point reflections (odd)
    tt = torch.randn(B, 3, generator=gen(11), dtype=DT)
    tr = pga_translator_ref(tt)
    w = torch.cat([w, w0, tr, PGA3.gp(tr, mv(PGA3, {"e123": 1.0}, (B,)))])
    eye = torch.eye(3, dtype=DT).expand(B, 3, 3)
    return w, torch.cat([m, m0, eye, -eye]), torch.cat([t, t0, tt, tt])


def test_pga_equivariance_points_directions(pga_group):
    w, m, t = pga_group
    x = torch.randn(len(w), 3, generator=gen(12), dtype=DT)
    moved = PGA3.sandwich(w, pga.embed_point(x))
    close(moved, det(m) * pga.embed_point(apply(m, x) + t))
    close(pga.extract_point(moved), apply(m, x) + t)
    close(PGA3.sandwich(w, pga.embed_direction(x)), det(m) * pga.embed_direction(apply(m, x)))


def test_pga_equivariance_planes(pga_group):
    w, m, t = pga_group
    g = gen(13)
    n, d = torch.randn(len(w), 3, generator=g, dtype=DT), torch.randn(len(w), 1, generator=g, dtype=DT)
    mn = apply(m, n)
    expected = pga.embed_plane(mn, d - (mn * t).sum(-1, keepdim=True))
    close(PGA3.sandwich(w, pga.embed_plane(n, d)), expected)
    close(PGA3.sandwich(w, pga.embed_reflection(n, d)), expected)


def test_pga_equivariance_translations_rotations(pga_group):
    w, m, t = pga_group
    s = torch.randn(len(w), 3, generator=gen(14), dtype=DT)
    close(PGA3.sandwich(w, pga.embed_translation(s)), pga.embed_translation(apply(m, s)))
    q = unit_quaternions(len(w), 15)
    conj = PGA3.sandwich(w, pga.embed_rotation(q))
    expected = m @ quat_matrix(q) @ m.transpose(-1, -2)
    close(quat_matrix(pga.extract_rotation(conj)), expected)
    # without translation the conjugated rotor is exactly a rotor
    no_t = t.abs().amax(-1) < 1e-12
    assert no_t.sum() >= B
    close_up_to_sign(conj[no_t], pga.embed_rotation(pga.extract_rotation(conj[no_t])))


def test_pga_equivariance_scalars(pga_group):
    w, m, _ = pga_group
    s = torch.randn(len(w), 1, generator=gen(16), dtype=DT)
    close(PGA3.sandwich(w, pga.embed_scalar(s)), pga.embed_scalar(s))
    close(PGA3.sandwich(w, pga.embed_pseudoscalar(s)), pga.embed_pseudoscalar(det(m) * s))


def test_pga_motion(pga_group):
    w, m, t = pga_group
    m2, t2 = pga.extract_motion(w)
    close(m2, m)
    close(t2, t)
    g = pga.embed_motion(m, t)
    assert g.shape == (len(w), 16)
    x = torch.randn(len(w), 3, generator=gen(17), dtype=DT)
    close(PGA3.sandwich(g, pga.embed_point(x)), det(m) * pga.embed_point(apply(m, x) + t))
    m3, t3 = pga.extract_motion(g)
    close(m3, m)
    close(t3, t)
    # broadcasting: one matrix, many translations
    g1 = pga.embed_motion(m[0], t)
    close(pga.extract_motion(g1)[0], m[0].expand(len(w), 3, 3))


# ======================================= VGA ==================================================
@pytest.fixture(scope="module")
def o3_group():
    w, m, _ = euclidean_group(VGA3, ("e1", "e2", "e3"), None, 20)
    return w, m


def test_vga_conventions_and_round_trips():
    g = gen(21)
    u, v = torch.randn(2, 6, 3, generator=g, dtype=DT)
    close(vga.embed_vector(u), vecs(VGA3, ("e1", "e2", "e3"), u))
    close(vga.extract_vector(vga.embed_vector(u)), u)
    a = vga.embed_axial_vector(u)
    close(a, mv(VGA3, {"e23": u[:, 0], "e13": -u[:, 1], "e12": u[:, 2]}, (6,)))
    close(vga.extract_axial_vector(a), u)
    # a e123 (Hodge dual) and the cross product as a wedge product
    close(a, VGA3.gp(vga.embed_vector(u), mv(VGA3, {"e123": 1.0})))
    close(
        vga.embed_axial_vector(torch.cross(u, v, dim=-1)),
        VGA3.outer(vga.embed_vector(u), vga.embed_vector(v)),
    )
    s = torch.randn(6, 1, generator=g, dtype=DT)
    close(vga.extract_scalar(vga.embed_scalar(s)), s)
    close(vga.extract_pseudoscalar(vga.embed_pseudoscalar(s)), s)
    close(comp(VGA3, vga.embed_pseudoscalar(s), "e123"), s[:, 0])
    q = unit_quaternions(10, 22)
    close(vga.extract_rotation(vga.embed_rotation(q)), q)


def test_vga_rotation_action():
    q = unit_quaternions(10, 23)
    v = torch.randn(10, 3, generator=gen(24), dtype=DT)
    r = vga.embed_rotation(q)
    close(VGA3.sandwich(r, vga.embed_vector(v)), vga.embed_vector(quat_rotate(q, v)))
    close(vga.extract_rotation_matrix(r), quat_matrix(q))
    close(vga.extract_rotation_matrix(2.0 * r), quat_matrix(q))


def test_vga_rotation_matrix(o3_group):
    w, m = o3_group
    close(vga.extract_rotation_matrix(w), m)
    versor = vga.embed_rotation_matrix(m)
    close(vga.extract_rotation_matrix(versor), m)
    v = torch.randn(len(m), 3, generator=gen(25), dtype=DT)
    close(VGA3.sandwich(versor, vga.embed_vector(v)), vga.embed_vector(apply(m, v)))
    proper = torch.linalg.det(m) > 0
    # rotors for rotations (even, unit), odd versors for improper ones
    odd = [k for k in range(4) if k % 2]
    odd_part = VGA3.grade(versor, odd).abs().amax(-1)
    even_part = (versor - VGA3.grade(versor, odd)).abs().amax(-1)
    assert (odd_part[proper] == 0).all() and (even_part[~proper] == 0).all()
    close(VGA3.inner_product(versor, versor), torch.ones(len(m), dtype=DT))
    # quaternion of a rotation matrix, 180-degree turns and the identity included
    q = unit_quaternions(20, 26)
    close_up_to_sign(vga.extract_rotation(vga.embed_rotation_matrix(quat_matrix(q))), q)
    special = torch.stack(
        [
            torch.eye(3, dtype=DT),
            torch.diag(torch.tensor([1.0, -1, -1], dtype=DT)),
            torch.diag(torch.tensor([-1.0, 1, -1], dtype=DT)),
            torch.diag(torch.tensor([-1.0, -1, 1], dtype=DT)),
            -torch.eye(3, dtype=DT),
            torch.diag(torch.tensor([-1.0, 1, 1], dtype=DT)),
            quat_matrix(torch.tensor([0.0, 1, 1, 0], dtype=DT) / math.sqrt(2)),
        ]
    )
    close(vga.extract_rotation_matrix(vga.embed_rotation_matrix(special)), special)


def test_vga_equivariance(o3_group):
    w, m = o3_group
    v = torch.randn(len(m), 3, generator=gen(27), dtype=DT)
    s = torch.randn(len(m), 1, generator=gen(28), dtype=DT)
    close(VGA3.sandwich(w, vga.embed_vector(v)), vga.embed_vector(apply(m, v)))
    # axial vectors are pseudovectors: a -> det(M) M a
    close(VGA3.sandwich(w, vga.embed_axial_vector(v)), vga.embed_axial_vector(det(m) * apply(m, v)))
    close(VGA3.sandwich(w, vga.embed_scalar(s)), vga.embed_scalar(s))
    close(VGA3.sandwich(w, vga.embed_pseudoscalar(s)), vga.embed_pseudoscalar(det(m) * s))
    q = unit_quaternions(len(m), 29)
    conj = VGA3.sandwich(w, vga.embed_rotation(q))
    close_up_to_sign(conj, vga.embed_rotation(vga.extract_rotation(conj)))
    close(quat_matrix(vga.extract_rotation(conj)), m @ quat_matrix(q) @ m.transpose(-1, -2))


# ======================================= CGA ==================================================
CGA_METRIC = torch.tensor([1.0, 1.0, 1.0, 1.0, -1.0], dtype=DT)  # e1..e4 = +1, e5 = -1


def cga_dot(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Inner product of the vector parts, with the metric written out."""
    names = ("e1", "e2", "e3", "e4", "e5")
    xv = torch.stack([comp(CGA3, x, n) for n in names], -1)
    yv = torch.stack([comp(CGA3, y, n) for n in names], -1)
    return (xv * yv * CGA_METRIC).sum(-1)


E_INF = {"e4": 1.0, "e5": 1.0}


def cga_point_ref(x: torch.Tensor) -> torch.Tensor:
    b = tuple(x.shape[:-1])
    h = 0.5 * (x * x).sum(-1)
    return vecs(CGA3, ("e1", "e2", "e3"), x) + mv(CGA3, {"e4": h - 0.5, "e5": h + 0.5}, b)


def test_cga_conventions():
    e_o, e_inf = cga.null_basis(DT)
    close(e_inf, mv(CGA3, E_INF))
    close(e_o, mv(CGA3, {"e4": -0.5, "e5": 0.5}))
    close(cga_dot(e_inf, e_inf), torch.tensor(0.0, dtype=DT))
    close(cga_dot(e_o, e_o), torch.tensor(0.0, dtype=DT))
    close(cga_dot(e_inf, e_o), torch.tensor(-1.0, dtype=DT))
    g = gen(30)
    x, y = torch.randn(2, 8, 3, generator=g, dtype=DT)
    px, py = cga.embed_point(x), cga.embed_point(y)
    close(px, cga_point_ref(x))
    close(cga_dot(px, px), torch.zeros(8, dtype=DT))
    close(cga_dot(px, py), -0.5 * ((x - y) ** 2).sum(-1))
    close(cga_dot(px, e_inf.expand_as(px)), -torch.ones(8, dtype=DT))
    # spheres: X . sigma = (r^2 - |x - c|^2) / 2, sigma^2 = r^2
    c = torch.randn(8, 3, generator=g, dtype=DT)
    r = torch.rand(8, 1, generator=g, dtype=DT) + 0.1
    sph = cga.embed_sphere(c, r)
    close(cga_dot(px, sph), 0.5 * (r[:, 0] ** 2 - ((x - c) ** 2).sum(-1)))
    close(cga_dot(sph, sph), r[:, 0] ** 2)
    on = c + r * x / x.norm(dim=-1, keepdim=True)
    close(cga_dot(cga.embed_point(on), sph), torch.zeros(8, dtype=DT))
    close(cga.embed_sphere(c, torch.zeros_like(r)), cga.embed_point(c))
    # planes: X . pi = n . x - delta
    n = torch.randn(8, 3, generator=g, dtype=DT)
    delta = torch.randn(8, 1, generator=g, dtype=DT)
    pl = cga.embed_plane(n, delta)
    close(cga_dot(px, pl), (n * x).sum(-1) - delta[:, 0])
    close(pl, vecs(CGA3, ("e1", "e2", "e3"), n) + delta * mv(CGA3, E_INF))


def test_cga_round_trips():
    g = gen(31)
    x = torch.randn(3, 7, 3, generator=g, dtype=DT)
    close(cga.extract_point(cga.embed_point(x)), x)
    close(cga.extract_point(-4.0 * cga.embed_point(x)), x)
    r = torch.rand(3, 7, 1, generator=g, dtype=DT) + 0.1
    c2, r2 = cga.extract_sphere(cga.embed_sphere(x, r))
    close(c2, x)
    close(r2, r)
    c3, r3 = cga.extract_sphere(-3.0 * cga.embed_sphere(x, r))
    close(c3, x)
    close(r3, r)
    n = torch.randn(3, 7, 3, generator=g, dtype=DT)
    n2, d2 = cga.extract_plane(cga.embed_plane(n, r))
    close(n2, n)
    close(d2, r)
    # imaginary sphere: radius 0, finite gradient
    sigma = cga.embed_point(x) + 0.5 * r * mv(CGA3, E_INF)  # sigma^2 = -r^2
    sigma.requires_grad_(True)
    radius = cga.extract_sphere(sigma)[1]
    close(radius, torch.zeros_like(r))
    radius.sum().backward()
    assert torch.isfinite(sigma.grad).all()


@pytest.fixture(scope="module")
def cga_group():
    """Isometries from reflections in planes n + delta e_inf, plus translators and dilations."""
    w, m, t = euclidean_group(CGA3, ("e1", "e2", "e3"), E_INF, 40)
    # translator by t = s u (|u| = 1): reflect in the plane u . x = 0, then in u . x = s / 2
    tt = torch.randn(B, 3, generator=gen(41), dtype=DT)
    s = tt.norm(dim=-1, keepdim=True)
    u = tt / s
    first = vecs(CGA3, ("e1", "e2", "e3"), u)
    second = first + (s / 2) * mv(CGA3, E_INF)
    tr = CGA3.gp(second, first)
    eye = torch.eye(3, dtype=DT).expand(B, 3, 3)
    return torch.cat([w, tr]), torch.cat([m, eye]), torch.cat([t, tt])


def test_cga_translator_helper(cga_group):
    w, _, t = cga_group
    e_inf = mv(CGA3, E_INF)
    # the translator built from two reflections is 1 + e_inf t / 2 (up to scale), as in the literature
    tr, tt = w[-B:], t[-B:]
    expected = mv(CGA3, {"1": 1.0}, (B,)) + 0.5 * CGA3.gp(
        e_inf.expand(B, 32), vecs(CGA3, ("e1", "e2", "e3"), tt)
    )
    close(tr / tr[:, :1], expected)


def test_cga_equivariance(cga_group):
    w, m, t = cga_group
    g = gen(42)
    x, n = torch.randn(2, len(w), 3, generator=g, dtype=DT)
    r = torch.rand(len(w), 1, generator=g, dtype=DT) + 0.1
    delta = torch.randn(len(w), 1, generator=g, dtype=DT)
    # the scale of the versor drops out of the sandwich, so isometries act exactly
    close(CGA3.sandwich(w, cga.embed_point(x)), cga.embed_point(apply(m, x) + t))
    close(CGA3.sandwich(w, cga.embed_sphere(x, r)), cga.embed_sphere(apply(m, x) + t, r))
    mn = apply(m, n)
    close(
        CGA3.sandwich(w, cga.embed_plane(n, delta)),
        cga.embed_plane(mn, delta + (mn * t).sum(-1, keepdim=True)),
    )


def test_cga_inversions_and_dilations():
    g = gen(43)
    x = torch.randn(10, 3, generator=g, dtype=DT)
    r = torch.rand(10, 1, generator=g, dtype=DT) + 0.1
    a, b = torch.rand(2, 10, 1, generator=g, dtype=DT) + 0.5

    def origin_sphere(rad: torch.Tensor) -> torch.Tensor:  # e_o - rad^2 / 2 e_inf, blade by blade
        return mv(CGA3, {"e4": -0.5 - 0.5 * rad[:, 0] ** 2, "e5": 0.5 - 0.5 * rad[:, 0] ** 2}, (10,))

    # inversion in the sphere of radius a about 0: x -> a^2 x / |x|^2
    inv = CGA3.sandwich(origin_sphere(a), cga.embed_point(x))
    close(cga.extract_point(inv), a**2 * x / (x * x).sum(-1, keepdim=True))
    # two inversions: the dilation x -> (b / a)^2 x
    dil = CGA3.gp(origin_sphere(b), origin_sphere(a))
    scale = (b / a) ** 2
    close(cga.extract_point(CGA3.sandwich(dil, cga.embed_point(x))), scale * x)
    c2, r2 = cga.extract_sphere(CGA3.sandwich(dil, cga.embed_sphere(x, r)))
    close(c2, scale * x)
    close(r2, scale * r)


# ======================================= STA ==================================================
ETA = torch.diag(torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=DT))
STA_E = ("e0", "e1", "e2", "e3")


def lorentz_group(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Products of k = 1..4 Minkowski reflections x -> x - 2 <x, n> n / <n, n> (n not near null)."""
    g = gen(seed)
    ws, ls = [], []
    for k in (1, 2, 3, 4):
        n = torch.randn(k, B, 4, generator=g, dtype=DT)
        nn = (n * (n @ ETA)).sum(-1)
        n = torch.where((nn.abs() < 0.3)[..., None], n + torch.tensor([2.0, 0, 0, 0], dtype=DT), n)
        lam = torch.eye(4, dtype=DT).expand(B, 4, 4)
        vs = []
        for i in range(k):
            nn_i = (n[i] * (n[i] @ ETA)).sum(-1)[:, None, None]
            h = torch.eye(4, dtype=DT) - 2 * n[i][:, :, None] * (n[i] @ ETA)[:, None, :] / nn_i
            lam = lam @ h
            vs.append(vecs(STA, STA_E, n[i]))
        ws.append(reflection_products(STA, vs))
        ls.append(lam)
    # parity e1 e2 e3 and time reversal e0 (odd), and PT (even)
    parity = torch.diag(torch.tensor([1.0, -1, -1, -1], dtype=DT))
    ws += [mv(STA, {"e123": 1.0}, (1,)), mv(STA, {"e0": 1.0}, (1,)), mv(STA, {"e0123": 1.0}, (1,))]
    ls += [parity[None], -parity[None], -torch.eye(4, dtype=DT)[None]]
    return torch.cat(ws), torch.cat(ls)


def test_sta_conventions_and_round_trip():
    p = torch.randn(3, 5, 4, generator=gen(50), dtype=DT)
    v = sta.embed_vector(p)
    close(v, vecs(STA, STA_E, p))
    close(sta.extract_vector(v), p)
    # Minkowski square E^2 - |p|^2 (mass^2 of a four-momentum)
    close(STA.inner_product(v, v), p[..., 0] ** 2 - (p[..., 1:] ** 2).sum(-1))
    s = torch.randn(3, 1, generator=gen(51), dtype=DT)
    close(sta.extract_scalar(sta.embed_scalar(s)), s)
    close(sta.extract_pseudoscalar(sta.embed_pseudoscalar(s)), s)
    close(comp(STA, sta.embed_pseudoscalar(s), "e0123"), s[:, 0])


def test_sta_explicit_boost():
    a = torch.linspace(-1.5, 1.5, 7, dtype=DT)
    # reflect in e0, then in n = cosh(a) e0 + sinh(a) e1: a boost of rapidity 2a along x
    n = mv(STA, {"e0": torch.cosh(a), "e1": torch.sinh(a)}, (7,))
    w = STA.gp(n, mv(STA, {"e0": 1.0}, (7,)))
    p = torch.randn(7, 4, generator=gen(52), dtype=DT)
    ch, sh = torch.cosh(2 * a), torch.sinh(2 * a)
    boosted = torch.stack([ch * p[:, 0] + sh * p[:, 1], sh * p[:, 0] + ch * p[:, 1], p[:, 2], p[:, 3]], -1)
    close(STA.sandwich(w, sta.embed_vector(p)), sta.embed_vector(boosted))


def test_sta_equivariance():
    w, lam = lorentz_group(53)
    close(lam.transpose(-1, -2) @ ETA @ lam, ETA.expand_as(lam))
    p = torch.randn(len(w), 4, generator=gen(54), dtype=DT)
    s = torch.randn(len(w), 1, generator=gen(55), dtype=DT)
    close(STA.sandwich(w, sta.embed_vector(p)), sta.embed_vector(apply(lam, p)), atol=1e-8, rtol=1e-9)
    close(STA.sandwich(w, sta.embed_scalar(s)), sta.embed_scalar(s))
    close(STA.sandwich(w, sta.embed_pseudoscalar(s)), sta.embed_pseudoscalar(det(lam) * s))


def test_random_core_versors_consistent():
    """For the core's random versors (half odd): the extracted motion is orthogonal, of the
    versor's parity, and predicts the action on points, planes and vectors."""
    w = random_versors(PGA3, 32, seed=70)
    m, t = pga.extract_motion(w)
    close(m.transpose(-1, -2) @ m, torch.eye(3, dtype=DT).expand(32, 3, 3))
    sign = 1 - 2 * versor_parity(PGA3, w).to(DT)
    close(torch.linalg.det(m), sign)
    x = torch.randn(32, 3, generator=gen(71), dtype=DT)
    close(PGA3.sandwich(w, pga.embed_point(x)), sign[:, None] * pga.embed_point(apply(m, x) + t))
    mx = apply(m, x)
    close(
        PGA3.sandwich(w, pga.embed_plane(x, t[:, :1])),
        pga.embed_plane(mx, t[:, :1] - (mx * t).sum(-1, keepdim=True)),
    )
    wv = random_versors(VGA3, 32, seed=72)
    mv_ = vga.extract_rotation_matrix(wv)
    close(torch.linalg.det(mv_), 1 - 2 * versor_parity(VGA3, wv).to(DT))
    close(VGA3.sandwich(wv, vga.embed_vector(x)), vga.embed_vector(apply(mv_, x)))


# ==================================== shared properties =========================================
EMBEDS = [
    (pga.embed_point, (3,)),
    (pga.embed_direction, (3,)),
    (pga.embed_plane, (3, 1)),
    (pga.embed_reflection, (3, 1)),
    (pga.embed_translation, (3,)),
    (pga.embed_rotation, (4,)),
    (pga.embed_scalar, (1,)),
    (pga.embed_pseudoscalar, (1,)),
    (vga.embed_vector, (3,)),
    (vga.embed_axial_vector, (3,)),
    (vga.embed_rotation, (4,)),
    (vga.embed_scalar, (1,)),
    (vga.embed_pseudoscalar, (1,)),
    (cga.embed_point, (3,)),
    (cga.embed_sphere, (3, 1)),
    (cga.embed_plane, (3, 1)),
    (sta.embed_vector, (4,)),
    (sta.embed_scalar, (1,)),
    (sta.embed_pseudoscalar, (1,)),
]

EXTRACTS = [
    (
        pga,
        [
            "extract_point",
            "extract_direction",
            "extract_plane",
            "extract_reflection",
            "extract_translation",
            "extract_rotation",
            "extract_motion",
            "extract_scalar",
            "extract_pseudoscalar",
        ],
    ),
    (
        vga,
        [
            "extract_vector",
            "extract_axial_vector",
            "extract_rotation",
            "extract_rotation_matrix",
            "extract_scalar",
            "extract_pseudoscalar",
        ],
    ),
    (cga, ["extract_point", "extract_sphere", "extract_plane"]),
    (sta, ["extract_vector", "extract_scalar", "extract_pseudoscalar"]),
]


def _name(fn) -> str:
    return f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"


@pytest.mark.parametrize(("fn", "widths"), EMBEDS, ids=[_name(f) for f, _ in EMBEDS])
def test_embed_errors_dtypes_shapes(fn, widths):
    alg = fn.__globals__["ALGEBRA"]
    # abs: valid geometry for every function (cga.embed_sphere refuses negative radii)
    good = [torch.randn(2, 5, w, dtype=torch.float32).abs() for w in widths]
    out = fn(*good)
    assert out.shape == (2, 5, alg.dim) and out.dtype == torch.float32
    for i, w in enumerate(widths):
        bad = list(good)
        bad[i] = torch.randn(2, 5, w + 1)
        with pytest.raises(ValueError, match=rf"\(\.\.\., {w}\).*\(2, 5, {w + 1}\)"):
            fn(*bad)
        bad[i] = torch.ones(2, 5, w, dtype=torch.int64)
        with pytest.raises(TypeError, match="floating"):
            fn(*bad)
        bad[i] = [0.0] * w
        with pytest.raises(TypeError, match=r"torch\.Tensor"):
            fn(*bad)
    # gradients flow to every input
    leaves = [torch.randn(3, w, dtype=DT).abs().requires_grad_(True) for w in widths]
    fn(*leaves).pow(2).sum().backward()
    for leaf in leaves:
        assert leaf.grad is not None and torch.isfinite(leaf.grad).all()


@pytest.mark.parametrize(
    ("module", "names"), EXTRACTS, ids=[m.__name__.rsplit(".", 1)[-1] for m, _ in EXTRACTS]
)
def test_extract_errors(module, names):
    alg = module.ALGEBRA
    other = next(a for a in (PGA3, VGA3, CGA3) if a.dim != alg.dim)
    for name in names:
        fn = getattr(module, name)
        with pytest.raises(ValueError, match=rf"expected last dimension {alg.dim}.*\(4, {other.dim}\)"):
            fn(torch.randn(4, other.dim))
        with pytest.raises(TypeError):
            fn(torch.ones(4, alg.dim, dtype=torch.int64))
        with pytest.raises(TypeError):
            fn([0.0] * alg.dim)


def test_matrix_argument_errors():
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, 3\).*\(5, 3\)"):
        vga.embed_rotation_matrix(torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, 3\).*\(2, 4, 4\)"):
        pga.embed_motion(torch.randn(2, 4, 4), torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\).*\(2, 2\)"):
        pga.embed_motion(torch.eye(3).expand(2, 3, 3), torch.randn(2, 2))


def test_gradcheck():
    g = gen(60)
    x = torch.randn(4, 3, generator=g, dtype=DT, requires_grad=True)
    torch.autograd.gradcheck(lambda p: pga.extract_point(pga.embed_point(p) * 1.7), (x,))
    mvs = torch.randn(4, 16, generator=g, dtype=DT, requires_grad=True)
    torch.autograd.gradcheck(pga.extract_point, (mvs,))
    torch.autograd.gradcheck(pga.extract_rotation, (mvs,))
    c = torch.randn(4, 3, generator=g, dtype=DT, requires_grad=True)
    r = (torch.rand(4, 1, generator=g, dtype=DT) + 0.5).requires_grad_(True)
    torch.autograd.gradcheck(lambda c_, r_: cga.extract_sphere(cga.embed_sphere(c_, r_)), (c, r))
    q = unit_quaternions(4, 61)
    m = quat_matrix(q).requires_grad_(True)
    torch.autograd.gradcheck(vga.embed_rotation_matrix, (m,))
    qq = q.clone().requires_grad_(True)  # through the rotor: a perturbed rotor must stay a versor
    torch.autograd.gradcheck(lambda q_: vga.extract_rotation_matrix(vga.embed_rotation(q_)), (qq,))


def test_batch_broadcasting_and_dtype():
    n = torch.randn(4, 1, 3)
    d = torch.randn(5, 1)
    out = pga.embed_plane(n, d)
    assert out.shape == (4, 5, 16) and out.dtype == torch.float32
    assert cga.embed_sphere(torch.randn(3), torch.ones(6, 1)).shape == (6, 32)
    x = torch.randn(7, 3, dtype=torch.float32)
    close(pga.extract_point(pga.embed_point(x)), x, atol=1e-6, rtol=1e-6)
    assert pga.embed_point(x.to(torch.bfloat16)).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="expected last dimension"):
        pga.extract_motion(torch.randn(3, 8, dtype=DT))


def test_public_exports():
    import gatorch.interface as interface

    assert sorted(interface.__all__) == ["cga", "pga", "spurions", "sta", "vga"]
    for module in (pga, vga, cga, sta, interface.spurions):
        for name in module.__all__:
            assert hasattr(module, name), name
    assert pga.ALGEBRA is PGA3 and vga.ALGEBRA is VGA3 and cga.ALGEBRA is CGA3 and sta.ALGEBRA is STA
