r"""Conversion of cliffordlayers' (Microsoft, PyPI ``cliffordlayers``) layers to gatorch layers.

:func:`from_cliffordlayers` turns ``CliffordConv1d`` / ``CliffordConv2d`` / ``CliffordConv3d``
(``rotation=True`` included) and ``CliffordLinear`` into
:class:`~gatorch.layers.fields.conv.CliffordConv1d` / ``2d`` / ``3d`` and
:class:`~gatorch.layers.fields.conv.CliffordLinear` with the same weights. The converted module is
called like the original, on the same ``(batch, channels, *spatial, blades)`` tensor, and
returns the same values (to rounding).

* The signature ``g`` (the squares of the basis vectors, ``[-1, -1]`` for Cl(0, 2)) becomes
  ``Algebra.from_signature(g)``, basis vectors in cliffordlayers' order. Its blade order for
  2 and 3 basis vectors, ``1, e1, e2, e12`` and ``1, e1, e2, e3, e12, e13, e23, e123``, is
  gatorch's shortlex order (checked by the tests, product table against product table).
* Weights: cliffordlayers keeps one ``(out, in // groups, *kernel)`` tensor per blade and a
  bias ``(blades, out)``; gatorch one ``(out, in // groups, *kernel, dim)`` tensor and a bias
  ``(out, dim)``. ``rotation=True`` also copies ``scale_param`` and ``zero_kernel``.
* Not convertible (``ValueError``): ``groups > 1``. cliffordlayers orders the features
  blade-major (``blade * channels + channel``) and hands ``groups`` to the real convolution,
  so a group holds whole blades rather than whole channels and an output blade only sees some
  input blades: that operation is not a Clifford convolution. gatorch's ``groups`` splits
  channels (its tests compare it with cliffordlayers run group by group).
* A signature entry other than +1, -1 or 0 (cliffordlayers accepts any value) is a ``ValueError``.

**Extension hook** (spectral convolutions, norms): before raising ``TypeError`` for a class it
does not know, :func:`from_cliffordlayers` calls ``gatorch.interop.cliffordlayers_fourier.convert(module)``
if that module exists; it returns a gatorch module, or ``None`` for a class it does not know
either. See :data:`EXTENSION_MODULE`.

``cliffordlayers`` is optional (``pip install cliffordlayers``); it is imported only when
:func:`from_cliffordlayers` is called.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn

from gatorch.functional.algebra import Algebra
from gatorch.layers.fields.conv import CliffordConv1d, CliffordConv2d, CliffordConv3d, CliffordLinear

__all__ = ["EXTENSION_MODULE", "algebra_from_signature", "from_cliffordlayers"]

#: Module tried for classes this file does not convert: its ``convert(module)`` returns a
#: gatorch module or ``None``. Spectral convolutions and norms go there.
EXTENSION_MODULE = "gatorch.interop.cliffordlayers_fourier"


def _cliffordlayers() -> tuple[Any, Any]:
    """cliffordlayers' convolution and linear modules (the package is optional)."""
    try:
        conv = importlib.import_module("cliffordlayers.nn.modules.cliffordconv")
        linear = importlib.import_module("cliffordlayers.nn.modules.cliffordlinear")
    except ImportError as err:
        raise ImportError(
            "gatorch.interop.from_cliffordlayers needs the optional dependency cliffordlayers, "
            "which is not installed: pip install cliffordlayers"
        ) from err
    return conv, linear


def algebra_from_signature(g: Any) -> Algebra:
    """The gatorch algebra of a cliffordlayers signature ``g`` (list, tuple or tensor).

    Basis vectors keep cliffordlayers' order: ``Algebra.from_signature(g)``.
    ``ValueError`` unless every entry is +1, -1 or 0.
    """
    values = [float(v) for v in (g.tolist() if isinstance(g, torch.Tensor) else g)]
    if not values or any(v not in (1.0, -1.0, 0.0) for v in values):
        raise ValueError(
            f"from_cliffordlayers: signature entries must be +1, -1 or 0 (the squares of the basis "
            f"vectors), got g = {values}"
        )
    return Algebra.from_signature([int(v) for v in values])


def _extension(module: nn.Module) -> nn.Module | None:
    # -- EXTENSION HOOK: spectral convolutions and norms live in EXTENSION_MODULE ---------------------
    # Its ``convert(module)`` returns a gatorch module, or None for a class it does not know.
    try:
        ext = importlib.import_module(EXTENSION_MODULE)
    except ImportError as err:
        if getattr(err, "name", None) == EXTENSION_MODULE:  # the module is not written (yet)
            return None
        raise  # it exists but one of its own imports failed: say so
    result = ext.convert(module)
    if result is not None and not isinstance(result, nn.Module):
        raise TypeError(
            f"{EXTENSION_MODULE}.convert returned {type(result).__name__}, expected an nn.Module or None"
        )
    return result


def _copy_conv(src: Any, conv_mod: Any) -> nn.Module:
    name = type(src).__name__
    if src.groups != 1:
        raise ValueError(
            f"from_cliffordlayers: {name} with groups={src.groups} is not convertible: cliffordlayers "
            "splits its blade-major features into groups, so a group holds whole blades, not whole "
            "channels, and the result is not a Clifford convolution. Use groups=1, or gatorch's "
            "CliffordConv with groups (which splits channels)."
        )
    if src.padding_mode != "zeros":  # cliffordlayers raises for any other mode; kept for safety
        raise ValueError(f"from_cliffordlayers: padding_mode must be 'zeros', got {src.padding_mode!r}")
    alg = algebra_from_signature(src.g)
    n_blades = int(src.n_blades)
    if n_blades != alg.dim:
        raise ValueError(f"from_cliffordlayers: {name} has {n_blades} blades, its signature gives {alg.dim}")
    cls = {
        conv_mod.CliffordConv1d: CliffordConv1d,
        conv_mod.CliffordConv2d: CliffordConv2d,
        conv_mod.CliffordConv3d: CliffordConv3d,
    }[type(src)]
    padding = src.padding if isinstance(src.padding, str) else tuple(int(p) for p in src.padding)
    weights = list(src.weight)
    ref = weights[0]
    out = cls(
        alg,
        int(src.in_channels),
        int(src.out_channels),
        tuple(int(k) for k in src.kernel_size),
        stride=tuple(int(s) for s in src.stride),
        padding=padding,
        dilation=tuple(int(d) for d in src.dilation),
        groups=1,
        bias=src.bias is not None,
        padding_mode="zeros",
        rotation=bool(src.rotation),
    ).to(device=ref.device, dtype=ref.dtype)
    with torch.no_grad():
        out.weight.copy_(torch.stack([w.detach() for w in weights[:n_blades]], dim=-1))
        if src.bias is not None:
            assert out.bias is not None
            out.bias.copy_(src.bias.detach().T)  # (blades, out) -> (out, blades)
        if src.rotation:
            assert out.scale_param is not None and out.zero_kernel is not None
            out.scale_param.copy_(src.scale_param.detach())
            out.zero_kernel.copy_(src.zero_kernel.detach())
    return out


def _copy_linear(src: Any) -> nn.Module:
    alg = algebra_from_signature(src.g)
    if int(src.n_blades) != alg.dim:
        raise ValueError(
            f"from_cliffordlayers: CliffordLinear has {src.n_blades} blades, its signature gives {alg.dim}"
        )
    w = src.weight  # (blades, out, in)
    out = CliffordLinear(alg, int(src.in_channels), int(src.out_channels), bias=src.bias is not None)
    out = out.to(device=w.device, dtype=w.dtype)
    with torch.no_grad():
        out.weight.copy_(w.detach().permute(1, 2, 0))
        if src.bias is not None:
            assert out.bias is not None
            out.bias.copy_(src.bias.detach().T)
    return out


def from_cliffordlayers(module: nn.Module) -> nn.Module:
    """A gatorch module computing what a cliffordlayers module computes, with its weights.

    Parameters
    ----------
    module : nn.Module
        A cliffordlayers ``CliffordConv1d`` / ``CliffordConv2d`` / ``CliffordConv3d``
        (``rotation=True`` included, ``groups=1``) or ``CliffordLinear``; other classes go to
        the extension hook (module docstring).

    Returns
    -------
    nn.Module
        :class:`~gatorch.layers.fields.conv.CliffordConv1d` / ``2d`` / ``3d`` or
        :class:`~gatorch.layers.fields.conv.CliffordLinear` on ``Algebra.from_signature(module.g)``,
        on the module's device and dtype, in its training mode. It takes the same
        ``(batch, channels, *spatial, blades)`` input.

    Raises
    ------
    ImportError
        cliffordlayers is not installed.
    ValueError
        ``groups > 1``, or a signature entry other than +1, -1, 0.
    TypeError
        A class neither this function nor the extension hook converts.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"from_cliffordlayers: expected a cliffordlayers nn.Module, got {type(module).__name__}"
        )
    conv_mod, linear_mod = _cliffordlayers()
    out: nn.Module | None
    if type(module) in (conv_mod.CliffordConv1d, conv_mod.CliffordConv2d, conv_mod.CliffordConv3d):
        out = _copy_conv(module, conv_mod)
    elif type(module) is linear_mod.CliffordLinear:
        out = _copy_linear(module)
    else:
        out = _extension(module)
        if out is None:
            raise TypeError(
                f"from_cliffordlayers: cannot convert {type(module).__module__}.{type(module).__name__}; "
                "converted are cliffordlayers' CliffordConv1d, CliffordConv2d, CliffordConv3d and "
                f"CliffordLinear (and what {EXTENSION_MODULE}.convert accepts, where present)"
            )
    return out.train(module.training)
