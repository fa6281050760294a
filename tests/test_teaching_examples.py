"""Tests for the learning material: the seed neuron both ways, the examples, the tutorial."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tapegrad as tg
from tapegrad.graph import Value

ROOT = Path(__file__).resolve().parent.parent
SEED = {"x1": 2.0, "x2": 0.0, "w1": -3.0, "w2": 1.0, "b": 6.8813735870195432}
# o = tanh(n) with 1 - tanh(n)**2 = 1/2, so do/dx1 = w1/2, do/dw1 = x1/2, and so on.
HAND_DERIVED = {"x1": -1.5, "x2": 0.5, "w1": 1.0, "w2": 0.0, "b": 0.5}
PICTURE = ".svg" if shutil.which("dot") else ".gv"  # without dot, render writes the source


def run_example(name: str, out: Path) -> str:
    """Run examples/<name> in a fresh interpreter with --out; return what it printed."""
    run = subprocess.run([sys.executable, str(ROOT / "examples" / name), "--out", str(out)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_seed_neuron_gradients_both_ways():
    """The graph engine and the tape give the seed neuron's hand-derived gradients."""
    leaves = {name: Value(v, label=name) for name, v in SEED.items()}
    x1, x2, w1, w2, b = leaves.values()
    o = (x1 * w1 + x2 * w2 + b).tanh()
    o.backward()
    tape_grads = tg.grad(lambda x1, x2, w1, w2, b: tg.tanh(x1 * w1 + x2 * w2 + b),
                         argnums=(0, 1, 2, 3, 4))(*SEED.values())
    assert o.data == pytest.approx(1 / math.sqrt(2))
    for (name, leaf), g in zip(leaves.items(), tape_grads):
        assert leaf.grad == pytest.approx(HAND_DERIVED[name], abs=1e-12)
        assert g == pytest.approx(HAND_DERIVED[name], abs=1e-12)


def test_seed_neuron_example_runs_and_writes_both_pictures(tmp_path):
    """examples/seed_neuron.py prints both views, agrees, and writes the graph and tape pictures."""
    out = run_example("seed_neuron.py", tmp_path)
    for text in ("x1.grad = -1.500000", "%9 = tanh(%8)", "reverse sweep", "the gradients agree"):
        assert text in out, text
    for picture in ("neuron-graph", "neuron-tape"):
        assert (tmp_path / f"{picture}{PICTURE}").stat().st_size > 0


def test_tape_vs_graph_example_runs_and_shows_each_lesson(tmp_path):
    """examples/tape_vs_graph.py shows agreement, the zero_grad bug, grad(grad) and a cost table."""
    out = run_example("tape_vs_graph.py", tmp_path)
    assert re.search(r"without it gives w1.grad = -1.171573, not -0.585786", out)
    assert "grad(grad(loss)) wrt b: +0.914214" in out
    assert re.search(r"graph +\d+\.\d+ us +\d+ bytes", out)
    assert re.search(r"tape +\d+\.\d+ us +\d+ bytes", out)
    for picture in ("loss-graph", "loss-tape", "grad-tape"):
        assert (tmp_path / f"{picture}{PICTURE}").exists()


def test_tutorial_links_pictures_that_make_pictures_draws():
    """Every picture docs/tape-vs-graph.md shows is in docs/img, drawn by docs/make_pictures.py."""
    doc = (ROOT / "docs" / "tape-vs-graph.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", doc)
    assert links
    script = (ROOT / "docs" / "make_pictures.py").read_text(encoding="utf-8")
    for link in links:
        assert not link.startswith(("/", "http")), link
        assert (ROOT / "docs" / link).exists(), link
        assert f'"{Path(link).stem}":' in script, link


def test_tour_runs_and_shows_each_transform_once():
    """examples/tour.py runs standalone; perturbation confusion gives 1, the tape is printed."""
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "tour.py")],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "perturbation confusion = 1.0" in run.stdout
    assert "%7 = %5 / %6" in run.stdout and "hessian" in run.stdout
