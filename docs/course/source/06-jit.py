# %% [markdown]
# # 6. `jit`: the tape as code
#
# A tape is a program already: straight-line, one operation per line, in the order the
# operations ran (chapter 2). `tg.jit(f)` takes that literally. On the first call it
# traces `f`, writes the tape out as Python source and compiles it; later calls run
# that code on plain floats, with no tracer objects and no records. This chapter reads that code, then shows where the idea breaks: a tape holds
# *one path* through your program, the one the recorded inputs took. Replayed at other
# inputs it can be silently wrong. `jit` defends against that with **guards**; we look
# at what they check, at what they cannot see (values baked into the code), and at what
# `jit` buys in speed.

# %%
import math
import operator
import re
import textwrap
import time

import tapegrad as tg

# %% [markdown]
# ## The tape as code
#
# Here is a small function, its tape, and the code `jit` writes from that tape:


# %%
def f(x, y):
    return tg.tanh(x * y + 2.0) / (1.0 + x) - y ** 2


fast_f = tg.jit(f)
print(tg.trace(f, names=("x", "y"))(0.5, 2.0))
print()
print(fast_f.source(0.5, 2.0))

# %% [markdown]
# Read it against the tape: the inputs arrive in the tuple `inputs`, constants are
# written in as numbers, and the records follow in tape order, as plain float
# arithmetic; the comment `# %k` names the record a line computes. Two things make the
# code shorter than the tape. A value used only once is written inside the expression
# that uses it (all of `f` fits on one line), and a variable (`r0`, `r1`, ...: a
# *register*) is handed to a new value as soon as nothing reads the old one, so even a
# tape of a million records needs only a few. Neither changes a single float operation
# or its order: the results are eager code's, bit for bit. The one line that is not
# arithmetic comes just before `return`: `r2 != r2` holds only when `r2` is NaN, and
# then the compiled code steps aside (`_NaNResult`) and eager tapegrad answers the
# call. In a derivative a NaN can be a zero meeting an infinity, which the eager sweep
# counts as 0 (chapter 3 reads that rule in the reference). Nothing in this code knows
# about tracing. Calls with new inputs run it directly; `fast_f.traces` counts how
# often `f` itself was traced:

# %%
assert re.search(r"# %\d+$", fast_f.source(0.5, 2.0), flags=re.M)  # lines name records
for x, y in [(0.5, 2.0), (-0.3, 1.0), (2.0, -4.0)]:
    assert fast_f(x, y) == f(x, y)  # bit for bit
    print(f"f({x}, {y}) = {fast_f(x, y):+.6f}")
print("traces:", fast_f.traces)
assert fast_f.traces == 1

# %% [markdown]
# The same works for a gradient. `tg.grad(f)` records the sweep's arithmetic on the
# tape of whatever trace is watching (chapter 5), and `jit` is such a trace: the code of
# `jit(grad(f))` holds the forward pass *and* the reverse sweep, as straight-line
# Python. No tape is built or swept when it runs.

# %%
fast_grad = tg.jit(tg.grad(f, argnums=(0, 1)))
grad_source = fast_grad.source(0.5, 2.0)
print(grad_source)
eager_grad = tg.grad(f, argnums=(0, 1))
print(fast_grad(0.5, 2.0), "=", eager_grad(0.5, 2.0))
assert all(math.isclose(a, b, rel_tol=1e-15)
           for a, b in zip(fast_grad(0.5, 2.0), eager_grad(0.5, 2.0)))

# %% [markdown]
# Find in it the forward pass (`tanh`, `1 + x`, `y ** 2`), the partials computed when
# the records were made (`1 - tanh²` for `tanh`, `2 y` for `y ** 2`, the two of the
# division) and the sweep, adjoints times partials, down to the two derivatives
# returned. One line computes a value that nothing reads: `_m.pow(r1, 2.0)`, the value
# of `y ** 2`, which the gradient does not need. `jit` keeps it because `**` can raise
# (`OverflowError` for a huge `y`), and whether an operation raises is itself a
# decision (see *Exceptions are decisions too*, below): eager code would raise there.
#
# There is no guard in this code: neither `f` nor the rules took a decision on a
# traced value. The last check is of another kind. `if r0 != r0 ...` asks whether a
# result is NaN; if so, compiled code hands the call to eager code, so that a NaN (a
# zero meeting an infinity in the chain rule, chapter 3) is always the one eager code
# gives, worked out by eager code's rules.

# %%
guard_lines = [line.strip() for line in grad_source.splitlines()
               if "raise _GuardFailed" in line]
print("guard lines:", guard_lines)
assert guard_lines == []
assert "raise _NaNResult" in grad_source and "_m.pow(r1, 2.0)" in grad_source

# %% [markdown]
# ## A branch: the tape knows one side
#
# Now a function with an `if`. The Huber function is `x²/2` near zero and grows like
# `|x|` further out (it is a common loss: quadratic for small errors, gentle on large
# ones):


# %%
def huber(x):
    if abs(x) < 1.0:
        return 0.5 * x * x
    return abs(x) - 0.5


tape = tg.trace(huber, names=("x",))(0.5)
print(tape)

# %% [markdown]
# `abs(x) < 1.0` compared two numbers and gave Python a plain `True`, and Python took
# the first branch. The comparison itself is not a record: the tape holds `abs(x)`
# (its value was compared), then the arithmetic of the branch that ran. Nothing on the
# tape says "only valid while `|x| < 1`".
#
# ## Replaying a tape at new inputs, unguarded
#
# What would happen if we simply reran these records with a new `x`? A *replay* is a
# loop over the records, recomputing each value from its operation and its inputs' new
# values (the constants stay as recorded):

# %%
ON_FLOATS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
             "div": operator.truediv, "pow": operator.pow, "neg": operator.neg,
             "abs": abs, "tanh": math.tanh, "sin": math.sin, "cos": math.cos}


def replay(tape, *inputs):
    """The tape's output recomputed at new inputs, record by record (no guards)."""
    values, new_inputs = [], iter(inputs)
    for record in tape:
        if record.op == "input":
            values.append(next(new_inputs))
            continue
        constants = iter(record.constants)  # they fill the slots marked None
        operands = [values[i] if i is not None else next(constants)
                    for i in record.inputs]
        values.append(ON_FLOATS[record.op](*operands))
    return values[tape.outputs[0]]


print("at the recorded x = 0.5: replay", replay(tape, 0.5), "  huber", huber(0.5))
print("at a new x = 0.8:        replay", replay(tape, 0.8), "  huber", huber(0.8))
print("at a new x = 3.0:        replay", replay(tape, 3.0), "  huber", huber(3.0),
      " <- wrong")
assert replay(tape, 3.0) == 4.5 and huber(3.0) == 2.5

# %% [markdown]
# At `x = 0.8` the replay is right: `|x| < 1` still holds, so the same branch would
# have run. At `x = 3` it is **wrong, with no error**: it computed `3²/2 = 4.5`, the
# branch the tape remembers, where `huber` gives `3 - 0.5 = 2.5`. The gradient would be
# just as wrong (the recorded branch's derivative is `x`, so 3, where the right one is
# 1), and a training loop would follow it without complaint. A replayed tape is only
# right where every decision the program made on traced values would come out the
# same.

# %% [markdown]
# ## What jit's guards do
#
# `jit` traces with one difference: every time Python turns a traced value into a
# decision (a comparison, `bool(x)`, `max`, `min`, a test such as `tg.isfinite`), the
# trace records a **guard**: the operands and the outcome. The generated code checks each
# guard at the point where the decision was taken, and raises `_GuardFailed` if it
# would now come out the other way:

# %%
fast_huber = tg.jit(huber)
source = fast_huber.source(0.5)
print(source)
guard_lines = [line.strip() for line in source.splitlines()
               if "raise _GuardFailed" in line]
print("guard lines:", guard_lines)
assert len(guard_lines) == 1 and "< 1.0" in guard_lines[0]

# %% [markdown]
# `tg.trace` does not show guards today: the tape printed above has no line for the
# comparison, because `tg.trace` does not record them (only `jit` traces with guards
# on). The generated source is where to look. (This cell checks that it is still so;
# if it fails, `tg.trace` has learned to show them and this paragraph is out of date.)

# %%
assert "Guard" not in str(tape) and "<" not in str(tape)
print("the printed tape mentions no guard; the tape's guards:", tape.guards)

# %% [markdown]
# When a guard fails, `jit` does not return the replay's answer. It traces `huber`
# again at the new input, compiles a second *variant* for the other branch, and keeps
# both; each later call runs the first variant whose guards hold:

# %%
print("jit(huber)(3.0) =", fast_huber(3.0), "  huber(3.0) =", huber(3.0))
print("traces so far:", fast_huber.traces)
print(fast_huber.source(3.0))
for x in (0.2, -0.7, 5.0, -2.0):  # both variants serve these: no new trace
    assert fast_huber(x) == huber(x)
print("traces after four more calls on both sides:", fast_huber.traces)
assert fast_huber(3.0) == huber(3.0) and fast_huber.traces == 2

# %% [markdown]
# The second variant checks the same comparison with the opposite outcome, then runs
# the other branch (which calls `abs(x)` a second time: a record of its own). The
# gradient is guarded the same way, so `jit(grad(huber))` is right on both sides:

# %%
fast_slope = tg.jit(tg.grad(huber))
print([fast_slope(x) for x in (0.5, 3.0, -3.0)], "traces:", fast_slope.traces)
assert [fast_slope(x) for x in (0.5, 3.0, -3.0)] == [0.5, 1.0, -1.0]

# %% [markdown]
# Not every branch is a guard. `tg.relu`, `tg.maximum` and `tg.minimum` are primitives:
# the choice is made *inside* the operation, on floats, every time the code runs, so
# their lines need no guard and one variant serves every input. Python's own `max(x,
# 0.0)` compares a traced value, so it is a guard:

# %%
for name, g in [("max(x, 0.0)", lambda x: max(x, 0.0)), ("tg.relu(x)", tg.relu),
                ("tg.maximum(x, 0.0)", lambda x: tg.maximum(x, 0.0))]:
    fast_g = tg.jit(g)
    results = [fast_g(x) for x in (2.0, -1.0, 3.0, -4.0)]
    guards = fast_g.source(2.0).count("raise _GuardFailed")
    print(f"{name:20} {results}  guards: {guards}  traces: {fast_g.traces}")

# %% [markdown]
# Exercise 6.2 uses this to make a function compile once.
#
# ## Exceptions are decisions too
#
# A `try`/`except` around traced arithmetic is control flow as well: which branch runs
# depends on whether an operation raised. Here is `sin(x)/x`, with its limit 1 at zero
# written as `cos(x)` (so that the derivative at 0 is right too: `cos'(0) = 0`, like
# `sinc'(0)`):


# %%
def sinc(x):
    try:
        return tg.sin(x) / x
    except ZeroDivisionError:
        return tg.cos(x)


zero_tape = tg.trace(sinc, names=("x",))(0.0)
print(zero_tape)

# %% [markdown]
# Traced at `x = 0`, the division raised before it could be recorded, so the tape is
# `sin(x)`, then `cos(x)`. Nothing on it says a division was tried. Replayed at 2:

# %%
print("replay at 2.0:", replay(zero_tape, 2.0), "  sinc(2.0):", sinc(2.0),
      " <- wrong")
assert replay(zero_tape, 2.0) == math.cos(2.0) != sinc(2.0)

# %% [markdown]
# `jit` records this decision as a guard of a third kind: "this operation raised
# `ZeroDivisionError`". The generated code tries the division again, and if it does
# *not* raise, the guard fails:

# %%
fast_sinc = tg.jit(sinc)
print(fast_sinc.source(0.0))
print([fast_sinc(x) for x in (0.0, 2.0, 0.0)], "traces:", fast_sinc.traces)
assert [fast_sinc(x) for x in (0.0, 2.0)] == [1.0, sinc(2.0)]
assert "except ZeroDivisionError" in fast_sinc.source(0.0)

# %% [markdown]
# ## Baked-in values
#
# Guards protect the decisions taken on *traced* values. Everything else `f` reads is a
# constant to the trace, written into the code as a number, and no guard watches it.
# The classic case is a global (or a closed-over variable) changed after the first
# call:

# %%
scale = 2.0


def scaled(x):
    return scale * x


fast_scaled = tg.jit(scaled)
print("scale = 2: jit", fast_scaled(3.0), "  eager", scaled(3.0))
scale = 10.0
print("scale = 10: jit", fast_scaled(3.0), "  eager", scaled(3.0), " <- stale")
print(fast_scaled.source(3.0))
assert fast_scaled(3.0) == 6.0 and scaled(3.0) == 30.0

# %% [markdown]
# The `2.0` is in the code: the compiled function never reads `scale` again. The cure
# is to make the value an input, so that it is traced like any other number:


# %%
def scaled_by(x, scale):
    return scale * x


fast_scaled_by = tg.jit(scaled_by)
print([fast_scaled_by(3.0, s) for s in (2.0, 10.0, -1.0)],
      "traces:", fast_scaled_by.traces)
assert fast_scaled_by.traces == 1

# %% [markdown]
# Some values cannot be traced numbers: a count used in `range(n)` must be a Python
# `int` while the function runs. `jit` traces every numeric argument, so a count passed
# as an argument is refused, with the fix in the message:


# %%
def power_sum(x, n):  # 1 + x + x**2 + ... + x**(n-1)
    return tg.sum([x ** k for k in range(n)])


try:
    tg.jit(power_sum)(2.0, 3)
except TypeError as error:
    print(textwrap.fill(f"{type(error).__name__}: {error}", 88))

# %% [markdown]
# `static_argnums` names the arguments that are passed as plain Python values. They are
# baked into the code on purpose, and they are part of the cache key: each new value
# traces a new variant.

# %%
fast_power_sum = tg.jit(power_sum, static_argnums=1)
print([fast_power_sum(2.0, n) for n in (3, 4, 3, 4)],
      "traces:", fast_power_sum.traces)
assert [fast_power_sum(2.0, n) for n in (3, 4)] == [7.0, 15.0]
assert fast_power_sum.traces == 2

# %% [markdown]
# ## What jit buys: measured
#
# The gradient of the moons model (`examples/moons.py`: an MLP 2-16-16-1 on 100 points,
# hinge loss plus a little L2), computed eagerly (trace, sweep) and by `jit`'s code,
# each timed at its best of several runs, against the loss alone on plain floats:

# %%
from tapegrad import datasets, nn

X, y = datasets.make_moons(100, seed=0)
params = nn.init_mlp(2, [16, 16, 1], seed=1)


def loss(params, X, y):
    scores = [nn.mlp(params, x)[0] for x in X]
    return nn.hinge_loss(scores, y) + 1e-4 * nn.l2(params)


def seconds(run, repeats=5):
    """Best of a few runs: the least disturbed by whatever else the machine does."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


eager = tg.value_and_grad(loss)
fast = tg.jit(eager)
first_call = seconds(lambda: fast(params, X, y), repeats=1)  # traces and compiles
(value, grads), (fast_value, fast_grads) = eager(params, X, y), fast(params, X, y)
assert math.isclose(value, fast_value, rel_tol=1e-12)
assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)
           for a, b in zip(tg.tree_leaves(grads), tg.tree_leaves(fast_grads)))

timings = {"loss alone, plain floats": seconds(lambda: loss(params, X, y)),
           "value and gradient, eager": seconds(lambda: eager(params, X, y)),
           "value and gradient, jit": seconds(lambda: fast(params, X, y))}
plain = timings["loss alone, plain floats"]
for what, t in timings.items():
    print(f"{what:28} {t * 1e3:7.2f} ms   {t / plain:4.1f}x the loss alone")
print(f"jit's first call (trace, write, compile): {first_call * 1e3:.0f} ms")
print("records on the tape:", len(tg.trace(loss)(params, X, y)))
print("guards in the code:", fast.source(params, X, y).count("raise _GuardFailed"))

# %% [markdown]
# Read the last column. The eager gradient costs a small multiple of the loss itself:
# it records every operation, then sweeps. `jit`'s code gives the loss *and* every
# partial for about the cost of the loss alone on floats (here even less: it is one
# flat function, without the Python calls and loops of `nn.mlp`). The first call pays
# for tracing and compiling, once, so `jit` wins when the same function runs many times
# on inputs of the same structure, as in a training loop.
#
# The guards count too: the hinge loss takes `max(0, 1 - y·score)` per point, and each
# is a decision on a traced value. During training, when a point crosses its margin, a
# guard fails and `jit` traces again (up to a limit of variants, after which it runs
# `f` eagerly). That is the price of being right.
#
# ## What to take away
#
# - A tape is straight-line code; `jit` writes it out as Python and runs that instead of
#   tracing. `jit(grad(f))` holds the reverse sweep as code too.
# - A tape records one path through the program. **Replayed at inputs where some
#   decision on a traced value would go the other way, it is silently wrong.**
# - `jit` records those decisions as **guards** (comparisons, `bool`, `max`/`min`,
#   exceptions caught) and checks them in the generated code; a failed guard means a new
#   trace, never a wrong answer. Primitives like `tg.relu` and `tg.maximum` decide
#   inside the operation and need no guard. `tg.trace` does not print guards;
#   `jitted.source(...)` shows them.
# - What is not traced is **baked in**: globals, closed-over values, `static_argnums`.
#   Pass a number that changes as an argument.
#
# ## Exercises
#
# Solutions: [solutions/06-jit.py](solutions/06-jit.py).


# %%
def check(name, test):
    """Run one exercise's test and say how it went (it never raises)."""
    try:
        test()
    except NotImplementedError:
        print(f"{name}: not done yet")
    except AssertionError as error:
        print(f"{name}: not right yet: {error}")
    except Exception as error:  # show the learner's own error, whatever it is
        print(f"{name}: your code raised {type(error).__name__}: {error}")
    else:
        print(f"{name}: correct")


# %% [markdown]
# **Exercise 6.1 (the tape as code, by hand).** Write `tape_to_source(tape)`: the
# source text of a Python function `compiled(*inputs)` that computes the tape's output
# from new inputs, one assignment per record (no need to inline or reuse names as `jit`
# does). Write record `k` as the variable `vk`; a constant operand (an input slot
# marked `None`) as `repr` of the number from `record.constants`. The templates below cover the operations the check
# uses; the generated code may call `math`.

# %%
TEMPLATES = {"add": "{} + {}", "sub": "{} - {}", "mul": "{} * {}", "div": "{} / {}",
             "pow": "{} ** {}", "neg": "-{}", "tanh": "math.tanh({})",
             "sin": "math.sin({})", "exp": "math.exp({})"}


# %% tags=["exercise-6.1"]
def tape_to_source(tape):
    raise NotImplementedError  # your code here


# %%
def test_6_1():
    functions = [f, lambda x: tg.exp(-x * x) * tg.sin(3.0 * x) + x ** 3,
                 lambda x, y, z: (x - y) / (2.0 - z) + -x]
    recorded = [(0.5, 2.0), (0.7,), (1.0, 2.0, 3.0)]
    new = [(-1.3, 0.25), (-2.1,), (0.5, -4.0, 1.5)]
    for g, at, new_inputs in zip(functions, recorded, new):
        tape = tg.trace(g)(*at)
        source = tape_to_source(tape)
        assert isinstance(source, str), "tape_to_source returns a string"
        namespace = {"math": math}
        exec(source, namespace)
        assert "compiled" in namespace, f"no function named compiled in:\n{source}"
        got, want = namespace["compiled"](*new_inputs), g(*new_inputs)
        assert math.isclose(got, want, rel_tol=1e-14), (
            f"at {new_inputs}: your code gives {got}, the function {want}\n"
            f"{source}")
        assignments = sum(line.strip().startswith("v") and "=" in line
                          for line in source.splitlines())
        operations = sum(record.op != "input" for record in tape)
        assert assignments >= operations, (
            f"{operations} records are operations, but {assignments} assignments")


check("exercise 6.1", test_6_1)

# %% [markdown]
# **Exercise 6.2 (no branch, no guard).** `clip` below keeps `x` between -1 and 1 with
# Python's `min` and `max`: two decisions on a traced value, so `jit` needs a new
# variant in each of the three regions. Write `clip_branch_free(x)`, the same function
# with tapegrad's primitives instead, so that one jitted variant serves every input.
# The check compares values and slopes with `clip`, away from the corners, and counts
# the traces.


# %%
def clip(x):
    return min(max(x, -1.0), 1.0)


fast_clip = tg.jit(clip)
print([fast_clip(x) for x in (-3.0, 0.4, 2.0)], "traces:", fast_clip.traces)


# %% tags=["exercise-6.2"]
def clip_branch_free(x):
    raise NotImplementedError  # your code here


# %%
def test_6_2():
    points = (-3.0, -0.5, 0.4, 2.0, -7.5, 0.0, 1.5)
    for x in points:
        assert clip_branch_free(x) == clip(x), (
            f"at {x}: you have {clip_branch_free(x)}, clip gives {clip(x)}")
        assert tg.grad(clip_branch_free)(x) == tg.grad(clip)(x), (
            f"at {x}: your slope is {tg.grad(clip_branch_free)(x)}, "
            f"clip's is {tg.grad(clip)(x)}")
    fast = tg.jit(clip_branch_free)
    assert [fast(x) for x in points] == [clip(x) for x in points]
    assert fast.traces == 1, (
        f"jit traced your function {fast.traces} times: a decision on a traced "
        "value is still a guard somewhere; see tg.jit(clip_branch_free).source(0.0)")


check("exercise 6.2", test_6_2)

# %% [markdown]
# **Exercise 6.3 (a learning rate that changes).** This training step reads the global
# `learning_rate`, and a schedule lowers it every few steps. Jitted as it is, the step
# keeps the rate it was traced with. Write `step_with_rate(w, learning_rate)` (one
# gradient step on `loss_1d` with the rate given) and `fast_step`, its jitted version,
# so that the loop in the check follows the schedule with `fast_step` and a single
# trace.


# %%
def loss_1d(w):
    return (w - 3.0) ** 2 + tg.sin(w)


learning_rate = 0.1


def step(w):
    return w - learning_rate * tg.grad(loss_1d)(w)


# %% tags=["exercise-6.3"]
def step_with_rate(w, learning_rate):
    raise NotImplementedError  # your code here


fast_step = step_with_rate  # your code here: jit it


# %%
def test_6_3():
    schedule = [0.1] * 5 + [0.05] * 5 + [0.01] * 5
    expected = w = 0.0
    for rate in schedule:  # the schedule, eagerly: the right answer
        expected = expected - rate * tg.grad(loss_1d)(expected)
    for rate in schedule:
        w = fast_step(w, rate)
    assert hasattr(fast_step, "traces"), "fast_step should be tg.jit(...) of the step"
    assert math.isclose(w, expected, rel_tol=1e-14), (
        f"after the schedule w = {w}; following it eagerly gives {expected}")
    assert fast_step.traces == 1, (
        f"fast_step traced {fast_step.traces} times; a number that changes from "
        "call to call should be a traced argument, not a static one")


check("exercise 6.3", test_6_3)
