"""Every checkpoint loader of the examples reads with ``torch.load(weights_only=True)``.

A crafted pickle (an object whose ``__reduce__`` would create a marker file) goes through
each loader: the n-body ``predict`` / ``load_model``, the harness resume (``--resume`` of the
three trainers, a crafted ``last.pt`` in the run directory) and the best-model load
(``harness.load_best``). Nothing may run, and the error must say what the file is and how
to convert a trusted old one.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from examples import harness
from examples.jets import train as jets_train
from examples.nbody import predict as predict_mod
from examples.nbody import train as nbody_train
from examples.nbody.models import build_model
from examples.pde import train as pde_train

TINY_EGNN = {"hidden": 8, "num_layers": 1, "time_scale": 1.0, "attr_features": "raw"}


def make_marker(path: str) -> None:
    """What the crafted pickle calls while it is unpickled: proof that code ran."""
    Path(path).write_text("code ran")


class Payload:
    """Unpickling this calls :func:`make_marker` (``pickle``'s ``__reduce__`` protocol)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (make_marker, (self.marker,))


def craft(path: Path, marker: Path) -> Path:
    """A checkpoint-looking file whose unpickling would create ``marker``."""
    torch.save({"format": 1, "model": {}, "config": {}, "payload": Payload(marker)}, path)
    assert not marker.exists()
    return path


def assert_refused(excinfo: pytest.ExceptionInfo, path: Path, marker: Path) -> None:
    message = str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)
    assert f"{path} is not a safe gatorch checkpoint" in message
    assert "make_marker" in message  # names what the file refers to
    assert "python -m examples.harness convert-checkpoint" in message
    assert not marker.exists(), "the crafted pickle ran"


def test_crafted_pickle_does_run_when_loaded_unsafely(tmp_path):
    """The payload is live: ``weights_only=False`` does run it (so the tests below can fail)."""
    path, marker = craft(tmp_path / "evil.pt", tmp_path / "marker"), tmp_path / "marker"
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("entry", ["load_model", "predict", "predict_gravity"])
def test_predict_refuses_a_crafted_checkpoint(tmp_path, entry):
    marker = tmp_path / "marker"
    path = craft(tmp_path / "best.pt", marker)
    loc, vel, attr = np.zeros((1, 5, 3)), np.zeros((1, 5, 3)), np.ones((1, 5))
    calls = {
        "load_model": lambda: predict_mod.load_model(path),
        "predict": lambda: predict_mod.predict(path, loc, vel, attr),
        "predict_gravity": lambda: predict_mod.predict_gravity(path, loc, vel, attr),
    }
    with pytest.raises(harness.UnsafeCheckpointError) as excinfo:
        calls[entry]()
    assert_refused(excinfo, path, marker)


def test_predict_command_line_refuses_a_crafted_checkpoint(tmp_path, capsys):
    """On the command line the refusal is an option error (exit code 2) with the same message."""
    marker = tmp_path / "marker"
    path = craft(tmp_path / "best.pt", marker)
    with pytest.raises(SystemExit) as excinfo:
        predict_mod.main([str(path)])
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert "argument checkpoint:" in err and "is not a safe gatorch checkpoint" in err
    assert "Nothing in it was run" in err and not marker.exists()


TRAINERS = {
    "nbody": (nbody_train.main, ["--model", "egnn"]),
    "pde": (pde_train.main, ["--model", "resnet"]),
    "jets": (jets_train.main, ["--model", "gatr"]),
}


@pytest.mark.parametrize("trainer", sorted(TRAINERS))
def test_resume_refuses_a_crafted_last_pt(tmp_path, trainer):
    """``--resume`` reads ``RUN_DIR/last.pt`` first, before any data or model: refused, nothing ran."""
    main, argv = TRAINERS[trainer]
    run_dir, marker = tmp_path / "run", tmp_path / "marker"
    run_dir.mkdir()
    path = craft(run_dir / "last.pt", marker)
    with pytest.raises(harness.UnsafeCheckpointError) as excinfo:
        main([*argv, "--run-dir", str(run_dir), "--resume", "--no-plots", "--no-progress",
              "--cache-dir", str(tmp_path / "cache")])  # fmt: skip
    assert_refused(excinfo, path, marker)
    assert not (tmp_path / "cache").exists()  # refused before any data was made


def test_best_model_load_refuses_a_crafted_best_pt(tmp_path):
    marker = tmp_path / "marker"
    path = craft(tmp_path / "best.pt", marker)
    model = build_model("egnn", **TINY_EGNN)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(harness.UnsafeCheckpointError) as excinfo:
        harness.load_best(model, tmp_path)
    assert_refused(excinfo, path, marker)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_load_checkpoint_names_missing_files_and_non_dicts(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file at"):
        harness.load_checkpoint(tmp_path / "absent.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="expected a checkpoint dictionary, got list"):
        harness.load_checkpoint(tmp_path / "list.pt")


@dataclasses.dataclass
class OldConfig:
    lr: float = 1e-3
    seed: int = 0


def _old_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """A trusted checkpoint in an older style: numpy RNG state, a Namespace, a config dataclass."""
    torch.manual_seed(0)
    weights = build_model("egnn", **TINY_EGNN).state_dict()
    torch.save(
        {
            "format": 1, "model_name": "egnn", "model_kwargs": TINY_EGNN, "model": weights, "task": "charged",
            "numpy_rng": np.random.RandomState(0).get_state(), "args": argparse.Namespace(lr=1e-3, seed=0),
            "config": OldConfig(), "val_mse": np.float64(0.5), "history": [{"epoch": np.int64(1)}],
        },
        path,
    )  # fmt: skip
    return weights


def test_old_checkpoint_is_refused_then_converts_with_identical_weights(tmp_path):
    path = tmp_path / "old.pt"
    weights = _old_checkpoint(path)
    with pytest.raises(harness.UnsafeCheckpointError, match="not a safe gatorch checkpoint"):
        predict_mod.load_model(path)
    harness.main(["convert-checkpoint", str(path)])
    assert (tmp_path / "old.pt.orig").exists()  # the original is kept
    state = harness.load_checkpoint(path)
    assert state["args"] == {"lr": 1e-3, "seed": 0} and state["config"] == {"lr": 1e-3, "seed": 0}
    assert state["val_mse"] == 0.5 and type(state["val_mse"]) is float
    assert state["history"] == [{"epoch": 1}]
    name, keys, pos, has_gauss, gauss = state["numpy_rng"]
    restored = np.random.RandomState()
    restored.set_state((name, keys.numpy(), pos, has_gauss, gauss))
    assert restored.randint(1 << 30) == np.random.RandomState(0).randint(1 << 30)
    for k, v in weights.items():
        assert torch.equal(state["model"][k], v) and state["model"][k].dtype == v.dtype
    model, task = predict_mod.load_model(path)
    assert task == "charged" and not model.training


def test_convert_checkpoint_to_another_file(tmp_path):
    src, out = tmp_path / "old.pt", tmp_path / "new.pt"
    _old_checkpoint(src)
    assert harness.convert_checkpoint(src, out) == out
    assert harness.load_checkpoint(out)["model_name"] == "egnn"
    with pytest.raises(harness.UnsafeCheckpointError):  # the source is left as it was
        harness.load_checkpoint(src)


def test_convert_command_line_refuses_a_missing_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as excinfo:
        harness.main(["convert-checkpoint", str(tmp_path / "absent.pt")])
    assert excinfo.value.code == 2
    assert "expected a checkpoint file" in capsys.readouterr().err


def test_save_atomic_refuses_objects_that_would_not_load_safely(tmp_path):
    with pytest.raises(TypeError, match=r"checkpoint\['rng'\]: expected tensors, .* got numpy.ndarray"):
        harness.save_atomic({"rng": np.zeros(3)}, tmp_path / "x.pt")
    with pytest.raises(TypeError, match=r"checkpoint\['config'\]: .* got argparse.Namespace"):
        harness.save_atomic({"config": argparse.Namespace(a=1)}, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "x.pt.tmp").exists()
    harness.save_atomic({"a": [1, 2.0, "s", None, (True,)], 3: {"t": torch.ones(2)}}, tmp_path / "x.pt")
    assert harness.load_checkpoint(tmp_path / "x.pt")["a"] == [1, 2.0, "s", None, (True,)]


def test_shipped_checkpoints_are_plain():
    """The shipped n-body checkpoints load with weights_only=True and hold plain data only."""
    folder = Path(__file__).resolve().parents[1] / "examples" / "nbody" / "checkpoints"
    paths = sorted(folder.glob("*.pt"))
    assert [p.name for p in paths] == ["charged-cgenn.pt", "charged-gatr.pt", "gravity-gatr.pt"]
    for path in paths:
        harness.check_plain(harness.load_checkpoint(path))
