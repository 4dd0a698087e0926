"""Import a class from a checkout of a paper's research code, for the fidelity scripts.

The reference implementations the examples compare against (CGENN's n-body network in
``examples/nbody/compare_cgenn.py``, CSMPN's hull network in ``examples/zoo/compare_csmpn.py``)
are research code, not packages: a clone of the repository is put on ``sys.path`` and the one
module that holds the network is imported from it. Both build their metrics with the authors'
training framework (``engineer.metrics.metrics``: ``Loss`` and ``MetricCollection``), which a
forward pass never touches and which needs more than the network does (a logger, wandb):
:func:`import_checkout` stubs that module out.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

__all__ = ["import_checkout", "import_checkout_file"]


class _Metrics(dict):  # type: ignore[type-arg]
    """Stands in for ``engineer``'s ``Loss`` and ``MetricCollection``: the models build them, the
    forward pass never uses them."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__()


def _check_checkout(checkout: Path, marker: str, what: str, url: str) -> Path:
    checkout = Path(checkout)
    if not (checkout / marker).is_file():
        raise FileNotFoundError(
            f"{checkout} holds no {marker}: not a {what} checkout "
            f"(expected a clone of {url}, received a directory without that file)"
        )
    return checkout


def import_checkout(checkout: Path | str, module: str, name: str, what: str, url: str) -> Any:
    """``name`` from ``module`` (dotted, relative to the root of the checkout ``checkout``).

    Parameters
    ----------
    checkout
        The root of a clone of the reference repository.
    module
        The dotted module path inside the checkout, e.g. ``"csmpn.models.hulls_cssmpnn"``.
    name
        The attribute to return (the network's class).
    what, url
        The name of the reference code and the repository to clone, for the error message.

    Returns
    -------
    Any
        The attribute, with ``engineer.metrics.metrics`` stubbed out in ``sys.modules``.

    Raises
    ------
    FileNotFoundError
        When ``checkout`` holds no ``module``'s file: names the directory, the file expected
        in it and the repository to clone.
    """
    root = _check_checkout(Path(checkout), module.replace(".", "/") + ".py", what, url)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    stub = types.ModuleType("engineer.metrics.metrics")
    stub.Loss = _Metrics  # type: ignore[attr-defined]
    stub.MetricCollection = _Metrics  # type: ignore[attr-defined]
    for parent in ("engineer", "engineer.metrics"):
        sys.modules.setdefault(parent, types.ModuleType(parent))
    sys.modules["engineer.metrics.metrics"] = stub
    return getattr(importlib.import_module(module), name)


def import_checkout_file(checkout: Path | str, path: str, what: str, url: str) -> types.ModuleType:
    """The single file ``path`` of the checkout, imported on its own as a module (not through its
    package, whose ``__init__`` may need the training framework's dependencies).

    Raises
    ------
    FileNotFoundError
        As :func:`import_checkout`, when the file is not there.
    """
    root = _check_checkout(Path(checkout), path, what, url)
    spec = importlib.util.spec_from_file_location(f"_checkout_{Path(path).stem}", root / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
