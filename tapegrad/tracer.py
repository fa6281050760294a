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

import operator
from typing import TYPE_CHECKING, Any, Callable

from .errors import ESCAPED_MESSAGE, EscapedTracerError, ForeignTracerError
from .tape import Recorder, active

__all__ = ["Tracer", "is_traced"]


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
        raise TypeError(_CONVERSION_MESSAGE.format(what="float()"))

    def __int__(self) -> int:
        raise TypeError(_CONVERSION_MESSAGE.format(what="int()"))

    def __index__(self) -> int:
        raise TypeError(_CONVERSION_MESSAGE.format(what="using it as an index"))

    def __complex__(self) -> complex:
        raise TypeError(_CONVERSION_MESSAGE.format(what="complex()"))

    def __round__(self, ndigits: Any = None) -> Any:
        raise TypeError(_CONVERSION_MESSAGE.format(what="round()"))

    def __trunc__(self) -> Any:
        raise TypeError(_CONVERSION_MESSAGE.format(what="math.trunc()"))

    def __floor__(self) -> Any:
        raise TypeError(_CONVERSION_MESSAGE.format(what="math.floor()"))

    def __ceil__(self) -> Any:
        raise TypeError(_CONVERSION_MESSAGE.format(what="math.ceil()"))

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


_CONVERSION_MESSAGE = (
    "{what} on a tapegrad traced value would silently drop its derivative. Inside a "
    "differentiated function use tapegrad's functions instead of math's (tg.exp, tg.log, "
    "tg.sqrt, tg.tanh, tg.sin, tg.cos, tg.sigmoid, tg.relu, abs, **). To treat the value "
    "as a constant, use tg.stop_gradient(x): it stays a traced value that works in "
    "arithmetic and comparisons but carries no derivative. To see the number, format it "
    "(f'{{x:.4f}}') or return it from the function (has_aux=True)."
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
    while type(x) is Tracer:
        x = x._value
    return x


def check_live(t: Tracer) -> Recorder:
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
        rec.guards.append((len(rec.ops), symbol, xi, yi, xv if xi < 0 else None,
                           yv if yi < 0 else None, result))
    return result
