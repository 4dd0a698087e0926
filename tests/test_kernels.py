"""Both eager kernels (rows and gather) and both layouts agree with the dense Cayley reference.

The kernel is picked by batch size (``ROWS_MIN_ITEMS``) and table size (``GATHER_THRESHOLD``),
so each test runs batches on both sides of the threshold.
"""

import pytest
import torch

import gatorch.functional as F
from gatorch import CGA3, PGA3, STA, Algebra
from gatorch.functional.bilinear import GATHER_THRESHOLD, ROWS_MIN_ITEMS

ALGS = {"PGA3": PGA3, "STA": STA, "CGA3": CGA3, "Cl(2,2,1)": Algebra(2, 2, 1)}
SIZES = {"gather": 5, "rows": ROWS_MIN_ITEMS + 3}
PRODUCTS = ["gp", "outer", "lcontract", "regressive"]


def _pair(alg, n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, alg.dim, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(n, alg.dim, generator=g, dtype=torch.float64, requires_grad=True)
    return x, y


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("product", PRODUCTS)
@pytest.mark.parametrize("alg", ALGS.values(), ids=ALGS.keys())
def test_forward_and_backward_match_dense(alg, product, size):
    x, y = _pair(alg, size, seed=1)
    out = getattr(F, product)(alg, x, y)
    ref = F.bilinear_dense(alg, x, y, product)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, (x, y), g)
    grads_ref = torch.autograd.grad(ref, (x, y), g)
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_blade_first_layout_matches(size):
    x, y = _pair(STA, size, seed=2)
    out = F.gp(STA, x.t(), y.t(), blade_dim=0).t()
    torch.testing.assert_close(out, STA.gp_dense(x, y), atol=1e-12, rtol=0)


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_double_backward_matches_dense(size):
    x, y = _pair(PGA3, size, seed=3)
    v = torch.randn(size, PGA3.dim, dtype=torch.float64)
    w = torch.randn(size, PGA3.dim, dtype=torch.float64)

    def second(fn):
        (gx,) = torch.autograd.grad(fn(x, y), x, v, create_graph=True)
        return torch.autograd.grad((gx * w).sum(), y)[0]

    torch.testing.assert_close(second(PGA3.gp), second(PGA3.gp_dense), atol=1e-12, rtol=0)


def test_large_table_uses_gather_and_matches_dense():
    alg = Algebra(4, 2, 1)  # n = 7: 4**6 * 3 = 12288 terms, more than GATHER_THRESHOLD
    assert alg.gp_table.nnz > GATHER_THRESHOLD
    x, y = _pair(alg, 3, seed=4)
    torch.testing.assert_close(alg.gp(x, y), alg.gp_dense(x, y), atol=1e-12, rtol=0)
