"""Build the course notebooks, docs/course/NN-name.ipynb, from their sources in docs/course/source/.

A source is a Python file in the "percent" format that Jupytext and most editors read:
``# %%`` starts a code cell, ``# %% [markdown]`` a text cell (each line starts with ``# ``),
and ``# %% tags=["exercise-1.2"]`` an exercise cell: the learner fills it in, and the tests
swap in the solution from docs/course/solutions/NN-name.py. Edit the sources, not the
notebooks, then run this script. Notebooks are written without outputs: the docs build and
the tests run them, so every output on the site is real.

Run:  .venv/bin/python docs/course/build_notebooks.py           (writes the notebooks)
      .venv/bin/python docs/course/build_notebooks.py --check   (exit 1 if one is stale)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

COURSE = Path(__file__).resolve().parent
SOURCES = COURSE / "source"
SOLUTIONS = COURSE / "solutions"
CELL_START = re.compile(r"^# %%(?P<rest>.*)$")
TAGS = re.compile(r'^\s*tags=\[(?P<tags>[^\]]*)\]\s*$')


def split_cells(text: str) -> list[tuple[str, list[str], str]]:
    """(cell type, tags, source) for each ``# %%`` cell of a percent-format file."""
    cells: list[tuple[str, list[str], list[str]]] = []
    for line in text.splitlines():
        start = CELL_START.match(line)
        if start:
            rest = start["rest"].strip()
            kind = "markdown" if rest == "[markdown]" else "code"
            tags = TAGS.match(rest)
            if rest and kind == "code" and not tags:
                raise ValueError(f"unknown cell marker {line!r}: use '# %%', '# %% [markdown]' "
                                 "or '# %% tags=[\"exercise-N.M\"]'")
            names = [t.strip().strip('"') for t in tags["tags"].split(",")] if tags else []
            cells.append((kind, names, []))
        elif cells:
            cells[-1][2].append(line)
        elif line.strip():
            raise ValueError(f"text before the first '# %%' marker: {line!r}")
    return [(kind, tags, _body(kind, lines)) for kind, tags, lines in cells]


def _body(kind: str, lines: list[str]) -> str:
    if kind == "markdown":
        for line in lines:
            if line and not line.startswith("#"):
                raise ValueError(f"a markdown cell line must start with '#': {line!r}")
        lines = [line[2:] if line.startswith("# ") else line[1:] for line in lines]
    return "\n".join(lines).strip("\n")


def notebook(source: Path) -> dict:
    """The notebook (as JSON data, without outputs) for one source file."""
    cells = []
    for k, (kind, tags, text) in enumerate(split_cells(source.read_text(encoding="utf-8"))):
        cell: dict = {
            "cell_type": kind,
            "id": f"{source.stem}-{k:02d}",
            "metadata": {"tags": tags} if tags else {},
            "source": text.splitlines(keepends=True),
        }
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def dumps(nb: dict) -> str:
    """Notebook JSON as Jupyter writes it (one-space indent, sorted keys)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def solutions(chapter: str) -> dict[str, str]:
    """Exercise tag -> solution code, from docs/course/solutions/<chapter>.py."""
    path = SOLUTIONS / f"{chapter}.py"
    return {tags[0]: text for kind, tags, text in split_cells(path.read_text(encoding="utf-8"))
            if kind == "code" and tags}


def with_solutions(nb: dict, chapter: str) -> dict:
    """A copy of the notebook with every exercise cell replaced by its solution."""
    answers = solutions(chapter)
    copy = json.loads(json.dumps(nb))
    for cell in copy["cells"]:
        for tag in cell["metadata"].get("tags", []):
            if tag.startswith("exercise-"):
                if tag not in answers:
                    raise KeyError(f"no solution for {tag} in docs/course/solutions/{chapter}.py")
                cell["source"] = answers[tag].splitlines(keepends=True)
    return copy


def chapters() -> list[Path]:
    return sorted(SOURCES.glob("[0-9][0-9]-*.py"))


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for source in chapters():
        target = COURSE / f"{source.stem}.ipynb"
        text = dumps(notebook(source))
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        if check:
            stale.append(target.name)
        else:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(COURSE.parent.parent)}")
    if stale:
        print("out of date (run: .venv/bin/python docs/course/build_notebooks.py): "
              + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
