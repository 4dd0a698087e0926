"""CliffordGNN: equivariance on every test algebra, permutation equivariance, isolated nodes, errors."""

import io

import pytest
import torch

from gatorch import PGA3, VGA3
from gatorch.nets.gnn import CliffordGNN
from gatorch.testing import ALGEBRAS, random_versors

F64 = torch.float64
EDGES = torch.tensor([[0, 1, 2, 3, 1, 4, 0], [1, 2, 3, 0, 0, 2, 2]])  # node 4 receives nothing


def _net(alg, aggregation="mean", seed=0, **kw):
    torch.manual_seed(seed)
    config = dict(
        in_mv_channels=2,
        out_mv_channels=2,
        hidden_mv_channels=4,
        in_s_channels=2,
        out_s_channels=3,
        hidden_s_channels=3,
        num_layers=2,
        aggregation=aggregation,
    )
    config.update(kw)
    return CliffordGNN(alg, **config).double()


def _inputs(alg, nodes=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(nodes, 2, alg.dim, generator=g, dtype=F64), torch.randn(
        nodes, 2, generator=g, dtype=F64
    )


@pytest.mark.parametrize("alg", ALGEBRAS.values(), ids=ALGEBRAS.keys())
def test_equivariant(alg):
    net = _net(alg)
    mv, s = _inputs(alg)
    out, out_s = net(mv, s, EDGES)
    assert out.shape == (5, 2, alg.dim) and out_s.shape == (5, 3)
    for w in random_versors(alg, 2, seed=2):  # one even, one odd versor; one per graph
        out_t, out_s_t = net(alg.sandwich(w, mv), s, EDGES)
        torch.testing.assert_close(out_t, alg.sandwich(w, out), atol=1e-7, rtol=1e-7)
        torch.testing.assert_close(out_s_t, out_s, atol=1e-7, rtol=1e-7)


@pytest.mark.parametrize("aggregation", ["sum", "mean"])
def test_node_permutation(aggregation):
    alg = PGA3
    net = _net(alg, aggregation)
    mv, s = _inputs(alg)
    perm = torch.tensor([3, 0, 4, 1, 2])  # new node a is old node perm[a]
    inverse = torch.argsort(perm)
    out, out_s = net(mv, s, EDGES)
    out_p, out_s_p = net(mv[perm], s[perm], inverse[EDGES])
    torch.testing.assert_close(out_p, out[perm], atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(out_s_p, out_s[perm], atol=1e-12, rtol=1e-12)


def test_nodes_without_incoming_edges():
    alg = VGA3
    net = _net(alg)
    mv, s = _inputs(alg)
    out, _ = net(mv, s, EDGES)
    # node 4 only sends: its output depends on its own features alone
    mv2, s2 = mv.clone(), s.clone()
    mv2[:4] += 1.0
    s2[:4] -= 1.0
    out2, _ = net(mv2, s2, EDGES)
    torch.testing.assert_close(out2[4], out[4], atol=1e-12, rtol=1e-12)
    assert not torch.allclose(out2[:4], out[:4])
    # no edges at all
    out3, out3_s = net(mv, s, torch.zeros(2, 0, dtype=torch.long))
    assert torch.isfinite(out3).all() and torch.isfinite(out3_s).all()


def test_sum_equals_mean_for_in_degree_one():
    alg = VGA3
    ring = torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 0]])
    mean_net, sum_net = _net(alg, "mean"), _net(alg, "sum")
    sum_net.load_state_dict(mean_net.state_dict())
    mv, s = _inputs(alg)
    torch.testing.assert_close(sum_net(mv, s, ring)[0], mean_net(mv, s, ring)[0])
    assert not torch.allclose(sum_net(mv, s, EDGES)[0], mean_net(mv, s, EDGES)[0])


def test_without_scalars_and_layer_norm():
    alg = ALGEBRAS["STA"]
    net = CliffordGNN(
        alg, in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=3, num_layers=1, layer_norm=False
    )
    mv = torch.randn(5, 1, alg.dim)
    out, s = net(mv, None, EDGES)
    assert out.shape == (5, 1, alg.dim) and s.shape == (5, 0)
    out.square().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_state_dict_round_trip():
    alg = PGA3
    net = _net(alg, seed=0)
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    buffer.seek(0)
    other = _net(alg, seed=1)
    mv, s = _inputs(alg)
    assert not torch.allclose(other(mv, s, EDGES)[0], net(mv, s, EDGES)[0])
    other.load_state_dict(torch.load(buffer, weights_only=True))
    for a, b in zip(other(mv, s, EDGES), net(mv, s, EDGES), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_bad_input():
    alg = VGA3
    net = _net(alg)
    mv, s = _inputs(alg)
    with pytest.raises(TypeError, match="int64"):
        net(mv, s, EDGES.float())
    with pytest.raises(TypeError, match="Tensor"):
        net(mv, s, EDGES.tolist())
    with pytest.raises(ValueError, match=r"\(2, edges\)"):
        net(mv, s, EDGES[:1])
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        net(mv, s, EDGES + 1)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        net(mv, s, EDGES - 1)
    with pytest.raises(ValueError, match="scalars"):
        net(mv, None, EDGES)
    with pytest.raises(ValueError, match="scalars"):
        net(mv, s[:3], EDGES)
    with pytest.raises(ValueError, match=r"\(nodes, 2, 8\)"):
        net(mv[None], s, EDGES)
    with pytest.raises(ValueError, match="aggregation"):
        _net(alg, "max")
    with pytest.raises(ValueError, match="num_layers"):
        _net(alg, num_layers=0)
    with pytest.raises(TypeError, match="Algebra"):
        CliffordGNN(None, in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=1, num_layers=1)
