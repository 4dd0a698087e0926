"""A griffe extension that renders gatorch's reST-flavoured docstrings as Markdown.

The docstrings follow e3nn / NumPy conventions written for Sphinx: ``code`` in double
backticks, ``:math:`...``` and ``.. math::`` blocks, ``:func:`~a.b```-style roles and
``Shapes`` sections. mkdocstrings reads Markdown, so each docstring is converted when
griffe loads it: inline and display math for ``pymdownx.arithmatex``, roles as inline code
(the short name for ``~`` targets) and double backticks as single ones (griffe renders
sections it does not know, such as ``Shapes``, as admonitions). The source is unchanged.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|obj|exc|py:\w+):`(~?)([^`]+)`")
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_DOUBLE_TICKS = re.compile(r"``([^`]+)``")


def _role(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    target = target.strip()
    if target.startswith("!"):
        target = target[1:]
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _math_blocks(text: str) -> str:
    """``.. math::`` followed by an indented block -> a display-math block."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith(".. math::"):
            indent = line[: len(line) - len(stripped)]
            rest = stripped[len(".. math::") :].strip()
            body = [rest] if rest else []
            i += 1
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(indent)):
                body.append(lines[i])
                i += 1
            expr = textwrap.dedent("\n".join(body)).strip()
            if "&" in expr or "\\\\" in expr:
                expr = "\\begin{aligned}\n" + expr + "\n\\end{aligned}"
            out.extend([indent + "\\[", *(indent + e for e in expr.split("\n")), indent + "\\]", ""])
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def rst_to_markdown(text: str) -> str:
    """Convert the reST constructs gatorch's docstrings use into Markdown (see the module doc)."""
    text = _math_blocks(text)
    text = _MATH_ROLE.sub(lambda m: f"\\({m.group(1)}\\)", text)
    text = _ROLE.sub(_role, text)
    return _DOUBLE_TICKS.sub(lambda m: f"`{m.group(1)}`", text)


class RstToMarkdown(griffe.Extension):
    """Rewrite every loaded docstring with :func:`rst_to_markdown`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
