"""Backends of the packed attentions, one file each (see
:func:`~gatorch.functional.attention.packed_geometric_attention`'s ``backend``).

Each takes the packed features ``q: (batch, heads, total_q, width)``, ``k``, ``v: (batch,
heads or 1, total_k, width / width_v)`` after the offsets have been checked, and returns
``(batch, heads, total_q, width_v)``.
"""

from gatorch.functional.attention.backends.dense import packed_dense
from gatorch.functional.attention.backends.flex import packed_flex
from gatorch.functional.attention.backends.nested import packed_nested
from gatorch.functional.attention.backends.padded import Buckets, bucket_plan, packed_padded

__all__ = ["Buckets", "bucket_plan", "packed_dense", "packed_flex", "packed_nested", "packed_padded"]
