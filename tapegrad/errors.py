"""The exceptions tapegrad raises for situations of its own.

Wrong kinds of values raise ``TypeError`` and wrong structures or domains raise
``ValueError`` (or what Python's ``math`` raises for the same float operation);
the classes here cover what only a tracing library can get wrong.
"""

from __future__ import annotations

__all__ = [
    "TapegradError", "EscapedTracerError", "ForeignTracerError", "NonFiniteError",
    "CustomVJPError",
]


class TapegradError(Exception):
    """Base class of tapegrad's own exceptions."""


class EscapedTracerError(TapegradError, RuntimeError):
    """A traced value was used after the transform that made it had returned.

    Traced values live only while their trace runs. One that leaks out (stored in
    a global, a list outside the function, or a closure) is a stale placeholder:
    the tape it would write to is closed.
    """


class ForeignTracerError(TapegradError, RuntimeError):
    """A traced value from a trace that is not open in this thread was used."""


class CustomVJPError(TapegradError, TypeError):
    """A ``custom_vjp`` function's fwd or bwd used a traced value it was not given."""


class NonFiniteError(TapegradError, FloatingPointError):
    """``debug_nans``: a record's value or adjoint is NaN or infinite."""


ESCAPED_MESSAGE = (
    "a traced value escaped its trace: it was created while tapegrad recorded a "
    "function (inside grad, vjp, jvp, jit, trace, ...) and is used after that "
    "transform returned, so the tape it belongs to is closed. This usually means a "
    "traced value was stored in a global, an outer list or a closure. Return it from "
    "the function instead, or store a plain number (the transform's result) there."
)
