"""The hull example in CSMPN's reference protocol (examples/hulls): data, models, trainer."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from examples import harness
from examples.hulls import data as hull_data
from examples.hulls import report
from examples.hulls import train as hull_train
from examples.hulls.models import ALG, build_model, invariant_features
from examples.zoo.csmpn_hull_data import hull_complex, hull_simplices
from gatorch.testing import assert_equivariant, random_versors

pytest.importorskip("scipy")

F64 = torch.float64


# -- data -------------------------------------------------------------------------------------------------
def test_split_is_cached_plain_and_a_prefix_of_the_full_split(tmp_path):
    spatial = pytest.importorskip("scipy.spatial")
    small = hull_data.load_split("val", 5, tmp_path)
    path = hull_data.cache_path(tmp_path, "val", 5)
    assert path.exists()
    stored = torch.load(path, weights_only=True)  # plain tensors and numbers only
    torch.testing.assert_close(stored["points"], small["points"])
    again = hull_data.load_split("val", 5, tmp_path)  # read back from the cache
    assert all(torch.equal(again[k], small[k]) for k in small)
    bigger = hull_data.load_split("val", 7, tmp_path)
    assert torch.equal(bigger["points"][:5], small["points"])  # same seed, same draws
    assert not torch.equal(hull_data.load_split("test", 5, tmp_path)["points"], small["points"])
    for cloud, volume in zip(small["points"].double().numpy(), small["volumes"], strict=True):
        assert float(volume) == pytest.approx(spatial.ConvexHull(cloud).volume, rel=1e-5)
    with pytest.raises(
        ValueError, match=r"load_split: split must be one of \('train', 'val', 'test'\), got 'dev'"
    ):
        hull_data.load_split("dev", 5, tmp_path)


def test_batch_complex_equals_the_reference_lift(tmp_path):
    split = hull_data.load_split("train", 6, tmp_path)
    for k, s in enumerate(hull_simplices(split["points"][2].numpy())):
        key, ptr = ("edges", "edge_ptr") if k == 0 else ("triangles", "triangle_ptr")
        assert split[key][split[ptr][2] : split[ptr][3]].tolist() == [list(r) for r in s]
    idx = torch.tensor([4, 1, 2])
    ours = hull_data.batch_complex(split, idx)
    ref = hull_complex(split["points"][idx])
    assert ours.counts == ref.counts and ours.num_graphs == 3
    for a, b in zip(ours.simplices, ref.simplices, strict=True):
        assert sorted(map(tuple, a.tolist())) == sorted(map(tuple, b.tolist()))


# -- models -----------------------------------------------------------------------------------------------
def _rotate(w: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """The orthogonal map of versor ``w`` (twisted action) on points ``(..., 5)``."""
    vectors = points.new_zeros(*points.shape[:-1], ALG.dim)
    vectors[..., ALG.grade_slice(1)] = points
    return ALG.sandwich(w, vectors)[..., ALG.grade_slice(1)]


@pytest.mark.parametrize("name", ["csmpn", "cgenn", "mlp"])
def test_models_o5_invariant_with_reflections(name, tmp_path):
    """float64, two rotations and two reflections of R^5 (a translation too): the volume is invariant."""
    split = hull_data.load_split("train", 3, tmp_path)
    points = split["points"].double()
    cx = hull_data.batch_complex(split, torch.arange(3))
    torch.manual_seed(0)
    small = {
        "csmpn": {"hidden_mv_channels": 4, "num_layers": 1},
        "cgenn": {"hidden_mv_channels": 4},
        "mlp": {},
    }
    model = build_model(name, **small[name]).double()
    versors = random_versors(ALG, 4, seed=1)
    dets = [float(torch.linalg.det(_rotate(w, torch.eye(5, dtype=F64)))) for w in versors]
    assert dets == pytest.approx([1, 1, -1, -1])  # two rotations, two reflections
    assert_equivariant(
        lambda p: model(p + 0.7, cx), ALG, [points], in_specs=[_rotate], out_specs="scalar", versors=versors
    )
    assert float(model(points, cx).detach().abs().max()) > 1e-6


def test_mlp_features_ignore_the_order_of_the_points():
    points = torch.randn(2, 8, 5, dtype=F64)
    torch.testing.assert_close(invariant_features(points[:, torch.randperm(8)]), invariant_features(points))


def test_model_errors():
    with pytest.raises(
        ValueError, match=r"unknown model 'gatr'; expected one of \['cgenn', 'csmpn', 'mlp'\]"
    ):
        build_model("gatr")
    with pytest.raises(ValueError, match=r"HullMLP: expected points of shape \(B, 8, 5\), got \(2, 8, 3\)"):
        build_model("mlp")(torch.randn(2, 8, 3))
    with pytest.raises(ValueError, match="HullMLP: hidden and num_layers must be ints >= 1"):
        build_model("mlp", hidden=0)


# -- the trainer ------------------------------------------------------------------------------------------
class _Interrupt(Exception):
    pass


def _config(name: str, tmp_path, run: str) -> hull_train.TrainConfig:
    return hull_train.TrainConfig(
        model=name, preset="smoke", run_dir=str(tmp_path / run), cache_dir=str(tmp_path / "cache"),
        device="cpu", progress=False, plots=False,
    )  # fmt: skip


def _rows(run_dir) -> list[dict[str, str]]:
    with (run_dir / "log.csv").open() as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("name", ["csmpn", "cgenn", "mlp"])
def test_interrupted_run_resumes_to_the_uninterrupted_result(name, tmp_path, monkeypatch):
    """Smoke preset (4 steps, a validation every 2): a run stopped in its second round and
    resumed ends with the weights, log and test MSE of a run that was never stopped."""
    whole = hull_train.train(_config(name, tmp_path, "whole"))
    assert whole["steps"] == 4 and np.isfinite(whole["test_mse"]) and whole["s_per_step"] > 0
    rows = _rows(tmp_path / "whole")
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert {"val_mse", "val_s", "train_loss", "lr"} <= set(rows[0])

    walk = hull_train._Walk.__call__

    def stop_in_round_two(self, round_, idx):
        if round_ == 1:
            raise _Interrupt
        return walk(self, round_, idx)

    monkeypatch.setattr(hull_train._Walk, "__call__", stop_in_round_two)
    with pytest.raises(_Interrupt):
        hull_train.train(_config(name, tmp_path, "cut"))
    assert [int(r["step"]) for r in _rows(tmp_path / "cut")] == [2]
    monkeypatch.setattr(hull_train._Walk, "__call__", walk)
    resumed = hull_train.train(_config(name, tmp_path, "cut"), resume=True)
    assert [int(r["step"]) for r in _rows(tmp_path / "cut")] == [2, 4]
    a = harness.load_checkpoint(tmp_path / "whole" / "last.pt")["model"]
    b = harness.load_checkpoint(tmp_path / "cut" / "last.pt")["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5)
    assert resumed["test_mse"] == pytest.approx(whole["test_mse"], rel=1e-5)
    assert json.loads((tmp_path / "cut" / "results.json").read_text())["steps"] == 4


def test_report_table_and_plot(tmp_path):
    for seed in (0, 1):
        cfg = _config("mlp", tmp_path, f"runs/mlp-s{seed}")
        cfg.seed = seed
        hull_train.train(cfg)
    report.main([str(tmp_path / "runs")])
    table = (tmp_path / "runs" / "results.md").read_text()
    assert "| MLP | " in table and "| 2 | 4 |" in table and "+-" in table
    assert (tmp_path / "runs" / "val_mse.png").stat().st_size > 0


def test_config_errors(tmp_path):
    cfg = _config("mlp", tmp_path, "bad")
    cfg.val_size = 20000
    with pytest.raises(ValueError, match="val_size must be at most 16384, got 20000"):
        cfg.resolved()
    with pytest.raises(SystemExit):
        hull_train.parse_args(["--model", "mlp", "--steps", "0"])
