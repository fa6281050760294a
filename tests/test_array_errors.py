"""Bad input on arrays gets a clear error naming the problem; NumPy never drops a derivative.

Each error is checked for what it names (the operation, the shapes, the place) and,
where it gives advice, the advice is followed and shown to work.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

import numpy as np
import pytest
from arraycheck import check_gradient

import tapegrad as tg
import tapegrad.numpy as tnp

X = np.array([[0.3, 0.7, 1.2], [0.5, 0.9, 1.6]])
W = np.array([[0.2, -0.4], [0.1, 0.3], [-0.5, 0.8]])


def traced(f: Callable[[Any], Any], x: np.ndarray = X) -> Any:
    """Run f on a traced version of x (inside grad), returning what f returns."""
    box: list = []

    def loss(x: Any) -> Any:
        box.append(f(x))
        return tnp.sum(x)

    tg.grad(loss)(x)
    return box[0]


# ---------------------------------------------------------------------------
# Shapes that do not broadcast or multiply: ValueError naming the operation and shapes.
# ---------------------------------------------------------------------------

BAD = np.ones(4)
SHAPE_ERRORS = {
    "add": lambda x: x + BAD, "subtract": lambda x: BAD - x, "multiply": lambda x: x * BAD,
    "divide": lambda x: x / BAD, "power": lambda x: x ** BAD,
    "maximum": lambda x: tnp.maximum(x, BAD), "minimum": lambda x: tnp.minimum(BAD, x),
    "where": lambda x: tnp.where(x > 0, x, BAD), "less": lambda x: x < BAD,
    "matmul": lambda x: x @ np.ones((4, 2)),
    "einsum": lambda x: tnp.einsum("ij,jk->ik", x, np.ones((4, 2))),
}


@pytest.mark.parametrize("name", sorted(SHAPE_ERRORS))
def test_shapes_that_do_not_fit_name_the_operation_and_both_shapes(name: str) -> None:
    with pytest.raises(ValueError) as info:
        traced(SHAPE_ERRORS[name])
    message = str(info.value)
    assert f"tapegrad.numpy.{name}" in message, message
    assert "(2, 3)" in message and "(4" in message, message
    with pytest.raises(ValueError, match=f"tapegrad.numpy.{name}"):
        tg.jit(lambda x: tnp.sum(SHAPE_ERRORS[name](x)))(X)


@pytest.mark.parametrize("f, pattern", [
    (lambda x: tnp.dot(x, np.ones((4, 2))), r"matmul: shapes \(2, 3\) and \(4, 2\)"),
    (lambda x: tnp.reshape(x, (4, 2)), r"reshape: an array of shape \(2, 3\) cannot be "
                                      r"reshaped to \(4, 2\)"),
    (lambda x: tnp.broadcast_to(x, (3, 3)), r"broadcast_to: shape \(2, 3\) does not broadcast"),
    (lambda x: tnp.concatenate([x, np.ones((2, 2))]), r"concatenate: shapes \[\(2, 3\), \(2, 2\)"),
    (lambda x: tnp.stack([x, np.ones(3)]), r"stack: all arrays must have one shape"),
    (lambda x: tnp.squeeze(x, 0), r"squeeze: axis 0 has length 2, not 1"),
    (lambda x: tnp.transpose(x, (0, 0)), r"transpose: axes \(0, 0\) do not permute"),
    (lambda x: tnp.mean(x, axis=2), r"axis 2 is out of bounds"),
    (lambda x: tnp.einsum("ij,jk->ik", x), r"einsum: 'ij,jk->ik' names 2 operands, 1 were"),
])
def test_other_shape_errors_name_the_function_and_shapes(f: Callable, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        traced(f)


# ---------------------------------------------------------------------------
# Writing into traced arrays, or traced values into NumPy arrays.
# ---------------------------------------------------------------------------


def test_writing_into_a_traced_array_says_it_is_immutable_and_what_to_write() -> None:
    def write(x: Any) -> Any:
        x[0] = 1.0
        return x

    with pytest.raises(TypeError, match="traced arrays are immutable.*tnp.where"):
        traced(write)
    # The advice works: a new array built with where.
    mask = np.zeros_like(X, dtype=bool)
    mask[0] = True
    g = tg.grad(lambda x: tnp.sum(tnp.where(mask, 1.0, x) * 2.0))(X)
    np.testing.assert_array_equal(g, np.where(mask, 0.0, 2.0))


@pytest.mark.parametrize("write", [
    lambda a, x: np.add(a, x, out=a),
    lambda a, x: np.tanh(x, out=a),
    lambda a, x: a.__iadd__(x),  # a += x
    lambda a, x: a.__imul__(x),  # a *= x
], ids=["np.add(a, x, out=a)", "np.tanh(x, out=a)", "a += x", "a *= x"])
def test_writing_a_traced_array_into_a_numpy_array_is_refused(write: Callable) -> None:
    a = np.zeros_like(X)
    with pytest.raises(TypeError, match=r"out=\.\.\..*traced arrays are immutable.*a = a \+ x"):
        traced(lambda x: write(a, x))
    assert not a.any(), "the NumPy array was written"
    check_gradient(lambda x: a + x, X)  # the advice works


def test_storing_a_traced_value_in_a_numpy_array_names_tapegrad_numpy() -> None:
    a = np.zeros(3)

    def store_slice(x: Any) -> Any:
        a[:] = x[0]
        return x

    def store_element(x: Any) -> Any:
        a[0] = tnp.sum(x)
        return x

    with pytest.raises(TypeError, match="tapegrad.numpy"):
        traced(store_slice)
    # NumPy wraps the refusal in its own ValueError; the refusal is the cause.
    with pytest.raises((TypeError, ValueError)) as info:
        traced(store_element)
    cause = info.value if isinstance(info.value, TypeError) else info.value.__cause__
    assert "tapegrad.numpy" in str(cause)
    # the advice: build the array from traced values with tnp
    check_gradient(lambda x: tnp.stack([x[0, 0], tnp.sum(x), x[1, 2]]), X)


# ---------------------------------------------------------------------------
# Plain NumPy on traced arrays: it dispatches (with the right derivative) or refuses.
# ---------------------------------------------------------------------------

DISPATCHED: dict[str, Callable[[Any], Any]] = {
    "np.tanh": np.tanh, "np.exp": np.exp, "np.log": np.log, "np.sqrt": np.sqrt,
    "np.abs": np.abs, "np.square": np.square, "np.negative": np.negative, "np.sin": np.sin,
    "np.cos": np.cos, "np.tan": np.tan, "np.expm1": np.expm1, "np.log1p": np.log1p,
    "np.add": lambda x: np.add(x, 1.0), "np.subtract": lambda x: np.subtract(2.0, x),
    "np.multiply": lambda x: np.multiply(x, x), "np.divide": lambda x: np.divide(1.0, x),
    "np.true_divide": lambda x: np.true_divide(x, 2.0), "np.power": lambda x: np.power(x, 3),
    "np.maximum": lambda x: np.maximum(x, 0.8), "np.minimum": lambda x: np.minimum(x, 0.8),
    "np.sum": np.sum, "np.sum axis": lambda x: np.sum(x, axis=0), "np.mean": np.mean,
    "np.mean keepdims": lambda x: np.mean(x, axis=1, keepdims=True), "np.max": np.max,
    "np.min": np.min, "np.amax": np.amax, "np.prod": np.prod, "np.var": np.var,
    "np.std": np.std, "np.var ddof": lambda x: np.var(x, ddof=1),
    "np.dot": lambda x: np.dot(x, W), "np.matmul": lambda x: np.matmul(x, W),
    "W.T @ x.T": lambda x: W.T @ x.T, "np.outer": lambda x: np.outer(x, x),
    "np.einsum": lambda x: np.einsum("ij,jk->ik", x, W),
    "np.reshape": lambda x: np.reshape(x, (3, 2)), "np.transpose": np.transpose,
    "np.swapaxes": lambda x: np.swapaxes(x, 0, 1), "np.expand_dims": lambda x: np.expand_dims(x, 0),
    "np.squeeze": lambda x: np.squeeze(np.expand_dims(x, 0)),
    "np.broadcast_to": lambda x: np.broadcast_to(x, (2, 2, 3)),
    "np.concatenate": lambda x: np.concatenate([x, X]), "np.stack": lambda x: np.stack([x, X]),
    "np.where": lambda x: np.where(x > 0.6, x, 0.0), "np.clip": lambda x: np.clip(x, 0.4, 1.0),
    "np.take": lambda x: np.take(x, [0, 0, 2]), "np.argmax": lambda x: x * np.argmax(x),
    "np.zeros_like": lambda x: x + np.zeros_like(x), "np.ones_like": lambda x: x * np.ones_like(x),
    "np.full_like": lambda x: x * np.full_like(x, 2.0), "np.shape": lambda x: x * np.shape(x)[0],
    "np.sign": lambda x: np.sign(x - 0.8) * x, "np.floor": lambda x: np.floor(x * 2.0 + 0.25) * x,
    "np.logical_and": lambda x: np.where(np.logical_and(x > 0.4, x < 1.0), x, 0.0),
    "np.isnan": lambda x: np.where(np.isnan(x), 0.0, x),
    "ndarray * traced": lambda x: W.T * x, "ndarray - traced": lambda x: W.T - x,
    "ndarray ** traced": lambda x: X ** x, "ndarray @ traced": lambda x: W @ x,
}


@pytest.mark.parametrize("name", sorted(DISPATCHED))
def test_numpy_functions_on_traced_arrays_dispatch_with_the_right_derivative(name: str) -> None:
    fn = DISPATCHED[name]
    value, _ = tg.vjp(fn, X)
    np.testing.assert_allclose(value, fn(X), rtol=1e-15)
    check_gradient(fn, X)


REFUSED: dict[str, Callable[[Any], Any]] = {
    "numpy.cumsum": np.cumsum, "numpy.linalg.inv": lambda x: np.linalg.inv(x[:, :2]),
    "numpy.fft.fft": np.fft.fft, "numpy.sort": np.sort, "numpy.linalg.norm": np.linalg.norm,
    "numpy.arctan": np.arctan, "numpy.log2": np.log2, "numpy.sinh": np.sinh,
    "numpy.hypot": lambda x: np.hypot(x, x), "numpy.round": np.round, "numpy.tile":
    lambda x: np.tile(x, 2), "numpy.flip": np.flip, "numpy.diff": np.diff, "numpy.add":
    lambda x: np.add.reduce(x), "numpy.multiply": lambda x: np.multiply.outer(x, x),
    "numpy.median": np.median, "numpy.linalg.det": lambda x: np.linalg.det(x[:, :2]),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_numpy_functions_without_a_rule_are_refused_by_name(name: str) -> None:
    with pytest.raises(TypeError) as info:
        traced(REFUSED[name])
    message = str(info.value)
    assert re.search(re.escape(name) + r"\b", message), message
    assert "no derivative rule in tapegrad yet" in message and "tapegrad.numpy" in message


@pytest.mark.parametrize("call, names", [
    (lambda x: np.sum(x, dtype=np.float64), ("numpy.sum", "dtype")),
    (lambda x: np.mean(x, dtype=np.float64), ("numpy.mean", "dtype")),
    (lambda x: np.max(x, initial=0.0), ("numpy.max", "initial")),
    (lambda x: np.sum(x, where=x > 0.5), ("numpy.sum", "where")),
    (lambda x: np.exp(x, dtype=np.float64), ("numpy.exp", "dtype")),
])
def test_numpy_arguments_tnp_does_not_take_are_named(call: Callable, names: tuple) -> None:
    with pytest.raises(TypeError) as info:
        traced(call)
    assert all(n in str(info.value) for n in names), str(info.value)


@pytest.mark.parametrize("convert", [
    np.asarray, np.array, float, int, complex, round, lambda x: math.exp(tnp.sum(x)),
    lambda x: np.float64(tnp.sum(x)), lambda x: list(range(tnp.sum(x > 0))),
], ids=["np.asarray", "np.array", "float", "int", "complex", "round", "math.exp",
        "np.float64", "range"])
def test_conversions_that_drop_the_derivative_name_tapegrad_numpy(convert: Callable) -> None:
    with pytest.raises(TypeError, match=r"would silently drop its derivative.*tapegrad\.numpy"):
        traced(lambda x: convert(x[0, 0]))


def test_numpy_methods_a_traced_array_lacks_are_named() -> None:
    for method in ("item", "tolist", "copy"):
        with pytest.raises(AttributeError, match=f"no '{method}'.*tapegrad.numpy"):
            traced(lambda x, method=method: getattr(x, method)())


# ---------------------------------------------------------------------------
# Operations without a rule, and arguments that cannot be differentiated.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("f, pattern", [
    (lambda x: tnp.einsum("...j->...", x), r"einsum: '\.\.\.' has no derivative rule yet"),
    (lambda x: tnp.einsum("ii->", x[:, :2]), r"einsum: a repeated index .*'ii'.* no derivative"),
    (lambda x: tnp.dot(x[None], W), r"dot: arrays above 2-D have no rule yet"),
    (lambda x: tg.erf(x), r"tapegrad\.erf on an array.*no erf yet"),
    (lambda x: tg.atan2(x, x), r"atan2 .* has no rule; use tapegrad\.numpy"),
])
def test_operations_without_a_rule_say_so(f: Callable, pattern: str) -> None:
    with pytest.raises((TypeError, NotImplementedError), match=pattern):
        traced(f)


def test_integer_or_boolean_array_leaves_name_their_place() -> None:
    labels = np.array([1, 2])
    with pytest.raises(TypeError, match=r"argument args\[0\] is an integer or boolean array"):
        tg.grad(lambda x: tnp.sum(x * 1.0))(labels)
    with pytest.raises(TypeError, match=r"args\[1\]\['mask'\] is an integer or boolean array"):
        tg.grad(lambda a, p: tnp.sum(a * p["mask"]), argnums=1)(X, {"mask": X > 1})
    with pytest.raises(TypeError, match=r"args\[0\] is a complex128 array"):
        tg.grad(lambda x: tnp.sum(x))(np.ones(2, complex))
    # the advice works: pass them as arguments that are not differentiated, or as floats
    assert tg.grad(lambda x, labels: tnp.sum(x[labels]))(np.ones(3), labels).tolist() == \
        [0.0, 1.0, 1.0]
    assert tg.grad(lambda x: tnp.sum(x * 2.0))(labels.astype(float)).tolist() == [2.0, 2.0]


def test_a_traced_boolean_mask_as_an_index_points_to_where() -> None:
    with pytest.raises(TypeError, match=r"traced boolean mask.*tnp\.where\(mask, x, 0\.0\)"):
        traced(lambda x: x[x > 1.0])
    g = tg.grad(lambda x: tnp.sum(tnp.where(x > 1.0, x, 0.0)))(X)  # the advice works
    np.testing.assert_array_equal(g, (X > 1.0).astype(float))
    with pytest.raises(IndexError, match="must be integer or boolean, got float64"):
        traced(lambda x: x[np.array([0.0])])
    with pytest.raises(TypeError, match="a traced scalar cannot index an array"):
        tg.grad(lambda x, i: tnp.sum(x[i]), argnums=(0, 1))(X, 1.0)


def test_a_non_scalar_output_of_grad_says_how_to_reduce_it() -> None:
    with pytest.raises(TypeError, match=r"returned an array of shape \(2, 3\).*tnp\.sum"):
        tg.grad(lambda x: x * 2.0)(X)
    assert tg.grad(lambda x: tnp.sum(x * 2.0))(X).shape == (2, 3)  # the advice works


def test_an_escaped_traced_array_is_refused() -> None:
    leaked: list = []
    tg.grad(lambda x: (leaked.append(x * 2.0), tnp.sum(x))[1])(X)
    with pytest.raises(tg.EscapedTracerError):
        leaked[0] + 1.0
    with pytest.raises(tg.EscapedTracerError):
        tnp.tanh(leaked[0])
    with pytest.raises(tg.EscapedTracerError):
        tg.grad(lambda x: tnp.sum(x))(leaked[0])


def test_truth_of_a_multi_element_traced_array_is_numpys_error() -> None:
    with pytest.raises(ValueError, match="truth value of an array with more than one element"):
        traced(lambda x: 1.0 if x > 0 else 0.0)


def test_tangents_and_cotangents_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"tangents\[0\] leaf 0 has shape \(3,\).*\(2, 3\)"):
        tg.jvp(lambda x: x * 2.0, (X,), (np.ones(3),))
    _, vjp_fn = tg.vjp(lambda x: x * 2.0, X)
    with pytest.raises(ValueError, match=r"cotangent 0 has shape \(2,\).*\(2, 3\)"):
        vjp_fn(np.ones(2))
