"""Packed-attention backend ``"nested"``: SDPA on nested jagged tensors (torch's varlen kernels)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["packed_nested"]


def packed_nested(
    q: Tensor, k: Tensor, v: Tensor, offsets: Tensor, offsets_k: Tensor, max_q: int | None,
    max_k: int | None, is_causal: bool, dropout_p: float, scale: float, who: str,
) -> Tensor:  # fmt: skip
    """SDPA on nested jagged tensors ``(num_sets, batch * heads, j, width)``.

    Torch picks the kernel: CUDA flash / memory-efficient varlen kernels (``cu_seqlens``),
    and on CPU the math backend run set by set.
    """
    batch, heads, total_q, _ = q.shape
    width_v = v.shape[-1]
    if k.shape[1] != heads:
        k, v = k.expand(-1, heads, -1, -1), v.expand(-1, heads, -1, -1)

    def nest(x: Tensor, off: Tensor, max_items: int | None) -> Tensor:
        w = x.shape[-1]
        values = x.permute(2, 0, 1, 3).reshape(x.shape[2], batch * heads, w).contiguous()  # (T, B*H, W)
        nt = torch.nested.nested_tensor_from_jagged(values, off, max_seqlen=max_items)
        return nt.transpose(1, 2)

    off_q, off_k = offsets.to(torch.int64), offsets_k.to(torch.int64)
    if total_q == 0:
        return q.new_zeros(batch, heads, 0, width_v)
    keyless = ((off_k[1:] == off_k[:-1]) & (off_q[1:] > off_q[:-1])).nonzero()
    if keyless.numel():  # torch 2.13's jagged math path reads out of bounds for such sets
        raise ValueError(
            f"{who}: backend 'nested' cannot attend from a non-empty query set to "
            f"an empty key set (sets {keyless.flatten().tolist()}); use 'padded' or 'dense'"
        )
    out = torch.nn.functional.scaled_dot_product_attention(
        nest(q, off_q, max_q),
        nest(k, off_k, max_k),
        nest(v, off_k, max_k),
        dropout_p=dropout_p,
        is_causal=is_causal,
        scale=scale,
    )
    values = out.transpose(1, 2).values()  # (T, B*H, W_v)
    return values.reshape(total_q, batch, heads, width_v).permute(1, 2, 0, 3)
