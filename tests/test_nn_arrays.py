"""Tests for tapegrad.nn on arrays: the array MLP, the batch losses and accuracy."""

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.numpy as tnp


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
