"""Convert cliffordlayers' spectral layers and norms to gatorch modules with the same weights.

:func:`convert` handles ``CliffordSpectralConv2d/3d``, ``CliffordBatchNorm1d/2d/3d`` and
``CliffordGroupNorm1d/2d/3d`` and returns None for any other module. cliffordlayers is
imported only when a module of its package is passed.

Mapping (cliffordlayers -> gatorch):

* signature ``g`` -> ``Algebra.from_signature(g)`` (same basis order; blades in the same
  shortlex order for 1-3 basis vectors);
* ``CliffordSpectralConv{2,3}d.weights`` ``(dim, out, in, *2m)`` -> ``weight``
  ``(out, in, *2m, dim)`` of the ``spectrum="dual"`` layer (cliffordlayers' kernel is the
  matrix of right multiplication ``x -> x w`` for every signature); ``multiply=False`` -> the
  weight scalar 1 on every mode from input channel ``c`` to output channel ``c``; the 3-D
  layer sets ``cliffordlayers_3d_slicing=True``;
* ``CliffordBatchNorm`` ``weight (dim, dim, C)``, ``running_mean (dim, C)``,
  ``running_cov (dim, dim, C)`` -> ``(C, dim, dim)``, ``(C, dim)``, ``(C, dim, dim)`` (channel axis
  first); ``bias (dim, C)`` -> ``bias.reshape(C, dim)``, not a transpose: cliffordlayers adds
  ``bias.reshape(1, C, ..., dim)``, i.e. it reads its ``(dim, C)`` tensor in memory order as
  ``(C, dim)``;
* ``CliffordGroupNorm(g, num_groups=G, channels=C)`` normalises contiguous blocks of ``G``
  channels (its ``num_groups`` is the size of a group) -> gatorch's
  ``CliffordGroupNorm(alg, num_groups=C // G, channels=C)``; its weights are per group. Its
  bias is repeated over the batch and then read as above, so for a batch of more than one
  sample cliffordlayers adds a bias that depends on the sample index (``bias.repeat(1, B)``
  reshaped to ``(B * C // G, dim)``); the converted module reproduces that with
  ``cliffordlayers_bias=True``. Its running covariance update averages over a blade axis instead of the batch
  axis (``view(I, I, B, C).mean(1)``; it raises unless B is 1 or dim); gatorch averages
  over the batch.
* Both norms get ``whitening="cliffordlayers"``: cliffordlayers multiplies by ``L^{-T}``
  (``L L^T = cov + eps I``), which does not whiten; gatorch's default ``L^{-1}`` does.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn

from gatorch.functional.algebra import Algebra

__all__ = ["algebra_from_g", "convert"]


def algebra_from_g(g: object) -> Algebra:
    """The gatorch algebra of a cliffordlayers signature.

    Parameters
    ----------
    g : tensor, list or tuple
        Squares of the basis vectors; entries must be +1, -1 or 0.

    Returns
    -------
    Algebra
    """
    values = [float(v) for v in torch.as_tensor(g).reshape(-1).tolist()]
    if any(v not in (-1.0, 0.0, 1.0) for v in values):
        raise ValueError(f"cliffordlayers signature entries must be +1, -1 or 0, got {values}")
    return Algebra.from_signature([int(v) for v in values])


def convert(module: Any) -> nn.Module | None:
    """The gatorch module computing what a cliffordlayers spectral layer or norm computes.

    Parameters
    ----------
    module : nn.Module
        Any module (typed ``Any``: cliffordlayers ships no type information).

    Returns
    -------
    nn.Module or None
        A gatorch ``CliffordSpectralConv2d/3d`` (``spectrum="dual"``), ``CliffordBatchNorm1d/2d/3d``
        or ``CliffordGroupNorm1d/2d/3d`` with copies of the parameters and buffers (same dtype,
        device and training mode), or None when ``module`` is not one of those classes.
    """
    if not type(module).__module__.startswith("cliffordlayers"):
        return None
    cl_bn = importlib.import_module("cliffordlayers.nn.modules.batchnorm")
    cl_ft = importlib.import_module("cliffordlayers.nn.modules.cliffordfourier")
    cl_gn = importlib.import_module("cliffordlayers.nn.modules.groupnorm")

    from gatorch.layers.fields import norm as field_norm
    from gatorch.layers.fields.fourier import CliffordSpectralConv2d, CliffordSpectralConv3d

    ref = next(iter(list(module.parameters()) + list(module.buffers())), None)
    device = ref.device if ref is not None else None
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else None
    out: Any
    if isinstance(module, (cl_ft.CliffordSpectralConv2d, cl_ft.CliffordSpectralConv3d)):
        alg = algebra_from_g(module.g)
        multiply = bool(module.multiply)
        if not multiply and module.in_channels != module.out_channels:
            raise ValueError(
                "convert: a cliffordlayers spectral layer with multiply=False needs "
                f"in_channels == out_channels, got {module.in_channels} and {module.out_channels}"
            )
        # multiply=False: no weights, the gatorch layer only keeps the modes (any dtype)
        if isinstance(module, cl_ft.CliffordSpectralConv2d):
            spec: Any = CliffordSpectralConv2d(
                alg,
                module.in_channels,
                module.out_channels,
                module.modes1,
                module.modes2,
                spectrum="dual",
                multiply=multiply,
            )
        else:
            spec = CliffordSpectralConv3d(
                alg,
                module.in_channels,
                module.out_channels,
                module.modes1,
                module.modes2,
                module.modes3,
                spectrum="dual",
                cliffordlayers_3d_slicing=True,
                multiply=multiply,
            )
        if multiply:
            with torch.no_grad():
                src = module.weights
                spec.weight = nn.Parameter(
                    src.detach().movedim(0, -1).clone(), requires_grad=src.requires_grad
                )
        out = spec
    elif isinstance(module, cl_gn._CliffordGroupNorm):
        alg = algebra_from_g(module.g)
        group_size = module.num_groups
        channels = module.channels * group_size
        gn_cls = {
            cl_gn.CliffordGroupNorm1d: field_norm.CliffordGroupNorm1d,
            cl_gn.CliffordGroupNorm2d: field_norm.CliffordGroupNorm2d,
            cl_gn.CliffordGroupNorm3d: field_norm.CliffordGroupNorm3d,
        }[type(module)]
        out = gn_cls(
            alg,
            channels // group_size,
            channels,
            eps=module.eps,
            momentum=module.momentum,
            affine=module.affine,
            track_running_stats=module.track_running_stats,
            whitening="cliffordlayers",
            cliffordlayers_bias=True,
        ).to(device=device, dtype=dtype)
        _copy_norm_state(module, out)
    elif isinstance(module, cl_bn._CliffordBatchNorm):
        alg = algebra_from_g(module.g)
        bn_cls = {
            cl_bn.CliffordBatchNorm1d: field_norm.CliffordBatchNorm1d,
            cl_bn.CliffordBatchNorm2d: field_norm.CliffordBatchNorm2d,
            cl_bn.CliffordBatchNorm3d: field_norm.CliffordBatchNorm3d,
        }[type(module)]
        out = bn_cls(
            alg,
            module.channels,
            eps=module.eps,
            momentum=module.momentum,
            affine=module.affine,
            track_running_stats=module.track_running_stats,
            whitening="cliffordlayers",
        ).to(device=device, dtype=dtype)
        _copy_norm_state(module, out)
    else:
        return None
    out = out.to(device=device, dtype=dtype)
    out.train(module.training)
    return out


def _copy_norm_state(src: Any, dst: Any) -> None:
    """Copy a cliffordlayers norm's parameters and buffers, moving its channel axis first."""
    with torch.no_grad():
        if src.affine:
            dst.weight.copy_(src.weight.permute(2, 0, 1))
            # cliffordlayers adds ``bias.reshape(..., C, I)``: its (I, C) tensor read in memory order
            dst.bias.copy_(src.bias.reshape(dst.bias.shape))
        if src.track_running_stats:
            dst.running_mean.copy_(src.running_mean.permute(1, 0))
            dst.running_cov.copy_(src.running_cov.permute(2, 0, 1))
            dst.num_batches_tracked.copy_(src.num_batches_tracked)
