"""Packed-attention backend ``"dense"``: one SDPA call with the block-diagonal mask (the reference)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["packed_dense"]


def packed_dense(
    q: Tensor, k: Tensor, v: Tensor, lab_q: Tensor, pos_q: Tensor, lab_k: Tensor, pos_k: Tensor,
    is_causal: bool, dropout_p: float, scale: float,
) -> Tensor:  # fmt: skip
    """SDPA over the whole packed batch with a dense ``(T_q, T_k)`` block-diagonal mask."""
    mask = lab_q[:, None] == lab_k[None, :]
    if is_causal:
        mask = mask & (pos_q[:, None] >= pos_k[None, :])
    return torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale
    )
