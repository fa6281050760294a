"""The reference implementation (tapegrad/reference.py) against hand-derived derivatives.

The reference is the oracle of tests/test_oracle.py, so it is checked here on its
own: closed-form derivatives, tapegrad's conventions at kinks and edges, domain
errors, nesting, and central differences.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import FEW, central_diff, fd_close, floats
from hypothesis import given

from tapegrad import reference as ref
from tapegrad.reference import grad, value_and_grad

X = 0.7
# (function, point, f'(x), f''(x)) worked out by hand.
DERIVATIVES: list[tuple[str, Callable[[Any], Any], float, float, float]] = [
    ("neg", lambda x: -x, X, -1.0, 0.0),
    ("abs of negative", abs, -X, -1.0, 0.0),
    ("exp", ref.exp, X, math.exp(X), math.exp(X)),
    ("log", ref.log, X, 1 / X, -1 / X**2),
    ("sqrt", ref.sqrt, X, 0.5 / math.sqrt(X), -0.25 * X**-1.5),
    ("tanh", ref.tanh, X, 1 - math.tanh(X) ** 2,
     -2 * math.tanh(X) * (1 - math.tanh(X) ** 2)),
    ("sigmoid", ref.sigmoid, X, math.exp(-X) / (1 + math.exp(-X)) ** 2,
     math.exp(-X) * (math.exp(-X) - 1) / (1 + math.exp(-X)) ** 3),
    ("relu", ref.relu, X, 1.0, 0.0),
    ("sin", ref.sin, X, math.cos(X), -math.sin(X)),
    ("cos", ref.cos, X, -math.sin(X), -math.cos(X)),
    ("x + 3", lambda x: x + 3.0, X, 1.0, 0.0),
    ("3 - x", lambda x: 3.0 - x, X, -1.0, 0.0),
    ("x * x", lambda x: x * x, X, 2 * X, 2.0),
    ("1 / x", lambda x: 1.0 / x, X, -1 / X**2, 2 / X**3),
    ("x / 4", lambda x: x / 4.0, X, 0.25, 0.0),
    ("x ** 3", lambda x: x**3, X, 3 * X**2, 6 * X),
    ("x ** -1.5", lambda x: x**-1.5, X, -1.5 * X**-2.5, 3.75 * X**-3.5),
    ("2 ** x", lambda x: 2.0**x, X, 2**X * math.log(2), 2**X * math.log(2) ** 2),
    ("x ** x", lambda x: x**x, X, X**X * (math.log(X) + 1),
     X**X * ((math.log(X) + 1) ** 2 + 1 / X)),
    ("sum", lambda x: ref.sum([x, x * x, 2.0]), X, 1 + 2 * X, 2.0),
    ("dot", lambda x: ref.dot([x, 3.0], [x, x]), X, 2 * X + 3, 2.0),
    ("stop_gradient", lambda x: x * ref.stop_gradient(x), X, X, 0.0),
]


@pytest.mark.parametrize(("name", "f", "x", "d1", "d2"), DERIVATIVES,
                         ids=[d[0] for d in DERIVATIVES])
def test_first_and_second_derivatives_by_hand(name: str, f: Callable, x: float, d1: float,
                                              d2: float) -> None:
    """grad and grad(grad) equal the closed forms to rounding."""
    assert math.isclose(grad(f)(x), d1, rel_tol=1e-13, abs_tol=1e-15)
    assert math.isclose(grad(grad(f))(x), d2, rel_tol=1e-12, abs_tol=1e-14)


def test_third_derivative_of_tanh_and_sqrt() -> None:
    """grad three times: tanh''' = -2 (1 - t^2)(1 - 3 t^2); sqrt''' = 3/8 x^-2.5."""
    t = math.tanh(X)
    assert math.isclose(grad(grad(grad(ref.tanh)))(X), -2 * (1 - t * t) * (1 - 3 * t * t),
                        rel_tol=1e-12)
    assert math.isclose(grad(grad(grad(ref.sqrt)))(X), 0.375 * X**-2.5, rel_tol=1e-12)


@pytest.mark.parametrize(("f", "x", "y", "dx", "dy"), [
    (lambda x, y: x * y, 2.0, 3.0, 3.0, 2.0),
    (lambda x, y: x / y, 2.0, 4.0, 0.25, -0.125),
    (lambda x, y: x - y, 2.0, 4.0, 1.0, -1.0),
    (lambda x, y: x ** y, 2.0, 3.0, 12.0, 8.0 * math.log(2.0)),
    (lambda x, y: ref.dot([x, y], [y, y]), 2.0, 3.0, 3.0, 8.0),
])
def test_binary_operations_with_both_operands_traced(f: Callable, x: float, y: float, dx: float,
                                                     dy: float) -> None:
    """argnums=(0, 1) gives both partial derivatives."""
    gx, gy = grad(f, argnums=(0, 1))(x, y)
    assert math.isclose(gx, dx, rel_tol=1e-14) and math.isclose(gy, dy, rel_tol=1e-14)


def test_tapegrads_conventions_at_kinks_and_edges() -> None:
    """relu'(0) = abs'(0) = 0, sqrt'(0) = inf, d/dx x**y = 0 at (0, 0), d/dy x**y: 0 at x = 0."""
    assert grad(ref.relu)(0.0) == 0.0 and grad(ref.relu)(-1.0) == 0.0
    assert grad(abs)(0.0) == 0.0
    assert grad(ref.sqrt)(0.0) == math.inf
    assert grad(lambda x, y: x**y, argnums=(0, 1))(0.0, 0.0) == (0.0, 0.0)
    assert grad(lambda y: 0.0**y)(2.0) == 0.0
    assert math.isnan(grad(lambda y: (-2.0) ** y)(2.0))
    assert grad(lambda x: x**0.5)(0.0) == math.inf
    assert grad(lambda x: x**1.0)(0.0) == 1.0 and grad(lambda x: x**2.0)(0.0) == 0.0


def test_higher_derivatives_at_the_edge_of_the_domain() -> None:
    """The limits from the right: sqrt''(0) = -inf, sqrt'''(0) = inf, (x**0.5)''(0) = -inf."""
    assert grad(grad(ref.sqrt))(0.0) == -math.inf
    assert grad(grad(grad(ref.sqrt)))(0.0) == math.inf
    assert grad(grad(lambda x: x**0.5))(0.0) == -math.inf
    assert grad(grad(lambda x: x**1.5))(0.0) == math.inf
    # x and x**2 are smooth at 0: their higher derivatives are the polynomial's, not 0 * inf
    assert grad(grad(lambda x: x**1.0))(0.0) == 0.0
    assert grad(grad(lambda x: x**2.0))(0.0) == 2.0
    assert grad(grad(grad(lambda x: x**2.0)))(0.0) == 0.0
    assert grad(grad(grad(lambda x: x**3.0)))(0.0) == 6.0
    assert grad(grad(lambda x: x**1.0))(math.nan) == 0.0  # x ** 0 is a constant


def test_a_structural_zero_sends_nothing() -> None:
    """A zero that holds whatever the values (a constant factor, a kink's) next to an
    infinite partial gives 0, not NaN: 0 * sqrt(x) at 0, sqrt(relu(x)) at -1, sqrt(0 * x)
    and sqrt(stop_gradient(x)) at 0 do not depend on x there; a NaN adjoint is not zero,
    and a traced zero is sent."""
    assert grad(lambda x: 0.0 * ref.sqrt(x) + x)(0.0) == 1.0
    assert grad(lambda x: ref.sqrt(ref.relu(x)))(-1.0) == 0.0
    assert grad(lambda x: ref.sqrt(0.0 * x) + x)(2.0) == 1.0
    assert grad(lambda x: x + ref.sqrt(ref.stop_gradient(x)))(0.0) == 1.0
    assert math.isnan(grad(lambda x: math.nan * x)(1.0))
    # d/dy [y * d/dx (x * y)] = 2 y: the inner zero partial of the constant is not traced
    assert grad(lambda y: y * grad(lambda x: x * y)(0.0))(3.0) == 6.0


def test_a_computed_zero_meeting_an_infinity_is_nan() -> None:
    """A zero computed from traced values times an infinite partial is an indeterminate
    form, NaN: (x**3) ** (1/3) is x (derivative 1), (x ** (1/3)) ** 2 has derivative inf,
    sqrt(x) * x has 0, and every chain rule at 0 reads 0 * inf."""
    for f in (lambda x: (x ** 3.0) ** (1.0 / 3.0), lambda x: (x ** (1.0 / 3.0)) ** 2.0,
              lambda x: ref.sqrt(x) * x):
        assert math.isnan(grad(f)(0.0))
    assert grad(lambda x: (x ** 3.0) ** (1.0 / 3.0))(2.0) == pytest.approx(1.0)


def test_nan_in_gives_nan_out() -> None:
    """Values and derivatives of every nonlinear unary primitive at NaN are NaN."""
    nan = math.nan
    for f in (ref.exp, ref.log, ref.sqrt, ref.tanh, ref.sigmoid, ref.relu, ref.sin, ref.cos,
              abs):
        assert math.isnan(f(nan)), f
        value, g = value_and_grad(f)(nan)
        assert math.isnan(value) and math.isnan(g), f


@pytest.mark.parametrize(("f", "x", "error"), [
    (ref.log, 0.0, ValueError),
    (ref.log, -1.0, ValueError),
    (ref.sqrt, -1.0, ValueError),
    (lambda x: 1.0 / x, 0.0, ZeroDivisionError),
    (ref.exp, 1000.0, OverflowError),
    (lambda x: ref.power(x, 1.0 / 3.0), -8.0, ValueError),
    (lambda x: ref.power(x, -1.0), 0.0, ValueError),
    (lambda x: ref.power(x, 1000.0), 10.0, OverflowError),
])
def test_domain_errors_are_maths(f: Callable, x: float, error: type) -> None:
    """The same exception as math (x ** y is math.pow), on floats and under grad."""
    with pytest.raises(error):
        f(x)
    with pytest.raises(error):
        grad(f)(x)


def test_nesting_keeps_perturbations_apart() -> None:
    """d/dx [x * d/dy (x + y)] = 1; closures over outer values; three levels."""
    assert grad(lambda x: x * grad(lambda y: x + y)(1.0))(1.0) == 1.0
    assert grad(lambda a: a * grad(lambda y: a * y)(3.0))(1.5) == 3.0
    assert grad(lambda x: grad(lambda y: x * y * y)(x))(2.0) == 8.0
    f = lambda x: grad(lambda y: grad(lambda z: x * x * y * z * z)(2.0))(3.0)  # 8 x
    assert grad(f)(1.5) == 12.0


def test_operands_of_different_levels() -> None:
    """d/dp of d/dx x**p at x = 2: d/dp p 2^(p-1) = 2^(p-1) (1 + p ln 2), at p = 3."""
    expected = 4.0 * (1.0 + 3.0 * math.log(2.0))
    assert math.isclose(grad(lambda p: grad(lambda x: x**p)(2.0))(3.0), expected, rel_tol=1e-14)


def test_hessian_of_power_at_exponent_zero() -> None:
    """d2/dx dy x**y = x**(y-1) (1 + y ln x), which is 1/3 at (3, 0)."""
    def dx(x: Any, y: Any) -> Any:
        return grad(lambda a, b: a**b, argnums=0)(x, y)

    assert math.isclose(grad(dx, argnums=1)(3.0, 0.0), 1.0 / 3.0, rel_tol=1e-15)


def test_comparisons_return_plain_bools() -> None:
    """if, while and max work inside grad because comparisons return bool."""
    def f(x: Any) -> Any:
        seen = [type(x > 0.0), type(x == x), type(bool(x))]
        assert seen == [bool, bool, bool]
        while x < 10.0:
            x = x * 2.0
        return max(x, 3.0) if x != 0.0 else x

    assert grad(f)(1.5) == 8.0  # doubled three times


def test_structures_and_constants() -> None:
    """Tuple arguments give tuple gradients; a constant output gives zeros; values come back."""
    assert value_and_grad(lambda p: p[0] * p[1])((2.0, 5.0)) == (10.0, (5.0, 2.0))
    assert grad(lambda x, y: 3.0, argnums=(0, 1))(1.0, 2.0) == (0.0, 0.0)
    assert value_and_grad(lambda x: x * x, argnums=(0,))(3.0) == (9.0, (6.0,))


def test_misuse_is_an_error() -> None:
    """An escaped Var, a non-number output or operand, unequal dot lengths."""
    kept = []
    grad(lambda x: kept.append(x) or x)(1.0)
    with pytest.raises(ValueError, match="escaped"):
        kept[0] * 2.0
    with pytest.raises(TypeError, match="returning a number"):
        grad(lambda x: (x, x))(1.0)
    with pytest.raises(TypeError, match="expected a number"):
        grad(lambda x: x * "2")(1.0)
    with pytest.raises(ValueError, match="different lengths"):
        ref.dot([1.0], [1.0, 2.0])


def test_a_new_primitive_is_one_line() -> None:
    """tan, added from outside with its rule 1 + tan**2, differentiates twice."""
    tan = ref.Primitive("tan_for_test", math.tan, lambda k, out, x: 1.0 + out * out)
    try:
        t = math.tan(X)
        assert math.isclose(grad(tan)(X), 1 + t * t, rel_tol=1e-14)
        assert math.isclose(grad(grad(tan))(X), 2 * t * (1 + t * t), rel_tol=1e-13)
    finally:
        del ref.PRIMITIVES["tan_for_test"]


def test_the_reference_imports_nothing_from_tapegrad() -> None:
    """An independent oracle: the module imports only from the standard library."""
    tree = ast.parse(Path(ref.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    assert imported <= {"__future__", "math", "collections", "typing"}
    assert not any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree))


@FEW
@given(x=floats(-2.0, 2.0), y=floats(0.3, 3.0))
def test_against_central_differences(x: float, y: float) -> None:
    """First and mixed second derivatives of a composite match central differences."""
    def f(a: Any, b: Any) -> Any:
        return ref.tanh(a * b) * ref.log(b) + ref.sigmoid(a) ** 2 + ref.sqrt(b) * ref.cos(a)

    fx = grad(f, argnums=0)
    assert fd_close(fx(x, y), central_diff(lambda a: f(a, y), x))
    assert fd_close(grad(f, argnums=1)(x, y), central_diff(lambda b: f(x, b), y))
    assert fd_close(grad(fx, argnums=1)(x, y), central_diff(lambda b: fx(x, b), y))
