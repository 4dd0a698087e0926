r"""Products with weights per grade path on layouts (multivectors that store only some grades).

:func:`layout_steerable_gp` is CGENN's steerable geometric product
(:func:`gatorch.functional.steerable.steerable_gp`) on a
:class:`~gatorch.algebras.Layout`: one weight per channel and *path* ``(a, b, c)`` of grades
the layout stores, the grade-``a`` part of ``x`` times the grade-``b`` part of ``y``
projected onto grade ``c``. Each path is a sparse table built for the layout's blades only
(:func:`~gatorch.algebras.layout.layout_product_table`), so the cost is the number of terms
between the stored grades, never ``4**n``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gatorch.algebras.layout import Layout, layout_path_table, layout_product_table
from gatorch.algebras.tables import BilinearTable
from gatorch.functional.bilinear import bilinear
from gatorch.functional.policy import KernelPolicy

__all__ = ["LayoutSteerablePlan", "layout_steerable_gp", "layout_steerable_plan"]


@dataclass(frozen=True, eq=False)
class LayoutSteerablePlan:
    """The paths of the steerable product on a layout and one sparse table per path.

    Attributes
    ----------
    layout : Layout
    paths : tuple of (int, int, int)
        ``(grade_left, grade_right, grade_out)`` triples with non-zero terms between stored
        grades, sorted: the full algebra's :func:`~gatorch.functional.steerable.steerable_paths`
        whose three grades the layout stores, in the same order.
    tables : tuple of BilinearTable
        The terms of each path, indices into the layout.
    init_std : tuple of float
        Per-path weight standard deviation giving unit output variance for unit-variance
        operands (``1 / sqrt(T_c)``, ``T_c`` the mean number of terms per blade of grade ``c``).
    """

    layout: Layout
    paths: tuple[tuple[int, int, int], ...]
    tables: tuple[BilinearTable, ...]
    init_std: tuple[float, ...]


def layout_steerable_plan(layout: Layout) -> LayoutSteerablePlan:
    """Build the :class:`LayoutSteerablePlan` of ``layout`` (``O(layout.dim**2)`` work)."""
    if not isinstance(layout, Layout):
        raise TypeError(f"layout_steerable_plan: expected a Layout, got {type(layout).__name__}")
    full = layout_product_table(layout, layout, layout, "gp")
    grades = layout.blade_grades
    gi, gj, gk = grades[full.i], grades[full.j], grades[full.k]
    paths = sorted({(int(a), int(b), int(c)) for a, b, c in zip(gi, gj, gk, strict=True)})
    tables = [layout_path_table(full, layout, layout, layout, path) for path in paths]
    terms = np.bincount(gk, minlength=layout.n + 1)
    per_blade = {c: terms[c] / math.comb(layout.n, c) for c in layout.grades}
    std = tuple(float(per_blade[c] ** -0.5) for _, _, c in paths)
    return LayoutSteerablePlan(layout, tuple(paths), tuple(tables), std)


def layout_steerable_gp(
    x: Tensor, y: Tensor, weight: Tensor, plan: LayoutSteerablePlan, *, policy: KernelPolicy | None = None
) -> Tensor:
    r"""The steerable geometric product on a layout, path by path.

    .. math::
        \mathrm{out}_{\cdot c k}
            = \sum_{p} W_{c p} \sum_{(i, j, k, s) \in T_p} s\, x_{\cdot c i}\, y_{\cdot c j}

    Parameters
    ----------
    x, y : Tensor, shape (..., channels, layout.dim)
    weight : Tensor, shape (channels, len(plan.paths))
    plan : LayoutSteerablePlan
    policy : KernelPolicy, optional
        The product kernels (:mod:`gatorch.functional.policy`); ``None``: the ambient policy.

    Returns
    -------
    Tensor, shape (..., channels, layout.dim)
    """
    dim, num = plan.layout.dim, len(plan.paths)
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor) or t.ndim < 2 or t.shape[-1] != dim:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(
                f"layout_steerable_gp: expected {name} of shape (..., channels, {dim}) (the blades of "
                f"grades {plan.layout.grades}), got {got}"
            )
    if weight.ndim != 2 or weight.shape != (x.shape[-2], num):
        raise ValueError(
            f"layout_steerable_gp: expected weight of shape (channels, paths) = ({x.shape[-2]}, {num}), "
            f"got {tuple(weight.shape)}"
        )
    out: Tensor | None = None
    for p, table in enumerate(plan.tables):
        term = bilinear(x, y, table, policy=policy)
        term = term * weight[:, p : p + 1].to(term.dtype)
        out = term if out is None else out + term
    if out is None:  # no path between the stored grades: the empty sum
        return torch.zeros(torch.broadcast_shapes(x.shape, y.shape), dtype=x.dtype, device=x.device)
    return out
