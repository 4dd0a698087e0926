r"""Geometric scaled-dot-product attention over multivector and scalar channels.

Queries and keys are turned into plain feature vectors whose dot product is an invariant,
so the attention weights are invariant and the output (a weighted sum of value
multivectors) is equivariant:

.. math::
    \mathrm{logit}(q, k) = \frac{1}{\sqrt{d}} \Big( \sum_c \langle q_c, k_c \rangle
        + \sum_j q^s_j k^s_j
        - \sum_c \big| w(k_c)\, a(q_c) - w(q_c)\, a(k_c) \big|^2 \Big)

* :math:`\langle q, k\rangle = \sum_A \langle \tilde e_A e_A\rangle_0\, q_A k_A` is the
  algebra's invariant inner product; components along a degenerate vector have weight 0
  and are left out (GATr's inner product);
* the scalar channels enter as an ordinary dot product;
* the last term (optional, Euclidean PGA ``Cl(n, 0, 1)`` only) reads each channel's
  grade-``(n-1)`` part as a homogeneous point with weight :math:`w` (the blade without
  ``e0``) and coordinates :math:`a` (the blades with ``e0``); it equals
  :math:`-(w_q w_k)^2 \, |x_q - x_k|^2` with :math:`x = a / w` the Euclidean point, so for
  normalised points the logit falls with squared Euclidean distance. It is a polynomial in
  the components (no division), invariant under rotations, translations and reflections.

:math:`d` is the number of query features. Everything goes through one call of
:func:`torch.nn.functional.scaled_dot_product_attention`; the logits and the softmax are
computed in float32 (or wider) even under autocast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from gatorch.algebras.algebra import Algebra

__all__ = ["block_diagonal_mask", "distance_components", "geometric_attention", "query_key_features"]


_INNER: dict[Algebra, tuple[list[int], list[float]]] = {}
_DISTANCE: dict[Algebra, tuple[int, list[int]]] = {}


def _inner_components(alg: Algebra) -> tuple[list[int], list[float]]:
    """Blades with a non-zero inner-product weight, and the weights (cached per algebra)."""
    out = _INNER.get(alg)
    if out is None:
        w = alg.constant("inner", None, torch.float64).tolist()
        idx = [i for i, v in enumerate(w) if v != 0.0]
        out = _INNER[alg] = (idx, [w[i] for i in idx])
    return out


def distance_components(alg: Algebra) -> tuple[int, list[int]]:
    """Components that hold a homogeneous point of Euclidean PGA ``Cl(n, 0, 1)``.

    Returns
    -------
    weight_index : int
        The grade-``(n-1)`` blade without the degenerate vector (``e123`` in PGA3).
    coordinate_indices : list of int
        The grade-``(n-1)`` blades that contain it (``e012, e013, e023`` in PGA3).

    Raises
    ------
    ValueError
        If the algebra is not ``Cl(n, 0, 1)`` with ``n >= 1`` Euclidean vectors.
    """
    cached = _DISTANCE.get(alg)
    if cached is not None:
        return cached
    p, q, r = alg.signature
    if r != 1 or q != 0 or p < 1:
        raise ValueError(
            "distance features need Euclidean projective GA Cl(n, 0, 1) (e.g. PGA3 = Cl(3, 0, 1)), "
            f"got {alg!r} with signature {alg.signature}"
        )
    degenerate_bit = 1 << alg.metric.index(0)
    bitmaps = alg.bitmaps
    sl = alg.grade_slice(alg.n - 1)
    coords = [i for i in range(sl.start, sl.stop) if bitmaps[i] & degenerate_bit]
    (weight,) = [i for i in range(sl.start, sl.stop) if not bitmaps[i] & degenerate_bit]
    _DISTANCE[alg] = (weight, coords)
    return weight, coords


class _Pack(torch.autograd.Function):
    """Concatenate ``parts`` (each ``(..., *tail)``) into ``(..., sum prod(tail))`` with one copy each.

    ``torch.cat`` of flattened parts copies twice when a part is not contiguous (the flatten,
    then the cat); multivector heads are views of blade-first storage, so they never are.
    The backward hands back views of the incoming gradient.
    """

    @staticmethod
    def forward(ctx, lead: int, *parts: Tensor) -> Tensor:
        shape = parts[0].shape[:lead]
        widths = [math.prod(p.shape[lead:]) for p in parts]
        out = parts[0].new_empty(*shape, sum(widths))
        offset = 0
        for p, w in zip(parts, widths, strict=True):
            out[..., offset : offset + w].view(p.shape).copy_(p)
            offset += w
        ctx.tails = [p.shape[lead:] for p in parts]
        ctx.widths = widths
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        grads, offset = [], 0
        for tail, w in zip(ctx.tails, ctx.widths, strict=True):
            grads.append(
                grad[..., offset : offset + w].unflatten(-1, tail)
                if len(tail) > 1
                else grad[..., offset : offset + w]
            )
            offset += w
        return (None, *grads)


def _concat_features(parts: list[Tensor], lead: int) -> Tensor:
    """``parts`` with ``lead`` shared leading dims, flattened and concatenated along the last axis."""
    if len(parts) == 1 and parts[0].ndim == lead + 1 and parts[0].is_contiguous():
        return parts[0]
    if torch.compiler.is_compiling() or not torch.is_grad_enabled():
        return torch.cat([p.flatten(lead) if p.ndim > lead + 1 else p for p in parts], -1)
    return _Pack.apply(lead, *parts)


def query_key_features(
    alg: Algebra,
    q_mv: Tensor,
    k_mv: Tensor,
    q_s: Tensor | None = None,
    k_s: Tensor | None = None,
    *,
    distance: bool = False,
) -> tuple[Tensor, Tensor]:
    """Flat query and key features whose dot product is the invariant logit (unscaled).

    Parameters
    ----------
    q_mv : Tensor, shape (..., items_q, channels, dim)
    k_mv : Tensor, shape (..., items_k, channels, dim)
    q_s, k_s : Tensor, shape (..., items, s_channels), optional
    distance : bool
        Add the PGA distance features (see the module docstring).

    Returns
    -------
    q_feat : Tensor, shape (..., items_q, d)
    k_feat : Tensor, shape (..., items_k, d)
    """
    idx, weights = _inner_components(alg)
    if len(idx) < alg.dim:  # drop the components along the degenerate vector
        q_mv_in, k_mv_in = q_mv[..., idx], k_mv[..., idx]
    else:
        q_mv_in, k_mv_in = q_mv, k_mv
    if any(v != 1.0 for v in weights):
        q_mv_in = q_mv_in * torch.tensor(weights, dtype=q_mv.dtype, device=q_mv.device)
    lead = q_mv.ndim - 2
    q_parts = [q_mv_in]
    k_parts = [k_mv_in]
    if (q_s is None) != (k_s is None):
        raise ValueError("query_key_features: pass scalars for both queries and keys, or for neither")
    if q_s is not None and k_s is not None and q_s.shape[-1]:
        q_parts.append(q_s)
        k_parts.append(k_s)
    if distance:
        wi, ai = distance_components(alg)
        qw, kw = q_mv[..., wi], k_mv[..., wi]  # (..., items, C)
        qa, ka = q_mv[..., ai], k_mv[..., ai]  # (..., items, C, n)
        # -|kw qa - qw ka|^2 = qw^2 (-|ka|^2) + |qa|^2 (-kw^2) + sum_i (qw qa_i) (2 kw ka_i)
        q_parts.append(
            torch.cat(
                [(qw * qw)[..., None], (qa * qa).sum(-1, keepdim=True), qw[..., None] * qa], -1
            ).flatten(-2)
        )
        k_parts.append(
            torch.cat(
                [-(ka * ka).sum(-1, keepdim=True), -(kw * kw)[..., None], 2.0 * kw[..., None] * ka], -1
            ).flatten(-2)
        )
    return _concat_features(q_parts, lead), _concat_features(k_parts, lead)


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
    distance: bool = False,
    dropout_p: float = 0.0,
) -> tuple[Tensor, Tensor]:
    r"""Multi-head scaled-dot-product attention with invariant logits.

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
        ``(batch, heads, items_q, items_k)``. A query row with no allowed key gives NaN,
        as in :func:`torch.nn.functional.scaled_dot_product_attention`.
    distance : bool
        Add the PGA distance features (Euclidean PGA only).
    dropout_p : float
        Dropout on the attention weights (pass 0 in eval mode).

    Returns
    -------
    mv : Tensor, shape (batch, heads, items_q, v_channels, dim)
    s : Tensor, shape (batch, heads, items_q, v_s_channels)
        Empty last axis when ``v_s`` is None.
    """
    for name, t in (("q_mv", q_mv), ("k_mv", k_mv), ("v_mv", v_mv)):
        alg.check_dim(t, f"geometric_attention {name}")
        if t.ndim != 5:
            raise ValueError(
                f"geometric_attention: {name} must have shape (batch, heads, items, channels, {alg.dim}), "
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
    out_dtype = v_mv.dtype
    wide = torch.promote_types(q_mv.dtype, torch.float32)
    with torch.autocast(device_type=q_mv.device.type, enabled=False):
        q_feat, k_feat = query_key_features(
            alg,
            q_mv.to(wide),
            k_mv.to(wide),
            None if q_s is None else q_s.to(wide),
            None if k_s is None else k_s.to(wide),
            distance=distance,
        )
        v_channels = v_mv.shape[-2]
        v_parts = [v_mv.to(wide)]
        if v_s is not None:
            v_parts.append(v_s.to(wide))
        v = _concat_features(v_parts, v_mv.ndim - 2)
        if kv_heads != heads:
            k_feat = k_feat.expand(-1, heads, -1, -1)
            v = v.expand(-1, heads, -1, -1)
        if attn_mask is not None and attn_mask.dtype != torch.bool:
            attn_mask = attn_mask.to(wide)
        scale = 1.0 / float(q_feat.shape[-1]) ** 0.5
        h = torch.nn.functional.scaled_dot_product_attention(
            q_feat, k_feat, v, attn_mask=attn_mask, dropout_p=dropout_p, scale=scale
        )
    mv_len = v_channels * alg.dim
    h_mv = h[..., :mv_len].unflatten(-1, (v_channels, alg.dim)).to(out_dtype)
    h_s = h[..., mv_len:].to(out_dtype)
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
