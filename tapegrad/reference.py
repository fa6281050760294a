"""A tape autodiff in one page: the plain reference that tapegrad is tested against.

This module does what tapegrad does, reverse-mode automatic differentiation on
a Wengert list, with none of its speed. A record is an entry in a Python list,
a derivative rule is a small function, and the reverse sweep is the textbook
loop. It imports nothing from tapegrad (only ``math``), so the test suite can
use it as an independent oracle (``tests/test_oracle.py``). Read it top to
bottom:

1. :class:`Trace` is a list of records. Record ``i`` lists the traced inputs
   of the operation that made value ``i``, each with the partial derivative
   of the output with respect to it, computed when the record is made.
2. :class:`Var` is a traced number: a trace, a record index and a value.
3. :class:`Primitive` is an operation: its implementation on floats and its
   partial derivatives. :func:`apply` runs one on Vars and appends the record.
4. :func:`value_and_grad` opens a trace, calls the function with Vars in place
   of its arguments, and sweeps the records backwards.

Nesting. Each ``grad`` opens a trace one level deeper. To the innermost trace,
numbers and the Vars of outer traces are constants. The value of a Var may
itself be a Var of an outer trace. The rules and the reverse sweep are written
with this module's own operations, so their arithmetic on outer Vars is
recorded on the outer traces. That is all ``grad(grad(f))`` needs. Two traces
never share a level, so their perturbations cannot be confused.

Conventions. tapegrad's documented ones: ``relu'(0) = 0``, ``abs'(0) = 0``,
``sqrt'(0) = inf``, ``d/dx x**y = 0`` for a constant ``y = 0`` and at
``x = y = 0``, ``d/dy x**y`` is 0 at ``x = 0`` and NaN for ``x < 0``. Where a
derivative is infinite its own derivatives are the limits too
(``sqrt''(0) = -inf``). A zero that holds whatever the values (a kink's,
a constant factor's) is no edge at all, so ``0 * sqrt(x)`` at 0 and
``sqrt(relu(x))`` at -1 have derivative 0; a zero computed from traced values
meets an infinity as IEEE says, so ``sqrt(x) * x`` at 0 gives NaN (0 * inf has
no single answer: ``(x**3) ** (1/3)`` has derivative 1 at 0). A NaN operand
gives a NaN value, and NaN partials where they depend on it (``relu'(nan)``,
``abs'(nan)``). Domain errors are those of ``math``: ``log(0.0)`` raises
``ValueError``, ``x / 0.0`` raises ``ZeroDivisionError``, ``exp(1000.0)`` raises
``OverflowError``, and ``x ** y`` is ``math.pow``. Comparisons of Vars compare
their numbers and return plain ``bool``, so ``if`` works in traced code. One
trace stack serves the whole process: use it from one thread at a time.

Adding a primitive is one line, its float function and its partial rule:
``tan = Primitive("tan", math.tan, lambda k, out, x: 1.0 + out * out)``.

>>> grad(lambda x: x * sin(x))(0.0)
0.0
>>> grad(lambda x: x * grad(lambda y: x + y)(1.0))(1.0)  # no perturbation confusion
1.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Callable, Union

__all__ = [
    "Trace", "Var", "Primitive", "PRIMITIVES", "apply", "primal",
    "grad", "value_and_grad",
    "add", "sub", "mul", "div", "power", "neg", "absolute", "exp", "log", "sqrt", "tanh",
    "sigmoid", "relu", "sin", "cos", "sum", "dot", "stop_gradient",
]

ArgNums = Union[int, Sequence[int]]


# -- the tape ----------------------------------------------------------------------------


class Trace:
    """One running trace: its nesting level and its records, in evaluation order.

    ``records[i]`` is a list of ``(input index, partial)`` pairs; an input of the
    traced function (a leaf) has none.
    """

    def __init__(self, level: int) -> None:
        self.level = level
        self.records: list[list[tuple[int, Any]]] = []
        self.open = True

    def append(self, value: Any, parents: list[tuple[int, Any]]) -> Var:
        """Add a record; return the Var naming its value."""
        self.records.append(parents)
        return Var(self, len(self.records) - 1, value)

    def backward(self, root: int) -> dict[int, Any]:
        """The adjoint d(root)/d(value i) of every record i that root depends on.

        The records are in evaluation order, so walking them backwards reaches
        each record only after every record that uses it: no topological sort
        is needed. Reads default to zero and writes add. A record nothing
        contributed to is skipped (root does not depend on it); every other
        product is plain arithmetic, so a zero
        adjoint meeting an infinite partial (sqrt at 0) gives NaN: 0 * inf is
        an indeterminate form, and NaN says so. (Zeros that mean "does not
        depend on" never reach this loop: see :func:`apply`.)
        """
        adjoint: dict[int, Any] = {root: 1.0}
        for i in reversed(range(len(self.records))):
            if i not in adjoint:
                continue  # nothing was sent here: root does not depend on record i
            g = adjoint[i]
            for j, partial in self.records[i]:
                adjoint[j] = adjoint.get(j, 0.0) + g * partial
        return adjoint


_TRACES: list[Trace] = []  # the open traces, outermost first


class Var:
    """A traced number: record ``index`` of ``trace``, with value ``value``.

    The value is a float, or a Var of an outer trace when traces are nested.
    """

    __slots__ = ("trace", "index", "value")

    def __init__(self, trace: Trace, index: int, value: Any) -> None:
        self.trace = trace
        self.index = index
        self.value = value

    def __repr__(self) -> str:
        return f"Var({primal(self)!r}, level={self.trace.level}, index={self.index})"

    # Arithmetic records; the reflected forms put the constant on the left.
    def __add__(self, other: Any) -> Any: return add(self, other)
    def __radd__(self, other: Any) -> Any: return add(other, self)
    def __sub__(self, other: Any) -> Any: return sub(self, other)
    def __rsub__(self, other: Any) -> Any: return sub(other, self)
    def __mul__(self, other: Any) -> Any: return mul(self, other)
    def __rmul__(self, other: Any) -> Any: return mul(other, self)
    def __truediv__(self, other: Any) -> Any: return div(self, other)
    def __rtruediv__(self, other: Any) -> Any: return div(other, self)
    def __pow__(self, other: Any) -> Any: return power(self, other)
    def __rpow__(self, other: Any) -> Any: return power(other, self)
    def __neg__(self) -> Any: return neg(self)
    def __abs__(self) -> Any: return absolute(self)
    def __pos__(self) -> Any: return self

    # Comparisons look at the numbers and return plain bools, so `if` works.
    def __lt__(self, other: Any) -> bool: return primal(self) < primal(other)
    def __le__(self, other: Any) -> bool: return primal(self) <= primal(other)
    def __gt__(self, other: Any) -> bool: return primal(self) > primal(other)
    def __ge__(self, other: Any) -> bool: return primal(self) >= primal(other)
    def __eq__(self, other: Any) -> bool: return primal(self) == primal(other)  # type: ignore[override]
    def __ne__(self, other: Any) -> bool: return primal(self) != primal(other)  # type: ignore[override]
    def __bool__(self) -> bool: return primal(self) != 0.0
    __hash__ = None  # type: ignore[assignment]  # equal Vars need not be the same record


def primal(x: Any) -> Any:
    """The number inside ``x``, looking through every level of tracing.

    >>> primal(2.5)
    2.5
    """
    while isinstance(x, Var):
        x = x.value
    return x


# -- primitives --------------------------------------------------------------------------


class Primitive:
    """An operation: its float implementation and its partial derivatives.

    ``partial(k, out, *xs)`` is d out / d xs[k], given the operands ``xs`` and
    the result ``out`` (floats, or Vars of outer traces). It is only called for
    operands that are traced, and is written with this module's operations so
    that it can be differentiated again.

    >>> cube = Primitive("cube", lambda x: x * x * x, lambda k, out, x: 3.0 * x * x)
    >>> grad(cube)(2.0), grad(grad(cube))(2.0)
    (12.0, 12.0)
    """

    def __init__(self, name: str, on_floats: Callable[..., float],
                 partial: Callable[..., Any]) -> None:
        self.name = name
        self.on_floats = on_floats
        self.partial = partial
        PRIMITIVES[name] = self

    def __call__(self, *operands: Any) -> Any:
        return apply(self, operands)

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


PRIMITIVES: dict[str, Primitive] = {}


def apply(prim: Primitive, operands: Sequence[Any]) -> Any:
    """``prim(*operands)``, recorded on the innermost trace among the operands."""
    trace = _innermost(operands)
    if trace is None:  # plain numbers: nothing to record
        return prim.on_floats(*operands)
    # This trace sees its own Vars as their values; anything else is a constant to it.
    xs = [x.value if _on(x, trace) else x for x in operands]
    out = prim(*xs)  # one level further out: recorded there if xs hold outer Vars
    parents = []
    for k, x in enumerate(operands):
        if _on(x, trace):
            partial = prim.partial(k, out, *xs)
            if not _structural_zero(prim, k, partial, operands, trace):
                parents.append((x.index, partial))
    return trace.append(out, parents)


def _structural_zero(prim: Primitive, k: int, partial: Any, operands: Sequence[Any],
                     trace: Trace) -> bool:
    """Whether operand k's partial is a zero that holds whatever the values: then the
    record gets no edge to it, as for a constant. That is a plain zero (not a Var: an
    outer Var's zero has derivatives one level up) of a kink (relu below 0, abs at 0:
    locally constant, or the chosen value at the kink), of a product whose other
    factor is a constant, or of x ** 0.0 (d/dx is zero for a constant exponent only
    when that exponent is 0). A zero computed from traced values (2 x at x = 0) is not:
    it may meet an infinity, and 0 * inf has no single answer."""
    if isinstance(partial, Var) or partial != 0.0:
        return False  # a Var's zero still has derivatives one level up
    if prim in (relu, absolute):
        return True
    if prim is mul:
        return not _on(operands[1 - k], trace)
    if prim is _dot:
        return not _on(operands[(k + len(operands) // 2) % len(operands)], trace)
    return prim is power and k == 0 and not isinstance(operands[1], Var) and operands[1] == 0.0


def _on(x: Any, trace: Trace) -> bool:
    return isinstance(x, Var) and x.trace is trace


def _innermost(operands: Sequence[Any]) -> Trace | None:
    """The deepest trace among the operands' (None for plain numbers)."""
    best = None
    for x in operands:
        if isinstance(x, Var):
            if not x.trace.open:
                raise ValueError(f"{x!r} escaped its grad: a Var was used after its trace ended")
            if best is None or x.trace.level > best.level:
                best = x.trace
        elif isinstance(x, bool) or not isinstance(x, (int, float)):
            raise TypeError(f"reference: expected a number or a Var, got {x!r}")
    return best


# Derivative rules that need a case analysis. They compare numbers (plain bools,
# as in user code) and compute with this module's operations.


def _sign(x: Any) -> Any:
    return 1.0 if x > 0.0 else -1.0 if x < 0.0 else 0.0 if x == 0.0 else math.nan


def _step(x: Any) -> Any:
    return 1.0 if x > 0.0 else 0.0 if x <= 0.0 else math.nan


def _sigmoid(x: float) -> float:
    # Two forms so that exp never overflows: e**-x for x >= 0, e**x below.
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _pow_dx(x: Any, y: Any) -> Any:
    if type(y) is float and y == 0.0:
        return 0.0  # a constant exponent 0: x ** 0 is the constant 1, even at 0 or NaN
    if x == 0.0 and y == 0.0:
        return 0.0  # 0 ** y along x near y = 0 (a traced exponent keeps its derivative)
    return y * _pow_or_inf(x, y - 1.0)  # inf at x = 0 for y < 1, as are its derivatives


def _pow_dy(x: Any, out: Any) -> Any:
    if x > 0.0:
        return out * log(x)
    # NaN for a negative base, written so that it depends on y: its own derivative is
    # NaN too, not the 0 of a constant.
    return 0.0 if x == 0.0 else math.nan * out


def _half_over(x: Any) -> Any:
    # sqrt'(x) = 0.5 / sqrt(x); at 0, inf (the limit from the right).
    return 0.5 / x if x != 0.0 else math.inf


def _pow_or_inf_floats(x: float, y: float) -> float:
    # math.pow, except where it raises for a result too large: 0 ** negative (a pole)
    # and overflow are the infinities they tend to, since a derivative may be infinite.
    if x == 0.0 and y < 0.0:
        return math.inf
    try:
        return math.pow(x, y)
    except OverflowError:
        odd = y == math.floor(y) and math.fmod(y, 2.0) != 0.0
        return -math.inf if x < 0.0 and odd else math.inf


add = Primitive("add", lambda x, y: x + y, lambda k, out, x, y: 1.0)
sub = Primitive("sub", lambda x, y: x - y, lambda k, out, x, y: 1.0 if k == 0 else -1.0)
mul = Primitive("mul", lambda x, y: x * y, lambda k, out, x, y: y if k == 0 else x)
div = Primitive("div", lambda x, y: x / y, lambda k, out, x, y: 1.0 / y if k == 0 else -out / y)
power = Primitive("pow", math.pow,
                  lambda k, out, x, y: _pow_dx(x, y) if k == 0 else _pow_dy(x, out))
# x ** y for the rules only: the same, except that 0 ** negative is inf, not an error.
_pow_or_inf: Primitive = Primitive(
    "pow_or_inf", _pow_or_inf_floats,
    lambda k, out, x, y: _pow_dx(x, y) if k == 0 else _pow_dy(x, out))
neg = Primitive("neg", lambda x: -x, lambda k, out, x: -1.0)
absolute = Primitive("abs", abs, lambda k, out, x: _sign(x))
exp = Primitive("exp", math.exp, lambda k, out, x: out)
log = Primitive("log", math.log, lambda k, out, x: 1.0 / x)
sqrt = Primitive("sqrt", math.sqrt, lambda k, out, x: _half_over_sqrt(out))
# 0.5 / y with the value inf at 0; its own derivative -0.5 / y**2 = -2 out**2 is -inf there.
_half_over_sqrt: Primitive = Primitive(
    "half_over", _half_over, lambda k, out, y: -out / y if y != 0.0 else -2.0 * out * out)
tanh = Primitive("tanh", math.tanh, lambda k, out, x: 1.0 - out * out)
sigmoid = Primitive("sigmoid", _sigmoid, lambda k, out, x: out * (1.0 - out))
relu = Primitive("relu", lambda x: 0.0 if x <= 0.0 else x, lambda k, out, x: _step(x))
sin = Primitive("sin", math.sin, lambda k, out, x: cos(x))
cos: Primitive = Primitive("cos", math.cos, lambda k, out, x: -sin(x))


def _sum_floats(*xs: float) -> float:
    total = 0.0
    for x in xs:
        total += x
    return total


def _dot_floats(*xys: float) -> float:
    n = len(xys) // 2
    return _sum_floats(*[x * y for x, y in zip(xys[:n], xys[n:])])


# The n-ary ones take all their operands flat: dot's are the xs, then the ys.
_sum = Primitive("sum", _sum_floats, lambda k, out, *xs: 1.0)
_dot = Primitive("dot", _dot_floats,
                 lambda k, out, *xys: xys[(k + len(xys) // 2) % len(xys)])  # the partner


def sum(xs: Sequence[Any]) -> Any:  # noqa: A001  # like tg.sum
    """The sum of the items, one record for all of them.

    >>> grad(lambda x: sum([x, x * x, 1.0]))(3.0)
    7.0
    """
    return _sum(*xs)


def dot(xs: Sequence[Any], ys: Sequence[Any]) -> Any:
    """sum(x * y for x, y in zip(xs, ys)), one record for all of it.

    >>> grad(lambda x: dot([x, 2.0], [x, x]))(3.0)
    8.0
    """
    if len(xs) != len(ys):
        raise ValueError(f"dot: operands have different lengths {len(xs)} and {len(ys)}")
    return _dot(*xs, *ys)


def stop_gradient(x: Any) -> float:
    """The number inside ``x``: a plain number is a constant to every trace.

    >>> grad(lambda x: x * stop_gradient(x))(3.0)
    3.0
    """
    return primal(x)


# -- the transforms ----------------------------------------------------------------------


def value_and_grad(f: Callable[..., Any], argnums: ArgNums = 0) -> Callable[..., tuple]:
    """A function returning ``(f(*args), gradient)`` for a scalar ``f``.

    The differentiated arguments (``argnums``, an int or a tuple of ints) are
    numbers or tuples of numbers; the gradient has their shape (a tuple of
    gradients when ``argnums`` is a tuple).

    >>> value_and_grad(lambda x, y: x * y + y, argnums=(0, 1))(2.0, 3.0)
    (9.0, (3.0, 3.0))
    """

    def value_and_grad_f(*args: Any) -> tuple:
        nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        trace = Trace(level=len(_TRACES) + 1)
        _TRACES.append(trace)
        try:
            traced = list(args)
            for n in nums:
                traced[n] = _leaves(trace, args[n])
            out = f(*traced)
        finally:
            _TRACES.pop()
            trace.open = False  # the sweep below runs on the outer traces only
        if isinstance(out, Var) and out.trace is trace:
            adjoint, value = trace.backward(out.index), out.value
        elif isinstance(out, (int, float, Var)) and not isinstance(out, bool):
            adjoint, value = {}, out  # a constant: every derivative is zero
        else:
            raise TypeError(f"value_and_grad needs a function returning a number, got {out!r}")
        grads = tuple(_adjoints(adjoint, traced[n]) for n in nums)
        return value, grads[0] if isinstance(argnums, int) else grads

    return value_and_grad_f


def grad(f: Callable[..., Any], argnums: ArgNums = 0) -> Callable[..., Any]:
    """The gradient of a scalar function with respect to argument(s) ``argnums``.

    >>> grad(lambda x: x ** 3)(2.0)
    12.0
    >>> grad(grad(grad(sqrt)))(1.0)  # 3/8 x**-2.5
    0.375
    """
    value_and_grad_f = value_and_grad(f, argnums)
    return lambda *args: value_and_grad_f(*args)[1]


def _leaves(trace: Trace, arg: Any) -> Any:
    """One leaf record per number of ``arg`` (a number, Var, or tuple or list of them)."""
    if isinstance(arg, (tuple, list)):
        return tuple(_leaves(trace, a) for a in arg)
    _innermost([arg])  # checks that it is a number or a live Var
    return trace.append(arg, [])


def _adjoints(adjoint: dict[int, Any], leaves: Any) -> Any:
    if isinstance(leaves, tuple):
        return tuple(_adjoints(adjoint, leaf) for leaf in leaves)
    return adjoint.get(leaves.index, 0.0)
