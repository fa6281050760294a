"""tapegrad: small, exact, pure-Python reverse-mode autodiff on an explicit Wengert tape.

>>> import tapegrad as tg
>>> def f(x, y):
...     return tg.tanh(x * y + y ** 2) / (1 + x)
>>> round(tg.grad(f)(0.5, 2.0), 6)
-0.444162
"""

from . import viz as _viz  # noqa: F401  # installs the tape's printers
from .checks import check_grad, check_grads
from .errors import (
    CustomVJPError,
    EscapedTracerError,
    ForeignTracerError,
    NonFiniteError,
    TapegradError,
)
from .jit import jit
from .primitives import (
    PRIMITIVES,
    Primitive,
    abs,
    atan2,
    cos,
    dot,
    erf,
    exp,
    expm1,
    log,
    log1p,
    log_sigmoid,
    maximum,
    minimum,
    power,
    relu,
    sigmoid,
    sign,
    sin,
    softplus,
    sqrt,
    step,
    stop_gradient,
    sum,
    tan,
    tanh,
    where,
)
from .pytree import tree_flatten, tree_leaves, tree_map, tree_structure, tree_unflatten
from .tape import Record, Tape
from .tracer import Tracer, is_traced, isfinite, isnan
from .transforms import (
    custom_vjp,
    grad,
    hessian,
    jacfwd,
    jacobian,
    jacrev,
    jvp,
    trace,
    value_and_grad,
    vjp,
)

__version__ = "0.1.0"

__all__ = [
    "CustomVJPError", "EscapedTracerError", "ForeignTracerError", "NonFiniteError", "TapegradError",
    "PRIMITIVES", "Primitive", "Record", "Tape", "Tracer", "is_traced", "isfinite", "isnan",
    "abs", "atan2", "cos", "dot", "erf", "exp", "expm1", "log", "log1p", "log_sigmoid",
    "maximum", "minimum", "power", "relu", "sigmoid", "sign", "sin", "softplus", "sqrt", "step",
    "stop_gradient", "sum", "tan", "tanh", "where",
    "tree_flatten", "tree_leaves", "tree_map", "tree_structure", "tree_unflatten",
    "check_grad", "check_grads", "custom_vjp", "grad", "hessian", "jacfwd", "jacobian",
    "jacrev", "jvp", "trace", "value_and_grad", "vjp", "jit",
]
