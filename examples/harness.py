"""The training harness the example trainers share: devices, DDP, resume, checkpoints, logs, the loop.

Each trainer (``examples/{nbody,jets,pde}/train.py``) keeps its data, models, metrics,
presets and command line; everything else lives here, once:

* :class:`RunConfig`: the options every trainer has (each ``TrainConfig`` subclasses it);
  :func:`from_preset` fills the ``None`` ones from a preset, :func:`check_positive` checks.
* :class:`Run` (:meth:`Run.start`): the process group (``torchrun`` sets ``WORLD_SIZE``:
  gloo on a CPU, nccl on a GPU), the device (``--device auto|cpu|cuda|cuda:1``), CPU threads,
  the run directory and its ``train.log``; :meth:`Run.resume` reads ``last.pt`` back and
  :meth:`Run.main_first` lets the main process build a dataset cache before the others read it.
* :func:`fit`: the epoch loop. Each epoch shuffles the training set (seeded by seed and
  epoch, sharded over the processes), steps the optimiser with the learning-rate schedule
  :func:`lr_factor` (which follows steps or the time budget, whichever runs out first),
  validates, appends a row to ``log.csv`` (:func:`write_csv`), writes ``last.pt``
  (everything needed to resume) and, when the monitored metric improved, ``best.pt`` (the
  model, its config and its score); both atomically (:func:`save_atomic`). Optional: a
  weight average (:class:`EMA`) that is what is validated and saved, and ``torch.compile``.
* :func:`progress_bar`: a tqdm bar on a terminal only; where stderr is a file or a pipe
  (``make demo > log``) :func:`fit` writes a plain log line every ``log_every_s`` seconds
  instead of carriage-return frames.
* The command line: :func:`add_model_arguments`, :func:`add_run_arguments`,
  :func:`add_schedule_arguments`, :func:`add_runtime_arguments` and
  :func:`add_output_arguments` add the options every trainer has, :func:`run_options` and
  :func:`selected_models` read them; :func:`run_command` runs one model or several
  (:func:`train_models`, :func:`write_results`: one table) and ends the process group
  (:func:`process_group`); :func:`is_main_process` says whether this process writes shared
  outputs.
* Checkpoints hold plain data only (tensors, numbers, strings, ``None`` and lists, tuples
  and dicts of them): :func:`save_atomic` refuses anything else and :func:`load_checkpoint`
  reads them with ``torch.load(weights_only=True)``, never unpickling code;
  :func:`convert_checkpoint` (``python -m examples.harness convert-checkpoint PATH``)
  rewrites a trusted old checkpoint in that form.
* Command-line checks: the ``type=`` factories :func:`int_option` and :func:`float_option`
  range-check every number; :func:`validate_common` checks ``--run-dir``, ``--cache-dir`` and
  ``--device`` before anything runs; all report through ``parser.error`` (exit code 2).
* Plots: :func:`pyplot` (matplotlib without a display) and :func:`plot_log` (the curves of
  a ``log.csv`` per epoch; each example's ``plot_losses`` names its columns).

No precision option: every trainer runs float32, as before this module existed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import logging
import math
import os
import pickle
import re
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = [
    "CHECKPOINT_FORMAT",
    "EMA",
    "SCHEDULES",
    "Fitted",
    "Panel",
    "Run",
    "RunConfig",
    "UnsafeCheckpointError",
    "add_model_arguments",
    "add_output_arguments",
    "add_run_arguments",
    "add_runtime_arguments",
    "add_schedule_arguments",
    "check_plain",
    "check_positive",
    "convert_checkpoint",
    "fit",
    "float_option",
    "from_preset",
    "hardware",
    "int_option",
    "is_main_process",
    "load_best",
    "load_checkpoint",
    "lr_factor",
    "model_arguments",
    "pick_device",
    "plot_log",
    "process_group",
    "progress_bar",
    "pyplot",
    "run_command",
    "run_options",
    "save_atomic",
    "selected_models",
    "setup_logging",
    "train_models",
    "unwrap",
    "validate_common",
    "write_csv",
    "write_results",
]

#: The ``"format"`` entry of every ``best.pt`` and ``last.pt``.
CHECKPOINT_FORMAT = 1

T = TypeVar("T")


# -- processes and devices ------------------------------------------------------------------------------
@dataclass
class Run:
    """One training process: its rank among ``world`` processes, its device, its run directory and log.

    Build it with :meth:`start`. ``main`` (rank 0) writes the checkpoints, logs and plots.
    """

    run_dir: Path
    device: torch.device
    log: logging.Logger
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this is the process that writes the run's files (rank 0)."""
        return self.rank == 0

    @property
    def last_path(self) -> Path:
        """``run_dir/last.pt``: everything needed to resume."""
        return self.run_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        """``run_dir/best.pt``: the model with the best validation score, its config and score."""
        return self.run_dir / "best.pt"

    @classmethod
    def start(cls, run_dir: str | os.PathLike, device: str, threads: int | None, log: logging.Logger) -> Run:
        """Join the process group (when ``torchrun`` started several), pick the device, open the log.

        Parameters
        ----------
        run_dir : path
            Created by the main process; gets ``train.log``.
        device : str
            ``"auto"`` (this process's GPU when there is one, else the CPU) or a torch device.
        threads : int, optional
            ``torch.set_num_threads`` (``None``: torch's default).
        log : logging.Logger
            The trainer's logger: it writes to stdout and ``train.log`` on the main process only.
        """
        kind = "cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
        rank, world, local_rank = 0, int(os.environ.get("WORLD_SIZE", "1")), 0
        if world > 1:
            if not dist.is_initialized():
                dist.init_process_group(backend="nccl" if kind == "cuda" else "gloo")
            rank, world = dist.get_rank(), dist.get_world_size()
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        else:
            world = 1
        run = cls(Path(run_dir), pick_device(device, local_rank), log, rank, world, local_rank)
        if threads is not None:
            torch.set_num_threads(threads)
        if run.main:
            run.run_dir.mkdir(parents=True, exist_ok=True)
        run.barrier()
        setup_logging(log, run.run_dir, run.main)
        return run

    def barrier(self) -> None:
        """Wait for every process (nothing to wait for in a single process)."""
        if self.world > 1:
            dist.barrier()

    def main_first(self, load: Callable[[], T]) -> T:
        """``load()`` on the main process, then on the others (a dataset cache is built once)."""
        result: T | None = None
        for turn in (True, False):
            if self.main == turn:
                result = load()
            self.barrier()
        return result  # type: ignore[return-value]

    def resume(
        self,
        config: T,
        *,
        resume: bool,
        same: Sequence[str],
        keep: Sequence[str] = ("run_dir", "progress", "plots"),
    ) -> tuple[T, dict[str, Any] | None]:
        """The config and the state to continue from: ``last.pt``'s when resuming and it exists.

        The stored config wins, except for the fields ``keep`` (taken from ``config``); the
        fields ``same`` (task, model, preset) must agree, else :class:`ValueError`.
        """
        if not resume:
            return config, None
        if not self.last_path.exists():
            self.log.info("--resume: no %s yet, starting a fresh run", self.last_path)
            return config, None
        state = load_checkpoint(self.last_path)
        stored = type(config)(**state["config"])
        for name in same:
            if getattr(stored, name) != getattr(config, name):
                raise ValueError(
                    f"--resume: {self.last_path} is a run with {name}={getattr(stored, name)!r}, "
                    f"but this command asks for {name}={getattr(config, name)!r}"
                )
        stored = dataclasses.replace(stored, **{name: getattr(config, name) for name in keep})  # type: ignore[type-var]
        self.log.info("resuming %s from epoch %d (step %d)", self.run_dir, state["epoch"], state["step"])
        return stored, state


def pick_device(choice: str, local_rank: int = 0) -> torch.device:
    """``"auto"``: GPU ``local_rank`` when CUDA is available, else the CPU; else ``torch.device(choice)``."""
    if choice == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    return torch.device(choice)


def hardware(device: torch.device) -> str:
    """What ran the job, for results tables: the GPU's name or ``"CPU, N threads"``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} threads"


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a :class:`~torch.nn.parallel.DistributedDataParallel` wrapper (or ``model``)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def is_main_process() -> bool:
    """Rank 0 of the process group, or the only process."""
    return not dist.is_initialized() or dist.get_rank() == 0


@contextlib.contextmanager
def process_group() -> Iterator[None]:
    """Run a trainer's command line; destroy the process group (if any) on the way out."""
    try:
        yield
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


# -- files and logs -------------------------------------------------------------------------------------
def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` through a temporary file: an interruption leaves the old file whole.

    ``obj`` must be plain data (:func:`check_plain`), so that :func:`load_checkpoint` reads it back.
    """
    check_plain(obj)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


#: Leaf types a checkpoint may hold (besides tensors), what ``torch.load(weights_only=True)`` reads.
_PLAIN = (bool, int, float, str, type(None))


def check_plain(obj: Any, where: str = "checkpoint") -> None:
    """:class:`TypeError` unless ``obj`` is plain data: tensors, numbers, strings, ``None``,
    and lists, tuples and dicts (string or integer keys; ``OrderedDict`` state dicts) of them.

    That is what every ``best.pt`` / ``last.pt`` holds: no numpy arrays, dataclasses,
    ``argparse.Namespace`` or other objects, so :func:`load_checkpoint` never unpickles code.
    """
    if isinstance(obj, Tensor) or type(obj) in _PLAIN:
        return
    if type(obj) in (list, tuple):
        for i, item in enumerate(obj):
            check_plain(item, f"{where}[{i}]")
        return
    if type(obj) in (dict, OrderedDict):  # state dicts are OrderedDicts
        for key, value in obj.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where}: expected str or int keys, got {type(key).__name__} key {key!r}")
            check_plain(value, f"{where}[{key!r}]")
        return
    raise TypeError(
        f"{where}: expected tensors, numbers, strings, None, lists, tuples or dicts, "
        f"got {type(obj).__module__}.{type(obj).__qualname__}"
    )


class UnsafeCheckpointError(ValueError):
    """A file that ``torch.load(weights_only=True)`` refuses: it would run code to unpickle."""


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's dictionary, read with ``torch.load(weights_only=True)`` onto the CPU.

    Raises
    ------
    FileNotFoundError
        Nothing at ``path``.
    UnsafeCheckpointError
        (a :class:`ValueError`) The file holds objects other than plain data (an old
        checkpoint with numpy or config objects, or a crafted pickle): nothing in it was run.
        A trusted old checkpoint converts once with ``python -m examples.harness
        convert-checkpoint PATH`` (:func:`convert_checkpoint`).
    ValueError
        The file holds something other than a dictionary.
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise FileNotFoundError(f"no checkpoint file at {name}")
    try:
        state = torch.load(name, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        got = f"a reference to {found.group(1)}" if found else "other objects"
        raise UnsafeCheckpointError(
            f"{name} is not a safe gatorch checkpoint: expected plain tensors, numbers, strings, lists "
            f"and dicts (torch.load weights_only=True), got {got}. Nothing "
            f"in it was run. If you trust the file (an old gatorch checkpoint), convert it once with "
            f"`python -m examples.harness convert-checkpoint {name}`"
        ) from None
    if not isinstance(state, dict):
        raise ValueError(f"{name}: expected a checkpoint dictionary, got {type(state).__name__}")
    return state


def _to_plain(obj: Any) -> Any:
    """``obj`` as plain data: numpy arrays become tensors, numpy scalars numbers, dataclasses and
    namespaces dicts, sets and other sequences lists; anything else is a :class:`TypeError`."""
    if isinstance(obj, Tensor) or type(obj) in _PLAIN:
        return obj
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj)) if obj.dtype != object else _to_plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    for base in _PLAIN[:4]:  # subclasses (IntEnum, ...) as the base type
        if isinstance(obj, base):
            return base(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _to_plain(dataclasses.asdict(obj))
    if isinstance(obj, argparse.Namespace):
        return _to_plain(vars(obj))
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, OrderedDict):  # a state dict: keep its type and version metadata
        plain = OrderedDict((k, _to_plain(v)) for k, v in obj.items())
        if hasattr(obj, "_metadata"):
            plain._metadata = _to_plain(obj._metadata)  # type: ignore[attr-defined]
        return plain
    if isinstance(obj, Mapping):
        return {(k if type(k) in (str, int) else str(k)): _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(_to_plain(v) for v in obj)
    if isinstance(obj, (list, set, frozenset)):
        return [_to_plain(v) for v in obj]
    raise TypeError(f"convert_checkpoint: no plain form for {type(obj).__module__}.{type(obj).__qualname__}")


def convert_checkpoint(path: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """Rewrite a **trusted** old checkpoint as plain data that :func:`load_checkpoint` reads.

    Loads ``path`` with ``torch.load(weights_only=False)``, which runs whatever the file's
    pickle says: only for files you made or trust. numpy arrays become tensors, numpy
    scalars numbers, dataclasses and ``argparse.Namespace`` dicts; tensors (the weights) are
    kept as they are. Writes ``output`` (default: ``path`` itself, the original kept as
    ``path.orig``) and returns its path.
    """
    src = Path(path)
    state = torch.load(src, map_location="cpu", weights_only=False)  # trusted by the caller
    plain = _to_plain(state)
    out = Path(output) if output is not None else src
    if out == src:
        os.replace(src, src.with_name(src.name + ".orig"))
    save_atomic(plain, out)
    return out


def write_csv(history: Sequence[Mapping[str, Any]], path: Path) -> None:
    """The per-epoch rows as a CSV (columns: the first row's keys), replaced atomically."""
    if not history:
        return
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)


def load_best(model: nn.Module, run_dir: Path) -> None:
    """Load ``run_dir/best.pt``'s weights into ``model`` when it exists."""
    best_path = run_dir / "best.pt"
    if best_path.exists():
        model.load_state_dict(load_checkpoint(best_path)["model"])


def setup_logging(log: logging.Logger, run_dir: Path, main: bool) -> None:
    """``log`` at INFO to stdout and ``run_dir/train.log`` on the main process, silent on the others."""
    log.setLevel(logging.INFO)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    if not main:
        log.addHandler(logging.NullHandler())
        return
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    for handler in (logging.StreamHandler(sys.stdout), logging.FileHandler(run_dir / "train.log")):
        handler.setFormatter(fmt)
        log.addHandler(handler)


def _on_terminal() -> bool:
    return sys.stderr.isatty()  # where tqdm draws


def progress_bar(iterable: Iterable[T], desc: str, enabled: bool = True) -> Any:
    """A tqdm bar over ``iterable``, drawn only when ``enabled`` and stderr is a terminal.

    A log file or a pipe gets no carriage-return frames; :func:`fit` logs plain lines there.
    """
    from tqdm import tqdm

    return tqdm(
        iterable, desc=desc, disable=not (enabled and _on_terminal()), leave=False, dynamic_ncols=True
    )


# -- optimisation ---------------------------------------------------------------------------------------
#: Learning-rate schedules of :func:`lr_factor`.
SCHEDULES = ("cosine", "cgenn")


def lr_factor(progress: float, step: int, warmup: int, schedule: str = "cosine", lr: float = 1.0) -> float:
    """The learning rate over ``lr`` at ``progress`` in [0, 1] (``step``: optimiser steps so far).

    ``"cosine"``: linear warm-up over ``warmup`` steps, then cosine decay to 1% over the run.
    ``"cgenn"``: CGENN's ``CosineAnnealingLR``: a cosine warm-up from 1e-7 over the first
    1/64 of the run, the full rate, and a cosine decay to 1e-7 over the last quarter.
    """
    p = min(1.0, max(0.0, progress))
    if schedule == "cgenn":
        floor = min(1.0, 1e-7 / lr)  # CGENN's eta_min, as a fraction of the rate
        warm_end, decay_start = 1.0 / 64.0, 0.75
        if p < warm_end:
            return floor + (1.0 - floor) * 0.5 * (1.0 - math.cos(math.pi * p / warm_end))
        if p < decay_start:
            return 1.0
        return floor + (1.0 - floor) * 0.5 * (
            1.0 + math.cos(math.pi * (p - decay_start) / (1.0 - decay_start))
        )
    warm = min(1.0, (step + 1) / max(1, warmup))
    return warm * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * p)))


class EMA:
    """Exponential moving average of a model's floating-point state (parameters and buffers).

    The decay warms up as ``min(decay, (1 + t) / (10 + t))`` after ``t`` updates, so the
    average forgets the random initialisation within the first few hundred steps.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay, self.updates = decay, 0
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One step of the average towards ``model``'s current state."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in model.state_dict().items():
            if k in self.state:
                self.state[k].lerp_(v, 1.0 - decay)

    def averaged(self, model: nn.Module) -> dict[str, Tensor]:
        """``model``'s state dict with the averaged entries in place of the live ones."""
        return {k: self.state.get(k, v) for k, v in model.state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        """What ``last.pt`` stores to resume the average."""
        return {"updates": self.updates, "state": self.state}

    def load_state_dict(self, saved: dict[str, Any], device: torch.device) -> None:
        """Restore :meth:`state_dict`'s output, on ``device``."""
        self.updates = int(saved["updates"])
        self.state = {k: v.to(device) for k, v in saved["state"].items()}


@dataclass
class RunConfig:
    """The options every trainer has; its ``TrainConfig`` (a subclass) adds its own and its defaults.

    ``None`` fields take the preset's value (:func:`from_preset`); ``model_kwargs`` update
    the preset's model size. ``train_size``: the first examples of the training split
    (``None``: all); ``time_budget``: seconds of training (``0`` or ``None``: no limit);
    ``max_steps``: stop after this many optimiser steps (smoke tests); ``grad_clip``: the
    gradient-norm clip (``0``: off); ``plots`` / ``progress``: write PNG plots / draw progress
    bars (on a terminal only, see :func:`progress_bar`).
    """

    model: str = ""
    preset: str = "quick"
    run_dir: str | None = None
    cache_dir: str | None = None
    epochs: int | None = None
    time_budget: float | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    warmup_steps: int | None = None
    grad_clip: float | None = 1.0
    train_size: int | None = None
    eval_batch_size: int = 500
    seed: int = 0
    max_steps: int | None = None
    device: str = "auto"
    threads: int | None = None
    plots: bool = True
    progress: bool = True
    model_kwargs: dict[str, Any] = field(default_factory=dict)


C = TypeVar("C", bound=RunConfig)


def from_preset(
    config: C,
    presets: Mapping[str, Mapping[str, Any]],
    models: Iterable[str],
    *,
    fields: Sequence[str],
    own: Sequence[str] = ("lr", "time_budget"),
    value: Callable[[Any], Any] = lambda v: v,
) -> tuple[C, dict[str, Any], dict[str, Any]]:
    """Check the model and preset names; a copy of ``config`` with the preset's values filled in.

    Every name in ``fields`` that is ``None`` in ``config`` takes the model's own entry in
    the preset (for the names in ``own``, e.g. a per-model learning rate) or else the
    preset's. ``value`` maps every preset value first (e.g. picks a per-task entry).

    Returns
    -------
    (config, model_preset, model_own)
        The copy (its ``model_kwargs`` a copy too), the model's preset entries that are
        model options, and those named in ``own``.
    """
    names = list(models)
    if config.model not in names:
        raise ValueError(f"unknown model {config.model!r}; expected one of {sorted(names)}")
    if config.preset not in presets:
        raise ValueError(f"unknown preset {config.preset!r}; expected one of {sorted(presets)}")
    preset = presets[config.preset]
    if config.model not in preset["models"]:
        raise ValueError(
            f"preset {config.preset!r} has no model {config.model!r}; it defines {sorted(preset['models'])}"
        )
    cfg = dataclasses.replace(config, model_kwargs=dict(config.model_kwargs))  # type: ignore[type-var]
    model_preset = {name: value(v) for name, v in preset["models"][config.model].items()}
    model_own = {name: model_preset.pop(name) for name in own if name in model_preset}
    for name in fields:
        if getattr(cfg, name) is None:
            setattr(cfg, name, value(model_own.get(name, preset[name])))
    return cfg, model_preset, model_own


def check_positive(
    config: RunConfig, names: Sequence[str], optional: Sequence[str] = ("train_size", "max_steps")
) -> None:
    """:class:`ValueError` unless every field in ``names`` is a positive integer, and every
    field in ``optional`` is one or ``None``."""
    for name in [*names, *(n for n in optional if getattr(config, n) is not None)]:
        if not isinstance(getattr(config, name), int) or getattr(config, name) < 1:
            raise ValueError(f"{name} must be a positive integer, got {getattr(config, name)!r}")


@dataclass
class Fitted:
    """What :func:`fit` returns: the trained module (unwrapped), the epochs run and the training seconds."""

    model: nn.Module
    epochs: int
    elapsed: float

    def summary(self, config: RunConfig, parameters: int, *, seed: bool = True) -> dict[str, Any]:
        """The head of a run's ``results.json``: model, preset, (seed,) parameters, epochs, wall time."""
        head = {"model": config.model, "preset": config.preset, "seed": config.seed, "parameters": parameters}
        if not seed:
            del head["seed"]
        return {**head, "epochs": self.epochs, "wall_time_s": round(self.elapsed, 1)}


def fit(
    run: Run,
    config: RunConfig,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    n_train: int,
    loss: Callable[[nn.Module, Tensor, int, int], Tensor],
    validate: Callable[[nn.Module], dict[str, float]],
    monitor: str,
    maximize: bool = False,
    state: dict[str, Any] | None = None,
    schedule: str = "cosine",
    ema: float | None = None,
    make_eval_model: Callable[[], nn.Module] | None = None,
    compile: bool = False,
    best_extra: Mapping[str, Any] | None = None,
    desc: str = "",
    loss_format: str = ".5f",
    val_format: str = "",
    log_every_s: float = 30.0,
) -> Fitted:
    """Train ``model`` epoch by epoch, with validation, checkpoints, the CSV log and the progress bar.

    Parameters
    ----------
    run : Run
    config : RunConfig
        The trainer's resolved config (stored in the checkpoints with :func:`dataclasses.asdict`).
    model : nn.Module
        Built and on ``run.device``; ``optimizer`` steps its parameters. Wrapped in DDP here.
    n_train : int
        Training examples; each epoch visits a permutation of ``range(n_train)``.
    loss : callable
        ``loss(forward, idx, epoch, batch)``: the training loss of the examples ``idx`` (a
        long tensor on the device) through ``forward`` (the wrapped, maybe compiled, model);
        ``batch`` counts the batches of the epoch.
    validate : callable
        ``validate(model) -> {column: value}``: the validation metrics of the model that is
        scored (the weight average when ``ema``), written as CSV columns in that order.
    monitor, maximize : str, bool
        The column of ``validate``'s output that decides ``best.pt`` and whether higher is better;
        ``log.csv`` also gets ``best_<monitor>``, and ``best.pt`` the entry ``monitor``.
    state : dict, optional
        ``last.pt``'s content, to continue from (see :meth:`Run.resume`).
    schedule : str
        :func:`lr_factor`'s schedule.
    ema : float, optional
        Decay of a weight average (:class:`EMA`) that is validated and saved as ``best.pt``;
        ``0``: off. ``None``: the trainer has no weight average (``last.pt`` gets no ``"ema"``).
    make_eval_model : callable, optional
        A fresh model of the same architecture on the device, to hold the average (with ``ema``).
    compile : bool
        Train through ``torch.compile`` (``fullgraph`` in one process).
    best_extra : mapping, optional
        More entries of ``best.pt`` (after ``"model"``).
    desc, loss_format, val_format : str
        The bar's prefix (``"{desc}epoch N"``), the format of the training loss, and the
        validation part of each epoch's log line (``str.format`` of the CSV row).
    log_every_s : float
        Where no bar is drawn (stderr not a terminal), a plain progress line at most this often.
    """
    log = run.log
    epoch, step, elapsed, history = 0, 0, 0.0, []
    best_val = -math.inf if maximize else math.inf
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, step, elapsed = state["epoch"], state["step"], state["elapsed"]
        best_val, history = state["best_val"], state["history"]
        torch.set_rng_state(state["torch_rng"])
    average = EMA(model, ema) if ema else None
    if average is not None and state is not None:
        average.load_state_dict(state["ema"], run.device)
    # the model that is validated, checkpointed and tested: the EMA weights when on
    eval_model = make_eval_model() if average is not None and make_eval_model is not None else None
    if run.world > 1:
        model = nn.parallel.DistributedDataParallel(model)
    inner = unwrap(model)
    # the training forward, compiled on request (fullgraph for one process; DDP splits the graph
    # at its gradient buckets); checkpoints, EMA and evaluation use the plain module
    forward: nn.Module = model
    if compile:
        log.info("compiling the training step (torch.compile; the first step takes minutes on a CPU)")
        forward = torch.compile(model, fullgraph=run.world == 1)  # type: ignore[assignment]

    batch_size, lr, epochs = int(config.batch_size or 1), float(config.lr or 0.0), int(config.epochs or 1)
    steps_per_epoch = math.ceil(math.ceil(n_train / run.world) / batch_size)
    total_steps = epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    budget = config.time_budget

    def progress_of() -> float:
        p = step / total_steps
        if budget:
            p = max(p, elapsed / budget)
        return p

    show = config.progress and run.main
    plain = show and not _on_terminal()  # no bar: plain lines say how far the epoch got
    model.train()
    done = progress_of() >= 1.0
    while not done and epoch < epochs:
        t0 = last_line = time.perf_counter()
        order = np.random.default_rng([config.seed, epoch]).permutation(n_train)[run.rank :: run.world]
        order_t = torch.as_tensor(order, device=run.device)
        losses = []
        bar = progress_bar(range(steps_per_epoch), f"{desc}epoch {epoch + 1}", show)
        for b in bar:
            idx = order_t[b * batch_size : (b + 1) * batch_size]
            if idx.numel() == 0:  # ranks with a short shard still step, to keep DDP in sync
                idx = order_t[:batch_size]
            factor = lr_factor(progress_of(), step, int(config.warmup_steps or 0), schedule, lr)
            for group in optimizer.param_groups:
                group["lr"] = lr * factor
            value = loss(forward, idx, epoch, b)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            if average is not None:
                average.update(inner)
            step += 1
            losses.append(value.item())
            bar.set_postfix(loss=f"{losses[-1]:{loss_format}}", lr=f"{optimizer.param_groups[0]['lr']:.1e}")
            now = time.perf_counter()
            if plain and now - last_line >= log_every_s:
                last_line = now
                log.info("epoch %d  step %d of %d  loss %s  (%.0f s)", epoch + 1, step, total_steps,
                         f"{losses[-1]:{loss_format}}", elapsed + now - t0)  # fmt: skip
            if step >= total_steps or (budget and elapsed + now - t0 >= budget):
                break
        bar.close()
        scored = inner
        if average is not None and eval_model is not None:
            eval_model.load_state_dict(average.averaged(inner))
            scored = eval_model
        val = validate(scored)
        elapsed += time.perf_counter() - t0
        epoch += 1
        score = val[monitor]
        improved = score > best_val if maximize else score < best_val
        best_val = max(best_val, score) if maximize else min(best_val, score)
        train_loss = float(np.mean(losses)) if losses else math.nan
        history.append({"epoch": epoch, "step": step, "lr": optimizer.param_groups[0]["lr"],
                        "train_loss": train_loss, **val, f"best_{monitor}": best_val,
                        "elapsed_s": round(elapsed, 3)})  # fmt: skip
        done = progress_of() >= 1.0 or step >= total_steps
        if run.main:
            mark = "  best" if improved else ""
            log.info("epoch %d  step %d  train %s  %s%s  (%.0f s)", epoch, step,
                     f"{train_loss:{loss_format}}", val_format.format(**val), mark, elapsed)  # fmt: skip
            config_dict = dataclasses.asdict(config)
            if improved:
                save_atomic({"format": CHECKPOINT_FORMAT, "model_name": config.model,
                             "model_kwargs": config.model_kwargs, "model": scored.state_dict(),
                             **(best_extra or {}), "epoch": epoch, monitor: score, "config": config_dict},
                            run.best_path)  # fmt: skip
            last = {"format": CHECKPOINT_FORMAT, "config": config_dict, "model": inner.state_dict(),
                    "optimizer": optimizer.state_dict(), "epoch": epoch, "step": step, "elapsed": elapsed,
                    "best_val": best_val, "history": history, "torch_rng": torch.get_rng_state()}  # fmt: skip
            if ema is not None:
                last["ema"] = average.state_dict() if average is not None else None
            save_atomic(last, run.last_path)
            write_csv(history, run.run_dir / "log.csv")
        run.barrier()
    return Fitted(inner, epoch, elapsed)


# -- command line ---------------------------------------------------------------------------------------
def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    def text(v: float) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    if high is None:
        return f"{'>' if low_open else '>='} {text(low)}" if low is not None else ""
    if low is None:
        return f"{'<' if high_open else '<='} {text(high)}"
    return f"in {'(' if low_open else '['}{text(low)}, {text(high)}{')' if high_open else ']'}"


def int_option(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type=``: an integer in ``[low, high]`` (``high=None``: no upper bound).

    A bad value ends the command through ``parser.error`` (exit code 2) with a line like
    ``argument --train-size: expected an integer >= 1, got '0'``.
    """
    expected = f"an integer {_bounds(low, high, False, False)}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected
    return parse


def float_option(
    low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False
) -> Callable[[str], float]:
    """An argparse ``type=``: a finite number between ``low`` and ``high`` (``None``: unbounded).

    ``low_open`` / ``high_open`` exclude the bound itself (``float_option(0, low_open=True)``:
    a number > 0). NaN and infinities are refused like an out-of-range value.
    """
    expected = (
        f"a finite number {_bounds(low, high, low_open, high_open)}"
        if (low, high) != (None, None)
        else "a finite number"
    )

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        bad = not math.isfinite(value)
        if low is not None:
            bad = bad or value < low or (low_open and value == low)
        if high is not None:
            bad = bad or value > high or (high_open and value == high)
        if bad:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected
    return parse


def _directory_problem(path: str) -> str | None:
    """Why ``path`` cannot be a directory this process writes into (``None``: it can)."""
    target = Path(path)
    if target.exists():
        if not target.is_dir():
            return "which exists and is not a directory"
        if not os.access(target, os.W_OK | os.X_OK):
            return "which is a directory this process cannot write to"
        return None
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"which cannot be created: {str(parent)!r} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"which cannot be created: {str(parent)!r} is not writable"
    return None


def _device_problem(choice: str) -> str | None:
    """Why ``--device choice`` cannot run here (``None``: it can)."""
    expected = "expected auto, cpu, cuda, cuda:N or mps"
    if choice == "auto":
        return None
    try:
        device = torch.device(choice)
    except RuntimeError:
        return f"{expected}, got {choice!r}"
    if device.type == "cpu":
        return None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            return f"expected auto or cpu: CUDA is not available here, got {choice!r}"
        if device.index is not None and device.index >= count:
            return f"expected cuda or cuda:0 to cuda:{count - 1} ({count} GPU(s) here), got {choice!r}"
        return None
    if device.type == "mps":
        return (
            None
            if torch.backends.mps.is_available()
            else f"expected auto or cpu: MPS is not available here, got {choice!r}"
        )
    return f"{expected}, got {choice!r} (device type {device.type!r} is not supported by the trainers)"


def validate_common(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Check ``--run-dir`` / ``--cache-dir`` (writable directories, or creatable) and ``--device``
    (a device this machine has) before anything runs; ``parser.error`` (exit code 2) otherwise."""
    for option in ("run_dir", "cache_dir"):
        path = getattr(args, option, None)
        if path is not None:
            problem = _directory_problem(path)
            if problem is not None:
                flag = "--" + option.replace("_", "-")
                parser.error(f"argument {flag}: expected a writable directory, got {path!r}, {problem}")
    device = getattr(args, "device", None)
    if device is not None:
        problem = _device_problem(device)
        if problem is not None:
            parser.error(f"argument --device: {problem}")


def add_run_arguments(parser: argparse.ArgumentParser, *, run_dir_help: str, cache_default: object) -> None:
    """``--run-dir``, ``--cache-dir`` and ``--resume``."""
    parser.add_argument("--run-dir", help=run_dir_help)
    parser.add_argument("--cache-dir", help=f"dataset cache (default {cache_default})")
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")


def add_schedule_arguments(parser: argparse.ArgumentParser, *, per_model: bool) -> None:
    """``--epochs``, ``--time-budget``, ``--batch-size``, ``--lr`` and ``--weight-decay``."""
    parser.add_argument("--epochs", type=int_option(1))
    per = " per model" if per_model else ""
    parser.add_argument(
        "--time-budget", type=float_option(0.0), help=f"seconds of training{per} (0: no limit)"
    )
    parser.add_argument("--batch-size", type=int_option(1))
    parser.add_argument("--lr", type=float_option(0.0, low_open=True))
    parser.add_argument("--weight-decay", type=float_option(0.0))


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """``--max-steps``, ``--seed``, ``--device`` and ``--threads``."""
    parser.add_argument(
        "--max-steps", type=int_option(1), help="stop after this many optimiser steps (smoke tests)"
    )
    parser.add_argument("--seed", type=int_option(0, 2**63 - 1), default=0)
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=int_option(1), help="torch CPU threads")


def add_output_arguments(parser: argparse.ArgumentParser, *, model_arg_example: str) -> None:
    """``--model-arg KEY=VALUE`` (repeatable), ``--no-plots`` and ``--no-progress``."""
    parser.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a model option, e.g. --model-arg {model_arg_example}")  # fmt: skip
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--no-progress", action="store_true")


def add_model_arguments(
    parser: argparse.ArgumentParser, models: Sequence[str], presets: Iterable[str]
) -> None:
    """``--model NAME|all`` (default ``all``) and ``--preset`` (default ``quick``)."""
    parser.add_argument("--model", choices=[*models, "all"], default="all")
    parser.add_argument("--preset", choices=sorted(presets), default="quick")


def selected_models(
    parser: argparse.ArgumentParser, args: argparse.Namespace, models: Sequence[str]
) -> list[str]:
    """The models ``--model`` names (``all``: ``models``); ``--model-arg`` needs a single one."""
    if args.model != "all":
        return [args.model]
    if args.model_arg:
        parser.error("--model-arg needs a single --model")
    return list(models)


def model_arguments(parser: argparse.ArgumentParser, items: Sequence[str]) -> dict[str, Any]:
    """``--model-arg`` items as keyword arguments; values parse as JSON where they can, else stay strings."""
    kwargs: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--model-arg expects KEY=VALUE, got {item!r}")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return kwargs


def run_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`RunConfig` keyword arguments from the options the ``add_*_arguments`` added."""
    return {
        "run_dir": args.run_dir, "cache_dir": args.cache_dir, "epochs": args.epochs,
        "time_budget": args.time_budget, "batch_size": args.batch_size, "lr": args.lr,
        "weight_decay": args.weight_decay, "train_size": args.train_size, "max_steps": args.max_steps,
        "seed": args.seed, "device": args.device, "threads": args.threads, "plots": not args.no_plots,
        "progress": not args.no_progress, "model_kwargs": model_arguments(parser, args.model_arg),
    }  # fmt: skip


# -- plots ----------------------------------------------------------------------------------------------
def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# -- several models, one table --------------------------------------------------------------------------
TrainFn = Callable[..., dict[str, Any]]


def train_models(
    train: TrainFn,
    config: Any,
    models: Sequence[str],
    run_dir: Callable[[str], str | None],
    *,
    resume: bool = False,
) -> list[dict[str, Any]]:
    """``train(config with model=name, run_dir=run_dir(name), resume=resume)`` for every name; the results."""
    return [
        train(dataclasses.replace(config, model=name, run_dir=run_dir(name)), resume=resume)
        for name in models
    ]


def write_results(out: Path, table: str, results: Sequence[dict[str, Any]]) -> None:
    """``out/results.md`` (the table) and ``out/results.json`` (every model's results)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(table + "\n")
    (out / "results.json").write_text(json.dumps(list(results), indent=2) + "\n")


def run_command(
    train: TrainFn,
    results_table: Callable[[Sequence[dict[str, Any]]], str],
    run_models: Callable[..., list[dict[str, Any]]],
    config: Any,
    models: Sequence[str],
    *,
    resume: bool,
) -> None:
    """A trainer's command line: one model trained and its table printed, or ``run_models`` for several."""
    with process_group():
        if len(models) == 1:
            results = train(config, resume=resume)
            if is_main_process():
                print(results_table([results]))
        else:
            run_models(config, models, resume=resume)


#: One panel of :func:`plot_log`: the y-axis label, the ``(column, legend label)`` curves, log scale.
Panel = tuple[str, Sequence[tuple[str, str]], bool]


def plot_log(
    csv_path: str | Path,
    out: str | Path,
    panels: Sequence[Panel],
    title: str = "",
    figsize: tuple[float, float] = (6.0, 4.0),
) -> Path:
    """Columns of a run's ``log.csv`` against the epoch, one panel per :data:`Panel`; a PNG at ``out``.

    A panel with several curves gets a legend; the title goes above the panel (one panel) or
    the figure (several).
    """
    with Path(csv_path).open() as fh:
        rows = list(csv.DictReader(fh))
    epoch = [int(r["epoch"]) for r in rows]
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=figsize, squeeze=False)
    for ax, (ylabel, curves, log_scale) in zip(axes[0], panels, strict=True):
        for column, label in curves:
            ax.plot(epoch, [float(r[column]) for r in rows], marker=".", label=label)
        if log_scale:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        if len(curves) > 1:
            ax.legend()
    if len(panels) == 1:
        axes[0][0].set_title(title)
    else:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return Path(out)


# -- python -m examples.harness ---------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> None:
    """``python -m examples.harness convert-checkpoint PATH``: :func:`convert_checkpoint`."""
    parser = argparse.ArgumentParser(prog="python -m examples.harness", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser(
        "convert-checkpoint",
        help="rewrite a TRUSTED old checkpoint as plain data (it is unpickled: run only on files you trust)",
    )
    convert.add_argument("path", help="the old best.pt / last.pt")
    convert.add_argument(
        "--output", help="where to write the converted file (default: PATH, old kept as PATH.orig)"
    )
    args = parser.parse_args(argv)
    if not os.path.isfile(args.path):
        convert.error(f"argument path: expected a checkpoint file, got {args.path!r}, which is not a file")
    out = convert_checkpoint(args.path, args.output)
    load_checkpoint(out)  # reads back safely
    print(f"{args.path}: converted to plain data in {out}")


if __name__ == "__main__":
    main()
