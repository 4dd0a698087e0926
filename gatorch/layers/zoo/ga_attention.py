r"""Geometric algebra attention over the tuples of a small point cloud (Spellings 2021).

M. Spellings, *Geometric algebra attention networks for small point clouds*,
arXiv:2110.02393 (2021); reference implementation: the ``geometric-algebra-attention``
package (``VectorAttention``, ``Vector2VectorAttention``).

For every ordered tuple :math:`(i_1, \dots, i_R)` of points (``rank`` :math:`R`, so
:math:`N^R` tuples) the layers form the geometric product of the position vectors,
read rotation-invariant features off it, turn them into a value and a score, and pool
the values by a softmax over tuples:

.. math::
    p_{i_1 \dots i_R} &= r_{i_1} r_{i_2} \cdots r_{i_R} \\
    q &= \mathrm{invariants}(p, \dots) \\
    u &= \mathcal J\big(\mathcal V(q),\ \mathcal M(v_{i_1}, \dots, v_{i_R})\big) \\
    w &= \mathrm{softmax}(\mathcal S(u)) \\
    y_{i_1} &= \sum w\, u \quad\text{(invariant)}, \qquad
    y_{i_1} = \sum w\, \mathcal R(u) \sum_n \alpha_n\, c(p_n) \quad\text{(covariant)}

with the sum and the softmax over :math:`i_2 \dots i_R` (``reduce=False``: one output per
point, permutation-equivariant) or over all of :math:`i_1 \dots i_R` (``reduce=True``:
one output per cloud, permutation-invariant). :math:`\mathcal V, \mathcal S, \mathcal R`
are the user's value, score and scale networks; :math:`\mathcal M` (merge) and
:math:`\mathcal J` (join) are a mean or a learned sum of linear maps (``"concat"``).

**Which products.** ``invariant_mode`` (and ``covariant_mode``) pick the products
:math:`p_n`: ``"single"`` the full product only; ``"partial"`` the chain
:math:`r_{i_1} \cdots r_{i_R}, \dots, r_{i_1} r_{i_2}, r_{i_1}`; ``"full"`` every
contiguous sub-product :math:`r_{i_s} \cdots r_{i_t}`, ordered as the package orders them.

**Invariants** of a product of :math:`k` vectors (grades :math:`k, k-2, \dots`), in
ascending grade: the signed scalar part, the norm of every other grade, and the
pseudoscalar part, signed for ``group="spin"`` (as the package does: the triple product
of a rank-3 tuple, which changes sign under reflections) or its absolute value for
``group="pin"``. In VGA3: rank 1 :math:`|r|`; rank 2 :math:`(r_i\cdot r_j,\ |r_i\wedge r_j|)`;
rank 3 :math:`(|\langle p\rangle_1|,\ \langle p\rangle_3)`.

**Covariants** :math:`c(p)`: the vector part plus the :math:`(n-1)`-vector part of the
product (in VGA3 the bivector :math:`r_i \wedge r_j` of even ranks). ``group="spin"``
turns the latter into a vector by the dual (the package's output: :math:`r_i \times r_j`,
a pseudovector, so the output rotates with the input but picks up a sign under
reflections); ``group="pin"`` keeps it as an :math:`(n-1)`-vector, so the output has a
vector and a bivector part and is equivariant under all of O(n), reflections included.

With ``group="spin"`` in VGA3 both layers reproduce the package's torch backend (same
nets, same merge / join / vector weights) to rounding; see ``tests/test_ga_attention.py``.
Not implemented: the package's ``linear_terms`` and per-point tuple weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from gatorch.functional.algebra import VGA3, Algebra
from gatorch.functional.products import gp
from gatorch.functional.unary import dual, grade, norm, safe_sqrt
from gatorch.layers._checks import check_algebra, check_int

__all__ = ["GACovariantAttention", "GAInvariantAttention", "ga_attention_invariant_dims"]

_MODES = ("single", "partial", "full")
_FUNS = ("mean", "concat")
_GROUPS = ("spin", "pin")
#: Lower bound on a product's norm when normalising it (the package's value).
_NORM_EPS = 1e-7

Net = Callable[[Tensor], Tensor]


def _terms(rank: int, mode: str) -> list[tuple[int, int]]:
    """The products of a mode as ``(start slot, length)``, in the package's order."""
    if mode == "single":
        return [(0, rank)]
    if mode == "partial":
        return [(0, k) for k in range(rank, 0, -1)]
    return [(s, k) for s in range(rank) for k in range(rank - s, 0, -1)]


def _product_grades(n: int, length: int) -> list[int]:
    """Grades a product of ``length`` vectors can have in an ``n``-dimensional space."""
    return [g for g in range(min(length, n) + 1) if (length - g) % 2 == 0]


def _covariant_grades(n: int, length: int) -> list[int]:
    """Grades of a product that give (pseudo)vectors: 1 and ``n - 1``."""
    return [g for g in _product_grades(n, length) if g in (1, n - 1)]


def ga_attention_invariant_dims(
    rank: int,
    invariant_mode: str = "single",
    normalized_products: bool = False,
    alg: Algebra = VGA3,
) -> int:
    """Number of invariant features per tuple: the input width of the value network.

    Matches ``geometric_algebra_attention.VectorAttention.get_invariant_dims`` (without
    linear terms) in VGA3: ``single`` 2 (1 for rank 1), ``partial`` ``2 rank - 1``,
    ``full`` ``rank**2``; doubled by ``normalized_products``.
    """
    check_int("ga_attention_invariant_dims", "rank", rank, 1)
    if invariant_mode not in _MODES:
        raise ValueError(
            f"ga_attention_invariant_dims: invariant_mode must be one of {_MODES}, got {invariant_mode!r}"
        )
    dims = sum(len(_product_grades(alg.n, k)) for _, k in _terms(rank, invariant_mode))
    return dims * (2 if normalized_products else 1)


def _check_net(who: str, name: str, net: object) -> None:
    if not callable(net):
        raise TypeError(f"{who}: {name} must be a callable (a torch.nn.Module), got {type(net).__name__}")


def _check_choice(who: str, name: str, value: object, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{who}: {name} must be one of {tuple(choices)}, got {value!r}")


def _check_net_output(who: str, name: str, out: object, width: int, tuple_shape: tuple[int, ...]) -> Tensor:
    expected = (*tuple_shape, width)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{who}: {name} must map to shape {expected} (..., {width}), got {got}")
    return out


class _GAAttentionBase(nn.Module):
    """Tuple products, invariants, merge / join and the softmax shared by both layers."""

    _who = "GAAttention"

    def __init__(
        self,
        alg: Algebra,
        n_dim: int,
        score_net: Net,
        value_net: Net,
        *,
        rank: int,
        reduce: bool,
        merge_fun: str,
        join_fun: str,
        invariant_mode: str,
        normalized_products: bool,
        group: str,
    ) -> None:
        super().__init__()
        who = self._who
        check_algebra(alg, who)
        p, q, r = alg.signature
        if q or r or p < 2:
            raise ValueError(f"{who}: needs a Euclidean algebra Cl(n, 0, 0) with n >= 2, got {alg!r}")
        check_int(who, "n_dim", n_dim, 1)
        check_int(who, "rank", rank, 1)
        _check_net(who, "score_net", score_net)
        _check_net(who, "value_net", value_net)
        _check_choice(who, "merge_fun", merge_fun, _FUNS)
        _check_choice(who, "join_fun", join_fun, _FUNS)
        _check_choice(who, "invariant_mode", invariant_mode, _MODES)
        _check_choice(who, "group", group, _GROUPS)
        self.alg, self.n_dim, self.rank, self.reduce = alg, n_dim, rank, bool(reduce)
        self.merge_fun, self.join_fun, self.group = merge_fun, join_fun, group
        self.invariant_mode, self.normalized_products = invariant_mode, bool(normalized_products)
        self.score_net, self.value_net = score_net, value_net
        self.invariant_dims = ga_attention_invariant_dims(rank, invariant_mode, self.normalized_products, alg)
        self._invariant_terms = _terms(rank, invariant_mode)
        # the package's initialisation: N(0, sqrt(2 / fan)) per linear map
        if merge_fun == "concat":
            std = math.sqrt(2.0 / rank / n_dim)
            self.merge_weight = nn.Parameter(torch.randn(rank, n_dim, n_dim) * std)
        if join_fun == "concat":
            std = math.sqrt(2.0 / 2 / n_dim)
            self.join_weight = nn.Parameter(torch.randn(2, n_dim, n_dim) * std)

    def extra_repr(self) -> str:
        return (
            f"{self.alg!r}, n_dim={self.n_dim}, rank={self.rank}, reduce={self.reduce}, "
            f"merge_fun={self.merge_fun!r}, join_fun={self.join_fun!r}, "
            f"invariant_mode={self.invariant_mode!r}, group={self.group!r}"
        )

    # -- inputs ---------------------------------------------------------------------------------------
    def _check_inputs(self, positions: object, values: object, mask: object) -> None:
        who, dim = self._who, self.alg.dim
        if not isinstance(positions, torch.Tensor):
            raise TypeError(f"{who}: positions must be a torch.Tensor, got {type(positions).__name__}")
        if positions.ndim < 2 or positions.shape[-1] != dim:
            hint = ""
            if positions.ndim >= 1 and positions.shape[-1] == self.alg.n:
                hint = " (embed Cartesian vectors first, e.g. gatorch.interface.vga.embed_vector)"
            raise ValueError(
                f"{who}: expected positions of shape (..., N, {dim}) (vectors of {self.alg!r}), "
                f"got {tuple(positions.shape)}{hint}"
            )
        if not positions.is_floating_point():
            raise TypeError(f"{who}: expected floating-point positions, got dtype {positions.dtype}")
        lead = tuple(positions.shape[:-1])
        if not isinstance(values, torch.Tensor):
            raise TypeError(f"{who}: values must be a torch.Tensor, got {type(values).__name__}")
        if tuple(values.shape) != (*lead, self.n_dim):
            raise ValueError(
                f"{who}: expected values of shape {(*lead, self.n_dim)} (positions' (..., N) and "
                f"n_dim={self.n_dim}), got {tuple(values.shape)}"
            )
        if mask is not None:
            if not isinstance(mask, torch.Tensor):
                raise TypeError(f"{who}: mask must be a bool torch.Tensor, got {type(mask).__name__}")
            if mask.dtype != torch.bool or tuple(mask.shape) != lead:
                raise ValueError(
                    f"{who}: expected a bool mask of shape {lead} (positions' (..., N)), "
                    f"got {mask.dtype} of shape {tuple(mask.shape)}"
                )

    def _slot(self, x: Tensor, s: int) -> Tensor:
        """``(..., N, c) -> (..., 1, .., N, .., 1, c)`` with ``N`` on tuple axis ``s``."""
        shape = [1] * self.rank
        shape[s] = x.shape[-2]
        return x.reshape(*x.shape[:-2], *shape, x.shape[-1])

    # -- products and their features ---------------------------------------------------------------
    def _products(self, positions: Tensor, terms: list[tuple[int, int]]) -> dict[tuple[int, int], Tensor]:
        """The products ``r_{i_s} ... r_{i_{s+k-1}}`` for every ``(s, k)`` needed, broadcast shapes."""
        alg = self.alg
        vectors = grade(alg, positions, 1)
        slots = [self._slot(vectors, s) for s in range(self.rank)]
        out: dict[tuple[int, int], Tensor] = {}
        for start in sorted({s for s, _ in terms}):
            longest = max(k for s, k in terms if s == start)
            prod = slots[start]
            out[(start, 1)] = prod
            for k in range(2, longest + 1):
                prod = gp(alg, prod, slots[start + k - 1])
                out[(start, k)] = prod
        return out

    def _invariants(self, p: Tensor, length: int) -> Tensor:
        """Invariant features of a product of ``length`` vectors, ascending grade, ``(..., k)``."""
        alg, n = self.alg, self.alg.n
        feats = []
        for g in _product_grades(n, length):
            part = p[..., alg.grade_slice(g)]
            if g == 0 or (g == n and self.group == "spin"):
                feats.append(part)
            else:
                feats.append(safe_sqrt(part.square().sum(-1, keepdim=True)))
        return torch.cat(feats, dim=-1) if len(feats) > 1 else feats[0]

    def _inverse_norm(self, p: Tensor) -> Tensor:
        """``1 / max(|p|, eps)``, shape ``(..., 1)``: the package's normalisation of a product."""
        return 1.0 / norm(self.alg, p, keepdim=True).clamp_min(_NORM_EPS)

    def _invariant_features(
        self, products: dict[tuple[int, int], Tensor], tuple_shape: tuple[int, ...]
    ) -> Tensor:
        feats = [self._invariants(products[t], t[1]) for t in self._invariant_terms]
        if self.normalized_products:
            feats += [
                f * self._inverse_norm(products[t]) for f, t in zip(feats, self._invariant_terms, strict=True)
            ]
        feats = [f.expand(*tuple_shape, f.shape[-1]) for f in feats]
        return torch.cat(feats, dim=-1) if len(feats) > 1 else feats[0]

    # -- values, scores, pooling ---------------------------------------------------------------------
    def _joined(self, invariants: Tensor, values: Tensor, tuple_shape: tuple[int, ...]) -> Tensor:
        r"""``J(V(q), M(v_{i_1}, ..., v_{i_R}))`` on every tuple, ``(*tuple_shape, n_dim)``.

        Merge and the join's second map are linear, so their composition is applied per
        point (``N`` rows) and only the sum over slots is formed per tuple.
        """
        v_q = _check_net_output(self._who, "value_net", self.value_net(invariants), self.n_dim, tuple_shape)
        if self.merge_fun == "concat":
            maps: list[Tensor | None] = list(self.merge_weight.unbind(0))
        else:
            maps = [None] * self.rank
        if self.join_fun == "concat":
            j_q, j_v = self.join_weight.unbind(0)
            maps = [j_v / self.rank if m is None else m @ j_v for m in maps]
        per_slot = [values if m is None else values @ m for m in maps]
        merged = self._slot(per_slot[0], 0)
        for s in range(1, self.rank):
            merged = merged + self._slot(per_slot[s], s)
        if self.join_fun == "concat":
            return v_q @ j_q + merged
        if self.merge_fun == "mean":
            merged = merged / float(self.rank)
        return (v_q + merged) / 2.0

    def _attention(self, joined: Tensor, mask: Tensor | None, tuple_shape: tuple[int, ...]) -> Tensor:
        """Softmax weights over the pooled tuple axes, shape ``tuple_shape``."""
        scores = _check_net_output(self._who, "score_net", self.score_net(joined), 1, tuple_shape)[..., 0]
        wide = torch.promote_types(scores.dtype, torch.float32)
        scores = scores.to(wide)
        if mask is not None:
            valid = self._slot(mask[..., None], 0)
            for s in range(1, self.rank):
                valid = valid & self._slot(mask[..., None], s)
            scores = scores.masked_fill(~valid[..., 0], torch.finfo(wide).min)
        pooled = self._pooled_axes
        flat = scores.reshape(*scores.shape[: scores.ndim - pooled], -1)
        return flat.softmax(-1).reshape(tuple_shape).to(joined.dtype)

    @property
    def _pooled_axes(self) -> int:
        return self.rank if self.reduce else self.rank - 1

    def _pool(self, weights: Tensor, items: Tensor, mask: Tensor | None) -> Tensor:
        r"""``\sum_t weights_t items_t`` over the pooled tuple axes; padded outputs set to 0."""
        pooled = self._pooled_axes
        w = weights.reshape(*weights.shape[: weights.ndim - pooled], 1, -1)
        x = items.reshape(*items.shape[: items.ndim - 1 - pooled], -1, items.shape[-1])
        out = (w @ x).squeeze(-2)
        if mask is not None:
            keep = mask.any(-1) if self.reduce else mask
            out = out * keep[..., None].to(out.dtype)
        return out

    def _tuple_shape(self, positions: Tensor) -> tuple[int, ...]:
        return (*positions.shape[:-2], *([positions.shape[-2]] * self.rank))


class GAInvariantAttention(_GAAttentionBase):
    r"""Rotation-invariant geometric algebra attention (the package's ``VectorAttention``).

    .. math::
        y_{i_1} = \sum_{i_2 \dots i_R} w_{i_1 \dots i_R}\, u_{i_1 \dots i_R}, \qquad
        u = \mathcal J\big(\mathcal V(q(p)),\ \mathcal M(v_{i_1}, \dots, v_{i_R})\big),
        \quad w = \mathrm{softmax}\, \mathcal S(u)

    over the :math:`N^R` tuples of points; see :mod:`gatorch.layers.zoo.ga_attention` for the
    products :math:`p`, the invariants :math:`q` and the modes.

    Parameters
    ----------
    alg : Algebra
        A Euclidean algebra ``Cl(n, 0, 0)``, ``n >= 2`` (the paper: ``gatorch.VGA3``).
    n_dim : int
        Width of the per-point values and of every intermediate.
    score_net : nn.Module
        ``(..., n_dim) -> (..., 1)``: attention logits of each tuple.
    value_net : nn.Module
        ``(..., invariant_dims) -> (..., n_dim)``, with ``invariant_dims`` from
        :func:`ga_attention_invariant_dims` (also ``self.invariant_dims``).
    rank : int
        Tuple length :math:`R` (2: pairs, 3: triples); cost and memory grow as :math:`N^R`.
    reduce : bool
        ``True``: one output per cloud (softmax and sum over all tuples);
        ``False``: one output per point :math:`i_1`.
    merge_fun, join_fun : {"mean", "concat"}
        :math:`\mathcal M` and :math:`\mathcal J`: the mean, or a sum of learned
        ``(n_dim, n_dim)`` maps, one per tuple slot (``merge_weight``, ``(rank, n_dim, n_dim)``)
        or per joined input (``join_weight``, ``(2, n_dim, n_dim)``: invariant values, merged
        point values).
    invariant_mode : {"single", "partial", "full"}
    normalized_products : bool
        Also feed the invariants of each product divided by its norm (doubles the count).
    group : {"spin", "pin"}
        ``"pin"`` (default, like every gatorch layer): the absolute value of the
        pseudoscalar part of odd products, so the outputs are invariant under all of O(n),
        reflections included. ``"spin"`` (the package): the signed pseudoscalar part, so
        rank >= 3 outputs are invariant under rotations only (chiral).

    Shapes
    ------
    ``forward(positions, values, mask=None)`` with ``positions: (..., N, dim)`` (only the
    grade-1 part is used), ``values: (..., N, n_dim)``, ``mask: (..., N)`` bool (``False``
    marks padding: tuples with a padded point get zero weight). Returns
    ``(..., n_dim)`` (``reduce=True``) or ``(..., N, n_dim)``; padded points (and clouds with
    no valid point) give zeros.
    """

    _who = "GAInvariantAttention"

    def __init__(
        self,
        alg: Algebra,
        n_dim: int,
        score_net: Net,
        value_net: Net,
        *,
        rank: int = 2,
        reduce: bool = True,
        merge_fun: str = "mean",
        join_fun: str = "mean",
        invariant_mode: str = "single",
        normalized_products: bool = False,
        group: str = "pin",
    ) -> None:
        super().__init__(
            alg,
            n_dim,
            score_net,
            value_net,
            rank=rank,
            reduce=reduce,
            merge_fun=merge_fun,
            join_fun=join_fun,
            invariant_mode=invariant_mode,
            normalized_products=normalized_products,
            group=group,
        )

    def forward(self, positions: Tensor, values: Tensor, mask: Tensor | None = None) -> Tensor:
        self._check_inputs(positions, values, mask)
        tuple_shape = self._tuple_shape(positions)
        products = self._products(positions, self._invariant_terms)
        joined = self._joined(self._invariant_features(products, tuple_shape), values, tuple_shape)
        weights = self._attention(joined, mask, tuple_shape)
        return self._pool(weights, joined, mask)


class GACovariantAttention(_GAAttentionBase):
    r"""Rotation-covariant geometric algebra attention (the package's ``Vector2VectorAttention``).

    .. math::
        y_{i_1} = \sum_{i_2 \dots i_R} w_{i_1 \dots i_R}\, \mathcal R(u_{i_1 \dots i_R})
        \sum_n \alpha_n\, c(p_n)

    with :math:`u, w` as in :class:`GAInvariantAttention`, :math:`p_n` the products of
    ``covariant_mode``, :math:`c(p)` their vector (and :math:`(n-1)`-vector) parts and
    :math:`\alpha` learned (``covariant_weight``, present when there are several products;
    a convex combination with the origin when ``convex_covariants``).

    Parameters
    ----------
    alg, n_dim, score_net, value_net, rank, reduce, merge_fun, join_fun, invariant_mode, normalized_products
        As in :class:`GAInvariantAttention`; ``normalized_products`` also adds the
        normalised covariants.
    scale_net : nn.Module
        ``(..., n_dim) -> (..., 1)``: the scale :math:`\mathcal R` of each tuple's vector.
    covariant_mode : {"single", "partial", "full"}
        Products whose covariants are combined (the package's default is ``"partial"``).
    convex_covariants : bool
    group : {"spin", "pin"}
        ``"pin"`` (default, like every gatorch layer): the :math:`(n-1)`-vector part is
        kept, the output (grades 1 and :math:`n-1`) is equivariant under O(n), reflections
        included. ``"spin"`` (the package): even products contribute the dual of their
        :math:`(n-1)`-vector part (in VGA3 the cross product), the output is a vector that
        follows rotations only.

    Shapes
    ------
    ``forward(positions, values, mask=None)`` as in :class:`GAInvariantAttention`; returns
    multivectors ``(..., dim)`` (``reduce=True``) or ``(..., N, dim)``.
    """

    _who = "GACovariantAttention"

    def __init__(
        self,
        alg: Algebra,
        n_dim: int,
        score_net: Net,
        value_net: Net,
        scale_net: Net,
        *,
        rank: int = 2,
        reduce: bool = True,
        merge_fun: str = "mean",
        join_fun: str = "mean",
        invariant_mode: str = "single",
        covariant_mode: str = "partial",
        normalized_products: bool = False,
        convex_covariants: bool = False,
        group: str = "pin",
    ) -> None:
        super().__init__(
            alg,
            n_dim,
            score_net,
            value_net,
            rank=rank,
            reduce=reduce,
            merge_fun=merge_fun,
            join_fun=join_fun,
            invariant_mode=invariant_mode,
            normalized_products=normalized_products,
            group=group,
        )
        _check_net(self._who, "scale_net", scale_net)
        _check_choice(self._who, "covariant_mode", covariant_mode, _MODES)
        self.scale_net, self.covariant_mode = scale_net, covariant_mode
        self.convex_covariants = bool(convex_covariants)
        self._covariant_terms = _terms(rank, covariant_mode)
        if not any(_covariant_grades(alg.n, k) for _, k in self._covariant_terms):
            raise ValueError(
                f"{self._who}: the products of rank={rank}, covariant_mode={covariant_mode!r} have no "
                f"vector or {alg.n - 1}-vector part in {alg!r}; use covariant_mode='partial' or 'full'"
            )
        count = len(self._covariant_terms) * (2 if self.normalized_products else 1)
        self.covariant_count = count
        if count > 1:
            self.covariant_weight = nn.Parameter(torch.randn(count) * 0.05)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, covariant_mode={self.covariant_mode!r}"

    def _covariant(self, p: Tensor, length: int) -> Tensor:
        """``<p>_1 + dual(<p>_{n-1})`` (spin) or ``<p>_1 + <p>_{n-1}`` (pin), ``(..., dim)``."""
        alg, n = self.alg, self.alg.n
        out = None
        for g in _covariant_grades(n, length):
            part = grade(alg, p, g)
            if g != 1 and self.group == "spin":
                part = dual(alg, part)
            out = part if out is None else out + part
        return torch.zeros_like(p) if out is None else out

    def _covariants(self, products: dict[tuple[int, int], Tensor], tuple_shape: tuple[int, ...]) -> Tensor:
        covs = [self._covariant(products[t], t[1]) for t in self._covariant_terms]
        if self.normalized_products:
            covs += [
                c * self._inverse_norm(products[t]) for c, t in zip(covs, self._covariant_terms, strict=True)
            ]
        if self.covariant_count > 1:
            alpha: Tensor = self.covariant_weight
            if self.convex_covariants:
                alpha = torch.cat([alpha, alpha.new_zeros(1)]).softmax(-1)
            covs = [c * alpha[n] for n, c in enumerate(covs)]
        total = covs[0]
        for c in covs[1:]:
            total = total + c
        return total.expand(*tuple_shape, self.alg.dim)

    def forward(self, positions: Tensor, values: Tensor, mask: Tensor | None = None) -> Tensor:
        self._check_inputs(positions, values, mask)
        tuple_shape = self._tuple_shape(positions)
        products = self._products(positions, self._invariant_terms + self._covariant_terms)
        joined = self._joined(self._invariant_features(products, tuple_shape), values, tuple_shape)
        weights = self._attention(joined, mask, tuple_shape)
        scale = _check_net_output(self._who, "scale_net", self.scale_net(joined), 1, tuple_shape)
        return self._pool(weights * scale[..., 0], self._covariants(products, tuple_shape), mask)
