"""Run the Python blocks of Markdown chapters and write their real output under them.

The ```python blocks of a chapter run in order, in one namespace (a block may use
the names of the blocks above it), with the chapter's folder as the working
directory, so a block that draws writes to img/ beside the chapter. What a block
prints replaces the ```text block right after it; a block that prints and has no
such block gets one. The outputs in the chapters are therefore never typed by hand.

With --check nothing is written: the blocks run in a temporary copy of the folder,
and the script fails, showing the difference, when an output in a chapter is not
what its block prints today. tests/test_docs_outputs.py runs that check.

Run:  python docs/run_markdown.py [--check] [CHAPTER.md ...]
      (by default docs/scaling-to-jax.md, which needs the examples extra and jax:
      pip install -e '.[test,examples]'). The course chapters are notebooks, run by
      the docs build instead (docs/course/build_notebooks.py).
"""

import argparse
import contextlib
import difflib
import io
import os
import re
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

DOCS = Path(__file__).resolve().parent
CHAPTERS = [DOCS / "scaling-to-jax.md"]

# A python block, and the text block that holds its output if there is one.
BLOCK = re.compile(r"```python\n(?P<code>.*?)```\n(?:\n```text\n(?P<output>.*?)```\n)?", re.S)


def run_chapter(text, name, folder):
    """The chapter with every python block's output written under it."""
    namespace = {"__name__": f"chapter_{Path(name).stem.replace('-', '_')}"}
    pieces, end = [], 0
    previous = os.getcwd()
    os.chdir(folder)
    try:
        for number, match in enumerate(BLOCK.finditer(text), start=1):
            output = run_block(match["code"], f"{name}, python block {number}", namespace)
            pieces.append(text[end:match.start()])
            pieces.append(f"```python\n{match['code']}```\n")
            if output:
                pieces.append(f"\n```text\n{output}```\n")
            end = match.end()
    finally:
        os.chdir(previous)
    pieces.append(text[end:])
    return "".join(pieces)


def run_block(code, where, namespace):
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(code, where, "exec"), namespace)  # the chapter's own code
    except Exception:
        traceback.print_exc()
        sys.exit(f"{where} failed; the chapter was not changed")
    output = printed.getvalue()
    return output if not output or output.endswith("\n") else output + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; fail if an output differs from today's")
    parser.add_argument("chapters", nargs="*", type=Path, default=CHAPTERS)
    args = parser.parse_args()
    stale = []
    for chapter in args.chapters:
        chapter = chapter.resolve()
        text = chapter.read_text(encoding="utf-8")
        if args.check:
            with tempfile.TemporaryDirectory() as scratch:
                shutil.copytree(chapter.parent / "img", Path(scratch) / "img")
                new = run_chapter(text, chapter.name, scratch)
        else:
            new = run_chapter(text, chapter.name, chapter.parent)
        if new == text:
            print(f"{chapter.name}: every output is current")
        elif args.check:
            stale.append(chapter.name)
            sys.stdout.writelines(difflib.unified_diff(
                text.splitlines(True), new.splitlines(True), f"{chapter.name} (as written)",
                f"{chapter.name} (as run today)"))
        else:
            chapter.write_text(new, encoding="utf-8")
            print(f"{chapter.name}: outputs rewritten")
    if stale:
        sys.exit(f"stale outputs in {', '.join(stale)}: run python docs/run_markdown.py")


if __name__ == "__main__":
    main()
