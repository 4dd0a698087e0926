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

**Learning curves** (``--curve``): the reference net, seeded with ``--seed`` (its own
initialisation, not perturbed), and the preset with its weights copied in, trained side by side
on the same batches in the same order (``--batch`` hulls of the reference protocol per step, from
:func:`~examples.zoo.csmpn_hull_data.generate_hulls` with data seed 0; the order seeded by the
model seed) with the reference trainer's optimisation: Adam at ``--lr`` 1e-3 and the schedule of
its ``csmpn/hulls.py`` (``engineer``'s ``CosineAnnealingLR``: a half-cosine warm-up over
``steps // 64`` steps, the full rate, a half-cosine decay over the last ``steps // 4``) scaled to
``--steps``; the reference's optimiser is stepped by the reference's own scheduler class (read
from the checkout), gatorch's by :func:`lr_factor`, and the two rates are checked equal at every
step. Every ``--eval-every`` steps both nets are scored on the same ``--val-hulls`` validation
hulls (data seed 1); each seed's rows go to ``OUT/curve_seedS.csv`` (rewritten at every
checkpoint), all seeds' curves to ``OUT/curve.png``, and the script prints at how many
checkpoints gatorch's validation MSE is at most the reference's::

    python -m examples.zoo.compare_csmpn --csmpn-dir ../csmpn-checkout --curve \\
        --steps 8 --eval-every 2 --val-hulls 32 --seeds 0

Both nets compute the same function from the same weights, so the two curves start equal and
part only by float32 rounding, which training amplifies.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from examples.harness import float_option, int_option, pyplot, write_csv
from examples.reference import import_checkout, import_checkout_file
from examples.zoo.csmpn_hull_data import ALG, POINTS, SPACE, generate_hulls, hull_complex, vertex_multivectors
from gatorch.functional.steerable import steerable_paths
from gatorch.nets.csmpn import CSMPN
from gatorch.nets.simplicial import SimplicialComplex

Pair = tuple[str, nn.Parameter, nn.Parameter, Callable[[Tensor], Tensor]]


CSMPN_URL = "https://github.com/congliuUvA/Clifford-Group-Equivariant-Simplicial-Message-Passing-Networks"


def import_reference(csmpn_dir: Path) -> Any:
    """The reference's ``HullsCliffordSharedSimplicialMPNN``, with its trainer's metrics stubbed out."""
    return import_checkout(
        csmpn_dir, "csmpn.models.hulls_cssmpnn", "HullsCliffordSharedSimplicialMPNN", "CSMPN", CSMPN_URL
    )


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
    out, _ = net(vertex_multivectors(points), None, cx)
    pred = cx.pool(out[:, 0, 0])
    return (pred - target) ** 2


def build_pair(ref_class: Any, seed: int, perturb: bool) -> tuple[Any, CSMPN, list[Pair]]:
    """The reference net seeded with ``seed`` (its weights moved off their initial values when
    ``perturb``), the preset net with those weights copied in, and the gradient pairs."""
    torch.manual_seed(seed)
    ref = ref_class()
    if perturb:
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
    return ref, ours, pairs


# -- learning curves ---------------------------------------------------------------------------------
#: Data seeds of the curve mode (fixed: every model seed sees the same hulls).
TRAIN_SEED, VAL_SEED = 0, 1


def lr_factor(step: int, steps: int) -> float:
    """The reference trainer's schedule (``csmpn/hulls.py``: ``CosineAnnealingLR`` of its
    ``engineer`` package with ``warmup_steps = steps // 64``, ``decay_steps = steps // 4``) at
    ``step``: a half-cosine warm-up from 0, the full rate, a half-cosine decay to 0."""
    warmup, decay = int(steps / 64), int(steps / 4)
    if step < warmup:
        return 0.5 - 0.5 * math.cos(math.pi * step / warmup)
    if step < steps - decay:
        return 1.0
    return 0.5 + 0.5 * math.cos(math.pi * (step - (steps - decay)) / decay)


Chunk = tuple[Tensor, Tensor, SimplicialComplex]


def _val_mse(ref: Any, ours: CSMPN, val: list[Chunk]) -> tuple[float, float]:
    """Validation MSE of both nets over the fixed validation chunks."""
    ref.eval()
    ours.eval()
    total_ref = total_ours = 0.0
    count = 0
    with torch.no_grad():
        for points, target, cx in val:
            _, out = ref(reference_batch(points.clone(), target, cx, ours.relations), 0, "val")
            total_ref += float(out["loss"].sum())
            total_ours += float(gatorch_losses(ours, points, target, cx).sum())
            count += target.shape[0]
    ref.train()
    ours.train()
    return total_ref / count, total_ours / count


def run_curve(a: argparse.Namespace, ref_class: Any, seed: int, csv_path: Path) -> list[dict[str, Any]]:
    """Train the reference net and the preset net side by side from the same weights on the same
    batches; the rows of the learning curve (one per checkpoint, rewritten to ``csv_path`` at
    each)."""
    cosine = import_checkout_file(a.csmpn_dir, "engineer/schedulers/cosine.py", "CSMPN", CSMPN_URL)
    cache = a.cache_dir
    x_train, y_train = generate_hulls(
        a.train_hulls, TRAIN_SEED, cache / f"train_{a.train_hulls}_seed{TRAIN_SEED}.npz"
    )
    x_val, y_val = generate_hulls(a.val_hulls, VAL_SEED, cache / f"val_{a.val_hulls}_seed{VAL_SEED}.npz")
    val: list[Chunk] = []
    for i in range(0, a.val_hulls, a.batch):
        points = torch.from_numpy(x_val[i : i + a.batch])
        val.append((points, torch.from_numpy(y_val[i : i + a.batch]), hull_complex(points)))

    ref, ours, _ = build_pair(ref_class, seed, perturb=False)  # the reference's own initialisation
    opt_ref = torch.optim.Adam(ref.parameters(), lr=a.lr)
    opt_ours = torch.optim.Adam(ours.parameters(), lr=a.lr)
    sched_ref = cosine.CosineAnnealingLR(
        opt_ref, a.steps, warmup_steps=int(a.steps / 64), decay_steps=int(a.steps / 4)
    )
    sched_ours = torch.optim.lr_scheduler.LambdaLR(opt_ours, lambda t: lr_factor(t, a.steps))
    order = torch.Generator().manual_seed(seed)
    perm = torch.randperm(a.train_hulls, generator=order)
    position = 0

    rows: list[dict[str, Any]] = []
    sums = {"ref": 0.0, "ours": 0.0, "n": 0, "t_ref": 0.0, "t_ours": 0.0}

    def checkpoint(step: int) -> None:
        v_ref, v_ours = _val_mse(ref, ours, val)
        n = max(sums["n"], 1)
        rows.append(
            {
                "seed": seed,
                "step": step,
                "lr": float(opt_ours.param_groups[0]["lr"]),
                "train_mse_reference": sums["ref"] / n if sums["n"] else float("nan"),
                "train_mse_gatorch": sums["ours"] / n if sums["n"] else float("nan"),
                "val_mse_reference": v_ref,
                "val_mse_gatorch": v_ours,
                "s_per_step_reference": sums["t_ref"] / n,
                "s_per_step_gatorch": sums["t_ours"] / n,
            }
        )
        r = rows[-1]
        print(
            f"seed {seed} step {step:6d}  val MSE reference {v_ref:.5f}  gatorch {v_ours:.5f}"
            f"  ({r['s_per_step_reference']:.2f} s / {r['s_per_step_gatorch']:.2f} s per step)",
            flush=True,
        )
        write_csv(rows, csv_path)
        for key in sums:
            sums[key] = 0.0 if key != "n" else 0

    checkpoint(0)
    for step in range(a.steps):
        if position + a.batch > a.train_hulls:  # a new epoch: a new order, the same for both nets
            perm, position = torch.randperm(a.train_hulls, generator=order), 0
        idx = perm[position : position + a.batch].numpy()
        position += a.batch
        points, target = torch.from_numpy(x_train[idx]), torch.from_numpy(y_train[idx])
        cx = hull_complex(points)
        lrs = (float(opt_ref.param_groups[0]["lr"]), float(opt_ours.param_groups[0]["lr"]))
        if abs(lrs[0] - lrs[1]) > 1e-6 * lrs[1]:  # the reference's rate is a float32 tensor
            raise SystemExit(f"compare_csmpn: learning rates differ at step {step}: {lrs}")

        t0 = time.perf_counter()
        loss_ref, _ = ref(reference_batch(points.clone(), target, cx, ours.relations), step, "train")
        opt_ref.zero_grad(set_to_none=True)
        loss_ref.backward()
        opt_ref.step()
        t1 = time.perf_counter()
        loss_ours = gatorch_losses(ours, points, target, cx).mean()
        opt_ours.zero_grad(set_to_none=True)
        loss_ours.backward()
        opt_ours.step()
        t2 = time.perf_counter()
        if step + 1 < a.steps:  # the reference's decay divides by its length: not past the end
            sched_ref.step()
            sched_ours.step()
        sums["ref"] += float(loss_ref.detach())
        sums["ours"] += float(loss_ours.detach())
        sums["n"] += 1
        sums["t_ref"] += t1 - t0
        sums["t_ours"] += t2 - t1
        if (step + 1) % a.eval_every == 0 or step + 1 == a.steps:
            checkpoint(step + 1)
    return rows


def read_curves(out: Path) -> list[dict[str, float]]:
    """Every ``curve_seed*.csv`` row under ``out``, as numbers."""
    rows: list[dict[str, float]] = []
    for path in sorted(out.glob("curve_seed*.csv")):
        with path.open() as fh:
            rows += [{k: float(v) for k, v in r.items()} for r in csv.DictReader(fh)]
    return rows


def summarise(rows: list[dict[str, float]]) -> tuple[int, int, float]:
    """``(checkpoints where gatorch's val MSE <= the reference's, checkpoints, largest relative
    excess of gatorch's over the reference's)`` over every seed's rows."""
    better = sum(r["val_mse_gatorch"] <= r["val_mse_reference"] for r in rows)
    excess = max((r["val_mse_gatorch"] / r["val_mse_reference"] - 1.0 for r in rows), default=0.0)
    return better, len(rows), excess


def plot_curves(rows: list[dict[str, float]], path: Path) -> Path:
    """Validation MSE against the step, the reference's and gatorch's, one pair per seed."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    seeds = sorted({int(r["seed"]) for r in rows})
    for i, seed in enumerate(seeds):
        mine = [r for r in rows if int(r["seed"]) == seed]
        steps = [r["step"] for r in mine]
        label = f" (seed {seed})"
        ax.plot(
            steps,
            [r["val_mse_reference"] for r in mine],
            color=f"C{i}",
            lw=3,
            alpha=0.35,
            label="reference code" + label,
        )
        ax.plot(
            steps,
            [r["val_mse_gatorch"] for r in mine],
            color=f"C{i}",
            lw=1,
            ls="--",
            marker=".",
            label="gatorch csmpn-paper" + label,
        )
    ax.set_yscale("log")
    ax.set_xlabel("step (batch 16)")
    ax.set_ylabel("validation MSE")
    ax.set_title("CSMPN, convex hulls: reference code and gatorch preset")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def curve_main(a: argparse.Namespace, ref_class: Any) -> float:
    """The curve mode: train every seed, write its CSV, plot all of them, print the verdict."""
    a.out.mkdir(parents=True, exist_ok=True)
    torch.set_default_dtype(torch.float32)
    for seed in a.seeds:
        run_curve(a, ref_class, seed, a.out / f"curve_seed{seed}.csv")
    rows = read_curves(a.out)
    png = plot_curves(rows, a.out / "curve.png")
    better, total, excess = summarise(rows)
    print(f"curves: {a.out}/curve_seed*.csv, plot: {png}")
    print(
        f"gatorch's val MSE <= the reference's at {better} of {total} checkpoints; "
        f"largest relative excess {excess:.2e}"
    )
    return excess


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
    c = p.add_argument_group("learning curves (--curve)")
    c.add_argument(
        "--curve",
        action="store_true",
        help="train the reference net and the preset side by side from the same weights on the same "
        "batches (Adam, the reference's warm-up and cosine decay) and compare their val MSE",
    )
    c.add_argument("--steps", type=int_option(1), default=512, help="training steps (default 512)")
    c.add_argument("--eval-every", type=int_option(1), default=64, help="steps between checkpoints")
    c.add_argument("--batch", type=int_option(1), default=16, help="hulls per step (the reference: 16)")
    c.add_argument("--lr", type=float_option(0, low_open=True), default=1e-3, help="Adam's rate (1e-3)")
    c.add_argument("--train-hulls", type=int_option(1), default=16384, help="training hulls (16384)")
    c.add_argument("--val-hulls", type=int_option(1), default=256, help="validation hulls (256)")
    c.add_argument("--seeds", type=int_option(0), nargs="+", default=None, help="model seeds (--seed)")
    c.add_argument("--cache-dir", type=Path, default=Path("data/csmpn_hulls"), help="hull cache")
    c.add_argument("--out", type=Path, default=Path("runs/compare_csmpn"), help="CSVs and curve.png")
    a = p.parse_args(argv)
    ref_class = import_reference(a.csmpn_dir)
    if a.curve:
        if a.seeds is None:
            a.seeds = [a.seed]
        return curve_main(a, ref_class)
    dtype = getattr(torch, a.dtype)
    tol = a.tol if a.tol is not None else (1e-6 if dtype == torch.float32 else 1e-10)
    torch.set_default_dtype(dtype)  # the reference builds its embedding buffer in the default dtype

    ref, ours, pairs = build_pair(ref_class, a.seed, perturb=True)

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
