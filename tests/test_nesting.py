"""Nesting: higher derivatives, closures over outer traced values, perturbation confusion."""

from __future__ import annotations

import math
from typing import Any, Callable

import pytest
from conftest import SOME, central_diff, fd_close, floats, partial_diff
from hypothesis import given
from hypothesis import strategies as st

import tapegrad as tg


def grad3(f: Callable) -> Callable:
    return tg.grad(tg.grad(tg.grad(f)))


def _tanh_derivatives(x: float) -> tuple[float, float, float]:
    t = math.tanh(x)
    d1 = 1.0 - t * t
    d2 = -2.0 * t * d1
    d3 = -2.0 * d1 * (1.0 - 3.0 * t * t)
    return d1, d2, d3


@pytest.mark.parametrize(
    ("f", "x", "derivatives"),
    [
        (lambda x: x**4, 2.0, (32.0, 48.0, 48.0)),
        (lambda x: 3.0 * x**3 - 2.0 * x * x + x - 7.0, 1.5, (15.25, 23.0, 18.0)),
        (lambda x: x * x * x * x * x, -1.0, (5.0, -20.0, 60.0)),
        (tg.exp, 0.7, (math.exp(0.7),) * 3),
        (tg.sin, 1.0, (math.cos(1.0), -math.sin(1.0), -math.cos(1.0))),
        (tg.cos, 1.0, (-math.sin(1.0), -math.cos(1.0), math.sin(1.0))),
        (tg.tanh, 0.7, _tanh_derivatives(0.7)),
        (tg.tanh, 0.0, (1.0, 0.0, -2.0)),
        (tg.log, 2.0, (0.5, -0.25, 0.25)),
        (tg.sqrt, 4.0, (0.25, -1.0 / 32.0, 3.0 / 256.0)),
        (lambda x: 1.0 / x, 2.0, (-0.25, 0.25, -0.375)),
        (lambda x: tg.sum([x * x, x * x * x]), 2.0, (16.0, 14.0, 6.0)),
        (lambda x: tg.dot([x, x], [x * x, x]), 2.0, (16.0, 14.0, 6.0)),
    ],
)
def test_first_second_third_derivatives_hand_derived(f: Callable, x: float,
                                                     derivatives: tuple) -> None:
    """grad, grad(grad) and grad(grad(grad)) equal closed-form derivatives."""
    d1, d2, d3 = derivatives
    assert math.isclose(tg.grad(f)(x), d1, rel_tol=1e-13, abs_tol=1e-14)
    assert math.isclose(tg.grad(tg.grad(f))(x), d2, rel_tol=1e-13, abs_tol=1e-14)
    g3 = grad3(f)(x)
    assert type(g3) is float
    assert math.isclose(g3, d3, rel_tol=1e-13, abs_tol=1e-14)


def test_fourth_derivative_of_a_polynomial() -> None:
    """Nesting is not limited to three: d^4/dx^4 x^5 = 120 x."""
    assert tg.grad(grad3(lambda x: x**5))(1.5) == 180.0


def hfun(p: Any) -> Any:
    """A non-separable scalar function of a 3-tuple."""
    return p[0] ** 2 * p[1] ** 3 + tg.sin(p[0] * p[2]) + tg.exp(p[1] * 0.5) * p[2]


HPOINT = (0.7, -1.2, 0.4)


def test_hessian_equals_jacfwd_of_jacrev_and_jacrev_of_jacrev() -> None:
    """hessian(f) == jacfwd(jacrev(f)) == jacrev(jacrev(f)) == jacfwd(jacfwd(f))."""
    h = tg.hessian(hfun)(HPOINT)
    for other in (tg.jacfwd(tg.jacrev(hfun))(HPOINT), tg.jacrev(tg.jacrev(hfun))(HPOINT),
                  tg.jacfwd(tg.jacfwd(hfun))(HPOINT)):
        for i in range(3):
            for j in range(3):
                assert math.isclose(h[i][j], other[i][j], rel_tol=1e-12, abs_tol=1e-12)


def test_hessian_hand_derived_entries() -> None:
    """Two Hessian entries of hfun computed by hand."""
    a, b, c = HPOINT
    h = tg.hessian(hfun)(HPOINT)
    assert math.isclose(h[0][0], 2 * b**3 - c * c * math.sin(a * c), rel_tol=1e-12)
    assert math.isclose(h[0][1], 6 * a * b * b, rel_tol=1e-12)
    assert math.isclose(h[1][2], 0.5 * math.exp(0.5 * b), rel_tol=1e-12)


@pytest.mark.parametrize("v", [(1.0, 0.0, 0.0), (0.3, -2.0, 1.5)])
def test_jvp_of_grad_is_hessian_vector_product(v: tuple) -> None:
    """Forward-over-reverse jvp(grad(f), x, v) equals H @ v."""
    _, hv = tg.jvp(tg.grad(hfun), (HPOINT,), (v,))
    h = tg.hessian(hfun)(HPOINT)
    for i in range(3):
        expected = sum(h[i][j] * v[j] for j in range(3))
        assert math.isclose(hv[i], expected, rel_tol=1e-12, abs_tol=1e-12)


def test_grad_of_vjp_and_of_jvp_inside() -> None:
    """Reverse-over-reverse through vjp and reverse-over-forward through jvp are exact."""
    assert tg.grad(lambda x: tg.vjp(lambda y: x * y * y, 3.0)[1](1.0)[0])(2.0) == 6.0
    assert tg.grad(lambda x: x * tg.jvp(lambda y: x * y, (1.0,), (1.0,))[1])(2.0) == 4.0


# -- closures over outer traced values and perturbation confusion -------------------------


def test_perturbation_confusion_classic() -> None:
    """d/dx [x * d/dy (x + y)] = 1: the inner derivative must not see x's perturbation."""
    assert tg.grad(lambda x: x * tg.grad(lambda y: x + y)(1.0))(1.0) == 1.0


@pytest.mark.parametrize("x", [1.5, -2.0, 3.0])
def test_inner_grad_closing_over_outer_value(x: float) -> None:
    """d/dx [x * d/dy (x y)] = d/dx x^2 = 2x, for any y."""
    assert tg.grad(lambda a: a * tg.grad(lambda y: a * y)(3.0))(x) == 2.0 * x


def test_inner_grad_evaluated_at_outer_value() -> None:
    """d/dx [d/dy (x y^2)]_{y=x} = d/dx 2x^2 = 4x."""
    assert tg.grad(lambda x: tg.grad(lambda y: x * y * y)(x))(2.0) == 8.0


def test_three_levels_of_closure() -> None:
    """d/dx d/dy d/dz (x y z) at 1 is 1, and each level keeps its own variable apart."""
    assert tg.grad(lambda x: tg.grad(lambda y: tg.grad(lambda z: x * y * z)(1.0))(1.0))(1.0) == 1.0
    f = lambda x: tg.grad(lambda y: tg.grad(lambda z: x * x * y * z * z)(2.0))(3.0)
    # inner: 2 x^2 y z at z=2 -> 4 x^2 y; middle: d/dy -> 4 x^2; outer: 8x
    assert tg.grad(f)(1.5) == 12.0


def test_inner_grad_of_constant_in_outer_variable() -> None:
    """An inner grad that does not depend on the outer variable has zero outer derivative."""
    assert tg.grad(lambda x: tg.grad(lambda y: y * y)(3.0) * x)(2.0) == 6.0
    assert tg.grad(lambda x: tg.grad(lambda y: y * 2.0)(x))(5.0) == 0.0


def test_inner_jacobian_closing_over_outer_value() -> None:
    """d/dx of an inner Jacobian entry d/dy (x y) = x is 1."""
    assert tg.grad(lambda x: tg.jacrev(lambda y: (x * y, y))(1.0)[0])(2.0) == 1.0
    assert tg.grad(lambda x: tg.jacfwd(lambda y: (x * y, y))(1.0)[0])(2.0) == 1.0


def test_gradient_computed_inside_a_trace_is_a_float() -> None:
    """A gradient that does not depend on outer traced values is a plain float, even inside."""
    seen = {}

    def f(x: Any) -> Any:
        seen["grad"] = tg.grad(lambda y: y * 2)(1.0)
        seen["vjp"] = tg.vjp(lambda y: y * 3, 1.0)[1](1.0)[0]
        seen["jvp"] = tg.jvp(lambda y: y * 4, (1.0,), (1.0,))[1]
        return x * seen["grad"]

    assert tg.grad(f)(1.0) == 2.0
    assert seen == {"grad": 2.0, "vjp": 3.0, "jvp": 4.0}
    assert {k: type(v) for k, v in seen.items()} == {"grad": float, "vjp": float, "jvp": float}


# -- property tests ----------------------------------------------------------------------

SMOOTH: dict[str, Callable[[Any], Any]] = {
    "poly": lambda x: x**3 - 2.0 * x * x + 0.5 * x,
    "tanh_mix": lambda x: tg.tanh(x) * tg.sin(2.0 * x),
    "exp_div": lambda x: tg.exp(-x * x) / (1.0 + x * x),
    "sigmoid_cos": lambda x: tg.sigmoid(3.0 * x) * tg.cos(x) + x**4,
}


@pytest.mark.parametrize("name", sorted(SMOOTH))
@SOME
@given(x=floats(-2.0, 2.0))
def test_second_derivative_matches_finite_difference_of_grad(name: str, x: float) -> None:
    """grad(grad(f))(x) equals the central difference of grad(f) at x."""
    f = SMOOTH[name]
    g = tg.grad(f)
    gg = tg.grad(g)(x)
    assert fd_close(gg, central_diff(g, x), abs(g(x)))


@SOME
@given(x=floats(-1.5, 1.5), y=floats(0.3, 2.0))
def test_mixed_partials_match_finite_differences(x: float, y: float) -> None:
    """d2f/dxdy from nested grads equals the finite difference of df/dx in y, and is symmetric."""
    f = lambda a, b: tg.sin(a * b) * tg.log(b) + a**3 * b
    dx = tg.grad(f, argnums=0)
    dy = tg.grad(f, argnums=1)
    dxy = tg.grad(dx, argnums=1)(x, y)
    dyx = tg.grad(dy, argnums=0)(x, y)
    assert math.isclose(dxy, dyx, rel_tol=1e-12, abs_tol=1e-12)
    assert fd_close(dxy, partial_diff(dx, (x, y), 1), abs(dx(x, y)))


@SOME
@given(x=floats(-1.5, 1.5), v=st.sampled_from([-1.0, 0.5, 2.0]))
def test_third_derivative_matches_finite_difference_of_second(x: float, v: float) -> None:
    """grad^3 of a non-polynomial equals the finite difference of grad^2."""
    f = lambda t: tg.tanh(v * t) + tg.exp(0.3 * t) * t
    g2 = tg.grad(tg.grad(f))
    assert fd_close(grad3(f)(x), central_diff(g2, x), abs(g2(x)))
