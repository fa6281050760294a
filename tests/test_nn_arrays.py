"""Tests for tapegrad.nn on arrays: the array MLP, the batch losses and accuracy.

The float layout is the oracle: the same numbers as arrays must give the same
outputs, losses and gradients (to rounding), and gradients are also checked
against central differences computed here, independently of tapegrad.
"""

import math
import random

import numpy as np
import pytest
from conftest import FEW
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tapegrad as tg
import tapegrad.numpy as tnp
from tapegrad import nn


def central_differences(f, x, eps=1e-6):
    """The gradient of the scalar function f at the float64 array x, element by element."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += eps
        down[idx] -= eps
        grad[idx] = (float(f(up)) - float(f(down))) / (2 * eps)
    return grad


def as_arrays(params):
    """The float layout's numbers as the array layout: W[j, i] is weight i of neuron j."""
    return [(np.array([w for w, _ in layer]), np.array([b for _, b in layer]))
            for layer in params]


def batch(n, features, seed=0):
    return np.random.default_rng(seed).normal(size=(n, features))


# ---------------------------------------------------------------------------
# init_mlp.
# ---------------------------------------------------------------------------


def test_float_layout_keeps_its_numbers():
    """init_mlp's floats are still the draws of random.Random(seed), neuron by neuron.

    The draw order is written out here as the definition: any change to it would
    change every saved model and every demo's result.
    """
    rng = random.Random(3)
    expected = []
    fan_in = 4
    for fan_out in (5, 2):
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        expected.append(tuple((tuple(rng.uniform(-limit, limit) for _ in range(fan_in)), 0.0)
                              for _ in range(fan_out)))
        fan_in = fan_out
    assert nn.init_mlp(4, [5, 2], seed=3) == tuple(expected)


@pytest.mark.parametrize("dtype", [None, "float64", np.float32, "float16"])
def test_array_layout_holds_the_same_draws(dtype):
    """arrays=True gives W (out, in) and b (out,) holding the float layout's numbers (rounded
    to the dtype), in a list of (W, b) pairs."""
    floats = nn.init_mlp(3, [4, 2], seed=9)
    arrays = nn.init_mlp(3, [4, 2], seed=9, arrays=True, dtype=dtype)
    want = np.dtype("float64" if dtype is None else dtype)
    assert type(arrays) is list and len(arrays) == 2
    for (W, b), (W_ref, _) in zip(arrays, as_arrays(floats)):
        assert type(W) is np.ndarray and W.dtype == want and b.dtype == want
        np.testing.assert_array_equal(W, W_ref.astype(want))
        np.testing.assert_array_equal(b, np.zeros(W.shape[0], want))
    assert [W.shape for W, _ in arrays] == [(4, 3), (2, 4)]


def test_init_mlp_rejects_a_dtype_it_cannot_use():
    """dtype without arrays=True, or a dtype that is not a float, is refused with the fix."""
    with pytest.raises(ValueError, match="pass arrays=True"):
        nn.init_mlp(2, [3], dtype="float32")
    with pytest.raises(ValueError, match="float dtype"):
        nn.init_mlp(2, [3], arrays=True, dtype="int64")
    with pytest.raises(ValueError, match="sizes"):
        nn.init_mlp(2, [True], arrays=True)


# ---------------------------------------------------------------------------
# mlp on arrays.
# ---------------------------------------------------------------------------

# (hidden, final) activations for the array MLP and the same ones for the float MLP.
ACTIVATIONS = {
    "tanh, linear": ((tg.tanh, None), (tg.tanh, None)),
    "relu, sigmoid": ((tg.relu, tg.sigmoid), (tg.relu, tg.sigmoid)),
    "tnp.tanh": ((tnp.tanh, tnp.tanh), (tg.tanh, tg.tanh)),
    "leaky relu": ((lambda v: tnp.maximum(v, 0.1 * v), None),
                   (lambda v: tg.maximum(v, 0.1 * v), None)),
}


@pytest.mark.parametrize("on_arrays, on_floats", ACTIVATIONS.values(), ids=ACTIVATIONS.keys())
def test_array_mlp_matches_float_mlp_row_by_row(on_arrays, on_floats):
    """mlp on a batch gives, row by row, what the float MLP gives for each sample; tapegrad's
    scalar functions (tg.tanh, tg.relu) serve both layouts."""
    floats = nn.init_mlp(3, [5, 4, 2], seed=1)
    X = batch(6, 3)
    out = nn.mlp(as_arrays(floats), X, *on_arrays)
    assert out.shape == (6, 2)
    for x, row in zip(X, out):
        np.testing.assert_allclose(row, nn.mlp(floats, tuple(x), *on_floats), rtol=1e-12,
                                   atol=1e-14)


def test_array_mlp_gradient_matches_floats_and_central_differences():
    """The gradient of a batch loss through the array MLP equals the float MLP's (summed over
    samples) and central differences, for every W and b."""
    floats = nn.init_mlp(3, [4, 2], seed=2)
    arrays = as_arrays(floats)
    X = batch(5, 3, seed=1)

    def array_loss(params):
        return tnp.sum(nn.mlp(params, X) ** 2)

    def float_loss(params):
        return tg.sum([v ** 2 for x in X for v in nn.mlp(params, tuple(x))])

    grads = tg.grad(array_loss)(arrays)
    assert tg.tree_structure(grads) == tg.tree_structure(arrays)
    for got, want in zip(tg.tree_leaves(grads), tg.tree_leaves(as_arrays(tg.grad(float_loss)(
            floats)))):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)
    for layer in range(2):
        for part in range(2):
            def moved(value, layer=layer, part=part):
                params = [list(p) for p in arrays]
                params[layer][part] = value
                return array_loss([tuple(p) for p in params])
            np.testing.assert_allclose(grads[layer][part],
                                       central_differences(moved, arrays[layer][part]),
                                       rtol=1e-6, atol=1e-8)


def test_array_mlp_on_one_sample_and_lists():
    """One sample of shape (in,) gives shape (out,); a list of floats is taken as that sample."""
    arrays = nn.init_mlp(2, [3, 1], seed=4, arrays=True)
    x = np.array([0.5, -1.0])
    one = nn.mlp(arrays, x)
    assert one.shape == (1,)
    np.testing.assert_array_equal(nn.mlp(arrays, [0.5, -1.0]), one)
    np.testing.assert_array_equal(nn.mlp(arrays, x[None, :])[0], one)


def test_float32_mlp_stays_float32():
    """float32 parameters and inputs give float32 outputs, losses and gradients."""
    params = nn.init_mlp(4, [8, 3], seed=0, arrays=True, dtype="float32")
    X = batch(5, 4).astype(np.float32)
    labels = np.array([0, 1, 2, 1, 0])

    def loss(params):
        return nn.softmax_cross_entropy(nn.mlp(params, X), labels) + 1e-3 * nn.l2(params)

    value, grads = tg.value_and_grad(loss)(params)
    assert nn.mlp(params, X).dtype == np.float32
    assert np.asarray(value).dtype == np.float32
    assert all(g.dtype == np.float32 for g in tg.tree_leaves(grads))


def test_array_mlp_under_jit_equals_eager():
    """jit(value_and_grad) of an array MLP loss gives the eager result exactly."""
    params = nn.init_mlp(3, [6, 3], seed=5, arrays=True)
    X, labels = batch(7, 3), np.array([0, 1, 2, 0, 1, 2, 0])

    def loss(params, X, labels):
        return nn.softmax_cross_entropy(nn.mlp(params, X, activation=tg.relu), labels)

    eager = tg.value_and_grad(loss)(params, X, labels)
    compiled = tg.jit(tg.value_and_grad(loss))(params, X, labels)
    assert compiled[0] == eager[0]
    for got, want in zip(tg.tree_leaves(compiled[1]), tg.tree_leaves(eager[1])):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("activation", [tnp.tanh, tnp.relu, tnp.sigmoid, tnp.softplus,
                                        tnp.log_sigmoid])
def test_activations_compile_under_jit(activation):
    """Every activation an array MLP may use runs under jit and agrees with the eager gradient.

    relu, sigmoid, softplus and log_sigmoid have no NumPy function of their name; jit once
    wrote them as _np.relu(...) and failed with an AttributeError.
    """
    x = np.array([[-1.5, 0.0, 0.5], [2.0, -0.25, 3.0]])

    def f(x):
        return tnp.sum(activation(x) ** 2)

    eager = tg.value_and_grad(f)(x)
    compiled = tg.jit(tg.value_and_grad(f))(x)
    assert compiled[0] == eager[0]
    np.testing.assert_array_equal(compiled[1], eager[1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_astype_compiles_under_jit(dtype):
    """jit compiles a dtype conversion (it once wrote _np.'float64', a SyntaxError)."""
    def f(x, labels):
        return tnp.sum(x * tnp.astype(labels, dtype))

    x, labels = np.array([0.5, -2.0]), np.array([1, 3])
    assert tg.jit(tg.value_and_grad(f))(x, labels)[0] == tg.value_and_grad(f)(x, labels)[0]


@pytest.mark.parametrize("params, X, message", [
    ([(np.ones((3, 2)), np.zeros(3))], np.ones((4, 5)), r"input has 5 features.*\(n, in\)"),
    ([(np.ones((3, 2)), np.zeros(3)), (np.ones((1, 4)), np.zeros(1))], np.ones((4, 2)),
     r"layer 0 has 3 outputs but layer 1's W has shape \(1, 4\)"),
    ([(np.ones((3, 2)), np.zeros(2))], np.ones((4, 2)), r"layer 0 has W of shape \(3, 2\) and b"),
    ([(np.ones((3, 2)),)], np.ones((4, 2)), "must be a \\(W, b\\) pair"),
    (np.ones(3), np.ones((4, 2)), "must be the output of init_mlp"),
])
def test_array_mlp_names_shape_problems(params, X, message):
    """Shapes that do not chain raise a ValueError naming the layer, before any arithmetic."""
    with pytest.raises(ValueError, match=message):
        nn.mlp(params, X)


# ---------------------------------------------------------------------------
# Losses on batches: the float versions are the oracle.
# ---------------------------------------------------------------------------

RNG = np.random.default_rng(7)
SCORES = RNG.normal(size=6) * 2
LOGITS = RNG.normal(size=(6, 4)) * 2
SIGNS = np.array([1, -1, -1, 1, 1, -1])
BITS = np.array([1, 0, 0, 1, 1, 0])
CLASSES = np.array([3, 0, 1, 1, 2, 0])
TARGETS = RNG.normal(size=6)

LOSSES = [
    ("mse", nn.mse, SCORES, TARGETS),
    ("sum_squared_error", nn.sum_squared_error, SCORES, TARGETS),
    ("hinge_loss", nn.hinge_loss, SCORES, SIGNS),
    ("binary_cross_entropy", nn.binary_cross_entropy, SCORES, BITS),
    ("softmax_cross_entropy", nn.softmax_cross_entropy, LOGITS, CLASSES),
]


def as_floats(values):
    """An array as the float layout's nested lists of Python numbers."""
    return values.tolist()


@pytest.mark.parametrize("name, loss, predictions, targets", LOSSES, ids=[c[0] for c in LOSSES])
def test_batch_losses_equal_float_losses(name, loss, predictions, targets):
    """Each loss on arrays gives the float version's value and gradient on the same numbers."""
    value, grad = tg.value_and_grad(loss)(predictions, targets)
    want_value, want_grad = tg.value_and_grad(loss)(as_floats(predictions), as_floats(targets))
    assert float(value) == pytest.approx(want_value, rel=1e-13)
    assert grad.shape == predictions.shape and grad.dtype == predictions.dtype
    np.testing.assert_allclose(grad, np.array(want_grad), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad, central_differences(lambda p: loss(p, targets), predictions),
                               rtol=1e-6, atol=1e-9)


@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 4)),
                  elements=st.floats(-30, 30)),
       st.data())
@FEW
def test_softmax_cross_entropy_gradient_is_softmax_minus_onehot(logits, data):
    """d CE / d logits = (softmax(logits) - onehot(labels)) / n, for any logits and labels."""
    n, k = logits.shape
    labels = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    grad = tg.grad(nn.softmax_cross_entropy)(logits, labels)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax = shifted / shifted.sum(axis=1, keepdims=True)
    # softmax - 1 cancels: the rounding of a logit (its ulp) is the error to expect.
    atol = 4 * np.finfo(float).eps * (1.0 + np.abs(logits).max()) / n
    np.testing.assert_allclose(grad, (softmax - np.eye(k)[labels]) / n, rtol=1e-9, atol=atol)


def test_batch_cross_entropies_are_stable_for_huge_logits():
    """Logits of +-1000 give exact finite losses and gradients, without overflow warnings."""
    value, grad = tg.value_and_grad(nn.softmax_cross_entropy)(
        np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0]]), np.array([1, 1]))
    assert float(value) == pytest.approx(500.0)
    np.testing.assert_allclose(grad, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-300)
    value, grad = tg.value_and_grad(nn.binary_cross_entropy)(
        np.array([1000.0, -1000.0, 1000.0]), np.array([1, 0, 0]))
    assert float(value) == pytest.approx(1000.0 / 3)
    np.testing.assert_allclose(grad, [0.0, 0.0, 1 / 3])


@pytest.mark.parametrize("name, loss, predictions, targets", LOSSES, ids=[c[0] for c in LOSSES])
def test_nan_in_gives_nan_out(name, loss, predictions, targets):
    """A NaN prediction makes the batch loss NaN (never a silent finite number)."""
    poisoned = predictions.copy()
    poisoned.flat[2] = np.nan
    assert math.isnan(float(loss(poisoned, targets)))
    assert math.isnan(float(tg.value_and_grad(loss)(poisoned, targets)[0]))


def test_float32_losses_stay_float32():
    """Integer labels do not promote a float32 loss to float64."""
    for _, loss, predictions, targets in LOSSES:
        assert np.asarray(loss(predictions.astype(np.float32), targets)).dtype == np.float32


@pytest.mark.parametrize("call, error, message", [
    (lambda: nn.mse(np.ones((4, 1)), np.ones(4)), ValueError,
     r"shape \(4, 1\) but targets of shape \(4,\).*predictions\[:, 0\]"),
    (lambda: nn.mse(np.ones(0), np.ones(0)), ValueError, "empty batch"),
    (lambda: nn.hinge_loss(np.ones(3), np.array([1, 0, 1])), ValueError,
     r"-1 or \+1, got 0 at index 1"),
    (lambda: nn.binary_cross_entropy(np.ones(2), np.array([1, 2])), ValueError,
     "0 or 1, got 2 at index 1"),
    (lambda: nn.softmax_cross_entropy(np.ones((2, 3)), np.array([0, 3])), ValueError,
     "label 3 at index 1 is out of range for rows of 3 logits"),
    (lambda: nn.softmax_cross_entropy(np.ones((2, 3)), np.array([0.0, 1.0])), TypeError,
     r"must be ints.*astype\(int\)"),
    (lambda: nn.softmax_cross_entropy(np.ones((2, 3)), np.array([0, 1, 2])), ValueError,
     "one label per row"),
    (lambda: nn.softmax_cross_entropy(np.ones(3), np.array([0])), ValueError,
     r"shape \(n, classes\)"),
])
def test_batch_losses_name_bad_input(call, error, message):
    """Mismatched shapes (no silent broadcasting), bad labels and empty batches are refused."""
    with pytest.raises(error, match=message):
        call()


def test_l2_on_arrays_and_mixed_trees():
    """l2 sums every element's square, of arrays and floats alike; its gradient is 2 * leaf."""
    tree = {"W": np.array([[1.0, -2.0], [0.5, 0.0]]), "b": np.array([3.0]), "s": 2.0}
    assert float(nn.l2(tree)) == 1 + 4 + 0.25 + 9 + 4
    grads = tg.grad(nn.l2)(tree)
    np.testing.assert_array_equal(grads["W"], 2 * tree["W"])
    np.testing.assert_array_equal(grads["b"], 2 * tree["b"])
    assert grads["s"] == 4.0


# ---------------------------------------------------------------------------
# Reading the outputs.
# ---------------------------------------------------------------------------


def test_accuracy_helpers_on_arrays_equal_float_versions():
    """accuracy, argmax and multiclass_accuracy read arrays as the float versions read lists."""
    scores = np.array([0.3, -2.0, 0.1, 0.0, np.nan])
    signs = np.array([1, -1, -1, 1, -1])
    assert nn.accuracy(scores, signs) == nn.accuracy(scores.tolist(), signs.tolist()) == 0.4
    logits = np.array([[0.1, 2.0], [3.0, 1.0], [0.0, 5.0], [np.nan, 0.0]])
    labels = np.array([1, 1, 1, 0])
    assert nn.multiclass_accuracy(logits, labels) == 0.5  # the NaN row is wrong
    np.testing.assert_array_equal(nn.argmax(logits[:3]), [1, 0, 1])
    assert nn.argmax(np.array([0.1, 2.0, 2.0])) == 1 and type(nn.argmax(np.ones(2))) is int


def test_accuracy_of_traced_arrays_is_recomputed_by_jit():
    """Inside a transform, accuracy and argmax of traced arrays are traced results (no
    derivative), so jit recomputes them for every call instead of replaying the first."""
    params = nn.init_mlp(2, [3, 2], seed=0, arrays=True)
    X = batch(6, 2)

    def loss(params, X, labels):
        logits = nn.mlp(params, X)
        reading = (nn.multiclass_accuracy(logits, labels), nn.argmax(logits),
                   nn.accuracy(logits[:, 0], 2 * labels - 1))
        return nn.softmax_cross_entropy(logits, labels), reading

    step = tg.jit(tg.value_and_grad(loss, has_aux=True))
    logits = nn.mlp(params, X)
    for labels in (np.array([0, 1, 1, 0, 1, 0]), np.array([1, 1, 1, 1, 1, 0])):
        (_, (fraction, argmax, signs)), _ = step(params, X, labels)
        assert float(fraction) == nn.multiclass_accuracy(logits, labels)
        np.testing.assert_array_equal(argmax, nn.argmax(logits))
        assert float(signs) == nn.accuracy(logits[:, 0], 2 * labels - 1)


@pytest.mark.parametrize("name, loss, predictions, targets", LOSSES, ids=[c[0] for c in LOSSES])
def test_jit_uses_each_calls_targets(name, loss, predictions, targets):
    """Under jit, the targets and labels of every call are used, not those of the call that
    was traced (the losses once read them as constants: a silently wrong gradient)."""
    step = tg.jit(tg.value_and_grad(loss))
    other = targets[::-1].copy()
    for t in (targets, other, targets):
        value, grad = step(predictions, t)
        want_value, want_grad = tg.value_and_grad(loss)(predictions, t)
        assert value == want_value
        np.testing.assert_array_equal(grad, want_grad)
    assert tg.value_and_grad(loss)(predictions, other)[0] != tg.value_and_grad(loss)(
        predictions, targets)[0]


def test_drawing_an_array_tape_shows_its_data_flow():
    """Every input of every array record is an edge of the drawn tape (array records keep a
    rule, not partials, and the picture once drew no edges for them at all)."""
    params = nn.init_mlp(3, [4, 2], seed=0, arrays=True)
    tape = tg.trace(lambda p: tnp.sum(nn.mlp(p, batch(5, 3))))(params)
    source = tape.draw().source
    edges = {line.strip() for line in source.splitlines() if "->" in line and "invis" not in line}
    wanted = {f"r{j} -> r{k}" for k, record in enumerate(tape)
              for j in record.inputs if j is not None}
    assert wanted and edges == wanted
