"""The classes of silently wrong answers an expert found, each pinned by tests of the class.

1. Control flow that nothing recorded: user code catching a domain error under ``jit``.
2. Rules that took a shortcut returning a constant, dropping a dependence one level up.
3. Rules that raised (or shortcut to a constant) where the true derivative is infinite.
4. Zero derivatives that turned an infinite adjoint into NaN (stop_gradient, sign, //).
5. ``custom_vjp`` rules that held at the first level only, or closed over a traced value.
6. NaN swallowed by a primitive or a loss.
7. Operands of different nesting levels meeting in a rule.
8. A zero meeting an infinity in the chain rule: a traced zero adjoint skipped (its own
   derivative lost one level up), and a zero partial times an infinite adjoint or
   tangent giving NaN where the function is locally constant.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable

import pytest
from conftest import FEW, central_diff
from hypothesis import given
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad import nn

NAN = float("nan")
INF = float("inf")


def same(a: float, b: float) -> bool:
    """Equal floats, NaN equal to NaN and infinities by sign."""
    return (math.isnan(a) and math.isnan(b)) or a == b or math.isclose(a, b, rel_tol=1e-12)


# -- 1. exceptions as control flow under jit ----------------------------------------------


def safe_recip(x: Any) -> Any:
    try:
        return 1.0 / x
    except ZeroDivisionError:
        return 0.0 * x


def safe_log(x: Any) -> Any:
    try:
        return tg.log(x)
    except ValueError:
        return -x


def safe_sqrt(x: Any) -> Any:
    try:
        return tg.sqrt(x) * x
    except ValueError:
        return x * x


def safe_exp(x: Any) -> Any:
    try:
        return tg.exp(x)
    except OverflowError:
        return 3.0 * x


CAUGHT = [
    (safe_recip, [0.0, 2.0, 0.0, -4.0]),
    (safe_log, [-1.0, 2.0, 0.0, 5.0, -3.0]),
    (safe_sqrt, [-1.0, 4.0, -2.0, 9.0]),
    (safe_exp, [1000.0, 1.0, 800.0, -2.0]),
]


@pytest.mark.parametrize(("f", "points"), CAUGHT, ids=lambda v: getattr(v, "__name__", ""))
def test_jit_rechecks_a_caught_domain_error(f: Callable, points: list) -> None:
    """A caught exception is a branch: jit replays a tape only where it would raise again."""
    fast = tg.jit(f)
    for x in points:
        assert fast(x) == f(x), (f.__name__, x)


@pytest.mark.parametrize(("f", "points"), CAUGHT, ids=lambda v: getattr(v, "__name__", ""))
def test_jit_of_grad_rechecks_a_caught_domain_error(f: Callable, points: list) -> None:
    """The same under jit(grad(f)) and jit(value_and_grad(f)): the error is raised by the
    inner trace's operation on values of the jit trace."""
    fast = tg.jit(tg.grad(f))
    both = tg.jit(tg.value_and_grad(f))
    for x in points:
        assert fast(x) == tg.grad(f)(x), (f.__name__, x)
        assert both(x) == tg.value_and_grad(f)(x), (f.__name__, x)


def test_the_guard_of_a_caught_error_is_in_the_source() -> None:
    """The generated code re-raises the operation and fails its guard if it now succeeds."""
    source = tg.jit(safe_recip).source(0.0)
    assert "except ZeroDivisionError" in source and "raise _GuardFailed" in source


def test_an_uncaught_domain_error_still_raises_under_jit() -> None:
    """A domain error the user does not catch reaches the user from a jitted function."""
    fast = tg.jit(lambda x: tg.log(x) * 2.0)
    assert fast(1.0) == 0.0
    with pytest.raises(ValueError, match="tapegrad.log"):
        fast(-1.0)
    assert fast(math.e) == 2.0


# -- 2. no shortcut drops a dependence ----------------------------------------------------


def test_hessian_of_pow_at_zero_exponent_is_symmetric() -> None:
    """d2/dxdy x**y at (3, 0) is 1/3 from both sides (the rule's y == 0 shortcut lost it)."""
    (hxx, hxy), (hyx, hyy) = tg.hessian(lambda p: p[0] ** p[1])((3.0, 0.0))
    assert hxx == 0.0
    assert math.isclose(hxy, 1.0 / 3.0, rel_tol=1e-15) and hxy == hyx
    assert math.isclose(hyy, math.log(3.0) ** 2, rel_tol=1e-15)


@FEW
@given(x=st.floats(0.3, 3.0), y=st.sampled_from([0.0, 1.0, 2.0, 0.5, -1.0]))
def test_pow_hessian_is_symmetric_and_matches_finite_differences(x: float, y: float) -> None:
    """At the exponents where rules like to take shortcuts (0, 1, 2), the mixed second
    derivative of x**y is symmetric and equals the difference quotient of d/dy."""
    (_, hxy), (hyx, _) = tg.hessian(lambda p: p[0] ** p[1])((x, y))
    dy = lambda u: tg.grad(lambda v: u**v)(y)
    # Forward-over-reverse computes the two mixed entries along different paths, so they
    # agree to rounding (about 1e-12 relative at x = e, y = -1), not bit for bit.
    assert math.isclose(hxy, hyx, rel_tol=1e-10)
    assert math.isclose(hxy, central_diff(dy, x), rel_tol=1e-6, abs_tol=1e-8)


# -- 3. derivatives at the edges are IEEE values, never exceptions or stale constants ------


def test_sqrt_higher_derivatives_at_zero_are_infinite() -> None:
    """sqrt'(0) = inf, sqrt''(0) = -inf, sqrt'''(0) = inf: the rule keeps its dependence."""
    assert tg.grad(tg.sqrt)(0.0) == INF
    assert tg.grad(tg.grad(tg.sqrt))(0.0) == -INF
    assert tg.grad(tg.grad(tg.grad(tg.sqrt)))(0.0) == INF


@pytest.mark.parametrize(("f", "x", "expected"), [
    (lambda x: x**-0.5, 1e-300, -INF),          # y * x**(y - 1) overflows: -inf, not OverflowError
    (lambda x: x**0.5, 0.0, INF),
    (lambda x: x**1.5, 0.0, 0.0),
    (lambda x: x**1.0, 0.0, 1.0),
    (lambda x: x**0.0, 0.0, 0.0),
    (lambda y: 0.0**y, 2.0, 0.0),
    (lambda y: (-2.0) ** y, 2.0, NAN),            # no real derivative in y for a negative base
    (lambda x: x**-1.0, 1e-308, -INF),            # -x**-2 overflows while x**-1 does not
])
def test_pow_derivative_at_the_edges(f: Callable, x: float, expected: float) -> None:
    """The derivative of ** where it is infinite, zero or undefined: an IEEE value."""
    try:
        g = tg.grad(f)(x)
    except OverflowError:
        pytest.fail("the rule of ** raised OverflowError")
    assert same(g, expected), g


def test_pow_overflow_of_the_value_is_still_an_error() -> None:
    """The value of ** overflowing raises OverflowError as math.pow does; only rules are IEEE."""
    with pytest.raises(OverflowError, match="tapegrad.pow"):
        tg.grad(lambda x: x**400.0)(10.0)
    with pytest.raises(OverflowError):
        tg.power(10.0, 400.0)


@pytest.mark.parametrize("f", [
    lambda x: tg.sqrt(x),
    lambda x: x**0.5,
    lambda x: tg.sqrt(x) * x,
])
def test_jit_of_derivatives_at_an_edge_agrees_with_eager(f: Callable) -> None:
    """A rule that met a domain edge at trace time (or only later) is written in its IEEE
    form in the generated code: jit agrees with eager on both sides of the edge."""
    for order in (1, 2):
        g = f
        for _ in range(order):
            g = tg.grad(g)
        fast = tg.jit(g)
        for x in (4.0, 0.0, 2.0, 0.0):
            assert same(fast(x), g(x)), (order, x)


# -- 4. zero derivatives have no edge -----------------------------------------------------


@pytest.mark.parametrize(("f", "expected"), [
    (lambda x: tg.sqrt(tg.stop_gradient(x)) + x, 1.0),
    (lambda x: tg.sqrt(tg.sign(x) * 0.0) + x, 1.0),
    (lambda x: tg.sqrt(x // 1.0) + x, 1.0),
    (lambda x: tg.sqrt(tg.step(x)) + x, 1.0),
])
def test_a_zero_derivative_blocks_an_infinite_adjoint(f: Callable, expected: float) -> None:
    """An infinite adjoint reaching stop_gradient, sign, step or // must not become
    inf * 0 = NaN on the other side: those records have no edge in the sweep."""
    assert tg.grad(f)(0.0) == expected
    assert tg.jvp(f, (0.0,), (1.0,))[1] == expected
    assert tg.jit(tg.grad(f))(0.0) == expected


def test_zero_derivative_records_are_recorded_for_jit() -> None:
    """sign, step and // are records (so jit recomputes them), not baked-in constants."""
    f = lambda x: tg.sign(x) * x + (x // 1.0) * x
    fast = tg.jit(tg.grad(f))
    for x in (2.5, -1.5, 0.25, -3.0):
        assert fast(x) == tg.grad(f)(x), x
    assert fast.traces == 1


# -- 5. custom_vjp at every level ---------------------------------------------------------


def _cube_with_rule() -> tg.custom_vjp:
    """x**3 with a deliberately different rule (10 x), so that one can see which is used."""

    @tg.custom_vjp
    def cube(x: Any) -> Any:
        return x**3

    cube.defvjp(lambda x: (x**3, x), lambda r, g: (10.0 * r * g,))
    return cube


@pytest.mark.parametrize("outer", [
    lambda f: (lambda x: tg.value_and_grad(f)(x)[0]),
    lambda f: (lambda x: tg.vjp(f, x)[0]),
    lambda f: (lambda x: tg.jvp(f, (x,), (1.0,))[0]),
    lambda f: (lambda x: tg.grad(lambda y: f(y) * 1.0)(x) * 0.0 + f(x)),
], ids=["value_and_grad", "vjp", "jvp", "grad"])
def test_custom_rule_holds_one_level_up(outer: Callable) -> None:
    """Differentiating the output of an inner transform of a custom_vjp function uses the
    user's rule (10 x = 20 at x = 2), not fwd's own operations (3 x**2 = 12)."""
    cube = _cube_with_rule()
    assert tg.grad(outer(cube))(2.0) == 20.0


def test_custom_rule_second_derivative_is_the_rule_differentiated() -> None:
    """grad(grad(f)) of a custom_vjp function differentiates its bwd: d/dx (10 x) = 10."""
    cube = _cube_with_rule()
    assert tg.grad(tg.grad(cube))(2.0) == 10.0
    assert tg.hessian(cube)(2.0) == 10.0


def test_custom_vjp_fwd_closing_over_a_traced_value_is_an_error() -> None:
    """fwd using a traced variable it was not given raises, naming the fix (JAX does too)."""

    def f(y: Any) -> Any:
        @tg.custom_vjp
        def times_y(x: Any) -> Any:
            return x * y

        times_y.defvjp(lambda x: (x * y, None), lambda r, g: (g * y,))
        return times_y(y * 1.0)

    with pytest.raises(tg.CustomVJPError, match="as an argument"):
        tg.grad(f)(2.0)


def test_custom_vjp_bwd_closing_over_a_traced_value_is_an_error() -> None:
    """bwd using a traced variable of the finished trace raises CustomVJPError, not a
    generic escaped-tracer error."""

    def f(y: Any) -> Any:
        @tg.custom_vjp
        def double(x: Any) -> Any:
            return x * 2.0

        double.defvjp(lambda x: (x * 2.0, None), lambda r, g: (g * y,))
        return double(y)

    with pytest.raises(tg.CustomVJPError, match="closes over"):
        tg.grad(f)(2.0)


# -- 6. NaN in, NaN out -------------------------------------------------------------------

NAN_CALLS = [(p.name, getattr(tg, p.name)) for p in tg.PRIMITIVES
             if p.arity == 1 and callable(getattr(tg, p.name, None))]


@pytest.mark.parametrize(("name", "fn"), NAN_CALLS, ids=[n for n, _ in NAN_CALLS])
def test_every_unary_primitive_propagates_nan(name: str, fn: Callable) -> None:
    """f(NaN) is NaN on floats and traced; so is its derivative where it has one."""
    assert math.isnan(fn(NAN))
    value, g = tg.value_and_grad(fn)(NAN)
    assert math.isnan(value)
    prim = next(p for p in tg.PRIMITIVES if p.name == name)
    assert math.isnan(g) if prim.differentiable else g == 0.0


@pytest.mark.parametrize("op", [
    lambda x, y: x + y, lambda x, y: x - y, lambda x, y: x * y, lambda x, y: x / y,
    lambda x, y: x**y, lambda x, y: x % y, lambda x, y: tg.atan2(x, y),
    lambda x, y: tg.maximum(x, y), lambda x, y: tg.minimum(x, y),
])
@pytest.mark.parametrize("where_nan", [0, 1])
def test_every_binary_primitive_propagates_nan(op: Callable, where_nan: int) -> None:
    """A NaN operand on either side gives a NaN value, and a NaN derivative downstream:
    d/du of exp(op(x, y)) * u is NaN whichever operand u is. (A partial itself need not be
    NaN: d(x + y)/dy is 1 whatever x is.)"""
    args = [1.5, 2.0]
    args[where_nan] = NAN
    assert math.isnan(op(*args))
    value, grads = tg.value_and_grad(lambda x, y: tg.sin(op(x, y)) * (x + y),
                                     argnums=(0, 1))(*args)
    assert math.isnan(value)
    assert math.isnan(grads[0]) and math.isnan(grads[1])


@pytest.mark.parametrize(("loss", "args"), [
    (nn.mse, ([NAN, 1.0], [0.0, 1.0])),
    (nn.sum_squared_error, ([1.0, NAN], [0.0, 1.0])),
    (nn.hinge_loss, ([NAN, 1.0], [1, -1])),
    (nn.binary_cross_entropy, ([NAN, 1.0], [1, 0])),
    (nn.softmax_cross_entropy, ([[NAN, 1.0], [0.0, 1.0]], [0, 1])),
    (nn.softmax_cross_entropy, ([[1.0, NAN], [0.0, 1.0]], [0, 1])),
    (nn.l2, (((1.0, NAN), 2.0),)),
])
def test_every_loss_propagates_nan(loss: Callable, args: tuple) -> None:
    """A NaN prediction gives a NaN loss and a NaN gradient, never a quiet number."""
    assert math.isnan(loss(*args))
    value, g = tg.value_and_grad(loss)(*args)
    assert math.isnan(value)
    assert any(math.isnan(v) for v in tg.tree_leaves(g))


# -- 7. operands of different nesting levels ----------------------------------------------


def test_pow_across_nesting_levels() -> None:
    """x ** p with x of the inner trace and p of the outer: d/dp [p * 2**(p-1)] at p = 3."""
    value = tg.grad(lambda p: tg.grad(lambda x: x**p)(2.0))(3.0)
    assert math.isclose(value, 4.0 + 12.0 * math.log(2.0) - 4.0 + 4.0, rel_tol=1e-15)
    assert math.isclose(value, 12.317766166719343, rel_tol=1e-15)


@pytest.mark.parametrize("op", [
    lambda x, p: x**p, lambda x, p: p**x, lambda x, p: x % p, lambda x, p: tg.atan2(x, p),
    lambda x, p: tg.maximum(x, p * 0.1), lambda x, p: x // p + x * p, lambda x, p: x / p,
])
def test_every_binary_primitive_across_nesting_levels(op: Callable) -> None:
    """d/dp of d/dx op(x, p), with x inner and p outer, matches finite differences of the
    inner derivative in p (every binary table entry meets operands of two levels)."""
    inner = lambda p: tg.grad(lambda x: op(x, p))(1.7)
    got = tg.grad(inner)(2.3)
    assert math.isclose(got, central_diff(inner, 2.3), rel_tol=1e-6, abs_tol=1e-8)


# -- 8. a zero meeting an infinity in the chain rule ---------------------------------------
# The rule (tapegrad.tape.SELECT): a product g * d in the chain rule is IEEE arithmetic, so
# 0 * inf is NaN: the limit it stands for can be anything. A zero sends nothing only where
# it is structural: an adjoint nothing contributed to, a kink's zero partial (relu below 0,
# maximum's loser), a constant factor 0 (x * 0.0), the constant exponent 0. A "zero wins"
# rule for every zero, tried on the way, turned indeterminate forms into silently wrong
# finite numbers; those cases are here too.


_square = tg.custom_vjp(lambda x: x * x)
_square.defvjp(lambda x: (x * x, x), lambda x, g: (2.0 * x * g,))


def _sqrt_times(p: Any) -> Any:
    return tg.sqrt(p[0]) * p[1]


def _every_mode(f: Callable, x: float) -> dict[str, float]:
    fast = tg.jit(tg.grad(f))
    with contextlib.suppress(ValueError, ZeroDivisionError):
        fast(x + 5.0)  # traced elsewhere first
    return {"grad": tg.grad(f)(x), "jacrev": tg.jacrev(f)(x), "jacfwd": tg.jacfwd(f)(x),
            "jvp": tg.jvp(f, (x,), (1.0,))[1], "jit(grad)": fast(x)}


def test_a_traced_zero_adjoint_keeps_its_derivative() -> None:
    """sqrt(x) * y at (0, 0): d/dx = y / (2 sqrt(x)) is 0 * inf, NaN; d/dy d/dx = inf (it was
    0 at one point in this work: a traced zero adjoint skipped drops d/dy); d2/dy2 = 0."""
    for h in (tg.hessian(_sqrt_times)((0.0, 0.0)),
              tg.jacfwd(tg.jacrev(_sqrt_times))((0.0, 0.0)),
              tg.jacrev(tg.jacrev(_sqrt_times))((0.0, 0.0))):
        assert math.isnan(h[0][0]) and h[0][1] == h[1][0] == INF and h[1][1] == 0.0, h
    # away from 0, the usual values (central differences agree)
    h = tg.hessian(_sqrt_times)((4.0, 3.0))
    assert h[0][1] == h[1][0] == 0.25
    assert h[0][0] == pytest.approx(central_diff(lambda x: 3.0 / (2.0 * math.sqrt(x)), 4.0))


@pytest.mark.parametrize(("f", "x", "expected"), [
    (lambda x: tg.sqrt(tg.relu(x)), -1.0, 0.0),       # relu' = 0 meets sqrt' = inf
    (lambda x: tg.sqrt(tg.relu(x)) + x, -2.0, 1.0),
    (lambda x: tg.sqrt(x * 0.0 + 0.0) * 0.0 + x, 3.0, 1.0),  # constant factors 0
    (lambda x: tg.sqrt(tg.maximum(x, 0.0)), -1.0, 0.0),  # maximum's weight 0
    (lambda x: tg.sqrt(x) * 0.0, 0.0, 0.0),           # a constant factor after sqrt
    (lambda x: 0.0 * tg.sqrt(x), 0.0, 0.0),
    (lambda x: tg.sqrt(x ** 0.0 - 1.0) + x, 2.0, 1.0),  # the constant exponent 0
    (lambda x: x + tg.sqrt(tg.stop_gradient(x)), 0.0, 1.0),  # no edge at all
])
def test_a_structural_zero_sends_nothing_in_every_mode(f: Callable, x: float,
                                                      expected: float) -> None:
    """Where f is locally constant along a path, a zero on it sends nothing, even against
    an infinite slope beside it: the same number in reverse, forward and compiled modes."""
    got = _every_mode(f, x)
    assert all(v == expected for v in got.values()), got


@pytest.mark.parametrize(("f", "x", "truth"), [
    (lambda x: tg.sqrt(x) * x, 0.0, 0.0),              # x ** 1.5: 2 x / ... 0 * inf
    (lambda x: (x ** 3.0) ** (1.0 / 3.0), 0.0, 1.0),    # 3 x**2 = 0 meets inf: truth 1
    (lambda x: (x ** (1.0 / 3.0)) ** 2.0, 0.0, INF),    # 2 v = 0 meets inf: truth inf
    (lambda x: x ** 0.5 * (x - x), 0.0, 0.0),
    (lambda x: tg.sqrt(16.0 * _square(x)), 0.0, 4.0),  # a custom rule's 2 x g: 0 * inf
])
def test_a_computed_zero_meeting_an_infinity_is_nan_in_every_mode(f: Callable, x: float,
                                                                 truth: float) -> None:
    """A zero computed from traced values (2 x at 0, x - x) times an infinite partial is an
    indeterminate form: its true value varies (0, 1, inf, 4 here), so every mode says NaN,
    never a finite number that may be wrong."""
    got = _every_mode(f, x)
    assert all(math.isnan(v) for v in got.values()), (got, truth)


def test_second_derivatives_through_an_indeterminate_form_are_nan() -> None:
    """sqrt(x**4) = x**2 has f''(0) = 2; its chain rule meets 0 * inf: NaN, not 0."""
    f = lambda x: tg.sqrt(x ** 4.0)
    assert math.isnan(tg.grad(tg.grad(f))(0.0))
    assert math.isnan(tg.hessian(f)(0.0))
    assert tg.grad(tg.grad(f))(1.5) == pytest.approx(2.0)


@pytest.mark.parametrize("mode", ["grad", "jacfwd", "jvp", "jit(grad)"])
def test_nan_inputs_still_give_nan_derivatives(mode: str) -> None:
    """A NaN input reaches the derivative through NaN partials (relu'(nan) is nan), in
    every mode; only a structural zero (relu below 0: a constant path) sends nothing."""
    f = lambda x: tg.relu(x) * x + tg.sqrt(tg.relu(-x))
    g = {"grad": tg.grad(f), "jacfwd": tg.jacfwd(f), "jit(grad)": tg.jit(tg.grad(f)),
         "jvp": lambda x: tg.jvp(f, (x,), (1.0,))[1]}[mode]
    assert math.isnan(g(NAN))
    assert g(2.0) == 4.0
    # relu(x) * nan at -1: the value is nan, the path through relu is constant: 0
    h = lambda x: tg.relu(x) * NAN + x
    assert math.isnan(h(-1.0))
    d = {"grad": tg.grad(h), "jacfwd": tg.jacfwd(h), "jit(grad)": tg.jit(tg.grad(h)),
         "jvp": lambda x: tg.jvp(h, (x,), (1.0,))[1]}[mode]
    assert d(-1.0) == 1.0


def test_chain_mul_is_the_convention() -> None:
    """tg.chain_mul is the product nested sweeps use for a kink's traced partial: an exact
    zero wins over inf and NaN, and its derivatives are those of x * y."""
    assert tg.chain_mul(0.0, INF) == 0.0 and tg.chain_mul(-INF, 0.0) == 0.0
    assert tg.chain_mul(NAN, 0.0) == 0.0 and math.isnan(tg.chain_mul(NAN, 1.0))
    assert tg.chain_mul(INF, 2.0) == INF and tg.chain_mul(-3.0, 2.0) == -6.0
    assert tg.grad(lambda y: tg.chain_mul(y, INF))(0.0) == INF
    assert tg.grad(tg.chain_mul, argnums=(0, 1))(2.0, 5.0) == (5.0, 2.0)


@given(st.floats(-3.0, 3.0), st.floats(-3.0, 3.0))
@FEW
def test_jit_grad_and_jvp_agree_with_grad_near_kinks_and_zeros(x: float, y: float) -> None:
    """Random points, with exact zeros and kinks mixed in: reverse, forward and compiled
    first derivatives of a function with sqrt after relu agree to rounding."""
    f = lambda p: tg.sqrt(tg.relu(p[0])) * p[1] + tg.sqrt(abs(p[1])) * tg.relu(-p[0])
    for point in ((x, y), (0.0, y), (x, 0.0), (0.0, 0.0)):
        rev = tg.grad(f)(point)
        fwd = tg.jacfwd(f)(point)
        fast = tg.jit(tg.grad(f))(point)
        for a, b, c in zip(rev, fwd, fast):
            assert same(a, b) and same(a, c), (point, rev, fwd, fast)


@pytest.mark.parametrize("items", [
    lambda x: [1e-08, x, 1.0],
    lambda x: [x, 1e-08, 1.0, x],
    lambda x: [1.0, x * x, 1e-16, -1.0],
])
def test_tg_sum_adds_in_order_whatever_is_traced(items: Callable) -> None:
    """tg.sum's value is the left-to-right sum of its items, bit for bit, traced or not and
    compiled or not (it added the traced items first, so 1e-8 + x + 1.0 at x = -1 changed
    in the 9th digit once x was traced)."""
    f = lambda x: tg.sum(items(x))
    plain = f(-1.0)
    assert tg.value_and_grad(f)(-1.0)[0] == plain
    assert tg.jvp(f, (-1.0,), (1.0,))[0] == plain
    fast = tg.jit(tg.value_and_grad(f))
    fast(2.0)
    assert fast(-1.0)[0] == plain
    assert len(tg.trace(f)(-1.0)) <= 3  # still one record for the sum


# -- 9. the traced rule and the float rule agree at the edges ------------------------------
# A first derivative is computed by the float rule eagerly, and by the traced rule under
# jit and one level down in a nested derivative. sqrt's traced rule gave -inf at -0.0
# (0.5 / -0.0 in IEEE arithmetic) where the float rule gives +inf (found by make fuzz).

EDGES = [0.0, -0.0, 1e-310, -1e-310, 1.0, -1.0, INF, -INF, NAN, 1e300]
UNARY_CALLS = [(p.name, getattr(tg, p.name, None) or (lambda x: -x)) for p in tg.PRIMITIVES
               if p.arity == 1]


def _first_derivative_every_way(fn: Callable, x: float) -> dict[str, Any]:
    """fn'(x) by the float rule (grad), the traced rule (the value of an inner grad under an
    outer one; jit traced elsewhere first) and forward mode; an error's type instead."""
    ways: dict[str, Callable[[], Any]] = {
        "grad": lambda: tg.grad(fn)(x),
        "jvp": lambda: tg.jvp(fn, (x,), (1.0,))[1],
        "nested": lambda: tg.value_and_grad(lambda y: tg.grad(fn)(y))(x)[0],
        "jit": lambda: _jit_elsewhere_first(fn, x),
    }
    out: dict[str, Any] = {}
    for name, way in ways.items():
        try:
            out[name] = way()
        except (ValueError, ZeroDivisionError, OverflowError) as e:
            out[name] = type(e)
    return out


def _jit_elsewhere_first(fn: Callable, x: float) -> Any:
    fast = tg.jit(tg.grad(fn))
    try:
        fast(0.5)
    except (ValueError, ZeroDivisionError, OverflowError):
        pass
    return fast(x)


@pytest.mark.parametrize("x", EDGES)
@pytest.mark.parametrize(("name", "fn"), UNARY_CALLS)
def test_every_unary_rule_agrees_with_itself_at_the_edges(name: str, fn: Callable,
                                                          x: float) -> None:
    """At signed zeros, subnormals, infinities and NaN, every way of computing a first
    derivative gives the same value (the same sign of an infinity) or the same error."""
    got = _first_derivative_every_way(fn, x)
    first = got["grad"]
    for v in got.values():
        if isinstance(first, type) or isinstance(v, type):
            assert v is first, (name, x, got)
        else:
            assert same(v, first), (name, x, got)


@pytest.mark.parametrize(("x", "y"), [(a, b) for a in (0.0, -0.0, 2.0, -2.0, INF)
                                      for b in (0.0, -0.0, 0.5, -1.0, 2.0)])
@pytest.mark.parametrize("op", [tg.power, tg.atan2, tg.maximum, tg.minimum, tg.chain_mul,
                                lambda a, b: a * b, lambda a, b: a % b if b else a])
def test_every_binary_rule_agrees_with_itself_at_the_edges(op: Callable, x: float,
                                                           y: float) -> None:
    """The same for both partials of the binary primitives."""
    for argnum in (0, 1):
        fn = (lambda a, y=y: op(a, y)) if argnum == 0 else (lambda b, x=x: op(x, b))
        got = _first_derivative_every_way(fn, (x, y)[argnum])
        first = got["grad"]
        for v in got.values():
            if isinstance(first, type) or isinstance(v, type):
                assert v is first, (argnum, x, y, got)
            else:
                assert same(v, first), (argnum, x, y, got)


@pytest.mark.parametrize("mode", ["grad(grad)", "hessian", "jacfwd(jacrev)", "jacrev(jacfwd)",
                                  "jit(hessian)"])
@pytest.mark.parametrize(("f", "x", "expected"), [
    (lambda x: tg.sqrt(abs(tg.dot([x, x, x], [x, x, x])) * 16.0), 0.0, 0.0),  # found by fuzz
    (lambda x: tg.sqrt(tg.relu(x)), -1.0, 0.0),
    (lambda x: tg.sqrt(tg.relu(x)) + x * x, -1.0, 2.0),
    (lambda x: tg.sqrt(tg.maximum(x, 0.0)) * 3.0, -2.0, 0.0),
    (lambda x: abs(tg.sqrt(x)), 0.0, 0.0),  # the kink before the infinity (found by fuzz)
])
def test_second_derivatives_follow_the_zero_convention(mode: str, f: Callable, x: float,
                                                       expected: float) -> None:
    """One level down, a kink's zero partial (a traced zero: abs' and relu' are sign and
    step records there) meets sqrt's infinite partial: eagerly the kink's zero is seen
    and gets no edge; under jit it is multiplied with chain_mul (an exact zero wins), and
    a NaN that remains is answered by eager code. So the second derivative is 0, as the
    first is (it was NaN)."""
    if mode == "grad(grad)":
        got = tg.grad(tg.grad(f))(x)
    elif mode == "hessian":
        got = tg.hessian(f)(x)
    elif mode == "jacfwd(jacrev)":
        got = tg.jacfwd(tg.jacrev(f))(x)
    elif mode == "jacrev(jacfwd)":
        got = tg.jacrev(tg.jacfwd(f))(x)
    else:
        fast = tg.jit(tg.hessian(f))
        fast(x + 5.25)
        got = fast(x)
    assert got == expected


def test_a_zero_component_of_a_direction_is_no_tangent() -> None:
    """jvp along x1 of a function whose x0 path has a NaN or infinite partial: x0's zero
    tangent is no tangent at all (the direction has no x0 component), so the result is
    what reverse mode says for x1 (found by make fuzz: it was NaN)."""
    sq = tg.custom_vjp(lambda x: x * x)
    sq.defvjp(lambda x: (x * x, x), lambda x, g: (2.0 * x * g,))
    for f in (lambda a, b: sq(a) + 3.0 * b, lambda a, b: tg.sqrt(a) + 3.0 * b):
        for a in (NAN, 0.0):
            assert tg.jvp(f, (a, 1.0), (0.0, 1.0))[1] == 3.0
            assert tg.grad(f, argnums=1)(a, 1.0) == 3.0
            assert tg.jacfwd(f, argnums=1)(a, 1.0) == 3.0


def test_a_flat_rule_zero_is_plain_one_level_up() -> None:
    """d/dy 0 ** y is 0 (0 ** y is flat in y); the rule returns a plain 0, not a traced
    0 * out, so one level up it is a constant factor, not a value that NaN can reach
    (found by make fuzz: the Hessian of (-2) ** (0 ** (2 x)) at 0 was NaN, the oracle 0)."""
    f = lambda x: (-2.0) ** (0.0 ** (x + x))
    assert math.isnan(tg.grad(f)(0.0))  # d/dv (-2) ** v is NaN: a negative base
    assert tg.hessian(f)(0.0) == 0.0
    assert tg.hessian(lambda p: p[0] ** p[1])((0.0, 2.0)) == ((2.0, 0.0), (0.0, 0.0))
