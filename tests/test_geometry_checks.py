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
import re

import numpy as np
import pytest
import torch

from gatorch import Algebra
from gatorch.interface import cga, pga, vga
from gatorch.layers.fields.norm import CliffordBatchNorm1d, CliffordBatchNorm2d, CliffordBatchNorm3d

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


# -- embeddings --------------------------------------------------------------------------------
def _rotation(seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=F64, generator=torch.Generator().manual_seed(seed)))
    return q * torch.linalg.det(q)  # det +1


def test_rotation_matrix_must_be_orthogonal() -> None:
    good = torch.stack([_rotation(0), -_rotation(1)])  # a rotation and an improper one
    assert vga.embed_rotation_matrix(good).shape == (2, 8)
    assert pga.embed_motion(good, torch.zeros(3, dtype=F64)).shape == (2, 16)
    bad = good.clone()
    bad[1] = 2 * bad[1]  # a scaled rotation: its versor used to be that of the rotation
    with pytest.raises(
        ValueError,
        match=r"vga.embed_rotation_matrix: expected orthogonal matrix .*"
        r"atol = 0.0001.*got max \|M\^T M - I\| = 3 for 1 of 2 item\(s\), the first at batch index \(1,\)",
    ):
        vga.embed_rotation_matrix(bad)
    with pytest.raises(ValueError, match=r"pga.embed_motion: expected orthogonal matrix"):
        pga.embed_motion(bad, torch.zeros(3, dtype=F64))
    shear = torch.eye(3, dtype=F64)
    shear[0, 1] = 0.5
    with pytest.raises(ValueError, match="orthogonal"):
        vga.embed_rotation_matrix(shear)
    nan = torch.full((3, 3), math.nan, dtype=F64)
    with pytest.raises(ValueError, match="= nan"):
        vga.embed_rotation_matrix(nan)


def test_orthogonality_tolerance() -> None:
    near = _rotation(2) + 1e-3  # off by ~3e-3
    with pytest.raises(ValueError, match=r"atol = 0\.0001"):
        vga.embed_rotation_matrix(near)
    assert vga.embed_rotation_matrix(near, atol=1e-2).shape == (8,)
    assert pga.embed_motion(near, torch.zeros(3, dtype=F64), atol=1e-2).shape == (16,)
    with pytest.raises(ValueError, match=r"atol = 1e-09"):
        vga.embed_rotation_matrix(_rotation(3) + 1e-6, atol=1e-9)
    # float32 round-off is well inside the default
    assert vga.embed_rotation_matrix((_rotation(4) + 1e-5).float()).dtype == torch.float32
    with pytest.raises(ValueError, match=r"atol >= 0, got -1"):
        vga.embed_rotation_matrix(_rotation(5), atol=-1)
    with pytest.raises(TypeError, match=r"atol as a float >= 0 or None, got str"):
        pga.embed_motion(_rotation(5), torch.zeros(3, dtype=F64), atol="1e-3")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fn",
    [pga.embed_plane, pga.embed_reflection, cga.embed_plane],
    ids=lambda f: f.__module__[-3:] + f.__name__,
)
def test_plane_normal_must_be_nonzero(fn) -> None:
    normal = torch.randn(2, 3, 3, dtype=F64)
    normal[1, 2] = 0
    name = f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"
    with pytest.raises(
        ValueError,
        match=rf"{name}: expected a non-zero normal, got the zero vector for 1 of 6 item\(s\), "
        r"the first at batch index \(1, 2\)",
    ):
        fn(normal, torch.ones(2, 3, 1, dtype=F64))
    normal[1, 2, 0] = 1e-30  # any non-zero length is fine
    assert fn(normal, torch.ones(2, 3, 1, dtype=F64)).shape[:-1] == (2, 3)


@pytest.mark.parametrize("fn", [pga.embed_rotation, vga.embed_rotation], ids=["pga", "vga"])
def test_quaternion_must_be_nonzero(fn) -> None:
    q = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0]], dtype=F64)
    with pytest.raises(
        ValueError, match=r"embed_rotation: expected a non-zero quaternion.*batch index \(1,\)"
    ):
        fn(q)


def test_sphere_radius_must_be_nonnegative() -> None:
    c = torch.zeros(3, 3, dtype=F64)
    r = torch.tensor([[1.0], [-2.0], [0.0]], dtype=F64)
    with pytest.raises(
        ValueError, match=r"cga.embed_sphere: expected radius >= 0, got radius = -2 .*batch index \(1,\)"
    ):
        cga.embed_sphere(c, r)
    r[1] = 2.0
    _, radius = cga.extract_sphere(cga.embed_sphere(c, r))
    torch.testing.assert_close(radius, r)


def test_value_checks_are_skipped_while_compiling() -> None:
    """One graph, no host sync: the invalid inputs pass through compiled code unchecked."""
    torch._dynamo.reset()

    def embed_all(m: torch.Tensor, n: torch.Tensor, r: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        t = torch.zeros(3, dtype=m.dtype)
        return (
            vga.embed_rotation_matrix(m).sum()
            + pga.embed_motion(m, t).sum()
            + pga.embed_plane(n, r).sum()
            + pga.embed_reflection(n, r).sum()
            + pga.embed_rotation(q).sum()
            + cga.embed_plane(n, r).sum()
            + cga.embed_sphere(n, r).sum()
        )

    compiled = torch.compile(embed_all, fullgraph=True, backend="eager")
    bad = (2 * torch.eye(3), torch.zeros(3), -torch.ones(1), torch.zeros(4))
    assert torch.isfinite(compiled(*bad))
    with pytest.raises(ValueError):
        embed_all(*bad)


# -- batch norm ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "shape"),
    [
        (CliffordBatchNorm1d, (1, 3, 4)),
        (CliffordBatchNorm1d, (1, 3, 1, 4)),
        (CliffordBatchNorm2d, (1, 3, 1, 1, 4)),
        (CliffordBatchNorm3d, (1, 3, 1, 1, 1, 4)),
    ],
)
def test_batch_norm_needs_more_than_one_value_per_channel(cls, shape: tuple[int, ...]) -> None:
    bn = cls(Algebra(2), 3)
    x = torch.randn(shape)
    with pytest.raises(
        ValueError,
        match=rf"{cls.__name__}: expected more than 1 value per channel .*got input size "
        + re.escape(str(tuple(shape))),
    ):
        bn(x)
    assert int(bn.num_batches_tracked) == 0  # the running statistics are untouched
    bn.eval()
    assert bn(x).shape == shape  # eval mode uses the running statistics
    no_stats = cls(Algebra(2), 3, track_running_stats=False).eval()
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        no_stats(x)  # batch statistics in eval mode too, as torch.nn.BatchNorm2d


def test_batch_norm_two_values_are_enough() -> None:
    bn = CliffordBatchNorm2d(Algebra(2), 3)
    for shape in [(2, 3, 1, 1, 4), (1, 3, 2, 1, 4)]:
        y = bn(torch.randn(shape))
        assert y.shape == shape and y.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_rotation_matrix_half_precision(dtype: torch.dtype) -> None:
    """Half-precision matrices embed (the determinant's sign is taken in float32: CPU has no
    half-precision LU) and agree with the float64 versor to the dtype's precision."""
    gen = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(4, 3, 3, dtype=torch.float64, generator=gen))
    q[1] = -q[1]  # an improper one too
    ref = vga.embed_rotation_matrix(q)
    got = vga.embed_rotation_matrix(q.to(dtype), atol=0.05)
    assert got.dtype == dtype
    torch.testing.assert_close(got.double(), ref, atol=2e-2, rtol=0)
