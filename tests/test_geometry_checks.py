"""Silent wrong answers turned into errors: the algebra constructor, the embeddings, batch norm.

* ``Algebra.from_signature`` refuses strings (it used to read ``'11'`` character by character
  as ``Cl(2, 0)``), bytes, sets, bools and other non-numbers, with a ``TypeError`` naming the
  expected "sequence of metric values in {1, -1, 0}" and what came.
* ``gatorch.interface``: non-orthogonal matrices (``vga.embed_rotation_matrix``,
  ``pga.embed_motion``, with ``atol=``), zero plane normals (``pga.embed_plane``,
  ``pga.embed_reflection``, ``cga.embed_plane``), zero quaternions (``pga/vga.embed_rotation``)
  and negative sphere radii (``cga.embed_sphere``) raise ``ValueError``; the value checks
  are skipped under ``torch.compile`` (one graph, no host sync).
* ``CliffordBatchNorm1d/2d/3d`` with one value per channel in training raise ``ValueError``
  as ``torch.nn.BatchNorm2d`` does (the output used to be all zeros); eval mode works.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gatorch import Algebra

F64 = torch.float64
METRIC_VALUES = r"sequence of metric values in \{1, -1, 0\}"


# -- Algebra.from_signature ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("metric", "got"),
    [("11", "str '11'"), (b"1-1", "bytes"), ({1, -1}, "set"), (3, "int 3"), (None, "NoneType")],
)
def test_from_signature_refuses_non_sequences(metric: object, got: str) -> None:
    with pytest.raises(TypeError, match=rf"{METRIC_VALUES}, got {got}"):
        Algebra.from_signature(metric)  # type: ignore[arg-type]


@pytest.mark.parametrize(("metric", "entry"), [([1, True], "entry 1 = True"), (["1", "1"], "entry 0 = '1'")])
def test_from_signature_refuses_non_number_entries(metric: list, entry: str) -> None:
    with pytest.raises(TypeError, match=rf"{METRIC_VALUES}, got {entry}"):
        Algebra.from_signature(metric)


def test_from_signature_refuses_bad_values_and_shapes() -> None:
    with pytest.raises(ValueError, match=r"-1, 0 or 1, got entry 1 = nan"):
        Algebra.from_signature([1, math.nan])
    with pytest.raises(ValueError, match=r"1-D .*got a ndarray of shape \(1, 2\)"):
        Algebra.from_signature(np.array([[1, 1]]))
    with pytest.raises(ValueError, match=r"start_index must be an int >= 0, got True"):
        Algebra.from_signature([1, 1], start_index=True)


def test_from_signature_accepts_numbers_arrays_and_tensors() -> None:
    expected = Algebra(1, 1, 1)
    assert Algebra.from_signature([0, 1.0, -1]) is expected
    assert Algebra.from_signature(np.array([0, 1, -1])) is expected
    assert Algebra.from_signature(torch.tensor([0.0, 1.0, -1.0])) is expected
    assert Algebra.from_signature((np.int64(0), np.float32(1), -1)) is expected
    assert Algebra.from_signature(m for m in (0, 1, -1)) is expected
