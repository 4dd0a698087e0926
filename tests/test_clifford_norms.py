"""Whitening batch and group norms of multivector fields (``gatorch.layers.fields.norm``).

* Against the installed ``cliffordlayers`` (skipped where missing), through
  :func:`gatorch.interop.cliffordlayers_fourier.convert`, with every parameter and buffer
  perturbed: batch norm 1-D / 2-D / 3-D in train mode (outputs, gradients of input, weight and
  bias, running statistics after two steps, momentum None), eval mode, no affine, no running
  statistics; group norm in train mode and eval mode with running statistics; every
  signature with entries in {+1, -1, 0} for 1, 2 and 3 basis vectors; float32 (1e-5) and
  float64 (1e-10).
* Independent of it: the whitened output has zero mean and identity covariance per channel
  (per sample and group) for any algebra (STA: 16 x 16 covariances), the running statistics
  are the momentum average of the batch statistics, fresh ``torch.compile(fullgraph=True)``
  equals eager (including the buffer updates), errors.
"""

from __future__ import annotations

import copy
import importlib
import itertools
from typing import Any

import pytest
import torch
from torch import Tensor

from gatorch import STA, Algebra
from gatorch.layers.fields.norm import (
    CliffordBatchNorm1d,
    CliffordBatchNorm2d,
    CliffordBatchNorm3d,
    CliffordGroupNorm1d,
    CliffordGroupNorm2d,
    CliffordGroupNorm3d,
)

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
SIGS = [list(g) for n in (1, 2, 3) for g in itertools.product([1, -1, 0], repeat=n) if any(v != 0 for v in g)]
GRID = {1: (7,), 2: (5, 4), 3: (3, 4, 3)}


def _randn(*shape: int, seed: int, dtype: torch.dtype = torch.float64) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def _field(b: int, c: int, grid: tuple[int, ...], dim: int, seed: int, dtype: torch.dtype) -> Tensor:
    """Correlated, shifted blade components (a non-trivial covariance per channel)."""
    x = _randn(b, c, *grid, dim, seed=seed)
    mix = torch.eye(dim, dtype=torch.float64) + 0.5 * _randn(c, dim, dim, seed=seed + 1)
    shape = (1, c) + (1,) * len(grid) + (dim, dim)
    x = (mix.reshape(shape) @ x.unsqueeze(-1)).squeeze(-1) + _randn(c, dim, seed=seed + 2).reshape(
        1, c, *([1] * len(grid)), dim
    )
    return x.to(dtype)


def _perturb_norm(m: Any, seed: int) -> None:
    """Random affine weight and bias; running mean and an SPD running covariance."""
    with torch.no_grad():
        if m.weight is not None:
            m.weight.add_(0.3 * _randn(*m.weight.shape, seed=seed, dtype=m.weight.dtype))
            m.bias.copy_(_randn(*m.bias.shape, seed=seed + 1, dtype=m.bias.dtype))
        if m.running_mean is not None:
            m.running_mean.copy_(_randn(*m.running_mean.shape, seed=seed + 2, dtype=m.running_mean.dtype))
            cov = m.running_cov
            if cov.shape[0] == cov.shape[1]:  # cliffordlayers: (I, I, C)
                a = _randn(cov.shape[2], cov.shape[0], cov.shape[0], seed=seed + 3)
                spd = (a @ a.mT / cov.shape[0] + 0.5 * torch.eye(cov.shape[0], dtype=torch.float64)).permute(
                    1, 2, 0
                )
            else:
                a = _randn(*cov.shape, seed=seed + 3)
                spd = a @ a.mT / cov.shape[-1] + 0.5 * torch.eye(cov.shape[-1], dtype=torch.float64)
            cov.copy_(spd.to(cov.dtype))
            m.num_batches_tracked.fill_(3)


def _cl() -> Any:
    pytest.importorskip("cliffordlayers")
    return (
        importlib.import_module("cliffordlayers.nn.modules.batchnorm"),
        importlib.import_module("cliffordlayers.nn.modules.groupnorm"),
    )


def _convert(m: Any) -> Any:
    from gatorch.interop.cliffordlayers_fourier import convert

    out = convert(m)
    assert out is not None
    return out


def _bn_pair(d: int, g: list[int], c: int, dtype: torch.dtype, seed: int, **kw: Any) -> tuple[Any, Any]:
    bn, _ = _cl()
    cls = {1: bn.CliffordBatchNorm1d, 2: bn.CliffordBatchNorm2d, 3: bn.CliffordBatchNorm3d}[d]
    theirs = cls(g, c, **kw).to(dtype)
    _perturb_norm(theirs, seed)
    ours = _convert(theirs)
    assert type(ours).__name__ == cls.__name__ and ours.training
    return theirs, ours


def _close(ours: Tensor | None, theirs: Tensor | None, tol: float) -> None:
    """Tolerance ``tol`` relative to the largest entry of ``theirs`` when that is above 1."""
    assert ours is not None and theirs is not None
    torch.testing.assert_close(ours, theirs, atol=tol * max(1.0, float(theirs.detach().abs().max())), rtol=0)


def _compare_step(theirs: Any, ours: Any, x: Tensor, seed: int, bias_grad: bool = True) -> None:
    tol = TOL[x.dtype]
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = theirs(x1), ours(x2)
    assert y1.abs().max() > 0.1
    _close(y2, y1, tol)  # tolerance relative to the largest output (when above 1)
    cot = _randn(*y1.shape, seed=seed, dtype=x.dtype)
    (y1 * cot).sum().backward()
    (y2 * cot).sum().backward()
    _close(x2.grad, x1.grad, tol)
    if theirs.weight is not None:
        _close(ours.weight.grad, theirs.weight.grad.permute(2, 0, 1), tol)
        if bias_grad:
            _close(ours.bias.grad, theirs.bias.grad.reshape(ours.bias.shape), tol)


def _compare_running(theirs: Any, ours: Any, tol: float) -> None:
    torch.testing.assert_close(ours.running_mean, theirs.running_mean.T, atol=tol, rtol=0)
    torch.testing.assert_close(ours.running_cov, theirs.running_cov.permute(2, 0, 1), atol=tol, rtol=0)
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked)


@pytest.mark.parametrize("g", SIGS, ids=[str(g) for g in SIGS])
def test_batchnorm2d_every_signature(g: list[int]) -> None:
    theirs, ours = _bn_pair(2, g, 3, torch.float32, seed=1)
    x = _field(4, 3, GRID[2], 2 ** len(g), seed=2, dtype=torch.float32)
    _compare_step(theirs, ours, x, seed=3)
    _compare_running(theirs, ours, 1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("momentum", [0.3, None])
def test_batchnorm_train_steps_then_eval(d: int, dtype: torch.dtype, momentum: float | None) -> None:
    g = [1, -1, 1][: 3 if d == 3 else 2]
    theirs, ours = _bn_pair(d, g, 2, dtype, seed=4, momentum=momentum)
    tol = TOL[dtype]
    for step in range(2):
        x = _field(3, 2, GRID[d], 2 ** len(g), seed=10 + step, dtype=dtype)
        _compare_step(theirs, ours, x, seed=20 + step)
        _compare_running(theirs, ours, tol)
    theirs.eval()
    ours.eval()
    x = _field(2, 2, GRID[d], 2 ** len(g), seed=30, dtype=dtype)
    _compare_step(theirs, ours, x, seed=31)


def test_batchnorm1d_without_grid_and_options() -> None:
    for kw in ({"affine": False}, {"track_running_stats": False}):
        theirs, ours = _bn_pair(1, [-1, -1], 3, torch.float64, seed=5, **kw)
        x = _field(6, 3, (), 4, seed=6, dtype=torch.float64)
        _compare_step(theirs, ours, x, seed=7)
        theirs.eval()
        ours.eval()
        _compare_step(theirs, ours, x, seed=8)


def _gn_pair(
    d: int, g: list[int], group_size: int, c: int, dtype: torch.dtype, seed: int, **kw: Any
) -> tuple[Any, Any]:
    _, gn = _cl()
    cls = {1: gn.CliffordGroupNorm1d, 2: gn.CliffordGroupNorm2d, 3: gn.CliffordGroupNorm3d}[d]
    theirs = cls(g, group_size, c, **kw).to(dtype)
    _perturb_norm(theirs, seed)
    ours = _convert(theirs)
    assert ours.num_groups == c // group_size and ours.channels == c
    return theirs, ours


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("g", [[1], [-1, 1], [0, 1, -1]], ids=["cl1", "cl11", "cl012"])
def test_groupnorm_matches(d: int, g: list[int], dtype: torch.dtype) -> None:
    """Batch of one (cliffordlayers' bias depends on the sample index for larger batches)."""
    theirs, ours = _gn_pair(d, g, 2, 6, dtype, seed=40)
    x = _field(1, 6, GRID[d], 2 ** len(g), seed=41, dtype=dtype)
    _compare_step(theirs, ours, x, seed=42)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_groupnorm_batch_of_three_with_bias(d: int, dtype: torch.dtype) -> None:
    """Batch of 3 with a random bias: the converted norm sets ``cliffordlayers_bias`` and
    reproduces cliffordlayers' per-sample bias (outputs and every gradient, the bias's too);
    without the flag it differs."""
    theirs, ours = _gn_pair(d, [1, -1], 2, 6, dtype, seed=45)
    assert ours.cliffordlayers_bias and "cliffordlayers_bias=True" in repr(ours)
    x = _field(3, 6, GRID[d], 4, seed=46, dtype=dtype)
    _compare_step(theirs, ours, x, seed=47)
    plain = copy.deepcopy(ours)
    plain.cliffordlayers_bias = False
    with torch.no_grad():
        assert (plain(x) - theirs(x)).abs().max() > 0.1
        torch.testing.assert_close(plain(x[:1]), theirs(x[:1]), atol=TOL[dtype] * 10, rtol=0)


def test_groupnorm_cliffordlayers_bias_compiles_and_checks() -> None:
    alg = Algebra(2)
    gn = CliffordGroupNorm2d(alg, 2, 4, cliffordlayers_bias=True)
    with torch.no_grad():
        gn.bias.copy_(_randn(2, 4, seed=48, dtype=torch.float32))
    x = _field(3, 4, GRID[2], 4, seed=49, dtype=torch.float32)
    torch.testing.assert_close(torch.compile(gn, fullgraph=True)(x), gn(x), atol=1e-5, rtol=0)
    with pytest.raises(TypeError, match="cliffordlayers_bias must be a bool, got int"):
        CliffordGroupNorm2d(alg, 2, 4, cliffordlayers_bias=1)  # type: ignore[arg-type]


def test_groupnorm_batch_zero_bias_and_running_stats() -> None:
    """Batch of 4: equal with a zero bias (not its gradient: cliffordlayers spreads its bias
    over the samples); running mean after a step; eval with running stats."""
    theirs, ours = _gn_pair(2, [1, 1], 3, 6, torch.float64, seed=50, track_running_stats=True)
    with torch.no_grad():
        theirs.bias.zero_()
        ours.bias.zero_()
    # batch = dim: cliffordlayers' write-back of the running covariance raises for other sizes
    x = _field(4, 6, GRID[2], 4, seed=54, dtype=torch.float64)
    rc = ours.running_cov.clone()
    _compare_step(
        theirs, ours, _field(4, 6, GRID[2], 4, seed=51, dtype=torch.float64), seed=52, bias_grad=False
    )
    torch.testing.assert_close(ours.running_mean, theirs.running_mean.T, atol=1e-10, rtol=0)
    # gatorch's running covariance: momentum average of the batch-averaged group covariances
    xg = _field(4, 6, GRID[2], 4, seed=51, dtype=torch.float64).reshape(4, 2, -1, 4)
    xc = xg - xg.mean(2, keepdim=True)
    cov = torch.einsum("bgni,bgnj->bgij", xc, xc).mean(0) / xg.shape[2]
    torch.testing.assert_close(ours.running_cov, rc + 0.1 * (cov - rc), atol=1e-10, rtol=0)
    theirs.eval()
    ours.eval()
    with torch.no_grad():  # cliffordlayers' own update left a non-positive-definite matrix
        theirs.running_cov.copy_(ours.running_cov.permute(1, 2, 0))
    _compare_step(theirs, ours, x, seed=53, bias_grad=False)


# ---------------------------------------------------------------------------------------------
# independent of cliffordlayers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", [STA, Algebra(2, 0, 1), Algebra(3)], ids=["sta", "pga2", "vga3"])
def test_whitened_statistics(alg: Algebra) -> None:
    dim = alg.dim
    x = _field(6, 2, (5, 5), dim, seed=60, dtype=torch.float64)
    bn = CliffordBatchNorm2d(alg, 2, eps=0.0, affine=False).double()
    y = bn(x)
    yf = y.transpose(0, 1).reshape(2, -1, dim)
    torch.testing.assert_close(yf.mean(1), torch.zeros(2, dim, dtype=torch.float64), atol=1e-10, rtol=0)
    cov = yf.mT @ yf / yf.shape[1]
    torch.testing.assert_close(
        cov, torch.eye(dim, dtype=torch.float64).expand(2, dim, dim), atol=1e-9, rtol=0
    )
    # running statistics: momentum average of the batch mean and (biased) covariance
    xf = x.transpose(0, 1).reshape(2, -1, dim)
    mean = xf.mean(1)
    xcov = (xf - mean[:, None]).mT @ (xf - mean[:, None]) / xf.shape[1]
    eye = torch.eye(dim, dtype=torch.float64)
    torch.testing.assert_close(bn.running_mean, 0.1 * mean, atol=1e-12, rtol=0)
    torch.testing.assert_close(bn.running_cov, 0.9 * eye + 0.1 * xcov, atol=1e-12, rtol=0)
    gn = CliffordGroupNorm2d(alg, 1, 2, eps=0.0, affine=False).double()
    z = gn(x).reshape(6, -1, dim)
    zc = z.mT @ z / z.shape[1]
    torch.testing.assert_close(z.mean(1), torch.zeros(6, dim, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(zc, eye.expand(6, dim, dim), atol=1e-9, rtol=0)


def test_cliffordlayers_whitening_does_not_whiten() -> None:
    """cliffordlayers multiplies by L^{-T} (L L^T = cov): output covariance L^{-T} L L^T L^{-1}."""
    alg = Algebra(2)
    x = _field(8, 1, (6, 6), 4, seed=65, dtype=torch.float64)
    bn = CliffordBatchNorm2d(alg, 1, eps=0.0, affine=False, whitening="cliffordlayers").double()
    y = bn(x).reshape(-1, 4)
    xf = x.reshape(-1, 4)
    xc = xf - xf.mean(0)
    low = torch.linalg.cholesky(xc.T @ xc / xf.shape[0])
    expected = torch.linalg.inv(low).T @ low @ low.T @ torch.linalg.inv(low)
    torch.testing.assert_close(y.T @ y / y.shape[0], expected, atol=1e-9, rtol=0)
    assert (expected - torch.eye(4, dtype=torch.float64)).abs().max() > 0.1


@pytest.mark.parametrize("kind", ["batch", "group"])
def test_compile_fullgraph_matches_eager(kind: str) -> None:
    torch._dynamo.reset()
    alg = Algebra(2, 0, 1)
    if kind == "batch":
        eager: Any = CliffordBatchNorm3d(alg, 2)
        fresh: Any = CliffordBatchNorm3d(alg, 2)
    else:
        eager = CliffordGroupNorm3d(alg, 2, 4, track_running_stats=True)
        fresh = CliffordGroupNorm3d(alg, 2, 4, track_running_stats=True)
    eager.double()
    fresh.double()
    _perturb_norm(eager, seed=70)
    fresh.load_state_dict(eager.state_dict())
    compiled = torch.compile(fresh, fullgraph=True)
    x = _field(2, eager.channels, (3, 3, 2), alg.dim, seed=71, dtype=torch.float64)
    torch.testing.assert_close(compiled(x), eager(x), atol=1e-10, rtol=0)
    for name, buf in eager.named_buffers():
        torch.testing.assert_close(dict(fresh.named_buffers())[name], buf, atol=1e-12, rtol=0)
    assert int(fresh.num_batches_tracked) == (4 if kind == "batch" else 3)  # 3 set by _perturb_norm


def test_errors() -> None:
    alg = Algebra(2)
    with pytest.raises(TypeError, match=r"gatorch\.Algebra"):
        CliffordBatchNorm2d(None, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channels must be an int >= 1, got 0"):
        CliffordBatchNorm2d(alg, 0)
    with pytest.raises(
        ValueError, match=r"whitening must be one of \('cholesky', 'cliffordlayers'\), got 'zca'"
    ):
        CliffordGroupNorm2d(alg, 1, 2, whitening="zca")
    with pytest.raises(ValueError, match="momentum must be a float in"):
        CliffordBatchNorm2d(alg, 2, momentum=2.0)
    with pytest.raises(ValueError, match=r"channels \(6\) must be divisible by num_groups \(4\)"):
        CliffordGroupNorm2d(alg, 4, 6)
    bn = CliffordBatchNorm2d(alg, 2)
    with pytest.raises(ValueError, match=r"expected last dimension 4.*got shape \(1, 2, 3, 3, 8\)"):
        bn(torch.zeros(1, 2, 3, 3, 8))
    with pytest.raises(
        ValueError,
        match=r"expected input \(batch, 2, \*spatial, 4\) with 2 spatial axes, got shape \(1, 2, 3, 4\)",
    ):
        bn(torch.zeros(1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"with 0 or 1 spatial axes, got shape \(1, 3, 4\)"):
        CliffordGroupNorm1d(alg, 1, 2)(torch.zeros(1, 3, 4))
    assert CliffordBatchNorm1d(alg, 2)(torch.randn(5, 2, 4)).shape == (5, 2, 4)
    assert CliffordGroupNorm3d(alg, 1, 2)(torch.randn(1, 2, 2, 2, 2, 4)).shape == (1, 2, 2, 2, 2, 4)
