"""Arrays on the tape: the traced array, the table of array primitives, and their rules.

A record of the scalar tape stores its partial derivatives, because a partial of
a scalar operation is one number. An array record cannot: the Jacobian of
``X @ W`` for a 512x64 ``X`` and a 64x128 ``W`` has 65,536 rows and 40,960
columns. So an array record stores what its rule needs (its operands, its
output and its static parameters such as ``axis``) and its rule computes the
vector-Jacobian product ``g @ J`` during the sweep, without ever forming ``J``.
The rules are written with the traced operations of this module (``g @ y.T``,
``unbroadcast(g, x.shape)``), so when the sweep runs on traced values of an
outer trace the rule is recorded too, and higher derivatives come for free.

Array records are n-ary records of the same :class:`~tapegrad.tape.Recorder` as
scalar records (see ``tape.py``): a float parameter times a traced array, or
the ``sum`` of an array used in scalar code, are records of one tape.

Broadcasting. ``x + b`` with ``x`` of shape (100, 16) and ``b`` of shape (16,)
uses each element of ``b`` 100 times, so its adjoint is the sum of the 100
contributions: :func:`unbroadcast` sums a cotangent over the axes that
broadcasting added or stretched. Every elementwise rule ends with it.

Offers :class:`ArrayTracer`, :class:`ArrayPrimitive`, ``ARRAY_PRIMITIVES`` (the
table, by name), :func:`bind` (apply a primitive, recording it when an operand
is traced) and :func:`unbroadcast`. The NumPy-named functions users call are in
:mod:`tapegrad.numpy`.
"""

from __future__ import annotations

import builtins
import inspect
import math
import numbers
from collections.abc import Sequence
from typing import Any, Callable, Union

import attrs
import numpy as np

from . import primitives as _p
from .errors import ESCAPED_MESSAGE, EscapedTracerError
from .pytree import register_traced_type
from .tape import HOOKS, NARY, OPS, Guard, Record, Recorder
from .tracer import TRACER_TYPES, Tracer, check_live

__all__ = ["ArrayTracer", "ArrayPrimitive", "ARRAY_PRIMITIVES", "bind", "unbroadcast"]

ArrayLike = Union[np.ndarray, "ArrayTracer", float, int]


# ---------------------------------------------------------------------------
# The traced array.
# ---------------------------------------------------------------------------


class ArrayTracer:
    """An array being traced. Created by transforms and by operations on traced arrays.

    Like :class:`~tapegrad.tracer.Tracer` it names one record of one tape and holds
    its value (a NumPy array, or a traced array of an enclosing trace), plus the
    value's ``shape`` and ``dtype``. It is immutable: NumPy's in-place writes
    (``x[0] = 1``, ``np.add(a, x, out=a)``) raise with what to write instead.
    """

    __slots__ = ("_tape", "_index", "_value", "shape", "dtype")
    __hash__ = None  # type: ignore[assignment]
    # NumPy defers to our operators and protocols rather than treating us as an object.
    __array_priority__ = 1000.0

    _tape: Recorder
    _index: int
    _value: Any
    shape: tuple[int, ...]
    dtype: Any

    # -- what NumPy users read ------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def T(self) -> ArrayTracer:  # noqa: N802  # NumPy's name
        return transpose(self)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d traced array")
        return self.shape[0]

    def __iter__(self) -> Any:
        if not self.shape:
            raise TypeError("iteration over a 0-d traced array")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self) -> str:
        state = "closed" if self._tape.closed else f"level {self._tape.level}"
        return (f"ArrayTracer(shape={self.shape}, dtype={np.dtype(self.dtype).name}, "
                f"index={self._index}, {state})")

    # -- arithmetic -----------------------------------------------------------
    def __add__(self, other: Any) -> Any:
        return _bind2(_ADD, self, other)

    def __radd__(self, other: Any) -> Any:
        return _bind2(_ADD, other, self)

    def __sub__(self, other: Any) -> Any:
        return _bind2(_SUB, self, other)

    def __rsub__(self, other: Any) -> Any:
        return _bind2(_SUB, other, self)

    def __mul__(self, other: Any) -> Any:
        return _bind2(_MUL, self, other)

    def __rmul__(self, other: Any) -> Any:
        return _bind2(_MUL, other, self)

    def __truediv__(self, other: Any) -> Any:
        return _bind2(_DIV, self, other)

    def __rtruediv__(self, other: Any) -> Any:
        return _bind2(_DIV, other, self)

    def __pow__(self, other: Any) -> Any:
        return _bind2(_POW, self, other)

    def __rpow__(self, other: Any) -> Any:
        return _bind2(_POW, other, self)

    def __matmul__(self, other: Any) -> Any:
        return _bind2(_MATMUL, self, other)

    def __rmatmul__(self, other: Any) -> Any:
        return _bind2(_MATMUL, other, self)

    def __neg__(self) -> Any:
        return negative(self)

    def __pos__(self) -> ArrayTracer:
        return self

    def __abs__(self) -> Any:
        return absolute(self)

    def __getitem__(self, index: Any) -> Any:
        return getitem(self, index)

    # -- comparisons: traced boolean arrays (jit recomputes them) ---------------
    def __lt__(self, other: Any) -> Any:
        return _binary(less, self, other)

    def __le__(self, other: Any) -> Any:
        return _binary(less_equal, self, other)

    def __gt__(self, other: Any) -> Any:
        return _binary(greater, self, other)

    def __ge__(self, other: Any) -> Any:
        return _binary(greater_equal, self, other)

    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        return _binary(equal, self, other)

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        return _binary(not_equal, self, other)

    def __bool__(self) -> bool:
        """The truth of a one-element traced array: control flow, a guard under jit."""
        rec = check_live(self)
        result = bool(self._value)
        if rec.guards is not None:
            rec.guards.append(Guard(len(rec.ops), "truth", "truth", (self._index,), (None,),
                                    result))
        return result

    # -- methods NumPy users write -------------------------------------------
    def sum(self, axis: Any = None, keepdims: bool = False) -> Any:
        return sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Any:
        return mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Any:
        return max(self, axis=axis, keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Any:
        return min(self, axis=axis, keepdims=keepdims)

    def prod(self, axis: Any = None, keepdims: bool = False) -> Any:
        return prod(self, axis=axis, keepdims=keepdims)

    def var(self, axis: Any = None, keepdims: bool = False) -> Any:
        return var(self, axis=axis, keepdims=keepdims)

    def std(self, axis: Any = None, keepdims: bool = False) -> Any:
        return std(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape: Any) -> Any:
        return reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes: Any) -> Any:
        return transpose(self, (axes[0] if len(axes) == 1 else axes) if axes else None)

    def __round__(self, ndigits: Any = None) -> Any:
        raise TypeError(_ARRAY_CONVERSION.format(what="round()"))

    def ravel(self) -> Any:
        return reshape(self, (-1,))

    flatten = ravel

    def squeeze(self, axis: Any = None) -> Any:
        return squeeze(self, axis)

    def dot(self, other: Any) -> Any:
        return dot(self, other)

    def clip(self, a_min: Any = None, a_max: Any = None) -> Any:
        return clip(self, a_min, a_max)

    def astype(self, dtype: Any) -> Any:
        return astype(self, dtype)

    def argmax(self, axis: Any = None) -> Any:
        return argmax(self, axis)

    def argmin(self, axis: Any = None) -> Any:
        return argmin(self, axis)

    # -- ways to lose a derivative or mutate: refused with what to do ---------
    def __setitem__(self, index: Any, value: Any) -> None:
        raise TypeError(
            "traced arrays are immutable: x[...] = v would change a value the tape has "
            "already recorded. Build a new array instead, for example "
            "tnp.where(mask, v, x), tnp.concatenate([...]) or x + tnp.zeros_like(x) with the "
            "change added (JAX writes x.at[i].set(v))."
        )

    def __float__(self) -> float:
        raise TypeError(_ARRAY_CONVERSION.format(what="float()"))

    def __int__(self) -> int:
        raise TypeError(_ARRAY_CONVERSION.format(what="int()"))

    def __index__(self) -> int:
        raise TypeError(_ARRAY_CONVERSION.format(what="using it as an index"))

    def __complex__(self) -> complex:
        raise TypeError(_ARRAY_CONVERSION.format(what="complex()"))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(_ARRAY_CONVERSION.format(what="np.asarray() / np.array()"))

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return _array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        return _array_function(func, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        # Only for names the class lacks: NumPy's other ndarray attributes (x.item(),
        # x.tolist(), x.copy(), ...) get a message saying what to use instead.
        if name.startswith("__") or not hasattr(np.ndarray, name):
            raise AttributeError(f"'ArrayTracer' object has no attribute {name!r}")
        raise AttributeError(
            f"traced arrays have no {name!r} (NumPy's ndarray.{name}): inside a "
            "differentiated function use the functions of tapegrad.numpy (import "
            "tapegrad.numpy as tnp), and the methods traced arrays have (shape, dtype, "
            "T, sum, mean, max, min, prod, var, std, reshape, transpose, dot, clip, astype, "
            "...); to see the numbers, return them from the function (has_aux=True)")


TRACER_TYPES.add(ArrayTracer)
register_traced_type(ArrayTracer)
_TRACED = {ArrayTracer, Tracer}

_ARRAY_CONVERSION = (
    "{what} on a traced array would silently drop its derivative. Use the functions of "
    "tapegrad.numpy (import tapegrad.numpy as tnp: tnp.tanh, tnp.sum, ...), which have "
    "NumPy's names and record on the tape; to test values use comparisons (x > 0 gives a "
    "traced boolean array; bool() of a one-element array is fine); to see the numbers, "
    "return them from the function (has_aux=True)."
)


def _new_array(rec: Recorder, index: int, value: Any) -> ArrayTracer:
    t = object.__new__(ArrayTracer)
    t._tape = rec
    t._index = index
    t._value = value
    t.shape = value.shape
    t.dtype = value.dtype
    return t


def is_array(x: Any) -> bool:
    """Whether ``x`` is a NumPy array, NumPy scalar or traced array (not a Python number)."""
    return isinstance(x, (np.ndarray, np.generic, ArrayTracer))


# ---------------------------------------------------------------------------
# The table and the record function.
# ---------------------------------------------------------------------------

# Markers for ``ArrayPrimitive.jvp`` besides a rule function.
ELEMENTWISE = "elementwise"  # one operand, diagonal Jacobian: the JVP is the VJP of the tangent
LINEAR = "linear"  # linear in its one operand: the JVP is the operation on the tangent


@attrs.frozen
class ArrayPrimitive:
    """One array operation of the table.

    Attributes:
        name: the operation's name (the NumPy function's, where there is one).
        impl: computes the value from NumPy operands: ``impl(*operands, **params)``.
        vjp: the reverse rule ``vjp(g, out, *operands, needs=..., **params)``, returning
            one cotangent per operand (``None`` where ``needs`` is false or there is no
            derivative). ``None`` for an operation without derivative (comparisons,
            ``argmax``): its records have no edges in the sweeps.
        jvp: the forward rule ``jvp(tangents, out, *operands, **params)`` (``None``
            for an operand without tangent), or :data:`ELEMENTWISE` / :data:`LINEAR`.
        source: how ``jit`` writes it: a template over operand names ``{0}``, ``{1}``
            and params ``{axis}`` ..., or ``""`` to call ``impl`` itself.
        method_source: a faster template using ndarray methods (``{0}.T``), used
            when the traced operands were NumPy arrays (a variant's types never change).
    """

    name: str
    impl: Callable[..., Any]
    vjp: Callable[..., tuple] | None
    jvp: Any = None
    source: str = ""
    code: int = 0
    method_source: str = ""

    @property
    def differentiable(self) -> bool:
        return self.vjp is not None


ARRAY_PRIMITIVES: dict[str, ArrayPrimitive] = {}


@attrs.frozen
class ArrayOpInfo:
    """The meaning of an array primitive's operation code, for the sweeps and printers.

    The tape entry of an array record is ``(primitive, inputs, operands, params,
    out)``: per operand its record index (-1 for a constant) and its value as the
    record's own trace sees it.
    """

    code: int
    name: str
    primitive: ArrayPrimitive
    kind: str = "array"

    def record(self, tape: Any, i: int) -> Record:
        prim, inputs, operands, params, out = tape.nary[-2 - tape.a0[i]]
        constants = tuple(v for j, v in zip(inputs, operands) if j < 0)
        return Record(i, self.name, tuple(j if j >= 0 else None for j in inputs), out,
                      (), constants + tuple(params.items()), tape.names.get(i))

    def operand_indices(self, entry: tuple) -> list[int]:
        return [j for j in entry[1] if j >= 0]

    def nary_partials(self, entry: tuple) -> Any:
        return iter(())  # an array record keeps a rule, not partials

    def nary_adjoints(self, entry: tuple, g: Any, lazy: bool = False) -> Any:
        prim, inputs, operands, params, out = entry
        if prim.vjp is None:
            return ()
        n = len(inputs)
        needs: tuple[bool, ...]
        if n == 1:
            needs = _NEEDS_ONE
        elif n == 2:
            needs = _NEEDS_TWO[(inputs[0] >= 0) + 2 * (inputs[1] >= 0)]
        else:
            needs = tuple([j >= 0 for j in inputs])
        cts = prim.vjp(g, out, *operands, needs=needs, **params)
        pairs = [(j, c) for j, c in zip(inputs, cts) if j >= 0 and c is not None]
        return [(j, (c, 1.0)) for j, c in pairs] if lazy else pairs

    def tangent(self, entry: tuple, tangents: Sequence[Any]) -> Any:
        prim, inputs, operands, params, out = entry
        if prim.vjp is None:
            return None  # no derivative: no edge
        tans = [None if j < 0 or tangents[j] is None or _is_zero(tangents[j]) else tangents[j]
                for j in inputs]
        if all(t is None for t in tans):
            return None  # not reached by a tangent (the sweep's "no dependence")
        if prim.jvp == ELEMENTWISE:
            return prim.vjp(tans[0], out, *operands, needs=(True,), **params)[0]
        if prim.jvp == LINEAR:
            return prim.impl(tans[0], **params) if not _traced(tans[0]) else bind(
                prim, tans[0], **params)
        return prim.jvp(tans, out, *operands, **params)

    def expression(self, operands: Sequence[str], constants: Sequence[str] = ()) -> str:
        return f"{self.name}({', '.join(operands)})"

    def source(self, entry: tuple, var: Callable[[int], str], env: dict) -> str:
        """Python source computing this record from earlier variables (for ``jit``).

        Operands that are not traced (data arrays) and any object that is not a
        plain literal are put in ``env`` and named there, never written as text.
        """
        prim, inputs, operands, params, _out = entry
        env.setdefault("_np", np)
        names = [var(j) if j >= 0 else _source_value(v, env) for j, v in zip(inputs, operands)]
        texts = {key: _source_value(value, env) for key, value in params.items()}
        if prim.method_source and builtins.all(type(v) is np.ndarray for v in operands):
            return prim.method_source.format(*names, **texts)
        if prim.source:
            return prim.source.format(*names, **texts)
        fn = f"_F_{prim.name}"
        env[fn] = prim.impl
        args = names + [f"{key}={text}" for key, text in texts.items()]
        return f"{fn}({', '.join(args)})"


def _source_value(value: Any, env: dict) -> str:
    """A constant as source text: a literal for numbers, strings and index parts, else a
    name bound in ``env``."""
    if value is None or type(value) is bool or type(value) is int or type(value) is str:
        return repr(value)
    if type(value) is float and math.isfinite(value):
        return repr(value)
    if type(value) is tuple:
        inner = ", ".join(_source_value(v, env) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if type(value) is slice:
        return (f"slice({_source_value(value.start, env)}, {_source_value(value.stop, env)}, "
                f"{_source_value(value.step, env)})")
    if value is Ellipsis:
        return "..."
    name = f"_K{len(env)}"
    env[name] = value
    return name


_NEEDS_ONE = (True,)
_NEEDS_TWO = ((False, False), (True, False), (False, True), (True, True))


def _is_zero(t: Any) -> bool:
    return type(t) is float and t == 0.0


def _traced(x: Any) -> bool:
    return type(x) is ArrayTracer or type(x) is Tracer


def register(prim: ArrayPrimitive) -> Callable[..., Any]:
    """Add a primitive to the table (with an operation code) and return its function."""
    code = len(OPS)
    if code > 255:
        raise RuntimeError("tapegrad: too many operation codes for the one-byte op column")
    prim = attrs.evolve(prim, code=code)
    OPS.append(ArrayOpInfo(code, prim.name, prim))
    ARRAY_PRIMITIVES[prim.name] = prim
    _FUNCTION_OF[prim.name] = lambda *operands, **params: bind(prim, *operands, **params)

    impl = prim.impl

    def function(*operands: Any, **params: Any) -> Any:
        try:
            if len(operands) == 1:
                x = operands[0]
                if type(x) is ArrayTracer:  # the common case, inlined: one traced operand
                    rec = x._tape
                    if not rec.nested and not rec.closed:
                        xv = x._value
                        return _append(rec, prim, (x._index,), (xv,), params,
                                       impl(xv, **params))
                    return bind(prim, x, **params)
                if type(x) is Tracer:
                    return bind(prim, x, **params)
                return impl(x, **params)
            for x in operands:  # plain NumPy unless an operand is traced
                if type(x) in _TRACED:
                    return bind(prim, *operands, **params)
            return impl(*operands, **params)
        except ValueError as error:
            if "could not be broadcast" not in str(error):
                raise
            raise _broadcast_error(prim.name, operands, params) from None

    function.__name__ = function.__qualname__ = prim.name
    return function


def _broadcast_error(name: str, operands: Sequence[Any], params: dict) -> ValueError:
    """NumPy's broadcasting error, naming the operation and every operand's shape."""
    shapes = " and ".join(str(shape_of(x)) for x in operands)
    if name == "einsum":
        return ValueError(f"tapegrad.numpy.einsum: operands of shapes {shapes} do not fit the "
                          f"subscripts {params.get('subscripts')!r} (an index names one length "
                          "in every operand)")
    return ValueError(f"tapegrad.numpy.{name}: operands of shapes {shapes} do not broadcast "
                      "together (aligned from the last axis, each pair of lengths must be "
                      "equal or one of them 1)")


def _innermost(operands: Sequence[Any]) -> Recorder | None:
    rec = None
    for x in operands:
        if type(x) is ArrayTracer or type(x) is Tracer:
            r = x._tape
            if rec is None or r.level > rec.level:
                rec = r
    return rec


def bind(prim: ArrayPrimitive, *operands: Any, **params: Any) -> Any:
    """Apply ``prim``: plain NumPy when no operand is traced, else a record on the tape.

    The operands of the innermost trace are replaced by their values; anything else
    (arrays, numbers, traced values of outer traces) is a constant to this trace.
    When those values are themselves traced (nested traces), the value is computed
    by binding again, one level out.
    """
    rec = None
    for x in operands:
        if type(x) in _TRACED:
            r = x._tape
            if rec is None or r.level > rec.level:
                rec = r
    if rec is None:
        return prim.impl(*operands, **params)
    if rec.closed:
        raise EscapedTracerError(ESCAPED_MESSAGE)
    inputs = []
    values = []
    for x in operands:
        if type(x) in _TRACED and x._tape is rec:
            inputs.append(x._index)
            values.append(x._value)
        else:
            inputs.append(-1)
            values.append(x)
    if rec.nested:
        check_live_recorder(rec)
        out = bind(prim, *values, **params)
    else:
        out = prim.impl(*values, **params)
    return _append(rec, prim, tuple(inputs), tuple(values), params, out)


def _bind2(prim: ArrayPrimitive, x: Any, y: Any) -> Any:
    """bind for a binary operator, with the common first-order case inlined."""
    if type(x) is ArrayTracer:
        rec = x._tape
        ty = type(y)
        if ty is ArrayTracer and y._tape is rec:
            if not rec.nested and not rec.closed:
                xv, yv = x._value, y._value
                return _append(rec, prim, (x._index, y._index), (xv, yv), _NO_PARAMS,
                               prim.impl(xv, yv))
        elif ty in _CONSTANTS and not rec.nested and not rec.closed:
            xv = x._value
            return _append(rec, prim, (x._index, -1), (xv, y), _NO_PARAMS, prim.impl(xv, y))
    elif type(y) is ArrayTracer and type(x) in _CONSTANTS:
        rec = y._tape
        if not rec.nested and not rec.closed:
            yv = y._value
            return _append(rec, prim, (-1, y._index), (x, yv), _NO_PARAMS, prim.impl(x, yv))
    return _binary(_FUNCTION_OF[prim.name], x, y)


_NO_PARAMS: dict = {}
_VALUE_TYPES = {np.ndarray, np.float64, np.float32}
_CONSTANTS = {float, int, np.ndarray, np.float64, np.float32, np.int64}
_FUNCTION_OF: dict[str, Callable[..., Any]] = {}


def check_live_recorder(rec: Recorder) -> None:
    """A nested recorder must be on this thread's stack (as for scalar tracers)."""
    probe = object.__new__(Tracer)
    probe._tape = rec
    check_live(probe)


def _append(rec: Recorder, prim: ArrayPrimitive, inputs: tuple, values: tuple, params: dict,
            out: Any) -> Any:
    if not hasattr(out, "shape"):  # a Python number from a reduction of a traced scalar
        out = np.asarray(out)
    i = len(rec.ops)
    rec.ops.append(prim.code)
    rec.vals.append(out)
    rec.a0.append(-2 - len(rec.nary))
    rec.a1.append(NARY - prim.code)
    rec.d0.append(0.0)
    rec.d1.append(0.0)
    rec.nary.append((prim, inputs, values, params, out))
    rec.arrays = True
    return _new_array(rec, i, out)


def _binary(fn: Callable[..., Any], x: Any, y: Any) -> Any:
    """A binary operator's operands checked: numbers and arrays go on (lists become
    arrays, as in NumPy); anything else is NotImplemented, so Python tries the other side."""
    if isinstance(x, list):
        x = np.asarray(x)
    if isinstance(y, list):
        y = np.asarray(y)
    for v in (x, y):
        if not (type(v) is ArrayTracer or type(v) is Tracer or type(v) is float
                or type(v) is int or isinstance(v, (np.ndarray, np.generic, numbers.Number))):
            return NotImplemented
    return fn(x, y)


# ---------------------------------------------------------------------------
# Helpers the rules use; all work on arrays and traced arrays alike.
# ---------------------------------------------------------------------------


def shape_of(x: Any) -> tuple[int, ...]:
    return x.shape if hasattr(x, "shape") else ()


def dtype_of(x: Any) -> Any:
    if hasattr(x, "dtype"):
        return x.dtype
    return np.result_type(x)


def unbroadcast(g: Any, shape: tuple[int, ...], dtype: np.dtype | None = None) -> Any:
    """The cotangent of an operand of ``shape`` from the cotangent ``g`` of a broadcast result.

    Broadcasting used the operand once for every position along the axes it
    added (leading axes) or stretched (axes of length 1): its adjoint is the sum
    of those uses. The result also takes the operand's ``dtype`` (a float32
    parameter gets a float32 gradient).

    >>> unbroadcast(np.ones((3, 2)), (2,))
    array([3., 3.])
    >>> unbroadcast(np.ones((3, 2)), (3, 1))
    array([[2.],
           [2.],
           [2.]])
    """
    gshape = shape_of(g)
    if gshape != shape:
        lead = len(gshape) - len(shape)
        if lead:  # axes broadcasting added in front: summed away
            g = sum(g, axis=0 if lead == 1 else tuple(range(lead)))
        stretched = tuple(i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1)
        if stretched:  # axes of length 1 that broadcasting stretched: summed, kept
            g = sum(g, axis=stretched, keepdims=True)
    if dtype is not None and dtype_of(g) != dtype and dtype.kind in "fc":
        g = astype(g, dtype)
    return g


def _operand_cotangent(g: Any, x: Any) -> Any:
    """unbroadcast to the operand's shape and dtype; Python numbers get a 0-d result."""
    if type(x) in _VALUE_TYPES and type(g) in _VALUE_TYPES and g.shape == x.shape and (
            g.dtype == x.dtype):
        return g  # the common case: no broadcasting, no change of dtype
    if type(x) is float or type(x) is int or type(x) is Tracer:
        return unbroadcast(g, ())
    return unbroadcast(g, x.shape, x.dtype)


def _zeros_like(x: Any) -> Any:
    return np.zeros(shape_of(x), dtype=dtype_of(x) if np.dtype(dtype_of(x)).kind in "fc"
                    else np.float64)


def _normalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of bounds for an array of dimension {ndim}")
        out.append(a % ndim)
    return tuple(sorted(out))


def _restore_reduced(g: Any, shape: tuple[int, ...], axis: Any, keepdims: bool) -> Any:
    """A reduction's cotangent put back to the reduced array's shape (broadcast along axes)."""
    if not keepdims and axis is not None and type(g) is not float:
        kept = [1 if i in _normalize_axes(axis, len(shape)) else n for i, n in enumerate(shape)]
        g = reshape(g, tuple(kept))
    return broadcast_to(g, shape)  # a full reduction's 0-d cotangent broadcasts as it is


# ---------------------------------------------------------------------------
# Elementwise unary primitives.
# ---------------------------------------------------------------------------

# Functions the rules use before the line that defines them.
cos: Callable[..., Any]
sign: Callable[..., Any]
_step: Callable[..., Any]
_getitem: Callable[..., Any]
_index_add: Callable[..., Any]


def _unary(name: str, impl: Callable[..., Any], rule: Callable[[Any, Any, Any], Any],
           source: str | None = None) -> Callable[..., Any]:
    """An elementwise unary primitive whose rule is ``g * f'(x)`` (written by ``rule``).

    ``jit`` writes it as ``source``; by default as NumPy's function of the same name,
    and with ``source=""`` (no NumPy function of that name) as a call of ``impl``.
    """

    def vjp(g: Any, out: Any, x: Any, *, needs: tuple) -> tuple:
        return (rule(g, out, x),)

    if source is None:
        source = f"_np.{name}({{0}})"
    return register(ArrayPrimitive(name, impl, vjp, ELEMENTWISE, source))


negative = _unary("negative", np.negative, lambda g, out, x: -g, "-{0}")
exp = _unary("exp", np.exp, lambda g, out, x: g * out)
expm1 = _unary("expm1", np.expm1, lambda g, out, x: g * (out + 1.0))
log = _unary("log", np.log, lambda g, out, x: g / x)
log1p = _unary("log1p", np.log1p, lambda g, out, x: g / (x + 1.0))
sqrt = _unary("sqrt", np.sqrt, lambda g, out, x: g * 0.5 / out)
tanh = _unary("tanh", np.tanh, lambda g, out, x: g * (1.0 - out * out))
sin = _unary("sin", np.sin, lambda g, out, x: g * cos(x))
cos = _unary("cos", np.cos, lambda g, out, x: -g * sin(x))
tan = _unary("tan", np.tan, lambda g, out, x: g * (out * out + 1.0))


def _sigmoid(x: Any) -> Any:
    # Two forms so that neither overflows: exp of a large positive number never happens.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.result_type(x, 1.0))


def _softplus(x: Any) -> Any:
    return (np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))).astype(np.result_type(x, 1.0))


def _relu(x: Any) -> Any:
    return np.where(x > 0, x, np.where(x <= 0, 0, x)).astype(x.dtype if hasattr(x, "dtype")
                                                             else np.float64)


sigmoid = _unary("sigmoid", _sigmoid, lambda g, out, x: g * out * (1.0 - out),
                 "")
softplus = _unary("softplus", _softplus, lambda g, out, x: g * sigmoid(x), "")
log_sigmoid = _unary("log_sigmoid", lambda x: -_softplus(-x),
                     lambda g, out, x: g * sigmoid(-x), "")
# The kinks are records (the masks below are traced), never branches: jit compiles them.
absolute = _unary("absolute", np.absolute, lambda g, out, x: g * sign(x))
relu = _unary("relu", _relu, lambda g, out, x: g * _step(x), "")


def _no_derivative(name: str, impl: Callable[..., Any], source: str = "") -> Callable[..., Any]:
    """A primitive without derivative (zero where it exists): records, no sweep edges."""
    return register(ArrayPrimitive(name, impl, None, None, source))


def _step_impl(x: Any) -> Any:
    return np.where(x > 0, 1.0, np.where(x <= 0, 0.0, np.nan)).astype(np.result_type(x, 1.0))


sign = _no_derivative("sign", np.sign, "_np.sign({0})")
_step = _no_derivative("step", _step_impl)
floor = _no_derivative("floor", np.floor, "_np.floor({0})")
isnan = _no_derivative("isnan", np.isnan, "_np.isnan({0})")
isfinite = _no_derivative("isfinite", np.isfinite, "_np.isfinite({0})")
_argmax = _no_derivative("argmax", lambda x, axis=None: np.argmax(x, axis=axis),
                         "_np.argmax({0}, axis={axis})")
_argmin = _no_derivative("argmin", lambda x, axis=None: np.argmin(x, axis=axis),
                         "_np.argmin({0}, axis={axis})")


def argmax(x: Any, axis: Any = None) -> Any:
    """The position of the largest element (along ``axis``), as ``np.argmax``.

    >>> int(argmax(np.array([1.0, 3.0, 2.0])))
    1
    """
    return _argmax(x, axis=None if axis is None else int(axis))  # a param, not an operand


def argmin(x: Any, axis: Any = None) -> Any:
    """The position of the smallest element (along ``axis``), as ``np.argmin``.

    >>> argmin(np.array([[1.0, 0.0], [2.0, 3.0]]), axis=1)
    array([1, 0])
    """
    return _argmin(x, axis=None if axis is None else int(axis))
stop_gradient = _no_derivative("stop_gradient", lambda x: x, "{0}")


def _compare(name: str, ufunc: Any, symbol: str) -> Callable[..., Any]:
    return _no_derivative(name, ufunc, f"({{0}} {symbol} {{1}})")


less = _compare("less", np.less, "<")
less_equal = _compare("less_equal", np.less_equal, "<=")
greater = _compare("greater", np.greater, ">")
greater_equal = _compare("greater_equal", np.greater_equal, ">=")
equal = _compare("equal", np.equal, "==")
not_equal = _compare("not_equal", np.not_equal, "!=")
logical_and = _no_derivative("logical_and", np.logical_and, "_np.logical_and({0}, {1})")
logical_or = _no_derivative("logical_or", np.logical_or, "_np.logical_or({0}, {1})")
logical_not = _no_derivative("logical_not", np.logical_not, "_np.logical_not({0})")


# ---------------------------------------------------------------------------
# Elementwise binary primitives: every rule ends with unbroadcast.
# ---------------------------------------------------------------------------


def _binary_prim(name: str, impl: Callable[..., Any],
                 rules: tuple[Callable[..., Any], Callable[..., Any]], source: str,
                 jvp: Callable[..., Any]) -> Callable[..., Any]:
    rule_x, rule_y = rules

    def vjp(g: Any, out: Any, x: Any, y: Any, *, needs: tuple) -> tuple:
        return (_operand_cotangent(rule_x(g, out, x, y), x) if needs[0] else None,
                _operand_cotangent(rule_y(g, out, x, y), y) if needs[1] else None)

    def checked(x: Any, y: Any) -> Any:
        try:
            return impl(x, y)
        except ValueError:
            try:
                np.broadcast_shapes(shape_of(x), shape_of(y))
            except ValueError:
                raise _broadcast_error(name, (x, y), {}) from None
            raise

    return register(ArrayPrimitive(name, checked, vjp, jvp, source))


def _sum_tangents(*terms: Any) -> Any:
    total = None
    for t in terms:
        if t is not None:
            total = t if total is None else total + t
    return 0.0 if total is None else total


def _jvp_add(t: list, out: Any, x: Any, y: Any) -> Any:
    return _broadcast_tangent(_sum_tangents(*t), out)


def _jvp_sub(t: list, out: Any, x: Any, y: Any) -> Any:
    return _broadcast_tangent(_sum_tangents(t[0], None if t[1] is None else -t[1]), out)


def _broadcast_tangent(t: Any, out: Any) -> Any:
    return t if shape_of(t) == shape_of(out) else broadcast_to(t, shape_of(out))


add = _binary_prim("add", np.add, (lambda g, o, x, y: g, lambda g, o, x, y: g),
                   "{0} + {1}", _jvp_add)
subtract = _binary_prim("subtract", np.subtract, (lambda g, o, x, y: g, lambda g, o, x, y: -g),
                        "{0} - {1}", _jvp_sub)
multiply = _binary_prim(
    "multiply", np.multiply, (lambda g, o, x, y: g * y, lambda g, o, x, y: g * x), "{0} * {1}",
    lambda t, out, x, y: _broadcast_tangent(_sum_tangents(
        None if t[0] is None else t[0] * y, None if t[1] is None else x * t[1]), out))
divide = _binary_prim(
    "divide", np.true_divide, (lambda g, o, x, y: g / y, lambda g, o, x, y: -g * o / y),
    "{0} / {1}",
    lambda t, out, x, y: _broadcast_tangent(_sum_tangents(
        None if t[0] is None else t[0] / y, None if t[1] is None else -t[1] * out / y), out))


def _pow_dx(g: Any, out: Any, x: Any, y: Any) -> Any:
    # y * x ** (y - 1), with the constant exponent 0 giving exactly 0 (x ** 0 is 1). An
    # exponent 0 gives 0 too where x ** -1 is not finite (x = 0, a subnormal x, NaN),
    # not 0 * inf, as the scalar rule; the base is made safe there first, so that the
    # second derivative does not meet the inf either.
    if isinstance(y, (int, float)) and not _traced(y):  # a constant exponent
        if y == 0:
            return g * 0.0
        if y == 1:
            return g
        if y == 2:
            return g * (2.0 * x)
        return g * (y * x ** (y - 1.0))
    unsafe = logical_and(y == 0, logical_not(isfinite(x ** (y - 1.0))))
    return g * where(unsafe, 0.0, y * where(unsafe, 1.0, x) ** (y - 1.0))


def _pow_dy(g: Any, out: Any, x: Any, y: Any) -> Any:
    # x ** y * log(x); at base 0 it is 0 * x ** y (0 for y > 0, NaN where 0 ** y is
    # infinite or NaN: y < 0, y NaN), NaN below 0, as the scalar rule.
    safe = where(x == 0, 1.0, x)
    return g * where(x == 0, out * 0.0, out * log(safe))


power = _binary_prim(
    "power", np.power, (_pow_dx, _pow_dy), "{0} ** {1}",
    lambda t, out, x, y: _broadcast_tangent(_sum_tangents(
        None if t[0] is None else _pow_dx(t[0], out, x, y),
        None if t[1] is None else _pow_dy(t[1], out, x, y)), out))


def _max_weight(x: Any, y: Any) -> Any:
    """d max(x, y)/dx: 1 where x wins, 0 where y wins, 1/2 on a tie, NaN for NaN.

    The tie is tested apart: x - y is NaN for a tie at an infinity.
    """
    return where(x == y, 0.5, 0.5 + 0.5 * sign(x - y))


maximum = _binary_prim(
    "maximum", np.maximum,
    (lambda g, o, x, y: g * _max_weight(x, y), lambda g, o, x, y: g * _max_weight(y, x)),
    "_np.maximum({0}, {1})",
    lambda t, out, x, y: _broadcast_tangent(_sum_tangents(
        None if t[0] is None else t[0] * _max_weight(x, y),
        None if t[1] is None else t[1] * _max_weight(y, x)), out))
minimum = _binary_prim(
    "minimum", np.minimum,
    (lambda g, o, x, y: g * _max_weight(y, x), lambda g, o, x, y: g * _max_weight(x, y)),
    "_np.minimum({0}, {1})",
    lambda t, out, x, y: _broadcast_tangent(_sum_tangents(
        None if t[0] is None else t[0] * _max_weight(y, x),
        None if t[1] is None else t[1] * _max_weight(x, y)), out))


def _where_vjp(g: Any, out: Any, c: Any, x: Any, y: Any, *, needs: tuple) -> tuple:
    gx = _operand_cotangent(where(c, g, 0.0), x) if needs[1] else None
    gy = _operand_cotangent(where(c, 0.0, g), y) if needs[2] else None
    return (None, gx, gy)


def _where_jvp(t: list, out: Any, c: Any, x: Any, y: Any) -> Any:
    tx = 0.0 if t[1] is None else t[1]
    ty = 0.0 if t[2] is None else t[2]
    return _broadcast_tangent(where(c, tx, ty), out)


where = register(ArrayPrimitive("where", np.where, _where_vjp, _where_jvp,
                                "_np.where({0}, {1}, {2})"))


# ---------------------------------------------------------------------------
# Linear algebra.
# ---------------------------------------------------------------------------


def _matmul_vjp(g: Any, out: Any, x: Any, y: Any, *, needs: tuple) -> tuple:
    # Make 1-D operands 2-D (a row for x, a column for y) and g to match, so that one
    # rule serves vectors, matrices and stacks: gx = g @ y^T, gy = x^T @ g.
    x2 = reshape(x, (1, -1)) if x.ndim == 1 else x
    y2 = reshape(y, (-1, 1)) if y.ndim == 1 else y
    g2 = g
    if x.ndim == 1 and y.ndim == 1:
        g2 = reshape(g, (1, 1))
    elif x.ndim == 1:
        g2 = expand_dims(g, -2)
    elif y.ndim == 1:
        g2 = expand_dims(g, -1)
    gx = gy = None
    # A 1-D operand met a stack of matrices: drop its added axis, keep the stack's axes
    # (unbroadcast then sums over them: the vector was used once per matrix).
    if needs[0]:
        gx = matmul(g2, transpose(y2) if y2.ndim == 2 else swapaxes(y2, -1, -2))
        if x.ndim == 1:
            gx = reshape(gx, shape_of(gx)[:-2] + shape_of(gx)[-1:])
        gx = unbroadcast(gx, x.shape, x.dtype)
    if needs[1]:
        gy = matmul(transpose(x2) if x2.ndim == 2 else swapaxes(x2, -1, -2), g2)
        if y.ndim == 1:
            gy = reshape(gy, shape_of(gy)[:-1])
        gy = unbroadcast(gy, y.shape, y.dtype)
    return (gx, gy)


def _matmul_jvp(t: list, out: Any, x: Any, y: Any) -> Any:
    return _sum_tangents(None if t[0] is None else matmul(t[0], y),
                         None if t[1] is None else matmul(x, t[1]))


def _matmul_impl(x: Any, y: Any) -> Any:
    try:
        return np.matmul(x, y)
    except ValueError:
        raise ValueError(f"tapegrad.numpy.matmul: shapes {np.shape(x)} and {np.shape(y)} do not "
                         "multiply (the last axis of the first must equal the second-to-last "
                         "of the second)") from None


matmul = register(ArrayPrimitive("matmul", _matmul_impl, _matmul_vjp, _matmul_jvp,
                                 "_np.matmul({0}, {1})", method_source="{0} @ {1}"))
_ADD, _SUB, _MUL, _DIV, _POW, _MATMUL = (
    ARRAY_PRIMITIVES[name] for name in ("add", "subtract", "multiply", "divide", "power",
                                        "matmul"))


def _einsum_parse(subscripts: str, n: int) -> tuple[list[str], str]:
    if "." in subscripts:
        raise NotImplementedError("tapegrad.numpy.einsum: '...' has no derivative rule yet; "
                                  "write the axes out")
    if "->" in subscripts:
        lhs, output = subscripts.replace(" ", "").split("->")
    else:
        lhs = subscripts.replace(" ", "")
        letters = lhs.replace(",", "")
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    inputs = lhs.split(",")
    if len(inputs) != n:
        raise ValueError(f"tapegrad.numpy.einsum: {subscripts!r} names {len(inputs)} operands, "
                         f"{n} were given")
    for term in inputs:
        if len(set(term)) != len(term):
            raise NotImplementedError(
                f"tapegrad.numpy.einsum: a repeated index within one operand ({term!r}, a "
                "diagonal) has no derivative rule yet")
    return inputs, output


def _einsum_impl(*operands: Any, subscripts: str) -> Any:
    return np.einsum(subscripts, *operands)


def _einsum_vjp(g: Any, out: Any, *operands: Any, needs: tuple, subscripts: str) -> tuple:
    inputs, output = _einsum_parse(subscripts, len(operands))
    cts: list[Any] = []
    for i, (term, operand, need) in enumerate(zip(inputs, operands, needs)):
        if not need:
            cts.append(None)
            continue
        others = [t for k, t in enumerate(inputs) if k != i]
        present = set(output).union(*others) if others else set(output)
        # The cotangent of operand i contracts g with the other operands; an index that
        # appears only in operand i was summed out, so its cotangent is broadcast along it.
        kept = "".join(c for c in term if c in present)
        spec = ",".join([output] + others) + "->" + kept
        ct = einsum(spec, g, *[o for k, o in enumerate(operands) if k != i])
        if kept != term:
            shape = tuple(operand.shape[term.index(c)] if c in kept else 1 for c in term)
            order = sorted(range(len(kept)), key=lambda k: term.index(kept[k]))
            ct = transpose(ct, tuple(order)) if order != list(range(len(kept))) else ct
            ct = broadcast_to(reshape(ct, shape), operand.shape)
        cts.append(unbroadcast(ct, operand.shape, operand.dtype))
    return tuple(cts)


def _einsum_jvp(t: list, out: Any, *operands: Any, subscripts: str) -> Any:
    terms = []
    for i, ti in enumerate(t):
        if ti is not None:
            ops = list(operands)
            ops[i] = ti
            terms.append(einsum(subscripts, *ops))
    return _sum_tangents(*terms)


_einsum = register(ArrayPrimitive("einsum", _einsum_impl, _einsum_vjp, _einsum_jvp, ""))


def einsum(subscripts: str, *operands: Any) -> Any:
    """Einstein summation, as ``np.einsum`` (explicit or implicit output; no ``...``)."""
    if not isinstance(subscripts, str):
        raise TypeError("tapegrad.numpy.einsum: the first argument is the subscripts string")
    _einsum_parse(subscripts, len(operands))
    return _einsum(*operands, subscripts=subscripts)


# ---------------------------------------------------------------------------
# Reductions.
# ---------------------------------------------------------------------------


def _axis_param(axis: Any) -> Any:
    if axis is None or isinstance(axis, (int, np.integer)):
        return None if axis is None else int(axis)
    return tuple(int(a) for a in axis)


def _sum_vjp(g: Any, out: Any, x: Any, *, needs: tuple, axis: Any, keepdims: bool) -> tuple:
    return (_restore_reduced(g, shape_of(x), axis, keepdims),)


def _sum_impl(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    if type(x) is np.ndarray:  # the method skips NumPy's Python-level dispatch
        return x.sum(axis=axis, keepdims=keepdims)
    return np.sum(x, axis=axis, keepdims=keepdims)


_sum = register(ArrayPrimitive(
    "sum", _sum_impl,
    _sum_vjp, LINEAR, "_np.sum({0}, axis={axis}, keepdims={keepdims})",
    method_source="{0}.sum(axis={axis}, keepdims={keepdims})"))


def _extremum_vjp(g: Any, out: Any, x: Any, *, needs: tuple, axis: Any, keepdims: bool
                  ) -> tuple:
    # The winners share the cotangent equally (a tie of k elements gives each 1/k).
    full = _restore_reduced(out, shape_of(x), axis, keepdims)
    mask = where(x == full, 1.0, 0.0)
    count = _restore_reduced(sum(mask, axis=axis, keepdims=keepdims), shape_of(x), axis,
                             keepdims)
    return (_restore_reduced(g, shape_of(x), axis, keepdims) * mask / count,)


def _extremum_jvp(t: list, out: Any, x: Any, *, axis: Any, keepdims: bool) -> Any:
    full = _restore_reduced(out, shape_of(x), axis, keepdims)
    mask = where(x == full, 1.0, 0.0)
    return sum(t[0] * mask, axis=axis, keepdims=keepdims) / sum(mask, axis=axis,
                                                                keepdims=keepdims)


_max = register(ArrayPrimitive(
    "max", lambda x, axis=None, keepdims=False: np.max(x, axis=axis, keepdims=keepdims),
    _extremum_vjp, _extremum_jvp, "_np.max({0}, axis={axis}, keepdims={keepdims})"))
_min = register(ArrayPrimitive(
    "min", lambda x, axis=None, keepdims=False: np.min(x, axis=axis, keepdims=keepdims),
    _extremum_vjp, _extremum_jvp, "_np.min({0}, axis={axis}, keepdims={keepdims})"))


def _prod_cotangent(g: Any, out: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    # d prod / dx_i is the product of the others, written without dividing by zero:
    # out / x_i without zeros; with one zero, the product of the nonzero rest for the
    # zero element and 0 for the others; with more zeros, 0. Where that 0 is a product
    # holding the zero elements, they are kept in it as factors (their sum, which is 0,
    # and for two zeros the other one), so that the partial's own derivative, the
    # second derivative of prod, is exact too: d2 prod / dx_i dx_j = prod of the rest.
    is_zero = x == 0
    zeros = _restore_reduced(sum(where(is_zero, 1.0, 0.0), axis=axis, keepdims=keepdims),
                             shape_of(x), axis, keepdims)
    rest = _restore_reduced(prod(where(is_zero, 1.0, x), axis=axis, keepdims=keepdims),
                            shape_of(x), axis, keepdims)
    zero_sum = _restore_reduced(sum(where(is_zero, x, 0.0), axis=axis, keepdims=keepdims),
                                shape_of(x), axis, keepdims)
    safe_x = where(is_zero, 1.0, x)
    one_zero = where(is_zero, rest, rest / safe_x * zero_sum)
    two_zeros = where(is_zero, rest * (zero_sum - x), 0.0)
    partial = where(zeros == 0, rest / safe_x,
                    where(zeros == 1, one_zero, where(zeros == 2, two_zeros, 0.0)))
    return _restore_reduced(g, shape_of(x), axis, keepdims) * partial


_prod = register(ArrayPrimitive(
    "prod", lambda x, axis=None, keepdims=False: np.prod(x, axis=axis, keepdims=keepdims),
    lambda g, out, x, *, needs, axis, keepdims: (_prod_cotangent(g, out, x, axis, keepdims),),
    # Forward: the tangent times the partials (the cotangent rule with g = 1), summed.
    lambda t, out, x, *, axis, keepdims: sum(
        t[0] * _prod_cotangent(np.ones(shape_of(out), dtype_of(out)), out, x, axis, keepdims),
        axis=axis, keepdims=keepdims),
    "_np.prod({0}, axis={axis}, keepdims={keepdims})"))


def _logsumexp_impl(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)  # all -inf (or inf) rows: no shift
    out = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
    return out if keepdims else np.squeeze(out, axis=axis)


def _logsumexp_vjp(g: Any, out: Any, x: Any, *, needs: tuple, axis: Any, keepdims: bool
                   ) -> tuple:
    softmax = exp(x - _restore_reduced(out, shape_of(x), axis, keepdims))
    return (_restore_reduced(g, shape_of(x), axis, keepdims) * softmax,)


_logsumexp = register(ArrayPrimitive(
    "logsumexp", _logsumexp_impl, _logsumexp_vjp,
    lambda t, out, x, *, axis, keepdims: sum(
        t[0] * exp(x - _restore_reduced(out, shape_of(x), axis, keepdims)),
        axis=axis, keepdims=keepdims),
    ""))


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """The sum of the elements over ``axis`` (all by default), as ``np.sum``."""
    return _sum(x, axis=_axis_param(axis), keepdims=bool(keepdims))


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """The largest element over ``axis``; tied winners share the derivative."""
    return _max(x, axis=_axis_param(axis), keepdims=bool(keepdims))


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """The smallest element over ``axis``; tied winners share the derivative."""
    return _min(x, axis=_axis_param(axis), keepdims=bool(keepdims))


def prod(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """The product of the elements over ``axis``; exact derivatives with zeros too."""
    return _prod(x, axis=_axis_param(axis), keepdims=bool(keepdims))


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """log(sum(exp(x))) over ``axis``, shifted by the maximum so that it never overflows."""
    return _logsumexp(x, axis=_axis_param(axis), keepdims=bool(keepdims))


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """The mean over ``axis``: ``sum / count`` (composed, so its rule is sum's)."""
    shape = shape_of(x)
    count = math.prod(shape[a] for a in _normalize_axes(axis, len(shape)))
    return sum(x, axis=axis, keepdims=keepdims) * (1.0 / count) if count else sum(
        x, axis=axis, keepdims=keepdims) / count


def var(x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Any:
    """The variance over ``axis`` (composed of mean and squares)."""
    shape = shape_of(x)
    count = math.prod(shape[a] for a in _normalize_axes(axis, len(shape)))
    centred = x - mean(x, axis=axis, keepdims=True)
    return sum(centred * centred, axis=axis, keepdims=keepdims) / (count - ddof)


def std(x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Any:
    """The standard deviation over ``axis``: ``sqrt(var)``."""
    return sqrt(var(x, axis=axis, keepdims=keepdims, ddof=ddof))


# ---------------------------------------------------------------------------
# Shapes: every rule is the inverse rearrangement.
# ---------------------------------------------------------------------------


def _reshape_impl(x: Any, shape: tuple[int, ...]) -> Any:
    try:
        return x.reshape(shape) if type(x) is np.ndarray else np.reshape(x, shape)
    except ValueError:
        raise ValueError(f"tapegrad.numpy.reshape: an array of shape {np.shape(x)} cannot be "
                         f"reshaped to {shape}") from None


_reshape = register(ArrayPrimitive(
    "reshape", _reshape_impl,
    lambda g, out, x, *, needs, shape: (reshape(g, shape_of(x)),), LINEAR,
    "_np.reshape({0}, {shape})", method_source="{0}.reshape({shape})"))


def _transpose_vjp(g: Any, out: Any, x: Any, *, needs: tuple, axes: Any) -> tuple:
    if axes is None:
        return (transpose(g),)
    inverse = tuple(int(i) for i in np.argsort(axes))
    return (transpose(g, inverse),)


def _transpose_impl(x: Any, axes: Any = None) -> Any:
    if axes is None and type(x) is np.ndarray:
        return x.T
    return np.transpose(x, axes)


_transpose = register(ArrayPrimitive(
    "transpose", _transpose_impl, _transpose_vjp, LINEAR,
    "_np.transpose({0}, {axes})", method_source="{0}.transpose({axes})"))
def _broadcast_to_impl(x: Any, shape: tuple[int, ...]) -> Any:
    if np.ndim(x) == 0:
        return np.full(shape, x, dtype=np.result_type(x))  # cheaper than a strided view
    return np.broadcast_to(x, shape)


_broadcast_to = register(ArrayPrimitive(
    "broadcast_to", _broadcast_to_impl,
    lambda g, out, x, *, needs, shape: (_operand_cotangent(g, x),), LINEAR,
    "_np.broadcast_to({0}, {shape})"))


def _astype_vjp(g: Any, out: Any, x: Any, *, needs: tuple, dtype: Any) -> tuple:
    kind = np.dtype(dtype_of(x)).kind
    return (astype(g, dtype_of(x)) if kind in "fc" and np.dtype(dtype).kind in "fc" else None,)


_astype = register(ArrayPrimitive(
    "astype", lambda x, dtype: np.asarray(x).astype(dtype), _astype_vjp, LINEAR,
    "_np.asarray({0}).astype({dtype})"))


def reshape(x: Any, shape: Any) -> Any:
    """``x`` with a new shape (one axis may be -1), as ``np.reshape``."""
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(n)
                                                                             for n in shape)
    if -1 in shape:
        known = math.prod(n for n in shape if n != -1)
        size = math.prod(shape_of(x))
        if known == 0 or size % known:
            raise ValueError(f"tapegrad.numpy.reshape: an array of shape {shape_of(x)} cannot "
                             f"be reshaped to {shape}")
        shape = tuple(size // known if n == -1 else n for n in shape)
    if shape == shape_of(x):
        return x
    return _reshape(x, shape=shape)


def transpose(x: Any, axes: Any = None) -> Any:
    """The axes of ``x`` permuted (reversed by default), as ``np.transpose``."""
    if axes is None:
        return _transpose(x, axes=None)
    if isinstance(axes, (int, np.integer)):  # x.transpose(0) of a 1-D array, as in NumPy
        axes = (axes,)
    if axes is not None:
        axes = tuple(int(a) % builtins.max(1, len(shape_of(x))) for a in axes)
        if sorted(axes) != list(range(len(shape_of(x)))):
            raise ValueError(f"tapegrad.numpy.transpose: axes {axes} do not permute the "
                             f"{len(shape_of(x))} axes of an array of shape {shape_of(x)}")
    return _transpose(x, axes=axes)


def swapaxes(x: Any, a: int, b: int) -> Any:
    """``x`` with axes ``a`` and ``b`` exchanged."""
    n = len(shape_of(x))
    axes = list(range(n))
    axes[a % n], axes[b % n] = axes[b % n], axes[a % n]
    return transpose(x, tuple(axes))


def broadcast_to(x: Any, shape: Any) -> Any:
    """``x`` broadcast to ``shape``; its rule sums back over the broadcast axes."""
    shape = tuple(int(n) for n in shape)
    if shape_of(x) == shape:
        return x
    try:
        np.broadcast_shapes(shape_of(x), shape)
    except ValueError:
        raise ValueError(f"tapegrad.numpy.broadcast_to: shape {shape_of(x)} does not broadcast "
                         f"to {shape}") from None
    return _broadcast_to(x, shape=shape)


def expand_dims(x: Any, axis: Any) -> Any:
    """``x`` with new axes of length 1 at ``axis``."""
    shape = shape_of(x)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    n = len(shape) + len(axes)
    positions = sorted(int(a) % n for a in axes)
    new = list(shape)
    for p in positions:
        new.insert(p, 1)
    return reshape(x, tuple(new))


def squeeze(x: Any, axis: Any = None) -> Any:
    """``x`` without the axes of length 1 (or just ``axis``)."""
    shape = shape_of(x)
    if axis is None:
        return reshape(x, tuple(n for n in shape if n != 1))
    axes = _normalize_axes(axis, len(shape))
    for a in axes:
        if shape[a] != 1:
            raise ValueError(f"tapegrad.numpy.squeeze: axis {a} has length {shape[a]}, not 1")
    return reshape(x, tuple(n for i, n in enumerate(shape) if i not in axes))


def astype(x: Any, dtype: Any) -> Any:
    """``x`` converted to ``dtype``; floats to floats keep their derivative."""
    dtype = np.dtype(dtype)
    if dtype_of(x) == dtype:
        return x
    return _astype(x, dtype=dtype.name)


# ---------------------------------------------------------------------------
# Indexing: getitem and its adjoint, the scatter-add, are each other's rule.
# ---------------------------------------------------------------------------

_SLOT = "<array index>"


def _split_index(index: Any) -> tuple[tuple, list]:
    """An index as a static template (arrays replaced by slots) and its array parts."""
    parts = index if isinstance(index, tuple) else (index,)
    template: list = []
    arrays: list = []
    for p in parts:
        if isinstance(p, (list,)) or is_array(p) and not isinstance(p, np.generic):
            arrays.append(np.asarray(p) if isinstance(p, list) else p)
            template.append(_SLOT)
        elif isinstance(p, np.generic):
            template.append(p.item())
        elif type(p) is Tracer:
            raise TypeError("a traced scalar cannot index an array: an index is not "
                            "differentiable. Use an int (static_argnums under jit).")
        else:
            template.append(p)
    return tuple(template), arrays


def _join_index(template: tuple, arrays: Sequence[Any]) -> tuple:
    it = iter(arrays)
    return tuple(next(it) if p is _SLOT or p == _SLOT and isinstance(p, str) else p
                 for p in template)


def _getitem_impl(x: Any, *arrays: Any, index: tuple) -> Any:
    return x[_join_index(index, arrays)]


def _getitem_vjp(g: Any, out: Any, x: Any, *arrays: Any, needs: tuple, index: tuple) -> tuple:
    ct = _index_add(g, *arrays, index=index, shape=shape_of(x), dtype=np.dtype(dtype_of(x)).name)
    return (ct,) + (None,) * len(arrays)


def _index_add_impl(g: Any, *arrays: Any, index: tuple, shape: tuple, dtype: str) -> Any:
    out = np.zeros(shape, dtype=dtype)
    idx = _join_index(index, arrays)
    if arrays:
        np.add.at(out, idx, g)  # repeated indices add up
    else:
        out[idx] = g  # basic indexing never repeats an element
    return out


def _index_add_vjp(g: Any, out: Any, upstream: Any, *arrays: Any, needs: tuple, index: tuple,
                   shape: tuple, dtype: str) -> tuple:
    return (getitem_raw(g, index, arrays),) + (None,) * len(arrays)


def getitem_raw(x: Any, template: tuple, arrays: Sequence[Any]) -> Any:
    return _getitem(x, *arrays, index=template)


_getitem = register(ArrayPrimitive(
    "getitem", _getitem_impl, _getitem_vjp,
    lambda t, out, x, *arrays, index: _getitem(t[0], *arrays, index=index), ""))
_index_add = register(ArrayPrimitive(
    "index_add", _index_add_impl, _index_add_vjp,
    lambda t, out, g, *arrays, index, shape, dtype: _index_add(t[0], *arrays, index=index,
                                                               shape=shape, dtype=dtype), ""))


def getitem(x: Any, index: Any) -> Any:
    """``x[index]``: basic and integer-array indexing; its rule scatter-adds the cotangent."""
    template, arrays = _split_index(index)
    for a in arrays:
        kind = np.dtype(dtype_of(a)).kind
        if kind not in "iub":
            raise IndexError(f"tapegrad.numpy: arrays used as indices must be integer or "
                             f"boolean, got {np.dtype(dtype_of(a)).name}")
    if any(np.dtype(dtype_of(a)).kind == "b" for a in arrays):
        if any(_traced(a) for a in arrays):
            raise TypeError("a traced boolean mask as an index gives a shape that depends on "
                            "values; use tnp.where(mask, x, 0.0) instead")
        template, arrays = _masks_as_positions(template, arrays)
    return _getitem(x, *arrays, index=template)


def _masks_as_positions(template: tuple, arrays: Sequence[Any]) -> tuple[tuple, list]:
    """Constant boolean masks replaced by the integer positions they select, as NumPy
    does: a mask over k axes becomes k integer arrays (``np.nonzero``), one slot each."""
    new_template: list = []
    new_arrays: list = []
    parts = iter(arrays)
    for p in template:
        if not (isinstance(p, str) and p == _SLOT):
            new_template.append(p)
            continue
        a = next(parts)
        if np.dtype(dtype_of(a)).kind != "b":
            new_template.append(p)
            new_arrays.append(a)
            continue
        if a.ndim == 0:
            raise IndexError("tapegrad.numpy: a 0-d boolean index (x[True]) has no rule; "
                             "use tnp.expand_dims(x, 0) or tnp.where")
        positions = np.nonzero(a)
        new_template += [_SLOT] * len(positions)
        new_arrays += list(positions)
    return tuple(new_template), new_arrays


def take(x: Any, indices: Any, axis: Any = None) -> Any:
    """Elements of ``x`` at ``indices`` along ``axis`` (flattened when ``axis`` is None)."""
    if axis is None:
        return getitem(reshape(x, (-1,)), indices)
    axis = int(axis) % len(shape_of(x))
    return getitem(x, (slice(None),) * axis + (np.asarray(indices) if isinstance(
        indices, list) else indices,))


# ---------------------------------------------------------------------------
# Joining: the rule splits the cotangent back into the pieces.
# ---------------------------------------------------------------------------


def _concatenate_impl(*xs: Any, axis: int) -> Any:
    return np.concatenate(xs, axis=axis)


def _concatenate_vjp(g: Any, out: Any, *xs: Any, needs: tuple, axis: int) -> tuple:
    cts = []
    start = 0
    for x, need in zip(xs, needs):
        n = shape_of(x)[axis]
        if need:
            index = (slice(None),) * (axis % len(shape_of(x))) + (slice(start, start + n),)
            cts.append(unbroadcast(getitem(g, index), shape_of(x), dtype_of(x)))
        else:
            cts.append(None)
        start += n
    return tuple(cts)


def _concatenate_jvp(t: list, out: Any, *xs: Any, axis: int) -> Any:
    return concatenate([ti if ti is not None else np.zeros(shape_of(x), dtype_of(out))
                        for ti, x in zip(t, xs)], axis=axis)


_concatenate = register(ArrayPrimitive("concatenate", _concatenate_impl, _concatenate_vjp,
                                       _concatenate_jvp, ""))


def concatenate(xs: Sequence[Any], axis: int = 0) -> Any:
    """The arrays joined along an existing axis, as ``np.concatenate``."""
    xs = list(xs)
    if not xs:
        raise ValueError("tapegrad.numpy.concatenate: need at least one array")
    shapes = [shape_of(x) for x in xs]
    try:
        np.concatenate([np.empty(s) for s in shapes], axis=axis)
    except ValueError:
        raise ValueError(f"tapegrad.numpy.concatenate: shapes {shapes} do not join along "
                         f"axis {axis}") from None
    return _concatenate(*xs, axis=int(axis) % len(shapes[0]))


def stack(xs: Sequence[Any], axis: int = 0) -> Any:
    """The arrays joined along a new axis, as ``np.stack``."""
    xs = list(xs)
    if not xs:
        raise ValueError("tapegrad.numpy.stack: need at least one array")
    shapes = {shape_of(x) for x in xs}
    if len(shapes) != 1:
        raise ValueError(f"tapegrad.numpy.stack: all arrays must have one shape, got "
                         f"{sorted(shapes)}")
    return concatenate([expand_dims(x, axis) for x in xs], axis=axis)


# ---------------------------------------------------------------------------
# Compositions: their rules come from their parts.
# ---------------------------------------------------------------------------


def dot(x: Any, y: Any) -> Any:
    """The dot product of vectors, matrix products for 2-D, scalars multiplied, as ``np.dot``."""
    if not shape_of(x) or not shape_of(y):
        return multiply(x, y)
    if len(shape_of(x)) > 2 or len(shape_of(y)) > 2:
        raise NotImplementedError("tapegrad.numpy.dot: arrays above 2-D have no rule yet; "
                                  "use tnp.matmul or tnp.einsum")
    return matmul(x, y)


def outer(x: Any, y: Any) -> Any:
    """The outer product of two vectors (flattened first), as ``np.outer``."""
    return multiply(reshape(x, (-1, 1)), reshape(y, (1, -1)))


def clip(x: Any, a_min: Any = None, a_max: Any = None) -> Any:
    """``x`` limited to [a_min, a_max]: ``minimum(maximum(x, a_min), a_max)``."""
    if a_min is not None:
        x = maximum(x, a_min)
    if a_max is not None:
        x = minimum(x, a_max)
    return x


def square(x: Any) -> Any:
    """x * x."""
    return multiply(x, x)


# ---------------------------------------------------------------------------
# NumPy's protocols: np.tanh(traced) and np.sum(traced) dispatch here.
# ---------------------------------------------------------------------------

_UFUNCS: dict[str, Callable[..., Any]] = {
    "add": add, "subtract": subtract, "multiply": multiply, "true_divide": divide,
    "divide": divide, "power": power, "matmul": matmul, "negative": negative,
    "absolute": absolute, "exp": exp, "expm1": expm1, "log": log, "log1p": log1p,
    "sqrt": sqrt, "tanh": tanh, "sin": sin, "cos": cos, "tan": tan, "sign": sign,
    "maximum": maximum, "minimum": minimum, "less": less, "less_equal": less_equal,
    "greater": greater, "greater_equal": greater_equal, "equal": equal,
    "not_equal": not_equal, "logical_and": logical_and, "logical_or": logical_or,
    "logical_not": logical_not, "isnan": isnan, "isfinite": isfinite, "floor": floor,
    "square": square,
}


def _scalar_like(x: Any) -> bool:
    return type(x) is Tracer or isinstance(x, numbers.Number) and not isinstance(x, np.ndarray)


def _array_ufunc(ufunc: Any, method: str, inputs: tuple, kwargs: dict) -> Any:
    name = getattr(ufunc, "__name__", str(ufunc))
    scalar = _p._UFUNCS.get(name)
    if (scalar is not None and method == "__call__" and not kwargs
            and builtins.all(_scalar_like(x) for x in inputs)):
        # Traced scalars and numbers only (NumPy scalars included): the scalar table.
        return scalar(*[x if type(x) is Tracer else float(x) for x in inputs])
    if kwargs.get("out") is not None:
        raise TypeError(
            f"numpy.{name}(..., out=...) would write a traced value into an array (or an "
            "in-place operator such as a += x on a NumPy array did): traced arrays are "
            "immutable and NumPy arrays cannot hold them. Write a = a + x instead.")
    fn = _UFUNCS.get(name)
    if method == "__call__" and fn is not None and kwargs:
        raise TypeError(
            f"numpy.{name}(..., {', '.join(f'{k}=...' for k in kwargs)}) on a traced value: "
            f"tapegrad.numpy's {name} takes no keyword arguments; call it without them "
            "(convert the result with .astype(...) for another dtype)")
    if method != "__call__" or fn is None:
        raise TypeError(
            f"numpy.{name} ({method}) on a traced value has no derivative rule in tapegrad "
            "yet; use the functions of tapegrad.numpy (import tapegrad.numpy as tnp)")
    return fn(*inputs)


def _array_function(func: Any, args: tuple, kwargs: dict) -> Any:
    name = getattr(func, "__name__", str(func))
    fn = _FUNCTIONS.get(name) if getattr(func, "__module__", "numpy") == "numpy" else None
    # np.linalg.inv is named numpy.linalg.inv, not numpy.inv.
    where = f"{getattr(func, '__module__', None) or 'numpy'}.{name}"
    if fn is None:
        raise TypeError(
            f"{where} on a traced array has no derivative rule in tapegrad yet; use "
            "the functions of tapegrad.numpy (import tapegrad.numpy as tnp) or compose it "
            "from them")
    try:
        return fn(*args, **kwargs)
    except TypeError:
        try:
            inspect.signature(fn).bind(*args, **kwargs)
        except TypeError as error:  # an argument tapegrad.numpy's version does not take
            raise TypeError(
                f"{where} on a traced array: tapegrad.numpy.{name} does not take these "
                f"arguments ({error}); call tnp.{name} with the arguments it has "
                f"(see help(tapegrad.numpy.{name})), converting with .astype() if needed"
            ) from None
        raise


_FUNCTIONS: dict[str, Callable[..., Any]] = {}  # filled by tapegrad.numpy


# ---------------------------------------------------------------------------
# Meeting the scalar side: tg.tanh(traced array), float tracer * array, sweeps.
# ---------------------------------------------------------------------------

_SCALAR_TO_ARRAY: dict[str, Callable[..., Any]] = {
    "exp": exp, "expm1": expm1, "log": log, "log1p": log1p, "sqrt": sqrt, "tanh": tanh,
    "sigmoid": sigmoid, "softplus": softplus, "log_sigmoid": log_sigmoid, "relu": relu,
    "sin": sin, "cos": cos, "tan": tan, "abs": absolute, "neg": negative, "sign": sign,
    "step": _step, "stop_gradient": stop_gradient,
    "add": add, "sub": subtract, "mul": multiply, "div": divide, "pow": power,
    "maximum": maximum, "minimum": minimum,
}


def _scalar_unary(name: str, x: Any) -> Any:
    """tg.<name>(x) for an array or traced array x: the array primitive of that name."""
    if not is_array(x):
        return NotImplemented
    fn = _SCALAR_TO_ARRAY.get(name)
    if fn is None:
        raise TypeError(f"tapegrad.{name} on an array: use tapegrad.numpy, which has no "
                        f"{name} yet")
    return fn(x)


def _scalar_binary(name: str, x: Any, y: Any) -> Any:
    """A scalar operator or tg function met an array operand."""
    if not (is_array(x) or is_array(y)):
        return NotImplemented
    fn = _SCALAR_TO_ARRAY.get(name)
    if fn is None:
        raise TypeError(f"tapegrad: {name} between a traced scalar and an array has no "
                        "rule; use tapegrad.numpy")
    return fn(x, y)


def _scalar_where(condition: Any, x: Any, y: Any) -> Any:
    if not (is_array(condition) or is_array(x) or is_array(y)):
        return NotImplemented
    return where(condition, x, y)


def _is_arrayish(v: Any) -> bool:
    return type(v) is ArrayTracer or isinstance(v, (np.ndarray, np.generic))


def combine(pairs: Sequence[tuple[Any, Any]]) -> Any:
    """sum(g * d) over adjoint contributions, for tapes that mix scalars and arrays."""
    if not builtins.any(_is_arrayish(g) or _is_arrayish(d) for g, d in pairs):
        return _p.linear_combination(pairs)
    total: Any = None
    for g, d in pairs:
        if type(g) is float and g == 0.0:
            continue
        term = g if (type(d) is float and d == 1.0) else g * d
        total = term if total is None else total + term
    return 0.0 if total is None else total


HOOKS.update(array_unary=_scalar_unary, array_binary=_scalar_binary,
             array_where=_scalar_where, array_ufunc=_array_ufunc, combine=combine)


# ---------------------------------------------------------------------------
# custom_vjp on arrays: a record whose rules are the user's (built by transforms).
# ---------------------------------------------------------------------------


def _custom_impl(*operands: Any, value: Callable[..., Any], rule: Callable[..., Any],
                 forward: Callable[..., Any], name: str) -> Any:
    return value(*operands)


def _custom_vjp_rule(g: Any, out: Any, *operands: Any, needs: tuple, value: Any, rule: Any,
                     forward: Any, name: str) -> tuple:
    return rule(g)


def _custom_jvp_rule(t: list, out: Any, *operands: Any, value: Any, rule: Any,
                     forward: Callable[[list], Any], name: str) -> Any:
    return forward(t)


# A call of a custom_vjp function with array operands or outputs. Its params carry the
# function (``value``, what jit calls), its reverse rule (``rule``: bwd with the real
# cotangent) and a forward rule derived from bwd (``forward``); see transforms.custom_vjp.
CUSTOM_VJP = ArrayPrimitive("custom_vjp", _custom_impl, _custom_vjp_rule, _custom_jvp_rule, "")
custom_vjp_call = register(CUSTOM_VJP)
CUSTOM_VJP = ARRAY_PRIMITIVES["custom_vjp"]  # with its operation code


def custom_record(rec: Recorder, inputs: tuple, values: tuple, params: dict, out: Any) -> Any:
    """A custom_vjp call recorded on ``rec`` (its value already computed)."""
    return _append(rec, CUSTOM_VJP, inputs, values, params, out)
