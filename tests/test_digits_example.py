"""The digits example: its loss is nn's cross-entropy, it reaches 97% on the test set, eager
and jit training agree bit for bit, and the script writes its pictures."""

import importlib.util

import numpy as np
import pytest
from test_training_examples import load_example, run_example

import tapegrad as tg
import tapegrad.numpy as tnp
from tapegrad import nn

pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(name) for name in ("sklearn", "tqdm", "matplotlib")),
    reason="the examples extra (scikit-learn, tqdm, matplotlib) is not installed: "
           "pip install -e '.[examples]'",
)


@pytest.fixture(scope="module")
def digits():
    return load_example("digits")


@pytest.fixture(scope="module")
def data(digits):
    return digits.load_data()


def one_thread():
    """BLAS threads slow these small matrix products down on a busy machine (see the example)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def test_data_is_the_fixed_stratified_split(data):
    """1,437 training and 360 test images of 64 pixels in [0, 1], every digit on both sides."""
    X_train, X_test, y_train, y_test = data
    assert X_train.shape == (1437, 64) and X_test.shape == (360, 64)
    assert 0.0 <= X_train.min() and X_train.max() == 1.0
    assert set(y_test) == set(range(10)) and np.bincount(y_test).min() >= 35


def test_loss_is_softmax_cross_entropy_of_the_relu_mlp(digits, data):
    """The example's portable loss equals nn.softmax_cross_entropy of nn.mlp with relu, in
    value and gradient."""
    X, y = data[0][:50], data[2][:50]
    params = nn.init_mlp(64, [128, 10], seed=3, arrays=True)

    def reference(params):
        logits = nn.mlp(params, X, activation=tg.relu)
        return nn.softmax_cross_entropy(logits, y)

    (value, logits), grads = tg.value_and_grad(digits.loss_and_logits, has_aux=True)(params, X, y)
    want_value, want_grads = tg.value_and_grad(reference)(params)
    assert float(value) == pytest.approx(float(want_value), rel=1e-13)
    np.testing.assert_allclose(logits, nn.mlp(params, X, activation=tnp.relu), rtol=1e-14)
    for got, want in zip(tg.tree_leaves(grads), tg.tree_leaves(want_grads)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-15)


def test_training_reaches_97_percent_and_jit_agrees_bit_for_bit(digits, data):
    """The default training reaches at least 97% test accuracy; a jit run from the same start
    makes exactly the same parameters."""
    X_train, X_test, y_train, y_test = data
    with one_thread():
        compiled = digits.train(X_train, y_train, digits.EPOCHS, compiled=True)
        eager = digits.train(X_train, y_train, 2, compiled=False)
    assert nn.multiclass_accuracy(digits.predict(compiled[-1], X_test), y_test) >= 0.97
    assert nn.multiclass_accuracy(digits.predict(compiled[0], X_test), y_test) < 0.97
    for got, want in zip(tg.tree_leaves(compiled[:2]), tg.tree_leaves(eager)):
        np.testing.assert_array_equal(got, want)


def test_script_trains_reports_and_writes_its_pictures(tmp_path):
    """examples/digits.py --epochs 1 --out DIR prints both times, the speed-up and the test
    accuracy, and writes the three pictures."""
    out = run_example("digits", "--epochs", "1", "--out", str(tmp_path)).stdout
    assert "training time: eager" in out and "x faster (identical final parameters)" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("test accuracy: 0.") and 0.5 < float(last.split()[-1]) < 1.0
    for picture in ("digits-curves.png", "digits-confusion.png", "digits-mistakes.png"):
        data = (tmp_path / picture).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000
