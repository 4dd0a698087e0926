"""The one store of derived state: plans (Python data) and device constants (tensors).

Every precomputed table, plan or constant that gatorch derives from an algebra lives in
a :class:`Store` held by the :class:`~gatorch.algebras.AlgebraData` (``alg.store``; each
sparse :class:`~gatorch.algebras.tables.BilinearTable` keeps one for its own index
tensors). Nothing algebra-derived is kept in a module-level dict, a
:func:`functools.cache` or an ``lru_cache``.

Two kinds of entries:

* **plans** (:meth:`Store.plan`): static metadata, a pure function of the algebra's
  signature and of the key (index tuples, numpy arrays, dataclasses). Built once, on first
  use; layers ask for what their forward pass needs at construction, so under
  ``torch.compile`` the lookup is a dict hit that traces without a graph break and nothing
  is built inside a trace.
* **tensors** (:meth:`Store.tensor`): a plan turned into a tensor on one device in one
  dtype. Cached in eager mode only. While a compiler stage traces (dynamo, or AOT autograd
  running the code on fake tensors), the tensor is built inline and never stored: this is
  the one place that guards against keeping a fake or meta tensor.

A store is filled, never emptied; its values are deterministic, so two threads racing on
the same key build the same value (a plain dict store is atomic).

Examples
--------
>>> import torch
>>> from gatorch.algebras.store import Store
>>> store = Store()
>>> store.plan(("squares", 3), lambda: tuple(i * i for i in range(3)))
(0, 1, 4)
>>> t = store.tensor(("squares", 3), torch.device("cpu"), torch.float64, lambda: torch.tensor([0, 1, 4]))
>>> t.dtype, len(store)
(torch.float64, 2)
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import torch
from torch._subclasses.fake_tensor import FakeTensor

__all__ = ["Store", "holds_data"]

_T = TypeVar("_T")


def holds_data(t: torch.Tensor) -> bool:
    """Whether ``t`` holds data: not a fake or meta tensor made while a compiler stage traced."""
    return not isinstance(t, FakeTensor) and t.device.type != "meta"


class Store:
    """Plans and device constants derived from one algebra (or one table), built once."""

    __slots__ = ("_plans", "_tensors")

    def __init__(self) -> None:
        self._plans: dict[Hashable, Any] = {}
        self._tensors: dict[tuple[Hashable, torch.device, torch.dtype], torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._plans) + len(self._tensors)

    def plan(self, key: Hashable, build: Callable[[], _T]) -> _T:
        """The plan stored under ``key``, built by ``build()`` on first use.

        Parameters
        ----------
        key : hashable
            Names the plan, e.g. ``("linear_plan", "pin")``. The builder must be a pure
            function of the owner (the algebra) and the key.
        build : callable
            Returns the value; it must not be ``None``.
        """
        store = self._plans
        value = store.get(key)
        if value is None:
            value = build()
            store[key] = value
        return value

    def get_plan(self, key: Hashable) -> Any:
        """The plan stored under ``key``, or ``None`` if it has not been built (builds nothing)."""
        return self._plans.get(key)

    def tensor(
        self,
        key: Hashable,
        device: torch.device | str | None,
        dtype: torch.dtype,
        build: Callable[[], torch.Tensor],
    ) -> torch.Tensor:
        """``build()`` moved to ``device`` in ``dtype``; cached eagerly, built inline while compiling.

        Parameters
        ----------
        key : hashable
            Names the constant; the full cache key is ``(key, device, dtype)``.
        device : torch.device, str or None
            ``None`` means the CPU.
        dtype : torch.dtype
        build : callable
            Returns the constant as a tensor (on any device, any dtype).
        """
        dev = torch.device(device) if device is not None else torch.device("cpu")
        if torch.compiler.is_compiling():
            return build().to(device=dev, dtype=dtype)
        full = (key, dev, dtype)
        store = self._tensors
        t = store.get(full)
        if t is None:
            t = build().to(device=dev, dtype=dtype)
            if holds_data(t):  # never keep a fake tensor made while some compiler stage traced us
                store[full] = t
        return t
