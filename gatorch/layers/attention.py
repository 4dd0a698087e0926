"""``SelfAttention`` and ``CrossAttention`` over items of multivector and scalar channels."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from gatorch.algebras.layout import Layout
from gatorch.functional.algebra import Algebra
from gatorch.functional.attention import (
    distance_components,
    feature_layout,
    geometric_attention,
    layout_feature_layout,
    packed_geometric_attention,
)
from gatorch.functional.attention.masks import check_attn_mask
from gatorch.functional.attention.sets import check_packed_sets
from gatorch.layers._checks import check_algebra, check_layout, check_mv_in, check_scalars, module_dtype
from gatorch.layers.config import AttentionConfig, NormConfig
from gatorch.layers.dropout import GradeDropout
from gatorch.layers.linear import EquiLinear
from gatorch.layers.nonlinear import norm_from_config

__all__ = ["CrossAttention", "SelfAttention"]


def _split_heads(t: Tensor, heads: int, per_head: int) -> Tensor:
    """``(B, N, heads * per_head, ...) -> (B, heads, N, per_head, ...)``."""
    t = t.unflatten(2, (heads, per_head))
    return t.transpose(1, 2)


def _prepare_mask(
    who: str, attn_mask: Tensor | None, batch: tuple[int, ...], heads: int, items_q: int, items_k: int
) -> Tensor | None:
    """A user mask (checked by :func:`check_attn_mask`) for the flattened batch:
    ``(items_q, items_k)`` or ``(B, heads or 1, items_q, items_k)``."""
    mask = check_attn_mask(who, attn_mask, batch, heads, items_q, items_k)
    if mask is None or mask.ndim == 2:
        return mask
    head = mask.shape[-3]
    if all(d == 1 for d in mask.shape[:-3]):
        return mask.reshape(1, head, items_q, items_k)
    return mask.expand(*batch, head, items_q, items_k).reshape(math.prod(batch), head, items_q, items_k)


class _AttentionBase(nn.Module):
    """Projections, heads and output map shared by self- and cross-attention."""

    def __init__(
        self,
        alg: Algebra,
        who: str,
        q_channels: tuple[int, int],
        kv_channels: tuple[int, int],
        out_channels: tuple[int, int],
        config: AttentionConfig | Mapping[str, Any] | None,
        fused: bool,
        group: str,
        norm: NormConfig | Mapping[str, Any] | None,
        layout: Layout | None = None,
    ) -> None:
        super().__init__()
        check_algebra(alg, who)
        cfg = AttentionConfig.cast(config)
        norm_cfg = NormConfig.cast(norm)
        #: The grades the multivectors store (``None``: all blades).
        self.layout = lay = check_layout(alg, layout, who)
        if cfg.distance_features:
            distance_components(alg)  # raises for non-PGA algebras
            if lay is not None and not lay.has_grade(alg.n - 1):
                raise ValueError(
                    f"{who}: distance_features need grade {alg.n - 1} (the points of {alg!r}) in the "
                    f"layout, got layout grades {lay.grades}; pass distance_features=False or store "
                    f"grade {alg.n - 1}"
                )
        self.alg, self.config, self.who = alg, cfg, who
        # which blades enter the query/key features: static, built once (no per-call lookups)
        self.features = feature_layout(alg) if lay is None else layout_feature_layout(lay)
        (qm, qs), (km, ks), (om, os_) = q_channels, kv_channels, out_channels
        for name, value in (("mv_channels", qm), ("context mv_channels", km), ("out_mv_channels", om)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{who}: {name} must be an int >= 1, got {value!r}")
        self.q_channels, self.kv_channels = q_channels, kv_channels
        self.heads = cfg.num_heads
        self.kv_heads = 1 if cfg.multi_query else cfg.num_heads
        self.hm, self.hs = cfg.head_channels(qm, qs)
        if qs == 0 and ks and self.hs:
            raise ValueError(
                f"{who}: keys/values have {ks} scalar channels but queries none; "
                "scalar attention channels need scalar queries"
            )
        if qs == 0:  # keys/values without scalar inputs still read scalars from their multivectors
            self.hs = 0
        hm, hs, h, hkv = self.hm, self.hs, self.heads, self.kv_heads
        qkv_bias = cfg.qkv_bias
        if fused:  # one projection for queries, keys and values
            self.qkv = EquiLinear(
                alg,
                qm,
                (h + 2 * hkv) * hm,
                in_s_channels=qs,
                out_s_channels=(h + 2 * hkv) * hs,
                group=group,
                bias=qkv_bias,
                in_layout=lay,
                out_layout=lay,
            )
        else:
            self.q_proj = EquiLinear(
                alg,
                qm,
                h * hm,
                in_s_channels=qs,
                out_s_channels=h * hs,
                group=group,
                bias=qkv_bias,
                in_layout=lay,
                out_layout=lay,
            )
            self.kv_proj = EquiLinear(
                alg,
                km,
                2 * hkv * hm,
                in_s_channels=ks,
                out_s_channels=2 * hkv * hs,
                group=group,
                bias=qkv_bias,
                in_layout=lay,
                out_layout=lay,
            )
        self.out_proj = EquiLinear(
            alg,
            h * hm,
            om,
            in_s_channels=h * hs,
            out_s_channels=os_,
            group=group,
            in_layout=lay,
            out_layout=lay,
        )
        self.dropout = GradeDropout(alg, cfg.dropout, layout=lay) if cfg.dropout > 0 else None
        # L-GATr's per-head normalisation of queries, keys and values (no learnt parameters)
        self.qkv_norm = (
            norm_from_config(alg, hm, hs, norm_cfg, learnt=False, layout=lay) if cfg.qkv_norm else None
        )
        self.head_scale = nn.Parameter(torch.ones(h)) if cfg.head_scale else None

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"{self.alg!r}, heads={self.heads}, kv_heads={self.kv_heads}, "
            f"head_mv={self.hm}, head_s={self.hs}, "
            f"distance_features={c.distance_features}"
            + ("" if self.layout is None else f", grades={self.layout.grades}")
        )

    def _attend(
        self,
        q: tuple[Tensor, Tensor],
        kv: tuple[Tensor, Tensor],
        batch: tuple[int, ...],
        attn_mask: Tensor | None,
        is_causal: bool,
        packing: tuple[Tensor, int | None, Tensor, int | None] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``q``: ``(B, Nq, h*hm, dim), (B, Nq, h*hs)``; ``kv`` likewise with ``2*hkv`` heads.

        ``packing``: ``(offsets, max_items, offsets_k, max_items_k)`` of sets packed along the
        items (``B == 1``), see :func:`~gatorch.functional.attention.packed_geometric_attention`.
        """
        h, hkv, hm, hs = self.heads, self.kv_heads, self.hm, self.hs
        q_mv = _split_heads(q[0], h, hm)
        k_mv, v_mv = _split_heads(kv[0], 2 * hkv, hm).split(hkv, dim=1)
        q_s: Tensor | None
        k_s: Tensor | None
        v_s: Tensor | None
        if hs:
            q_s = _split_heads(q[1], h, hs)
            k_s, v_s = _split_heads(kv[1], 2 * hkv, hs).split(hkv, dim=1)
        else:
            q_s = k_s = v_s = None
        if self.qkv_norm is not None:
            q_mv, q_s = self._norm_heads(q_mv, q_s)
            k_mv, k_s = self._norm_heads(k_mv, k_s)
            v_mv, v_s = self._norm_heads(v_mv, v_s)
        dropout_p = self.config.dropout if self.training else 0.0
        if packing is not None:  # checked by the caller (check_packed_sets): no attn_mask
            offsets, max_items, offsets_k, max_items_k = packing
            out_mv, out_s = packed_geometric_attention(
                self.alg,
                q_mv,
                k_mv,
                v_mv,
                q_s,
                k_s,
                v_s,
                offsets=offsets,
                offsets_k=offsets_k,
                max_items=max_items,
                max_items_k=max_items_k,
                is_causal=is_causal,
                distance=self.config.distance_features,
                dropout_p=dropout_p,
                layout=self.features,
            )
        else:
            mask = _prepare_mask(self.who, attn_mask, batch, h, q_mv.shape[2], k_mv.shape[2])
            out_mv, out_s = geometric_attention(
                self.alg,
                q_mv,
                k_mv,
                v_mv,
                q_s,
                k_s,
                v_s,
                attn_mask=mask,
                is_causal=is_causal,
                distance=self.config.distance_features,
                dropout_p=dropout_p,
                layout=self.features,
            )
        if self.head_scale is not None:
            scale = self.head_scale.to(out_mv.dtype)
            out_mv = out_mv * scale[:, None, None, None]
            out_s = out_s * scale[:, None, None]
        # (B, h, N, hm, dim) -> (B, N, h * hm, dim), as a view of blade-first storage (one copy),
        # which the output projection reads without another transpose
        out_mv = out_mv.permute(4, 0, 2, 1, 3).contiguous().flatten(3, 4).movedim(0, -1)
        out_s = out_s.transpose(1, 2).flatten(2, 3)
        mv, s = self.out_proj(out_mv, out_s if hs else None)
        if self.dropout is not None:
            mv, s = self.dropout(mv, s)
        return mv, s

    def _norm_heads(self, mv: Tensor, s: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Normalise ``(B, heads, N, channels, dim)`` and ``(B, heads, N, s_channels)`` per head."""
        assert self.qkv_norm is not None
        out_mv, out_s = self.qkv_norm(mv, s)
        return out_mv, (out_s if s is not None else None)


def _flatten_batch(mv: Tensor, s: Tensor | None) -> tuple[Tensor, Tensor | None, tuple[int, ...]]:
    """``(batch..., N, C, dim) -> (B, N, C, dim)`` and the batch shape."""
    if mv.ndim < 3:
        raise ValueError(
            "attention: expected multivectors of shape (batch..., items, channels, dim), "
            f"got {tuple(mv.shape)}"
        )
    batch = tuple(mv.shape[:-3])
    flat = math.prod(batch)  # explicit (not -1): 0 items is a valid, empty input
    mv = mv.reshape(flat, *mv.shape[-3:])
    if s is not None:
        if tuple(s.shape[:-1]) != (*batch, mv.shape[1]):
            raise ValueError(
                f"attention: scalars of shape {tuple(s.shape)} do not match multivectors of shape "
                f"{(*batch, *mv.shape[1:])} (expected (batch..., items, s_channels))"
            )
        s = s.reshape(flat, *s.shape[-2:])
    return mv, s, batch


class SelfAttention(_AttentionBase):
    r"""Multi-head geometric self-attention (GATr).

    Queries, keys and values are :class:`EquiLinear` projections of the input (one fused
    layer); the logits are invariant (inner product of multivector channels, dot product
    of scalar channels, optionally the PGA distance term), see
    :func:`gatorch.functional.attention.geometric_attention`; the heads are concatenated and
    mixed by an output :class:`EquiLinear`. One ``scaled_dot_product_attention`` call, on
    torch's flash / memory-efficient kernels (memory linear in the items) unless an option
    needs the math backend (see :mod:`gatorch.functional.attention`).

    Parameters
    ----------
    alg : Algebra
    mv_channels : int
    s_channels : int
    config : AttentionConfig or mapping, optional
    out_mv_channels, out_s_channels : int, optional
        Default to the input channels.
    group : {"pin", "spin"}
        The group of the projections (:class:`EquiLinear`).
    norm : NormConfig or mapping, optional
        Epsilon settings of the query/key/value norm (``config.qkv_norm``).
    layout : Layout, optional
        The grades the multivectors store (:class:`~gatorch.algebras.Layout`): inputs and
        outputs are ``(..., channels, layout.dim)``, the projections are :class:`EquiLinear`
        between the layout and itself, the inner-product features run over the stored blades
        without a degenerate vector (:func:`~gatorch.functional.attention.layout_feature_layout`),
        and ``distance_features`` need grade ``n - 1`` in the layout (``ValueError`` at
        construction otherwise). ``None`` or a full layout: all blades.

    Shapes
    ------
    ``forward(mv, scalars=None, attn_mask=None, is_causal=False) -> (mv_out, s_out)`` with
    ``mv: (batch..., items, mv_channels, dim)``, ``scalars: (batch..., items, s_channels)``,
    ``attn_mask``: boolean (``True`` = may attend) or additive, shape ``(items, items)``,
    ``(batch..., items, items)`` or ``(batch..., heads or 1, items, items)``
    (:func:`~gatorch.functional.attention.check_attn_mask`; integer masks raise
    ``TypeError``); ``is_causal``: item ``i`` attends to items ``j <= i``
    only (with ``attn_mask`` too when both are given).

    Variable-size sets: ``forward(mv, scalars, offsets=offsets, max_items=m)`` with
    ``mv: (total_items, mv_channels, dim)`` holding the sets one after the other and
    ``offsets = (0, n_0, n_0 + n_1, ..., total_items)``
    (:func:`~gatorch.functional.attention.offsets_from_sizes`): each item attends within its
    own set, as if each set ran alone, without a quadratic mask over the packed batch
    (:func:`~gatorch.functional.attention.packed_geometric_attention`). ``max_items``, the
    size of the largest set, spares a host sync and is needed under ``torch.compile``.

    Examples
    --------
    >>> import torch
    >>> from gatorch import PGA3
    >>> from gatorch.layers import SelfAttention
    >>> attn = SelfAttention(PGA3, 8, 4, {"num_heads": 2, "distance_features": True})
    >>> mv, s = attn(torch.randn(2, 30, 8, 16), torch.randn(2, 30, 4))  # 2 sets of 30 items
    >>> mv.shape, s.shape
    (torch.Size([2, 30, 8, 16]), torch.Size([2, 30, 4]))
    """

    def __init__(
        self,
        alg: Algebra,
        mv_channels: int,
        s_channels: int = 0,
        config: AttentionConfig | Mapping[str, Any] | None = None,
        *,
        out_mv_channels: int | None = None,
        out_s_channels: int | None = None,
        group: str = "pin",
        norm: NormConfig | Mapping[str, Any] | None = None,
        layout: Layout | None = None,
    ) -> None:
        om = mv_channels if out_mv_channels is None else out_mv_channels
        os_ = s_channels if out_s_channels is None else out_s_channels
        super().__init__(
            alg,
            "SelfAttention",
            (mv_channels, s_channels),
            (mv_channels, s_channels),
            (om, os_),
            config,
            fused=True,
            group=group,
            norm=norm,
            layout=layout,
        )

    def forward(
        self,
        mv: Tensor,
        scalars: Tensor | None = None,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        *,
        offsets: Tensor | None = None,
        max_items: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        qm, qs = self.q_channels
        dtype = module_dtype(self)
        check_mv_in(self.alg, self.layout, mv, qm, "SelfAttention", dtype)
        check_scalars(scalars, qs, "SelfAttention", dtype)
        check_packed_sets(
            "SelfAttention", mv, offsets, max_items, scalars=scalars if qs else None, attn_mask=attn_mask,
            what="multivectors",
        )  # fmt: skip
        x, s, batch = _flatten_batch(mv, scalars if qs else None)
        qkv_mv, qkv_s = self.qkv(x, s)
        h, _hkv, hm, hs = self.heads, self.kv_heads, self.hm, self.hs
        q = (qkv_mv[:, :, : h * hm], qkv_s[..., : h * hs])
        kv = (qkv_mv[:, :, h * hm :], qkv_s[..., h * hs :])
        packing = None if offsets is None else (offsets, max_items, offsets, max_items)
        out_mv, out_s = self._attend(q, kv, batch, attn_mask, is_causal, packing)
        return out_mv.reshape(*batch, *out_mv.shape[1:]), out_s.reshape(*batch, *out_s.shape[1:])


class CrossAttention(_AttentionBase):
    r"""Multi-head geometric cross-attention: queries from ``mv``, keys and values from a context.

    Same logits and output map as :class:`SelfAttention`.

    Parameters
    ----------
    alg : Algebra
    mv_channels, s_channels : int
        Channels of the query stream (and, by default, of the output).
    context_mv_channels, context_s_channels : int
        Channels of the context (keys and values).
    config : AttentionConfig or mapping, optional
    out_mv_channels, out_s_channels : int, optional
    group : {"pin", "spin"}
    norm : NormConfig or mapping, optional
        As in :class:`SelfAttention`. The context may have scalar channels without the queries
        having any only if ``config.head_s_channels`` is 0; queries with scalars and a context
        without them is fine (key and value scalars are then read from the context's
        multivectors).
    layout : Layout, optional
        As in :class:`SelfAttention`; queries and context store the same grades.

    Shapes
    ------
    ``forward(mv, context_mv, scalars=None, context_scalars=None, attn_mask=None, is_causal=False)``
    with ``mv: (batch..., items_q, mv_channels, dim)``,
    ``context_mv: (batch..., items_k, context_mv_channels, dim)``, ``attn_mask`` of shape
    ``(items_q, items_k)``, ``(batch..., items_q, items_k)`` or ``(batch..., heads or 1,
    items_q, items_k)``, ``is_causal``: query ``i``
    attends to context items ``j <= i`` only (top-left aligned, as in SDPA); returns
    ``(batch..., items_q, out_mv_channels, dim)`` and ``(batch..., items_q, out_s_channels)``.
    Packed sets: ``offsets=`` / ``context_offsets=`` (query set ``i`` attends to context set
    ``i``), ``max_items=`` / ``context_max_items=``, as in :class:`SelfAttention`.
    """

    def __init__(
        self,
        alg: Algebra,
        mv_channels: int,
        context_mv_channels: int,
        s_channels: int = 0,
        context_s_channels: int = 0,
        config: AttentionConfig | Mapping[str, Any] | None = None,
        *,
        out_mv_channels: int | None = None,
        out_s_channels: int | None = None,
        group: str = "pin",
        norm: NormConfig | Mapping[str, Any] | None = None,
        layout: Layout | None = None,
    ) -> None:
        om = mv_channels if out_mv_channels is None else out_mv_channels
        os_ = s_channels if out_s_channels is None else out_s_channels
        super().__init__(
            alg,
            "CrossAttention",
            (mv_channels, s_channels),
            (context_mv_channels, context_s_channels),
            (om, os_),
            config,
            fused=False,
            group=group,
            norm=norm,
            layout=layout,
        )

    def forward(
        self,
        mv: Tensor,
        context_mv: Tensor,
        scalars: Tensor | None = None,
        context_scalars: Tensor | None = None,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        *,
        offsets: Tensor | None = None,
        context_offsets: Tensor | None = None,
        max_items: int | None = None,
        context_max_items: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        (qm, qs), (km, ks) = self.q_channels, self.kv_channels
        dtype = module_dtype(self)
        check_mv_in(self.alg, self.layout, mv, qm, "CrossAttention", dtype)
        check_mv_in(self.alg, self.layout, context_mv, km, "CrossAttention context", dtype)
        check_scalars(scalars, qs, "CrossAttention", dtype)
        check_scalars(context_scalars, ks, "CrossAttention context", dtype)
        if (offsets is None) != (context_offsets is None):
            raise ValueError("CrossAttention: packed sets need both offsets and context_offsets")
        check_packed_sets(
            "CrossAttention", mv, offsets, max_items, scalars=scalars if qs else None, attn_mask=attn_mask,
            what="multivectors",
        )  # fmt: skip
        check_packed_sets(
            "CrossAttention context", context_mv, context_offsets, context_max_items,
            scalars=context_scalars if ks else None, name="context_offsets", max_name="context_max_items",
            what="multivectors",
        )  # fmt: skip
        x, s, batch = _flatten_batch(mv, scalars if qs else None)
        c, cs, cbatch = _flatten_batch(context_mv, context_scalars if ks else None)
        if cbatch != batch:
            raise ValueError(f"CrossAttention: batch dims of queries {batch} and context {cbatch} differ")
        q = self.q_proj(x, s)
        kv = self.kv_proj(c, cs)
        packing = None
        if offsets is not None and context_offsets is not None:
            packing = (offsets, max_items, context_offsets, context_max_items)
        out_mv, out_s = self._attend(q, kv, batch, attn_mask, is_causal, packing)
        return out_mv.reshape(*batch, *out_mv.shape[1:]), out_s.reshape(*batch, *out_s.shape[1:])
