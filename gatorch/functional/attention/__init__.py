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

Package layout
--------------
``features`` (the :class:`FeatureLayout` and the query/key features), ``geometric``
(:func:`geometric_attention`, :func:`block_diagonal_mask`), ``sets`` (offsets, nested
tensors and the one validator of packed sets, ``check_packed_sets``), ``masks`` (the one
validator of attention masks, ``check_attn_mask``), ``packed`` (the
packed attentions and their backend dispatch), ``backends/`` (one file per backend:
``padded``, ``dense``, ``nested``, ``flex``) and ``slim`` (:func:`slim_attention` and
:func:`packed_slim_attention`, the attention of the slim layers). Every name is importable
from this package.

Everything here is a pure function of the tensors and of static metadata (the algebra's
signature and the channel counts), with no caches: it traces under
``torch.compile(fullgraph=True)``. Layers build the :class:`FeatureLayout` once at
construction.
"""

# the bucket planner under its name in the single-module layout (tests import it)
from gatorch.functional.attention.backends.padded import Buckets as _Buckets  # noqa: F401
from gatorch.functional.attention.backends.padded import bucket_plan as _bucket_plan  # noqa: F401
from gatorch.functional.attention.features import (
    FeatureLayout,
    distance_components,
    feature_layout,
    layout_feature_layout,
    query_key_features,
)
from gatorch.functional.attention.geometric import block_diagonal_mask, geometric_attention
from gatorch.functional.attention.masks import attended_keys, check_attn_mask
from gatorch.functional.attention.packed import (
    PACKED_BACKENDS,
    packed_geometric_attention,
    packed_scaled_dot_product_attention,
)
from gatorch.functional.attention.sets import nested_to_packed, offsets_from_sizes, packed_to_nested
from gatorch.functional.attention.slim import packed_slim_attention, slim_attention

__all__ = [
    "PACKED_BACKENDS",
    "FeatureLayout",
    "attended_keys",
    "block_diagonal_mask",
    "check_attn_mask",
    "distance_components",
    "feature_layout",
    "geometric_attention",
    "layout_feature_layout",
    "nested_to_packed",
    "offsets_from_sizes",
    "packed_geometric_attention",
    "packed_scaled_dot_product_attention",
    "packed_slim_attention",
    "packed_to_nested",
    "query_key_features",
    "slim_attention",
]
