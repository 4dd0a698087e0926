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

Packed variable-size sets
-------------------------
:func:`packed_geometric_attention` takes sets of different sizes packed one after the other
along the items axis, with ``offsets`` (torch's ``cu_seqlens``) marking where each set
starts, and lets every item attend only within its set: the result of
:func:`geometric_attention` run set by set, without the ``O(N^2)`` mask of
:func:`block_diagonal_mask`. Its default backend pads the attention features per set and
masks the padded keys (memory ``O(sum_i n_i * max_i n_i)``); :func:`offsets_from_sizes`,
:func:`nested_to_packed` and :func:`packed_to_nested` convert between sizes, offsets and
torch's nested jagged tensors. The set-aware SDPA underneath, on plain features
``(batch, heads, total, width)``, is public as :func:`packed_scaled_dot_product_attention`
(the slim layers call it on theirs).

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
    "nested_to_packed",
    "offsets_from_sizes",
    "packed_geometric_attention",
    "packed_scaled_dot_product_attention",
    "packed_to_nested",
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
        q_feat, k_feat, v, d, dv = _attention_inputs(alg, q_mv, k_mv, v_mv, q_s, k_s, v_s, distance, layout)
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


# ---------------------------------------------------------------------------------------
# Packed (jagged) variable-size sets
# ---------------------------------------------------------------------------------------

#: Backends of :func:`packed_geometric_attention` (``"auto"`` picks one per device).
PACKED_BACKENDS = ("auto", "padded", "nested", "dense", "flex")


def offsets_from_sizes(sizes: Sequence[int] | Tensor, device: torch.device | str | None = None) -> Tensor:
    """Cumulative starts ``(0, n0, n0 + n1, ..., sum(n))`` of sets packed one after the other.

    The ``offsets`` of :func:`packed_geometric_attention` (torch's ``cu_seqlens``).

    Parameters
    ----------
    sizes : sequence of int or Tensor, shape (num_sets,)
        Number of items in each set, in packing order; 0 is allowed.
    device : torch.device or str, optional
        Device of the result (default: that of ``sizes`` when it is a tensor, else CPU).

    Returns
    -------
    Tensor, shape (num_sets + 1,), dtype int64
    """
    if isinstance(sizes, Tensor):
        if sizes.ndim != 1 or sizes.is_floating_point() or sizes.is_complex():
            raise ValueError(
                f"offsets_from_sizes: sizes must be a 1-D integer tensor, got shape {tuple(sizes.shape)} "
                f"and dtype {sizes.dtype}"
            )
        n = sizes.to(device=device, dtype=torch.int64)
        if not torch.compiler.is_compiling() and bool((n < 0).any()):
            raise ValueError(f"offsets_from_sizes: sizes must be >= 0, got {n.tolist()}")
    else:
        values = list(sizes)
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in values):
            raise ValueError(f"offsets_from_sizes: sizes must be ints >= 0, got {values}")
        n = torch.tensor(values, dtype=torch.int64, device=device)
    return torch.cat([n.new_zeros(1), n.cumsum(0)])


def nested_to_packed(nt: Tensor) -> tuple[Tensor, Tensor]:
    """``(values, offsets)`` of a nested tensor with the jagged layout.

    Parameters
    ----------
    nt : Tensor, nested, layout ``torch.jagged``, shape (num_sets, j, *tail)
        Ragged along dim 1 (the items), e.g. ``torch.nested.nested_tensor([...],
        layout=torch.jagged)`` of ``(n_i, channels, dim)`` multivectors.

    Returns
    -------
    values : Tensor, shape (sum(n_i), *tail)
        The items of all sets, one set after the other (a view, no copy).
    offsets : Tensor, shape (num_sets + 1,), dtype int64
        Cumulative starts of the sets in ``values``.
    """
    if not isinstance(nt, Tensor) or not nt.is_nested or nt.layout != torch.jagged:
        got = nt.layout if isinstance(nt, Tensor) else type(nt).__name__
        raise ValueError(f"nested_to_packed: expected a nested tensor with layout torch.jagged, got {got}")
    if nt._ragged_idx != 1:  # type: ignore[attr-defined]
        raise ValueError(
            f"nested_to_packed: the ragged dim must be dim 1 (items), got dim {nt._ragged_idx}"  # type: ignore[attr-defined]
        )
    if nt.lengths() is not None:  # type: ignore[attr-defined]
        raise ValueError(
            "nested_to_packed: the nested tensor has holes (lengths() is set, e.g. after narrow()); "
            "call .contiguous() on it first"
        )
    offsets: Tensor = nt.offsets()  # type: ignore[attr-defined]
    return nt.values(), offsets.to(torch.int64)


def packed_to_nested(values: Tensor, offsets: Tensor, max_items: int | None = None) -> Tensor:
    """A nested jagged tensor that views packed ``values`` split at ``offsets``.

    Parameters
    ----------
    values : Tensor, shape (total_items, *tail)
    offsets : Tensor, shape (num_sets + 1,), integer
        Cumulative starts, from 0 to ``total_items``; validated (see
        :func:`packed_geometric_attention`).
    max_items : int, optional
        Size of the largest set, cached on the result (spares torch a host sync later).

    Returns
    -------
    Tensor, nested, layout ``torch.jagged``, shape (num_sets, j, *tail)
    """
    if values.ndim < 1:
        raise ValueError(f"packed_to_nested: values need an items axis, got shape {tuple(values.shape)}")
    _check_offsets_static(offsets, "offsets", "packed_to_nested")
    if not torch.compiler.is_compiling():
        _check_offsets_values(offsets, values.shape[0], "offsets", "values.shape[0]", "packed_to_nested")
    return torch.nested.nested_tensor_from_jagged(values, offsets.to(torch.int64), max_seqlen=max_items)


def _check_offsets_static(offsets: Tensor, name: str, who: str) -> None:
    """Shape and dtype checks of ``offsets`` (no tensor values read)."""
    if not isinstance(offsets, Tensor):
        raise TypeError(f"{who}: {name} must be a tensor, got {type(offsets).__name__}")
    if offsets.ndim != 1 or offsets.shape[0] < 1 or offsets.is_floating_point() or offsets.is_complex():
        raise ValueError(
            f"{who}: {name} must be a 1-D integer tensor of shape (num_sets + 1,), got shape "
            f"{tuple(offsets.shape)} and dtype {offsets.dtype}"
        )


def _check_offsets_values(offsets: Tensor, total: int, name: str, total_name: str, who: str) -> list[int]:
    """Value checks of ``offsets`` (one host sync); returns the set sizes."""
    off = offsets.tolist()
    if off[0] != 0:
        raise ValueError(f"{who}: {name} must start at 0, got {name}[0] = {off[0]}")
    for i in range(len(off) - 1):
        if off[i + 1] < off[i]:
            raise ValueError(
                f"{who}: {name} must be non-decreasing (set sizes >= 0), got {name}[{i}] = {off[i]} > "
                f"{name}[{i + 1}] = {off[i + 1]}"
            )
    if off[-1] != total:
        raise ValueError(
            f"{who}: {name}[-1] must equal the number of packed items {total} ({total_name}), got {off[-1]}"
        )
    return [b - a for a, b in itertools.pairwise(off)]


def _set_index(offsets: Tensor, total: int) -> tuple[Tensor, Tensor]:
    """Set of each packed item and its position within its set, both ``(total,)`` int64."""
    off = offsets.to(torch.int64)
    items = torch.arange(total, device=offsets.device)
    label = torch.searchsorted(off[1:], items, right=True)
    return label, items - off[label]


@dataclass(frozen=True)
class _Buckets:
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


def _bucket_plan(sizes_q: Sequence[int], sizes_k: Sequence[int], buckets: int) -> _Buckets:
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
    return _Buckets(tuple(len(grp) for grp in groups), len_q, len_k, base_q, base_k, order)


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


def _packed_padded(
    q: Tensor, k: Tensor, v: Tensor, lab_q: Tensor, pos_q: Tensor, lab_k: Tensor, pos_k: Tensor,
    sizes_k: Tensor, plan: _Buckets, is_causal: bool, dropout_p: float, scale: float,
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


def _check_attention_shapes(alg: Algebra, q_mv: Tensor, k_mv: Tensor, v_mv: Tensor, who: str) -> None:
    """The shape checks of :func:`geometric_attention` on the multivector inputs."""
    for name, t in (("q_mv", q_mv), ("k_mv", k_mv), ("v_mv", v_mv)):
        alg.check_dim(t, f"{who} {name}")
        if t.ndim != 5:
            raise ValueError(
                f"{who}: {name} must have shape (batch, heads, items, channels, {alg.dim}), "
                f"got {tuple(t.shape)}"
            )
    if q_mv.shape[-2] != k_mv.shape[-2]:
        raise ValueError(
            f"{who}: queries and keys need the same channels, got {q_mv.shape[-2]} and {k_mv.shape[-2]}"
        )
    heads, kv_heads = q_mv.shape[1], k_mv.shape[1]
    if kv_heads not in (1, heads) or v_mv.shape[1] != kv_heads:
        raise ValueError(
            f"{who}: keys/values need {heads} heads or 1 (multi-query), got keys "
            f"{tuple(k_mv.shape)} and values {tuple(v_mv.shape)}"
        )
    if k_mv.shape[2] != v_mv.shape[2] or k_mv.shape[0] != v_mv.shape[0] or q_mv.shape[0] != k_mv.shape[0]:
        raise ValueError(
            f"{who}: queries, keys and values need one batch size and keys/values one number of items, "
            f"got q_mv {tuple(q_mv.shape)}, k_mv {tuple(k_mv.shape)}, v_mv {tuple(v_mv.shape)}"
        )


def _attention_inputs(
    alg: Algebra,
    q_mv: Tensor,
    k_mv: Tensor,
    v_mv: Tensor,
    q_s: Tensor | None,
    k_s: Tensor | None,
    v_s: Tensor | None,
    distance: bool,
    layout: FeatureLayout,
) -> tuple[Tensor, Tensor, Tensor, int, int]:
    """The padded ``(q_feat, k_feat, v, d, dv)`` of :func:`geometric_attention` (same order)."""
    wide = torch.promote_types(q_mv.dtype, torch.float32)
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
    return q_feat, k_feat, v, d, dv


def _packed_dense(
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


def _packed_nested(
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


def _packed_flex(
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


def packed_geometric_attention(
    alg: Algebra,
    q_mv: Tensor,
    k_mv: Tensor,
    v_mv: Tensor,
    q_s: Tensor | None = None,
    k_s: Tensor | None = None,
    v_s: Tensor | None = None,
    *,
    offsets: Tensor,
    offsets_k: Tensor | None = None,
    max_items: int | None = None,
    max_items_k: int | None = None,
    is_causal: bool = False,
    distance: bool = False,
    dropout_p: float = 0.0,
    layout: FeatureLayout | None = None,
    backend: str = "auto",
    buckets: int | None = None,
    validate: bool = True,
) -> tuple[Tensor, Tensor]:
    r""":func:`geometric_attention` on variable-size sets packed along the items axis.

    The items of ``num_sets`` sets lie one set after the other along the items axis;
    ``offsets`` (torch's ``cu_seqlens``) says where each set starts. Each item attends only
    to the items of its own set: the result equals :func:`geometric_attention` run on each
    set alone (same logits, scale :math:`1/\sqrt{d}`, float32 or wider), without the
    ``O(N^2)`` block-diagonal mask over the whole packed batch (see ``backend``).

    Parameters
    ----------
    alg : Algebra
    q_mv : Tensor, shape (batch, heads, total_q, channels, dim)
        The tensors of :func:`geometric_attention` with the sets packed along the items
        axis (``batch`` is usually 1; every batch entry uses the same ``offsets``).
    k_mv, v_mv : Tensor, shape (batch, kv_heads, total_k, channels, dim)
        ``kv_heads`` is ``heads`` or 1 (multi-query). ``total_k == total_q`` for
        self-attention.
    q_s, k_s : Tensor, shape (batch, heads or kv_heads, total, s_channels), optional
    v_s : Tensor, shape (batch, kv_heads, total_k, v_s_channels), optional
    offsets : Tensor, shape (num_sets + 1,), integer
        Cumulative starts of the query sets, ``(0, n_0, n_0 + n_1, ..., total_q)``
        (:func:`offsets_from_sizes`); empty sets (equal consecutive entries) are allowed.
    offsets_k : Tensor, shape (num_sets + 1,), integer, optional
        Cumulative starts of the key/value sets (cross-attention: query set ``i`` attends
        to key set ``i``); default ``offsets``. A query set whose key set is empty gets zeros.
    max_items, max_items_k : int, optional
        Size of the largest query (key) set, as a static Python int; default: read from
        the offsets (one host sync; not allowed under ``torch.compile``). Needed by the
        ``"padded"`` backend under ``torch.compile(fullgraph=True)``; the caller usually
        knows it from the set sizes. ``max_items_k`` defaults to ``max_items`` when
        ``offsets_k`` is not given. Larger values are correct but pad more.
    is_causal : bool
        Within each set, query ``i`` attends to keys ``j <= i`` only (top-left aligned,
        as in SDPA). Not with ``backend="nested"``.
    distance : bool
        Add the PGA distance features (Euclidean PGA only).
    dropout_p : float
        Dropout on the attention weights (pass 0 in eval mode; not with ``"flex"``).
    layout : FeatureLayout, optional
        ``feature_layout(alg)``, precomputed.
    backend : {"auto", "padded", "nested", "dense", "flex"}
        * ``"padded"``: the attention features of each set padded to a common length,
          ``(batch * sets, heads, length, width)``, and SDPA with a ``(sets, 1, 1,
          length_k)`` key-padding mask, one call per bucket (see ``buckets``); memory
          ``O(num_sets * max_items)`` on flash / memory-efficient kernels,
          ``O(num_sets * max_items * max_items_k)`` for the logits on the math backend.
          Exact; traces under ``torch.compile(fullgraph=True)`` when ``max_items`` is given.
        * ``"nested"``: nested jagged tensors and SDPA. On CUDA torch sends them to its
          varlen flash / memory-efficient kernels; on CPU it runs the math backend set by
          set (memory ``O(sum n_i^2)``, slower than ``"padded"``). Eager only; no
          ``is_causal``, and no non-empty query set with an empty key set.
        * ``"dense"``: the ``(total_q, total_k)`` block-diagonal mask over the packed batch
          (memory ``O(N^2)``): the reference.
        * ``"flex"``: :func:`~torch.nn.attention.flex_attention.flex_attention` with a
          document block mask; fused only under ``torch.compile`` (eager materialises
          the full scores), and no backward on CPU in torch 2.13.
        * ``"auto"``: ``"padded"`` on every device. On CPU the fastest exact path measured
          (``benchmarks/bench_packed_attention.py``: 64 sets of 10..200 items, forward +
          backward: ``"nested"`` 3x slower, the dense mask 10x). On CUDA the one path that
          compiles, takes every option and needs no half precision (torch's varlen flash
          kernels take fp16/bf16 only, and the logits here are float32).
    buckets : int, optional
        ``"padded"`` only: sort the sets by size and cut them into this many groups of
        (nearly) equal count, each padded to its own largest set (one SDPA call per group):
        less padding when the sizes vary (about 2x less attention work for sizes uniform
        in 10..200 with 4 buckets). Needs the set sizes on the host (one sync; in eager
        mode only: under ``torch.compile`` there is one bucket, padded to ``max_items``).
        Default: 4 on CPU in eager mode when the offsets are read anyway (``validate`` or
        no ``max_items``) and there are at least 8 sets, else 1.
    validate : bool
        Check the offsets' values (start at 0, non-decreasing, end at the number of items,
        ``max_items`` large enough) in eager mode; one host sync. Skipped under
        ``torch.compile``, where wrong offsets give wrong results silently.

    Returns
    -------
    mv : Tensor, shape (batch, heads, total_q, v_channels, dim)
    s : Tensor, shape (batch, heads, total_q, v_s_channels)
        Empty last axis when ``v_s`` is None.

    Raises
    ------
    ValueError
        For bad shapes, offsets or options, naming the expected and received values.
    """
    who = "packed_geometric_attention"
    _check_attention_shapes(alg, q_mv, k_mv, v_mv, who)
    layout = feature_layout(alg) if layout is None else layout
    out_dtype = v_mv.dtype
    with torch.autocast(device_type=q_mv.device.type, enabled=False):
        q, k, v, d, dv = _attention_inputs(alg, q_mv, k_mv, v_mv, q_s, k_s, v_s, distance, layout)
        h = _packed_sdpa(
            q,
            k,
            v,
            offsets=offsets,
            offsets_k=offsets_k,
            max_items=max_items,
            max_items_k=max_items_k,
            is_causal=is_causal,
            dropout_p=dropout_p,
            scale=1.0 / math.sqrt(d),
            backend=backend,
            buckets=buckets,
            validate=validate,
            who=who,
            names=("q_mv", "k_mv"),
        )
    v_channels = v_mv.shape[-2]
    mv_len = v_channels * alg.dim
    h_mv = h[..., :mv_len].unflatten(-1, (v_channels, alg.dim)).to(out_dtype)
    h_s = h[..., mv_len:dv].to(out_dtype)
    return h_mv, h_s


def packed_scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    offsets: Tensor,
    offsets_k: Tensor | None = None,
    max_items: int | None = None,
    max_items_k: int | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    scale: float | None = None,
    backend: str = "auto",
    buckets: int | None = None,
    validate: bool = True,
) -> Tensor:
    r""":func:`torch.nn.functional.scaled_dot_product_attention` on variable-size sets packed
    along the items axis.

    Plain features (no algebra): the sets lie one after the other along the items axis and
    ``offsets`` (torch's ``cu_seqlens``) says where each starts; every query attends only to
    the keys of its own set. The result equals SDPA run on each set alone, without the
    ``O(N^2)`` block-diagonal mask over the packed batch. :func:`packed_geometric_attention`
    builds its invariant features and calls this; the slim layers
    (:mod:`gatorch.layers.slim`) call it on theirs.

    Parameters
    ----------
    q : Tensor, shape (batch, heads, total_q, width)
        Queries of all sets, packed (``batch`` is usually 1; every batch entry uses the same
        ``offsets``).
    k : Tensor, shape (batch, kv_heads, total_k, width)
        ``kv_heads`` is ``heads`` or 1 (multi-query: one key/value head shared, expanded as a
        stride-0 view). ``total_k == total_q`` for self-attention.
    v : Tensor, shape (batch, kv_heads, total_k, width_v)
    offsets : Tensor, shape (num_sets + 1,), integer
        Cumulative starts of the query sets, ``(0, n_0, n_0 + n_1, ..., total_q)``
        (:func:`offsets_from_sizes`); empty sets are allowed.
    offsets_k : Tensor, shape (num_sets + 1,), integer, optional
        Cumulative starts of the key/value sets (query set ``i`` attends to key set ``i``);
        default ``offsets``. A query set whose key set is empty gets zeros.
    max_items, max_items_k : int, optional
        Size of the largest query (key) set as a static Python int; default: read from the
        offsets (one host sync). Needed by the ``"padded"`` backend under
        ``torch.compile(fullgraph=True)``. ``max_items_k`` defaults to ``max_items`` when
        ``offsets_k`` is not given.
    is_causal : bool
        Within each set, query ``i`` attends to keys ``j <= i`` only (top-left aligned, as
        in SDPA). Not with ``backend="nested"``.
    dropout_p : float
        Dropout on the attention weights (pass 0 in eval mode; not with ``"flex"``).
    scale : float, optional
        Logit scale; default ``1 / sqrt(width)`` (SDPA's).
    backend : {"auto", "padded", "nested", "dense", "flex"}
        How the sets are kept apart; see :func:`packed_geometric_attention` (``"auto"`` is
        ``"padded"``).
    buckets : int, optional
        ``"padded"`` only: group the sets by size into this many buckets (see
        :func:`packed_geometric_attention`).
    validate : bool
        Check the offsets' values in eager mode (one host sync); skipped under
        ``torch.compile``.

    Returns
    -------
    Tensor, shape (batch, heads, total_q, width_v)
        In the dtype of the inputs. Autocast is switched off inside: cast the inputs to
        float32 first for float32 logits.

    Raises
    ------
    ValueError
        For bad shapes, dtypes, offsets or options, naming the expected and received values.
    """
    who = "packed_scaled_dot_product_attention"
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{who}: {name} must be a tensor, got {type(t).__name__}")
        if t.ndim != 4:
            raise ValueError(
                f"{who}: {name} must have shape (batch, heads, items, width), got {tuple(t.shape)}"
            )
        if not t.is_floating_point() or t.dtype != q.dtype:
            raise ValueError(
                f"{who}: q, k and v need one floating-point dtype, got {q.dtype}, {k.dtype}, {v.dtype}"
            )
    heads, kv_heads = q.shape[1], k.shape[1]
    if kv_heads not in (1, heads) or v.shape[1] != kv_heads:
        raise ValueError(
            f"{who}: keys/values need {heads} heads or 1 (multi-query), got k {tuple(k.shape)} and "
            f"v {tuple(v.shape)}"
        )
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"{who}: queries and keys need one width, got {q.shape[-1]} and {k.shape[-1]}")
    if k.shape[2] != v.shape[2] or k.shape[0] != v.shape[0] or q.shape[0] != k.shape[0]:
        raise ValueError(
            f"{who}: q, k and v need one batch size and k, v one number of items, got q "
            f"{tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if scale is None:
        scale = 1.0 / math.sqrt(max(q.shape[-1], 1))
    with torch.autocast(device_type=q.device.type, enabled=False):
        return _packed_sdpa(
            q,
            k,
            v,
            offsets=offsets,
            offsets_k=offsets_k,
            max_items=max_items,
            max_items_k=max_items_k,
            is_causal=is_causal,
            dropout_p=dropout_p,
            scale=scale,
            backend=backend,
            buckets=buckets,
            validate=validate,
            who=who,
            names=("q", "k"),
        )


def _packed_sdpa(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    offsets: Tensor,
    offsets_k: Tensor | None,
    max_items: int | None,
    max_items_k: int | None,
    is_causal: bool,
    dropout_p: float,
    scale: float,
    backend: str,
    buckets: int | None,
    validate: bool,
    who: str,
    names: tuple[str, str],
) -> Tensor:
    """The offset and option checks and the backend dispatch of the packed attentions.

    ``q``: ``(batch, heads, total_q, width)``, ``k``, ``v``: ``(batch, heads or 1, total_k,
    width / width_v)``, shapes already checked by the caller; ``who`` and ``names`` (the
    caller's names of the query and key tensors) go into the error messages. Returns
    ``(batch, heads, total_q, width_v)``.
    """
    if backend not in PACKED_BACKENDS:
        raise ValueError(f"{who}: backend must be one of {PACKED_BACKENDS}, got {backend!r}")
    if backend == "auto":
        backend = "padded"
    if offsets_k is offsets:  # self-attention spelled out: check and index the offsets once
        offsets_k = None
    cross = offsets_k is not None
    _check_offsets_static(offsets, "offsets", who)
    if offsets_k is None:
        offsets_k = offsets
        max_items_k = max_items if max_items_k is None else max_items_k
    else:
        _check_offsets_static(offsets_k, "offsets_k", who)
        if offsets_k.shape[0] != offsets.shape[0]:
            raise ValueError(
                f"{who}: offsets_k must describe as many sets as offsets ({offsets.shape[0] - 1}), got "
                f"shape {tuple(offsets_k.shape)} ({offsets_k.shape[0] - 1} sets)"
            )
    for name, value in (("max_items", max_items), ("max_items_k", max_items_k)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{who}: {name} must be an int >= 0 or None, got {value!r}")
    if buckets is not None and (isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1):
        raise ValueError(f"{who}: buckets must be an int >= 1 or None, got {buckets!r}")
    if backend == "nested" and is_causal:  # torch's CPU math path rejects it; CUDA varlen aligns bottom-right
        raise ValueError(f"{who}: backend 'nested' does not take is_causal=True (use 'padded' or 'dense')")
    if backend == "flex" and dropout_p > 0:
        raise ValueError(f"{who}: backend 'flex' has no attention dropout, got dropout_p={dropout_p}")
    total_q, total_k = q.shape[2], k.shape[2]
    if not cross and total_k != total_q:
        raise ValueError(
            f"{who}: keys have {total_k} items and queries {total_q}; pass offsets_k for keys packed "
            "differently from the queries"
        )
    num_sets = offsets.shape[0] - 1
    offsets, offsets_k = offsets.to(q.device), offsets_k.to(q.device)
    compiling = torch.compiler.is_compiling()
    sizes_q: list[int] | None = None
    sizes_k = sizes_q
    if not compiling and (validate or max_items is None or max_items_k is None or (buckets or 1) > 1):
        q_name, k_name = names
        sizes_q = sizes_k = _check_offsets_values(offsets, total_q, "offsets", f"{q_name}.shape[2]", who)
        if cross:
            sizes_k = _check_offsets_values(offsets_k, total_k, "offsets_k", f"{k_name}.shape[2]", who)
        longest_q, longest_k = max(sizes_q, default=0), max(sizes_k, default=0)
        for name, given, longest in (
            ("max_items", max_items, longest_q),
            ("max_items_k", max_items_k, longest_k),
        ):
            if given is not None and given < longest:
                raise ValueError(f"{who}: {name}={given} is below the largest set ({longest} items)")
        max_items = longest_q if max_items is None else max_items
        max_items_k = longest_k if max_items_k is None else max_items_k
    if backend == "padded" and (max_items is None or max_items_k is None):
        raise ValueError(
            f"{who}: under torch.compile the 'padded' backend needs max_items (and max_items_k for "
            f"cross-attention) as Python ints, got max_items={max_items}, max_items_k={max_items_k}"
        )

    if backend == "nested":
        return _packed_nested(
            q, k, v, offsets, offsets_k, max_items, max_items_k, is_causal, dropout_p, scale, who
        )
    lab_q, pos_q = _set_index(offsets, total_q)
    lab_k, pos_k = (lab_q, pos_q) if not cross else _set_index(offsets_k, total_k)
    if backend == "padded":
        assert max_items is not None and max_items_k is not None
        if buckets is None:
            buckets = 4 if q.device.type == "cpu" and sizes_q is not None and num_sets >= 8 else 1
        if buckets > 1 and sizes_q is not None and sizes_k is not None:
            plan = _bucket_plan(sizes_q, sizes_k, buckets)
        else:
            plan = _Buckets((num_sets,), (max(max_items, 1),), (max(max_items_k, 1),))
        return _packed_padded(
            q, k, v, lab_q, pos_q, lab_k, pos_k, offsets_k[1:] - offsets_k[:-1], plan,
            is_causal, dropout_p, scale,
        )  # fmt: skip
    if backend == "flex":
        return _packed_flex(q, k, v, lab_q, pos_q, lab_k, pos_k, is_causal, scale)
    if k.shape[1] != q.shape[1]:
        k, v = k.expand(-1, q.shape[1], -1, -1), v.expand(-1, q.shape[1], -1, -1)
    return _packed_dense(q, k, v, lab_q, pos_q, lab_k, pos_k, is_causal, dropout_p, scale)
