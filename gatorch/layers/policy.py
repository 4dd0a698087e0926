"""The kernel policy a module carries: set at construction or later, for a whole net at once.

The layers that run sparse kernels (:class:`~gatorch.layers.EquiLinear`,
:class:`~gatorch.layers.GeometricBilinear`, :class:`~gatorch.layers.SteerableGeometricProduct`,
:class:`~gatorch.layers.QTGeometricProduct`) take ``kernel_policy=`` and keep it as the
attribute ``kernel_policy`` (``None``: the ambient policy of
:func:`gatorch.functional.kernel_policy`), which their forward passes to the functional ops.
:func:`set_kernel_policy` sets it on every such module of a net, so a GATr or a CliffordGNN
carries its own policy without a global.

Examples
--------
>>> from gatorch import PGA3
>>> from gatorch.functional import KernelPolicy
>>> from gatorch.layers import EquiLinear, GeometricBilinear, set_kernel_policy
>>> layer = GeometricBilinear(PGA3, 4, 4)
>>> _ = set_kernel_policy(layer, KernelPolicy(device="cuda"))
>>> {m.kernel_policy.device for m in layer.modules() if isinstance(m, EquiLinear)}
{'cuda'}
"""

from __future__ import annotations

from typing import TypeVar

from torch import nn

from gatorch.functional.policy import KernelPolicy, check_kernel_policy

__all__ = ["check_kernel_policy", "set_kernel_policy"]

_M = TypeVar("_M", bound=nn.Module)


def set_kernel_policy(module: _M, policy: KernelPolicy | None) -> _M:
    """Give ``module`` and every submodule that runs sparse kernels the kernel policy ``policy``.

    Parameters
    ----------
    module : nn.Module
        A layer or a whole net.
    policy : KernelPolicy or None
        ``None`` returns the modules to the ambient policy.

    Returns
    -------
    nn.Module
        ``module`` itself.
    """
    check_kernel_policy("set_kernel_policy", policy, "kernel_policy")
    if not isinstance(module, nn.Module):
        raise TypeError(f"set_kernel_policy: expected an nn.Module, got {type(module).__name__}")
    for m in module.modules():
        if "kernel_policy" in vars(m):
            setattr(m, "kernel_policy", policy)  # noqa: B010  (nn.Module types its attributes as Tensor | Module)
    return module
