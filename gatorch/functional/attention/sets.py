"""Variable-size sets packed along the items axis: offsets, nested tensors and their checks.

``offsets`` (torch's ``cu_seqlens``) mark where each set starts in the packed items axis:
``(0, n_0, n_0 + n_1, ..., total_items)``. :func:`offsets_from_sizes`,
:func:`nested_to_packed` and :func:`packed_to_nested` convert between sizes, offsets and
nested jagged tensors.

Validation lives here, once: :func:`check_packed_sets` is the check every layer and net
that takes ``offsets=`` / ``max_items=`` runs at its public boundary (before anything
indexes with the offsets), and :func:`unnest_sets` turns nested inputs into packed ones for
the nets; both build on :func:`check_offsets_static` (shape and dtype, no host sync) and
:func:`check_offsets_values` (the values, one host sync, skipped while compiling).
:func:`set_index` is the per-item set index the packed backends share.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "check_offsets_static",
    "check_offsets_values",
    "check_packed_sets",
    "nested_to_packed",
    "offsets_from_sizes",
    "packed_to_nested",
    "set_index",
    "unnest_sets",
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
    """Shape and dtype checks of ``offsets`` (no tensor values read).

    Raises
    ------
    TypeError
        ``offsets`` is not a tensor (a list, say).
    ValueError
        ``offsets`` is not a 1-D integer tensor with at least one entry.
    """
    if not isinstance(offsets, Tensor):
        raise TypeError(
            f"{who}: {name} must be a 1-D integer tensor of shape (num_sets + 1,), got "
            f"{type(offsets).__name__} (build it with offsets_from_sizes)"
        )
    if (
        offsets.ndim != 1
        or offsets.shape[0] < 1
        or offsets.is_floating_point()
        or offsets.is_complex()
        or offsets.dtype == torch.bool
    ):
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
        none = f" ({name} = {off} describe no set)" if len(off) == 1 else ""
        raise ValueError(
            f"{who}: {name}[-1] must equal the number of packed items {total} ({total_name}), got "
            f"{off[-1]}{none}"
        )
    return [b - a for a, b in itertools.pairwise(off)]


def set_index(offsets: Tensor, total: int) -> tuple[Tensor, Tensor]:
    """Set of each packed item and its position within its set, both ``(total,)`` int64."""
    off = offsets.to(torch.int64)
    items = torch.arange(total, device=offsets.device)
    label = torch.searchsorted(off[1:], items, right=True)
    return label, items - off[label]


def check_packed_sets(
    who: str,
    items: Tensor,
    offsets: Tensor | None,
    max_items: int | None = None,
    *,
    scalars: Tensor | None = None,
    attn_mask: Tensor | None = None,
    name: str = "offsets",
    max_name: str = "max_items",
    what: str = "mv",
    shape: str = "(total_items, channels, dim)",
) -> None:
    """The one check of packed sets (``offsets=`` / ``max_items=``) at a public boundary.

    Every layer and net that takes packed sets calls this before it indexes with the
    offsets, so the same bad input gives the same message whichever of them receives it.
    Nothing is checked when ``offsets`` is None (no packed sets). Value checks (one host
    sync) are skipped while compiling (:func:`torch.compiler.is_compiling`); the shape and
    type checks always run.

    Parameters
    ----------
    who : str
        The caller, first word of every message (e.g. ``"GATr"``).
    items : Tensor, shape (total_items, a, b)
        The packed items (multivectors ``(total_items, channels, dim)``, slim vectors
        ``(total_items, channels, n)`` or ``(total_items, n, channels)``): no batch dims.
    offsets : Tensor, shape (num_sets + 1,), integer, or None
        Cumulative starts of the sets: start at 0, non-decreasing, end at ``total_items``.
    max_items : int, optional
        Size of the largest set, a Python int ``>=`` every set size when given; required
        while compiling (the packed attention pads to it).
    scalars : Tensor, shape (total_items, s_channels), optional
        Scalars of the same items.
    attn_mask : Tensor, optional
        A dense mask, which packed sets do not take (an error when given with offsets).
    name, max_name : str
        The caller's names of ``offsets`` and ``max_items`` in the messages.
    what, shape : str
        The caller's name of ``items`` and its expected shape, in the messages.

    Raises
    ------
    TypeError
        ``offsets`` is not a tensor.
    ValueError
        Anything else, naming the expected and the received value.
    """
    if offsets is None:
        return
    if attn_mask is not None:
        raise ValueError(f"{who}: give either attn_mask or offsets (packed sets), not both")
    if not isinstance(items, Tensor) or items.ndim != 3:
        got = tuple(items.shape) if isinstance(items, Tensor) else type(items).__name__
        raise ValueError(
            f"{who}: with offsets (packed sets) expected {what} of shape {shape} without batch dims, "
            f"got {got}"
        )
    total = items.shape[0]
    if scalars is not None and (scalars.ndim != 2 or scalars.shape[0] != total):
        raise ValueError(
            f"{who}: with offsets (packed sets) expected scalars of shape (total_items, s_channels) "
            f"with total_items = {total} as in {what}, got {tuple(scalars.shape)}"
        )
    check_offsets_static(offsets, name, who)
    if max_items is not None and (
        isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0
    ):
        raise ValueError(f"{who}: {max_name} must be an int >= 0 or None, got {max_items!r}")
    if torch.compiler.is_compiling():
        if max_items is None:
            raise ValueError(
                f"{who}: under torch.compile packed sets need {max_name} (the size of the largest set) "
                "as a Python int"
            )
        return
    sizes = check_offsets_values(offsets, total, name, "total_items", who)
    longest = max(sizes, default=0)
    if max_items is not None and max_items < longest:
        raise ValueError(f"{who}: {max_name}={max_items} is below the largest set ({longest} items)")


def unnest_sets(
    who: str,
    items: Tensor,
    scalars: Tensor | None,
    offsets: Tensor | None,
    *,
    what: str = "mv",
    s_what: str = "scalars",
) -> tuple[Tensor, Tensor | None, Tensor | None, bool]:
    """Nested (jagged) inputs of a net as packed values and offsets; dense ones as they are.

    Parameters
    ----------
    who : str
        The caller, first word of every message.
    items : Tensor
        Nested with the jagged layout, ``(num_sets, j, a, b)``, or dense.
    scalars : Tensor, optional
        Nested like ``items`` (the same per-set sizes) when ``items`` is nested; dense otherwise.
    offsets : Tensor, optional
        Must be None when ``items`` is nested (the sets are given once).
    what, s_what : str
        The caller's names of ``items`` and ``scalars`` in the messages.

    Returns
    -------
    items : Tensor, shape (total_items, a, b) when nested
    scalars : Tensor, shape (total_items, s_channels) when nested, or None
    offsets : Tensor, shape (num_sets + 1,), int64, when nested; else the ``offsets`` given
    nested : bool
        Whether ``items`` was nested (the net then returns nested outputs).

    Raises
    ------
    ValueError
        Offsets given with nested inputs, nested and dense inputs mixed, or nested scalars
        whose sets differ from those of the items (per-set sizes, not only the totals;
        compared in eager mode only).
    """
    nested = isinstance(items, Tensor) and items.is_nested
    scalars_nested = isinstance(scalars, Tensor) and scalars.is_nested
    if not nested:
        if scalars_nested:
            raise ValueError(f"{who}: nested {s_what} need nested {what} (the same sets), got a dense tensor")
        return items, scalars, offsets, False
    if offsets is not None:
        raise ValueError(f"{who}: give the sets either as nested tensors or with offsets, not both")
    values, offs = nested_to_packed(items)
    if scalars is None:
        return values, None, offs, True
    if not scalars_nested:
        raise ValueError(f"{who}: nested {what} need nested {s_what} (the same sets), got a dense tensor")
    s_values, s_offs = nested_to_packed(scalars)
    if s_offs.shape != offs.shape or s_values.shape[0] != values.shape[0]:
        raise ValueError(
            f"{who}: nested {s_what} and {what} hold different sets: {s_offs.shape[0] - 1} sets of "
            f"{s_values.shape[0]} items and {offs.shape[0] - 1} sets of {values.shape[0]} items"
        )
    if not torch.compiler.is_compiling() and not torch.equal(s_offs.to(offs.device), offs):
        sizes, s_sizes = (offs[1:] - offs[:-1]).tolist(), (s_offs[1:] - s_offs[:-1]).tolist()
        raise ValueError(
            f"{who}: nested {s_what} and {what} hold different sets: set sizes {s_sizes} and {sizes}"
        )
    return values, s_values, offs, True
