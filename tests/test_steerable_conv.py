"""Clifford-steerable convolutions: reference, grid symmetries, refinement, boosts, compile, errors."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator

import pytest
import torch

from gatorch import Algebra
from gatorch.functional.fields.steerable_conv import spatial_blades
from gatorch.functional.steerable import steerable_gp
from gatorch.layers.fields.steerable_conv import (
    CliffordSteerableConv2d,
    CliffordSteerableConv3d,
    CliffordSteerableConvNd,
)

F64 = torch.float64


# -- helpers -------------------------------------------------------------------------------------------
def vector(alg: Algebra, coords: torch.Tensor) -> torch.Tensor:
    """Grid coordinates ``(..., d)`` as grade-1 multivectors along the grid's basis vectors."""
    out = coords.new_zeros(*coords.shape[:-1], alg.dim)
    for a, blade in enumerate(spatial_blades(alg)):
        out[..., blade] = coords[..., a]
    return out


def action(alg: Algebra, w: torch.Tensor) -> torch.Tensor:
    """``(dim, dim)`` matrix of the twisted action of one versor ``w``: column ``j`` is ``w . e_j``."""
    return alg.sandwich(w[None], torch.eye(alg.dim, dtype=w.dtype)).T


def on_positions(alg: Algebra, w: torch.Tensor) -> torch.Tensor:
    """``(d, d)`` matrix by which ``w`` acts on grid coordinates."""
    idx = list(spatial_blades(alg))
    return action(alg, w)[idx][:, idx]


def versor_of(alg: Algebra, rot: torch.Tensor) -> torch.Tensor:
    """A versor whose action on grid coordinates is the orthogonal matrix ``rot`` (Householder).

    Works for any ``rot`` preserving the coordinates' metric when no reflection vector is null
    (true for Euclidean signatures and for sign flips of single axes).
    """
    d = rot.shape[0]
    w = torch.zeros(alg.dim, dtype=F64)
    w[0] = 1.0
    m = rot.clone()
    for i in range(d):
        col = m[:, i]
        e = torch.zeros(d, dtype=F64)
        e[i] = 1.0
        if torch.allclose(col, e, atol=1e-13):
            continue
        u = col - e
        u = u / u.norm()
        m = (torch.eye(d, dtype=F64) - 2 * torch.outer(u, u)) @ m
        w = alg.gp(w, vector(alg, u))
    torch.testing.assert_close(on_positions(alg, w), rot, atol=1e-12, rtol=0)
    return w


def grid_map(op: Callable[[torch.Tensor], torch.Tensor], d: int, size: int) -> torch.Tensor:
    """The matrix ``P`` of a spatial op on centred coordinates: ``op(f)(y) = f(P^{-1} y)``."""
    axes = torch.meshgrid(*[torch.arange(size, dtype=F64) - (size - 1) / 2] * d, indexing="ij")
    coords = torch.stack(axes, dim=0)[None]  # (1, d, *spatial): channels = coordinates
    moved = op(coords)[0]  # at new position y: the old coordinate x = P^{-1} y
    centre = (size - 1) // 2  # odd size: index of the origin
    inv = torch.empty(d, d, dtype=F64)
    flat = moved.reshape(d, -1)
    for a in range(d):
        idx = [centre] * d
        idx[a] += 1  # y = e_a
        inv[:, a] = flat[:, sum(i * size ** (d - 1 - b) for b, i in enumerate(idx))]
    return inv.inverse().round()


def transform_field(
    alg: Algebra, op: Callable[[torch.Tensor], torch.Tensor], w: torch.Tensor, x: torch.Tensor
):
    """``rho_w f(P^{-1} .)`` for a field ``(B, C, *spatial, dim)``: op on the grid, sandwich on values."""
    moved = op(x.movedim(-1, 2).flatten(1, 2)).unflatten(1, (x.shape[1], alg.dim)).movedim(2, -1)
    return alg.sandwich(w, moved)


def bumps(
    alg: Algebra, channels: int, count: int, d: int, sigma: float, seed: int
) -> Callable[..., torch.Tensor]:
    """A smooth field: ``count`` Gaussian bumps with random multivector coefficients."""
    g = torch.Generator().manual_seed(seed)
    centres = 0.5 * torch.randn(count, d, generator=g, dtype=F64)
    coeffs = torch.randn(count, channels, alg.dim, generator=g, dtype=F64)

    def field(
        points: torch.Tensor, w: torch.Tensor | None = None, lam: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Field at ``points (..., d)``; with ``w``: ``rho_w f(Lambda^{-1} x)``, ``Lambda = lam``."""
        src = points if lam is None else points @ torch.linalg.inv(lam).T
        r2 = ((src[..., None, :] - centres) ** 2).sum(-1)  # (..., count)
        out = torch.einsum("...b,bcm->...cm", torch.exp(-r2 / (2 * sigma**2)), coeffs)
        return out if w is None else alg.sandwich(w, out)

    return field


def patches(points: torch.Tensor, size: int, spacing: float) -> torch.Tensor:
    """Grid points ``(M, *[size] * d, d)`` of a kernel-sized patch centred on each of ``points (M, d)``."""
    d = points.shape[-1]
    offs = (torch.arange(size, dtype=F64) - size // 2) * spacing
    grid = torch.stack(torch.meshgrid(*[offs] * d, indexing="ij"), dim=-1)
    return points.reshape(-1, *[1] * d, d) + grid


def at_points(
    conv: CliffordSteerableConvNd,
    field: Callable[..., torch.Tensor],
    points: torch.Tensor,
    size: int,
    spacing: float,
    **kw: torch.Tensor,
) -> torch.Tensor:
    """The layer (``padding="valid"``) at ``points (M, d)``, the field sampled around each point."""
    vals = field(patches(points, size, spacing), **kw)  # (M, *patch, C, dim)
    x = vals.movedim(-2, 1)  # (M, C, *patch, dim)
    out = conv(x)  # (M, C_out, 1, ..., 1, dim)
    return out.reshape(out.shape[0], out.shape[1], out.shape[-1])


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.fixture(autouse=True)
def _no_grad() -> Iterator[None]:
    """No autograd graphs (faster); the compile test turns gradients back on where it needs them."""
    with torch.no_grad():
        yield


# -- correctness against steerable_gp -----------------------------------------------------------------
@pytest.mark.parametrize("signature", [(2, 0, 0), (1, 1, 0), (2, 0, 1)])
def test_matches_loop_of_steerable_products(signature: tuple[int, int, int]) -> None:
    """One conv2d call == the sum over offsets and input channels of weighted products."""
    alg = Algebra(*signature)
    torch.manual_seed(0)
    conv = CliffordSteerableConv2d(alg, 3, 2, kernel_size=3, hidden_channels=4, num_layers=1).double()
    with torch.no_grad():
        assert conv.bias is not None
        conv.bias.normal_()
    x = torch.randn(2, 3, 5, 6, alg.dim, dtype=F64)
    pad = torch.nn.functional.pad(x, (0, 0, 1, 1, 1, 1))
    ref = torch.zeros(2, 2, 5, 6, alg.dim, dtype=F64)
    for a in range(3):
        for b in range(3):
            window = pad[:, :, a : a + 5, b : b + 6]  # x(y + v), v = (a - 1, b - 1) * spacing
            v = torch.tensor([[(a - 1) * conv.spacing, (b - 1) * conv.spacing]], dtype=F64)
            k = conv.kernel_network(v)[0]  # (out, in, dim)
            for o in range(2):
                left = k[o].expand(2, 5, 6, 3, alg.dim)
                prod = steerable_gp(alg, left, window.movedim(1, -2), conv.weight[o])  # (2, 5, 6, 3, dim)
                ref[:, o] += prod.sum(-2)
    inv = [alg.index("1")] + ([alg.index("e0")] if signature[2] else [])
    for c, blade in enumerate(inv):
        ref[..., blade] += conv.bias[:, c].view(1, 2, 1, 1)
    torch.testing.assert_close(conv(x), ref, atol=1e-12, rtol=1e-12)
    kernel = conv.build_kernel()
    torch.testing.assert_close(conv(x, kernel=kernel), ref, atol=1e-12, rtol=1e-12)


# -- exact equivariance under the grid's symmetries ---------------------------------------------------
OPS_2D: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "rot90": lambda t: torch.rot90(t, 1, dims=(2, 3)),
    "rot180": lambda t: torch.rot90(t, 2, dims=(2, 3)),
    "rot270": lambda t: torch.rot90(t, 3, dims=(2, 3)),
    "flip_h": lambda t: t.flip(2),
    "flip_w": lambda t: t.flip(3),
    "transpose": lambda t: t.transpose(2, 3),
    "anti_transpose": lambda t: torch.rot90(t, 1, dims=(2, 3)).flip(2),
}
FLIPS_ONLY = ("rot180", "flip_h", "flip_w")


@pytest.mark.parametrize("signature", [(2, 0, 0), (0, 2, 0), (2, 0, 1), (1, 1, 0)])
@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
def test_grid_symmetries_2d(signature: tuple[int, int, int], padding_mode: str) -> None:
    alg = Algebra(*signature)
    torch.manual_seed(1)
    conv = CliffordSteerableConv2d(alg, 2, 3, kernel_size=5, padding_mode=padding_mode).double()
    x = torch.randn(2, 2, 9, 9, alg.dim, dtype=F64)
    y = conv(x)
    names = FLIPS_ONLY if signature == (1, 1, 0) else tuple(OPS_2D)  # O(1,1) does not swap axes
    for name in names:
        op = OPS_2D[name]
        w = versor_of(alg, grid_map(op, 2, 9))
        lhs = conv(transform_field(alg, op, w, x))
        torch.testing.assert_close(lhs, transform_field(alg, op, w, y), atol=1e-9, rtol=1e-9, msg=name)
    # the check can fail: without the action on values the flip is not a symmetry
    op = OPS_2D["flip_h"]
    assert (
        rel(
            conv(op(x.movedim(-1, 2).flatten(1, 2)).unflatten(1, (2, alg.dim)).movedim(2, -1)),
            op(y.movedim(-1, 2).flatten(1, 2)).unflatten(1, (3, alg.dim)).movedim(2, -1),
        )
        > 1e-2
    )


OPS_3D: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "rot90_hw": lambda t: torch.rot90(t, 1, dims=(3, 4)),
    "rot90_dh": lambda t: torch.rot90(t, 1, dims=(2, 3)),
    "rot90_dw": lambda t: torch.rot90(t, 3, dims=(2, 4)),
    "flip_d": lambda t: t.flip(2),
    "inversion": lambda t: t.flip(2, 3, 4),
    "cycle": lambda t: t.permute(0, 1, 3, 4, 2),
    "rot_flip": lambda t: torch.rot90(t, 1, dims=(2, 4)).flip(3),
}


def test_grid_symmetries_3d() -> None:
    alg = Algebra(3, 0)
    torch.manual_seed(2)
    conv = CliffordSteerableConv3d(alg, 2, 2, kernel_size=3, hidden_channels=6).double()
    x = torch.randn(1, 2, 5, 5, 5, alg.dim, dtype=F64)
    y = conv(x)
    for name, op in OPS_3D.items():
        w = versor_of(alg, grid_map(op, 3, 5))
        lhs = conv(transform_field(alg, op, w, x))
        torch.testing.assert_close(lhs, transform_field(alg, op, w, y), atol=1e-9, rtol=1e-9, msg=name)


# -- continuous rotations: the error falls as the grid is refined --------------------------------------
def refinement_errors(sizes: tuple[int, ...], seed: int = 3) -> list[float]:
    """Relative equivariance error at 5 points for 3 random rotations (+ one reflection), per grid."""
    alg = Algebra(2, 0)
    torch.manual_seed(seed)
    field = bumps(alg, 2, 4, 2, sigma=0.4, seed=seed)
    g = torch.Generator().manual_seed(seed)
    points = 0.4 * torch.randn(5, 2, generator=g, dtype=F64)
    rots = []
    for angle in (2 * math.pi * torch.rand(3, generator=g, dtype=F64)).tolist():
        c, s = math.cos(angle), math.sin(angle)
        rots.append(torch.tensor([[c, -s], [s, c]], dtype=F64))
    rots.append(rots[0] @ torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=F64))  # a reflection
    state = None
    errors = []
    for size in sizes:
        spacing = 1.0 / (size // 2)  # the kernel grid covers [-1, 1]^2 at every refinement
        conv = CliffordSteerableConv2d(
            alg, 2, 2, kernel_size=size, padding="valid", spacing=spacing, radius=1.0
        )
        conv = conv.double()
        if state is None:
            state = conv.state_dict()  # the same kernel network and weights on every grid
        conv.load_state_dict(state)
        worst = 0.0
        for lam in rots:
            w = versor_of(alg, lam)
            lhs = at_points(conv, field, points, size, spacing, w=w, lam=lam)  # layer(g f)(y)
            src = points @ torch.linalg.inv(lam).T
            rhs = alg.sandwich(w, at_points(conv, field, src, size, spacing))  # rho layer(f)(Lambda^-1 y)
            worst = max(worst, rel(lhs, rhs))
        errors.append(worst)
    return errors


def test_rotation_error_falls_with_refinement() -> None:
    """Kernel grids 5, 9, 17, 33 over the same [-1, 1]^2 (spacing 1/2, 1/4, 1/8, 1/16).

    Measured (seed 3): 4.2e-2, 3.0e-3, 9.8e-5, 4.6e-6: the smooth, compactly supported (C^2)
    windowed kernel makes the lattice sums converge fast. Each of the 3 refinements must cut
    the error at least 4x.
    """
    errors = refinement_errors((5, 9, 17, 33))
    for coarse, fine in itertools.pairwise(errors):
        assert fine < 0.25 * coarse, errors
    assert errors[-1] < 1e-4, errors


# -- Lorentz boosts in Cl(1, 1) ----------------------------------------------------------------------
def boost(alg: Algebra, rapidity: float) -> torch.Tensor:
    """The versor ``exp(rapidity / 2 * e12)`` of Cl(1, 1) (a boost mixing the two grid axes)."""
    biv = torch.zeros(alg.dim, dtype=F64)
    biv[alg.index("e12")] = rapidity / 2
    return alg.exp(biv)


def test_kernel_is_exactly_boost_equivariant() -> None:
    """``K(Lambda v) rho = rho K(v)`` on random continuous positions, boosts with and without reflection."""
    alg = Algebra(1, 1)
    torch.manual_seed(4)
    conv = CliffordSteerableConv2d(alg, 2, 3, kernel_size=5, num_layers=2).double()
    v = torch.randn(64, 2, dtype=F64)
    e1 = torch.zeros(alg.dim, dtype=F64)
    e1[alg.index("e1")] = 1.0
    for rapidity in (0.3, -0.8, 1.5):
        for w in (boost(alg, rapidity), alg.gp(boost(alg, rapidity), e1)):
            lam = on_positions(alg, w)
            assert abs(float(lam[0, 1])) > 0.2  # a genuine boost (mixes space and time)
            rho = action(alg, w)
            lhs = torch.einsum("pokij,jl->pokil", conv.kernel_matrices(v @ lam.T), rho)
            rhs = torch.einsum("lk,pokij->polij", rho, conv.kernel_matrices(v))
            torch.testing.assert_close(lhs, rhs, atol=1e-9, rtol=1e-9)
    # the window does not vanish along the light cone: the kernel is not compactly supported
    light = torch.tensor([[3.0, 3.0]], dtype=F64)
    assert conv.kernel_network(light).abs().max() > 1e-3


def boost_errors(rapidity: float, sizes: tuple[int, ...]) -> tuple[list[float], float]:
    """Layer on a smooth field: relative boost error per grid, and the error of a wrong action."""
    alg = Algebra(1, 1)
    torch.manual_seed(5)
    field = bumps(alg, 2, 3, 2, sigma=0.15, seed=5)
    g = torch.Generator().manual_seed(5)
    points = 0.2 * torch.randn(4, 2, generator=g, dtype=F64)
    w = boost(alg, rapidity)
    lam = on_positions(alg, w)
    src = points @ torch.linalg.inv(lam).T
    state = None
    errors, wrong = [], 0.0
    for size in sizes:
        spacing = 1.0 / (size // 2)
        conv = CliffordSteerableConv2d(
            alg, 2, 2, kernel_size=size, padding="valid", spacing=spacing, radius=1.0
        )
        conv = conv.double()
        if state is None:
            state = conv.state_dict()
        conv.load_state_dict(state)
        lhs = at_points(conv, field, points, size, spacing, w=w, lam=lam)
        base = at_points(conv, field, src, size, spacing)
        errors.append(rel(lhs, alg.sandwich(w, base)))
        wrong = rel(lhs, base)  # the boost applied to positions only
    return errors, wrong


def test_layer_boost_error_small_on_smooth_field() -> None:
    """A small boost (rapidity 0.1) of a field of narrow bumps (sigma 0.15, kernel box [-1, 1]^2).

    Two error sources: quadrature (the boosted lattice is not the lattice; it falls with the
    spacing) and truncation (the kernel is cut by the box where the window, a function of
    ``|<v, v>|``, has not decayed; the field there is ~exp(-1 / (2 * 0.15^2)) ~ 1e-10 of its
    peak for points near the bumps, so truncation is negligible and the quadrature error,
    about (spacing / sigma)^2-limited for bumps this narrow, dominates). Measured: 4.9e-3 at
    spacing 1/4, 9.2e-4 at 1/8, 2.4e-4 at 1/16, against 8.1e-2 when the values are not
    transformed. At spacing 1/16 the error must be under 2e-3, below the error at spacing 1/4
    and 10x below that wrong-action change.
    """
    errors, wrong = boost_errors(0.1, (9, 33))
    assert errors[1] < errors[0], errors
    assert errors[1] < 2e-3, errors
    assert errors[1] < 0.1 * wrong, (errors, wrong)


# -- compile and errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [CliffordSteerableConv2d, CliffordSteerableConv3d])
def test_fresh_compile_matches_eager(cls: type[CliffordSteerableConvNd]) -> None:
    """A fresh layer compiles with fullgraph=True and matches eager (2-D: parameter gradients too)."""
    torch._dynamo.reset()
    alg = Algebra(cls.spatial_dims, 0)
    torch.manual_seed(6)
    conv = cls(alg, 2, 3, kernel_size=3, hidden_channels=4, num_layers=1)
    x = torch.randn(2, 2, *[6] * cls.spatial_dims, alg.dim)
    compiled = torch.compile(conv, fullgraph=True)
    if cls is CliffordSteerableConv3d:  # forward only: a second backward compile costs ~40 s on CPU
        torch.testing.assert_close(compiled(x), conv(x), atol=1e-5, rtol=1e-5)
        torch._dynamo.reset()
        return
    with torch.enable_grad():
        out = compiled(x)
        grads = torch.autograd.grad(out.square().sum(), list(conv.parameters()))
        ref = conv(x)
        ref_grads = torch.autograd.grad(ref.square().sum(), list(conv.parameters()))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, atol=1e-4, rtol=1e-4)
    assert all(float(g.abs().sum()) > 0 for g in ref_grads)  # every parameter is used
    torch._dynamo.reset()


def test_errors() -> None:
    vga2, vga3 = Algebra(2, 0), Algebra(3, 0)
    with pytest.raises(ValueError, match="non-degenerate basis vectors"):
        CliffordSteerableConv2d(vga3, 1, 1, 3)
    with pytest.raises(ValueError, match="non-degenerate basis vectors"):
        CliffordSteerableConv3d(Algebra(2, 0, 1), 1, 1, 3)
    with pytest.raises(ValueError, match="odd"):
        CliffordSteerableConv2d(vga2, 1, 1, 4)
    with pytest.raises(ValueError, match="odd"):
        CliffordSteerableConv2d(vga2, 1, 1, (3, 3, 3))
    with pytest.raises(ValueError, match="padding_mode"):
        CliffordSteerableConv2d(vga2, 1, 1, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="padding"):
        CliffordSteerableConv2d(vga2, 1, 1, 3, padding=-1)
    with pytest.raises(ValueError, match="in_channels"):
        CliffordSteerableConv2d(vga2, 0, 1, 3)
    with pytest.raises(ValueError, match="spacing"):
        CliffordSteerableConv2d(vga2, 1, 1, 3, spacing=0.0)
    with pytest.raises(TypeError, match="Algebra"):
        CliffordSteerableConv2d("Cl(2,0)", 1, 1, 3)  # type: ignore[arg-type]
    conv = CliffordSteerableConv2d(vga2, 2, 3, 3)
    with pytest.raises(ValueError, match=r"\(batch, 2"):
        conv(torch.randn(1, 3, 5, 5, 4))  # wrong channels
    with pytest.raises(ValueError, match=r"\(batch, 2"):
        conv(torch.randn(1, 2, 5, 5, 5, 4))  # 3-D field into a 2-D layer
    with pytest.raises(ValueError):
        conv(torch.randn(1, 2, 5, 5, 8))  # wrong blade count
    with pytest.raises(ValueError, match="kernel of shape"):
        conv(torch.randn(1, 2, 5, 5, 4), kernel=torch.randn(12, 8, 5, 5))
    with pytest.raises(ValueError, match="positions"):
        conv.kernel_network(torch.randn(4, 3))
