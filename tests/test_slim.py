"""``GATrSlim`` / ``ConditionalGATrSlim`` (L-GATr-slim for any algebra) and their layers.

Equivariance is checked in float64 under random versors of each algebra, half of them odd
(reflections), acting on grade-1 multivectors through ``alg.sandwich`` (the twisted action),
for STA, VGA3 and two degenerate algebras; the expected metric contractions are written out
from the signature in the tests, not read from the code under test.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

from gatorch import PGA3, STA, VGA3, Algebra
from gatorch.layers.slim import SlimDropout, SlimGLU, SlimRMSNorm
from gatorch.nets.slim import ConditionalGATrSlim, GATrSlim
from gatorch.testing import random_versors, versor_parity

F64 = torch.float64
ALGS: dict[str, Algebra] = {
    "STA": STA,
    "VGA3": VGA3,
    "PGA3": PGA3,
    "Cl(2,0,1)": Algebra(2, 0, 1),
    "Cl(2,2,1)": Algebra(2, 2, 1),
}
#: The metric of each algebra on its basis vectors, written out by hand (basis order:
#: degenerate first, then +1, then -1; STA is e0 timelike then three spacelike).
METRICS: dict[str, tuple[int, ...]] = {
    "STA": (1, -1, -1, -1),
    "VGA3": (1, 1, 1),
    "PGA3": (0, 1, 1, 1),
    "Cl(2,0,1)": (0, 1, 1),
    "Cl(2,2,1)": (0, 1, 1, -1, -1),
}


def _net(alg: Algebra, **kw: object) -> GATrSlim:
    args: dict[str, object] = dict(
        in_v_channels=2,
        out_v_channels=3,
        hidden_v_channels=4,
        in_s_channels=3,
        out_s_channels=2,
        hidden_s_channels=8,
        num_blocks=2,
        num_heads=2,
    )
    args.update(kw)
    return GATrSlim(alg, **args)  # type: ignore[arg-type]


def _cnet(alg: Algebra, **kw: object) -> ConditionalGATrSlim:
    args: dict[str, object] = dict(
        in_v_channels=2,
        v_channels_cond=3,
        out_v_channels=2,
        hidden_v_channels=4,
        in_s_channels=3,
        s_channels_cond=2,
        out_s_channels=2,
        hidden_s_channels=8,
        num_blocks=2,
        num_heads=2,
    )
    args.update(kw)
    return ConditionalGATrSlim(alg, **args)  # type: ignore[arg-type]


def _perturb(net: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> None:
    """Move every parameter away from its initialisation (zero biases, unit gains)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=F64).to(p.dtype))


def _rand(*shape: int, seed: int = 0) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _act(alg: Algebra, w: Tensor, v: Tensor) -> Tensor:
    """The versor action on vectors ``(B, ..., n)``, one versor per leading entry, via multivectors."""
    mv = torch.zeros(*v.shape[:-1], alg.dim, dtype=v.dtype)
    mv[..., alg.grade_slice(1)] = v
    wb = w.reshape(w.shape[0], *([1] * (v.ndim - 2)), alg.dim)
    out = alg.sandwich(wb, mv)
    rest = torch.ones(alg.dim, dtype=torch.bool)
    rest[alg.grade_slice(1)] = False
    assert out[..., rest].abs().max() < 1e-9 * (1 + out.abs().max())  # vectors stay vectors
    return out[..., alg.grade_slice(1)]


def _close(a: Tensor, b: Tensor, tol: float) -> None:
    scale = b.abs().max().item() + 1.0
    torch.testing.assert_close(a, b, atol=tol * scale, rtol=tol)


# -- shapes ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(ALGS))
@pytest.mark.parametrize("batch", [(), (3,), (2, 3)])
def test_shapes(name: str, batch: tuple[int, ...]) -> None:
    alg = ALGS[name]
    net = _net(alg)
    v, s = net(torch.randn(*batch, 5, 2, alg.n), torch.randn(*batch, 5, 3))
    assert v.shape == (*batch, 5, 3, alg.n) and s.shape == (*batch, 5, 2)
    cnet = _cnet(alg)
    v, s = cnet(
        torch.randn(*batch, 5, 2, alg.n), torch.randn(*batch, 7, 3, alg.n), torch.randn(*batch, 5, 3),
        torch.randn(*batch, 7, 2),
    )  # fmt: skip
    assert v.shape == (*batch, 5, 2, alg.n) and s.shape == (*batch, 5, 2)


def test_no_scalars_and_empty_outputs() -> None:
    net = _net(VGA3, in_s_channels=0, out_s_channels=0, out_v_channels=1)
    v, s = net(torch.randn(2, 5, 2, 3), None)
    assert v.shape == (2, 5, 1, 3) and s.shape == (2, 5, 0)
    # the last block's scalar MLP path cannot get a gradient: it is frozen (as in lgatr)
    last: Any = net.blocks[-1]
    assert not last.mlp.layers[-1].linear_s.weight.requires_grad
    net = _net(VGA3, out_v_channels=0)
    v, s = net(torch.randn(2, 5, 2, 3), torch.randn(2, 5, 3))
    assert v.shape == (2, 5, 0, 3) and s.shape == (2, 5, 2)
    last = net.blocks[-1]
    assert not last.norm2.weight_v.requires_grad
    cnet = _cnet(STA, in_s_channels=0, s_channels_cond=0)
    v, s = cnet(torch.randn(2, 5, 2, 4), torch.randn(2, 4, 3, 4))
    assert v.shape == (2, 5, 2, 4) and s.shape == (2, 5, 2)


# -- errors ----------------------------------------------------------------------------------------------
def test_input_errors() -> None:
    net = _net(STA)
    v, s = torch.randn(2, 5, 2, 4), torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match=r"\(batch\.\.\., items, 2, 4\).*got \(2, 5, 2, 16\)"):
        net(torch.randn(2, 5, 2, 16), s)  # full multivectors, not vectors
    with pytest.raises(ValueError, match="items, 2, 4"):
        net(torch.randn(2, 5, 3, 4), s)  # wrong channel count
    with pytest.raises(ValueError, match="items, 2, 4"):
        net(torch.randn(2, 4), s)  # no items axis
    with pytest.raises(ValueError, match=r"scalars of shape \(2, 5, 3\)"):
        net(v, torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match=r"scalars of shape \(2, 5, 3\)"):
        net(v, torch.randn(2, 6, 3))
    with pytest.raises(ValueError, match="got None"):
        net(v, None)
    with pytest.raises(TypeError, match="floating-point"):
        net(v.long(), s)
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(\.\.\., 5, 5\)"):
        net(v, s, attn_mask=torch.ones(5, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="does not broadcast"):
        net(v, s, attn_mask=torch.ones(3, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="does not broadcast"):
        net(v, s, attn_mask=torch.ones(2, 3, 5, 5, dtype=torch.bool))  # 3 heads, the net has 2
    with pytest.raises(ValueError, match=r"items, 2, 3\) \(the 3 grade-1 components of Algebra\(3, 0, 0\)\)"):
        _net(VGA3)(v, s)  # STA vectors into a VGA3 net: the algebra's vector dimension is checked
    cnet = _cnet(STA)
    vc, sc = torch.randn(2, 7, 3, 4), torch.randn(2, 7, 2)
    with pytest.raises(ValueError, match="vectors_cond of shape"):
        cnet(v, torch.randn(2, 7, 2, 4), s, sc)
    with pytest.raises(ValueError, match="scalars_cond of shape"):
        cnet(v, vc, s, torch.randn(2, 6, 2))
    with pytest.raises(ValueError, match="same batch dims"):
        cnet(v, torch.randn(3, 7, 3, 4), s, torch.randn(3, 7, 2))
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(\.\.\., 5, 7\)"):
        cnet(v, vc, s, sc, crossattn_mask=torch.ones(5, 5, dtype=torch.bool))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"num_heads": 0}, "num_heads must be an int >= 1"),
        ({"num_blocks": -1}, "num_blocks must be an int >= 0"),
        ({"hidden_v_channels": 0}, "hidden_v_channels must be an int >= 1"),
        ({"in_s_channels": -1}, "in_s_channels must be an int >= 0"),
        ({"out_v_channels": 1.5}, "out_v_channels must be an int"),
        ({"num_layers_mlp": 1}, "num_layers_mlp must be an int >= 2"),
        ({"mlp_ratio": 0}, "mlp_ratio must be an int >= 1"),
        ({"attn_ratio": 0}, "attn_ratio must be an int >= 1"),
        ({"nonlinearity": "softplus"}, "nonlinearity must be one of"),
        ({"nonlinearity_v": "elu"}, "nonlinearity_v must be one of"),
        ({"dropout_prob": 1.5}, r"dropout_prob must be a float in \[0, 1\)"),
    ],
)
def test_constructor_errors(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=f"GATrSlim: {match}"):
        _net(STA, **kw)
    with pytest.raises(ValueError, match=f"ConditionalGATrSlim: {match}"):
        _cnet(STA, **kw)


def test_algebra_errors() -> None:
    with pytest.raises(TypeError, match=r"alg must be a gatorch\.Algebra"):
        _net("STA")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one basis vector"):
        _net(Algebra(0, 0, 0))
    with pytest.raises(ValueError, match="v_channels_cond must be an int >= 0"):
        _cnet(STA, v_channels_cond=-2)
    with pytest.raises(TypeError, match="positional"):
        GATrSlim(STA, 1, 1, 1, 1, 1, 1, 1, 1)  # type: ignore[call-arg]


# -- the metric contractions, written out ------------------------------------------------------------------
@pytest.mark.parametrize("name", list(ALGS))
def test_rms_norm_uses_the_metric(name: str) -> None:
    alg, m = ALGS[name], torch.tensor(METRICS[name], dtype=F64)
    norm: Any = SlimRMSNorm(alg, 3, 2).double()
    _perturb(norm)
    v, s = _rand(4, alg.n, 3), _rand(4, 2, seed=1)
    out_v, out_s = norm(v, s)
    sq = [
        abs(sum(float(m[i]) * float(v[b, i, c]) ** 2 for i in range(alg.n)))
        for b in range(4)
        for c in range(3)
    ]
    sq_t = torch.tensor(sq, dtype=F64).reshape(4, 3)
    rho = 1.0 / torch.sqrt((sq_t.sum(-1) + s.square().sum(-1)) / 5 + 0.01)
    torch.testing.assert_close(out_v, v * rho[:, None, None] * norm.weight_v, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(out_s, s * rho[:, None] * norm.weight_s, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("name", list(ALGS))
def test_glu_gate_uses_the_metric(name: str) -> None:
    alg, metric = ALGS[name], METRICS[name]
    glu: Any = SlimGLU(alg, 2, 1, 2, 1, nonlinearity="tanh", nonlinearity_v="sigmoid").double()
    _perturb(glu)
    v, s = _rand(3, alg.n, 2), _rand(3, 2, seed=1)
    out_v, out_s = glu(v, s)
    full_v = torch.einsum("oc,bic->bio", glu.linear.weight_v, v)  # (3, n, 3): pre, gate 1, gate 2
    ip = sum(metric[i] * full_v[:, i, 1] * full_v[:, i, 2] for i in range(alg.n)) / alg.n**0.5
    torch.testing.assert_close(out_v[:, :, 0], torch.sigmoid(ip)[:, None] * full_v[:, :, 0])
    full_s = glu.linear.linear_s(s)
    torch.testing.assert_close(out_s[:, 0], torch.tanh(full_s[:, 1]) * full_s[:, 0])


def test_degenerate_components_do_not_enter_the_invariants() -> None:
    """On PGA3 the e0 components change no norm and no attention weight (only the e0 outputs)."""
    alg = PGA3
    e0 = alg.metric.index(0)
    net = _net(alg).double().eval()
    _perturb(net)
    v, s = _rand(2, 6, 2, alg.n), _rand(2, 6, 3, seed=1)
    v2 = v.clone()
    v2[..., e0] += 5.0 * _rand(2, 6, 2, seed=2)
    (a_v, a_s), (b_v, b_s) = net(v, s), net(v2, s)
    torch.testing.assert_close(a_s, b_s, atol=1e-12, rtol=1e-12)
    keep = [i for i in range(alg.n) if i != e0]
    torch.testing.assert_close(a_v[..., keep], b_v[..., keep], atol=1e-12, rtol=1e-12)
    assert (a_v[..., e0] - b_v[..., e0]).abs().max() > 1e-3


# -- equivariance ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(ALGS))
def test_net_equivariant(name: str) -> None:
    alg = ALGS[name]
    torch.manual_seed(0)
    net = _net(alg).double()
    _perturb(net)
    w = random_versors(alg, 6, seed=3)
    assert versor_parity(alg, w).tolist() == [0, 0, 0, 1, 1, 1]  # rotations and reflections
    v, s = _rand(6, 5, 2, alg.n), _rand(6, 5, 3, seed=1)
    mask = torch.rand(6, 5, 5, generator=torch.Generator().manual_seed(4)) > 0.3
    mask |= torch.eye(5, dtype=torch.bool)
    for kwargs in ({}, {"attn_mask": mask}, {"is_causal": True}):
        out_v, out_s = net(v, s, **kwargs)
        out_v_t, out_s_t = net(_act(alg, w, v), s, **kwargs)
        _close(out_v_t, _act(alg, w, out_v), 1e-9)
        _close(out_s_t, out_s, 1e-9)
        assert out_v.abs().max() > 1e-2 and out_s.abs().max() > 1e-2


@pytest.mark.parametrize("name", ["STA", "VGA3", "PGA3", "Cl(2,0,1)"])
def test_conditional_net_equivariant(name: str) -> None:
    alg = ALGS[name]
    net = _cnet(alg, nonlinearity_v=None, num_layers_mlp=3).double()
    _perturb(net, seed=1)
    w = random_versors(alg, 4, seed=5)
    assert versor_parity(alg, w).tolist() == [0, 0, 1, 1]
    v, vc = _rand(4, 5, 2, alg.n), _rand(4, 6, 3, alg.n, seed=1)
    s, sc = _rand(4, 5, 3, seed=2), _rand(4, 6, 2, seed=3)
    out_v, out_s = net(v, vc, s, sc)
    out_v_t, out_s_t = net(_act(alg, w, v), _act(alg, w, vc), s, sc)
    _close(out_v_t, _act(alg, w, out_v), 1e-9)
    _close(out_s_t, out_s, 1e-9)


def test_equivariance_check_detects_a_wrong_action() -> None:
    """The check above can fail: a non-orthogonal map of the components does not commute with the net."""
    net = _net(STA).double()
    _perturb(net)
    v, s = _rand(2, 5, 2, 4), _rand(2, 5, 3, seed=1)
    a = torch.eye(4, dtype=F64) + 0.3 * _rand(4, 4, seed=9)
    out_v, out_s = net(v, s)
    out_v_t, out_s_t = net(v @ a.T, s)
    assert (out_v_t - out_v @ a.T).abs().max() > 1e-3 and (out_s_t - out_s).abs().max() > 1e-3
    # and VGA3's rotations are not symmetries of STA's metric (a Euclidean rotation mixing t and x)
    c, sn = 0.6, 0.8
    rot = torch.eye(4, dtype=F64)
    rot[0, 0], rot[0, 1], rot[1, 0], rot[1, 1] = c, -sn, sn, c
    assert (net(v @ rot.T, s)[1] - out_s).abs().max() > 1e-3


@pytest.mark.parametrize("name", ["STA", "PGA3"])
def test_dropout_train_mode_equivariant(name: str) -> None:
    """Dropout drops whole vector channels: the same seed commutes with the action."""
    alg = ALGS[name]
    net = _net(alg, dropout_prob=0.3).double().train()
    _perturb(net)
    w = random_versors(alg, 4, seed=2)
    v, s = _rand(4, 5, 2, alg.n), _rand(4, 5, 3, seed=1)
    torch.manual_seed(11)
    out_v, out_s = net(v, s)
    torch.manual_seed(11)
    out_v_t, out_s_t = net(_act(alg, w, v), s)
    _close(out_v_t, _act(alg, w, out_v), 1e-9)
    _close(out_s_t, out_s, 1e-9)
    drop = SlimDropout(0.5).train()
    x = _rand(50, alg.n, 8) + 3.0
    y = drop(x, _rand(50, 8))[0]
    zero = y == 0
    assert zero.any() and (zero.all(-2) == zero.any(-2)).all()  # all n components at once
    net.eval()
    torch.testing.assert_close(net(v, s)[0], net(v, s)[0])


def test_permutation_equivariant() -> None:
    net = _net(Algebra(2, 0, 1)).double()
    _perturb(net)
    v, s = _rand(2, 3, 7, 2, 3), _rand(2, 3, 7, 3, seed=1)
    out_v, out_s = net(v, s)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(0))
    out_v_p, out_s_p = net(v[:, :, perm], s[:, :, perm])
    torch.testing.assert_close(out_v_p, out_v[:, :, perm])
    torch.testing.assert_close(out_s_p, out_s[:, :, perm])
    mask = torch.rand(2, 3, 7, 7, generator=torch.Generator().manual_seed(1)) > 0.4
    mask |= torch.eye(7, dtype=torch.bool)
    out_v, out_s = net(v, s, attn_mask=mask)
    out_v_p, _ = net(v[:, :, perm], s[:, :, perm], attn_mask=mask[..., perm, :][..., perm])
    torch.testing.assert_close(out_v_p, out_v[:, :, perm])
    # batch entries are independent
    torch.testing.assert_close(net(v[:1, :1], s[:1, :1])[0], net(v, s)[0][:1, :1])
    cnet = _cnet(VGA3).double()
    _perturb(cnet)
    vc, sc = _rand(2, 4, 3, 3, seed=2), _rand(2, 4, 2, seed=3)
    vq, sq = _rand(2, 6, 2, 3, seed=4), _rand(2, 6, 3, seed=5)
    out = cnet(vq, vc, sq, sc)
    pq, pc = torch.randperm(6), torch.randperm(4)
    out_p = cnet(vq[:, pq], vc[:, pc], sq[:, pq], sc[:, pc])  # condition order does not matter
    torch.testing.assert_close(out_p[0], out[0][:, pq])
    torch.testing.assert_close(out_p[1], out[1][:, pq])


# -- masks -----------------------------------------------------------------------------------------------
def test_masks_and_causal() -> None:
    net = _net(STA).double()
    _perturb(net)
    v, s = _rand(2, 5, 2, 4), _rand(2, 5, 3, seed=1)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    ref = net(v, s, attn_mask=causal)
    for mask in (causal.expand(2, 5, 5), causal.expand(2, 1, 5, 5), causal.expand(2, 2, 5, 5)):
        torch.testing.assert_close(net(v, s, attn_mask=mask)[0], ref[0])
    torch.testing.assert_close(net(v, s, is_causal=True)[0], ref[0])
    additive = torch.zeros(5, 5, dtype=F64).masked_fill(~causal, float("-inf"))
    torch.testing.assert_close(net(v, s, attn_mask=additive)[0], ref[0])
    # causal: the first items do not see the later ones
    v2 = v.clone()
    v2[:, 3:] += 1.0
    torch.testing.assert_close(net(v2, s, is_causal=True)[0][:, :3], ref[0][:, :3])
    assert (net(v2, s)[0][:, :3] - net(v, s)[0][:, :3]).abs().max() > 1e-4
    # is_causal and a mask together: both apply
    block = torch.ones(5, 5, dtype=torch.bool)
    block[:, 0] = False
    block[0, 0] = True
    both = net(v, s, attn_mask=block, is_causal=True)[0]
    torch.testing.assert_close(both, net(v, s, attn_mask=block & causal)[0])


# -- no NaN ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(ALGS))
def test_null_and_zero_inputs_finite(name: str) -> None:
    alg, metric = ALGS[name], METRICS[name]
    net = _net(alg).double()
    _perturb(net)
    null = torch.zeros(alg.n, dtype=F64)
    if 0 in metric:  # a degenerate basis vector
        null[metric.index(0)] = 1.0
    else:  # a light-like vector (or, in Euclidean space, the zero vector)
        plus = metric.index(1)
        null[plus] = 1.0
        if -1 in metric:
            null[metric.index(-1)] = 1.0
        else:
            null[plus] = 0.0
    inputs = [
        (torch.zeros(2, 4, 2, alg.n, dtype=F64), torch.zeros(2, 4, 3, dtype=F64)),
        (null.expand(2, 4, 2, alg.n).clone(), torch.zeros(2, 4, 3, dtype=F64)),
        (1e3 * null.expand(2, 4, 2, alg.n).clone(), _rand(2, 4, 3)),
    ]
    for v, s in inputs:
        v.requires_grad_(True)
        out_v, out_s = net(v, s)
        assert torch.isfinite(out_v).all() and torch.isfinite(out_s).all()
        (out_v.square().sum() + out_s.square().sum()).backward()
        assert v.grad is not None and torch.isfinite(v.grad).all()
        assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
        net.zero_grad()


def test_bf16_autocast_finite() -> None:
    net = _net(STA)
    v, s = torch.randn(2, 6, 2, 4), torch.randn(2, 6, 3)
    ref_v, ref_s = net(v, s)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_v, out_s = net(v, s)
    assert torch.isfinite(out_v).all() and torch.isfinite(out_s).all()
    assert out_v.dtype == torch.float32  # the vector stream stays float32
    torch.testing.assert_close(out_v.float(), ref_v, atol=0.1, rtol=0.1)
    torch.testing.assert_close(out_s.float(), ref_s, atol=0.1, rtol=0.1)
    torch._dynamo.reset()
    compiled = torch.compile(_net(STA), fullgraph=True, backend="aot_eager")
    with torch.autocast("cpu", dtype=torch.bfloat16):  # a fresh net compiled under autocast
        c_v, c_s = compiled(v, s)
    assert torch.isfinite(c_v).all() and torch.isfinite(c_s).all() and c_v.dtype == torch.float32


# -- training utilities ----------------------------------------------------------------------------------
def test_checkpointing_same_gradients() -> None:
    net = _cnet(PGA3).double()
    _perturb(net)
    args = (_rand(2, 5, 2, 4), _rand(2, 3, 3, 4, seed=1), _rand(2, 5, 3, seed=2), _rand(2, 3, 2, seed=3))
    grads = []
    for flag in (False, True):
        net.zero_grad()
        net.checkpoint_blocks = flag
        out_v, out_s = net(*args)
        (out_v.square().sum() + out_s.sum()).backward()
        grads.append([p.grad.clone() for p in net.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 10
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_state_dict_roundtrip_and_dtype() -> None:
    torch.manual_seed(0)
    net = _net(VGA3)
    v, s = torch.randn(2, 5, 2, 3), torch.randn(2, 5, 3)
    out = net(v, s)[0]
    torch.manual_seed(1)
    other = _net(VGA3)
    assert not torch.allclose(other(v, s)[0], out)
    other.load_state_dict(net.state_dict())
    torch.testing.assert_close(other(v, s)[0], out)
    other.to(F64)
    torch.testing.assert_close(other(v.double(), s.double())[0].float(), out, atol=1e-5, rtol=1e-5)
    assert all("metric" not in k for k in net.state_dict())  # derived from the algebra, not saved


# -- compile ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("conditional", [False, True])
def test_fresh_compile_fullgraph(conditional: bool) -> None:
    """A freshly built net compiles with fullgraph=True (one graph) and matches eager to 1e-10."""
    alg = PGA3 if conditional else STA
    torch._dynamo.reset()
    net = (_cnet(alg) if conditional else _net(alg)).double()
    _perturb(net)
    if conditional:
        args: tuple = (
            _rand(2, 5, 2, 4),
            _rand(2, 3, 3, 4, seed=1),
            _rand(2, 5, 3, seed=2),
            _rand(2, 3, 2, seed=3),
        )
        kwargs: dict[str, object] = {"crossattn_mask": torch.ones(5, 3, dtype=torch.bool), "is_causal": True}
    else:
        args = (_rand(2, 5, 2, 4), _rand(2, 5, 3, seed=1))
        kwargs = {"attn_mask": torch.ones(2, 5, 5, dtype=torch.bool).tril()}
    args = tuple(a.requires_grad_(True) for a in args)
    compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
    outs_c = compiled(*args, **kwargs)  # compiled first: nothing warmed up by an eager call
    grads_c = torch.autograd.grad(sum(o.square().sum() for o in outs_c), [*args, *net.parameters()])
    outs_e = net(*args, **kwargs)
    grads_e = torch.autograd.grad(sum(o.square().sum() for o in outs_e), [*args, *net.parameters()])
    for a, b in zip([*outs_c, *grads_c], [*outs_e, *grads_e], strict=True):
        _close(a, b, 1e-10)
    # another item count: the compiled net recompiles (or runs dynamic) and still agrees
    more = tuple(torch.cat([a, a[:, :2]], dim=1) if a.shape[1] == 5 else a for a in args)
    more_kwargs = {"is_causal": True} if conditional else {}
    for a, b in zip(compiled(*more, **more_kwargs), net(*more, **more_kwargs), strict=True):
        _close(a, b, 1e-10)
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(net)(*args, **kwargs)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1, explanation.break_reasons
