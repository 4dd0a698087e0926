"""Equivariance checks: random group elements and :func:`assert_equivariant`.

Everything here acts with the *twisted* versor action of gatorch (see
:func:`gatorch.functional.sandwich`),

.. math:: \\rho_w(x) = w\\, \\hat x^{|w|}\\, w^{-1},

where :math:`|w|` is the parity of the versor ``w``. Odd versors (reflections) matter: a
layer can commute with every rotation and still fail for reflections (a product with the
pseudoscalar is the classic case), so the ``"pin"`` checks always include both parities.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from gatorch.functional import gp, random_vector, random_versor, sandwich
from gatorch.functional.algebra import Algebra

__all__ = [
    "ALGEBRAS",
    "EquivarianceResult",
    "Spec",
    "assert_equivariant",
    "assert_layer_equivariant",
    "random_multivectors",
    "random_versors",
    "versor_action",
    "versor_parity",
]

#: Algebras to run equivariance tests on: the presets (VGA3, PGA3, the spacetime algebra with
#: ``e0`` timelike, CGA3) and two signatures that exercise a degenerate direction with fewer
#: dimensions, Cl(2,0,1), and a mixed degenerate and indefinite metric, Cl(2,2,1). Fresh
#: :class:`~gatorch.algebras.Algebra` instances (not the module-level presets), keyed by name,
#: for ``pytest.mark.parametrize("name", list(ALGEBRAS))``.
ALGEBRAS: dict[str, Algebra] = {
    "VGA3": Algebra(3, 0, 0),
    "PGA3": Algebra(3, 0, 1),
    "STA": Algebra.from_signature([1, -1, -1, -1], start_index=0),
    "CGA3": Algebra(4, 1, 0),
    "Cl(2,0,1)": Algebra(2, 0, 1),
    "Cl(2,2,1)": Algebra(2, 2, 1),
}

#: How an argument or an output of the function under test transforms:
#:
#: * ``"mv"``: a multivector tensor ``(..., dim)``, moved by the versor action;
#: * ``"scalar"`` (alias ``"invariant"``): left alone on the way in; on the way out it must
#:   equal the output for the untransformed inputs;
#: * ``"fixed"`` (or ``None``): not acted on (offsets, masks, edge indices, options); an output
#:   with this spec is not compared;
#: * a callable ``action(w, x) -> x'`` for anything else (point coordinates, irreps, a
#:   container): ``w`` is the versor, shape ``(dim,)``, or ``(B, dim)`` with ``batched=True``.
Spec = str | None | Callable[[Tensor, Any], Any]

_GROUPS = ("pin", "spin")


def versor_parity(alg: Algebra, w: Tensor) -> Tensor:
    """Parity of versors: 0 for even ones (rotations, boosts, translations), 1 for odd ones.

    A versor has only even or only odd grades; this compares the sizes of the two parts, so
    it is robust to round-off.

    Parameters
    ----------
    alg : Algebra
    w : Tensor, shape (..., dim)
        Versors.

    Returns
    -------
    Tensor, shape (...), dtype int64

    Examples
    --------
    >>> import torch
    >>> from gatorch import Algebra
    >>> alg = Algebra(3, 0, 0)
    >>> versor_parity(alg, random_versors(alg, 4)).tolist()
    [0, 0, 1, 1]
    """
    alg.check_dim(w, "versor_parity")
    odd = torch.tensor([g % 2 == 1 for g in alg.grades], device=w.device)
    return (w[..., odd].abs().sum(-1) > w[..., ~odd].abs().sum(-1)).long()


def random_versors(
    alg: Algebra,
    n: int,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    max_entry: float = 30.0,
    *,
    group: Literal["pin", "spin"] = "pin",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """``n`` random versors: for ``group="pin"`` the first ``n // 2`` even, the rest odd.

    Even versors come from :func:`gatorch.functional.random_versor` (``spin=True``: products
    of an even number of random invertible vectors); odd ones are those times one more random
    vector. ``group="spin"`` gives ``n`` even versors. The draws are reproducible: a CPU
    generator seeded with ``seed`` (or the ``generator`` given), then moved to ``device``.

    Boosts are bounded: only versors whose action matrix (the action on the ``dim`` basis
    blades) has entries of size at most ``max_entry`` are kept. Indefinite signatures
    otherwise draw boosts large enough to eat the float64 precision of quadratic invariants.

    Parameters
    ----------
    alg : Algebra
    n : int
        Number of versors; at least 2 for ``group="pin"``, so that both parities occur.
    seed : int
        Seed of the generator (ignored when ``generator`` is given).
    dtype : torch.dtype
        float64 by default, as equivariance tests need.
    max_entry : float
        Largest allowed entry of the action matrix of a kept versor.
    group : {"pin", "spin"}
        ``"pin"``: both parities (rotations and reflections); ``"spin"``: even versors only.
    generator : torch.Generator, optional
        A CPU generator to draw from instead of a fresh one seeded with ``seed``.
    device : torch.device or str, optional

    Returns
    -------
    Tensor, shape (n, dim)

    Raises
    ------
    RuntimeError
        If fewer than the needed versors of a parity fall within ``max_entry`` out of
        ``16 * n`` draws.

    Examples
    --------
    >>> from gatorch import Algebra
    >>> alg = Algebra(1, 3, 0)
    >>> w = random_versors(alg, 6, seed=1)
    >>> w.shape, w.dtype
    (torch.Size([6, 16]), torch.float64)
    >>> versor_parity(alg, w).tolist()
    [0, 0, 0, 1, 1, 1]
    >>> versor_parity(alg, random_versors(alg, 3, group="spin")).tolist()
    [0, 0, 0]
    """
    if group not in _GROUPS:
        raise ValueError(f"random_versors: group must be one of {_GROUPS}, got {group!r}")
    if n < (2 if group == "pin" else 1):
        raise ValueError(
            f"random_versors: n must be at least {2 if group == 'pin' else 1} for {group}, got {n}"
        )
    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    pool = 16 * n
    even = random_versor(alg, (pool,), spin=True, generator=g, dtype=dtype)
    eye = torch.eye(alg.dim, dtype=dtype)

    def bounded(w: Tensor, count: int) -> Tensor:
        # the first ``count`` draws within the bound, in draw order; the action matrices are
        # computed a chunk of ``count`` draws at a time (for a definite metric every draw is
        # kept, so only the first chunk is computed: the cost grows as dim**2 per versor)
        kept: list[Tensor] = []
        found = 0
        for start in range(0, w.shape[0], count):
            chunk = w[start : start + count]
            size = sandwich(alg, chunk[:, None], eye[None]).abs().amax(dim=(-2, -1))
            kept.append(chunk[size <= max_entry])
            found += kept[-1].shape[0]
            if found >= count:
                return torch.cat(kept)[:count]
        raise RuntimeError(f"random_versors: only {found} of {pool} draws within max_entry={max_entry}")

    if group == "spin":
        return bounded(even, n).to(device)
    odd = gp(alg, even, random_vector(alg, (pool,), generator=g, dtype=dtype))
    half = n // 2
    return torch.cat([bounded(even, half), bounded(odd, n - half)]).to(device)


def random_multivectors(
    alg: Algebra,
    *shape: int,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    grades: int | Sequence[int] | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """Random multivectors with standard-normal components, shape ``(*shape, dim)``.

    Parameters
    ----------
    alg : Algebra
    *shape : int
        Batch and channel dimensions, e.g. ``(batch, items, channels)``.
    seed : int, optional
        Draw from a fresh CPU generator with this seed (reproducible); otherwise from
        ``generator``, or from torch's global generator when neither is given.
    generator : torch.Generator, optional
    dtype : torch.dtype
        float64 by default.
    device : torch.device or str, optional
    grades : int or sequence of int, optional
        Keep only these grades (the other components are zero).
    requires_grad : bool

    Returns
    -------
    Tensor, shape (*shape, dim)

    Examples
    --------
    >>> from gatorch import Algebra
    >>> alg = Algebra(3, 0, 1)
    >>> x = random_multivectors(alg, 5, 2, seed=0, grades=1)
    >>> x.shape
    torch.Size([5, 2, 16])
    >>> bool((x[..., alg.grade_slice(1)] != 0).all()), bool((x[..., alg.grade_slice(2)] == 0).all())
    (True, True)
    """
    if seed is not None and generator is not None:
        raise ValueError("random_multivectors: pass seed or generator, not both")
    g = torch.Generator().manual_seed(seed) if seed is not None else generator
    x = torch.randn(*shape, alg.dim, generator=g, dtype=dtype)
    if grades is not None:
        wanted = {grades} if isinstance(grades, int) else set(grades)
        mask = torch.tensor([k in wanted for k in alg.grades])
        x = x * mask.to(dtype)
    return x.to(device).requires_grad_(requires_grad)


def versor_action(alg: Algebra, w: Tensor, x: Tensor, *, batched: bool = False) -> Tensor:
    """The twisted versor action :math:`w\\, \\hat x^{|w|}\\, w^{-1}` on a multivector tensor.

    Parameters
    ----------
    alg : Algebra
    w : Tensor, shape (dim,) or (..., dim)
        Versors. Without ``batched`` they broadcast with ``x`` as in
        :func:`gatorch.functional.sandwich`.
    x : Tensor, shape (..., dim)
    batched : bool
        ``w`` has shape ``(B, dim)`` and versor ``i`` acts on ``x[i]`` (``x`` has shape
        ``(B, ..., dim)`` with any number of dimensions in between).

    Returns
    -------
    Tensor, the shape of ``x``

    Examples
    --------
    >>> from gatorch import Algebra
    >>> alg = Algebra(3, 0, 0)
    >>> w = random_versors(alg, 4)
    >>> x = random_multivectors(alg, 4, 5, 2, seed=0)
    >>> y = versor_action(alg, w, x, batched=True)
    >>> torch.allclose(y[3], versor_action(alg, w[3], x[3]))
    True
    >>> torch.allclose(alg.norm(y), alg.norm(x))  # the action preserves the norm
    True
    """
    if batched:
        if w.ndim != 2 or x.ndim < 2 or x.shape[0] != w.shape[0]:
            raise ValueError(
                f"versor_action: batched expects w of shape (B, {alg.dim}) and x of shape (B, ..., "
                f"{alg.dim}) with the same B, got w {tuple(w.shape)} and x {tuple(x.shape)}"
            )
        w = w.reshape(w.shape[0], *([1] * (x.ndim - 2)), w.shape[-1])
    return sandwich(alg, w, x)


# -- assert_equivariant ----------------------------------------------------------------------------
@dataclass
class EquivarianceResult:
    """What :func:`assert_equivariant` measured.

    Attributes
    ----------
    max_error : float
        Largest absolute difference ``|f(w . x) - w . f(x)|`` over every compared output
        and versor.
    errors : dict[str, float]
        The largest absolute difference per compared output (``"output"``, ``"output[1]"``,
        ...).
    parities : tuple[int, ...]
        Parity of each versor used (0 even, 1 odd).
    versors : Tensor, shape (n, dim)
        The versors used.
    """

    max_error: float
    errors: dict[str, float] = field(default_factory=dict)
    parities: tuple[int, ...] = ()
    versors: Tensor | None = field(default=None, repr=False)

    def __float__(self) -> float:
        return self.max_error


def _spec(spec: Spec, where: str) -> Spec:
    if spec is None or spec == "fixed":
        return "fixed"
    if spec == "invariant":
        return "scalar"
    if spec in ("mv", "scalar") or callable(spec):
        return spec
    raise ValueError(
        f"assert_equivariant: {where}: spec must be 'mv', 'scalar', 'invariant', 'fixed', None or a "
        f"callable action(w, x), got {spec!r}"
    )


def _specs(specs: Spec | Sequence[Spec] | None, values: Sequence[Any], where: str) -> list[Spec]:
    if specs is None:  # the default: every tensor is a multivector
        return ["mv" if isinstance(v, Tensor) else "fixed" for v in values]
    if isinstance(specs, str) or callable(specs):
        return [_spec(specs, where)] * len(values)
    specs = list(specs)
    if len(specs) != len(values):
        raise ValueError(f"assert_equivariant: {len(specs)} {where} specs for {len(values)} {where}s")
    return [_spec(s, f"{where} {i}") for i, s in enumerate(specs)]


def _act(alg: Algebra, spec: Spec, w: Tensor, x: Any, batched: bool, where: str) -> Any:
    if spec in ("scalar", "fixed") or x is None:
        return x
    if callable(spec):
        return spec(w, x)
    if not isinstance(x, Tensor):
        raise TypeError(
            f"assert_equivariant: {where} has spec 'mv' but is a {type(x).__name__}, not a tensor"
        )
    return versor_action(alg, w, x, batched=batched)


def _outputs(out: Any) -> tuple[list[Any], list[str]]:
    if isinstance(out, (tuple, list)):
        return list(out), [f"output[{i}]" for i in range(len(out))]
    return [out], ["output"]


def _first_float(values: Sequence[Any]) -> Tensor | None:
    return next((v for v in values if isinstance(v, Tensor) and v.is_floating_point()), None)


def assert_equivariant(
    fn: Callable[..., Any],
    alg: Algebra,
    args: Sequence[Any],
    *,
    in_specs: Spec | Sequence[Spec] | None = None,
    out_specs: Spec | Sequence[Spec] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    kwarg_specs: Mapping[str, Spec] | None = None,
    versors: Tensor | None = None,
    group: Literal["pin", "spin"] = "pin",
    n_versors: int = 4,
    batched: bool = False,
    seed: int = 0,
    generator: torch.Generator | None = None,
    atol: float = 1e-9,
    rtol: float = 1e-9,
) -> EquivarianceResult:
    """Assert that ``fn`` commutes with the twisted versor action: ``fn(w . x) == w . fn(x)``.

    ``fn`` (a module or any callable) is called once on ``args`` and once per versor on the
    transformed arguments (once in all with ``batched=True``). Which arguments and outputs
    the versor acts on is given by specs (see :data:`Spec`): ``"mv"`` for multivectors,
    ``"scalar"`` for invariants (outputs must not change), ``"fixed"`` for what the group
    does not act on (offsets, masks, indices; outputs are not compared), or a callable
    ``action(w, x)``. A reference multivector that must move with the inputs (a condition,
    a context) is simply another ``"mv"`` argument.

    Use float64 modules and inputs: the default tolerance assumes it.

    Parameters
    ----------
    fn : callable
        The function or ``nn.Module`` under test.
    alg : Algebra
        The algebra the versors and the multivectors live in.
    args : sequence
        Positional arguments of ``fn``, untransformed.
    in_specs : spec or sequence of specs, optional
        One spec per positional argument, or one spec for all. Default: ``"mv"`` for every
        tensor argument, ``"fixed"`` for anything else.
    out_specs : spec or sequence of specs, optional
        One spec per element of a tuple (or list) output, or one spec for all (or for a
        single tensor output). Default: ``"mv"`` for every output.
    kwargs : mapping, optional
        Keyword arguments of ``fn``.
    kwarg_specs : mapping, optional
        Specs of keyword arguments by name; the others are ``"fixed"``.
    versors : Tensor, shape (n, dim), optional
        The versors to test; by default ``n_versors`` from :func:`random_versors` with
        ``seed`` (or ``generator``), in the dtype and on the device of the first floating
        tensor argument.
    group : {"pin", "spin"}
        ``"pin"`` (the default) tests rotations and reflections and raises ``ValueError``
        unless both parities are among the versors; ``"spin"`` tests even versors only and
        raises ``ValueError`` if an odd one is given.
    n_versors : int
        How many versors to draw when ``versors`` is not given (half of them odd for
        ``"pin"``).
    batched : bool
        One call for all versors: versor ``i`` acts on index ``i`` of the leading dimension
        of every ``"mv"`` argument and output, which must have size ``n``. Only valid when
        the entries along that dimension do not interact (a batch dimension, not nodes of a
        graph). Callable specs then receive ``w`` of shape ``(n, dim)``.
    seed : int
        Seed of the versor draw.
    generator : torch.Generator, optional
        Draw the versors from this CPU generator instead.
    atol, rtol : float
        An output element passes if ``|actual - expected| <= atol + rtol * |expected|``,
        with ``actual = fn(w . x)`` and ``expected = w . fn(x)`` (as in
        ``torch.testing.assert_close``); NaNs fail.

    Returns
    -------
    EquivarianceResult
        The largest error overall and per output, and the versors used.

    Raises
    ------
    AssertionError
        If an output is not equivariant (or invariant), naming the output, the largest error,
        the tolerance and the versor (index and parity) with the largest error; or if the
        shapes, or which outputs are ``None``, differ.
    ValueError
        For a bad spec, a spec count that does not match, or versors that do not cover the
        ``group`` (both parities for ``"pin"``, even only for ``"spin"``).

    Examples
    --------
    An equivariant linear layer, with its auxiliary scalars, on random inputs and versors:

    >>> import torch
    >>> from gatorch import Algebra
    >>> from gatorch.layers import EquiLinear
    >>> alg = Algebra(3, 0, 0)
    >>> layer = EquiLinear(alg, 2, 2, in_s_channels=1, out_s_channels=1).double()
    >>> x, s = random_multivectors(alg, 5, 2, seed=0), torch.randn(5, 1, dtype=torch.float64)
    >>> result = assert_equivariant(
    ...     layer, alg, (x, s), in_specs=("mv", "scalar"), out_specs=("mv", "scalar"), n_versors=6
    ... )
    >>> result.parities, result.max_error < 1e-12
    ((0, 0, 0, 1, 1, 1), True)

    Adding a fixed vector is not equivariant, and the error says where:

    >>> e1 = torch.zeros(alg.dim, dtype=torch.float64)
    >>> e1[alg.index("e1")] = 1.0
    >>> assert_equivariant(lambda y: y + e1, alg, (x,))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    AssertionError: assert_equivariant: output (spec 'mv') is not equivariant under pin: max error ...
    """
    __tracebackhide__ = True
    if group not in _GROUPS:
        raise ValueError(f"assert_equivariant: group must be one of {_GROUPS}, got {group!r}")
    args = tuple(args)
    kwargs = dict(kwargs or {})
    specs_in = _specs(in_specs, args, "argument")
    unknown = set(kwarg_specs or {}) - set(kwargs)
    if unknown:
        raise ValueError(f"assert_equivariant: kwarg_specs for missing keyword arguments {sorted(unknown)}")
    specs_kw = {k: _spec((kwarg_specs or {}).get(k), f"keyword argument {k!r}") for k in kwargs}

    if versors is None:
        ref = _first_float([*args, *kwargs.values()])
        versors = random_versors(
            alg,
            n_versors,
            seed=seed,
            generator=generator,
            group=group,
            dtype=ref.dtype if ref is not None else torch.float64,
            device=ref.device if ref is not None else None,
        )
    alg.check_dim(versors, "assert_equivariant versors")
    if versors.ndim != 2:
        raise ValueError(
            f"assert_equivariant: versors must have shape (n, {alg.dim}), got {tuple(versors.shape)}"
        )
    parities = tuple(int(p) for p in versor_parity(alg, versors).tolist())
    if group == "pin" and set(parities) != {0, 1}:
        raise ValueError(
            f"assert_equivariant: group='pin' needs even and odd versors (rotations and reflections), "
            f"got parities {list(parities)}"
        )
    if group == "spin" and any(parities):
        raise ValueError(
            f"assert_equivariant: group='spin' takes even versors only, got parities {list(parities)}"
        )

    def moved(w: Tensor) -> tuple[tuple[Any, ...], dict[str, Any]]:
        a = tuple(
            _act(alg, s, w, v, batched, f"argument {i}")
            for i, (s, v) in enumerate(zip(specs_in, args, strict=True))
        )
        kw = {k: _act(alg, specs_kw[k], w, v, batched, f"keyword argument {k!r}") for k, v in kwargs.items()}
        return a, kw

    out, names = _outputs(fn(*args, **kwargs))
    specs_out = _specs(out_specs if out_specs is not None else "mv", out, "output")
    runs = [(versors, *moved(versors))] if batched else [(w, *moved(w)) for w in versors]

    errors: dict[str, float] = {}
    for k, (w, a_t, kw_t) in enumerate(runs):
        out_t, _ = _outputs(fn(*a_t, **kw_t))
        if len(out_t) != len(out):
            raise AssertionError(
                f"assert_equivariant: {len(out)} outputs for the inputs, "
                f"{len(out_t)} for the transformed inputs"
            )
        for name, spec, y, y_t in zip(names, specs_out, out, out_t, strict=True):
            if spec == "fixed":
                continue
            if y is None or y_t is None:
                if (y is None) != (y_t is None):
                    raise AssertionError(f"assert_equivariant: {name} is None for only one of the two calls")
                continue
            expected = _act(alg, spec, w, y, batched, name)
            if not isinstance(y_t, Tensor) or not isinstance(expected, Tensor):
                raise TypeError(f"assert_equivariant: {name} (spec {spec!r}) must be a tensor to be compared")
            if y_t.shape != expected.shape:
                raise AssertionError(
                    f"assert_equivariant: {name}: shape {tuple(y_t.shape)} for the transformed inputs, "
                    f"{tuple(expected.shape)} expected"
                )
            diff = (y_t - expected).detach().abs()
            bad = ~(diff <= atol + rtol * expected.detach().abs())
            err = float(diff.nan_to_num(nan=math.inf).max()) if diff.numel() else 0.0
            errors[name] = max(errors.get(name, 0.0), err)
            if bool(bad.any()):
                if batched:
                    per = diff.nan_to_num(nan=math.inf).reshape(diff.shape[0], -1).amax(-1)
                    index = int(per.argmax()) if diff.ndim > 0 and diff.shape[0] == len(parities) else 0
                else:
                    index = k
                kind = "odd, a reflection" if parities[index] else "even"
                label = "equivariant" if spec != "scalar" else "invariant"
                spec_name = spec if isinstance(spec, str) else getattr(spec, "__name__", "callable")
                raise AssertionError(
                    f"assert_equivariant: {name} (spec {spec_name!r}) is not {label} under {group}: "
                    f"max error {err:.3e} > tolerance atol={atol:.1e} + rtol={rtol:.1e} * |expected| "
                    f"({int(bad.sum())} of {bad.numel()} elements); worst versor: index {index} ({kind})"
                )
    return EquivarianceResult(
        max_error=max(errors.values(), default=0.0), errors=errors, parities=parities, versors=versors
    )


def assert_layer_equivariant(
    layer: Callable[..., Any],
    alg: Algebra,
    mv: Tensor,
    s: Tensor | None = None,
    *,
    kwargs: Mapping[str, Any] | None = None,
    kwarg_specs: Mapping[str, Spec] | None = None,
    versors: Tensor | None = None,
    group: Literal["pin", "spin"] = "pin",
    n_versors: int = 4,
    batched: bool = False,
    seed: int = 0,
    generator: torch.Generator | None = None,
    atol: float = 1e-9,
    rtol: float = 1e-9,
) -> EquivarianceResult:
    """:func:`assert_equivariant` for the gatorch layer convention ``(mv, s) -> (mv, s)``.

    ``layer(mv, s, **kwargs)`` must return a pair: multivectors, which must transform with
    the versors, and scalars, which must be invariant. The same as
    ``assert_equivariant(layer, alg, (mv, s), in_specs=("mv", "scalar"),
    out_specs=("mv", "scalar"), ...)``; ``s`` may be ``None`` (then it is passed as ``None``).

    Parameters
    ----------
    layer : callable
        The layer under test.
    alg : Algebra
    mv : Tensor, shape (..., channels, dim)
    s : Tensor, shape (..., s_channels), optional
    kwargs, kwarg_specs, versors, group, n_versors, batched, seed, generator, atol, rtol
        As in :func:`assert_equivariant`.

    Returns
    -------
    EquivarianceResult

    Examples
    --------
    >>> import torch
    >>> from gatorch import Algebra
    >>> from gatorch.layers import EquiLinear
    >>> alg = Algebra(3, 0, 1)
    >>> layer = EquiLinear(alg, 2, 3, in_s_channels=2, out_s_channels=1).double()
    >>> mv, s = random_multivectors(alg, 6, 2, seed=0), torch.randn(6, 2, dtype=torch.float64)
    >>> w = random_versors(alg, 6, seed=1)  # one versor per batch entry
    >>> assert_layer_equivariant(layer, alg, mv, s, versors=w, batched=True).max_error < 1e-9
    True
    """
    __tracebackhide__ = True
    return assert_equivariant(
        layer,
        alg,
        (mv, s),
        in_specs=("mv", "scalar"),
        out_specs=("mv", "scalar"),
        kwargs=kwargs,
        kwarg_specs=kwarg_specs,
        versors=versors,
        group=group,
        n_versors=n_versors,
        batched=batched,
        seed=seed,
        generator=generator,
        atol=atol,
        rtol=rtol,
    )
