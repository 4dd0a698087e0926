r"""Query/key features of geometric attention: which blades enter, and how they are laid out.

:class:`FeatureLayout` (static metadata from the algebra's signature), the invariant
query/key features (:func:`query_key_features`) and the padded SDPA inputs shared by the
dense and the packed attentions (:func:`attention_inputs`, :func:`check_attention_shapes`);
see :mod:`gatorch.functional.attention` for the logit.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gatorch.algebras.layout import Layout

if TYPE_CHECKING:
    from gatorch.algebras.algebra import AlgebraData as Algebra

__all__ = [
    "HEAD_ALIGN",
    "FeatureLayout",
    "attention_inputs",
    "check_attention_shapes",
    "distance_components",
    "feature_layout",
    "layout_feature_layout",
    "query_key_features",
]

#: Head size granularity of SDPA's fused kernels: CUDA flash pads to a multiple of 8 (with a
#: copy), CUDA memory-efficient needs 4 (float32) or 8 (half precision); CPU flash takes any.
HEAD_ALIGN = 8


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
        :func:`distance_components`); ``None`` unless the algebra is Euclidean PGA (and, for
        a layout, unless it stores grade ``n - 1``).
    grades : tuple of int, or None
        The stored grades of a :class:`~gatorch.algebras.Layout` (:func:`layout_feature_layout`):
        the multivectors then hold ``dim`` blades of those grades and every index above is an
        index into the layout. ``None``: all blades of the algebra.
    inner_sign : tuple of int, or None
        For a layout: :math:`\langle \tilde e_A e_A\rangle_0` (+1 or -1) of each blade of
        ``inner_index``, from the layout's metric; ``None`` for the full algebra (read from
        its tables).
    full_inner : int, or None
        For a layout: the number of inner-product blades of the full algebra. The logit
        scale :math:`1/\sqrt{d}` counts them (not only the stored ones), so that attention on
        a layout equals the full algebra's attention on zero-padded inputs exactly.
    """

    dim: int
    inner_index: tuple[int, ...]
    signed: bool
    distance: tuple[int, tuple[int, ...]] | None
    grades: tuple[int, ...] | None = None
    inner_sign: tuple[int, ...] | None = None
    full_inner: int | None = None


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


def layout_feature_layout(layout: Layout) -> FeatureLayout:
    """The :class:`FeatureLayout` of multivectors that store the blades of ``layout`` only.

    The inner-product features are the stored blades without a degenerate vector (with
    their metric signs, from the layout); the PGA distance features are there when the
    algebra is Euclidean PGA and the layout stores grade ``n - 1`` (the grade of points).
    A full layout gives :func:`feature_layout`'s result.

    Parameters
    ----------
    layout : Layout

    Returns
    -------
    FeatureLayout
    """
    if not isinstance(layout, Layout):
        raise TypeError(f"layout_feature_layout: expected a Layout, got {type(layout).__name__}")
    metric = layout.metric
    weights = []
    for bm in layout.bitmaps.tolist():
        w = 1
        for i, m in enumerate(metric):
            if (bm >> i) & 1:
                w *= m
        weights.append(w)
    inner_index = tuple(i for i, w in enumerate(weights) if w != 0)
    distance = None
    full = _distance_components(metric)
    if full is not None and layout.has_grade(len(metric) - 1):
        where = {int(b): i for i, b in enumerate(layout.blades.tolist())}
        distance = (where[full[0]], tuple(where[c] for c in full[1]))
    return FeatureLayout(
        dim=layout.dim,
        inner_index=inner_index,
        signed=any(weights[i] < 0 for i in inner_index),
        distance=distance,
        grades=layout.grades,
        inner_sign=tuple(weights[i] for i in inner_index),
        full_inner=2 ** (len(metric) - metric.count(0)),
    )


def check_feature_dim(layout: FeatureLayout, t: Tensor, who: str) -> None:
    """Raise ``ValueError`` unless the last axis of ``t`` holds the ``layout.dim`` blades."""
    if t.ndim == 0 or t.shape[-1] != layout.dim:
        what = "the algebra's blades" if layout.grades is None else f"the blades of grades {layout.grades}"
        raise ValueError(f"{who}: expected last dimension {layout.dim} ({what}), got shape {tuple(t.shape)}")


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
    if layout.grades is None and layout.dim != alg.dim:
        raise ValueError(f"attention: a FeatureLayout for {layout.dim} blades does not fit {alg!r}")
    if (q_s is None) != (k_s is None):
        raise ValueError("query_key_features: pass scalars for both queries and keys, or for neither")
    if layout.grades is not None:  # a layout: its own indices and metric signs
        idx = list(layout.inner_index)
        q_in, k_in = q_mv, k_mv
        if len(idx) < layout.dim:
            q_in, k_in = q_in[..., idx], k_in[..., idx]
        if layout.signed:
            assert layout.inner_sign is not None
            q_in = q_in * q_in.new_tensor(layout.inner_sign)
    else:
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
            if layout.grades is not None and _distance_components(tuple(alg.metric)) is not None:
                raise ValueError(
                    f"distance features need grade {alg.n - 1} (the points) in the layout, "
                    f"got layout grades {layout.grades}"
                )
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


def check_attention_shapes(
    alg: Algebra, q_mv: Tensor, k_mv: Tensor, v_mv: Tensor, who: str, layout: FeatureLayout | None = None
) -> None:
    """The shape checks of :func:`geometric_attention` on the multivector inputs (of the
    blades of ``layout``, when it is a layout's: :func:`layout_feature_layout`)."""
    dim = alg.dim if layout is None or layout.grades is None else layout.dim
    for name, t in (("q_mv", q_mv), ("k_mv", k_mv), ("v_mv", v_mv)):
        if layout is None or layout.grades is None:
            alg.check_dim(t, f"{who} {name}")
        else:
            check_feature_dim(layout, t, f"{who} {name}")
        if t.ndim != 5:
            raise ValueError(
                f"{who}: {name} must have shape (batch, heads, items, channels, {dim}), got {tuple(t.shape)}"
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


def attention_inputs(
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
    r"""The padded ``(q_feat, k_feat, v, d, dv)`` of :func:`geometric_attention` (same order).

    ``d`` is the feature width the logit scale :math:`1/\sqrt{d}` uses (for a layout's
    :class:`FeatureLayout`, the full algebra's: see ``full_inner``); ``dv`` the width of the
    values."""
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
    width = -(-max(d, dv) // HEAD_ALIGN) * HEAD_ALIGN
    q_feat = _concat_features(q_parts, lead, width)
    k_feat = _concat_features(k_parts, lead, width)
    v = _concat_features(v_parts, lead, width)
    if layout.full_inner is not None:  # the scale's width: the full algebra's features (see FeatureLayout)
        d += q_mv.shape[-2] * (layout.full_inner - len(layout.inner_index))
    return q_feat, k_feat, v, d, dv
