"""The one validator of attention masks, and the keys a mask leaves reachable.

Every net, layer and attention function that takes ``attn_mask=`` (or a cross-attention
mask) runs :func:`check_attn_mask` on it, so the same bad mask gives the same message
wherever it enters. The rules:

* **dtype**: ``torch.bool`` (``True`` = may attend) or a floating-point *additive* mask
  (added to the logits; ``-inf`` = may not attend). Integer masks (``0/1``) are refused
  with a ``TypeError``: SDPA would add them to the logits instead of masking, a silent
  wrong answer. Convert a 0/1 mask with ``mask.bool()``.
* **shape** (when the caller knows its batch dims): ``(items_q, items_k)``,
  ``(batch..., items_q, items_k)`` (leading dims broadcast against the batch dims, right
  aligned) or ``(batch..., heads or 1, items_q, items_k)`` (SDPA's / lgatr's per-head form,
  e.g. ``(B, 1, N, N)``).

:func:`attended_keys` marks the keys that at least one query may attend to; the attention
functions zero the keys and values of all other keys before SDPA, so that a non-finite value
in an item that is masked out for every query cannot reach any other item's output (masked
keys otherwise enter as ``0 * nan = nan``). Shape and dtype checks only: nothing here reads
tensor values on the host, so it all traces under ``torch.compile(fullgraph=True)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["attended_keys", "check_attn_mask", "mask_keys"]


def check_attn_mask(
    who: str,
    attn_mask: object,
    batch: tuple[int, ...] | None = None,
    heads: int | None = None,
    items_q: int | None = None,
    items_k: int | None = None,
    *,
    name: str = "attn_mask",
) -> Tensor | None:
    """Check a user's attention mask; with the shapes given, bring it to SDPA's broadcast form.

    Parameters
    ----------
    who : str
        The caller, first word of every message (e.g. ``"GATr"``).
    attn_mask : Tensor or None
        Boolean (``True`` = may attend) or floating-point additive mask.
    batch : tuple of int, optional
        The caller's batch dims. Without it only the type and dtype are checked and the
        mask is returned as it is (the functional attention, which leaves broadcasting to SDPA).
    heads : int, optional
        Number of attention heads (a per-head mask may have ``heads`` or 1 there).
    items_q, items_k : int, optional
        Number of queries and keys.
    name : str
        The caller's name of the mask, in the messages (e.g. ``"crossattn_mask"``).

    Returns
    -------
    Tensor or None
        ``None`` for no mask; else the mask, ``(items_q, items_k)`` when given 2-D, else of
        shape ``(batch..., heads or 1, items_q, items_k)`` with 1 where it broadcasts.

    Raises
    ------
    TypeError
        The mask is not a tensor, or its dtype is neither bool nor floating point.
    ValueError
        Its shape is none of the accepted ones, naming the expected and the received shape.
    """
    if attn_mask is None:
        return None
    if not isinstance(attn_mask, Tensor):
        raise TypeError(
            f"{who}: {name} must be a torch.Tensor (bool or float), got {type(attn_mask).__name__}"
        )
    if attn_mask.dtype != torch.bool and not attn_mask.is_floating_point():
        raise TypeError(
            f"{who}: {name} must be a bool tensor (True = may attend) or a floating-point additive "
            f"mask, got dtype {attn_mask.dtype}; convert a 0/1 mask with mask.bool()"
        )
    if batch is None or heads is None or items_q is None or items_k is None:
        return attn_mask
    nb = len(batch)
    accepted = (
        f"({items_q}, {items_k}), (batch..., {items_q}, {items_k}) or (batch..., heads or 1, "
        f"{items_q}, {items_k}) with batch {batch} and {heads} heads"
    )
    if attn_mask.ndim < 2 or tuple(attn_mask.shape[-2:]) != (items_q, items_k):
        raise ValueError(
            f"{who}: {name} must have shape (..., {items_q}, {items_k}) (queries x keys): {accepted}; "
            f"got {tuple(attn_mask.shape)}"
        )
    if attn_mask.ndim == 2:
        return attn_mask
    if attn_mask.ndim <= nb + 2:  # (batch..., items_q, items_k), leading dims right aligned
        lead = (1,) * (nb + 2 - attn_mask.ndim) + tuple(attn_mask.shape[:-2])
        head = 1
        mask = attn_mask.reshape(*lead, 1, items_q, items_k)
    elif attn_mask.ndim == nb + 3:  # (batch..., heads or 1, items_q, items_k)
        lead, head = tuple(attn_mask.shape[:-3]), attn_mask.shape[-3]
        mask = attn_mask
    else:
        raise ValueError(f"{who}: {name} must have shape {accepted}, got {tuple(attn_mask.shape)}")
    if head not in (1, heads) or any(a not in (1, b) for a, b in zip(lead, batch, strict=True)):
        raise ValueError(
            f"{who}: {name} of shape {tuple(attn_mask.shape)} does not broadcast against "
            f"(batch..., heads, items_q, items_k) = {(*batch, heads, items_q, items_k)}; accepted: {accepted}"
        )
    return mask


def attended_keys(attn_mask: Tensor) -> Tensor:
    """Whether each key may be attended to by at least one query: ``(..., items_k)`` bool.

    ``attn_mask`` is boolean (``True`` = may attend) or additive (``-inf`` = may not), of
    shape ``(..., items_q, items_k)``; the query axis is reduced, the others are kept.
    """
    allowed = attn_mask if attn_mask.dtype == torch.bool else attn_mask != float("-inf")
    return allowed.any(dim=-2)


def mask_keys(attn_mask: Tensor | None, *features: Tensor) -> tuple[Tensor, ...]:
    """Zero the key / value rows ``(..., items_k, width)`` of keys no query may attend to.

    Such keys get probability 0 for every query, so zeroing them changes no finite result,
    but a non-finite value in them would otherwise reach every output as ``0 * nan``.
    ``attn_mask`` broadcasts against ``(..., items_q, items_k)`` as in SDPA; without a mask
    the features come back as they are.
    """
    if attn_mask is None:
        return features
    alive = attended_keys(attn_mask)[..., None]
    return tuple(torch.where(alive, f, f.new_zeros(())) for f in features)
