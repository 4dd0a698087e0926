"""Issue 22's moves: the old module paths still give the same objects, the deprecated ones warn,
gatorch never imports its own shims, and the linear layers built on the shared
(multivector, scalar) channel base keep their parameter layout."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest
import torch

from gatorch import PGA3, STA
from gatorch.layers.linear import EquiLinear, MVScalarLinear
from gatorch.layers.zoo.gcan import GroupActionLinear
from gatorch.layers.zoo.glgenn import QTLinear

#: old module -> (new module, names it must give identically)
DEPRECATED = {
    "gatorch.layers.conv": ("gatorch.layers.fields.conv", ["CliffordConv2d", "CliffordLinear"]),
    "gatorch.layers.fourier": ("gatorch.layers.fields.fourier", ["CliffordSpectralConv2d"]),
    "gatorch.layers.field_norm": (
        "gatorch.layers.fields.norm",
        ["CliffordBatchNorm2d", "CliffordGroupNorm3d"],
    ),
    "gatorch.layers.steerable_conv": ("gatorch.layers.fields.steerable_conv", ["CliffordSteerableConvNd"]),
    "gatorch.layers.gcan": ("gatorch.layers.zoo.gcan", ["GroupActionLinear", "transform_parameters"]),
    "gatorch.layers.glgenn": ("gatorch.layers.zoo.glgenn", ["QTLinear", "QTGeometricProduct"]),
    "gatorch.layers.ga_attention": ("gatorch.layers.zoo.ga_attention", ["ga_attention_invariant_dims"]),
    "gatorch.functional.conv": ("gatorch.functional.fields.conv", ["clifford_conv", "PADDING_MODES"]),
    "gatorch.functional.fourier": ("gatorch.functional.fields.fourier", ["spectral_conv_rfft"]),
    "gatorch.functional.steerable_conv": ("gatorch.functional.fields.steerable_conv", ["spatial_blades"]),
    "gatorch.functional.glgenn": ("gatorch.functional.zoo.glgenn", ["qt_gp", "qt_paths"]),
}
#: names re-exported at an old path from a module other than the one the path maps to
MOVED_ELSEWHERE = {
    ("gatorch.layers.field_norm", "whiten"): "gatorch.functional.fields.whiten",
    ("gatorch.layers.gcan", "group_action_matrices"): "gatorch.functional.zoo.gcan",
    ("gatorch.layers.gcan", "group_action_linear_naive"): "gatorch.functional.zoo.gcan",
    ("gatorch.nets.gnn", "CliffordMLP"): "gatorch.layers.mlp",
    ("gatorch.nets.gnn", "CliffordMLPConfig"): "gatorch.layers.config",
    ("gatorch.nets.gnn", "CliffordGNNLayer"): "gatorch.layers.message_passing",
    ("gatorch.nets.gnn", "AGGREGATIONS"): "gatorch.layers.message_passing",
    ("gatorch.nets", "CliffordMLPConfig"): "gatorch.layers.config",
    ("gatorch.nets.csmpn", "CSMPNLayer"): "gatorch.layers.zoo.csmpn",
    ("gatorch.nets.csmpn", "SimplexEmbedding"): "gatorch.layers.zoo.csmpn",
    ("gatorch.nets.fields", "_EquiFieldGroupNorm"): "gatorch.layers.fields.norm",
    ("gatorch.layers.steerable", "SteerableGeometricProduct"): "gatorch.layers.bilinear",
    ("gatorch.layers.steerable", "WEIGHT_INITS"): "gatorch.layers.bilinear",
    ("gatorch.layers.steerable", "MVSiLU"): "gatorch.layers.nonlinear",
}
#: deprecated paths that re-export from several modules (checked through MOVED_ELSEWHERE)
DEPRECATED_SPLIT = ("gatorch.layers.steerable",)


@pytest.mark.parametrize("old", sorted(DEPRECATED))
def test_deprecated_path_warns_and_gives_the_same_objects(old: str) -> None:
    new, names = DEPRECATED[old]
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        module = importlib.import_module(old)
    target = importlib.import_module(new)
    for name in names:
        assert getattr(module, name) is getattr(target, name)
    assert set(module.__all__) >= set(target.__all__)


@pytest.mark.parametrize(("old", "name"), sorted(MOVED_ELSEWHERE))
def test_moved_names_at_old_paths(old: str, name: str) -> None:
    with warnings.catch_warnings():
        # the deprecated paths warn (tested above); the others must not
        deprecated = old in DEPRECATED or old in DEPRECATED_SPLIT
        warnings.simplefilter("ignore" if deprecated else "error", DeprecationWarning)
        module = importlib.import_module(old)
    target = getattr(importlib.import_module(MOVED_ELSEWHERE[(old, name)]), name.lstrip("_"))
    assert getattr(module, name) is target


def test_gatorch_does_not_import_its_shims() -> None:
    code = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
        "import gatorch, gatorch.layers, gatorch.nets, gatorch.layers.fields, gatorch.layers.zoo\n"
        "import gatorch.interop.cliffordlayers, gatorch.interop.cliffordlayers_fourier\n"
        "import sys\n"
        f"loaded = sorted(set(sys.modules) & set({sorted(DEPRECATED) + list(DEPRECATED_SPLIT)!r}))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the shared (multivector, scalar) channel base: parameter layout as before the refactor --------
LAYOUTS = [
    (
        lambda: EquiLinear(PGA3, 3, 4, in_s_channels=2, out_s_channels=3),
        [
            ("weight", (4, 3, 9)),
            ("bias", (4, 2)),
            ("s_to_mv", (4, 2, 2)),
            ("mv_to_s", (3, 3, 1)),
            ("s_to_s.weight", (3, 2)),
            ("s_to_s.bias", (3,)),
        ],
    ),
    (
        lambda: EquiLinear(PGA3, 3, 4, in_s_channels=2, group="spin"),
        [("weight", (4, 3, 16)), ("bias", (4, 3)), ("s_to_mv", (4, 3, 2))],
    ),
    (
        lambda: EquiLinear(PGA3, 3, 4, out_s_channels=3),
        [("weight", (4, 3, 9)), ("bias", (4, 2)), ("mv_to_s", (3, 3, 1)), ("s_bias", (3,))],
    ),
    (
        lambda: QTLinear(STA, 3, 4, in_s_channels=2, out_s_channels=3),
        [
            ("weight", (4, 3, 4)),
            ("bias", (4,)),
            ("s_to_mv", (4, 2)),
            ("mv_to_s", (3, 3)),
            ("s_to_s.weight", (3, 2)),
            ("s_to_s.bias", (3,)),
        ],
    ),
    (
        lambda: QTLinear(STA, 3, 4, out_s_channels=3),
        [("weight", (4, 3, 4)), ("bias", (4,)), ("mv_to_s", (3, 3)), ("s_bias", (3,))],
    ),
    (
        lambda: GroupActionLinear(PGA3, 3, 4, in_s_channels=2, out_s_channels=3, bias=True),
        [
            ("bivector", (4, 3, 6)),
            ("weight", (4, 3, 5)),
            ("s_to_mv", (4, 2)),
            ("mv_to_s", (3, 3)),
            ("s_to_s", (3, 2)),
            ("bias", (4,)),
            ("s_bias", (3,)),
        ],
    ),
    (
        lambda: GroupActionLinear(PGA3, 3, 4, in_s_channels=2, out_s_channels=3),
        [
            ("bivector", (4, 3, 6)),
            ("weight", (4, 3, 5)),
            ("s_to_mv", (4, 2)),
            ("mv_to_s", (3, 3)),
            ("s_to_s", (3, 2)),
        ],
    ),
]


@pytest.mark.parametrize("k", range(len(LAYOUTS)))
def test_channel_base_keeps_the_parameter_layout(k: int) -> None:
    build, expected = LAYOUTS[k]
    layer = build()
    assert isinstance(layer, MVScalarLinear)
    assert [(n, tuple(p.shape)) for n, p in layer.named_parameters()] == expected
    assert list(layer.state_dict()) == [n for n, _ in expected]
    for name in ("bias", "s_bias", "s_to_s.bias"):
        if name in layer.state_dict():
            assert not layer.state_dict()[name].any()  # zero at initialisation


def test_channel_base_scalar_terms() -> None:
    """The scalar outputs are the ``mv_to_s`` readout + ``s_to_s`` + ``s_bias``, in every layer."""
    torch.manual_seed(0)
    for layer in (
        QTLinear(STA, 2, 3, in_s_channels=2, out_s_channels=3),
        GroupActionLinear(STA, 2, 3, in_s_channels=2, out_s_channels=3, bias=True),
    ):
        with torch.no_grad():
            for p in layer.parameters():
                p.normal_()
        mv, s = torch.randn(5, 2, STA.dim, dtype=torch.float32), torch.randn(5, 2)
        _, t = layer(mv, s)
        assert layer.mv_to_s is not None and layer.s_to_s is not None
        w = layer.s_to_s.weight if isinstance(layer.s_to_s, torch.nn.Linear) else layer.s_to_s
        expected = mv[..., 0] @ layer.mv_to_s.T + s @ w.T
        if isinstance(layer.s_to_s, torch.nn.Linear) and layer.s_to_s.bias is not None:
            expected = expected + layer.s_to_s.bias
        if layer.s_bias is not None:
            expected = expected + layer.s_bias
        torch.testing.assert_close(t, expected.detach())
