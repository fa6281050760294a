"""The expression explorer: ``python -m tapegrad "EXPRESSION" name=value ...``.

Prints the expression's value, its tape (the Wengert list), the reverse sweep and
the gradient with respect to every variable. ``--svg FILE`` writes the tape's
picture; ``--graph`` also builds the expression with the graph engine
(:class:`tapegrad.graph.Value`) and shows its nodes, values and gradients for
comparison (with ``--svg``, its picture goes to FILE with a ``-graph`` suffix).

The expression is parsed with :mod:`ast` and checked against an allow-list:
numbers, variable names, ``+ - * / **``, unary ``-`` and ``+``, and calls of
tapegrad's one-argument math functions by name. It is never given to ``eval``:
it is evaluated by walking its syntax tree. Refused input exits with status 2,
an error while computing (such as ``log`` of a negative number) with status 1.
"""

from __future__ import annotations

import ast
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable

import tapegrad as tg
from tapegrad import graph, viz

USAGE = """\
usage: python -m tapegrad [--svg FILE] [--graph] "EXPRESSION" NAME=NUMBER ...

  python -m tapegrad "tanh(x1*w1 + x2*w2 + b)" x1=2 x2=0 w1=-3 w2=1 b=6.8813735870195432

EXPRESSION uses numbers, variable names, + - * / ** (unary - and +), and the
functions {functions}.
  --svg FILE   write the tape's picture to FILE (SVG)
  --graph      also build the expression with the graph engine (tapegrad.graph.Value)
               and show its nodes and gradients; with --svg, write its picture too
Put -- before an expression that starts with '-'.
"""

# The callable names: the primitive table's one-argument functions (no operator symbol).
FUNCTIONS = tuple(sorted({p.name for p in tg.PRIMITIVES if p.arity == 1 and p.infix is None}
                         | {"abs"}))
# The ones the graph engine has as methods of Value.
GRAPH_FUNCTIONS = tuple(f for f in FUNCTIONS if callable(getattr(graph.Value, f, None)))
MAX_EXPONENT = 1000  # |constant exponent| allowed after **
MAX_LENGTH = 10_000  # characters of expression
MAX_DEPTH = 200  # nesting of the syntax tree

_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_REFUSED_NAMES = {
    ast.Attribute: "attribute access (a.b)", ast.Subscript: "indexing (a[i])",
    ast.Lambda: "lambda", ast.ListComp: "comprehensions", ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions", ast.GeneratorExp: "generator expressions",
    ast.Compare: "comparisons", ast.BoolOp: "and/or", ast.IfExp: "if-else expressions",
    ast.List: "lists", ast.Tuple: "tuples", ast.Set: "sets", ast.Dict: "dicts",
    ast.JoinedStr: "f-strings", ast.NamedExpr: "assignment (:=)", ast.Starred: "* unpacking",
}


class Refused(Exception):
    """The command line or the expression is outside what the explorer accepts."""


# ---------------------------------------------------------------------------
# Checking the expression against the allow-list.
# ---------------------------------------------------------------------------


def parse(text: str) -> tuple[ast.expr, list[str]]:
    """The checked syntax tree of ``text`` and its variable names in order of appearance.

    >>> parse("tanh(a * b + a)")[1]
    ['a', 'b']
    """
    if len(text) > MAX_LENGTH:
        raise Refused(f"the expression is {len(text)} characters long; the limit is {MAX_LENGTH}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise Refused(f"not a valid expression: {e.msg}") from None
    except (ValueError, RecursionError, MemoryError) as e:
        raise Refused(f"not a valid expression: {e}") from None
    names: list[str] = []
    _check(tree.body, 0, names)
    return tree.body, names


def _check(node: ast.AST, depth: int, names: list[str]) -> None:
    if depth > MAX_DEPTH:
        raise Refused(f"the expression is nested more than {MAX_DEPTH} levels deep")
    if isinstance(node, ast.Constant):
        _number(node)
    elif isinstance(node, ast.Name):
        if node.id in FUNCTIONS:
            raise Refused(f"{node.id} is a function: call it, as in {node.id}(x)")
        if node.id not in names:
            names.append(node.id)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _OPERATORS:
            raise Refused(f"the operator in {_source(node)!r} is not allowed; use + - * / **")
        _check(node.left, depth + 1, names)
        _check(node.right, depth + 1, names)
        if isinstance(node.op, ast.Pow) and not _variables(node.right):
            exponent = _constant_value(node.right)
            if not abs(exponent) <= MAX_EXPONENT:
                raise Refused(f"the exponent in {_source(node)!r} is {exponent:.6g}; "
                              f"constant exponents are limited to +-{MAX_EXPONENT}")
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise Refused(f"the operator in {_source(node)!r} is not allowed; only - and + "
                          "may come before a term")
        _check(node.operand, depth + 1, names)
    elif isinstance(node, ast.Call):
        fname = node.func.id if isinstance(node.func, ast.Name) else None
        if fname not in FUNCTIONS:
            what = repr(fname) if fname else f"{_source(node.func)!r} (only plain names)"
            raise Refused(f"unknown function {what}; the functions are {', '.join(FUNCTIONS)}")
        if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            raise Refused(f"{fname} takes exactly one positional argument, as in {fname}(x); "
                          f"got {_source(node)!r}")
        _check(node.args[0], depth + 1, names)
    else:
        what = _REFUSED_NAMES.get(type(node), type(node).__name__)
        raise Refused(f"{what} not allowed: {_source(node)!r}. Use numbers, variables, "
                      f"+ - * / ** and the functions {', '.join(FUNCTIONS)}")


def _number(node: ast.Constant) -> float:
    value = node.value
    if type(value) not in (int, float):
        raise Refused(f"{value!r} is not a number; only numbers and variables are allowed")
    try:
        number = float(value)  # type: ignore[arg-type]  # int or float, checked above
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise Refused("a number in the expression is too large for a float (over 1.8e308)")
    return number


def _variables(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) for n in ast.walk(node))


def _constant_value(node: ast.AST) -> float:
    """The float value of a checked subexpression without variables."""
    try:
        return float(evaluate(node, {}, _FLOATS))
    except (ArithmeticError, ValueError) as e:
        raise Refused(f"the constant {_source(node)!r} cannot be computed: {e}") from None


def _source(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------
# Evaluating the checked tree: the same walk for tapegrad values and graph nodes.
# ---------------------------------------------------------------------------


def evaluate(node: ast.AST, env: dict[str, Any], ops: dict[str, Callable]) -> Any:
    """The value of a checked expression, with ``env`` for variables and ``ops`` for operations."""
    if isinstance(node, ast.Constant):
        return float(node.value)  # type: ignore[arg-type]  # checked numeric by check()
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.BinOp):
        left = evaluate(node.left, env, ops)
        right = evaluate(node.right, env, ops)
        return ops[_OPERATORS[type(node.op)]](left, right)
    if isinstance(node, ast.UnaryOp):
        operand = evaluate(node.operand, env, ops)
        return -operand if isinstance(node.op, ast.USub) else operand
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name), "checked by parse"
    return ops[node.func.id](evaluate(node.args[0], env, ops))


def _arithmetic(power: Callable) -> dict[str, Callable]:
    return {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
            "/": lambda a, b: a / b, "**": power}


# tapegrad: its functions work on floats and on traced values alike.
_TAPE = {**_arithmetic(tg.power), **{f: getattr(tg, f) for f in FUNCTIONS}}
_FLOATS = _TAPE


def _graph_call(name: str) -> Callable:
    def call(x: Any) -> Any:
        return getattr(x, name)() if isinstance(x, graph.Value) else getattr(tg, name)(x)
    return call


def _graph_power(x: Any, y: Any) -> Any:
    return x ** y if isinstance(x, graph.Value) else tg.power(x, y)


_GRAPH = {**_arithmetic(_graph_power), **{f: _graph_call(f) for f in GRAPH_FUNCTIONS}}


def _graph_limits(tree: ast.AST) -> None:
    """Refuse what graph.Value cannot build: other functions, a variable exponent."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.func.id not in GRAPH_FUNCTIONS:  # type: ignore
            raise Refused(f"--graph: the graph engine (tapegrad.graph.Value) has no "
                          f"{node.func.id}; it has {', '.join(GRAPH_FUNCTIONS)}")  # type: ignore
        if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow)
                and _variables(node.right)):
            raise Refused(f"--graph: graph.Value supports ** only with a constant exponent, "
                          f"not {_source(node)!r}")


# ---------------------------------------------------------------------------
# The command line.
# ---------------------------------------------------------------------------


def parse_arguments(argv: list[str]) -> tuple[str, dict[str, float], str | None, bool]:
    """(expression, values, svg path or None, graph?) from the command line."""
    svg, show_graph = None, False
    positional: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--":
            positional.extend(args)
        elif arg == "--graph":
            show_graph = True
        elif arg == "--svg" or arg.startswith("--svg="):
            svg = arg[6:] if arg.startswith("--svg=") else next(args, None)
            if not svg:
                raise Refused("--svg needs a file name, as in --svg out/tape.svg")
        elif arg.startswith("--"):
            raise Refused(f"unknown option {arg} (put -- before an expression that starts "
                          "with '-')")
        else:
            positional.append(arg)
    if not positional:
        raise Refused("no expression given")
    expression, values = positional[0], {}
    for item in positional[1:]:
        name, sep, number = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise Refused(f"{item!r} is not a variable assignment; write NAME=NUMBER, as in x1=2")
        if name in FUNCTIONS:
            raise Refused(f"{name} is a function name and cannot be a variable")
        if name in values:
            raise Refused(f"{name} is given twice")
        try:
            values[name] = float(number)
        except ValueError:
            raise Refused(f"{item!r}: {number!r} is not a number") from None
        if not math.isfinite(values[name]):
            raise Refused(f"{item!r}: the value must be a finite number")
    return expression, values, svg, show_graph


def _number_text(x: float) -> str:
    return f"{x:.10g}"


def run(expression: str, values: dict[str, float], svg: str | None, show_graph: bool) -> None:
    """Print the tape view (and the graph view) of one expression; write pictures."""
    tree, used = parse(expression)
    missing = [name for name in used if name not in values]
    if missing:
        raise Refused(f"no value for {', '.join(missing)}; pass "
                      + " ".join(f"{m}=NUMBER" for m in missing))
    if show_graph:
        _graph_limits(tree)
    for name in values:
        if name not in used:
            print(f"note: {name} is not used by the expression", file=sys.stderr)
    names = tuple(name for name in values if name in used)

    def f(*args: Any) -> Any:
        return evaluate(tree, dict(zip(names, args)), _TAPE)

    tape = tg.trace(f, names=names)(*(values[n] for n in names))
    root = tape.outputs[0]
    value = viz.plain(tape.values[root]) if root >= 0 else float(f(*(values[n] for n in names)))
    adjoints = tape.timings.get("adjoints") or [0.0] * len(tape)
    gradient = {n: viz.plain(adjoints[i]) for n, i in zip(names, tape.inputs)}

    print(f"{expression} = {_number_text(value)}")
    if root < 0:
        print("(a constant: it does not depend on any variable, so nothing is recorded)")
    print("\nThe tape: the forward Wengert list, one record per operation, in recorded order")
    print(tape if len(tape) else "(empty)")
    print("\nThe reverse sweep over it")
    print(tape.format_reverse())
    print("\nGradient" + ("" if names else ": no variables"))
    for name, g in gradient.items():
        print(f"  d/d{name} = {_number_text(g)}")
    if svg:
        print(f"\nwrote the tape's picture to {viz.render(tape.draw(), svg)}")
    if show_graph:
        _show_graph(tree, names, values, gradient, svg)


def _show_graph(tree: ast.AST, names: tuple, values: dict, gradient: dict,
                svg: str | None) -> None:
    leaves = {n: graph.Value(values[n], label=n) for n in names}
    root = evaluate(tree, leaves, _GRAPH)
    if not isinstance(root, graph.Value):
        root = graph.Value(root, label="output")
    root.backward()
    order = graph.topological_order(root)
    print("\nThe graph engine (tapegrad.graph.Value): the same expression as linked nodes")
    print("(topological order, parents first; backward sorted them, then ran each node's "
          "closure in reverse)")
    print(f"  {'node':<14}{'op':<8}{'data':>14}{'grad':>14}")
    for node in order:
        label = node.label or ("(constant)" if not node._prev else "")
        print(f"  {label:<14}{node._op:<8}{node.data:>14.6g}{node.grad:>14.6g}")
    differences = [abs(leaves[n].grad - gradient[n]) for n in names]
    largest = max(differences, default=0.0)
    verdict = "yes" if largest <= 1e-9 * max(1.0, *map(abs, gradient.values())) else "NO"
    print(f"gradients agree with the tape: {verdict} (largest difference {largest:.3g})")
    if svg:
        path = Path(svg)
        graph_path = path.with_name(path.stem + "-graph" + path.suffix)
        print(f"wrote the graph's picture to {viz.render(graph.draw_dot(root), graph_path)}")


def main(argv: list[str] | None = None) -> int:
    """Run the explorer; return the exit status (0 fine, 1 computing failed, 2 refused)."""
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv[: argv.index("--") if "--" in argv else None]):
        print(USAGE.format(functions=", ".join(FUNCTIONS)))
        return 0
    try:
        run(*parse_arguments(argv))
    except Refused as e:
        print(f"python -m tapegrad: refused: {e}", file=sys.stderr)
        print('usage: python -m tapegrad [--svg FILE] [--graph] "EXPRESSION" NAME=NUMBER ...'
              "  (--help for more)", file=sys.stderr)
        return 2
    except (ArithmeticError, ValueError) as e:
        print(f"python -m tapegrad: computing the expression failed: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into head: stop quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the final flush cannot fail
    return 0


if __name__ == "__main__":
    sys.exit(main())
