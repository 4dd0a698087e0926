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

Fused kernels
-------------
SDPA's flash and memory-efficient kernels (CPU flash; CUDA flash and memory-efficient)
need one head size for queries, keys and values, and the CUDA ones want it a multiple of
8. The query/key features (width :math:`d`) and the values (``v_channels * dim +
v_s_channels``) are therefore written into buffers of one common width, rounded up to a
multiple of 8, with zero columns: they add nothing to :math:`q \cdot k`, the scale stays
:math:`1/\sqrt{d}`, and the padding is sliced off the output. Multi-query keys/values are
expanded over the heads (a stride-0 view, which every backend accepts). The default
options, distance features, multi-query attention and ``is_causal`` then run in memory
linear in the number of items. What still falls back to the quadratic math backend is
what the kernels themselves cannot express: a dense ``attn_mask`` on CUDA flash (CUDA
memory-efficient and CPU flash take it), dropout on the attention weights on CPU, and
double backward (``create_graph=True`` through the attention; force
``torch.nn.attention.sdpa_kernel(SDPBackend.MATH)`` for it).

Everything here is a pure function of the tensors and of static metadata (the algebra's
signature and the channel counts), with no caches: it traces under
``torch.compile(fullgraph=True)``. Layers build the :class:`FeatureLayout` once at
construction.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from gatorch.algebras.algebra import Algebra

__all__ = [
    "FeatureLayout",
    "block_diagonal_mask",
    "distance_components",
    "feature_layout",
    "geometric_attention",
    "query_key_features",
]

#: Head size granularity of SDPA's fused kernels: CUDA flash pads to a multiple of 8 (with a
#: copy), CUDA memory-efficient needs 4 (float32) or 8 (half precision); CPU flash takes any.
_HEAD_ALIGN = 8


@dataclass(frozen=True)
class FeatureLayout:
    r"""Which blades of a multivector enter the query/key features of one algebra.

    Static metadata, derived from the algebra's signature alone (pure Python, no tensors):
    build it once with :func:`feature_layout` and pass it to :func:`geometric_attention`
    and :func:`query_key_features`.

    Attributes
    ----------
    dim : int
        Number of blades of the algebra.
    inner_index : tuple of int
        Blades with a non-zero inner-product weight :math:`\langle \tilde e_A e_A\rangle_0`
        (those without a degenerate basis vector), in component order.
    signed : bool
        Whether any of those weights is -1 (indefinite metrics); all are +1 otherwise.
    distance : tuple of (int, tuple of int), or None
        ``(weight_index, coordinate_indices)`` of the PGA distance features (see
        :func:`distance_components`); ``None`` unless the algebra is Euclidean PGA.
    """

    dim: int
    inner_index: tuple[int, ...]
    signed: bool
    distance: tuple[int, tuple[int, ...]] | None


def _blade_vectors(n: int) -> list[tuple[int, ...]]:
    """Basis vectors of each blade, in the library's shortlex blade order (grade, then lexicographic)."""
    return [c for k in range(n + 1) for c in itertools.combinations(range(n), k)]


def _distance_components(metric: tuple[int, ...]) -> tuple[int, tuple[int, ...]] | None:
    """``(weight_index, coordinate_indices)`` for Euclidean PGA ``Cl(n, 0, 1)``, else ``None``."""
    if metric.count(0) != 1 or -1 in metric or len(metric) < 2:
        return None
    n, degenerate = len(metric), metric.index(0)
    blades = _blade_vectors(n)
    grade = [i for i, b in enumerate(blades) if len(b) == n - 1]
    coords = tuple(i for i in grade if degenerate in blades[i])
    (weight,) = (i for i in grade if degenerate not in blades[i])
    return weight, coords


def feature_layout(alg: Algebra) -> FeatureLayout:
    """The :class:`FeatureLayout` of an algebra, computed from its metric (no caches, no tensors).

    Parameters
    ----------
    alg : Algebra

    Returns
    -------
    FeatureLayout
    """
    metric = alg.metric
    weights = []  # <~e_A e_A>_0: the product of the squares of the blade's basis vectors
    for blade in _blade_vectors(len(metric)):
        w = 1
        for i in blade:
            w *= metric[i]
        weights.append(w)
    inner_index = tuple(i for i, w in enumerate(weights) if w != 0)
    return FeatureLayout(
        dim=len(weights),
        inner_index=inner_index,
        signed=any(weights[i] < 0 for i in inner_index),
        distance=_distance_components(metric),
    )


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
    found = _distance_components(alg.metric)
    if found is None:
        raise _no_distance(alg)
    return found[0], list(found[1])


def _no_distance(alg: Algebra) -> ValueError:
    """The error for distance features on an algebra that is not Euclidean PGA."""
    return ValueError(
        "distance features need Euclidean projective GA Cl(n, 0, 1) (e.g. PGA3 = Cl(3, 0, 1)), "
        f"got {alg!r} with signature {alg.signature}"
    )


def _widths(parts: Sequence[Tensor], lead: int) -> list[int]:
    """Flattened width of each part past its ``lead`` leading dims."""
    return [math.prod(p.shape[lead:]) for p in parts]


def _pack(parts: Sequence[Tensor], lead: int, width: int) -> Tensor:
    """``parts`` side by side in a new ``(..., width)`` buffer, zeros past their end; one copy each."""
    out = parts[0].new_empty(*parts[0].shape[:lead], width)
    offset = 0
    for p, w in zip(parts, _widths(parts, lead), strict=True):
        out[..., offset : offset + w].view(p.shape).copy_(p)
        offset += w
    if offset < width:
        out[..., offset:].zero_()
    return out


class _Pack(torch.autograd.Function):
    """Autograd of :func:`_pack`: the backward hands back views of the incoming gradient.

    ``torch.cat`` of flattened parts copies twice when a part is not contiguous (the flatten,
    then the cat); multivector heads are views of blade-first storage, so they never are.
    Used in eager mode only (compiled graphs take ``torch.cat``, which inductor fuses).
    """

    @staticmethod
    def forward(ctx, lead: int, width: int, *parts: Tensor) -> Tensor:
        ctx.tails = [p.shape[lead:] for p in parts]
        ctx.widths = _widths(parts, lead)
        return _pack(parts, lead, width)

    @staticmethod
    def backward(ctx, grad: Tensor):
        grads, offset = [], 0
        for tail, w in zip(ctx.tails, ctx.widths, strict=True):
            g = grad[..., offset : offset + w]
            grads.append(g.unflatten(-1, tail) if len(tail) > 1 else g)
            offset += w
        return (None, None, *grads)


def _concat_features(parts: Sequence[Tensor], lead: int, width: int | None = None) -> Tensor:
    """``parts`` with ``lead`` shared leading dims, flattened and concatenated along the last axis.

    Parameters
    ----------
    parts : sequence of Tensor, shapes (*lead_shape, *tail_i)
    lead : int
    width : int, optional
        Total width of the result, at least the sum of the parts' widths; the columns past
        them are zero. Default: no padding.

    Returns
    -------
    Tensor, shape (*lead_shape, width)
    """
    total = sum(_widths(parts, lead))
    width = total if width is None else width
    if width < total:
        raise ValueError(f"_concat_features: width {width} is below the parts' total width {total}")
    if width == total and len(parts) == 1 and parts[0].ndim == lead + 1 and parts[0].is_contiguous():
        return parts[0]
    if torch.compiler.is_compiling():
        flat = [p.flatten(lead) if p.ndim != lead + 1 else p for p in parts]
        if width > total:
            flat.append(parts[0].new_zeros(*parts[0].shape[:lead], width - total))
        return torch.cat(flat, -1)
    if torch.is_grad_enabled() and any(p.requires_grad for p in parts):
        return _Pack.apply(lead, width, *parts)
    return _pack(parts, lead, width)


def _feature_parts(
    alg: Algebra,
    layout: FeatureLayout,
    q_mv: Tensor,
    k_mv: Tensor,
    q_s: Tensor | None,
    k_s: Tensor | None,
    distance: bool,
) -> tuple[list[Tensor], list[Tensor]]:
    """The pieces of the query and key features, before flattening (see :func:`query_key_features`)."""
    if layout.dim != alg.dim:
        raise ValueError(f"attention: a FeatureLayout for {layout.dim} blades does not fit {alg!r}")
    if (q_s is None) != (k_s is None):
        raise ValueError("query_key_features: pass scalars for both queries and keys, or for neither")
    q_in = q_mv * alg.constant("inner", q_mv.device, q_mv.dtype) if layout.signed else q_mv
    if len(layout.inner_index) < layout.dim:  # drop the components along the degenerate vector
        idx = list(layout.inner_index)
        q_in, k_in = q_in[..., idx], k_mv[..., idx]
    else:
        k_in = k_mv
    q_parts, k_parts = [q_in], [k_in]
    if q_s is not None and k_s is not None and q_s.shape[-1]:
        q_parts.append(q_s)
        k_parts.append(k_s)
    if distance:
        if layout.distance is None:
            raise _no_distance(alg)
        # one gather per side: the products below then keep these small copies for backward,
        # not views of the whole (query, key, value) projection
        point = [layout.distance[0], *layout.distance[1]]
        qp, kp = q_mv[..., point], k_mv[..., point]  # (..., items, C, 1 + n)
        qw, kw = qp[..., 0], kp[..., 0]  # weights, (..., items, C)
        qa, ka = qp[..., 1:], kp[..., 1:]  # coordinates, (..., items, C, n)
        # -|kw qa - qw ka|^2 = qw^2 (-|ka|^2) + |qa|^2 (-kw^2) + sum_i (qw qa_i) (2 kw ka_i)
        q_parts.append(
            torch.cat([(qw * qw)[..., None], (qa * qa).sum(-1, keepdim=True), qw[..., None] * qa], -1)
        )
        k_parts.append(
            torch.cat([-(ka * ka).sum(-1, keepdim=True), -(kw * kw)[..., None], 2.0 * kw[..., None] * ka], -1)
        )
    return q_parts, k_parts


def query_key_features(
    alg: Algebra,
    q_mv: Tensor,
    k_mv: Tensor,
    q_s: Tensor | None = None,
    k_s: Tensor | None = None,
    *,
    distance: bool = False,
    layout: FeatureLayout | None = None,
) -> tuple[Tensor, Tensor]:
    """Flat query and key features whose dot product is the invariant logit (unscaled).

    Parameters
    ----------
    q_mv : Tensor, shape (..., items_q, channels, dim)
    k_mv : Tensor, shape (..., items_k, channels, dim)
    q_s, k_s : Tensor, shape (..., items, s_channels), optional
    distance : bool
        Add the PGA distance features (see the module docstring).
    layout : FeatureLayout, optional
        ``feature_layout(alg)``, precomputed; built here when omitted.

    Returns
    -------
    q_feat : Tensor, shape (..., items_q, d)
    k_feat : Tensor, shape (..., items_k, d)
    """
    layout = feature_layout(alg) if layout is None else layout
    q_parts, k_parts = _feature_parts(alg, layout, q_mv, k_mv, q_s, k_s, distance)
    lead = q_mv.ndim - 2
    return _concat_features(q_parts, lead), _concat_features(k_parts, lead)


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
        ``(batch, heads, items_q, items_k)``. A query row with no allowed key gives what
        :func:`torch.nn.functional.scaled_dot_product_attention` gives (zeros in current
        torch).
    is_causal : bool
        Query ``i`` attends to keys ``j <= i`` only (top-left aligned when
        ``items_q != items_k``, as in SDPA). Combined with ``attn_mask`` when both are given.
    distance : bool
        Add the PGA distance features (Euclidean PGA only).
    dropout_p : float
        Dropout on the attention weights (pass 0 in eval mode).
    layout : FeatureLayout, optional
        ``feature_layout(alg)``, precomputed (layers build it at construction); built here
        when omitted.

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
    layout = feature_layout(alg) if layout is None else layout
    out_dtype = v_mv.dtype
    wide = torch.promote_types(q_mv.dtype, torch.float32)
    items_q, items_k = q_mv.shape[2], k_mv.shape[2]
    with torch.autocast(device_type=q_mv.device.type, enabled=False):
        q_parts, k_parts = _feature_parts(
            alg,
            layout,
            q_mv.to(wide),
            k_mv.to(wide),
            None if q_s is None else q_s.to(wide),
            None if k_s is None else k_s.to(wide),
            distance,
        )
        v_parts = [v_mv.to(wide)]
        if v_s is not None:
            v_parts.append(v_s.to(wide))
        lead = 3
        d, dv = sum(_widths(q_parts, lead)), sum(_widths(v_parts, lead))
        width = -(-max(d, dv) // _HEAD_ALIGN) * _HEAD_ALIGN
        q_feat = _concat_features(q_parts, lead, width)
        k_feat = _concat_features(k_parts, lead, width)
        v = _concat_features(v_parts, lead, width)
        if kv_heads != heads:  # multi-query: a stride-0 view over the heads
            k_feat = k_feat.expand(-1, heads, -1, -1)
            v = v.expand(-1, heads, -1, -1)
        if attn_mask is not None:
            if attn_mask.dtype != torch.bool:
                attn_mask = attn_mask.to(wide)
            if is_causal:
                attn_mask, is_causal = _causal_mask(attn_mask, items_q, items_k), False
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
    mv_len = v_channels * alg.dim
    h_mv = h[..., :mv_len].unflatten(-1, (v_channels, alg.dim)).to(out_dtype)
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
