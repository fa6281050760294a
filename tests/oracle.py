"""The differential check behind tests/test_oracle.py: one program, every path, one verdict.

:func:`check` runs a :class:`~programs.Case` on plain floats, on tapegrad (eager
``value_and_grad``, ``jit``, ``jvp``, ``jacrev``, ``jacfwd``, ``hessian``,
``jacfwd(jacrev)``) and on ``tapegrad.reference``, and lists every disagreement:

- errors: when the float computation raises ValueError, ZeroDivisionError or
  OverflowError, every path raises the same type; when it does not, none does;
- values and derivatives: equal up to rounding (1e-12 relative to the size of
  the terms that were added up) across all paths, NaN exactly where the oracle
  has NaN, and every number a float;
- central differences: the oracle's gradient and Hessian, where the function is
  smooth around the point (no branch, kink or domain edge within the stencil,
  and the differences converge), to a tolerance estimated from the differences.

The oracle is the float run for values and errors and the reference for
derivatives. The check allows only what rounding explains: the reference's
reverse sweep with absolute values bounds the size of each derivative's terms
and each value's rounding; a program with numbers beyond 1e+-100, where the
order of a product decides whether it overflows, with an infinite operand of
``**``, or with an infinite value anywhere, has its values and errors compared
but not its derivatives; central
differences hold stop_gradient's values fixed, as a derivative does.

:func:`hazards` names the known bugs of tapegrad that a case runs into (decided
on the reference), so that a test can keep away from bugs that are not fixed yet.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable

from hypothesis import event
from hypothesis.errors import InvalidArgument
from programs import (
    CAUGHT,
    TAPEGRAD,
    Backend,
    Call,
    Case,
    Program,
    Try,
    float_backend,
    reference_backend,
    run,
    statements,
)

import tapegrad as tg
from tapegrad import reference as ref

REL = 1e-12  # agreement up to rounding
EPS = sys.float_info.epsilon
STATS: Counter = Counter()



def note(what: str) -> None:
    """Count something for the summary line, and for hypothesis's statistics when inside it."""
    STATS[what] += 1
    with contextlib.suppress(InvalidArgument):  # outside a hypothesis test
        event(what)


# -- outcomes of one path ----------------------------------------------------------------------


@dataclass(frozen=True)
class Raised:
    """A path raised one of the domain errors."""

    kind: type


@dataclass(frozen=True)
class Crashed:
    """A path raised anything else: always a finding."""

    error: Exception


def attempt(fn: Callable[[], Any]) -> Any:
    """fn(), or what it raised."""
    try:
        return fn()
    except CAUGHT as e:
        return Raised(type(e))
    except Exception as e:  # any other error is reported with the program
        return Crashed(e)


def agree(a: float, b: float, magnitude: float = 0.0) -> bool:
    """Equal up to rounding, relative to the largest of a, b and ``magnitude``.

    ``magnitude`` bounds the size of the terms that were added up to get the
    number: their cancellation is rounding, not a bug. NaN matches only NaN, an
    infinity only itself.
    """
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    scale = max(abs(a), abs(b), magnitude if math.isfinite(magnitude) else 0.0)
    return abs(a - b) <= REL * scale or abs(a - b) <= 1e-300


# -- hazards: where a known bug would fire -----------------------------------------------------


@contextlib.contextmanager
def watching_reference(observe: Callable[[ref.Primitive, tuple], None]) -> Iterator[None]:
    """Show ``observe`` every operation the reference applies, at every level, before it runs.

    Every operation of the reference, those of derivative rules and reverse
    sweeps included, goes through ``reference.apply``.
    """
    original = ref.apply
    observing = []  # the operations observe() itself applies are not observed

    def apply(prim: ref.Primitive, operands: Any) -> Any:
        if not observing:
            observing.append(True)
            try:
                observe(prim, tuple(operands))
            finally:
                observing.pop()
        return original(prim, operands)

    ref.apply = apply  # type: ignore[assignment]
    try:
        yield
    finally:
        ref.apply = original  # type: ignore[assignment]


def _level(x: Any) -> int:
    return x.trace.level if isinstance(x, ref.Var) else 0


def _sum_reorders(operands: tuple, values: list) -> bool:
    """Whether tapegrad's sum (the innermost trace's items, then the rest) rounds differently."""
    level = max(_level(x) for x in operands)
    if not level:
        return False
    inner = [v for x, v in zip(operands, values) if _level(x) == level]
    rest = [v for x, v in zip(operands, values) if _level(x) != level]
    reordered, in_order = _fold(inner) + _fold(rest), _fold(values)
    return reordered != in_order and not (math.isnan(reordered) and math.isnan(in_order))


def _fold(values: list) -> float:
    total = 0.0
    for v in values:
        total += v
    return total


def _hazards_of(prim: ref.Primitive, operands: tuple, after_stop_gradient: bool) -> set[str]:
    """The known bugs one operation of the reference would run into in tapegrad.

    ``after_stop_gradient``: a traced value went through stop_gradient before.
    """
    found: set[str] = set()
    values = [ref.primal(x) for x in operands]
    traced = [isinstance(x, ref.Var) for x in operands]
    if prim.name == "sqrt" and traced[0] and values[0] == 0.0:
        found.add("sqrt_at_zero")
    if prim.name in ("pow", "pow_or_inf"):
        if traced[1] and values[1] == 0.0:
            found.add("pow_exponent_zero")
        if traced[0] and values[0] == 0.0 and values[1] < 1.0:
            found.add("pow_base_zero")
        if all(traced) and _level(operands[0]) != _level(operands[1]):
            inner = max(operands, key=_level)
            if not isinstance(inner.value, ref.Var):  # tapegrad then calls math.pow on a tracer
                found.add("pow_mixed_levels")
    if prim.name == "relu" and math.isnan(values[0]):
        found.add("relu_nan")
    if prim.name == "abs" and traced[0] and math.isnan(values[0]):
        found.add("abs_nan")
    if prim.name == "sum" and _sum_reorders(operands, values):
        found.add("sum_reorders")
    if prim.name in ("pow", "pow_or_inf") and (any(traced) or after_stop_gradient):
        # The rules of x ** y and of its derivatives compute x ** (y - k), k = 1, 2, ...:
        # up to the fourth derivative (a Hessian of two nested grads), none may overflow.
        for k in (1, 2, 3, 4):
            with contextlib.suppress(ValueError, ZeroDivisionError):
                try:
                    math.pow(values[0], values[1] - k)
                except OverflowError:
                    found.add("pow_rule_overflow")
    try:
        out = prim.on_floats(*values)
    except CAUGHT:
        if prim.name == "pow_or_inf":  # only rules use it: the rule overflows, not f
            found.add("pow_rule_overflow")
        return found
    # tapegrad's stop_gradient returns a traced value (with a zero partial), so where the
    # reference sees a constant operand tapegrad may compute its partial too.
    for k in range(len(operands) if any(traced) or after_stop_gradient else 0):
        try:
            partial = ref.primal(prim.partial(k, out, *values))
        except OverflowError:
            found.add("pow_rule_overflow")
            continue
        if not math.isfinite(partial):
            found.add("forward_zero_tangent" if any(traced) else "zero_partial_nan")
    return found


def hazards(case: Case) -> set[str]:
    """The known bugs that this program and its inputs run into.

    Decided on the reference, which knows every operand's nesting level, while it
    computes the gradient and the Hessian (the same operations tapegrad's paths
    perform, rules included), and the gradient at the point where jit traces.
    """
    found: set[str] = set()
    program = case.program
    n = program.n_inputs

    stopped: list[bool] = []  # whether a traced value has gone through stop_gradient yet

    def observe(prim: ref.Primitive, operands: tuple) -> None:
        found.update(_hazards_of(prim, operands, bool(stopped)))

    def observe_program(op: str, operands: Any, result: Any) -> None:
        if op == "stop_gradient" and isinstance(operands[0], ref.Var):
            stopped.append(True)

    backend = reference_backend(observe_program)

    def f(*a: Any) -> Any:
        return run(program, backend, a)[0]

    def output(k: int) -> Callable[..., Any]:
        return lambda *a: run(program, backend, a)[k]

    with watching_reference(observe):
        runs = [lambda: ref.grad(f, tuple(range(n)))(*case.warm),
                lambda: reference_hessian(program, case.inputs, backend)]
        runs += [lambda k=k: ref.grad(output(k), tuple(range(n)))(*case.inputs)
                 for k in range(len(program.outputs))]
        for fn in runs:
            stopped.clear()
            outcome = attempt(fn)
            if isinstance(outcome, Crashed):
                raise outcome.error  # a bug of this test, not of tapegrad
    if any(isinstance(s, Call) and s.name == "detached_cube" for s in statements(program)):
        found.add("custom_vjp_outer")
    for k in range(len(program.outputs)):
        swept = attempt(lambda k=k: sweep_hazards(output(k), case.inputs))
        if isinstance(swept, Crashed):
            raise swept.error
        if isinstance(swept, set):
            found |= swept
    return found


def sweep_hazards(f: Callable[..., Any], xs: tuple) -> set[str]:
    """The known bugs that f's first-order reverse sweep runs into.

    A zero and a non-finite number meet: a zero adjoint and an infinite
    partial (the reference skips the record; under jit, where the adjoint is a
    traced zero, tapegrad does not), or a constant zero partial and a
    non-finite adjoint (the reference sends nothing; tapegrad sends 0 * inf).
    """
    trace = ref.Trace(len(ref._TRACES) + 1)
    ref._TRACES.append(trace)
    try:
        out = f(*[trace.append(x, []) for x in xs])
    finally:
        ref._TRACES.pop()
        trace.open = False
    found: set[str] = set()
    if not (isinstance(out, ref.Var) and out.trace is trace):
        return found
    adjoint: dict[int, float] = {out.index: 1.0}
    reached = {out.index}  # through any partial: under jit a zero one may be traced
    for i in reversed(range(len(trace.records))):
        if i not in reached:
            continue
        g = adjoint.get(i, 0.0)
        partials = [ref.primal(d) for _, d in trace.records[i]]
        if g == 0.0 and not all(map(math.isfinite, partials)):
            found.add("jit_zero_adjoint")
        if not math.isfinite(g) and 0.0 in partials:
            found.add("zero_partial_nan")
        for (j, _), partial in zip(trace.records[i], partials):
            reached.add(j)
            if partial != 0.0 and g != 0.0:
                adjoint[j] = adjoint.get(j, 0.0) + g * partial
    return found


# -- sizes: how large the terms of each derivative are ----------------------------------------


EXTREME = 1e100


def extreme(x: Any) -> bool:
    """A finite, nonzero magnitude outside [1e-100, 1e100].

    Products of a few such numbers overflow or underflow in one order of
    multiplication and not in another, so forward and reverse mode may then
    differ by more than rounding without either being wrong.
    """
    v = abs(ref.primal(x))
    return math.isfinite(v) and v != 0.0 and not 1.0 / EXTREME <= v <= EXTREME


@dataclass
class Sizes:
    """How large the terms of each derivative are, and the values' rounding.

    ``terms[meaning]`` bounds the size of the terms that a derivative adds up;
    ``rounding[meaning]`` bounds, divided by the machine epsilon, the rounding
    error of computing a value or a gradient (see absolute_sweep). ``extreme``
    is set when any number is extreme(), or x ** y has an infinite operand.
    """

    terms: dict[str, float] = field(default_factory=dict)
    rounding: dict[str, float] = field(default_factory=dict)
    extreme: bool = False


class _ValueTrace(ref.Trace):
    """A reference trace that also keeps each record's value."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.values: list[Any] = []

    def append(self, value: Any, parents: list) -> ref.Var:
        self.values.append(value)
        return super().append(value, parents)


def absolute_sweep(f: Callable[..., Any], xs: tuple, sizes: Sizes) -> tuple[list[float], float]:
    """Per input, the sum over all paths to f of the product of |partials|; and f's rounding.

    This is the reference's reverse sweep with absolute values. Its result for
    an input bounds the size of the terms that the derivative adds up: two
    correct ways of adding them differ by rounding relative to it, however much
    the terms cancel. And since each operation rounds its value v by at most
    eps |v|, which reaches f multiplied by v's adjoint, f's rounding error is at
    most eps times the sum of |adjoint| |v| over the records.
    """
    trace = _ValueTrace(len(ref._TRACES) + 1)
    ref._TRACES.append(trace)
    try:
        leaves = [trace.append(x, []) for x in xs]
        out = f(*leaves)
    finally:
        ref._TRACES.pop()
        trace.open = False
    if not (isinstance(out, ref.Var) and out.trace is trace):
        return [0.0] * len(xs), abs(ref.primal(out))
    size: dict[int, float] = {out.index: 1.0}
    rounding = 0.0
    for i in reversed(range(len(trace.records))):
        g = size.get(i, 0.0)
        if g == 0.0:
            continue
        if trace.records[i]:  # not a leaf: its value was rounded
            rounding += g * abs(ref.primal(trace.values[i]))
        for j, partial in trace.records[i]:
            if ref.primal(partial) == 0.0:
                continue  # sends nothing, as in the reference's sweep
            term = g * abs(ref.primal(partial))
            sizes.extreme = sizes.extreme or extreme(partial) or extreme(term)
            size[j] = size.get(j, 0.0) + term
    return [size.get(leaf.index, 0.0) for leaf in leaves], rounding


def reference_hessian(program: Program, xs: tuple, backend: Backend | None = None) -> tuple:
    """H[i][j] = d/dx_j of d out0/dx_i, by the reference's grad of grad."""
    nums = tuple(range(len(xs)))
    backend = backend or reference_backend()

    def f(*a: Any) -> Any:
        return run(program, backend, a)[0]

    return tuple(ref.grad(lambda *a, i=i: ref.grad(f, i)(*a), nums)(*xs) for i in nums)


def magnitudes(program: Program, xs: tuple) -> Sizes:
    """Sizes of the terms and rounding of everything the check compares (see absolute_sweep)."""
    n = len(xs)
    sizes = Sizes()

    def observe(prim: ref.Primitive, operands: tuple) -> None:
        values = [ref.primal(x) for x in operands]
        # x ** y with an infinite operand: its derivatives are conventions (tapegrad's rule
        # says d/dx x**-inf = inf at 0, the formula y x**(y-1) says -inf), not limits.
        infinite_power = prim.name in ("pow", "pow_or_inf") and any(map(math.isinf, values))
        sizes.extreme = sizes.extreme or infinite_power or any(map(extreme, values))

    def output(k: int) -> Callable[..., Any]:
        return lambda *a: run(program, reference_backend(), a)[k]

    def sweep(g: Callable[..., Any]) -> tuple[list[float], float] | None:
        swept = attempt(lambda: absolute_sweep(g, xs, sizes))
        if isinstance(swept, Crashed):
            raise swept.error  # a bug of this test, not of tapegrad
        return None if isinstance(swept, Raised) else swept

    with watching_reference(observe):
        for k in range(len(program.outputs)):
            swept = sweep(output(k))
            if swept is not None:
                sizes.terms.update({f"d out{k}/d x{i}": swept[0][i] for i in range(n)})
                sizes.rounding[f"out{k}"] = swept[1]
            for i in range(n):
                swept = sweep(lambda *a, k=k, i=i: ref.grad(output(k), i)(*a))
                if swept is not None:
                    if k == 0:  # the Hessian of output 0
                        sizes.terms.update({f"d2 out0/d x{i} d x{j}": swept[0][j]
                                            for j in range(n)})
                    sizes.rounding[f"d out{k}/d x{i}"] = swept[1]
    return sizes


# -- finite differences ------------------------------------------------------------------------


def _sign_class(x: Any) -> int:
    x = ref.primal(x)
    return 2 if math.isnan(x) else (x > 0) - (x < 0)


# Operations where the sign of an operand decides a kink, a pole or a domain edge.
_WATCHED = {"relu": 0, "abs": 0, "sqrt": 0, "log": 0, "/": 1, "**": 0}


class _Observer:
    """Records a run's signature (its branches, the side of each kink, pole and edge) and
    the arguments of sin and cos (its phases)."""

    def __init__(self) -> None:
        self.signature: list = []
        self.phases: list[float] = []
        self.infinite = False  # whether the program met an infinite value
        # whether some partial is NaN or infinite: a NaN value, sqrt at 0, x ** y at a base
        # <= 0 (d/dy is NaN below 0; d/dx can be infinite at 0)
        self.singular_partial = False

    def __call__(self, op: str, operands: Any, result: Any) -> None:
        if op in ("if", "try"):
            self.signature.append((op, result))
            return
        values = [ref.primal(x) for x in operands if not isinstance(x, list)]
        values += [ref.primal(x) for group in operands if isinstance(group, list) for x in group]
        self.infinite = self.infinite or any(map(math.isinf, values + [ref.primal(result)]))
        self.singular_partial = self.singular_partial or any(map(math.isnan, values)) or (
            op == "**" and values[0] <= 0.0) or (op == "sqrt" and values[0] == 0.0)
        if op in _WATCHED:
            self.signature.append((op, _sign_class(operands[_WATCHED[op]])))
        elif op in ("sin", "cos"):
            self.phases.append(ref.primal(operands[0]))


@dataclass(frozen=True)
class Difference:
    """A central-difference estimate and its tolerance, or why there is none."""

    estimate: float = math.nan
    tolerance: float = math.nan
    skipped: str = ""


def central_difference(phi: Callable[[float], tuple[float, list, list]], x: float,
                       rounding: float = 0.0) -> Difference:
    """d phi / ds at 0 from steps h, 2h and 4h, if phi is smooth over [-4h, 4h].

    ``phi(s)`` returns (value, signature, phases); ``rounding`` bounds its
    rounding error divided by epsilon. No estimate for |x| > 3000, if a sin or
    cos turns by more than a tenth of a radian across the stencil (it would not
    resolve them), if a branch or kink side changes in the stencil, a point
    raises or is not finite, the estimates do not converge, or the one-sided
    differences disagree by more than curvature explains (a kink that the
    signature missed). The tolerance comes from the estimates' own spread and
    the rounding of the values.
    """
    h = 2.0 ** -16 * max(1.0, abs(x))
    if h > 0.05:
        return Difference(skipped="input too large for central differences")
    if not math.isfinite(rounding):
        return Difference(skipped="rounding not bounded (an infinite partial)")
    values = {}
    base = None
    phases = {}
    for k in (0, -1, 1, -2, 2, -4, 4):
        try:
            value, signature, phases[k] = phi(k * h)
        except CAUGHT:
            return Difference(skipped="domain error near the point")
        if k == 0:
            base = signature
        elif signature != base:
            return Difference(skipped="branch or kink near the point")
        if not math.isfinite(value):
            return Difference(skipped="not finite near the point")
        values[k] = value
    if any(not abs(a - b) <= 0.1 for a, b in zip(phases[-4], phases[4])):
        return Difference(skipped="sin or cos turns too fast for the step")
    d1, d2, d4 = ((values[k] - values[-k]) / (2 * k * h) for k in (1, 2, 4))
    largest = max(abs(v) for v in values.values())
    noise = EPS * (8.0 * rounding + 64.0 * largest) / h
    if abs(d2 - d4) > 1e-3 * abs(d4) + noise:
        return Difference(skipped="differences do not converge")
    # forward minus backward difference: h * phi'' for a smooth phi, a jump at a kink
    jump1, jump2 = ((values[k] - 2 * values[0] + values[-k]) / (k * h) for k in (1, 2))
    if abs(jump1) > 0.75 * abs(jump2) + 1e-6 * abs(d1) + noise:
        return Difference(skipped="one-sided differences disagree")
    tolerance = 4.0 * (abs(d1 - d2) + abs(d2 - d4)) + noise + 1e-9 * abs(d1)
    return Difference(d1, tolerance)


class _Frozen:
    """stop_gradient that returns, call by call, the values of the first run.

    A derivative treats stop_gradient's value as a constant, so the function
    that central differences must see is the one where those values stay put.
    """

    def __init__(self) -> None:
        self.values: list[float] = []
        self.calls = 0

    def start(self) -> dict[str, Callable[..., Any]]:
        self.calls = 0
        return {"stop_gradient": self}

    def __call__(self, x: Any) -> float:
        if self.calls == len(self.values):
            self.values.append(ref.primal(x))
        self.calls += 1
        return self.values[self.calls - 1]


def _moved(xs: tuple, i: int, s: float) -> tuple:
    return xs[:i] + (xs[i] + s,) + xs[i + 1:]


def value_phi(program: Program, xs: tuple, i: int, k: int) -> Callable:
    """Output k as a function of a step along input i, with its signature."""
    frozen = _Frozen()

    def phi(s: float) -> tuple[float, list, list]:
        observer = _Observer()
        value = run(program, float_backend(observer, frozen.start()), _moved(xs, i, s))[k]
        return value, observer.signature, observer.phases

    return phi


def gradient_phi(program: Program, xs: tuple, i: int, j: int) -> Callable:
    """d out0/d x_j (by the reference) as a function of a step along input i."""
    frozen = _Frozen()

    def phi(s: float) -> tuple[float, list, list]:
        observer = _Observer()
        backend = reference_backend(observer, frozen.start())
        _, g = ref.value_and_grad(lambda *a: run(program, backend, a)[0],
                                  tuple(range(len(xs))))(*_moved(xs, i, s))
        return g[j], observer.signature, observer.phases

    return phi


# -- the paths, and what each number they return means -----------------------------------------


def paths(case: Case, backend: Backend, with_jit: bool = True,
          forward: bool = True) -> dict[str, Callable[[], Any]]:
    """Every way of computing the program's values and derivatives, by name.

    ``with_jit`` and ``forward`` (jvp, jacfwd and the forward-over-reverse
    Hessians) leave paths out.
    """
    program, xs = case.program, case.inputs
    nums = tuple(range(len(xs)))

    def output(b: Backend, k: int) -> Callable[..., Any]:
        return lambda *a: run(program, b, a)[k]

    def of_tuple(k: int | None = None) -> Callable[[tuple], Any]:
        return lambda p: run(program, backend, p) if k is None else run(program, backend, p)[k]

    def jitted() -> Any:
        fast = tg.jit(tg.value_and_grad(output(backend, 0), nums))
        warmed = attempt(lambda: fast(*case.warm))
        if isinstance(warmed, Crashed):
            raise warmed.error
        return fast(*xs)

    found: dict[str, Callable[[], Any]] = {
        "tapegrad on floats": lambda: run(program, backend, xs),
        "jacrev": lambda: tg.jacrev(of_tuple())(xs),
        "jacrev(jacrev)": lambda: tg.jacrev(tg.jacrev(of_tuple(0)))(xs),  # no forward sweep
        "reference hessian": lambda: reference_hessian(program, xs),
    }
    if forward:
        found["jacfwd"] = lambda: tg.jacfwd(of_tuple())(xs)
        found["hessian"] = lambda: tg.hessian(of_tuple(0))(xs)
        found["jacfwd(jacrev)"] = lambda: tg.jacfwd(tg.jacrev(of_tuple(0)))(xs)
    for k in range(len(program.outputs)):
        found[f"value_and_grad out{k}"] = (
            lambda k=k: tg.value_and_grad(output(backend, k), nums)(*xs))
        found[f"reference value_and_grad out{k}"] = (
            lambda k=k: ref.value_and_grad(output(reference_backend(), k), nums)(*xs))
    for i in nums if forward else ():
        unit = tuple(1.0 if j == i else 0.0 for j in nums)
        found[f"jvp along x{i}"] = (
            lambda unit=unit: tg.jvp(lambda *a: run(program, backend, a), xs, unit))
    if with_jit:
        found["jit(value_and_grad out0), traced first at warm"] = jitted
    return found


def meanings(name: str, result: Any, n_in: int, n_out: int) -> Iterator[tuple[str, Any]]:
    """(meaning, number) for each number a path returned, meaning e.g. 'd out0/d x1'."""
    if name == "tapegrad on floats":
        for k, v in enumerate(result):
            yield f"out{k}", v
    elif "value_and_grad" in name:
        k = int(name.split(" out")[1][0])
        value, grads = result
        yield f"out{k}", value
        for i, g in enumerate(grads):
            yield f"d out{k}/d x{i}", g
    elif name.startswith("jvp"):
        i = int(name[-1])
        values, tangents = result
        for k in range(n_out):
            yield f"out{k}", values[k]
            yield f"d out{k}/d x{i}", tangents[k]
    elif name in ("jacrev", "jacfwd"):
        for k in range(n_out):
            for i in range(n_in):
                yield f"d out{k}/d x{i}", result[k][i]
    else:  # the Hessians of output 0
        for i in range(n_in):
            for j in range(n_in):
                yield f"d2 out0/d x{i} d x{j}", result[i][j]


# -- the check ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Restrictions:
    """Paths that a case leaves out while a known bug is not fixed (all are in by default)."""

    jit_with_try: bool = True  # jit on programs with try/except (jit_try)
    jit_when_raising: bool = True  # jit where the float run raises (jit_drops_dead_errors)
    jit_at_all: bool = True  # (jit_zero_adjoint)
    forward_mode: bool = True  # jvp, jacfwd and Hessians (forward_zero_tangent)


# Known bugs confined to some paths: the test leaves those paths out instead of the program.
CONFINED = {"jit_try", "jit_drops_dead_errors", "forward_zero_tangent", "jit_zero_adjoint"}


def restrictions(case: Case, found: set[str], known: frozenset[str]) -> Restrictions:
    """The paths to leave out for this case, given the hazards found in it."""
    has_try = any(isinstance(s, Try) for s in statements(case.program))
    return Restrictions(
        jit_with_try=not ("jit_try" in known and has_try),
        jit_when_raising="jit_drops_dead_errors" not in known,
        jit_at_all=not ("jit_zero_adjoint" in known and "jit_zero_adjoint" in found),
        forward_mode=not ("forward_zero_tangent" in known and "forward_zero_tangent" in found))


def check(case: Case, backend: Backend = TAPEGRAD,
          allowed: Restrictions = Restrictions()) -> list[str]:
    """Every disagreement between tapegrad's paths, the oracle and finite differences.

    The oracle is the float run for values and errors, the reference for
    derivatives; central differences check the reference where they apply.
    """
    program, xs = case.program, case.inputs
    n_in, n_out = program.n_inputs, len(program.outputs)
    observer = _Observer()
    base = attempt(lambda: run(program, float_backend(observer), xs))
    if isinstance(base, Crashed):
        return [f"the float run crashed: {base.error!r}"]
    with_jit = allowed.jit_at_all and allowed.jit_with_try and (
        allowed.jit_when_raising or not isinstance(base, Raised))
    results = {name: attempt(fn)
               for name, fn in paths(case, backend, with_jit, allowed.forward_mode).items()}
    findings = [f"{name} crashed: {type(r.error).__name__}: {r.error}"
                for name, r in results.items() if isinstance(r, Crashed)]
    if isinstance(base, Raised):
        note(f"float run raises {base.kind.__name__}")
        for name, r in results.items():
            if not isinstance(r, (Raised, Crashed)):
                findings.append(f"{name} returned {r!r}; f raises {base.kind.__name__}")
            elif isinstance(r, Raised) and r.kind is not base.kind:
                findings.append(f"{name} raises {r.kind.__name__}; f raises "
                                f"{base.kind.__name__}")
        return findings
    findings += [f"{name} raises {r.kind.__name__}; f does not"
                 for name, r in results.items() if isinstance(r, Raised)]
    # The oracle: the float run's values, the reference's gradients and Hessian.
    truth: dict[str, float] = {f"out{k}": v for k, v in enumerate(base)}
    for name in [f"reference value_and_grad out{k}" for k in range(n_out)] + ["reference hessian"]:
        if not isinstance(results[name], (Raised, Crashed)):
            for meaning, v in meanings(name, results[name], n_in, n_out):
                truth.setdefault(meaning, v)
    sizes = magnitudes(program, xs)
    if sizes.extreme or any(extreme(v) for v in truth.values()):
        note("extreme magnitudes or an infinite power: values compared, derivatives not")
        truth = {f"out{k}": v for k, v in enumerate(base)}
    elif observer.infinite:  # where 0 * inf is NaN or 0 by convention, not by calculus
        note("an infinite value: values compared, derivatives not")
        truth = {f"out{k}": v for k, v in enumerate(base)}
    terms = {**sizes.terms, **{f"out{k}": sizes.rounding.get(f"out{k}", 0.0)
                                for k in range(n_out)}}
    accepted = {meaning: [v] for meaning, v in truth.items()}
    custom_rules = any(isinstance(stmt, Call) for stmt in statements(program))
    for i in range(n_in):
        for j in range(n_in):
            # H is symmetric: where the oracle's own H[i][j] and H[j][i] differ (overflow in
            # an intermediate, in one order of the products and not the other), either will do.
            ij, ji = f"d2 out0/d x{i} d x{j}", f"d2 out0/d x{j} d x{i}"
            if ij in truth and ji in truth and not agree(truth[ij], truth[ji], terms.get(ij, 0.0)):
                accepted[ij].append(truth[ji])
    for name, r in results.items():
        if isinstance(r, (Raised, Crashed)):
            continue
        for meaning, v in meanings(name, r, n_in, n_out):
            if type(v) is not float:
                findings.append(f"{name}: {meaning} is {type(v).__name__} {v!r}, not a float")
            elif meaning in truth and math.isnan(v) and custom_rules:
                # tapegrad runs a custom_vjp function's rule, the reference the function
                # itself: a zero the rule computes (g * y at y = 0) is a value to tapegrad
                # that can meet an infinity, where the reference sees a constant factor.
                note("a custom rule's computed zero met an infinity: NaN accepted")
            elif meaning in truth and math.isnan(v) and _of_a_nan_gradient(meaning, truth):
                # A second derivative of a function whose gradient is NaN there: NaN is an
                # answer, though the reference, which sees some zeros as constants that
                # tapegrad sees as traced values (a kink's sign one level up), may say 0.
                note("second derivative of a NaN gradient: NaN accepted")
            elif (observer.singular_partial and _forward_mode(name) and meaning in truth
                  and math.isnan(truth[meaning]) != math.isnan(v)):
                # A NaN or infinite partial (x ** y's d/dy at a negative base, sqrt' at 0)
                # and a cancellation to an exact zero: forward mode sees a tangent cancel
                # (sqrt(x - x) sends nothing, by the chain rule's convention) where
                # reverse mode adds inf - inf, and reverse mode sees an adjoint cancel
                # (x ** x - x ** x) where forward mode adds NaN - NaN. Each mode is exact
                # about what it sees; a NaN is not silently wrong.
                note("forward mode against reverse: a singular partial beside a cancellation")
            elif meaning in truth and not any(agree(v, t, terms.get(meaning, 0.0))
                                              for t in accepted[meaning]):
                findings.append(f"{name}: {meaning} = {v!r}, the oracle says {truth[meaning]!r}")
    findings += check_differences(case, truth, sizes)
    note("programs with values and derivatives")
    return findings


def _of_a_nan_gradient(meaning: str, truth: dict[str, float]) -> bool:
    """Whether ``meaning`` is a second derivative d2/dxi dxj with d/dxi or d/dxj NaN."""
    if not meaning.startswith("d2 out0/d x"):
        return False
    i, j = (part.strip() for part in meaning[len("d2 out0/d "):].split(" d "))
    return any(math.isnan(truth.get(f"d out0/d {x}", 0.0)) for x in (i, j))


def _forward_mode(path: str) -> bool:
    """Whether a path's first sweep is a forward one (``jvp``, ``jacfwd``)."""
    return path.startswith(("jvp", "jacfwd"))


def check_differences(case: Case, truth: dict[str, float], sizes: Sizes) -> list[str]:
    """The oracle's gradient and Hessian against central differences, where they apply.

    Only at finite inputs, and for finite derivatives: a NaN or an infinity
    makes the differences of the numbers around it meaningless.
    """
    program, xs = case.program, case.inputs
    if not all(map(math.isfinite, xs)):
        note("central differences skipped: a non-finite input")
        return []
    findings = []
    for i, x in enumerate(xs):
        for k in range(len(program.outputs)):
            meaning = f"d out{k}/d x{i}"
            if meaning in truth:
                phi = value_phi(program, xs, i, k)
                rounding = sizes.rounding.get(f"out{k}", math.inf)
                own = EPS * sizes.rounding.get(meaning, math.inf)
                findings += _compare(meaning, truth[meaning], own,
                                     central_difference(phi, x, rounding))
        for j in range(len(xs)):
            meaning = f"d2 out0/d x{i} d x{j}"
            if meaning in truth:
                phi = gradient_phi(program, xs, i, j)
                rounding = sizes.rounding.get(f"d out0/d x{j}", math.inf)
                # the Hessian's own rounding would take third derivatives to bound: allow
                # a millionth instead (central differences may be looser)
                own = 1e-6 * abs(truth[meaning]) + EPS * sizes.terms.get(meaning, math.inf)
                findings += _compare(meaning, truth[meaning], own,
                                     central_difference(phi, x, rounding))
    return findings


def _compare(meaning: str, exact: float, own: float, difference: Difference) -> list[str]:
    """The oracle's ``exact`` derivative, with rounding error up to ``own``, against differences.

    The oracle's derivative is exact for the rounded values of the program, so
    where rounding in the program cancels, it moves by up to ``own``.
    """
    if not (math.isfinite(exact) and math.isfinite(own)):
        difference = Difference(skipped="the derivative or its rounding is not finite")
    if difference.skipped:
        note(f"central differences skipped: {difference.skipped}")
        return []
    note("central differences compared")
    if abs(exact - difference.estimate) <= difference.tolerance + 64.0 * own:
        return []
    return [f"{meaning} = {exact!r} (oracle), but central differences give "
            f"{difference.estimate!r} (tolerance {difference.tolerance:.3g})"]


def report(case: Case, findings: list[str]) -> str:
    return "\n".join([repr(case), "disagreements:"] + ["  " + f for f in findings])
