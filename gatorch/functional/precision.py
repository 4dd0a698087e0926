"""Precision islands: the dtype helpers of layers that keep some maths in float32 under autocast.

Pure functions of dtypes and of the autocast state (no module state): the slim layers and
the slim attention use them to run their metric contractions and attention logits in
float32 (or float64 when an input is) while the rest follows autocast.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import Tensor

__all__ = ["as_dtype", "no_autocast", "wide_dtype"]


def wide_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """The precision of a float32 island: float64 if any of ``dtypes`` is, else float32.

    Parameters
    ----------
    *dtypes : torch.dtype

    Returns
    -------
    torch.dtype
    """
    return torch.float64 if torch.float64 in dtypes else torch.float32


def as_dtype(x: Tensor, dtype: torch.dtype) -> Tensor:
    """``x`` in ``dtype``, with no dispatcher call when it already is.

    Parameters
    ----------
    x : Tensor, any shape
    dtype : torch.dtype

    Returns
    -------
    Tensor, the shape of ``x``
    """
    return x if x.dtype == dtype else x.to(dtype)


def no_autocast(device_type: str) -> AbstractContextManager[Any]:
    """Autocast switched off for ``device_type`` when it is on (a float32 island), else nothing.

    ``torch.is_autocast_enabled`` is constant-folded (and guarded) by ``torch.compile``.

    Parameters
    ----------
    device_type : str
        ``"cpu"``, ``"cuda"``, ...
    """
    if torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()
