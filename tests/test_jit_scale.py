"""jit at scale: names reused once a value is dead, long sums and deep outputs that compile,
long tapes compiled in pieces of bounded memory, and always the eager results."""

from __future__ import annotations

import builtins
import contextlib
import math
import re
import sys
import tracemalloc
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad import datasets, nn

jit_module = sys.modules["tapegrad.jit"]


@contextlib.contextmanager
def pieces_of(weight: int) -> Iterator[None]:
    """Compile in pieces of this weight while the block runs (a tiny weight: many pieces)."""
    saved = jit_module.PIECE_WEIGHT
    jit_module.PIECE_WEIGHT = weight
    try:
        yield
    finally:
        jit_module.PIECE_WEIGHT = saved


def registers(source: str) -> set[str]:
    return set(re.findall(r"\br\d+\b", source))


def close(a: object, b: object, tol: float = 1e-12) -> bool:
    la, lb = tg.tree_leaves(a), tg.tree_leaves(b)
    return len(la) == len(lb) and all(
        x == y or (math.isnan(x) and math.isnan(y)) or abs(x - y) <= tol * max(1.0, abs(x))
        for x, y in zip(la, lb))


def chain(y, steps):
    for _ in range(steps):
        y = tg.tanh(y) * 0.5 + y * 0.5
    return y


# -- liveness: a name is reused once its value is dead ------------------------------------


def test_a_long_chain_needs_a_handful_of_names():
    """1000 steps of a chain are 4000 records, but only the current value is ever live."""
    fast = tg.jit(lambda y: chain(y, 1000))
    assert fast(0.3) == chain(0.3, 1000)
    assert fast(-1.7) == chain(-1.7, 1000)
    source = fast.source(0.3)
    assert len(registers(source)) <= 3
    assert "# %4000" in source  # each line names the record it computes


def test_the_gradient_of_a_chain_keeps_only_what_its_sweep_needs():
    """jit(grad) of a chain holds one saved partial per step for the reverse sweep, not
    the eight records per step the trace has."""
    steps = 500
    fast = tg.jit(tg.grad(lambda y: chain(y, steps)))
    assert close(fast(0.3), tg.grad(lambda y: chain(y, steps))(0.3))
    assert len(registers(fast.source(0.3))) <= steps + 8


@st.composite
def programs(draw: st.DrawFn) -> tuple:
    """A random straight-line program: each step applies an operation to earlier values
    (some read many times, some once, some never), and a few values are the outputs."""
    n_inputs = draw(st.integers(1, 3))
    steps = []
    for k in range(draw(st.integers(1, 60))):
        available = n_inputs + k
        op = draw(st.sampled_from(["add", "mul", "sub", "tanh", "sin", "neg", "sum", "dot",
                                   "scaled", "ratio"]))
        width = draw(st.integers(1, 40)) if op in ("sum", "dot") else 2
        operands = draw(st.lists(st.integers(0, available - 1), min_size=width,
                                 max_size=width))
        steps.append((op, operands, draw(st.floats(-2, 2))))
    total = n_inputs + len(steps)
    outputs = draw(st.lists(st.integers(0, total - 1), min_size=1, max_size=3))
    return n_inputs, steps, outputs


def run(program: tuple, *xs: float) -> tuple:
    """Evaluate a program with tapegrad's functions (on floats or traced values)."""
    _, steps, outputs = program
    values = list(xs)
    for op, operands, c in steps:
        a, b = values[operands[0]], values[operands[1 % len(operands)]]
        if op == "add":
            v = a + b
        elif op == "mul":
            v = a * b
        elif op == "sub":
            v = a - c * b
        elif op == "tanh":
            v = tg.tanh(a)
        elif op == "sin":
            v = tg.sin(a) * c
        elif op == "neg":
            v = -a
        elif op == "sum":
            v = tg.sum([values[i] for i in operands] + [c])
        elif op == "dot":
            v = tg.dot([values[i] for i in operands], [c + i for i in range(len(operands))])
        elif op == "scaled":
            v = c * a + 1.5
        else:
            v = a / (1.0 + b * b)
        values.append(v)
    return tuple(values[i] for i in outputs)


@settings(max_examples=60, deadline=None)
@given(programs(), st.lists(st.floats(-2, 2), min_size=3, max_size=3),
       st.sampled_from([10**9, 40, 9, 1]))
def test_random_programs_give_the_eager_values_in_any_number_of_pieces(program, xs, weight):
    """Reused names, fused expressions and piece boundaries never change a value: a random
    program and its gradient, compiled whole or in pieces, equal eager code at new inputs."""
    n_inputs = program[0]
    first, second = xs[:n_inputs], [v * 0.7 - 0.1 for v in xs[:n_inputs]]

    def total(*args):
        return tg.sum(list(run(program, *args)))

    argnums = tuple(range(n_inputs))
    with pieces_of(weight):
        fast = tg.jit(lambda *args: run(program, *args))
        fast_grad = tg.jit(tg.grad(total, argnums=argnums))
        for point in (first, second):
            assert close(fast(*point), run(program, *point))
            assert close(fast_grad(*point), tg.grad(total, argnums=argnums)(*point))
        assert fast.traces == 1


# -- long expressions, deep outputs ---------------------------------------------------------


def test_a_sum_of_3000_floats_compiles_and_adds_left_to_right():
    """tg.sum of 3000 values is one record; its code is split over lines short enough for
    compile(), each line continuing the last one's sum, so the result is builtins.sum's."""
    values = tuple(math.sin(i) * 10.0 ** (i % 7) for i in range(3000))
    fast = tg.jit(tg.sum)
    assert fast(values) == builtins.sum(values)
    moved = tuple(v * 1.01 for v in values)
    assert fast(moved) == builtins.sum(moved)
    lines = fast.source(values).splitlines()
    assert len(lines) > 3000 // jit_module.MAX_TERMS
    assert max(line.count(" + ") for line in lines) <= jit_module.MAX_TERMS


@pytest.mark.parametrize("f", [
    lambda x: tg.sum([x] * 100 + [1.5]),
    lambda x: tg.sum([x * float(i) for i in range(250)] + [1.5]),
    lambda x: tg.dot([x] * 120, [0.5] * 120) + 1.0,
    lambda x: tg.sum([tg.tanh(x * float(i)) for i in range(40)] + [x] * 100 + [2.5]),
], ids=["same-operand", "spread", "dot", "mixed"])
def test_running_sums_keep_every_term(f):
    """A long sum added as its terms become ready, a chunk at a time, still adds every term,
    the constant last (a sum whose last term is a constant once lost it)."""
    fast = tg.jit(f)
    for x in (2.0, -0.5):
        assert fast(x) == f(x)
    assert tg.jit(tg.grad(f))(0.7) == pytest.approx(tg.grad(f)(0.7), rel=1e-12)


def test_an_adjoint_with_thousands_of_terms_compiles():
    """The adjoint of a value used by 4000 records adds 4000 terms in the reverse sweep."""
    weights = [math.cos(i) for i in range(4000)]

    def f(x):
        return tg.sum([tg.tanh(x * w) for w in weights])

    fast = tg.jit(tg.value_and_grad(f))
    for x in (0.3, -1.2):
        assert close(fast(x), tg.value_and_grad(f)(x))


def test_the_readme_moons_loss_with_4000_points_under_jit_value_and_grad():
    """The README's loss (hinge loss of nn.mlp plus l2) over 4000 points: the sums over
    samples and every weight's gradient have 4000 terms. (A 2-4-1 network keeps the
    suite fast; the README's 2-16-16-1 one has the same fan-in.)"""
    X, y = datasets.make_moons(4000, noise=0.1, seed=0)
    params = nn.init_mlp(2, [4, 1], seed=1)

    def loss(params):
        scores = [nn.mlp(params, x)[0] for x in X]
        return nn.hinge_loss(scores, y) + 1e-4 * nn.l2(params)

    fast = tg.jit(tg.value_and_grad(loss))
    assert close(fast(params), tg.value_and_grad(loss)(params))
    moved = tg.tree_map(lambda p: p * 0.9, params)
    assert close(fast(moved), tg.value_and_grad(loss)(moved))
    assert fast.traces == 1


def test_an_output_nested_1500_deep():
    """A deeply nested output comes back as itself (Python's parser refuses about 200
    nested brackets, so it cannot be written as one literal)."""

    def f(x):
        out = (x * 2.0, x + 1.0)
        for _ in range(1500):
            out = (out, x)
        return out

    fast = tg.jit(f)
    for x in (3.0, -1.0):  # compared leaf by leaf: == on 1500-deep tuples recurses
        out, expected = fast(x), f(x)
        assert tg.tree_structure(out) == tg.tree_structure(expected)
        assert tg.tree_leaves(out) == tg.tree_leaves(expected)


# -- long tapes: compiled in pieces --------------------------------------------------------


def test_a_long_tape_is_compiled_in_pieces_that_give_the_same_result():
    """A tape longer than a piece becomes several functions; values that live across a
    boundary are handed on, and the result is the one-piece result."""
    steps = 300
    whole = tg.jit(tg.value_and_grad(lambda y: chain(y, steps)))
    with pieces_of(200):
        cut = tg.jit(tg.value_and_grad(lambda y: chain(y, steps)))
        source = cut.source(0.3)
    assert source.count("\ndef _piece") >= 5
    assert whole.source(0.3).count("def ") == 1
    for y in (0.3, -2.0, 5.0):
        assert cut(y) == whole(y)
        assert close(cut(y), tg.value_and_grad(lambda y: chain(y, steps))(y))


def test_compile_memory_is_bounded_by_the_piece_size_not_the_tape():
    """compile() needs memory in proportion to the code it is given: pieces of bounded
    size keep that bounded, however long the tape."""
    tape = tg.trace(lambda y: chain(y, 3000))(0.3)

    def compile_peak(weight: int) -> int:
        peak = 0
        for piece in jit_module.write_pieces(tape, [0], [len(tape) - 1], piece_weight=weight):
            tracemalloc.start()
            compile(piece, "<piece>", "exec")
            peak = max(peak, tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        return peak

    whole, cut = compile_peak(10**9), compile_peak(2000)
    assert cut * 4 < whole
    assert cut < 2000 * 2000  # about 1 kB per unit of weight, with room to spare


def test_a_100000_record_tape_works_under_jit():
    """A tape of 10^5 records compiles and runs, and agrees with eager code."""
    steps = 25_000
    fast = tg.jit(lambda y: chain(y, steps))
    assert fast(0.3) == chain(0.3, steps)
    assert fast(0.9) == chain(0.9, steps)


def test_the_tape_is_freed_as_soon_as_its_code_is_compiled():
    """Nothing the code writer builds keeps the trace's tape alive in a reference cycle
    (a tape of 10^6 records would otherwise wait for the cyclic garbage collector), and
    a first call leaves no cycle behind at all."""
    import gc

    from tapegrad.tape import Tape

    fast = tg.jit(tg.grad(lambda y: chain(y, 200)))
    was = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        assert fast(0.3) == tg.grad(lambda y: chain(y, 200))(0.3)
        assert not [o for o in gc.get_objects() if isinstance(o, Tape)]
        assert gc.collect() == 0  # nothing at all left for the collector
    finally:
        if was:
            gc.enable()
