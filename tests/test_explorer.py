"""Tests for the expression explorer, ``python -m tapegrad``: its output and its refusals."""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad import __main__ as explorer
from tapegrad.__main__ import FUNCTIONS, main

SEED_EXPRESSION = "tanh(x1*w1 + x2*w2 + b)"
SEED_VALUES = ["x1=2", "x2=0", "w1=-3", "w2=1", "b=6.8813735870195432"]


def interpreter_flags() -> list[str]:
    """This interpreter's -X dev and -W options, so a child runs as strictly as the suite."""
    return (["-X", "dev"] if sys.flags.dev_mode else []) + [f"-W{w}" for w in sys.warnoptions]


def explore(*argv: str, **options) -> subprocess.CompletedProcess:
    """Run the explorer in a fresh interpreter, as a user would."""
    return subprocess.run([sys.executable, *interpreter_flags(), "-m", "tapegrad", *argv],
                          capture_output=True, text=True, timeout=60, **options)


needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot program is not installed")


def test_explorer_prints_value_tape_sweep_and_gradient():
    """The seed neuron shows its value, Wengert list, reverse sweep and every partial derivative."""
    run = explore(SEED_EXPRESSION, *SEED_VALUES)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert out.startswith(f"{SEED_EXPRESSION} = 0.7071067812\n")
    for line in ("x1 = input", "%5 = x1 * w1", "%9 = tanh(%8)", "reverse sweep, from the last",
                 "x1 += 0.5 * -3 = -1.5", "d/dx1 = -1.5", "d/dx2 = 0.5", "d/dw1 = 1",
                 "d/dw2 = 0", "d/db = 0.5"):
        assert line in out, line
    sweep = out.split("reverse sweep, from the last record to the first")[1].splitlines()
    assert sweep[2].startswith("%9 = tanh(%8)") and sweep[11].startswith("x1 = input")
    assert run.stderr == ""


def test_explorer_graph_view_and_pictures(tmp_path):
    """--graph lists the graph engine's nodes and agreement; --svg writes both pictures."""
    svg = tmp_path / "seed.svg"
    run = explore("--graph", "--svg", str(svg), SEED_EXPRESSION, *SEED_VALUES)
    assert run.returncode == 0, run.stderr
    assert "The graph engine (tapegrad.graph.Value)" in run.stdout
    assert "gradients agree with the tape: yes" in run.stdout
    suffix = ".svg" if shutil.which("dot") else ".gv"  # without dot, render writes the source
    for name in ("seed", "seed-graph"):
        assert (tmp_path / f"{name}{suffix}").exists(), name


def test_explorer_runs_every_function_of_the_primitive_table(capsys):
    """Each one-argument function of tg.PRIMITIVES without an operator symbol can be called."""
    names = {p.name for p in tg.PRIMITIVES if p.arity == 1 and p.infix is None} | {"abs"}
    assert set(FUNCTIONS) == names
    for name in FUNCTIONS:
        assert main([f"{name}(x) * 2", "x=0.5"]) == 0, name
        assert "d/dx = " in capsys.readouterr().out


def test_explorer_handles_constants_minus_signs_and_unused_values(capsys):
    """A constant expression, a leading minus after --, and an unused variable all work."""
    assert main(["2 ** 3 + 1"]) == 0
    assert capsys.readouterr().out.startswith("2 ** 3 + 1 = 9\n")
    assert main(["--", "-x * +y", "x=3", "y=2", "z=1"]) == 0
    captured = capsys.readouterr()
    assert "d/dx = -2" in captured.out and "d/dy = -3" in captured.out
    assert "z is not used" in captured.err


def test_explorer_never_calls_eval(monkeypatch, capsys):
    """The expression is evaluated by walking its syntax tree: eval and exec are never called."""
    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    assert main(["sigmoid(x) ** 2 / (1 + exp(-x))", "x=0.3"]) == 0
    assert "d/dx" in capsys.readouterr().out


REFUSED = [
    ("x.real", "attribute access"),
    ("x[0]", "indexing"),
    ("(lambda: x)()", "unknown function"),
    ("lambda: x", "lambda not allowed"),
    ("[x for x in (1, 2)]", "comprehensions not allowed"),
    ("sum(t for t in x)", "unknown function 'sum'"),
    ("import os", "not a valid expression"),
    ("__import__('os').system('echo hacked')", "only plain names"),
    ("__import__('os')", "unknown function '__import__'"),
    ("tanh(x=1)", "exactly one positional argument"),
    ("tanh(x, x)", "exactly one positional argument"),
    ("foo(x)", "unknown function 'foo'"),
    ("x + y", "no value for y"),
    ("x ** 10**10", "limited to +-1000"),
    ("x ** 1001", "limited to +-1000"),
    ("x ** -(2 ** 11)", "limited to +-1000"),
    ("x ** 10 ** 10 ** 10", "limited to +-1000"),
    ("'a' + x", "'a' is not a number"),
    ("x < 1", "comparisons not allowed"),
    ("x if x else 1", "if-else expressions not allowed"),
    ("x @ x", "operator"),
    ("x // 2", "operator"),
    ("not x", "operator"),
    ("(x, x)", "tuples not allowed"),
    ("tanh", "tanh is a function"),
    ("1e999 * x", "too large"),
    ("9" * 400 + " * x", "too large"),
    ("x; x", "not a valid expression"),
    ("(" * 300 + "x" + ")" * 300, "not a valid expression: too many nested parentheses"),
    (" " + "-" * 5000 + "x", "nested too deeply for Python's parser"),  # space: not an option
    ("x" + "+x" * 3500, "nested too deeply for Python's parser"),
    ("x" * 10_001, "the limit is 10000"),
    ("", "the expression is empty"),
    ("   ", "the expression is empty"),
    ("x=1", "the expression comes first"),
    ("log(0) * x", "the constant 'log(0)' cannot be computed"),
    ("x ** (1 / 0)", "the constant '1 / 0' cannot be computed"),
    ("x\0", "not a valid expression"),
    ("x ** 1j", "1j is not a number"),
    ("None * x", "None is not a number"),
    ("True * x", "True is not a number"),
]


@pytest.mark.parametrize(("expression", "message"), REFUSED)
def test_explorer_refuses(expression, message, capsys):
    """Each construct outside the allow-list exits with status 2 and says what is wrong."""
    assert main([expression, "x=1"]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "refused" in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(("argv", "message"), [
    ([], "no expression given"),
    (["x", "x"], "not a variable assignment"),
    (["x", "x=abc"], "'abc' is not a number"),
    (["x", "x=nan"], "finite number"),
    (["x", "x=1", "x=2"], "given twice"),
    (["x", "tanh=1"], "function name"),
    (["x", "x=1", "--frobnicate"], "unknown option"),
    (["--x", "x=1"], "put -- before an expression"),
    (["x", "x=1", "--svg"], "--svg needs a file name"),
    (["x", "x=1", "--svg="], "--svg needs a file name"),
    (["x", "x=1", "--svg", "a.svg", "--svg", "b.svg"], "--svg is given twice"),
    (["x", "x=1", "--svg", "out/a.jpg"], "must end in .svg, .png or .pdf"),
    (["x", "x=1", "--svg", "out/a"], "must end in .svg, .png or .pdf"),
    (["x", "x=1", "--svg", "a.svg\0"], "must end in .svg, .png or .pdf"),
    (["x", "x=1", "--svg", "a\0.svg"], "NUL character"),
    (["x", "x=1", "--svg", "a" * 300 + ".svg"], "name too long"),
    (["--graph", "sin(x)", "x=1"], "has no sin"),
    (["--graph", "sqrt(x)", "x=1"], "write x ** 0.5 instead"),
    (["--graph", "2 ** x", "x=1"], "constant exponent"),
    (["x", "if=1"], "if is a Python keyword"),
    (["fi", "fi=1", "\ufb01=2"], "fi is given twice"),  # the ligature reads as "fi" in Python
    (["x", "x=1e309"], "finite number"),
    (["x", "x=-inf"], "finite number"),
    (["x" + " + x" * 300, "x=1", "--svg", "big.svg"], "the tape has 301 records"),
])
def test_explorer_refuses_bad_command_lines(argv, message, capsys):
    """Missing or malformed values and options exit with status 2 and a clear message."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.count("\n") == 1, captured.err
    assert captured.out == ""


@pytest.mark.parametrize(("argv", "message"), [
    (["log(x)", "x=-1"], "math domain error; choose values inside each operation's domain"),
    (["sqrt(x)", "x=-1"], "log and sqrt need positive arguments"),
    (["x ** y", "x=-1", "y=0.5"], "a negative base needs an integer exponent"),
    (["1 / x", "x=0"], "keep every divisor"),
    (["exp(x)", "x=1000"], "too large for a float"),
    (["--graph", "exp(x)", "x=1000"], "too large for a float"),
    (["2 ** x", "x=2000"], "choose smaller values"),
])
def test_explorer_failed_computations_exit_2_saying_what_to_do(argv, message, capsys):
    """A computation outside a function's domain exits 2 with one line: the error and the advice."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("python -m tapegrad: computing the expression failed: ")
    assert message in captured.err and captured.err.count("\n") == 1, captured.err
    assert captured.out == ""


def test_explorer_picture_path_problems_exit_2(tmp_path, capsys):
    """A picture path that is a directory, or lies under a file, is refused before computing."""
    (tmp_path / "file").write_text("")
    (tmp_path / "dir.svg").mkdir()
    for path, message in ((tmp_path / "file" / "a.svg", "is a file, not a directory"),
                          (tmp_path / "dir.svg", "is a directory")):
        assert main(["x", "x=1", "--svg", str(path)]) == 2
        captured = capsys.readouterr()
        assert message in captured.err and captured.out == ""


def test_explorer_unwritable_picture_exits_2(tmp_path, monkeypatch, capsys):
    """When the system refuses to write the picture, the explorer says so and exits 2."""
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert main(["x * 2", "x=1", "--svg", str(tmp_path / "new" / "a.svg")]) == 2
    captured = capsys.readouterr()
    assert "cannot write the picture" in captured.err and "Permission denied" in captured.err
    assert captured.err.count("\n") == 1


def fake_dot(monkeypatch, failure: Exception) -> None:
    """Pretend Graphviz's dot is installed and fails with ``failure`` when run."""
    def run(*args, **kwargs):
        raise failure

    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr(explorer.subprocess, "run", run)


def test_explorer_stops_a_slow_layout_and_keeps_its_source(tmp_path, monkeypatch, capsys):
    """dot runs with a time limit; when it is exceeded, the DOT source is kept and status is 2."""
    fake_dot(monkeypatch, subprocess.TimeoutExpired(["dot"], explorer.PICTURE_SECONDS))
    path = tmp_path / "out" / "a.png"
    assert main(["x * y", "x=1", "y=2", "--svg", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"within {explorer.PICTURE_SECONDS} s and was stopped" in err
    assert f"dot -Tpng {path.with_suffix('.gv')} -o {path}" in err and err.count("\n") == 1
    assert "digraph" in path.with_suffix(".gv").read_text(encoding="utf-8")


def test_explorer_reports_a_failing_dot(tmp_path, monkeypatch, capsys):
    """When dot itself fails, its first line of complaint is shown, with a way to check it."""
    stderr = b'There is no layout engine support for "dot"\nPerhaps "dot -c" needs to be run'
    fake_dot(monkeypatch, subprocess.CalledProcessError(1, ["dot"], b"", stderr))
    assert main(["x * y", "x=1", "y=2", "--svg", str(tmp_path / "a.svg")]) == 2
    err = capsys.readouterr().err
    assert 'could not draw the picture (There is no layout engine support for "dot")' in err
    assert "dot -V" in err and err.count("\n") == 1


def test_explorer_reports_an_unforeseen_exception_as_a_bug(monkeypatch, capsys):
    """Even an exception the explorer did not foresee is one line and status 2, not a traceback."""
    def broken(*args):
        raise AttributeError("simulated")

    monkeypatch.setattr(explorer, "run", broken)
    assert main(["x", "x=1"]) == 2
    err = capsys.readouterr().err
    assert "internal error, a bug in tapegrad: AttributeError: simulated" in err
    assert err.count("\n") == 1


def test_explorer_locale_and_encoding_problems_are_one_line(capsys):
    """Undecodable bytes in the arguments, or output the terminal cannot encode: one line, 2."""
    assert main(["\udccf\udc80 * 2", "x=1"]) == 2  # how Python shows bytes it cannot decode
    assert "is not text in this locale's encoding" in capsys.readouterr().err
    ascii_only = explore("\u03c0 * 2", "\u03c0=1", env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert ascii_only.returncode == 2 and ascii_only.stdout == ""
    assert ascii_only.stderr.startswith("python -m tapegrad: cannot print '\\u03c0'")
    assert "PYTHONIOENCODING=utf-8" in ascii_only.stderr and ascii_only.stderr.count("\n") == 1


def test_explorer_graph_of_a_constant(capsys):
    """--graph with constants only shows the value and says there is nothing to compare."""
    assert main(["--graph", "2+3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2+3 = 5\n") and "no variables, so no gradients to compare" in out


def test_explorer_graph_agrees_with_the_tape_at_infinity(capsys):
    """Gradients that overflow to inf on both engines agree (inf - inf is NaN, not a mismatch)."""
    assert main(["--graph", "x * x * x", "x=1e200"]) == 0
    out = capsys.readouterr().out
    assert "d/dx = inf\n" in out and "gradients agree with the tape: yes" in out


def test_explorer_deep_nesting_is_not_limited_by_recursion(capsys):
    """Hundreds of nested minus signs or a 2000-term sum work: nothing in the explorer recurses."""
    assert main(["--", "-" * 501 + "x", "x=1"]) == 0
    assert "d/dx = -1\n" in capsys.readouterr().out
    assert main(["--graph", "x" + " + x" * 1999, "x=1"]) == 0
    out = capsys.readouterr().out
    assert "d/dx = 2000\n" in out and "gradients agree with the tape: yes" in out
    assert main(["x ** " + "(" * 150 + "2" + ")" * 150, "x=3"]) == 0
    assert "d/dx = 6\n" in capsys.readouterr().out


def test_explorer_names_are_read_as_python_reads_them(capsys):
    """A variable written with a ligature matches the expression's name (Python's NFKC form)."""
    assert main(["\ufb01 * 2", "\ufb01=3"]) == 0
    assert "d/dfi = 2" in capsys.readouterr().out


@pytest.mark.parametrize(("suffix", "magic"), [
    (".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF"), (".SVG", b"<?xml"),
])
@needs_dot
def test_explorer_writes_the_format_its_suffix_names(suffix, magic, tmp_path, capsys):
    """--svg out/a.png writes a PNG to out/a.png (not out/a.png.svg); likewise .svg and .pdf."""
    path = tmp_path / "out" / f"a{suffix}"
    assert main(["--graph", "tanh(x) * 2", "x=0.5", "--svg", str(path)]) == 0
    out = capsys.readouterr().out
    graph_path = path.with_name(f"a-graph{suffix}")
    assert f"wrote the tape's picture to {path}\n" in out
    assert f"wrote the graph's picture to {graph_path}\n" in out
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, graph_path.name])
    for written in (path, graph_path):
        assert written.read_bytes().startswith(magic)


def test_explorer_without_dot_writes_the_source_and_notes_it(tmp_path, monkeypatch, capsys):
    """Without Graphviz's dot the DOT source is written, with a one-line note, and status 0."""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["x * 2", "x=1", "--svg", str(tmp_path / "a.png")]) == 0
    captured = capsys.readouterr()
    assert f"wrote the tape's picture to {tmp_path / 'a.gv'}" in captured.out
    assert "digraph" in (tmp_path / "a.gv").read_text(encoding="utf-8")
    (note,) = captured.err.splitlines()
    assert note.startswith("note: Graphviz's dot program is not installed")


def test_explorer_exit_codes_as_a_process():
    """As a process, a refusal and a failed computation (log of -1) both exit 2, on one line."""
    refused = explore("x.__class__", "x=1")
    assert refused.returncode == 2 and "attribute access" in refused.stderr
    failed = explore("log(x)", "x=-1")
    assert failed.returncode == 2 and "math domain error" in failed.stderr
    for run in (refused, failed):
        assert run.stderr.count("\n") == 1 and run.stdout == ""


def test_explorer_as_a_process_never_shows_a_traceback():
    """The reported crashes (--graph of a constant, 500 nested minus signs) run cleanly now."""
    constant = explore("--graph", "2+3")
    assert constant.returncode == 0 and constant.stderr == ""
    assert "no variables, so no gradients to compare" in constant.stdout
    minus = explore("--", "-" * 500 + "x", "x=1")
    assert minus.returncode == 0 and minus.stderr == "" and "d/dx = 1\n" in minus.stdout
    deep = explore("--", "-" * 5000 + "x", "x=1")
    assert deep.returncode == 2 and "nested too deeply" in deep.stderr
    assert "Traceback" not in constant.stderr + minus.stderr + deep.stderr


def test_explorer_without_dot_under_warnings_as_errors(tmp_path):
    """With no dot on PATH and -W error, the missing-Graphviz warning is a note, not a crash."""
    empty = tmp_path / "bin"
    empty.mkdir()
    run = subprocess.run([sys.executable, "-W", "error", "-m", "tapegrad", "x * 2", "x=1",
                          "--svg", str(tmp_path / "a.svg")], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PATH": str(empty)})
    assert run.returncode == 0, run.stderr
    assert run.stderr.startswith("note: Graphviz's dot program is not installed")
    assert (tmp_path / "a.gv").exists()


def test_explorer_output_piped_into_a_closed_reader_stops_quietly():
    """When the reader of stdout goes away early (| head), the explorer exits 0 without noise."""
    with subprocess.Popen([sys.executable, *interpreter_flags(), "-m", "tapegrad",
                           "x" + " + x" * 2000, "x=1"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.read(10) == b"x + x + x "
        process.stdout.close()  # output is far larger than a pipe's buffer: the next write fails
        err = process.stderr.read()
        assert process.wait(timeout=60) == 0 and err == b""


# -- fuzzing: whatever the input, status 0 or 2 and never an exception --------------------

NAMES = st.sampled_from(["x", "y", "z", "x1", "inf", "nan", "e", "tanh", "foo", "_", "\ufb01"])
NUMBERS = st.one_of(
    st.integers(0, 10**30).map(str),
    st.floats(0, 1e300).map(repr),
    st.sampled_from(["0", "0.0", "1e999", "9" * 400, "1e-320", "0x10", "1_000", "1j", "0b1",
                     "1e308", "2.5e-308", "True", "None", "'a'", "...", "[1]"]),
)
CALLEES = st.sampled_from([*FUNCTIONS, "foo", "print", "__import__", "x.real"])
OPERATORS = st.sampled_from(["+", "-", "*", "/", "**", "//", "%", "@", "<", "and", ","])


def _nested(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, OPERATORS, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, OPERATORS, inner).map(lambda t: f"{t[0]}{t[1]}{t[2]}"),
        st.tuples(st.sampled_from(["-", "+", "~", "not "]), inner).map("".join),
        st.tuples(CALLEES, inner).map(lambda t: f"{t[0]}({t[1]})"),
    )


DEEP = st.builds(
    lambda shape, n: shape(n), st.sampled_from([
        lambda n: "-" * n + "x",
        lambda n: "(" * (n % 260) + "x" + ")" * (n % 260),
        lambda n: "tanh(" * (n % 220) + "x" + ")" * (n % 220),
        lambda n: "x" + " * y" * n,
        lambda n: "x" + " ** x" * (n % 50),
        lambda n: "2 ** " * (n % 40) + "x",
    ]), st.integers(0, 3200))
EXPRESSIONS = st.one_of(st.recursive(st.one_of(NAMES, NUMBERS), _nested, max_leaves=12), DEEP)
VALUES = st.one_of(NUMBERS, st.sampled_from(["inf", "-inf", "nan", "", "abc", "1e309", "-0",
                                             "-1", "0.5", "1e-5", "700", " 2 "]))
ASSIGNMENTS = st.lists(st.one_of(st.tuples(NAMES, VALUES).map("=".join), st.text(max_size=8)),
                       max_size=5)
PICTURES = st.sampled_from(["a.svg", "a.png", "a.pdf", "a.SVG", "a.jpg", "a", "dir.svg",
                            "file/a.svg", "new/sub/a.svg", "a" * 300 + ".svg", ".svg", ""])
OPTIONS = st.lists(st.one_of(st.sampled_from(["--graph", "--", "--svg", "--frobnicate"]),
                             PICTURES.map(lambda p: f"--svg={p}")), max_size=3)
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


# Well-formed command lines, so that most examples get as far as computing and printing.
VARIABLES = ("x", "y", "z")
GOOD_NUMBERS = st.one_of(
    st.floats(-1e6, 1e6).map(repr),
    st.sampled_from(["0", "-0", "1", "-1", "2", "0.5", "1e308", "-1e308", "1e-320", "700",
                     "-700", "1e20", "3"]),
)
ALLOWED = st.recursive(
    st.one_of(st.sampled_from(VARIABLES), GOOD_NUMBERS.map(lambda v: v.lstrip("-"))),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**"]), inner)
        .map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["-", "+"]), inner).map("".join),
        st.tuples(st.sampled_from(FUNCTIONS), inner).map(lambda t: f"{t[0]}({t[1]})"),
    ), max_leaves=10)
GOOD_VALUES = st.fixed_dictionaries({}, optional={v: GOOD_NUMBERS for v in VARIABLES})
GOOD_OPTIONS = st.lists(st.one_of(st.just("--graph"), st.sampled_from(
    ["a.svg", "a.pdf", "a.png", "new/sub/a.svg"]).map(lambda p: f"--svg={p}")), max_size=2,
    unique_by=lambda o: o[:5])


@pytest.fixture
def playground(tmp_path, monkeypatch):
    """A working directory with a file and a directory named like pictures; no dot, for speed."""
    (tmp_path / "file").write_text("")
    (tmp_path / "dir.svg").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(shutil, "which", lambda name: None)  # rendering is tested above
    return tmp_path


def run_in_process(argv: list[str]) -> tuple[int, str, str]:
    """main(argv) with its output captured: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


def assert_clean_outcome(status: int, out: str, err: str) -> None:
    """Status 0 with only notes on stderr, or status 2 with one line saying why: nothing else."""
    assert status in (0, 2), (status, err)
    assert "internal error" not in err and "Traceback" not in err, err
    if status == 2:
        assert err.startswith("python -m tapegrad: ") and err.count("\n") == 1, err
    else:
        assert out, "status 0 but nothing shown"
        assert all(line.startswith("note: ") for line in err.splitlines()), err


@FUZZ
@given(options=OPTIONS, expression=EXPRESSIONS, assignments=ASSIGNMENTS,
       picture_first=st.booleans())
def test_explorer_survives_nasty_expressions(playground, options, expression, assignments,
                                             picture_first):
    """Well-formed but nasty expressions, values and options: status 0 or 2, never a raise."""
    argv = [*options, expression, *assignments] if picture_first else \
        [expression, *assignments, *options]
    assert_clean_outcome(*run_in_process(argv))


@FUZZ
@given(options=GOOD_OPTIONS, expression=st.one_of(ALLOWED, DEEP), values=GOOD_VALUES)
def test_explorer_survives_well_formed_command_lines(playground, options, expression, values):
    """Allowed expressions with finite values, --graph and good picture paths: 0 or 2, no raise.

    Here failures can only come from computing (domain, overflow, division by zero), a picture
    too large, a missing value, or a refused constant; each must be one line with status 2.
    With --graph, the graph engine's gradients must agree with the tape's.
    """
    argv = [*options, "--", expression, *(f"{k}={v}" for k, v in values.items())]
    status, out, err = run_in_process(argv)
    assert_clean_outcome(status, out, err)
    if status == 0 and "--graph" in options:  # two engines, one gradient
        assert "gradients agree with the tape: yes" in out or "no variables" in out, out


@FUZZ
@given(argv=st.lists(st.text(st.characters(exclude_categories=())), max_size=6))
def test_explorer_survives_random_text(playground, argv):
    """Random text anywhere on the command line: status 0 or 2, never a raise."""
    assert_clean_outcome(*run_in_process(argv))
