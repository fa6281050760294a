"""NumPy's names, traced: ``import tapegrad.numpy as tnp``.

Every function here works on NumPy arrays (it is then plain NumPy) and on traced
arrays inside ``tg.grad``, ``tg.jit`` and the other transforms (it then records
on the tape). Models written against these names also run under ``jax.numpy``
(see ``docs/scaling-to-jax.md``).

>>> import numpy as np
>>> import tapegrad as tg
>>> import tapegrad.numpy as tnp
>>> def loss(W, x):
...     return tnp.sum(tnp.tanh(x @ W) ** 2)
>>> g = tg.grad(loss)(np.eye(2), np.array([[0.5, -1.0]]))
>>> g.shape, g.dtype
((2, 2), dtype('float64'))

Differentiable: ``+ - * / ** @``, unary ``-``, ``abs``, ``exp``, ``log``, ``log1p``,
``expm1``, ``sqrt``, ``tanh``, ``sigmoid``, ``relu``, ``softplus``, ``log_sigmoid``,
``sin``, ``cos``, ``tan``, ``maximum``, ``minimum``, ``where``, ``clip``, ``square``;
``matmul``, ``dot``, ``outer``, ``einsum``; ``sum``, ``mean``, ``max``, ``min``,
``prod``, ``logsumexp``, ``var``, ``std`` (with ``axis`` and ``keepdims``);
``reshape``, ``transpose``, ``swapaxes``, ``expand_dims``, ``squeeze``,
``broadcast_to``, ``concatenate``, ``stack``, ``take``, indexing and slicing,
``astype``. Without derivative (recorded, so ``jit`` recomputes them): comparisons,
``sign``, ``floor``, ``isnan``, ``isfinite``, ``argmax``, ``argmin``,
``logical_and``/``or``/``not``, ``stop_gradient``. Creation (``zeros``,
``zeros_like``, ``arange``, ...) is NumPy's own: it needs no rule.
"""

from __future__ import annotations

from typing import Any

import numpy as _np

from . import arrays as _a
from .arrays import (
    ArrayTracer,
    absolute,
    add,
    argmax,
    argmin,
    astype,
    broadcast_to,
    clip,
    concatenate,
    cos,
    divide,
    dot,
    einsum,
    equal,
    exp,
    expand_dims,
    expm1,
    floor,
    greater,
    greater_equal,
    isfinite,
    isnan,
    less,
    less_equal,
    log,
    log1p,
    log_sigmoid,
    logical_and,
    logical_not,
    logical_or,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    multiply,
    negative,
    not_equal,
    outer,
    power,
    prod,
    relu,
    reshape,
    sigmoid,
    sign,
    sin,
    softplus,
    sqrt,
    square,
    squeeze,
    stack,
    std,
    stop_gradient,
    subtract,
    sum,
    swapaxes,
    take,
    tan,
    tanh,
    transpose,
    var,
    where,
)

abs = absolute  # noqa: A001  # NumPy's alias
true_divide = divide
amax = max
amin = min
pow = power  # noqa: A001  # NumPy 2's alias

# Creation and constants: NumPy's own (a new array depends on no traced value).
pi, e, inf, nan, newaxis = _np.pi, _np.e, _np.inf, _np.nan, _np.newaxis
float16, float32, float64 = _np.float16, _np.float32, _np.float64
int32, int64, bool_ = _np.int32, _np.int64, _np.bool_
ndarray = _np.ndarray
zeros, ones, full, empty, eye, identity = (_np.zeros, _np.ones, _np.full, _np.empty,
                                           _np.eye, _np.identity)
arange, linspace = _np.arange, _np.linspace


def zeros_like(x: Any, dtype: Any = None) -> _np.ndarray:
    """Zeros of ``x``'s shape and dtype (a constant: it depends on no value of ``x``).

    >>> zeros_like(_np.ones(2))
    array([0., 0.])
    """
    return _np.zeros(_a.shape_of(x), dtype=dtype or _a.dtype_of(x))


def ones_like(x: Any, dtype: Any = None) -> _np.ndarray:
    """Ones of ``x``'s shape and dtype (a constant).

    >>> ones_like(_np.zeros(2))
    array([1., 1.])
    """
    return _np.ones(_a.shape_of(x), dtype=dtype or _a.dtype_of(x))


def full_like(x: Any, fill_value: Any, dtype: Any = None) -> _np.ndarray:
    """``fill_value`` in ``x``'s shape and dtype (a constant).

    >>> full_like(_np.zeros(2), 7.0)
    array([7., 7.])
    """
    return _np.full(_a.shape_of(x), fill_value, dtype=dtype or _a.dtype_of(x))


def shape(x: Any) -> tuple[int, ...]:
    """The shape of an array or traced array.

    >>> shape(_np.zeros((2, 3)))
    (2, 3)
    """
    return _a.shape_of(x)


def ndim(x: Any) -> int:
    """The number of axes.

    >>> ndim(_np.zeros((2, 3)))
    2
    """
    return len(_a.shape_of(x))


def size(x: Any) -> int:
    """The number of elements.

    >>> size(_np.zeros((2, 3)))
    6
    """
    return int(_np.prod(_a.shape_of(x)))


def asarray(x: Any, dtype: Any = None) -> Any:
    """An array from ``x``: traced arrays stay traced; lists of traced values are stacked.

    >>> asarray([1.0, 2.0])
    array([1., 2.])
    """
    if isinstance(x, ArrayTracer):
        return x if dtype is None else astype(x, dtype)
    if isinstance(x, (list, tuple)) and _contains_traced(x):
        return stack([asarray(v, dtype) for v in x])
    from .tracer import Tracer

    if type(x) is Tracer:
        return multiply(x, _np.ones((), dtype=dtype or _np.float64))
    return _np.asarray(x, dtype=dtype)


array = asarray


def _contains_traced(items: Any) -> bool:
    from .tracer import Tracer

    for v in items:
        if isinstance(v, (ArrayTracer, Tracer)):
            return True
        if isinstance(v, (list, tuple)) and _contains_traced(v):
            return True
    return False


def mean_squared(x: Any) -> Any:
    """mean(x ** 2) over all elements.

    >>> float(mean_squared(_np.array([1.0, 3.0])))
    5.0
    """
    return mean(x * x)


# np.<function>(traced) dispatches to these (NumPy's __array_function__ protocol).
_a._FUNCTIONS.update({
    "sum": sum, "mean": mean, "max": max, "amax": max, "min": min, "amin": min,
    "prod": prod, "var": var, "std": std, "dot": dot, "matmul": matmul, "outer": outer,
    "einsum": einsum, "reshape": reshape, "transpose": transpose, "swapaxes": swapaxes,
    "expand_dims": expand_dims, "squeeze": squeeze, "broadcast_to": broadcast_to,
    "concatenate": concatenate, "stack": stack, "where": where, "clip": clip, "take": take,
    "zeros_like": zeros_like, "ones_like": ones_like, "full_like": full_like,
    "shape": shape, "ndim": ndim, "size": size, "argmax": argmax, "argmin": argmin,
    "maximum": maximum, "minimum": minimum, "tanh": tanh, "exp": exp, "log": log,
    "sqrt": sqrt, "abs": absolute, "absolute": absolute, "square": square,
    "isnan": isnan, "isfinite": isfinite, "sign": sign,
})

__all__ = [
    "ArrayTracer", "abs", "absolute", "add", "amax", "amin", "arange", "argmax", "argmin",
    "array", "asarray", "astype", "bool_", "broadcast_to", "clip", "concatenate", "cos",
    "divide", "dot", "e", "einsum", "empty", "equal", "exp", "expand_dims", "expm1", "eye",
    "float16", "float32", "float64", "floor", "full", "full_like", "greater", "greater_equal",
    "identity", "inf", "int32", "int64", "isfinite", "isnan", "less", "less_equal",
    "linspace", "log", "log1p", "log_sigmoid", "logical_and", "logical_not", "logical_or",
    "logsumexp", "matmul", "max", "maximum", "mean", "mean_squared", "min", "minimum",
    "multiply", "nan", "ndarray", "ndim", "negative", "newaxis", "not_equal", "ones",
    "ones_like", "outer", "pi", "pow", "power", "prod", "relu", "reshape", "shape",
    "sigmoid", "sign", "sin", "size", "softplus", "sqrt", "square", "squeeze", "stack", "std",
    "stop_gradient", "subtract", "sum", "swapaxes", "take", "tan", "tanh", "transpose",
    "true_divide", "var", "where", "zeros", "zeros_like",
]
