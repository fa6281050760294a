"""Differential test: random programs through every tapegrad path, against an independent oracle.

Hypothesis draws programs as data (tests/programs.py): DAGs of primitives with
reused intermediates, ``if`` on comparisons, loops, ``tg.sum``/``tg.dot``, nested
``grad`` closing over outer values, ``custom_vjp`` functions, ``stop_gradient``,
``try``/``except``, with inputs at kinks, zeros and domain edges. tests/oracle.py
runs each on plain floats, on every tapegrad path and on ``tapegrad.reference``,
and lists the disagreements, with central differences where they apply.

A failure prints the shrunk program as Python, its inputs, and one line per
disagreement (``jacfwd: d out0/d x1 = nan, the oracle says 1.0``).

FOUND_BUGS lists the bugs this check was written for or found, each with a
repro; all are fixed, and ``test_known_bug_is_caught`` runs every repro as a
regression test. KNOWN_BUGS names those known and not fixed (none today): the
random test keeps away from exactly those, and the repro test then shows that
each one is still caught. ``make test`` runs a fixed sample; ``make fuzz`` runs thousands
of random programs (``ORACLE_EXAMPLES``; ``ORACLE_KNOWN_BUGS`` overrides the
list) and prints how many ran.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, reject, settings
from oracle import (
    CONFINED,
    STATS,
    agree,
    central_difference,
    check,
    hazards,
    note,
    report,
    restrictions,
    value_phi,
)
from programs import (
    CUSTOM,
    TAPEGRAD,
    Backend,
    Binary,
    Block,
    Call,
    Case,
    Const,
    Grad,
    Program,
    Ref,
    Sum,
    Try,
    Unary,
    cases,
)

import tapegrad as tg

# -- known bugs --------------------------------------------------------------------------------
# FOUND_BUGS: every bug of tapegrad this check was written for or found, each fixed now and
# kept as a regression repro (KNOWN_BUG_CASES). KNOWN_BUGS: those known and not fixed yet;
# while a name is in it the random test keeps away from exactly that bug (see
# oracle.hazards and oracle.restrictions) so that `make test` stays green, and
# test_known_bug_is_caught shows that it is still caught. When a fix lands, remove its
# name from KNOWN_BUGS: test_known_bug_is_caught fails until you do.

FOUND_BUGS: dict[str, str] = {
    "pow_exponent_zero":
        "tg.hessian(lambda p: p[0] ** p[1])((3.0, 0.0))[0][1] is 0.0, must be 1/3: the pow "
        "rule's shortcut at y == 0 drops the exponent's derivative",
    "sqrt_at_zero":
        "tg.grad(tg.grad(tg.sqrt))(0.0) is 0.0, must be -inf: the sqrt rule's shortcut at 0",
    "pow_mixed_levels":
        "tg.grad(lambda p: tg.grad(lambda x: x ** p)(2.0))(3.0) raises TypeError: pow's "
        "operands come from traces of different nesting levels",
    "relu_nan":
        "tg.relu(math.nan) is 0.0, must be nan (and so must its derivative)",
    "jit_try":
        "jit replays a tape recorded while f caught an exception: with f(x) = 1 / x, or x * x "
        "where that raises ZeroDivisionError, fast = tg.jit(tg.grad(f)); fast(0.0); fast(2.0) "
        "is 4.0, must be -0.25",
    "custom_vjp_outer":
        "custom_vjp under an outer transform records fwd's operations instead of the rule: "
        "tg.grad(lambda x: tg.value_and_grad(cube)(x)[0])(2.0) is 0.0 when cube's fwd "
        "returns stop_gradient(x ** 3), must be 12",
    # Found by this test:
    "forward_zero_tangent":
        "tg.jacfwd(lambda p: p[0] + tg.sqrt(p[1]))((1.0, 0.0)) is (nan, inf), jacrev says "
        "(1.0, inf): the forward sweep multiplies a zero tangent by an infinite partial "
        "(linear_combination adds up float pairs before it drops zeros)",
    "pow_rule_overflow":
        "tg.grad(lambda x: x ** 0.001)(1e-310) raises OverflowError (34, 'Numerical result "
        "out of range'), an error naming no operation, though f is 0.49 and f' is 4.9e306: "
        "the rule computes x ** (y - 1.0), which overflows. (reference.py's rule is the same "
        "formula: give it the fix too.)",
    "jit_drops_dead_errors":
        "f = lambda x: (1.0 / x, x * x)[1]; fast = tg.jit(f); fast(1.0); fast(0.0) returns 0.0 "
        "where f(0.0) raises ZeroDivisionError: jit leaves out records no output needs, and "
        "with them their domain errors",
    "zero_partial_nan":
        "tg.grad(lambda x: tg.sqrt(tg.relu(x)))(-1.0) is nan, must be 0.0 (the function is 0 "
        "for x < 0), and so does jit; likewise tg.grad(lambda x: x + tg.sqrt("
        "tg.stop_gradient(x)))(0.0) is nan, must be 1.0: the reverse sweep multiplies a "
        "constant zero partial (relu' below 0, stop_gradient's) by an infinite adjoint",
    "jit_zero_adjoint":
        "tg.jit(tg.grad(lambda x, y: tg.sqrt(x) * y, argnums=(0, 1)))(0.0, 0.0) was (nan, 0.0) "
        "where eager grad gave (0.0, 0.0): the sweeps treated a computed zero adjoint "
        "differently. Now both say (nan, 0.0): y * inf at y = 0 is an indeterminate form "
        "(see tapegrad.tape.SELECT)",
    "pow_base_zero":
        "tg.grad(tg.grad(lambda x: x ** 0.5))(0.0) is 0.0, must be -inf (the limit, as for "
        "sqrt): the pow rule's shortcut at x == 0, y < 1 returns a constant inf",
    "abs_nan":
        "tg.grad(abs)(math.nan) is 0.0, must be nan (NaN in, NaN out): the rule _sign(x) is 0 "
        "for NaN",
    "sum_reorders":
        "f = lambda x: tg.sum([1e-08, x, 1.0]); f(-1.0) is 1.0000000050247593e-08 but "
        "tg.value_and_grad(f)(-1.0)[0] is 9.99999993922529e-09: traced, tg.sum adds the traced "
        "items first and the constants after, so its value depends on what is traced",
}
# ORACLE_KNOWN_BUGS="name,..." lists some as not fixed (to try the hazard filters).
_override = os.environ.get("ORACLE_KNOWN_BUGS")
KNOWN_BUGS: frozenset[str] = frozenset(
    () if _override is None else [s for s in _override.split(",") if s])

# -- settings ----------------------------------------------------------------------------------

FUZZ_EXAMPLES = int(os.environ.get("ORACLE_EXAMPLES", "0"))
# The quick sample is the same on every run, so a red `make test` is always real; `make
# fuzz` is random and keeps what it finds in the .hypothesis database.
ORACLE_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES or 300, deadline=None, derandomize=not FUZZ_EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large],
)


@pytest.fixture(scope="module", autouse=True)
def _print_stats(request: pytest.FixtureRequest) -> Iterator[None]:
    """Say how many programs ran, and what happened to them, at the end of the module."""
    yield
    if not STATS["programs"]:
        return
    parts = "\n  ".join(f"{k}: {v}" for k, v in sorted(STATS.items()) if k != "programs")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\noracle: {STATS['programs']} programs checked\n  {parts}")


# -- the property test -------------------------------------------------------------------------

CUSTOMS = tuple(n for n in CUSTOM if n != "detached_cube" or "custom_vjp_outer" not in KNOWN_BUGS)


@ORACLE_SETTINGS
@given(case=cases(customs=CUSTOMS))
def test_tapegrad_agrees_with_the_oracle(case: Case) -> None:
    """Every path of tapegrad, the reference and central differences agree on a random program."""
    found = hazards(case)
    known = (found & KNOWN_BUGS) - CONFINED
    if known:
        note("left out: known bug " + ", ".join(sorted(known)))
        reject()
    allowed = restrictions(case, found, KNOWN_BUGS)
    if not allowed.forward_mode:
        note("forward mode left out: known bug forward_zero_tangent")
    if not allowed.jit_at_all:
        note("jit left out: known bug jit_zero_adjoint")
    STATS["programs"] += 1
    findings = check(case, allowed=allowed)
    assert not findings, report(case, findings)


# -- each known bug, as a program the check must catch -----------------------------------------


def _case(stmts: tuple, outputs: tuple, inputs: tuple, warm: tuple | None = None) -> Case:
    program = Program(len(inputs), stmts, outputs)
    return Case(program, inputs, warm if warm is not None else inputs)


KNOWN_BUG_CASES: dict[str, Case] = {
    "pow_exponent_zero": _case((Binary("**", Ref(0), Ref(1)),), (Ref(2),), (3.0, 0.0)),
    "sqrt_at_zero": _case((Unary("sqrt", Ref(0)),), (Ref(1),), (0.0,)),
    "pow_mixed_levels": _case(
        (Grad(False, Const(2.0), Block((Binary("**", Ref(1), Ref(0)),), Ref(2))),), (Ref(1),),
        (3.0,)),
    "relu_nan": _case((Unary("relu", Ref(0)),), (Ref(1),), (math.nan,)),
    "jit_try": _case(
        (Try(Block((Binary("/", Const(1.0), Ref(0)),), Ref(1)),
             Block((Binary("*", Ref(0), Ref(0)),), Ref(1))),), (Ref(1),), (2.0,), warm=(0.0,)),
    "custom_vjp_outer": _case(
        (Grad(True, Ref(0), Block((Call("detached_cube", (Ref(1),)),), Ref(2))),), (Ref(1),),
        (2.0,)),
    "forward_zero_tangent": _case(
        (Unary("sqrt", Ref(1)), Binary("+", Ref(0), Ref(2))), (Ref(3),), (1.0, 0.0)),
    "pow_rule_overflow": _case((Binary("**", Ref(0), Const(0.001)),), (Ref(1),), (1e-310,)),
    "jit_drops_dead_errors": _case(
        (Binary("/", Const(1.0), Ref(0)), Binary("*", Ref(0), Ref(0))), (Ref(2),), (0.0,),
        warm=(1.0,)),
    "zero_partial_nan": _case((Unary("relu", Ref(0)), Unary("sqrt", Ref(1))), (Ref(2),), (-1.0,)),
    "jit_zero_adjoint": _case(
        (Unary("sqrt", Ref(0)), Binary("*", Ref(2), Ref(1))), (Ref(3),), (0.0, 0.0)),
    "pow_base_zero": _case((Binary("**", Ref(0), Const(0.5)),), (Ref(1),), (0.0,)),
    "abs_nan": _case((Unary("abs", Ref(0)),), (Ref(1),), (math.nan,)),
    "sum_reorders": _case((Sum((Const(1e-08), Ref(0), Const(1.0))),), (Ref(1),), (-1.0,)),
}


@pytest.mark.parametrize("name", sorted(FOUND_BUGS))
def test_known_bug_is_caught(name: str) -> None:
    """Each known bug's repro is flagged by the check while listed, and passes once fixed."""
    case = KNOWN_BUG_CASES[name]
    findings = check(case)
    if name in KNOWN_BUGS:
        assert findings, f"{name} is in KNOWN_BUGS but the check finds nothing: fixed? " \
                         "Then remove it from KNOWN_BUGS."
        assert name in hazards(case) or name in ("jit_try", "jit_drops_dead_errors"), \
            f"hazards() does not recognise {name}'s repro, so the generator is not kept away"
    else:
        assert not findings, report(case, findings)


# -- the check itself can fail -----------------------------------------------------------------


def _with(fns: dict[str, Callable[..., Any]]) -> Backend:
    return replace(TAPEGRAD, fns={**TAPEGRAD.fns, **fns})


def _sin_with_a_wrong_derivative(x: Any) -> Any:
    return tg.sin(x) + 0.5 * (x - tg.stop_gradient(x))  # value sin(x), derivative cos(x) + 0.5


_exp_first_order_only = tg.custom_vjp(tg.exp)
_exp_first_order_only.defvjp(lambda x: (tg.exp(x), tg.stop_gradient(tg.exp(x))),
                             lambda res, g: (g * res,))


@pytest.mark.parametrize(("fns", "expected"), [
    ({"sin": _sin_with_a_wrong_derivative}, "d out0/d x0 = "),
    ({"exp": _exp_first_order_only}, "d2 out0/d x0 d x0 = "),
    ({"tanh": lambda x: x}, "out0 = "),
    ({"log": lambda x: tg.log(x) if x > 1.0 else 0.0 * x}, "returned"),
])
def test_the_check_catches_a_broken_backend(fns: dict, expected: str) -> None:
    """A backend with a wrong value, derivative, second derivative or error is reported."""
    program = Program(1, (Unary(next(iter(fns)), Ref(0)), Binary("*", Ref(1), Ref(0))), (Ref(2),))
    x = 0.5 if expected != "returned" else -1.0
    findings = check(Case(program, (x,), (x,)), backend=_with(fns))
    assert any(expected in f for f in findings), findings


def test_central_difference_estimates_and_skips() -> None:
    """Smooth: the estimate is within its tolerance; at a kink or a branch: skipped."""
    def smooth(s: float) -> tuple[float, list, list]:
        return math.sin(1.0 + s), [], [1.0 + s]

    d = central_difference(smooth, 1.0)
    assert abs(d.estimate - math.cos(1.0)) <= d.tolerance < 1e-6
    kink = Program(1, (Unary("relu", Ref(0)),), (Ref(1),))
    assert central_difference(value_phi(kink, (0.0,), 0, 0), 0.0).skipped
    hidden_kink = central_difference(lambda s: (abs(s), [], []), 0.0)  # no signature
    assert hidden_kink.skipped == "one-sided differences disagree"
    pole = central_difference(lambda s: (1.0 / (s - 1e-7), [], []), 0.0)
    assert pole.skipped
    fast = central_difference(lambda s: (math.sin(1e6 * s), [], [1e6 * s]), 0.0)
    assert fast.skipped == "sin or cos turns too fast for the step"


def test_agree_is_rounding_only() -> None:
    """agree() allows rounding of the terms' size, and nothing for NaN or infinities."""
    assert agree(1.0, 1.0 + 1e-15) and not agree(1.0, 1.0 + 1e-9)
    assert agree(1e-17, 0.0, magnitude=1.0) and not agree(1e-17, 0.0)
    assert agree(math.nan, math.nan) and not agree(math.nan, 0.0)
    assert not agree(math.inf, 1e308) and agree(-math.inf, -math.inf)


def test_programs_print_as_the_python_they_run() -> None:
    """The printed program, run as Python on floats, gives the interpreter's values."""
    import programs

    stmts = (Binary("**", Const(-2.0), Ref(0)), Binary("-", Ref(2), Const(-1.0)),
             Unary("neg", Ref(3)), Binary("**", Ref(1), Const(-0.5)))
    program = Program(2, stmts, (Ref(4), Ref(5)))
    namespace: dict[str, Any] = {"math": math, "tg": tg}
    exec(str(program), namespace)  # our own generated text
    assert namespace["f"](2.0, 4.0) == programs.run(program, programs.FLOATS, (2.0, 4.0))
