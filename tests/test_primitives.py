"""Every primitive of the table against finite differences, exact values, and plain floats."""

from __future__ import annotations

import builtins
import math
import operator
from typing import Any, Callable

import pytest
from conftest import FEW, central_diff, fd_close, floats, partial_diff
from hypothesis import assume, given
from hypothesis import strategies as st

import tapegrad as tg

# -- the valid domain of each primitive ----------------------------------------------------
# (lo, hi, away): operands in [lo, hi] with |v| >= away. Names missing here (a primitive
# added to the table later) get a conservative positive domain, where the usual
# functions are defined and smooth.


DOMAINS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "add": ((-5.0, 5.0, 0.0), (-5.0, 5.0, 0.0)),
    "sub": ((-5.0, 5.0, 0.0), (-5.0, 5.0, 0.0)),
    "mul": ((-5.0, 5.0, 0.0), (-5.0, 5.0, 0.0)),
    "div": ((-5.0, 5.0, 0.0), (-4.0, 4.0, 0.5)),
    "pow": ((0.2, 3.0, 0.0), (-2.5, 2.5, 0.0)),
    "neg": ((-5.0, 5.0, 0.0),),
    "abs": ((-5.0, 5.0, 0.1),),
    "exp": ((-5.0, 5.0, 0.0),),
    "log": ((0.05, 10.0, 0.0),),
    "sqrt": ((0.05, 10.0, 0.0),),
    "tanh": ((-4.0, 4.0, 0.0),),
    "sigmoid": ((-8.0, 8.0, 0.0),),
    "relu": ((-5.0, 5.0, 0.1),),
    "sin": ((-6.0, 6.0, 0.0),),
    "cos": ((-6.0, 6.0, 0.0),),
    "tan": ((-1.3, 1.3, 0.0),),
    "log1p": ((-0.9, 10.0, 0.0),),
    "expm1": ((-5.0, 5.0, 0.0),),
    "softplus": ((-20.0, 20.0, 0.0),),
    "log_sigmoid": ((-20.0, 20.0, 0.0),),
    "erf": ((-3.0, 3.0, 0.0),),
    "sign": ((-5.0, 5.0, 0.1),),
    "step": ((-5.0, 5.0, 0.1),),
    "stop_gradient": ((-5.0, 5.0, 0.0),),
    # x % y and x // y are smooth where x / y is not near an integer: 0 < x / y < 1 here.
    "mod": ((0.2, 1.4, 0.0), (1.5, 3.0, 0.0)),
    "floordiv": ((0.2, 1.4, 0.0), (1.5, 3.0, 0.0)),
    "atan2": ((-3.0, 3.0, 0.2), (-3.0, 3.0, 0.2)),
    "maximum": ((-5.0, 5.0, 0.0), (-5.0, 5.0, 0.0)),
    "minimum": ((-5.0, 5.0, 0.0), (-5.0, 5.0, 0.0)),
}
# Binary primitives with a kink where the operands are equal: finite differences hold away
# from it (the tie itself is tested by hand-derived values).
KINK_AT_EQUALITY = {"maximum", "minimum"}
# Where both operands may be the same value (x op x), if the two domains do not overlap.
SAME_VALUE_DOMAIN = {"mod": (0.5, 3.0, 0.0), "floordiv": (0.5, 3.0, 0.0)}
DEFAULT_OPERAND = (0.3, 3.0, 0.0)

# Primitives whose derivative is zero (their records have no edge in the sweeps).
ZERO_DERIVATIVE = {p.name for p in tg.PRIMITIVES if not p.differentiable}

UNARY = [p for p in tg.PRIMITIVES if p.arity == 1]
BINARY = [p for p in tg.PRIMITIVES if p.arity == 2]


def domain(prim: tg.Primitive, k: int) -> tuple[float, float, float]:
    return DOMAINS.get(prim.name, (DEFAULT_OPERAND,) * prim.arity)[k]


def operand(prim: tg.Primitive, k: int) -> st.SearchStrategy[float]:
    """Floats in the domain of operand k of prim."""
    lo, hi, away = domain(prim, k)
    return floats(lo, hi, away)


def constant(prim: tg.Primitive, k: int) -> st.SearchStrategy[Any]:
    """A constant operand k of prim: a float or an int in its domain."""
    lo, hi, away = domain(prim, k)
    ints = [n for n in range(math.ceil(lo), math.floor(hi) + 1) if builtins.abs(n) >= away]
    return st.one_of(floats(lo, hi, away), st.sampled_from(ints)) if ints else floats(lo, hi, away)


def unary_fn(prim: tg.Primitive) -> Callable[[Any], Any]:
    """How users call a unary primitive: its tg function, else its operator (-x)."""
    public = getattr(tg, prim.name, None)
    if callable(public):
        return public
    method = prim.methods[0]
    return lambda x: getattr(x, method)()


def binary_fn(prim: tg.Primitive) -> Callable[[Any, Any], Any]:
    """How users call a binary primitive: its infix operator (Python's dispatch), else tg.<name>."""
    if prim.methods:
        return getattr(operator, prim.methods[0])
    return getattr(tg, prim.name)


def maybe_zero(name: str, g: float, fd: float, scale: float) -> bool:
    """The derivative is right: zero for the zero-derivative primitives, else fd's value."""
    return g == 0.0 if name in ZERO_DERIVATIVE else fd_close(g, fd, scale)


def expected_scale(f: Callable[..., float], *args: float) -> float:
    return builtins.abs(f(*args))


# -- unary primitives against finite differences --------------------------------------


@pytest.mark.parametrize("prim", UNARY, ids=lambda p: p.name)
@FEW
@given(data=st.data())
def test_unary_primitive_matches_finite_differences(prim: tg.Primitive, data: Any) -> None:
    """The recorded derivative of each unary primitive equals its central difference."""
    x = data.draw(operand(prim, 0), label="x")
    fn = unary_fn(prim)
    value, g = tg.value_and_grad(fn)(x)
    assert type(g) is float
    assert value == fn(x)
    if prim.name in ZERO_DERIVATIVE:
        assert g == 0.0
    else:
        assert fd_close(g, central_diff(fn, x), expected_scale(fn, x)), (prim.name, x, g)


@pytest.mark.parametrize("prim", [p for p in UNARY if p.methods], ids=lambda p: p.name)
@FEW
@given(data=st.data())
def test_unary_operator_form_matches_function(prim: tg.Primitive, data: Any) -> None:
    """Operator forms (-x, abs(x)) record the same primitive and derivative as the function."""
    x = data.draw(operand(prim, 0), label="x")
    method = prim.methods[0]
    by_operator = lambda v: getattr(v, method)()
    value, g = tg.value_and_grad(by_operator)(x)
    assert value == unary_fn(prim)(x)
    assert fd_close(g, central_diff(unary_fn(prim), x), builtins.abs(value))
    assert [r.op for r in tg.trace(by_operator)(x)] == ["input", prim.name]


# -- binary primitives: every combination of traced and constant operands --------------


@pytest.mark.parametrize("prim", BINARY, ids=lambda p: p.name)
@FEW
@given(data=st.data())
def test_binary_traced_op_traced(prim: tg.Primitive, data: Any) -> None:
    """x op y with both operands traced gives both partials as finite differences do."""
    x = data.draw(operand(prim, 0), label="x")
    y = data.draw(operand(prim, 1), label="y")
    assume(prim.name not in KINK_AT_EQUALITY or builtins.abs(x - y) > 1e-3)
    op = binary_fn(prim)
    value, (gx, gy) = tg.value_and_grad(op, argnums=(0, 1))(x, y)
    assert value == op(x, y)
    assert type(gx) is float and type(gy) is float
    scale = expected_scale(op, x, y)
    assert maybe_zero(prim.name, gx, partial_diff(op, (x, y), 0), scale), (prim.name, x, y, gx)
    assert maybe_zero(prim.name, gy, partial_diff(op, (x, y), 1), scale), (prim.name, x, y, gy)


@pytest.mark.parametrize("traced_side", [0, 1], ids=["x_op_c", "c_op_y"])
@pytest.mark.parametrize("prim", BINARY, ids=lambda p: p.name)
@FEW
@given(data=st.data())
def test_binary_one_traced_operand(prim: tg.Primitive, traced_side: int, data: Any) -> None:
    """x op c and c op y, one operand traced and the other a float or int constant on
    either side, match finite differences in the traced operand."""
    t = data.draw(operand(prim, traced_side), label="traced")
    c = data.draw(constant(prim, 1 - traced_side), label="c")
    assume(prim.name not in KINK_AT_EQUALITY or builtins.abs(t - c) > 1e-3)
    op = binary_fn(prim)
    f = (lambda v: op(v, c)) if traced_side == 0 else (lambda v: op(c, v))
    value, g = tg.value_and_grad(f)(t)
    assert value == f(t)
    assert type(g) is float
    assert maybe_zero(prim.name, g, central_diff(f, t), expected_scale(f, t)), (prim.name, t, c, g)


@pytest.mark.parametrize("prim", BINARY, ids=lambda p: p.name)
@FEW
@given(data=st.data())
def test_binary_same_traced_value_on_both_sides(prim: tg.Primitive, data: Any) -> None:
    """x op x (one traced value used twice) sums both partials, as finite differences say."""
    lo0, hi0, away0 = domain(prim, 0)
    lo1, hi1, away1 = domain(prim, 1)
    lo, hi, away = SAME_VALUE_DOMAIN.get(prim.name, (max(lo0, lo1), min(hi0, hi1),
                                                     max(away0, away1)))
    x = data.draw(floats(lo, hi, away), label="x")
    op = binary_fn(prim)
    f = lambda v: op(v, v)
    g = tg.grad(f)(x)
    assert maybe_zero(prim.name, g, central_diff(f, x), expected_scale(f, x)), (prim.name, x, g)


# -- tg.power, tg.sum, tg.dot -----------------------------------------------------------


@FEW
@given(x=floats(0.2, 3.0), y=floats(-2.5, 2.5))
def test_power_function_both_arguments(x: float, y: float) -> None:
    """tg.power(x, y) has value x**y and both partials y x^(y-1) and x^y log x."""
    value, (gx, gy) = tg.value_and_grad(tg.power, argnums=(0, 1))(x, y)
    assert math.isclose(value, x**y, rel_tol=1e-15)
    assert math.isclose(gx, y * x ** (y - 1.0), rel_tol=1e-12, abs_tol=1e-300)
    assert math.isclose(gy, x**y * math.log(x), rel_tol=1e-12, abs_tol=1e-300)
    assert fd_close(gx, partial_diff(tg.power, (x, y), 0), value)


@FEW
@given(xs=st.lists(floats(-5.0, 5.0), min_size=0, max_size=6))
def test_sum_gradient_is_all_ones(xs: list) -> None:
    """tg.sum's gradient is 1 for every operand, returned as a list of floats."""
    value, g = tg.value_and_grad(tg.sum)(xs)
    assert math.isclose(value, builtins.sum(xs), abs_tol=1e-12)
    assert g == [1.0] * len(xs)
    assert all(type(v) is float for v in g)


@FEW
@given(
    pairs=st.lists(st.tuples(floats(-3.0, 3.0), floats(-3.0, 3.0)), min_size=1, max_size=6),
    const=floats(-3.0, 3.0),
)
def test_sum_and_dot_with_mixed_operands_match_finite_differences(pairs: list, const: float
                                                                 ) -> None:
    """tg.sum and tg.dot over mixed traced/constant/derived operands match finite differences."""
    xs = [p[0] for p in pairs]
    ws = [p[1] for p in pairs]

    def f(v: list) -> Any:
        items = [v[i] * v[i] if i % 2 else v[i] for i in range(len(v))] + [const, 2]
        return tg.dot(items, ws + [v[0], 1.5]) + tg.sum([*v, const, 3])

    g = tg.grad(f)(xs)
    for k in range(len(xs)):
        fd = partial_diff(lambda *a: f(list(a)), tuple(xs), k)
        assert fd_close(g[k], fd, builtins.abs(f(xs))), (k, g[k], fd)


@FEW
@given(xs=st.lists(floats(-3.0, 3.0), min_size=1, max_size=6), data=st.data())
def test_dot_both_sides_traced(xs: list, data: Any) -> None:
    """d/dxs dot(xs, ys) = ys and d/dys = xs, when both sides are traced."""
    ys = data.draw(st.lists(floats(-3.0, 3.0), min_size=len(xs), max_size=len(xs)))
    gx, gy = tg.grad(tg.dot, argnums=(0, 1))(xs, ys)
    assert gx == ys
    assert gy == xs


def test_sum_records_exactly_one_record() -> None:
    """tg.sum of n traced values adds one record to the tape, not n - 1 additions."""
    tape = tg.trace(lambda a, b, c, d: tg.sum([a, b, c, d]))(1.0, 2.0, 3.0, 4.0)
    assert len(tape) == 5
    assert tape[-1].op == "sum"
    assert tape[-1].value == 10.0


def test_sum_with_constants_records_exactly_one_record() -> None:
    """tg.sum mixing traced values and numbers is still one record."""
    tape = tg.trace(lambda a, b: tg.sum([a, 2.0, b, 3]))(1.0, 2.0)
    assert len(tape) == 3
    assert tape[-1].value == 8.0


def test_dot_records_exactly_one_record() -> None:
    """tg.dot of two traced lists of length 3 adds a single record."""
    tape = tg.trace(lambda xs, ys: tg.dot(xs, ys))([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert len(tape) == 7
    assert tape[-1].op == "dot"
    assert tape[-1].value == 32.0


def test_dot_with_constant_weights_records_exactly_one_record() -> None:
    """tg.dot of traced values with plain numbers adds a single record."""
    tape = tg.trace(lambda xs: tg.dot(xs, [4, 5.0, 6]))([1.0, 2.0, 3.0])
    assert len(tape) == 4
    tape2 = tg.trace(lambda xs: tg.dot((4, 5.0, 6), xs))((1.0, 2.0, 3.0))
    assert len(tape2) == 4
    assert tape[-1].value == tape2[-1].value == 32.0


def test_builtin_sum_works_on_traced_values() -> None:
    """Python's builtin sum() (starting from int 0) differentiates like repeated +."""
    g = tg.grad(lambda xs: sum(x * x for x in xs))([1.0, 2.0, 3.0])
    assert g == [2.0, 4.0, 6.0]
    assert tg.grad(lambda xs: sum(xs, 10.0))((1.0, 2.0)) == (1.0, 1.0)
    assert tg.value_and_grad(lambda xs: sum(xs))([1, 2]) == (3.0, [1.0, 1.0])


# -- exact hand-derived values ---------------------------------------------------------


@pytest.mark.parametrize(
    ("f", "x", "expected"),
    [
        (tg.tanh, 0.0, 1.0),
        (lambda x: x**3, 2.0, 12.0),
        (lambda x: x**3, 2, 12.0),
        (tg.sigmoid, 0.0, 0.25),
        (tg.relu, -1.0, 0.0),
        (tg.relu, 2.0, 1.0),
        (tg.relu, 0.0, 0.0),
        (abs, -3.0, -1.0),
        (abs, 3.0, 1.0),
        (abs, 0.0, 0.0),
        (tg.abs, -0.5, -1.0),
        (tg.exp, 0.0, 1.0),
        (tg.log, 2.0, 0.5),
        (tg.sqrt, 4.0, 0.25),
        (tg.sin, 0.0, 1.0),
        (tg.cos, 0.0, 0.0),
        (lambda x: -x, 7.0, -1.0),
        (lambda x: 1.0 / x, 2.0, -0.25),
        (lambda x: 3 - x, 1.0, -1.0),
        (lambda x: x**0.5, 9.0, 1.0 / 6.0),
        (lambda x: x**0, 5.0, 0.0),
        (lambda x: 2**x, 3.0, 8.0 * math.log(2.0)),
        (lambda x: x**x, 1.0, 1.0),
        (lambda x: tg.stop_gradient(x) * x, 3.0, 3.0),
    ],
)
def test_hand_derived_derivatives(f: Callable, x: float, expected: float) -> None:
    """A few derivatives known in closed form come out exactly (to rounding)."""
    g = tg.grad(f)(x)
    assert type(g) is float
    assert math.isclose(g, expected, rel_tol=1e-14, abs_tol=1e-15), (g, expected)


@pytest.mark.parametrize(
    ("f", "x", "expected"),
    [
        (tg.tan, 0.5, 1.0 / math.cos(0.5) ** 2),
        (tg.log1p, 1.0, 0.5),
        (tg.expm1, 1.0, math.e),
        (tg.softplus, 0.0, 0.5),
        (tg.softplus, 50.0, 1.0 / (1.0 + math.exp(-50.0))),
        (tg.log_sigmoid, 0.0, 0.5),
        (tg.log_sigmoid, -50.0, 1.0 / (1.0 + math.exp(-50.0))),
        (tg.erf, 0.0, 2.0 / math.sqrt(math.pi)),
        (tg.erf, 1.0, 2.0 / math.sqrt(math.pi) * math.exp(-1.0)),
        (tg.sign, -2.0, 0.0),
        (lambda x: x % 3.0, 7.5, 1.0),
        (lambda y: 7.5 % y, 2.0, -3.0),
        (lambda y: -7.5 % y, 2.0, 4.0),
        (lambda x: x // 2.0, 7.5, 0.0),
        (lambda x: tg.atan2(x, 2.0), 1.0, 0.4),
        (lambda x: tg.atan2(1.0, x), 2.0, -0.2),
        (lambda x: tg.maximum(x, 1.0), 2.0, 1.0),
        (lambda x: tg.maximum(x, 1.0), 0.0, 0.0),
        (lambda x: tg.maximum(x, 1.0), 1.0, 0.5),
        (lambda x: tg.minimum(x, 1.0), 0.0, 1.0),
        (lambda x: tg.minimum(x, 1.0), 1.0, 0.5),
        (lambda x: x.tanh() * x.exp(), 0.0, 1.0),
        (lambda x: x.relu() + x.sigmoid() + x.log(), 2.0,
         1.0 + math.exp(-2.0) / (1.0 + math.exp(-2.0)) ** 2 + 0.5),
        (lambda x: x * True + x * False, 3.0, 1.0),
        (lambda x: tg.where(x > 0.0, x * x, -x), 3.0, 6.0),
        (lambda x: tg.where(x > 0.0, x * x, -x), -3.0, -1.0),
    ],
)
def test_hand_derived_derivatives_of_newer_primitives(f: Callable, x: float, expected: float
                                                      ) -> None:
    """The newer table entries (and the micrograd-style methods) against closed forms."""
    g = tg.grad(f)(x)
    assert type(g) is float
    assert math.isclose(g, expected, rel_tol=1e-13, abs_tol=1e-15), (g, expected)


def test_pow_both_traced_hand_derived() -> None:
    """d/dx x**y = y x**(y-1) and d/dy x**y = x**y log x at x=2, y=3."""
    gx, gy = tg.grad(lambda x, y: x**y, argnums=(0, 1))(2.0, 3.0)
    assert gx == 12.0
    assert math.isclose(gy, 8.0 * math.log(2.0), rel_tol=1e-15)


def test_unary_minus_and_builtin_abs_in_an_expression() -> None:
    """-x and abs() compose with other primitives: d/dx abs(-x * 3) at x=-2 is -3."""
    assert tg.grad(lambda x: abs(-x * 3))(-2.0) == -3.0
    assert tg.grad(lambda x: -abs(x))(2.0) == -1.0
    assert tg.grad(lambda x: +x)(1.0) == 1.0


# -- the functions on plain numbers -----------------------------------------------------

MATH_REFERENCE: dict[str, Callable[[float], float]] = {
    "exp": math.exp,
    "log": math.log,
    "sqrt": math.sqrt,
    "tanh": math.tanh,
    "sin": math.sin,
    "cos": math.cos,
    "sigmoid": lambda x: 1.0 / (1.0 + math.exp(-x)),
    "relu": lambda x: max(x, 0.0),
    "abs": lambda x: float(builtins.abs(x)),
    "stop_gradient": float,
    "tan": math.tan,
    "log1p": math.log1p,
    "expm1": math.expm1,
    "erf": math.erf,
    "softplus": lambda x: math.log(1.0 + math.exp(x)),
    "log_sigmoid": lambda x: -math.log(1.0 + math.exp(-x)),
    "sign": lambda x: float((x > 0) - (x < 0)),
    "step": lambda x: 1.0 if x > 0 else 0.0,
}

POSITIVE_POINTS = [0.5, 1, 2, 3.25, 7]
PLAIN_CASES = [
    (name, x)
    for name in sorted(MATH_REFERENCE)
    for x in POSITIVE_POINTS + ([] if name in ("log", "sqrt", "log1p") else [-1.5, -2, 0])
]


@pytest.mark.parametrize(("name", "x"), PLAIN_CASES)
def test_function_on_plain_numbers_matches_math(name: str, x: float) -> None:
    """tg.<fn> on a plain float or int returns a float equal to what math computes."""
    result = getattr(tg, name)(x)
    assert type(result) is float
    expected = MATH_REFERENCE[name](x)
    if name in ("sigmoid", "softplus", "log_sigmoid"):  # ours avoid overflow and cancellation
        assert math.isclose(result, expected, rel_tol=1e-12)
    else:
        assert result == expected


@pytest.mark.parametrize(
    "prim", [p for p in UNARY if callable(getattr(tg, p.name, None))], ids=lambda p: p.name
)
def test_every_public_unary_function_accepts_ints(prim: tg.Primitive) -> None:
    """Every unary tg function of the table returns a float for an int in its domain."""
    lo, hi, away = domain(prim, 0)
    n = next(k for k in range(math.ceil(lo), math.floor(hi) + 1) if builtins.abs(k) >= away)
    result = getattr(tg, prim.name)(n)
    assert type(result) is float
    assert result == getattr(tg, prim.name)(float(n))


def test_power_sum_dot_on_plain_numbers() -> None:
    """tg.power, tg.sum and tg.dot on plain ints and floats return floats."""
    assert tg.power(2, 3) == 8.0 and type(tg.power(2, 3)) is float
    assert tg.power(2.0, 0.5) == math.sqrt(2.0)
    assert tg.sum([1, 2, 3]) == 6.0 and type(tg.sum([1, 2, 3])) is float
    assert tg.sum([]) == 0.0 and type(tg.sum([])) is float
    assert tg.dot([1, 2], [3, 4]) == 11.0 and type(tg.dot([1, 2], [3, 4])) is float


# -- comparisons and control flow -------------------------------------------------------

COMPARISONS = [operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne]


@pytest.mark.parametrize("cmp", COMPARISONS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(("a", "b"), [(1.0, 2.0), (2.0, 1.0), (1.5, 1.5), (3.0, 3)])
def test_comparisons_return_plain_bools(cmp: Callable, a: float, b: float) -> None:
    """Comparing traced values (with each other or with numbers, either side) gives a bool."""
    seen = {}

    def f(x: Any, y: Any) -> Any:
        seen["tt"] = cmp(x, y)
        seen["tc"] = cmp(x, b)
        seen["ct"] = cmp(a, y)
        return x * y

    tg.grad(f, argnums=(0, 1))(a, float(b))
    expected = cmp(a, b)
    for key, result in seen.items():
        assert type(result) is bool, key
        assert result == expected, key


@pytest.mark.parametrize(
    ("x", "y", "expected_max", "expected_min"),
    [(3.0, 1.0, (1.0, 0.0), (0.0, 1.0)), (-1.0, 2.0, (0.0, 1.0), (1.0, 0.0))],
)
def test_max_and_min_pick_the_right_branch(x: float, y: float, expected_max: tuple,
                                           expected_min: tuple) -> None:
    """grad of builtin max/min flows only into the chosen argument."""
    assert tg.grad(lambda a, b: max(a, b), argnums=(0, 1))(x, y) == expected_max
    assert tg.grad(lambda a, b: min(a, b), argnums=(0, 1))(x, y) == expected_min
    assert tg.grad(lambda a: max(a, 0.0))(x) == (1.0 if x > 0 else 0.0)


def test_if_and_while_inside_differentiated_function() -> None:
    """Python if/while on traced values take the branch of the current value."""

    def f(x: Any) -> Any:
        if x > 0:
            y = x * x
        else:
            y = -3.0 * x
        n = 0
        while y < 100.0:
            y = y * 2.0
            n += 1
        return y

    # x=3: y=9 -> doubled 4 times to 144 -> dy/dx = 2x * 16
    assert tg.grad(f)(3.0) == 96.0
    # x=-1: y=3 -> doubled 6 times to 192 -> dy/dx = -3 * 64
    assert tg.grad(f)(-1.0) == -192.0


def test_truthiness_and_sorting_of_traced_values() -> None:
    """bool(x) is x != 0, and sorted() orders traced values by value."""

    def f(xs: list) -> Any:
        ordered = sorted(xs)
        first = ordered[0] if xs[0] else ordered[-1]
        return first * 10.0 + ordered[1]

    assert tg.grad(f)([3.0, 1.0, 2.0]) == [0.0, 10.0, 1.0]
    assert tg.grad(f)([0.0, 1.0, 2.0]) == [0.0, 1.0, 10.0]
