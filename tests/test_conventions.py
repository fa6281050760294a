"""What users coming from JAX, micrograd, NumPy and PyTorch reach for first.

JAX's conventions (argnums repeated, escaped tracers as arguments, check_grads),
micrograd's methods (x.tanh()), NumPy's scalars and functions on traced scalars,
and Python's number tower (x * True).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import tapegrad as tg

# -- JAX's conventions --------------------------------------------------------------------


def test_repeated_argnums_give_the_same_gradient_twice() -> None:
    """grad(f, argnums=(0, 0)) returns the gradient of argument 0 twice, as JAX does."""
    f = lambda x, y: x * x * y
    assert tg.grad(f, argnums=(0, 0))(3.0, 2.0) == (12.0, 12.0)
    assert tg.grad(f, argnums=(1, 0, 1))(3.0, 2.0) == (9.0, 12.0, 9.0)
    value, grads = tg.value_and_grad(f, argnums=(0, 0))(3.0, 2.0)
    assert value == 18.0 and grads == (12.0, 12.0)
    assert tg.jacrev(f, argnums=(0, 0))(3.0, 2.0) == (12.0, 12.0)
    assert tg.jacfwd(f, argnums=(0, 0))(3.0, 2.0) == (12.0, 12.0)


def test_an_escaped_traced_value_passed_to_a_transform_is_an_error() -> None:
    """A traced value kept from a finished trace and passed to a transform raises
    EscapedTracerError, for every transform, instead of coming back as a dead tracer."""
    box: list = []

    def leak(x: Any) -> Any:
        box.append(x)
        return x * 2.0

    tg.grad(leak)(1.0)
    stale = box[0]
    for transform in (tg.grad(lambda x: x * x), tg.value_and_grad(lambda x: x * x),
                      tg.jacrev(lambda x: x * x), tg.jacfwd(lambda x: x * x),
                      tg.hessian(lambda x: x * x)):
        with pytest.raises(tg.EscapedTracerError):
            transform(stale)
    with pytest.raises(tg.EscapedTracerError):
        tg.jvp(lambda x: x * x, (stale,), (1.0,))
    with pytest.raises(tg.EscapedTracerError):
        tg.vjp(lambda x: x * x, stale)
    with pytest.raises(tg.EscapedTracerError):
        tg.grad(lambda x: x * x)([1.0, stale])


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("modes", [("fwd", "rev"), ("fwd",), ("rev",)])
def test_check_grads_passes_for_correct_rules(order: int, modes: tuple) -> None:
    """check_grads (JAX's signature) accepts tapegrad's own derivatives, scalars and arrays."""
    tg.check_grads(lambda x, y: tg.tanh(x * y) + x**3, (0.5, 2.0), order=order, modes=modes)
    tg.check_grads(lambda p: (p["a"] * tg.sin(p["b"]), p["a"] ** 2), ({"a": 1.2, "b": 0.3},),
                   order=order, modes=modes)
    import tapegrad.numpy as tnp

    w = np.array([[0.3, -0.2], [0.1, 0.4]])
    tg.check_grads(lambda w: tnp.tanh(w @ np.array([1.0, -2.0])), (w,), order=order,
                   modes=modes)


def _with_wrong_rule() -> Any:
    @tg.custom_vjp
    def cube(x: Any) -> Any:
        return x**3

    cube.defvjp(lambda x: (x**3, x), lambda x, g: (2.0 * x * x * g,))  # 3 x**2 is right
    return cube


@pytest.mark.parametrize("modes", [("rev",), ("fwd", "rev")])
def test_check_grads_catches_a_wrong_rule(modes: tuple) -> None:
    """A custom rule 2x**2 for x**3 fails check_grads: the transpose test in reverse mode."""
    cube = _with_wrong_rule()
    with pytest.raises(AssertionError, match="check_grads"):
        tg.check_grads(cube, (1.3,), order=1, modes=modes)


def test_check_grads_rejects_bad_arguments() -> None:
    """order and modes are validated with a clear message."""
    with pytest.raises(ValueError, match="order"):
        tg.check_grads(tg.sin, (1.0,), order=3)
    with pytest.raises(ValueError, match="modes"):
        tg.check_grads(tg.sin, (1.0,), order=1, modes=("backward",))


# -- micrograd's methods ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["tanh", "exp", "relu", "log", "sigmoid", "sqrt", "sin",
                                    "cos", "tan", "log1p", "expm1", "softplus", "erf"])
def test_methods_of_traced_values_are_the_table_functions(method: str) -> None:
    """x.tanh() and friends (micrograd's spelling) record the primitive of that name."""
    value, g = tg.value_and_grad(lambda x: getattr(x, method)())(0.7)
    expected_value, expected_g = tg.value_and_grad(getattr(tg, method))(0.7)
    assert value == expected_value and g == expected_g
    assert tg.trace(lambda x: getattr(x, method)())(0.7)[-1].op == method


# -- Python's and NumPy's numbers -----------------------------------------------------------


@pytest.mark.parametrize("flag", [True, False])
def test_booleans_multiply_traced_values_as_they_multiply_floats(flag: bool) -> None:
    """x * True, True * x, x + False work as for floats (bool is a number in Python)."""
    f = lambda x: x * flag + flag * x + (x - flag) / (True + flag)
    assert tg.grad(f)(2.0) == pytest.approx((2.0 * flag) + 1.0 / (1.0 + flag))
    assert f(2.0) == tg.value_and_grad(f)(2.0)[0]


@pytest.mark.parametrize("leaf", [np.float64(1.5), np.float32(1.5), np.int64(2)])
def test_numpy_scalars_are_leaves_and_keep_their_float_type(leaf: Any) -> None:
    """NumPy scalars are accepted as leaves; a float leaf's gradient has its type (an integer
    leaf's gradient is a float, as for Python ints)."""
    g = tg.grad(lambda x: x * x * 3.0)(leaf)
    assert g == pytest.approx(6.0 * float(leaf))
    expected_type = type(leaf) if isinstance(leaf, np.floating) else float
    assert type(g) is expected_type
    grads = tg.grad(lambda p: p["w"] * p["b"])({"w": np.float32(2.0), "b": 3.0})
    assert type(grads["w"]) is np.float32 and type(grads["b"]) is float


def test_numpy_scalars_as_operands() -> None:
    """A NumPy scalar on either side of a traced scalar is a constant, on either side."""
    c = np.float64(2.5)
    assert tg.grad(lambda x: x * c + c * x + np.float32(1.0) * x)(1.0) == pytest.approx(6.0)
    assert tg.grad(lambda x: np.int64(3) * x - x * np.int64(1))(1.0) == 2.0


@pytest.mark.parametrize(("np_fn", "tg_fn"), [
    (np.tanh, tg.tanh), (np.exp, tg.exp), (np.sin, tg.sin), (np.log, tg.log),
    (np.sqrt, tg.sqrt), (np.abs, abs), (np.negative, lambda x: -x),
])
def test_numpy_functions_on_a_traced_scalar_dispatch_to_tapegrad(np_fn: Any, tg_fn: Any
                                                                 ) -> None:
    """np.tanh(x) on a traced scalar gives tg.tanh's value and derivative, never a silent
    constant or NumPy's 'loop of ufunc does not support argument 0'."""
    assert tg.value_and_grad(lambda x: np_fn(x) * 2.0)(0.7) == tg.value_and_grad(
        lambda x: tg_fn(x) * 2.0)(0.7)
    assert tg.grad(lambda x: np.maximum(x, 0.5))(0.7) == 1.0


def test_numpy_functions_without_a_rule_on_a_traced_scalar_name_tapegrad() -> None:
    """A NumPy function tapegrad has no rule for raises a TypeError naming tapegrad's way."""
    with pytest.raises(TypeError, match="tapegrad"):
        tg.grad(lambda x: np.arcsinh(x))(0.7)


def test_math_isnan_on_a_traced_value_points_to_tg_isnan() -> None:
    """math.isnan(x) is refused with advice that works: tg.isnan / tg.isfinite."""
    with pytest.raises(TypeError, match=r"tg\.isnan"):
        tg.grad(lambda x: math.isnan(x) or x)(1.0)
    assert tg.grad(lambda x: x * 2.0 if not tg.isnan(x) else x)(1.0) == 2.0


def test_isfinite_and_isnan_are_guards_under_jit() -> None:
    """A branch on tg.isfinite re-traces under jit when it flips."""

    def f(x: Any) -> Any:
        y = x * 1e308 * 10.0
        return x if tg.isfinite(y) else x * 0.0

    fast = tg.jit(tg.grad(f))
    assert fast(1e-3) == 1.0
    assert fast(1.0) == 0.0
    assert fast(1e-3) == 1.0
    assert fast.traces == 2
