"""Clifford spectral convolutions (``gatorch.layers.fields.fourier``) and their cliffordlayers conversion.

* Against the installed ``cliffordlayers`` (skipped where missing): every signature it accepts
  with entries in {+1, -1, 0} in 2-D (8) and 3-D (26), random weights, outputs and gradients
  (input and weights) of the converted ``spectrum="dual"`` layer; ``multiply=False``.
* Independent of it: both spectra equal an explicit DFT-domain computation written with
  ``alg.gp`` per mode (Cl(2,0), degenerate Cl(2,0,1) and STA on a 2-D grid, Cl(3,0) on a 3-D
  grid), keeping all modes with the weight scalar 1 is the identity, the ``"rfft"`` layer
  commutes with grid translations, a fresh ``torch.compile(fullgraph=True)`` equals eager,
  errors.
"""

from __future__ import annotations

import importlib
import itertools
import math
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from gatorch import STA, Algebra
from gatorch.layers.fields.fourier import CliffordSpectralConv2d, CliffordSpectralConv3d

SIGS = {
    n: [list(g) for g in itertools.product([1, -1, 0], repeat=n) if any(v != 0 for v in g)] for n in (2, 3)
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape: int, seed: int, dtype: torch.dtype = torch.float64) -> Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=torch.float64).to(dtype)


def _perturb(module: Any, seed: int) -> None:
    with torch.no_grad():
        for i, p in enumerate(module.parameters()):
            p.copy_(_randn(*p.shape, seed=seed + i, dtype=p.dtype))


# ---------------------------------------------------------------------------------------------
# against cliffordlayers
# ---------------------------------------------------------------------------------------------


def _theirs(n: int, g: list[int], cin: int, cout: int, modes: tuple[int, ...], seed: int, **kw: Any) -> Any:
    pytest.importorskip("cliffordlayers")
    cf = importlib.import_module("cliffordlayers.nn.modules.cliffordfourier")

    cls = cf.CliffordSpectralConv2d if n == 2 else cf.CliffordSpectralConv3d
    torch.manual_seed(seed)
    m = cls(g, cin, cout, *modes, **kw)
    _perturb(m, seed)
    return m


def _convert(m: Any) -> Any:
    from gatorch.interop.cliffordlayers_fourier import convert

    out = convert(m)
    assert out is not None
    return out


GRID = {2: (10, 8), 3: (6, 4, 6)}
MODES = {2: (3, 4), 3: (2, 2, 3)}  # the second axis of 2-D keeps every mode (2 * 4 = 8)


@pytest.mark.parametrize(("n", "g"), [(n, g) for n in (2, 3) for g in SIGS[n]])
def test_matches_cliffordlayers_float32(n: int, g: list[int]) -> None:
    theirs = _theirs(n, g, 3, 2, MODES[n], seed=1)
    ours = _convert(theirs)
    x = _randn(2, 3, *GRID[n], 2**n, seed=2, dtype=torch.float32)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = theirs(x1), ours(x2)
    assert y2.dtype == torch.float32 and y2.shape == y1.shape == (2, 2, *GRID[n], 2**n)
    assert y1.abs().max() > 0.1
    torch.testing.assert_close(y2, y1, atol=1e-5, rtol=0)
    cot = _randn(*y1.shape, seed=3, dtype=torch.float32)
    (y1 * cot).sum().backward()
    (y2 * cot).sum().backward()
    assert x1.grad is not None and x2.grad is not None
    torch.testing.assert_close(x2.grad, x1.grad, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.weight.grad, theirs.weights.grad.movedim(0, -1), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("n", "g"), [(2, [1, 1]), (2, [-1, -1]), (2, [0, 1]), (3, [1, 1, 1]), (3, [-1, 0, 1])]
)
def test_matches_cliffordlayers_float64(n: int, g: list[int]) -> None:
    """cliffordlayers keeps its output spectrum in float32 (``out_ft`` is ``dtype=torch.float``)
    and returns float32 for float64 input, so agreement is at float32 precision."""
    theirs = _theirs(n, g, 2, 3, MODES[n], seed=4).double()
    ours = _convert(theirs)
    assert ours.weight.dtype == torch.float64
    x = _randn(2, 2, *GRID[n], 2**n, seed=5)
    y1, y2 = theirs(x), ours(x)
    assert y1.dtype == torch.float32 and y2.dtype == torch.float64
    torch.testing.assert_close(y2, y1.double(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("n", [2, 3])
def test_matches_cliffordlayers_without_multiply(n: int) -> None:
    theirs = _theirs(n, [1] * n, 2, 2, MODES[n], seed=6, multiply=False)
    ours = _convert(theirs)
    x = _randn(1, 2, *GRID[n], 2**n, seed=7, dtype=torch.float32)
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=0)


# (grid, modes) with n // 2 < modes <= n on some axes: cliffordlayers' two blocks of modes overlap
OVERLAP = {2: ((8, 6), (5, 6)), 3: ((6, 4, 6), (4, 2, 6))}


@pytest.mark.parametrize("n", [2, 3])
def test_matches_cliffordlayers_with_more_than_half_the_modes(n: int) -> None:
    """cliffordlayers runs with ``n // 2 < modes <= n`` (its blocks ``[0, m)`` and ``[n - m, n)``
    overlap, the second one written last); the converted layer accepts it and matches."""
    grid, modes = OVERLAP[n]
    theirs = _theirs(n, [1, -1, 1][:n], 2, 3, modes, seed=20)
    ours = _convert(theirs)
    x = _randn(2, 2, *grid, 2**n, seed=21, dtype=torch.float32)
    y1 = theirs(x)
    assert y1.abs().max() > 0.1
    torch.testing.assert_close(ours(x), y1, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.compile(ours, fullgraph=True)(x), y1, atol=1e-5, rtol=0)


def test_dual_spectrum_refuses_more_modes_than_points() -> None:
    layer = CliffordSpectralConv2d(Algebra(2), 1, 1, 5, 2, spectrum="dual")
    assert layer(torch.zeros(1, 1, 5, 4, 4)).shape == (1, 1, 5, 4, 4)  # modes1 == n
    with pytest.raises(
        ValueError, match=r"modes1=5 needs spatial size n with modes <= n \(spectrum='dual'\); got n=4"
    ):
        layer(torch.zeros(1, 1, 4, 4, 4))


@pytest.mark.parametrize("n", [2, 3])
def test_without_multiply_float64(n: int) -> None:
    """``multiply=False`` converts to a layer without weights that runs in float64 (cliffordlayers
    keeps its spectrum in float32, hence the tolerance)."""
    theirs = _theirs(n, [1] * n, 2, 2, MODES[n], seed=22, multiply=False)
    ours = _convert(theirs)
    assert ours.weight is None and not list(ours.parameters()) and "multiply=False" in repr(ours)
    x = _randn(2, 2, *GRID[n], 2**n, seed=23)
    y = ours(x)
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, theirs(x).double(), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"multiply=False .* needs in_channels == out_channels, got 2 and 3"):
        CliffordSpectralConv2d(Algebra(2), 2, 3, 1, 1, multiply=False)


def test_cliffordlayers_3d_slicing_is_needed() -> None:
    """Without the flag the converted 3-D layer differs (on the block cliffordlayers misplaces)."""
    theirs = _theirs(3, [1, 1, 1], 2, 2, MODES[3], seed=8)
    ours = _convert(theirs)
    plain = CliffordSpectralConv3d(ours.alg, 2, 2, *MODES[3], spectrum="dual")
    with torch.no_grad():
        plain.weight.copy_(ours.weight)
    x = _randn(1, 2, *GRID[3], 8, seed=9, dtype=torch.float32)
    assert (plain(x) - theirs(x)).abs().max() > 1e-2
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=0)


def test_convert_other_and_bad_signature() -> None:
    pytest.importorskip("cliffordlayers")
    cf = importlib.import_module("cliffordlayers.nn.modules.cliffordfourier")

    from gatorch.interop.cliffordlayers_fourier import convert

    assert convert(nn.Linear(2, 3)) is None
    assert convert(CliffordSpectralConv2d(Algebra(2), 1, 1, 1, 1)) is None
    with pytest.raises(ValueError, match=r"\+1, -1 or 0.*2\.0"):
        convert(cf.CliffordSpectralConv2d([2, 1], 1, 1, 1, 1))


# ---------------------------------------------------------------------------------------------
# explicit DFT reference, any algebra
# ---------------------------------------------------------------------------------------------


def _dft(x: np.ndarray, axes: tuple[int, ...], sign: float) -> np.ndarray:
    """Explicit DFT sum_n x[n] exp(sign 2 pi i k n / N) along ``axes`` (no normalisation)."""
    out = x.astype(np.complex128)
    for ax in axes:
        n = out.shape[ax]
        f = np.exp(sign * 2j * np.pi * np.outer(np.arange(n), np.arange(n)) / n)
        out = np.moveaxis(np.tensordot(f, np.moveaxis(out, ax, 0), axes=(1, 0)), 0, ax)
    return out


def _at(k: tuple[int, ...]) -> tuple[Any, ...]:
    """Index of one mode (or kept-mode position) of a ``(B, C, *modes, ...)`` array."""
    return (slice(None), slice(None), *k)


def _kept(n: int, m: int, two_sided: bool) -> list[int]:
    return list(range(m)) + (list(range(n - m, n)) if two_sided else [])


def _cgp(alg: Algebra, xr: Tensor, xi: Tensor, wr: Tensor, wi: Tensor) -> tuple[Tensor, Tensor]:
    """C-bilinear geometric product (xr + i xi)(wr + i wi), summed over the input channel."""
    real = alg.gp(xr, wr) - alg.gp(xi, wi)
    imag = alg.gp(xr, wi) + alg.gp(xi, wr)
    return real.sum(-2), imag.sum(-2)


def _reference_rfft(alg: Algebra, x: Tensor, wr: Tensor, wi: Tensor, modes: tuple[int, ...]) -> Tensor:
    """y = (1/N) sum over kept half-space modes c(k_last) Re(Y(k) e^{+ik.n}), Y(k) = sum_i X_i(k) W_oi(k)."""
    d = len(modes)
    xs = x.numpy()
    spatial = xs.shape[2 : 2 + d]
    axes = tuple(range(2, 2 + d))
    xf = _dft(xs, axes, -1.0)  # (B, Ci, *spatial, dim)
    kept_lists = [_kept(spatial[a], modes[a], a < d - 1) for a in range(d)]
    full = np.zeros((x.shape[0], wr.shape[0], *spatial, alg.dim), dtype=np.complex128)
    for pos in itertools.product(*[range(len(k)) for k in kept_lists]):
        k = tuple(kept_lists[a][pos[a]] for a in range(d))
        xk = xf[_at(k)]  # (B, Ci, dim)
        xr = torch.from_numpy(xk.real.copy())[:, None]  # (B, 1, Ci, dim)
        xi = torch.from_numpy(xk.imag.copy())[:, None]
        yr, yi = _cgp(alg, xr, xi, wr[_at(pos)], wi[_at(pos)])
        n_last = spatial[-1]
        c = 1.0 if k[-1] == 0 or 2 * k[-1] == n_last else 2.0
        full[_at(k)] = c * (yr.numpy() + 1j * yi.numpy())
    y = _dft(full, axes, 1.0).real / math.prod(spatial)
    return torch.from_numpy(y)


def _pairs(alg: Algebra) -> list[tuple[int, int]]:
    """(blade, complement) index pairs from the blade names, the first in order as real part."""
    names = alg.blade_names
    sets = [frozenset() if nm == "1" else frozenset(nm[1:]) for nm in names]
    vectors = frozenset().union(*sets)
    assert len(vectors) == alg.n
    out = []
    for i, s in enumerate(sets):
        j = sets.index(frozenset(vectors - s))
        if i < j:
            out.append((i, j))
    return out


def _reference_dual(alg: Algebra, x: Tensor, w: Tensor, modes: tuple[int, ...]) -> Tensor:
    """cliffordlayers' transform written out: complex pairs, DFT, real multivector per mode,
    ``alg.gp`` with the weight, back to pairs, inverse DFT."""
    d = len(modes)
    xs = x.numpy()
    spatial = xs.shape[2 : 2 + d]
    axes = tuple(range(2, 2 + d))
    pairs = _pairs(alg)
    re = [p[0] for p in pairs]
    im = [p[1] for p in pairs]
    zf = _dft(xs[..., re] + 1j * xs[..., im], axes, -1.0)
    kept_lists = [_kept(spatial[a], modes[a], True) for a in range(d)]
    out = np.zeros((x.shape[0], w.shape[0], *spatial, len(pairs)), dtype=np.complex128)
    for pos in itertools.product(*[range(len(k)) for k in kept_lists]):
        k = tuple(kept_lists[a][pos[a]] for a in range(d))
        zk = zf[_at(k)]  # (B, Ci, dim / 2)
        mv = np.zeros((*zk.shape[:2], alg.dim))
        mv[..., re] = zk.real
        mv[..., im] = zk.imag
        prod = alg.gp(torch.from_numpy(mv)[:, None], w[_at(pos)]).sum(-2).numpy()
        out[_at(k)] = prod[..., re] + 1j * prod[..., im]
    yz = _dft(out, axes, 1.0) / math.prod(spatial)
    y = np.zeros((*yz.shape[:-1], alg.dim))
    y[..., re] = yz.real
    y[..., im] = yz.imag
    return torch.from_numpy(y)


REF_CASES = [
    ("vga2", Algebra(2), (6, 7), (2, 3)),
    ("pga2", Algebra(2, 0, 1), (5, 6), (2, 2)),
    ("sta", STA, (4, 6), (2, 2)),
    ("vga3", Algebra(3), (4, 3, 4), (1, 1, 2)),
]


@pytest.mark.parametrize("spectrum", ["rfft", "dual"])
@pytest.mark.parametrize(("name", "alg", "grid", "modes"), REF_CASES, ids=[c[0] for c in REF_CASES])
def test_equals_explicit_dft(
    name: str, alg: Algebra, grid: tuple[int, ...], modes: tuple[int, ...], spectrum: str
) -> None:
    cls = CliffordSpectralConv2d if len(grid) == 2 else CliffordSpectralConv3d
    layer = cls(alg, 2, 3, *modes, spectrum=spectrum).double()
    _perturb(layer, seed=10)
    x = _randn(2, 2, *grid, alg.dim, seed=11)
    y = layer(x)
    if spectrum == "rfft":
        assert layer.weight_imag is not None
        ref = _reference_rfft(alg, x, layer.weight.detach(), layer.weight_imag.detach(), modes)
    else:
        ref = _reference_dual(alg, x, layer.weight.detach(), modes)
    assert ref.abs().max() > 0.1
    torch.testing.assert_close(y, ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize("spectrum", ["rfft", "dual"])
@pytest.mark.parametrize("alg", [STA, Algebra(2, 0, 1)], ids=["sta", "pga2"])
def test_all_modes_scalar_one_is_identity(alg: Algebra, spectrum: str) -> None:
    modes = (4, 4) if spectrum == "rfft" else (4, 3)  # grid 8 x 6: every mode
    layer = CliffordSpectralConv2d(alg, 2, 2, *modes, spectrum=spectrum).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.zero_()
        eye = torch.eye(2, dtype=torch.float64).reshape(2, 2, 1, 1)
        layer.weight[..., alg.index("1")] = eye
    x = _randn(3, 2, 8, 6, alg.dim, seed=12)
    torch.testing.assert_close(layer(x), x, atol=1e-12, rtol=0)


def test_rfft_commutes_with_translations() -> None:
    alg = Algebra(2)  # cliffordlayers' ("dual") layer does not commute with them in Cl(2,0)
    layer = CliffordSpectralConv2d(alg, 2, 2, 3, 3).double()
    dual = CliffordSpectralConv2d(alg, 2, 2, 3, 3, spectrum="dual").double()
    _perturb(layer, seed=13)
    _perturb(dual, seed=14)
    x = _randn(1, 2, 8, 8, 4, seed=15)
    shift = (torch.roll(x, (3, -2), (2, 3)), (3, -2), (2, 3))
    torch.testing.assert_close(layer(shift[0]), torch.roll(layer(x), shift[1], shift[2]), atol=1e-12, rtol=0)
    assert (dual(shift[0]) - torch.roll(dual(x), shift[1], shift[2])).abs().max() > 1e-2


@pytest.mark.parametrize(
    ("cls", "alg", "modes", "grid", "spectrum"),
    [
        (CliffordSpectralConv2d, STA, (2, 3), (6, 8), "rfft"),
        (CliffordSpectralConv3d, Algebra(3), (1, 2, 2), (4, 4, 4), "dual"),
    ],
)
def test_compile_fullgraph_matches_eager(
    cls: Any, alg: Algebra, modes: tuple[int, ...], grid: tuple[int, ...], spectrum: str
) -> None:
    torch._dynamo.reset()
    kw = {"cliffordlayers_3d_slicing": True} if cls is CliffordSpectralConv3d else {}
    layer = cls(alg, 2, 2, *modes, spectrum=spectrum, **kw)
    _perturb(layer, seed=16)
    x = _randn(2, 2, *grid, alg.dim, seed=17, dtype=torch.float32)
    compiled = torch.compile(layer, fullgraph=True)
    torch.testing.assert_close(compiled(x), layer(x), atol=1e-5, rtol=0)


def test_errors() -> None:
    alg = Algebra(2)
    with pytest.raises(TypeError, match=r"gatorch\.Algebra"):
        CliffordSpectralConv2d("Cl(2,0)", 1, 1, 1, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="modes2 must be an int >= 1, got 0"):
        CliffordSpectralConv2d(alg, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="in_channels must be an int >= 1"):
        CliffordSpectralConv2d(alg, 0, 1, 1, 1)
    with pytest.raises(ValueError, match=r"spectrum must be one of .*got 'fft'"):
        CliffordSpectralConv2d(alg, 1, 1, 1, 1, spectrum="fft")
    with pytest.raises(ValueError, match=r"cliffordlayers_3d_slicing needs spectrum='dual'"):
        CliffordSpectralConv3d(Algebra(3), 1, 1, 1, 1, 1, cliffordlayers_3d_slicing=True)
    with pytest.raises(ValueError, match=r">= 1 basis vector"):
        CliffordSpectralConv2d(Algebra(0), 1, 1, 1, 1, spectrum="dual")
    layer = CliffordSpectralConv2d(alg, 2, 1, 2, 2)
    with pytest.raises(ValueError, match=r"expected last dimension 4.*got shape \(1, 2, 8, 8, 8\)"):
        layer(torch.zeros(1, 2, 8, 8, 8))
    with pytest.raises(
        ValueError, match=r"expected input of shape \(batch, 2, \*, \*, 4\), got \(1, 3, 8, 8, 4\)"
    ):
        layer(torch.zeros(1, 3, 8, 8, 4))
    with pytest.raises(ValueError, match=r"expected input of shape .* got \(1, 2, 8, 4\)"):
        layer(torch.zeros(1, 2, 8, 4))
    with pytest.raises(ValueError, match="modes1=2 needs spatial size n with modes <= n // 2; got n=3"):
        layer(torch.zeros(1, 2, 3, 8, 4))
    with pytest.raises(ValueError, match=r"modes2=2 .*n // 2 \+ 1 .*got n=1"):
        layer(torch.zeros(1, 2, 8, 1, 4))
