"""Bilinear products of an algebra on ``(..., dim)`` tensors.

Each product is a sparse table of the algebra run through
:func:`gatorch.functional.bilinear.bilinear`; the dense Cayley einsum is kept
as :func:`bilinear_dense`, the reference the fast kernels are tested against.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gatorch.functional.bilinear import bilinear, bilinear_reference
from gatorch.functional.policy import KernelPolicy

if TYPE_CHECKING:
    from gatorch.algebras.algebra import AlgebraData as Algebra

__all__ = ["bilinear_dense", "gp", "lcontract", "outer", "regressive"]


def _check_pair(alg: Algebra, x: Tensor, y: Tensor, name: str, blade_dim: int) -> None:
    for what, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: {what} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim == 0 or t.shape[blade_dim] != alg.dim:
            raise ValueError(
                f"{name}: expected {what} with {alg.dim} blade components (the blades of "
                f"{alg!r}) on axis {blade_dim}, got shape {tuple(t.shape)}"
            )
        if not t.is_floating_point():
            raise TypeError(f"{name}: expected floating-point {what}, got dtype {t.dtype}")


def gp(
    alg: Algebra, x: Tensor, y: Tensor, *, blade_dim: int = -1, policy: KernelPolicy | None = None
) -> Tensor:
    r"""Geometric product :math:`xy`.

    Parameters
    ----------
    alg : Algebra
    x, y : Tensor, shape (..., dim)
        Batch dimensions broadcast. With ``blade_dim=0`` the blades are on the first
        axis instead, ``(dim, ...)``: the kernel's native layout, no transposes.
    policy : KernelPolicy, optional
        The kernels to run (:mod:`gatorch.functional.policy`); ``None``: the ambient policy.

    Returns
    -------
    Tensor, shape (..., dim)
        :math:`(xy)_k = \sum_{ij} C_{ijk} x_i y_j` over the non-zero entries of the
        Cayley tensor only.

    Examples
    --------
    >>> import torch
    >>> from gatorch import VGA3
    >>> from gatorch.functional import gp
    >>> e1, e2 = torch.eye(8)[VGA3.index("e1")], torch.eye(8)[VGA3.index("e2")]
    >>> VGA3.blade_names[int(gp(VGA3, e1, e2).abs().argmax())]
    'e12'
    >>> gp(VGA3, e2, e1)[VGA3.index("e12")].item()  # anticommuting vectors
    -1.0
    """
    _check_pair(alg, x, y, "gp", blade_dim)
    return bilinear(x, y, alg.gp_table, blade_dim=blade_dim, policy=policy)


def outer(
    alg: Algebra, x: Tensor, y: Tensor, *, blade_dim: int = -1, policy: KernelPolicy | None = None
) -> Tensor:
    r"""Outer (wedge) product :math:`x \wedge y`; shapes as in :func:`gp`."""
    _check_pair(alg, x, y, "outer", blade_dim)
    return bilinear(x, y, alg.outer_table, blade_dim=blade_dim, policy=policy)


def lcontract(
    alg: Algebra, x: Tensor, y: Tensor, *, blade_dim: int = -1, policy: KernelPolicy | None = None
) -> Tensor:
    r"""Left contraction :math:`x \rfloor y`: for blades, :math:`\langle e_A e_B\rangle_{|B|-|A|}`."""
    _check_pair(alg, x, y, "lcontract", blade_dim)
    return bilinear(x, y, alg.lcontract_table, blade_dim=blade_dim, policy=policy)


def regressive(
    alg: Algebra, x: Tensor, y: Tensor, *, blade_dim: int = -1, policy: KernelPolicy | None = None
) -> Tensor:
    r"""Regressive product (join, vee) :math:`x \vee y`.

    :math:`x \vee y = \mathrm{undual}(\mathrm{dual}(x) \wedge \mathrm{dual}(y))`.

    Defined through the metric-free complements (see :func:`gatorch.functional.dual`),
    so it is the same in every signature, degenerate ones included. In PGA it joins
    two points into the line through them.
    """
    _check_pair(alg, x, y, "regressive", blade_dim)
    return bilinear(x, y, alg.regressive_table, blade_dim=blade_dim, policy=policy)


def bilinear_dense(alg: Algebra, x: Tensor, y: Tensor, product: str = "gp") -> Tensor:
    """Reference implementation of a product through the dense ``(dim, dim, dim)`` tensor."""
    _check_pair(alg, x, y, f"{product} (dense)", -1)
    dtype = torch.promote_types(x.dtype, y.dtype)
    cayley = alg.tensor_constant(
        ("cayley", product), x.device, dtype, lambda: torch.from_numpy(alg.cayley(product))
    )
    return bilinear_reference(x.to(dtype), y.to(dtype), cayley)
