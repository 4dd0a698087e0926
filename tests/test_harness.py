"""The examples' training harness: progress output in a log file, import boundaries, the n-body bench net."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import torch

from examples import harness

ROOT = Path(__file__).resolve().parents[1]

# A tiny n-body run through the command line, with progress on (the default): stdout and stderr
# go to a file, as in `make demo > log`. Plain progress lines are forced after every step.
_SCRIPT = """
import sys
from examples import harness
from examples.nbody import simulate, train
from tests.test_nbody_train import fake_split

simulate.load_split = fake_split
harness.fit.__kwdefaults__["log_every_s"] = 0.0
train.main(["--model", "egnn", "--epochs", "2", "--batch-size", "8", "--time-budget", "0", "--threads", "1",
            "--model-arg", "hidden=8", "--model-arg", "num_layers=1", "--no-plots", "--run-dir", sys.argv[1]])
"""


def test_no_progress_frames_in_a_log_file(tmp_path):
    log = tmp_path / "out.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    with log.open("w") as fh:
        subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path / "run")], cwd=ROOT, env=env,
                       stdout=fh, stderr=subprocess.STDOUT, check=True, timeout=300)  # fmt: skip
    raw = log.read_bytes()  # bytes: reading text would turn every carriage return into a newline
    assert b"\r" not in raw and b"\x1b[" not in raw  # no tqdm frames, no cursor movement
    text = raw.decode()
    assert "epoch 1  step 3 of 6  loss" in text  # the plain progress lines instead
    assert "epoch 2  step 6  train" in text and "test MSE" in text  # the epoch lines and the table


def test_progress_bar_draws_on_a_terminal_only(monkeypatch):
    assert harness.progress_bar(range(3), "x").disable  # pytest captures stderr: not a terminal
    monkeypatch.setattr(harness, "_on_terminal", lambda: True)
    assert not harness.progress_bar(range(3), "x").disable
    assert harness.progress_bar(range(3), "x", enabled=False).disable


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
    return out


def test_trainers_import_no_private_names_from_one_another():
    for trainer in sorted((ROOT / "examples").glob("*/train.py")):
        own = f"examples.{trainer.parent.name}"
        for module, names in _imports(trainer):
            if module.startswith("examples.") and not module.startswith((own, "examples.harness")):
                raise AssertionError(f"{trainer.relative_to(ROOT)} imports {module}")
            if module.startswith("examples"):
                assert not [n for n in names if n.startswith("_")], (trainer, module, names)


def test_benchmarks_do_not_import_examples():
    for bench in sorted((ROOT / "benchmarks").glob("*.py")):
        for module, names in _imports(bench):
            assert module.split(".")[0] != "examples", f"{bench.name} imports {module}"
            assert "examples" not in names, f"{bench.name} imports examples"


def test_benchmark_nbody_net_is_the_full_preset_gatr(monkeypatch):
    """bench_nets builds the n-body full-preset GATr itself: the same sizes, the same parameters."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_nets

    from examples.nbody.models import build_model
    from examples.nbody.train import TrainConfig

    cfg = TrainConfig(task="charged", model="gatr", preset="full").resolved()
    spec = bench_nets.NBODY_FULL_GATR
    for name in ("hidden_mv_channels", "hidden_s_channels", "num_blocks", "num_heads", "pair_channels"):
        assert spec[name] == cfg.model_kwargs[name], name
    example = build_model("gatr", **cfg.model_kwargs).model  # inside ChargeSymmetric
    monkeypatch.setitem(bench_nets.SHAPE, "batch", 2)
    monkeypatch.setitem(bench_nets.SHAPE, "items", 5)
    net, _, (mv, s) = bench_nets._build("nbody", {})
    assert {k: v.shape for k, v in net.state_dict().items()} == {
        k: v.shape for k, v in example.net.state_dict().items()
    }
    out_mv, _ = net(mv, s)
    assert out_mv.shape == (2, 5, 1, 16) and torch.isfinite(out_mv).all()


def test_csv_and_atomic_checkpoint_helpers(tmp_path):
    harness.write_csv([{"epoch": 1, "val": 0.5}], tmp_path / "log.csv")
    assert (tmp_path / "log.csv").read_text().splitlines() == ["epoch,val", "1,0.5"]
    harness.save_atomic({"x": 1}, tmp_path / "a.pt")
    assert torch.load(tmp_path / "a.pt", weights_only=True) == {"x": 1}
    assert not (tmp_path / "a.pt.tmp").exists()
