"""CSMPN and the Rips lift: exact lifts of hand-made point sets, equivariance, permutations, errors."""

import io
import itertools
import math
import re

import numpy as np
import pytest
import torch

from gatorch import Algebra
from gatorch.nets.csmpn import CSMPN, CSMPNLayer, SimplexEmbedding
from gatorch.nets.simplicial import RELATIONS, SimplicialComplex, rips_lift
from gatorch.testing import ALGEBRAS, random_versors

F64 = torch.float64
VGA3 = Algebra(3, 0, 0)
CL5 = Algebra(5, 0, 0)
NET_ALGEBRAS = {"VGA3": VGA3, "Cl(5,0,0)": CL5, "STA": ALGEBRAS["STA"]}
SQUARE = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=F64)


def _pairs(rel):
    return sorted(map(tuple, rel.t().tolist()))


def _rows(x):
    return [tuple(r) for r in x.tolist()]


# -- the Rips lift on hand-made point sets -------------------------------------------------------------
def test_square_radius_one_has_sides_only():
    cx = rips_lift(SQUARE, radius=1.0)  # the sides have length exactly 1: joined; diagonals sqrt(2) not
    assert cx.counts == (4, 4, 0)
    assert _rows(cx.simplices[0]) == [(0,), (1,), (2,), (3,)]
    assert _rows(cx.simplices[1]) == [(0, 1), (0, 3), (1, 2), (2, 3)]
    assert cx.offsets == (0, 4, 8, 8)
    # cells: vertices 0-3, edges 4 = 01, 5 = 03, 6 = 12, 7 = 23
    assert _pairs(cx.relation("boundary")) == sorted(
        [(0, 4), (1, 4), (0, 5), (3, 5), (1, 6), (2, 6), (2, 7), (3, 7)]
    )
    assert _pairs(cx.relation("coboundary")) == sorted((b, a) for a, b in _pairs(cx.relation("boundary")))
    assert _pairs(cx.relation("upper")) == sorted(
        [(0, 1), (1, 0), (0, 3), (3, 0), (1, 2), (2, 1), (2, 3), (3, 2)]
    )
    # edges sharing a vertex: 01-03 (0), 01-12 (1), 12-23 (2), 03-23 (3)
    assert _pairs(cx.relation("lower")) == sorted(
        [(4, 5), (5, 4), (4, 6), (6, 4), (6, 7), (7, 6), (5, 7), (7, 5)]
    )
    assert rips_lift(SQUARE, radius=0.999).counts == (4, 0, 0)


def test_square_full_complex():
    cx = rips_lift(SQUARE, radius=1.5)
    assert _rows(cx.simplices[1]) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert _rows(cx.simplices[2]) == [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)]
    # boundary of triangle 012 (cell 10): edges 01 (4), 02 (5), 12 (7)
    faces = sorted(a for a, b in _pairs(cx.relation("boundary")) if b == 10)
    assert faces == [4, 5, 7]
    # upper adjacency: vertex pairs via edges (12), edge pairs in a triangle (4 x 6)
    assert cx.relation("upper").shape == (2, 12 + 24)
    # lower adjacency: edges at a vertex (4 x 3 x 2), triangles at an edge (6 x 2 x 1)
    assert cx.relation("lower").shape == (2, 24 + 12)
    # triangles 012 and 013 share edge 01 only: lower-adjacent both ways
    assert (10, 11) in _pairs(cx.relation("lower")) and (11, 10) in _pairs(cx.relation("lower"))
    assert rips_lift(SQUARE, radius=None).counts == cx.counts
    assert rips_lift(SQUARE, radius=math.inf).counts == cx.counts


def test_flag_complex_needs_all_three_edges():
    # a unit square with one diagonal short enough: points 0, 2 close, 1, 3 far apart
    pts = torch.tensor([[0.0, 0.0], [1.0, -1.0], [2.0, 0.0], [1.0, 1.0]], dtype=F64)
    cx = rips_lift(pts, radius=2.0)  # sides sqrt(2), diagonal 0-2 length 2, diagonal 1-3 length 2
    assert cx.counts == (4, 6, 4)
    cx = rips_lift(pts, radius=1.9)  # only the four sides: a 4-cycle, no triangle
    assert _rows(cx.simplices[1]) == [(0, 1), (0, 3), (1, 2), (2, 3)] and cx.counts[2] == 0
    pts[2, 0] = 1.9  # now 0-2 has length 1.9 < 2 = |1-3|: triangles 012 and 023 only
    cx = rips_lift(pts, radius=1.95)
    assert _rows(cx.simplices[2]) == [(0, 1, 2), (0, 2, 3)]
    assert _pairs(cx.relation("lower"))[-2:] == [(9, 10), (10, 9)]  # they share the edge 02


def test_triangle_and_isolated_point_in_3d():
    h = math.sqrt(3.0) / 2
    pts = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.5, h, 0.0], [0.0, 0.0, 5.0]], dtype=F64)
    cx = rips_lift(pts, radius=1.01)
    assert _rows(cx.simplices[1]) == [(0, 1), (0, 2), (1, 2)]
    assert _rows(cx.simplices[2]) == [(0, 1, 2)]
    assert cx.cell_dim.tolist() == [0, 0, 0, 0, 1, 1, 1, 2]
    assert not (cx.relation("upper") == 3).any()  # vertex 3 is isolated
    assert rips_lift(pts, radius=1.01, max_dim=1).counts == (4, 3)
    assert rips_lift(pts, radius=1.01, max_dim=0).counts == (4,)


def test_batched_clouds_do_not_connect():
    clouds = torch.stack([SQUARE, SQUARE + 0.1])  # (2, 4, 2): close across clouds, but separate
    cx = rips_lift(clouds, radius=1.0)
    assert cx.num_graphs == 2 and cx.counts == (8, 8, 0)
    assert _rows(cx.simplices[1]) == [(0, 1), (0, 3), (1, 2), (2, 3), (4, 5), (4, 7), (5, 6), (6, 7)]
    assert cx.cell_batch.tolist() == [0] * 4 + [1] * 4 + [0] * 4 + [1] * 4
    # the same clouds, interleaved, as (N, n) with a batch vector
    order = torch.tensor([0, 4, 1, 5, 2, 6, 3, 7])  # new vertex a is old vertex order[a]
    flat = rips_lift(clouds.reshape(8, 2)[order], radius=1.0, batch=torch.tensor([0, 1] * 4))
    assert flat.batch.tolist() == [0, 1] * 4
    mapped = sorted(tuple(sorted(order[v].item() for v in row)) for row in flat.simplices[1].tolist())
    assert mapped == _rows(cx.simplices[1])
    # complete complexes: C(P, k + 1) simplices per cloud
    full = rips_lift(torch.randn(3, 5, 4, dtype=F64), radius=None)
    assert full.counts == (15, 3 * 10, 3 * 10)


def test_lift_is_permutation_consistent_and_invariant():
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(20, 3, generator=g, dtype=F64)
    batch = torch.randint(0, 3, (20,), generator=g)
    cx = rips_lift(pos, radius=1.6, batch=batch)
    assert cx.counts[1] > 10 and cx.counts[2] > 2
    perm = torch.randperm(20, generator=g)  # new vertex a is old vertex perm[a]
    cx_p = rips_lift(pos[perm], radius=1.6, batch=batch[perm])
    for k in (1, 2):
        mapped = sorted(tuple(sorted(r)) for r in perm[cx_p.simplices[k]].tolist())
        assert mapped == _rows(cx.simplices[k])
        assert _rows(cx.simplices[k]) == sorted(_rows(cx.simplices[k]))  # lexicographic
    # orthogonal maps and translations keep the complex
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=F64))
    moved = rips_lift(pos @ q.T + 3.0, radius=1.6, batch=batch)
    for k in (1, 2):
        assert torch.equal(moved.simplices[k], cx.simplices[k])


def test_from_simplices_and_pool():
    cx = SimplicialComplex.from_simplices(
        4, [torch.tensor([[1, 0], [2, 1], [0, 2], [2, 3]]), torch.tensor([[2, 0, 1]])]
    )
    assert _rows(cx.simplices[1]) == [(0, 1), (1, 2), (0, 2), (2, 3)]  # rows sorted, order kept
    assert _rows(cx.simplices[2]) == [(0, 1, 2)]
    assert sorted(a for a, b in _pairs(cx.relation("boundary")) if b == 8) == [4, 5, 6]
    two = SimplicialComplex.from_simplices(
        4, [torch.tensor([[0, 1], [2, 3]])], batch=torch.tensor([0, 0, 1, 1])
    )
    values = torch.arange(6, dtype=F64)[:, None]  # cells: v0 v1 v2 v3 e01 e23
    torch.testing.assert_close(two.pool(values), torch.tensor([[5 / 3], [10 / 3]], dtype=F64))
    torch.testing.assert_close(two.pool(values, "sum", dims=[0]), torch.tensor([[1.0], [5.0]], dtype=F64))
    empty = SimplicialComplex.from_simplices(3, [], batch=torch.tensor([0, 0, 2]))
    assert empty.num_graphs == 3 and empty.pool(torch.ones(3, 2)).tolist() == [[1, 1], [0, 0], [1, 1]]


# -- layers and the net ---------------------------------------------------------------------------------
def _vertex_inputs(alg, pos, seed=1, channels=2, s_channels=3):
    g = torch.Generator().manual_seed(seed)
    mv = torch.randn(pos.shape[0], channels, alg.dim, generator=g, dtype=F64)
    mv[:, 0] = 0.0
    mv[:, 0, alg.grade_slice(1)] = pos
    return mv, torch.randn(pos.shape[0], s_channels, generator=g, dtype=F64)


def _complex(n, seed=0, clouds=2, points=6, radius=None):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(clouds, points, n, generator=g, dtype=F64)
    radius = radius if radius is not None else 1.2 * math.sqrt(n)
    return pos.reshape(clouds * points, n), rips_lift(pos, radius=radius)


def _net(alg, seed=0, **kw):
    torch.manual_seed(seed)
    config = dict(
        in_mv_channels=2,
        out_mv_channels=2,
        hidden_mv_channels=3,
        in_s_channels=3,
        out_s_channels=2,
        hidden_s_channels=3,
        num_layers=2,
    )
    config.update(kw)
    return CSMPN(alg, **config).double()


@pytest.mark.parametrize("alg", [VGA3, CL5], ids=["VGA3", "Cl(5,0,0)"])
@pytest.mark.parametrize("k", [0, 1, 2])
def test_simplex_embedding_equivariant_and_order_free(alg, k):
    pos, cx = _complex(alg.n)
    assert cx.counts[2] > 0
    mv, s = _vertex_inputs(alg, pos)
    torch.manual_seed(k)
    layer = SimplexEmbedding(alg, k, 2, 3, 3, 2).double()
    out, out_s = layer(mv, s, cx.simplices[k])
    assert out.shape == (cx.counts[k], 3, alg.dim) and out_s.shape == (cx.counts[k], 2)
    for w in random_versors(alg, 4, seed=5):  # two even, two odd
        out_t, out_s_t = layer(alg.sandwich(w, mv), s, cx.simplices[k])
        torch.testing.assert_close(out_t, alg.sandwich(w, out), atol=1e-9, rtol=1e-9)
        torch.testing.assert_close(out_s_t, out_s, atol=1e-9, rtol=1e-9)
    for perm in itertools.permutations(range(k + 1)):  # listing the vertices in any order
        out_p, out_s_p = layer(mv, s, cx.simplices[k][:, list(perm)])
        torch.testing.assert_close(out_p, out, atol=1e-12, rtol=1e-12)
        torch.testing.assert_close(out_s_p, out_s, atol=1e-12, rtol=1e-12)


def test_edge_embedding_loses_the_orientation():
    # documented: the wedge of an edge's two vertex vectors alternates with their order
    pos, cx = _complex(3)
    mv, s = _vertex_inputs(VGA3, pos, channels=1)
    torch.manual_seed(0)
    out, _ = SimplexEmbedding(VGA3, 1, 1, 4, 3, 2).double()(mv, s, cx.simplices[1])
    assert out[..., VGA3.grade_slice(2)].abs().max() < 1e-12
    assert out[..., VGA3.grade_slice(1)].abs().max() > 1e-3
    ordered, _ = (
        SimplexEmbedding(VGA3, 1, 1, 4, 3, 2)
        .double()
        .layers[0](mv[cx.simplices[1]].reshape(-1, 2, VGA3.dim), s[cx.simplices[1]].reshape(-1, 6))
    )
    assert ordered[..., VGA3.grade_slice(2)].abs().max() > 1e-3  # one ordering alone keeps it


@pytest.mark.parametrize("alg", [VGA3, CL5], ids=["VGA3", "Cl(5,0,0)"])
def test_layer_equivariant(alg):
    _, cx = _complex(alg.n)
    g = torch.Generator().manual_seed(3)
    cells = cx.num_cells
    mv = torch.randn(cells, 3, alg.dim, generator=g, dtype=F64)
    s = torch.randn(cells, 2, generator=g, dtype=F64)
    rel = torch.cat([cx.relation(r) for r in RELATIONS], 1)
    attr = torch.randn(rel.shape[1], 4, generator=g, dtype=F64)
    cell_attr = torch.randn(cells, 3, generator=g, dtype=F64)
    inv = 1.0 / torch.bincount(rel[1], minlength=cells).clamp_min(1).to(F64)
    torch.manual_seed(0)
    layer = CSMPNLayer(alg, 3, 2, 4, 3).double()
    args = (rel[0], rel[1], attr, cell_attr, inv)
    out, out_s = layer(mv, s, *args)
    for w in random_versors(alg, 4, seed=6):
        out_t, out_s_t = layer(alg.sandwich(w, mv), s, *args)
        torch.testing.assert_close(out_t, alg.sandwich(w, out), atol=1e-9, rtol=1e-9)
        torch.testing.assert_close(out_s_t, out_s, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("relations", [("boundary", "coboundary", "upper"), RELATIONS])
@pytest.mark.parametrize("name", NET_ALGEBRAS.keys())
def test_net_equivariant_scalars_invariant(name, relations):
    alg = NET_ALGEBRAS[name]
    pos, cx = _complex(alg.n)
    mv, s = _vertex_inputs(alg, pos)
    net = _net(alg, relations=relations)
    out, out_s = net(mv, s, cx)
    assert out.shape == (cx.num_cells, 2, alg.dim) and out_s.shape == (cx.num_cells, 2)
    pooled = cx.pool(out_s)
    for w in random_versors(alg, 4, seed=2):  # two even, two odd
        out_t, out_s_t = net(alg.sandwich(w, mv), s, cx)
        torch.testing.assert_close(out_t, alg.sandwich(w, out), atol=1e-7, rtol=1e-7)
        torch.testing.assert_close(out_s_t, out_s, atol=1e-7, rtol=1e-7)
        torch.testing.assert_close(cx.pool(out_s_t), pooled, atol=1e-7, rtol=1e-7)


def test_net_uses_higher_simplices_and_relations():
    pos, cx = _complex(3)
    mv, s = _vertex_inputs(VGA3, pos)
    out, _ = _net(VGA3)(mv, s, cx)
    edges_only = SimplicialComplex.from_simplices(cx.num_vertices, [cx.simplices[1]], batch=cx.batch)
    out_e, _ = _net(VGA3)(mv, s, edges_only)
    assert not torch.allclose(out_e[: cx.num_vertices], out[: cx.num_vertices])  # triangles talk back
    out_l, _ = _net(VGA3, relations=RELATIONS)(mv, s, cx)
    assert not torch.allclose(out_l, out)


def test_vertex_permutation_permutes_outputs():
    alg = CL5
    pos, _ = _complex(alg.n, clouds=3, points=5)
    batch = torch.arange(3).repeat_interleave(5)
    cx = rips_lift(pos, radius=1.2 * math.sqrt(alg.n), batch=batch)
    assert cx.counts[1] > 0 and cx.counts[2] > 0
    mv, s = _vertex_inputs(alg, pos)
    net = _net(alg, aggregation="sum")
    out, out_s = net(mv, s, cx)
    perm = torch.randperm(15, generator=torch.Generator().manual_seed(4))  # new vertex a = old perm[a]
    cx_p = rips_lift(pos[perm], radius=1.2 * math.sqrt(alg.n), batch=batch[perm])
    out_p, out_s_p = net(mv[perm], s[perm], cx_p)
    # cell of the permuted complex -> cell of the original one
    index = {}
    for k, rows in enumerate(cx.simplices):
        for i, row in enumerate(_rows(rows)):
            index[(k, row)] = cx.offsets[k] + i
    match = [
        index[(k, tuple(sorted(row)))] for k, rows in enumerate(cx_p.simplices) for row in perm[rows].tolist()
    ]
    torch.testing.assert_close(out_p, out[match], atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(out_s_p, out_s[match], atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(cx_p.pool(out_s_p), cx.pool(out_s), atol=1e-12, rtol=1e-12)


def test_isolated_vertices_and_no_edges():
    pos, _ = _complex(3)
    mv, s = _vertex_inputs(VGA3, pos)
    net = _net(VGA3)
    lonely = rips_lift(pos, radius=1e-6)
    assert lonely.counts == (12, 0, 0)
    out, out_s = net(mv, s, lonely)
    assert out.shape == (12, 2, 8) and torch.isfinite(out).all() and torch.isfinite(out_s).all()
    mv2 = mv.clone()
    mv2[1:] += 1.0
    out2, _ = net(mv2, s, lonely)
    torch.testing.assert_close(out2[0], out[0], atol=1e-12, rtol=1e-12)  # hears nobody
    out.sum().backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in net.parameters())


def test_state_dict_round_trip():
    pos, cx = _complex(3)
    mv, s = _vertex_inputs(VGA3, pos)
    net = _net(VGA3, seed=0)
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    buffer.seek(0)
    other = _net(VGA3, seed=1)
    assert not torch.allclose(other(mv, s, cx)[0], net(mv, s, cx)[0])
    other.load_state_dict(torch.load(buffer, weights_only=True))
    torch.testing.assert_close(other(mv, s, cx)[0], net(mv, s, cx)[0], atol=0, rtol=0)
    assert not any("orderings" in k for k in net.state_dict())  # derived, not stored


# -- errors ---------------------------------------------------------------------------------------------
def test_rips_lift_errors():
    with pytest.raises(TypeError, match=r"positions must be a torch.Tensor, got list"):
        rips_lift([[0.0, 1.0]], radius=1.0)
    with pytest.raises(TypeError, match=r"floating-point tensor, got dtype torch.int64"):
        rips_lift(torch.zeros(3, 2, dtype=torch.long), radius=1.0)
    with pytest.raises(ValueError, match=r"shape \(N, n\) or \(B, P, n\), got \(3,\)"):
        rips_lift(torch.zeros(3), radius=1.0)
    with pytest.raises(ValueError, match=r"radius must be a number > 0 or None .*got -1.0"):
        rips_lift(SQUARE, radius=-1.0)
    with pytest.raises(ValueError, match=r"max_dim must be an int in \[0, 2\], got 3"):
        rips_lift(SQUARE, radius=1.0, max_dim=3)
    with pytest.raises(ValueError, match=r"batch must have shape \(4,\).*got \(3,\)"):
        rips_lift(SQUARE, radius=1.0, batch=torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match=r"batch must have dtype torch.int64.*got torch.float32"):
        rips_lift(SQUARE, radius=1.0, batch=torch.zeros(4))
    with pytest.raises(ValueError, match=r"batch is implied by"):
        rips_lift(SQUARE[None], radius=1.0, batch=torch.zeros(4, dtype=torch.long))


def test_from_simplices_errors():
    build = SimplicialComplex.from_simplices
    with pytest.raises(ValueError, match=r"not closed: 2-simplex \[0, 1, 2\]"):
        build(3, [torch.tensor([[0, 1], [1, 2]]), torch.tensor([[0, 1, 2]])])
    with pytest.raises(ValueError, match=r"vertex indices in \[0, 3\), got values in \[0, 3\]"):
        build(3, [torch.tensor([[0, 3]])])
    with pytest.raises(ValueError, match=r"repeats a vertex: \[1, 1\]"):
        build(3, [torch.tensor([[1, 1]])])
    with pytest.raises(ValueError, match=r"same simplex more than once"):
        build(3, [torch.tensor([[0, 1], [1, 0]])])
    with pytest.raises(ValueError, match=r"must have shape \(n, 2\), got \(1, 3\)"):
        build(3, [torch.tensor([[0, 1, 2]])])
    with pytest.raises(ValueError, match=r"spans clouds \[0, 1\]"):
        build(3, [torch.tensor([[0, 1]])], batch=torch.tensor([0, 1, 1]))
    with pytest.raises(TypeError, match=r"sequence of tensors .*got Tensor"):
        build(3, torch.tensor([[0, 1]]))


def test_net_errors():
    pos, cx = _complex(3)
    mv, s = _vertex_inputs(VGA3, pos)
    net = _net(VGA3)
    with pytest.raises(
        TypeError, match=r"cx must be a gatorch.nets.simplicial.SimplicialComplex.*got Tensor"
    ):
        net(mv, s, torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected input of shape \(\.\.\., 2, 8\), got \(12, 3, 8\)"):
        net(mv[:, [0, 1, 1]], s, cx)
    with pytest.raises(ValueError, match=r"expected mv of shape \(12, 2, 8\).*got \(11, 2, 8\)"):
        net(mv[:11], s, cx)
    with pytest.raises(ValueError, match=r"scalars must have shape \(12, 3\), got \(11, 3\)"):
        net(mv, s[:11], cx)
    with pytest.raises(ValueError, match=r"expected scalars of shape \(\.\.\., 3\), got None"):
        net(mv, None, cx)
    with pytest.raises(ValueError, match=r"expected last dimension 8"):
        net(torch.zeros(12, 2, 32, dtype=F64), s, cx)
    with pytest.raises(ValueError, match=r"max_dim=1, got a complex of dimension 2"):
        _net(VGA3, max_dim=1)(mv, s, cx)
    with pytest.raises(ValueError, match=r"relations must be distinct names from .*got \('upper', 'side'\)"):
        _net(VGA3, relations=("upper", "side"))
    with pytest.raises(TypeError, match=r"relations must be a sequence"):
        _net(VGA3, relations="upper")
    with pytest.raises(ValueError, match=r"aggregation must be one of .*got 'max'"):
        _net(VGA3, aggregation="max")
    with pytest.raises(ValueError, match=r"num_layers must be an int >= 1, got 0"):
        _net(VGA3, num_layers=0)
    with pytest.raises(TypeError, match=r"alg must be a gatorch.Algebra, got str"):
        CSMPN("VGA3", in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=1, num_layers=1)


# -- the reference configuration ("csmpn-paper") and its options ---------------------------------------
def _paper(seed=0, **kw):
    """The preset at test size (its structure, fewer channels and layers)."""
    torch.manual_seed(seed)
    config = dict(in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=3, num_layers=2)
    config.update(kw)
    return CSMPN.preset("csmpn-paper", CL5, **config).double()


def test_paper_preset_structure():
    net = CSMPN.preset("csmpn-paper", CL5, in_mv_channels=1, out_mv_channels=1)
    assert (net.message_input, net.message_codes, net.init, net.aggregation) == (
        "difference",
        "dims",
        "cgenn",
        "mean",
    )
    assert len(net.layers) == 3 and net.relations == ("boundary", "coboundary", "upper")
    layer = net.layers[0]
    assert layer.norm is None
    first = layer.message.blocks[0]  # h_receiver - h_sender: 28 channels, the 2 x 3 one-hot dims as scalars
    assert (first.in_channels, first.in_s_channels) == (28, 6)
    assert (layer.update.blocks[0].in_channels, layer.update.blocks[0].in_s_channels) == (56, 3)
    assert len(layer.message.blocks) == 8  # CGENN's 2 blocks of linear, SiLU, product, norm
    # the embedding of a k-simplex is one CGENN MLP of k blocks on its (k + 1) vertices
    assert [len(e.layers) for e in net.embed] == [1, 1, 1]
    assert len(net.embed[1].layers[0].blocks) == 4 and len(net.embed[2].layers[0].blocks) == 8
    assert net.embed[2].layers[0].blocks[0].in_channels == 3 and net.embed[2].reduce == "sum"
    # CGENN's MVLinear initialisation: std 1 / sqrt(all inputs), zero bias, on every grade
    w = layer.message.blocks[0].weight
    assert abs(float(w.detach().std()) * math.sqrt(34) - 1) < 0.05
    assert float(layer.message.blocks[0].s_to_mv.detach().std()) * math.sqrt(34) == pytest.approx(1, abs=0.2)
    assert float(net.readout.bias.detach().abs().max()) == 0.0
    small = CSMPN.preset("csmpn-paper", CL5, in_mv_channels=1, out_mv_channels=1, num_layers=1)
    assert len(small.layers) == 1  # overrides win


@pytest.mark.parametrize("seed", [0, 1])
def test_paper_preset_o5_equivariant_with_reflections(seed):
    """O(5), reflections included (two odd versors), float64; the pooled prediction is invariant."""
    pos, cx = _complex(5, seed=seed, radius=3.5)
    pos = pos - pos.reshape(2, 6, 5).mean(1).repeat_interleave(6, 0)
    mv = torch.zeros(pos.shape[0], 1, CL5.dim, dtype=F64)
    mv[:, 0, CL5.grade_slice(1)] = pos
    net = _paper(seed)
    out, _ = net(mv, None, cx)
    assert cx.counts[2] > 0 and out.abs().max() > 1e-3
    pred = cx.pool(out[:, 0, 0])
    for w in random_versors(CL5, 4, seed=seed + 3):  # two even, two odd
        out_t, _ = net(CL5.sandwich(w, mv), None, cx)
        torch.testing.assert_close(out_t, CL5.sandwich(w, out), atol=1e-9, rtol=1e-9)
        torch.testing.assert_close(cx.pool(out_t[:, 0, 0]), pred, atol=1e-9, rtol=1e-9)


def test_difference_messages_and_dims_codes_change_the_net():
    pos, cx = _complex(3)
    mv, s = _vertex_inputs(VGA3, pos)
    base = _net(VGA3)
    diff = _net(VGA3, message="difference")
    dims = _net(VGA3, message_codes="dims")
    assert diff.layers[0].message.linear_in.in_channels == 3  # one side, not two
    assert dims.message_attr_channels == 6 and base.message_attr_channels == 9
    out = base(mv, s, cx)[0]
    assert not torch.allclose(diff(mv, s, cx)[0], out) and not torch.allclose(dims(mv, s, cx)[0], out)


def test_difference_message_is_receiver_minus_sender():
    """The layer's output against the formula: messages from ``h[target] - h[source]`` and the
    codes, mean over the incoming ones, residual update from ``[h, mean]`` and the cell codes."""
    torch.manual_seed(0)
    layer = CSMPNLayer(VGA3, 2, 0, 4, 3, layer_norm=False, message="difference").double()
    g = torch.Generator().manual_seed(1)
    mv = torch.randn(3, 2, 8, generator=g, dtype=F64)
    source, target = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 2, 0, 2])
    attr = torch.eye(4, dtype=F64)
    cell_attr = torch.eye(3, dtype=F64)
    s0 = torch.zeros(3, 0, dtype=F64)
    inv = torch.tensor([1.0, 1.0, 0.5], dtype=F64)
    out, _ = layer(mv, s0, source, target, attr, cell_attr, inv)
    m = layer.message(mv[target] - mv[source], attr)[0]
    agg = torch.stack([m[target == c].mean(0) for c in range(3)])
    expected = mv + layer.update(torch.cat([mv, agg], dim=-2), cell_attr)[0]
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)
    flipped = (
        mv
        + layer.update(
            torch.cat(
                [
                    mv,
                    torch.stack(
                        [
                            layer.message(mv[source] - mv[target], attr)[0][target == c].mean(0)
                            for c in range(3)
                        ]
                    ),
                ],
                dim=-2,
            ),
            cell_attr,
        )[0]
    )
    assert not torch.allclose(out, flipped)


@pytest.mark.parametrize("k", [1, 2])
def test_cemlp_embedding_sum_is_factorial_times_mean(k):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    mv = torch.randn(5, 1, CL5.dim, generator=g, dtype=F64)
    simplices = torch.tensor([[0, 1, 2], [1, 3, 4]])[:, : k + 1]
    s = mv.new_zeros(5, 0)
    mlp = {"style": "cgenn", "normalization_init": 0.0, "weight_init": "cgenn"}
    summed = SimplexEmbedding(CL5, k, 1, 2, mlp=mlp, structure="cemlp", reduce="sum").double()
    torch.manual_seed(0)
    mean = SimplexEmbedding(CL5, k, 1, 2, mlp=mlp, structure="cemlp").double()
    assert len(summed.layers) == 1 and len(summed.layers[0].blocks) == 4 * k
    torch.testing.assert_close(summed(mv, s, simplices)[0], math.factorial(k + 1) * mean(mv, s, simplices)[0])
    flipped = simplices.flip(1)  # the listing order of the vertices does not matter
    torch.testing.assert_close(summed(mv, s, flipped)[0], summed(mv, s, simplices)[0])


def test_paper_preset_compiles_fresh():
    from gatorch.testing import assert_compiles

    pos, cx = _complex(3)
    mv = torch.zeros(pos.shape[0], 1, VGA3.dim)
    mv[:, 0, VGA3.grade_slice(1)] = pos.float()
    torch.manual_seed(0)
    net = CSMPN.preset(
        "csmpn-paper", VGA3, in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=2, num_layers=1
    )
    assert_compiles(net, (mv, None, cx), backend="eager")


def test_new_option_errors():
    kw = dict(in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=2, num_layers=1)
    for name, bad, choices in (
        ("message", "sum", "('concat', 'difference')"),
        ("message_codes", "none", "('relation', 'dims')"),
        ("embedding", "mlp", "('stacked', 'cemlp')"),
        ("embedding_reduce", "max", "('mean', 'sum')"),
        ("init", "xavier", "('variance', 'cgenn')"),
    ):
        with pytest.raises(
            ValueError, match=rf"CSMPN: {name} must be one of {re.escape(choices)}, got '{bad}'"
        ):
            CSMPN(VGA3, **kw, **{name: bad})
    with pytest.raises(
        ValueError, match=r"CSMPN.preset: name must be one of \('csmpn-paper',\), got 'paper'"
    ):
        CSMPN.preset("paper", VGA3, **kw)
    with pytest.raises(ValueError, match=r"SimplexEmbedding: structure must be one of"):
        SimplexEmbedding(VGA3, 1, 1, 1, structure="x")
    with pytest.raises(ValueError, match=r"CSMPNLayer: message must be one of"):
        CSMPNLayer(VGA3, 1, 0, 1, 1, message="x")


# -- the reference's hull data --------------------------------------------------------------------------
def test_hull_generator_volumes_equal_scipy(tmp_path):
    spatial = pytest.importorskip("scipy.spatial")
    from examples.zoo.csmpn_hull_data import generate_hulls

    cache = tmp_path / "hulls.npz"
    x, y = generate_hulls(6, seed=3, cache=cache)
    assert x.shape == (6, 8, 5) and x.dtype == y.dtype == np.float32
    for cloud, vol in zip(x.astype(np.float64), y, strict=True):
        hull = spatial.ConvexHull(cloud)
        assert vol == pytest.approx(hull.volume, rel=1e-5)
        # and scipy's volume is the sum of the facet cones from the centroid (|det| / 5!)
        c = cloud.mean(0)
        cones = sum(abs(np.linalg.det(cloud[f] - c)) for f in hull.simplices) / math.factorial(5)
        assert vol == pytest.approx(cones, rel=1e-5)
    x2, y2 = generate_hulls(6, seed=3, cache=cache)  # read back from the cache
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)
    assert not np.array_equal(generate_hulls(6, seed=4)[0], x)
    with pytest.raises(
        ValueError, match=r"generate_hulls: the cache .* holds clouds of shape \(6, 8, 5\), expected"
    ):
        generate_hulls(7, seed=3, cache=cache)


def test_hull_complex_is_the_boundary_skeleton():
    """A 5-simplex with two points inside: the interior points get no edge; the 6 corners span
    every edge (15) and triangle (20), all on the boundary."""
    pytest.importorskip("scipy")
    from examples.zoo.csmpn_hull_data import hull_complex

    corners = np.vstack([np.zeros(5), np.eye(5)])
    inside = np.full((2, 5), 0.1) + np.array([[0.0] * 4 + [0.02], [0.03] + [0.0] * 4])
    cloud = np.vstack([corners, inside])
    cx = hull_complex(np.stack([cloud, cloud[::-1].copy()]))
    assert cx.counts == (16, 30, 40) and cx.num_graphs == 2
    assert set(cx.simplices[1][:15].flatten().tolist()) == set(range(6))
    assert set(cx.simplices[1][15:].flatten().tolist()) == set(range(10, 16))
