"""Compile checks: :func:`assert_compiles`, a fresh ``torch.compile`` against eager mode."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["CompileResult", "assert_compiles"]

#: Default (rtol, atol) per dtype, those of ``torch.testing.assert_close``.
_DEFAULT_TOLERANCE: dict[torch.dtype, tuple[float, float]] = {
    torch.float16: (1e-3, 1e-5),
    torch.bfloat16: (1.6e-2, 1e-5),
    torch.float32: (1.3e-6, 1e-5),
    torch.float64: (1e-7, 1e-7),
}


@dataclass
class CompileResult:
    """What :func:`assert_compiles` compared.

    Attributes
    ----------
    max_error : float
        Largest absolute difference between compiled and eager outputs (and gradients).
    n_outputs : int
        Number of floating-point output tensors compared.
    n_grads : int
        Number of gradients compared (0 unless ``grads=True``).
    compiled : callable
        The compiled module, for further calls.
    """

    max_error: float
    n_outputs: int
    n_grads: int
    compiled: Callable[..., Any]

    def __float__(self) -> float:
        return self.max_error


def _tensors(out: Any) -> Iterator[Tensor | None]:
    """Every floating tensor in (nested tuples, lists and dicts of) the output; None kept."""
    if isinstance(out, Tensor):
        if out.is_floating_point() or out.is_complex():
            yield out
    elif isinstance(out, (tuple, list)):
        for item in out:
            yield from _tensors(item)
    elif isinstance(out, Mapping):
        for item in out.values():
            yield from _tensors(item)
    elif out is None:
        yield None


def _run(
    fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any], leaves: list[Tensor], grads: bool
) -> tuple[list[Tensor | None], list[Tensor | None]]:
    outs = list(_tensors(fn(*args, **kwargs)))
    if not grads:
        return outs, []
    present = [o for o in outs if o is not None and o.requires_grad]
    if not present:
        raise AssertionError("assert_compiles: grads=True but no output requires grad")
    loss = torch.stack(
        [o.to(torch.promote_types(o.dtype, torch.float32)).square().sum() for o in present]
    ).sum()
    return outs, list(torch.autograd.grad(loss, leaves, allow_unused=True))


def assert_compiles(
    module: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any] | None = None,
    *,
    fullgraph: bool = True,
    backend: str | Callable[..., Any] = "inductor",
    dynamic: bool | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    scale_atol: bool = False,
    grads: bool = False,
    check_finite: bool = True,
) -> CompileResult:
    """Assert that a freshly built module compiles and matches eager mode.

    Resets dynamo (``torch._dynamo.reset()``), compiles ``module`` with
    ``torch.compile(module, fullgraph=fullgraph, backend=backend, dynamic=dynamic)``, runs
    the *compiled* module first, then the eager one, on the same inputs, and compares every
    floating-point output (tensors, also inside tuples, lists and dicts), and with
    ``grads=True`` the gradients of ``sum(out.square().sum())`` with respect to every input
    tensor and parameter that requires grad. Compile errors (a graph break under
    ``fullgraph=True``, an unsupported op) are not caught: they surface as they are.

    *Fresh* means that the module has not run eagerly before: gatorch promises that every
    table a forward pass needs is built at construction, and an eager call made first could
    hide a lazily filled cache from the compiler. This function cannot tell whether
    ``module`` has run before; build it inside the test, right before the call. Call it
    inside ``torch.autocast(...)`` or another context manager to check under that context;
    both runs happen inside it. A module with state that its forward pass updates (batch
    norm running statistics in training mode) runs twice: put it in ``eval()`` mode.

    Parameters
    ----------
    module : nn.Module or callable
        The module under test, freshly built.
    args : sequence
        Positional arguments. Input tensors that require grad get gradients with
        ``grads=True``.
    kwargs : mapping, optional
        Keyword arguments.
    fullgraph : bool
        Demand a single graph with no break (the gatorch contract for layers and nets).
    backend : str or callable
        The ``torch.compile`` backend: ``"inductor"`` (generated kernels), ``"aot_eager"``
        (the traced forward and backward graphs run by eager kernels, cheaper), ...
    dynamic : bool, optional
        Passed to ``torch.compile``.
    atol, rtol : float, optional
        Elements pass if ``|compiled - eager| <= atol + rtol * |eager|``. Defaults per dtype
        as in ``torch.testing.assert_close`` (float64: 1e-7 and 1e-7, float32: 1e-5 and
        1.3e-6, bfloat16: 1e-5 and 1.6e-2). Tensors are compared in their dtype promoted to
        at least float32.
    scale_atol : bool
        Multiply ``atol`` by ``1 + max |eager|`` for each tensor: one tolerance for outputs
        and gradients of very different sizes.
    grads : bool
        Also compare gradients (inputs and parameters).
    check_finite : bool
        Fail if a compiled output or gradient is not finite.

    Returns
    -------
    CompileResult
        The largest difference, how many tensors were compared, and the compiled module.

    Raises
    ------
    AssertionError
        If the outputs (or gradients) differ in number, ``None``-ness, shape or dtype, are not
        finite, or differ by more than the tolerance; the message names the tensor, the largest
        difference and the tolerance.

    Examples
    --------
    >>> import torch
    >>> from gatorch import Algebra
    >>> from gatorch.layers import EquiLinear
    >>> alg = Algebra(3, 0, 0)
    >>> layer = EquiLinear(alg, 2, 2).double()  # built here, never run eagerly before
    >>> x = torch.randn(5, 2, alg.dim, dtype=torch.float64, requires_grad=True)
    >>> result = assert_compiles(layer, (x,), backend="eager", grads=True, atol=1e-12, rtol=1e-12)
    >>> result.n_outputs, result.n_grads  # (mv, s) out; gradients for x, the weight and the bias
    (2, 3)
    >>> result.max_error < 1e-12
    True

    ``backend="eager"`` (dynamo's graph capture only) keeps this example fast; tests of a
    layer's compiled numerics use ``"aot_eager"`` or ``"inductor"``.
    """
    __tracebackhide__ = True
    args = tuple(args)
    kwargs = dict(kwargs or {})
    leaves: list[Tensor] = []
    if grads:
        inputs = [*args, *kwargs.values()]
        leaves = [a for a in inputs if isinstance(a, Tensor) and a.requires_grad]
        if isinstance(module, nn.Module):
            leaves += [p for p in module.parameters() if p.requires_grad]
        if not leaves:
            raise ValueError("assert_compiles: grads=True but no input or parameter requires grad")

    torch._dynamo.reset()
    compiled = torch.compile(module, fullgraph=fullgraph, backend=backend, dynamic=dynamic)
    outs_c, grads_c = _run(compiled, args, kwargs, leaves, grads)  # the compiled module runs first
    outs_e, grads_e = _run(module, args, kwargs, leaves, grads)
    if len(outs_c) != len(outs_e):
        raise AssertionError(f"assert_compiles: {len(outs_c)} compiled outputs, {len(outs_e)} eager ones")
    named = [(f"output {i}", a, b) for i, (a, b) in enumerate(zip(outs_c, outs_e, strict=True))]
    named += [
        (f"gradient {i} ({_leaf_name(module, leaves, i)})", a, b)
        for i, (a, b) in enumerate(zip(grads_c, grads_e, strict=True))
    ]

    max_error = 0.0
    for name, a, b in named:
        if a is None or b is None:
            if (a is None) != (b is None):
                raise AssertionError(
                    f"assert_compiles: {name} is None in only one of compiled and eager mode"
                )
            continue
        if a.shape != b.shape or a.dtype != b.dtype:
            raise AssertionError(
                f"assert_compiles: {name}: compiled {tuple(a.shape)} {a.dtype}, "
                f"eager {tuple(b.shape)} {b.dtype}"
            )
        if check_finite and not bool(torch.isfinite(a).all()):
            raise AssertionError(f"assert_compiles: {name}: the compiled result is not finite")
        dtype = torch.promote_types(a.dtype, torch.float32)
        a, b = a.detach().to(dtype), b.detach().to(dtype)
        default_rtol, default_atol = _DEFAULT_TOLERANCE.get(b.dtype, (1.3e-6, 1e-5))
        r = default_rtol if rtol is None else rtol
        t = default_atol if atol is None else atol
        if scale_atol:
            t = t * (float(b.abs().max()) + 1.0 if b.numel() else 1.0)
        diff = (a - b).abs()
        err = float(diff.nan_to_num(nan=float("inf")).max()) if diff.numel() else 0.0
        max_error = max(max_error, err)
        bad = ~(diff <= t + r * b.abs())
        if not check_finite:  # NaN in both places is then a match
            bad &= ~(a.isnan() & b.isnan())
        if bool(bad.any()):
            raise AssertionError(
                f"assert_compiles: {name} differs between compiled (backend={backend!r}) and eager mode: "
                f"max error {err:.3e} > tolerance atol={t:.1e} + rtol={r:.1e} * |eager| "
                f"({int(bad.sum())} of {bad.numel()} elements)"
            )
    n_outputs = sum(o is not None for o in outs_e)
    n_grads = sum(g is not None for g in grads_e)
    return CompileResult(max_error=max_error, n_outputs=n_outputs, n_grads=n_grads, compiled=compiled)


def _leaf_name(module: Callable[..., Any], leaves: list[Tensor], i: int) -> str:
    if isinstance(module, nn.Module):
        for name, p in module.named_parameters():
            if p is leaves[i]:
                return f"parameter {name!r}"
    return "input"
