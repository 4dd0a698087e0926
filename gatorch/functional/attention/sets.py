"""Variable-size sets packed along the items axis: offsets, nested tensors and their checks.

``offsets`` (torch's ``cu_seqlens``) mark where each set starts in the packed items axis:
``(0, n_0, n_0 + n_1, ..., total_items)``. :func:`offsets_from_sizes`,
:func:`nested_to_packed` and :func:`packed_to_nested` convert between sizes, offsets and
nested jagged tensors; :func:`check_offsets_static`, :func:`check_offsets_values` and
:func:`set_index` are the checks and the per-item set index the packed backends share.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "check_offsets_static",
    "check_offsets_values",
    "nested_to_packed",
    "offsets_from_sizes",
    "packed_to_nested",
    "set_index",
]


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
    check_offsets_static(offsets, "offsets", "packed_to_nested")
    if not torch.compiler.is_compiling():
        check_offsets_values(offsets, values.shape[0], "offsets", "values.shape[0]", "packed_to_nested")
    return torch.nested.nested_tensor_from_jagged(values, offsets.to(torch.int64), max_seqlen=max_items)


def check_offsets_static(offsets: Tensor, name: str, who: str) -> None:
    """Shape and dtype checks of ``offsets`` (no tensor values read)."""
    if not isinstance(offsets, Tensor):
        raise TypeError(f"{who}: {name} must be a tensor, got {type(offsets).__name__}")
    if offsets.ndim != 1 or offsets.shape[0] < 1 or offsets.is_floating_point() or offsets.is_complex():
        raise ValueError(
            f"{who}: {name} must be a 1-D integer tensor of shape (num_sets + 1,), got shape "
            f"{tuple(offsets.shape)} and dtype {offsets.dtype}"
        )


def check_offsets_values(offsets: Tensor, total: int, name: str, total_name: str, who: str) -> list[int]:
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


def set_index(offsets: Tensor, total: int) -> tuple[Tensor, Tensor]:
    """Set of each packed item and its position within its set, both ``(total,)`` int64."""
    off = offsets.to(torch.int64)
    items = torch.arange(total, device=offsets.device)
    label = torch.searchsorted(off[1:], items, right=True)
    return label, items - off[label]
