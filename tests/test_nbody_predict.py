"""``examples.nbody.predict``: inputs are checked against what the checkpoint's model was trained on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from examples import harness
from examples.nbody import predict as predict_mod
from examples.nbody.models import build_model

KWARGS = {
    "charged": {"hidden": 8, "num_layers": 1, "time_scale": 1.0, "attr_features": "raw"},
    "gravity": {"hidden": 8, "num_layers": 1, "time_scale": 0.1, "attr_features": "log"},
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A tiny EGNN ``best.pt`` per task, in the format of the trainer."""
    out = {}
    for task, kwargs in KWARGS.items():
        torch.manual_seed(0)
        path = tmp_path_factory.mktemp(task) / "best.pt"
        harness.save_atomic(
            {"format": 1, "model_name": "egnn", "model_kwargs": kwargs, "task": task,
             "model": build_model("egnn", **kwargs).state_dict()},
            path,
        )  # fmt: skip
        out[task] = path
    return out


def _charged(b=2, n=5):
    rng = np.random.default_rng(0)
    return rng.normal(size=(b, n, 3)), rng.normal(size=(b, n, 3)), rng.choice([-1.0, 1.0], size=(b, n))


def test_valid_inputs_predict(checkpoints):
    loc, vel, q = _charged()
    pred = predict_mod.predict(checkpoints["charged"], loc, vel, q)
    assert pred.shape == (2, 5, 3) and pred.dtype == np.float64 and np.isfinite(pred).all()
    # torch tensors, float32 arrays and nested lists are the same input
    as_torch = predict_mod.predict(checkpoints["charged"], torch.tensor(loc), torch.tensor(vel), q.tolist())
    np.testing.assert_allclose(as_torch, pred, rtol=0, atol=0)
    # charges within atol of +-1 are taken as +-1
    near = predict_mod.predict(checkpoints["charged"], loc, vel, q * (1 + 1e-8))
    np.testing.assert_allclose(near, pred, rtol=0, atol=0)
    assert predict_mod.predict(checkpoints["charged"], loc[:0], vel[:0], q[:0]).shape == (0, 5, 3)


BAD_CHARGED = [
    (
        "6 particles",
        lambda x, v, q: (np.zeros((2, 6, 3)), np.zeros((2, 6, 3)), np.ones((2, 6))),
        "loc must have shape (B, N, 3): 3-D positions of N = 5 particles (the charged model's systems), "
        "got shape (2, 6, 3)",
    ),
    (
        "2-D positions",
        lambda x, v, q: (x[..., :2], v[..., :2], q),
        "loc must have shape (B, N, 3): 3-D positions of N = 5 particles",
    ),
    ("unbatched", lambda x, v, q: (x[0], v[0], q[0]), "got shape (5, 3)"),
    (
        "vel 2-D",
        lambda x, v, q: (x, v[..., :2], q),
        "vel must have the shape of loc (2, 5, 3) (3-D velocities), got (2, 5, 2)",
    ),
    ("batch mismatch", lambda x, v, q: (x, v[:1], q), "vel must have the shape of loc (2, 5, 3)"),
    (
        "charges batch",
        lambda x, v, q: (x, v, q[:1]),
        "charges must have shape (2, 5) (B, N) like loc, got (1, 5)",
    ),
    (
        "charge 5.0",
        lambda x, v, q: (x, v, np.where(np.arange(5) == 0, 5.0, q)),
        "charges must be -1 or +1 (within atol=1e-06), got 5.0 (2 entries off)",
    ),
    (
        "charge 0",
        lambda x, v, q: (x, v, np.zeros_like(q)),
        "charges must be -1 or +1 (within atol=1e-06), got 0.0",
    ),
    ("charge 1.001", lambda x, v, q: (x, v, q * 1.001), "charges must be -1 or +1 (within atol=1e-06)"),
    ("NaN position", lambda x, v, q: (np.where(x > 1, np.nan, x), v, q), "loc must be finite, got"),
    ("inf velocity", lambda x, v, q: (x, v + np.inf, q), "vel must be finite, got 30 NaN or inf entries"),
    ("strings", lambda x, v, q: (x, v, np.full(q.shape, "a")), "charges must be a real numeric array"),
    (
        "complex",
        lambda x, v, q: (x + 0j, v, q),
        "loc must be a real numeric array (numpy array, torch tensor",
    ),
    ("objects", lambda x, v, q: ([[None] * 3] * 5, v, q), "loc must be a real numeric array"),
]


@pytest.mark.parametrize(("case", "change", "message"), BAD_CHARGED, ids=[c[0] for c in BAD_CHARGED])
def test_bad_charged_inputs_are_refused(checkpoints, case, change, message):
    with pytest.raises(ValueError) as excinfo:
        predict_mod.predict(checkpoints["charged"], *change(*_charged()))
    assert message in str(excinfo.value)


def test_charge_tolerance_is_an_argument(checkpoints):
    loc, vel, q = _charged()
    with pytest.raises(ValueError, match=r"within atol=1e-06\), got 1.001"):
        predict_mod.predict(checkpoints["charged"], loc, vel, np.abs(q) * 1.001)
    loose = predict_mod.predict(checkpoints["charged"], loc, vel, q * 1.001, atol=1e-2)
    np.testing.assert_allclose(
        loose, predict_mod.predict(checkpoints["charged"], loc, vel, q), rtol=0, atol=0
    )


def test_gravity_inputs(checkpoints):
    rng = np.random.default_rng(1)
    loc, vel, m = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4, 3)), rng.uniform(0.01, 10, size=(2, 4))
    assert predict_mod.predict_gravity(checkpoints["gravity"], loc, vel, m).shape == (2, 4, 3)
    # any number of bodies (the planets5 split: 6), but at least 2
    six = predict_mod.predict_gravity(
        checkpoints["gravity"], np.zeros((1, 6, 3)), np.ones((1, 6, 3)), np.ones((1, 6))
    )
    assert six.shape == (1, 6, 3)
    with pytest.raises(ValueError, match=r"3-D positions of N >= 2 bodies .* got shape \(2, 1, 3\)"):
        predict_mod.predict_gravity(checkpoints["gravity"], loc[:, :1], vel[:, :1], m[:, :1])
    with pytest.raises(ValueError, match=r"masses must be positive, got -1.0 \(1 entries\)"):
        predict_mod.predict_gravity(checkpoints["gravity"], loc, vel, np.where(m == m[0, 3], -1.0, m))
    with pytest.raises(ValueError, match="masses must be finite"):
        predict_mod.predict_gravity(checkpoints["gravity"], loc, vel, m + np.nan)


def test_task_mismatch_is_refused(checkpoints):
    loc, vel, q = _charged()
    with pytest.raises(ValueError, match="trained on the 'charged' task, not 'gravity'"):
        predict_mod.predict_gravity(checkpoints["charged"], loc, vel, np.abs(q))


def test_command_line_checks(checkpoints, tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("data was loaded")

    monkeypatch.setattr(predict_mod.simulate, "load_split", refuse)
    afile = tmp_path / "afile"
    afile.write_text("")
    cases = [
        ([str(tmp_path / "missing.pt")], "argument checkpoint: expected a checkpoint file, got"),
        ([str(checkpoints["charged"]), "--split", "planets5"],
         "argument --split: expected one of ('train', 'val', 'test') (charged task), got 'planets5'"),
        ([str(checkpoints["charged"]), "--cache-dir", str(afile)],
         f"argument --cache-dir: expected a writable directory, got '{afile}', which exists and is not"),
    ]  # fmt: skip
    for argv, message in cases:
        with pytest.raises(SystemExit) as excinfo:
            predict_mod.main(argv)
        assert excinfo.value.code == 2
        assert message in capsys.readouterr().err
