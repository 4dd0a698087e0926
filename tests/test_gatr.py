"""GeometricBilinear, GeoMLP, GATrBlock and the GATr net: equivariance, state, dtypes, compile, errors."""

from __future__ import annotations

import io

import pytest
import torch

from gatorch import PGA3, STA, VGA3, Algebra
from gatorch.layers import GATrBlock, GeometricBilinear, GeoMLP, MLPConfig
from gatorch.nets import GATr
from gatorch.testing import ALGEBRAS, assert_layer_equivariant, random_versors


@pytest.mark.parametrize("join", [None, True])
@pytest.mark.parametrize("name", list(ALGEBRAS))
def test_geometric_bilinear_equivariant(name: str, join: bool | None) -> None:
    alg = ALGEBRAS[name]
    torch.manual_seed(0)
    layer = GeometricBilinear(
        alg, 3, 4, hidden_channels=6, in_s_channels=2, out_s_channels=3, join=join
    ).double()
    mv, s = torch.randn(6, 5, 3, alg.dim, dtype=torch.float64), torch.randn(6, 5, 2, dtype=torch.float64)
    assert_layer_equivariant(layer, alg, mv, s, versors=random_versors(alg, 6, seed=4), batched=True)


def test_join_needs_reference_for_reflections() -> None:
    """Without the reference's pseudoscalar factor the join flips sign under reflections."""
    torch.manual_seed(0)
    layer = GeometricBilinear(PGA3, 2, 2, join=True).double()
    mv = torch.randn(6, 2, 16, dtype=torch.float64)
    w = random_versors(PGA3, 6, seed=5)
    ones = torch.zeros(16, dtype=torch.float64)
    ones[PGA3.pseudoscalar_index] = 1.0  # a constant reference: not transformed with the input
    out = layer(mv, join_reference=ones)[0]
    out_t = layer(PGA3.sandwich(w[:, None], mv), join_reference=ones)[0]
    err = (out_t - PGA3.sandwich(w[:, None], out)).abs().amax(dim=(-2, -1))
    assert (err[:3] < 1e-9).all() and (err[3:] > 1e-3).all()  # rotations fine, reflections broken


def test_geometric_bilinear_is_product_of_projections() -> None:
    """The hidden channels are exactly gp(L x, R x): compare with a direct computation."""
    torch.manual_seed(0)
    layer = GeometricBilinear(VGA3, 2, 3, hidden_channels=4).double()
    mv = torch.randn(7, 2, 8, dtype=torch.float64)
    expected = layer.linear_out(VGA3.gp_dense(layer.left(mv)[0], layer.right(mv)[0]))[0]
    torch.testing.assert_close(layer(mv)[0], expected, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("name", list(ALGEBRAS))
def test_geo_mlp_and_block_equivariant(name: str) -> None:
    alg = ALGEBRAS[name]
    torch.manual_seed(0)
    mlp = GeoMLP(alg, 3, 2, {"mlp_ratio": 2, "num_layers": 3}).double()
    block = GATrBlock(alg, 3, 2, {"num_heads": 2}, {"mlp_ratio": 2}).double()
    mv, s = torch.randn(4, 5, 3, alg.dim, dtype=torch.float64), torch.randn(4, 5, 2, dtype=torch.float64)
    w = random_versors(alg, 4, seed=6)
    assert_layer_equivariant(mlp, alg, mv, s, versors=w, batched=True)
    assert_layer_equivariant(block, alg, mv, s, versors=w, batched=True, atol=1e-8, rtol=1e-8)


def _net(alg: Algebra, **kw: object) -> GATr:
    args: dict[str, object] = dict(
        in_mv_channels=2,
        out_mv_channels=3,
        hidden_mv_channels=4,
        in_s_channels=3,
        out_s_channels=2,
        hidden_s_channels=6,
        num_blocks=2,
        num_heads=2,
        mlp={"mlp_ratio": 2},
    )
    args.update(kw)
    return GATr(alg, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(ALGEBRAS))
def test_gatr_equivariant(name: str) -> None:
    alg = ALGEBRAS[name]
    torch.manual_seed(0)
    attention = {"distance_features": True} if alg.signature[1:] == (0, 1) else None
    net = _net(alg, attention=attention).double()
    mv, s = torch.randn(4, 6, 2, alg.dim, dtype=torch.float64), torch.randn(4, 6, 3, dtype=torch.float64)
    w = random_versors(alg, 4, seed=7)
    assert_layer_equivariant(net, alg, mv, s, versors=w, batched=True, atol=1e-7, rtol=1e-7)


def test_gatr_permutation_equivariant_and_batch_dims() -> None:
    torch.manual_seed(0)
    net = _net(PGA3, attention={"distance_features": True}).double()
    mv, s = torch.randn(2, 3, 7, 2, 16, dtype=torch.float64), torch.randn(2, 3, 7, 3, dtype=torch.float64)
    out, out_s = net(mv, s)
    assert out.shape == (2, 3, 7, 3, 16) and out_s.shape == (2, 3, 7, 2)
    perm = torch.randperm(7)
    out_p, out_s_p = net(mv[:, :, perm], s[:, :, perm])
    torch.testing.assert_close(out_p, out[:, :, perm])
    torch.testing.assert_close(out_s_p, out_s[:, :, perm])
    # batch dims are independent: the first batch element alone gives the same result
    torch.testing.assert_close(net(mv[:1, :1], s[:1, :1])[0], out[:1, :1])


def test_gatr_state_dict_roundtrip_and_dtype() -> None:
    torch.manual_seed(0)
    net = _net(STA)
    mv, s = torch.randn(2, 5, 2, 16), torch.randn(2, 5, 3)
    out = net(mv, s)[0]
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    torch.manual_seed(1)
    other = _net(STA)
    assert not torch.allclose(other(mv, s)[0], out)
    buf.seek(0)
    other.load_state_dict(torch.load(buf, weights_only=True))
    torch.testing.assert_close(other(mv, s)[0], out)
    other.to(torch.float64)
    out64 = other(mv.double(), s.double())[0]
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), out, atol=1e-4, rtol=1e-4)
    other.to(torch.float32)
    torch.testing.assert_close(other(mv, s)[0], out)


def test_gatr_checkpointing_same_gradients() -> None:
    torch.manual_seed(0)
    net = _net(PGA3).double()
    mv, s = torch.randn(2, 5, 2, 16, dtype=torch.float64), torch.randn(2, 5, 3, dtype=torch.float64)
    out, out_s = net(mv, s)
    (out.square().sum() + out_s.sum()).backward()
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    net.checkpoint_blocks = True
    out2, out_s2 = net(mv, s)
    (out2.square().sum() + out_s2.sum()).backward()
    for g, p in zip(grads, net.parameters(), strict=True):
        torch.testing.assert_close(p.grad, g)


def test_gatr_bf16_autocast_finite() -> None:
    torch.manual_seed(0)
    net = _net(PGA3, attention={"distance_features": True})
    mv, s = torch.randn(2, 8, 2, 16) * 100, torch.randn(2, 8, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, out_s = net(mv, s)
        (out.float().square().mean() + out_s.float().mean()).backward()
    assert torch.isfinite(out).all() and torch.isfinite(out_s).all()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_gatr_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    net = _net(VGA3, attention={"dropout": 0.3}, mlp={"dropout": 0.3})
    mv, s = torch.randn(2, 5, 2, 8), torch.randn(2, 5, 3)
    net.eval()
    torch.testing.assert_close(net(mv, s)[0], net(mv, s)[0])
    net.train()
    assert not torch.allclose(net(mv, s)[0], net(mv, s)[0])


def test_gatr_compile_matches_eager() -> None:
    torch.manual_seed(0)
    net = _net(PGA3, num_blocks=1, attention={"distance_features": True}).double()
    mv, s = torch.randn(2, 5, 2, 16, dtype=torch.float64), torch.randn(2, 5, 3, dtype=torch.float64)
    eager = net(mv, s)
    compiled = torch.compile(net, fullgraph=True)(mv, s)
    torch.testing.assert_close(compiled[0], eager[0], atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(compiled[1], eager[1], atol=1e-12, rtol=1e-12)


def test_bad_input() -> None:
    net = _net(PGA3)
    with pytest.raises(ValueError, match="last dimension 16"):
        net(torch.randn(2, 5, 2, 32), torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, 16\)"):
        net(torch.randn(2, 5, 3, 16), torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="scalars"):
        net(torch.randn(2, 5, 2, 16))
    with pytest.raises(ValueError, match="num_heads"):
        _net(PGA3, num_heads=2, attention={"num_heads": 3})
    with pytest.raises(ValueError, match="num_blocks"):
        _net(PGA3, num_blocks=0)
    with pytest.raises(ValueError, match="unknown option"):
        _net(PGA3, mlp={"ratio": 2})
    with pytest.raises(ValueError, match="activation"):
        MLPConfig(activation="swish")
    with pytest.raises(ValueError, match="last dimension 16"):
        GeometricBilinear(PGA3, 2, 2)(torch.randn(3, 2, 16), join_reference=torch.randn(3, 8))
    # a CGA3 net (dim 32) given STA-sized multivectors (dim 16)
    with pytest.raises(ValueError, match="last dimension 32"):
        _net(Algebra(4, 1))(torch.randn(2, 5, 2, STA.dim), torch.randn(2, 5, 3))
