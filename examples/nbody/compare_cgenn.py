"""Check the ``cgenn-paper`` model against CGENN's own n-body code, on the same random weights.

CGENN (Ruhe et al. 2023) is research code, not a package, so this check is a script rather
than a test: clone https://github.com/DavidRuhe/clifford-group-equivariant-neural-networks and
point ``--cgenn-dir`` at it. The script builds CGENN's ``NBodyCGGNN`` and the ``cgenn-paper``
preset's model (:class:`~examples.nbody.models.NBodyCGENN` on :class:`gatorch.nets.CliffordGNN`),
perturbs CGENN's initial weights (so that no weight sits at a special value), copies them into
the gatorch model, and compares the predictions and the gradients of every weight on random
systems::

    python -m examples.nbody.compare_cgenn --cgenn-dir ../clifford-group-equivariant-neural-networks

The weight map: CGENN's ``MVLinear`` (one weight per grade, or one shared weight for the
embedding) is ``EquiLinear`` with the Pin basis of Cl(3, 0) (the grade projections); its
extra edge-attribute channel, which carries only a scalar, is ``EquiLinear``'s scalar input;
``MVSiLU`` and ``MVLayerNorm`` map one to one; the steerable product's path weights are
reordered from CGENN's (left, out, right) grade triples to gatorch's (left, right, out).
CGENN's code runs in float32, so the agreement is to float32 precision.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from examples.nbody.models import build_model
from examples.nbody.train import PRESETS
from examples.reference import import_checkout
from gatorch.functional.steerable import steerable_paths

CGENN_URL = "https://github.com/DavidRuhe/clifford-group-equivariant-neural-networks"


def _import_cgenn(cgenn_dir: Path) -> Any:
    """CGENN's ``NBodyCGGNN`` class, with its training framework's metrics stubbed out."""
    return import_checkout(cgenn_dir, "models.nbody_cggnn", "NBodyCGGNN", "CGENN", CGENN_URL)


def _copy_linear(dst: nn.Module, src: nn.Module, extra_scalar: bool = False) -> None:
    w = src.weight.data
    if w.ndim == 2:  # CGENN's subspaces=False: one weight for every grade
        w = w[:, :, None].expand(-1, -1, dst.weight.shape[-1])
    if extra_scalar:  # the last input channel is the edge attribute on the scalar blade
        dst.s_to_mv.data.copy_(w[:, -1:, :1])
        w = w[:, :-1]
    dst.weight.data.copy_(w)
    if src.bias is not None:
        dst.bias.data.copy_(src.bias.data[0])


Pair = tuple[str, nn.Parameter, nn.Parameter, Callable[[torch.Tensor], torch.Tensor]]


def copy_weights(ref: nn.Module, ours: nn.Module) -> list[Pair]:
    """Copy CGENN's weights into the gatorch model.

    Returns ``(name, our parameter, CGENN's parameter, layout)`` for comparing gradients:
    ``layout(cgenn_param.grad)`` lines up with ``our_param.grad``.
    """
    net = ours.net
    ref_paths = [tuple(int(v) for v in p) for p in torch.nonzero(ref.algebra.geometric_product_paths)]
    perm = torch.tensor([ref_paths.index((lg, og, rg)) for (lg, rg, og) in steerable_paths(net.alg)])
    pairs = []
    _copy_linear(net.embed, ref.embedding)
    for i, (rl, ol) in enumerate(zip(ref.layers, net.layers, strict=True)):
        for kind, rmlp, omlp in (
            ("message", rl.edge_model, ol.message),
            ("update", rl.node_model, ol.update),
        ):
            for b, block in enumerate(rmlp.layers):
                rlin, rsilu, rsgp, rln = block
                olin, osilu, osgp, oln = omlp.blocks[4 * b : 4 * b + 4]
                _copy_linear(olin, rlin, extra_scalar=kind == "message" and b == 0)
                osilu.a.data.copy_(rsilu.a.data[0])
                osilu.b.data.copy_(rsilu.b.data[0])
                osgp.normalization.data.copy_(rsgp.normalization.a.data)
                _copy_linear(osgp.right, rsgp.linear_right)
                _copy_linear(osgp.left, rsgp.linear_left)
                osgp.weight.data.copy_(rsgp.weight.data[:, perm])
                oln.weight.data.copy_(rln.a.data[0][:, None])
                tag = f"layer {i} {kind} block {b}"
                c_in = olin.weight.shape[1]
                pairs += [
                    (f"{tag} linear", olin.weight, rlin.weight, lambda t, c=c_in: t[:, :c]),
                    (f"{tag} MVSiLU", osilu.a, rsilu.a, lambda t: t[0]),
                    (f"{tag} product weights", osgp.weight, rsgp.weight, lambda t: t[:, perm]),
                    (f"{tag} product normalisation", osgp.normalization, rsgp.normalization.a, lambda t: t),
                    (f"{tag} product right", osgp.right.weight, rsgp.linear_right.weight, lambda t: t),
                    (f"{tag} product left", osgp.left.weight, rsgp.linear_left.weight, lambda t: t),
                    (f"{tag} layer norm", oln.weight, rln.a, lambda t: t[0][:, None]),
                ]
    _copy_linear(net.readout, ref.projection[0])  # type: ignore[index]
    return pairs


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(
        prog="python -m examples.nbody.compare_cgenn", description=__doc__.split("\n")[0]
    )
    p.add_argument("--cgenn-dir", type=Path, required=True, help="a checkout of CGENN's repository")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    cgenn_class = _import_cgenn(a.cgenn_dir)

    torch.manual_seed(a.seed)
    ref = cgenn_class()
    with torch.no_grad():  # move every weight off its initial value (zeros, ones)
        for param in ref.parameters():
            param.add_(0.1 * torch.randn_like(param))
    kwargs = {**PRESETS["cgenn-paper"]["models"]["cgenn"], "zero_readout": False}
    ours = build_model("cgenn", **kwargs)
    pairs = copy_weights(ref, ours)

    batch, n = 8, 5
    g = torch.Generator().manual_seed(a.seed + 1)
    loc, vel = torch.randn(batch, n, 3, generator=g), torch.randn(batch, n, 3, generator=g)
    charges = torch.randint(0, 2, (batch, n), generator=g).float() * 2 - 1
    target = loc + 0.3 * torch.randn(batch, n, 3, generator=g)
    rows = [i for i in range(n) for j in range(n) if i != j]
    cols = [j for i in range(n) for j in range(n) if i != j]
    edges = torch.tensor([rows, cols])[None].expand(batch, -1, -1)
    edge_attr = (charges[:, rows] * charges[:, cols])[..., None]

    loss_ref, out = ref((loc, vel, edge_attr, charges[..., None], target, edges), 0)
    pred = ours(loc, vel, charges)
    loss_ours_nodes = ((pred - target) ** 2).mean(-1).reshape(-1)
    loss_ours = loss_ours_nodes.mean()
    loss_ref.backward()
    loss_ours.backward()
    ref_nodes = out["loss"].detach()
    out_err = float((ref_nodes - loss_ours_nodes.detach()).abs().max() / ref_nodes.abs().max())
    counts = [sum(q.numel() for q in m.parameters()) for m in (ref, ours)]
    print(f"parameters: CGENN {counts[0]}, gatorch {counts[1]}")
    print(f"per-particle loss, max relative difference: {out_err:.2e}")
    worst, worst_name = 0.0, ""
    for name, mine, theirs, layout in pairs:
        assert mine.grad is not None and theirs.grad is not None, name
        expected = layout(theirs.grad)
        err = float((mine.grad - expected).abs().max() / (expected.abs().max() + 1e-30))
        if err >= worst:
            worst, worst_name = err, name
    print(
        f"gradients of {len(pairs)} weight tensors, worst max relative difference: {worst:.2e} ({worst_name})"
    )
    return max(worst, out_err)


if __name__ == "__main__":
    main()
