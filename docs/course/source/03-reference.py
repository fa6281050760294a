# %% [markdown]
# # 3. A tape autodiff in one page
#
# tapegrad's tape is built for speed: records are packed into typed arrays, a neuron is
# one fused record, and `jit` writes tapes out as code. All of that makes the idea of
# chapter 2 harder to see in its source. So tapegrad also ships the idea *without* the
# speed: `tapegrad/reference.py`, a reverse-mode autodiff on a Wengert list in one
# file, written to be read. It imports nothing from tapegrad, and the test suite uses
# it as an **oracle**: random programs run through every tapegrad path and through the
# reference, and the two must agree.
#
# This chapter reads that file from top to bottom, printing its source as it goes
# (read from the file when the page is built, so it cannot drift from the code), and
# runs it along the way: the seed's neuron, a nested derivative, `grad(grad(tanh))`
# record by record, the edge cases, and the reference side by side with `tg.grad`.

# %%
import inspect
import math
import re
import textwrap

import tapegrad as tg
from tapegrad import reference as ref

source = inspect.getsource(ref)
print(inspect.getdoc(ref).split("\n\n")[0])
print(f"{len(source.splitlines())} lines, docstrings included. Its imports:")
for line in source.splitlines():
    if line.startswith(("import ", "from ")):
        print("   ", line)
print("What it offers:")
print(textwrap.fill(", ".join(ref.__all__), 78, initial_indent="    ",
                    subsequent_indent="    "))

# %% [markdown]
# `math` does the arithmetic on floats; the other imports are only for type hints.
#
# ## A record is a list of (input, partial) pairs
#
# The tape is `Trace`: its nesting level (we come back to levels below), its
# `records`, and whether it is still open. Record `i` is the list of
# `(input index, partial)` pairs of the operation that made value `i`; a leaf, an input
# of the traced function, has none. There is no operation name in a record, and no
# value: the reverse sweep needs neither. `append` adds a record and hands back the
# traced number that names it. (The class has one more method, `backward`, the reverse
# sweep; we read it once we have seen records being made.)

# %%
trace_source = inspect.getsource(ref.Trace)
print(trace_source[:trace_source.index("    def backward")].rstrip())

# %% [markdown]
# A traced number is a `Var`: the trace it belongs to, the index of its record there,
# and its value. Its arithmetic operators call the reference's primitives, which
# record. Its comparisons compare the numbers inside and return a plain `bool`, so an
# `if` in traced code just works (and, as chapter 6 shows, leaves no trace on the
# tape). The listing leaves out the other operators, which follow the same pattern,
# and the comments that silence the type checker.

# %%
var_source = inspect.getsource(ref.Var)
var_source = re.sub(r"  # type: ignore\[\w+\]", "", var_source)  # for the type checker
print(var_source[:var_source.index("    def __sub__")].rstrip())
print("    ...")
print(var_source[var_source.index("    # Comparisons"):].rstrip())

# %% [markdown]
# `primal`, just after the class, looks through the layers: when traces are nested, a
# `Var`'s value can itself be a `Var` of an outer trace, and `primal` digs down to the
# float.
#
# ## The primitives: a float function and a partial rule
#
# A `Primitive` is an operation: a function on floats, and a rule for its partial
# derivatives. `partial(k, out, *xs)` is the derivative of the result `out` with
# respect to operand `xs[k]`:

# %%
primitive_source = inspect.getsource(ref.Primitive)
print(primitive_source[:primitive_source.index("    def __repr__")].rstrip())

# %% [markdown]
# Calling a primitive calls `apply`, which we read next. First the primitives
# themselves: each is one line of the file, printed here in two pieces (the float
# function, then the partial rule) so that it fits the page.

# %%
shown = "add|sub|mul|div|neg|exp|log|tanh|sin|cos|sigmoid"
for line in source.splitlines():
    if re.match(rf'^\w+(: Primitive)? = Primitive\("({shown})"', line):
        head, rule = line.split(", lambda k, out", 1)
        print(f"{head},\n    lambda k, out{rule}")

# %% [markdown]
# Read a few. The partial of `x * y` is `y` with respect to `x` (`k == 0`) and `x` with
# respect to `y`; `exp`'s is its own output; `tanh`'s is `1 - out²`. The others in the
# file (`pow`, `abs`, `sqrt`, `relu`, and the n-ary `sum` and `dot`) follow the same
# pattern; where a rule needs a case analysis at an edge of its domain (the sign of `x`
# for `abs`, the infinite slope of `sqrt` at 0), it calls a small helper defined
# beside it.
#
# Notice that the rules are written with the reference's **own** operations:
# `1.0 - out * out` is a `sub` and a `mul` when `out` is a `Var`, and `sin`'s rule
# calls the primitive `cos`. That is the whole secret of higher derivatives, as chapter
# 5 explains for tapegrad; below we watch it happen here.
#
# `apply` is where a record is made:

# %%
print(inspect.getsource(ref.apply))
print(inspect.getsource(ref._on))
print(inspect.getsource(ref._innermost).rstrip())

# %% [markdown]
# Line by line:
#
# 1. `_innermost` finds the deepest trace among the operands (a plain number belongs to
#    none) and refuses a `Var` whose trace has ended. With no trace at all, the
#    primitive just computes on floats.
# 2. To that trace, its own `Var`s stand for their values (`_on` asks "is this a `Var`
#    of this trace?"); anything else, a number or a `Var` of an *outer* trace, is a
#    constant. `xs` holds what the trace sees.
# 3. `out = prim(*xs)` computes the value. If `xs` still hold outer `Var`s, this call
#    goes through `apply` again and records on the outer trace: nesting is handled one
#    level at a time.
# 4. The partials are computed *now*, at record time, and only for the operands that
#    belong to this trace.
# 5. The record is appended; the result is a new `Var` of this trace.
#
# Here is the seed's neuron (chapter 2) traced by the reference, its records printed
# from inside the traced function:


# %%
def neuron(x1, x2, w1, w2, b, lib=ref):  # lib: the reference, or tapegrad (tg)
    return lib.tanh(x1 * w1 + x2 * w2 + b)


def neuron_showing_records(*args):
    out = neuron(*args)
    records[:] = out.trace.records  # kept, to compare with tapegrad's tape below
    for i, pairs in enumerate(records):
        print(f"record {i}: {pairs}")
    return out


records = []
point = (2.0, 0.0, -3.0, 1.0, 6.8813735870195432)  # the seed's point
gradient = ref.grad(neuron_showing_records, argnums=(0, 1, 2, 3, 4))(*point)

# %% [markdown]
# Records 0 to 4 are the five inputs. Record 5 is `x1 * w1`: its inputs are records 0
# and 2, with partials `w1 = -3` and `x1 = 2`. Record 9 is `tanh`, with partial
# `1 - tanh² = 0.5` (up to rounding). These are exactly the partials of tapegrad's
# tape in chapter 2, record for record:

# %%
tape = tg.trace(lambda *args: neuron(*args, lib=tg))(*point)
for pairs, record in zip(records, tape):
    print(f"reference {[p for _, p in pairs]!s:28} tapegrad {list(record.partials)}")
assert [[p for _, p in pairs] for pairs in records] == [list(r.partials)
                                                        for r in tape]

# %% [markdown]
# ## The reverse sweep: reads default to zero, writes add
#
# Now `backward`, the heart of the file:

# %%
print(inspect.getsource(ref.Trace.backward))

# %% [markdown]
# This is chapter 2's loop almost word for word:
#
# - `adjoint` is a dictionary, seeded with `{root: 1.0}`: d root / d root = 1.
# - The loop walks the records **from the last to the first**. The list is in
#   evaluation order (a record can only use records made before it), so when the loop
#   reaches record `i`, every record that uses `i` has already been visited and has
#   added its share: `i`'s adjoint is complete. **No topological sort** is needed,
#   because the order the program ran in is already one.
# - A record that nothing has sent anything to is not in the dictionary: the root does
#   not depend on it, and the loop skips it (the `continue`).
# - **Reads default to zero, writes add**: `adjoint[j] = adjoint.get(j, 0.0) + g *
#   partial`. A value used twice, as `x` in `x * x`, simply receives two contributions.
#   Nothing is overwritten, so nothing needs zeroing before the next call (chapter 1's
#   `zero_grad`): each call makes a fresh dictionary.
#
# The gradient of the neuron, from that loop, against `tg.grad`:

# %%
by_tapegrad = tg.grad(lambda *args: neuron(*args, lib=tg),
                      argnums=(0, 1, 2, 3, 4))(*point)
for name, ours, theirs in zip(("x1", "x2", "w1", "w2", "b"), gradient, by_tapegrad):
    print(f"d o/d {name:2}:  reference {ours!r:21}  tapegrad {theirs!r}")
assert all(math.isclose(a, b, rel_tol=1e-15, abs_tol=1e-15)
           for a, b in zip(gradient, by_tapegrad))

# %% [markdown]
# Now the zeros. The loop skips a record that nothing contributed to (the root does
# not depend on it). Everything else it multiplies, and a zero times an infinite
# partial is NaN in floating point. Take `0 * sqrt(x)` at 0: its derivative is plainly
# 0 (the function is 0 wherever it is defined), though `sqrt` has an infinite slope
# at 0. A textbook sweep would send `1.0 * 0.0 = 0.0` to the `sqrt` record and then
# `0.0 * inf = nan` to `x`. The reference prints its records as it runs:


# %%
def zero_times_sqrt(x):
    out = 0.0 * ref.sqrt(x)
    for i, pairs in enumerate(x.trace.records):
        print(f"record {i}: {pairs}")
    return out


print("0.0 * inf in floats:", 0.0 * math.inf)
print("reference:", ref.grad(zero_times_sqrt)(0.0))
print("tapegrad: ", tg.grad(lambda x: 0.0 * tg.sqrt(x))(0.0))

# %% [markdown]
# Record 1 is `sqrt(x)`, partial `inf`; record 2, `0.0 * %1`, has no pair at all. `apply`
# leaves out an operand whose partial is a zero that holds *whatever the values*: here
# the constant factor `0.0`; also a kink's zero (`relu` below 0, `abs` at 0) and the
# constant exponent 0 of `x ** 0.0`. Such a zero means "does not depend on", so the
# record simply gets no edge, as for a constant, and the sweep never multiplies by it.
#
# Why not every zero? A zero computed from traced values is a number like any other,
# and a zero times an infinity has no single answer: the limit it stands for can be
# anything. `(x**3) ** (1/3)` is `x`, derivative 1, but its chain rule at 0 is
# `inf * (3 x²) = inf * 0`; `(x ** (1/3)) ** 2` has derivative inf at 0, and its
# chain rule is `(2 v) * inf = 0 * inf` too. A rule "zero wins" would print 0 for
# both, silently wrong. The reference multiplies, and says NaN:

# %%
print("d/dx (x**3) ** (1/3) at 0:", ref.grad(lambda x: (x ** 3.0) ** (1.0 / 3.0))(0.0))
print("d/dx (x ** (1/3)) ** 2 at 0:", ref.grad(lambda x: (x ** (1.0 / 3.0)) ** 2.0)(0.0))

# %% [markdown]
# A zero partial that is a `Var` is never left out either. In a nested derivative the
# partials can be `Var`s of an outer trace, and a traced number that is zero right now
# may still have a derivative that is not. The partial of `x * x` with respect to
# either operand is the other operand, `x`; at `x = 0` it is zero, yet the second
# derivative of `x²` is 2:

# %%
print("d²/dx² x*x at 0:", ref.grad(ref.grad(lambda x: x * x))(0.0))

# %% [markdown]
# Had that zero been left out, the outer `grad` would have found no dependence on `x`
# at all, and printed 0.
#
# ## The transform: open a trace, run, sweep
#
# `value_and_grad`, near the end of the file, ties it together. It opens a trace one
# level deeper than the ones already open, gives the function `Var` leaves in place of
# the arguments it differentiates, runs it, closes the trace, and sweeps:

# %%
vg_source = inspect.getsource(ref.value_and_grad)
print(textwrap.dedent(vg_source[vg_source.index("    def value_and_grad_f"):]).rstrip())

# %% [markdown]
# (`_leaves` makes one leaf record per number of an argument, tuples included, and
# `_adjoints` reads their adjoints back in the same shape. `grad` is `value_and_grad`
# without the value.)
#
# Note the order in `finally`: the trace is popped off the stack and closed *before* the
# sweep. So the sweep's arithmetic (`g * partial`, `+`) cannot record on this trace;
# when the partials are `Var`s of an outer trace, it records on *that* one. That is
# exactly what a derivative of a derivative needs, as the next two sections show.
#
# ## Nesting: levels, and why perturbations are never confused
#
# Every trace has a **level**: 1 for the outermost, one more for each trace opened
# inside it. An operation records on the deepest trace among its operands, and to that
# trace everything of an outer level is a constant (the `xs = ...` line of `apply`). Here
# is the example of chapter 5, where naive dual numbers gave 2 instead of 1, with the
# inner trace printed from inside:


# %%
def outer_function(x):
    def inner_function(y):
        total = x + y
        print("inner trace, level", y.trace.level, "records:", y.trace.records)
        print("  x =", x)
        print("  y =", y)
        print("  x + y =", total)
        return total

    return x * ref.grad(inner_function)(1.0)


derivative = ref.grad(outer_function)(1.0)
print("d/dx [x * d/dy (x + y)] at x = 1:", derivative)
assert derivative == 1.0

# %% [markdown]
# `x` lives on level 1, `y` on level 2. The inner trace has two records: its leaf `y`,
# and `x + y` with a single pair, `(0, 1.0)`: input `y`, partial 1. `x` is not an input
# there, just a constant, so the inner derivative is the plain float 1.0, and the outer
# one is `d(x · 1)/dx = 1`. (The *value* of `x + y` is computed on `x`, a level-1 `Var`,
# so it is recorded on level 1 too; nothing there uses it.)
#
# The dual numbers of chapter 5 went wrong because one perturbation, one ε, served both
# derivatives: the inner one counted the outer one's perturbation of `x` as its own.
# Here each `grad` has its own trace; a trace only ever sends adjoints to its own
# records, and two traces open at once never share a level. So one derivative cannot
# take another's perturbation for its own.
#
# ## grad(grad(tanh)), record by record
#
# Now the question chapter 5 answered for tapegrad: how does `grad(grad(f))` work, at
# the level of the records? Print the *outer* trace while the inner `grad` runs on it:


# %%
def first_derivative_showing_the_outer_trace(x):
    slope = ref.grad(ref.tanh)(x)  # an inner trace, level 2, opened and swept here
    print("the inner grad returned", slope)
    print("the outer trace (level 1) now holds:")
    for i, pairs in enumerate(x.trace.records):
        print(f"  record {i}: {pairs}")
    return slope


second = ref.grad(first_derivative_showing_the_outer_trace)(0.5)
print("second derivative:", second, "  tapegrad:", tg.grad(tg.grad(tg.tanh))(0.5))
assert math.isclose(second, tg.grad(tg.grad(tg.tanh))(0.5), rel_tol=1e-15)

# %% [markdown]
# Every outer record, explained:
#
# - record 0: `x`, the outer leaf.
# - record 1: `tanh(x)`. The inner trace recorded `tanh` of its leaf, whose value is
#   the outer `Var` `x`; `apply` computed `out = tanh(x)` on that value, so the outer
#   trace recorded it too, with partial `1 - tanh(x)² = 0.786`. This is the forward
#   pass.
# - records 2 and 3: the inner record's partial, `1.0 - out * out`, computed at record
#   time on the outer `Var` `out`: a `mul` (its input twice, partial `out` each time)
#   and a `sub` (partial -1). The derivative rule of `tanh`, as two ordinary records.
# - records 4 and 5: the **inner sweep**. `backward` ran `adjoint[j] = adjoint.get(j,
#   0.0) + g * partial` with the seed `g = 1.0` and that partial, an outer `Var`:
#   `1.0 * %3` (record 4, partial 1.0), then `0.0 + %4` (record 5, partial 1.0).
#
# The inner `grad` returned record 5, an outer `Var` (the printed
# `Var(0.786..., level=1, index=5)`). The outer `grad` then sweeps these six records
# like any others, and finds `d/dx (1 - tanh(x)²) = -2 tanh(x) (1 - tanh(x)²)`.
#
# tapegrad does the same with fewer records. Its sweep leaves out the multiplication
# by an exact `1.0` and the addition to `0.0`, and when a record receives several
# traced contributions it adds them up as one `dot` record; chapter 5 prints its tape
# of `grad(grad(tanh))`, with the record `%6 = dot([-1, -1], [%1, %1])`, and explains
# each line. Fewer records, the same numbers.
#
# ## Conventions: what the edge cases give
#
# Calculus leaves a few points open: the slope of `relu` at its kink, of `abs` at 0,
# of `sqrt` at 0. The file's docstring states its choices, the same as
# tapegrad's documented ones:

# %%
doc = inspect.getdoc(ref)
conventions = doc[doc.index("Conventions."):doc.index("\n\nAdding a primitive")]
print(textwrap.fill(" ".join(conventions.replace("``", "").split()), 78))

# %% [markdown]
# Here they are computed, by the reference and by tapegrad. `stop_gradient` is there
# too: in the reference it is just `primal`, since a plain number is a constant to
# every trace.


# %%
def edge_cases(lib):
    """(what, how to compute it) pairs, written once for lib = ref or tg."""
    return [
        ("relu'(0)", lambda: lib.grad(lib.relu)(0.0)),
        ("abs'(0)", lambda: lib.grad(abs)(0.0)),
        ("sqrt'(0)", lambda: lib.grad(lib.sqrt)(0.0)),
        ("sqrt''(0)", lambda: lib.grad(lib.grad(lib.sqrt))(0.0)),
        ("d/dx x**0 at 0", lambda: lib.grad(lambda x: x ** 0.0)(0.0)),
        ("d/dy 0**y at 2", lambda: lib.grad(lambda y: 0.0 ** y)(2.0)),
        ("d/dy (-2)**y at 2", lambda: lib.grad(lambda y: (-2.0) ** y)(2.0)),
        ("d/dx 0*sqrt(x) at 0", lambda: lib.grad(lambda x: 0.0 * lib.sqrt(x))(0.0)),
        ("d/dx sqrt(relu(x)) at -1",
         lambda: lib.grad(lambda x: lib.sqrt(lib.relu(x)))(-1.0)),
        ("d/dx sqrt(x)*x at 0", lambda: lib.grad(lambda x: lib.sqrt(x) * x)(0.0)),
        ("d/dx x*stop_gradient(x) at 3",
         lambda: lib.grad(lambda x: x * lib.stop_gradient(x))(3.0)),
        ("log'(0)", lambda: lib.grad(lib.log)(0.0)),
        ("d/dx 1/x at 0", lambda: lib.grad(lambda x: 1.0 / x)(0.0)),
    ]


def outcome(compute):
    try:
        return repr(compute())
    except Exception as error:  # a domain error is an outcome too
        return type(error).__name__


print(f"{'':30} {'reference':>18} {'tapegrad':>18}")
differ = []
for (what, by_ref), (_, by_tg) in zip(edge_cases(ref), edge_cases(tg)):
    ours, theirs = outcome(by_ref), outcome(by_tg)
    mark = "" if ours == theirs else "   <- differ"
    print(f"{what:30} {ours:>18} {theirs:>18}{mark}")
    if ours != theirs:
        differ.append(what)
print("rows that differ:", differ or "none")

# %% [markdown]
# Two of these rows come from the rule for zeros. In `0 * sqrt(x)` at 0 a constant
# factor 0 meets an infinite partial further down (as in the sweep section). In
# `sqrt(relu(x))` at -1 it is the other way round: `sqrt` at 0 sends an infinite
# adjoint to the `relu` record, whose partial at -1 is a kink's zero, so that record
# has no edge, and the derivative is 0, as it should be for a function that is 0 on
# all of `x < 0`. The row `sqrt(x) * x` at 0 is a computed zero meeting
# an infinity: NaN in both.
#
# The last line of the output lists the rows where the two implementations disagree.
# Both follow the same documented conventions, so a row that differs is a bug, and
# finding such bugs is the oracle's job: `tests/test_oracle.py` runs random programs
# through both and fails on any disagreement. The `sqrt(relu(x))` row is one it found:
# tapegrad's sweep used to multiply the kink's zero by the infinite adjoint and print
# NaN there. Its sweeps now follow the same rule (`tapegrad.tape.SELECT` says which
# zeros are structural), and nested and compiled sweeps multiply a kink's traced zero
# with `tg.chain_mul`, the product in which an exact zero wins. The test file keeps
# each bug it has found, with a small program that shows it, as a regression test
# (`FOUND_BUGS`).
#
# Two more conventions are about Python rather than calculus. A domain error is
# `math`'s: `log(0.0)` raises `ValueError`, a division by zero
# `ZeroDivisionError`, as in the last two rows. And the stack of open traces is one
# list for the whole process, `_TRACES`, so the reference is for one thread at a time
# (tapegrad keeps one stack per thread).
#
# ## Side by side with tapegrad
#
# The reference has no fused records, no typed arrays and no generated code, yet it
# must give the same numbers. A few functions, first and second derivatives, both
# ways:


# %%
def cases(lib):
    """(name, function) pairs written once, with lib = tg or the reference."""
    return [
        ("x sin(x)", lambda x: x * lib.sin(x)),
        ("tanh(2x + 4) / (1 + x)", lambda x: lib.tanh(2.0 * x + 4.0) / (1.0 + x)),
        ("sqrt(x) exp(-x)", lambda x: lib.sqrt(x) * lib.exp(-x)),
        ("sigmoid(3x) + log(x)", lambda x: lib.sigmoid(3.0 * x) + lib.log(x)),
        ("relu(x - 1) ** 2", lambda x: lib.relu(x - 1.0) ** 2.0),
    ]


rows = []
for (name, f_ref), (_, f_tg) in zip(cases(ref), cases(tg)):
    for x in (0.3, 1.7):
        ours = (ref.grad(f_ref)(x), ref.grad(ref.grad(f_ref))(x))
        theirs = (tg.grad(f_tg)(x), tg.grad(tg.grad(f_tg))(x))
        rows.append((name, x, ours, theirs))
        assert all(math.isclose(a, b, rel_tol=1e-13, abs_tol=1e-15)
                   for a, b in zip(ours, theirs)), (name, x, ours, theirs)

print(f"{'':29} {'first derivative':^27} {'second derivative':^27}")
print(f"{'f':24} {'x':>4}" + f" {'reference':>13} {'tapegrad':>13}" * 2)
for name, x, ours, theirs in rows:
    print(f"{name:24} {x:4} {ours[0]:13.9f} {theirs[0]:13.9f}"
          f" {ours[1]:13.9f} {theirs[1]:13.9f}")

# %% [markdown]
# They agree to every digit shown (the cell checks 13 significant digits). The test
# suite does the same at scale: `tests/test_oracle.py` draws random programs (branches,
# loops, nested `grad`, `stop_gradient`, `try`/`except`, inputs at kinks and domain
# edges), runs each through every tapegrad path (`grad`, `jit`, `jvp`, `jacrev`,
# `jacfwd`, `hessian`) and through this reference, and reports every disagreement.
#
# ## What to take away
#
# - A tape autodiff needs four things: a list of records, each its `(input, partial)`
#   pairs; a traced number that appends to it; one rule per primitive, computing the
#   partials at record time with the library's own operations; and a loop backwards
#   over the list, where reads default to zero and writes add.
# - No topological sort: the list is in evaluation order.
# - Nesting is levels: an operation records on the innermost trace among its operands,
#   everything outer is a constant there, and a closed trace's sweep records on the
#   traces outside it. That is all `grad(grad(f))` takes, and why two derivatives
#   never confuse their perturbations.
# - The edge cases are choices, written down once and shared by both implementations;
#   a disagreement between the two is a bug, and the oracle test is there to find it.
#
# ## Exercises
#
# Solutions: [solutions/03-reference.py](solutions/03-reference.py).


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
# **Exercise 3.1 (add a primitive).** Add `softplus(x) = log(1 + eˣ)` to the
# reference: one `ref.Primitive("softplus", on_floats, partial)` line. The partial is
# the logistic sigmoid of `x`; write it with the reference's own operations, so that
# second derivatives work. The check compares values, first and second derivatives with
# tapegrad's `tg.softplus`. (For the floats, `math.log1p(math.exp(x))` is fine on the
# inputs the check uses.)

# %% tags=["exercise-3.1"]
softplus = None  # your code here: ref.Primitive("softplus", ..., ...)


# %%
def test_3_1():
    if softplus is None:
        raise NotImplementedError
    for x in (-3.0, -0.2, 0.0, 1.5, 8.0):
        try:
            second = ref.grad(ref.grad(softplus))(x)
        except TypeError as error:
            raise AssertionError(
                f"the second derivative fails ({error}): write the partial with "
                "the reference's operations (ref.sigmoid, ...), not math's") from None
        pairs = [("value", softplus(x), tg.softplus(x)),
                 ("first derivative", ref.grad(softplus)(x), tg.grad(tg.softplus)(x)),
                 ("second derivative", second, tg.grad(tg.grad(tg.softplus))(x))]
        for what, mine, expected in pairs:
            assert math.isclose(mine, expected, rel_tol=1e-12, abs_tol=1e-15), (
                f"{what} at {x}: you have {mine}, tapegrad has {expected}")


check("exercise 3.1", test_3_1)

# %% [markdown]
# **Exercise 3.2 (find the planted bug).** A wrong rule gives a wrong gradient with no
# error: the worst kind of bug. The defence is to compare every rule with **central
# differences**, `(f(x + h) - f(x - h)) / 2h`, which need no rule at all. Write
# `rule_is_wrong(primitive, points)`: True when, at some `x` in `points`, the derivative
# the reference computes with the rule, `ref.grad(primitive)(x)`, disagrees with the
# central difference of `primitive` at `x`. Choosing `h` and the tolerance is part of
# the exercise: too large an `h` and the difference itself is inexact, too small and
# rounding swamps it (for smooth functions, `h` near 1e-5 and a tolerance near 1e-6,
# relative to the size of the derivative, work well).
#
# The check builds a dozen one-input primitives, a few of them with a bug planted in
# the rule, and asks your function to find exactly those.

# %% tags=["exercise-3.2"]
def rule_is_wrong(primitive, points):
    raise NotImplementedError  # your code here


# %%
def test_3_2():
    rules = [  # (float function, rule, planted bug?), under neutral names below
        (lambda x: x * x, lambda k, out, x: 2.0 * x, False),
        (math.cos, lambda k, out, x: ref.sin(x), True),  # the sign is lost
        (lambda x: x * x * x, lambda k, out, x: 3.0 * x * x, False),
        (math.tanh, lambda k, out, x: 1.0 - out, True),  # out, not out squared
        (lambda x: math.exp(2 * x), lambda k, out, x: 2.0 * out, False),
        (math.atan, lambda k, out, x: 1.0 / (1.0 + x), True),  # x, not x squared
        (math.sin, lambda k, out, x: ref.cos(x), False),
        (lambda x: x / (1 + abs(x)), lambda k, out, x: 1.0 / (1.0 + x) ** 2.0,
         True),  # right for x > 0 only
        (math.tanh, lambda k, out, x: 1.0 - out * out, False),
        (lambda x: x * x * x, lambda k, out, x: 3.0 * x * x * 1.0001, True),  # 0.01 %
        (math.atan, lambda k, out, x: 1.0 / (1.0 + x * x), False),
        (lambda x: math.log1p(x * x), lambda k, out, x: 2 * x / (1 + x * x), False),
        (lambda x: 1 / (1 + math.exp(-x)), lambda k, out, x: out * (1 - out), False),
    ]
    primitives = [(ref.Primitive(f"exercise_3_2_f{n}", f, rule), bug)
                  for n, (f, rule, bug) in enumerate(rules, start=1)]
    points = [-1.7, -0.3, 0.4, 1.2, 2.5]
    for primitive, bug in primitives:
        found = rule_is_wrong(primitive, points)
        assert found in (True, False), (
            f"rule_is_wrong returns True or False, not {found!r}")
        assert found or not bug, (
            f"the rule of {primitive.name} has a planted bug that you did not find; "
            "is your tolerance too loose?")
        assert bug or not found, (
            f"the rule of {primitive.name} is right; is your tolerance too tight, "
            "or h too small?")


check("exercise 3.2", test_3_2)


# %% [markdown]
# **Exercise 3.3 (a Hessian from nested grads).** Write `hessian(f, xs)`: the matrix of
# second derivatives `H[i][j] = d²f / (dxs[i] dxs[j])` of a scalar function `f` of a
# tuple of numbers, as a list of rows, using only `ref.grad`. Row `i` is the gradient of
# the function `p -> (the gradient of f at p)[i]`, which is a `grad` inside a `grad`.
# Nothing else is needed: the inner `grad` records its sweep on the outer trace, and the
# levels keep the two apart. The check compares your matrix with `tg.hessian` on three
# functions of two and three variables.

# %% tags=["exercise-3.3"]
def hessian(f, xs):
    raise NotImplementedError  # your code here


# %%
def test_3_3():
    functions = [  # (name, f for the reference, f for tapegrad, a point)
        ("x² y + sin(x y)", lambda p: p[0] ** 2.0 * p[1] + ref.sin(p[0] * p[1]),
         lambda p: p[0] ** 2.0 * p[1] + tg.sin(p[0] * p[1]), (0.5, 2.0)),
        ("exp(x) y - y³", lambda p: ref.exp(p[0]) * p[1] - p[1] ** 3.0,
         lambda p: tg.exp(p[0]) * p[1] - p[1] ** 3.0, (-1.0, 0.7)),
        ("x y z + tanh(x + z)", lambda p: p[0] * p[1] * p[2] + ref.tanh(p[0] + p[2]),
         lambda p: p[0] * p[1] * p[2] + tg.tanh(p[0] + p[2]), (0.3, -1.2, 2.0)),
    ]
    for name, f_ref, f_tg, point in functions:
        mine = hessian(f_ref, point)
        expected = tg.hessian(f_tg)(point)
        n = len(point)
        assert len(mine) == n and all(len(row) == n for row in mine), (
            f"{name}: the Hessian of a function of {n} numbers is {n} rows of {n}")
        for i in range(n):
            for j in range(n):
                assert math.isclose(mine[i][j], expected[i][j], rel_tol=1e-12,
                                    abs_tol=1e-15), (
                    f"{name} at {point}: H[{i}][{j}] is {expected[i][j]}, "
                    f"you have {mine[i][j]}")


check("exercise 3.3", test_3_3)
