# %% [markdown]
# Solutions to the exercises of chapter 3, "A tape autodiff in one page". Each cell
# replaces the exercise cell with the same tag; the tests run the chapter with them and
# expect every check to say "correct".

# %% tags=["exercise-3.1"]
# The partial is the sigmoid of x, computed with ref.sigmoid: on an outer Var it records,
# so the second derivative works.
softplus = ref.Primitive("softplus", lambda x: math.log1p(math.exp(x)),
                         lambda k, out, x: ref.sigmoid(x))

# %% tags=["exercise-3.2"]
def rule_is_wrong(primitive, points):
    for x in points:
        h = 1e-5 * max(1.0, abs(x))
        by_differences = (primitive(x + h) - primitive(x - h)) / (2 * h)
        by_rule = ref.grad(primitive)(x)
        if abs(by_rule - by_differences) > 1e-6 * max(1.0, abs(by_differences)):
            return True
    return False

# %% tags=["exercise-3.3"]
def hessian(f, xs):
    def row(i):
        # p -> d f / d p[i], at p: the inner grad runs on the outer grad's Vars, so its
        # sweep is recorded on the outer trace, which differentiates it again.
        return ref.grad(lambda p: ref.grad(f)(p)[i])(tuple(xs))
    return [list(row(i)) for i in range(len(xs))]
