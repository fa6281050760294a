"""The expression explorer: ``python -m tapegrad "EXPRESSION" name=value ...``.

Prints the expression's value, its tape (the Wengert list), the reverse sweep and
the gradient with respect to every variable. ``--svg FILE`` writes the tape's
picture in the format FILE's suffix names (``.svg``, ``.png`` or ``.pdf``);
``--graph`` also builds the expression with the graph engine
(:class:`tapegrad.graph.Value`) and shows its nodes, values and gradients for
comparison (with ``--svg``, its picture goes to FILE with a ``-graph`` suffix).

The expression is parsed with :mod:`ast` and checked against an allow-list:
numbers, variable names, ``+ - * / **``, unary ``-`` and ``+``, and calls of
tapegrad's one-argument math functions by name. It is never given to ``eval``:
it is evaluated by walking its syntax tree with an explicit stack, so deep
nesting is limited only by Python's parser, never by the explorer's own recursion.

Exit status: 0 when everything was shown (notes, such as an unused variable, go
to stderr); 2 for every failure: refused input, a computation that fails (``log``
of a negative number), a picture that cannot be written. A failure prints one
line on stderr saying what is wrong and what to do, never a traceback; an
exception the explorer did not foresee is reported on that line as a bug.
"""

from __future__ import annotations

import ast
import keyword
import math
import os
import shutil
import subprocess
import sys
import unicodedata
import warnings
from pathlib import Path
from typing import Any, Callable

import tapegrad as tg
from tapegrad import graph, viz

USAGE = """\
usage: python -m tapegrad [--svg FILE] [--graph] "EXPRESSION" NAME=NUMBER ...

  python -m tapegrad "tanh(x1*w1 + x2*w2 + b)" x1=2 x2=0 w1=-3 w2=1 b=6.8813735870195432

EXPRESSION uses numbers, variable names, + - * / ** (unary - and +), and the
functions {functions}.
  --svg FILE   write the tape's picture to FILE; its suffix picks the format:
               .svg, .png or .pdf (needs Graphviz's dot program, else the DOT
               source is written to FILE with the suffix .gv)
  --graph      also build the expression with the graph engine (tapegrad.graph.Value)
               and show its nodes and gradients; with --svg, write its picture too
Put -- before an expression that starts with '-'. Exit status: 0 done, 2 failed.
"""

# The callable names: the primitive table's one-argument functions (no operator symbol).
FUNCTIONS = tuple(sorted({p.name for p in tg.PRIMITIVES if p.arity == 1 and p.infix is None}
                         | {"abs"}))
# The ones the graph engine has as methods of Value.
GRAPH_FUNCTIONS = tuple(f for f in FUNCTIONS if callable(getattr(graph.Value, f, None)))
PICTURE_FORMATS = ("svg", "png", "pdf")  # what --svg writes, named by the file's suffix
MAX_PICTURE = 300  # records (or graph nodes) in a picture; larger ones are unreadable
PICTURE_SECONDS = 30  # the longest Graphviz's dot may spend laying out one picture
MAX_EXPONENT = 1000  # |constant exponent| allowed after **
MAX_LENGTH = 10_000  # characters of expression
QUOTE_LENGTH = 60  # characters of the user's text quoted back in a message

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


class Failed(Exception):
    """Accepted input whose computation or picture failed; the message says why and what to do."""


def _quote(text: str) -> str:
    """The user's text, quoted for a one-line message: repr, shortened."""
    return repr(text if len(text) <= QUOTE_LENGTH else text[: QUOTE_LENGTH - 3] + "...")


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
    text = text.strip()
    if not text:
        raise Refused('the expression is empty; give one first, as in "x * y" x=1 y=2')
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        name, sep, _ = text.partition("=")
        if sep and name.strip().isidentifier() and not text.startswith(name + "=="):
            raise Refused(f"{_quote(text)} is not an expression: the expression comes first, "
                          'then the values, as in python -m tapegrad "x * y" x=1 y=2') from None
        raise Refused(f"not a valid expression: {e.msg} in {_quote(text)}") from None
    except (RecursionError, MemoryError):
        raise Refused("the expression is nested too deeply for Python's parser (about 3000 "
                      "levels at most); write it with fewer nested operations") from None
    except ValueError as e:  # e.g. a NUL character, text that is not valid Unicode
        raise Refused(f"not a valid expression: {e}") from None
    names: list[str] = []
    stack: list[ast.AST] = [tree.body]
    while stack:  # top-down, left to right: names come out in order of appearance
        node = stack.pop()
        _check_node(node, text, names)
        stack.extend(reversed(_operands(node)))
    _check_exponents(tree.body, text)
    return tree.body, names


def _operands(node: ast.AST) -> tuple[ast.expr, ...]:
    """The subexpressions a checked node computes from, left to right."""
    if isinstance(node, ast.BinOp):
        return node.left, node.right
    if isinstance(node, ast.UnaryOp):
        return (node.operand,)
    if isinstance(node, ast.Call):
        return (node.args[0],)
    return ()


def _check_node(node: ast.AST, text: str, names: list[str]) -> None:
    """Refuse a node outside the allow-list; record a variable's name."""
    if isinstance(node, ast.Constant):
        _number(node)
    elif isinstance(node, ast.Name):
        if node.id in FUNCTIONS:
            raise Refused(f"{node.id} is a function: call it, as in {node.id}(x)")
        if node.id not in names:
            names.append(node.id)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _OPERATORS:
            raise Refused(f"the operator in {_source(text, node)} is not allowed; "
                          "use + - * / **")
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise Refused(f"the operator in {_source(text, node)} is not allowed; only - and + "
                          "may come before a term")
    elif isinstance(node, ast.Call):
        fname = node.func.id if isinstance(node.func, ast.Name) else None
        if fname not in FUNCTIONS:
            what = repr(fname) if fname else f"{_source(text, node.func)} (only plain names)"
            raise Refused(f"unknown function {what}; the functions are {', '.join(FUNCTIONS)}")
        if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            raise Refused(f"{fname} takes exactly one positional argument, as in {fname}(x); "
                          f"got {_source(text, node)}")
    else:
        what = _REFUSED_NAMES.get(type(node), type(node).__name__)
        raise Refused(f"{what} not allowed: {_source(text, node)}. Use numbers, variables, "
                      f"+ - * / ** and the functions {', '.join(FUNCTIONS)}")


def _number(node: ast.Constant) -> float:
    value = node.value
    if type(value) not in (int, float):
        shown = _quote(value) if isinstance(value, str) else repr(value)[:QUOTE_LENGTH]
        raise Refused(f"{shown} is not a number; only numbers and variables are allowed")
    try:
        number = float(value)  # type: ignore[arg-type]  # int or float, checked above
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise Refused("a number in the expression is too large for a float (over 1.8e308)")
    return number


def _check_exponents(root: ast.expr, text: str) -> None:
    """Refuse a constant exponent beyond +-MAX_EXPONENT, innermost first.

    The variable-free subexpressions are folded to floats once, bottom-up, so a tower
    of powers costs one pass; a subexpression that depends on a variable folds to None.
    """
    folded: dict[ast.AST, float | None] = {}
    for node in _bottom_up(root):
        parts = [folded[operand] for operand in _operands(node)]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            exponent = parts[1]
            if exponent is not None and not abs(exponent) <= MAX_EXPONENT:
                raise Refused(f"the exponent in {_source(text, node)} is {exponent:.6g}; "
                              f"constant exponents are limited to +-{MAX_EXPONENT}")
        if isinstance(node, ast.Name) or any(part is None for part in parts):
            folded[node] = None
            continue
        try:
            folded[node] = float(_apply(node, parts, _FLOATS))
        except (ArithmeticError, ValueError) as e:
            raise Refused(f"the constant {_source(text, node)} cannot be computed: {e}; "
                          "change that part of the expression") from None


def _bottom_up(root: ast.expr) -> list[ast.AST]:
    """Every node of a checked tree, each after its operands, left operands first."""
    order: list[ast.AST] = []
    stack: list[ast.AST] = [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(_operands(node))
    order.reverse()  # the walk was top-down with the right operand first
    return order


def _source(text: str, node: ast.AST) -> str:
    """The part of the expression that ``node`` came from, quoted (no recursion, unlike unparse)."""
    return _quote(ast.get_source_segment(text, node) or type(node).__name__)


# ---------------------------------------------------------------------------
# Evaluating the checked tree: the same walk for tapegrad values and graph nodes.
# ---------------------------------------------------------------------------


def evaluate(root: ast.AST, env: dict[str, Any], ops: dict[str, Callable]) -> Any:
    """The value of a checked expression, with ``env`` for variables and ``ops`` for operations.

    Operands are computed before the operation, left before right, so a traced
    evaluation records the tape in the order the expression reads.

    >>> evaluate(parse("2 * x + 1")[0], {"x": 3.0}, _FLOATS)
    7.0
    """
    value: dict[ast.AST, Any] = {}
    for node in _bottom_up(root):  # type: ignore[arg-type]  # a checked expression
        if isinstance(node, ast.Name):
            value[node] = env[node.id]
        else:
            value[node] = _apply(node, [value[operand] for operand in _operands(node)], ops)
    return value[root]


def _apply(node: ast.AST, operands: list[Any], ops: dict[str, Callable]) -> Any:
    """One checked node other than a name: its operation on its operands' values."""
    if isinstance(node, ast.BinOp):
        return ops[_OPERATORS[type(node.op)]](*operands)
    if isinstance(node, ast.UnaryOp):
        return -operands[0] if isinstance(node.op, ast.USub) else operands[0]
    if isinstance(node, ast.Constant):
        return float(node.value)  # type: ignore[arg-type]  # checked numeric
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name), "checked by parse"
    return ops[node.func.id](operands[0])


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
_GRAPH_HINTS = {"sqrt": "; write x ** 0.5 instead"}


def _graph_limits(tree: ast.AST, text: str) -> None:
    """Refuse what graph.Value cannot build: other functions, a variable exponent."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.func.id not in GRAPH_FUNCTIONS:  # type: ignore
            name = node.func.id  # type: ignore[attr-defined]  # checked by parse
            raise Refused(f"--graph: the graph engine (tapegrad.graph.Value) has no {name}; "
                          f"it has {', '.join(GRAPH_FUNCTIONS)}{_GRAPH_HINTS.get(name, '')}")
        if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow)
                and any(isinstance(n, ast.Name) for n in ast.walk(node.right))):
            raise Refused(f"--graph: graph.Value supports ** only with a constant exponent, "
                          f"not {_source(text, node)}")


# ---------------------------------------------------------------------------
# The command line.
# ---------------------------------------------------------------------------


def parse_arguments(argv: list[str]) -> tuple[str, dict[str, float], str | None, bool]:
    """(expression, values, picture path or None, graph?) from the command line.

    >>> parse_arguments(["--graph", "x * y", "x=2", "y=0.5"])
    ('x * y', {'x': 2.0, 'y': 0.5}, None, True)
    """
    for arg in argv:
        if any("\udc80" <= c <= "\udcff" for c in arg):  # bytes the locale could not decode
            raise Refused(f"{_quote(arg)} is not text in this locale's encoding "
                          f"({sys.getfilesystemencoding()}); use a UTF-8 locale "
                          "(PYTHONUTF8=1) or ASCII names")
    svg, show_graph = None, False
    positional: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--":
            positional.extend(args)
        elif arg == "--graph":
            show_graph = True
        elif arg == "--svg" or arg.startswith("--svg="):
            if svg is not None:
                raise Refused("--svg is given twice; give one file name")
            svg = arg[6:] if arg.startswith("--svg=") else next(args, None)
            if not svg:
                raise Refused("--svg needs a file name, as in --svg out/tape.svg")
            _check_picture_path(svg)
        elif arg.startswith("--"):
            raise Refused(f"unknown option {_quote(arg)}; the options are --svg FILE, --graph "
                          "and --help (put -- before an expression that starts with '-')")
        else:
            positional.append(arg)
    if not positional:
        raise Refused('no expression given; try python -m tapegrad "x * y" x=1 y=2, or --help')
    expression, values = positional[0], {}
    for item in positional[1:]:
        name, sep, number = item.partition("=")
        # Python reads identifiers in NFKC form: the expression's "ﬁ" is "fi".
        name = unicodedata.normalize("NFKC", name.strip())
        if not sep or not name.isidentifier():
            raise Refused(f"{_quote(item)} is not a variable assignment; write NAME=NUMBER, "
                          "as in x1=2")
        if keyword.iskeyword(name):
            raise Refused(f"{name} is a Python keyword and cannot be a variable; rename it")
        if name in FUNCTIONS:
            raise Refused(f"{name} is a function name and cannot be a variable; rename it")
        if name in values:
            raise Refused(f"{name} is given twice; give each variable one value")
        try:
            values[name] = float(number)
        except ValueError:
            raise Refused(f"{_quote(item)}: {_quote(number)} is not a number") from None
        if not math.isfinite(values[name]):
            raise Refused(f"{_quote(item)}: the value must be a finite number")
    return expression, values, svg, show_graph


def _check_picture_path(text: str) -> None:
    """Refuse a picture path whose suffix names no format or that cannot be a file."""
    path = Path(text)
    if path.suffix.lower().lstrip(".") not in PICTURE_FORMATS:
        raise Refused(f"--svg {_quote(text)}: the file name must end in .svg, .png or .pdf, "
                      "which picks the picture's format, as in --svg out/tape.svg")
    if "\0" in text:
        raise Refused(f"--svg {_quote(text)}: a file name cannot contain a NUL character")
    try:
        if path.is_dir():
            raise Refused(f"--svg {_quote(text)} is a directory; give a file name inside it, "
                          f"as in --svg {path / 'tape.svg'}")
        for parent in path.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise Refused(f"--svg {_quote(text)}: {_quote(str(parent))} is a file, "
                                  "not a directory; choose another place for the picture")
                break
    except OSError as e:  # e.g. a name longer than the file system allows
        raise Refused(f"--svg {_quote(text)}: {e.strerror or e}; choose another file name") \
            from None


def _number_text(x: float) -> str:
    return f"{x:.10g}"


def run(expression: str, values: dict[str, float], svg: str | None, show_graph: bool) -> None:
    """Print the tape view (and the graph view) of one expression; write pictures.

    Everything that can fail is computed and checked before anything is printed,
    except writing the pictures, which comes last.
    """
    tree, used = parse(expression)
    missing = [name for name in used if name not in values]
    if missing:
        raise Refused(f"no value for {', '.join(missing)}; pass "
                      + " ".join(f"{m}=NUMBER" for m in missing))
    if show_graph:
        _graph_limits(tree, expression.strip())
    names = tuple(name for name in values if name in used)
    notes = [f"note: {name} is not used by the expression" for name in values if name not in used]

    def f(*args: Any) -> Any:
        return evaluate(tree, dict(zip(names, args)), _TAPE)

    tape = _computed(lambda: tg.trace(f, names=names)(*(values[n] for n in names)))
    root = tape.outputs[0]
    if root >= 0:
        value = viz.plain(tape.values[root])
    else:
        value = float(_computed(lambda: f(*(values[n] for n in names))))
    adjoints = tape.timings.get("adjoints") or [0.0] * len(tape)
    gradient = {n: viz.plain(adjoints[i]) for n, i in zip(names, tape.inputs)}
    graph_root, leaves = (_computed(lambda: _graph_root(tree, names, values)) if show_graph
                          else (None, {}))
    if svg:
        _check_picture_size(f"tape has {len(tape)} records", len(tape))
        if graph_root is not None:
            nodes = len(graph.topological_order(graph_root))
            _check_picture_size(f"graph has {nodes} nodes", nodes)

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
    if graph_root is not None:
        _show_graph(graph_root, leaves, gradient)
    if svg:
        print(f"\nwrote the tape's picture to {_write_picture(tape.draw(), svg, notes)}")
        if graph_root is not None:
            path = Path(svg)
            graph_path = path.with_name(path.stem + "-graph" + path.suffix)
            written = _write_picture(graph.draw_dot(graph_root), graph_path, notes)
            print(f"wrote the graph's picture to {written}")
    for note in notes:
        print(note, file=sys.stderr)


def _computed(compute: Callable[[], Any]) -> Any:
    """``compute()``, with a failing float operation turned into a message saying what to do."""
    try:
        return compute()
    except ZeroDivisionError as e:
        advice = "choose values that keep every divisor (and every 0 ** negative) away from zero"
        raise Failed(f"computing the expression failed: {e}; {advice}") from None
    except OverflowError as e:
        raise Failed(f"computing the expression failed: {e}; a result is too large for a "
                     "float (over 1.8e308): choose smaller values") from None
    except ValueError as e:
        raise Failed(f"computing the expression failed: {e}; choose values inside each "
                     "operation's domain (log and sqrt need positive arguments, a negative "
                     "base needs an integer exponent)") from None


def _graph_root(tree: ast.AST, names: tuple, values: dict) -> tuple[graph.Value, dict]:
    """The expression built with the graph engine after backward, and its variables' nodes."""
    leaves = {n: graph.Value(values[n], label=n) for n in names}
    root = evaluate(tree, leaves, _GRAPH)
    if not isinstance(root, graph.Value):
        root = graph.Value(root, label="output")
    root.backward()
    return root, leaves


def _show_graph(root: graph.Value, leaves: dict, gradient: dict) -> None:
    order = graph.topological_order(root)
    print("\nThe graph engine (tapegrad.graph.Value): the same expression as linked nodes")
    print("(topological order, parents first; backward sorted them, then ran each node's "
          "closure in reverse)")
    print(f"  {'node':<14}{'op':<8}{'data':>14}{'grad':>14}")
    for node in order:
        label = node.label or ("(constant)" if not node._prev else "")
        print(f"  {label:<14}{node._op:<8}{node.data:>14.6g}{node.grad:>14.6g}")
    if not leaves:
        print("no variables, so no gradients to compare with the tape")
        return
    largest = max(_difference(leaf.grad, gradient[name]) for name, leaf in leaves.items())
    verdict = "yes" if largest <= 1e-9 * max([1.0, *map(abs, gradient.values())]) else "NO"
    print(f"gradients agree with the tape: {verdict} (largest difference {largest:.3g})")


def _difference(a: float, b: float) -> float:
    """|a - b|, where equal infinities, and two NaNs, are no difference (inf - inf is NaN)."""
    return 0.0 if a == b or (math.isnan(a) and math.isnan(b)) else abs(a - b)


def _check_picture_size(what: str, size: int) -> None:
    if size > MAX_PICTURE:
        raise Refused(f"--svg: the {what}; a picture is drawn only up to {MAX_PICTURE} "
                      "(larger ones are unreadable). Leave out --svg, or explore a smaller "
                      "expression")


def _write_picture(drawing: Any, path: str | Path, notes: list[str]) -> str:
    """Render ``drawing`` to ``path`` in the format its suffix names; the path written.

    Graphviz's ``dot`` runs here with a time limit rather than through ``viz.render``:
    a value used by a hundred operations can keep its layout busy for many minutes.
    Without ``dot``, ``viz.render`` writes the DOT source and a note says so.
    """
    path = Path(path)
    dot = shutil.which("dot")
    try:
        if dot is None:
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("ignore", viz.GraphvizMissingWarning)
                written = viz.render(drawing, path)
            notes.append(f"note: Graphviz's dot program is not installed, so the picture's DOT "
                         f"source was written to {written}. {viz.INSTALL_GRAPHVIZ}")
            return written
        picture = subprocess.run([dot, "-T" + path.suffix.lower().lstrip(".")],
                                 input=drawing.source.encode("utf-8"), capture_output=True,
                                 check=True, timeout=PICTURE_SECONDS).stdout
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(picture)
    except subprocess.TimeoutExpired:
        source = path.with_suffix(".gv")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            source.write_text(drawing.source, encoding="utf-8")
            later = (f"its DOT source is in {source}: dot -T{path.suffix.lstrip('.')} {source} "
                     f"-o {path} draws it if you can wait. Or leave out --svg")
        except OSError:
            later = "leave out --svg, or explore a smaller expression"
        raise Failed(f"Graphviz's dot did not lay out the picture within {PICTURE_SECONDS} s "
                     f"and was stopped (a value used by many operations makes layouts slow); "
                     f"{later}") from None
    except subprocess.CalledProcessError as e:  # dot ran and failed
        detail = e.stderr.decode(errors="replace").strip().splitlines()
        raise Failed(f"Graphviz's dot could not draw the picture ({detail[0] if detail else e}); "
                     "check the Graphviz installation with: dot -V") from None
    except (OSError, ValueError) as e:  # a path the system refuses
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise Failed(f"cannot write the picture to {_quote(str(path))}: {reason}; choose a "
                     "writable file name") from None
    return str(path)


def _fail(reason: str) -> int:
    """Say on one line of stderr why the explorer stopped; the exit status for a failure."""
    print(f"python -m tapegrad: {' '.join(reason.splitlines())}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run the explorer; return the exit status: 0 done, 2 failed (one line on stderr says why).

    >>> main(["x ** 2", "x=3"])  # doctest: +ELLIPSIS
    x ** 2 = 9
    ...
      d/dx = 6
    0
    """
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv[: argv.index("--") if "--" in argv else None]):
        print(USAGE.format(functions=", ".join(FUNCTIONS)))
        return 0
    try:
        run(*parse_arguments(argv))
    except Refused as e:
        return _fail(f"refused: {e}")
    except Failed as e:
        return _fail(str(e))
    except BrokenPipeError:  # output piped into head: stop quietly
        _silence_stdout()
    except UnicodeEncodeError as e:  # printing a name the terminal's encoding cannot show
        return _fail(f"cannot print {e.object[e.start:e.end]!r} in the output's encoding "
                     f"({e.encoding}); set PYTHONIOENCODING=utf-8, or use ASCII names")
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130  # the shell's convention for Ctrl-C
    except Exception as e:  # noqa: BLE001 - the explorer promises no traceback, even for a bug
        return _fail(f"internal error, a bug in tapegrad: {type(e).__name__}: {str(e)[:200]}. "
                     "Please report it with the command line that caused it")
    return 0


def _silence_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's final flush cannot fail."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (a test's capture): nothing will be flushed to a pipe
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
