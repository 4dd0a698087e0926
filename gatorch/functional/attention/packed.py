"""Attention on variable-size sets packed along the items axis, and the backend dispatch.

:func:`packed_geometric_attention` (multivector features) and
:func:`packed_scaled_dot_product_attention` (plain features) check the offsets and options
once and hand over to one backend of :mod:`gatorch.functional.attention.backends`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gatorch.functional.attention.backends import (
    Buckets,
    bucket_plan,
    packed_dense,
    packed_flex,
    packed_nested,
    packed_padded,
)
from gatorch.functional.attention.features import (
    FeatureLayout,
    attention_inputs,
    check_attention_shapes,
    feature_layout,
)
from gatorch.functional.attention.sets import check_offsets_static, check_offsets_values, set_index

if TYPE_CHECKING:
    from gatorch.algebras.algebra import AlgebraData as Algebra

__all__ = ["PACKED_BACKENDS", "packed_geometric_attention", "packed_scaled_dot_product_attention"]

#: Backends of :func:`packed_geometric_attention` (``"auto"`` picks one per device).
PACKED_BACKENDS = ("auto", "padded", "nested", "dense", "flex")


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
        ``feature_layout(alg)``, precomputed; or ``layout_feature_layout(lay)`` for
        multivectors that store the blades of a :class:`~gatorch.algebras.Layout` ``lay``
        only (``dim`` = ``lay.dim`` above).
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
    layout = feature_layout(alg) if layout is None else layout
    check_attention_shapes(alg, q_mv, k_mv, v_mv, who, layout)
    out_dtype = v_mv.dtype
    with torch.autocast(device_type=q_mv.device.type, enabled=False):
        q, k, v, d, dv = attention_inputs(alg, q_mv, k_mv, v_mv, q_s, k_s, v_s, distance, layout)
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
    mv_len = v_channels * layout.dim
    h_mv = h[..., :mv_len].unflatten(-1, (v_channels, layout.dim)).to(out_dtype)
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
    check_offsets_static(offsets, "offsets", who)
    if offsets_k is None:
        offsets_k = offsets
        max_items_k = max_items if max_items_k is None else max_items_k
    else:
        check_offsets_static(offsets_k, "offsets_k", who)
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
        sizes_q = sizes_k = check_offsets_values(offsets, total_q, "offsets", f"{q_name}.shape[2]", who)
        if cross:
            sizes_k = check_offsets_values(offsets_k, total_k, "offsets_k", f"{k_name}.shape[2]", who)
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
        return packed_nested(
            q, k, v, offsets, offsets_k, max_items, max_items_k, is_causal, dropout_p, scale, who
        )
    lab_q, pos_q = set_index(offsets, total_q)
    lab_k, pos_k = (lab_q, pos_q) if not cross else set_index(offsets_k, total_k)
    if backend == "padded":
        assert max_items is not None and max_items_k is not None
        if buckets is None:
            buckets = 4 if q.device.type == "cpu" and sizes_q is not None and num_sets >= 8 else 1
        if buckets > 1 and sizes_q is not None and sizes_k is not None:
            plan = bucket_plan(sizes_q, sizes_k, buckets)
        else:
            plan = Buckets((num_sets,), (max(max_items, 1),), (max(max_items_k, 1),))
        return packed_padded(
            q, k, v, lab_q, pos_q, lab_k, pos_k, offsets_k[1:] - offsets_k[:-1], plan,
            is_causal, dropout_p, scale,
        )  # fmt: skip
    if backend == "flex":
        return packed_flex(q, k, v, lab_q, pos_q, lab_k, pos_k, is_causal, scale)
    if k.shape[1] != q.shape[1]:
        k, v = k.expand(-1, q.shape[1], -1, -1), v.expand(-1, q.shape[1], -1, -1)
    return packed_dense(q, k, v, lab_q, pos_q, lab_k, pos_k, is_causal, dropout_p, scale)
