"""The architecture's promises: one direction of imports, one state store, an explicit kernel policy."""

from __future__ import annotations

import importlib
import pickle
import pkgutil
import subprocess
import sys
import threading
import warnings

import pytest
import torch

import gatorch
from gatorch import PGA3, STA, Algebra
from gatorch.algebras import AlgebraData
from gatorch.functional import KernelPolicy, current_kernel_policy, gp, kernel_policy


def _run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return out.stdout.strip()


def test_algebras_imports_nothing_above_it():
    code = (
        "import sys, gatorch.algebras\n"
        "a = gatorch.algebras.AlgebraData(3, 0, 1)\n"
        "print(sorted(m for m in sys.modules if m.startswith('gatorch')))"
    )
    mods = eval(_run(code))
    assert mods and all(m == "gatorch" or m.startswith("gatorch.algebras") for m in mods), mods


def test_import_gatorch_is_lazy_and_resolves_the_public_names():
    code = "import sys, gatorch\nprint('gatorch.layers' in sys.modules, 'gatorch.functional' in sys.modules)"
    assert _run(code) == "False False"
    for name in gatorch.__all__:
        assert getattr(gatorch, name) is not None
    assert isinstance(gatorch.PGA3, gatorch.Algebra)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gatorch.nope  # noqa: B018


def test_data_and_user_algebras_share_one_state():
    data = AlgebraData(3, 0, 1)
    assert data == PGA3 and hash(data) == hash(PGA3) and data is not PGA3
    assert data.store is PGA3.store and data.gp_table is PGA3.gp_table
    assert Algebra(3, 0, 1) is PGA3 and AlgebraData(3, 0, 1) is data
    assert pickle.loads(pickle.dumps(PGA3)) is PGA3
    assert pickle.loads(pickle.dumps(data)) is data
    x, y = torch.randn(2, 16, dtype=torch.float64)
    torch.testing.assert_close(gp(data, x, y), PGA3.gp(x, y))  # functional ops take either


@pytest.mark.parametrize("path", ["gatorch.algebras", "gatorch.algebras.presets", "gatorch.algebras.algebra"])
def test_old_algebra_paths_still_work_with_a_deprecation_warning(path):
    module = importlib.import_module(path)
    name = "Algebra" if path.endswith(".algebra") else "PGA3"
    with pytest.warns(DeprecationWarning, match="moved"):
        obj = getattr(module, name)
    assert obj is getattr(gatorch, name)


def _module_state() -> dict[str, int]:
    """Sizes of every module-level dict, list and set in gatorch."""
    sizes = {}
    for info in pkgutil.walk_packages(gatorch.__path__, "gatorch."):
        if info.name.startswith("gatorch.algebras._moved") or ".presets" in info.name:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                module = importlib.import_module(info.name)
            except ImportError:  # an optional dependency (e3nn, lgatr, ...) is missing
                continue
        for key, value in vars(module).items():
            if isinstance(value, (dict, list, set)) and not key.startswith("__"):
                sizes[f"{info.name}.{key}"] = len(value)
    return sizes


def test_no_module_level_state_grows_when_algebras_are_used():
    """Plans and constants go to the algebra's store, never into a module-level container."""
    from gatorch.functional.linear import equi_linear, linear_plan
    from gatorch.functional.nonlinear import grade_invariants
    from gatorch.functional.products import bilinear_dense
    from gatorch.functional.steerable import steerable_gp, steerable_paths
    from gatorch.functional.zoo.glgenn import qt_gp, qt_paths

    before = _module_state()
    alg = Algebra(2, 1, 1)  # an algebra no other test builds first
    x = torch.randn(3, 2, alg.dim, dtype=torch.float64)
    gp(alg, x, x)
    bilinear_dense(alg, x, x)
    equi_linear(alg, x, torch.randn(2, 2, linear_plan(alg).num_maps, dtype=torch.float64))
    grade_invariants(alg, x)
    steerable_gp(alg, x, x, torch.randn(2, len(steerable_paths(alg)), dtype=torch.float64))
    qt_gp(alg, x, x, torch.randn(2, len(qt_paths(alg)), dtype=torch.float64))
    alg.equivariant_basis("spin")
    after = _module_state()
    # the interning table of algebras (one entry per new signature) is the one registry allowed
    interning = "gatorch.algebras.algebra._INSTANCES"
    grown = {k: (before.get(k), v) for k, v in after.items() if before.get(k) != v and k != interning}
    assert not grown, f"module-level containers changed: {grown}"
    assert len(alg.store) > 0


def test_kernel_policy_is_per_thread():
    seen: dict[str, KernelPolicy] = {}
    barrier = threading.Barrier(2)

    def worker(name: str, device: str) -> None:
        with kernel_policy(device):
            barrier.wait()  # both threads are inside their own context now
            seen[name] = current_kernel_policy()
            barrier.wait()

    threads = [threading.Thread(target=worker, args=(n, d)) for n, d in (("a", "cpu"), ("b", "cuda"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": KernelPolicy(device="cpu"), "b": KernelPolicy(device="cuda")}
    assert current_kernel_policy() == KernelPolicy()


def test_explicit_policy_wins_over_the_ambient_one(monkeypatch):
    bilinear = importlib.import_module("gatorch.functional.bilinear")  # the module, not the function

    families = []
    run = bilinear._run

    def spy(xt, yt, table, family):
        families.append(family)
        return run(xt, yt, table, family)

    monkeypatch.setattr(bilinear, "_run", spy)
    x, y = torch.randn(2, 4, 16, dtype=torch.float64)
    with kernel_policy("cpu"):
        ref = STA.gp(x, y)
        out = gp(STA, x, y, policy=KernelPolicy(device="cuda"))
    assert families == ["cpu", "cuda"]
    torch.testing.assert_close(out, ref)
    with pytest.raises(TypeError, match="KernelPolicy or None, got str"):
        gp(STA, x, y, policy="cuda")  # type: ignore[arg-type]


def test_modules_carry_their_own_policy(monkeypatch):
    from gatorch.layers import EquiLinear, GeometricBilinear, set_kernel_policy
    from gatorch.nets import GATr

    bilinear = importlib.import_module("gatorch.functional.bilinear")
    families = []
    run = bilinear._run

    def spy(xt, yt, table, family):
        families.append(family)
        return run(xt, yt, table, family)

    monkeypatch.setattr(bilinear, "_run", spy)
    torch.manual_seed(0)
    layer = GeometricBilinear(PGA3, 3, 4, kernel_policy=KernelPolicy(device="cuda")).double()
    linears = [m for m in layer.modules() if isinstance(m, EquiLinear)]
    assert linears and all(m.kernel_policy == KernelPolicy(device="cuda") for m in linears)
    x = torch.randn(5, 3, 16, dtype=torch.float64)
    with kernel_policy("cpu"):
        out = layer(x)[0]
        assert set(families) == {"cuda"}  # the module's policy, not the ambient one
        families.clear()
        set_kernel_policy(layer, None)  # back to the ambient policy
        ref = layer(x)[0]
        assert set(families) == {"cpu"}
    torch.testing.assert_close(out, ref)

    net = GATr(PGA3, in_mv_channels=2, out_mv_channels=2, hidden_mv_channels=4, num_blocks=1, num_heads=2)
    assert set_kernel_policy(net, KernelPolicy(compiled="fused")) is net
    carriers = [m for m in net.modules() if "kernel_policy" in vars(m)]
    assert carriers and all(m.kernel_policy == KernelPolicy(compiled="fused") for m in carriers)
    with pytest.raises(TypeError, match=r"kernel_policy must be a gatorch\.functional\.KernelPolicy or None"):
        EquiLinear(PGA3, 2, 2, kernel_policy="cuda")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"set_kernel_policy: expected an nn\.Module"):
        set_kernel_policy("net", None)  # type: ignore[type-var]


@pytest.mark.parametrize("compiled", ["fused", "opaque"])
def test_fresh_module_with_an_explicit_policy_compiles(compiled):
    from gatorch.layers import EquiLinear

    torch._dynamo.reset()
    torch.manual_seed(0)
    policy = KernelPolicy(compiled=compiled)
    layer = EquiLinear(STA, 3, 2, in_s_channels=2, out_s_channels=2, kernel_policy=policy).double()
    x, s = torch.randn(4, 3, 16, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    out = torch.compile(layer, fullgraph=True, backend="aot_eager")(x, s)
    ref = layer(x, s)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)
