"""The one registry of pointwise activations, by name, used by every gatorch layer and net.

Each name has one meaning everywhere in gatorch:

============== ==================================================================
name           function
============== ==================================================================
``"gelu"``     GELU, tanh approximation (GATr's and L-GATr's choice)
``"gelu_exact"`` GELU with the exact error function (``torch.nn.functional.gelu``)
``"relu"``     ReLU
``"sigmoid"``  logistic sigmoid
``"silu"``     SiLU (swish)
``"tanh"``     hyperbolic tangent
============== ==================================================================

Gated nonlinearities apply the activation to an invariant (the scalar coefficient) and
scale the multivector by it; field nets apply it per blade. A layer that accepts only
some of these names (for example because a peer library it mirrors has fewer) says so
in its own docstring and checks with :func:`activation` and its ``allowed`` argument.

Examples
--------
>>> import torch
>>> from gatorch.functional.activations import activation
>>> act = activation("gelu")
>>> torch.allclose(act(torch.ones(1)), torch.nn.functional.gelu(torch.ones(1), approximate="tanh"))
True
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import torch
from torch import Tensor

__all__ = ["ACTIVATIONS", "activation"]


def _gelu_tanh(x: Tensor) -> Tensor:
    return torch.nn.functional.gelu(x, approximate="tanh")


#: Activation functions by name. A constant: never mutate it (a plain dict, not a
#: ``MappingProxyType``, because dynamo breaks the graph on reads through a mapping proxy).
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": _gelu_tanh,
    "gelu_exact": torch.nn.functional.gelu,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "silu": torch.nn.functional.silu,
    "tanh": torch.tanh,
}


def activation(
    name: object, who: str = "activation", allowed: Collection[str] | None = None
) -> Callable[[Tensor], Tensor]:
    """The activation called ``name``; ``ValueError`` naming the choices for anything else.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS` (restricted to ``allowed`` when given).
    who : str
        The caller, named in the error message (e.g. ``"MLPConfig: activation"``).
    allowed : collection of str, optional
        The subset of names the caller supports.
    """
    names = sorted(ACTIVATIONS if allowed is None else allowed)
    if not isinstance(name, str) or name not in names:
        raise ValueError(f"{who}: expected one of {names}, got {name!r}")
    return ACTIVATIONS[name]
