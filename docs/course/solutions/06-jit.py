# %% [markdown]
# Solutions to the exercises of chapter 6, "jit: the tape as code". Each cell replaces
# the exercise cell with the same tag; the tests run the chapter with them and expect
# every check to say "correct".

# %% tags=["exercise-6.1"]
def tape_to_source(tape):
    def operand(i, constants):
        if i is not None:
            return f"v{i}"
        c = next(constants)
        return repr(c) if c >= 0 else f"({c!r})"  # -2.0 ** v0 means -(2.0 ** v0)

    inputs = [f"v{record.index}" for record in tape if record.op == "input"]
    lines = [f"def compiled({', '.join(inputs)}):"]
    for record in tape:
        if record.op == "input":
            continue
        constants = iter(record.constants)
        operands = [operand(i, constants) for i in record.inputs]
        expression = TEMPLATES[record.op].format(*operands)
        lines.append(f"    v{record.index} = {expression}")
    lines.append(f"    return v{tape.outputs[0]}")
    return "\n".join(lines) + "\n"

# %% tags=["exercise-6.2"]
def clip_branch_free(x):
    return tg.minimum(tg.maximum(x, -1.0), 1.0)

# %% tags=["exercise-6.3"]
def step_with_rate(w, learning_rate):
    return w - learning_rate * tg.grad(loss_1d)(w)


fast_step = tg.jit(step_with_rate)
