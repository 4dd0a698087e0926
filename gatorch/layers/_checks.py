"""Argument checks shared by the layers."""

from __future__ import annotations

import torch

from gatorch.algebras.algebra import AlgebraData as Algebra
from gatorch.algebras.layout import Layout
from gatorch.algebras.layout import check_layout as check_layout_of


def check_algebra(alg: object, who: str) -> None:
    """Raise ``TypeError`` naming ``who`` unless ``alg`` is a :class:`~gatorch.Algebra`.

    Any :class:`~gatorch.algebras.AlgebraData` is accepted (``gatorch.Algebra`` subclasses it).
    """
    if not isinstance(alg, Algebra):
        raise TypeError(f"{who}: alg must be a gatorch.Algebra, got {type(alg).__name__}")


def check_int(who: str, name: str, value: object, least: int, optional: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is an int ``>= least`` (or ``None`` when ``optional``)."""
    if optional and value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        bound = f">= {least}" + (" or None" if optional else "")
        raise ValueError(f"{who}: {name} must be an int {bound}, got {value!r}")


def check_linear_channels(
    who: str, in_channels: object, out_channels: object, in_s_channels: object, out_s_channels: object
) -> None:
    """The channel counts of a linear-type layer: multivector channels >= 1, scalar channels >= 0."""
    for name, value, least in (
        ("in_channels", in_channels, 1),
        ("out_channels", out_channels, 1),
        ("in_s_channels", in_s_channels, 0),
        ("out_s_channels", out_s_channels, 0),
    ):
        check_int(who, name, value, least)


def check_mv(alg: Algebra, mv: object, channels: int, who: str, dtype: torch.dtype | None = None) -> None:
    """Raise unless ``mv`` is a ``(..., channels, alg.dim)`` floating tensor (of ``dtype``, when
    given: see :func:`check_dtype`)."""
    check_tensor(who, "input", mv)
    alg.check_dim(mv, f"{who} input")
    assert isinstance(mv, torch.Tensor)
    if mv.ndim < 2 or mv.shape[-2] != channels:
        raise ValueError(
            f"{who}: expected input of shape (..., {channels}, {alg.dim}), got {tuple(mv.shape)}"
        )
    check_dtype(who, mv, dtype)


def check_scalars(scalars: object, channels: int, who: str, dtype: torch.dtype | None = None) -> None:
    """Raise unless ``scalars`` matches ``channels`` scalar channels (``None`` or empty when 0),
    of ``dtype`` when given (see :func:`check_dtype`)."""
    check_tensor(who, "scalars", scalars, optional=True)
    if channels:
        if not isinstance(scalars, torch.Tensor) or scalars.shape[-1] != channels:
            got = tuple(scalars.shape) if isinstance(scalars, torch.Tensor) else scalars
            raise ValueError(f"{who}: expected scalars of shape (..., {channels}), got {got}")
        check_dtype(who, scalars, dtype, "scalars")
    elif isinstance(scalars, torch.Tensor) and scalars.shape[-1] != 0:
        raise ValueError(
            f"{who} was built with s_channels=0 but received scalars of shape {tuple(scalars.shape)}"
        )


def _type_name(x: object) -> str:
    """``numpy.ndarray``, ``list``: the type of ``x`` with its package (none for builtins)."""
    t = type(x)
    module = t.__module__.split(".")[0]
    return t.__qualname__ if module == "builtins" else f"{module}.{t.__qualname__}"


def check_tensor(who: str, name: str, x: object, optional: bool = False) -> None:
    """Raise ``TypeError`` unless ``x`` is a ``torch.Tensor`` (or ``None`` when ``optional``).

    A NumPy array gets the hint to convert it with :func:`torch.from_numpy`.
    """
    if isinstance(x, torch.Tensor) or (optional and x is None):
        return
    got = _type_name(x)
    hint = "; use torch.from_numpy" if got.startswith("numpy.") else ""
    raise TypeError(f"{who}: expected {name} as a torch.Tensor, got {got}{hint}")


def module_dtype(module: torch.nn.Module) -> torch.dtype | None:
    """The dtype of ``module``'s first floating-point parameter (``None`` when it has none)."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return None


def check_dtype(who: str, x: object, dtype: torch.dtype | None, name: str = "input") -> None:
    """Raise ``TypeError`` when a floating tensor ``x`` and the module's ``dtype`` differ.

    Skipped under an active :func:`torch.autocast` for ``x``'s device (where bf16 / fp16
    inputs to a float32 module are legitimate) and when ``dtype`` is ``None`` (a module
    without parameters). Static metadata only: no host sync, traces under ``torch.compile``.
    """
    if dtype is None or not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dtype == dtype:
        return
    if torch.is_autocast_enabled(x.device.type):
        return
    raise TypeError(
        f"{who}: {name} has dtype {x.dtype} but the module's parameters are {dtype}; convert the "
        f"input with .to({dtype}) or the module with .to({x.dtype}) (or run under torch.autocast)"
    )


def check_scalars_match(who: str, mv: torch.Tensor, scalars: object, channels: int, what: str = "mv") -> None:
    """Raise ``ValueError`` unless ``scalars`` has the leading dims of the items ``mv: (..., c, dim)``.

    ``scalars`` must be ``(..., channels)`` with ``...`` = ``mv.shape[:-2]`` (``None`` passes,
    as do empty scalars when ``channels == 0``).
    """
    if not isinstance(scalars, torch.Tensor) or (channels == 0 and scalars.shape[-1] == 0):
        return
    lead = tuple(mv.shape[:-2])
    if tuple(scalars.shape[:-1]) != lead:
        raise ValueError(
            f"{who}: expected scalars of shape {(*lead, channels)} (batch..., items, {channels}) to "
            f"match {what} of shape {tuple(mv.shape)}, got {tuple(scalars.shape)}"
        )


def mask_alias(
    who: str, name: str, value: torch.Tensor | None, alias: str, alias_value: torch.Tensor | None
) -> torch.Tensor | None:
    """The value of keyword ``name`` given under it or under its ``alias`` (``TypeError`` if both)."""
    if alias_value is None:
        return value
    if value is not None:
        raise TypeError(f"{who}: got both {name}= and its alias {alias}=; give one")
    return alias_value


def check_input(who: str, x: object, module: torch.nn.Module, name: str = "input") -> None:
    """``x`` is a ``torch.Tensor`` (:func:`check_tensor`) of ``module``'s dtype (:func:`check_dtype`)."""
    check_tensor(who, name, x)
    check_dtype(who, x, module_dtype(module), name)


def check_layout(alg: Algebra, layout: object, who: str, name: str = "layout") -> Layout | None:
    """``layout`` if it is a partial :class:`~gatorch.algebras.Layout` of ``alg``; ``None`` for
    ``None`` or a full layout (today's layers); ``TypeError`` / ``ValueError`` otherwise
    (:func:`gatorch.algebras.layout.check_layout`)."""
    lay = check_layout_of(alg, layout, who, name)
    return None if lay is None or lay.is_full else lay


def check_mv_in(
    alg: Algebra, layout: Layout | None, mv: object, channels: int, who: str, dtype: torch.dtype | None = None
) -> None:
    """:func:`check_mv` for ``layout=None``; else :func:`check_layout_mv`."""
    if layout is None:
        check_mv(alg, mv, channels, who, dtype)
    else:
        check_layout_mv(layout, mv, channels, who, dtype)


def check_layout_mv(
    layout: Layout | None, mv: object, channels: int, who: str, dtype: torch.dtype | None = None
) -> None:
    """Raise unless ``mv`` is a ``(..., channels, layout.dim)`` floating tensor (of ``dtype``,
    when given: see :func:`check_dtype`)."""
    assert layout is not None
    check_tensor(who, "input", mv)
    assert isinstance(mv, torch.Tensor)
    if mv.ndim < 2 or mv.shape[-2:] != (channels, layout.dim):
        raise ValueError(
            f"{who}: expected input of shape (..., {channels}, {layout.dim}) (the blades of "
            f"grades {layout.grades}), got {tuple(mv.shape)}"
        )
    if not mv.is_floating_point():
        raise TypeError(f"{who} input: expected a floating-point tensor, got dtype {mv.dtype}")
    check_dtype(who, mv, dtype)
