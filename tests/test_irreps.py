"""Tests of gatorch.irreps: the multivector <-> e3nn irreps bridge for VGA3 and PGA3.

Equivariance is checked against e3nn itself: the matrix ``M_g`` of a versor is read off its
action on ``e1, e2, e3`` (``alg.sandwich``) and the irreps transform by
``irreps.D_from_matrix(M_g)``; e3nn builds that in torch's default dtype, so it is computed
with float64 as the default. Odd versors (reflections) are always included.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

pytest.importorskip("e3nn")
from e3nn import o3

from gatorch import CGA3, PGA3, STA, VGA3, Algebra
from gatorch.interface import pga
from gatorch.interface._common import orthogonal_to_versor
from gatorch.irreps import PARTS, IrrepsToMV, MVToIrreps, from_irreps, irreps_for, to_irreps
from gatorch.testing import random_versors, versor_parity

DT = torch.float64
TOL = dict(atol=1e-12, rtol=1e-12)
B = 16
PGA_PARTS = list(PARTS)
CASES = [(VGA3, "full")] + [(PGA3, part) for part in PGA_PARTS]
CASE_IDS = ["VGA3"] + [f"PGA3-{part}" for part in PGA_PARTS]


# -- helpers -------------------------------------------------------------------------------------
def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def wigner(irreps: o3.Irreps, m: torch.Tensor) -> torch.Tensor:
    """``irreps.D_from_matrix(m)`` computed in float64 (e3nn uses the default dtype internally)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return irreps.D_from_matrix(m)
    finally:
        torch.set_default_dtype(old)


def action_matrix(alg: Algebra, w: torch.Tensor) -> torch.Tensor:
    """Matrix of the versors ``w`` on ``e1, e2, e3``: column j = e1..e3 components of ``w . e_j``."""
    idx = [alg.index(n) for n in ("e1", "e2", "e3")]
    basis = torch.eye(alg.dim, dtype=w.dtype)[idx]
    images = alg.sandwich(w[..., None, :], basis)
    return images[..., idx].transpose(-1, -2)


def orthogonal_matrices(n: int, seed: int) -> torch.Tensor:
    """``n`` random orthogonal matrices, the second half improper (det -1)."""
    q, _ = torch.linalg.qr(torch.randn(n, 3, 3, generator=gen(seed), dtype=DT))
    q = q * torch.linalg.det(q)[:, None, None]  # det +1
    flip = torch.ones(n, 3, dtype=DT)
    flip[n // 2 :, 0] = -1
    return q * flip[:, None, :]


def o3_versors(alg: Algebra, n: int, seed: int) -> torch.Tensor:
    """O(3) versors of ``alg`` (no e0): half from orthogonal matrices, half products of Euclidean vectors."""
    a = orthogonal_to_versor(alg, orthogonal_matrices(n // 2, seed))
    g = gen(seed + 1)
    idx = [alg.index(name) for name in ("e1", "e2", "e3")]
    out = []
    for k in range(n - n // 2):
        w = torch.zeros(alg.dim, dtype=DT)
        w[0] = 1
        for _ in range(1 + k % 4):  # 1 to 4 reflections: odd and even
            v = torch.zeros(alg.dim, dtype=DT)
            v[idx] = torch.randn(3, generator=g, dtype=DT)
            w = alg.gp(w, v / v.norm())
        out.append(w)
    return torch.cat([a, torch.stack(out)])


def e3_versors(n: int, seed: int) -> torch.Tensor:
    """General E(3) versors of PGA3: translator times O(3) versor, and products of random PGA vectors."""
    half = n // 2
    t = 2.0 * torch.randn(half, 3, generator=gen(seed), dtype=DT)
    moved = PGA3.gp(pga.embed_translation(t), o3_versors(PGA3, half, seed + 2))
    return torch.cat([moved, random_versors(PGA3, n - half, seed=seed + 3)])


def apply(alg: Algebra, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``w . x`` for versors ``w: (B, dim)`` and ``x: (B, C, dim)``."""
    return alg.sandwich(w[:, None, :], x)


def rotate(d: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``D t`` for ``D: (B, k, k)`` and ``t: (B, k)``."""
    return torch.einsum("bij,bj->bi", d, t)


def ideal_only(x: torch.Tensor) -> torch.Tensor:
    """The e0 half of PGA3 multivectors (Euclidean half zeroed)."""
    mask = torch.tensor(["0" in name for name in PGA3.blade_names])
    return x * mask


def euclidean_only(x: torch.Tensor) -> torch.Tensor:
    mask = torch.tensor(["0" not in name for name in PGA3.blade_names])
    return x * mask


def input_for(alg: Algebra, part: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    x = torch.randn(*shape, alg.dim, generator=gen(seed), dtype=DT)
    return ideal_only(x) if part == "ideal" else x


# -- layout facts --------------------------------------------------------------------------------
def test_vga3_blades_map_as_documented() -> None:
    """[1, e1, e2, e3, e12, e13, e23, e123] -> [s, v1, v2, v3, b23, -b13, b12, p] as 0e+1o+1e+0o."""
    assert irreps_for(VGA3, 1) == o3.Irreps("0e+1o+1e+0o")
    names = ["1", "e1", "e2", "e3", "e23", "e13", "e12", "e123"]
    signs = [1, 1, 1, 1, 1, -1, 1, 1]
    x = torch.randn(VGA3.dim, dtype=DT)
    want = torch.stack([s * x[VGA3.index(n)] for n, s in zip(names, signs, strict=True)])
    assert torch.equal(to_irreps(VGA3, x[None]), want)


def test_vga3_layout_is_multiplicity_outer() -> None:
    c = 3
    assert irreps_for(VGA3, c) == o3.Irreps("3x0e+3x1o+3x1e+3x0o")
    x = torch.randn(2, c, VGA3.dim, dtype=DT)
    t = to_irreps(VGA3, x)
    assert t.shape == (2, irreps_for(VGA3, c).dim)
    one = [to_irreps(VGA3, x[:, k : k + 1]) for k in range(c)]  # (2, 8) each: 1 + 3 + 3 + 1
    blocks = [slice(0, 1), slice(1, 4), slice(4, 7), slice(7, 8)]
    want = torch.cat([torch.cat([o[:, b] for o in one], -1) for b in blocks], -1)
    assert torch.equal(t, want)


@pytest.mark.parametrize("part", PGA_PARTS)
def test_pga3_irreps(part: str) -> None:
    c = 2
    want = "4x0e+4x1o+4x1e+4x0o" if part == "full" else "2x0e+2x1o+2x1e+2x0o"
    assert irreps_for(PGA3, c, part=part) == o3.Irreps(want)


def test_pga3_full_is_euclidean_then_ideal_per_irrep_type() -> None:
    c = 3
    x = torch.randn(4, c, PGA3.dim, dtype=DT)
    full = to_irreps(PGA3, x)
    euc, ide = to_irreps(PGA3, x, part="euclidean"), to_irreps(PGA3, x, part="ideal")
    blocks = [(0, c), (c, 4 * c), (4 * c, 7 * c), (7 * c, 8 * c)]  # 0e, 1o, 1e, 0o of one part
    want = torch.cat([torch.cat([euc[:, a:b], ide[:, a:b]], -1) for a, b in blocks], -1)
    assert torch.equal(full, want)


def test_pga3_ideal_half_is_e0_times_euclidean_half() -> None:
    """part='ideal' of e0 * a reads what part='euclidean' reads of a."""
    a = euclidean_only(torch.randn(5, 2, PGA3.dim, dtype=DT))
    e0 = torch.zeros(PGA3.dim, dtype=DT)
    e0[PGA3.index("e0")] = 1
    assert torch.equal(to_irreps(PGA3, PGA3.gp(e0, a), part="ideal"), to_irreps(PGA3, a, part="euclidean"))


def test_pga3_dictionary() -> None:
    """Planes, directions and translation bivectors read as the module docstring says."""
    g = gen(5)
    n, d = torch.randn(3, generator=g, dtype=DT), torch.randn(1, generator=g, dtype=DT)
    plane = pga.embed_plane(n, d)[None]
    torch.testing.assert_close(to_irreps(PGA3, plane, part="euclidean")[1:4], n, **TOL)
    torch.testing.assert_close(to_irreps(PGA3, plane, part="ideal")[:1], d, **TOL)
    v = torch.randn(3, generator=g, dtype=DT)
    direction = to_irreps(PGA3, pga.embed_direction(v)[None], part="ideal")
    torch.testing.assert_close(direction, torch.cat([torch.zeros(4, dtype=DT), -v, torch.zeros(1, dtype=DT)]))
    biv = torch.zeros(PGA3.dim, dtype=DT)
    for name, c in zip(("e01", "e02", "e03"), v, strict=True):
        biv[PGA3.index(name)] = c
    torch.testing.assert_close(to_irreps(PGA3, biv[None], part="ideal")[1:4], v)


# -- equivariance -------------------------------------------------------------------------------
def test_o3_versor_helpers() -> None:
    """The test's versors: orthogonal matrices, both determinants, matching orthogonal_to_versor."""
    for alg in (VGA3, PGA3):
        w = o3_versors(alg, B, seed=1)
        m = action_matrix(alg, w)
        torch.testing.assert_close(m @ m.transpose(-1, -2), torch.eye(3, dtype=DT).expand(B, 3, 3), **TOL)
        assert set(torch.linalg.det(m).round().tolist()) == {1.0, -1.0}
        torch.testing.assert_close(m[: B // 2], orthogonal_matrices(B // 2, 1), **TOL)
        assert torch.equal(versor_parity(alg, w) == 1, torch.linalg.det(m) < 0)


@pytest.mark.parametrize(("alg", "part"), CASES, ids=CASE_IDS)
def test_to_irreps_is_o3_equivariant(alg: Algebra, part: str) -> None:
    c = 3
    w = o3_versors(alg, B, seed=2)
    if alg == VGA3:  # VGA3's own random versors are O(3) versors too
        w = torch.cat([w, random_versors(alg, B, seed=3)])
    x = torch.randn(w.shape[0], c, alg.dim, generator=gen(4), dtype=DT)  # any input: O(3) keeps halves
    d = wigner(irreps_for(alg, c, part=part), action_matrix(alg, w))
    torch.testing.assert_close(
        to_irreps(alg, apply(alg, w, x), part=part), rotate(d, to_irreps(alg, x, part=part)), **TOL
    )


@pytest.mark.parametrize(("alg", "part"), CASES, ids=CASE_IDS)
def test_from_irreps_is_o3_equivariant(alg: Algebra, part: str) -> None:
    c = 2
    w = o3_versors(alg, B, seed=5)
    irreps = irreps_for(alg, c, part=part)
    t = torch.randn(B, irreps.dim, generator=gen(6), dtype=DT)
    d = wigner(irreps, action_matrix(alg, w))
    torch.testing.assert_close(
        from_irreps(alg, rotate(d, t), c, part=part), apply(alg, w, from_irreps(alg, t, c, part=part)), **TOL
    )


def test_pga3_euclidean_part_is_e3_equivariant_on_every_input() -> None:
    """Motions act on the Euclidean coefficients through their O(3) part; translations trivially."""
    c = 3
    w = e3_versors(B, seed=7)
    m = action_matrix(PGA3, w)
    torch.testing.assert_close(m @ m.transpose(-1, -2), torch.eye(3, dtype=DT).expand(B, 3, 3), **TOL)
    x = torch.randn(B, c, PGA3.dim, generator=gen(8), dtype=DT)
    d = wigner(irreps_for(PGA3, c, part="euclidean"), m)
    got = to_irreps(PGA3, apply(PGA3, w, x), part="euclidean")
    torch.testing.assert_close(got, rotate(d, to_irreps(PGA3, x, part="euclidean")), **TOL)
    # a pure translation leaves them unchanged
    tr = pga.embed_translation(torch.randn(B, 3, generator=gen(9), dtype=DT))
    torch.testing.assert_close(
        to_irreps(PGA3, apply(PGA3, tr, x), part="euclidean"), to_irreps(PGA3, x, part="euclidean"), **TOL
    )


def test_pga3_ideal_part_is_e3_equivariant_on_the_ideal() -> None:
    c = 3
    w = e3_versors(B, seed=10)
    d = wigner(irreps_for(PGA3, c, part="ideal"), action_matrix(PGA3, w))
    x = ideal_only(torch.randn(B, c, PGA3.dim, generator=gen(11), dtype=DT))
    gx = apply(PGA3, w, x)
    assert torch.equal(euclidean_only(gx), torch.zeros_like(gx))  # the ideal is invariant
    torch.testing.assert_close(
        to_irreps(PGA3, gx, part="ideal"), rotate(d, to_irreps(PGA3, x, part="ideal")), **TOL
    )
    t = torch.randn(B, irreps_for(PGA3, c, part="ideal").dim, generator=gen(12), dtype=DT)
    torch.testing.assert_close(
        from_irreps(PGA3, rotate(d, t), c, part="ideal"),
        apply(PGA3, w, from_irreps(PGA3, t, c, part="ideal")),
        **TOL,
    )
    tr = pga.embed_translation(torch.randn(B, 3, generator=gen(13), dtype=DT))
    torch.testing.assert_close(apply(PGA3, tr, x), x, **TOL)  # translations act trivially on the ideal


def test_translations_break_the_full_bridge() -> None:
    """The documented limits: 'full', 'ideal' on general inputs and from_irreps('euclidean') are not E(3)."""
    c = 2
    t = torch.randn(B, 3, generator=gen(14), dtype=DT)
    w = pga.embed_translation(t)
    x = torch.randn(B, c, PGA3.dim, generator=gen(15), dtype=DT)
    moved = apply(PGA3, w, x)
    eye = torch.eye(3, dtype=DT).expand(B, 3, 3)  # a translation's O(3) part
    torch.testing.assert_close(action_matrix(PGA3, w), eye, **TOL)
    for part in ("full", "ideal"):
        err = (to_irreps(PGA3, moved, part=part) - to_irreps(PGA3, x, part=part)).abs().max()
        assert err > 0.5, (part, err)
    # a point: its ideal half is -position, which a translation moves
    p = torch.randn(B, 3, generator=gen(16), dtype=DT)
    moved_point = apply(PGA3, w, pga.embed_point(p)[:, None])
    torch.testing.assert_close(to_irreps(PGA3, moved_point, part="ideal")[:, 4:7], -(p + t), **TOL)
    te = torch.randn(B, irreps_for(PGA3, c, part="euclidean").dim, generator=gen(17), dtype=DT)
    y = from_irreps(PGA3, te, c, part="euclidean")
    assert (apply(PGA3, w, y) - y).abs().max() > 0.5


# -- round trips, dtypes, autograd --------------------------------------------------------------
@pytest.mark.parametrize(("alg", "part"), CASES, ids=CASE_IDS)
def test_round_trips_are_exact(alg: Algebra, part: str) -> None:
    c = 4
    x = input_for(alg, part, (2, 3, c), seed=18)
    if part == "euclidean":
        x = euclidean_only(x)
    assert torch.equal(from_irreps(alg, to_irreps(alg, x, part=part), c, part=part), x)
    t = torch.randn(2, 3, irreps_for(alg, c, part=part).dim, generator=gen(19), dtype=DT)
    y = from_irreps(alg, t, c, part=part)
    assert torch.equal(to_irreps(alg, y, part=part), t)
    if part == "ideal":
        assert torch.equal(euclidean_only(y), torch.zeros_like(y))
    if part == "euclidean":
        assert torch.equal(ideal_only(y), torch.zeros_like(y))


def test_part_round_trip_drops_the_other_half() -> None:
    x = torch.randn(5, 2, PGA3.dim, generator=gen(20), dtype=DT)
    for part, keep in (("euclidean", euclidean_only), ("ideal", ideal_only)):
        assert torch.equal(from_irreps(PGA3, to_irreps(PGA3, x, part=part), 2, part=part), keep(x))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtypes_and_batch_shapes(dtype: torch.dtype) -> None:
    x = torch.randn(2, 1, 3, 5, PGA3.dim).to(dtype)
    t = to_irreps(PGA3, x)
    assert t.dtype == dtype and t.shape == (2, 1, 3, irreps_for(PGA3, 5).dim)
    assert torch.equal(from_irreps(PGA3, t, 5), x)
    empty = torch.zeros(0, 2, VGA3.dim, dtype=dtype)
    assert to_irreps(VGA3, empty).shape == (0, 16)
    assert from_irreps(VGA3, to_irreps(VGA3, empty), 2).shape == (0, 2, 8)
    xt = x.transpose(0, 2)  # non-contiguous input
    assert torch.equal(from_irreps(PGA3, to_irreps(PGA3, xt), 5), xt)


def test_gradients() -> None:
    x = torch.randn(3, 2, PGA3.dim, dtype=DT, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: to_irreps(PGA3, x, part="ideal"), (x,))
    t = torch.randn(3, irreps_for(VGA3, 2).dim, dtype=DT, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: from_irreps(VGA3, t, 2), (t,))


# -- modules ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("alg", "part"), CASES, ids=CASE_IDS)
def test_modules_are_o3_equivariant(alg: Algebra, part: str) -> None:
    torch.manual_seed(21)
    c = 3
    irreps = o3.Irreps("2x0e+3x1o+1x1e+2x0o")
    w = o3_versors(alg, B, seed=22)
    m = action_matrix(alg, w)
    d = wigner(irreps, m)
    to = MVToIrreps(alg, c, irreps, part=part, biases=True).double()
    back = IrrepsToMV(alg, irreps, c, part=part, biases=True).double()
    x = input_for(alg, part, (B, c), seed=23)
    torch.testing.assert_close(to(apply(alg, w, x)), rotate(d, to(x)), **TOL)
    t = torch.randn(B, irreps.dim, generator=gen(24), dtype=DT)
    torch.testing.assert_close(back(rotate(d, t)), apply(alg, w, back(t)), **TOL)
    assert to(x).abs().min() > 0  # every output irrep has a path: nothing is silently zero


def test_modules_e3_equivariant_for_the_pga_sub_bridges() -> None:
    torch.manual_seed(25)
    c = 2
    irreps = o3.Irreps("2x0e+2x1o+2x1e+1x0o")
    w = e3_versors(B, seed=26)
    d = wigner(irreps, action_matrix(PGA3, w))
    x = torch.randn(B, c, PGA3.dim, generator=gen(27), dtype=DT)
    euc = MVToIrreps(PGA3, c, irreps, part="euclidean").double()
    torch.testing.assert_close(euc(apply(PGA3, w, x)), rotate(d, euc(x)), **TOL)
    ide = MVToIrreps(PGA3, c, irreps, part="ideal").double()
    torch.testing.assert_close(ide(apply(PGA3, w, ideal_only(x))), rotate(d, ide(ideal_only(x))), **TOL)
    back = IrrepsToMV(PGA3, irreps, c, part="ideal", biases=True).double()
    t = torch.randn(B, irreps.dim, generator=gen(28), dtype=DT)
    torch.testing.assert_close(back(rotate(d, t)), apply(PGA3, w, back(t)), **TOL)


def test_modules_follow_to_and_state_dict() -> None:
    mod = MVToIrreps(PGA3, 2, "3x1o").to(torch.float64)
    assert mod.sign.dtype == torch.float64 and mod.index.dtype == torch.int64
    assert set(mod.state_dict()) == {k for k in mod.state_dict() if k.startswith("linear.")}
    back = IrrepsToMV(VGA3, "1x0e+1x1o", 4)
    y = back(torch.randn(7, 4))
    assert y.shape == (7, 4, 8) and y.dtype == torch.float32
    assert mod(torch.randn(5, 2, 16, dtype=DT)).shape == (5, 9)


def test_modules_refuse_irreps_the_algebra_cannot_hold() -> None:
    with pytest.raises(ValueError, match=r"irreps_out .*2e.*0e, 1o, 1e, 0o.*silently zero"):
        MVToIrreps(VGA3, 2, "1x1o+1x2e")
    with pytest.raises(ValueError, match=r"irreps_in .*1x2o.*silently dropped"):
        IrrepsToMV(PGA3, "1x0e+1x2o", 2)
    IrrepsToMV(VGA3, "1x0e+0x2e", 1)  # multiplicity 0 is no irrep at all


def test_module_input_errors() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, 8\).*got shape \(5, 3, 8\)"):
        MVToIrreps(VGA3, 2, "1x1o")(torch.randn(5, 3, 8))
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\).*got shape \(5, 3\)"):
        IrrepsToMV(VGA3, "1x0e+1x1o", 1)(torch.randn(5, 3))
    with pytest.raises(ValueError, match="mv_channels must be an int >= 1"):
        MVToIrreps(VGA3, 0, "1x1o")


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "alg",
    [STA, CGA3, Algebra(2, 0, 1), Algebra(4, 0, 0), Algebra.from_signature([1, 1, 1], start_index=0)],
    ids=["STA", "CGA3", "Cl(2,0,1)", "Cl(4,0)", "Cl(3,0)-from-e0"],
)
def test_unsupported_algebras(alg: Algebra) -> None:
    pattern = r"supports VGA3 .* and PGA3 .* only.*O\(3\)"
    x = torch.zeros(1, alg.dim)
    for call in (
        lambda: irreps_for(alg, 1),
        lambda: to_irreps(alg, x),
        lambda: from_irreps(alg, torch.zeros(8), 1),
        lambda: MVToIrreps(alg, 1, "1x1o"),
        lambda: IrrepsToMV(alg, "1x1o", 1),
    ):
        with pytest.raises(ValueError, match=pattern):
            call()
    with pytest.raises(TypeError, match=r"gatorch\.Algebra"):
        to_irreps("VGA3", x)  # type: ignore[arg-type]


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., channels, 8\).*got shape \(2, 16\)"):
        to_irreps(VGA3, torch.zeros(2, 16))
    with pytest.raises(ValueError, match=r"got shape \(8,\)"):
        to_irreps(VGA3, torch.zeros(8))
    with pytest.raises(TypeError, match="floating-point"):
        to_irreps(VGA3, torch.zeros(1, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"expected a tensor of shape \(\.\.\., 16\).*got shape \(3, 24\)"):
        from_irreps(VGA3, torch.zeros(3, 24), 2)
    with pytest.raises(ValueError, match="that width would be 3 channels"):
        from_irreps(VGA3, torch.zeros(3, 24), 2)
    with pytest.raises(ValueError, match=r"expected a tensor of shape \(\.\.\., 32\)"):
        from_irreps(PGA3, torch.zeros(3, 16), 2)  # 2 channels of the full bridge
    with pytest.raises(ValueError, match="channels must be an int >= 1"):
        from_irreps(VGA3, torch.zeros(0), 0)
    with pytest.raises(ValueError, match="part must be one of"):
        to_irreps(PGA3, torch.zeros(1, 16), part="e0")
    with pytest.raises(ValueError, match="VGA3 has only part='full'"):
        irreps_for(VGA3, 1, part="ideal")


def test_missing_e3nn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "e3nn", None)
    monkeypatch.setitem(sys.modules, "e3nn.o3", None)
    pattern = r'needs the optional dependency e3nn.*pip install "gatorch-nn\[irreps\]"'
    with pytest.raises(ImportError, match=pattern):
        irreps_for(VGA3, 1)
    with pytest.raises(ImportError, match=pattern):
        MVToIrreps(VGA3, 1, "1x1o")
    with pytest.raises(ImportError, match=pattern):
        IrrepsToMV(PGA3, "1x1o", 1)
    x = torch.randn(2, 8)  # the index maps themselves need no e3nn
    assert torch.equal(from_irreps(VGA3, to_irreps(VGA3, x[None]), 2), x[None])


def test_importing_gatorch_needs_no_e3nn() -> None:
    code = (
        "import sys; sys.modules['e3nn'] = None; sys.modules['clifford'] = None\n"
        "import gatorch, gatorch.irreps, gatorch.interop\n"
        "import torch; from gatorch.irreps import from_irreps, to_irreps; x = torch.randn(3, 8)\n"
        "assert torch.equal(from_irreps(gatorch.VGA3, to_irreps(gatorch.VGA3, x), 3), x)\n"
        "try:\n    gatorch.irreps.irreps_for(gatorch.VGA3, 1)\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert "gatorch-nn[irreps]" in out.stdout


# -- the example: e3nn + gatorch in one model ---------------------------------------------------------
def test_example_mixed_model_is_equivariant(capsys: pytest.CaptureFixture[str]) -> None:
    from examples import irreps_bridge

    result = irreps_bridge.main(["--steps", "12", "--batch", "4"])
    errors = result["errors"]
    assert set(errors) == {"rotation", "reflection", "translation"}
    assert max(errors.values()) < 1e-12, errors
    losses = result["losses"]
    assert len(losses) == 12 and min(losses[-3:]) < losses[0]
    out = capsys.readouterr().out
    assert "equivariance of the whole e3nn + gatorch model" in out and "reflection" in out
