"""CGENN's configuration of the library layers: the steerable product's right-operand normalisation,
the mean-of-norms layer norm with a learnt scale, the ``"cgenn"`` MLP style, difference messages and
edge attributes in ``CliffordGNN``; equivariance (odd versors included, float64), formulas against
the independent ``clifford`` package, finiteness on null inputs, parameter counts and errors.
"""

from __future__ import annotations

import math

import pytest
import torch

from gatorch import PGA3, VGA3, Algebra
from gatorch.functional.nonlinear import equi_layer_norm, smooth_norm
from gatorch.functional.steerable import grade_normalize
from gatorch.layers import EquiLayerNorm, SteerableGeometricProduct
from gatorch.nets.gnn import CliffordGNN, CliffordMLP, CliffordMLPConfig
from gatorch.testing import ALGEBRAS, assert_equivariant, assert_layer_equivariant, random_versors

F64 = torch.float64
EDGES = torch.tensor([[0, 1, 2, 3, 1, 4, 0], [1, 2, 3, 0, 0, 2, 2]])  # node 4 receives nothing
CGENN = {"style": "cgenn", "normalization_init": 0.0, "weight_init": "cgenn"}


def _mv(alg: Algebra, *shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, alg.dim, generator=g, dtype=F64)


def _cgenn_gnn(alg: Algebra, hidden: int = 4, layers: int = 2, edge_s: int = 1, **kw: object) -> CliffordGNN:
    torch.manual_seed(0)
    return CliffordGNN(
        alg,
        in_mv_channels=3,
        out_mv_channels=1,
        hidden_mv_channels=hidden,
        num_layers=layers,
        layer_norm=False,
        message="difference",
        edge_s_channels=edge_s,
        mlp=CGENN,
        **kw,  # type: ignore[arg-type]
    ).double()


# -- formulas against the clifford package -------------------------------------------------------------
@pytest.mark.parametrize("name", ["VGA3", "STA", "Cl(2,0,1)"])
def test_grade_normalize_matches_clifford_grade_norms(name: str) -> None:
    """Per channel and grade: x_k / (sigmoid(a)(||x_k|| - 1) + 1 + eps), ||x_k|| = (q^2 + 1e-16)^(1/4) with
    q = |<x_k ~x_k>_0| from clifford (degenerate blades give q = 0 there by the metric itself)."""
    from tests.test_clifford_reference import clifford_ref

    alg = ALGEBRAS[name]
    ref = clifford_ref(alg)
    x = _mv(alg, 3, 2, seed=1)
    a = torch.randn(2, alg.n + 1, dtype=F64)
    out = grade_normalize(alg, x, a)
    expected = torch.empty_like(x)
    for b in range(3):
        for c in range(2):
            m = ref.mv(x[b, c].numpy())
            for k in range(alg.n + 1):
                part = m(k)
                q = abs(float((part * ~part)[()]))
                norm = (q * q + 1e-16) ** 0.25  # CGENN's smooth square root (1e-4 at q = 0)
                gate = 1.0 / (1.0 + math.exp(-float(a[c, k])))
                sl = alg.grade_slice(k)
                expected[b, c, sl] = x[b, c, sl] / (gate * (norm - 1.0) + 1.0 + 1e-6)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)


def test_layer_norm_statistics() -> None:
    """'rms' divides by sqrt(mean_c Q_c), 'mean' by mean_c sqrt(Q_c) (CGENN's MVLayerNorm)."""
    alg = VGA3  # Euclidean: Q_c is the plain sum of squares
    x = _mv(alg, 5, 4)
    q = x.square().sum(-1)  # (5, 4)
    rms = equi_layer_norm(alg, x, eps=0.0)
    torch.testing.assert_close(rms, x / q.mean(-1).sqrt()[:, None, None])
    mean = equi_layer_norm(alg, x, eps=0.0, statistic="mean")
    torch.testing.assert_close(mean, x / q.sqrt().mean(-1)[:, None, None])
    layer = EquiLayerNorm(alg, statistic="mean", mv_channels=4, elementwise_affine=True).double()
    with torch.no_grad():
        layer.weight.copy_(torch.arange(1.0, 5.0)[:, None])
    out, _ = layer(x)  # eps = 1e-6 here
    expected = x / (q.sqrt().mean(-1)[:, None, None] + 1e-6) * torch.arange(1.0, 5.0, dtype=F64)[:, None]
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)


def test_smooth_norm() -> None:
    q = torch.tensor([0.0, 1e-3, 4.0, 100.0], dtype=F64, requires_grad=True)
    n = smooth_norm(q)
    torch.testing.assert_close(n[2:], q[2:].sqrt(), atol=1e-12, rtol=1e-12)
    assert n[0].item() == pytest.approx(1e-4)
    n.sum().backward()
    assert torch.isfinite(q.grad).all()


# -- equivariance --------------------------------------------------------------------------------------
@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=ALGEBRAS.keys())
def test_grade_normalize_and_mean_layer_norm_equivariant(alg: Algebra) -> None:
    w = random_versors(alg, 4, seed=3)
    x = _mv(alg, 4, 3)
    a = torch.randn(3, alg.n + 1, dtype=F64)
    assert_equivariant(lambda t: grade_normalize(alg, t, a), alg, (x,), versors=w, batched=True)
    assert_equivariant(
        lambda t: equi_layer_norm(alg, t, statistic="mean"), alg, (x,), versors=w, batched=True
    )


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=ALGEBRAS.keys())
def test_cgenn_layers_equivariant(alg: Algebra) -> None:
    w = random_versors(alg, 4, seed=4)
    mv = _mv(alg, 4, 3)
    s = torch.randn(4, 2, dtype=F64)
    torch.manual_seed(1)
    sgp = SteerableGeometricProduct(alg, 3, in_s_channels=2, normalization_init=0.5, weight_init="cgenn")
    mlp = CliffordMLP(alg, 3, 4, 2, 2, {**CGENN, "blocks": 3})
    norm = EquiLayerNorm(alg, 2, statistic="mean", mv_channels=3, elementwise_affine=True)
    for layer in (sgp, mlp, norm):
        assert_layer_equivariant(layer.double(), alg, mv, s, versors=w, batched=True)


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=ALGEBRAS.keys())
def test_cgenn_gnn_equivariant(alg: Algebra) -> None:
    net = _cgenn_gnn(alg)
    mv = _mv(alg, 5, 3, seed=5)
    edge_attr = torch.randn(EDGES.shape[1], 1, dtype=F64)
    out, _ = net(mv, None, EDGES, edge_attr)
    assert out.shape == (5, 1, alg.dim)
    for w in random_versors(alg, 2, seed=6):  # one even, one odd
        out_t, _ = net(alg.sandwich(w, mv), None, EDGES, edge_attr)
        torch.testing.assert_close(out_t, alg.sandwich(w, out), atol=1e-9, rtol=1e-9)


def test_message_difference_sees_only_differences() -> None:
    """With difference messages and no scalars, adding the same multivector to every node's
    features changes no message (the update still sees the node itself)."""
    alg = VGA3
    net = _cgenn_gnn(alg, layers=1, edge_s=0)
    layer = net.layers[0]
    h = _mv(alg, 5, 4, seed=7)
    shift = _mv(alg, 1, 4, seed=8)
    s = h.new_zeros(5, 0)
    source, target = EDGES
    seen = []
    layer.message.register_forward_hook(lambda mod, args, out: seen.append(out[0]))
    layer(h, s, source, target, None)
    layer(h + shift, s, source, target, None)
    torch.testing.assert_close(seen[0], seen[1], atol=1e-12, rtol=1e-12)


# -- what the configuration reproduces -----------------------------------------------------------------
def test_cgenn_nbody_parameter_count() -> None:
    """CGENN's n-body net (3 layers, 28 channels, Cl(3,0), charge products on the edges) has
    134625 parameters (its published code, ANCHORS.md); the same configuration here too."""
    net = _cgenn_gnn(VGA3, hidden=28, layers=3)  # 3 -> 28 -> 1 channels, one edge attribute
    assert sum(p.numel() for p in net.parameters()) == 134625


def test_normalization_starts_at_init_and_weight_init_std() -> None:
    torch.manual_seed(0)
    layer = SteerableGeometricProduct(VGA3, 512, normalization_init=0.25, weight_init="cgenn")
    assert layer.normalization is not None and (layer.normalization == 0.25).all()
    assert layer.weight.std().item() == pytest.approx(0.5, rel=0.03)  # 1 / sqrt(n + 1), n = 3
    plain = SteerableGeometricProduct(VGA3, 4)
    assert plain.normalization is None
    assert "normalization" not in dict(plain.named_parameters())


def test_normalization_bounds_the_product_growth() -> None:
    """Normalised right operands make the product grow linearly, not quadratically, with scale."""
    torch.manual_seed(0)
    alg = VGA3
    plain = SteerableGeometricProduct(alg, 4, include_first_order=False).double()
    normed = SteerableGeometricProduct(alg, 4, include_first_order=False, normalization_init=10.0).double()
    normed.load_state_dict(plain.state_dict(), strict=False)
    x = _mv(alg, 64, 4)
    ratio_plain = plain(100 * x)[0].norm() / plain(x)[0].norm()
    ratio_normed = normed(100 * x)[0].norm() / normed(x)[0].norm()
    assert ratio_plain.item() == pytest.approx(1e4, rel=1e-9)
    assert 50 < ratio_normed.item() < 200


def test_finite_on_null_and_zero_inputs() -> None:
    alg = PGA3
    null = torch.zeros(3, 2, alg.dim, dtype=F64)
    null[..., alg.index("e0")] = 1e3  # every invariant vanishes
    for x in (null, torch.zeros_like(null)):
        x = x.clone().requires_grad_(True)
        a = torch.zeros(2, alg.n + 1, dtype=F64)
        y = grade_normalize(alg, x, a) + equi_layer_norm(alg, x, statistic="mean")
        y.square().sum().backward()
        assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    net = _cgenn_gnn(alg)
    out, _ = net(torch.zeros(5, 3, alg.dim, dtype=F64), None, EDGES, torch.zeros(7, 1, dtype=F64))
    assert torch.isfinite(out).all()


def test_gatorch_style_state_dict_keys_unchanged() -> None:
    """The default MLP keeps its parameter names (checkpoints of earlier versions load)."""
    mlp = CliffordMLP(VGA3, 2, 3, 1, 1)
    keys = {k.split(".")[0] for k in mlp.state_dict()}
    assert keys == {"linear_in", "product", "activation", "linear_out"}


# -- errors --------------------------------------------------------------------------------------------
def test_bad_options_and_inputs() -> None:
    alg = VGA3
    with pytest.raises(ValueError, match="statistic"):
        EquiLayerNorm(alg, statistic="max")
    with pytest.raises(ValueError, match="statistic"):
        equi_layer_norm(alg, _mv(alg, 2, 2), statistic="median")
    with pytest.raises(ValueError, match="mv_channels"):
        EquiLayerNorm(alg, elementwise_affine=True)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, 8\)"):
        EquiLayerNorm(alg, mv_channels=3, elementwise_affine=True)(_mv(alg, 2, 4).float())
    with pytest.raises(ValueError, match="weight_init"):
        SteerableGeometricProduct(alg, 2, weight_init="xavier")
    with pytest.raises(TypeError, match="normalization_init"):
        SteerableGeometricProduct(alg, 2, normalization_init="zero")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="style"):
        CliffordMLPConfig(style="mlp")
    with pytest.raises(ValueError, match="blocks"):
        CliffordMLPConfig(blocks=3)
    with pytest.raises(ValueError, match="unknown option"):
        CliffordMLP(alg, 2, 2, config={"stlye": "cgenn"})
    with pytest.raises(ValueError, match=r"a of shape \(channels, n \+ 1\)"):
        grade_normalize(alg, _mv(alg, 2, 3), torch.zeros(3, 3, dtype=F64))
    with pytest.raises(ValueError, match="message"):
        CliffordGNN(
            alg, in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=2, num_layers=1, message="sum"
        )
    net = _cgenn_gnn(alg)
    mv = _mv(alg, 5, 3)
    with pytest.raises(ValueError, match=r"edge_attr of shape \(edges, edge_s_channels\) = \(7, 1\)"):
        net(mv, None, EDGES)
    with pytest.raises(
        ValueError, match=r"edge_attr of shape \(edges, edge_s_channels\) = \(7, 1\), got \(6, 1\)"
    ):
        net(mv, None, EDGES, torch.zeros(6, 1, dtype=F64))
    plain = _cgenn_gnn(alg, edge_s=0)
    with pytest.raises(ValueError, match="edge_s_channels=0"):
        plain(mv, None, EDGES, torch.zeros(7, 1, dtype=F64))
