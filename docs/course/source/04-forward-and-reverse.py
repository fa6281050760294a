# %% [markdown]
# # 4. Forward and reverse mode: what each costs
#
# Chapter 2 swept the tape backwards (and, in its last exercise, forwards). Both
# directions compute derivatives; they differ in *which* derivatives one sweep gives you.
# This chapter puts them side by side, measures them on functions of `n` inputs and `m`
# outputs, and ends with the rule that tells you which one to use.

# %%
import math
import time

import tapegrad as tg

# %% [markdown]
# ## The Jacobian, and the two products
#
# A function `f` from `n` numbers to `m` numbers has an `m × n` table of partial
# derivatives, the **Jacobian** `J`: row `i` holds the gradient of output `i`, column
# `j` the sensitivity of every output to input `j`. Neither mode builds `J` directly.
# Each sweep computes one product with it:
#
# - **forward mode**, `tg.jvp(f, primals, tangents)`: a *Jacobian-vector product*
#   `J v`. Give every input a tangent (a direction `v`, length `n`); one forward sweep
#   carries it through the tape and gives every output's tangent. With `v` = the `j`-th
#   unit vector, `J v` is **column** `j` of `J`.
# - **reverse mode**, `tg.vjp(f, *primals)`: a *vector-Jacobian product* `uᵀ J`. Give
#   every output a cotangent (a weight `u`, length `m`); one reverse sweep gives every
#   input's adjoint. With `u` = the `i`-th unit vector, `uᵀ J` is **row** `i` of `J`.
#
# Side by side, on `f(x, y) = (x·y, x + sin y)`:


# %%
def f(x, y):
    return x * y, x + tg.sin(y)


outputs, column_0 = tg.jvp(f, (0.5, 2.0), (1.0, 0.0))  # tangent: move x only
_, column_1 = tg.jvp(f, (0.5, 2.0), (0.0, 1.0))  # tangent: move y only
print("f(0.5, 2)        =", outputs)
print("J column for x   =", column_0, "  (d out_0/dx, d out_1/dx)")
print("J column for y   =", column_1)

outputs, pullback = tg.vjp(f, 0.5, 2.0)  # records once; each pullback is one sweep
print("J row of out_0   =", pullback((1.0, 0.0)), "  (d out_0/dx, d out_0/dy)")
print("J row of out_1   =", pullback((0.0, 1.0)))

# %% [markdown]
# The same four numbers, found two ways: `d(x·y)/dx = y = 2`, `d(x·y)/dy = x = 0.5`,
# `d(x + sin y)/dx = 1`, `d(x + sin y)/dy = cos 2 = -0.416`. Forward mode found them a
# column at a time, reverse mode a row at a time.
#
# `tg.jacfwd` and `tg.jacrev` build the whole Jacobian that way: `jacfwd` records the
# function once and runs **one forward sweep per input** (`n` sweeps); `jacrev` records
# it once and runs **one reverse sweep per output** (`m` sweeps). Same answer:

# %%
def g(xs):
    return [xs[0] * xs[1], xs[0] + tg.sin(xs[1]), tg.exp(xs[0])]


print(tg.jacfwd(g)([0.5, 2.0]))
print(tg.jacrev(g)([0.5, 2.0]))

# %% [markdown]
# ## Measuring the cost
#
# A sweep visits every record once, so its cost grows with the length of the tape. To
# see the `n` against `m` trade, here is a family of functions with `n` inputs and `m`
# outputs whose tape grows only like `n + m`: squash every input, add them up, and
# read `m` different sines of the sum.


# %%
def family(m):
    """A function of n inputs (any n) with m outputs and about 2n + 2m records."""
    def f(xs):
        h = tg.sum([tg.tanh(x) for x in xs])
        return [tg.sin(h * (k + 1.0)) for k in range(m)]
    return f


def seconds(run, repeats=3):
    """Best of a few runs: the least disturbed by whatever else the machine does."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


rows = []
for n in (1, 10, 200):
    for m in (1, 10, 200):
        fn, xs = family(m), [0.01 * k for k in range(n)]
        records = len(tg.trace(fn)(xs))
        by_columns, by_rows = tg.jacfwd(fn)(xs), tg.jacrev(fn)(xs)  # the same J ...
        assert all(math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
                   for col_row, rev_row in zip(by_columns, by_rows)
                   for a, b in zip(col_row, rev_row))
        forward = seconds(lambda: tg.jacfwd(fn)(xs))
        reverse = seconds(lambda: tg.jacrev(fn)(xs))
        rows.append((n, m, records, forward, reverse))

print(f"{'n':>4} {'m':>4} {'records':>8} {'jacfwd: n sweeps':>17}"
      f" {'jacrev: m sweeps':>17}   faster")
for n, m, records, forward, reverse in rows:
    ratio = max(forward, reverse) / min(forward, reverse)
    faster = ("about the same" if ratio < 1.5 else
              f"{'jacfwd' if forward < reverse else 'jacrev'} by {ratio:.0f}x")
    print(f"{n:4d} {m:4d} {records:8d} {forward * 1e3:14.2f} ms"
          f" {reverse * 1e3:14.2f} ms   {faster}")

# %% [markdown]
# Read the table along its corners:
#
# - `n = 200, m = 1` (a scalar function of 200 inputs, like a loss of 200 parameters):
#   `jacrev` needs **one** reverse sweep and gets all 200 partials from it; `jacfwd`
#   needs 200 forward sweeps. Reverse mode wins by a large factor, and the factor grows
#   with `n`.
# - `n = 1, m = 200` (one input, many outputs): now `jacfwd` needs one sweep and `jacrev`
#   200. Forward mode wins.
# - `n = m`: both need the same number of sweeps; what is left is the cost of one sweep
#   of each kind.
#
# The exact times depend on the machine (and on what else it is doing: run the cell
# again and they move), but the amount of work does not. A sweep visits every record of
# the tape once, so the work is the number of sweeps times the length of the tape. Here
# it is, with the time each mode spent per record visited:

# %%
print(f"{'n':>4} {'m':>4}   {'records visited: jacfwd':>23} {'jacrev':>7}"
      f"   {'time per record: jacfwd':>23} {'jacrev':>8}")
for n, m, records, forward, reverse in rows:
    per_forward = forward / (n * records) * 1e9  # nanoseconds per record visited
    per_reverse = reverse / (m * records) * 1e9
    print(f"{n:4d} {m:4d}   {n * records:23d} {m * records:7d}"
          f"   {per_forward:20.0f} ns {per_reverse:5.0f} ns")

# %% [markdown]
# The counts explain the corners: 200 sweeps against 1. The time per record explains the
# rest: in tapegrad a forward sweep costs more per record than a reverse sweep, because
# the reverse sweep over plain floats is the library's most tuned loop, and it skips
# records whose adjoint is zero (most of them, when only one of many outputs is
# seeded). That is why the two modes do not tie at `n = m`, and why reverse mode's win
# at `m = 1` is bigger than forward mode's at `n = 1`. For the smallest tapes the fixed
# cost of starting a transform dominates the time per record.

# %% [markdown]
# ## What one sweep costs, against the function itself
#
# One reverse sweep gives the whole gradient of a scalar function, and it costs a small
# constant times the function itself: recording the tape, then one pass over it. This is
# the *cheap gradient principle* (Baur and Strassen, 1983; Griewank and Walther,
# *Evaluating Derivatives*): counted in arithmetic operations, a gradient costs at most
# about 4 to 5 times the function, whatever `n` is. In Python, recording a traced number
# costs more than adding a float, so the measured constant is larger, but it is still a
# constant. Here is a scalar function of `n` inputs, and
# its gradient by one reverse sweep, against evaluating it on plain floats:


# %%
def loss(xs):
    return tg.sum([tg.tanh(x) * x for x in xs])


for n in (100, 1000, 10000):
    xs = [0.001 * k for k in range(n)]
    plain, gradient = seconds(lambda: loss(xs)), seconds(lambda: tg.grad(loss)(xs))
    print(f"n = {n:5d}: f {plain * 1e3:7.3f} ms"
          f"   grad (all {n} partials) {gradient * 1e3:7.3f} ms"
          f"   ratio {gradient / plain:4.1f}")

# %% [markdown]
# The ratio does not grow with `n`: all `n` partials for a roughly fixed multiple of one
# evaluation. Forward mode would need `n` sweeps, so its cost grows `n` times
# faster. That single fact is why every deep learning library trains with reverse mode:
# a loss is one number, and the parameters are many.

# %% [markdown]
# ## The rule of thumb
#
# For a function of `n` inputs and `m` outputs:
#
# | | sweeps for the full Jacobian | use it when |
# |---|---|---|
# | reverse mode (`vjp`, `grad`, `jacrev`) | `m`, one per output | outputs are few: **a scalar loss of many parameters** (one sweep gives every partial) |
# | forward mode (`jvp`, `jacfwd`) | `n`, one per input | inputs are few and **outputs outnumber inputs** |
#
# Two more things decide close cases. Reverse mode has to keep the whole tape until the
# sweep runs (memory grows with the length of the computation), while forward mode can
# carry tangents along as the function runs and keep nothing (chapter 5 builds such a
# forward mode from dual numbers). And a *single* directional derivative `J v` is one
# forward sweep, whatever `n` and `m` are: no need to build `J` at all.
#
# ## Exercises
#
# Solutions: [solutions/04-forward-and-reverse.py](solutions/04-forward-and-reverse.py).


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
# **Exercise 4.1 (a Jacobian two ways).** For a function `h(xs)` of a list of `n`
# numbers returning a list of `m` numbers, write `jacobian_by_columns(h, xs)` using only
# `tg.jvp` (one call per input) and `jacobian_by_rows(h, xs)` using only `tg.vjp` (one
# recording, then one pullback call per output). Both return the `m × n` Jacobian as a
# list of rows.

# %% tags=["exercise-4.1"]
def jacobian_by_columns(h, xs):
    raise NotImplementedError  # your code here


def jacobian_by_rows(h, xs):
    raise NotImplementedError  # your code here


# %%
def test_4_1():
    def h(xs):
        return [xs[0] * xs[1] * xs[2], tg.exp(xs[0]) - xs[2], tg.sin(xs[1])]

    xs = [0.3, -1.2, 2.0]
    expected = tg.jacrev(h)(xs)
    ways = (("by columns", jacobian_by_columns), ("by rows", jacobian_by_rows))
    for name, build in ways:
        mine = [list(row) for row in build(h, xs)]
        assert len(mine) == 3 and all(len(row) == 3 for row in mine), (
            f"{name}: 3 outputs and 3 inputs make a 3 x 3 Jacobian; you have {mine}")
        for i in range(3):
            for j in range(3):
                got, want = mine[i][j], expected[i][j]
                assert math.isclose(got, want, abs_tol=1e-12), (
                    f"{name}: entry [{i}][{j}] is {got}, jacrev says {want}")


check("exercise 4.1", test_4_1)

# %% [markdown]
# **Exercise 4.2 (forward over reverse).** The Hessian of a scalar function (its
# matrix of second derivatives) times a vector `v` is the directional derivative of the
# gradient along `v`. Write `hvp(loss, params, v)` that computes it with one `tg.jvp`
# of `tg.grad(loss)`, without building the Hessian. `params` and `v` are tuples of the
# same length; return a tuple.

# %% tags=["exercise-4.2"]
def hvp(loss, params, v):
    raise NotImplementedError  # your code here


# %%
def test_4_2():
    def loss(p):
        return p[0] ** 2 * tg.sin(p[1]) + p[0] * p[1] ** 3

    params, v = (1.0, 0.5), (1.0, -2.0)
    hessian = tg.hessian(loss)(params)
    expected = [sum(hessian[i][j] * v[j] for j in range(2)) for i in range(2)]
    mine = hvp(loss, params, v)
    assert all(math.isclose(a, e, abs_tol=1e-12) for a, e in zip(mine, expected)), (
        f"you have {mine}, the Hessian times v is {expected}")


check("exercise 4.2", test_4_2)
