"""Whole cliffordlayers models (``CliffordNet2d`` / ``CliffordNet3d``) converted by ``from_cliffordlayers``.

Random weights (every parameter perturbed), batch of 3, cliffordlayers' own input layout
(scalar + vector fields, 3 blades, in 2-D; vector + bivector fields, 6 blades, in 3-D), its
domain padding (9 in 2-D, 2 in 3-D): the converted gatorch ``CliffordResNet`` / ``CliffordFNO``
gives the same outputs. ResNet blocks with and without group norm and rotational convolutions,
Fourier blocks in 2-D and 3-D with and without group norm and with more than half the modes
(cliffordlayers' overlapping blocks). cliffordlayers keeps its spectra in float32 even for
float64 input, so the Fourier nets agree at float32 precision in float64 too. Also: the input
gradient, periodic nets (``padding = 0``), and the refusals.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from gatorch.interop.cliffordlayers import from_cliffordlayers
from gatorch.nets.fields import CliffordFNO, CliffordResNet
from gatorch.testing import assert_compiles

m2 = pytest.importorskip("cliffordlayers.models.models_2d")
m3 = importlib.import_module("cliffordlayers.models.models_3d")
partialclass = importlib.import_module("cliffordlayers.models.utils").partialclass
F = nn.functional

#: relative tolerance (to the largest output): float64 ResNets, everything else
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def _randn(*shape: int, seed: int, dtype: torch.dtype) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def _perturb(net: nn.Module, seed: int) -> None:
    with torch.no_grad():
        for i, (name, p) in enumerate(net.named_parameters()):
            if "zero_kernel" not in name:  # cliffordlayers keeps it zero (requires_grad=False)
                p.add_(0.3 * _randn(*p.shape, seed=seed + i, dtype=p.dtype))


def _close(ours: Tensor, theirs: Tensor, tol: float) -> None:
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    scale = max(1.0, float(theirs.detach().abs().max()))
    torch.testing.assert_close(ours, theirs, atol=tol * scale, rtol=0)


def _net2d(block: Any, dtype: torch.dtype, seed: int, **kw: Any) -> Any:
    torch.manual_seed(seed)
    opts = dict(g=[1, -1], block=block, num_blocks=[1, 1], in_channels=2, out_channels=3, hidden_channels=4)
    opts.update(activation=F.gelu, rotation=False, norm=False, num_groups=1)
    opts.update(kw)
    net = m2.CliffordNet2d(**opts).to(dtype)
    _perturb(net, seed)
    return net


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"norm": True, "num_groups": 2},
        {"g": [-1, -1], "rotation": True, "norm": True},
    ],
    ids=["plain", "group-norm", "rotation-norm"],
)
def test_resnet_2d(kw: dict[str, Any], dtype: torch.dtype) -> None:
    theirs = _net2d(m2.CliffordBasicBlock2d, dtype, seed=1, **kw)
    ours = from_cliffordlayers(theirs)
    assert isinstance(ours, CliffordResNet) and ours.training
    x = _randn(3, 2, 16, 16, 3, seed=2, dtype=dtype)
    y = theirs(x)
    assert y.shape == (3, 3, 16, 16, 3) and y.abs().max() > 0.1
    _close(ours(x), y, TOL[dtype])


def test_resnet_2d_needs_cliffordlayers_whitening_and_bias() -> None:
    """The converted net's group norms use cliffordlayers' whitening and bias; gatorch's default
    norms (same weights) give another net."""
    theirs = _net2d(m2.CliffordBasicBlock2d, torch.float64, seed=14, norm=True, num_groups=2)
    ours = from_cliffordlayers(theirs)
    norms = [m for m in ours.modules() if type(m).__name__ == "CliffordGroupNorm2d"]
    assert len(norms) == 4 and all(n.whitening == "cliffordlayers" and n.cliffordlayers_bias for n in norms)
    x = _randn(3, 2, 16, 16, 3, seed=15, dtype=torch.float64)
    y = theirs(x)
    _close(ours(x), y, 1e-10)
    for opts in ({"whitening": "cholesky"}, {"cliffordlayers_bias": False}):
        for n in norms:
            for k, v in opts.items():
                setattr(n, k, v)
        assert (ours(x) - y).abs().max() > 0.1
        for n in norms:
            n.whitening, n.cliffordlayers_bias = "cliffordlayers", True


def test_resnet_2d_input_gradient_and_periodic() -> None:
    theirs = _net2d(m2.CliffordBasicBlock2d, torch.float64, seed=3, norm=True, num_groups=2)
    theirs.padding = 0  # cliffordlayers' setting for periodic boundaries
    ours = from_cliffordlayers(theirs)
    assert ours.domain_padding == 0
    x1 = _randn(3, 2, 16, 16, 3, seed=4, dtype=torch.float64).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    y1, y2 = theirs(x1), ours(x2)
    _close(y2, y1, 1e-10)
    cot = _randn(*y1.shape, seed=5, dtype=torch.float64)
    (y1 * cot).sum().backward()
    (y2 * cot).sum().backward()
    assert x1.grad is not None and x2.grad is not None
    _close(x2.grad, x1.grad, 1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "kw",
    [
        {"g": [1, 1]},
        {"g": [1, 1], "norm": True, "num_groups": 2},
        {"g": [-1, -1], "rotation": True, "norm": True},
    ],
    ids=["plain", "group-norm", "rotation-norm"],
)
def test_fno_2d(kw: dict[str, Any], dtype: torch.dtype) -> None:
    # the blocks see 16 + 9 = 25 points per axis: modes2 = 14 > 25 // 2 overlaps
    block = partialclass("Block", m2.CliffordFourierBasicBlock2d, modes1=6, modes2=14)
    theirs = _net2d(block, dtype, seed=6, **kw)
    ours = from_cliffordlayers(theirs)
    assert isinstance(ours, CliffordFNO) and ours.spectrum == "dual"
    x = _randn(3, 2, 16, 16, 3, seed=7, dtype=dtype)
    y = theirs(x)
    assert y.abs().max() > 0.1
    _close(ours(x), y, TOL[torch.float32])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("norm", [False, True])
def test_fno_3d(norm: bool, dtype: torch.dtype) -> None:
    block = partialclass("Block3", m3.CliffordFourierBasicBlock3d, modes1=3, modes2=2, modes3=6)
    torch.manual_seed(8)
    theirs = m3.CliffordNet3d(
        [1, -1, 1], block, [2], in_channels=2, out_channels=1, hidden_channels=4,
        activation=F.gelu, norm=norm, num_groups=2,
    ).to(dtype)  # fmt: skip
    _perturb(theirs, seed=8)
    ours = from_cliffordlayers(theirs)
    assert isinstance(ours, CliffordFNO) and ours.in_blades == (1, 2, 3, 4, 5, 6)
    x = _randn(3, 2, 8, 8, 8, 6, seed=9, dtype=dtype)
    y = theirs(x)
    assert y.shape == (3, 1, 8, 8, 8, 6) and y.abs().max() > 0.1
    _close(ours(x), y, TOL[torch.float32])


def test_converted_net_compiles_fullgraph() -> None:
    """Fresh converted FNO with group norms (cliffordlayers' bias), overlapping modes, 3 blades in
    and out: ``torch.compile(fullgraph=True)`` equals eager."""
    block = partialclass("Block", m2.CliffordFourierBasicBlock2d, modes1=2, modes2=5)
    theirs = _net2d(block, torch.float32, seed=12, norm=True, num_groups=2, num_blocks=[1])
    theirs.padding = 0
    ours = from_cliffordlayers(theirs)
    x = _randn(3, 2, 8, 8, 3, seed=13, dtype=torch.float32)
    assert_compiles(ours, (x,), backend="aot_eager", atol=1e-4)


def test_refusals() -> None:
    net = _net2d(m2.CliffordBasicBlock2d, torch.float32, seed=10, activation=torch.erf)
    with pytest.raises(ValueError, match=r"activation <built-in method erf.* has no gatorch equivalent"):
        from_cliffordlayers(net)
    net = _net2d(m2.CliffordBasicBlock2d, torch.float32, seed=10, num_blocks=[])
    with pytest.raises(ValueError, match="CliffordNet2d has no blocks"):
        from_cliffordlayers(net)
    net = _net2d(m2.CliffordBasicBlock2d, torch.float32, seed=10)
    net.layers.append(nn.Sequential(m2.CliffordFourierBasicBlock2d([1, -1], 4, 4, modes1=2, modes2=2)))
    with pytest.raises(TypeError, match=r"blocks \['CliffordBasicBlock2d', 'CliffordFourierBasicBlock2d'\]"):
        from_cliffordlayers(net)


def test_net_input_blades_are_checked() -> None:
    theirs = _net2d(m2.CliffordBasicBlock2d, torch.float32, seed=11)
    ours = from_cliffordlayers(theirs)
    with pytest.raises(
        ValueError, match=r"expected a field of shape \(batch, 2, H, W, 3\) \(blades \(0, 1, 2\)"
    ):
        ours(torch.zeros(1, 2, 16, 16, 4))
    with pytest.raises(
        ValueError, match=r"out_blades entries must be blade names or indices in \[0, 4\), got 4"
    ):
        CliffordResNet(
            ours.alg, in_channels=1, out_channels=1, hidden_channels=2, num_blocks=1, out_blades=[4]
        )
    named = CliffordResNet(
        ours.alg, in_channels=1, out_channels=1, hidden_channels=2, num_blocks=1, in_blades=["1", "e12"]
    )
    assert named.in_blades == (0, 3) and named(torch.zeros(1, 1, 4, 4, 2)).shape == (1, 1, 4, 4, 4)
