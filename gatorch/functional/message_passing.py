"""Aggregation of messages onto nodes with ``index_add`` (no torch_scatter / torch_geometric)."""

from __future__ import annotations

from torch import Tensor

__all__ = ["aggregate"]


def aggregate(values: Tensor, target: Tensor, num_nodes: int, inv_count: Tensor | None) -> Tensor:
    """Sum ``values: (E, ...)`` into ``(num_nodes, ...)`` at ``target``; times ``inv_count`` for a mean.

    Parameters
    ----------
    values : Tensor, shape (E, ...)
        One row per message.
    target : Tensor, shape (E,)
        int64 receiving node of each message, in ``[0, num_nodes)``.
    num_nodes : int
    inv_count : Tensor, shape (num_nodes,), optional
        ``1 / max(in-degree, 1)`` for a mean; ``None`` for a sum.

    Returns
    -------
    Tensor, shape (num_nodes, ...)
        Nodes without incoming messages get zeros.
    """
    out = values.new_zeros(num_nodes, *values.shape[1:]).index_add(0, target, values)
    if inv_count is not None:
        out = out * inv_count.view(num_nodes, *([1] * (values.ndim - 1)))
    return out
