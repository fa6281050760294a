# %% [markdown]
# Solutions to the exercises of chapter 7, "From scalars to arrays". Each cell replaces
# the exercise cell with the same tag; the tests run the chapter with them and expect
# every check to say "correct".

# %% tags=["exercise-7.1"]
def my_unbroadcast(g, shape):
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead)))  # axes broadcasting added in front: summed
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=stretched, keepdims=True)  # stretched axes: summed, kept as 1

# %% tags=["exercise-7.2"]
def matmul_vjp(A, B, G):
    # A vector on the left is a row, on the right a column; G gets its axes back.
    A2 = A[np.newaxis, :] if A.ndim == 1 else A
    B2 = B[:, np.newaxis] if B.ndim == 1 else B
    G2 = np.reshape(G, (A2 @ B2).shape)
    # The rule of the text, on the last two axes (a stack: matrix by matrix).
    A_bar = G2 @ np.swapaxes(B2, -1, -2)
    B_bar = np.swapaxes(A2, -1, -2) @ G2
    # A B shared by every matrix of a stack was broadcast: its cotangent is summed.
    A_bar = unbroadcast(A_bar, A2.shape).reshape(A.shape)
    B_bar = unbroadcast(B_bar, B2.shape).reshape(B.shape)
    return A_bar, B_bar

# %% tags=["exercise-7.3"]
# The tape of buggy_loss shows it: %5 = subtract(%4, f64[5]) is f64[5,5]. An (n, 1)
# column minus an (n,) vector broadcasts to (n, n): every prediction minus every
# target. (The mean's factor, 0.04 = 1/25 for 5 samples, is another clue.)
def fixed_loss(W, b, X, y):
    return tnp.mean((predict(W, b, X)[:, 0] - y) ** 2)
