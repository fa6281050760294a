"""tapegrad.jit: compiled tapes give the eager results, and guards catch branch flips."""

from __future__ import annotations

import math
import random
from collections import namedtuple

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad import nn


def leaves_close(a, b, tol=1e-12):
    la, lb = tg.tree_leaves(a), tg.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert abs(x - y) <= tol * max(1.0, abs(x), abs(y)), (x, y)


def test_jit_of_a_plain_function_matches_eager():
    """jit(f) returns f's values, for the first call and for later calls with new inputs."""
    def f(x, y):
        return tg.tanh(x * y + y ** 2) / (1 + x), tg.exp(-x) * tg.sin(y)

    fast = tg.jit(f)
    for x, y in [(0.5, 2.0), (-1.5, 0.25), (3.0, -2.0)]:
        leaves_close(fast(x, y), f(x, y))
    assert fast.traces == 1


@settings(max_examples=40, deadline=None)
@given(st.floats(-3, 3), st.floats(-3, 3))
def test_jit_grad_matches_eager_grad(x, y):
    """jit(grad(f)) replays the recorded reverse sweep and equals eager grad."""
    def f(x, y):
        return tg.sigmoid(x * y) * tg.cos(x) + tg.sqrt(1.0 + y * y) + tg.log(2.0 + tg.sin(x))

    fast = tg.jit(tg.grad(f, argnums=(0, 1)))
    leaves_close(fast(x, y), tg.grad(f, argnums=(0, 1))(x, y))


def test_jit_value_and_grad_of_an_mlp_matches_eager_to_1e12():
    """The compiled value_and_grad of nn.mlp on a small dataset agrees with eager."""
    rng = random.Random(3)
    params = nn.init_mlp(2, [8, 8, 1], seed=2)
    xs = [(rng.uniform(-1, 1), rng.uniform(-1, 1)) for _ in range(20)]
    ys = [rng.choice([-1.0, 1.0]) for _ in xs]

    def loss(p):
        return nn.mse([nn.mlp(p, x)[0] for x in xs], ys)

    eager = tg.value_and_grad(loss)
    fast = tg.jit(tg.value_and_grad(loss))
    leaves_close(fast(params), eager(params))
    moved = tg.tree_map(lambda p: p + 0.01, params)
    leaves_close(fast(moved), eager(moved))
    assert fast.traces == 1


def test_branch_flip_retraces_and_gives_the_right_gradient():
    """A branch on a traced value is a guard: when it flips, jit re-traces instead of replaying."""
    def f(x):
        if x > 1.0:
            return x * x
        return 3.0 * x

    fast = tg.jit(tg.grad(f))
    assert fast(2.0) == 4.0
    assert fast(0.5) == 3.0  # would be 1.0 if the first tape were replayed
    assert fast(5.0) == 10.0
    assert fast(-4.0) == 3.0
    assert fast.traces == 2  # one variant per branch, both cached


@pytest.mark.parametrize("fn, points", [
    (lambda x: tg.relu(x) * x, [2.0, -1.0, 3.0, -0.5]),
    (lambda x: abs(x) * x, [1.5, -2.0]),
    (lambda x: max(x, 0.5 * x * x), [1.0, 3.0, -1.0]),
])
def test_kinks_are_guarded(fn, points):
    """relu's and abs's kinks are branch-free records and Python's max a guard: every point
    gets the eager gradient."""
    fast = tg.jit(tg.grad(fn))
    for x in points:
        assert fast(x) == pytest.approx(tg.grad(fn)(x), abs=1e-12)


def test_source_is_straight_line_with_the_record_named_and_labels_kept_out():
    """The generated source is straight-line, says which record each line computes, writes
    floats with repr and fuses a value read once into its reader's expression."""
    fast = tg.jit(lambda x, y: x * y + 0.1 * x)
    src = fast.source(2.0, 3.0)
    assert src == ("def compiled(inputs):\n"
                   "    (r0, r1,) = inputs\n"
                   "    r2 = (r0 * r1) + (0.1 * r0)  # %4\n"
                   "    if r2 != r2: raise _NaNResult\n"
                   "    return r2\n")
    tape = tg.trace(lambda x: x * 2.0, names=("x\nimport os; os.system('boom')",))(1.0)
    from tapegrad.jit import generate_source

    text = generate_source(tape, [0], [1])
    assert "import os" not in text.replace("#", "\n#").split("#")[0]
    for line in text.splitlines():
        code = line.split("#")[0]
        assert "os.system" not in code


def test_non_finite_constants_are_emitted_as_names():
    """inf and nan constants are written as names, not as invalid literals."""
    fast = tg.jit(lambda x: x + math.inf if x > 0 else x * math.nan)
    assert fast(1.0) == math.inf
    assert math.isnan(fast(-1.0))


def test_domain_error_in_compiled_code_has_the_eager_message():
    """A domain error on a later call is raised as the eager run raises it, naming the op."""
    fast = tg.jit(tg.grad(lambda x: tg.log(x) * x))
    assert fast(2.0) == pytest.approx(math.log(2.0) + 1.0)
    with pytest.raises(ValueError, match="log"):
        fast(-1.0)


def test_pytree_outputs_are_rebuilt():
    """Dicts, named tuples and attrs classes come back from compiled code as themselves."""
    Pair = namedtuple("Pair", "a b")

    @attrs.frozen
    class Box:
        w: float
        b: float

    def f(p):
        return {"pair": Pair(p["x"] * 2.0, p["y"]), "box": Box(p["x"] + p["y"], 1.0), "n": None}

    fast = tg.jit(f)
    out = fast({"x": 1.0, "y": 2.0})
    assert out == {"pair": Pair(2.0, 2.0), "box": Box(3.0, 1.0), "n": None}
    grads = tg.jit(tg.grad(lambda p: p.w * p.b))(Box(2.0, 5.0))
    assert grads == Box(5.0, 2.0)


def test_jit_inside_grad_runs_eagerly_and_is_exact():
    """grad(jit(f)) differentiates through the jitted function (which then runs eagerly)."""
    fast = tg.jit(lambda x: x ** 3)
    assert tg.grad(fast)(2.0) == 12.0
    assert tg.grad(tg.grad(tg.jit(lambda x: tg.sin(x))))(0.3) == pytest.approx(-math.sin(0.3))


def test_custom_vjp_inside_jit_falls_back_to_eager():
    """A custom rule called directly under jit is not compiled; results stay exact."""
    @tg.custom_vjp
    def softplus(x):
        return tg.log(1.0 + tg.exp(x))

    softplus.defvjp(lambda x: (softplus(x), x), lambda x, g: (g * tg.sigmoid(x),))
    fast = tg.jit(softplus)
    assert fast(0.0) == pytest.approx(math.log(2.0))
    assert tg.jit(tg.grad(lambda x: softplus(x) * 2.0))(0.0) == pytest.approx(1.0)


def test_new_structure_gets_its_own_variant():
    """Calls with a different argument structure trace a new variant; old ones stay valid."""
    fast = tg.jit(lambda xs: tg.sum(xs))
    assert fast([1.0, 2.0]) == 3.0
    assert fast([1.0, 2.0, 3.0]) == 6.0
    assert fast((4.0, 1.0)) == 5.0
    assert fast([5.0, 5.0]) == 10.0
    assert fast.traces == 3


def test_many_branch_variants_fall_back_to_eager():
    """Past the variant limit jit stops compiling and runs f, still giving right answers."""
    import sys

    jit_module = sys.modules["tapegrad.jit"]

    def f(x):
        k = 0
        while x > k:
            k += 1
        return x * k

    fast = tg.jit(f)
    for v in range(jit_module.MAX_VARIANTS + 5):
        assert fast(v + 0.5) == (v + 0.5) * (v + 1)
    assert fast.traces == jit_module.MAX_VARIANTS


def test_stats_reports_records_memory_and_the_cheap_gradient_bound():
    """tape.stats() counts records by operation and, after a sweep, prints the time ratio."""
    tape = tg.trace(lambda x, y: tg.tanh(x * y) + x * 3.0)(1.0, 2.0)
    text = tape.stats()
    assert "records: 6" in text  # two inputs, two mul, tanh, add
    assert "tanh" in text and "mul" in text
    assert "bytes held" in text
    assert "Baur and Strassen" in text
