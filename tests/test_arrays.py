"""Arrays on the tape: compositions, hand-derived values, methods, scalars meeting arrays, dtypes.

The table's entries one by one are in test_array_rules.py; here are the functions
of tapegrad.numpy composed from them, values worked out by hand, and how arrays mix
with the scalar tape and with NumPy's dtypes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from arraycheck import EACH, assert_fd_close, check_gradient, numeric_gradient, weights
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tapegrad as tg
import tapegrad.numpy as tnp

SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3)


def grid_array(shape: tuple[int, ...], offset: float = 0.0) -> st.SearchStrategy[np.ndarray]:
    """Distinct values on a 0.01 grid (no ties, no zero variance)."""
    return hnp.arrays(np.float64, shape, unique=True,
                      elements=st.integers(-300, 300).map(lambda k: k / 100 + offset))


def axis_and_keepdims(ndim: int) -> st.SearchStrategy[tuple[Any, bool]]:
    axes = st.one_of(st.none(), st.integers(-ndim, ndim - 1),
                     st.lists(st.integers(0, ndim - 1), unique=True, min_size=1).map(tuple))
    return st.tuples(axes, st.booleans())


def reduced_count(shape: tuple[int, ...], axis: Any) -> int:
    axes = range(len(shape)) if axis is None else (
        [axis] if isinstance(axis, int) else list(axis))
    return int(np.prod([shape[a] for a in axes]))


# ---------------------------------------------------------------------------
# Compositions of tapegrad.numpy against central differences.
# ---------------------------------------------------------------------------


@EACH
@given(data=st.data())
def test_mean_var_std_with_axis_and_keepdims(data: Any) -> None:
    shape = data.draw(SHAPES)
    axis, keepdims = data.draw(axis_and_keepdims(len(shape)))
    ddof = data.draw(st.sampled_from([0, 1]))
    assume(reduced_count(shape, axis) >= 2)  # a variance of one element is 0: std has a kink
    x = data.draw(grid_array(shape))
    for fn, reference in [
        (lambda x: tnp.mean(x, axis=axis, keepdims=keepdims),
         lambda x: np.mean(x, axis=axis, keepdims=keepdims)),
        (lambda x: tnp.var(x, axis=axis, keepdims=keepdims, ddof=ddof),
         lambda x: np.var(x, axis=axis, keepdims=keepdims, ddof=ddof)),
        (lambda x: tnp.std(x, axis=axis, keepdims=keepdims, ddof=ddof),
         lambda x: np.std(x, axis=axis, keepdims=keepdims, ddof=ddof)),
        (lambda x: x.mean(axis=axis, keepdims=keepdims),
         lambda x: x.mean(axis=axis, keepdims=keepdims)),
        (lambda x: x.var(axis=axis, keepdims=keepdims),
         lambda x: x.var(axis=axis, keepdims=keepdims)),
        (lambda x: x.std(axis=axis, keepdims=keepdims),
         lambda x: x.std(axis=axis, keepdims=keepdims)),
    ]:
        np.testing.assert_allclose(fn(x), reference(x), rtol=1e-12, atol=1e-12)
        check_gradient(fn, x)


@EACH
@given(data=st.data())
def test_clip_away_from_its_bounds(data: Any) -> None:
    x = data.draw(grid_array(data.draw(SHAPES), offset=0.005))  # never on a bound
    lo = data.draw(st.none() | st.integers(-300, 0).map(lambda k: k / 100))
    hi = data.draw(st.none() | st.integers(1, 300).map(lambda k: k / 100))
    grads = check_gradient(lambda x: tnp.clip(x, lo, hi), x)
    inside = (x > (-np.inf if lo is None else lo)) & (x < (np.inf if hi is None else hi))
    assert np.all(grads[0][~inside] == 0.0), "clipped elements get no gradient"
    check_gradient(lambda x: x.clip(lo, hi), x)


@EACH
@given(data=st.data())
def test_dot_and_outer(data: Any) -> None:
    n, k, m = (data.draw(st.integers(1, 3)) for _ in range(3))
    kind = data.draw(st.sampled_from(["vv", "mv", "vm", "mm", "scalar"]))
    shapes = {"vv": ((k,), (k,)), "mv": ((n, k), (k,)), "vm": ((k,), (k, m)),
              "mm": ((n, k), (k, m)), "scalar": ((), (n, k))}[kind]
    x = data.draw(hnp.arrays(np.float64, shapes[0], elements=st.floats(-3, 3)))
    y = data.draw(hnp.arrays(np.float64, shapes[1], elements=st.floats(-3, 3)))
    np.testing.assert_allclose(tnp.dot(x, y), np.dot(x, y), rtol=1e-12, atol=1e-12)
    check_gradient(tnp.dot, x, y, argnums=(0, 1))
    if kind != "scalar":
        check_gradient(lambda x, y: x.dot(y), x, y, argnums=(0, 1))
    np.testing.assert_allclose(tnp.outer(x, y), np.outer(x, y), rtol=1e-12)
    check_gradient(tnp.outer, x, y, argnums=(0, 1))


@EACH
@given(data=st.data())
def test_take_with_and_without_axis(data: Any) -> None:
    shape = data.draw(SHAPES)
    x = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-3, 3)))
    axis = data.draw(st.none() | st.integers(-len(shape), len(shape) - 1))
    n = x.size if axis is None else shape[axis]
    indices = data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=5))
    as_array = data.draw(st.booleans())
    idx = np.array(indices) if as_array else indices
    np.testing.assert_array_equal(tnp.take(x, idx, axis=axis), np.take(x, indices, axis=axis))
    check_gradient(lambda x: tnp.take(x, idx, axis=axis), x)


@EACH
@given(data=st.data())
def test_stack_expand_dims_squeeze_swapaxes(data: Any) -> None:
    shape = data.draw(SHAPES)
    count = data.draw(st.integers(1, 3))
    xs = tuple(data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-3, 3)))
               for _ in range(count))
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    np.testing.assert_array_equal(tnp.stack(xs, axis=axis), np.stack(xs, axis=axis))
    check_gradient(lambda *xs: tnp.stack(xs, axis=axis), *xs, argnums=tuple(range(count)))
    x = xs[0]
    check_gradient(lambda x: tnp.expand_dims(x, axis), x)
    check_gradient(lambda x: tnp.squeeze(tnp.expand_dims(x, axis), axis), x)
    a, b = data.draw(st.integers(0, len(shape) - 1)), data.draw(st.integers(-len(shape), -1))
    np.testing.assert_array_equal(tnp.swapaxes(x, a, b), np.swapaxes(x, a, b))
    check_gradient(lambda x: tnp.swapaxes(x, a, b), x)


def test_squeeze_of_all_length_one_axes_and_its_method() -> None:
    x = np.arange(3.0).reshape(1, 3, 1)
    assert tnp.squeeze(x).shape == (3,)
    check_gradient(tnp.squeeze, x)
    check_gradient(lambda x: x.squeeze(), x)
    check_gradient(lambda x: x.squeeze(0), x)


def test_einsum_with_three_operands_by_hand() -> None:
    # sum over i, l of (A B C)[i, l] = (1^T A) B (C 1): d/dB = outer(A^T 1, C 1).
    rng = np.random.default_rng(1)
    a, b, c = rng.normal(size=(2, 3)), rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    grads = tg.grad(lambda a, b, c: tnp.sum(tnp.einsum("ij,jk,kl->il", a, b, c)),
                    argnums=(0, 1, 2))(a, b, c)
    np.testing.assert_allclose(grads[1], np.outer(a.sum(0), c.sum(1)), rtol=1e-13)
    np.testing.assert_allclose(grads[0], np.tile((b @ c).sum(1), (2, 1)), rtol=1e-13)
    check_gradient(lambda a, b, c: tnp.einsum("ij,jk,kl->il", a, b, c), a, b, c,
                   argnums=(0, 1, 2))
    # Two operands, implicit output (alphabetical free indices): a matrix product.
    check_gradient(lambda a, b: tnp.einsum("ij,jk", a, b), a, b, argnums=(0, 1))


# ---------------------------------------------------------------------------
# Indexing, each kind by hand: the adjoint puts the cotangent back where it came from.
# ---------------------------------------------------------------------------

X = np.arange(12.0).reshape(3, 4)


def grad_of_sum(index: Any, x: np.ndarray = X) -> np.ndarray:
    """d sum(w * x[index]) / dx for fixed irregular weights w."""
    return check_gradient(lambda x: x[index], x)[0]


@pytest.mark.parametrize("index", [
    (1,), (-1, 2), (slice(1, None),), (slice(None, None, -1),), (slice(None), slice(3, 0, -2)),
    (None, 1), (Ellipsis, -1), (1, Ellipsis, None), (slice(None), None, slice(1, 3)),
    (np.int64(2), slice(None)), (slice(5, 9),),  # an empty slice: a zero gradient
], ids=repr)
def test_basic_indexing_puts_the_cotangent_back(index: Any) -> None:
    w = weights(X[index].shape)
    expected = np.zeros_like(X)
    expected[index] = w  # basic indexing never repeats an element
    np.testing.assert_array_equal(tg.grad(lambda x: tnp.sum(x[index] * w))(X), expected)
    grad_of_sum(index)


def test_repeated_integer_indices_add_up() -> None:
    x = np.array([1.0, 2.0, 3.0])
    g = tg.grad(lambda x: tnp.sum(x[[0, 0, 2, 0]]))(x)
    np.testing.assert_array_equal(g, [3.0, 0.0, 1.0])
    g = tg.grad(lambda x: tnp.sum(x[np.array([[1, 1], [-1, 1]])] ** 2))(x)
    np.testing.assert_array_equal(g, [0.0, 3 * 2 * 2.0, 2 * 3.0])
    # Rows of a matrix, and (row, column) pairs with a repeated pair.
    np.testing.assert_array_equal(tg.grad(lambda x: tnp.sum(x[[2, 2, 0]]))(X),
                                  [[1.0] * 4, [0.0] * 4, [2.0] * 4])
    expected = np.zeros_like(X)
    expected[0, 1] = 2.0
    expected[2, 3] = 1.0
    np.testing.assert_array_equal(tg.grad(lambda x: tnp.sum(x[[0, 0, 2], [1, 1, 3]]))(X),
                                  expected)
    for index in ([2, 2, 0], (slice(None), [3, 3, -1]), ([0, 0, 2], [1, 1, 3]),
                  (np.array([[0, 0], [1, 2]]), slice(None, None, -1))):
        grad_of_sum(index)


def test_constant_boolean_masks_select_and_scatter_back() -> None:
    mask = X > 5.0
    np.testing.assert_array_equal(tg.grad(lambda x: tnp.sum(x[mask]))(X), mask.astype(float))
    rows = np.array([True, False, True])
    np.testing.assert_array_equal(tg.grad(lambda x: tnp.sum(x[rows, 1:]))(X),
                                  [[0, 1, 1, 1], [0, 0, 0, 0], [0, 1, 1, 1]])
    for index in (mask, rows, (rows, slice(None, None, -1)), np.zeros(3, bool)):
        grad_of_sum(index)


def test_take_adds_repeated_indices() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(tg.grad(lambda x: tnp.sum(tnp.take(x, [3, 3, 0, -1])))(x),
                                  [1.0, 0.0, 0.0, 3.0])
    np.testing.assert_array_equal(
        tg.grad(lambda x: tnp.sum(tnp.take(x, [1, 1], axis=1)))(X),
        [[0.0, 2.0, 0.0, 0.0]] * 3)


def test_integer_and_boolean_arrays_as_non_differentiated_arguments() -> None:
    # Softmax cross-entropy with integer labels: d/dlogits = (softmax - onehot) / n.
    logits = np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 3.0]])
    labels = np.array([1, 2])
    mask = np.array([True, False, True])

    def loss(z: Any, labels: np.ndarray, mask: np.ndarray) -> Any:
        picked = z[np.arange(len(labels)), labels]
        ce = tnp.mean(tnp.logsumexp(z, axis=1) - picked)
        return ce + 0.1 * tnp.sum(tnp.where(mask, z, 0.0) ** 2)

    g = tg.grad(loss)(logits, labels, mask)
    softmax = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = (softmax - np.eye(3)[labels]) / 2 + 0.2 * np.where(mask, logits, 0.0)
    np.testing.assert_allclose(g, expected, rtol=1e-13, atol=1e-15)
    assert tg.jit(tg.grad(loss))(logits, labels, mask) == pytest.approx(g, rel=1e-12)


# ---------------------------------------------------------------------------
# Hand-derived values.
# ---------------------------------------------------------------------------


def test_matmul_gradients_are_g_times_the_other_transposed() -> None:
    rng = np.random.default_rng(0)
    x, w, g = rng.normal(size=(3, 2)), rng.normal(size=(2, 4)), rng.normal(size=(3, 4))
    gx, gw = tg.grad(lambda x, w: tnp.sum((x @ w) * g), argnums=(0, 1))(x, w)
    np.testing.assert_allclose(gx, g @ w.T, rtol=1e-14)
    np.testing.assert_allclose(gw, x.T @ g, rtol=1e-14)
    # A stack of matrices times one matrix: W is used once per stack, so its gradient sums.
    xs, gs = rng.normal(size=(5, 3, 2)), rng.normal(size=(5, 3, 4))
    gw = tg.grad(lambda w: tnp.sum(tnp.matmul(xs, w) * gs))(w)
    np.testing.assert_allclose(gw, sum(xs[b].T @ gs[b] for b in range(5)), rtol=1e-13)
    # Vectors: x @ v for a vector v gives d/dv = x^T g; v @ w gives d/dv = w g.
    v = rng.normal(size=2)
    np.testing.assert_allclose(tg.grad(lambda v: tnp.sum((x @ v) * g[:, 0]))(v),
                               x.T @ g[:, 0], rtol=1e-14)
    np.testing.assert_allclose(tg.grad(lambda v: tnp.sum((v @ w) * g[0]))(v), w @ g[0],
                               rtol=1e-14)
    assert tg.grad(lambda v: v @ v)(v) == pytest.approx(2 * v, rel=1e-15)


def test_broadcasting_adjoint_is_a_sum_over_the_broadcast_axes() -> None:
    g = np.arange(12.0).reshape(3, 4)
    x = np.ones((3, 4))
    for b, expected in [(np.ones(4), g.sum(0)), (np.ones((3, 1)), g.sum(1, keepdims=True)),
                        (np.ones((1, 4)), g.sum(0, keepdims=True)), (np.array(1.0), g.sum()),
                        (np.ones((2, 3, 4)), g)]:
        gb = tg.grad(lambda b: tnp.sum((x + b) * g))(b)
        assert gb.shape == b.shape
        np.testing.assert_array_equal(gb, np.broadcast_to(expected, b.shape))
        np.testing.assert_array_equal(tg.grad(lambda b: tnp.sum((b * x) * g))(b), gb)
    # and for the wider operand when the other broadcasts up: nothing is summed
    np.testing.assert_array_equal(tg.grad(lambda x: tnp.sum((x - np.ones(4)) * g))(x), g)


def test_reductions_by_hand() -> None:
    x = np.array([[1.0, 2.0, 4.0], [0.5, 3.0, 1.0]])
    np.testing.assert_array_equal(tg.grad(lambda x: tnp.sum(tnp.mean(x, axis=0)))(x),
                                  np.full_like(x, 0.5))
    np.testing.assert_allclose(tg.grad(tnp.var)(x), 2 * (x - x.mean()) / x.size, rtol=1e-14)
    softmax = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(tg.grad(lambda x: tnp.sum(tnp.logsumexp(x, axis=1)))(x),
                               softmax, rtol=1e-14)
    np.testing.assert_array_equal(tg.grad(tnp.prod)(x), np.prod(x) / x)
    np.testing.assert_array_equal(tg.grad(lambda x: tnp.sum(tnp.max(x, axis=1)))(x),
                                  [[0, 0, 1], [0, 1, 0]])


def test_logsumexp_does_not_overflow() -> None:
    x = np.array([1000.0, 1000.0, -1000.0])
    assert tnp.logsumexp(x) == pytest.approx(1000.0 + np.log(2.0))
    np.testing.assert_allclose(tg.grad(tnp.logsumexp)(x), [0.5, 0.5, 0.0], atol=1e-300)


# ---------------------------------------------------------------------------
# Methods and attributes of traced arrays, as NumPy users write them.
# ---------------------------------------------------------------------------


def test_attributes_and_methods_of_traced_arrays() -> None:
    seen: dict = {}

    def f(x: Any) -> Any:
        seen.update(shape=x.shape, ndim=x.ndim, dtype=x.dtype, size=x.size, len=len(x),
                    T=x.T.shape, tnp_shape=tnp.shape(x), np_shape=np.shape(x))
        rows = [row for row in x]  # iteration gives the rows
        seen["rows"] = len(rows)
        total = x.sum(axis=0).mean() + x.max() - x.min() + x.prod() * 0.01
        total = total + x.reshape(-1).dot(x.ravel()) + x.flatten()[0] + x.T[1, 0]
        return total + x.reshape(3, 2).sum() + x.transpose().mean() + rows[1][2]

    x = np.array([[1.0, 2.0, 3.5], [0.5, -1.0, 2.0]])
    check_gradient(f, x)
    assert seen == {"shape": (2, 3), "ndim": 2, "dtype": np.float64, "size": 6, "len": 2,
                    "T": (3, 2), "tnp_shape": (2, 3), "np_shape": (2, 3), "rows": 2}


def test_len_and_iteration_of_a_0d_traced_array_are_type_errors() -> None:
    def f(x: Any) -> Any:
        s = tnp.sum(x)
        with pytest.raises(TypeError, match="0-d"):
            len(s)
        with pytest.raises(TypeError, match="0-d"):
            iter(s)
        return s

    assert tg.grad(f)(np.ones(2)).tolist() == [1.0, 1.0]


# ---------------------------------------------------------------------------
# Scalars and arrays together.
# ---------------------------------------------------------------------------


def test_float_parameter_times_traced_array() -> None:
    x = np.array([1.0, -2.0, 0.5])
    ga, gx = tg.grad(lambda a, x: tnp.sum(a * x * x), argnums=(0, 1))(3.0, x)
    assert type(ga) is float and ga == pytest.approx(np.sum(x * x))
    np.testing.assert_allclose(gx, 6.0 * x)
    # the float on the right, a traced float with a constant array, and a pytree mixing both
    assert tg.grad(lambda a: tnp.sum(x * a))(2.0) == pytest.approx(x.sum())
    assert tg.grad(lambda a: tnp.sum(x / a))(2.0) == pytest.approx(-x.sum() / 4)
    params = {"scale": 2.0, "w": np.array([0.5, 1.5])}
    g = tg.grad(lambda p: tnp.sum(p["scale"] * p["w"] ** 2))(params)
    assert type(g["scale"]) is float and g["scale"] == pytest.approx(2.5)
    np.testing.assert_allclose(g["w"], [2.0, 6.0])


def test_array_reductions_in_scalar_code() -> None:
    x = np.array([0.3, -0.1, 0.4])

    def f(x: Any) -> Any:
        s = tnp.sum(x)
        if s > 0:  # a comparison of a traced 0-d array drives Python control flow
            return tg.tanh(s) * 2.0 + tg.exp(tnp.max(x))
        return tg.sin(s)

    expected = 2.0 * (1 - np.tanh(x.sum()) ** 2) + np.exp(0.4) * (x == 0.4)
    np.testing.assert_allclose(tg.grad(f)(x), expected, rtol=1e-14)
    np.testing.assert_allclose(tg.grad(f)(-x), np.cos(-x.sum()), rtol=1e-14)
    # a traced scalar leaf used with a constant array, and a list of traced scalars
    assert tg.grad(lambda a: tg.tanh(tnp.sum(a * x)))(1.0) == pytest.approx(
        (1 - np.tanh(x.sum()) ** 2) * x.sum())
    assert tg.grad(lambda a, b: tnp.sum(tnp.asarray([a, b * b]) * x[:2]), argnums=(0, 1))(
        1.0, 2.0) == pytest.approx((0.3, -0.4))


def test_grad_accepts_a_0d_array_or_numpy_scalar_output() -> None:
    x = np.array([1.0, 2.0])
    g = tg.grad(lambda x: tnp.sum(x * x))(x)
    assert isinstance(g, np.ndarray) and g.tolist() == [2.0, 4.0]
    v, g = tg.value_and_grad(lambda x: tnp.sum(x * x, keepdims=False))(x)
    assert np.shape(v) == () and float(v) == 5.0 and g.tolist() == [2.0, 4.0]
    # a 0-d array leaf and output: a 0-d gradient
    g = tg.grad(lambda x: x * x * 2.0)(np.array(3.0))
    assert isinstance(g, np.ndarray) and g.shape == () and float(g) == 12.0
    g = tg.grad(lambda x: tnp.sum(x, axis=0, keepdims=True)[0])(x)  # 0-d from indexing
    assert g.tolist() == [1.0, 1.0]
    # a 0-d array of a scalar input, and a NumPy scalar that does not depend on the input
    assert tg.grad(lambda a: tnp.sum(x * a))(3.0) == pytest.approx(3.0)
    v, g = tg.value_and_grad(lambda a: np.float64(3.0))(2.0)
    assert v == 3.0 and g == 0.0
    assert tg.grad(lambda x: tnp.sum(x)[()] * 2.0)(x).tolist() == [2.0, 2.0]


@pytest.mark.parametrize("leaf, kind", [(np.float64(1.5), np.float64),
                                        (np.float32(1.5), np.float32),
                                        (np.int64(2), float)])
def test_numpy_scalars_as_leaves_keep_their_type(leaf: Any, kind: type) -> None:
    g = tg.grad(lambda a: a * a * 3.0)(leaf)
    assert type(g) is kind
    assert g == pytest.approx(6.0 * float(leaf))
    g = tg.grad(lambda a: tnp.sum(a * np.array([1.0, 2.0])))(leaf)
    assert type(g) is kind and g == pytest.approx(3.0)
    gs = tg.grad(lambda p: p[0] * p[1], argnums=0)([leaf, 2.0])
    assert type(gs[0]) is kind and type(gs[1]) is float


# ---------------------------------------------------------------------------
# dtypes.
# ---------------------------------------------------------------------------


def mlp_loss(params: list, x: np.ndarray, y: np.ndarray) -> Any:
    h = x
    for w, b in params[:-1]:
        h = tnp.tanh(h @ w.T + b)
    w, b = params[-1]
    return tnp.mean((h @ w.T + b - y) ** 2)


def mlp_params(dtype: Any, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(4, 2)).astype(dtype), rng.normal(size=4).astype(dtype)),
            (rng.normal(size=(1, 4)).astype(dtype), np.zeros(1, dtype=dtype))]


def test_float32_parameters_give_float32_gradients_and_values() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 2)).astype(np.float32)
    y = rng.normal(size=(5, 1)).astype(np.float32)
    params = mlp_params(np.float32)
    value, grads = tg.value_and_grad(mlp_loss)(params, x, y)
    assert value.dtype == np.float32
    for (gw, gb), (w, b) in zip(grads, params):
        assert gw.dtype == np.float32 and gb.dtype == np.float32
        assert gw.shape == w.shape and gb.shape == b.shape
    # Every array on the tape stays float32: nothing upcasts along the way.
    tape = tg.trace(mlp_loss, argnums=0)(params, x, y)
    wide = [r for r in tape if np.ndim(r.value) and np.asarray(r.value).dtype != np.float32]
    assert not wide, f"records upcast from float32: {wide}"
    # The float32 gradient agrees with the float64 one to float32 precision.
    grads64 = tg.grad(mlp_loss)(mlp_params(np.float64), x.astype(np.float64),
                                y.astype(np.float64))
    for g32, g64 in zip(tg.tree_leaves(grads), tg.tree_leaves(grads64)):
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-5)


def test_float32_values_through_the_elementwise_ops() -> None:
    x = np.array([0.25, 0.5, 0.75], dtype=np.float32)
    names = ["exp", "expm1", "log", "log1p", "sqrt", "tanh", "sin", "cos", "tan", "sigmoid",
             "softplus", "log_sigmoid", "abs", "relu", "negative", "square"]
    for name in names:
        fn = getattr(tnp, name)
        out = fn(x)
        assert out.dtype == np.float32, name
        g = tg.grad(lambda x, fn=fn: tnp.sum(fn(x) * 2.0))(x)
        assert g.dtype == np.float32, name
        g64 = tg.grad(lambda x, fn=fn: tnp.sum(fn(x) * 2.0))(x.astype(np.float64))
        np.testing.assert_allclose(g, g64, rtol=1e-5, err_msg=name)
    for fn in (tnp.sum, tnp.mean, tnp.var, tnp.max, tnp.prod, tnp.logsumexp):
        assert tg.grad(lambda x, fn=fn: fn(x * 3.0))(x).dtype == np.float32


def test_float32_leaves_mixed_with_float64_data() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 3))  # float64 data
    w = rng.normal(size=(3, 2)).astype(np.float32)
    gw = tg.grad(lambda w: tnp.sum(tnp.tanh(x @ w)))(w)
    assert gw.dtype == np.float32
    w64 = w.astype(np.float64)
    expected = x.T @ (1 - np.tanh(x @ w64) ** 2)
    np.testing.assert_allclose(gw, expected, rtol=1e-6)
    # and a float64 leaf with float32 data
    g = tg.grad(lambda x: tnp.sum(x @ w))(x)
    assert g.dtype == np.float64


def test_tape_prints_shapes_and_dtypes() -> None:
    x = np.ones((5, 2))
    params = mlp_params(np.float64)
    text = str(tg.trace(mlp_loss, argnums=0)(params, x, np.ones((5, 1))))
    assert "matmul" in text and "f64[5,4]" in text and "f64[4,2]" in text
    text32 = str(tg.trace(lambda w: tnp.sum(x.astype(np.float32) @ w))(
        np.ones((2, 3), np.float32)))
    assert "f32[5,3]" in text32


def test_numeric_gradient_helper_is_sound() -> None:
    # The finite differences the suite relies on, against a known derivative.
    x = np.array([0.5, -1.0, 2.0])
    numeric = numeric_gradient(lambda x: float(np.sum(np.sin(x) * x)), (x,), 0)
    assert_fd_close(numeric, np.cos(x) * x + np.sin(x), 3.0, "sin(x) * x")
