"""Argument checks shared by the layers."""

from __future__ import annotations

import torch

from gatorch.algebras.algebra import AlgebraData as Algebra


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


def check_mv(alg: Algebra, mv: object, channels: int, who: str) -> None:
    """Raise unless ``mv`` is a ``(..., channels, alg.dim)`` floating tensor."""
    alg.check_dim(mv, f"{who} input")
    assert isinstance(mv, torch.Tensor)
    if mv.ndim < 2 or mv.shape[-2] != channels:
        raise ValueError(
            f"{who}: expected input of shape (..., {channels}, {alg.dim}), got {tuple(mv.shape)}"
        )


def check_scalars(scalars: object, channels: int, who: str) -> None:
    """Raise unless ``scalars`` matches ``channels`` scalar channels (``None`` or empty when 0)."""
    if channels:
        if not isinstance(scalars, torch.Tensor) or scalars.shape[-1] != channels:
            got = tuple(scalars.shape) if isinstance(scalars, torch.Tensor) else scalars
            raise ValueError(f"{who}: expected scalars of shape (..., {channels}), got {got}")
    elif isinstance(scalars, torch.Tensor) and scalars.shape[-1] != 0:
        raise ValueError(
            f"{who} was built with s_channels=0 but received scalars of shape {tuple(scalars.shape)}"
        )
