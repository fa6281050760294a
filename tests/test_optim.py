"""Tests for tapegrad.optim: hand-computed steps, schedules, immutability and errors."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad import optim

PARAMS = {"w": (1.0, -2.0), "b": [0.5]}
GRADS_1 = {"w": (2.0, 0.5), "b": [-1.0]}
GRADS_2 = {"w": (-1.0, 0.5), "b": [4.0]}


def approx_tree(tree):
    """A tree of pytest.approx leaves keeps the structure check exact."""
    if isinstance(tree, dict):
        return {k: approx_tree(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(approx_tree(v) for v in tree)
    return pytest.approx(tree, rel=1e-12, abs=1e-15)


def two_steps(opt):
    state = opt.init(PARAMS)
    p1, s1 = opt.update(GRADS_1, state, PARAMS)
    p2, s2 = opt.update(GRADS_2, s1, p1)
    return state, p1, s1, p2, s2


def test_sgd_two_steps_by_hand():
    """sgd subtracts learning_rate * grad from every leaf and counts the steps."""
    state, p1, s1, p2, s2 = two_steps(optim.sgd(0.1))
    assert state == optim.SgdState(step=0)
    assert p1 == approx_tree({"w": (0.8, -2.05), "b": [0.6]})
    assert p2 == approx_tree({"w": (0.9, -2.1), "b": [0.2]})
    assert (s1.step, s2.step) == (1, 2)


def test_momentum_two_steps_by_hand():
    """momentum keeps v = beta * v + g and steps by -learning_rate * v."""
    _, p1, s1, p2, s2 = two_steps(optim.momentum(0.1, beta=0.5))
    # step 1: v = g1;  step 2: v = 0.5 * g1 + g2 = {w: (0.0, 0.75), b: [3.5]}
    assert s1.velocity == approx_tree(GRADS_1)
    assert s2.velocity == approx_tree({"w": (0.0, 0.75), "b": [3.5]})
    assert p1 == approx_tree({"w": (0.8, -2.05), "b": [0.6]})
    assert p2 == approx_tree({"w": (0.8, -2.125), "b": [0.25]})


def test_adam_two_steps_by_hand():
    """adam's first two steps match Algorithm 1 of the paper worked out for one leaf."""
    opt = optim.adam(0.1, b1=0.9, b2=0.999, eps=1e-8)
    state = opt.init({"w": 1.0})
    p1, s1 = opt.update({"w": 2.0}, state, {"w": 1.0})
    # t = 1: m = 0.1 * 2 = 0.2, v = 0.001 * 4 = 0.004; m_hat = 2, v_hat = 4.
    assert s1 == optim.AdamState(step=1, mu={"w": pytest.approx(0.2)},
                                 nu={"w": pytest.approx(0.004)})
    assert p1["w"] == pytest.approx(1.0 - 0.1 * 2.0 / (2.0 + 1e-8), rel=1e-14)
    p2, s2 = opt.update({"w": -1.0}, s1, p1)
    # t = 2: m = 0.18 - 0.1 = 0.08, v = 0.003996 + 0.001 = 0.004996;
    # m_hat = 0.08 / 0.19, v_hat = 0.004996 / 0.001999.
    assert s2.mu["w"] == pytest.approx(0.08)
    assert s2.nu["w"] == pytest.approx(0.004996)
    expected = p1["w"] - 0.1 * (0.08 / 0.19) / (math.sqrt(0.004996 / 0.001999) + 1e-8)
    assert p2["w"] == pytest.approx(expected, rel=1e-12)
    assert p2["w"] == pytest.approx(0.873367, abs=1e-6)


@settings(max_examples=50, deadline=None)
@given(st.floats(min_value=1e-3, max_value=1e6) | st.floats(min_value=-1e6, max_value=-1e-3))
def test_adam_first_step_is_learning_rate_sized(g):
    """Adam's first step moves a leaf by learning_rate against its gradient's sign, any scale."""
    opt = optim.adam(0.01)
    (p,), _ = opt.update((g,), opt.init((0.0,)), (0.0,))
    assert p == pytest.approx(-0.01 * math.copysign(1.0, g), rel=1e-4)


@pytest.mark.parametrize("make", [optim.sgd, optim.momentum, optim.adam])
def test_schedule_is_called_with_step_numbers_from_zero(make):
    """A schedule learning_rate is called with 0 for the first update, then 1, 2, ..."""
    seen = []

    def schedule(step):
        seen.append(step)
        return 0.0 if step == 0 else 0.1

    opt = make(schedule)
    params = (1.0,)
    state = opt.init(params)
    p1, state = opt.update((1.0,), state, params)
    assert p1 == (1.0,)  # rate 0 at step 0: no move
    p2, state = opt.update((1.0,), state, p1)
    p3, state = opt.update((1.0,), state, p2)
    assert seen == [0, 1, 2]
    assert p3[0] < p2[0] < 1.0


@pytest.mark.parametrize("make", [optim.sgd, optim.momentum, optim.adam])
def test_update_changes_neither_params_nor_state(make):
    """update returns new trees: the old parameters and state are untouched and still valid."""
    params = {"w": [1.0, 2.0], "b": [0.0]}
    opt = make(0.1)
    state = opt.init(params)
    state_before = repr(state)
    new_params, new_state = opt.update({"w": [1.0, 1.0], "b": [1.0]}, state, params)
    assert params == {"w": [1.0, 2.0], "b": [0.0]}
    assert repr(state) == state_before
    assert new_params["w"] is not params["w"] and new_params != params
    again, _ = opt.update({"w": [1.0, 1.0], "b": [1.0]}, state, params)
    assert again == new_params


def test_states_are_immutable():
    """Optimizer and state records cannot be changed in place."""
    opt = optim.adam(0.1)
    state = opt.init((1.0,))
    with pytest.raises(AttributeError):
        state.step = 5
    with pytest.raises(AttributeError):
        opt.update = None


def test_bad_arguments_are_rejected():
    """Wrong learning-rate types, decay rates and gradient structures give clear errors."""
    with pytest.raises(TypeError, match="learning_rate"):
        optim.sgd("fast")
    with pytest.raises(ValueError, match="beta"):
        optim.momentum(0.1, beta=1.0)
    with pytest.raises(ValueError, match="b2"):
        optim.adam(0.1, b2=-0.1)
    opt = optim.sgd(0.1)
    with pytest.raises(ValueError, match="structure"):
        opt.update((1.0, 2.0), opt.init((1.0,)), (1.0,))


# ---------------------------------------------------------------------------
# Array leaves: the float version is the oracle.
# ---------------------------------------------------------------------------

OPTIMIZERS = [lambda: optim.sgd(0.1), lambda: optim.momentum(0.1, beta=0.5),
              lambda: optim.adam(0.1)]
NAMES = ["sgd", "momentum", "adam"]
ARRAY_PARAMS = {"W": np.array([[1.0, -2.0], [0.5, 3.0]]), "b": np.array([0.25, -0.0])}
ARRAY_GRADS = [{"W": np.array([[2.0, 0.5], [-1.0, 1e-3]]), "b": np.array([-1.0, 4.0])},
               {"W": np.array([[-1.0, 0.5], [2.0, -3.0]]), "b": np.array([4.0, 0.0])}]


def steps(opt, params, grads_list):
    """(params, state) after each update, starting from opt.init(params)."""
    state = opt.init(params)
    history = [(params, state)]
    for grads in grads_list:
        params, state = opt.update(grads, state, params)
        history.append((params, state))
    return history


def to_floats(tree):
    return tg.tree_map(lambda a: tuple(float(v) for v in np.ravel(a)), tree)


@pytest.mark.parametrize("make", OPTIMIZERS, ids=NAMES)
def test_array_updates_equal_float_updates_bitwise(make):
    """Each optimizer does, element by element, exactly the float version's arithmetic."""
    array_history = steps(make(), ARRAY_PARAMS, ARRAY_GRADS)
    float_history = steps(make(), to_floats(ARRAY_PARAMS), [to_floats(g) for g in ARRAY_GRADS])
    for (ap, astate), (fp, fstate) in zip(array_history[1:], float_history[1:]):
        assert to_floats(ap) == fp
        assert astate.step == fstate.step
        assert to_floats(tuple(astate[1:])) == tuple(fstate[1:])


@pytest.mark.parametrize("make", OPTIMIZERS, ids=NAMES)
def test_array_updates_never_write_into_the_callers_arrays(make):
    """update returns new arrays: the parameters, gradients and state passed in keep their
    values (NumPy arrays are mutable, so an in-place update would change them)."""
    opt = make()
    params = {k: v.copy() for k, v in ARRAY_PARAMS.items()}
    grads = {k: v.copy() for k, v in ARRAY_GRADS[0].items()}
    state = opt.init(params)
    state = opt.update(grads, state, params)[1]  # moments that are not zero
    state_copy = tg.tree_map(lambda v: v.copy() if isinstance(v, np.ndarray) else v, state)
    new_params, new_state = opt.update(grads, state, params)
    for before, after in ((ARRAY_PARAMS, params), (ARRAY_GRADS[0], grads), (state_copy, state)):
        for want, got in zip(tg.tree_leaves(before), tg.tree_leaves(after)):
            np.testing.assert_array_equal(got, want)
    for new, old in zip(tg.tree_leaves(new_params), tg.tree_leaves(params)):
        assert new is not old and not np.shares_memory(new, old)
        assert not np.array_equal(new, old)


@pytest.mark.parametrize("make", OPTIMIZERS, ids=NAMES)
def test_init_gives_moments_of_the_leaves_shape_and_dtype(make):
    """The moments of array leaves start as zero arrays of the leaf's shape and dtype."""
    params = {"W": np.ones((2, 3), np.float32), "s": np.float32(1.0), "f": 1.0}
    state = make().init(params)
    for moment in state[1:]:
        assert moment["W"].shape == (2, 3) and moment["W"].dtype == np.float32
        assert not moment["W"].any()
        assert type(moment["s"]) is np.float32 and moment["f"] == 0.0


@pytest.mark.parametrize("make", [optim.sgd, optim.momentum, optim.adam], ids=NAMES)
def test_float32_stays_float32(make):
    """float32 parameters stay float32 with float64 gradients and a NumPy float64 schedule."""
    opt = make(lambda step: np.float64(0.01))
    params = {"W": np.ones((2, 2), np.float32), "s": np.float32(0.5)}
    grads = {"W": np.full((2, 2), 0.3), "s": np.float64(0.2)}
    state = opt.init(params)
    for _ in range(2):
        params, state = opt.update(grads, state, params)
    for leaf in tg.tree_leaves((params, state[1:])):
        assert leaf.dtype == np.float32
    assert type(params["s"]) is np.float32
