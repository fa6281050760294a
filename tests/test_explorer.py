"""Tests for the expression explorer, ``python -m tapegrad``: its output and its refusals."""

from __future__ import annotations

import builtins
import shutil
import subprocess
import sys

import pytest

import tapegrad as tg
from tapegrad.__main__ import FUNCTIONS, main

SEED_EXPRESSION = "tanh(x1*w1 + x2*w2 + b)"
SEED_VALUES = ["x1=2", "x2=0", "w1=-3", "w2=1", "b=6.8813735870195432"]


def explore(*argv: str) -> subprocess.CompletedProcess:
    """Run the explorer in a fresh interpreter, as a user would."""
    return subprocess.run([sys.executable, "-m", "tapegrad", *argv],
                          capture_output=True, text=True, timeout=60)


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
    ("(" * 300 + "x" + ")" * 300, "not a valid expression"),
    ("+-" * 150 + "x", "nested more than"),
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
    (["--graph", "sin(x)", "x=1"], "has no sin"),
    (["--graph", "2 ** x", "x=1"], "constant exponent"),
])
def test_explorer_refuses_bad_command_lines(argv, message, capsys):
    """Missing or malformed values and options exit with status 2 and a clear message."""
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_explorer_exit_codes_as_a_process():
    """As a process, a refusal exits 2 and a failed computation (log of -1) exits 1, quietly."""
    refused = explore("x.__class__", "x=1")
    assert refused.returncode == 2 and "attribute access" in refused.stderr
    failed = explore("log(x)", "x=-1")
    assert failed.returncode == 1 and "math domain error" in failed.stderr
    assert "Traceback" not in refused.stderr + failed.stderr
