"""Stateless torch operations on multivector tensors, driven by an algebra's tables.

Every function takes the :class:`~gatorch.Algebra` first and tensors whose last axis
holds the ``alg.dim`` blade components; batch dimensions broadcast. All are
autograd-correct and work under ``torch.compile``.
"""

from gatorch.functional.bilinear import bilinear, bilinear_reference
from gatorch.functional.policy import (
    KernelPolicy,
    current_kernel_policy,
    kernel_policy,
    resolve_kernel_policy,
)
from gatorch.functional.products import bilinear_dense, gp, lcontract, outer, regressive
from gatorch.functional.unary import (
    conjugate,
    dual,
    grade,
    inner_product,
    involute,
    norm,
    reverse,
    safe_sqrt,
    undual,
)
from gatorch.functional.versors import exp, inverse, random_vector, random_versor, sandwich

__all__ = [
    "KernelPolicy",
    "bilinear",
    "bilinear_dense",
    "bilinear_reference",
    "conjugate",
    "current_kernel_policy",
    "dual",
    "exp",
    "gp",
    "grade",
    "inner_product",
    "inverse",
    "involute",
    "kernel_policy",
    "lcontract",
    "norm",
    "outer",
    "random_vector",
    "random_versor",
    "regressive",
    "resolve_kernel_policy",
    "reverse",
    "safe_sqrt",
    "sandwich",
    "undual",
]
