"""The outputs shown in docs/scaling-to-jax.md are what its code prints today
(docs/run_markdown.py --check), and the runner writes outputs where they belong.

(The course chapters, "From scalars to arrays" among them, are notebooks: the docs build
runs them, see test_docs.py and test_notebooks.py.)"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def installed(*names):
    return all(importlib.util.find_spec(name) is not None for name in names)


def load_runner():
    spec = importlib.util.spec_from_file_location("run_markdown", DOCS / "run_markdown.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("chapter, needs", [
    ("scaling-to-jax.md", ("sklearn", "jax")),
])
def test_chapter_outputs_are_current(chapter, needs):
    """Every ```text block under a ```python block is that block's real output today."""
    if not installed(*needs):
        pytest.skip(f"{chapter} needs {', '.join(needs)}: pip install -e '.[test,examples]'")
    # One BLAS thread: the matrices are small, and threads only slow them down on a busy CI.
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(DOCS / "run_markdown.py"), "--check",
                             str(DOCS / chapter)], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every output is current" in result.stdout


def test_runner_writes_each_blocks_output_under_it(tmp_path):
    """A stale output is replaced, a missing one is added, a silent block gets none, and the
    blocks share one namespace and run in the chapter's folder."""
    runner = load_runner()
    text = ("# Title\n\n```python\nx = 6 * 7\nprint(x)\n```\n\n```text\n41\n```\n\n"
            "Prose.\n\n```python\ny = x + 1\n```\n\n"
            "```python\nimport os\nprint(y, os.path.basename(os.getcwd()))\n```\n\nEnd.\n")
    new = runner.run_chapter(text, "test.md", tmp_path)
    assert new == ("# Title\n\n```python\nx = 6 * 7\nprint(x)\n```\n\n```text\n42\n```\n\n"
                   "Prose.\n\n```python\ny = x + 1\n```\n\n"
                   f"```python\nimport os\nprint(y, os.path.basename(os.getcwd()))\n```\n\n"
                   f"```text\n43 {tmp_path.name}\n```\n\nEnd.\n")
    assert runner.run_chapter(new, "test.md", tmp_path) == new
