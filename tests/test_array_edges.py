"""Edges on purpose: zeros, infinities, NaN, ties, zeros in products, domain limits, empty arrays.

The elementwise entries of the array table are held to the scalar primitives at
special values: where the scalar rule gives a number, the array rule gives the same
value and derivative (NaN where the scalar gives NaN). Where Python's math raises
(log(0), 1 / 0, exp(800)), the array follows NumPy's IEEE value instead.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Callable

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.numpy as tnp
from tapegrad.arrays import ARRAY_PRIMITIVES, ELEMENTWISE

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -2.0, 3.0, math.inf, -math.inf, math.nan, 1e300,
           -1e-300, 800.0, -800.0, 2.0 ** -1074]

# Each elementwise entry, its public array function and the scalar function it must match.
UNARY: dict[str, tuple[Callable, Callable]] = {
    "negative": (tnp.negative, operator.neg), "exp": (tnp.exp, tg.exp),
    "expm1": (tnp.expm1, tg.expm1), "log": (tnp.log, tg.log), "log1p": (tnp.log1p, tg.log1p),
    "sqrt": (tnp.sqrt, tg.sqrt), "tanh": (tnp.tanh, tg.tanh), "sin": (tnp.sin, tg.sin),
    "cos": (tnp.cos, tg.cos), "tan": (tnp.tan, tg.tan), "sigmoid": (tnp.sigmoid, tg.sigmoid),
    "softplus": (tnp.softplus, tg.softplus), "log_sigmoid": (tnp.log_sigmoid, tg.log_sigmoid),
    "absolute": (tnp.abs, tg.abs), "relu": (tnp.relu, tg.relu), "sign": (tnp.sign, tg.sign),
    "step": (tg.step, tg.step), "stop_gradient": (tnp.stop_gradient, tg.stop_gradient),
}
BINARY: dict[str, tuple[Callable, Callable]] = {
    "add": (tnp.add, operator.add), "subtract": (tnp.subtract, operator.sub),
    "multiply": (tnp.multiply, operator.mul), "divide": (tnp.divide, operator.truediv),
    "power": (tnp.power, operator.pow), "maximum": (tnp.maximum, tg.maximum),
    "minimum": (tnp.minimum, tg.minimum),
}
PYTHON_DOMAIN_ERRORS = (ValueError, ZeroDivisionError, OverflowError)


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b or abs(a - b) <= 1e-12 * max(abs(a),
                                                                                   abs(b))


def test_every_elementwise_entry_is_held_to_a_scalar_rule() -> None:
    elementwise = {name for name, p in ARRAY_PRIMITIVES.items() if p.jvp == ELEMENTWISE}
    assert elementwise <= set(UNARY), f"no scalar counterpart for {elementwise - set(UNARY)}"
    assert set(UNARY) | set(BINARY) <= set(ARRAY_PRIMITIVES)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_entry_matches_the_scalar_rule_at_special_values(name: str) -> None:
    array_fn, scalar_fn = UNARY[name]
    x = np.array(SPECIAL)
    with np.errstate(all="ignore"):
        grad = tg.grad(lambda x: tnp.sum(array_fn(x) * 1.0))(x)
        values = np.asarray(array_fn(x), dtype=np.float64)
    for v, out, g in zip(SPECIAL, values, grad):
        try:
            s_value, s_grad = tg.value_and_grad(scalar_fn)(v)
        except PYTHON_DOMAIN_ERRORS:
            continue  # NumPy's IEEE value here; the derivative is whatever its rule gives
        assert same(out, float(s_value)), f"{name}({v}) = {out}, scalar {s_value}"
        assert same(float(g), float(s_grad)), f"d {name}({v}) = {g}, scalar {s_grad}"


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_entry_matches_the_scalar_rule_at_special_values(name: str) -> None:
    array_fn, scalar_fn = BINARY[name]
    xs, ys = (a.ravel() for a in np.meshgrid(SPECIAL, SPECIAL, indexing="ij"))
    with np.errstate(all="ignore"):
        grads = tg.grad(lambda x, y: tnp.sum(array_fn(x, y)), argnums=(0, 1))(xs, ys)
        values = np.asarray(array_fn(xs, ys), dtype=np.float64)
    checked = 0
    for k, (x, y) in enumerate(zip(xs, ys)):
        try:
            s_value, s_grads = tg.value_and_grad(scalar_fn, argnums=(0, 1))(float(x), float(y))
        except PYTHON_DOMAIN_ERRORS:
            continue
        checked += 1
        assert same(values[k], float(s_value)), f"{name}({x}, {y}) = {values[k]}, {s_value}"
        for operand in (0, 1):
            got, expected = float(grads[operand][k]), float(s_grads[operand])
            assert same(got, expected), (
                f"d{operand} {name}({x}, {y}) = {got}, scalar {expected}")
    assert checked > 100


@pytest.mark.parametrize("name", sorted(UNARY))
def test_nan_propagates_through_each_unary_entry(name: str) -> None:
    array_fn, _ = UNARY[name]
    x = np.array([math.nan, 0.5])
    with np.errstate(all="ignore"):
        value = np.asarray(array_fn(x), dtype=np.float64)
        grad = tg.grad(lambda x: tnp.sum(array_fn(x) * 1.0))(x)
    if name in ("step",):
        assert math.isnan(value[0])  # step of NaN is NaN, its derivative is 0 everywhere
        assert grad[0] == 0.0
    elif name == "stop_gradient":
        assert math.isnan(value[0]) and grad[0] == 0.0
    else:
        assert math.isnan(value[0]), f"{name}(nan) = {value[0]}"
        # the derivative at NaN is NaN, except where it does not depend on x
        if name in ("negative", "sign"):
            assert grad[0] == (-1.0 if name == "negative" else 0.0)
        else:
            assert math.isnan(grad[0]), f"d {name}(nan) = {grad[0]}"
    assert not math.isnan(value[1]) and not math.isnan(grad[1])


# ---------------------------------------------------------------------------
# Ties, zeros and domain limits, by hand.
# ---------------------------------------------------------------------------


def test_max_and_min_ties_share_the_derivative_equally() -> None:
    x = np.array([3.0, 1.0, 3.0, 3.0])
    np.testing.assert_allclose(tg.grad(tnp.max)(x), [1 / 3, 0.0, 1 / 3, 1 / 3], rtol=1e-15)
    np.testing.assert_allclose(tg.grad(tnp.min)(-x), [1 / 3, 0.0, 1 / 3, 1 / 3], rtol=1e-15)
    m = np.array([[2.0, 2.0, 1.0], [0.0, 5.0, 5.0]])
    g = tg.grad(lambda m: tnp.sum(tnp.max(m, axis=1, keepdims=True) * np.array([[1.0], [4.0]])))
    np.testing.assert_allclose(g(m), [[0.5, 0.5, 0.0], [0.0, 2.0, 2.0]], rtol=1e-15)
    np.testing.assert_allclose(tg.grad(lambda m: tnp.sum(tnp.min(m, axis=0)))(m),
                               [[0, 1, 1], [1, 0, 0]], rtol=1e-15)
    np.testing.assert_allclose(tg.grad(lambda m: tnp.sum(tnp.min(m, axis=1)))(m),
                               [[0, 0, 1], [1, 0, 0]], rtol=1e-15)
    np.testing.assert_allclose(tg.grad(tnp.max)(np.full((2, 2), 7.0)), np.full((2, 2), 0.25))
    # forward mode: the tangents of the winners, averaged
    _, t = tg.jvp(tnp.max, (x,), (np.array([3.0, 100.0, 6.0, 0.0]),))
    assert float(t) == pytest.approx(3.0)
    # a maximum with infinities among the winners
    np.testing.assert_array_equal(tg.grad(tnp.max)(np.array([np.inf, 1.0, np.inf])),
                                  [0.5, 0.0, 0.5])
    np.testing.assert_array_equal(
        tg.grad(lambda x: tnp.sum(tnp.maximum(x, 1.0)))(np.array([1.0, 2.0, 0.0])),
        [0.5, 1.0, 0.0])


def test_prod_with_zeros() -> None:
    np.testing.assert_array_equal(tg.grad(tnp.prod)(np.array([2.0, 0.0, 3.0])), [0.0, 6.0, 0.0])
    np.testing.assert_array_equal(tg.grad(tnp.prod)(np.array([0.0, 2.0, 0.0])), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(tg.grad(tnp.prod)(np.array([0.0])), [1.0])
    m = np.array([[0.0, 2.0], [3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_array_equal(tg.grad(lambda m: tnp.sum(tnp.prod(m, axis=1)))(m),
                                  [[2.0, 0.0], [4.0, 3.0], [0.0, 0.0]])
    # second derivatives: d2 prod / dxi dxj is the product of the others
    h = tg.hessian(tnp.prod)(np.array([2.0, 0.0, 3.0]))
    np.testing.assert_array_equal(h, [[0.0, 3.0, 0.0], [3.0, 0.0, 2.0], [0.0, 2.0, 0.0]])
    h = tg.hessian(tnp.prod)(np.array([0.0, 5.0, 0.0]))
    np.testing.assert_array_equal(h, [[0.0, 0.0, 5.0], [0.0, 0.0, 0.0], [5.0, 0.0, 0.0]])
    _, t = tg.jvp(tnp.prod, (np.array([2.0, 0.0, 3.0]),), (np.array([1.0, 1.0, 1.0]),))
    assert float(t) == 6.0


def test_sqrt_log_and_friends_at_zero() -> None:
    with np.errstate(divide="ignore"):
        assert tg.grad(lambda x: tnp.sum(tnp.sqrt(x)))(np.array([0.0, 4.0])).tolist() == \
            [math.inf, 0.25]
        v, g = tg.value_and_grad(lambda x: tnp.sum(tnp.log(x)))(np.array([0.0, 2.0]))
        assert float(v) == -math.inf and g.tolist() == [math.inf, 0.5]
        assert tg.grad(lambda x: tnp.sum(tnp.log1p(x)))(np.array([-1.0])).tolist() == [math.inf]
    assert tg.grad(lambda x: tnp.sum(tnp.abs(x)))(np.array([0.0, -2.0])).tolist() == [0.0, -1.0]
    assert tg.grad(lambda x: tnp.sum(tnp.relu(x)))(np.array([0.0, 2.0])).tolist() == [0.0, 1.0]
    assert tg.grad(lambda x: tnp.sum(x ** 2.0))(np.array([0.0])).tolist() == [0.0]
    assert tg.grad(lambda x: tnp.sum(x ** 0.0))(np.array([0.0])).tolist() == [0.0]
    # the sigmoid family stays finite far out
    x = np.array([-800.0, 800.0])
    assert tg.grad(lambda x: tnp.sum(tnp.sigmoid(x)))(x).tolist() == [0.0, 0.0]
    assert tg.grad(lambda x: tnp.sum(tnp.softplus(x)))(x).tolist() == [0.0, 1.0]
    assert tg.grad(lambda x: tnp.sum(tnp.log_sigmoid(x)))(x).tolist() == [1.0, 0.0]


def test_infinities_in_reductions() -> None:
    x = np.array([-np.inf, 0.0, -np.inf])  # a masked logit, as in attention
    v, g = tg.value_and_grad(tnp.logsumexp)(x)
    assert float(v) == 0.0 and g.tolist() == [0.0, 1.0, 0.0]
    assert tg.grad(tnp.sum)(np.array([np.inf, np.nan])).tolist() == [1.0, 1.0]
    with np.errstate(divide="ignore"):  # log(0), as in NumPy
        assert float(tnp.logsumexp(np.array([-np.inf, -np.inf]))) == -np.inf


def test_where_with_an_unsafe_branch_and_the_safe_idiom() -> None:
    # The unselected branch's derivative is multiplied by a zero cotangent; where it is
    # infinite (log at 0) the product is NaN, as in JAX and PyTorch. Making the operand
    # safe first (the double where) gives exact derivatives.
    x = np.array([0.0, 2.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        g = tg.grad(lambda x: tnp.sum(tnp.where(x > 0, tnp.log(x), 0.0)))(x)
    assert math.isnan(g[0]) and g[1] == 0.5

    def safe(x: Any) -> Any:
        positive = x > 0
        return tnp.sum(tnp.where(positive, tnp.log(tnp.where(positive, x, 1.0)), 0.0))

    assert tg.grad(safe)(x).tolist() == [0.0, 0.5]


# ---------------------------------------------------------------------------
# Empty arrays, where NumPy allows them.
# ---------------------------------------------------------------------------


def test_empty_arrays_flow_through_and_get_empty_gradients() -> None:
    empty = np.zeros((0,))
    g = tg.grad(lambda x: tnp.sum(tnp.exp(x) * 2.0))(empty)
    assert g.shape == (0,) and g.dtype == np.float64
    a, b = np.zeros((0, 3)), np.ones((3, 2))
    ga, gb = tg.grad(lambda a, b: tnp.sum(a @ b), argnums=(0, 1))(a, b)
    assert ga.shape == (0, 3) and gb.tolist() == np.zeros((3, 2)).tolist()
    bias = np.array([1.0, 2.0, 3.0])
    gbias = tg.grad(lambda c: tnp.sum(tnp.tanh(a + c)))(bias)  # broadcast against no rows
    assert gbias.tolist() == [0.0, 0.0, 0.0]
    m = np.arange(6.0).reshape(2, 3)
    assert tg.grad(lambda m: tnp.sum(m[:, 3:]))(m).tolist() == np.zeros((2, 3)).tolist()
    g = tg.grad(lambda m: tnp.sum(tnp.concatenate([m, np.zeros((0, 3))])))(m)
    assert g.tolist() == np.ones((2, 3)).tolist()
    g = tg.grad(lambda m: tnp.sum(tnp.sum(m[:, :0], axis=1) + 1.0))(m)
    assert g.tolist() == np.zeros((2, 3)).tolist()
    g = tg.grad(lambda m: tnp.sum(tnp.einsum("ij,jk->ik", m[:, :0], np.ones((0, 4)))))(m)
    assert g.tolist() == np.zeros((2, 3)).tolist()
    assert tg.jit(lambda x: tnp.sum(x * 2.0))(empty) == 0.0
    assert tg.jacrev(lambda x: x * 2.0)(empty).shape == (0, 0)
    assert tg.jacfwd(lambda x: tnp.sum(x))(empty).shape == (0,)
    with np.errstate(invalid="ignore"):
        assert math.isnan(float(tnp.mean(empty)))
    with pytest.raises(ValueError, match="zero-size array"):
        tg.grad(tnp.max)(empty)
