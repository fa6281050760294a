"""Scale and threads: million-record tapes, deep expressions, concurrent and foreign traces."""

from __future__ import annotations

import math
import threading
from typing import Any, Callable

import pytest

import tapegrad as tg

MILLION = 1_000_000
DEEP = 100_000


def affine_chain(x: Any) -> Any:
    y = x
    for _ in range(MILLION):
        y = y * 0.999999 + 0.000001
    return y


def test_million_record_affine_chain() -> None:
    """grad of a 2,000,000-record chain works and is exact (speed is measured by benchmarks)."""
    value, g = tg.value_and_grad(affine_chain)(0.5)
    # y_n = 1 - 0.5 a^n for a = 0.999999; dy_n/dx = a^n
    assert math.isclose(g, 0.999999**MILLION, rel_tol=1e-9)
    assert math.isclose(value, 1.0 - 0.5 * 0.999999**MILLION, rel_tol=1e-9)


def test_million_record_tanh_chain() -> None:
    """grad through a million nested tg.tanh equals the product of 1 - tanh^2 along the chain."""
    x0 = 0.5

    def f(x: Any) -> Any:
        y = x
        for _ in range(MILLION):
            y = tg.tanh(y)
        return y

    g = tg.grad(f)(x0)
    expected = 1.0
    y = x0
    for _ in range(MILLION):
        y = math.tanh(y)
        expected *= 1.0 - y * y
    assert math.isclose(g, expected, rel_tol=1e-9)


def sin_chain(x: Any) -> Any:
    y = x
    for _ in range(DEEP):
        y = tg.sin(y)
    return y


def _sin_chain_derivatives(x: float) -> tuple[float, float]:
    """First and second derivative of the DEEP-fold sin, by forward recurrences."""
    y, d1, d2 = x, 1.0, 0.0
    for _ in range(DEEP):
        c, s = math.cos(y), math.sin(y)
        d1, d2 = c * d1, -s * d1 * d1 + c * d2
        y = s
    return d1, d2


def test_deep_nested_expression_first_and_second_derivative() -> None:
    """sin(sin(...sin(x))) 100,000 deep: grad and grad(grad) match the exact recurrences."""
    d1, d2 = _sin_chain_derivatives(0.5)
    g = tg.grad(sin_chain)(0.5)
    gg = tg.grad(tg.grad(sin_chain))(0.5)
    assert math.isclose(g, d1, rel_tol=1e-9)
    assert math.isclose(gg, d2, rel_tol=1e-8)


def test_deep_nested_jvp_and_trace_length() -> None:
    """Forward mode over a 100,000-deep tape works and the tape has one record per op."""
    d1, _ = _sin_chain_derivatives(0.5)
    _, tangent = tg.jvp(sin_chain, (0.5,), (2.0,))
    assert math.isclose(tangent, 2.0 * d1, rel_tol=1e-9)
    assert len(tg.trace(sin_chain)(0.5)) == DEEP + 1


def test_deep_builtin_sum_and_wide_tg_sum() -> None:
    """100,000 leaves: builtin sum (a deep chain of +) and tg.sum (one record) both give ones."""
    xs = [float(i % 7) for i in range(DEEP)]
    assert tg.grad(lambda v: sum(v))(xs) == [1.0] * DEEP
    g = tg.grad(lambda v: tg.dot(v, v) + tg.sum(v))(xs)
    assert g == [2.0 * x + 1.0 for x in xs]


# -- threads --------------------------------------------------------------------------------

N_THREADS = 4


def _run_threads(targets: list[Callable[[], None]], timeout: float = 30.0) -> None:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"


def test_concurrent_grads_get_their_own_answers() -> None:
    """Threads differentiating different functions at the same time each get their own result."""
    barrier = threading.Barrier(N_THREADS)
    results: dict[int, list] = {k: [] for k in range(N_THREADS)}
    errors: list = []

    def make(k: int) -> Callable[[], None]:
        power = k + 2

        def f(x: Any) -> Any:
            y = x * 1.0
            barrier.wait(timeout=10)  # every thread now has an open trace
            acc = 0.0
            for _ in range(2000):  # long enough for the interpreter to switch threads
                acc = acc + y ** power * 0.001
            return acc

        def work() -> None:
            try:
                for round_ in range(5):
                    x = 1.0 + 0.1 * k + 0.01 * round_
                    results[k].append((x, tg.grad(f)(x), tg.grad(tg.grad(f))(x)))
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
                barrier.abort()

        return work

    _run_threads([make(k) for k in range(N_THREADS)])
    assert not errors, errors
    for k in range(N_THREADS):
        n = k + 2
        assert len(results[k]) == 5
        for x, g, gg in results[k]:
            assert math.isclose(g, 2.0 * n * x ** (n - 1), rel_tol=1e-9), (k, x, g)
            assert math.isclose(gg, 2.0 * n * (n - 1) * x ** (n - 2), rel_tol=1e-9), (k, x, gg)


# Uses of another thread's traced value that tapegrad checks. Plain arithmetic on a
# borrowed tracer is deliberately not checked (a thread check on every operation
# would cost about 10% of the recording time); see the next test for what then holds.
FOREIGN_USES: dict[str, Callable[[Any], Any]] = {
    "compare": lambda t: t < 1.0,
    "bool": lambda t: bool(t),
    "in_own_grad": lambda t: tg.grad(lambda y: y * t)(1.0),
    "in_own_grad_left": lambda t: tg.grad(lambda y: t * y)(1.0),
    "returned_from_own_grad": lambda t: tg.grad(lambda y: t * 2.0)(1.0),
    "result_in_own_grad": lambda t: tg.grad(lambda y: y + tg.tanh(t * 2.0))(1.0),
    "sum_in_own_grad": lambda t: tg.grad(lambda y: tg.sum([y, t]))(1.0),
    "dot_in_own_grad": lambda t: tg.grad(lambda y: tg.dot([y, t], [1.0, t]))(1.0),
}


@pytest.mark.parametrize("use", list(FOREIGN_USES.values()), ids=list(FOREIGN_USES))
def test_tracer_used_in_another_thread_is_refused(use: Callable[[Any], Any]) -> None:
    """A traced value of a trace still open in one thread, used in another thread, raises."""
    leaked = threading.Event()
    done = threading.Event()
    box: dict[str, Any] = {}

    def owner() -> None:
        def f(x: Any) -> Any:
            box["tracer"] = x
            leaked.set()
            done.wait(timeout=10)
            return x * 3.0

        try:
            box["owner_grad"] = tg.grad(f)(2.0)
        except BaseException as e:  # noqa: BLE001
            box["owner_error"] = e

    def intruder() -> None:
        try:
            if not leaked.wait(timeout=10):
                return
            try:
                box["result"] = use(box["tracer"])
            except BaseException as e:  # noqa: BLE001
                box["error"] = e
        finally:
            done.set()

    _run_threads([owner, intruder])
    assert "owner_error" not in box, box.get("owner_error")
    assert box["owner_grad"] == 3.0
    assert "result" not in box, f"no error; the foreign use returned {box['result']!r}"
    assert isinstance(box["error"], (tg.ForeignTracerError, tg.EscapedTracerError)), box["error"]


def test_records_form_no_reference_cycles() -> None:
    """A finished grad, jit or trace leaves nothing for the cyclic garbage collector."""
    import gc

    from tapegrad import nn

    params = nn.init_mlp(2, [4, 1], seed=0)
    xs = [(0.5, -1.0), (1.5, 2.0)]

    def loss(p: Any) -> Any:
        return nn.mse([nn.mlp(p, x)[0] for x in xs], [1.0, -1.0])

    was = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        tg.value_and_grad(loss)(params)
        tg.grad(tg.grad(lambda x: tg.tanh(x) * x))(0.3)
        tg.jacfwd(tg.jacrev(lambda p: p[0] * p[1]))((1.0, 2.0))
        str(tg.trace(loss)(params))
        assert gc.collect() == 0
    finally:
        if was:
            gc.enable()
