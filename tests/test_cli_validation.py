"""The three trainers' command lines refuse bad options before anything runs.

Every case ends through ``parser.error``: exit code 2 and one line on stderr naming the
option, what it accepts and the value given. ``main(argv)`` runs in-process; a bad option
must stop it before any data generation or training (the data loaders are replaced by
functions that fail the test).
"""

from __future__ import annotations

import os

import pytest
import torch

from examples import harness
from examples.jets import simulate as jets_simulate
from examples.jets import train as jets_train
from examples.nbody import simulate as nbody_simulate
from examples.nbody import train as nbody_train
from examples.pde import simulate as pde_simulate
from examples.pde import train as pde_train

TRAINERS = {"nbody": nbody_train, "pde": pde_train, "jets": jets_train}

# (argv, words the error line must contain): the option, the accepted range, the value
COMMON = [
    (["--train-size", "-5"], ["--train-size", "an integer >= 1", "'-5'"]),
    (["--train-size", "0"], ["--train-size", "an integer >= 1", "'0'"]),
    (["--train-size", "1.5"], ["--train-size", "an integer >= 1", "'1.5'"]),
    (["--max-steps", "-1"], ["--max-steps", "an integer >= 1", "'-1'"]),
    (["--max-steps", "0"], ["--max-steps", "an integer >= 1", "'0'"]),
    (["--time-budget", "-10"], ["--time-budget", "a finite number >= 0", "'-10'"]),
    (["--time-budget", "nan"], ["--time-budget", "a finite number >= 0", "'nan'"]),
    (["--epochs", "0"], ["--epochs", "an integer >= 1", "'0'"]),
    (["--batch-size", "0"], ["--batch-size", "an integer >= 1", "'0'"]),
    (["--batch-size", "-3"], ["--batch-size", "an integer >= 1", "'-3'"]),
    (["--lr", "0"], ["--lr", "a finite number > 0", "'0'"]),
    (["--lr", "-0.001"], ["--lr", "a finite number > 0", "'-0.001'"]),
    (["--lr", "inf"], ["--lr", "a finite number > 0", "'inf'"]),
    (["--weight-decay", "-1"], ["--weight-decay", "a finite number >= 0", "'-1'"]),
    (["--seed", "-1"], ["--seed", "an integer in [0, ", "'-1'"]),
    (["--threads", "0"], ["--threads", "an integer >= 1", "'0'"]),
    (["--device", "tpu9"], ["--device", "expected auto, cpu, cuda, cuda:N or mps", "'tpu9'"]),
    (["--device", "xpu"], ["--device", "expected auto, cpu, cuda, cuda:N or mps", "'xpu'"]),
]
OWN = {
    "nbody": [
        (["--ema", "1"], ["--ema", "a finite number in [0, 1)", "'1'"]),
        (["--ema", "-0.1"], ["--ema", "a finite number in [0, 1)", "'-0.1'"]),
        (["--grad-clip", "-1"], ["--grad-clip", "a finite number >= 0", "'-1'"]),
    ],
    "pde": [
        (["--history", "0"], ["--history", "an integer in [1, 13]", "'0'"]),
        (["--history", "14"], ["--history", "an integer in [1, 13]", "'14'"]),
    ],
    "jets": [
        (["--constituents", "500"], ["--constituents", "an integer in [1, 50]", "'500'"]),
        (["--constituents", "0"], ["--constituents", "an integer in [1, 50]", "'0'"]),
        (["--val-size", "0"], ["--val-size", "an integer >= 1", "'0'"]),
        (["--test-size", "-2"], ["--test-size", "an integer >= 1", "'-2'"]),
    ],
}
CASES = [(t, argv, words) for t in sorted(TRAINERS) for argv, words in [*COMMON, *OWN[t]]]


@pytest.fixture(autouse=True)
def no_data(monkeypatch):
    """Validation comes first: any data loading or training fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the trainer went past its command-line checks")

    for module in (nbody_simulate, pde_simulate, jets_simulate):
        monkeypatch.setattr(module, "load_split", refuse)
    for module in TRAINERS.values():
        monkeypatch.setattr(module, "train", refuse)


def _exit(trainer: str, argv: list[str], capsys) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as excinfo:
        TRAINERS[trainer].main(argv)
    assert excinfo.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"python -m examples.{trainer}.train: error: argument "), err
    return err[-1]


@pytest.mark.parametrize(("trainer", "argv", "words"), CASES, ids=[f"{t}{' '.join(a)}" for t, a, _ in CASES])
def test_bad_numbers_are_refused(trainer, argv, words, capsys):
    line = _exit(trainer, argv, capsys)
    for word in words:
        assert word in line, (word, line)


@pytest.mark.parametrize("trainer", sorted(TRAINERS))
def test_accepted_boundary_values(trainer, monkeypatch):
    """The bounds themselves are accepted: the checks refuse exactly what is out of range."""
    argv = ["--train-size", "1", "--max-steps", "1", "--time-budget", "0", "--epochs", "1",
            "--batch-size", "1", "--lr", "1e-9", "--weight-decay", "0", "--seed", "0", "--threads", "1",
            "--device", "cpu"]  # fmt: skip
    own = {
        "nbody": ["--ema", "0", "--grad-clip", "0"],
        "pde": ["--history", "13"],
        "jets": ["--constituents", "50"],
    }
    cfg = TRAINERS[trainer].parse_args([*argv, *own[trainer]])[0]
    assert (cfg.train_size, cfg.max_steps, cfg.time_budget, cfg.epochs, cfg.batch_size) == (1, 1, 0.0, 1, 1)
    assert (cfg.lr, cfg.weight_decay, cfg.seed, cfg.threads, cfg.device) == (1e-9, 0.0, 0, 1, "cpu")


@pytest.mark.parametrize("trainer", sorted(TRAINERS))
@pytest.mark.parametrize("option", ["--run-dir", "--cache-dir"])
def test_a_directory_that_is_a_file_is_refused(trainer, option, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    line = _exit(trainer, [option, str(afile)], capsys)
    expected = f"argument {option}: expected a writable directory, got '{afile}', "
    assert expected + "which exists and is not a directory" in line
    line = _exit(trainer, [option, str(afile / "sub" / "dir")], capsys)
    assert f"which cannot be created: '{afile}' is not a directory" in line


@pytest.mark.parametrize("trainer", sorted(TRAINERS))
def test_an_unwritable_directory_is_refused(trainer, tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if str(p) == str(locked) else real_access(p, mode)
    )
    line = _exit(trainer, ["--run-dir", str(locked)], capsys)
    assert "argument --run-dir: expected a writable directory" in line and "cannot write to" in line
    line = _exit(trainer, ["--cache-dir", str(locked / "new")], capsys)
    assert f"which cannot be created: '{locked}' is not writable" in line


def test_new_directories_under_a_writable_one_are_accepted(tmp_path):
    cfg, _ = nbody_train.parse_args(["--run-dir", str(tmp_path / "a" / "b"), "--cache-dir", str(tmp_path)])
    assert cfg.run_dir == str(tmp_path / "a" / "b") and not (tmp_path / "a").exists()  # checked, not made


@pytest.mark.parametrize("trainer", sorted(TRAINERS))
def test_unavailable_devices_are_refused(trainer, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    line = _exit(trainer, ["--device", "cuda"], capsys)
    assert "argument --device: expected auto or cpu: CUDA is not available here, got 'cuda'" in line
    assert "'cuda:1'" in _exit(trainer, ["--device", "cuda:1"], capsys)
    line = _exit(trainer, ["--device", "mps"], capsys)
    assert "argument --device: expected auto or cpu: MPS is not available here, got 'mps'" in line
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    line = _exit(trainer, ["--device", "cuda:2"], capsys)
    assert "expected cuda or cuda:0 to cuda:1 (2 GPU(s) here), got 'cuda:2'" in line
    assert TRAINERS[trainer].parse_args(["--device", "cuda:1"])[0].device == "cuda:1"


def test_option_types_are_shared_helpers():
    """One set of checks: the factories of the harness, not a copy per trainer."""
    assert harness.int_option(1)("3") == 3 and harness.float_option(0.0, 1.0, high_open=True)("0.5") == 0.5
    for module in TRAINERS.values():
        source = open(module.__file__).read()
        assert "type=int," not in source and "type=float," not in source, module.__name__


@pytest.mark.parametrize("trainer", sorted(TRAINERS))
@pytest.mark.parametrize("field", ["train_size", "max_steps"])
def test_configs_built_in_python_are_checked_too(trainer, field):
    """``TrainConfig(train_size=0)`` (no command line) is a ValueError, not a ZeroDivisionError later."""
    config = TRAINERS[trainer].TrainConfig(**{field: 0})
    with pytest.raises(ValueError, match=f"{field} must be a positive integer, got 0"):
        config.resolved()
    TRAINERS[trainer].TrainConfig(**{field: 1}).resolved()
