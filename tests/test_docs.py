"""The docs site: it builds with --strict, runs every notebook, links resolve, pictures are current.

One build of the whole site (mkdocs build --strict, which executes every course notebook
as shipped) serves the tests below.
"""

from __future__ import annotations

import html
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CHAPTERS = ["01-graph", "02-tape", "03-reference", "04-forward-and-reverse",
            "05-derivatives-of-derivatives", "06-jit", "07-arrays"]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built once by `mkdocs build --strict` into a temporary folder."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (make test installs it)")
    out = tmp_path_factory.mktemp("site")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                          str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode == 0, run.stderr[-4000:]
    return out


def page_text(site: Path, page: str) -> str:
    """The visible text of a built page, tags removed and entities decoded."""
    raw = (site / page).read_text(encoding="utf-8")
    raw = re.sub(r"<(script|style)\b.*?</\1>", "", raw, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page_shows_real_outputs_and_unattempted_exercises(site, chapter):
    """Each chapter ran top to bottom in the build; its checks say the exercises wait for you."""
    raw = (site / "course" / f"{chapter}.html").read_text(encoding="utf-8")
    # no error and no warning output (the stylesheet mentions stderr too, so look at tags)
    assert not re.search(r'<div[^>]*data-mime-type="application/vnd\.jupyter\.stderr"', raw)
    assert "Traceback" not in raw
    text = page_text(site, f"course/{chapter}.html")
    verdicts = re.findall(r"exercise (\d+\.\d+): (not done yet|correct|not right yet)", text)
    assert 2 <= len(verdicts) <= 3 and {v for _, v in verdicts} == {"not done yet"}, verdicts


@pytest.mark.parametrize(("chapter", "output"), [
    ("01-graph", "without a topological sort: dy/dx = 3.0"),
    ("01-graph", "after one backward: 9.0; after a second: 18.0"),
    ("02-tape", "%9 = tanh(%8)"),
    ("02-tape", "%3 = tanh(dot([w1, w2], [2, 0]) + b)"),
    ("03-reference", "record 5: [(0, -3.0), (2, 2.0)]"),
    ("03-reference", "inner trace, level 2 records: [[], [(0, 1.0)]]"),
    ("03-reference", "record 4: [(3, 1.0)]"),
    ("03-reference", "d/dx [x * d/dy (x + y)] at x = 1: 1.0"),
    ("03-reference", "0.0 * inf in floats: nan"),
    ("03-reference", "d/dx (x**3) ** (1/3) at 0: nan"),
    ("03-reference", "d²/dx² x*x at 0: 2.0"),
    ("04-forward-and-reverse", re.compile(r"\n +200 +1 +80600 +403 ")),
    ("05-derivatives-of-derivatives", "%6 = dot([-1, -1], [%1, %1])"),
    ("05-derivatives-of-derivatives", "naive dual numbers: 2.0"),
    ("05-derivatives-of-derivatives", "tapegrad: 1.0"),
    ("06-jit", "at a new x = 3.0:        replay 4.5   huber 2.5  <- wrong"),
    ("06-jit", "traces after four more calls on both sides: 2"),
    ("06-jit", re.compile(r"replay at 2\.0: -0\.41614\d*   sinc\(2\.0\): 0\.45464\d*  <- wrong")),
    ("06-jit", "scale = 10: jit 6.0   eager 30.0  <- stale"),
    ("06-jit", "[7.0, 15.0, 7.0, 15.0] traces: 2"),
    ("07-arrays", "(4, 2, 4, 3) = 96 numbers, 24 of them not zero"),
    ("07-arrays", "partials: ()"),
    ("07-arrays", "%7 = matmul(%6, f64[2,3])"),
    ("07-arrays", "%12 = logsumexp(%10, axis=1)"),
    ("07-arrays", "scalar records against 16 array records"),
    ("07-arrays", re.compile(r"b1 \+= vjp of add\(f64\[64,128\]\) = f64\[128\]")),
    ("07-arrays", "5 matrix products:"),
])
def test_chapter_page_holds_the_output_its_text_explains(site, chapter, output):
    """The outputs the prose discusses are on the page, produced by the build."""
    text = page_text(site, f"course/{chapter}.html")
    assert output.search(text) if isinstance(output, re.Pattern) else output in text


def local_targets(page: Path, site: Path) -> list[tuple[str, Path]]:
    """(link, file it points at) for every relative href and src of a built page."""
    raw = page.read_text(encoding="utf-8")
    found = []
    for link in re.findall(r'(?:href|src)="([^"]+)"', raw):
        parsed = urlparse(link)
        if parsed.scheme or parsed.netloc or link.startswith(("#", "mailto:", "data:")):
            continue
        path = unquote(parsed.path)
        if not path:
            continue
        target = (page.parent / path).resolve()
        if target.is_dir():
            target = target / "index.html"
        found.append((link, target))
    return found


def test_every_local_link_and_image_of_the_site_resolves(site):
    """No page (notebooks included, which mkdocs does not check) links to a missing file,
    or to an anchor that is not on the page it names."""
    # 404.html is served at any depth, so its links are absolute on purpose.
    pages = sorted(p for p in site.rglob("*.html") if p.name != "404.html")
    assert len(pages) >= 9
    broken = [(str(page.relative_to(site)), link) for page in pages
              for link, target in local_targets(page, site) if not target.exists()]
    assert not broken
    missing_anchors = []
    for page in pages:
        for link, target in local_targets(page, site):
            anchor = urlparse(link).fragment
            if anchor and target.suffix == ".html":
                if f'id="{anchor}"' not in target.read_text(encoding="utf-8"):
                    missing_anchors.append((str(page.relative_to(site)), link))
    assert not missing_anchors


def _notebook_hooks():
    spec = importlib.util.spec_from_file_location("notebook_hooks",
                                                  DOCS / "course" / "notebook_hooks.py")
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    return hook


def test_notebook_links_to_sources_lead_to_built_pages():
    """The hook points a notebook's links to .md and .ipynb sources at the built pages,
    anchors kept, and leaves other links alone."""
    hook = _notebook_hooks()
    html = ('<a href="../scaling-to-jax.md">a</a><a href="05-x.ipynb#perturbation">b</a>'
            '<a href="https://example.org/a.md">c</a><a href="#notes.md">d</a>'
            '<img src="../img/t.svg"><a href="solutions/07-arrays.py">e</a>')
    assert hook.built_links(html) == (
        '<a href="../scaling-to-jax.html">a</a><a href="05-x.html#perturbation">b</a>'
        '<a href="https://example.org/a.md">c</a><a href="#notes.md">d</a>'
        '<img src="../img/t.svg"><a href="solutions/07-arrays.py">e</a>')


def test_every_picture_is_shown_somewhere(site):
    """Each SVG in docs/img appears on at least one page of the site."""
    shown = {target.name for page in site.rglob("*.html")
             for _, target in local_targets(page, site) if target.suffix == ".svg"}
    assert shown == {p.name for p in (DOCS / "img").glob("*.svg")}


def test_api_reference_is_generated_from_the_docstrings(site):
    """The API page documents every public name and shows doctest examples as code."""
    import tapegrad as tg

    text = page_text(site, "api.html")
    raw = (site / "api.html").read_text(encoding="utf-8")
    documented = set(re.findall(r'id="(tapegrad\.[\w.]+)"', raw))
    # jit shares its name with its module, so the page shows it in a block of its own;
    # the gradient checks load on first use, so they are documented from tapegrad.checks.
    assert [n for n in tg.__all__ if f"tapegrad.{n}" not in documented] == [
        "check_grad", "check_grads", "jit"]
    assert {"tapegrad.checks.check_grad", "tapegrad.checks.check_grads"} <= documented
    assert tg.jit.__doc__.splitlines()[0].replace("``", "") in text
    for name in ("viz.draw_tape", "viz.grad_tape", "nn.init_mlp", "optim.adam",
                 "datasets.make_moons", "graph.topological_order"):
        assert f"tapegrad.{name}" in documented, name
    assert not [i for i in documented if "__" in i]  # no dunder noise
    assert raw.count('<span class="gp">&gt;&gt;&gt; </span>') >= 40  # highlighted examples
    assert ":func:" not in text and "[&quot;" not in raw  # roles and brackets read as code


def test_solutions_page_shows_every_solution_file(site):
    """The solutions page includes each chapter's solution file verbatim."""
    text = page_text(site, "course/solutions.html")
    for chapter in CHAPTERS:
        source = (DOCS / "course" / "solutions" / f"{chapter}.py").read_text(encoding="utf-8")
        first_def = re.search(r"^def \w+\(.*\):$", source, flags=re.M)
        assert first_def is not None and first_def.group(0) in text


def _pictures_module():
    spec = importlib.util.spec_from_file_location("make_pictures", DOCS / "make_pictures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_pictures_draws_exactly_the_pictures_in_docs_img():
    """One script owns every picture: no orphan SVG, no drawing without its file."""
    pictures = _pictures_module().PICTURES
    assert sorted(pictures) == sorted(p.stem for p in (DOCS / "img").glob("*.svg"))
    assert not list((DOCS / "img").glob("*.gv"))


def svg_texts(svg: str) -> list[str]:
    """The text of every <text> element of an SVG, in order: what a reader sees."""
    return [html.unescape(t) for t in re.findall(r"<text\b[^>]*>([^<]*)</text>", svg)]


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is missing")
@pytest.mark.parametrize("name", sorted(_pictures_module().PICTURES))
def test_committed_picture_matches_todays_drawing(name):
    """Each docs/img SVG shows the same text as the drawing made from today's code.

    Layout coordinates may differ between Graphviz versions; the words and numbers may not.
    """
    drawing = _pictures_module().PICTURES[name]()
    fresh = drawing.pipe(format="svg").decode("utf-8")
    committed = (DOCS / "img" / f"{name}.svg").read_text(encoding="utf-8")
    assert svg_texts(committed) == svg_texts(fresh), (
        f"docs/img/{name}.svg is stale: run .venv/bin/python docs/make_pictures.py")


def test_page_width_of_pictures():
    """Every picture fits a page: at most 700 pt wide, so text is not shrunk to nothing."""
    for svg in (DOCS / "img").glob("*.svg"):
        width = re.search(r'<svg width="(\d+)pt"', svg.read_text(encoding="utf-8"))
        assert width is not None and int(width.group(1)) <= 700, svg.name


def test_readme_links_every_chapter_and_the_site():
    """The README points at each chapter notebook, the course page and the docs build."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for chapter in CHAPTERS:
        assert f"docs/course/{chapter}.ipynb" in readme, chapter
    assert "make docs" in readme and "site/index.html" in readme
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    for link in links:
        if not link.startswith("http"):
            assert (ROOT / link).exists(), link


def test_course_index_lists_every_chapter_and_points_each_question_at_cells():
    """The course page links all seven chapters, and each of the four questions the course
    answers links to the sections that answer it (test_every_local_link_... checks on
    the built site that those anchors exist)."""
    index = (DOCS / "course" / "index.md").read_text(encoding="utf-8")
    for chapter in CHAPTERS:
        assert f"]({chapter}.ipynb)" in index, chapter
    section = index.split("## Four questions")[1].split("\n## ")[0]
    questions = re.split(r"^\d\. ", section, flags=re.M)[1:]
    assert len(questions) == 4
    for question in questions:
        assert re.search(r"\]\(0\d-[\w-]+\.ipynb#[\w-]+\)", question), question[:60]


@pytest.mark.parametrize(("page", "outputs"), [("tape-vs-graph.md", 8), ("index.md", 0)])
def test_python_blocks_print_what_the_page_shows(page, outputs):
    """Each ```python block of the page runs (in order, sharing names), and when an output
    block follows it, that is exactly what it prints."""
    import contextlib
    import io

    text = (DOCS / page).read_text(encoding="utf-8")
    blocks = list(re.finditer(r"```python\n(.*?)```(?:\s*\n```\n(.*?)```)?", text, flags=re.S))
    assert blocks and sum(1 for b in blocks if b.group(2)) == outputs
    namespace: dict = {}
    for block in blocks:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(block.group(1), f"docs/{page}", "exec"), namespace)  # our own docs
        if block.group(2) is not None:
            assert printed.getvalue().rstrip("\n") == block.group(2).rstrip("\n"), block.group(1)


def test_printed_text_sent_in_pieces_is_one_block(site, tmp_path):
    """A line the kernel sent in two pieces shows as one line; an expression's value stays
    apart. The notebook is rendered by mkdocs-jupyter itself, so the seam the hook removes
    is the real markup."""
    import json

    from mkdocs_jupyter.nbconvert2 import nb2html

    hook = _notebook_hooks()
    code = ("import sys, time\nprint('AAA', end='')\nsys.stdout.flush()\ntime.sleep(0.3)\n"
            "print(' BBB')\n6 * 7")
    cell = {"cell_type": "code", "id": "split", "metadata": {}, "execution_count": None,
            "outputs": [], "source": code}
    notebook = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "split.ipynb"
    path.write_text(json.dumps(notebook), encoding="utf-8")
    html = nb2html(str(path), execute=True, allow_errors=False, no_prompt=True)
    assert hook.STREAM_SEAM in html and "AAA BBB" not in html
    joined = hook.joined_streams(html)
    assert "<pre>AAA BBB\n</pre>" in joined and "<pre>42</pre>" in joined
    for page in (site / "course").glob("*.html"):  # and the hook ran on the site
        assert hook.STREAM_SEAM not in page.read_text(encoding="utf-8"), page.name
