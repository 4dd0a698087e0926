"""The README's example runs as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs():
    text = README.read_text()
    match = re.search(r"## A 15-line example\n\n```python\n(.*?)```", text, re.S)
    assert match, "README lost its example section"
    code = match.group(1)
    assert len(code.strip().splitlines()) <= 15
    exec(compile(code, str(README), "exec"), {})


def test_readme_gatr_example_runs():
    match = re.search(r"## A GATr in 14 lines\n\n```python\n(.*?)```", README.read_text(), re.S)
    assert match, "README lost its GATr example section"
    code = match.group(1)
    assert len([line for line in code.splitlines() if line.strip()]) <= 14
    exec(compile(code, str(README), "exec"), {})


def test_readme_irreps_example_runs():
    pytest.importorskip("e3nn")
    text = README.read_text()
    match = re.search(r"## e3nn irreps and the `clifford` package\n.*?```python\n(.*?)```", text, re.S)
    assert match, "README lost its irreps example"
    exec(compile(match.group(1), str(README), "exec"), {})


def test_readme_layouts_example_runs():
    text = README.read_text()
    match = re.search(r"## Layouts: pay only for the grades you keep\n.*?```python\n(.*?)```", text, re.S)
    assert match, "README lost its layouts example"
    scope: dict[str, object] = {}
    exec(compile(match.group(1), str(README), "exec"), scope)
    y, s = scope["y"], scope["s"]
    assert tuple(y.shape) == (4, 10, 1, 137) and tuple(s.shape) == (4, 10, 1)  # type: ignore[attr-defined]
