"""jit as a user meets it: a training loop that traces once, ints and NumPy scalars that
behave as they do under tracing, bools in auxiliary outputs, and values baked in at trace
time (as in JAX)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad import datasets, nn, optim


def close(a: object, b: object, tol: float = 1e-12) -> bool:
    la, lb = tg.tree_leaves(a), tg.tree_leaves(b)
    return len(la) == len(lb) and all(abs(x - y) <= tol * max(1.0, abs(x))
                                      for x, y in zip(la, lb))


# -- a training loop ---------------------------------------------------------------------------


def test_sixty_adam_steps_on_a_relu_mlp_trace_once():
    """relu's kink is a record, not a guard: as the weights move, units switch on and off
    and the compiled code follows without re-tracing, step for step equal to eager."""
    X, y = datasets.make_moons(40, noise=0.1, seed=0)
    params = nn.init_mlp(2, [8, 8, 1], seed=1)

    def loss(params):
        scores = [nn.mlp(params, x, activation=tg.relu)[0] for x in X]
        return nn.hinge_loss(scores, y) + 1e-4 * nn.l2(params)

    fast = tg.jit(tg.value_and_grad(loss))
    opt = optim.adam(0.05)
    state = opt.init(params)
    first = None
    for step in range(60):
        value, grads = fast(params)
        if step % 15 == 0:
            assert close((value, grads), tg.value_and_grad(loss)(params))
        first = value if first is None else first
        params, state = opt.update(grads, state, params)
    assert fast.traces == 1
    assert value < first  # it trained


def test_a_generic_relu_and_abs_network_traces_once():
    """The same for scalar code that calls tg.relu and abs itself on every unit."""
    X, y = datasets.make_moons(20, noise=0.1, seed=2)
    params = nn.init_mlp(2, [6, 1], seed=3)

    def loss(params):
        total = 0.0
        for x, label in zip(X, y):
            hidden = [tg.relu(sum((w * v for w, v in zip(ws, x)), b)) for ws, b in params[0]]
            ws, b = params[1][0]
            out = sum((w * h for w, h in zip(ws, hidden)), b)
            total = total + abs(out - label)
        return total

    fast = tg.jit(tg.value_and_grad(loss))
    opt = optim.sgd(0.01)
    state = opt.init(params)
    for _ in range(30):
        value, grads = fast(params)
        assert close((value, grads), tg.value_and_grad(loss)(params))
        params, state = opt.update(grads, state, params)
    assert fast.traces == 1


# -- ints and NumPy scalars ------------------------------------------------------------------

FUNCTIONS = {
    "product": lambda x, y: x * y,
    "cube": lambda x, y: x * x * x + y,
    "floordiv": lambda x, y: x // y,
    "mod": lambda x, y: x % y + x,
    "ratio": lambda x, y: x / y,
    "power": lambda x, y: x ** 3 - y ** 2,
    "branch": lambda x, y: x * y if x > y else x - y,
    "sum": lambda x, y: tg.sum([x, y, x]) * y,
}

big_ints = st.one_of(st.integers(-50, 50), st.integers(-2**62, 2**62))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(FUNCTIONS)), big_ints, big_ints.filter(lambda v: v != 0))
def test_ints_give_what_tracing_gives(name, a, b):
    """Ints are traced as floats, so jit(f)(ints) must give floats too: never Python's exact
    int arithmetic (2**40 * 2**40 is 1.2089258196146292e+24, not 1208925819614629174706176)
    and never an int result (7 // 2 is 3.0). Gradients agree as well."""
    f = FUNCTIONS[name]
    fast = tg.jit(f)
    fast(0.5, 1.5)  # a variant traced on floats serves later int calls
    eager_value, eager_grad = tg.value_and_grad(f, argnums=(0, 1))(a, b)
    value = fast(a, b)
    assert type(value) is float
    assert value == eager_value or math.isnan(value) and math.isnan(eager_value)
    assert tg.jit(tg.grad(f, argnums=(0, 1)))(a, b) == eager_grad


def test_int_valued_results_are_floats_as_under_tracing():
    """An output that happens to be an integer is a float under jit as under grad."""
    fast = tg.jit(lambda x: (x // 2, x * 0 + 3, x))
    assert fast(7) == (3.0, 3.0, 7.0)
    assert all(type(v) is float for v in fast(7))
    assert tg.jit(lambda x, n: x * n)(2, 2**70) == 2.0 * 2.0**70


def test_numpy_scalars_are_traced_and_compiled_as_floats():
    """A NumPy scalar is a float to the trace, so to compiled code as well: float32
    arithmetic, NumPy's division by zero (inf and a warning) never reach the result."""
    fast = tg.jit(lambda x, y: x * y)
    assert fast(np.float32(0.1), 3.0) == tg.value_and_grad(lambda x: x * 3.0)(
        np.float32(0.1))[0]
    recip = tg.jit(lambda x: 1.0 / x)
    assert recip(np.float64(2.0)) == 0.5
    with pytest.raises(ZeroDivisionError, match="div"):
        recip(np.float64(0.0))


# -- bools in auxiliary outputs --------------------------------------------------------------


def test_a_has_aux_bool_works_under_jit():
    """An auxiliary output may hold a comparison's bool: jit returns the bool the eager
    code would, for either outcome (the comparison is a guard)."""
    def f(x):
        return x * x, {"positive": x > 0, "x": x}

    fast = tg.jit(tg.value_and_grad(f, has_aux=True))
    for x in (2.0, -3.0, 0.5):
        expected = tg.value_and_grad(f, has_aux=True)(x)
        got = fast(x)
        assert got == expected
        assert type(got[0][1]["positive"]) is bool
    fast_grad = tg.jit(tg.grad(f, has_aux=True))
    assert fast_grad(-1.0) == (-2.0, {"positive": False, "x": -1.0})


# -- values baked in at trace time -----------------------------------------------------------


def test_closed_over_values_are_baked_in_and_arguments_are_not():
    """As in JAX, a value the function closes over is read once, when it is traced; pass
    it as an argument for it to be read on every call (static_argnums for Python values
    used as counts)."""
    scale = 2.0
    baked = tg.jit(lambda x: x * scale)
    assert baked(3.0) == 6.0
    scale = 10.0
    assert baked(3.0) == 6.0  # still 2.0: it was baked in
    passed = tg.jit(lambda x, scale: x * scale)
    assert passed(3.0, 2.0) == 6.0
    assert passed(3.0, 10.0) == 30.0

    def powers(x, n):
        return tg.sum([x ** k for k in range(n)])

    counted = tg.jit(powers, static_argnums=1)
    assert counted(2.0, 3) == 7.0
    assert counted(2.0, 4) == 15.0
    assert counted.traces == 2


def test_a_call_shaped_like_the_last_one_takes_the_fast_path_and_stays_exact() -> None:
    """jit remembers the last call's structure (a leaf reader instead of tree_flatten); a
    call with another container type, length, a container where a leaf was, ints, or
    inside a transform still gets exactly what eager code gives."""
    import tapegrad as tg

    def f(p):
        (a, b), c = p
        return a * b + (c[0] if isinstance(c, list) else 2.0 * c[0])

    fast = tg.jit(f)
    assert fast(((2.0, 3.0), [4.0])) == f(((2.0, 3.0), [4.0])) == 10.0
    assert fast(((2.0, 5.0), [1.0])) == 11.0  # same shape: no new trace
    assert fast.traces == 1
    assert fast(((2.0, 5.0), (1.0,))) == f(((2.0, 5.0), (1.0,))) == 12.0  # tuple for list
    assert fast(((2, 5), [1])) == 11.0  # ints, as floats
    with pytest.raises(TypeError):
        fast(((2.0, (5.0,)), [1.0]))  # a container where a leaf was: eager code's error
    traces = fast.traces  # 3: the tuple for a list, and the failed call, were traced
    assert tg.grad(lambda x: fast(((x, 3.0), [x])))(2.0) == 4.0  # inside a transform: eager
    assert fast(((2.0, 5.0), [1.0])) == 11.0
    assert fast.traces == traces
