# %% [markdown]
# # 7. From scalars to arrays
#
# The seed's engine, and tapegrad's scalar tape, record one number per operation. That
# is the clearest way to see reverse mode, but it does not scale: one step of the
# digits model in `examples/digits.py` (64 images of 64 pixels, 128 hidden units, 10
# classes) is about 20,000 scalar records. On arrays it is 16. This chapter shows how
# the scalar picture becomes the array one: the neuron becomes a row of a matrix, a
# record keeps a *rule* instead of numbers, and broadcasting gets an adjoint. At the end
# it prints and draws the tape of one digits batch.
#
# It uses three ideas from earlier chapters: a record and its partials (chapter 2), a
# cotangent and the vector-Jacobian product `vjp` (chapter 4), and rules written with
# the library's own operations (chapter 5). It needs NumPy, and scikit-learn for the
# digits; both come with the docs extra (`make docs`).

# %%
import math

import numpy as np

import tapegrad as tg
import tapegrad.numpy as tnp
from tapegrad import nn

# %% [markdown]
# ## The seed's neuron is one row of a matrix
#
# The seed's neuron computes `o = tanh(x1*w1 + x2*w2 + b)`. Its weights are a row
# `[w1, w2]` and its input a column `[x1, x2]`, so the weighted sum is a row times a
# column. Here is the neuron on floats, then the same neuron with a `(1, 2)` matrix
# `W`. `tapegrad.numpy` (imported as `tnp`) has NumPy's names; on traced arrays they
# record, on plain arrays they are NumPy's own functions.


# %%
def neuron(w1, w2, b, x1, x2):
    return tg.tanh(x1 * w1 + x2 * w2 + b)


def neuron_as_row(W, b, x):
    return tnp.sum(tnp.tanh(W @ x + b))  # W @ x has shape (1,); sum: a scalar


seed = dict(w1=-3.0, w2=1.0, b=6.8813735870195432, x1=2.0, x2=0.0)
by_floats = tg.grad(neuron, argnums=(0, 1, 2))(*seed.values())
print("floats:", by_floats)
W, b = np.array([[-3.0, 1.0]]), np.array([6.8813735870195432])
x = np.array([2.0, 0.0])
dW, db = tg.grad(neuron_as_row, argnums=(0, 1))(W, b, x)
print("arrays:", dW, db)
assert np.allclose([dW[0, 0], dW[0, 1], db[0]], by_floats, rtol=1e-14, atol=1e-15)

# %% [markdown]
# These are the same derivatives: `do/dw1 = x1/2 = 1`, `do/dw2 = 0`, `do/db = 1/2`. If
# the two lines differ in the last digit, that is rounding: `math.tanh` and NumPy's
# `tanh` may round `tanh(0.8814)` to neighbouring floats.
#
# A layer is one row per neuron, so three neurons with two inputs each form a `(3, 2)`
# matrix. `nn.init_mlp` draws the same numbers in both layouts, and row `j` of `W` holds
# the weights of neuron `j` of the float layout:

# %%
floats = nn.init_mlp(2, [3], seed=0)
arrays = nn.init_mlp(2, [3], seed=0, arrays=True)
print("neuron 1 (floats):", floats[0][1][0])
print("row 1 of W:       ", arrays[0][0][1])

# %% [markdown]
# A batch is one row per sample. With `X` of shape `(n, 2)`, the layer is
# `X @ W.T + b`: entry `[i, j]` is neuron `j` applied to sample `i`. `nn.mlp` works on
# both layouts, and row `i` of its array result is what the float MLP gives for sample
# `i`:

# %%
X = np.array([[2.0, 0.0], [0.5, -1.0], [1.0, 1.0], [-2.0, 0.5]])
batch = nn.mlp(arrays, X)  # one record per operation, for all four samples at once
print(batch.shape)
print(np.allclose(batch, [nn.mlp(floats, tuple(sample)) for sample in X]))

# %% [markdown]
# ## Why an array record keeps a rule instead of partials
#
# A scalar record stores its partial derivatives when it is made: `z = x * y` keeps `y`
# and `x`, two numbers, and the reverse sweep multiplies each adjoint by them, the same
# way for every record. An array record cannot work like this. For `Z = A @ B`, the
# partial derivatives form the **Jacobian**: every entry of `Z` with respect to every
# entry of `A`. Here it is for small matrices, built by `tg.jacrev` one cotangent at a
# time (the tape itself never builds it):

# %%
rng = np.random.default_rng(0)
A, B = rng.normal(size=(4, 3)), rng.normal(size=(3, 2))
J = tg.jacrev(lambda A: A @ B)(A)
print("Jacobian of A @ B with respect to A:", J.shape, "=", J.size, "numbers,",
      np.count_nonzero(J), "of them not zero")

# %% [markdown]
# Entry `Z[i, j]` depends only on row `i` of `A`, so most of the Jacobian is zeros. At
# the size of a real layer it does not even fit in memory. For the first layer of the
# digits model, `X @ W.T` with `X` of shape (64, 64) and `W` of shape (128, 64):

# %%
entries = (64 * 128) * (128 * 64)  # (entries of X @ W.T) x (entries of W)
print(f"{entries:,} entries: {entries * 8 / 2**20:,.0f} MiB of float64,"
      " for one record")

# %% [markdown]
# So an array record stores what its rule needs: its operands, its output and
# parameters such as `axis`. Look at the record of a matrix product: it has inputs, but
# no partials.

# %%
product_tape = tg.trace(lambda A, B: A @ B, names=("A", "B"))(A, B)
print(product_tape)
record = product_tape[2]
print("op:", record.op, "  inputs:", record.inputs, "  partials:", record.partials)
assert record.partials == ()

# %% [markdown]
# The derivative lives in a table of rules, one per operation, looked up by the
# record's `op` during the sweep. A rule computes the vector-Jacobian product directly:
# given the cotangent `G` of `Z = A @ B` (the adjoint of `Z`, an array of `Z`'s shape),
# it returns `G @ B.T` for `A` and `A.T @ G` for `B`. That is one matrix product each,
# and no Jacobian. Where it comes from, entry by entry: `Z[i, j] = Σ_k A[i, k] B[k, j]`,
# so the adjoint of `A[i, k]` collects `G[i, j] · B[k, j]` from every `j` that used it,
# which is `(G @ B.T)[i, k]`. Here is the rule from the table, called by hand, then the
# same products through `tg.vjp`, and both against the Jacobian:

# %%
from tapegrad.arrays import ARRAY_PRIMITIVES

G = rng.normal(size=(4, 2))
Z = A @ B
A_bar, B_bar = ARRAY_PRIMITIVES["matmul"].vjp(G, Z, A, B, needs=(True, True))
print("the rule: A_bar == G @ B.T:", np.allclose(A_bar, G @ B.T),
      "  B_bar == A.T @ G:", np.allclose(B_bar, A.T @ G))
_, pullback = tg.vjp(lambda A, B: A @ B, A, B)
same = all(np.allclose(v, r) for v, r in zip(pullback(G), (A_bar, B_bar)))
print("tg.vjp gives the same:", same)
print("the Jacobian agrees:", np.allclose(np.einsum("ij,ijkl->kl", G, J), A_bar))

# %% [markdown]
# Rules are written with the traced operations themselves (`G @ B.T` in a rule is
# another `matmul`), so when an outer trace is watching, the sweep's own arithmetic is
# recorded, exactly as in chapter 5. Here is the tape of a *gradient*, seen by an outer
# `tg.trace`:

# %%
print(tg.trace(tg.grad(lambda A: tnp.sum(tnp.tanh(A @ B))), names=("A",))(A))

# %% [markdown]
# Records `%1` to `%3` are the function. The rest is the sweep: `%4` to `%6` are
# `tanh`'s rule, `g * (1 - out * out)` (the cotangent of `sum` is an array of ones,
# shown as `f64[4,2]`), and `%7 = matmul(%6, f64[2,3])` is the matmul rule, `G @ B.T`,
# with `B.T` a constant here because only `A` is traced. An outer `grad` could sweep
# this tape again: second derivatives of array functions need no extra code either.
#
# ## Broadcasting and its adjoint
#
# In `X @ W.T + b`, the bias `b` has shape `(128,)` and the product has shape
# `(64, 128)`. NumPy *broadcasts* `b`: it adds it to each of the 64 rows. So each
# `b[j]` is used 64 times, and its adjoint is the sum of the 64 contributions. **The
# adjoint of copying is summing.** Every elementwise rule ends with `unbroadcast`, which
# sums a cotangent over the axes that broadcasting added (leading axes) or stretched
# (axes of length 1):

# %%
from tapegrad.arrays import unbroadcast

G = np.arange(6.0).reshape(3, 2)
print("(3, 2) -> (2,):  ", unbroadcast(G, (2,)))
print("(3, 2) -> (3, 1):", unbroadcast(G, (3, 1)).ravel())
grad_b = tg.grad(lambda b: tnp.sum(G * (np.ones((3, 2)) + b)))(np.array([0.5, -1.0]))
print("d sum(G * (ones + b)) / db =", grad_b)
print("G summed over its rows:      ", G.sum(axis=0))

# %% [markdown]
# Reductions go the other way: the adjoint of `sum(x, axis=1)` copies each row's
# cotangent back along that axis. The forward pass of one is the reverse pass of the
# other:

# %%
_, pullback = tg.vjp(lambda x: tnp.sum(x, axis=1), np.zeros((2, 3)))
(x_bar,) = pullback(np.array([1.0, 2.0]))
print(x_bar)

# %% [markdown]
# Broadcasting is also where array code goes wrong *silently*: two shapes that were
# meant to match but do not are often still compatible, and NumPy quietly makes a
# bigger array. Exercise 7.3 is such a bug; printing the tape, with a shape on every
# line, is how you find it.
#
# ## The tape of one digits batch
#
# Here is the digits model on one batch of 64 images, traced with respect to its four
# parameter arrays. The images and the labels are constants to this trace: they appear
# inline, by shape and dtype.

# %%
from sklearn.datasets import load_digits

digits = load_digits()
X, y = digits.data[:64] / 16.0, digits.target[:64]
params = nn.init_mlp(64, [128, 10], seed=0, arrays=True)


def loss(params, X, labels):
    logits = nn.mlp(params, X, activation=tg.relu)
    return nn.softmax_cross_entropy(logits, labels)


tape = tg.trace(loss, argnums=0, names=("W1", "b1", "W2", "b2"))(params, X, y)
print(tape)
assert len(tape) == 16

# %% [markdown]
# Records `%4` to `%10` are the two layers. `%11` picks each row's logit at its label
# (`logits[arange(64), labels]`: the two index arrays are operands of the record).
# `%12` to `%15` are the mean of `logsumexp(row) - row[label]`. On floats, the same
# batch is this many records:

# %%
floats = nn.init_mlp(64, [128, 10], seed=0)
scalar_tape = tg.trace(lambda p: nn.softmax_cross_entropy(
    [nn.mlp(p, x, activation=tg.relu) for x in X.tolist()], y.tolist()))(floats)
print(len(scalar_tape), "scalar records against", len(tape), "array records")
same = math.isclose(scalar_tape[-1].value, float(tape[-1].value), rel_tol=1e-12)
print("the same loss:", same, scalar_tape[-1].value)
assert len(scalar_tape) > 1000 * len(tape)

# %% [markdown]
# The reverse sweep visits the same 16 records backwards. Each one sends its adjoint
# through its rule to its inputs, and the shapes show `unbroadcast` at work: `b1`
# receives a `(128,)` cotangent from the `(64, 128)` adjoint of `%6`.

# %%
print(tape.format_reverse())

# %% [markdown]
# `tape.draw()` draws the same tape as a `graphviz.Digraph` (Jupyter shows it, and
# `tg.viz.render(drawing, path)` writes it to a file; `docs/make_pictures.py` drew the
# picture below this way). It shows one box per record, in tape order, and an arrow
# from each operand to the record that uses it. On a scalar tape each arrow is
# labelled with its partial; here there are none to show (`partials=False`), because
# array records keep rules:

# %%
drawing = tape.draw(rankdir="TB", partials=False)
arrows = sum(j is not None for record in tape for j in record.inputs)
print(f"a {type(drawing).__name__} of {len(tape)} boxes and {arrows} arrows")

# %% [markdown]
# ![The tape of one digits batch: 16 records from the four parameter arrays to the loss](../img/arrays-digits-tape.svg)
#
# Finally, `tg.jit` (chapter 6) writes the tape out as straight-line NumPy: the
# forward pass, then the reverse sweep, one line per record or rule step. `jit` takes
# every argument as an input, so the images and the labels are inputs of the
# generated function too.

# %%
source = tg.jit(tg.value_and_grad(loss)).source(params, X, y)
print(source)

# %% [markdown]
# Count the matrix products (`@`): two in the forward pass, one per layer, and three in
# the sweep. The second layer's `matmul` rule needs both of its products (`G @ W2`, the
# cotangent of the hidden layer, and `hidden.T @ G`, that of `W2.T`, transposed back to
# `W2`'s shape by the rule of `transpose`). The first layer's rule needs only one, for
# `W1`: nothing asks for the derivative with respect to the images. The bias gradients
# are `.sum(axis=0)` lines: broadcasting's adjoint. All of it was recorded by running
# the model once.

# %%
products = [line.strip() for line in source.splitlines() if " @ " in line]
print(f"{len(products)} matrix products:")
for line in products:
    print("   ", line)
assert len(products) == 5
assert sum(".sum(axis=0" in line for line in source.splitlines()) == 2  # db1, db2

# %% [markdown]
# ## What to take away
#
# - An array is many scalars sharing one record: a layer is a matrix whose rows are
#   neurons, a batch a matrix whose rows are samples.
# - An array record keeps its operands and a rule, not partials: the Jacobian would be
#   mostly zeros and far too big. The rule computes the vector-Jacobian product
#   directly (`G @ B.T` and `A.T @ G` for a matrix product).
# - Broadcasting copies; its adjoint sums (`unbroadcast`). Reductions sum; their
#   adjoints copy.
# - The tape prints a shape on every line: read it when array code gives a surprising
#   number.
#
# From here, [Scaling to JAX](../scaling-to-jax.md) carries the same digits model to
# `jax.numpy`, `jax.grad` and `jax.jit`.
#
# ## Exercises
#
# Solutions: [solutions/07-arrays.py](solutions/07-arrays.py).


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
# **Exercise 7.1 (unbroadcast).** Write `my_unbroadcast(g, shape)`: given the cotangent
# `g` (a NumPy array) of a result that an operand of shape `shape` was broadcast to,
# return the operand's cotangent, of exactly `shape`. Sum away the leading axes that
# broadcasting added; sum the axes where `shape` has a 1 that was stretched, keeping
# them. The check compares your function with the adjoint of `tnp.broadcast_to`, as
# `tg.grad` computes it.

# %% tags=["exercise-7.1"]
def my_unbroadcast(g, shape):
    raise NotImplementedError  # your code here


# %%
def test_7_1():
    rng = np.random.default_rng(71)
    cases = [((3, 2), (2,)), ((3, 2), (3, 1)), ((3, 2), (3, 2)),
             ((4, 3, 2), (3, 1)), ((2, 3, 4), (1, 3, 1)), ((5,), ()),
             ((2, 3), (1, 1)), ((2, 1, 4), (1, 4))]
    for big, shape in cases:
        g = rng.normal(size=big)
        def broadcast(x):
            return tnp.sum(g * tnp.broadcast_to(x, big))

        expected = tg.grad(broadcast)(np.zeros(shape))
        mine = np.asarray(my_unbroadcast(g, shape))
        assert mine.shape == shape, (
            f"from {big} to {shape}: your result has shape {mine.shape}")
        assert np.allclose(mine, expected, rtol=1e-13, atol=1e-13), (
            f"from {big} to {shape}: you have {mine}, the adjoint is {expected}")


check("exercise 7.1", test_7_1)

# %% [markdown]
# **Exercise 7.2 (matmul's rule, every shape).** The text derived the rule of
# `Z = A @ B` for two matrices. NumPy's `@` also takes vectors: a 1-D `A` is a row
# (and the row axis is dropped from `Z`), a 1-D `B` is a column (and the column axis is
# dropped); and a stack of matrices, such as `A` of shape `(2, 4, 3)`, multiplies each
# matrix of the stack by the same `B`. Write `matmul_vjp(A, B, G)` returning
# `(A_bar, B_bar)` for all of these, with NumPy only: `G` is the cotangent of `A @ B`
# (same shape as `A @ B`), and `A_bar`, `B_bar` have the shapes of `A` and `B`. The
# check compares them with `tg.grad` of `sum(G * (A @ B))`, whose gradient is exactly
# that vector-Jacobian product. (Hint: turn vectors into matrices, use the rule from
# the text, then give the results their operands' shapes; a `B` shared by a stack is
# broadcasting.)

# %% tags=["exercise-7.2"]
def matmul_vjp(A, B, G):
    raise NotImplementedError  # your code here


# %%
def test_7_2():
    rng = np.random.default_rng(72)
    for a_shape, b_shape in [((4, 3), (3, 2)), ((3,), (3, 2)), ((4, 3), (3,)),
                             ((3,), (3,)), ((2, 4, 3), (3, 2))]:
        A, B = rng.normal(size=a_shape), rng.normal(size=b_shape)
        G = rng.normal(size=np.shape(A @ B))
        expected = tg.grad(lambda A, B: tnp.sum(G * (A @ B)), argnums=(0, 1))(A, B)
        mine = matmul_vjp(A, B, G)
        for name, got, want in zip(("A_bar", "B_bar"), mine, expected):
            got = np.asarray(got)
            assert got.shape == want.shape, (
                f"{a_shape} @ {b_shape}: {name} has shape {got.shape}, "
                f"not {want.shape}")
            assert np.allclose(got, want, rtol=1e-12, atol=1e-12), (
                f"{a_shape} @ {b_shape}: {name} is {got}, tg.grad says {want}")


check("exercise 7.2", test_7_2)

# %% [markdown]
# **Exercise 7.3 (find the shape bug).** A linear regression: one output unit, so
# `predict` returns an `(n, 1)` array, and the targets `y` have shape `(n,)`. The loss
# below runs without an error and `tg.grad` differentiates it without complaint; but
# at the weights that fit the data *exactly*, the loss is not 0 and its gradient is
# not zero, so training would settle somewhere else:


# %%
rng = np.random.default_rng(73)
X_fit = rng.normal(size=(5, 3))
W_true, b_true = np.array([[1.0, -2.0, 0.5]]), np.array([0.3])
y_fit = X_fit @ W_true[0] + b_true[0]  # exact targets, shape (5,)


def predict(W, b, X):
    return X @ W.T + b  # (n, 1): one output unit


def buggy_loss(W, b, X, y):
    return tnp.mean((predict(W, b, X) - y) ** 2)


print("loss at the true weights:", buggy_loss(W_true, b_true, X_fit, y_fit))
gradient = tg.grad(buggy_loss, argnums=(0, 1))(W_true, b_true, X_fit, y_fit)
print("gradient there:", gradient)

# %% [markdown]
# Print the tape of `buggy_loss` (with a shape on every line) to find the record where
# the shape goes wrong, then write `fixed_loss(W, b, X, y)`: the mean over the `n`
# samples of the squared error. The check compares it with a loop over the samples,
# at the true weights and at others, and its gradient with `tg.grad` of that loop.

# %% tags=["exercise-7.3"]
def fixed_loss(W, b, X, y):
    raise NotImplementedError  # your code here


# %%
def test_7_3():
    def loop_loss(W, b, X, y):  # a sample at a time, on scalars: no shapes
        errors = [tg.dot(list(W[0]), list(x)) + b[0] - t for x, t in zip(X, y)]
        return tg.sum([e * e for e in errors]) / len(errors)

    assert math.isclose(float(fixed_loss(W_true, b_true, X_fit, y_fit)), 0.0,
                        abs_tol=1e-24), "at the true weights the loss must be 0"
    W, b = np.array([[0.5, 0.5, -1.0]]), np.array([2.0])
    mine = float(fixed_loss(W, b, X_fit, y_fit))
    expected = loop_loss(W, b, X_fit, y_fit)
    assert math.isclose(mine, expected, rel_tol=1e-12), (
        f"at W = {W}, b = {b}: your loss is {mine}, the loop gives {expected}")
    dW, db = tg.grad(fixed_loss, argnums=(0, 1))(W, b, X_fit, y_fit)
    loop_dW, loop_db = tg.grad(lambda w, b0: loop_loss([w], [b0], X_fit, y_fit),
                               argnums=(0, 1))(list(W[0]), b[0])
    assert np.allclose(dW, [loop_dW], rtol=1e-12), (
        f"your gradient for W is {dW}; the loop's is {loop_dW}")
    assert np.allclose(db, [loop_db], rtol=1e-12), (
        f"your gradient for b is {db}; the loop's is {loop_db}")


check("exercise 7.3", test_7_3)
