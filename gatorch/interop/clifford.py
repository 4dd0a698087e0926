r"""Conversion between gatorch multivector tensors and the ``clifford`` package's ``MultiVector``.

``clifford`` is optional (it is in the ``test`` extra; ``pip install clifford``): every
function imports it when called and raises ``ImportError`` naming it if it is missing.

Correspondence
--------------
Components are matched by *blade*, never by position: a gatorch blade is the set of
positions (in ``alg.metric`` order) of its basis vectors, which its name spells
(``"e013"`` with ``e0`` first is ``{0, 1, 3}``; ``alg.bitmaps`` holds the sets);
a clifford blade is the tuple of basis-vector ids in ``layout.bladeTupList``, turned into
positions through the layout's basis-vector ids (``layout.sig`` is in that order). If a
clifford tuple is not ascending, its coefficient carries the sign of the permutation that
sorts it (``e21 = -e12``); clifford's own layouts are ascending, so the signs are all +1
in practice. Both orders are therefore free to differ, and the conversion is exact.

:func:`clifford_layout` builds the layout of an algebra with the same metric order and the
same first index, so the names agree too: ``clifford_layout(PGA3)`` has ``e0`` degenerate
and ``e1, e2, e3`` positive (``clifford.Cl(3, 0, 1)`` alone would number them from ``e1``),
``clifford_layout(STA)`` has ``e0`` timelike. Layouts are cached per algebra (clifford
compiles its product functions once per layout object, on first use).

Shapes: :func:`to_clifford` turns ``(dim,)`` into one ``MultiVector`` and ``(..., dim)``
into a ``clifford.MVArray`` (a numpy object array) of shape ``(...)``; :func:`from_clifford`
takes one ``MultiVector``, an ``MVArray`` / numpy object array, or nested sequences of them
and returns a tensor ``(..., dim)`` with the same batch shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from gatorch.functional.algebra import Algebra

if TYPE_CHECKING:
    import clifford

__all__ = ["algebra_of", "clifford_layout", "from_clifford", "to_clifford"]


def _clifford() -> Any:
    try:
        import clifford
    except ImportError as err:
        raise ImportError(
            "gatorch.interop needs the optional dependency clifford, which is not installed: "
            'pip install clifford (or pip install "gatorch-nn[test]")'
        ) from err
    return clifford


def _start_index(alg: Algebra) -> int:
    """The number in the name of the first basis vector (``e0``, ``e1``, or any ``start_index``)."""
    return int(alg.blade_names[1][1:]) if alg.n else 1


def _gatorch_sets(alg: Algebra) -> list[tuple[int, ...]]:
    """Positions (0-based, in ``alg.metric`` order) of the basis vectors of each blade, ascending.

    Read from the algebra's blade bitmaps (bit ``i`` = basis vector ``i``), which are what
    its blade names spell (``e013`` with ``e0`` first is ``(0, 1, 3)``).
    """
    return [tuple(i for i in range(alg.n) if (int(bm) >> i) & 1) for bm in alg.bitmaps]


def _permutation_sign(seq: Sequence[int]) -> float:
    """Sign of the permutation that sorts ``seq`` (distinct entries)."""
    seq = list(seq)
    sign = 1.0
    for i in range(len(seq)):
        for j in range(i + 1, len(seq)):
            if seq[i] > seq[j]:
                sign = -sign
    return sign


def _layout_ids(layout: clifford.Layout) -> list[Any]:
    """The basis-vector ids of a layout, in ``layout.sig`` order."""
    ids = getattr(layout, "_basis_vector_ids", None)
    values = getattr(ids, "values", None)
    if values is not None:
        return list(values)
    # older clifford: ids are the grade-1 tuples, in blade order (shortlex: the sig order)
    return [t[0] for t in layout.bladeTupList if len(t) == 1]


def _matching(alg: Algebra, layout: clifford.Layout) -> tuple[np.ndarray, np.ndarray]:
    """``(perm, sign)``: gatorch component ``g`` is ``sign[g] *`` clifford component ``perm[g]``."""
    sig = tuple(int(s) for s in np.asarray(layout.sig))
    if sig != alg.metric:
        raise ValueError(
            f"clifford layout with signature {list(sig)} does not match {alg!r} (metric {list(alg.metric)}); "
            "the basis vectors must square to the same values in the same order"
        )
    ids = _layout_ids(layout)
    pos = {i: k for k, i in enumerate(ids)}
    cf: dict[tuple[int, ...], tuple[int, float]] = {}
    for k, t in enumerate(layout.bladeTupList):
        p = [pos[i] for i in t]
        cf[tuple(sorted(p))] = (k, _permutation_sign(p))
    perm = np.empty(alg.dim, dtype=np.int64)
    sign = np.empty(alg.dim, dtype=np.float64)
    for g, s in enumerate(_gatorch_sets(alg)):
        perm[g], sign[g] = cf[s]
    return perm, sign


def clifford_layout(alg: Algebra) -> clifford.Layout:
    """The ``clifford.Layout`` of an algebra: same metric order, same first index, so same blade names.

    Built with ``clifford.Cl(sig=alg.metric, firstIdx=...)``; for the default order
    (degenerate, positive, negative) that is ``clifford.Cl(p, q, r)`` with the index start
    of gatorch (``e0`` first when ``r > 0``). Cached: the same algebra gives the same layout.

    Parameters
    ----------
    alg : Algebra

    Returns
    -------
    clifford.Layout
    """
    if not isinstance(alg, Algebra):
        raise TypeError(f"clifford_layout: alg must be a gatorch.Algebra, got {type(alg).__name__}")
    _clifford()
    return alg.plan("clifford_layout", lambda: _build_layout(alg))


def _build_layout(alg: Algebra) -> clifford.Layout:
    layout, _ = _clifford().Cl(sig=list(alg.metric), firstIdx=_start_index(alg))
    return layout


def algebra_of(layout: clifford.Layout) -> Algebra:
    """The gatorch algebra of a clifford layout: same metric order; start index that of its ids when integers.

    Parameters
    ----------
    layout : clifford.Layout

    Returns
    -------
    Algebra
        ``Algebra.from_signature(layout.sig, start_index=...)``.
    """
    cl = _clifford()
    if not isinstance(layout, cl.Layout):
        raise TypeError(f"algebra_of: expected a clifford.Layout, got {type(layout).__name__}")
    ids = _layout_ids(layout)
    start = None
    if all(isinstance(i, (int, np.integer)) for i in ids) and list(ids) == list(
        range(int(ids[0]), int(ids[0]) + len(ids))
    ):
        start = int(ids[0])
    return Algebra.from_signature([int(s) for s in np.asarray(layout.sig)], start_index=start)


def to_clifford(alg: Algebra, mv: Tensor, layout: clifford.Layout | None = None) -> Any:
    """Multivectors as ``clifford.MultiVector`` objects.

    Parameters
    ----------
    alg : Algebra
    mv : Tensor, shape (..., alg.dim)
        Detached and copied to CPU float64 numpy.
    layout : clifford.Layout, optional
        Target layout (its signature must equal ``alg.metric``, in order); default
        :func:`clifford_layout` ``(alg)``.

    Returns
    -------
    clifford.MultiVector or clifford.MVArray
        One ``MultiVector`` for ``mv`` of shape ``(dim,)``; otherwise an ``MVArray`` (numpy
        object array) of shape ``mv.shape[:-1]``.
    """
    cl = _clifford()
    if not isinstance(alg, Algebra):
        raise TypeError(f"to_clifford: alg must be a gatorch.Algebra, got {type(alg).__name__}")
    alg.check_dim(mv, "to_clifford")
    if layout is None:
        layout = clifford_layout(alg)
    elif not isinstance(layout, cl.Layout):
        raise TypeError(f"to_clifford: layout must be a clifford.Layout, got {type(layout).__name__}")
    perm, sign = _matching(alg, layout)
    x = mv.detach().to("cpu", torch.float64).numpy().reshape(-1, alg.dim)
    values = np.zeros_like(x)
    values[:, perm] = x * sign
    if mv.ndim == 1:
        return layout.MultiVector(value=values[0])
    out = np.empty(x.shape[0], dtype=object)
    for k in range(x.shape[0]):
        out[k] = layout.MultiVector(value=values[k])
    return out.reshape(tuple(mv.shape[:-1])).view(cl.MVArray)


def _collect(obj: Any, mv_type: type, leaves: list[Any]) -> tuple[int, ...]:
    """Append the MultiVectors of ``obj`` (nested) to ``leaves``; return the batch shape."""
    if isinstance(obj, mv_type):
        leaves.append(obj)
        return ()
    if isinstance(obj, np.ndarray):
        if obj.dtype != object:
            raise TypeError(f"from_clifford: expected MultiVectors, got a numpy array of dtype {obj.dtype}")
        for item in obj.reshape(-1):
            if _collect(item, mv_type, leaves) != ():
                raise ValueError("from_clifford: an object array must hold MultiVectors, not nested arrays")
        return tuple(obj.shape)
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        shapes = {_collect(item, mv_type, leaves) for item in obj}
        if len(shapes) > 1:
            raise ValueError(f"from_clifford: ragged nested sequence, inner shapes {sorted(shapes)}")
        inner = shapes.pop() if shapes else ()
        return (len(obj), *inner)
    raise TypeError(f"from_clifford: expected clifford MultiVectors, got {type(obj).__name__}")


def from_clifford(
    layout: clifford.Layout | Algebra,
    mvs: Any,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Tensor:
    """``clifford.MultiVector`` objects as a gatorch tensor.

    Parameters
    ----------
    layout : clifford.Layout or Algebra
        The target algebra: a layout (the algebra :func:`algebra_of` ``(layout)``) or a
        gatorch algebra. Each multivector's own layout must have the same signature, in
        the same order (``ValueError`` otherwise); components are read through that layout.
    mvs : MultiVector, MVArray, numpy object array, or (nested) sequence of them
        An empty sequence gives shape ``(0, dim)``.
    dtype, device
        Of the result (default float64 on the CPU).

    Returns
    -------
    Tensor, shape (..., dim)
        ``(dim,)`` for one MultiVector, else the batch shape of ``mvs`` then ``dim``, in the
        algebra's blade order. ``from_clifford(alg, to_clifford(alg, x)) == x`` exactly (float64).
    """
    cl = _clifford()
    if isinstance(layout, Algebra):
        alg = layout
    elif isinstance(layout, cl.Layout):
        alg = algebra_of(layout)
    else:
        raise TypeError(
            f"from_clifford: layout must be a clifford.Layout or gatorch.Algebra, got {type(layout).__name__}"
        )
    leaves: list[Any] = []
    shape = _collect(mvs, cl.MultiVector, leaves)
    out = np.zeros((len(leaves), alg.dim), dtype=np.float64)
    matchings: dict[int, tuple[Any, np.ndarray, np.ndarray]] = {}
    for k, m in enumerate(leaves):
        key = id(m.layout)
        if key not in matchings:
            matchings[key] = (m.layout, *_matching(alg, m.layout))  # keeps the layout alive
        _, perm, sign = matchings[key]
        value = np.asarray(m.value)
        if np.iscomplexobj(value):
            raise TypeError("from_clifford: complex-valued MultiVectors are not supported")
        out[k] = value[perm] * sign
    return torch.from_numpy(out.reshape(*shape, alg.dim)).to(device=device, dtype=dtype)
