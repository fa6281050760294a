"""Tests for tapegrad.viz: the tape as text, picture and table; render; rule and NaN checks."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import attrs
import graphviz
import pytest

import tapegrad as tg
from tapegrad import viz

NASTY = '<b>&"{x}|y'
ESCAPED = "&lt;b&gt;&amp;&quot;{x}|y"
SEED = (2.0, 0.0, -3.0, 1.0, 6.8813735870195432)
SEED_NAMES = ("x1", "x2", "w1", "w2", "b")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="the Graphviz 'dot' program is not installed")


def neuron(x1, x2, w1, w2, b):
    return tg.tanh(x1 * w1 + x2 * w2 + b)


def seed_tape() -> tg.Tape:
    return tg.trace(neuron, names=SEED_NAMES)(*SEED)


def sweep_lines(text: str) -> list[str]:
    """The record lines of format_reverse's output (after its two header lines)."""
    return text.splitlines()[2:]


# -- the reverse sweep as text ---------------------------------------------------------


def test_format_reverse_runs_from_the_last_record_to_the_first():
    """The sweep's lines name the records in decreasing index order, output first."""
    lines = sweep_lines(seed_tape().format_reverse())
    lhs = [line.split(" = ")[0] for line in lines]
    assert lhs == ["%9", "%8", "%7", "%6", "%5", "b", "w2", "w1", "x2", "x1"]


def test_format_reverse_hand_derived_adjoints():
    """For f = x*y + sin(x) at (2, 3): adjoint of y is 2, of x is 3 + cos(2); contributions add."""
    tape = tg.trace(lambda x, y: x * y + tg.sin(x), names=("x", "y"))(2.0, 3.0)
    text = tape.format_reverse()
    assert text.startswith("reverse sweep, from the last record to the first (seed: adjoint of "
                           "%4 = 1)")
    lines = sweep_lines(text)
    assert re.match(r"%4 = %2 \+ %3 +adjoint 1 +%2 \+= 1 \* 1 = 1;  %3 \+= 1 \* 1 = 1$", lines[0])
    assert f"x += 1 * {math.cos(2.0):.6g} = {math.cos(2.0):.6g}" in lines[1]
    assert "x += 1 * 3 = 3;  y += 1 * 2 = 2" in lines[2]
    assert lines[3].split() == ["y", "=", "input", "adjoint", "2", "input:", "d", "output", "/",
                                "d", "y", "=", "2"]
    assert f"adjoint {3.0 + math.cos(2.0):.6g}" in lines[4]


def test_format_reverse_marks_zero_adjoints_as_skipped():
    """A record whose adjoint is zero is shown as sending nothing, as the sweep skips it."""
    tape = tg.trace(lambda x: tg.sin(x) * 0.0 + x)(1.5)
    text = tape.format_reverse()
    assert re.search(r"%1 = sin\(%0\) +adjoint 0 +nothing to send: the sweep skips", text)


def test_format_reverse_explains_when_the_sweep_has_not_run():
    """Several outputs, a constant output, or a bare tape each get a reason, not an error."""
    two = tg.trace(lambda x: (x * 2.0, x + 1.0))(1.0)
    assert "has not run" in two.format_reverse() and "2 outputs" in two.format_reverse()
    constant = tg.trace(lambda x: 3.0)(1.0)
    assert "constant" in viz.format_reverse(constant)
    bare = attrs.evolve(seed_tape(), timings={}, outputs=())
    assert "has not run" in viz.format_reverse(bare)
    adjoints = seed_tape().backward({9: 1.0})
    assert "x1 = input" in viz.format_reverse(bare, adjoints=adjoints)


def test_format_reverse_shows_custom_rules_and_names():
    """A custom_vjp record shows what its bwd sent; input labels appear in both text views."""
    @tg.custom_vjp
    def double(x):
        return 2.0 * x

    double.defvjp(lambda x: (2.0 * x, None), lambda res, g: (2.0 * g,))
    tape = tg.trace(lambda x: double(x) * x, names=(NASTY,))(1.5)
    assert "bwd(1.5) = 3" in tape.format_reverse()
    assert f"{NASTY} = input" in str(tape) and f"double({NASTY})" in tape.format_reverse()


# -- the picture ----------------------------------------------------------------------


def test_draw_tape_source_shows_records_in_order_with_values_and_adjoints():
    """The DOT source has one node per record, labelled edges and an invisible chain in order."""
    dot = seed_tape().draw()
    assert isinstance(dot, graphviz.Digraph)
    src = dot.source
    for text in ("<B>x1</B> [0]", "<B>%9</B> [9]", "mul: x1 * w1", "tanh(%8)", "value 0.707107",
                 "adjoint -1.5", "adjoint 0.5", "rankdir=LR"):
        assert text in src, text
    assert re.search(r"r0 -> r5 \[label=-3\]", src)  # d(x1*w1)/dx1 = w1
    chain = re.findall(r"r(\d+) -> r(\d+) \[style=invis", src)
    assert [(int(a), int(b)) for a, b in chain] == [(k, k + 1) for k in range(9)]


def test_draw_tape_colours_each_kind_of_record_and_says_so_in_a_legend():
    """Inputs, operations and n-ary records get their own fill, named in the legend and the box;
    the output has a thick border; only the kinds present are in the legend."""
    tape = tg.trace(lambda x, y: tg.sum([x * y, tg.tanh(y)]), names=("x", "y"))(2.0, 3.0)
    assert [viz.record_kind(tape, k) for k in range(len(tape))] == [
        "input", "input", "operation", "operation", "n-ary"]
    src = viz.draw_tape(tape).source
    node = {k: re.search(rf"\n\tr{k} \[label=(.*)\]\n", src).group(1) for k in range(len(tape))}
    for k, kind in ((0, "input"), (2, "operation"), (4, "n-ary")):
        assert f'BGCOLOR="{viz.KIND_COLOURS[kind]}"' in node[k], kind
        assert f'<TD BORDER="1" BGCOLOR="{viz.KIND_COLOURS[kind]}">{kind}</TD>' in src, kind
    assert "n-ary, output" in node[4] and f'BORDER="{viz.OUTPUT_BORDER}"' in node[4]
    assert 'TABLE BORDER="0"' in node[2]
    plain = viz.draw_tape(tg.trace(lambda x: x * 2.0)(1.0)).source
    assert ">n-ary</TD>" not in plain and ">input</TD>" in plain and ">output</TD>" in plain
    assert "rank=same" in src and re.search(r"r0\s+r1\s", src)  # the inputs side by side


def test_grad_tape_is_the_tape_of_grad_with_each_record_s_role():
    """grad_tape records what trace(grad(f)) records, and tells forward, rule and sweep apart."""
    def loss(x, w, b):
        return (tg.tanh(x * w + b) - 1.0) ** 2

    tape, roles = viz.grad_tape(loss, 2.0, -0.5, 0.3, argnums=2, names=("x", "w", "b"))
    assert str(tape) == str(tg.trace(tg.grad(loss, argnums=2), names=("x", "w", "b"))(
        2.0, -0.5, 0.3))
    by_line = {line.split(" = ", 1)[1].split("#")[0].strip(): roles.get(k)
               for k, line in enumerate(str(tape).splitlines())}
    assert by_line["x * w"] == "forward"  # f's own arithmetic on numbers b does not touch
    assert by_line["tanh(%4)"] == "forward" and by_line["%5 - 1"] == "forward"
    assert by_line["%5 * %5"] == "rule" and by_line["1 - %6"] == "rule"  # tanh's partial
    assert by_line["%8 ** 1"] == "rule" and by_line["%8 ** 2"] == "forward"
    assert roles[len(tape) - 1] == "sweep"  # the product that makes d loss/d b
    assert set(roles) == {k for k in range(len(tape)) if tape.ops[k] != 0}
    src = viz.draw_tape(tape, roles=roles, title="my title").source
    assert "my title" in src and ">reverse sweep</TD>" in src and ">derivative rule</TD>" in src
    with pytest.raises(ValueError, match="unknown role"):
        viz.draw_tape(tape, roles={4: "backward"})


def test_draw_tape_escapes_nasty_labels_and_shows_constants_inline():
    """A label full of HTML and record metacharacters appears escaped, never raw."""
    tape = tg.trace(lambda x, y: x * 3.5 - y, names=(NASTY, "it's"))(1.0, 2.0)
    src = viz.draw_tape(tape).source
    assert ESCAPED in src and NASTY not in src
    assert "it&#39;s" in src and f"mul: {ESCAPED} * 3.5" in src


def test_draw_tape_options_and_limits():
    """partials=False drops edge labels, rankdir is passed on, and huge tapes are refused."""
    src = seed_tape().draw(partials=False, rankdir="TB").source
    assert "rankdir=TB" in src and "r0 -> r5\n" in src.replace("\t", "")
    big = tg.trace(lambda x: tg.sum([x * float(k) for k in range(400)]))(1.0)
    with pytest.raises(ValueError, match="max_records=None"):
        viz.draw_tape(big)
    assert "r401 [" in viz.draw_tape(big, max_records=None).source


@needs_dot
def test_draw_tape_renders_with_dot(tmp_path):
    """Where dot exists the tape renders to an SVG that shows the escaped label verbatim."""
    tape = tg.trace(lambda x: tg.exp(x) * x, names=(NASTY,))(0.5)
    path = viz.render(tape, tmp_path / "tape.svg")
    assert path == str(tmp_path / "tape.svg")
    svg = Path(path).read_text(encoding="utf-8")
    assert svg.startswith("<?xml") and ESCAPED in svg
    png = viz.render(tape.draw(), tmp_path / "tape", format="png")
    assert png.endswith("tape.png") and Path(png).read_bytes()[:4] == b"\x89PNG"


# -- render without Graphviz -------------------------------------------------------------


def test_render_writes_source_when_dot_is_missing(tmp_path, monkeypatch):
    """With no dot on PATH, render writes the .gv source, warns how to install, and returns it."""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.warns(viz.GraphvizMissingWarning) as caught:
        path = viz.render(seed_tape(), tmp_path / "sub" / "neuron.svg")
    assert path == str(tmp_path / "sub" / "neuron.gv")
    assert "x1" in Path(path).read_text(encoding="utf-8")
    message = str(caught[0].message)
    assert "apt-get install graphviz" in message and "brew install graphviz" in message
    assert "graphviz.org" in message


def test_render_survives_executable_not_found(tmp_path, monkeypatch):
    """If graphviz reports ExecutableNotFound while rendering, render falls back to the source."""
    def missing(self, *args, **kwargs):
        raise graphviz.ExecutableNotFound(["dot"])

    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr(graphviz.Digraph, "pipe", missing)
    with pytest.warns(viz.GraphvizMissingWarning):
        path = viz.render(seed_tape().draw(), tmp_path / "neuron", format="png")
    assert path.endswith("neuron.gv") and "digraph" in Path(path).read_text(encoding="utf-8")


@pytest.mark.parametrize(("name", "written", "format"), [
    ("t.png", "t.png", "png"), ("t.PDF", "t.PDF", "pdf"), ("t.svg", "t.svg", "svg"),
    ("t", "t.svg", "svg"), ("t.v1", "t.v1.svg", "svg"),
])
def test_render_takes_the_format_from_the_suffix(name, written, format, tmp_path, monkeypatch):
    """render(tape, "out/t.png") writes a PNG to out/t.png (it used to write out/t.png.svg)."""
    formats = []

    def pipe(self, format=None, **kwargs):
        formats.append(format)
        return b"picture"

    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr(graphviz.Digraph, "pipe", pipe)
    path = viz.render(seed_tape(), tmp_path / name)
    assert path == str(tmp_path / written) and formats == [format]
    assert [p.name for p in tmp_path.iterdir()] == [written]


def test_render_refuses_other_objects(tmp_path):
    """Anything that is not a drawing or a tape is a TypeError naming its type."""
    with pytest.raises(TypeError, match="list"):
        viz.render([1, 2], tmp_path / "x.svg")


# -- the HTML table ----------------------------------------------------------------------


def test_tape_html_lists_every_record_escaped():
    """The Jupyter table has the six columns, every record, and escaped labels only."""
    tape = tg.trace(lambda x, y: x * y, names=(NASTY, "y"))(2.0, 3.0)
    table = tape._repr_html_()
    assert table == viz.tape_html(tape)
    for header in ("index", "name", "operation", "expression", "value", "adjoint", "kind"):
        assert f"<th>{header}</th>" in table
    assert table.count("<tr>") == 1 + len(tape)
    assert ESCAPED in table and NASTY not in table
    assert f"<td>2</td><td>%2</td><td>mul</td><td>{ESCAPED} * y</td><td>6</td><td>1</td>" in table
    assert f'<td style="background:{viz.KIND_COLOURS["operation"]}">operation</td>' in table
    assert table.count(f'<td style="background:{viz.KIND_COLOURS["input"]}">input</td>') == 2


def test_tape_html_shortens_long_tapes():
    """A long tape shows its first and last rows and says how many are left out."""
    tape = tg.trace(lambda x: tg.sum([x * float(k) for k in range(300)]))(1.0)
    table = viz.tape_html(tape, max_rows=20)
    assert table.count("<tr><td>") == 20 and "282 records not shown" in table


# -- per-record rule checks -----------------------------------------------------------


def test_check_grad_per_record_passes_for_the_built_in_rules():
    """Every built-in rule on a tape using many primitives agrees with central differences."""
    def f(x, y):
        top = tg.log(tg.sigmoid(x * y) + tg.sqrt(y))
        return top / (1.0 + tg.cos(x) ** 2) - tg.dot([x, y], [y, 2.0])

    assert tg.check_grad(f, 0.4, 1.7, argnums=(0, 1), per_record=True) < 1e-5


def test_check_tape_points_at_a_wrong_stored_partial():
    """A tape whose stored partial of sin is wrong is caught at that record, by index and name."""
    tape = tg.trace(lambda x, y: tg.sin(x * y) + y, names=("x", "y"))(0.5, 2.0)
    assert viz.check_tape(tape) < 1e-6
    d0 = list(tape.d0)
    d0[3] = 0.123
    with pytest.raises(viz.RuleMismatchError, match=r"%3 = sin\(%2\).*'sin', tape index 3") as err:
        viz.check_tape(attrs.evolve(tape, d0=d0))
    assert "0.123" in str(err.value) and isinstance(err.value, AssertionError)


def test_check_grad_per_record_points_at_a_wrong_custom_rule():
    """A custom_vjp whose bwd is wrong (2x^2 for x^3) is named, by function and tape index."""
    @tg.custom_vjp
    def cube(x):
        return x * x * x

    cube.defvjp(lambda x: (x * x * x, x), lambda x, g: (2.0 * x * x * g,))
    with pytest.raises(viz.RuleMismatchError, match=r"cube\(%0\).*custom_vjp cube.*tape index 1"):
        tg.check_grad(lambda x: tg.sin(cube(x)) + x, 0.7, per_record=True)
    cube.defvjp(lambda x: (x * x * x, x), lambda x, g: (3.0 * x * x * g,))
    assert tg.check_grad(lambda x: tg.sin(cube(x)) + x, 0.7, per_record=True) < 1e-5


# -- the NaN and inf hunt ----------------------------------------------------------------


def test_debug_nans_names_the_operation_index_and_inputs_of_an_infinite_value():
    """An overflow to inf is reported at its record: operation, tape index and input values."""
    with pytest.raises(tg.NonFiniteError) as err:
        tg.grad(lambda x: (x * 1e308) * 10.0 - 1.0, debug_nans=True)(1.0)
    message = str(err.value)
    assert "value of record %2 is inf" in message
    assert "operation 'mul'" in message and "tape index 2" in message
    assert "inputs %1 = 1e+308" in message


def test_debug_nans_names_the_record_of_an_infinite_adjoint():
    """sqrt(x*x) at 0 has an infinite partial; the adjoint check names the record it reaches."""
    with pytest.raises(tg.NonFiniteError, match=r"adjoint of record %1 is inf.*operation 'mul', "
                                                r"tape index 1, inputs %0 = 0, %0 = 0"):
        tg.grad(lambda x: tg.sqrt(x * x), debug_nans=True)(0.0)
