"""Geometric algebra attention (Spellings 2021): package agreement, a direct reference, symmetries, errors."""

import itertools

import pytest
import torch
from torch import nn

from gatorch import PGA3, VGA3, Algebra
from gatorch.interface.vga import embed_axial_vector, embed_vector, extract_axial_vector, extract_vector
from gatorch.layers.zoo.ga_attention import (
    GACovariantAttention,
    GAInvariantAttention,
    ga_attention_invariant_dims,
)
from gatorch.testing import random_versors, versor_parity

F64 = torch.float64
N_DIM = 4
MODES = ("single", "partial", "full")
FUNS = list(itertools.product(("mean", "concat"), repeat=2))

#: The products of each mode as (start slot, length), written out by hand: the package's order.
TERMS = {
    2: {"single": [(0, 2)], "partial": [(0, 2), (0, 1)], "full": [(0, 2), (0, 1), (1, 1)]},
    3: {
        "single": [(0, 3)],
        "partial": [(0, 3), (0, 2), (0, 1)],
        "full": [(0, 3), (0, 2), (0, 1), (1, 2), (1, 1), (2, 1)],
    },
}


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _mlp(n_in, n_out, seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, 8), nn.Tanh(), nn.Linear(8, n_out)).to(F64)


def _nets(rank, mode, normalized=False, seed=0, alg=VGA3):
    k = ga_attention_invariant_dims(rank, mode, normalized, alg)
    return _mlp(N_DIM, 1, seed), _mlp(k, N_DIM, seed + 1), _mlp(N_DIM, 1, seed + 2)


def _cloud(batch=3, points=5, seed=0, alg=VGA3):
    g = _gen(seed)
    r = torch.randn(batch, points, alg.n, generator=g, dtype=F64)
    v = torch.randn(batch, points, N_DIM, generator=g, dtype=F64)
    mask = torch.ones(batch, points, dtype=torch.bool)
    mask[1, 3:] = False  # cloud 1 is padded to `points` from 3
    return r, v, mask


def _layer(kind, rank, reduce, mode, merge="concat", join="concat", group="spin", seed=0, **kw):
    score, value, scale = _nets(rank, mode, kw.get("normalized_products", False), seed)
    common = dict(
        rank=rank, reduce=reduce, merge_fun=merge, join_fun=join, invariant_mode=mode, group=group, **kw
    )
    if kind == "invariant":
        layer = GAInvariantAttention(VGA3, N_DIM, score, value, **common)
    else:
        common.setdefault("covariant_mode", mode)
        layer = GACovariantAttention(VGA3, N_DIM, score, value, scale, **common)
    torch.manual_seed(seed + 3)
    with torch.no_grad():  # non-trivial covariant weights (the default init is small)
        for p in (getattr(layer, "covariant_weight", None),):
            if p is not None:
                p.normal_()
    return layer.to(F64)


# -- agreement with the reference package ----------------------------------------------------------------
def _package_twin(gaa, layer):
    """The package layer with the same nets and weights as a gatorch layer."""
    common = dict(
        reduce=layer.reduce,
        merge_fun=layer.merge_fun,
        join_fun=layer.join_fun,
        rank=layer.rank,
        invariant_mode=layer.invariant_mode,
        include_normalized_products=layer.normalized_products,
    )
    if isinstance(layer, GACovariantAttention):
        twin = gaa.Vector2VectorAttention(
            N_DIM,
            layer.score_net,
            layer.value_net,
            layer.scale_net,
            covariant_mode=layer.covariant_mode,
            convex_covariants=layer.convex_covariants,
            **common,
        )
    else:
        twin = gaa.VectorAttention(N_DIM, layer.score_net, layer.value_net, **common)
    twin = twin.to(F64)
    with torch.no_grad():
        if layer.merge_fun == "concat":
            for k, w in zip(twin.merge_kernels, layer.merge_weight, strict=True):
                k.copy_(w)
        if layer.join_fun == "concat":
            for k, w in zip(twin.join_kernels, layer.join_weight, strict=True):
                k.copy_(w)
        if getattr(layer, "covariant_count", 1) > 1:
            twin.vector_kernels.copy_(layer.covariant_weight)
    return twin


@pytest.mark.parametrize("kind", ["invariant", "covariant"])
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("reduce", [True, False])
@pytest.mark.parametrize("mode", MODES)
def test_matches_package(kind, rank, reduce, mode):
    gaa = pytest.importorskip("geometric_algebra_attention.pytorch")
    r, v, mask = _cloud()
    for merge, join in FUNS:
        layer = _layer(kind, rank, reduce, mode, merge, join)
        twin = _package_twin(gaa, layer)
        assert layer.invariant_dims == gaa.VectorAttention.get_invariant_dims(rank, mode)
        for m in (None, mask):
            out = layer(embed_vector(r), v, mask=m)
            ref = twin((r, v), mask=m)
            if kind == "covariant":
                ref = embed_vector(ref)  # the package's vectors; the other grades are zero
            if m is not None and not reduce:  # the package leaves padded points' rows arbitrary
                torch.testing.assert_close(out[~m], torch.zeros_like(out[~m]), atol=0, rtol=0)
                out, ref = out[m], ref[m]
            torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("kind", ["invariant", "covariant"])
@pytest.mark.parametrize("rank", [2, 3])
def test_matches_package_options_and_gradients(kind, rank):
    """Normalised products, convex covariants and the gradients of everything."""
    gaa = pytest.importorskip("geometric_algebra_attention.pytorch")
    r, v, mask = _cloud(seed=1)
    extra = {"convex_covariants": True} if kind == "covariant" else {}
    layer = _layer(kind, rank, False, "partial", normalized_products=True, **extra)
    twin = _package_twin(gaa, layer)
    r.requires_grad_(True)
    v.requires_grad_(True)
    out = layer(embed_vector(r), v, mask=mask)[mask]
    ref = twin((r, v), mask=mask)[mask]
    if kind == "covariant":
        ref = embed_vector(ref)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)
    ours = torch.autograd.grad(out.square().sum(), [r, v, *layer.parameters()])
    theirs = torch.autograd.grad(ref.square().sum(), [r, v, *twin.parameters()])
    for a, b in zip(ours[:2], theirs[:2], strict=True):
        torch.testing.assert_close(a, b, atol=1e-11, rtol=1e-11)
    by_value = {id(p): g for p, g in zip(twin.parameters(), theirs[2:], strict=True)}
    names = dict(layer.named_parameters())
    for name, g in zip(names, ours[2:], strict=True):
        if name.startswith(("score_net", "value_net", "scale_net")):  # the shared nets
            torch.testing.assert_close(g, by_value[id(names[name])], atol=1e-11, rtol=1e-11)


# -- a direct reference: an explicit loop over tuples ----------------------------------------------------
def _tuple_invariants(pts, group):
    if len(pts) == 1:
        return [pts[0].norm()]
    if len(pts) == 2:
        a, b = pts
        return [a @ b, torch.linalg.cross(a, b).norm()]
    a, b, c = pts
    vec = (a @ b) * c + (b @ c) * a - (a @ c) * b  # the vector part of abc
    det = torch.linalg.det(torch.stack(pts))  # its e123 part
    return [vec.norm(), det if group == "spin" else det.abs()]


def _tuple_covariants(pts):
    """(vector part, axial vector of the bivector part) of the product of the points."""
    zero = torch.zeros(3, dtype=F64)
    if len(pts) == 1:
        return pts[0], zero
    if len(pts) == 2:
        return zero, torch.linalg.cross(*pts)
    a, b, c = pts
    return (a @ b) * c + (b @ c) * a - (a @ c) * b, zero


def _reference(layer, r, v, mask):
    """The layer's output, tuple by tuple, from dot, cross and triple products."""
    rank, group = layer.rank, layer.group
    covariant = isinstance(layer, GACovariantAttention)
    tuples = list(itertools.product(range(r.shape[1]), repeat=rank))
    outs = []
    for b in range(r.shape[0]):
        feats, merged, vecs, axials = [], [], [], []
        for t in tuples:
            pts = [r[b, i] for i in t]
            q = [
                f
                for s, k in TERMS[rank][layer.invariant_mode]
                for f in _tuple_invariants(pts[s : s + k], group)
            ]
            feats.append(torch.stack(q))
            vals = [v[b, i] for i in t]
            if layer.merge_fun == "mean":
                merged.append(sum(vals) / rank)
            else:
                merged.append(sum(x @ w for x, w in zip(vals, layer.merge_weight, strict=True)))
            if covariant:
                terms = TERMS[rank][layer.covariant_mode]
                alpha = layer.covariant_weight if len(terms) > 1 else torch.ones(1, dtype=F64)
                parts = [_tuple_covariants(pts[s : s + k]) for s, k in terms]
                vecs.append(sum(a * p[0] for a, p in zip(alpha, parts, strict=True)))
                axials.append(sum(a * p[1] for a, p in zip(alpha, parts, strict=True)))
        u_q = layer.value_net(torch.stack(feats))
        m = torch.stack(merged)
        if layer.join_fun == "mean":
            u = (u_q + m) / 2
        else:
            u = u_q @ layer.join_weight[0] + m @ layer.join_weight[1]
        if covariant:
            if group == "spin":  # the dual of the bivector joins the vector
                items = embed_vector(torch.stack(vecs) + torch.stack(axials))
            else:
                items = embed_vector(torch.stack(vecs)) + embed_axial_vector(torch.stack(axials))
            items = layer.scale_net(u) * items
        else:
            items = u
        scores = layer.score_net(u)[:, 0]
        valid = torch.tensor([bool(mask[b, list(t)].all()) for t in tuples])
        scores = scores.masked_fill(~valid, -torch.inf)
        if layer.reduce:
            outs.append(scores.softmax(0) @ items)
            continue
        rows = []
        for i in range(r.shape[1]):
            sel = torch.tensor([t[0] == i for t in tuples])
            if mask[b, i]:
                rows.append(scores[sel].softmax(0) @ items[sel])
            else:
                rows.append(torch.zeros(items.shape[-1], dtype=F64))
        outs.append(torch.stack(rows))
    return torch.stack(outs)


@pytest.mark.parametrize("kind", ["invariant", "covariant"])
@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("group", ["spin", "pin"])
@pytest.mark.parametrize(("reduce", "mode", "merge", "join"), [
    (True, "single", "mean", "mean"),
    (False, "partial", "concat", "concat"),
    (False, "full", "mean", "concat"),
    (True, "full", "concat", "mean"),
])  # fmt: skip
def test_matches_direct_loop(kind, rank, group, reduce, mode, merge, join):
    r, v, mask = _cloud(batch=2, points=4, seed=2)
    mask[1, 3:] = False
    layer = _layer(kind, rank, reduce, mode, merge, join, group=group)
    with torch.no_grad():
        out = layer(embed_vector(r), v, mask=mask)
        ref = _reference(layer, r, v, mask)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)


# -- O(3): invariance, covariance, chirality -----------------------------------------------------------
def _act(alg, w, x):
    """Each cloud ``x[b]: (N, dim)`` moved by its own versor ``w[b]``."""
    return alg.sandwich(w[:, None, :], x)


@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("reduce", [True, False])
@pytest.mark.parametrize("mode", MODES)
def test_pin_is_o3_equivariant(rank, reduce, mode):
    r, v, mask = _cloud(batch=8, seed=3)
    x = embed_vector(r)
    w = random_versors(VGA3, 8, seed=rank)  # half of them odd (reflections)
    assert versor_parity(VGA3, w).tolist() == [0] * 4 + [1] * 4
    inv = _layer("invariant", rank, reduce, mode, group="pin")
    torch.testing.assert_close(inv(_act(VGA3, w, x), v, mask), inv(x, v, mask), atol=1e-9, rtol=1e-9)
    cov = _layer("covariant", rank, reduce, mode, group="pin")
    out = cov(x, v, mask)
    wo = w if reduce else w[:, None, :]
    torch.testing.assert_close(cov(_act(VGA3, w, x), v, mask), VGA3.sandwich(wo, out), atol=1e-9, rtol=1e-9)
    assert out.abs().amax() > 0.01  # the test is not vacuous (rank-2 'single': a pure bivector)
    assert VGA3.grade(out, [0, 3]).abs().amax() == 0


@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("mode", MODES)
def test_spin_rotations_and_chirality(rank, mode):
    """The package's semantics: rotation-invariant; rank 3 sees the handedness of each triple."""
    r, v, _ = _cloud(batch=8, seed=4)
    x = embed_vector(r)
    w = random_versors(VGA3, 8, seed=5)
    even, odd = slice(0, 4), slice(4, 8)
    inv = _layer("invariant", rank, False, mode, group="spin")
    cov = _layer("covariant", rank, False, mode, group="spin")
    moved_inv, base_inv = inv(_act(VGA3, w, x), v), inv(x, v)
    moved_cov, base_cov = cov(_act(VGA3, w, x), v), VGA3.sandwich(w[:, None, :], cov(x, v))
    torch.testing.assert_close(moved_inv[even], base_inv[even], atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(moved_cov[even], base_cov[even], atol=1e-9, rtol=1e-9)
    if rank == 3:  # the signed triple product flips under reflections
        assert (moved_inv[odd] - base_inv[odd]).abs().amax() > 1e-3
    else:  # rank 2 invariants have no pseudoscalar part: O(3)-invariant anyway
        torch.testing.assert_close(moved_inv[odd], base_inv[odd], atol=1e-9, rtol=1e-9)


def test_spin_rank2_single_output_is_a_pseudovector():
    """With only r_i x r_j as covariant, the output gains det(M) = -1 under reflections."""
    r, v, _ = _cloud(batch=8, seed=6)
    x = embed_vector(r)
    w = random_versors(VGA3, 8, seed=7)
    sign = 1.0 - 2.0 * versor_parity(VGA3, w).to(F64)
    cov = _layer("covariant", 2, True, "single", group="spin")
    expected = sign[:, None] * VGA3.sandwich(w, cov(x, v))
    torch.testing.assert_close(cov(_act(VGA3, w, x), v), expected, atol=1e-9, rtol=1e-9)
    # with group="pin" the same layer keeps the bivector: the axial vector of the spin output
    pin = _layer("covariant", 2, True, "single", group="pin")
    out_spin, out_pin = cov(x, v), pin(x, v)
    torch.testing.assert_close(
        extract_axial_vector(out_pin), extract_vector(out_spin), atol=1e-12, rtol=1e-12
    )
    assert VGA3.grade(out_pin, [0, 1, 3]).abs().amax() == 0


@pytest.mark.parametrize("alg", [Algebra(2, 0, 0), Algebra(4, 0, 0)], ids=["Cl(2,0,0)", "Cl(4,0,0)"])
def test_pin_equivariant_in_other_dimensions(alg):
    r, v, mask = _cloud(batch=6, points=4, seed=8, alg=alg)
    x = torch.zeros(*r.shape[:-1], alg.dim, dtype=F64)
    x[..., alg.grade_slice(1)] = r
    w = random_versors(alg, 6, seed=9)
    for rank, mode in ((2, "full"), (3, "partial")):
        score, value, scale = _nets(rank, mode, alg=alg)
        common = dict(rank=rank, invariant_mode=mode, group="pin")
        inv = GAInvariantAttention(alg, N_DIM, score, value, **common).to(F64)
        torch.testing.assert_close(inv(_act(alg, w, x), v, mask), inv(x, v, mask), atol=1e-9, rtol=1e-9)
        cov = GACovariantAttention(
            alg, N_DIM, score, value, scale, reduce=False, covariant_mode=mode, **common
        ).to(F64)
        out = cov(x, v, mask)
        assert out.abs().amax() > 0.01
        torch.testing.assert_close(
            cov(_act(alg, w, x), v, mask), alg.sandwich(w[:, None], out), atol=1e-9, rtol=1e-9
        )


# -- permutations and padding -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["invariant", "covariant"])
@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("reduce", [True, False])
def test_permutations(kind, rank, reduce):
    r, v, mask = _cloud(seed=10)
    x = embed_vector(r)
    layer = _layer(kind, rank, reduce, "full")
    perm = torch.randperm(r.shape[1], generator=_gen(11))
    assert perm.tolist() != list(range(r.shape[1]))
    out, out_p = layer(x, v, mask), layer(x[:, perm], v[:, perm], mask[:, perm])
    torch.testing.assert_close(out_p, out if reduce else out[:, perm], atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("kind", ["invariant", "covariant"])
@pytest.mark.parametrize("reduce", [True, False])
def test_padding_is_ignored(kind, reduce):
    """Padded points change nothing: a padded cloud gives the same result as the cloud alone."""
    r, v, mask = _cloud(seed=12)
    x = embed_vector(r)
    layer = _layer(kind, 3, reduce, "partial")
    out = layer(x, v, mask)
    alone = layer(x[1:2, :3], v[1:2, :3])
    torch.testing.assert_close(out[1:2, :3] if not reduce else out[1:2], alone, atol=1e-12, rtol=1e-12)
    x2, v2 = x.clone(), v.clone()
    x2[~mask], v2[~mask] = 1e3, -7.0
    torch.testing.assert_close(layer(x2, v2, mask), out, atol=1e-12, rtol=1e-12)
    empty = layer(x, v, torch.zeros_like(mask))
    assert torch.isfinite(empty).all() and empty.abs().amax() == 0


def test_float32_and_shapes():
    r, v, _ = _cloud(batch=2, points=6, seed=13)
    x, v32 = embed_vector(r).float(), v.float()
    layer = _layer("covariant", 3, False, "partial").float()
    out = layer(x[None], v32[None])  # extra leading batch axis
    assert out.shape == (1, 2, 6, VGA3.dim) and out.dtype == torch.float32
    ref = layer.double()(embed_vector(r), v)
    torch.testing.assert_close(out[0].double(), ref, atol=1e-5, rtol=1e-4)


# -- errors ----------------------------------------------------------------------------------------------
def _small():
    score, value, scale = _nets(2, "single")
    return GAInvariantAttention(VGA3, N_DIM, score, value).to(F64), score, value, scale


def test_bad_inputs_name_shapes():
    layer, *_ = _small()
    r, v, mask = _cloud(batch=2)
    x = embed_vector(r)
    with pytest.raises(ValueError, match=r"\(\.\.\., N, 8\).*got \(2, 5, 3\).*embed_vector"):
        layer(r, v)
    with pytest.raises(ValueError, match=r"expected values of shape \(2, 5, 4\).*got \(2, 5, 3\)"):
        layer(x, v[..., :3])
    with pytest.raises(ValueError, match=r"expected values of shape \(2, 5, 4\).*got \(2, 4, 4\)"):
        layer(x, v[:, :4])
    with pytest.raises(ValueError, match=r"bool mask of shape \(2, 5\).*got torch.bool of shape \(2, 4\)"):
        layer(x, v, mask[:, :4])
    with pytest.raises(ValueError, match=r"bool mask.*got torch.float64"):
        layer(x, v, mask.double())
    with pytest.raises(TypeError, match=r"positions must be a torch\.Tensor"):
        layer(r.numpy(), v)
    with pytest.raises(TypeError, match="floating-point"):
        layer(x.long(), v)


def test_bad_nets_name_shapes():
    _, score, value, _ = _small()
    x, v = embed_vector(_cloud(batch=2)[0]), _cloud(batch=2)[1]
    wide = GAInvariantAttention(VGA3, N_DIM, score, _mlp(2, 3, 0)).to(F64)
    with pytest.raises(ValueError, match=r"value_net must map to shape \(2, 5, 5, 4\).*got \(2, 5, 5, 3\)"):
        wide(x, v)
    two = GAInvariantAttention(VGA3, N_DIM, _mlp(N_DIM, 2, 0), value).to(F64)
    with pytest.raises(ValueError, match=r"score_net must map to shape \(2, 5, 5, 1\).*got \(2, 5, 5, 2\)"):
        two(x, v)
    cov = GACovariantAttention(VGA3, N_DIM, score, value, _mlp(N_DIM, 3, 0), invariant_mode="single").to(F64)
    with pytest.raises(ValueError, match=r"scale_net must map to shape \(2, 5, 5, 1\)"):
        cov(x, v)
    narrow = GAInvariantAttention(VGA3, N_DIM, score, _mlp(5, N_DIM, 0)).to(F64)
    with pytest.raises(RuntimeError):  # the net itself rejects 2 invariant features
        narrow(x, v)


def test_bad_construction():
    _, score, value, scale = _small()
    with pytest.raises(ValueError, match=r"Euclidean algebra Cl\(n, 0, 0\).*Algebra\(3, 0, 1\)"):
        GAInvariantAttention(PGA3, N_DIM, score, value)
    with pytest.raises(TypeError, match=r"alg must be a gatorch\.Algebra"):
        GAInvariantAttention("VGA3", N_DIM, score, value)
    with pytest.raises(ValueError, match=r"invariant_mode must be one of .*got 'partal'"):
        GAInvariantAttention(VGA3, N_DIM, score, value, invariant_mode="partal")
    with pytest.raises(ValueError, match=r"merge_fun must be one of .*got 'sum'"):
        GAInvariantAttention(VGA3, N_DIM, score, value, merge_fun="sum")
    with pytest.raises(ValueError, match=r"group must be one of \('spin', 'pin'\), got 'so3'"):
        GAInvariantAttention(VGA3, N_DIM, score, value, group="so3")
    with pytest.raises(ValueError, match="rank must be an int >= 1, got 0"):
        GAInvariantAttention(VGA3, N_DIM, score, value, rank=0)
    with pytest.raises(ValueError, match="n_dim must be an int >= 1"):
        GAInvariantAttention(VGA3, 0, score, value)
    with pytest.raises(TypeError, match="score_net must be a callable"):
        GAInvariantAttention(VGA3, N_DIM, None, value)
    with pytest.raises(ValueError, match=r"covariant_mode must be one of"):
        GACovariantAttention(VGA3, N_DIM, score, value, scale, covariant_mode="all")
    with pytest.raises(ValueError, match=r"no vector or 3-vector part in Algebra\(4, 0, 0\)"):
        GACovariantAttention(Algebra(4, 0, 0), N_DIM, score, value, scale, covariant_mode="single")


def test_invariant_dims():
    assert [ga_attention_invariant_dims(k, "single") for k in (1, 2, 3, 4)] == [1, 2, 2, 2]
    assert [ga_attention_invariant_dims(k, "partial") for k in (1, 2, 3, 4)] == [1, 3, 5, 7]
    assert [ga_attention_invariant_dims(k, "full") for k in (1, 2, 3, 4)] == [1, 4, 9, 16]
    assert ga_attention_invariant_dims(3, "partial", normalized_products=True) == 10
    assert ga_attention_invariant_dims(4, "single", alg=Algebra(4, 0, 0)) == 3  # grades 0, 2, 4
