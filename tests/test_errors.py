"""Every error tapegrad raises: its type, and a message that says what went wrong."""

from __future__ import annotations

import math
import operator
import re
from typing import Any, Callable

import attrs
import pytest

import tapegrad as tg

# -- non-scalar outputs ----------------------------------------------------------------


@pytest.mark.parametrize(
    "f",
    [lambda x: (x, x), lambda x: [x], lambda x: {"a": x}, lambda x: "x", lambda x: None,
     lambda x: x > 0],
    ids=["tuple", "list", "dict", "str", "none", "bool"],
)
def test_grad_of_non_scalar_output(f: Callable) -> None:
    """grad of a function not returning one number is a TypeError pointing to vjp/jacobian."""
    with pytest.raises(TypeError, match=r"(?s)single scalar.*vjp.*jacobian"):
        tg.grad(f)(1.0)
    with pytest.raises(TypeError, match="scalar"):
        tg.value_and_grad(f)(1.0)


def test_has_aux_needs_a_pair() -> None:
    """has_aux=True with f not returning (value, aux) is a TypeError saying so."""
    with pytest.raises(TypeError, match=r"has_aux.*pair"):
        tg.grad(lambda x: x, has_aux=True)(1.0)


# -- bad leaves ---------------------------------------------------------------------------


@attrs.define
class Params:
    w: Any
    _b: Any


@pytest.mark.parametrize(
    ("args", "argnums", "path", "kind"),
    [
        (({"w": [1.0, 2.0, "three"]},), 0, "args[0]['w'][2]", "str"),
        ((1.0, [2.0, True]), 1, "args[1][1]", "bool"),
        (((1.0, object()),), 0, "args[0][1]", "object"),
        (("s",), 0, "args[0]", "str"),
        ((Params(1.0, "b"),), 0, "args[0]._b", "str"),
        ((1.0, {"k": (None, 2.0, [complex(1, 1)])}), -1, "args[1]['k'][2][0]", "complex"),
    ],
)
def test_non_number_leaf_names_its_place(args: tuple, argnums: int, path: str, kind: str
                                         ) -> None:
    """A string/bool/object leaf in a differentiated argument is a TypeError naming its path."""
    f = lambda *a: 0.0
    with pytest.raises(TypeError, match=re.escape(path) + ".*" + kind):
        tg.grad(f, argnums=argnums)(*args)
    with pytest.raises(TypeError, match=re.escape(path)):
        tg.jacrev(f, argnums=argnums)(*args)


def test_non_number_leaf_in_vjp_and_jvp() -> None:
    """vjp primals and jvp tangents with a non-number leaf are TypeErrors naming the leaf."""
    with pytest.raises(TypeError, match=re.escape("args[1]['a']")):
        tg.vjp(lambda x, d: x, 1.0, {"a": "no"})
    with pytest.raises(TypeError, match=re.escape("tangents[0][1]")):
        tg.jvp(lambda p: p[0], ((1.0, 2.0),), ((1.0, "t"),))


def test_non_number_argument_outside_argnums_is_fine() -> None:
    """Non-number arguments that are not differentiated are passed through untouched."""
    assert tg.grad(lambda x, tag: x * len(tag))(2.0, "abc") == 3.0


# -- conversions that would drop the derivative -------------------------------------------


@pytest.mark.parametrize(
    ("convert", "what"),
    [
        (float, r"float\(\)"),
        (int, r"int\(\)"),
        (round, r"round\(\)"),
        (math.exp, r"float\(\)"),
        (math.sqrt, r"float\(\)"),
        (complex, r"complex\(\)"),
        (math.floor, r"math\.floor"),
        (lambda x: [1, 2, 3][x], "index"),
    ],
    ids=["float", "int", "round", "math.exp", "math.sqrt", "complex", "floor", "index"],
)
def test_conversion_of_traced_value_points_to_the_fix(convert: Callable, what: str) -> None:
    """float()/int()/round()/math.* on a traced value is a TypeError naming the fix."""
    with pytest.raises(TypeError, match=what) as info:
        tg.grad(lambda x: convert(x))(1.0)
    message = str(info.value)
    assert "tg.isfinite" in message and "tg.isnan" in message
    assert "tg.exp" in message
    # stop_gradient is no advice for a conversion: float(stop_gradient(x)) fails the same way
    assert "stop_gradient" not in message


def test_advice_of_conversion_message_works() -> None:
    """The advice works: comparisons and tg.isfinite/tg.isnan give plain bools, formatting
    shows the number, and a count marked static under jit works."""
    with pytest.raises(TypeError) as info:
        tg.grad(lambda x: math.isnan(x))(1.0)
    assert "tg.isnan" in str(info.value) and "format" in str(info.value)
    seen = {}

    def f(x: Any) -> Any:
        seen["checks"] = (x > 0, tg.isfinite(x), tg.isnan(x))
        seen["shown"] = f"{x:.2f}"
        return x * x

    assert tg.grad(f)(1.5) == 3.0
    assert seen["checks"] == (True, True, False)
    assert all(type(b) is bool for b in seen["checks"])
    assert seen["shown"] == "1.50"

    def powers(x: Any, n: Any) -> Any:
        return tg.sum([x**k for k in range(n)])

    with pytest.raises(TypeError, match="static_argnums") as info:
        tg.jit(powers)(2.0, 3)
    assert tg.jit(powers, static_argnums=1)(2.0, 3) == 7.0
    assert tg.jit(tg.grad(powers), static_argnums=(1,))(2.0, 3) == 5.0


# -- escaped tracers --------------------------------------------------------------------


def _leak() -> Any:
    box: list = []

    def f(x: Any) -> Any:
        box.append(x)
        return x * 2.0

    tg.grad(f)(1.5)
    return box[0]


ESCAPED_USES: dict[str, Callable[[Any], Any]] = {
    "add": lambda t: t + 1.0,
    "radd": lambda t: 1.0 + t,
    "mul_self": lambda t: t * t,
    "div": lambda t: 1.0 / t,
    "pow": lambda t: t**2,
    "neg": lambda t: -t,
    "abs": lambda t: abs(t),
    "tanh": lambda t: tg.tanh(t),
    "exp": lambda t: tg.exp(t),
    "sum": lambda t: tg.sum([t, t]),
    "sum_with_constant": lambda t: tg.sum([t, 1.0]),
    "dot": lambda t: tg.dot([t, t], [1.0, 2.0]),
    "dot_right": lambda t: tg.dot([1.0], [t]),
    "lt": lambda t: t < 1.0,
    "ge_reflected": lambda t: 1.0 >= t,
    "eq": lambda t: t == 1.5,
    "bool": lambda t: bool(t),
    "max": lambda t: max(t, 0.0),
    "in_new_grad": lambda t: tg.grad(lambda y: y * t)(1.0),
    "in_new_grad_left": lambda t: tg.grad(lambda y: t * y + y)(1.0),
    "in_new_grad_sum": lambda t: tg.grad(lambda y: tg.sum([y, t]))(1.0),
    "in_new_grad_dot": lambda t: tg.grad(lambda y: tg.dot([y], [t]))(1.0),
    "in_new_grad_compare": lambda t: tg.grad(lambda y: y * 2.0 if y < t else y)(1.0),
}


@pytest.mark.parametrize("use", list(ESCAPED_USES.values()), ids=list(ESCAPED_USES))
def test_escaped_tracer_is_refused(use: Callable[[Any], Any]) -> None:
    """A traced value leaked out of grad and used later raises EscapedTracerError."""
    t = _leak()
    with pytest.raises(tg.EscapedTracerError, match="escaped its trace"):
        use(t)


def test_escaped_tracer_error_is_a_runtime_error() -> None:
    """EscapedTracerError (and ForeignTracerError) are RuntimeErrors and TapegradErrors."""
    assert issubclass(tg.EscapedTracerError, RuntimeError)
    assert issubclass(tg.EscapedTracerError, tg.TapegradError)
    assert issubclass(tg.ForeignTracerError, RuntimeError)
    t = _leak()
    with pytest.raises(RuntimeError):
        t * 3.0
    assert not tg.is_traced(t)


LEAKED_GLOBAL: Any = None


def test_tracer_leaked_through_a_global_is_refused() -> None:
    """A traced value stored in a module global and used after grad returned is refused."""

    def f(x: Any) -> Any:
        global LEAKED_GLOBAL
        LEAKED_GLOBAL = x * 2.0
        return LEAKED_GLOBAL

    assert tg.grad(f)(1.0) == 2.0
    with pytest.raises(tg.EscapedTracerError):
        tg.tanh(LEAKED_GLOBAL)
    with pytest.raises(tg.EscapedTracerError):
        tg.grad(lambda y: y + LEAKED_GLOBAL)(1.0)


def test_tracer_leaked_from_inner_grad_into_outer_trace() -> None:
    """A tracer of a finished inner grad used by the still-running outer trace is refused."""
    box: list = []

    def inner(y: Any) -> Any:
        box.append(y)
        return y * y

    def outer(x: Any) -> Any:
        tg.grad(inner)(x)
        return x * box[0]

    with pytest.raises(tg.EscapedTracerError):
        tg.grad(outer)(2.0)


def test_library_state_is_clean_after_errors() -> None:
    """After an exception inside a traced function, the next transform works normally."""
    with pytest.raises(ZeroDivisionError):
        tg.grad(lambda x: 1.0 / (x - x))(1.0)
    with pytest.raises(TypeError):
        tg.grad(lambda x: float(x))(1.0)
    assert tg.grad(lambda x: x * x)(3.0) == 6.0
    assert tg.grad(tg.grad(lambda x: x**3))(1.0) == 6.0


# -- domain errors ----------------------------------------------------------------------


def _python_error(f: Callable[[], Any]) -> type:
    try:
        f()
    except Exception as e:  # noqa: BLE001
        return type(e)
    raise AssertionError("expected the plain-Python computation to fail")


DOMAIN_CASES: list[tuple[str, Callable[..., Any], Callable[[], Any], str, float]] = [
    ("log0", tg.log, lambda: math.log(0.0), "log", 0.0),
    ("log-1", tg.log, lambda: math.log(-1.0), "log", -1.0),
    ("sqrt-1", tg.sqrt, lambda: math.sqrt(-1.0), "sqrt", -1.0),
    ("x/0", lambda x: x / 0.0, lambda: 1.0 / 0.0, "div", 1.0),
    ("1/x", lambda x: 1.0 / x, lambda: 1.0 / 0.0, "div", 0.0),
    ("x/x-x", lambda x: x / (x - x), lambda: 1.0 / 0.0, "div", 2.0),
    ("int/x", lambda x: 1 / x, lambda: 1 / 0.0, "div", 0.0),
]


@pytest.mark.parametrize(("f", "reference", "name", "x"),
                         [c[1:] for c in DOMAIN_CASES], ids=[c[0] for c in DOMAIN_CASES])
def test_domain_error_with_traced_operands(f: Callable, reference: Callable, name: str,
                                          x: float) -> None:
    """Domain errors on traced values raise what math/Python raise, naming the operation."""
    expected = _python_error(reference)
    with pytest.raises(expected, match=name):
        tg.grad(f)(x)
    with pytest.raises(expected, match=name):
        tg.grad(tg.grad(f))(x)


@pytest.mark.parametrize(
    ("f", "reference", "name"),
    [
        (lambda: tg.log(0.0), lambda: math.log(0.0), "log"),
        (lambda: tg.log(-1), lambda: math.log(-1), "log"),
        (lambda: tg.sqrt(-1.0), lambda: math.sqrt(-1.0), "sqrt"),
        (lambda: tg.power(-8.0, 0.5), lambda: math.pow(-8.0, 0.5), "pow"),
    ],
    ids=["log0", "log-1", "sqrt-1", "pow"],
)
def test_domain_error_with_plain_floats(f: Callable, reference: Callable, name: str) -> None:
    """tg functions on plain floats raise math's exception type, naming the operation."""
    with pytest.raises(_python_error(reference), match=name):
        f()


def test_non_number_operand_of_tg_function() -> None:
    """tg.exp('a') / tg.sum(['a']) / tg.dot with a string are TypeErrors naming the function."""
    with pytest.raises(TypeError, match="exp"):
        tg.exp("a")
    with pytest.raises(TypeError, match="sum"):
        tg.sum(["a"])
    with pytest.raises(TypeError, match="dot"):
        tg.dot(["a"], [1.0])


def test_arithmetic_with_a_non_number_is_a_type_error() -> None:
    """traced + 'str' falls back to Python's TypeError instead of recording garbage."""
    with pytest.raises(TypeError):
        tg.grad(lambda x: x + "a")(1.0)
    with pytest.raises(TypeError):
        tg.grad(lambda x: [1.0] * x)(1.0)


def test_dot_length_mismatch() -> None:
    """tg.dot of different lengths is a ValueError giving both lengths."""
    with pytest.raises(ValueError, match=r"2 and 3"):
        tg.dot([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"lengths"):
        tg.grad(lambda x: tg.dot([x, x], [x]))(1.0)


# -- bad argnums --------------------------------------------------------------------------

TRANSFORMS_WITH_ARGNUMS = {
    "grad": tg.grad,
    "value_and_grad": tg.value_and_grad,
    "jacrev": tg.jacrev,
    "jacfwd": tg.jacfwd,
    "hessian": tg.hessian,
    "trace": tg.trace,
}


@pytest.mark.parametrize("transform", list(TRANSFORMS_WITH_ARGNUMS.values()),
                         ids=list(TRANSFORMS_WITH_ARGNUMS))
@pytest.mark.parametrize("argnums", [2, -3, (0, 5), (0, 1.0), ("a",), 10**9])
def test_bad_argnums(transform: Callable, argnums: Any) -> None:
    """argnums that do not fit the call are a ValueError mentioning argnums."""
    with pytest.raises(ValueError, match="argnums"):
        transform(operator.mul, argnums=argnums)(1.0, 2.0)


def test_check_grad_bad_argnums() -> None:
    """check_grad validates argnums like the transforms."""
    with pytest.raises(ValueError, match="argnums"):
        tg.check_grad(lambda x: x, 1.0, argnums=1)


# -- custom_vjp misuse --------------------------------------------------------------------


def test_custom_vjp_without_defvjp() -> None:
    """Differentiating a custom_vjp function before defvjp is a TypeError saying so."""

    @tg.custom_vjp
    def f(x: Any) -> Any:
        return x

    assert f(2.0) == 2.0
    with pytest.raises(TypeError, match="defvjp"):
        tg.grad(f)(1.0)


def test_custom_vjp_bwd_wrong_arity() -> None:
    """A bwd returning the wrong number of cotangents is a TypeError naming the function."""

    @tg.custom_vjp
    def g(x: Any, y: Any) -> Any:
        return x * y

    g.defvjp(lambda x, y: (x * y, None), lambda res, ct: (ct,))
    with pytest.raises(TypeError, match=r"'g'.*one cotangent per positional argument"):
        tg.grad(g)(1.0, 2.0)
