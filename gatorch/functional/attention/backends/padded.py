"""Packed-attention backend ``"padded"``: the sets padded per bucket, SDPA with a key-padding mask."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Buckets", "bucket_plan", "packed_padded"]


@dataclass(frozen=True)
class Buckets:
    """How the padded backend groups the sets: bucket ``b`` holds ``counts[b]`` sets padded to
    ``len_q[b]`` queries and ``len_k[b]`` keys; buckets lie one after the other in the padded
    buffers. ``set_base_q[i]`` / ``set_base_k[i]``: first slot of set ``i``; ``order``: the
    sets in bucket order (``None``: packing order, one bucket).
    """

    counts: tuple[int, ...]
    len_q: tuple[int, ...]
    len_k: tuple[int, ...]
    set_base_q: list[int] | None = None
    set_base_k: list[int] | None = None
    order: list[int] | None = None


def bucket_plan(sizes_q: Sequence[int], sizes_k: Sequence[int], buckets: int) -> Buckets:
    """Sets sorted by size and cut into ``buckets`` groups of (nearly) equal count, each padded
    to its own largest set: far less padding than one common length when sizes vary."""
    num_sets = len(sizes_q)
    order = sorted(range(num_sets), key=lambda i: (sizes_q[i] + sizes_k[i], i))
    g = max(1, min(buckets, num_sets))
    bounds = [num_sets * b // g for b in range(g + 1)]
    groups = [order[a:b] for a, b in itertools.pairwise(bounds)]
    len_q = tuple(max([1, *(sizes_q[i] for i in grp)]) for grp in groups)
    len_k = tuple(max([1, *(sizes_k[i] for i in grp)]) for grp in groups)
    base_q, base_k = [0] * num_sets, [0] * num_sets
    start_q = start_k = 0
    for grp, lq, lk in zip(groups, len_q, len_k, strict=True):
        for rank, i in enumerate(grp):
            base_q[i], base_k[i] = start_q + rank * lq, start_k + rank * lk
        start_q, start_k = start_q + len(grp) * lq, start_k + len(grp) * lk
    return Buckets(tuple(len(grp) for grp in groups), len_q, len_k, base_q, base_k, order)


def _pad_sets(x: Tensor, flat: Tensor, slots: int) -> Tensor:
    """``(B, H, T, W)`` packed -> ``(B, slots, H, W)``: item ``t`` at slot ``flat[t]``, zeros elsewhere."""
    b, h, _, w = x.shape
    padded = x.new_zeros(b, slots, h, w)
    padded.index_copy_(1, flat, x.transpose(1, 2))  # in place on a fresh buffer: autograd records it
    return padded


def _bucket_views(padded: Tensor, counts: Sequence[int], lengths: Sequence[int]) -> list[Tensor]:
    """``(B, slots, H, W)`` cut into buckets of ``(B * count, H, length, W)``, in order.

    One ``split`` (its backward is one ``cat``, not a zero-filled buffer per slice).
    """
    b, _, h, w = padded.shape
    parts = padded.split([n * length for n, length in zip(counts, lengths, strict=True)], dim=1)
    return [
        p.reshape(b * n, length, h, w).transpose(1, 2)
        for p, n, length in zip(parts, counts, lengths, strict=True)
    ]


def packed_padded(
    q: Tensor, k: Tensor, v: Tensor, lab_q: Tensor, pos_q: Tensor, lab_k: Tensor, pos_k: Tensor,
    sizes_k: Tensor, plan: Buckets, is_causal: bool, dropout_p: float, scale: float,
) -> Tensor:  # fmt: skip
    """SDPA on the sets padded to ``(batch * sets, heads, length, width)``, one call per bucket,
    with a key-padding mask.

    ``sizes_k`` : ``(num_sets,)`` key-set sizes, in packing order. Padded keys and values are
    zero vectors. A set without keys may attend to its first (zero) padded key alone, which
    gives the exact output of attention over no keys (zero) with zero gradients, and no fully
    masked row (no NaN in any backend).
    """
    batch, heads, total_q, _ = q.shape
    width = v.shape[-1]
    device = q.device
    if total_q == 0:
        return q.new_zeros(batch, heads, 0, width)
    if plan.set_base_q is None or plan.set_base_k is None or plan.order is None:  # one bucket, packing order
        sets = torch.arange(plan.counts[0], device=device)
        base_q, base_k = sets * plan.len_q[0], sets * plan.len_k[0]
    else:
        base_q = torch.tensor(plan.set_base_q, device=device)
        base_k = torch.tensor(plan.set_base_k, device=device)
        sizes_k = sizes_k[torch.tensor(plan.order, device=device)]
    flat_q, flat_k = base_q[lab_q] + pos_q, base_k[lab_k] + pos_k
    slots_q = sum(n * lq for n, lq in zip(plan.counts, plan.len_q, strict=True))
    slots_k = sum(n * lk for n, lk in zip(plan.counts, plan.len_k, strict=True))
    qp, kp, vp = _pad_sets(q, flat_q, slots_q), _pad_sets(k, flat_k, slots_k), _pad_sets(v, flat_k, slots_k)
    outs = []
    start_set = 0
    qbs = _bucket_views(qp, plan.counts, plan.len_q)
    kbs, vbs = _bucket_views(kp, plan.counts, plan.len_k), _bucket_views(vp, plan.counts, plan.len_k)
    for n, lq, lk, qb, kb, vb in zip(plan.counts, plan.len_q, plan.len_k, qbs, kbs, vbs, strict=True):
        if kb.shape[1] != heads:  # multi-query: a stride-0 view over the heads
            kb, vb = kb.expand(-1, heads, -1, -1), vb.expand(-1, heads, -1, -1)
        cols = torch.arange(lk, device=device)
        n_k = sizes_k[start_set : start_set + n].clamp(min=1)
        mask = (cols[None, :] < n_k[:, None])[:, None, None, :]  # (n, 1, 1, lk)
        if is_causal:
            rows = torch.arange(lq, device=device)
            mask = mask & (rows[:, None] >= cols[None, :])  # (n, 1, lq, lk)
        if batch > 1:
            mask = mask.repeat(batch, 1, 1, 1)
        out = torch.nn.functional.scaled_dot_product_attention(
            qb, kb, vb, attn_mask=mask, dropout_p=dropout_p, scale=scale
        )
        # SDPA's CPU flash kernel returns (B, L, H, W) storage: the reshape is a view then
        outs.append(out.transpose(1, 2).reshape(batch, n * lq, heads, width))
        start_set += n
    rows_out = outs[0] if len(outs) == 1 else torch.cat(outs, 1)
    # one gather back to packing order; its backward is an index_add (no sort, unlike advanced indexing)
    return rows_out.index_select(1, flat_q).transpose(1, 2)
