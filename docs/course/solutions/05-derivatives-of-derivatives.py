# %% [markdown]
# Solutions to the exercises of chapter 5, "Derivatives of derivatives". Each cell
# replaces the exercise cell with the same tag; the tests run the chapter with them and
# expect every check to say "correct".

# %% tags=["exercise-5.1"]
def tanh_third(x):
    return tg.grad(tg.grad(tg.grad(tg.tanh)))(x)

# %% tags=["exercise-5.2"]
import itertools

_tags = itertools.count(1)  # each derivative call gets a newer (larger) tag


class TaggedDual:
    """value + tangent·ε_tag; value and tangent may be duals of older tags."""

    def __init__(self, value, tangent, tag):
        self.value, self.tangent, self.tag = value, tangent, tag

    def _parts(self, other, tag):
        """(value, tangent) of other for perturbation `tag`; other tags are constants."""
        if isinstance(other, TaggedDual) and other.tag == tag:
            return other.value, other.tangent
        return other, 0.0

    def _binary(self, other, combine):
        tag = max(self.tag, other.tag if isinstance(other, TaggedDual) else 0)
        (a, da), (b, db) = self._parts(self, tag), self._parts(other, tag)
        value, tangent = combine(a, da, b, db)
        return TaggedDual(value, tangent, tag)

    def __add__(self, other):
        return self._binary(other, lambda a, da, b, db: (a + b, da + db))

    def __mul__(self, other):
        return self._binary(other, lambda a, da, b, db: (a * b, a * db + da * b))

    __radd__, __rmul__ = __add__, __mul__


def tagged_derivative(f):
    def df(x):
        tag = next(_tags)
        out = f(TaggedDual(x, 1.0, tag))
        # Only this call's perturbation counts; any other tag is a constant to it.
        mine = isinstance(out, TaggedDual) and out.tag == tag
        return out.tangent if mine else 0.0
    return df

# %% tags=["exercise-5.3"]
def newton_minimum(f, x0, steps=20):
    first, second = tg.grad(f), tg.grad(tg.grad(f))
    x = x0
    for _ in range(steps):
        x = x - first(x) / second(x)
    return x
