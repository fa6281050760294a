# %% [markdown]
# # 2. The tape: the same neuron as a list
#
# Chapter 1 ran the chain rule over a graph of nodes, and paid for it twice: a
# topological sort before every `backward`, and a `zero_grad` before every step. This
# chapter keeps the chain rule and changes the data structure. While a function runs,
# tapegrad appends one *record* per operation to a list, the **tape** (also called a
# *Wengert list*, after R. E. Wengert, who wrote derivatives this way in 1964). The
# reverse sweep is then a loop over that list, backwards. You will write that loop
# yourself.

# %%
import math

import tapegrad as tg

# %% [markdown]
# ## The neuron as a plain function
#
# On the tape side the neuron is an ordinary Python function of five numbers.
# `tg.trace(f)` returns a function that runs `f` once on *traced* numbers (stand-ins that
# record every operation done to them) and returns the tape. `names` labels the inputs.


# %%
def neuron(x1, x2, w1, w2, b):
    return tg.tanh(x1 * w1 + x2 * w2 + b)


point = (2.0, 0.0, -3.0, 1.0, 6.8813735870195432)  # the seed's point (chapter 1)
tape = tg.trace(neuron, names=("x1", "x2", "w1", "w2", "b"))(*point)
print(tape)

# %% [markdown]
# One line per operation, in the order the operations ran, each with its value after
# `#`. The first five records are the inputs; `%5 = x1 * w1` is record 5, and so on.
# That list is the whole data structure: no nodes pointing at parents, no closures.
#
# Each record also stores the **partial derivatives** of its value with respect to each
# of its inputs, worked out when the record was written ("partials at record time").
# For `%5 = x1 * w1` they are `w1 = -3` (with respect to `x1`) and `x1 = 2` (with respect
# to `w1`); for `%9 = tanh(%8)` it is `1 - tanh(%8)**2 = 0.5`. Iterating over the tape
# gives the records as read-only `Record` objects:

# %%
for record in tape:
    print(record.index, record.op, record.inputs, f"value={record.value:.4g}",
          "partials=" + str(tuple(round(p, 4) for p in record.partials)))

# %% [markdown]
# `inputs` are record indices. (When an operand is a plain number, as the `2.0` in
# `x * 2.0`, its slot is `None` and the number is kept in `record.constants`; only traced
# inputs have a partial.)

# %% [markdown]
# ## Adjoints: what the sweep computes
#
# Call the function's output `y` (here `y` is record 9). The **adjoint** of a record `k`
# is the derivative of the output with respect to that record's value:
#
#     adjoint[k] = dy / d(value of record k)
#
# The adjoint of the output itself is 1. The adjoints of the input records are exactly
# the gradient we want. The chain rule gives every other adjoint from the adjoints of
# the records that *use* record `k` (its users):
#
#     adjoint[k] = sum, over every record u that uses record k, of
#                  adjoint[u] * (partial of record u with respect to record k)
#
# The second factor is a partial the tape already stores, on record `u`. So if we know the
# adjoints of all of `k`'s users, we know `k`'s adjoint.

# %% [markdown]
# ## Why backwards, and why no sort
#
# A record can only use records written *before* it: when `%7 = %5 + %6` was recorded,
# `%5` and `%6` already existed. So all the users of record `k` come *after* `k` on the
# tape. Walk the tape from the last record to the first, and by the time you reach `k`
# you have already visited every one of its users: its adjoint is complete.
#
# That is the whole reason the tape needs no topological sort. The graph in chapter 1
# had to compute an order in which every node comes after its parents; the tape is born
# in that order, because it is the order in which the program ran.

# %% [markdown]
# ## The reverse sweep, by hand
#
# Turn the formula around so that each record *pushes* into its inputs instead of
# *pulling* from its users (the same sum, collected in the other direction): start every
# adjoint at 0, set the output's to 1, and for each record from last to first, add
# `adjoint of the record * partial` into the adjoint of each of its inputs.

# %%
adjoint = [0.0] * len(tape)
adjoint[tape.outputs[0]] = 1.0  # d y / d y
for record in reversed(list(tape)):
    traced_inputs = [i for i in record.inputs if i is not None]
    for i, partial in zip(traced_inputs, record.partials):
        adjoint[i] += adjoint[record.index] * partial

for i in tape.inputs:
    print(f"dy/d{tape.name(i)} = {adjoint[i]:+.4f}")

# %% [markdown]
# Those are chapter 1's gradients (`-1.5, 0.5, 1, 0, 0.5`), from five lines of loop. A
# value used twice needs no special case: it simply receives two `+=`.
#
# `tape.format_reverse()` prints the same sweep step by step: each record, its adjoint
# when the sweep reaches it, and what it adds to each input.

# %%
print(tape.format_reverse())

# %% [markdown]
# Drawn, the tape shows the same thing: the inputs side by side at the top, then the
# records in tape order, each box holding the record's value and its adjoint, and each
# edge the partial that the sweep multiplies by:
#
# ![The neuron's tape: five input records, then the operations in the order they ran, each with its value and adjoint; edges carry the stored partial derivatives](../img/neuron-tape.svg)
#
# `tg.grad` is this without the printing: record, sweep backwards, return the adjoints
# of the inputs. It is what you use in practice.

# %%
by_grad = tg.grad(neuron, argnums=(0, 1, 2, 3, 4))(*point)
print(by_grad)
assert all(math.isclose(g, adjoint[i], abs_tol=1e-15)
           for g, i in zip(by_grad, tape.inputs))

# %% [markdown]
# ## Nothing to zero
#
# The gradient is a *return value*. Nothing is written into the inputs or the records, so
# nothing carries over from one call to the next: call `tg.grad` twice and you get the
# same answer twice. The tape itself is immutable; it can be swept again, with another
# seed, as often as you like.

# %%
print(tg.grad(neuron, argnums=2)(*point), tg.grad(neuron, argnums=2)(*point))
print("sweep again with seed 2:", tape.backward({tape.outputs[0]: 2.0})[2])

# %% [markdown]
# ## One record for a whole neuron
#
# Records do not have to be binary. `tg.dot(xs, ys)` is one record with many inputs, and
# its partials with respect to `xs` are the `ys` (and the other way round). The neuron
# layers of `tapegrad.nn` go one step further: a whole neuron, `tanh(dot(w, x) + b)`, is
# one record, whose partials already include the chain rule through `tanh`. Here is a
# layer of one neuron, traced with respect to its parameters only (the input `(2, 0)` is
# data, so it appears as constants):

# %%
from tapegrad import nn

layer = (((-3.0, 1.0), 6.8813735870195432),)  # one neuron: weights (w1, w2), bias b


def one_neuron(params):
    return nn.mlp(params, (2.0, 0.0), activation=tg.tanh, final_activation=tg.tanh)[0]


fused = tg.trace(one_neuron, names=("w1", "w2", "b"))((layer,))
print(fused)
print(fused[-1])

# %% [markdown]
# Its `op` is `dot` (a neuron is a dot product with a bias and an activation folded in),
# and its partials, `0.5 * x1 = 1`, `0.5 * x2 = 0`, and `0.5` for the bias, are the
# chain rule through `tanh` done at record time. The hand-written loop above needs no
# change to sweep it: every record, whatever its kind, is "inputs and their partials".
# This is why a model on the tape costs one record per neuron, not three or more per
# weight. In the pictures, records with many inputs are green:
#
# ![The fused neuron: three input records and one n-ary dot record whose partials include tanh's slope](../img/fused-neuron-tape.svg)

# %% [markdown]
# ## What to take to the next chapters
#
# - The tape is a list of records in the order the program ran: operation, inputs,
#   value, partials.
# - The **adjoint** of a record is d output / d record. Walking the tape backwards, each
#   record adds `adjoint * partial` into its inputs' adjoints; the inputs' adjoints are
#   the gradient.
# - No sort (the tape is born in order) and no `zero_grad` (gradients are returned).
#
# Chapter 3 reads a complete tape autodiff, the reference the tests use, in one file;
# chapter 4 runs the tape in the other direction too (forward mode) and measures what
# each direction costs.
#
# ## Exercises
#
# Solutions: [solutions/02-tape.py](solutions/02-tape.py).


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
# **Exercise 2.1 (read a tape).** Write a function `mystery(x, y)` whose tape is exactly
# this listing (with inputs named `x` and `y`, at `x = 1.5, y = 0.5`):
#
# ```
# x = input                        # 1.5
# y = input                        # 0.5
# %2 = x * y                       # 0.75
# %3 = sin(%2)                     # 0.681639
# %4 = %3 + x                      # 2.18164
# %5 = %4 / y                      # 4.36328
# %6 = exp(%5)                     # 78.514
# ```

# %% tags=["exercise-2.1"]
def mystery(x, y):
    raise NotImplementedError  # your code here


# %%
WANTED = """\
x = input                        # 1.5
y = input                        # 0.5
%2 = x * y                       # 0.75
%3 = sin(%2)                     # 0.681639
%4 = %3 + x                      # 2.18164
%5 = %4 / y                      # 4.36328
%6 = exp(%5)                     # 78.514"""


def test_2_1():
    listing = str(tg.trace(mystery, names=("x", "y"))(1.5, 0.5))
    assert listing == WANTED, "your tape is\n" + listing


check("exercise 2.1", test_2_1)

# %% [markdown]
# **Exercise 2.2 (a sweep for many outputs).** A function with several outputs has no
# single output to seed with 1. Instead you choose one number per output, a
# *cotangent*, and the sweep computes the weighted sum of the outputs' gradients: this
# is a *vector-Jacobian product* (`tg.vjp`, chapter 4). Write `my_vjp(tape, cotangents)`
# that seeds the adjoint of each output record `tape.outputs[j]` with `cotangents[j]`,
# sweeps backwards as above, and returns the adjoints of the inputs (`tape.inputs`) as a
# list. Careful: two outputs may be the same record.

# %% tags=["exercise-2.2"]
def my_vjp(tape, cotangents):
    raise NotImplementedError  # your code here


# %%
def test_2_2():
    def f(x, y):
        s = x * y
        return s, tg.sin(s) + x, s

    for cotangents in [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.5, -2.0, 3.0)]:
        mine = my_vjp(tg.trace(f)(0.7, -1.3), cotangents)
        _, pullback = tg.vjp(f, 0.7, -1.3)
        expected = pullback(cotangents)
        assert all(math.isclose(a, e, abs_tol=1e-12) for a, e in zip(mine, expected)), (
            f"cotangents {cotangents}: you have {mine}, tg.vjp has {list(expected)}")


check("exercise 2.2", test_2_2)

# %% [markdown]
# **Exercise 2.3 (the sweep the other way).** Sweep *forwards* instead: give each input
# record a *tangent* (a small change `dx`), and compute, in tape order, each record's
# tangent as the sum over its traced inputs of `partial * tangent of the input`. The
# tangent of the output is then the directional derivative along the input tangents.
# Write `my_forward(tape, tangents)` (one tangent per input, in the order of
# `tape.inputs`) returning the tangent of the output `tape.outputs[0]`.

# %% tags=["exercise-2.3"]
def my_forward(tape, tangents):
    raise NotImplementedError  # your code here


# %%
def test_2_3():
    for tangents in [(1.0, 0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0, 0.0),
                     (0.3, -1.0, 2.0, 0.5, 1.0)]:
        mine = my_forward(tape, tangents)
        _, expected = tg.jvp(neuron, point, tangents)
        assert math.isclose(mine, expected, abs_tol=1e-12), (
            f"tangents {tangents}: you have {mine}, tg.jvp has {expected}")


check("exercise 2.3", test_2_3)
