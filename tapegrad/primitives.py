"""The primitive table: every differentiable operation and its derivative rule.

Each :class:`Primitive` names an operation, its implementation on floats, and
its derivative rule as partial derivatives of the output with respect to each
input. The rules are Python expressions in ``x``, ``y`` (the inputs) and ``out``
(the result), written with tapegrad's own operations, so when the inputs are
themselves traced values of an outer trace the rule is recorded too and
higher derivatives come for free. Adding a primitive is adding one entry to
``PRIMITIVES``.

From each entry this module generates, once at import time, the public function
(``tg.tanh``), the method (``x.tanh()``) or the operator methods of
:class:`~tapegrad.tracer.Tracer` (``__mul__``, ``__rmul__``). Generating them
from the table keeps the rules in one place while the recording path stays a
flat, call-free sequence of list appends, which is what makes the eager tape
fast. The same templates drive the Wengert-list printer and the ``jit`` code
generator. The generated source of any function can be read with
:func:`generated_source`.

Three conventions keep the rules exact at the edges:

- A rule never takes a shortcut that returns a constant when its inputs are
  traced values (that would drop a dependence one level up: the mixed second
  derivative of ``x ** y`` at ``y == 0`` is ``1/x``). Shortcuts live only in
  the float helpers, which compute first derivatives.
- Kinks are records, not branches: the derivative of ``abs`` is ``sign(x)``,
  of ``relu`` ``step(x)``, both recorded (with derivative zero), so that ``jit``
  compiles them without guards and a relu network is traced once.
- Derivatives at domain edges follow IEEE arithmetic (``sqrt'(0) = inf``): the
  traced partials of ``sqrt``, ``**`` and ``atan2`` run in rule mode (see
  :func:`tapegrad.tape.rules_on`). NaN in gives NaN out.

The n-ary ``sum`` and ``dot`` record one record each however many operands
they have. ``dense`` (the layer of ``nn.mlp``) records a whole neuron, its
weighted sum, bias and an activation from the table, as one ``dot`` record whose
partials are the activation's rule times the dot product's.
"""

from __future__ import annotations

import builtins
import linecache
import marshal
import math
import numbers
import operator
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Callable, Union

import attrs

from . import tape as _tape
from .tape import CHUNK_MASK, HOOKS, NARY, OPS, Guard, Record, in_rules, with_rules
from .tracer import Tracer, primal, top_operand

__all__ = [
    "Primitive", "PRIMITIVES", "OpInfo",
    "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "sin", "cos", "tan", "log1p", "expm1",
    "softplus", "log_sigmoid", "erf", "sign", "step", "abs", "stop_gradient",
    "power", "atan2", "maximum", "minimum", "chain_mul", "where", "sum", "dot",
    "generated_source",
]

Scalar = Union[float, int, Tracer]


@attrs.frozen
class Primitive:
    """One operation of the table.

    Attributes:
        name: the operation's name, also its public function name for functions.
        arity: 1 or 2.
        on_floats: expression computing the result from floats ``{x}`` (, ``{y}``).
        partials: one expression per input for d(out)/d(input), in ``{x}``, ``{y}``
            and ``{out}``, using only operations that work on traced values; empty
            for an operation whose derivative is zero wherever it exists (its records
            get no edge in the sweeps).
        generic: expression computing the result when inputs may be traced values
            of an outer trace (defaults to calling the public function).
        infix: the operator symbol for binary operators and unary minus.
        methods: the Tracer methods to generate (``("__mul__", "__rmul__")``,
            ``("tanh",)``).
        ieee: the IEEE value of the operation where ``on_floats`` raises (used in
            rule mode); empty for operations that never raise.
        rule_mode: the traced partials can hit a domain edge where the value does
            not (``0.5 / sqrt(x)`` at 0), so they are evaluated in rule mode.
        ufunc: the NumPy ufunc of the same meaning (``np.tanh`` on a traced
            scalar dispatches here).
        doc: the public function's docstring.
    """

    name: str
    arity: int
    on_floats: str
    partials: tuple[str, ...]
    generic: str = ""
    infix: str | None = None
    methods: tuple[str, ...] = ()
    ieee: str = ""
    rule_mode: bool = False
    ufunc: tuple[str, ...] = ()
    doc: str = ""

    @property
    def differentiable(self) -> bool:
        return bool(self.partials)

    def generic_expression(self) -> str:
        if self.generic:
            return self.generic
        args = "{x}" if self.arity == 1 else "{x}, {y}"
        return f"{self.name}({args})"


# ---------------------------------------------------------------------------
# Helpers the rules use. Each accepts floats and traced values alike: on floats
# it may take exact shortcuts (a first derivative is just a number), on traced
# values it writes the full expression, so that its own derivative is right.
# ---------------------------------------------------------------------------

_INF = math.inf
_NAN = math.nan
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _sign_float(x: float) -> float:
    return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else (0.0 if x == 0.0 else _NAN))


def _step_float(x: float) -> float:
    return 1.0 if x > 0.0 else (0.0 if x <= 0.0 else _NAN)


def _sign(x: Any) -> Any:
    return _sign_float(x) if type(x) is float else sign(x)


def _step(x: Any) -> Any:
    return _step_float(x) if type(x) is float else step(x)


def _half_over(out: Any) -> Any:
    # d sqrt(x)/dx = 1 / (2 sqrt(x)): infinite at 0, as for floats in the limit.
    if type(out) is float:
        return 0.5 / out if out != 0.0 else _INF
    # Rule mode: inf at 0, and its own derivative survives. "+ 0.0" turns sqrt(-0.0) =
    # -0.0 into +0.0, so that the slope there is +inf as above, not -inf.
    return 0.5 / (out + 0.0)


def _pow_dx(x: Any, y: Any) -> Any:
    """d(x ** y)/dx = y * x ** (y - 1)."""
    if type(x) is float and type(y) is float:
        return 0.0 if y == 0.0 else y * _ieee_pow(x, y - 1.0)
    if type(y) is float and y == 0.0:
        return 0.0  # a constant exponent 0: x ** 0 is the constant 1
    if type(y) is not float and x == 0.0 and y == 0.0:
        return 0.0  # 0 ** y near y = 0 is 1 along x; not 0 * inf (guarded under jit)
    return y * x ** (y - 1.0)  # rule mode: no OverflowError, inf where the truth is inf


def _pow_dy(x: Any, out: Any) -> Any:
    """d(x ** y)/dy = x ** y * log(x): 0 at x == 0 (0 ** y is 0 for y > 0), NaN for x < 0."""
    if type(x) is float:
        if x > 0.0:
            return out * _m_log(x)
        if x != 0.0:
            return _NAN * out
    elif x != 0.0:  # a guard under jit; the base is rarely exactly zero
        return out * log(x)  # rule mode: NaN for a negative base
    # At base 0: 0 ** y is flat near y > 0 (0) and y = 0 (1): a plain 0, a constant one
    # level up; for y < 0 it is the pole inf, where 0 * inf gives NaN.
    if type(out) is float:
        return 0.0 * out
    return _NAN if out == _INF else 0.0  # a guard under jit, as above


def _over_norm2(n: Any, a: Any, b: Any) -> Any:
    """n / (a * a + b * b), the partials of atan2; NaN at the origin."""
    if type(a) is float and type(b) is float and type(n) is float:
        d = a * a + b * b
        return n / d if d != 0.0 else _NAN
    return n / (a * a + b * b)


def _max_weight(x: Any, y: Any) -> Any:
    """d max(x, y)/dx: 1 where x wins, 0 where y wins, 1/2 on a tie (as JAX), NaN for NaN."""
    if type(x) is float and type(y) is float:
        return 1.0 if x > y else (0.0 if x < y else (0.5 if x == y else _NAN))
    return 0.5 + 0.5 * sign(x - y)


def _sigmoid_float(x: float) -> float:
    # Two forms so that neither overflows: exp of a large positive never happens.
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _softplus_float(x: float) -> float:
    # log(1 + e**x) = max(x, 0) + log1p(e**-|x|): never exponentiates a large number.
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))  # NaN stays NaN here


def _relu_float(x: float) -> float:
    return 0.0 if x <= 0.0 else x  # NaN falls through to x: NaN in, NaN out


def _max_float(x: float, y: float) -> float:
    return x if x > y else (y if x <= y else _NAN)


def _min_float(x: float, y: float) -> float:
    return x if x < y else (y if x >= y else _NAN)


def _chain_mul_float(x: float, y: float) -> float:
    # In the chain rule an exact zero means "does not depend on": it wins over inf and NaN.
    return 0.0 if x == 0.0 or y == 0.0 else x * y


def _m_log(x: float) -> float:
    return math.log(x)


# IEEE values of the operations that raise on floats (used in rule mode).


def _ieee_div(x: float, y: float) -> float:
    if y != 0.0:
        return x / y
    if x != x or x == 0.0:
        return _NAN
    return math.copysign(_INF, x) * math.copysign(1.0, y)


def _ieee_log(x: float) -> float:
    return -_INF if x == 0.0 else _NAN  # called only where math.log raised


def _ieee_log1p(x: float) -> float:
    return -_INF if x == -1.0 else _NAN


def _ieee_pow(x: float, y: float) -> float:
    try:
        return math.pow(x, y)
    except OverflowError:
        odd = y == math.floor(y) and math.fmod(y, 2.0) != 0.0
        return -_INF if (x < 0.0 and odd) else _INF
    except ValueError:
        if x == 0.0 and y < 0.0:  # 0 ** negative: a pole
            odd = y == math.floor(y) and math.fmod(y, 2.0) != 0.0
            return math.copysign(_INF, x) if odd else _INF
        return _NAN  # a negative base with a fractional exponent


def _ieee_floordiv(x: float, y: float) -> float:
    return _ieee_div(x, y)


# ---------------------------------------------------------------------------
# The table.
# ---------------------------------------------------------------------------

PRIMITIVES: tuple[Primitive, ...] = (
    # -- binary operators ----------------------------------------------------
    Primitive("add", 2, "{x} + {y}", ("1.0", "1.0"), "{x} + {y}", "+", ("__add__", "__radd__"),
              ufunc=("add",)),
    Primitive("sub", 2, "{x} - {y}", ("1.0", "-1.0"), "{x} - {y}", "-", ("__sub__", "__rsub__"),
              ufunc=("subtract",)),
    Primitive("mul", 2, "{x} * {y}", ("{y}", "{x}"), "{x} * {y}", "*", ("__mul__", "__rmul__"),
              ufunc=("multiply",)),
    Primitive("div", 2, "{x} / {y}", ("1.0 / {y}", "-{out} / {y}"), "{x} / {y}", "/",
              ("__truediv__", "__rtruediv__"), ieee="_ieee_div({x}, {y})",
              ufunc=("true_divide", "divide")),
    Primitive("pow", 2, "_m.pow({x}, {y})", ("_pow_dx({x}, {y})", "_pow_dy({x}, {out})"),
              "{x} ** {y}", "**", ("__pow__", "__rpow__"), ieee="_ieee_pow({x}, {y})",
              rule_mode=True, ufunc=("power",)),
    # x % y = x - y * floor(x / y): Python's float modulo, with the sign of y.
    Primitive("mod", 2, "{x} % {y}", ("1.0", "-({x} // {y})"), "{x} % {y}", "%",
              ("__mod__", "__rmod__"), ieee="_NAN", ufunc=("remainder", "mod")),
    Primitive("floordiv", 2, "{x} // {y}", (), "{x} // {y}", "//",
              ("__floordiv__", "__rfloordiv__"), ieee="_ieee_floordiv({x}, {y})",
              ufunc=("floor_divide",)),
    # -- binary functions ----------------------------------------------------
    Primitive("atan2", 2, "_m.atan2({x}, {y})",
              ("_over_norm2({y}, {x}, {y})", "-_over_norm2({x}, {x}, {y})"),
              rule_mode=True, ufunc=("arctan2",), doc="""
        The angle of the point (x=second, y=first), as ``math.atan2(y, x)``.

        >>> round(atan2(1.0, 1.0), 6)
        0.785398
        """),
    Primitive("maximum", 2, "_max_float({x}, {y})",
              ("_max_weight({x}, {y})", "_max_weight({y}, {x})"), ufunc=("maximum",), doc="""
        The larger of two values; NaN if either is NaN; a tie splits the derivative 1/2, 1/2.

        >>> maximum(2.0, 3.0)
        3.0
        """),
    Primitive("minimum", 2, "_min_float({x}, {y})",
              ("_max_weight({y}, {x})", "_max_weight({x}, {y})"), ufunc=("minimum",), doc="""
        The smaller of two values; NaN if either is NaN; a tie splits the derivative 1/2, 1/2.

        >>> minimum(2.0, 3.0)
        2.0
        """),
    # The product the sweeps use where a partial can be infinite at a finite point
    # (sqrt, pow, atan2 records): an exact zero adjoint or tangent there sends
    # nothing, and a traced zero keeps its derivative (d/dx of x * inf is inf).
    Primitive("chain_mul", 2, "_chain_mul_float({x}, {y})", ("{y}", "{x}"), doc="""
        x * y, except that an exact zero times anything (inf, NaN) is 0.

        It is the product of the chain rule: a zero adjoint or partial means "does
        not depend on", which an infinite slope elsewhere does not undo. Its
        derivatives are those of x * y.

        >>> chain_mul(0.0, float("inf")), chain_mul(2.0, 3.0)
        (0.0, 6.0)
        """),
    # -- unary functions -----------------------------------------------------
    Primitive("neg", 1, "-{x}", ("-1.0",), "-{x}", "-", ("__neg__",), ufunc=("negative",)),
    Primitive("abs", 1, "_abs({x})", ("_sign({x})",), "_abs({x})", None, ("__abs__",),
              ufunc=("absolute", "fabs"), doc="""
        Absolute value; its derivative is the sign of ``x`` (0 at 0).

        >>> abs(-2.5)
        2.5
        """),
    Primitive("exp", 1, "_m.exp({x})", ("{out}",), methods=("exp",), ieee="_INF",
              ufunc=("exp",), doc="""
        The exponential e**x; ``OverflowError`` above about 709.78, as ``math.exp``.

        >>> round(exp(1.0), 6)
        2.718282
        """),
    Primitive("expm1", 1, "_m.expm1({x})", ("{out} + 1.0",), methods=("expm1",), ieee="_INF",
              ufunc=("expm1",), doc="""
        e**x - 1, accurate near 0.

        >>> expm1(0.0)
        0.0
        """),
    Primitive("log", 1, "_m.log({x})", ("1.0 / {x}",), methods=("log",),
              ieee="_ieee_log({x})", ufunc=("log",), doc="""
        Natural logarithm; ``ValueError`` for x <= 0, as ``math.log``.

        >>> log(1.0)
        0.0
        """),
    Primitive("log1p", 1, "_m.log1p({x})", ("1.0 / (1.0 + {x})",), methods=("log1p",),
              ieee="_ieee_log1p({x})", ufunc=("log1p",), doc="""
        log(1 + x), accurate near 0; ``ValueError`` for x <= -1, as ``math.log1p``.

        >>> log1p(0.0)
        0.0
        """),
    Primitive("sqrt", 1, "_m.sqrt({x})", ("_half_over({out})",), methods=("sqrt",),
              ieee="_NAN", rule_mode=True, ufunc=("sqrt",), doc="""
        Square root; ``ValueError`` for x < 0, as ``math.sqrt``; its derivative at 0 is inf.

        >>> sqrt(9.0)
        3.0
        """),
    Primitive("tanh", 1, "_m.tanh({x})", ("1.0 - {out} * {out}",), methods=("tanh",),
              ufunc=("tanh",), doc="""
        Hyperbolic tangent; its derivative is 1 - tanh(x)**2.

        >>> round(tanh(0.5), 6)
        0.462117
        """),
    Primitive("sigmoid", 1, "_sigmoid_float({x})", ("{out} * (1.0 - {out})",),
              methods=("sigmoid",), doc="""
        The logistic function 1 / (1 + e**-x), computed without overflow.

        >>> sigmoid(0.0)
        0.5
        """),
    Primitive("softplus", 1, "_softplus_float({x})", ("sigmoid({x})",), methods=("softplus",),
              doc="""
        log(1 + e**x), computed without overflow; its derivative is sigmoid(x).

        >>> round(softplus(0.0), 6)
        0.693147
        >>> softplus(1000.0)
        1000.0
        """),
    Primitive("log_sigmoid", 1, "-_softplus_float(-{x})", ("sigmoid(-{x})",),
              methods=("log_sigmoid",), doc="""
        log(sigmoid(x)) = -softplus(-x), without overflow or log(0).

        >>> round(log_sigmoid(0.0), 6)
        -0.693147
        >>> log_sigmoid(-1000.0)
        -1000.0
        """),
    Primitive("relu", 1, "_relu_float({x})", ("_step({x})",), methods=("relu",), doc="""
        max(x, 0); its derivative is 1 for x > 0 and 0 otherwise (0 at the kink); NaN stays NaN.

        >>> relu(-2.0), relu(3.0)
        (0.0, 3.0)
        """),
    Primitive("sin", 1, "_m.sin({x})", ("cos({x})",), methods=("sin",), ieee="_NAN",
              ufunc=("sin",), doc="""
        Sine (radians).

        >>> sin(0.0)
        0.0
        """),
    Primitive("cos", 1, "_m.cos({x})", ("-sin({x})",), methods=("cos",), ieee="_NAN",
              ufunc=("cos",), doc="""
        Cosine (radians).

        >>> cos(0.0)
        1.0
        """),
    Primitive("tan", 1, "_m.tan({x})", ("1.0 + {out} * {out}",), methods=("tan",), ieee="_NAN",
              ufunc=("tan",), doc="""
        Tangent (radians); its derivative is 1 + tan(x)**2.

        >>> tan(0.0)
        0.0
        """),
    Primitive("erf", 1, "_m.erf({x})", ("_TWO_OVER_SQRT_PI * exp(-{x} * {x})",),
              methods=("erf",), doc="""
        The error function; its derivative is 2 / sqrt(pi) * exp(-x**2).

        >>> erf(0.0)
        0.0
        """),
    # -- unary functions with derivative zero: their records have no sweep edges -
    Primitive("sign", 1, "_sign_float({x})", (), ufunc=("sign",), doc="""
        -1, 0 or 1 by the sign of ``x`` (NaN for NaN); its derivative is 0.

        >>> sign(-2.5), sign(0.0)
        (-1.0, 0.0)
        """),
    Primitive("step", 1, "_step_float({x})", (), doc="""
        1 for x > 0, else 0 (NaN for NaN): the derivative of ``relu``; its own is 0.

        >>> step(2.0), step(0.0)
        (1.0, 0.0)
        """),
    Primitive("stop_gradient", 1, "{x}", (), doc="""
        ``x`` itself, treated as a constant by every derivative (of any order).

        >>> import tapegrad as tg
        >>> tg.grad(lambda x: x * tg.stop_gradient(x))(3.0)
        3.0
        """),
)


# ---------------------------------------------------------------------------
# Operation codes and their readable descriptions.
# ---------------------------------------------------------------------------


@attrs.frozen
class OpInfo:
    """What one operation code means: which primitive, and which operands are traced.

    ``kind`` is ``"unary"``, ``"tt"`` (both operands traced), ``"tc"`` (traced op
    constant), ``"ct"`` (constant op traced), or one of the n-ary records:
    ``"sum"``, ``"dot"``, ``"custom"`` and ``"nodiff"`` (an operation of the table
    whose derivative is zero; its entry is ``(inputs, constants)``, -1 marking
    a constant operand).
    """

    code: int
    name: str
    kind: str
    primitive: Primitive | None = None

    def record(self, tape: _tape.Tape, i: int) -> Record:
        """The readable view of record ``i`` of ``tape``."""
        value = tape.values[i]
        name = tape.names.get(i)
        a, b = tape.a0[i], tape.a1[i]
        if self.kind == "unary":
            return Record(i, self.name, (a,), value, (tape.d0[i],), (), name)
        if self.kind == "tt":
            return Record(i, self.name, (a, b), value, (tape.d0[i], tape.d1[i]), (), name)
        if self.kind == "tc":
            return Record(i, self.name, (a, None), value, (tape.d0[i],), (tape.d1[i],), name)
        if self.kind == "ct":
            return Record(i, self.name, (None, a), value, (tape.d0[i],), (tape.d1[i],), name)
        entry = tape.nary[-2 - a]
        if self.kind == "nodiff":
            inputs, constants = entry
            return Record(i, self.name, tuple(j if j >= 0 else None for j in inputs), value,
                          tuple(0.0 for j in inputs if j >= 0),
                          tuple(c for j, c in zip(inputs, constants) if j < 0), name)
        pairs = list(self.nary_partials(entry))
        inputs = tuple(j for j, _ in pairs)
        partials = tuple(d for _, d in pairs)
        return Record(i, self.name, inputs, value, partials, self.nary_constants(entry), name)

    def nary_partials(self, entry: tuple) -> Iterator[tuple[int, Any]]:
        """(input index, partial) pairs of an n-ary record's operands."""
        if self.kind == "sum":
            return ((j, 1.0) for j in entry[0])
        if self.kind == "dot":
            xi, yi, xv, yv, bi, _, act, ad = entry
            pairs = [(j, w) for j, w in zip(xi or (), yv) if j >= 0]
            pairs += [(j, w) for j, w in zip(yi or (), xv) if j >= 0]
            if bi >= 0:
                pairs.append((bi, 1.0))
            if act:  # a fused activation: chain rule with its derivative
                pairs = [(j, w * ad) for j, w in pairs]
            return iter(pairs)
        if self.kind == "nodiff":
            return iter(())
        return zip(entry[0], with_rules(entry[1], 1.0))

    def nary_terms(self, entry: tuple) -> Iterator[tuple[int, Any, bool]]:
        """(input index, partial, structural) for each traced operand of an n-ary record.

        ``structural`` says that the partial, where it is zero, is so whatever the
        values (a dot's term whose partner is a constant; a fused kink's zero), so that
        it sends nothing even against an infinite adjoint (see ``tape.SELECT``).
        """
        if self.kind == "sum":
            return ((j, 1.0, False) for j in entry[0])
        if self.kind != "dot":
            return ((j, d, False) for j, d in self.nary_partials(entry))
        xi, yi, xv, yv, bi, _, act, ad = entry
        kink = bool(act) and act in _tape.SELECT and ad == 0.0
        n = len(xv)
        terms = [(j, w, kink or (yi is None or yi[k] < 0))
                 for k, (j, w) in enumerate(zip(xi or (-1,) * n, yv)) if j >= 0]
        terms += [(j, w, kink or (xi is None or xi[k] < 0))
                  for k, (j, w) in enumerate(zip(yi or (-1,) * n, xv)) if j >= 0]
        if bi >= 0:
            terms.append((bi, 1.0, kink))
        if act:  # a fused activation: chain rule with its derivative
            terms = [(j, w * ad, structural) for j, w, structural in terms]
        return iter(terms)

    def nary_adjoints(self, entry: tuple, g: Any, lazy: bool = False) -> Iterator[tuple]:
        """(input index, contribution) pairs for output adjoint ``g`` (reverse sweep).

        With ``lazy`` the contribution is an unmultiplied ``(g, partial)`` pair.
        """
        if self.kind == "custom":
            # its bwd sees the real cotangent, so it need not be linear in it
            cts = with_rules(entry[1], g)
            return ((j, (c, 1.0)) for j, c in zip(entry[0], cts)) if lazy else zip(entry[0], cts)
        if lazy:
            return ((j, (g, d)) for j, d in self.nary_partials(entry))
        return ((j, _tape._scaled(g, d)) for j, d in self.nary_partials(entry))

    def tangent(self, entry: tuple, tangents: Sequence[Any]) -> Any:
        """The tangent of an n-ary record from its inputs' tangents (forward sweep)."""
        return linear_combination([(tangents[j], d) for j, d in self.nary_partials(entry)])

    def nary_constants(self, entry: tuple) -> tuple:
        if self.kind == "sum":
            return (entry[1],)
        if self.kind == "dot":
            xi, yi, xv, yv, bi, bv, _, _ = entry
            xi = tuple(xi) if xi is not None else (-1,) * len(xv)
            yi = tuple(yi) if yi is not None else (-1,) * len(yv)
            constants = tuple(v for j, v in zip(xi + yi, tuple(xv) + tuple(yv)) if j < 0)
            return constants + ((bv,) if bi < 0 and bv != 0.0 else ())
        return ()

    def expression(self, operands: Sequence[str], constants: Sequence[str] = ()) -> str:
        """This operation written over operand names (for printing and for code)."""
        if self.kind in ("sum", "dot", "custom"):
            return f"{self.name}({', '.join(operands)})"
        prim = self.primitive
        assert prim is not None
        template = prim.generic_expression()
        if self.kind == "unary" or (self.kind == "nodiff" and prim.arity == 1):
            return template.format(x=(list(operands) + list(constants))[0])
        if self.kind == "tt":
            return template.format(x=operands[0], y=operands[1])
        if self.kind == "tc":
            return template.format(x=operands[0], y=constants[0])
        if self.kind == "ct":
            return template.format(x=constants[0], y=operands[0])
        # nodiff binary: operands and constants in their original order are given merged
        return template.format(x=operands[0], y=operands[1])


def _register(name: str, kind: str, primitive: Primitive | None = None) -> int:
    code = len(OPS)
    if code > 255:
        raise RuntimeError("tapegrad: too many operation codes for the one-byte op column")
    OPS.append(OpInfo(code, name, kind, primitive))
    return code


# ---------------------------------------------------------------------------
# Domain errors: Python's exceptions for user code, IEEE values inside rules,
# and a guard when a jit trace sees user code catch one.
# ---------------------------------------------------------------------------

_MATH_ERRORS = (ValueError, ZeroDivisionError, OverflowError)
# Per operation code: the IEEE value where the float operation raises.
IEEE: dict[int, Callable[..., float]] = {}


def _domain_error(name: str, error: Exception, *inputs: Any) -> Exception:
    shown = ", ".join(repr(primal(v)) for v in inputs)
    return type(error)(f"tapegrad.{name}({shown}): {error}")


def _math_error(tape: _tape.Recorder, code: int, error: Exception, xi: int, yi: int,
                x: Any, y: Any) -> float:
    """What a recorded float operation does when it raises: IEEE value or exception."""
    if in_rules():
        tape.ieee.add(len(tape.ops))  # jit writes this record with its IEEE form
        return IEEE[code](x, y)
    if tape.guards is not None:  # user code may catch it: that is control flow too
        info = OPS[code]
        unary = info.primitive.arity == 1 if info.primitive else True
        inputs = (xi,) if unary else (xi, yi)
        constants = (x if xi < 0 else None,) if unary else (
            x if xi < 0 else None, y if yi < 0 else None)
        tape.guards.append(Guard(len(tape.ops), "raises", code, inputs, constants, type(error)))
    operands = (x,) if OPS[code].kind in ("unary",) or (
        OPS[code].primitive is not None and OPS[code].primitive.arity == 1) else (x, y)
    raise _domain_error(OPS[code].name, error, *operands)


def _float_error(code: int, error: Exception, x: Any, y: Any = None) -> float:
    """A float operation outside any trace raised: IEEE value in rule mode, else the error."""
    if in_rules():
        return IEEE[code](x, y)
    prim = OPS[code].primitive
    raise _domain_error(OPS[code].name, error, *((x,) if prim.arity == 1 else (x, y)))


class _IEEEFloat(float):
    """A float whose arithmetic never raises: ``x / 0`` is ±inf and ``0 / 0`` NaN.

    Used only on the rare path where an operation raised in rule mode, to
    evaluate its partials (``1 / y`` of a division by zero) the IEEE way.
    """

    def __truediv__(self, other: Any) -> _IEEEFloat:
        return _IEEEFloat(_ieee_div(float(self), float(other)))

    def __rtruediv__(self, other: Any) -> _IEEEFloat:
        return _IEEEFloat(_ieee_div(float(other), float(self)))

    def __floordiv__(self, other: Any) -> _IEEEFloat:
        return _IEEEFloat(_ieee_floor(float(self), float(other)))

    def __rfloordiv__(self, other: Any) -> _IEEEFloat:
        return _IEEEFloat(_ieee_floor(float(other), float(self)))

    def __neg__(self) -> _IEEEFloat:
        return _IEEEFloat(-float(self))

    def __add__(self, other: Any) -> _IEEEFloat:
        return _IEEEFloat(float(self) + float(other))

    __radd__ = __add__

    def __mul__(self, other: Any) -> _IEEEFloat:
        return _IEEEFloat(float(self) * float(other))

    __rmul__ = __mul__

    def __sub__(self, other: Any) -> _IEEEFloat:
        return _IEEEFloat(float(self) - float(other))

    def __rsub__(self, other: Any) -> _IEEEFloat:
        return _IEEEFloat(float(other) - float(self))


def _ieee_floor(x: float, y: float) -> float:
    return x // y if y != 0.0 else _ieee_div(x, y)


def _ieee_partials(fn: Callable[..., tuple], x: Any, y: Any, out: Any) -> tuple:
    """An operation's float partials where its value took an IEEE form (rule mode)."""
    try:
        return fn(x, y, out)
    except _MATH_ERRORS:
        wrap = _IEEEFloat
        return tuple(float(d) for d in fn(wrap(x), None if y is None else wrap(y), wrap(out)))


def _as_float(name: str, x: Any) -> float:
    """A real number as a float (bools and NumPy scalars included), else TypeError."""
    if isinstance(x, numbers.Real):
        return float(x)
    raise TypeError(
        f"tapegrad.{name} expects a number or a traced value, got {type(x).__name__}: {x!r}"
        + _array_advice(x)
    )


def _array_advice(x: Any) -> str:
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return ("; for arrays use tapegrad.numpy (import tapegrad.numpy as tnp), whose "
                "functions have NumPy's names")
    return ""


_to_float = _as_float  # the name the n-ary functions use


def _other_unary(code: int, fn: Callable[[Any], Any], x: Any) -> Any:
    """A unary public function called on something other than a float or a tracer."""
    dispatch = HOOKS.get("array_unary")
    if dispatch is not None:
        result = dispatch(OPS[code].name, x)
        if result is not NotImplemented:
            return result
    return fn(_as_float(OPS[code].name, x))


def _other_operand(method: Callable[[Any, Any], Any], name: str, self: Tracer, other: Any,
                   reflected: bool) -> Any:
    """A binary operator met an operand that is not a float, int or tracer."""
    if isinstance(other, numbers.Real):  # bool, NumPy scalars, fractions: as floats
        return method(self, float(other))
    dispatch = HOOKS.get("array_binary")
    if dispatch is not None:
        return dispatch(name, other, self) if reflected else dispatch(name, self, other)
    return NotImplemented


# ---------------------------------------------------------------------------
# Code generation of the recording functions.
# ---------------------------------------------------------------------------

_NEW_RECORD = """
    i = len(tape.ops)
    tape.ops.append({code})
    tape.vals.append(out)
    tape.a0.append({a})
    tape.a1.append({b})
    tape.d0.append({d0})
    tape.d1.append({d1})
    if i & {mask} == {mask}:
        tape.compact()
    t = _new(Tracer)
    t._tape = tape
    t._index = i
    t._value = out
    return t
"""


def _indent(text: str, by: int) -> str:
    pad = " " * by
    return "\n".join(pad + line if line.strip() else line for line in text.splitlines())


def _partial(prim: Primitive, k: int) -> str:
    return prim.partials[k].format(x="x", y="y", out="out")


def _value_and_partials(prim: Primitive, code: int, floats_test: str, xi: str, yi: str,
                        which: int | None = None) -> str:
    """Code setting ``out`` (and ``d0``, ``d1``) from ``x`` (and ``y``).

    On floats the operation runs directly, with its domain errors handled by
    :func:`_math_error`; otherwise (values of an outer trace) the generic
    expression records on the outer tape, and partials that can meet a domain
    edge run in rule mode. ``which`` names the one partial needed when the other
    operand is a constant (``x ** 3.0`` needs no ``d/dy``, which takes a log).
    """
    fl = prim.on_floats.format(x="x", y="y")
    gen = prim.generic_expression().format(x="x", y="y")
    y_arg = "y" if prim.arity == 2 else "None"
    ks = list(range(len(prim.partials))) if which is None or not prim.partials else [which]
    partials = [_partial(prim, k) for k in ks]
    names = [f"d{k}" for k in ks]
    lhs = f"{', '.join(names)}{',' if len(names) == 1 else ''}"
    rhs = f"{', '.join(partials)}{',' if len(names) == 1 else ''}"
    picked = f"[{which}]" if len(ks) == 1 and prim.arity == 2 else ""
    if picked:  # one value, not a one-tuple
        lhs, rhs = names[0], partials[0]
    lines = [f"if {floats_test}:"]
    if prim.ieee:
        lines += ["    try:", f"        out = {fl}", "    except _MATH_ERRORS as e:",
                  f"        out = _math_error(tape, {code}, e, {xi}, {yi}, x, {y_arg})"]
        if partials:  # rule mode only: the partials at a domain edge, in IEEE arithmetic
            args = "x, y, out" if prim.arity == 2 else "x, None, out"
            ieee = f"_ieee_partials(_pf_{prim.name}, {args})"
            lines += [f"        {lhs} = {ieee}{picked}" if picked else f"        {lhs} = {ieee}",
                      "    else:", f"        {lhs} = {rhs}"]
    else:
        lines.append(f"    out = {fl}")
        if partials:
            lines.append(f"    {lhs} = {rhs}")
    lines += ["else:", f"    out = {gen}"]
    if partials:
        if prim.rule_mode:
            args = "x, y, out" if prim.arity == 2 else "x, out"
            suffix = f"_{which}" if picked else ""
            lines.append(f"    {lhs} = _with_rules(_partials_{prim.name}{suffix}, {args})")
        else:
            lines.append(f"    {lhs} = {rhs}")
    return "\n".join(lines)


def _record(code: int, a: str, b: str, d0: str, d1: str) -> str:
    return _NEW_RECORD.format(code=code, a=a, b=b, d0=d0, d1=d1, mask=CHUNK_MASK)


def _nodiff_record(code: int, inputs: str, constants: str) -> str:
    return f"\n    return _nary_record(tape, {code}, out, (({inputs}), ({constants})))\n"


def _float_function(prim: Primitive, code: int) -> str:
    """The operation on plain floats: ``_float_<name>(x[, y])``."""
    fl = prim.on_floats.format(x="x", y="y")
    params = "x" if prim.arity == 1 else "x, y"
    if not prim.ieee:
        return f"\ndef _float_{prim.name}({params}):\n    return {fl}\n"
    return f"""
def _float_{prim.name}({params}):
    try:
        return {fl}
    except _MATH_ERRORS as e:
        return _float_error({code}, e, {params})
"""


def _float_partials_function(prim: Primitive) -> str:
    """The partials on floats as a function: ``_pf_<name>(x, y, out)``."""
    body = ", ".join(_partial(prim, k) for k in range(len(prim.partials)))
    return f"\ndef _pf_{prim.name}(x, y, out):\n    return ({body},)\n"


def _partials_function(prim: Primitive) -> str:
    """The traced partials as a function, for evaluation in rule mode."""
    params = "x, y, out" if prim.arity == 2 else "x, out"
    body = ", ".join(_partial(prim, k) for k in range(len(prim.partials)))
    source = f"\ndef _partials_{prim.name}({params}):\n    return ({body},)\n"
    if prim.arity == 2:  # one partial alone, for an operation with a constant operand
        for k in range(len(prim.partials)):
            source += (f"\ndef _partials_{prim.name}_{k}({params}):\n"
                       f"    return {_partial(prim, k)}\n")
    return source


def _unary_source(prim: Primitive, code: int) -> str:
    head = f"""
def {prim.name}(x):
    if type(x) is float:
        return _float_{prim.name}(x)
    if type(x) is not Tracer:
        return _other_unary({code}, _float_{prim.name}, x)
    tape = x._tape
    xi = x._index
    x = x._value
{_indent(_value_and_partials(prim, code, "type(x) is float", "xi", "-1"), 4)}"""
    if prim.differentiable:
        return head + _record(code, "xi", "-1", "d0", "0.0")
    return head + _nodiff_record(code, "xi,", "None,")


def _value_and_partial_source(prim: Primitive, code: int) -> str:
    """A float-only function returning (f(x), f'(x)): a fused activation's rule."""
    return f"""
def _vp_{prim.name}(x):
    out = _float_{prim.name}(x)
    return out, {_partial(prim, 0)}
"""


def _binary_sources(prim: Primitive, tt: int, tc: int, ct: int) -> str:
    n = prim.name
    both = "type(x) is float and type(y) is float"
    if prim.differentiable:
        tt_rec = _record(tt, "xi", "yi", "d0", "d1")
        tc_rec = _record(tc, "xi", "-1", "d0", "y")
        ct_rec = _record(ct, "yi", "-1", "d1", "x")
    else:  # one code for every operand pattern: the entry says which are traced
        tt_rec = _nodiff_record(tt, "xi, yi", "None, None")
        tc_rec = _nodiff_record(tt, "xi, -1", "None, y")
        ct_rec = _nodiff_record(tt, "-1, yi", "x, None")
    tc_body = _indent(_value_and_partials(prim, tc, "type(x) is float", "xi", "-1", 0),
                      4) + tc_rec
    ct_body = _indent(_value_and_partials(prim, ct, "type(y) is float", "-1", "yi", 1),
                      4) + ct_rec
    # The tc/ct functions used across nesting levels test both operands: the
    # "constant" may be a traced value of an outer trace.
    tc_mixed = _indent(_value_and_partials(prim, tc, both, "xi", "-1", 0), 4) + tc_rec
    ct_mixed = _indent(_value_and_partials(prim, ct, both, "-1", "yi", 1), 4) + ct_rec
    return f"""
def _{n}_forward(self, other):
    if type(other) is Tracer:
        tape = self._tape
        if other._tape is not tape:
            return _mixed(_{n}_tc, _{n}_ct, self, other)
        xi = self._index
        yi = other._index
        x = self._value
        y = other._value
{_indent(_value_and_partials(prim, tt, both, "xi", "yi"), 8)}
{_indent(tt_rec, 4)}
    if type(other) is not float:
        if type(other) is not int:
            return _other_operand(_{n}_forward, {n!r}, self, other, False)
        other = float(other)  # so that partials and constants on the tape are floats
    tape = self._tape
    xi = self._index
    x = self._value
    y = other
{tc_body}

def _{n}_reflected(self, other):
    if type(other) is not float:
        if type(other) is not int:
            return _other_operand(_{n}_reflected, {n!r}, self, other, True)
        other = float(other)
    tape = self._tape
    yi = self._index
    y = self._value
    x = other
{ct_body}

def _{n}_tc(self, y):
    tape = self._tape
    xi = self._index
    x = self._value
{tc_mixed}

def _{n}_ct(x, other):
    tape = other._tape
    yi = other._index
    y = other._value
{ct_mixed}
"""


def _mixed(tc: Any, ct: Any, x: Tracer, y: Tracer) -> Tracer:
    """x op y for tracers of different traces: the inner trace sees the other as a constant."""
    _rec, _xv, _yv, xi, _yi = top_operand(x, y)
    return tc(x, y) if xi >= 0 else ct(x, y)


_namespace: dict[str, Any] = {
    "Tracer": Tracer,
    "_new": object.__new__,
    "_m": math,
    "_abs": builtins.abs,
    "_MATH_ERRORS": _MATH_ERRORS,
    "_math_error": _math_error,
    "_float_error": _float_error,
    "_other_unary": _other_unary,
    "_other_operand": _other_operand,
    "_with_rules": with_rules,
    "_ieee_partials": _ieee_partials,
    "_mixed": _mixed,
    "_INF": _INF,
    "_NAN": _NAN,
    "_TWO_OVER_SQRT_PI": _TWO_OVER_SQRT_PI,
    "math": math,
}
_namespace.update({name: value for name, value in list(globals().items())
                   if name.startswith(("_ieee_", "_pow_", "_sign", "_step", "_half_over",
                                       "_over_norm2", "_max_", "_min_", "_sigmoid_float",
                                       "_softplus_float", "_chain_mul_float", "_relu_float"))})

# The n-ary records take the fixed codes the sweeps in tape.py know.
SUM = _register("sum", "sum")
DOT = _register("dot", "dot")
CUSTOM = _register("custom", "custom")
DENSE = _register("dot", "dot")  # dense(): every operand index valid, so unchecked sweeps
assert (SUM, DOT, CUSTOM, DENSE) == (_tape.SUM, _tape.DOT, _tape.CUSTOM, _tape.DENSE)
CODES: dict[str, int] = {"sum": SUM, "dot": DOT, "custom": CUSTOM}
# Per unary op code, its float (value, derivative) function: activations fused into dot.
VALUE_AND_PARTIAL: dict[int, Any] = {}
# The generated source of each primitive's functions, for reading and debugging.
_SOURCES: dict[str, str] = {}


def _ieee_function(prim: Primitive) -> Callable[..., float]:
    expr = prim.ieee.format(x="x", y="y")
    return eval(f"lambda x, y: {expr}", _namespace)  # noqa: S307  # our own table text


def _sources() -> dict[str, str]:
    """Register every operation code and generate every primitive's functions, by name."""
    sources: dict[str, str] = {}
    for prim in PRIMITIVES:
        if prim.arity == 1:
            code = _register(prim.name, "unary" if prim.differentiable else "nodiff", prim)
            codes = [code]
            source = _float_function(prim, code) + _unary_source(prim, code)
            if prim.differentiable:
                source += _value_and_partial_source(prim, code)
        else:
            if prim.differentiable:
                codes = [_register(prim.name, kind, prim) for kind in ("tt", "tc", "ct")]
            else:
                codes = [_register(prim.name, "nodiff", prim)]
            code = codes[0]
            source = _float_function(prim, code) + _binary_sources(prim, *(codes * 3)[:3])
        if prim.rule_mode:
            source += _partials_function(prim)
        if prim.name in ("relu", "abs", "maximum", "minimum"):
            _tape.SELECT.update(codes)  # kinks: a zero partial is structural
        if prim.name == "mul":
            _tape.CONSTANT_FACTOR.update(codes[1:])  # x * c, c * x: the partial is c
        if prim.name == "pow":
            _tape.CONSTANT_POWER.add(codes[1])  # x ** c: zero only for c == 0
        if prim.ieee:
            if prim.differentiable:
                source += _float_partials_function(prim)
            for c in codes:
                IEEE[c] = _ieee_function(prim)
        CODES[prim.name] = code
        sources[prim.name] = source
    return sources


_GENERATED = "<tapegrad generated primitives>"


def _compile_generated(source: str, folder: Path | None = None) -> Any:
    """``compile(source)``, kept across imports in ``__pycache__`` beside this module.

    Compiling the generated functions is most of what importing tapegrad costs, and
    the text changes only with the table, so the code object is saved (with the
    source it came from, which must match exactly to be used: a stale or foreign
    file is never trusted) and loaded with ``marshal``, as Python does for modules.
    Where the folder is not writable, or bytecode is not to be written
    (``PYTHONDONTWRITEBYTECODE``), the code is simply compiled each time.
    """
    folder = Path(__file__).with_name("__pycache__") if folder is None else folder
    cache = folder / f"tapegrad-primitives.{sys.implementation.cache_tag}.marshal"
    try:
        saved_source, code = marshal.loads(cache.read_bytes())
        if saved_source == source:
            return code
    except (OSError, ValueError, EOFError, TypeError):
        pass
    code = compile(source, _GENERATED, "exec")
    if sys.dont_write_bytecode:  # PYTHONDONTWRITEBYTECODE: write nothing, as Python does
        return code
    try:
        cache.parent.mkdir(exist_ok=True)
        partial = cache.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(marshal.dumps((source, code)))
        os.replace(partial, cache)
    except OSError:
        pass
    return code


_SOURCES.update(_sources())
_TEXT = "".join(_SOURCES.values())
# Tracebacks and debuggers read source lines from linecache: give them the generated text.
linecache.cache[_GENERATED] = (len(_TEXT), None, _TEXT.splitlines(True), _GENERATED)
exec(_compile_generated(_TEXT), _namespace)  # our own generated text
for _prim in PRIMITIVES:
    if _prim.arity == 1:
        if _prim.differentiable:
            VALUE_AND_PARTIAL[CODES[_prim.name]] = _namespace[f"_vp_{_prim.name}"]
        for _method in _prim.methods:
            setattr(Tracer, _method, _namespace[_prim.name])
    elif _prim.methods:
        setattr(Tracer, _prim.methods[0], _namespace[f"_{_prim.name}_forward"])
        setattr(Tracer, _prim.methods[1], _namespace[f"_{_prim.name}_reflected"])


def generated_source(name: str) -> str:
    """The Python source generated from the table for primitive ``name``.

    >>> print(generated_source("neg").splitlines()[1])
    def _float_neg(x):
    """
    try:
        return _SOURCES[name]
    except KeyError:
        raise ValueError(f"generated_source: no primitive named {name!r}; the table has "
                         f"{', '.join(sorted(_SOURCES))}") from None


def _public_unary(name: str) -> Any:
    fn = _namespace[name]
    prim = next(p for p in PRIMITIVES if p.name == name)
    fn.__doc__ = "\n".join(line[4:] if line.startswith("    ") else line
                           for line in prim.doc.strip("\n").splitlines())
    fn.__module__ = __name__
    fn.__qualname__ = name
    fn.__annotations__ = {"x": "Scalar", "return": "Scalar"}
    return fn


def _public_binary(name: str) -> Any:
    """The function form of a binary primitive: either or both operands traced."""
    forward = _namespace[f"_{name}_forward"]
    reflected = _namespace[f"_{name}_reflected"]
    on_floats = _namespace[f"_float_{name}"]
    prim = next(p for p in PRIMITIVES if p.name == name)

    def binary(x: Scalar, y: Scalar) -> Scalar:
        if type(x) is Tracer:
            return forward(x, y)
        if type(y) is Tracer:
            return reflected(y, x)
        dispatch = HOOKS.get("array_binary")
        if dispatch is not None:
            result = dispatch(name, x, y)
            if result is not NotImplemented:
                return result
        return on_floats(_as_float(name, x), _as_float(name, y))

    binary.__name__ = binary.__qualname__ = name
    binary.__module__ = __name__
    binary.__doc__ = "\n".join(line[4:] if line.startswith("    ") else line
                               for line in prim.doc.strip("\n").splitlines())
    return binary


exp = _public_unary("exp")
expm1 = _public_unary("expm1")
log = _public_unary("log")
log1p = _public_unary("log1p")
sqrt = _public_unary("sqrt")
tanh = _public_unary("tanh")
sigmoid = _public_unary("sigmoid")
softplus = _public_unary("softplus")
log_sigmoid = _public_unary("log_sigmoid")
relu = _public_unary("relu")
sin = _public_unary("sin")
cos = _public_unary("cos")
tan = _public_unary("tan")
erf = _public_unary("erf")
sign = _public_unary("sign")
step = _public_unary("step")
abs = _public_unary("abs")  # noqa: A001  # tg.abs, like jnp.abs; builtin abs(x) also works
stop_gradient = _public_unary("stop_gradient")
atan2 = _public_binary("atan2")
maximum = _public_binary("maximum")
minimum = _public_binary("minimum")
chain_mul = _public_binary("chain_mul")
for _prim in PRIMITIVES:
    if _prim.arity == 1 and _prim.name in globals():
        _namespace[_prim.name] = globals()[_prim.name]
for _name in ("atan2", "maximum", "minimum", "chain_mul"):
    _namespace[_name] = globals()[_name]


def power(x: Scalar, y: Scalar) -> Scalar:
    """x ** y with either or both traced (``**`` does the same).

    ``ValueError`` for a negative base with a fractional exponent and for 0 to a
    negative power, ``OverflowError`` when the result overflows, as ``math.pow``.

    >>> power(2.0, 3)
    8.0
    """
    if type(x) is Tracer:
        return x ** y
    if type(y) is Tracer:
        return y.__rpow__(x)
    dispatch = HOOKS.get("array_binary")
    if dispatch is not None:
        result = dispatch("pow", x, y)
        if result is not NotImplemented:
            return result
    return _namespace["_float_pow"](_as_float("power", x), _as_float("power", y))


_namespace["power"] = power


def where(condition: Any, x: Scalar, y: Scalar) -> Scalar:
    """``x`` where ``condition`` holds, else ``y``.

    For scalars the condition is a plain ``bool`` (comparisons of traced values
    are), so ``where`` returns one of its operands unchanged and records nothing;
    under ``jit`` the comparison that made the condition is a guard. Arrays
    (``tapegrad.numpy.where``) select elementwise with a traced mask instead.

    >>> where(2.0 > 1.0, 10.0, 20.0)
    10.0
    """
    dispatch = HOOKS.get("array_where")
    if dispatch is not None:
        result = dispatch(condition, x, y)
        if result is not NotImplemented:
            return result
    return x if condition else y


def _array_ufunc(self: Tracer, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
    """NumPy calling a ufunc on a traced scalar: dispatch to the table, never drop a derivative."""
    dispatch = HOOKS.get("array_ufunc")
    if dispatch is not None:
        return dispatch(ufunc, method, inputs, kwargs)
    name = getattr(ufunc, "__name__", str(ufunc))
    fn = _UFUNCS.get(name)
    if method == "__call__" and fn is not None and not kwargs:
        return fn(*inputs)
    raise TypeError(
        f"numpy.{name} on a tapegrad traced value would drop its derivative: use tapegrad's "
        f"own function instead ({', '.join(sorted(_UFUNC_ADVICE))}), or import "
        "tapegrad.numpy for arrays"
    )


def _ufunc_table() -> dict[str, Callable[..., Any]]:
    table: dict[str, Callable[..., Any]] = {}
    operators_: dict[str, Callable[..., Any]] = {
        "add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
        "mod": operator.mod, "floordiv": operator.floordiv, "neg": operator.neg, "pow": power}
    for prim in PRIMITIVES:
        fn: Callable[..., Any] = operators_.get(prim.name) or globals()[prim.name]
        for ufunc in prim.ufunc:
            table[ufunc] = fn
    return table


_UFUNCS = _ufunc_table()
_UFUNC_ADVICE = {f"tg.{p.name}" for p in PRIMITIVES if p.ufunc and p.infix is None
                 and p.name not in ("neg",)}
Tracer.__array_ufunc__ = _array_ufunc  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------
# N-ary records: one record for a whole sum or dot product.
# ---------------------------------------------------------------------------


def _innermost(items: Iterable[Any]) -> _tape.Recorder | None:
    """The innermost open recorder among the traced items, or None."""
    best = None
    for x in items:
        if type(x) is Tracer:
            rec, *_ = top_operand(x, 0.0)
            if best is None or rec.level > best.level:  # type: ignore[union-attr]
                best = rec
    return best


def _split(items: Sequence[Any], rec: _tape.Recorder, name: str) -> tuple[list, list]:
    """Record indices (-1 for constants) and values, as seen by trace ``rec``."""
    idx = []
    vals = []
    for x in items:
        if type(x) is Tracer and x._tape is rec:
            idx.append(x._index)
            vals.append(x._value)
        else:
            idx.append(-1)
            vals.append(x if type(x) is Tracer else _to_float(name, x))
    return idx, vals


def _nary_record(rec: _tape.Recorder, code: int, out: Any, entry: tuple) -> Tracer:
    i = len(rec.ops)
    rec.ops.append(code)
    rec.vals.append(out)
    rec.a0.append(-2 - len(rec.nary))
    rec.a1.append(NARY - code)
    rec.d0.append(0.0)
    rec.d1.append(0.0)
    rec.nary.append(entry)
    if i & CHUNK_MASK == CHUNK_MASK:
        rec.compact()
    t = object.__new__(Tracer)
    t._tape = rec
    t._index = i
    t._value = out
    return t


def sum(xs: Iterable[Scalar]) -> Scalar:  # noqa: A001
    """The sum of the items, recorded as a single record.

    Python's built-in ``sum`` also works on traced values but records one
    addition per item.

    >>> sum([1.0, 2.0, 3.5])
    6.5
    """
    xs = list(xs)
    unzipped = _unzip(xs)
    if unzipped is not None:  # every item a tracer of one open trace
        rec, indices, values = unzipped
        constant = 0.0
    else:
        rec = _innermost(xs)  # raises for a tracer of a closed or foreign trace
        if rec is None:
            return builtins.sum(_to_float("sum", x) for x in xs) + 0.0
        idx, vals = _split(xs, rec, "sum")
        last = max(k for k, j in enumerate(idx) if j >= 0)
        if any(j < 0 for j in idx[:last]):
            # A constant before a traced item: a sum record adds its constants last,
            # which can round differently from the left-to-right sum of floats (1e-8 +
            # x + 1.0 at x = -1). A dot with ones keeps every term in its place.
            return dot(xs, [1.0] * len(xs))
        indices = [j for j in idx if j >= 0]
        values = [v for j, v in zip(idx, vals) if j >= 0]
        constant = builtins.sum(v for j, v in zip(idx, vals) if j < 0) + 0.0
    out = builtins.sum(values) + constant if all(type(v) is float for v in values) else (
        sum(values) + constant)
    return _nary_record(rec, SUM, out, (tuple(indices), constant))


def _unzip(items: Sequence[Any]) -> tuple[Any, list, list] | None:
    """(recorder, indices, values) if every item is a tracer of one open trace, else None.

    A tuple is unpacked once per trace and remembered: a layer's weights are the
    same tuple for every sample.
    """
    if not items or type(items[0]) is not Tracer:
        return None
    rec = items[0]._tape
    if type(items) is tuple:
        hit = rec.operands.get(id(items))
        if hit is not None and hit[0] is items:
            return hit[1]
    try:
        # Comprehensions: their attribute reads are specialised by the
        # interpreter (about 20 ns an item; operator.attrgetter costs 35).
        indices = [t._index if t._tape is rec else -1 for t in items]
    except AttributeError:  # a non-tracer among them
        return None
    if rec.closed or -1 in indices:
        return None
    result = (rec, indices, [t._value for t in items])
    if type(items) is tuple:
        rec.operands[id(items)] = (items, result)
    return result


def _numbers_cached(rec: _tape.Recorder, items: Sequence[Any]) -> bool:
    """_numbers, remembered per trace for tuples (a data point used by a whole layer)."""
    if type(items) is not tuple:
        return _numbers(items)
    hit = rec.operands.get(id(items))
    if hit is not None and hit[0] is items:
        return hit[1] is None
    verdict = _numbers(items)
    if verdict:
        rec.operands[id(items)] = (items, None)
    return verdict


def _numbers(items: Sequence[Any]) -> bool:
    """True if every item is a plain int or float (fast check)."""
    return set(map(type, items)) <= _NUMBER_TYPES


_NUMBER_TYPES = {float, int}


def dot(xs: Sequence[Scalar], ys: Sequence[Scalar]) -> Scalar:
    """The dot product sum(x * y for x, y in zip(xs, ys)) as a single record.

    The record keeps both operand lists, so its partials (the other side's values)
    cost nothing extra to store. Linear layers use it: one record per neuron.

    >>> dot([1.0, 2.0], [3.0, 4.0])
    11.0
    """
    if type(xs) is not tuple and type(xs) is not list:
        xs = list(xs)
    if type(ys) is not tuple and type(ys) is not list:
        ys = list(ys)
    if len(xs) != len(ys):
        raise ValueError(f"tapegrad.dot: operands have different lengths {len(xs)} and {len(ys)}")
    if type(xs[0] if xs else 0.0) is not Tracer and type(ys[0] if ys else 0.0) is not Tracer:
        if _numbers(xs) and _numbers(ys):  # plain numbers: nothing to record
            return builtins.sum(map(operator.mul, xs, ys)) + 0.0
    ux = _unzip(xs)
    uy = _unzip(ys)
    xv: Sequence[Any]
    yv: Sequence[Any]
    # Fast paths: one side (or both) all tracers of one open trace, the other
    # side all plain numbers. This is every neuron of nn.mlp.
    if ux is not None and (uy is not None and uy[0] is ux[0]
                           or uy is None and _numbers_cached(ux[0], ys)):
        rec, xi, xv = ux
        if uy is not None:
            _, yi, yv = uy
        else:
            yi, yv = None, tuple(ys)  # copied: the record must not change later
    elif uy is not None and ux is None and _numbers(xs):
        rec, yi, yv = uy
        xi, xv = None, tuple(xs)
    else:
        rec = _innermost(list(xs) + list(ys))  # type: ignore[assignment]
        if rec is None:
            return builtins.sum(map(operator.mul, [_to_float("dot", x) for x in xs],
                                    [_to_float("dot", y) for y in ys])) + 0.0
        xi, xv = _split(xs, rec, "dot")
        yi, yv = _split(ys, rec, "dot")
    if rec.nested:
        out = dot(xv, yv)  # values may be traced by an outer trace: record it there
    else:
        out = builtins.sum(map(operator.mul, xv, yv)) + 0.0
    return _nary_record(rec, DOT, out, (xi, yi, xv, yv, -1, 0.0, 0, 1.0))


def dense(layer: Sequence[tuple[Sequence[Scalar], Scalar]], xs: Sequence[Scalar],
          activation: Any = None) -> list:
    """``[activation(dot(weights, xs) + bias) for weights, bias in layer]``, a record a neuron.

    The bias, and an activation from the primitive table (``tg.tanh``,
    ``tg.relu``, ``tg.sigmoid``, ...), are kept inside the neuron's ``dot``
    record: its rule is the table's rule for the activation times the dot
    product's partials. What does not change between calls is unpacked once per
    trace: the layer's weights and biases (the same tuples for every sample) and
    the inputs (the same for every neuron). This is a layer of ``nn.mlp``, and
    the reason it is cheap. Any other activation is applied after, as usual.

    >>> dense([((1.0, 2.0), 0.5), ((0.0, -1.0), 0.0)], (3.0, 4.0))
    [11.5, -4.0]
    >>> dense([((1.0, 2.0), 0.5)], (3.0, 4.0), activation=relu)
    [11.5]
    """
    if type(xs) is not tuple:
        xs = tuple(xs)
    act = _FUSABLE.get(activation, 0) if activation is not None else 0
    neurons = _unpack_layer(layer)
    xi: Any = None
    xv: Sequence[Any] = xs
    if neurons is not None:
        rec = neurons[0][0]
        ux = _unzip(xs)
        if ux is not None and ux[0] is rec:
            xi, xv = ux[1], ux[2]
        elif ux is not None or not _numbers_cached(rec, xs):
            neurons = None
        else:
            xv = xs
    if neurons is None or (activation is not None and not act):
        out = [dot(weights, xs) + bias for weights, bias in layer]
        return out if activation is None else [activation(v) for v in out]
    value_and_partial: Any = VALUE_AND_PARTIAL.get(act)
    if len(neurons[0][2]) != len(xv):  # every neuron of a cached layer has the same width
        raise ValueError(f"tapegrad.dense: the layer's neurons have {len(neurons[0][2])} "
                         f"weights for {len(xv)} inputs")
    out = []
    ops, vals, a0, a1, d0, d1, nary = rec.ops, rec.vals, rec.a0, rec.a1, rec.d0, rec.d1, rec.nary
    for _, wi, wv, bi, bv in neurons:
        value = builtins.sum(map(operator.mul, wv, xv)) + bv
        partial = 1.0
        if act:
            value, partial = value_and_partial(value)
        i = len(ops)
        ops.append(DENSE)
        vals.append(value)
        a0.append(-2 - len(nary))
        a1.append(_DENSE_MARK)
        d0.append(0.0)
        d1.append(0.0)
        nary.append((wi, xi, wv, xv, bi, 0.0, act, partial))
        if i & CHUNK_MASK == CHUNK_MASK:
            rec.compact()
            ops, vals, a0, a1, d0, d1 = rec.ops, rec.vals, rec.a0, rec.a1, rec.d0, rec.d1
        t = _new_tracer(Tracer)
        t._tape = rec
        t._index = i
        t._value = value
        out.append(t)
    return out


def _unpack_layer(layer: Any) -> list | None:
    """Per neuron (recorder, weight indices, weight values, bias index, bias value).

    ``None`` unless every weight and bias is a tracer of one flat open trace.
    Remembered per trace for a tuple layer (the same object for every sample).
    """
    if type(layer) is not tuple or not layer:
        return None
    try:
        rec = layer[0][1]._tape
        cache = rec.operands
    except (AttributeError, TypeError, IndexError):
        return None
    hit = cache.get(id(layer))
    if hit is not None and hit[0] is layer:
        return hit[1]
    neurons = []
    for weights, bias in layer:
        uw = _unzip(weights) if type(weights) is tuple else None
        if (uw is None or uw[0] is not rec or type(bias) is not Tracer or bias._tape is not rec
                or rec.nested or rec.closed):
            return None
        neurons.append((rec, uw[1], uw[2], bias._index, bias._value))
    if len({len(n[2]) for n in neurons}) != 1:
        return None  # ragged layer: the general path checks each neuron
    cache[id(layer)] = (layer, neurons)
    return neurons


_new_tracer = object.__new__
_DENSE_MARK = NARY - DENSE
# The public unary functions that dense() can fuse into a dot record, by op code.
_FUSABLE: dict[Any, int] = {}
_namespace["sum"] = sum
_namespace["dot"] = dot


def linear_combination(pairs: Sequence[tuple[Any, Any]]) -> Any:
    """sum(g * d for g, d in pairs) recorded as at most one ``dot`` record.

    ``g`` is an adjoint or a tangent and ``d`` a partial. Float terms are added up
    directly, and a pair whose ``g`` is an exact float zero is dropped (a zero
    adjoint contributes nothing, as in the float sweep); a single term times an
    exact 1 is returned as it is, so nothing is recorded that is not needed.
    """
    gs: list = []
    ds: list = []
    constant = 0.0
    for g, d in pairs:
        if type(g) is float:
            if g == 0.0:
                continue
            if type(d) is float:
                constant += g * d
                continue
        gs.append(g)
        ds.append(d)
    if not gs:
        return constant
    if len(gs) == 1 and constant == 0.0:
        return _tape._scaled(gs[0], ds[0])
    if constant != 0.0:
        gs.append(constant)
        ds.append(1.0)
    return dot(gs, ds)


_FUSABLE.update({globals()[p.name]: CODES[p.name] for p in PRIMITIVES
                 if p.arity == 1 and p.name in ("exp", "log", "sqrt", "tanh", "sigmoid", "relu",
                                                "sin", "cos", "abs")})
_namespace["_nary_record"] = _nary_record
HOOKS["combine"] = linear_combination
HOOKS["chain_mul"] = chain_mul
