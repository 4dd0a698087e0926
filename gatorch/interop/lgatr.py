r"""Conversion between L-GATr 2.0 (the ``lgatr`` package) and gatorch's :class:`~gatorch.nets.GATr`.

:func:`from_lgatr` turns an ``lgatr.LGATr`` or ``lgatr.ConditionalLGATr`` into the gatorch net
on :data:`~gatorch.STA` with the same function: every weight is copied, re-indexed where the
two libraries lay channels out differently, and the coefficients of the equivariant linear
maps are re-expressed in gatorch's basis. :func:`to_lgatr` goes back (a state-dict round
trip: the mapping is a bijection between the parameters of the two nets).

What makes the two nets compute the same function is a set of explicit options, all off in
gatorch's defaults:

* ``group="spin"`` for ``PrimitivesConfig(subgroup=True)`` (L-GATr's default), ``"pin"`` for
  ``subgroup=False``;
* ``AttentionConfig(qkv_norm=True, qkv_bias=False, head_scale=..., multi_query=...)`` with the
  head widths L-GATr derives from ``attn_ratio``;
* ``MLPConfig(bilinear_norm=True, activation=..., mlp_ratio=..., num_layers=...)``;
* ``NormConfig(eps=0.01, eps_mode="clamp", scalar_eps=1e-5)`` with learnt gains per channel and
  grade when ``norm_elementwise_affine=True``.

Calling convention: the converted net is called like the L-GATr net, positionally:
``net(multivectors, scalars)`` and ``net(multivectors, multivectors_cond, scalars, scalars_cond)``.
Masks are keywords (``attn_mask=``, and ``cross_attn_mask=`` for the conditional net) where
L-GATr takes ``**attn_kwargs`` / ``attn_kwargs`` dicts. One difference in the returned tuple:
with ``out_s_channels=0`` gatorch returns an empty ``(..., 0)`` scalar tensor where L-GATr
returns ``None``.

Every head count converts, with or without ``multi_query`` (lgatr's fused ``QKVModule`` or
its ``MultiQueryQKVModule``), and the conditional net's cross-attention may have its own head
count. Without scalar inputs lgatr's input layer has a bias on the scalar blade only; the
converted net has the same (``linear_in_bias="scalar"``), so it has no free parameter that
lgatr lacks and goes back after any training.

Not convertible (``ValueError`` naming the option): ``reinsert_mv_channels`` /
``reinsert_s_channels``, the toy switches ``PrimitivesConfig(bivector=False)`` and
``PrimitivesConfig(geometric_product=False)``, and a layer-norm ``gain`` other than 1.
``sparse_gp`` and ``sparse_linear`` only choose kernels and are ignored. Only the module
trees lgatr builds convert: a module replaced by another class (``TypeError``), a missing
module, an empty ``blocks`` or blocks built with different options (``ValueError``) are
refused naming the module's path. docs/lgatr.md has the full table.
Dropout converts (``dropout_prob`` becomes the attention and MLP dropout); it acts only in
training mode, where the two libraries draw different masks.

``lgatr`` is optional (it is in the ``bench`` extra; ``pip install lgatr``); it is imported
only when a function here is called.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gatorch.functional.algebra import STA, Algebra
from gatorch.functional.linear import invariant_components
from gatorch.layers import AttentionConfig, EquiLinear, MLPConfig, NormConfig
from gatorch.nets.gatr import ConditionalGATr, GATr
from gatorch.nets.slim import ConditionalGATrSlim, GATrSlim

__all__ = ["from_lgatr", "lgatr_basis_change", "to_lgatr"]


def _lgatr() -> Any:
    try:
        import lgatr
    except ImportError as err:
        raise ImportError(
            "gatorch.interop.from_lgatr / to_lgatr need the optional dependency lgatr, which is not "
            'installed: pip install lgatr (or pip install "gatorch-nn[bench]")'
        ) from err
    return lgatr


# -- the equivariant linear maps ------------------------------------------------------------------
def _basis_change_np(subgroup: bool) -> np.ndarray:
    """``T`` of :func:`lgatr_basis_change`, a plan on STA's store."""
    return STA.plan(("lgatr_basis_change", subgroup), lambda: _build_basis_change(subgroup))


def _build_basis_change(subgroup: bool) -> np.ndarray:
    from lgatr.primitives.linear import _compute_pin_equi_linear_basis

    lg = _compute_pin_equi_linear_basis(subgroup, device=torch.device("cpu"), dtype=torch.float64)
    lg = lg.numpy().reshape(lg.shape[0], -1)  # (k, dim * dim)
    ours = STA.equivariant_basis("spin" if subgroup else "pin").numpy().reshape(lg.shape[0], -1)
    # lg[a] = sum_m T[m, a] ours[m]
    t, *_ = np.linalg.lstsq(ours.T, lg.T, rcond=None)
    err = np.abs(ours.T @ t - lg.T).max()
    if err > 1e-9:
        raise RuntimeError(
            f"lgatr's equivariant linear basis is not spanned by gatorch's STA basis (residual {err:.2e}); "
            "the blade orders of the two libraries differ"
        )
    return np.asarray(t)


def lgatr_basis_change(subgroup: bool = True) -> Tensor:
    """The matrix ``T`` with ``W_gatorch[o, i] = T @ W_lgatr[o, i]`` for the weights of an ``EquiLinear``.

    Parameters
    ----------
    subgroup : bool
        L-GATr's ``PrimitivesConfig.subgroup`` (10 basis maps, gatorch's ``group="spin"``) or
        not (5 maps, ``"pin"``).

    Returns
    -------
    Tensor, shape (k, k), float64
        Found by least squares from the two libraries' basis tensors and checked to be exact.
    """
    _lgatr()
    return torch.from_numpy(_basis_change_np(bool(subgroup)).copy())


def _slots(alg: Algebra, group: str) -> tuple[list[int], list[int]]:
    """L-GATr's slot (0 scalar, 1 pseudoscalar) of gatorch's invariant blades and readable components."""
    slot = {0: 0, alg.pseudoscalar_index: 1}
    inv = [slot[c] for c in invariant_components(alg, group, "blades")]
    read = [slot[c] for c in invariant_components(alg, group, "coefficients")]
    return inv, read


def _lg_linear_params(lin: Any, t: Tensor, inv: list[int], read: list[int]) -> dict[str, Tensor | None]:
    """One lgatr ``EquiLinear``'s parameters in gatorch's layout (before any channel permutation)."""
    out_c, in_c = lin._out_mv_channels, lin._in_mv_channels
    in_s, out_s = lin._in_s_channels, lin._out_s_channels
    mix = 2 if lin.primitives.subgroup else 1
    w = lin.weight.detach().to(torch.float64)
    p: dict[str, Tensor | None] = {"weight": torch.einsum("ma,oia->oim", t, w)}
    bias = None
    if lin.bias is not None:  # scalar component only
        bias = torch.zeros(out_c, len(inv), dtype=torch.float64)
        bias[:, inv.index(0)] = lin.bias.detach()[:, 0]
    s_to_mv = None
    if lin.s2mvs is not None:
        sw = lin.s2mvs.weight.detach().to(torch.float64).reshape(out_c, mix, in_s)
        s_to_mv = sw[:, inv, :]
        if lin.s2mvs.bias is not None:
            bias = lin.s2mvs.bias.detach().to(torch.float64).reshape(out_c, mix)[:, inv]
    p["bias"], p["s_to_mv"] = bias, s_to_mv
    p["mv_to_s"] = p["s_to_s"] = p["s_bias"] = None
    if lin.mvs2s is not None:
        rw = lin.mvs2s.weight.detach().to(torch.float64).reshape(out_s, in_c, mix)
        p["mv_to_s"] = rw[:, :, read]
        if lin.mvs2s.bias is not None:
            p["s_bias"] = lin.mvs2s.bias.detach().to(torch.float64)
    if lin.s2s is not None:
        p["s_to_s"] = lin.s2s.weight.detach().to(torch.float64)
    return p


_MV_OUT = ("weight", "bias", "s_to_mv")  # parameters whose first axis is an output multivector channel
_S_OUT = ("mv_to_s", "s_to_s", "s_bias")  # ... an output scalar channel


def _cat_params(parts: Sequence[dict[str, Tensor | None]]) -> dict[str, Tensor | None]:
    """Stack the parameters of linear maps that share their inputs along the outputs."""
    out: dict[str, Tensor | None] = {}
    for key in _MV_OUT + _S_OUT:
        vals = [p[key] for p in parts]
        present = [v for v in vals if v is not None]
        if not present:
            out[key] = None
        elif len(present) != len(vals):
            raise ValueError(f"from_lgatr: the fused projections disagree on {key}")
        else:
            out[key] = torch.cat(present, dim=0)
    return out


def _bias_columns(ours: EquiLinear, inv: list[int]) -> list[int]:
    """The columns of a bias on all invariant blades, ``(out, len(inv))``, that ``ours.bias`` holds.

    ``inv``: L-GATr's slot (0 scalar, 1 pseudoscalar) of each of gatorch's invariant blades.
    """
    return [inv.index(0 if c == 0 else 1) for c in ours.bias_blades]


def _load_linear(
    ours: EquiLinear,
    p: dict[str, Tensor | None],
    mv_perm: Tensor | None = None,
    s_perm: Tensor | None = None,
    where: str = "",
    inv: list[int] | None = None,
) -> None:
    """Copy ``p`` into ``ours``; ``ours`` output channel ``k`` reads ``p``'s channel ``perm[k]``.

    ``where``: the lgatr module's path, for the error when a shape differs (a module built
    with other channel counts than the first block's); ``inv``: L-GATr's slots of gatorch's
    invariant blades (see :func:`_slots`).
    """

    def take(key: str) -> Tensor | None:
        v = p[key]
        if v is None:
            return None
        perm = mv_perm if key in _MV_OUT else s_perm
        return v if perm is None else v[perm]

    def put(dst: Tensor, src: Tensor | None, what: str) -> None:
        value = torch.zeros_like(dst) if src is None else src
        if value.shape != dst.shape:
            raise ValueError(
                f"from_lgatr: model.{where} gives a {what} of shape {tuple(value.shape)} where the gatorch "
                f"net built from model.blocks.0 expects {tuple(dst.shape)} (a module built with other "
                "channel counts)"
            )
        dst.copy_(value)

    with torch.no_grad():
        put(ours.weight, take("weight"), "weight")
        b = take("bias")
        if ours.bias is not None:
            if b is not None and b.shape[-1] != ours.bias.shape[-1]:  # bias on the scalar blade only
                cols = _bias_columns(ours, inv if inv is not None else [0])
                rest = [c for c in range(b.shape[-1]) if c not in cols]
                if rest and b[:, rest].abs().max() > 0:
                    raise ValueError(
                        f"from_lgatr: model.{where} has a pseudoscalar bias where the gatorch layer has none"
                    )
                b = b[:, cols]
            put(ours.bias, b, "multivector bias")
        elif b is not None:
            raise ValueError(f"from_lgatr: model.{where} has a bias where the gatorch layer has none")
        if ours.s_to_mv is not None:
            put(ours.s_to_mv, take("s_to_mv"), "scalar-to-multivector weight")
        if ours.mv_to_s is not None:
            put(ours.mv_to_s, take("mv_to_s"), "multivector-to-scalar weight")
        s_bias = take("s_bias")
        if ours.s_to_s is not None:
            put(ours.s_to_s.weight, take("s_to_s"), "scalar weight")
            if ours.s_to_s.bias is not None:
                put(ours.s_to_s.bias, s_bias, "scalar bias")
        elif ours.s_bias is not None:
            put(ours.s_bias, s_bias, "scalar bias")


def _store_linear(
    ours: EquiLinear,
    lins: Sequence[Any],
    t_inv: Tensor,
    inv: list[int],
    read: list[int],
    mv_perm: Tensor | None = None,
    s_perm: Tensor | None = None,
    where: str = "",
) -> None:
    """The inverse of :func:`_lg_linear_params` + :func:`_load_linear`: write ``ours`` into ``lins``."""

    def unperm(v: Tensor, perm: Tensor | None) -> Tensor:
        return v if perm is None else v[torch.argsort(perm)]

    def check_zero(v: Tensor, what: str) -> None:
        if v.numel() and v.abs().max() > 0:
            raise ValueError(f"to_lgatr: {where}{what} is not zero and has no counterpart in lgatr")

    w = unperm(ours.weight.detach().double(), mv_perm)
    b = None
    if ours.bias is not None:  # on all invariant blades, in L-GATr's slot order
        b = torch.zeros(ours.out_channels, len(inv), dtype=torch.float64, device=ours.bias.device)
        b[:, _bias_columns(ours, inv)] = ours.bias.detach().double()
        b = unperm(b, mv_perm)
    sm = unperm(ours.s_to_mv.detach().double(), mv_perm) if ours.s_to_mv is not None else None
    ms = unperm(ours.mv_to_s.detach().double(), s_perm) if ours.mv_to_s is not None else None
    ss = unperm(ours.s_to_s.weight.detach().double(), s_perm) if ours.s_to_s is not None else None
    sb_t = ours.s_to_s.bias if ours.s_to_s is not None else ours.s_bias
    sb = unperm(sb_t.detach().double(), s_perm) if sb_t is not None else None
    o_mv = o_s = 0
    with torch.no_grad():
        for lin in lins:
            oc, os_ = lin._out_mv_channels, lin._out_s_channels
            mv_rows, s_rows = slice(o_mv, o_mv + oc), slice(o_s, o_s + os_)
            o_mv, o_s = o_mv + oc, o_s + os_
            dt = lin.weight.dtype
            lin.weight.copy_(torch.einsum("am,oim->oia", t_inv, w[mv_rows]).to(dt))
            mix = 2 if lin.primitives.subgroup else 1
            if lin.s2mvs is not None:
                full = torch.zeros(oc, mix, lin._in_s_channels, dtype=torch.float64)
                full[:, inv, :] = sm[mv_rows]  # type: ignore[index]
                lin.s2mvs.weight.copy_(full.reshape(oc * mix, -1).to(dt))
                if lin.s2mvs.bias is not None:
                    fb = torch.zeros(oc, mix, dtype=torch.float64)
                    if b is not None:
                        fb[:, inv] = b[mv_rows]
                    lin.s2mvs.bias.copy_(fb.reshape(-1).to(dt))
                elif b is not None:
                    check_zero(b[mv_rows], "a multivector bias")
            elif lin.bias is not None:
                assert b is not None
                k0 = inv.index(0)
                lin.bias.copy_(b[mv_rows][:, k0 : k0 + 1].to(dt))
                check_zero(
                    torch.cat([b[mv_rows][:, :k0], b[mv_rows][:, k0 + 1 :]], dim=1), "a pseudoscalar bias"
                )
            elif b is not None:
                check_zero(b[mv_rows], "a multivector bias")
            if lin.mvs2s is not None:
                full = torch.zeros(os_, lin._in_mv_channels, mix, dtype=torch.float64)
                full[:, :, read] = ms[s_rows]  # type: ignore[index]
                lin.mvs2s.weight.copy_(full.reshape(os_, -1).to(dt))
                if lin.mvs2s.bias is not None:
                    lin.mvs2s.bias.copy_(
                        (sb[s_rows] if sb is not None else torch.zeros(os_, dtype=torch.float64)).to(dt)
                    )
                elif sb is not None:
                    check_zero(sb[s_rows], "a scalar bias")
            if lin.s2s is not None:
                lin.s2s.weight.copy_(ss[s_rows].to(dt))  # type: ignore[index]


# -- channel layouts of the attention heads --------------------------------------------------------
def _head_perm(parts: int, heads: int, per_head: int) -> Tensor:
    """gatorch's ``(part, head, channel)`` order read from L-GATr's ``(part, channel, head)``."""
    idx = torch.arange(parts * per_head * heads).reshape(parts, per_head, heads)
    return idx.transpose(1, 2).reshape(-1)


def _mq_perm(heads: int, per_head: int) -> Tensor:
    """Multi-query: L-GATr's ``[q (channel, head), k, v]`` to gatorch's ``[q (head, channel), k, v]``."""
    q = torch.arange(per_head * heads).reshape(per_head, heads).T.reshape(-1)
    rest = torch.arange(per_head * heads, per_head * (heads + 2))
    return torch.cat([q, rest])


def _kv_perm(kv_heads: int, per_head: int) -> Tensor:
    """Cross-attention keys and values: L-GATr's ``[k (channel, head), v (channel, head)]``."""
    return _head_perm(2, kv_heads, per_head)


def _qkv_layout(attn: Any, qkv: Any) -> tuple[list[Any], Tensor, Tensor]:
    """lgatr's query / key / value linear maps of a self-attention and the channel permutations.

    lgatr picks the module by ``multi_query`` alone (not by the head count):
    ``MultiQueryQKVModule`` (``q_linear``, ``k_linear``, ``v_linear``) or ``QKVModule`` (one
    fused ``in_linear``, also with one head).
    """
    h, hm, hs = attn.heads, attn.hm, attn.hs
    if type(qkv).__name__ == "MultiQueryQKVModule":
        return [qkv.q_linear, qkv.k_linear, qkv.v_linear], _mq_perm(h, hm), _mq_perm(h, hs)
    return [qkv.in_linear], _head_perm(3, h, hm), _head_perm(3, h, hs)


# -- configurations -------------------------------------------------------------------------------
def _activation(mlp: Any) -> str:
    from lgatr.layers.mlp.nonlinearities import ScalarGatedNonlinearity

    for layer in mlp.layers:
        if isinstance(layer, ScalarGatedNonlinearity):
            f = layer.nonlinearity
            if isinstance(f, functools.partial) and f.func is torch.nn.functional.gelu:
                if f.keywords.get("approximate") != "tanh":
                    raise ValueError(
                        "from_lgatr: nonlinearity gelu without approximate='tanh' is not supported"
                    )
                return "gelu"
            names = {
                torch.nn.functional.relu: "relu",
                torch.nn.functional.sigmoid: "sigmoid",
                torch.sigmoid: "sigmoid",
                torch.nn.functional.tanh: "tanh",
                torch.tanh: "tanh",
                torch.nn.functional.silu: "silu",
            }
            if f in names:
                return names[f]
            raise ValueError(f"from_lgatr: unknown nonlinearity {f!r}")
    return "gelu"  # one-layer MLP: no gate


def _mlp_parts(mlp: Any) -> tuple[Any, list[Any], float]:
    """(bilinear, the EquiLinears after it, dropout probability) of an lgatr ``GeoMLP``."""
    from lgatr.layers.dropout import GradeDropout
    from lgatr.layers.linear import EquiLinear as LgLinear
    from lgatr.layers.mlp.geometric_bilinears import GeometricBilinear as LgBilinear

    bilinear = mlp.layers[0]
    if not isinstance(bilinear, LgBilinear):
        raise ValueError(
            "from_lgatr: primitives.geometric_product=False (an MLP without the geometric product) "
            "is not supported"
        )
    linears = [m for m in mlp.layers[1:] if isinstance(m, LgLinear)]
    drops = [m._dropout_prob for m in mlp.layers if isinstance(m, GradeDropout)]
    return bilinear, linears, float(drops[0]) if drops else 0.0


def _norm_config(norm: Any) -> NormConfig:
    if float(norm.gain) != 1.0:
        raise ValueError(f"from_lgatr: EquiLayerNorm gain={float(norm.gain)} is not supported (only 1)")
    affine = bool(norm.elementwise_affine)
    return NormConfig(
        eps=float(norm.epsilon),
        eps_mode="clamp",
        scalar_eps=1e-5,
        mv_affine=affine,
        scalar_affine="weight" if affine else "none",
    )


def _check_primitives(model: Any) -> str:
    prim = model.primitives
    if not prim.bivector:
        raise ValueError("from_lgatr: primitives.bivector=False (a toy switch) is not supported")
    if not prim.geometric_product:
        raise ValueError("from_lgatr: primitives.geometric_product=False (a toy switch) is not supported")
    return "spin" if prim.subgroup else "pin"


def _attention_config(cfg: Any, dropout: float) -> AttentionConfig:
    return AttentionConfig(
        num_heads=cfg.num_heads,
        head_mv_channels=cfg.hidden_mv_channels,
        head_s_channels=cfg.hidden_s_channels,
        multi_query=bool(cfg.multi_query),
        head_scale=bool(cfg.head_scale),
        qkv_norm=True,
        qkv_bias=False,
        dropout=dropout,
    )


def _attn_dropout(attn: Any) -> float:
    return float(attn.dropout._dropout_prob) if attn.dropout is not None else 0.0


# -- the structure of an lgatr model --------------------------------------------------------------
def _lgatr_classes() -> dict[str, type]:
    """lgatr's module classes that :func:`from_lgatr` knows, by name."""
    from lgatr.layers.attention.cross_attention import CrossAttention
    from lgatr.layers.attention.qkv import MultiQueryQKVModule, QKVModule
    from lgatr.layers.attention.self_attention import SelfAttention
    from lgatr.layers.conditional_lgatr_block import ConditionalLGATrBlock
    from lgatr.layers.dropout import GradeDropout
    from lgatr.layers.layer_norm import EquiLayerNorm
    from lgatr.layers.lgatr_block import LGATrBlock
    from lgatr.layers.linear import EquiLinear as LgLinear
    from lgatr.layers.mlp.geometric_bilinears import GeometricBilinear
    from lgatr.layers.mlp.mlp import GeoMLP
    from lgatr.layers.mlp.nonlinearities import ScalarGatedNonlinearity

    classes = (
        CrossAttention,
        MultiQueryQKVModule,
        QKVModule,
        SelfAttention,
        ConditionalLGATrBlock,
        GradeDropout,
        EquiLayerNorm,
        LGATrBlock,
        LgLinear,
        GeometricBilinear,
        GeoMLP,
        ScalarGatedNonlinearity,
    )
    return {c.__name__: c for c in classes}


def _submodule(model: nn.Module, path: str, *expected: str) -> Any:
    """``model``'s submodule at ``path``, which must be exactly one of lgatr's classes ``expected``.

    A missing module is a ``ValueError``, another class (a module the user swapped in, or a
    subclass: its forward may differ) a ``TypeError``; both name the path and what was expected.
    """
    classes = _lgatr_classes()
    want = " or ".join(f"lgatr's {name}" for name in expected)
    try:
        module = model.get_submodule(path)
    except AttributeError:
        raise ValueError(
            f"from_lgatr: model.{path} is missing (expected {want}); from_lgatr converts lgatr models "
            "with the modules lgatr builds"
        ) from None
    if not any(type(module) is classes[name] for name in expected):
        raise TypeError(
            f"from_lgatr: model.{path} is a {type(module).__module__}.{type(module).__qualname__}, not a "
            f"module lgatr builds there (expected {want}); from_lgatr cannot convert a replaced module"
        )
    return module


def _mlp_layout(model: nn.Module, path: str) -> tuple[str, ...]:
    """Check a ``GeoMLP``'s layers against lgatr's layout; their class names."""
    mlp = _submodule(model, path, "GeoMLP")
    layers = getattr(mlp, "layers", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        raise ValueError(
            f"from_lgatr: model.{path}.layers is missing or empty (expected lgatr's GeoMLP layers)"
        )
    names = tuple(type(m).__name__ for m in layers)
    # lgatr: GeometricBilinear [GradeDropout], then (ScalarGatedNonlinearity EquiLinear [GradeDropout]) * k
    drop = len(names) > 1 and names[1] == "GradeDropout"
    unit = ("ScalarGatedNonlinearity", "EquiLinear") + (("GradeDropout",) if drop else ())
    head = ("GeometricBilinear",) + (("GradeDropout",) if drop else ())
    rest = names[len(head) :]
    if names[: len(head)] != head or len(rest) % len(unit) or rest != unit * (len(rest) // len(unit)):
        raise ValueError(
            f"from_lgatr: model.{path}.layers holds {list(names)}, not lgatr's GeoMLP layout "
            f"{list(head)} + {list(unit)} * (num_layers_mlp - 1)"
        )
    for j, name in enumerate(names):
        _submodule(model, f"{path}.layers.{j}", name)  # the exact lgatr class, not a look-alike
    for name in ("linear_left", "linear_right", "linear_out"):
        _submodule(model, f"{path}.layers.0.{name}", "EquiLinear")
    _submodule(model, f"{path}.layers.0.norm", "EquiLayerNorm")
    return names


def _norm_signature(norm: Any) -> tuple[float, float, bool]:
    """``(epsilon, gain, elementwise_affine)`` of an lgatr ``EquiLayerNorm``."""
    return float(norm.epsilon), float(norm.gain), bool(norm.elementwise_affine)


def _attention_signature(attn: Any, config: Any) -> dict[str, Any]:
    """What makes an lgatr attention: its config's fields and ``head_scale``."""
    return {**dataclasses.asdict(config), "head_scale": bool(attn.use_head_scale)}


def _check_structure(model: nn.Module, conditional: bool) -> None:
    """Every module :func:`from_lgatr` reads is lgatr's own, and all blocks are built alike.

    gatorch's nets have one configuration for all blocks, so a block whose attention, MLP or
    norms differ from the first block's is refused too.
    """
    for name in ("linear_in", "linear_out"):
        _submodule(model, name, "EquiLinear")
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleList):
        raise ValueError(
            "from_lgatr: model.blocks is missing or not an nn.ModuleList (expected lgatr's blocks)"
        )
    if len(blocks) == 0:
        raise ValueError("from_lgatr: model.blocks is empty; gatorch's GATr needs num_blocks >= 1")
    norms = ("norm1", "norm2", "norm3", "norm_cond") if conditional else ("norm1", "norm2")
    first: dict[str, dict[str, Any]] | None = None
    for i in range(len(blocks)):
        b = f"blocks.{i}"
        block = _submodule(model, b, "ConditionalLGATrBlock" if conditional else "LGATrBlock")
        norm_sigs = {
            f"{n} (epsilon, gain, elementwise_affine)": _norm_signature(
                _submodule(model, f"{b}.{n}", "EquiLayerNorm")
            )
            for n in norms
        }
        _submodule(model, f"{b}.attention", "SelfAttention")
        qkv = _submodule(model, f"{b}.attention.qkv_module", "QKVModule", "MultiQueryQKVModule")
        fused = ("in_linear",)
        multi_query = type(qkv).__name__ == "MultiQueryQKVModule"
        for name in ("q_linear", "k_linear", "v_linear") if multi_query else fused:
            _submodule(model, f"{b}.attention.qkv_module.{name}", "EquiLinear")
        _submodule(model, f"{b}.attention.qkv_module.norm_qkv", "EquiLayerNorm")
        _submodule(model, f"{b}.attention.out_linear", "EquiLinear")
        sig: dict[str, dict[str, Any]] = {
            "norms": norm_sigs,
            "attention": _attention_signature(block.attention, qkv.config),
            "mlp": {"layers": _mlp_layout(model, f"{b}.mlp"), "nonlinearity": _activation(block.mlp)},
        }
        if conditional:
            cross = _submodule(model, f"{b}.crossattention", "CrossAttention")
            for name in ("q_linear", "kv_linear", "out_linear"):
                _submodule(model, f"{b}.crossattention.{name}", "EquiLinear")
            _submodule(model, f"{b}.crossattention.norm", "EquiLayerNorm")
            sig["crossattention"] = _attention_signature(cross, cross.config)
        if first is None:
            first = sig
            continue
        for part, fields in sig.items():
            diff = [f"{k} ({v!r} vs {first[part][k]!r})" for k, v in fields.items() if v != first[part][k]]
            if diff:
                raise ValueError(
                    f"from_lgatr: the {part} of model.{b} differs from model.blocks.0's in "
                    f"{', '.join(diff)}; gatorch's nets have one configuration for all blocks"
                )


# -- nets -----------------------------------------------------------------------------------------
def from_lgatr(model: nn.Module) -> GATr | ConditionalGATr | GATrSlim | ConditionalGATrSlim:
    """The gatorch net with the weights and the function of an L-GATr 2.0 net.

    Parameters
    ----------
    model : lgatr.LGATr, lgatr.ConditionalLGATr, lgatr.LGATrSlim or lgatr.ConditionalLGATrSlim
        The slim nets go to :func:`gatorch.interop.lgatr_slim.from_lgatr_slim`.

    Returns
    -------
    GATr, ConditionalGATr, GATrSlim or ConditionalGATrSlim
        On :data:`~gatorch.STA`, in the dtype and on the device of ``model``'s parameters, in
        the same train/eval mode. Called like ``model`` (see the module docstring); outputs
        agree to float rounding (about 1e-6 relative in float32, 1e-12 in float64).

    Raises
    ------
    ValueError
        For an L-GATr option that gatorch cannot express (named in the message).
    TypeError
        For anything but the four supported classes.
    """
    lgatr = _lgatr()
    if isinstance(model, (lgatr.LGATrSlim, lgatr.ConditionalLGATrSlim)):
        from gatorch.interop.lgatr_slim import from_lgatr_slim

        return from_lgatr_slim(model)
    conditional = isinstance(model, lgatr.ConditionalLGATr)
    if not conditional and not isinstance(model, lgatr.LGATr):
        raise TypeError(
            "from_lgatr: expected an lgatr.LGATr, ConditionalLGATr, LGATrSlim or ConditionalLGATrSlim, "
            f"got {type(model).__name__}"
        )
    return _from_lgatr(model, conditional)


def _from_lgatr(model: Any, conditional: bool) -> GATr | ConditionalGATr:
    """:func:`from_lgatr` after the type check (``model``'s submodules are reached by attribute)."""
    group = _check_primitives(model)
    if not conditional:
        for name in ("_reinsert_mv_channels", "_reinsert_s_channels"):
            if getattr(model, name, None) is not None:
                raise ValueError(f"from_lgatr: {name[1:]} is not supported")
    if getattr(model, "_naive_amp", False):
        raise ValueError("from_lgatr: naive_amp=True (bf16 through the whole net) is not supported")
    _check_structure(model, conditional)
    block0 = model.blocks[0]
    self_attn = block0.attention
    bilinear, linears, mlp_drop = _mlp_parts(block0.mlp)
    num_layers = len(linears) + 1
    hidden_mv = model.linear_in._out_mv_channels
    ratio = bilinear.linear_out._out_mv_channels // hidden_mv if num_layers > 1 else 1
    dropout = max(_attn_dropout(self_attn), mlp_drop)
    mlp_cfg = MLPConfig(
        mlp_ratio=ratio,
        num_layers=num_layers,
        activation=_activation(block0.mlp),
        join=False,
        dropout=dropout,
        bilinear_norm=True,
    )
    norm_cfg = _norm_config(block0.norm1)
    attn_cfg = _attention_config(self_attn.qkv_module.config, dropout)
    common: dict[str, Any] = {
        "in_mv_channels": model.linear_in._in_mv_channels,
        "out_mv_channels": model.linear_out._out_mv_channels,
        "hidden_mv_channels": hidden_mv,
        "in_s_channels": model.linear_in._in_s_channels,
        "out_s_channels": model.linear_out._out_s_channels,
        "hidden_s_channels": model.linear_in._out_s_channels,
        "num_blocks": len(model.blocks),
        "attention": attn_cfg,
        "mlp": mlp_cfg,
        "norm": norm_cfg,
        "group": group,
        "checkpoint_blocks": bool(getattr(model, "_checkpoint_blocks", False)),
        # without scalar inputs lgatr's input layer has a bias on the scalar blade only
        "linear_in_bias": "scalar" if model.linear_in.s2mvs is None else True,
    }
    net: GATr | ConditionalGATr
    if conditional:
        cross = block0.crossattention
        net = ConditionalGATr(
            STA,
            condition_mv_channels=cross.kv_linear._in_mv_channels,
            condition_s_channels=cross.kv_linear._in_s_channels,
            cross_attention=_attention_config(cross.config, _attn_dropout(cross)),
            **common,
        )
    else:
        net = GATr(STA, **common)
    ref = next(model.parameters())
    net = net.to(device=ref.device, dtype=ref.dtype)
    _copy(model, net, group, conditional)
    net.train(model.training)
    return net


def _copy(model: Any, net: Any, group: str, conditional: bool) -> None:
    t = torch.from_numpy(_basis_change_np(group == "spin").copy())
    inv, read = _slots(STA, group)

    def lin(
        ours: EquiLinear,
        *lgs: Any,
        mv_perm: Tensor | None = None,
        s_perm: Tensor | None = None,
        where: str = "",
    ) -> None:
        params = _cat_params([_lg_linear_params(x, t, inv, read) for x in lgs])
        _load_linear(ours, params, mv_perm, s_perm, where, inv)

    lin(net.linear_in, model.linear_in, where="linear_in")
    lin(net.linear_out, model.linear_out, where="linear_out")
    for i, (lg_block, block) in enumerate(zip(model.blocks, net.blocks, strict=True)):
        where = f"blocks.{i}."
        norms = [("norm1", "norm_attn")]
        if conditional:
            norms += [("norm2", "norm_cross"), ("norm_cond", "norm_condition"), ("norm3", "norm_mlp")]
        else:
            norms += [("norm2", "norm_mlp")]
        for lg_name, name in norms:
            _load_norm(getattr(block, name), getattr(lg_block, lg_name))
        # self-attention
        attn, lg_attn = block.attention, lg_block.attention
        qkv_lins, qkv_mv_perm, qkv_s_perm = _qkv_layout(attn, lg_attn.qkv_module)
        lin(attn.qkv, *qkv_lins, mv_perm=qkv_mv_perm, s_perm=qkv_s_perm, where=where + "attention.qkv_module")
        lin(attn.out_proj, lg_attn.out_linear, where=where + "attention.out_linear")
        _load_head_scale(attn, lg_attn)
        if conditional:
            cross, lg_cross = block.cross_attention, lg_block.crossattention
            lin(
                cross.q_proj,
                lg_cross.q_linear,
                mv_perm=_head_perm(1, cross.heads, cross.hm),
                s_perm=_head_perm(1, cross.heads, cross.hs),
                where=where + "crossattention.q_linear",
            )
            lin(
                cross.kv_proj,
                lg_cross.kv_linear,
                mv_perm=_kv_perm(cross.kv_heads, cross.hm),
                s_perm=_kv_perm(cross.kv_heads, cross.hs),
                where=where + "crossattention.kv_linear",
            )
            lin(cross.out_proj, lg_cross.out_linear, where=where + "crossattention.out_linear")
            _load_head_scale(cross, lg_cross)
        # MLP
        bilinear, linears, _ = _mlp_parts(lg_block.mlp)
        lin(block.mlp.bilinear.left, bilinear.linear_left, where=where + "mlp.layers.0.linear_left")
        lin(block.mlp.bilinear.right, bilinear.linear_right, where=where + "mlp.layers.0.linear_right")
        lin(block.mlp.bilinear.linear_out, bilinear.linear_out, where=where + "mlp.layers.0.linear_out")
        for j, (ours, lg) in enumerate(zip(block.mlp.linears, linears, strict=True)):
            lin(ours, lg, where=where + f"mlp.linears[{j}]")


def _load_norm(ours: Any, lg: Any) -> None:
    with torch.no_grad():
        if ours.weight is not None:
            ours.weight.copy_(lg.weight_mv)
        if ours.scalar_norm is not None and ours.scalar_norm.weight is not None:
            ours.scalar_norm.weight.copy_(lg.weight_s)


def _load_head_scale(ours: Any, lg: Any) -> None:
    if ours.head_scale is not None:
        with torch.no_grad():
            ours.head_scale.copy_(lg.head_scale)


def _attn_ratio(owner: str, in_mv: int, in_s: int, heads: int, hm: int, hs: int) -> int:
    """The ``attn_ratio`` for which L-GATr derives these head widths."""
    for r in range(1, 4 * max(in_mv, in_s, 1) * heads + 1):
        if max(r * in_mv // heads, 1) == hm and (hs == 0 if in_s == 0 else max(r * in_s // heads, 4) == hs):
            return r
    raise ValueError(
        f"to_lgatr: {owner} head widths ({hm} multivector, {hs} scalar channels) are not L-GATr's for any "
        "attn_ratio"
    )


def to_lgatr(net: GATr | ConditionalGATr | GATrSlim | ConditionalGATrSlim) -> nn.Module:
    """The L-GATr 2.0 net with the weights and the function of a gatorch net built as L-GATr's.

    The inverse of :func:`from_lgatr`: ``to_lgatr(from_lgatr(m))`` has ``m``'s state dict.

    Parameters
    ----------
    net : GATr, ConditionalGATr, GATrSlim or ConditionalGATrSlim
        On :data:`~gatorch.STA`, with L-GATr's options (see the module docstring). The slim
        nets go to :func:`gatorch.interop.lgatr_slim.to_lgatr_slim`.

    Returns
    -------
    lgatr.LGATr, lgatr.ConditionalLGATr, lgatr.LGATrSlim or lgatr.ConditionalLGATrSlim

    Raises
    ------
    ValueError
        If ``net`` uses something L-GATr does not have (named in the message): another
        algebra, the join, distance features, GATr's layer norms, a query/key/value bias,
        or non-zero parameters without an L-GATr counterpart.
    """
    lgatr = _lgatr()
    if isinstance(net, (GATrSlim, ConditionalGATrSlim)):
        from gatorch.interop.lgatr_slim import to_lgatr_slim

        return to_lgatr_slim(net)
    conditional = isinstance(net, ConditionalGATr)
    if not conditional and not isinstance(net, GATr):
        raise TypeError(
            f"to_lgatr: expected a gatorch GATr, ConditionalGATr, GATrSlim or ConditionalGATrSlim, got "
            f"{type(net).__name__}"
        )
    return _to_lgatr(lgatr, net, conditional)


def _to_lgatr(lgatr: Any, net: Any, conditional: bool) -> Any:
    """:func:`to_lgatr` after the type checks (``net``'s submodules are reached by attribute)."""
    if net.alg != STA:
        raise ValueError(f"to_lgatr: L-GATr works in the spacetime algebra STA, got {net.alg!r}")
    attn, mlp, norm = net.attention_config, net.mlp_config, net.norm_config
    attns = [("attention", attn)] + ([("cross_attention", net.cross_attention_config)] if conditional else [])
    for name, a in attns:
        for opt, want in (("qkv_norm", True), ("qkv_bias", False), ("distance_features", False)):
            if getattr(a, opt) != want:
                raise ValueError(f"to_lgatr: L-GATr needs {name}.{opt}={want}, got {getattr(a, opt)}")
    if not mlp.bilinear_norm:
        raise ValueError("to_lgatr: L-GATr needs mlp.bilinear_norm=True")
    if mlp.join:
        raise ValueError("to_lgatr: L-GATr has no join (mlp.join=True)")
    if norm.eps_mode != "clamp" or norm.s_eps != 1e-5:
        raise ValueError(
            "to_lgatr: L-GATr's layer norm needs eps_mode='clamp' and scalar_eps=1e-5, got "
            f"{norm.eps_mode!r} "
            f"and {norm.s_eps}"
        )
    if (norm.mv_affine, norm.scalar_affine) not in ((True, "weight"), (False, "none")):
        raise ValueError(
            "to_lgatr: L-GATr's layer norm has learnt gains on both streams or on neither "
            f"(mv_affine={norm.mv_affine}, scalar_affine={norm.scalar_affine!r})"
        )
    if not math.isclose(float(norm.eps), 0.01, rel_tol=1e-6):
        raise ValueError(f"to_lgatr: L-GATr's layer-norm epsilon is 0.01, got {norm.eps}")
    block0 = net.blocks[0]
    a0 = block0.attention
    hidden_mv, hidden_s = net.linear_in.out_channels, net.linear_in.out_s_channels
    dropout = attn.dropout or mlp.dropout or None
    attention = {
        "num_heads": attn.num_heads,
        "multi_query": attn.multi_query,
        "head_scale": attn.head_scale,
        "attn_ratio": _attn_ratio("attention", hidden_mv, hidden_s, a0.heads, a0.hm, a0.hs),
    }
    kwargs: dict[str, Any] = {
        "num_blocks": len(net.blocks),
        "in_mv_channels": net.linear_in.in_channels,
        "out_mv_channels": net.linear_out.out_channels,
        "hidden_mv_channels": hidden_mv,
        "in_s_channels": net.linear_in.in_s_channels,
        "out_s_channels": net.linear_out.out_s_channels,
        "hidden_s_channels": hidden_s,
        "attention": attention,
        "mlp": {"nonlinearity": mlp.activation, "mlp_ratio": mlp.mlp_ratio, "num_layers_mlp": mlp.num_layers},
        "primitives": {"subgroup": net.group == "spin"},
        "dropout_prob": dropout,
        "norm_elementwise_affine": norm.mv_affine,
        "checkpoint_blocks": net.checkpoint_blocks,
    }
    model: Any
    if conditional:
        c0 = block0.cross_attention
        cross = net.cross_attention_config
        kwargs["mv_channels_cond"] = net.condition_mv_channels
        kwargs["s_channels_cond"] = net.condition_s_channels
        kwargs["crossattention"] = {
            "num_heads": cross.num_heads,
            "multi_query": cross.multi_query,
            "head_scale": cross.head_scale,
            "attn_ratio": _attn_ratio("cross_attention", hidden_mv, hidden_s, c0.heads, c0.hm, c0.hs),
        }
        model = lgatr.ConditionalLGATr(**kwargs)
    else:
        model = lgatr.LGATr(**kwargs)
    ref = next(net.parameters())
    model = model.to(device=ref.device, dtype=ref.dtype)
    _store(net, model, conditional)
    model.train(net.training)
    return model


def _store(net: Any, model: Any, conditional: bool) -> None:
    group = net.group
    t_inv = torch.linalg.inv(torch.from_numpy(_basis_change_np(group == "spin").copy()))
    inv, read = _slots(STA, group)

    def lin(
        ours: EquiLinear,
        *lgs: Any,
        mv_perm: Tensor | None = None,
        s_perm: Tensor | None = None,
        where: str = "",
    ) -> None:
        _store_linear(ours, lgs, t_inv, inv, read, mv_perm, s_perm, where)

    lin(net.linear_in, model.linear_in, where="linear_in: ")
    lin(net.linear_out, model.linear_out, where="linear_out: ")
    for i, (lg_block, block) in enumerate(zip(model.blocks, net.blocks, strict=True)):
        where = f"blocks.{i}."
        norms = [("norm1", "norm_attn")]
        if conditional:
            norms += [("norm2", "norm_cross"), ("norm_cond", "norm_condition"), ("norm3", "norm_mlp")]
        else:
            norms += [("norm2", "norm_mlp")]
        with torch.no_grad():
            for lg_name, name in norms:
                ours, lg = getattr(block, name), getattr(lg_block, lg_name)
                if ours.weight is not None:
                    lg.weight_mv.copy_(ours.weight)
                if ours.scalar_norm is not None and ours.scalar_norm.weight is not None:
                    lg.weight_s.copy_(ours.scalar_norm.weight)
        attn, lg_attn = block.attention, lg_block.attention
        qkv_lins, qkv_mv_perm, qkv_s_perm = _qkv_layout(attn, lg_attn.qkv_module)
        lin(attn.qkv, *qkv_lins, mv_perm=qkv_mv_perm, s_perm=qkv_s_perm, where=where + "attention.qkv: ")
        lin(attn.out_proj, lg_attn.out_linear, where=where + "attention.out_proj: ")
        with torch.no_grad():
            if attn.head_scale is not None:
                lg_attn.head_scale.copy_(attn.head_scale)
        if conditional:
            cross, lg_cross = block.cross_attention, lg_block.crossattention
            lin(
                cross.q_proj,
                lg_cross.q_linear,
                mv_perm=_head_perm(1, cross.heads, cross.hm),
                s_perm=_head_perm(1, cross.heads, cross.hs),
            )
            lin(
                cross.kv_proj,
                lg_cross.kv_linear,
                mv_perm=_kv_perm(cross.kv_heads, cross.hm),
                s_perm=_kv_perm(cross.kv_heads, cross.hs),
            )
            lin(cross.out_proj, lg_cross.out_linear, where=where + "cross_attention.out_proj: ")
            with torch.no_grad():
                if cross.head_scale is not None:
                    lg_cross.head_scale.copy_(cross.head_scale)
        bilinear, linears, _ = _mlp_parts(lg_block.mlp)
        lin(block.mlp.bilinear.left, bilinear.linear_left, where=where + "mlp.bilinear.left: ")
        lin(block.mlp.bilinear.right, bilinear.linear_right, where=where + "mlp.bilinear.right: ")
        lin(block.mlp.bilinear.linear_out, bilinear.linear_out, where=where + "mlp.bilinear.linear_out: ")
        for j, (ours, lg) in enumerate(zip(block.mlp.linears, linears, strict=True)):
            lin(ours, lg, where=where + f"mlp.linears.{j}: ")
