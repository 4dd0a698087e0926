"""The documentation's code examples run as written (every ```python block of docs/*.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(p for p in DOCS.glob("*.md") if "```python" in p.read_text())
#: Pages whose examples need an optional extra.
NEEDS = {"irreps.md": "e3nn", "lgatr.md": "lgatr", "fields.md": "cliffordlayers"}


def test_every_guide_page_has_examples():
    names = {p.name for p in PAGES}
    assert {"index.md", "algebras.md", "gatr.md", "gnn.md", "irreps.md"} <= names, names


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_examples_run(page: Path) -> None:
    if page.name in NEEDS:
        pytest.importorskip(NEEDS[page.name])
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    assert blocks
    for k, code in enumerate(blocks):
        exec(compile(code, f"{page.name} (block {k})", "exec"), {"__name__": f"docs_{page.stem}_{k}"})
