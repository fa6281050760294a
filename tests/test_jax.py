"""The road to JAX: the digits example's model and loss run unchanged under jax.numpy, and
tapegrad and JAX agree on the loss and its gradient to 1e-10 in float64."""

import importlib.util

import numpy as np
import pytest
from test_training_examples import load_example

import tapegrad as tg
import tapegrad.numpy as tnp
from tapegrad import nn

jax = pytest.importorskip("jax", reason="jax is in the test extra: pip install -e '.[test]'")
jnp = pytest.importorskip("jax.numpy")
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None,
    reason="the digits come with scikit-learn (the examples extra): pip install -e '.[examples]'",
)

TOLERANCE = 1e-10


@pytest.fixture(autouse=True)
def float64():
    """JAX computes in float32 unless told otherwise; compare in float64."""
    before = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


@pytest.fixture(scope="module")
def digits():
    return load_example("digits")


@pytest.fixture(scope="module")
def trained(digits):
    """The example's data and parameters at three stages: the start, one epoch, five epochs."""
    from threadpoolctl import threadpool_limits  # comes with scikit-learn

    X_train, X_test, y_train, y_test = digits.load_data()
    with threadpool_limits(limits=1):  # small matrices: threads only slow them down
        snapshots = digits.train(X_train, y_train, 5, compiled=True)
    start = nn.init_mlp(64, [128, 10], seed=0, arrays=True)
    return (X_train, y_train), [start, snapshots[0], snapshots[-1]]


def loss(params, X, labels, np):
    """The example's loss (without its aux), for any array namespace."""
    return load_example("digits").loss_and_logits(params, X, labels, np)[0]


def in_jax(tree):
    return jax.tree_util.tree_map(jnp.asarray, tree)


def assert_agree(tapegrad_result, jax_result):
    value, grads = tapegrad_result
    jax_value, jax_grads = jax_result
    assert np.asarray(jax_value).dtype == np.float64  # float32 would not meet 1e-10 anyway
    assert abs(float(value) - float(jax_value)) <= TOLERANCE
    assert jax.tree_util.tree_structure(jax_grads) == jax.tree_util.tree_structure(grads)
    for ours, theirs in zip(tg.tree_leaves(grads), jax.tree_util.tree_leaves(jax_grads)):
        assert theirs.dtype == ours.dtype == np.float64 and theirs.shape == ours.shape
        assert np.max(np.abs(ours - np.asarray(theirs))) <= TOLERANCE


def test_loss_and_gradient_agree_with_jax(trained):
    """value_and_grad of the same function, given tapegrad.numpy or jax.numpy, agrees to 1e-10:
    the model (nn.mlp) and the loss are the example's own, unchanged."""
    (X, y), snapshots = trained
    params, X, y = snapshots[1], X[:64], y[:64]
    ours = tg.value_and_grad(loss)(params, X, y, tnp)
    theirs = jax.value_and_grad(loss)(in_jax(params), jnp.asarray(X), jnp.asarray(y), jnp)
    assert_agree(ours, theirs)


@pytest.fixture(scope="module")
def compiled():
    """Both value_and_grads compiled once (the namespace is a static argument)."""
    return (tg.jit(tg.value_and_grad(loss), static_argnums=3),
            jax.jit(jax.value_and_grad(loss), static_argnums=3))


@pytest.mark.parametrize("stage", [0, 1, 2], ids=["start", "one epoch", "five epochs"])
@pytest.mark.parametrize("rows", [slice(0, 64), slice(None)], ids=["a batch", "all 1437"])
def test_jit_agrees_with_jax_jit(trained, compiled, stage, rows):
    """tg.jit and jax.jit of value_and_grad agree too, from the start to a trained model, on a
    batch and on the whole training set."""
    (X, y), snapshots = trained
    ours, theirs = compiled
    params, X, y = snapshots[stage], X[rows], y[rows]
    assert_agree(ours(params, X, y, tnp), theirs(in_jax(params), X, y, jnp))


def test_predictions_agree_with_jax(trained, digits):
    """The trained model's logits under jax.numpy equal tapegrad's, and so do the predictions."""
    (X, _), snapshots = trained
    ours = digits.predict(snapshots[-1], X)
    theirs = np.asarray(digits.predict(in_jax(snapshots[-1]), jnp.asarray(X), jnp))
    assert np.max(np.abs(ours - theirs)) <= TOLERANCE
    np.testing.assert_array_equal(ours.argmax(axis=1), theirs.argmax(axis=1))
