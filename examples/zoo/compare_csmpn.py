"""Check the ``csmpn-paper`` preset against CSMPN's own hull network, on the same random weights.

CSMPN (Liu, Ruhe, Eijkelboom and Forré, ICLR 2024) is research code, not a package, so this
check is a script rather than a test: clone
https://github.com/congliuUvA/Clifford-Group-Equivariant-Simplicial-Message-Passing-Networks,
``pip install torch-geometric`` (the model file needs ``torch_geometric.nn``: ``MessagePassing``
and ``global_mean_pool``; its data pipeline, which needs gudhi, networkx and torch_scatter, is
not used) and point ``--csmpn-dir`` at the checkout::

    python -m examples.zoo.compare_csmpn --csmpn-dir ../csmpn-checkout

The script builds the reference's ``HullsCliffordSharedSimplicialMPNN`` and
``CSMPN.preset("csmpn-paper", Algebra(5, 0, 0))``, perturbs the reference's initial weights
(so that no weight sits at a special value), copies them into the gatorch net, and compares
the per-hull losses and the gradients of every weight on random hulls of 8 points in R^5 (the
reference protocol), lifted to the reference's hull complex
(:func:`examples.zoo.csmpn_hull_data.hull_complex`).

Both nets get the same cell graph: the reference reads it from the batch (``edge_index``), and
the script passes gatorch's boundary, coboundary and upper relations of that complex. The
reference's data pipeline adds vertex-vertex edges that this graph has not: its
``generate_adjacencies_single`` "fully connects" the vertices, adding ``i -> j`` for every pair
``i != j`` except ``i < j`` with an edge ``{i, j}`` (so the pairs without a hull edge in both
directions, and a duplicate of ``i -> j`` for ``i > j`` with an edge). That is a difference of
the data, not of the network, and is not reproduced here.

The weight map: the reference's ``MVLinear`` (one weight per grade, or one for all grades in the
vertex embedding, whose input has only a vector part) is ``EquiLinear`` with the Pin basis of
Cl(5, 0) (the grade projections); its extra input channels that carry only a scalar (the one-hot
simplex types) are ``EquiLinear``'s scalar inputs; ``MVSiLU`` and ``MVLayerNorm`` map one to
one; the steerable product's path weights are reordered from (left, out, right) grade triples to
gatorch's (left, right, out). The reference runs in float32: the agreement is to float32
precision (``--dtype float64`` runs both nets in float64, where it is to 1e-10 and better).
"""

from __future__ import annotations

import argparse
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from examples.zoo.csmpn_hull_data import POINTS, SPACE, hull_complex
from gatorch import Algebra
from gatorch.functional.steerable import steerable_paths
from gatorch.nets.csmpn import CSMPN
from gatorch.nets.simplicial import SimplicialComplex

ALG = Algebra(5, 0, 0)
Pair = tuple[str, nn.Parameter, nn.Parameter, Callable[[Tensor], Tensor]]


def import_reference(csmpn_dir: Path) -> Any:
    """The reference's ``HullsCliffordSharedSimplicialMPNN``, with its trainer's metrics stubbed out."""
    if not (csmpn_dir / "csmpn" / "models" / "hulls_cssmpnn.py").exists():
        raise FileNotFoundError(f"{csmpn_dir} holds no csmpn/models/hulls_cssmpnn.py: not a CSMPN checkout")
    sys.path.insert(0, str(csmpn_dir))

    class _Metrics(dict):  # the model only builds these; the forward pass never touches them
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__()

    stub = types.ModuleType("engineer.metrics.metrics")
    stub.Loss = _Metrics  # type: ignore[attr-defined]
    stub.MetricCollection = _Metrics  # type: ignore[attr-defined]
    for name in ("engineer", "engineer.metrics"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["engineer.metrics.metrics"] = stub
    from csmpn.models.hulls_cssmpnn import HullsCliffordSharedSimplicialMPNN  # type: ignore[import-not-found]

    return HullsCliffordSharedSimplicialMPNN


def _copy_linear(tag: str, dst: Any, src: Any, extra_scalars: int = 0) -> list[Pair]:
    """Copy a reference ``MVLinear`` into an EquiLinear; its last ``extra_scalars`` input channels
    (scalar-only) go to ``s_to_mv``. Returns the gradient pairs."""
    w = src.weight.data
    shared = w.ndim == 2  # subspaces=False: one weight for every grade
    if shared:
        w = w[:, :, None].expand(-1, -1, dst.weight.shape[-1])
    c = w.shape[1] - extra_scalars
    pairs: list[Pair] = []
    if extra_scalars:
        dst.s_to_mv.data.copy_(w[:, c:, 0].reshape(dst.s_to_mv.shape))
        shape = dst.s_to_mv.shape
        pairs.append((f"{tag} scalar inputs", dst.s_to_mv, src.weight, lambda t: t[:, c:, 0].reshape(shape)))
    dst.weight.data.copy_(w[:, :c])
    if shared:  # our per-grade weights against the shared one: gradients add up over the grades
        pairs.append((f"{tag} weight", dst.weight, src.weight, lambda t: t[:, :, None]))
    else:
        pairs.append((f"{tag} weight", dst.weight, src.weight, lambda t: t[:, :c]))
    if src.bias is not None:
        dst.bias.data.copy_(src.bias.data[0])
        pairs.append((f"{tag} bias", dst.bias, src.bias, lambda t: t[0]))
    return pairs


def _copy_mlp(tag: str, ours: Any, ref: Any, perm: Tensor, extra_scalars: int = 0) -> list[Pair]:
    """A reference ``CEMLP`` into a ``"cgenn"``-style CliffordMLP."""
    pairs: list[Pair] = []
    assert ours.blocks is not None and len(ours.blocks) == 4 * len(ref.layers), tag
    for b, block in enumerate(ref.layers):
        rlin, rsilu, rsgp, rln = block
        olin, osilu, osgp, oln = ours.blocks[4 * b : 4 * b + 4]
        t = f"{tag} block {b}"
        pairs += _copy_linear(f"{t} linear", olin, rlin, extra_scalars if b == 0 else 0)
        osilu.a.data.copy_(rsilu.a.data[0])
        osilu.b.data.copy_(rsilu.b.data[0])
        osgp.normalization.data.copy_(rsgp.normalization.a.data)
        pairs += _copy_linear(f"{t} product right", osgp.right, rsgp.linear_right)
        pairs += _copy_linear(f"{t} product left", osgp.left, rsgp.linear_left)
        osgp.weight.data.copy_(rsgp.weight.data[:, perm])
        oln.weight.data.copy_(rln.a.data[0][:, None])
        pairs += [
            (f"{t} MVSiLU a", osilu.a, rsilu.a, lambda g: g[0]),
            (f"{t} MVSiLU b", osilu.b, rsilu.b, lambda g: g[0]),
            (f"{t} product weights", osgp.weight, rsgp.weight, lambda g: g[:, perm]),
            (f"{t} product normalisation", osgp.normalization, rsgp.normalization.a, lambda g: g),
            (f"{t} layer norm", oln.weight, rln.a, lambda g: g[0][:, None]),
        ]
    return pairs


def copy_weights(ref: Any, ours: Any) -> list[Pair]:
    """Copy the reference's weights into the preset net; returns ``(name, ours, theirs, layout)``
    gradient pairs (``layout(theirs.grad)`` lines up with ``ours.grad``)."""
    ref_paths = [tuple(int(v) for v in p) for p in torch.nonzero(ref.algebra.geometric_product_paths)]
    perm = torch.tensor([ref_paths.index((lg, og, rg)) for (lg, rg, og) in steerable_paths(ours.alg)])
    types_ = ours.max_dim + 1
    pairs = _copy_linear("embedding 0", ours.embed[0].layers[0], ref.cl_feature_embedding[0])
    for k in range(1, types_):
        pairs += _copy_mlp(f"embedding {k}", ours.embed[k].layers[0], ref.cl_feature_embedding[k], perm)
    for i, (rl, ol) in enumerate(zip(ref.layers, ours.layers, strict=True)):
        pairs += _copy_mlp(f"layer {i} message", ol.message, rl.edge_model, perm, 2 * types_)
        pairs += _copy_mlp(f"layer {i} update", ol.update, rl.node_model, perm, types_)
    pairs += _copy_linear("readout", ours.readout, ref.projection[0])
    return pairs


def reference_batch(points: Tensor, target: Tensor, cx: SimplicialComplex, relations: tuple[str, ...]) -> Any:
    """The reference's batch (the fields its forward reads) for the cells of ``cx``, in gatorch's
    cell order (all vertices, then all edges, then all triangles)."""
    num_cells, nv = cx.num_cells, cx.num_vertices
    inp = points.new_zeros(num_cells, SPACE)
    inp[:nv] = points.reshape(nv, SPACE)
    x_ind = points.new_zeros(num_cells, 3)
    for k, (offset, s) in enumerate(zip(cx.offsets, cx.simplices, strict=False)):
        x_ind[offset : offset + s.shape[0], : k + 1] = s.to(points.dtype)
    edges = torch.cat([cx.relation(name) for name in relations], dim=1)
    b = cx.num_graphs
    return types.SimpleNamespace(
        ptr=torch.zeros(b + 1, dtype=torch.int64),  # only its length is read
        input=inp,
        node_types=cx.cell_dim,
        x_ind=x_ind,
        x_ind_ptr=torch.zeros(b + 1, dtype=torch.int64),  # x_ind holds global vertex indices
        x_ind_batch=cx.cell_batch,
        batch=cx.cell_batch,
        edge_index=edges,
        target=target,
    )


def gatorch_losses(net: CSMPN, points: Tensor, target: Tensor, cx: SimplicialComplex) -> Tensor:
    """Per-hull squared errors of the preset net: centred points as vectors, the scalar blade of
    the output mean-pooled over all cells (the reference's readout)."""
    centred = points - points.mean(dim=1, keepdim=True)
    mv = centred.new_zeros(cx.num_vertices, 1, ALG.dim)
    mv[:, 0, ALG.grade_slice(1)] = centred.reshape(-1, SPACE)
    out, _ = net(mv, None, cx)
    pred = cx.pool(out[:, 0, 0])
    return (pred - target) ** 2


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(
        prog="python -m examples.zoo.compare_csmpn", description=__doc__.split("\n")[0]
    )
    p.add_argument("--csmpn-dir", type=Path, required=True, help="a checkout of CSMPN's repository")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hulls", type=int, default=4, help="random hulls in the batch")
    p.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float32",
        help="dtype of both nets (the reference's code runs in float32; float64 shows the map exact)",
    )
    p.add_argument(
        "--tol",
        type=float,
        default=None,
        help="largest relative difference that passes (1e-6, float64: 1e-10)",
    )
    a = p.parse_args(argv)
    ref_class = import_reference(a.csmpn_dir)
    dtype = getattr(torch, a.dtype)
    tol = a.tol if a.tol is not None else (1e-6 if dtype == torch.float32 else 1e-10)
    torch.set_default_dtype(dtype)  # the reference builds its embedding buffer in the default dtype

    torch.manual_seed(a.seed)
    ref = ref_class()
    with torch.no_grad():  # move every weight off its initial value (zeros, ones)
        for param in ref.parameters():
            param.add_(0.1 * torch.randn_like(param))
    ours = CSMPN.preset("csmpn-paper", ALG, in_mv_channels=1, out_mv_channels=1)
    pairs = copy_weights(ref, ours)
    covered = {id(theirs) for _, _, theirs, _ in pairs}
    missed = [
        n
        for n, q in ref.named_parameters()
        if id(q) not in covered and n != "readout.weight" and n != "readout.bias"
    ]
    if missed:  # the reference's Linear(3, 1) "readout" is built but never used
        raise SystemExit(f"compare_csmpn: reference weights not mapped: {missed}")

    rng = np.random.default_rng(a.seed + 1)
    points = torch.from_numpy(rng.standard_normal((a.hulls, POINTS, SPACE))).to(dtype)
    target = torch.rand(a.hulls, generator=torch.Generator().manual_seed(a.seed + 2))
    cx = hull_complex(points)
    print(f"hull complexes: {cx.counts} simplices of dimension 0, 1, 2 over {a.hulls} hulls")

    batch = reference_batch(points.clone(), target, cx, ours.relations)
    loss_ref, out = ref(batch, 0, "train")
    mine = gatorch_losses(ours, points, target, cx)
    loss_ref.backward()
    mine.mean().backward()
    ref_losses = out["loss"].detach()
    out_err = float((ref_losses - mine.detach()).abs().max() / ref_losses.abs().max())
    counts = [sum(q.numel() for q in m.parameters()) for m in (ref, ours)]
    print(
        f"parameters: reference {counts[0]} (its unused readout Linear(3, 1) included), gatorch {counts[1]}"
    )
    print(f"per-hull loss, max relative difference: {out_err:.2e}")
    worst, worst_name = 0.0, ""
    for name, mine_p, theirs, layout in pairs:
        assert mine_p.grad is not None and theirs.grad is not None, name
        expected = layout(theirs.grad)
        got = mine_p.grad
        if got.shape != expected.shape:  # the shared vertex-embedding weight: sum over the grades
            got = got.sum(-1, keepdim=True)
        err = float((got - expected).abs().max() / (expected.abs().max() + 1e-30))
        if err >= worst:
            worst, worst_name = err, name
    print(
        f"gradients of {len(pairs)} weight tensors, worst max relative difference: {worst:.2e} ({worst_name})"
    )
    err = max(worst, out_err)
    verdict = "PASS" if err <= tol else "FAIL"
    print(f"{verdict}: largest relative difference {err:.2e} ({a.dtype}, tolerance {tol:.0e})")
    if err > tol:
        raise SystemExit(1)
    return err


if __name__ == "__main__":
    main()
