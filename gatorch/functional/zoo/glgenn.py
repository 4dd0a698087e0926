r"""GLGENN's quaternion-type operations (Filimoshina & Shirokov, ICML 2025).

Quaternion types
----------------
The grade involution :math:`\hat{x}` and the reversion :math:`\tilde{x}` split a Clifford
algebra :math:`C\ell_{p,q,r}` into four subspaces, the *quaternion types*

.. math::
    C\ell^{\bar t} = \{x : \hat{x} = (-1)^t x,\ \tilde{x} = (-1)^{t(t-1)/2} x\}
        = \bigoplus_{k \equiv t \ (\mathrm{mod}\ 4)} C\ell^k, \qquad t = 0, 1, 2, 3,

with projections :math:`P_t(x) = \sum_{k \equiv t\,(4)} \langle x\rangle_k`. GLGENN (Generalized
Lipschitz Group Equivariant Neural Networks) shares its weights across each quaternion type
instead of giving every grade its own, for degenerate and non-degenerate metrics alike:

* :func:`qt_linear`: :math:`y_o = \sum_i \sum_{t=0}^{3} W_{o i t} P_t(x_i)` (4 weights per channel
  pair, against ``n + 1`` for CGENN's grade-wise linear map);
* :func:`qt_gp`: the geometric product with one weight per channel and *quaternion-type
  path*, a triple ``(t_left, t_right, t_out)`` with
  :math:`P_{t_\mathrm{out}}(P_{t_\mathrm{left}}(x) P_{t_\mathrm{right}}(y)) \ne 0` for some
  operands (at most 32 paths, against CGENN's grade paths: 56 for Cl(5,0), 120 for Cl(7,0)).

Both commute with the twisted versor action (the projections are sums of grade projections
and the geometric product is equivariant), so they are equivariant for any weights.

How they run
------------
:func:`qt_linear` reads the input as blade-first rows ``(dim, items, in)`` (a view when it
comes from a previous gatorch linear layer, else one copy) and runs one batched GEMM over the
blades with the per-blade weights ``W[:, :, qt(blade)]`` (``(dim, in, out)``, the weights of
each type repeated over the blades of its grades: static slices, no index table):
the layout and the cost of :func:`gatorch.functional.linear.equi_linear` with a single identity
slot. The scalar bias is added in place and the readout is one GEMM on the scalar row.
Measured against the alternatives (float32, 2048 items, 16 -> 16 channels, forward + backward,
one thread on a shared, loaded machine, so ratios rather than absolutes): 3.5 / 8.6 / 14.7 ms
on VGA3 / PGA3 / CGA3, against 4.2 / 9.6 / 17.0 ms for ``equi_linear``'s slot kernel with a
one-slot quaternion-type plan, 10.2 / 24.4 / 44.5 ms for four quaternion-type gathers each
mixed by a channel GEMM and 17.7 / 37.0 / 78.9 ms for four masked projections each mixed by a
GEMM (:class:`~gatorch.layers.EquiLinear`'s own map: 6.1 / 11.9 / 24.9 ms).
Plain autograd ops, so double backward and ``torch.compile`` need nothing special; nothing
is cached on a device.

:func:`qt_gp` broadcasts its ``(channels, num_qt_paths)`` weight onto the grade paths of
:func:`gatorch.functional.steerable.steerable_gp` (one ``index_select``: grade path
``(a, b, c)`` takes the weight of ``(a % 4, b % 4, c % 4)``) and calls that sparse kernel:
``dim**2`` multiply-adds per channel and item, never a ``(channels, dim, dim, dim)`` tensor.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gatorch.functional.policy import KernelPolicy
from gatorch.functional.steerable import SteerableTables, steerable_gp, steerable_paths, steerable_plan
from gatorch.functional.unary import grade

if TYPE_CHECKING:
    from gatorch.algebras.algebra import AlgebraData as Algebra

__all__ = [
    "NUM_QUATERNION_TYPES",
    "qt_gp",
    "qt_gp_init_std",
    "qt_grade_paths",
    "qt_grades",
    "qt_index",
    "qt_linear",
    "qt_linear_readout",
    "qt_paths",
    "qt_project",
    "quaternion_type",
]

#: Number of quaternion types (grades are grouped modulo this).
NUM_QUATERNION_TYPES = 4


def quaternion_type(grade: int) -> int:
    """Quaternion type ``grade % 4`` of a grade (0: scalars, 1: vectors, 2: bivectors, 3: trivectors)."""
    return grade % NUM_QUATERNION_TYPES


def qt_grades(alg: Algebra, t: int) -> tuple[int, ...]:
    """Grades of ``alg`` of quaternion type ``t``: ``t, t + 4, t + 8, ... <= n`` (empty when ``t > n``)."""
    if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < NUM_QUATERNION_TYPES:
        raise ValueError(f"qt_grades: quaternion type must be an int in [0, 3], got {t!r}")
    return tuple(range(t, alg.n + 1, NUM_QUATERNION_TYPES))


def qt_project(alg: Algebra, x: Tensor, t: int) -> Tensor:
    r"""Projection :math:`P_t(x) = \sum_{k \equiv t\,(4)} \langle x\rangle_k`, shape kept ``(..., dim)``."""
    alg.check_dim(x, "qt_project")
    grades = qt_grades(alg, t)
    return grade(alg, x, grades) if grades else torch.zeros_like(x)


# -- tables (pure Python, on the algebra's store) ---------------------------------------------------
QTPath = tuple[int, int, int]


@torch.compiler.assume_constant_result
def _qt_tables(alg: Algebra) -> tuple[tuple[QTPath, ...], tuple[int, ...]]:
    """``(qt_paths, grade_to_qt)``: the sorted qt triples and, per grade path, its qt-path index.

    A plan on the algebra's store; a constant under ``torch.compile`` (evaluated, not
    traced)."""

    def build() -> tuple[tuple[QTPath, ...], tuple[int, ...]]:
        as_qt = [
            (quaternion_type(a), quaternion_type(b), quaternion_type(c)) for a, b, c in steerable_paths(alg)
        ]
        paths = tuple(sorted(set(as_qt)))
        index = {p: i for i, p in enumerate(paths)}
        return paths, tuple(index[p] for p in as_qt)

    return alg.plan("glgenn_qt_tables", build)


def qt_paths(alg: Algebra) -> tuple[QTPath, ...]:
    """Quaternion-type triples ``(t_left, t_right, t_out)`` of the geometric product, sorted.

    A triple is a path when some blade of type ``t_left`` times some blade of type
    ``t_right`` has a non-zero component on a blade of type ``t_out``: the grade paths of
    :func:`gatorch.functional.steerable.steerable_paths` taken modulo 4. Since
    ``t_out = t_left + t_right (mod 2)``, there are at most 32. ``len(qt_paths(alg))`` is the
    number of weights per channel of :func:`qt_gp`: 20 for Cl(3,0) (every grade is its own
    type), 29 for Cl(3,0,1) and Cl(1,3), 32 (all of them) for Cl(4,1), Cl(2,2,1), Cl(5,0) and
    Cl(7,0). Cached per algebra.
    """
    return _qt_tables(alg)[0]


def qt_gp_init_std(alg: Algebra) -> Tensor:
    r"""Per-qt-path weight standard deviation giving :func:`qt_gp` unit output variance.

    The analogue of :func:`gatorch.functional.steerable.steerable_init_std`: for independent
    unit-variance operands the variance of output blade ``k`` is the sum of the squared
    weights of its terms. Every path into type ``t`` gets the variance ``1 / T_t``, with
    ``T_t`` the mean number of terms per blade of type ``t`` (``dim`` for non-degenerate
    algebras), so that each type's mean output variance is 1.

    Returns
    -------
    Tensor, shape (num_qt_paths,), float64
    """
    plan = steerable_plan(alg)
    terms = [0] * NUM_QUATERNION_TYPES
    blades = [0] * NUM_QUATERNION_TYPES
    for k in range(alg.dim):
        t = quaternion_type(alg.grades[k])
        blades[t] += 1
        terms[t] += sum(1 for i in range(alg.dim) if plan.sign[i][k] != 0.0)
    return torch.tensor([(terms[t] / blades[t]) ** -0.5 for _, _, t in qt_paths(alg)], dtype=torch.float64)


def qt_grade_paths(alg: Algebra) -> tuple[int, ...]:
    """Per grade path of :func:`~gatorch.functional.steerable.steerable_paths`, the index of its
    quaternion-type path in :func:`qt_paths` (cached per algebra, pure Python)."""
    return _qt_tables(alg)[1]


def qt_index(alg: Algebra, device: torch.device | str | None = None) -> Tensor:
    """Quaternion type of each blade as a new int64 tensor of shape ``(dim,)`` on ``device``.

    ``v[..., qt_index(alg)]`` broadcasts per-type values ``v: (..., 4)`` to the blades.
    """
    return torch.tensor([quaternion_type(g) for g in alg.grades], dtype=torch.int64, device=device)


# -- checks --------------------------------------------------------------------------------------------
def _check_input(alg: Algebra, x: Tensor, who: str) -> None:
    alg.check_dim(x, f"{who} x")
    if x.ndim < 2:
        raise ValueError(f"{who}: expected x of shape (..., channels, {alg.dim}), got {tuple(x.shape)}")


def _check_tensor(t: object, name: str, expected: tuple[int | str, ...], who: str) -> None:
    """``expected``: ints must match, strings are free (named) dimensions."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{who}: {name} must be a torch.Tensor, got {type(t).__name__}")
    ok = t.ndim == len(expected) and all(
        isinstance(e, str) or s == e for s, e in zip(t.shape, expected, strict=True)
    )
    if not ok:
        want = ", ".join(str(e) for e in expected)
        raise ValueError(f"{who}: expected {name} of shape ({want}), got {tuple(t.shape)}")
    if not t.is_floating_point():
        raise TypeError(f"{who}: expected a floating-point {name}, got dtype {t.dtype}")


# -- public ops ----------------------------------------------------------------------------------------
def qt_linear(alg: Algebra, x: Tensor, weight: Tensor, *, bias: Tensor | None = None) -> Tensor:
    r"""GLGENN's linear map: :math:`y_o = \sum_i \sum_{t=0}^{3} W_{o i t}\, P_t(x_i) + b_o`.

    Parameters
    ----------
    alg : Algebra
    x : Tensor, shape (..., in_channels, dim)
    weight : Tensor, shape (out_channels, in_channels, 4)
        One weight per (output channel, input channel, quaternion type).
    bias : Tensor, optional
        Added to the scalar blade; shape broadcastable to ``(..., out_channels)``.

    Returns
    -------
    Tensor, shape (..., out_channels, dim)
        A view of blade-first storage (see :func:`gatorch.functional.linear.equi_linear`).
    """
    return _qt_linear(alg, x, weight, bias, None, "qt_linear")[0]


def qt_linear_readout(
    alg: Algebra, x: Tensor, weight: Tensor, readout: Tensor, *, bias: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    r""":func:`qt_linear` and a linear readout of the scalar coefficients (sharing the input copy).

    .. math::
        y_o = \sum_{i, t} W_{o i t} P_t(x_i) + b_o, \qquad t_p = \sum_i U_{p i}\, \langle x_i\rangle_0

    Parameters
    ----------
    x : Tensor, shape (..., in_channels, dim)
    weight : Tensor, shape (out_channels, in_channels, 4)
    readout : Tensor, shape (out_s_channels, in_channels)
    bias : Tensor, optional
        As in :func:`qt_linear`.

    Returns
    -------
    (Tensor, Tensor)
        ``y: (..., out_channels, dim)`` and ``t: (..., out_s_channels)`` (invariant).
    """
    out, s = _qt_linear(alg, x, weight, bias, readout, "qt_linear_readout")
    assert s is not None
    return out, s


def _qt_linear(
    alg: Algebra, x: Tensor, weight: Tensor, bias: Tensor | None, readout: Tensor | None, who: str
) -> tuple[Tensor, Tensor | None]:
    _check_input(alg, x, who)
    in_channels = x.shape[-2]
    _check_tensor(weight, "weight", ("out_channels", in_channels, NUM_QUATERNION_TYPES), who)
    if readout is not None:
        _check_tensor(readout, "readout", ("out_s_channels", in_channels), who)
    batch, out_channels = x.shape[:-2], weight.shape[0]
    scalar = alg.grade_slice(0).start  # the only blade fixed by, and read out of, the action
    if bias is not None:
        try:
            bias = bias.expand(*batch, out_channels)
        except RuntimeError:
            raise ValueError(
                f"{who}: bias of shape {tuple(bias.shape)} does not broadcast to (..., {out_channels})"
            ) from None
    dim, items = alg.dim, math.prod(batch)
    xb = x.movedim(-1, 0).reshape(dim, items, in_channels)  # (dim, N, in): a view of blade-first storage
    if xb.stride(-1) != 1 or xb.stride(-2) != in_channels:  # batch-last input: one 2-D transposed copy
        xb = x.reshape(items * in_channels, dim).t().contiguous().view(dim, items, in_channels)
    # (dim, in, out), contiguous per blade (bmm's fast path needs unit-stride matrices): the
    # weights of type g % 4 repeated over the blades of each grade g (static slices, no table)
    per_type = weight.permute(2, 1, 0)
    per_blade = torch.cat(
        [
            per_type[quaternion_type(g) : quaternion_type(g) + 1].expand(math.comb(alg.n, g), -1, -1)
            for g in range(alg.n + 1)
        ]
    )
    ob = torch.bmm(xb, per_blade)  # (dim, N, out): blade e mixed by W[:, :, qt(e)]
    if bias is not None:  # in place on the product's output (bmm does not save it for backward)
        ob[scalar].add_(bias.reshape(items, out_channels))
    out = ob.view(dim, *batch, out_channels).movedim(0, -1)
    if readout is None:
        return out, None
    return out, (xb[scalar] @ readout.t()).view(*batch, readout.shape[0])


def qt_gp(
    alg: Algebra,
    x: Tensor,
    y: Tensor,
    weight: Tensor,
    *,
    grade_to_qt: Tensor | None = None,
    tables: SteerableTables | None = None,
    policy: KernelPolicy | None = None,
) -> Tensor:
    r"""GLGENN's weighted geometric product, one weight per channel and quaternion-type path.

    .. math::
        \mathrm{out}_{\cdot c} = \sum_{(t_l, t_r, t_o) \in \mathrm{qt\_paths}}
            W_{c,\, (t_l, t_r, t_o)}\; P_{t_o}\big(P_{t_l}(x_{\cdot c})\, P_{t_r}(y_{\cdot c})\big)

    Equivalently :func:`gatorch.functional.steerable.steerable_gp` with every grade path
    ``(a, b, c)`` weighted by ``W[:, (a % 4, b % 4, c % 4)]``, which is how it runs.

    Parameters
    ----------
    alg : Algebra
    x, y : Tensor, shape (..., channels, dim)
        Batch dimensions broadcast.
    weight : Tensor, shape (channels, num_qt_paths)
        ``num_qt_paths = len(qt_paths(alg))``.
    grade_to_qt : Tensor, shape (num_grade_paths,), int64, optional
        :func:`qt_grade_paths` as a tensor on the device of ``weight`` (a layer's buffer);
        built when omitted.
    tables : SteerableTables, optional
        Passed to :func:`~gatorch.functional.steerable.steerable_gp`.
    policy : KernelPolicy, optional
        Passed to :func:`~gatorch.functional.steerable.steerable_gp`.

    Returns
    -------
    Tensor, shape (broadcast batch, channels, dim)
        In the promoted dtype of ``x``, ``y`` and ``weight``.

    Notes
    -----
    Sparse (``dim**2`` multiply-adds per channel and item), autograd-correct (double backward
    too) and traceable by ``torch.compile(fullgraph=True)``, as ``steerable_gp``.
    """
    _check_input(alg, x, "qt_gp")
    _check_tensor(weight, "weight", (x.shape[-2], len(qt_paths(alg))), "qt_gp")
    if grade_to_qt is None:
        grade_to_qt = torch.tensor(qt_grade_paths(alg), dtype=torch.int64, device=weight.device)
    grade_weight = weight.index_select(1, grade_to_qt)
    return steerable_gp(alg, x, y, grade_weight, tables=tables, policy=policy)
