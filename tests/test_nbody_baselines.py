"""n-body baselines (EGNN, Transformer): shapes, gradients, E(3)/permutation equivariance, errors, overfit."""

import pytest
import torch

from examples.nbody.baselines import EGNN, Transformer

F64 = torch.float64
SMALL = {
    "egnn": lambda **kw: EGNN(hidden=16, num_layers=2, **kw),
    "transformer": lambda **kw: Transformer(hidden=16, num_layers=2, num_heads=4, **kw),
}


def _model(name, dtype=F64, seed=0, **kw):
    torch.manual_seed(seed)
    return SMALL[name](**kw).to(dtype)


def _inputs(b=3, n=5, dtype=F64, seed=1, masses=False):
    g = torch.Generator().manual_seed(seed)
    loc = torch.randn(b, n, 3, generator=g, dtype=dtype)
    vel = torch.randn(b, n, 3, generator=g, dtype=dtype)
    if masses:
        attr = torch.rand(b, n, generator=g, dtype=dtype) * 2 + 0.1
    else:
        attr = torch.randint(0, 2, (b, n), generator=g).to(dtype) * 2 - 1
    return loc, vel, attr


def _orthogonal(det, seed=2):
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=F64))
    q = q * torch.sign(torch.diagonal(r))  # Haar-distributed
    if torch.linalg.det(q) * det < 0:
        q = q * torch.tensor([-1.0, 1.0, 1.0], dtype=F64)  # flip one column
    return q


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("n", [4, 5])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_shape_and_grads(name, n, dtype):
    model = _model(name, dtype)
    loc, vel, attr = _inputs(n=n, dtype=dtype)
    out = model(loc, vel, attr)
    assert out.shape == (3, n, 3) and out.dtype == dtype
    out.square().sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("det", [1, -1])
@pytest.mark.parametrize("attr_features", ["raw", "log"])
def test_egnn_e3_equivariant(det, attr_features):
    model = _model("egnn", attr_features=attr_features)
    loc, vel, attr = _inputs(masses=attr_features == "log")
    q = _orthogonal(det)
    assert torch.isclose(torch.linalg.det(q), torch.tensor(float(det), dtype=F64))
    t = torch.tensor([0.7, -1.3, 2.1], dtype=F64)
    out = model(loc, vel, attr)
    out_t = model(loc @ q.T + t, vel @ q.T, attr)
    torch.testing.assert_close(out_t, out @ q.T + t, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("name", SMALL)
def test_permutation_equivariant(name):
    model = _model(name)
    loc, vel, attr = _inputs()
    perm = torch.tensor([3, 0, 4, 1, 2])
    out = model(loc, vel, attr)
    out_p = model(loc[:, perm], vel[:, perm], attr[:, perm])
    torch.testing.assert_close(out_p, out[:, perm], atol=1e-10, rtol=1e-10)


def test_transformer_not_rotation_equivariant():
    """The point of the baseline: absolute coordinates enter, so a rotation changes the prediction."""
    model = _model("transformer")
    loc, vel, attr = _inputs()
    q = _orthogonal(1)
    err = (model(loc @ q.T, vel @ q.T, attr) - model(loc, vel, attr) @ q.T).abs().max()
    assert err > 1e-4


def test_transformer_loc_scale_and_time_scale():
    loc, vel, attr = _inputs()
    model = _model("transformer", loc_scale=10.0, time_scale=0.5)
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)  # no correction: linear extrapolation
    torch.testing.assert_close(model(loc, vel, attr), loc + 0.5 * vel)
    with pytest.raises(ValueError, match="loc_scale"):
        Transformer(loc_scale=0.0)
    with pytest.raises(ValueError, match="num_heads must divide hidden"):
        Transformer(hidden=30, num_heads=8)


def test_egnn_time_scale():
    """With phi_x's last layer zeroed, each layer moves x by phi_v(h) * time_scale * v."""
    loc, vel, attr = _inputs()
    outs = []
    for s in (1.0, 3.0):
        model = _model("egnn", time_scale=s)
        for layer in model.layers:
            torch.nn.init.zeros_(layer.phi_x[-1].weight)
        outs.append(model(loc, vel, attr) - loc)
    torch.testing.assert_close(outs[1], 3.0 * outs[0])


@pytest.mark.parametrize("name", SMALL)
def test_log_attr_features(name):
    model = _model(name, attr_features="log")
    loc, vel, attr = _inputs(masses=True)
    out = model(loc, vel, attr)
    assert out.shape == (3, 5, 3) and torch.isfinite(out).all()
    if name == "egnn":
        assert model.edge_features == 2 and _model(name).edge_features == 1
        assert model.layers[0].phi_e[0].in_features == 2 * 16 + 1 + 2
        assert _model(name).layers[0].phi_e[0].in_features == 2 * 16 + 1 + 1
        edge = model.edge_attr(attr[:1, :3], torch.tensor([[1, 2], [0, 2], [0, 1]]))
        m02 = attr[0, 0] * attr[0, 2]
        torch.testing.assert_close(edge[0, 0, 1], torch.stack([m02, m02.log()]))
    # the log features really are used: same weights (seed), different output than "raw"
    assert not torch.allclose(out, _model(name)(loc, vel, attr))


@pytest.mark.parametrize("name", SMALL)
def test_bad_inputs(name):
    model = _model(name)
    loc, vel, attr = _inputs()
    with pytest.raises(ValueError, match=r"loc must have shape \(B, N, 3\), got \(3, 5, 2\)"):
        model(loc[..., :2], vel, attr)
    with pytest.raises(ValueError, match=r"loc must have shape \(B, N, 3\), got \(5, 3\)"):
        model(loc[0], vel, attr)
    with pytest.raises(ValueError, match=r"vel must have shape \(B, N, 3\) = \(3, 5, 3\)"):
        model(loc, vel[:, :4], attr)
    with pytest.raises(ValueError, match=r"attr must have shape \(B, N\) = \(3, 5\), got \(3, 5, 1\)"):
        model(loc, vel, attr[..., None])
    with pytest.raises(ValueError, match="at least 2 particles"):
        model(loc[:, :1], vel[:, :1], attr[:, :1])
    with pytest.raises(ValueError, match=r"attr_features must be one of \('raw', 'log'\), got 'sqrt'"):
        SMALL[name](attr_features="sqrt")
    with pytest.raises(ValueError, match="num_layers must be a positive int"):
        type(model)(num_layers=0)


def test_egnn_overfits():
    """150 Adam steps on 8 fixed charged systems lower the MSE at least 5x."""
    torch.manual_seed(0)
    loc, vel, charge = _inputs(b=8, dtype=torch.float32, seed=3)
    diff = loc[:, :, None] - loc[:, None]  # smooth Coulomb-like pair force, an equivariant target
    qq = charge[:, :, None, None] * charge[:, None, :, None]
    force = (qq * diff / (diff.square().sum(-1, keepdim=True) + 1)).sum(2)
    target = loc + vel + 0.1 * force
    model = EGNN(hidden=32, num_layers=2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = (model(loc, vel, charge) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 5, (losses[0], losses[-1])
