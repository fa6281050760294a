"""The primitive table: every differentiable operation and its derivative rule.

Each :class:`Primitive` names an operation, its implementation on floats, and
its derivative rule as partial derivatives of the output with respect to each
input. The rules are Python expressions in ``x``, ``y`` (the inputs) and ``out``
(the result), written with tapegrad's own operations, so when the inputs are
themselves traced values of an outer trace the rule is recorded too and
higher derivatives come for free. Adding a primitive is adding one entry to
``PRIMITIVES``.

From each entry this module generates, once at import time, the public function
(``tg.tanh``) or the operator methods of :class:`~tapegrad.tracer.Tracer`
(``__mul__``, ``__rmul__``). Generating them from the table keeps the rules in
one place while the recording path stays a flat, call-free sequence of list
appends, which is what makes the eager tape fast. The same templates drive the
Wengert-list printer and the ``jit`` code generator.

The n-ary ``sum`` and ``dot`` record one record each however many operands
they have. ``dense`` (the layer of ``nn.mlp``) records a whole neuron, its
weighted sum, bias and an activation from the table, as one ``dot`` record whose
partials are the activation's rule times the dot product's.
"""

from __future__ import annotations

import builtins
import math
import operator
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Union

import attrs

from . import tape as _tape
from .tape import CHUNK_MASK, NARY, OPS, Record
from .tracer import Tracer, primal, top_operand

__all__ = [
    "Primitive", "PRIMITIVES", "OpInfo",
    "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "sin", "cos", "abs",
    "stop_gradient", "power", "sum", "dot",
]

Scalar = Union[float, int, Tracer]


@attrs.frozen
class Primitive:
    """One differentiable operation.

    Attributes:
        name: the operation's name, also its public function name for functions.
        arity: 1 or 2.
        on_floats: expression computing the result from floats ``{x}`` (, ``{y}``).
        partials: one expression per input for d(out)/d(input), in ``{x}``, ``{y}``
            and ``{out}``, using only operations that work on traced values.
        generic: expression computing the result when inputs may be traced values
            of an outer trace (defaults to calling the public function).
        infix: the operator symbol for binary operators and unary minus.
        methods: the Tracer methods to generate (``("__mul__", "__rmul__")``).
        doc: the public function's docstring.
    """

    name: str
    arity: int
    on_floats: str
    partials: tuple[str, ...]
    generic: str = ""
    infix: str | None = None
    methods: tuple[str, ...] = ()
    doc: str = ""

    def generic_expression(self) -> str:
        if self.generic:
            return self.generic
        args = "{x}" if self.arity == 1 else "{x}, {y}"
        return f"{self.name}({args})"


# ---------------------------------------------------------------------------
# Helpers the rules use. They accept floats and traced values alike.
# ---------------------------------------------------------------------------


def _sign(x: Any) -> float:
    return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)


def _step(x: Any) -> float:
    return 1.0 if x > 0.0 else 0.0


def _half_over(out: Any) -> Any:
    # d sqrt(x)/dx = 1 / (2 sqrt(x)); infinite at 0, as for floats in the limit.
    return 0.5 / out if out != 0.0 else math.inf


def _pow_dx(x: Any, y: Any) -> Any:
    if y == 0.0:
        return 0.0
    if x == 0.0 and y < 1.0:
        return math.inf
    return y * x ** (y - 1.0)


def _pow_dy(x: Any, out: Any) -> Any:
    if x > 0.0:
        return out * log(x)
    return 0.0 if x == 0.0 else math.nan


def _sigmoid_float(x: float) -> float:
    # Two forms so that neither overflows: exp of a large positive never happens.
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _relu_float(x: float) -> float:
    return x if x > 0.0 else 0.0


# ---------------------------------------------------------------------------
# The table.
# ---------------------------------------------------------------------------

PRIMITIVES: tuple[Primitive, ...] = (
    # -- binary operators ----------------------------------------------------
    Primitive("add", 2, "{x} + {y}", ("1.0", "1.0"), "{x} + {y}", "+", ("__add__", "__radd__")),
    Primitive("sub", 2, "{x} - {y}", ("1.0", "-1.0"), "{x} - {y}", "-", ("__sub__", "__rsub__")),
    Primitive("mul", 2, "{x} * {y}", ("{y}", "{x}"), "{x} * {y}", "*", ("__mul__", "__rmul__")),
    Primitive("div", 2, "{x} / {y}", ("1.0 / {y}", "-{out} / {y}"), "{x} / {y}", "/",
              ("__truediv__", "__rtruediv__")),
    Primitive("pow", 2, "_pow_float({x}, {y})", ("_pow_dx({x}, {y})", "_pow_dy({x}, {out})"),
              "{x} ** {y}", "**", ("__pow__", "__rpow__")),
    # -- unary functions -----------------------------------------------------
    Primitive("neg", 1, "-{x}", ("-1.0",), "-{x}", "-", ("__neg__",)),
    Primitive("abs", 1, "_abs({x})", ("_sign({x})",), "_abs({x})", None, ("__abs__",), doc="""
        Absolute value; its derivative is the sign of ``x`` (0 at 0).

        >>> abs(-2.5)
        2.5
        """),
    Primitive("exp", 1, "_m.exp({x})", ("{out}",), doc="""
        The exponential e**x.

        >>> round(exp(1.0), 6)
        2.718282
        """),
    Primitive("log", 1, "_m.log({x})", ("1.0 / {x}",), doc="""
        Natural logarithm; ``ValueError`` for x <= 0, as ``math.log``.

        >>> log(1.0)
        0.0
        """),
    Primitive("sqrt", 1, "_m.sqrt({x})", ("_half_over({out})",), doc="""
        Square root; ``ValueError`` for x < 0, as ``math.sqrt``.

        >>> sqrt(9.0)
        3.0
        """),
    Primitive("tanh", 1, "_m.tanh({x})", ("1.0 - {out} * {out}",), doc="""
        Hyperbolic tangent; its derivative is 1 - tanh(x)**2.

        >>> round(tanh(0.5), 6)
        0.462117
        """),
    Primitive("sigmoid", 1, "_sigmoid_float({x})", ("{out} * (1.0 - {out})",), doc="""
        The logistic function 1 / (1 + e**-x), computed without overflow.

        >>> sigmoid(0.0)
        0.5
        """),
    Primitive("relu", 1, "_relu_float({x})", ("_step({x})",), doc="""
        max(x, 0); its derivative is 1 for x > 0 and 0 otherwise (0 at the kink).

        >>> relu(-2.0), relu(3.0)
        (0.0, 3.0)
        """),
    Primitive("sin", 1, "_m.sin({x})", ("cos({x})",), doc="""
        Sine (radians).

        >>> sin(0.0)
        0.0
        """),
    Primitive("cos", 1, "_m.cos({x})", ("-sin({x})",), doc="""
        Cosine (radians).

        >>> cos(0.0)
        1.0
        """),
    Primitive("stop_gradient", 1, "{x}", ("0.0",), doc="""
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
    constant), ``"ct"`` (constant op traced), or ``"sum"``, ``"dot"``, ``"custom"``
    for the n-ary records.
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
        return zip(entry[0], entry[1](1.0))

    def nary_adjoints(self, entry: tuple, g: Any, lazy: bool = False) -> Iterator[tuple]:
        """(input index, contribution) pairs for output adjoint ``g`` (reverse sweep).

        With ``lazy`` the contribution is an unmultiplied ``(g, partial)`` pair.
        """
        if self.kind == "custom":
            # its bwd sees the real cotangent, so it need not be linear in it
            cts = entry[1](g)
            return ((j, (c, 1.0)) for j, c in zip(entry[0], cts)) if lazy else zip(entry[0], cts)
        if lazy:
            return ((j, (g, d)) for j, d in self.nary_partials(entry))
        return ((j, _tape._scaled(g, d)) for j, d in self.nary_partials(entry))

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
        if self.kind == "unary":
            return template.format(x=operands[0])
        if self.kind == "tt":
            return template.format(x=operands[0], y=operands[1])
        if self.kind == "tc":
            return template.format(x=operands[0], y=constants[0])
        return template.format(x=constants[0], y=operands[0])


def _register(name: str, kind: str, primitive: Primitive | None = None) -> int:
    code = len(OPS)
    if code > 255:
        raise RuntimeError("tapegrad: too many operation codes for the one-byte op column")
    OPS.append(OpInfo(code, name, kind, primitive))
    return code


# ---------------------------------------------------------------------------
# Code generation of the recording functions.
# ---------------------------------------------------------------------------

_MATH_ERRORS = (ValueError, ZeroDivisionError, OverflowError)


def _domain_error(name: str, error: Exception, *inputs: Any) -> Exception:
    shown = ", ".join(repr(primal(v)) for v in inputs)
    return type(error)(f"tapegrad.{name}({shown}): {error}")


def _to_float(name: str, x: Any) -> float:
    if type(x) is float:
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    raise TypeError(
        f"tapegrad.{name} expects a number or a traced value, got {type(x).__name__}: {x!r}"
    )


def _pow_float(x: float, y: float) -> float:
    # math.pow raises ValueError where ** would return a complex number.
    return math.pow(x, y)


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

_COMPUTE = """
    try:
        out = {expr}
    except _MATH_ERRORS as e:
        raise _domain_error({name!r}, e, {args}) from None
"""


def _indent(text: str, by: int) -> str:
    pad = " " * by
    return "\n".join(pad + line if line.strip() else line for line in text.splitlines())


def _compute(prim: Primitive, floats_test: str, args: str) -> str:
    fl = prim.on_floats.format(x="x", y="y")
    gen = prim.generic_expression().format(x="x", y="y")
    expr = fl if fl == gen else f"{fl} if {floats_test} else {gen}"
    return _COMPUTE.format(expr=expr, name=prim.name, args=args)


def _record(code: int, a: str, b: str, d0: str, d1: str) -> str:
    return _NEW_RECORD.format(code=code, a=a, b=b, d0=d0, d1=d1, mask=CHUNK_MASK)


def _partial(prim: Primitive, k: int) -> str:
    return prim.partials[k].format(x="x", y="y", out="out")


def _unary_source(prim: Primitive, code: int) -> str:
    body = _compute(prim, "type(x) is float", "x")
    return f"""
def {prim.name}(x):
    if type(x) is not Tracer:
        x = _to_float({prim.name!r}, x)
{_indent(_COMPUTE.format(expr=prim.on_floats.format(x="x"), name=prim.name, args="x"), 4)}
        return out
    tape = x._tape
    xi = x._index
    x = x._value
{body}{_record(code, "xi", "-1", _partial(prim, 0), "0.0")}"""


def _value_and_partial_source(prim: Primitive) -> str:
    """A float-only function returning (f(x), f'(x)): a fused activation's rule."""
    return f"""
def _vp_{prim.name}(x):
{_indent(_COMPUTE.format(expr=prim.on_floats.format(x="x"), name=prim.name, args="x"), 0)}
    return out, {_partial(prim, 0)}
"""


def _binary_sources(prim: Primitive, tt: int, tc: int, ct: int) -> str:
    n = prim.name
    both = "type(x) is float and type(y) is float"
    tc_body = _compute(prim, "type(x) is float", "x, y") + _record(
        tc, "xi", "-1", _partial(prim, 0), "y")
    ct_body = _compute(prim, "type(y) is float", "x, y") + _record(
        ct, "yi", "-1", _partial(prim, 1), "x")
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
{_indent(_compute(prim, both, "x, y"), 4)}
{_indent(_record(tt, "xi", "yi", _partial(prim, 0), _partial(prim, 1)), 4)}
    if type(other) is not float:
        if type(other) is not int:
            return NotImplemented
        other = float(other)  # so that partials and constants on the tape are floats
    tape = self._tape
    xi = self._index
    x = self._value
    y = other
{tc_body}

def _{n}_reflected(self, other):
    if type(other) is not float:
        if type(other) is not int:
            return NotImplemented
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
{tc_body}

def _{n}_ct(x, other):
    tape = other._tape
    yi = other._index
    y = other._value
{ct_body}
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
    "_domain_error": _domain_error,
    "_to_float": _to_float,
    "_mixed": _mixed,
    "_pow_float": _pow_float,
    "_pow_dx": _pow_dx,
    "_pow_dy": _pow_dy,
    "_sign": _sign,
    "_step": _step,
    "_half_over": _half_over,
    "_sigmoid_float": _sigmoid_float,
    "_relu_float": _relu_float,
    "math": math,
}

# The n-ary records take the fixed codes the sweeps in tape.py know.
SUM = _register("sum", "sum")
DOT = _register("dot", "dot")
CUSTOM = _register("custom", "custom")
DENSE = _register("dot", "dot")  # dense(): every operand index valid, so unchecked sweeps
assert (SUM, DOT, CUSTOM, DENSE) == (_tape.SUM, _tape.DOT, _tape.CUSTOM, _tape.DENSE)
CODES: dict[str, int] = {"sum": SUM, "dot": DOT, "custom": CUSTOM}
# Per unary op code, its float (value, derivative) function: activations fused into dot.
VALUE_AND_PARTIAL: dict[int, Any] = {}

for _prim in PRIMITIVES:
    if _prim.arity == 1:
        _code = _register(_prim.name, "unary", _prim)
        CODES[_prim.name] = _code
        exec(compile(_unary_source(_prim, _code) + _value_and_partial_source(_prim),
                     f"<tapegrad primitive {_prim.name}>", "exec"), _namespace)
        _fn = _namespace[_prim.name]
        VALUE_AND_PARTIAL[_code] = _namespace[f"_vp_{_prim.name}"]
        for _method in _prim.methods:
            setattr(Tracer, _method, _fn)
    else:
        _codes = [_register(_prim.name, kind, _prim) for kind in ("tt", "tc", "ct")]
        CODES[_prim.name] = _codes[0]
        exec(compile(_binary_sources(_prim, *_codes), f"<tapegrad primitive {_prim.name}>",
                     "exec"), _namespace)
        setattr(Tracer, _prim.methods[0], _namespace[f"_{_prim.name}_forward"])
        setattr(Tracer, _prim.methods[1], _namespace[f"_{_prim.name}_reflected"])


def _public(name: str) -> Any:
    fn = _namespace[name]
    prim = next(p for p in PRIMITIVES if p.name == name)
    fn.__doc__ = "\n".join(line[4:] if line.startswith("    ") else line
                           for line in prim.doc.strip("\n").splitlines())
    fn.__module__ = __name__
    fn.__qualname__ = name
    fn.__annotations__ = {"x": "Scalar", "return": "Scalar"}
    return fn


exp = _public("exp")
log = _public("log")
sqrt = _public("sqrt")
tanh = _public("tanh")
sigmoid = _public("sigmoid")
relu = _public("relu")
sin = _public("sin")
cos = _public("cos")
abs = _public("abs")  # noqa: A001  # tg.abs, like jnp.abs; builtin abs(x) also works
stop_gradient = _public("stop_gradient")
for _name in ("exp", "log", "sqrt", "tanh", "sigmoid", "relu", "sin", "cos", "abs",
              "stop_gradient"):
    _namespace[_name] = globals()[_name]


def power(x: Scalar, y: Scalar) -> Scalar:
    """x ** y with either or both traced (``**`` does the same).

    >>> power(2.0, 3)
    8.0
    """
    if type(x) is not Tracer and type(y) is not Tracer:
        x, y = _to_float("power", x), _to_float("power", y)
        try:
            return _pow_float(x, y)
        except _MATH_ERRORS as e:
            raise _domain_error("pow", e, x, y) from None
    return x ** y


_namespace["power"] = power


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

    Float terms are added up directly, exact zeros are dropped, and a single term
    times an exact 1 is returned as it is, so nothing is recorded that is not needed.
    """
    gs: list = []
    ds: list = []
    constant = 0.0
    for g, d in pairs:
        if type(g) is float and type(d) is float:
            constant += g * d
        elif not (type(g) is float and g == 0.0 or type(d) is float and d == 0.0):
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
