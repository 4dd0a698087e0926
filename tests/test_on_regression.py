"""The O(n)-invariant regression example (examples/layouts/on_regression.py): task, models, trainer."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from examples.layouts import on_regression as onr
from gatorch.layers import CliffordMLP


def _numpy_target(x: np.ndarray) -> np.ndarray:
    x1, x2 = x[:, 0], x[:, 1]
    r1, r2 = np.sqrt((x1**2).sum(1)), np.sqrt((x2**2).sum(1))
    return np.sin(r1) - r2**3 / 2 + np.einsum("bi,bi->b", x1, x2) / (r1 * r2)


@pytest.mark.parametrize("n", [5, 16])
def test_target_matches_numpy_formula(n: int) -> None:
    x = onr.make_split(n, 50, "train", seed=3)
    assert x.shape == (50, 2, n) and x.dtype == torch.float64
    np.testing.assert_allclose(onr.target(x).numpy(), _numpy_target(x.numpy()), rtol=1e-13, atol=1e-13)


def test_splits_are_seeded_nested_and_standardised() -> None:
    small, large = onr.make_split(5, 10, "train", seed=1), onr.make_split(5, 30, "train", seed=1)
    assert torch.equal(small, large[:10])  # nested training sets
    assert not torch.equal(small, onr.make_split(5, 10, "train", seed=2))
    assert torch.equal(onr.make_split(5, 20, "test", seed=0), onr.make_split(5, 20, "test", seed=7))
    assert not torch.equal(onr.make_split(5, 20, "test")[:, 0], small[:, 0])
    y = onr.standardized(5, onr.make_split(5, 20_000, "test"))
    assert abs(float(y.mean())) < 0.05 and abs(float(y.std()) - 1) < 0.05
    with pytest.raises(ValueError, match="expected split in"):
        onr.make_split(5, 3, "val")


@pytest.mark.parametrize(("n", "grades"), [(5, (0, 1, 2)), (5, None), (8, (0, 1, 2)), (16, (0, 1, 2))])
def test_net_is_invariant_under_reflections_float64(n: int, grades: tuple[int, ...] | None) -> None:
    torch.manual_seed(0)
    net = onr.GANet(n, channels=4, grades=grades, blocks=1, head=8).double()
    q = onr.random_orthogonal(n, seed=1, reflection=True)
    assert torch.allclose(q @ q.T, torch.eye(n, dtype=torch.float64), atol=1e-12)
    assert float(torch.linalg.det(q)) == pytest.approx(-1.0)
    x = onr.make_split(n, 16, "test")
    with torch.no_grad():
        y, y_moved = net(x), net(x @ q.T)
    assert y.std() > 1e-3  # not a constant
    assert torch.allclose(y_moved, y, rtol=1e-9, atol=1e-9 * float(y.abs().max()))
    # the same check the trainer prints at the end, and the MLP baseline is not invariant
    assert onr.invariance_error(net, n) < 1e-9
    assert onr.invariance_error(onr.MLPNet(n, 8), n) > 1e-3


def test_net_builds_on_cl16_without_the_full_tables() -> None:
    """Grades (0, 1, 2) of Cl(16, 0): 137 of 65536 blades, and nothing over all of them."""
    net = onr.GANet(16, channels=2, blocks=1)
    assert isinstance(net.mlp, CliffordMLP) and net.layout.dim == 137
    assert net(torch.randn(3, 2, 16)).shape == (3,)


@pytest.mark.parametrize("n", [5, 8, 16])
def test_mlp_parameter_count_matches_within_3_percent(n: int) -> None:
    target = onr.count_parameters(onr.build_model("gatorch", n))
    mlp = onr.build_model("mlp", n)
    assert isinstance(mlp, onr.MLPNet)
    count = onr.count_parameters(mlp)
    assert count == onr.mlp_parameters(n, mlp.net[0].out_features)
    assert abs(count - target) / target < 0.03
    width = onr.mlp_width_for(n, target)
    for other in (width - 1, width + 1):  # the closest width
        assert abs(onr.mlp_parameters(n, other) - target) >= abs(onr.mlp_parameters(n, width) - target)


def test_full_model_refused_above_n6() -> None:
    with pytest.raises(ValueError, match=r"expected n <= 6 for gatorch-full \(2\*\*n blades\), got n=8"):
        onr.build_model("gatorch-full", 8)
    with pytest.raises(ValueError, match="expected a model in"):
        onr.build_model("transformer", 5)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_end_to_end_writes_csv_plot_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, png = tmp_path / "res", tmp_path / "img" / "on.png"
    common = ["--n", "5", "--sizes", "8", "16", "--steps", "3", "--batch-size", "8", "--test-size", "32",
              "--out-dir", str(out), "--no-progress"]  # fmt: skip
    assert onr.main([*common, "--models", "gatorch", "mlp", "--seeds", "0", "--plot", str(png)]) == 0
    rows = _rows(out / "on_regression.csv")
    assert [(r["model"], r["train_size"], r["seed"]) for r in rows] == [
        ("gatorch", "8", "0"), ("mlp", "8", "0"), ("gatorch", "16", "0"), ("mlp", "16", "0")
    ]  # fmt: skip
    assert all(np.isfinite(float(r["test_mse"])) and r["steps"] == "3" for r in rows)
    assert png.stat().st_size > 0
    assert "| 5 | gatorch |" in (out / "on_regression.md").read_text()

    calls: list[tuple[int, str, int, int]] = []
    real = onr.train_one

    def counting(n: int, model: str, size: int, seed: int, **kw: object) -> object:
        calls.append((n, model, size, seed))
        return real(n, model, size, seed, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(onr, "train_one", counting)
    assert (
        onr.main([*common, "--models", "gatorch", "mlp", "--seeds", "0", "1", "--resume", "--no-plot"]) == 0
    )
    assert sorted(calls) == [(5, "gatorch", 8, 1), (5, "gatorch", 16, 1), (5, "mlp", 8, 1), (5, "mlp", 16, 1)]
    resumed = _rows(out / "on_regression.csv")
    assert resumed[:4] == rows and len(resumed) == 8
    table = (out / "on_regression.md").read_text()
    assert "±" in table  # two seeds: mean ± std

    # --report-only trains nothing and rewrites the table from the CSV
    calls.clear()
    (out / "on_regression.md").unlink()
    assert (
        onr.main([*common, "--models", "gatorch", "mlp", "--seeds", "0", "1", "--report-only", "--no-plot"])
        == 0
    )
    assert calls == [] and (out / "on_regression.md").read_text() == table

    # without --resume the CSV starts over
    calls.clear()
    assert onr.main([*common, "--models", "mlp", "--seeds", "0", "--no-plot"]) == 0
    assert len(calls) == 2 and len(_rows(out / "on_regression.csv")) == 2


def test_command_line_rejects_bad_values(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        onr.main(["--n", "3"])
    assert info.value.code == 2
    assert "argument --n: expected an integer in [4, 20], got '3'" in capsys.readouterr().err
