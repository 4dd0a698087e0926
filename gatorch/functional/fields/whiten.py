"""Whitening of vectors by given statistics: the stateless core of the field norms.

:func:`whiten` removes the mean of ``dim``-vectors (the blade components of a channel) and
multiplies by the inverse of a Cholesky factor of their ``dim x dim`` covariance
(``L L^T = cov + eps * I``), then applies an optional affine map; see
:mod:`gatorch.layers.fields.norm` for the batch and group norms built on it. Nothing depends on
the metric, so it works for any algebra.

``whitening="cholesky"`` uses ``L^{-1}``: the output covariance is the identity.
``whitening="cliffordlayers"`` uses ``L^{-T}``, what cliffordlayers 0.1.1 computes
(``solve_triangular(cholesky(cov).mH, x, upper=True)``): its output covariance is
``L^{-T} L L^T L^{-1}``, not the identity unless ``cov`` is diagonal.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["WHITENINGS", "whiten"]


#: The whitening conventions :func:`whiten` knows (see the module docstring).
WHITENINGS = ("cholesky", "cliffordlayers")


def whiten(
    x: Tensor,
    mean: Tensor,
    cov: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
    whitening: str = "cholesky",
) -> Tensor:
    """Whiten vectors with given statistics, then apply an optional affine map.

    Parameters
    ----------
    x : (..., N, dim) Tensor
        Vectors sharing the statistics of their leading index.
    mean : (..., dim) Tensor
    cov : (..., dim, dim) Tensor
        Symmetric positive semi-definite.
    weight : (..., dim, dim) Tensor or None
    bias : (..., dim) Tensor or None
    eps : float
        Added to the diagonal of ``cov``.
    whitening : {"cholesky", "cliffordlayers"}
        ``L^{-1}`` or ``L^{-T}`` with ``L L^T = cov + eps I`` (see the module docstring).

    Returns
    -------
    (..., N, dim) Tensor
        ``weight @ A (x - mean) + bias`` with ``A = L^{-1}`` or ``L^{-T}``.
    """
    if whitening not in WHITENINGS:
        raise ValueError(f"whiten: whitening must be one of {WHITENINGS}, got {whitening!r}")
    dim = x.shape[-1]
    eye = torch.eye(dim, dtype=x.dtype, device=x.device)
    lower = torch.linalg.cholesky(cov + eps * eye)
    a = torch.linalg.solve_triangular(lower, eye.expand_as(lower), upper=False)  # L^{-1}
    if whitening == "cliffordlayers":
        a = a.mT
    if weight is not None:
        a = weight @ a
    shift = -(a @ mean.unsqueeze(-1)).squeeze(-1)
    if bias is not None:
        shift = shift + bias
    return x @ a.mT + shift.unsqueeze(-2)
