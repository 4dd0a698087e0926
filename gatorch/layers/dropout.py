"""``GradeDropout``: equivariant dropout of whole grades, and plain dropout of scalars."""

from __future__ import annotations

from torch import Tensor, nn

from gatorch.algebras.layout import Layout
from gatorch.functional.algebra import Algebra
from gatorch.functional.dropout import grade_dropout
from gatorch.layers._checks import check_algebra, check_layout

__all__ = ["GradeDropout"]


class GradeDropout(nn.Module):
    """Drop whole grades of each multivector channel (one mask per channel and grade).

    All blades of a grade share one keep/drop draw, so the mask commutes with the group
    action (which never mixes grades); kept grades are scaled by ``1 / (1 - p)``. Scalar
    channels get ordinary dropout. Identity in eval mode.

    Parameters
    ----------
    alg : Algebra
    p : float
        Drop probability, in ``[0, 1)``.
    layout : Layout, optional
        The grades the channels store (:class:`~gatorch.algebras.Layout`); ``None`` or a
        full layout: all blades. Under the same random state the layer equals the full one
        between ``layout.embed`` and ``layout.project``.

    Shapes
    ------
    ``forward(mv, scalars=None) -> (mv, scalars)``, ``mv: (..., channels, dim)`` (``(...,
    channels, layout.dim)`` with a layout).
    """

    def __init__(self, alg: Algebra, p: float = 0.0, *, layout: Layout | None = None) -> None:
        super().__init__()
        check_algebra(alg, "GradeDropout")
        if not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
            raise ValueError(f"GradeDropout: p must be a float in [0, 1), got {p!r}")
        self.alg, self.p = alg, float(p)
        self.layout = check_layout(alg, layout, "GradeDropout")

    def extra_repr(self) -> str:
        grades = "" if self.layout is None else f", grades={self.layout.grades}"
        return f"{self.alg!r}, p={self.p}{grades}"

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor]:
        out = grade_dropout(self.alg, mv, self.p, self.training, layout=self.layout)
        if scalars is None:
            return out, mv.new_zeros(*mv.shape[:-2], 0)
        return out, nn.functional.dropout(scalars, self.p, self.training)
