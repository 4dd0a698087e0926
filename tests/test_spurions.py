"""Spurions (gatorch.interface.spurions): values, lgatr parity, the stabilisers they claim, errors."""

from __future__ import annotations

import math

import pytest
import torch

from gatorch import CGA3, PGA3, STA, VGA3, Algebra
from gatorch.interface import cga, pga, sta
from gatorch.interface.spurions import (
    BEAM_SPURIONS,
    append_spurions,
    gravity_spurion,
    ground_plane_spurion,
    num_sta_spurions,
    plane_spurion,
    point_spurion,
    sta_spurions,
    stabiliser_bivectors,
    time_spurion,
    vector_spurion,
)
from gatorch.testing import random_versors

F64 = torch.float64
STA_OPTIONS = [
    (beam, time, mirror)
    for beam in (*BEAM_SPURIONS, None)
    for time in (True, False)
    for mirror in (True, False)
]


def _blade(alg: Algebra, name: str, coef: float = 1.0) -> torch.Tensor:
    out = torch.zeros(alg.dim, dtype=F64)
    out[alg.index(name)] = coef
    return out


def _exp(alg: Algebra, name: str, angle: float) -> torch.Tensor:
    return alg.exp(_blade(alg, name, angle))


def _fixes(alg: Algebra, w: torch.Tensor, spurions: torch.Tensor) -> bool:
    moved = alg.sandwich(w[None], spurions.to(F64))
    return torch.allclose(moved, spurions.to(F64), atol=1e-10, rtol=1e-10)


# -- STA: parity with lgatr -----------------------------------------------------------------------------
@pytest.mark.parametrize(("beam", "time", "mirror"), STA_OPTIONS)
def test_sta_spurions_equal_lgatr(beam: str | None, time: bool, mirror: bool) -> None:
    lgatr_spurions = pytest.importorskip("lgatr.interface.spurions")
    ours = sta_spurions(beam, time, mirror)
    theirs = lgatr_spurions.get_spurions(beam, time, mirror)
    assert ours.dtype == theirs.dtype == torch.float32
    torch.testing.assert_close(ours, theirs, atol=0, rtol=0)
    assert num_sta_spurions(beam, time, mirror) == lgatr_spurions.get_num_spurions(beam, time, mirror)
    assert ours.shape == (num_sta_spurions(beam, time, mirror), 16)
    ours64 = sta_spurions(beam, time, mirror, dtype=F64)
    torch.testing.assert_close(
        ours64, lgatr_spurions.get_spurions(beam, time, mirror, dtype=F64), atol=0, rtol=0
    )


def test_sta_spurions_by_blade_name() -> None:
    """The blade order is checked by name, not assumed: e12 is the xy-plane, e0 is time."""
    xy, t = sta_spurions("xyplane", True)
    assert xy[STA.index("e12")] == 1 and xy.abs().sum() == 1
    assert t[STA.index("e0")] == 1 and t.abs().sum() == 1
    beams = sta_spurions("timelike", False, True, dtype=F64)
    expected = torch.tensor([[math.sqrt(2), 0, 0, 1], [math.sqrt(2), 0, 0, -1]], dtype=F64)
    torch.testing.assert_close(sta.extract_vector(beams), expected)
    minkowski = STA.inner_product(beams, beams)
    torch.testing.assert_close(minkowski, torch.ones(2, dtype=F64))  # timelike: p^2 = 2 - 1
    light = sta_spurions("lightlike", False, True, dtype=F64)
    torch.testing.assert_close(STA.inner_product(light, light), torch.zeros(2, dtype=F64))
    assert sta_spurions(None, False).shape == (0, 16)


# -- STA: stabilisers -------------------------------------------------------------------------------------
def _sta_elements() -> dict[str, torch.Tensor]:
    return {
        "rot_z": _exp(STA, "e12", 0.7),
        "rot_x": _exp(STA, "e23", 0.4),
        "boost_z": _exp(STA, "e03", 0.9),
        "boost_x": _exp(STA, "e01", -0.6),
        "flip_x": _blade(STA, "e1"),  # reflection x -> -x (odd versor)
        "flip_y": _blade(STA, "e2"),
        "flip_z": _blade(STA, "e3"),
        "flip_t": _blade(STA, "e0"),  # time reversal
        "parity": STA.gp(STA.gp(_blade(STA, "e1"), _blade(STA, "e2")), _blade(STA, "e3")),
        "rot_z_flip_z": STA.gp(_exp(STA, "e12", 1.1), _blade(STA, "e3")),
        "boost_z_rot_z": STA.gp(_exp(STA, "e03", -0.5), _exp(STA, "e12", 2.0)),
    }


# (options, elements that fix every spurion, elements that move at least one)
STA_STABILISERS = [
    # parity = (rotation by pi about z) o (z -> -z): kept by the xy-plane
    (("xyplane", False, True),
     ["rot_z", "boost_z", "flip_z", "flip_t", "rot_z_flip_z", "boost_z_rot_z", "parity"],
     ["rot_x", "boost_x", "flip_x", "flip_y"]),
    (("xyplane", True, True), ["rot_z", "flip_z", "rot_z_flip_z", "parity"],
     ["boost_z", "flip_t", "rot_x", "boost_x", "flip_x", "boost_z_rot_z"]),
    ((None, True, True), ["rot_z", "rot_x", "flip_x", "flip_z", "parity", "rot_z_flip_z"],
     ["boost_z", "boost_x", "flip_t", "boost_z_rot_z"]),
    (("lightlike", True, True), ["rot_z", "flip_x", "flip_y"],
     ["boost_z", "flip_z", "flip_t", "rot_x", "boost_x", "parity", "rot_z_flip_z"]),
    (("lightlike", False, True), ["rot_z", "flip_x", "flip_y"],
     ["boost_z", "flip_z", "flip_t", "rot_x", "boost_x", "parity"]),
    (("timelike", False, True), ["rot_z", "flip_x", "flip_y"], ["boost_z", "flip_z", "flip_t", "rot_x"]),
    (("spacelike", True, True), ["rot_z", "flip_x", "flip_y"], ["boost_z", "flip_z", "flip_t", "boost_x"]),
    (("spacelike", False, False), ["rot_z", "boost_x", "flip_x", "flip_y", "flip_t"],
     ["boost_z", "flip_z", "rot_x", "parity"]),
]  # fmt: skip


@pytest.mark.parametrize(("options", "kept", "broken"), STA_STABILISERS, ids=lambda v: str(v))
def test_sta_stabilisers(options: tuple, kept: list[str], broken: list[str]) -> None:
    s = sta_spurions(*options, dtype=F64)
    elements = _sta_elements()
    for name in kept:
        assert _fixes(STA, elements[name], s), f"{options}: {name} should fix the spurions"
    for name in broken:
        assert not _fixes(STA, elements[name], s), f"{options}: {name} should move a spurion"


def test_random_lorentz_transformations_move_spurions() -> None:
    s = sta_spurions("xyplane", True, dtype=F64)
    for w in random_versors(STA, 8, seed=3):
        assert not _fixes(STA, w, s)


@pytest.mark.parametrize(
    ("options", "dimension"),
    [
        (("xyplane", False, True), 2),  # z rotation, z boost
        (("xyplane", True, True), 1),  # z rotation
        ((None, True, True), 3),  # so(3)
        ((None, False, True), 6),  # all of so(1, 3)
        (("spacelike", False, False), 3),  # so(1, 2)
        (("lightlike", False, False), 3),  # iso(2), the little group of a massless particle
        (("lightlike", False, True), 1),
        (("timelike", True, True), 1),
    ],
)
def test_stabiliser_dimensions(options: tuple, dimension: int) -> None:
    basis = stabiliser_bivectors(STA, sta_spurions(*options, dtype=F64))
    assert basis.shape == (dimension, 16)
    assert torch.all(basis[:, : STA.grade_slice(2).start] == 0)
    if options == ("xyplane", False, True):  # the span is exactly {e12, e03}
        span = basis[:, [STA.index("e12"), STA.index("e03")]]
        torch.testing.assert_close(span @ span.T, torch.eye(2, dtype=F64))


# -- PGA3 -------------------------------------------------------------------------------------------------
def _pga_elements() -> dict[str, torch.Tensor]:
    shifts = {"x": [1.5, 0, 0], "y": [0, -2.0, 0], "z": [0, 0, 0.8], "xy": [0.3, 0.4, 0]}
    trans = {f"translate_{k}": pga.embed_translation(torch.tensor(v, dtype=F64)) for k, v in shifts.items()}

    def plane(n: list[float], d: float) -> torch.Tensor:
        return pga.embed_reflection(torch.tensor(n, dtype=F64), torch.tensor([d], dtype=F64))

    out = {
        **trans,
        "rot_z": _exp(PGA3, "e12", 0.8),
        "rot_x": _exp(PGA3, "e23", 0.5),
        # a rotation about the vertical axis through (1, 2, 0): two vertical planes through it
        "rot_z_offaxis": PGA3.gp(plane([1, 0, 0], -1.0), plane([1, 1, 0], -3.0)),
        "mirror_x0": plane([1, 0, 0], 0.0),  # the vertical plane x = 0
        "mirror_x2": plane([1, 0, 0], -2.0),  # the vertical plane x = 2
        "mirror_z0": plane([0, 0, 1], 0.0),  # the horizontal plane z = 0
        "mirror_z1": plane([0, 0, 1], -1.0),
    }
    e1, e2, e3 = (_blade(PGA3, n) for n in ("e1", "e2", "e3"))
    out["point_reflection"] = PGA3.gp(PGA3.gp(e1, e2), e3)
    return out


PGA_STABILISERS = [
    ("gravity_line", ["translate_x", "translate_y", "translate_z", "rot_z", "rot_z_offaxis", "mirror_x0",
                      "mirror_x2"], ["rot_x", "mirror_z0", "mirror_z1", "point_reflection"]),
    ("gravity_point", ["translate_x", "translate_z", "rot_z", "rot_z_offaxis", "mirror_z0", "mirror_z1",
                       "point_reflection"], ["rot_x", "mirror_x0", "mirror_x2"]),
    ("ground", ["translate_x", "translate_y", "translate_xy", "rot_z", "rot_z_offaxis", "mirror_x0",
                "mirror_x2"], ["translate_z", "rot_x", "mirror_z0", "mirror_z1", "point_reflection"]),
]  # fmt: skip


@pytest.mark.parametrize(("which", "kept", "broken"), PGA_STABILISERS, ids=[c[0] for c in PGA_STABILISERS])
def test_pga_stabilisers(which: str, kept: list[str], broken: list[str]) -> None:
    s = {
        "gravity_line": gravity_spurion(dtype=F64),
        "gravity_point": gravity_spurion(representation="ideal_point", dtype=F64),
        "ground": ground_plane_spurion(dtype=F64),
    }[which]
    elements = _pga_elements()
    for name in kept:
        assert _fixes(PGA3, elements[name], s), f"{which}: {name} should fix the spurion"
    for name in broken:
        assert not _fixes(PGA3, elements[name], s), f"{which}: {name} should move the spurion"


def test_pga_spurion_values_and_dimensions() -> None:
    line = gravity_spurion(dtype=F64)[0]
    assert line[PGA3.index("e03")] == -1 and line.abs().sum() == 1  # e0 ^ (-e3)
    point = gravity_spurion(representation="ideal_point", dtype=F64)
    torch.testing.assert_close(pga.extract_direction(point), torch.tensor([[0.0, 0.0, -1.0]], dtype=F64))
    ground = ground_plane_spurion(offset=-2.0, dtype=F64)  # z = 2
    on = pga.embed_point(torch.tensor([[5.0, -1.0, 2.0]], dtype=F64))
    off = pga.embed_point(torch.tensor([[5.0, -1.0, 2.5]], dtype=F64))
    assert PGA3.outer(ground, on).abs().max() < 1e-12 < PGA3.outer(ground, off).abs().max()
    # continuous symmetry kept: 3 translations + z rotation; 2 translations + z rotation
    assert stabiliser_bivectors(PGA3, gravity_spurion(dtype=F64)).shape[0] == 4
    assert stabiliser_bivectors(PGA3, ground_plane_spurion(dtype=F64)).shape[0] == 3
    assert stabiliser_bivectors(PGA3, point_spurion(PGA3, [1.0, 2.0, 3.0], dtype=F64)).shape[0] == 3


@pytest.mark.parametrize("alg", [PGA3, CGA3], ids=["PGA3", "CGA3"])
def test_point_spurion_stabiliser(alg: Algebra) -> None:
    mod = pga if alg == PGA3 else cga
    x0 = [1.0, 2.0, 3.0]
    s = point_spurion(alg, x0, dtype=F64)
    torch.testing.assert_close(mod.extract_point(s), torch.tensor([x0], dtype=F64))

    def plane(n: list[float]) -> torch.Tensor:  # the plane with normal n through x0
        nt = torch.tensor(n, dtype=F64)
        d = float(nt @ torch.tensor(x0, dtype=F64))
        if alg == PGA3:
            return pga.embed_plane(nt, torch.tensor([-d], dtype=F64))
        return cga.embed_plane(nt, torch.tensor([d], dtype=F64))

    rotation = alg.gp(plane([1.0, 0.0, 0.0]), plane([0.3, 1.0, -0.5]))
    assert _fixes(alg, rotation, s)
    assert _fixes(alg, plane([0.2, -0.4, 1.0]), s) == (alg == CGA3)  # PGA: the weight flips sign
    if alg == PGA3:
        assert not _fixes(alg, pga.embed_translation(torch.tensor([0.1, 0.0, 0.0], dtype=F64)), s)


# -- generic helpers ----------------------------------------------------------------------------------------
def test_vector_plane_and_time_spurions() -> None:
    v = vector_spurion(VGA3, [[0.0, 0.0, 2.0], [1.0, 0.0, 0.0]], dtype=F64)
    assert v.shape == (2, 8) and v[0, VGA3.index("e3")] == 2 and v[1, VGA3.index("e1")] == 1
    assert torch.equal(vector_spurion(VGA3, "e3", dtype=F64)[0], _blade(VGA3, "e3"))
    p = plane_spurion(VGA3, [1.0, 1.0, 0.0], [0.0, 1.0, 0.0], dtype=F64)
    assert torch.equal(p[0], _blade(VGA3, "e12"))  # (e1 + e2) ^ e2 = e12
    # the stabiliser of the vector e3 in VGA3 is O(2): one rotation generator
    assert stabiliser_bivectors(VGA3, vector_spurion(VGA3, "e3", dtype=F64)).shape[0] == 1
    assert stabiliser_bivectors(VGA3, p).shape[0] == 1  # rotations in the plane
    assert torch.equal(time_spurion(STA, dtype=F64)[0], _blade(STA, "e0"))
    cl31 = Algebra(3, 1)  # time is the one vector squaring to -1
    assert time_spurion(cl31)[0, cl31.index("e4")] == 1
    assert time_spurion(Algebra(1, 1), "e2")[0, Algebra(1, 1).index("e2")] == 1
    assert point_spurion(VGA3, [1.0, 2.0, 3.0]).shape == (1, 8)


def test_append_spurions() -> None:
    mv = torch.randn(4, 7, 2, 16, dtype=F64)
    s = sta_spurions()  # float32: cast to mv's dtype
    out = append_spurions(mv, s, STA)
    assert out.shape == (4, 7, 4, 16) and out.dtype == F64  # 2 channels + xy-plane + time
    assert torch.equal(out[..., :2, :], mv)
    assert torch.equal(out[2, 5, 2:], s.to(F64))
    assert torch.equal(append_spurions(mv, torch.zeros(0, 16)), mv)
    assert append_spurions(torch.zeros(3, 16), s).shape == (5, 16)


def test_errors() -> None:
    with pytest.raises(ValueError, match="beam_spurion must be one of"):
        sta_spurions("z-axis")
    with pytest.raises(ValueError, match="beam_spurion must be one of"):
        num_sta_spurions("z-axis")
    with pytest.raises(ValueError, match="spurions have 32"):
        append_spurions(torch.zeros(2, 3, 16), point_spurion(CGA3, [0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="last dimension 16"):
        append_spurions(torch.zeros(2, 3, 8), torch.zeros(1, 8), STA)
    with pytest.raises(ValueError, match=r"shape \(k, dim\)"):
        append_spurions(torch.zeros(2, 3, 16), torch.zeros(16))
    with pytest.raises(ValueError, match=r"\(\.\.\., channels, dim\)"):
        append_spurions(torch.zeros(16), torch.zeros(1, 16))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        append_spurions([0.0], torch.zeros(1, 16))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Lorentzian"):
        time_spurion(VGA3)
    with pytest.raises(ValueError, match="Lorentzian"):
        time_spurion(PGA3)
    with pytest.raises(ValueError, match="not the timelike"):
        time_spurion(STA, "e1")
    with pytest.raises(ValueError, match="name the timelike one"):
        time_spurion(Algebra(1, 1))
    with pytest.raises(ValueError, match="not a basis vector"):
        vector_spurion(STA, "e5")
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        vector_spurion(STA, [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="non-zero"):
        vector_spurion(STA, [0.0, 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="parallel"):
        plane_spurion(STA, "e1", [0.0, 2.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="PGA3, CGA3 and VGA3"):
        point_spurion(STA, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"shape \(3,\) or \(k, 3\)"):
        point_spurion(PGA3, [0.0, 0.0])
    with pytest.raises(ValueError, match="representation"):
        gravity_spurion(representation="vector")
    with pytest.raises(ValueError, match="non-zero"):
        gravity_spurion((0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        ground_plane_spurion((0.0, 1.0))
    with pytest.raises(TypeError, match="Algebra"):
        vector_spurion("STA", "e1")  # type: ignore[arg-type]
