"""A griffe extension for the API reference: doctest examples shown as code.

tapegrad's docstrings put ``>>>`` examples in plain text (``pytest --doctest-modules``
runs them), and refer to other objects with Sphinx roles such as ``:func:`grad```.
Markdown knows neither: it would read ``[0.5, 1.0]`` in an example's output as a link.
This wraps each run of example lines (a ``>>>`` line, its ``...`` lines and its output,
up to a blank line) in a ``pycon`` code fence, and turns a role into plain code.
Used by mkdocs.yml (mkdocstrings' ``extensions`` option); not part of the site.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|obj|exc):`~?([^`]+)`")


def fence_examples(text: str) -> str:
    """The docstring with each doctest example block wrapped in a pycon fence."""
    out: list[str] = []
    block: list[str] = []
    indent = ""
    for line in text.splitlines():
        stripped = line.lstrip()
        if not block and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            block = [line]
        elif block and stripped:
            block.append(line)
        else:
            if block:
                out += [f"{indent}```pycon", *block, f"{indent}```"]
                block = []
            out.append(line)
    if block:
        out += [f"{indent}```pycon", *block, f"{indent}```"]
    return "\n".join(out)


class DoctestBlocks(griffe.Extension):
    """Fence the doctest examples and plain-code the Sphinx roles of every docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(r"`\1`", fence_examples(obj.docstring.value))
