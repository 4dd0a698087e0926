"""Equivariant dropout of multivector channels: whole grades are kept or dropped together."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gatorch.functional.nonlinear import blade_grade_index, check_layout_dim

if TYPE_CHECKING:
    from gatorch.algebras.algebra import AlgebraData as Algebra
    from gatorch.algebras.layout import Layout

__all__ = ["grade_dropout"]


def grade_dropout(
    alg: Algebra, x: Tensor, p: float, training: bool = True, *, layout: Layout | None = None
) -> Tensor:
    r"""Drop each grade of each channel with probability ``p``; scale the rest by ``1/(1-p)``.

    One Bernoulli draw per ``(batch..., channel, grade)`` is shared by all blades of that
    grade, so the mask commutes with the group action (which maps each grade to itself).

    Parameters
    ----------
    x : Tensor, shape (..., channels, dim) or (..., channels, layout.dim)
    p : float
        Drop probability in ``[0, 1)``.
    training : bool
        Identity when ``False`` or when ``p == 0``.
    layout : Layout, optional
        The grades ``x`` stores (:class:`~gatorch.algebras.Layout`); ``None``: all blades.
        The draws have the same shape as without a layout, so under the same random state
        the result is the full map's between ``layout.embed`` and ``layout.project``.
    """
    check_layout_dim(alg, layout, x, "grade_dropout")
    if not 0.0 <= p < 1.0:
        raise ValueError(f"grade_dropout: p must be in [0, 1), got {p!r}")
    if not training or p == 0.0:
        return x
    keep = torch.empty(*x.shape[:-1], alg.n + 1, dtype=x.dtype, device=x.device).bernoulli_(1.0 - p)
    return x * keep.index_select(-1, blade_grade_index(alg, layout, x.device)) / (1.0 - p)
