"""tapegrad: small, exact, pure-Python reverse-mode autodiff on an explicit Wengert tape.

>>> import tapegrad as tg
>>> def f(x, y):
...     return tg.tanh(x * y + y ** 2) / (1 + x)
>>> round(tg.grad(f)(0.5, 2.0), 6)
-0.444162
"""

import sys
from typing import TYPE_CHECKING, Any

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
    chain_mul,
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

if TYPE_CHECKING:
    from .checks import check_grad, check_grads

__version__ = "0.1.0"

# Loaded on first use, to keep `import tapegrad` short: what it costs is mostly
# compiling source, and most programs never check gradients or print a tape. (A
# lazy name must differ from its module's: importing tapegrad.jit would bind the
# module over a lazy function called jit.)
_LAZY = {"check_grad": "checks", "check_grads": "checks"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _printer(name: str) -> Any:
    """A tape printer of viz.py, imported when a tape is first printed or drawn."""

    def call(*args: Any, **kwargs: Any) -> Any:
        from . import viz  # installs the real printers in the tape's hooks, replacing these

        return getattr(viz, name)(*args, **kwargs)

    return call


from .tape import HOOKS as _hooks  # noqa: E402


def _arrays_on_first_use(name: str) -> Any:
    """An array hook that imports tapegrad.arrays when an array first meets a scalar
    function (tg.tanh(np.ones(2))); arrays.py then installs the real hooks."""

    def call(*args: Any) -> Any:
        if "numpy" not in sys.modules:
            return NotImplemented  # no NumPy loaded, so no array can be involved
        from . import arrays  # noqa: F401  # replaces these hooks

        return _hooks[name](*args)

    return call


for _name in ("array_unary", "array_binary", "array_where", "array_ufunc"):
    _hooks.setdefault(_name, _arrays_on_first_use(_name))

for _hook_name, _function in (("forward", "format_forward"), ("reverse", "format_reverse"),
                              ("draw", "draw_tape"), ("html", "tape_html"),
                              ("stats", "format_stats"), ("describe", "describe_record")):
    _hooks.setdefault(_hook_name, _printer(_function))

__all__ = [
    "CustomVJPError", "EscapedTracerError", "ForeignTracerError", "NonFiniteError", "TapegradError",
    "PRIMITIVES", "Primitive", "Record", "Tape", "Tracer", "is_traced", "isfinite", "isnan",
    "abs", "atan2", "chain_mul", "cos", "dot", "erf", "exp", "expm1", "log", "log1p", "log_sigmoid",
    "maximum", "minimum", "power", "relu", "sigmoid", "sign", "sin", "softplus", "sqrt", "step",
    "stop_gradient", "sum", "tan", "tanh", "where",
    "tree_flatten", "tree_leaves", "tree_map", "tree_structure", "tree_unflatten",
    "check_grad", "check_grads", "custom_vjp", "grad", "hessian", "jacfwd", "jacobian",
    "jacrev", "jvp", "trace", "value_and_grad", "vjp", "jit",
]
