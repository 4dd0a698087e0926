import torch

import gatorch
from gatorch import PGA3, STA, VGA3, Algebra


def test_public_api_and_presets():
    assert gatorch.__version__
    assert PGA3.blade_names[:6] == ("1", "e0", "e1", "e2", "e3", "e01")
    assert PGA3.blade_names[-1] == "e0123"
    assert STA.metric == (1, -1, -1, -1) and STA.blade_names[1] == "e0"
    assert VGA3.blade_names == ("1", "e1", "e2", "e3", "e12", "e13", "e23", "e123")
    assert Algebra(3, 0, 1) is PGA3


def test_gp_matches_dense_reference():
    x, y = torch.randn(2, 7, 16, dtype=torch.float64)
    torch.testing.assert_close(PGA3.gp(x, y), PGA3.gp_dense(x, y), atol=1e-12, rtol=0)
