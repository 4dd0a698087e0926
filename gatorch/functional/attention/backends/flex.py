"""Packed-attention backend ``"flex"``: ``flex_attention`` with a document (set) block mask."""

from __future__ import annotations

from torch import Tensor

__all__ = ["packed_flex"]


def packed_flex(
    q: Tensor, k: Tensor, v: Tensor, lab_q: Tensor, pos_q: Tensor, lab_k: Tensor, pos_k: Tensor,
    is_causal: bool, scale: float,
) -> Tensor:  # fmt: skip
    """:func:`torch.nn.attention.flex_attention.flex_attention` with a document (set) block mask."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    def same_set(b: Tensor, h: Tensor, qi: Tensor, ki: Tensor) -> Tensor:
        allowed = lab_q[qi] == lab_k[ki]
        if is_causal:
            allowed = allowed & (pos_q[qi] >= pos_k[ki])
        return allowed

    block_mask = create_block_mask(same_set, None, None, q.shape[2], k.shape[2], device=q.device)
    out = flex_attention(q, k, v, block_mask=block_mask, scale=scale, enable_gqa=k.shape[1] != q.shape[1])
    assert isinstance(out, Tensor)
    return out
