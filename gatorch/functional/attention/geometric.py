"""Geometric scaled-dot-product attention over a padded batch (:func:`geometric_attention`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gatorch.functional.attention.features import (
    FeatureLayout,
    attention_inputs,
    check_feature_dim,
    feature_layout,
)
from gatorch.functional.attention.masks import check_attn_mask, mask_keys

if TYPE_CHECKING:
    from gatorch.algebras.algebra import AlgebraData as Algebra

__all__ = ["block_diagonal_mask", "geometric_attention"]


def _causal_mask(attn_mask: Tensor, items_q: int, items_k: int) -> Tensor:
    """``attn_mask`` with the causal (top-left aligned, as in SDPA) constraint folded in."""
    allowed = torch.ones(items_q, items_k, dtype=torch.bool, device=attn_mask.device).tril()
    if attn_mask.dtype == torch.bool:
        return attn_mask & allowed
    return attn_mask.masked_fill(~allowed, float("-inf"))


def geometric_attention(
    alg: Algebra,
    q_mv: Tensor,
    k_mv: Tensor,
    v_mv: Tensor,
    q_s: Tensor | None = None,
    k_s: Tensor | None = None,
    v_s: Tensor | None = None,
    *,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    distance: bool = False,
    dropout_p: float = 0.0,
    layout: FeatureLayout | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Multi-head scaled-dot-product attention with invariant logits.

    One call of :func:`torch.nn.functional.scaled_dot_product_attention` on query/key
    features and values padded to one head size (see the module docstring), so that its
    flash / memory-efficient kernels take it whenever the options allow.

    Parameters
    ----------
    q_mv : Tensor, shape (batch, heads, items_q, channels, dim)
    k_mv, v_mv : Tensor, shape (batch, kv_heads, items_k, channels, dim)
        ``kv_heads`` is ``heads`` or 1 (multi-query attention: one key/value head shared).
        Value channels may differ from query/key channels.
    q_s, k_s : Tensor, shape (batch, heads or kv_heads, items, s_channels), optional
        Scalar query/key channels (both or neither).
    v_s : Tensor, shape (batch, kv_heads, items_k, v_s_channels), optional
    attn_mask : Tensor, optional
        Boolean (``True`` = may attend) or additive float mask broadcastable to
        ``(batch, heads, items_q, items_k)``; integer masks are refused (``TypeError``: use
        ``mask.bool()``), see :func:`~gatorch.functional.attention.masks.check_attn_mask`.
        A query row with no allowed key gives what
        :func:`torch.nn.functional.scaled_dot_product_attention` gives (zeros in current
        torch). Keys that no query may attend to are zeroed before SDPA, so a NaN or inf in
        them reaches no output; a non-finite value in a key some query attends to
        propagates (as it should).
    is_causal : bool
        Query ``i`` attends to keys ``j <= i`` only (top-left aligned when
        ``items_q != items_k``, as in SDPA). Combined with ``attn_mask`` when both are given.
    distance : bool
        Add the PGA distance features (Euclidean PGA only).
    dropout_p : float
        Dropout on the attention weights (pass 0 in eval mode).
    layout : FeatureLayout, optional
        ``feature_layout(alg)``, precomputed (layers build it at construction); built here
        when omitted. ``layout_feature_layout(lay)`` for multivectors that store the blades
        of a :class:`~gatorch.algebras.Layout` ``lay`` only: every ``dim`` above is then
        ``lay.dim``, the inner product runs over the stored blades and the distance features
        need grade ``n - 1`` in ``lay``.

    Returns
    -------
    mv : Tensor, shape (batch, heads, items_q, v_channels, dim)
    s : Tensor, shape (batch, heads, items_q, v_s_channels)
        Empty last axis when ``v_s`` is None.
    """
    layout = feature_layout(alg) if layout is None else layout
    dim = layout.dim
    for name, t in (("q_mv", q_mv), ("k_mv", k_mv), ("v_mv", v_mv)):
        if layout.grades is None:
            alg.check_dim(t, f"geometric_attention {name}")
        else:
            check_feature_dim(layout, t, f"geometric_attention {name}")
        if t.ndim != 5:
            raise ValueError(
                f"geometric_attention: {name} must have shape (batch, heads, items, channels, {dim}), "
                f"got {tuple(t.shape)}"
            )
    if q_mv.shape[-2] != k_mv.shape[-2]:
        raise ValueError(
            f"geometric_attention: queries and keys need the same channels, got {q_mv.shape[-2]} and "
            f"{k_mv.shape[-2]}"
        )
    heads, kv_heads = q_mv.shape[1], k_mv.shape[1]
    if kv_heads not in (1, heads) or v_mv.shape[1] != kv_heads:
        raise ValueError(
            f"geometric_attention: keys/values need {heads} heads or 1 (multi-query), got keys "
            f"{tuple(k_mv.shape)} and values {tuple(v_mv.shape)}"
        )
    attn_mask = check_attn_mask("geometric_attention", attn_mask)
    out_dtype = v_mv.dtype
    wide = torch.promote_types(q_mv.dtype, torch.float32)
    items_q, items_k = q_mv.shape[2], k_mv.shape[2]
    with torch.autocast(device_type=q_mv.device.type, enabled=False):
        q_feat, k_feat, v, d, dv = attention_inputs(alg, q_mv, k_mv, v_mv, q_s, k_s, v_s, distance, layout)
        if kv_heads != heads:  # multi-query: a stride-0 view over the heads
            k_feat = k_feat.expand(-1, heads, -1, -1)
            v = v.expand(-1, heads, -1, -1)
        if attn_mask is not None:
            if attn_mask.dtype != torch.bool:
                attn_mask = attn_mask.to(wide)
            if is_causal:
                attn_mask, is_causal = _causal_mask(attn_mask, items_q, items_k), False
            k_feat, v = mask_keys(attn_mask, k_feat, v)
        h = torch.nn.functional.scaled_dot_product_attention(
            q_feat,
            k_feat,
            v,
            attn_mask=attn_mask,
            dropout_p=dropout_p,
            is_causal=is_causal,
            scale=1.0 / math.sqrt(d),
        )
    v_channels = v_mv.shape[-2]
    mv_len = v_channels * dim
    h_mv = h[..., :mv_len].unflatten(-1, (v_channels, dim)).to(out_dtype)
    h_s = h[..., mv_len:dv].to(out_dtype)
    return h_mv, h_s


def block_diagonal_mask(sizes: Sequence[int], device: torch.device | str | None = None) -> Tensor:
    """Boolean mask that lets items attend only within their own set.

    Several variable-size sets packed along one items axis (``sum(sizes)`` items) then
    run as one batch: pass the mask as ``attn_mask``.

    Parameters
    ----------
    sizes : sequence of int
        Number of items in each set, in packing order.

    Returns
    -------
    Tensor, shape (sum(sizes), sum(sizes)), dtype bool
    """
    sizes = [int(s) for s in sizes]
    if not sizes or any(s < 1 for s in sizes):
        raise ValueError(f"block_diagonal_mask: sizes must be positive ints, got {sizes}")
    labels = torch.repeat_interleave(
        torch.arange(len(sizes), device=device), torch.tensor(sizes, device=device)
    )
    return labels[:, None] == labels[None, :]
