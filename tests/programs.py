"""Random programs as data, run by one interpreter on any backend (tests/test_oracle.py).

A :class:`Program` is a tree of frozen statements over numbered variables:
operations, ``tg.sum``/``tg.dot``, ``if`` on a comparison, ``for`` loops that
carry a value, nested ``grad``/``value_and_grad`` of a function that closes over
outer variables, calls of ``custom_vjp`` functions, and ``try``/``except``.
``str(program)`` prints it as Python. :func:`run` interprets it on a
:class:`Backend`: plain floats (``math``), tapegrad, or the reference
(``tapegrad.reference``). :func:`cases` is the hypothesis strategy; since a
program is drawn choice by choice, a failing one shrinks to a short one.
"""

from __future__ import annotations

import math
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from hypothesis import strategies as st

import tapegrad as tg
from tapegrad import reference as ref

# -- the program model -----------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """A variable: its position in the environment (inputs first)."""

    index: int


@dataclass(frozen=True)
class Const:
    value: float


Operand = Union[Ref, Const]


@dataclass(frozen=True)
class Unary:
    op: str  # one of UNARY
    x: Ref


@dataclass(frozen=True)
class Binary:
    op: str  # one of BINARY
    x: Operand
    y: Operand


@dataclass(frozen=True)
class Sum:
    items: tuple[Operand, ...]


@dataclass(frozen=True)
class Dot:
    xs: tuple[Operand, ...]
    ys: tuple[Operand, ...]


@dataclass(frozen=True)
class Block:
    """Statements over the enclosing scope, and the variable whose value is the result."""

    stmts: tuple[Any, ...]
    result: Ref


@dataclass(frozen=True)
class If:
    left: Ref
    compare: str  # one of COMPARES
    right: Operand
    then: Block
    orelse: Block


@dataclass(frozen=True)
class Loop:
    """``v = start; for _ in range(times): v = body(v)``; the body sees v as its last variable."""

    times: int
    start: Ref
    body: Block


@dataclass(frozen=True)
class Grad:
    """``grad(lambda t: body)(at)`` (one value), or ``value_and_grad`` (two values).

    The body sees the parameter t as its last variable, and every outer variable.
    """

    with_value: bool
    at: Operand
    body: Block


@dataclass(frozen=True)
class Call:
    """A call of the custom_vjp function CUSTOM[name]."""

    name: str
    args: tuple[Ref, ...]


@dataclass(frozen=True)
class Try:
    """``try: body except (ValueError, ZeroDivisionError, OverflowError): fallback``."""

    body: Block
    fallback: Block


Stmt = Union[Unary, Binary, Sum, Dot, If, Loop, Grad, Call, Try]


@dataclass(frozen=True)
class Program:
    n_inputs: int
    stmts: tuple[Stmt, ...]
    outputs: tuple[Ref, ...]

    def __str__(self) -> str:
        return _Printer().program(self)


def width(stmt: Stmt) -> int:
    """How many variables a statement defines."""
    if isinstance(stmt, Grad):
        return 2 if stmt.with_value else 1
    if isinstance(stmt, Call):
        return CUSTOM[stmt.name].outputs
    return 1


def statements(program: Program) -> list[Stmt]:
    """Every statement of the program, nested ones included."""
    found: list[Stmt] = []
    todo = list(program.stmts)
    while todo:
        stmt = todo.pop()
        found.append(stmt)
        for block in _blocks(stmt):
            todo.extend(block.stmts)
    return found


def _blocks(stmt: Stmt) -> tuple[Block, ...]:
    if isinstance(stmt, If):
        return (stmt.then, stmt.orelse)
    if isinstance(stmt, (Loop, Grad)):
        return (stmt.body,)
    if isinstance(stmt, Try):
        return (stmt.body, stmt.fallback)
    return ()


UNARY = ("neg", "abs", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "sin", "cos",
         "stop_gradient")
BINARY = ("+", "-", "*", "/", "**")
COMPARES = ("<", "<=", ">", ">=", "==", "!=")
CAUGHT = (ValueError, ZeroDivisionError, OverflowError)


# -- custom_vjp functions: a correct rule each; other backends run ``fun`` itself ---------------


@dataclass(frozen=True)
class CustomFunction:
    """A function with its own VJP rule, written over a namespace of operations ``ns``."""

    name: str
    arity: int
    outputs: int
    fun: Callable[..., Any]  # fun(ns, *args)
    fwd: Callable[..., Any]  # fwd(ns, *args) -> (out, residuals)
    bwd: Callable[..., Any]  # bwd(ns, residuals, g) -> one cotangent per argument
    doc: str


CUSTOM: dict[str, CustomFunction] = {f.name: f for f in (
    CustomFunction("square", 1, 1, lambda ns, x: x * x, lambda ns, x: (x * x, x),
                   lambda ns, r, g: (2.0 * r * g,), "x * x, rule 2 x g"),
    CustomFunction("softplus", 1, 1, lambda ns, x: _softplus(ns, x),
                   lambda ns, x: (_softplus(ns, x), x),
                   lambda ns, r, g: (g * _logistic(ns, r),), "log(1 + exp(x)), rule g sigmoid(x)"),
    CustomFunction("product", 2, 1, lambda ns, x, y: x * y, lambda ns, x, y: (x * y, (x, y)),
                   lambda ns, r, g: (g * r[1], g * r[0]), "x * y, rule (g y, g x)"),
    # fwd's value is detached: only the rule may give this function a derivative.
    CustomFunction("detached_cube", 1, 1, lambda ns, x: x * x * x,
                   lambda ns, x: (ns.stop_gradient(x * x * x), x),
                   lambda ns, r, g: (3.0 * r * r * g,),
                   "x ** 3, fwd returns stop_gradient(x * x * x), rule 3 x**2 g"),
    CustomFunction("pair", 2, 2, lambda ns, x, y: (x * y, x - y),
                   lambda ns, x, y: ((x * y, x - y), (x, y)),
                   lambda ns, r, g: (_times(g[0], r[1]) + g[1], _times(g[0], r[0]) - g[1]),
                   "(x * y, x - y), rule (g0 y + g1, g0 x - g1)"),
)}


def _times(g: Any, v: Any) -> Any:
    # An unused output's cotangent is a plain 0.0: it contributes nothing (not 0 * nan),
    # as in the reverse sweep, which skips records nothing contributed to.
    return 0.0 if type(g) is float and g == 0.0 else g * v


def _softplus(ns: Any, x: Any) -> Any:
    # Two forms, so that the oracle, which differentiates this formula, stays accurate
    # for large x: log(1 + e**x) = x + log(1 + e**-x).
    if x > 0.0:
        return x + ns.log(1.0 + ns.exp(-x))
    return ns.log(1.0 + ns.exp(x))


def _logistic(ns: Any, x: Any) -> Any:
    # sigmoid(x) written so that its own derivative does not cancel (tg.sigmoid's rule,
    # out * (1 - out), is 0 for x > 37 where the true value is below 1e-16).
    if x >= 0.0:
        return 1.0 / (1.0 + ns.exp(-x))
    return ns.exp(x) / (1.0 + ns.exp(x))


def _tapegrad_custom(f: CustomFunction) -> Any:
    def fun(*args: Any) -> Any:
        return f.fun(tg, *args)

    fun.__name__ = f.name  # for tapegrad's messages
    custom = tg.custom_vjp(fun)
    custom.defvjp(lambda *args: f.fwd(tg, *args), lambda res, g: f.bwd(tg, res, g))
    return custom


# -- backends ----------------------------------------------------------------------------

Observer = Callable[[str, Sequence[Any], Any], None]


@dataclass(frozen=True)
class Backend:
    """The operations a program runs on: functions by name, grad, custom functions.

    ``inner`` runs the bodies of nested grads (plain floats cannot: the float
    backend uses the reference there). ``observe(what, operands, result)`` is
    told of every operation, comparison and caught exception.
    """

    name: str
    fns: dict[str, Callable[..., Any]]
    grad: Callable[..., Any]
    value_and_grad: Callable[..., Any]
    custom: dict[str, Callable[..., Any]]
    inner: Backend | None = None
    observe: Observer | None = field(default=None, compare=False)

    def call(self, op: str, *operands: Any) -> Any:
        result = self.fns[op](*operands)
        if self.observe is not None:
            self.observe(op, operands, result)
        return result


def _float_sigmoid(x: float) -> float:
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _float_sum(*xs: float) -> float:
    total = 0.0
    for x in xs:
        total += x
    return total


FLOAT_FNS: dict[str, Callable[..., Any]] = {
    "neg": lambda x: -x, "abs": abs, "exp": math.exp, "log": math.log, "sqrt": math.sqrt,
    "tanh": math.tanh, "sigmoid": _float_sigmoid, "relu": lambda x: 0.0 if x <= 0.0 else x,
    "sin": math.sin, "cos": math.cos, "stop_gradient": lambda x: x,
    "+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
    "/": lambda x, y: x / y, "**": math.pow,
    "sum": lambda xs: _float_sum(*xs), "dot": lambda xs, ys: _float_sum(*map(
        lambda x, y: x * y, xs, ys)),
}
FLOAT_NS = types.SimpleNamespace(**{k: v for k, v in FLOAT_FNS.items() if k.isidentifier()})


def _operator_fns(ns: Any) -> dict[str, Callable[..., Any]]:
    """The functions of a traced backend: Python's operators, and ns's functions."""
    fns: dict[str, Callable[..., Any]] = {
        "neg": lambda x: -x, "abs": abs,
        "+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
        "/": lambda x, y: x / y, "**": ns.power, "sum": ns.sum, "dot": ns.dot,
    }
    for name in UNARY[2:]:
        fns[name] = getattr(ns, name)
    return fns


def _plain(f: CustomFunction, ns: Any) -> Callable[..., Any]:
    """The custom function itself, on ns's operations: differentiated as usual."""
    return lambda *args: f.fun(ns, *args)


def reference_backend(observe: Observer | None = None,
                      overrides: dict[str, Callable[..., Any]] | None = None) -> Backend:
    """The reference; ``overrides`` replaces some of its functions."""
    return Backend("reference", {**_operator_fns(ref), **(overrides or {})}, ref.grad,
                   ref.value_and_grad,
                   {n: _plain(f, ref) for n, f in CUSTOM.items()},
                   observe=observe)


def float_backend(observe: Observer | None = None,
                  overrides: dict[str, Callable[..., Any]] | None = None) -> Backend:
    """Plain floats, with the reference for the bodies of nested grads."""
    return Backend("floats", {**FLOAT_FNS, **(overrides or {})}, ref.grad, ref.value_and_grad,
                   {n: _plain(f, FLOAT_NS) for n, f in CUSTOM.items()},
                   inner=reference_backend(observe, overrides), observe=observe)


TAPEGRAD = Backend("tapegrad", _operator_fns(tg), tg.grad, tg.value_and_grad,
                   {n: _tapegrad_custom(f) for n, f in CUSTOM.items()})
REFERENCE = reference_backend()
FLOATS = float_backend()


# -- the interpreter ---------------------------------------------------------------------


def run(program: Program, backend: Backend, inputs: Sequence[Any]) -> tuple:
    """The program's outputs for these inputs, computed with the backend's operations."""
    env = list(inputs)
    for stmt in program.stmts:
        env.extend(_execute(stmt, backend, env))
    return tuple(env[r.index] for r in program.outputs)


def _run_block(block: Block, backend: Backend, env: list) -> Any:
    local = list(env)
    for stmt in block.stmts:
        local.extend(_execute(stmt, backend, local))
    return local[block.result.index]


def _value(operand: Operand, env: list) -> Any:
    return env[operand.index] if isinstance(operand, Ref) else operand.value


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def _execute(stmt: Stmt, backend: Backend, env: list) -> list:
    """The values the statement defines."""
    if isinstance(stmt, Unary):
        return [backend.call(stmt.op, env[stmt.x.index])]
    if isinstance(stmt, Binary):
        return [backend.call(stmt.op, _value(stmt.x, env), _value(stmt.y, env))]
    if isinstance(stmt, Sum):
        return [backend.call("sum", [_value(a, env) for a in stmt.items])]
    if isinstance(stmt, Dot):
        return [backend.call("dot", [_value(a, env) for a in stmt.xs],
                             [_value(a, env) for a in stmt.ys])]
    if isinstance(stmt, If):
        left, right = env[stmt.left.index], _value(stmt.right, env)
        taken = _COMPARE[stmt.compare](left, right)
        assert type(taken) is bool, f"a comparison returned {taken!r}"
        if backend.observe is not None:
            backend.observe("if", (left, right), taken)
        return [_run_block(stmt.then if taken else stmt.orelse, backend, env)]
    if isinstance(stmt, Loop):
        carried = env[stmt.start.index]
        for _ in range(stmt.times):
            carried = _run_block(stmt.body, backend, env + [carried])
        return [carried]
    if isinstance(stmt, Grad):
        inner = backend.inner or backend
        body = stmt.body

        def f(t: Any) -> Any:
            return _run_block(body, inner, env + [t])

        at = _value(stmt.at, env)
        if stmt.with_value:
            return list(backend.value_and_grad(f)(at))
        return [backend.grad(f)(at)]
    if isinstance(stmt, Call):
        out = backend.custom[stmt.name](*[env[a.index] for a in stmt.args])
        return list(out) if CUSTOM[stmt.name].outputs > 1 else [out]
    if isinstance(stmt, Try):
        try:
            result = _run_block(stmt.body, backend, env)
            caught = False
        except CAUGHT:
            result = _run_block(stmt.fallback, backend, env)
            caught = True
        if backend.observe is not None:
            backend.observe("try", (), caught)
        return [result]
    raise TypeError(f"not a statement: {stmt!r}")


# -- printing ----------------------------------------------------------------------------


def constant_text(v: float) -> str:
    if math.isnan(v):
        return "math.nan"
    if math.isinf(v):
        return "math.inf" if v > 0 else "-math.inf"
    return repr(v)


class _Printer:
    """Writes a program as Python; variables are named in order of appearance."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.count = 0

    def fresh(self, prefix: str = "v") -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def program(self, program: Program) -> str:
        names = [f"x{i}" for i in range(program.n_inputs)]
        self.count = program.n_inputs - 1
        self.lines.append(f"def f({', '.join(names)}):")
        self.statements(program.stmts, names, 1)
        outs = [names[r.index] for r in program.outputs]
        self.lines.append("    return " + ", ".join(outs) + ("," if len(outs) == 1 else ""))
        return "\n".join(self.lines)

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def statements(self, stmts: Sequence[Stmt], names: list[str], depth: int) -> None:
        for stmt in stmts:
            names.extend(self.statement(stmt, names, depth))

    def block(self, block: Block, names: list[str], depth: int, target: str) -> None:
        local = list(names)
        self.statements(block.stmts, local, depth)
        self.emit(depth, f"{target} = {local[block.result.index]}")

    def operand(self, a: Operand, names: list[str]) -> str:
        return names[a.index] if isinstance(a, Ref) else constant_text(a.value)

    def statement(self, stmt: Stmt, names: list[str], depth: int) -> list[str]:
        def o(a: Operand) -> str:
            return self.operand(a, names)

        if isinstance(stmt, Unary):
            x = names[stmt.x.index]
            text = {"neg": f"-{x}", "abs": f"abs({x})"}.get(stmt.op, f"tg.{stmt.op}({x})")
            v = self.fresh()
            self.emit(depth, f"{v} = {text}")
            return [v]
        if isinstance(stmt, Binary):
            v = self.fresh()
            left = o(stmt.x)
            if stmt.op == "**" and left.startswith("-"):
                left = f"({left})"  # -2.0 ** x would be -(2.0 ** x)
            self.emit(depth, f"{v} = {left} {stmt.op} {o(stmt.y)}")
            return [v]
        if isinstance(stmt, Sum):
            v = self.fresh()
            self.emit(depth, f"{v} = tg.sum([{', '.join(map(o, stmt.items))}])")
            return [v]
        if isinstance(stmt, Dot):
            v = self.fresh()
            self.emit(depth, f"{v} = tg.dot([{', '.join(map(o, stmt.xs))}], "
                             f"[{', '.join(map(o, stmt.ys))}])")
            return [v]
        if isinstance(stmt, If):
            v = self.fresh()
            self.emit(depth, f"if {names[stmt.left.index]} {stmt.compare} {o(stmt.right)}:")
            self.block(stmt.then, names, depth + 1, v)
            self.emit(depth, "else:")
            self.block(stmt.orelse, names, depth + 1, v)
            return [v]
        if isinstance(stmt, Loop):
            v = self.fresh()
            self.emit(depth, f"{v} = {names[stmt.start.index]}")
            self.emit(depth, f"for _ in range({stmt.times}):")
            self.block(stmt.body, names + [v], depth + 1, v)
            return [v]
        if isinstance(stmt, Grad):
            g = self.fresh("g")
            t = self.fresh()
            self.emit(depth, f"def {g}({t}):")
            local = names + [t]
            self.statements(stmt.body.stmts, local, depth + 1)
            self.emit(depth + 1, f"return {local[stmt.body.result.index]}")
            at = o(stmt.at)
            if stmt.with_value:
                v, w = self.fresh(), self.fresh()
                self.emit(depth, f"{v}, {w} = tg.value_and_grad({g})({at})")
                return [v, w]
            v = self.fresh()
            self.emit(depth, f"{v} = tg.grad({g})({at})")
            return [v]
        if isinstance(stmt, Call):
            out = [self.fresh() for _ in range(CUSTOM[stmt.name].outputs)]
            args = ", ".join(names[a.index] for a in stmt.args)
            self.emit(depth, f"{', '.join(out)} = {stmt.name}({args})"
                             f"  # custom_vjp: {CUSTOM[stmt.name].doc}")
            return out
        if isinstance(stmt, Try):
            v = self.fresh()
            self.emit(depth, "try:")
            self.block(stmt.body, names, depth + 1, v)
            self.emit(depth, "except (ValueError, ZeroDivisionError, OverflowError):")
            self.block(stmt.fallback, names, depth + 1, v)
            return [v]
        raise TypeError(f"not a statement: {stmt!r}")


# -- the generator -----------------------------------------------------------------------

# Values near kinks (0 for relu and abs), zeros, domain edges of log and sqrt, the
# overflow edge of exp; constants and inputs share some, so that x - c hits 0 exactly.
SPECIAL_INPUTS = (0.0, 1.0, -1.0, 2.0, 0.5, -0.0, -2.0, 3.0, 1e-8, -1e-8, 1e-300, 5e-324,
                  700.0, 709.0, 710.0, -745.0, 1e8, 1e300)
NONFINITE = (math.nan, math.inf, -math.inf)
CONSTANTS = (1.0, 2.0, 0.0, -1.0, 0.5, 3.0, -2.0, 1e-8, 100.0)
EXPONENTS = (2, 2.0, 3, 0.5, 0.0, 1.0, -1.0, 1.5, -0.5, 4.0, 50.0, 1000.0)
BASES = (2.0, 0.5, 0.0, 1.0, -2.0, 10.0)

# Statement kinds, simplest first (hypothesis shrinks towards the start); repeats weight them.
SIMPLE = ("binary", "binary", "binary", "unary", "unary", "unary", "sum", "dot")
COMPOUND = ("if", "loop", "grad", "grad", "call", "try")


class _Generator:
    """Draws a program choice by choice: what hypothesis shrinks is what we print."""

    def __init__(self, draw: Callable[..., Any], customs: tuple[str, ...], nested: bool,
                 tries: bool) -> None:
        self.draw = draw
        self.customs = customs
        self.nested = nested
        self.tries = tries

    def ref(self, scope: int) -> Ref:
        # Counted from the most recent variable, so that programs tend to be chains.
        return Ref(scope - 1 - self.draw(st.integers(0, scope - 1)))

    def operand(self, scope: int, pool: tuple = CONSTANTS) -> Operand:
        if self.draw(st.integers(0, 3)) == 3:
            return Const(self.draw(st.sampled_from(pool)))
        return self.ref(scope)

    def statements(self, scope: int, budget: int, depth: int, grads: int) -> tuple:
        stmts = []
        for _ in range(self.draw(st.integers(1, budget))):
            stmt = self.statement(scope, depth, grads)
            stmts.append(stmt)
            scope += width(stmt)
        return tuple(stmts)

    def block(self, scope: int, depth: int, grads: int) -> Block:
        stmts = self.statements(scope, 3, depth + 1, grads) if self.draw(st.booleans()) else ()
        inner = scope + sum(width(s) for s in stmts)
        return Block(stmts, self.ref(inner))

    def statement(self, scope: int, depth: int, grads: int) -> Stmt:
        kinds: tuple[str, ...] = SIMPLE
        if depth < 3:
            kinds += tuple(k for k in COMPOUND if self._allowed(k, grads))
        kind = self.draw(st.sampled_from(kinds))
        if kind == "unary":
            return Unary(self.draw(st.sampled_from(UNARY)), self.ref(scope))
        if kind == "binary":
            return self.binary(scope)
        if kind == "sum":
            return Sum(tuple(self.operand(scope) for _ in range(self.draw(st.integers(1, 4)))))
        if kind == "dot":
            n = self.draw(st.integers(1, 3))
            return Dot(tuple(self.operand(scope) for _ in range(n)),
                       tuple(self.operand(scope) for _ in range(n)))
        if kind == "if":
            return If(self.ref(scope), self.draw(st.sampled_from(COMPARES)), self.operand(scope),
                      self.block(scope, depth, grads), self.block(scope, depth, grads))
        if kind == "loop":
            return Loop(self.draw(st.integers(1, 3)), self.ref(scope),
                        self.block(scope + 1, depth, grads))
        if kind == "grad":
            return Grad(self.draw(st.booleans()), self.operand(scope),
                        self.block(scope + 1, depth, grads + 1))
        if kind == "call":
            name = self.draw(st.sampled_from(self.customs))
            return Call(name, tuple(self.ref(scope) for _ in range(CUSTOM[name].arity)))
        assert kind == "try"
        return Try(self.block(scope, depth, grads), self.block(scope, depth, grads))

    def _allowed(self, kind: str, grads: int) -> bool:
        if kind == "grad":
            return self.nested and grads < 2
        if kind == "call":
            return bool(self.customs)
        if kind == "try":
            return self.tries
        return True

    def binary(self, scope: int) -> Binary:
        op = self.draw(st.sampled_from(BINARY))
        x: Operand = self.ref(scope)
        y: Operand = self.ref(scope)
        constant = self.draw(st.integers(0, 2))  # 1: y is a constant, 2: x is
        if constant == 1:
            y = Const(self.draw(st.sampled_from(EXPONENTS if op == "**" else CONSTANTS)))
        elif constant == 2:
            x = Const(self.draw(st.sampled_from(BASES if op == "**" else CONSTANTS)))
        return Binary(op, x, y)


@st.composite
def programs(draw: Callable[..., Any], customs: tuple[str, ...] = tuple(CUSTOM),
             nested: bool = True, tries: bool = True) -> Program:
    """Random programs of 1 to 3 inputs and 1 or 2 outputs (the first: the last variable)."""
    n = draw(st.integers(1, 3))
    gen = _Generator(draw, customs, nested, tries)
    stmts = gen.statements(n, 8, 0, 0)
    scope = n + sum(width(s) for s in stmts)
    outputs: tuple[Ref, ...] = (Ref(scope - 1),)
    if draw(st.booleans()):
        outputs += (gen.ref(scope),)
    return Program(n, stmts, outputs)


def input_values(nonfinite: bool = True) -> st.SearchStrategy[float]:
    """Mostly special values and small floats; now and then NaN or an infinity."""
    moderate = st.floats(-4.0, 4.0, allow_nan=False, allow_infinity=False)
    special = st.sampled_from(SPECIAL_INPUTS)
    rare = st.sampled_from(NONFINITE) if nonfinite else special
    return st.integers(0, 19).flatmap(lambda k: special if k < 9 else rare if k == 19
                                      else moderate)


@dataclass(frozen=True)
class Case:
    """A program, its inputs, and the point where jit first traces it."""

    program: Program
    inputs: tuple[float, ...]
    warm: tuple[float, ...]

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # how hypothesis prints a falsifying example

    def __repr__(self) -> str:
        def floats(xs: tuple) -> str:
            return "(" + "".join(constant_text(x) + ", " for x in xs).rstrip(" ") + ")"

        return (f"\n{self.program}\n\ninputs = {floats(self.inputs)}"
                f"\nwarm = {floats(self.warm)}  # where jit traces first\n")


@st.composite
def cases(draw: Callable[..., Any], customs: tuple[str, ...] = tuple(CUSTOM),
          nonfinite: bool = True, tries: bool = True) -> Case:
    program = draw(programs(customs=customs, tries=tries))
    xs = tuple(draw(input_values(nonfinite)) for _ in range(program.n_inputs))
    warm = []
    for x in xs:
        how = draw(st.sampled_from(("near", "same", "other")))
        if how == "near" and math.isfinite(x):
            warm.append(x + 0.25)
        elif how == "same":
            warm.append(x)
        else:
            warm.append(draw(input_values(False)))
    return Case(program, xs, tuple(warm))
