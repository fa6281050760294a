"""The course notebooks: built from their sources, shipped without outputs, run with solutions.

The notebooks as shipped (exercises not done) are executed by the docs build, which
test_docs.py runs; here each chapter is executed top to bottom with the solutions swapped
in, and every exercise check must say "correct".
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "docs" / "course"


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", COURSE / "build_notebooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_builder()
CHAPTERS = [source.stem for source in build.chapters()]


def test_every_chapter_has_a_source_and_a_notebook():
    """All seven chapters are there, each as a source and a built notebook."""
    assert CHAPTERS == ["01-graph", "02-tape", "03-reference", "04-forward-and-reverse",
                        "05-derivatives-of-derivatives", "06-jit", "07-arrays"]
    assert sorted(p.stem for p in COURSE.glob("*.ipynb")) == CHAPTERS


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_notebook_is_built_from_its_source(chapter):
    """The committed .ipynb is exactly what build_notebooks.py makes from the source."""
    committed = (COURSE / f"{chapter}.ipynb").read_text(encoding="utf-8")
    assert committed == build.dumps(build.notebook(COURSE / "source" / f"{chapter}.py")), (
        f"docs/course/{chapter}.ipynb is stale or was edited by hand: edit "
        f"docs/course/source/{chapter}.py and run .venv/bin/python docs/course/build_notebooks.py")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_notebook_is_shipped_without_outputs(chapter):
    """No stored output can go stale: the docs build and these tests produce them all."""
    nb = json.loads((COURSE / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    code = [cell for cell in nb["cells"] if cell["cell_type"] == "code"]
    assert code and all(cell["outputs"] == [] and cell["execution_count"] is None
                        for cell in code)


def exercise_tags(nb: dict) -> list[str]:
    return [tag for cell in nb["cells"] for tag in cell["metadata"].get("tags", [])
            if tag.startswith("exercise-")]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_ends_with_two_or_three_exercises_each_with_a_solution(chapter):
    """Every exercise cell has a solution, and every solution an exercise."""
    nb = build.notebook(COURSE / "source" / f"{chapter}.py")
    tags = exercise_tags(nb)
    assert 2 <= len(tags) <= 3, tags
    assert sorted(build.solutions(chapter)) == sorted(tags)


def test_with_solutions_swaps_exactly_the_exercise_cells():
    """Only tagged cells change, and each becomes its solution's code."""
    nb = build.notebook(COURSE / "source" / "02-tape.py")
    solved = build.with_solutions(nb, "02-tape")
    answers = build.solutions("02-tape")
    changed = [(a, b) for a, b in zip(nb["cells"], solved["cells"]) if a != b]
    assert len(changed) == len(answers)
    for before, after in changed:
        (tag,) = before["metadata"]["tags"]
        assert "".join(after["source"]) == answers[tag]
        assert "NotImplementedError" in "".join(before["source"])


def test_split_cells_refuses_unknown_markers():
    """A typo in a cell marker is an error naming the line, not a silently merged cell."""
    with pytest.raises(ValueError, match="unknown cell marker"):
        build.split_cells("# %% exercise 1\nx = 1\n")
    with pytest.raises(ValueError, match="must start with '#'"):
        build.split_cells("# %% [markdown]\n# text\nnot a comment\n")


def run_notebook(nb: dict) -> list[str]:
    """Execute a notebook in a fresh kernel (in the course folder); return each cell's text."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    node = nbformat.reads(json.dumps(nb), as_version=4)  # joins the line lists
    client = nbclient.NotebookClient(node, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(COURSE)}})
    client.execute()
    texts = []
    for cell in node.cells:
        if cell.cell_type != "code":
            continue
        parts = []
        for output in cell.outputs:
            assert output.output_type != "error", f"{output.ename}: {output.evalue}"
            data = output.get("data", {})
            parts.append(output.get("text", "") or str(data.get("text/plain", "")))
        texts.append("".join(parts))
    return texts


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_top_to_bottom_and_every_solution_is_correct(chapter):
    """With the solutions in place the notebook runs without error and every check passes."""
    nb = build.with_solutions(build.notebook(COURSE / "source" / f"{chapter}.py"), chapter)
    outputs = "\n".join(run_notebook(nb))
    verdicts = re.findall(r"^exercise (\d+\.\d+): (.*)$", outputs, flags=re.M)
    expected = [tag.removeprefix("exercise-") for tag in exercise_tags(nb)]
    assert [number for number, _ in verdicts] == expected, outputs
    assert all(verdict == "correct" for _, verdict in verdicts), verdicts
