# %% [markdown]
# # 1. The graph: a neuron that remembers how it was made
#
# This course builds up automatic differentiation from one neuron to derivatives of
# derivatives. It starts where the seed project started: a `Value` class whose objects
# remember which operation made them, so that the chain rule can be run backwards
# through them. `tapegrad.graph` keeps that engine, unchanged in spirit, so that you can
# see what it does well and where it hurts. The next chapter replaces it with a tape.
#
# You need: Python, and the idea of a derivative as a slope. Everything printed below
# was produced by running this notebook.

# %%
import math

from tapegrad.graph import MLP, Value, topological_order

# %% [markdown]
# ## The seed's neuron
#
# A neuron takes inputs `x1, x2`, weighs them with `w1, w2`, adds a bias `b` and squashes
# the sum with `tanh`:
#
#     o = tanh(n),   where   n = x1*w1 + x2*w2 + b
#
# The seed picks `b` so that `n = 0.8814`, where `tanh(n)` is exactly `1/sqrt(2)`.
# Then the slope of `tanh` there, `1 - tanh(n)**2`, is exactly 1/2, and every gradient
# below can be checked in your head.

# %%
x1 = Value(2.0, label="x1")
x2 = Value(0.0, label="x2")
w1 = Value(-3.0, label="w1")
w2 = Value(1.0, label="w2")
b = Value(6.8813735870195432, label="b")

n = x1 * w1 + x2 * w2 + b
n.label = "n"
o = n.tanh()
o.label = "o"
print(o)

# %% [markdown]
# Each operation made a new `Value` and remembered its *parents* (the values it was made
# from) and a small function, `_backward`, that knows the operation's local derivatives.
# Drawn, the neuron is a graph: boxes are `Value` nodes (label, `data`, `grad`), circles
# are the operations that made them.
#
# ![The seed's neuron as a graph of Value nodes; each box holds data and grad](../img/neuron-graph.svg)
#
# (The picture was drawn after `backward` ran, so the boxes already hold gradients.)

# %% [markdown]
# ## backward: the chain rule, from the output back
#
# We want `do/dw1` (how much `o` moves per unit change of `w1`) and its friends. The chain rule says: the derivative
# of `o` with respect to any node is the sum, over the node's *children*, of (derivative
# of `o` with respect to the child) times (local derivative of the child with respect to
# the node). So if we know `o`'s sensitivity to every child, we know it for the node.
#
# `o.backward()` does exactly that: it sets `o.grad = 1`, then visits the nodes from the
# output back to the inputs, and each node's `_backward` adds
# `local derivative * its own grad` into each parent's `grad`.

# %%
o.backward()
for leaf in (x1, x2, w1, w2, b):
    print(f"do/d{leaf.label} = {leaf.grad:+.4f}")

# %% [markdown]
# Check them by hand: `do/dn = 1 - tanh(n)**2 = 1/2`, and `n = x1*w1 + ...` gives
# `dn/dx1 = w1 = -3`, so `do/dx1 = -3 * 1/2 = -1.5`; likewise `do/dw1 = x1/2 = 1`,
# `do/dw2 = x2/2 = 0` and `do/db = 1/2`.

# %%
assert math.isclose(x1.grad, w1.data / 2) and math.isclose(w1.grad, x1.data / 2)

# %% [markdown]
# ## Why backward sorts the graph first
#
# A node may pass its gradient on to its parents only when it has received *everything*
# its children will send it. A node used twice has two children, and must wait for both.
# The nodes know their parents but not their children, so `backward` cannot tell by
# looking at a node whether it is ready. It first puts all the nodes in *topological
# order* (every node after all its parents), then runs `_backward` in the reverse of
# that order: every child is then visited before its parents.
#
# To see why the order matters, here is a `backward` without the sort. It walks from the
# output towards the inputs breadth first (nearest nodes first), and runs each node's
# `_backward` the first time it meets the node:


# %%
from collections import deque


def naive_backward(root):
    """Run each node's _backward when first reached from the output: NO sort."""
    root.grad = 1.0
    seen = set()
    queue = deque([root])
    while queue:
        node = queue.popleft()
        if node in seen:
            continue
        seen.add(node)
        node._backward()  # passes node.grad on, whether or not it is complete yet
        queue.extend(node._prev)


# %% [markdown]
# Try it on a graph where one node, `a`, is used twice: `y = a + b` with `a = 3x` and
# `b = 2a`, so `y = 3x + 6x = 9x` and `dy/dx = 9`.


# %%
def diamond():
    x = Value(3.0, label="x")
    a = x * 3
    b = a * 2
    return x, a + b


x, y = diamond()
naive_backward(y)
print("without a topological sort: dy/dx =", x.grad)
assert x.grad == 3.0

x, y = diamond()
y.backward()
print("with one (Value.backward):   dy/dx =", x.grad)
assert x.grad == 9.0

# %% [markdown]
# The naive walk reached `a` one step from `y` and passed on `a.grad = 1` (from `y` only)
# before `b`, also one step from `y`, had added its 2: the contribution through `b` never
# reached `x`, which got `3 * 1` instead of `3 * 3`. A wrong gradient, and no error.
# `Value.backward` sorts first:

# %%
x, y = diamond()
order = topological_order(y)
print([node.label or node._op or f"const {node.data:g}" for node in order])

# %% [markdown]
# Parents come before children (the constants 3 and 2 are nodes too), so visiting this
# list backwards is safe. `topological_order` is an iterative depth-first search; a
# recursive one, as in many small engines, fails with `RecursionError` once the graph is
# about a thousand nodes deep.
#
# Keep this in mind: **the graph needs a sort because it is built as a web of pointers,
# not in order.** In the next chapter the tape is born in order, and the sort disappears.

# %% [markdown]
# ## The forgotten zero_grad
#
# `_backward` *adds* into `parent.grad` (`+=`), which it must: a node used twice gets two
# contributions. The price is that gradients survive between calls. Run `backward` twice
# and every leaf's gradient doubles:

# %%
x, y = diamond()
y.backward()
first = x.grad
y.backward()
print(f"after one backward: {first}; after a second: {x.grad}")
assert x.grad == 2 * first

# %% [markdown]
# (`backward` resets the interior nodes itself; only the leaves, the parameters you
# train, keep what they had.) So a training loop must clear the gradients before each
# `backward`: that is `zero_grad`. Here is the seed's training problem: four samples,
# an MLP 3 → 4 → 4 → 1 with `tanh` everywhere, the sum of squared errors, and plain
# gradient descent. We train it twice from the same start, once with `zero_grad` and
# once without.

# %%
inputs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
targets = [1.0, -1.0, -1.0, 1.0]


def train(remember_zero_grad, steps=40, learning_rate=0.05):
    """Losses of plain gradient descent on the seed's four samples."""
    net = MLP(3, [4, 4, 1], seed=0)
    losses = []
    for _ in range(steps):
        predictions = [net(x) for x in inputs]
        loss = sum(((p - t) ** 2 for p, t in zip(predictions, targets)), Value(0.0))
        if remember_zero_grad:
            net.zero_grad()
        loss.backward()
        for p in net.parameters():
            p.data -= learning_rate * p.grad
        losses.append(loss.data)
    return losses


good, forgot = train(True), train(False)
print("step   with zero_grad   without")
for step in range(0, 40, 4):
    print(f"{step:4d}   {good[step]:14.4f}   {forgot[step]:8.4f}")

# %% [markdown]
# Without `zero_grad` each step uses the *sum of all gradients so far*. It looks better at
# first (the steps grow, like an accidental momentum), then the steps are far too large:
# the `tanh` units saturate, their slopes fall to almost zero, and the loss sticks at a
# high value for good. No error, no warning; only a curve that looks wrong if you
# happen to plot it. This is the classic training-loop bug.

# %%
assert forgot[-1] > 10 * good[-1] and min(forgot) < good[-1]

# %% [markdown]
# ## What to take to the next chapter
#
# - A graph engine stores, in every node, its value, its gradient, its parents and a
#   closure. `backward` runs the chain rule from the output to the inputs.
# - The nodes only know their parents, so `backward` must first **sort** them.
# - Gradients live **inside** the nodes and accumulate, so they must be **zeroed**.
#
# Chapter 2 keeps the chain rule and drops all three: no nodes, no sort, nothing to zero.
#
# ## Exercises
#
# Each exercise gives you a cell to fill in; the cell after it checks your answer and
# says `correct`, `not right yet` (and why), or `not done yet`. Solutions:
# [solutions/01-graph.py](solutions/01-graph.py) (no peeking before you have tried).


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
# **Exercise 1.1 (the chain rule by hand).** Write `neuron_gradient(x1, x2, w1, w2, b)`
# returning the five partial derivatives of `tanh(x1*w1 + x2*w2 + b)` as a dict
# `{"x1": ..., "x2": ..., "w1": ..., "w2": ..., "b": ...}`, using only `math.tanh` and
# arithmetic (no `Value`). The check compares it with `backward` at several points.

# %% tags=["exercise-1.1"]
def neuron_gradient(x1, x2, w1, w2, b):
    raise NotImplementedError  # your code here


# %%
def test_1_1():
    points = [(2.0, 0.0, -3.0, 1.0, 6.88), (0.5, -1.0, 0.25, 2.0, -0.1),
              (1.0, 2.0, 0.3, -0.7, 0.0)]
    for point in points:
        names = ("x1", "x2", "w1", "w2", "b")
        leaves = [Value(v, label=name) for name, v in zip(names, point)]
        lx1, lx2, lw1, lw2, lb = leaves
        (lx1 * lw1 + lx2 * lw2 + lb).tanh().backward()
        mine = neuron_gradient(*point)
        for leaf in leaves:
            got = mine[leaf.label]
            assert math.isclose(got, leaf.grad, rel_tol=1e-9, abs_tol=1e-12), (
                f"at {point}, d/d{leaf.label}: you have {got}, backward: {leaf.grad}")


check("exercise 1.1", test_1_1)

# %% [markdown]
# **Exercise 1.2 (your own backward).** Write `my_backward(root)`: put the nodes in
# topological order *without recursion* (a graph 10,000 nodes deep must work), then run
# every node's `_backward` from the output back, as `Value.backward` does. Use only
# `node._prev` (the parents) and `node._backward`; do not call `topological_order`.

# %% tags=["exercise-1.2"]
def my_backward(root):
    raise NotImplementedError  # your code here


# %%
def test_1_2():
    x, y = diamond()
    my_backward(y)
    assert x.grad == 9.0, f"on the diamond dy/dx should be 9, you have {x.grad}"
    x = Value(0.3)
    y = x
    for _ in range(10_000):  # a chain 20,000 nodes deep
        y = y * 1.0 + 0.0
    my_backward(y)
    assert x.grad == 1.0, f"on the deep chain dy/dx should be 1, you have {x.grad}"


check("exercise 1.2", test_1_2)

# %% [markdown]
# **Exercise 1.3 (a guard against the bug).** Write `train_safely(net, steps)` that
# trains `net` (an `MLP(3, [4, 4, 1])`) on the seed's `inputs` and `targets` with plain
# gradient descent (learning rate 0.05) and **returns the list of losses**. Make the bug
# impossible to forget: clear the gradients inside the loop. The check compares your
# losses with a run of `train(True)` above.

# %% tags=["exercise-1.3"]
def train_safely(net, steps):
    raise NotImplementedError  # your code here


# %%
def test_1_3():
    losses = train_safely(MLP(3, [4, 4, 1], seed=0), 40)
    assert len(losses) == 40, f"40 steps give 40 losses, you returned {len(losses)}"
    for step, (mine, reference) in enumerate(zip(losses, good)):
        assert math.isclose(mine, reference, rel_tol=1e-9), (
            f"step {step}: your loss {mine:.6f}, train(True) has {reference:.6f}")


check("exercise 1.3", test_1_3)
