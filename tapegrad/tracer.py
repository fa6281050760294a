"""The traced value: a placeholder for a number while a transform records a function.

A :class:`Tracer` is what a differentiated function receives instead of each
float. It knows three things: the recorder (tape) it belongs to, the index of
the record that produced it, and its value. It holds no gradient and no
closure; its arithmetic (installed from the primitive table in
``primitives.py``) appends records to the tape.

The value of a tracer is a float, or, when traces are nested (``grad(grad(f))``),
a tracer of the enclosing trace. Comparisons look at values and return plain
``bool`` so that Python control flow works; under ``jit`` they are also
recorded as guards.
"""

from __future__ import annotations

import math
import operator
from typing import TYPE_CHECKING, Any, Callable

from .errors import ESCAPED_MESSAGE, EscapedTracerError, ForeignTracerError
from .pytree import register_traced_type
from .tape import _TRACED_TYPES as _tape_traced_types
from .tape import Guard, Recorder, active

__all__ = ["Tracer", "is_traced", "isfinite", "isnan"]


class Tracer:
    """A number being traced. Created by transforms, never by hand.

    Attributes are private and never reassigned after creation: a tracer is an
    immutable name for one record of one tape.
    """

    # _tape: the Recorder; _index: the record's index; _value: float or outer Tracer.
    __slots__ = ("_tape", "_index", "_value")
    _tape: Recorder
    _index: int
    _value: Any
    __hash__ = None  # type: ignore[assignment]  # equality compares values

    if TYPE_CHECKING:  # the arithmetic is installed from the primitive table at import
        def __add__(self, other: float | Tracer) -> Tracer: ...
        def __radd__(self, other: float | Tracer) -> Tracer: ...
        def __sub__(self, other: float | Tracer) -> Tracer: ...
        def __rsub__(self, other: float | Tracer) -> Tracer: ...
        def __mul__(self, other: float | Tracer) -> Tracer: ...
        def __rmul__(self, other: float | Tracer) -> Tracer: ...
        def __truediv__(self, other: float | Tracer) -> Tracer: ...
        def __rtruediv__(self, other: float | Tracer) -> Tracer: ...
        def __pow__(self, other: float | Tracer) -> Tracer: ...
        def __rpow__(self, other: float | Tracer) -> Tracer: ...
        def __neg__(self) -> Tracer: ...
        def __abs__(self) -> Tracer: ...

    def __repr__(self) -> str:
        state = "closed" if self._tape.closed else f"level {self._tape.level}"
        return f"{type(self).__name__}({self._value!r}, index={self._index}, {state})"

    def __format__(self, spec: str) -> str:
        return format(self._value, spec)

    # -- ways to lose a derivative: refused with a pointer to what to do -------
    def __float__(self) -> float:
        raise TypeError(_CONVERSION_MESSAGE.format(what="float()", extra=""))

    def __int__(self) -> int:
        raise TypeError(_CONVERSION_MESSAGE.format(what="int()", extra=_INDEX_ADVICE))

    def __index__(self) -> int:
        raise TypeError(_CONVERSION_MESSAGE.format(what="using it as an index",
                                                   extra=_INDEX_ADVICE))

    def __complex__(self) -> complex:
        raise TypeError(_CONVERSION_MESSAGE.format(what="complex()", extra=""))

    def __round__(self, ndigits: Any = None) -> Any:
        raise TypeError(_CONVERSION_MESSAGE.format(what="round()", extra=""))

    def __trunc__(self) -> Any:
        raise TypeError(_CONVERSION_MESSAGE.format(what="math.trunc()", extra=""))

    def __floor__(self) -> Any:
        raise TypeError(_CONVERSION_MESSAGE.format(what="math.floor()", extra=""))

    def __ceil__(self) -> Any:
        raise TypeError(_CONVERSION_MESSAGE.format(what="math.ceil()", extra=""))

    # -- comparisons: plain bools, so if/while/max work ------------------------
    def __lt__(self, other: Any) -> bool:
        return _compare("<", self, other)

    def __le__(self, other: Any) -> bool:
        return _compare("<=", self, other)

    def __gt__(self, other: Any) -> bool:
        return _compare(">", self, other)

    def __ge__(self, other: Any) -> bool:
        return _compare(">=", self, other)

    def __eq__(self, other: Any) -> bool:  # type: ignore[override]
        return _compare("==", self, other)

    def __ne__(self, other: Any) -> bool:  # type: ignore[override]
        return _compare("!=", self, other)

    def __bool__(self) -> bool:
        return _compare("!=", self, 0.0)

    def __pos__(self) -> Tracer:
        return self


# The traced types: Tracer, and ArrayTracer once tapegrad's array layer is imported.
# (The same set object as the tape's, which the sweeps read.)
TRACER_TYPES: set[type] = _tape_traced_types
TRACER_TYPES.add(Tracer)
register_traced_type(Tracer)

_CONVERSION_MESSAGE = (
    "{what} on a tapegrad traced value would silently drop its derivative. Inside a "
    "differentiated function use tapegrad's functions instead of math's (tg.exp, tg.log, "
    "tg.sqrt, tg.tanh, tg.sin, tg.cos, tg.sigmoid, tg.relu, abs, **). To test the value, "
    "compare it (x > 0) or use tg.isfinite(x) / tg.isnan(x): they return plain bool. To "
    "see the number, format it (f'{{x:.4f}}') or return it from the function "
    "(has_aux=True).{extra}"
)
# For conversions to int: a count or an index is not differentiable.
_INDEX_ADVICE = (
    " A count or an index (range(n), xs[i]) cannot be a traced value: pass it as a Python "
    "int that is not differentiated (not in argnums, or closed over); under tg.jit mark "
    "that argument static: tg.jit(f, static_argnums=(i,))."
)

COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def is_traced(x: Any) -> bool:
    """True if ``x`` is a traced value of an open trace.

    >>> is_traced(1.0)
    False
    """
    return type(x) is Tracer and not x._tape.closed


def primal(x: Any) -> Any:
    """The number inside ``x``, looking through tracers of every nesting level.

    For printing and diagnostics only: the result carries no derivative.
    """
    while type(x) in TRACER_TYPES:
        x = x._value
    return x


def check_live(t: Any) -> Recorder:
    """The tracer's recorder, or a clear error if the trace is over or not ours."""
    rec = t._tape
    if rec.closed:
        raise EscapedTracerError(ESCAPED_MESSAGE)
    stack = active()
    if rec.level > len(stack) or stack[rec.level - 1] is not rec:
        raise ForeignTracerError(
            "a traced value from a trace that is not open in this thread was used; "
            "traced values cannot be shared between threads or between separate "
            "transform calls. Pass plain numbers between them instead."
        )
    return rec


def top_operand(x: Any, y: Any) -> tuple[Recorder | None, Any, Any, int, int]:
    """For two operands, find the innermost open trace among them.

    Returns ``(recorder, x_value, y_value, x_index, y_index)`` where an operand of
    that trace is replaced by its value and has its record index, and any other
    operand (a number, or a tracer of an outer trace) is passed through with
    index -1: to the innermost trace it is a constant.
    """
    rx = check_live(x) if type(x) is Tracer else None
    ry = check_live(y) if type(y) is Tracer else None
    if rx is None and ry is None:
        return None, x, y, -1, -1
    if ry is None or (rx is not None and rx.level > ry.level):
        return rx, x._value, y, x._index, -1
    if rx is None or ry.level > rx.level:
        return ry, x, y._value, -1, y._index
    return rx, x._value, y._value, x._index, y._index


def _compare(symbol: str, x: Tracer, y: Any) -> bool:
    if type(y) is not Tracer and (type(y) is not float and type(y) is not int):
        if isinstance(y, (int, float)):
            y = float(y)
        else:
            return NotImplemented  # type: ignore[return-value]
    rec, xv, yv, xi, yi = top_operand(x, y)
    result = COMPARATORS[symbol](xv, yv)
    if rec is not None and rec.guards is not None:
        rec.guards.append(Guard(len(rec.ops), "compare", symbol, (xi, yi),
                                (xv if xi < 0 else None, yv if yi < 0 else None), result))
    return result


def _classify(kind: str, test: Callable[[float], bool], x: Any) -> bool:
    """isfinite/isnan of a number or traced value, recorded as a guard under jit."""
    if type(x) is not Tracer:
        return test(float(x))
    rec = check_live(x)
    value = x._value
    result = test(value) if type(value) is not Tracer else _classify(kind, test, value)
    if rec.guards is not None:
        rec.guards.append(Guard(len(rec.ops), kind, kind, (x._index,), (None,), result))
    return result


def isfinite(x: Any) -> bool:
    """Whether ``x`` (a number or a traced value) is neither infinite nor NaN: a plain bool.

    Like a comparison, it decides control flow; under ``jit`` it is a guard.

    >>> isfinite(1.0), isfinite(float("inf"))
    (True, False)
    """
    return _classify("isfinite", math.isfinite, x)


def isnan(x: Any) -> bool:
    """Whether ``x`` (a number or a traced value) is NaN: a plain bool.

    >>> isnan(float("nan")), isnan(0.0)
    (True, False)
    """
    return _classify("isnan", math.isnan, x)

