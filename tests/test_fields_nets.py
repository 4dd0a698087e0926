"""Grid models for multivector fields (gatorch.nets.fields): shapes, errors, compile, equivariance."""

from __future__ import annotations

import math

import pytest
import torch

from gatorch import VGA3, Algebra
from gatorch.nets.fields import CliffordFNO, CliffordResNet, CliffordSteerableResNet

CL2 = Algebra(2)
CL3 = VGA3  # Cl(3,0): blades 1, e1, e2, e3, e12, e13, e23, e123


def _resnet(**kw):
    opts = dict(in_channels=3, out_channels=2, hidden_channels=4, num_blocks=2)
    return CliffordResNet(CL2, **{**opts, **kw})


def _fno(**kw):
    opts = dict(in_channels=3, out_channels=2, hidden_channels=4, num_blocks=2, modes1=4, modes2=4)
    return CliffordFNO(CL2, **{**opts, **kw})


def _steerable(**kw):
    opts = dict(in_channels=3, out_channels=2, hidden_channels=4, num_blocks=2)
    return CliffordSteerableResNet(CL2, **{**opts, **kw})


@pytest.mark.parametrize("build", [_resnet, _fno, _steerable], ids=["resnet", "fno", "steerable"])
def test_shapes_and_gradients(build):
    torch.manual_seed(0)
    net = build()
    x = torch.randn(2, 3, 12, 16, 4, requires_grad=True)
    y = net(x)
    assert y.shape == (2, 2, 12, 16, 4)
    assert torch.isfinite(y).all()
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_resnet_options_change_the_structure():
    torch.manual_seed(0)
    plain = _resnet(norm=False)
    normed = _resnet(norm=True, num_groups=2)
    assert sum(p.numel() for p in normed.parameters()) > sum(p.numel() for p in plain.parameters())
    # cliffordlayers' non-periodic embedding: zero-padded domain, same output shape
    padded = _resnet(padding_mode="zeros", domain_padding=3)
    assert padded(torch.randn(1, 3, 10, 10, 4)).shape == (1, 2, 10, 10, 4)
    # the decoder has no bias: a zero field stays zero when nothing else adds a constant
    assert plain.decoder.bias is None and plain.encoder.bias is not None


def test_resnet_is_periodic_with_circular_padding():
    torch.manual_seed(0)
    net = _resnet().double()
    x = torch.randn(1, 3, 10, 12, 4, dtype=torch.float64)
    shifted = torch.roll(x, shifts=(3, -5), dims=(2, 3))
    torch.testing.assert_close(
        net(shifted), torch.roll(net(x), shifts=(3, -5), dims=(2, 3)), atol=1e-12, rtol=0
    )


@pytest.mark.parametrize(
    "build, kwargs, match",
    [
        (_resnet, {"num_blocks": 0}, "num_blocks"),
        (_resnet, {"kernel_size": 4}, "odd"),
        (_resnet, {"hidden_channels": 6, "num_groups": 4}, "divide"),
        (_resnet, {"activation": "swish"}, "activation"),
        (_fno, {"modes1": 0}, "modes1"),
        (_steerable, {"kernel_size": 2}, "odd"),
        (_steerable, {"hidden_channels": 0}, "hidden_channels"),
        (_steerable, {"hidden_channels": 6, "num_groups": 4}, "divide"),
    ],
)
def test_constructor_errors(build, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


@pytest.mark.parametrize("cls", [CliffordResNet, CliffordFNO, CliffordSteerableResNet])
def test_algebra_type_error(cls):
    with pytest.raises(TypeError, match="Algebra"):
        cls("Cl(2,0)", in_channels=1, out_channels=1, hidden_channels=2, num_blocks=1, **(
            {"modes1": 2, "modes2": 2} if cls is CliffordFNO else {}))  # fmt: skip


@pytest.mark.parametrize("build", [_resnet, _fno, _steerable], ids=["resnet", "fno", "steerable"])
def test_input_errors(build):
    net = build()
    with pytest.raises(ValueError, match=r"\(batch, 3, H, W, 4\)"):
        net(torch.randn(2, 4, 12, 12, 4))  # wrong channels
    with pytest.raises(ValueError):
        net(torch.randn(2, 3, 12, 12, 8))  # wrong blade dimension
    with pytest.raises(ValueError):
        net(torch.randn(3, 12, 12, 4))  # no batch axis


def test_fno_rejects_grids_smaller_than_its_modes():
    with pytest.raises(ValueError, match="Fourier modes"):
        _fno(modes1=8, modes2=8)(torch.randn(1, 3, 8, 8, 4))


def test_steerable_group_norm_statistics():
    from gatorch.nets.fields import _EquiFieldGroupNorm

    norm = _EquiFieldGroupNorm(CL2, num_groups=2, channels=4, eps=1e-12).double()
    x = torch.randn(3, 4, 6, 6, 4, dtype=torch.float64)
    x[:, 2:] *= 100.0  # the second group is much larger
    y = norm(x)
    # per sample and group: the mean over channels and grid points of the squared norm is 1
    ms = y.pow(2).sum(-1).reshape(3, 2, -1).mean(-1)
    torch.testing.assert_close(ms, torch.ones(3, 2, dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(norm(7.0 * x), y, atol=1e-8, rtol=1e-8)  # scale-free
    # a near-empty region stays small (statistics over the grid, not per point)
    x[:, :, :3] *= 1e-6
    assert norm(x)[:, :, :3].abs().max() < 1e-3


# -- equivariance of the steerable net -------------------------------------------------------------


def _vector(alg, x, y, dtype=torch.float64):
    v = torch.zeros(alg.dim, dtype=dtype)
    v[alg.index("e1")], v[alg.index("e2")] = x, y
    return v


def _rotation_90():
    """The versor (e1 + e2)/sqrt(2) * e1: a rotation by +90 degrees (checked on e1 -> e2, e2 -> -e1)."""
    w = CL2.gp(_vector(CL2, 1 / math.sqrt(2), 1 / math.sqrt(2)), _vector(CL2, 1.0, 0.0))
    torch.testing.assert_close(CL2.sandwich(w, _vector(CL2, 1.0, 0.0)), _vector(CL2, 0.0, 1.0))
    torch.testing.assert_close(CL2.sandwich(w, _vector(CL2, 0.0, 1.0)), _vector(CL2, -1.0, 0.0))
    return w


def _act(w, field):
    return CL2.sandwich(w, field)


def _rotate_grid(field):
    # rot90 moves the value at grid point (j, -1 - i) to (i, j): the map (x, y) -> (-y, x), shifted a cell
    return torch.rot90(field, 1, dims=(2, 3))


def _reflect_grid(field):
    return torch.flip(field, dims=(2,))  # x -> -x (about the grid's centre)


@pytest.mark.parametrize("norm, groups", [(True, 1), (True, 2), (False, 1)])
def test_steerable_resnet_is_equivariant_to_90_degree_rotations(norm, groups):
    torch.manual_seed(1)
    net = _steerable(norm=norm, num_groups=groups).double()
    # make every bias and gate non-trivial so that no part of the net is skipped by zero init
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    w = _rotation_90()
    x = torch.randn(2, 3, 10, 10, 4, dtype=torch.float64)
    y = net(x)
    for k in range(1, 4):
        xr, yr = x, y
        for _ in range(k):
            xr, yr = _act(w, _rotate_grid(xr)), _act(w, _rotate_grid(yr))
        torch.testing.assert_close(net(xr), yr, atol=1e-10, rtol=1e-10)
    assert (net(_rotate_grid(x)) - _rotate_grid(y)).abs().max() > 1e-3  # the values must rotate too


def test_steerable_resnet_is_equivariant_to_reflections():
    torch.manual_seed(2)
    net = _steerable().double()
    e1 = _vector(CL2, 1.0, 0.0)
    torch.testing.assert_close(CL2.sandwich(e1, e1), -e1)  # the twisted action of e1 flips x
    x = torch.randn(2, 3, 8, 8, 4, dtype=torch.float64)
    torch.testing.assert_close(
        net(_act(e1, _reflect_grid(x))), _act(e1, _reflect_grid(net(x))), atol=1e-10, rtol=1e-10
    )


def test_plain_clifford_resnet_is_not_rotation_equivariant():
    # the per-blade GELU and the unconstrained Clifford kernels break the symmetry the steerable net keeps
    torch.manual_seed(3)
    net = _resnet().double()
    w = _rotation_90()
    x = torch.randn(1, 3, 8, 8, 4, dtype=torch.float64)
    gap = (net(_act(w, _rotate_grid(x))) - _act(w, _rotate_grid(net(x)))).abs().max()
    assert gap > 1e-3


# -- torch.compile --------------------------------------------------------------------------------


def _compiled_matches(net, x):
    torch._dynamo.reset()
    compiled = torch.compile(net, fullgraph=True)
    torch.testing.assert_close(compiled(x), net(x), atol=1e-5, rtol=1e-5)


def test_compile_resnet_fullgraph():
    torch.manual_seed(0)
    _compiled_matches(
        CliffordResNet(CL2, in_channels=2, out_channels=1, hidden_channels=2, num_blocks=1),
        torch.randn(1, 2, 8, 8, 4),
    )


def test_compile_fno_fullgraph():
    torch.manual_seed(0)
    net = CliffordFNO(CL2, in_channels=2, out_channels=1, hidden_channels=2, num_blocks=1, modes1=2, modes2=2)
    _compiled_matches(net, torch.randn(1, 2, 8, 8, 4))


def test_compile_steerable_fullgraph():
    torch.manual_seed(0)
    net = CliffordSteerableResNet(CL2, in_channels=2, out_channels=1, hidden_channels=2, num_blocks=1)
    _compiled_matches(net, torch.randn(1, 2, 8, 8, 4))


# -- 3-D grids --------------------------------------------------------------------------------------


def _resnet3(**kw):
    opts = dict(in_channels=3, out_channels=2, hidden_channels=4, num_blocks=2, spatial_dims=3)
    return CliffordResNet(CL3, **{**opts, **kw})


def _fno3(**kw):
    opts = dict(
        in_channels=3, out_channels=2, hidden_channels=4, num_blocks=2, modes1=3, modes2=3, modes3=3,
        spatial_dims=3,
    )  # fmt: skip
    return CliffordFNO(CL3, **{**opts, **kw})


def _steerable3(**kw):
    opts = dict(in_channels=3, out_channels=2, hidden_channels=4, num_blocks=2, spatial_dims=3)
    return CliffordSteerableResNet(CL3, **{**opts, **kw})


@pytest.mark.parametrize("build", [_resnet3, _fno3, _steerable3], ids=["resnet", "fno", "steerable"])
def test_3d_shapes_and_gradients(build):
    torch.manual_seed(0)
    net = build()
    assert net.spatial_dims == 3
    x = torch.randn(2, 3, 8, 6, 7, 8, requires_grad=True)
    y = net(x)
    assert y.shape == (2, 2, 8, 6, 7, 8)
    assert torch.isfinite(y).all()
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_2d_nets_keep_their_structure():
    # spatial_dims defaults to 2: 2-D layers, no modes3, the same parameter names as before
    from gatorch.layers.fields.conv import CliffordConv2d
    from gatorch.layers.fields.fourier import CliffordSpectralConv2d

    resnet, fno = _resnet(), _fno()
    assert resnet.spatial_dims == fno.spatial_dims == 2 and fno.modes3 is None
    assert isinstance(resnet.blocks[0].conv1, CliffordConv2d)
    assert isinstance(fno.blocks[0].fourier, CliffordSpectralConv2d)
    assert "blocks.0.fourier.weight" in fno.state_dict()
    assert {"encoder.weight", "blocks.1.conv2.weight", "blocks.1.norm2.weight"} <= set(resnet.state_dict())


@pytest.mark.parametrize("build", [_resnet3, _fno3], ids=["resnet", "fno"])
def test_3d_domain_padding(build):
    from gatorch.nets.fields import _crop_domain, _pad_domain

    x = torch.randn(1, 3, 5, 6, 7, 8)
    padded = _pad_domain(x, 2, 3)
    assert padded.shape == (1, 3, 7, 8, 9, 8)  # every spatial axis, not the blades
    assert (
        padded[:, :, 5:].abs().sum()
        == padded[:, :, :, 6:].abs().sum()
        == padded[:, :, :, :, 7:].abs().sum()
        == 0
    )
    torch.testing.assert_close(_crop_domain(padded, 2, 3), x, atol=0, rtol=0)
    torch.manual_seed(0)
    net = build(domain_padding=2, **({"padding_mode": "zeros"} if build is _resnet3 else {}))
    assert net(torch.randn(1, 3, 6, 6, 7, 8)).shape == (1, 2, 6, 6, 7, 8)


def test_3d_resnet_is_periodic_with_circular_padding():
    torch.manual_seed(0)
    net = _resnet3(num_blocks=1).double()
    x = torch.randn(1, 3, 6, 7, 8, 8, dtype=torch.float64)
    shifts, dims = (2, -3, 5), (2, 3, 4)
    torch.testing.assert_close(
        net(torch.roll(x, shifts, dims)), torch.roll(net(x), shifts, dims), atol=1e-12, rtol=0
    )


@pytest.mark.parametrize(
    "build, kwargs, match",
    [
        (_resnet, {"spatial_dims": 1}, "spatial_dims must be 2 or 3"),
        (_resnet, {"spatial_dims": 4}, "spatial_dims must be 2 or 3"),
        (_resnet, {"spatial_dims": True}, "spatial_dims must be 2 or 3"),
        (_fno, {"spatial_dims": "3", "modes3": 2}, "spatial_dims must be 2 or 3"),
        (_steerable, {"spatial_dims": 1}, "spatial_dims must be 2 or 3"),
        (_fno3, {"modes3": None}, "modes3 is required"),
        (_fno, {"modes3": 4}, "modes3 is only for spatial_dims=3"),
        (_fno3, {"modes3": 0}, "modes3"),
        (_resnet3, {"kernel_size": 2}, "odd"),
        (_steerable3, {"hidden_channels": 6, "num_groups": 4}, "divide"),
        (_steerable, {"spatial_dims": 3}, "3 non-degenerate basis vectors"),  # Cl(2,0) on a 3-D grid
    ],
)
def test_3d_constructor_errors(build, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


def test_steerable_2d_net_needs_a_2d_algebra():
    with pytest.raises(ValueError, match="2 non-degenerate basis vectors"):
        CliffordSteerableResNet(CL3, in_channels=1, out_channels=1, hidden_channels=2, num_blocks=1)


@pytest.mark.parametrize("build", [_resnet3, _fno3, _steerable3], ids=["resnet", "fno", "steerable"])
def test_3d_input_errors(build):
    net = build()
    with pytest.raises(ValueError, match=r"\(batch, 3, D, H, W, 8\)"):
        net(torch.randn(2, 4, 8, 8, 8, 8))  # wrong channels
    with pytest.raises(ValueError, match=r"\(batch, 3, D, H, W, 8\)"):
        net(torch.randn(2, 3, 8, 8, 8))  # a 2-D field
    with pytest.raises(ValueError):
        net(torch.randn(2, 3, 8, 8, 8, 4))  # wrong blade dimension


@pytest.mark.parametrize("build", [_resnet, _fno, _steerable], ids=["resnet", "fno", "steerable"])
def test_2d_nets_reject_3d_fields(build):
    with pytest.raises(ValueError, match=r"\(batch, 3, H, W, 4\)"):
        build()(torch.randn(1, 3, 8, 8, 8, 4))


@pytest.mark.parametrize(
    "modes, match", [((5, 3, 3), "modes1=5"), ((3, 5, 3), "modes2=5"), ((3, 3, 6), "modes3=6")]
)
def test_3d_fno_rejects_grids_smaller_than_its_modes(modes, match):
    net = _fno3(modes1=modes[0], modes2=modes[1], modes3=modes[2])
    with pytest.raises(ValueError, match=f"8 x 8 x 8 grid has fewer Fourier modes.*{match}"):
        net(torch.randn(1, 3, 8, 8, 8, 8))
    assert _fno3(modes1=4, modes2=4, modes3=5)(torch.randn(1, 3, 8, 8, 8, 8)).shape == (1, 2, 8, 8, 8, 8)


def test_compile_resnet_3d_fullgraph_aot_eager():
    torch.manual_seed(0)
    net = CliffordResNet(
        CL3, in_channels=2, out_channels=1, hidden_channels=2, num_blocks=1, spatial_dims=3,
        padding_mode="zeros", domain_padding=1,
    )  # fmt: skip
    x = torch.randn(1, 2, 6, 6, 6, 8)
    torch._dynamo.reset()
    compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), net(x), atol=1e-5, rtol=1e-5)


def _vector3(x, y, z, dtype=torch.float64):
    v = torch.zeros(CL3.dim, dtype=dtype)
    v[CL3.index("e1")], v[CL3.index("e2")], v[CL3.index("e3")] = x, y, z
    return v


def test_steerable_resnet_3d_is_equivariant_to_a_90_degree_rotation_and_a_reflection():
    torch.manual_seed(4)
    net = _steerable3(num_groups=2).double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    # grid axes (D, H, W) = (e1, e2, e3); rot90 over (D, H) is the rotation e1 -> e2 about e3
    w = CL3.gp(_vector3(1 / math.sqrt(2), 1 / math.sqrt(2), 0.0), _vector3(1.0, 0.0, 0.0))
    torch.testing.assert_close(CL3.sandwich(w, _vector3(1.0, 0.0, 0.0)), _vector3(0.0, 1.0, 0.0))
    torch.testing.assert_close(CL3.sandwich(w, _vector3(0.0, 1.0, 0.0)), _vector3(-1.0, 0.0, 0.0))
    torch.testing.assert_close(CL3.sandwich(w, _vector3(0.0, 0.0, 1.0)), _vector3(0.0, 0.0, 1.0))
    x = torch.randn(1, 3, 6, 6, 6, 8, dtype=torch.float64)
    y = net(x)

    def rotate(field):
        return CL3.sandwich(w, torch.rot90(field, 1, dims=(2, 3)))

    torch.testing.assert_close(net(rotate(x)), rotate(y), atol=1e-10, rtol=1e-10)
    gap = (net(torch.rot90(x, 1, dims=(2, 3))) - torch.rot90(y, 1, dims=(2, 3))).abs().max()
    assert gap > 1e-3  # the values must rotate too
    # an odd versor: e3 reflects the third grid axis
    e3 = _vector3(0.0, 0.0, 1.0)

    def reflect(field):
        return CL3.sandwich(e3, torch.flip(field, dims=(4,)))

    torch.testing.assert_close(net(reflect(x)), reflect(y), atol=1e-10, rtol=1e-10)
