# %% [markdown]
# Solutions to the exercises of chapter 4, "Forward and reverse mode". Each cell replaces
# the exercise cell with the same tag; the tests run the chapter with them and expect
# every check to say "correct".

# %% tags=["exercise-4.1"]
def jacobian_by_columns(h, xs):
    n = len(xs)
    columns = []
    for j in range(n):  # one forward sweep per input
        direction = [1.0 if k == j else 0.0 for k in range(n)]
        _, column = tg.jvp(h, (list(xs),), (direction,))
        columns.append(column)
    return [[columns[j][i] for j in range(n)] for i in range(len(columns[0]))]


def jacobian_by_rows(h, xs):
    outputs, pullback = tg.vjp(h, list(xs))  # record once
    rows = []
    for i in range(len(outputs)):  # one reverse sweep per output
        weights = [1.0 if k == i else 0.0 for k in range(len(outputs))]
        (row,) = pullback(weights)
        rows.append(list(row))
    return rows

# %% tags=["exercise-4.2"]
def hvp(loss, params, v):
    _, directional = tg.jvp(tg.grad(loss), (params,), (v,))
    return tuple(directional)
