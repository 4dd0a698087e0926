r"""Conversion of cliffordlayers' (Microsoft, PyPI ``cliffordlayers``) layers to gatorch layers.

:func:`from_cliffordlayers` turns ``CliffordConv1d`` / ``CliffordConv2d`` / ``CliffordConv3d``
(``rotation=True`` included) and ``CliffordLinear`` into
:class:`~gatorch.layers.fields.conv.CliffordConv1d` / ``2d`` / ``3d`` and
:class:`~gatorch.layers.fields.conv.CliffordLinear` with the same weights. The converted module is
called like the original, on the same ``(batch, channels, *spatial, blades)`` tensor, and
returns the same values (to rounding).

Whole models: cliffordlayers' ``CliffordNet2d`` with ``CliffordBasicBlock2d`` (ResNet) or
``CliffordFourierBasicBlock2d`` (FNO) blocks and ``CliffordNet3d`` with
``CliffordFourierBasicBlock3d`` blocks (``partialclass`` variants with other modes included)
become :class:`~gatorch.nets.fields.CliffordResNet` / :class:`~gatorch.nets.fields.CliffordFNO`
with the options that reproduce them: the activation by name, ``padding_mode="zeros"``,
``domain_padding`` = the net's ``padding``, the group norms with ``whitening="cliffordlayers"``
and ``cliffordlayers_bias=True`` (gatorch ``num_groups = hidden // cliffordlayers' num_groups``),
``spectrum="dual"`` (and ``cliffordlayers_3d_slicing`` in 3-D), and the encoder's and decoder's
blades: ``in_blades = out_blades = (1, e1, e2)`` in 2-D (3-blade fields) and
``(e1, e2, e3, e12, e13, e23)`` in 3-D (6-blade fields); the net takes and returns the same
tensors as cliffordlayers'. Refused: a net mixing block kinds, with no blocks, an activation
without a gatorch name, or blocks whose layers were changed after construction in a way
gatorch's nets cannot express (``ValueError`` / ``TypeError`` naming it).

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
from gatorch.nets.fields import CliffordFNO, CliffordResNet

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
    ref = src.weight[0]
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
    _copy_conv_params(src, out)
    return out


def _copy_conv_params(src: Any, out: Any) -> None:
    """Copy a cliffordlayers convolution's weights into a gatorch one of the same shape."""
    n_blades = int(src.n_blades)
    with torch.no_grad():
        out.weight.copy_(torch.stack([w.detach() for w in list(src.weight)[:n_blades]], dim=-1))
        if src.bias is not None:
            assert out.bias is not None
            out.bias.copy_(src.bias.detach().T)  # (blades, out) -> (out, blades)
        if src.rotation:
            assert out.scale_param is not None and out.zero_kernel is not None
            out.scale_param.copy_(src.scale_param.detach())
            out.zero_kernel.copy_(src.zero_kernel.detach())


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


def _activation_name(fn: Any) -> str:
    """The gatorch activation name of a cliffordlayers net's ``activation``."""
    F = nn.functional
    by_function: list[tuple[Any, str]] = [
        (F.gelu, "gelu_exact"),
        (F.relu, "relu"),
        (torch.relu, "relu"),
        (F.silu, "silu"),
        (torch.tanh, "tanh"),
        (F.tanh, "tanh"),
        (torch.sigmoid, "sigmoid"),
        (F.sigmoid, "sigmoid"),
    ]
    for f, name in by_function:
        if fn is f:
            return name
    if type(fn) is nn.GELU:
        return {"none": "gelu_exact", "tanh": "gelu"}[fn.approximate]
    by_module = {nn.ReLU: "relu", nn.SiLU: "silu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}
    if type(fn) in by_module:
        return by_module[type(fn)]
    raise ValueError(
        f"from_cliffordlayers: the net's activation {fn!r} has no gatorch equivalent; convertible are "
        "F.gelu, F.relu, F.silu, torch.tanh, torch.sigmoid (and nn.GELU, nn.ReLU, nn.SiLU, nn.Tanh, "
        "nn.Sigmoid)"
    )


def _same_forward(obj: Any, base: type) -> bool:
    """``obj`` is a ``base`` that computes what ``base`` computes (e.g. a ``partialclass`` of it)."""
    return isinstance(obj, base) and getattr(type(obj), "forward", None) is getattr(base, "forward", None)


def _norm_options(who: str, norms: list[Any], channels: int) -> dict[str, Any]:
    """gatorch net options of cliffordlayers' block norms (all identities, or all group norms)."""
    gn_mod = importlib.import_module("cliffordlayers.nn.modules.groupnorm")
    if all(isinstance(n, nn.Identity) for n in norms):
        return {"norm": False}
    if not all(_same_forward(n, gn_mod._CliffordGroupNorm) for n in norms):
        raise TypeError(f"from_cliffordlayers: {who} mixes norms and identities, or has an unknown norm")
    first = norms[0]
    for n in norms:
        if (n.num_groups, n.eps, n.affine, n.track_running_stats) != (first.num_groups, 1e-5, True, False):
            raise ValueError(
                f"from_cliffordlayers: {who}'s group norms must all be cliffordlayers' block default "
                "(eps=1e-5, affine=True, track_running_stats=False, one group size), got "
                f"{(n.num_groups, n.eps, n.affine, n.track_running_stats)}"
            )
    return {"norm": True, "num_groups": channels // int(first.num_groups)}


def _copy_net(src: Any) -> nn.Module:
    """A gatorch ``CliffordResNet`` / ``CliffordFNO`` equal to a cliffordlayers ``CliffordNet2d/3d``."""
    m2 = importlib.import_module("cliffordlayers.models.models_2d")
    m3 = importlib.import_module("cliffordlayers.models.models_3d")
    layers = importlib.import_module("cliffordlayers.models.custom_layers")
    ft = importlib.import_module("cliffordlayers.nn.modules.cliffordfourier")
    ext = importlib.import_module(EXTENSION_MODULE)
    d = 3 if isinstance(src, m3.CliffordNet3d) else 2
    who = type(src).__name__
    enc_cls = layers.CliffordConv3dEncoder if d == 3 else layers.CliffordConv2dEncoder
    dec_cls = layers.CliffordConv3dDecoder if d == 3 else layers.CliffordConv2dDecoder
    enc, dec = src.encoder, src.decoder
    if not (_same_forward(enc, enc_cls) and _same_forward(dec, dec_cls)):
        raise TypeError(f"from_cliffordlayers: {who} with a replaced encoder or decoder is not convertible")
    for conv in (enc, dec):
        if tuple(conv.kernel_size) != (1,) * d or tuple(conv.padding) != (0,) * d or conv.groups != 1:
            raise ValueError(f"from_cliffordlayers: {who}'s encoder and decoder must be 1x1 convolutions")
    if dec.bias is not None:
        raise ValueError(f"from_cliffordlayers: {who}'s decoder has a bias (cliffordlayers cannot run it)")
    blocks = [b for seq in src.layers for b in seq]
    if not blocks:
        raise ValueError(f"from_cliffordlayers: {who} has no blocks; gatorch's nets need num_blocks >= 1")
    hidden = int(enc.out_channels)
    alg = algebra_from_signature(enc.g)
    act = src.activation
    if any(b.activation is not act for b in blocks):
        raise ValueError(f"from_cliffordlayers: {who}'s blocks use another activation than the net")
    resnet = d == 2 and all(_same_forward(b, m2.CliffordBasicBlock2d) for b in blocks)
    fourier_cls = m3.CliffordFourierBasicBlock3d if d == 3 else m2.CliffordFourierBasicBlock2d
    fno = all(_same_forward(b, fourier_cls) for b in blocks)
    if not (resnet or fno):
        kinds = sorted({type(b).__name__ for b in blocks})
        raise TypeError(
            f"from_cliffordlayers: {who} with blocks {kinds} is not convertible; convertible are "
            "CliffordBasicBlock2d and CliffordFourierBasicBlock2d in CliffordNet2d, "
            "CliffordFourierBasicBlock3d in CliffordNet3d (one kind per net)"
        )
    opts: dict[str, Any] = dict(
        in_channels=int(enc.in_channels),
        out_channels=int(dec.out_channels),
        hidden_channels=hidden,
        num_blocks=len(blocks),
        activation=_activation_name(act),
        rotation=bool(enc.rotation),
        input_activation=True,
        domain_padding=int(src.padding),
        spatial_dims=d,
        whitening="cliffordlayers",
        cliffordlayers_bias=True,
        # cliffordlayers' encoders take scalar + vector fields (2-D), vector + bivector fields (3-D)
        in_blades=tuple(range(1, 7)) if d == 3 else (0, 1, 2),
        out_blades=tuple(range(1, 7)) if d == 3 else (0, 1, 2),
    )
    if resnet:
        convs = [c for b in blocks for c in (b.conv1, b.conv2)]
        opts.update(_norm_options(who, [n for b in blocks for n in (b.norm1, b.norm2)], hidden))
        k = tuple(convs[0].kernel_size)
        for c in convs:
            if (
                tuple(c.kernel_size) != k
                or k[0] != k[1]
                or k[0] % 2 != 1
                or tuple(c.padding) != (k[0] // 2,) * 2
                or tuple(c.stride) != (1, 1)
                or tuple(c.dilation) != (1, 1)
                or c.groups != 1
                or c.rotation != enc.rotation
            ):
                raise ValueError(
                    f"from_cliffordlayers: {who}'s block convolutions must share one odd square kernel "
                    "with padding kernel_size // 2, stride 1, dilation 1, groups 1 and the encoder's rotation"
                )
        net: nn.Module = CliffordResNet(alg, kernel_size=k[0], padding_mode="zeros", **opts)
    else:
        specs = [b.fourier for b in blocks]
        opts.update(_norm_options(who, [b.norm for b in blocks], hidden))
        names = ("modes1", "modes2", "modes3")[:d]
        modes = tuple(int(getattr(specs[0], n)) for n in names)
        for b in blocks:
            c = b.conv
            if (
                type(b.fourier) is not (ft.CliffordSpectralConv3d if d == 3 else ft.CliffordSpectralConv2d)
                or not b.fourier.multiply
                or tuple(int(getattr(b.fourier, n)) for n in names) != modes
                or tuple(c.kernel_size) != (1,) * d
                or tuple(c.padding) != (0,) * d
                or tuple(c.stride) != (1,) * d
                or c.groups != 1
                or bool(getattr(c, "rotation", False)) != bool(enc.rotation)
            ):
                raise ValueError(
                    f"from_cliffordlayers: {who}'s Fourier blocks must share their modes, multiply=True, "
                    "and a 1x1 convolution (stride 1, groups 1, the encoder's rotation)"
                )
        extra: dict[str, Any] = {"modes3": modes[2]} if d == 3 else {}
        net = CliffordFNO(
            alg, modes1=modes[0], modes2=modes[1], spectrum="dual", cliffordlayers_3d_slicing=d == 3,
            **extra, **opts,
        )  # fmt: skip
    ref = enc.weight[0]
    net = net.to(device=ref.device, dtype=ref.dtype)
    assert isinstance(net, (CliffordResNet, CliffordFNO))
    _copy_conv_params(enc, net.encoder)
    _copy_conv_params(dec, net.decoder)
    ours: Any
    for theirs, ours in zip(blocks, net.blocks, strict=True):
        if resnet:
            pairs = [(theirs.conv1, ours.conv1), (theirs.conv2, ours.conv2)]
            norms = [(theirs.norm1, ours.norm1), (theirs.norm2, ours.norm2)]
        else:
            pairs = [(theirs.conv, ours.conv)]
            norms = [(theirs.norm, ours.norm)]
            ours.fourier.load_state_dict(ext.convert(theirs.fourier).state_dict())
        for c_src, c_dst in pairs:
            _copy_conv_params(c_src, c_dst)
        for n_src, n_dst in norms:
            if not isinstance(n_src, nn.Identity):
                n_dst.load_state_dict(ext.convert(n_src).state_dict())
    return net


def from_cliffordlayers(module: nn.Module) -> nn.Module:
    """A gatorch module computing what a cliffordlayers module computes, with its weights.

    Parameters
    ----------
    module : nn.Module
        A cliffordlayers ``CliffordConv1d`` / ``CliffordConv2d`` / ``CliffordConv3d``
        (``rotation=True`` included, ``groups=1``), ``CliffordLinear``, or a whole
        ``CliffordNet2d`` / ``CliffordNet3d``; other classes go to the extension hook (module
        docstring).

    Returns
    -------
    nn.Module
        :class:`~gatorch.layers.fields.conv.CliffordConv1d` / ``2d`` / ``3d``,
        :class:`~gatorch.layers.fields.conv.CliffordLinear`, or
        :class:`~gatorch.nets.fields.CliffordResNet` / :class:`~gatorch.nets.fields.CliffordFNO`
        on ``Algebra.from_signature(module.g)``, on the module's device and dtype, in its
        training mode. It takes the same ``(batch, channels, *spatial, blades)`` input.

    Raises
    ------
    ImportError
        cliffordlayers is not installed.
    ValueError
        ``groups > 1``, a signature entry other than +1, -1, 0, or a net option gatorch's
        nets cannot express (module docstring).
    TypeError
        A class neither this function nor the extension hook converts, or a net with mixed or
        replaced blocks.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"from_cliffordlayers: expected a cliffordlayers nn.Module, got {type(module).__name__}"
        )
    conv_mod, linear_mod = _cliffordlayers()
    m2 = importlib.import_module("cliffordlayers.models.models_2d")
    m3 = importlib.import_module("cliffordlayers.models.models_3d")
    out: nn.Module | None
    if _same_forward(module, m2.CliffordNet2d) or _same_forward(module, m3.CliffordNet3d):
        out = _copy_net(module)
    elif type(module) in (conv_mod.CliffordConv1d, conv_mod.CliffordConv2d, conv_mod.CliffordConv3d):
        out = _copy_conv(module, conv_mod)
    elif type(module) is linear_mod.CliffordLinear:
        out = _copy_linear(module)
    else:
        out = _extension(module)
        if out is None:
            raise TypeError(
                f"from_cliffordlayers: cannot convert {type(module).__module__}.{type(module).__name__}; "
                "converted are cliffordlayers' CliffordConv1d, CliffordConv2d, CliffordConv3d, "
                "CliffordLinear, CliffordNet2d and CliffordNet3d (and what "
                f"{EXTENSION_MODULE}.convert accepts, where present)"
            )
    return out.train(module.training)
