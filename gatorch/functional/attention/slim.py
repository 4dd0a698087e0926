"""Attention of the slim (vector + scalar) layers: SDPA on their packed per-head features.

The slim layers (:mod:`gatorch.layers.slim`) build per-head features ``(..., heads, items,
n * hv + hs)`` (metric-weighted vectors and scalars) whose dot product is the invariant
logit; :func:`slim_attention` runs SDPA on them in float32 (or wider) under autocast,
:func:`packed_slim_attention` does the same on variable-size sets packed along the items
(through :func:`~gatorch.functional.attention.packed_scaled_dot_product_attention`), and
:func:`heads_mask` brings the masks the slim layers accept to SDPA's shape.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gatorch.functional.attention.masks import check_attn_mask, mask_keys
from gatorch.functional.attention.packed import packed_scaled_dot_product_attention
from gatorch.functional.precision import as_dtype, no_autocast, wide_dtype

__all__ = ["heads_mask", "packed_slim_attention", "slim_attention"]


def slim_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
) -> Tensor:
    """Scaled-dot-product attention on packed features, in float32 (or wider) under autocast.

    Parameters
    ----------
    q : Tensor, shape (..., heads, items_q, d)
    k : Tensor, shape (..., heads, items_k, d)
    v : Tensor, shape (..., heads, items_k, d_v)
    attn_mask : Tensor, optional
        Boolean (``True`` = may attend) or additive, broadcastable to
        ``(..., heads, items_q, items_k)``; integer masks are refused (``TypeError``). Keys no
        query may attend to are zeroed before SDPA (a NaN in them reaches no output).
    is_causal : bool
        Query ``i`` attends to keys ``j <= i`` only (top-left aligned); combined with
        ``attn_mask`` when both are given.

    Returns
    -------
    Tensor, shape (..., heads, items_q, d_v), in the widest input dtype (at least float32).
    """
    attn_mask = check_attn_mask("slim_attention", attn_mask)
    wide = wide_dtype(q.dtype, k.dtype, v.dtype)
    with no_autocast(q.device.type):
        if attn_mask is not None:
            if attn_mask.dtype != torch.bool:
                attn_mask = as_dtype(attn_mask, wide)
            if is_causal:
                items_q, items_k = q.shape[-2], k.shape[-2]
                allowed = torch.ones(items_q, items_k, dtype=torch.bool, device=q.device).tril()
                if attn_mask.dtype == torch.bool:
                    attn_mask = attn_mask & allowed
                else:
                    attn_mask = attn_mask.masked_fill(~allowed, float("-inf"))
                is_causal = False
            k, v = mask_keys(attn_mask, k, v)
        return F.scaled_dot_product_attention(
            as_dtype(q, wide), as_dtype(k, wide), as_dtype(v, wide), attn_mask=attn_mask, is_causal=is_causal
        )


def packed_slim_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    offsets: Tensor,
    offsets_k: Tensor | None = None,
    max_items: int | None = None,
    max_items_k: int | None = None,
    is_causal: bool = False,
) -> Tensor:
    """:func:`slim_attention` on sets packed along the items axis: each item attends within its set.

    Parameters
    ----------
    q : Tensor, shape (heads, total_q, d)
    k : Tensor, shape (heads, total_k, d)
    v : Tensor, shape (heads, total_k, d_v)
    offsets : Tensor, shape (num_sets + 1,), integer
        Cumulative starts of the query sets (:func:`~gatorch.functional.attention.offsets_from_sizes`).
    offsets_k : Tensor, shape (num_sets + 1,), integer, optional
        Cumulative starts of the key/value sets (query set ``i`` attends to key set ``i``);
        default ``offsets``.
    max_items, max_items_k : int, optional
        Largest query (key) set as a Python int; needed under ``torch.compile``.
    is_causal : bool
        Within each set, query ``i`` attends to keys ``j <= i`` only.

    Returns
    -------
    Tensor, shape (heads, total_q, d_v), in the widest input dtype (at least float32).
    """
    wide = wide_dtype(q.dtype, k.dtype, v.dtype)
    with no_autocast(q.device.type):
        out = packed_scaled_dot_product_attention(
            as_dtype(q, wide)[None],
            as_dtype(k, wide)[None],
            as_dtype(v, wide)[None],
            offsets=offsets,
            offsets_k=offsets_k,
            max_items=max_items,
            max_items_k=max_items_k,
            is_causal=is_causal,
        )
    return out[0]


def heads_mask(
    who: str, attn_mask: Tensor | None, batch: tuple[int, ...], heads: int, items_q: int, items_k: int
) -> Tensor | None:
    """A user mask brought to a shape broadcastable against ``(batch..., heads, items_q, items_k)``.

    :func:`~gatorch.functional.attention.masks.check_attn_mask` (the one mask validator):
    ``(items_q, items_k)``, ``(batch..., items_q, items_k)`` or ``(batch..., heads or 1,
    items_q, items_k)``, boolean or floating point.
    """
    return check_attn_mask(who, attn_mask, batch, heads, items_q, items_k)
