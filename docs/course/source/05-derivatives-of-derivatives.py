# %% [markdown]
# # 5. Derivatives of derivatives
#
# `tg.grad(tg.grad(f))` is the second derivative of `f`, and nothing in tapegrad was
# written for second derivatives: it falls out of two facts you already know. This
# chapter shows how, record by record, and then shows the classic bug that nesting
# derivatives invites, *perturbation confusion*: first happening in a small forward mode
# written here, then not happening in tapegrad, and why.

# %%
import inspect
import math

import tapegrad as tg

# %% [markdown]
# ## The two facts
#
# 1. **A derivative rule is written with tapegrad's own operations.** The rule of `tanh`
#    is `1 - out * out` (with `out = tanh(x)`), computed with the same `*` and `-` that
#    record on tapes.
# 2. **A record's partials are computed when the record is written.** (Chapter 2.)
#
# So when `tanh` is applied to a *traced* number, its partial `1 - out * out` is computed
# on traced numbers too, and that arithmetic is itself recorded, on the tape of whatever
# trace is watching those numbers. Traces nest: `tg.grad(tg.grad(f))` runs `f` inside two
# traces, and `tg.trace(tg.grad(f))` runs `f` inside a `grad` inside a `trace`, which
# lets us print the outer tape.
#
# ## The tape of a gradient
#
# Here is the tape of the *gradient* of `tanh`, as seen by an outer `tg.trace`:

# %%
print(tg.trace(tg.grad(tg.tanh), names=("x",))(0.5))

# %% [markdown]
# Every record, one by one. The outer trace gives `grad` a traced `x`; `grad` wraps it
# in its own, inner tracer and runs `tanh`:
#
# - `x = input`: the outer trace's input.
# - `%1 = tanh(x)`: the inner trace records `tanh`; the value it computes is `tanh` of
#   an outer tracer, so the *outer* tape records it too. This is the forward pass.
# - `%2 = %1 * %1` and `%3 = 1 - %2`: the inner record's partial, `1 - out * out`,
#   computed at record time on outer tracers. This is the derivative rule of `tanh`,
#   written down as two ordinary records.
#
# Then `grad` sweeps its inner tape: the seed 1 times the partial `%3`. The sweep does not
# record a multiplication by an exact 1, so there is no record for it: the gradient *is*
# `%3 = 1 - tanh(x)**2 = 0.786`, and it is an ordinary record of the outer tape. An
# outer `grad` can differentiate it again:

# %%
print(tg.grad(tg.grad(tg.tanh))(0.5), "= -2 tanh(x) (1 - tanh(x)**2) =",
      -2 * math.tanh(0.5) * (1 - math.tanh(0.5) ** 2))

# %% [markdown]
# ## The tape of a second derivative, record by record
#
# With one more level, the outer tape shows the *middle* sweep's arithmetic:

# %%
print(tg.trace(tg.grad(tg.grad(tg.tanh)), names=("x",))(0.5))

# %% [markdown]
# Three traces are open here: `trace` (level 1, the tape printed), the outer `grad`
# (level 2) and the inner `grad` (level 3). To see the middle level's own tape, replace
# the outer `grad` by a `tg.trace`, which records the same tape and lets us print it
# and its sweep from inside the outer trace:


# %%
def second_derivative_showing_the_middle_tape(x):
    middle = tg.trace(tg.grad(tg.tanh), names=("y",))(x)  # records, then sweeps
    print("the middle tape (values of level-1 tracers, shown as numbers):")
    print(middle)
    print()
    print(middle.format_reverse())
    return middle.timings["adjoints"][0]  # d/dy of grad(tanh)(y)


outer = tg.trace(second_derivative_showing_the_middle_tape, names=("x",))(0.5)
print()
print("the outer tape:")
print(outer)

# %% [markdown]
# The outer tape is the same eight records. Now each one can be explained:
#
# - `x = input`: level 1's input. The middle level wraps it as its input `y`; the
#   inner level wraps that again.
# - `%1 = tanh(x)`: the forward pass. The inner `tanh` record's value is `tanh` of a
#   level-2 tracer, which is a level-2 record (the middle tape's `%1 = tanh(y)`), whose
#   value is `tanh` of a level-1 tracer: outer record `%1`.
# - `%2 = %1 * %1`, `%3 = 1 - %2`: the middle tape's `tanh` record computing *its*
#   partial, `1 - out * out`, on level-1 values. `%3` is `tanh'(x)`.
# - `%4 = %1 * %1`, `%5 = 1 - %4`: the inner `tanh` record computing its partial on
#   level-2 values: that arithmetic is the middle tape's records `%2 = %1 * %1` and
#   `%3 = 1 - %2`, and their values are outer `%4` and `%5`. The inner sweep then returns
#   this partial (times the seed 1, not recorded) as the first derivative. The outer tape
#   needs only its *derivative*, not its value, so `%4` and `%5` are dead: nothing later
#   uses them. (`tg.jit` drops such records when it compiles a tape.)
# - `%6 = dot([-1, -1], [%1, %1])`: the **middle sweep**. Its printed view above says
#   what happens. The seed 1 on `1 - %2` sends `1 * -1` to `%2`: both numbers are plain
#   floats (the partial of `1 - a` is the constant -1), so the product is a float, `-1`,
#   and nothing is recorded. Then `%2 = %1 * %1` sends `adjoint * partial` to its input
#   `%1` **twice**, once per operand, and each partial is the *other* operand's value: a
#   level-1 tracer, outer `%1`. So the adjoint of the middle `%1` is
#   `-1 * %1 + -1 * %1`, a sum of products with traced numbers in it, and the sweep
#   records it as **one** `dot` record instead of two multiplications and an addition.
#   Its value, `-2 tanh(x)`, is d(1 - t²)/dt.
# - `%7 = %6 * %3`: the middle `tanh` record passes its adjoint (`%6`) times its partial
#   (`%3`, recorded above) to `y`: the chain rule, `-2 tanh(x) · tanh'(x)`. That is the
#   second derivative, and the output.
#
# The same tape drawn, with each record coloured by its role *for the outermost
# derivative*, `grad(g)` with `g = grad(tanh)`: running `g` itself is its forward pass
# (`tanh`, then the first derivative as `g` computes it, `%4` and `%5`), the partials of
# those records are derivative rules (`%2`, `%3`), and the rest is `grad`'s own reverse
# sweep (`%6`, `%7`). The edges carry the partials. The adjoints in the boxes are
# derivatives of this tape's output, which is already a second derivative: the adjoint
# of `x`, -0.565, is the *third* derivative of `tanh` at 0.5.
#
# ![The tape of grad(grad(tanh)) at 0.5: tanh, two rule records, two dead forward records, the dot record and the final product](../img/grad-grad-tanh-tape.svg)
#
# Where does the `dot` come from? The generic reverse sweep (the one that runs when the
# adjoints or partials are traced) does not multiply and add as it goes. It collects, for
# each record, the list of `(adjoint, partial)` pairs sent to it, and combines them when
# the sweep reaches that record:

# %%
from tapegrad.primitives import linear_combination
from tapegrad.tape import _reverse_generic

print(inspect.getsource(_reverse_generic))

# %% [markdown]
# `pending[k]` holds the pairs sent to record `k`; when the loop reaches `k`,
# `linear_combination(pairs)` turns them into the adjoint; a record with no pairs was
# reached by nothing and is skipped. `_send` applies chapter 3's rule for zeros: a zero
# that holds whatever the values (a kink's, a constant factor's) sends nothing, a
# kink's *traced* partial is multiplied with `chain_mul` (the product in which an exact
# zero wins), and every other product is ordinary arithmetic, where 0 * inf is NaN.
# Here is `linear_combination`:

# %%
print(inspect.getsource(linear_combination))

# %% [markdown]
# Float-times-float terms are added up on the spot (the `-1` above), zeros are dropped,
# one term times an exact 1 is returned as it is (why the seed left no record), one
# other term is a single multiplication (`%7`), and anything longer becomes one `dot`
# record (`%6`). Because all of this is done with tapegrad's own operations, the sweep
# of level 2 is itself recorded on level 1, and can be differentiated again, and again:

# %%
for order, f in enumerate((tg.tanh, tg.grad(tg.tanh), tg.grad(tg.grad(tg.tanh)),
                           tg.grad(tg.grad(tg.grad(tg.tanh)))), start=0):
    records = len(tg.trace(f)(0.5))
    print(f"derivative {order} of tanh at 0.5: {f(0.5):+.6f}   ({records} records)")

# %% [markdown]
# ## Perturbation confusion, happening
#
# Now the classic trap of nested derivatives. Take
#
#     d/dx [ x * (d/dy (x + y) at y = 1) ]   at x = 1
#
# The inner derivative is `d(x + y)/dy = 1`, whatever `x` is; so the whole thing is
# `d(x * 1)/dx = 1`.
#
# Forward mode is often taught with *dual numbers*: a pair (value, tangent) that
# travels through the arithmetic, the tangent being the derivative with respect to
# whatever was "perturbed". It needs no tape at all. Here is a small, honest version:


# %%
class Dual:
    """value + tangent·ε, with ε² = 0: the arithmetic carries the tangent along."""

    def __init__(self, value, tangent=0.0):
        self.value, self.tangent = value, tangent

    def __add__(self, other):
        other = other if isinstance(other, Dual) else Dual(other)
        return Dual(self.value + other.value, self.tangent + other.tangent)

    def __mul__(self, other):
        other = other if isinstance(other, Dual) else Dual(other)
        return Dual(self.value * other.value,
                    self.value * other.tangent + self.tangent * other.value)

    __radd__, __rmul__ = __add__, __mul__


def derivative(f):
    """d f / d x by forward mode: perturb x by ε, read the result's tangent."""
    def df(x):
        out = f(Dual(x, 1.0))
        return out.tangent if isinstance(out, Dual) else 0.0
    return df


print("d/dx x*x*x at 2:", derivative(lambda x: x * x * x)(2.0), "(3 x² = 12)")

# %% [markdown]
# It works for one derivative. Now nest it:

# %%
naive = derivative(lambda x: x * derivative(lambda y: x + y)(1.0))(1.0)
print("naive dual numbers:", naive, "  (the right answer is 1)")

# %% [markdown]
# **2, not 1**, and no error. What happened: the outer `derivative` made
# `x = Dual(1, 1)` (x perturbed by ε). The inner one made `y = Dual(1, 1)` (y perturbed
# by... the same ε: there is only one). Then `x + y = Dual(2, 1 + 1)`, and the inner
# derivative read off the tangent, **2**: it counted the outer perturbation of `x` as
# if it were its own. The inner derivative returned 2 where it should have returned 1,
# and the outer one then computed `d(x · 2)/dx = 2`. The two perturbations were
# confused; hence the name (Siskind and Pearlmutter, 2005).
#
# ## Perturbation confusion, not happening in tapegrad

# %%
print("tapegrad:", tg.grad(lambda x: x * tg.grad(lambda y: x + y)(1.0))(1.0))

# %% [markdown]
# Why: **levels**. Each transform opens a trace one level deeper on a stack (per
# thread). A traced number belongs to exactly one trace. When an operation meets numbers
# of different levels, it records on the *innermost* trace among them, and to that trace
# every number of an outer level, or a plain float, is a **constant**: it gets no partial
# and no adjoint there. Its own derivatives are handled by its own trace, when that
# trace's turn comes.
#
# Look at both tapes of the example, printing the inner one from inside:


# %%
def outer_function(x):
    inner = tg.trace(lambda y: x + y, names=("y",))(1.0)
    print("inner tape (x, a level-1 tracer, is a constant here, shown as its value):")
    print(inner)
    d_dy = inner.timings["adjoints"][inner.inputs[0]]
    print("inner derivative:", d_dy, type(d_dy).__name__)
    return x * d_dy


print()
print(tg.trace(outer_function, names=("x",))(1.0))

# %% [markdown]
# In the inner tape, `x` is not an input: it is the constant `1` in `%1 = 1 + y`, so the
# partial with respect to `y` is just 1.0, a plain float that carries no trace of `x`.
# The outer tape then records `%2 = x * 1`: the derivative is 1. (Its `%1 = x + 1` is
# the value of the inner `x + y`, recorded on the outer tape because `x` is traced
# there; nothing uses it.) The inner trace never sees the outer perturbation, so it
# cannot confuse it with its own.
#
# The dual numbers went wrong because one ε served every level. The cure there is the
# same idea: give each `derivative` call its own ε (a *tag*), and let an operation on
# two duals of different tags treat the outer one as a constant. That is exercise 5.2.
#
# ## What to take away
#
# - Rules written with the library's own operations + partials computed at record time
#   = the sweep's arithmetic is recorded on the outer tape = derivatives of derivatives,
#   with no extra code. The generic sweep gathers each adjoint's terms into one `dot`.
# - Nesting needs each derivative to know its own perturbation. tapegrad's traces have
#   levels; an outer level's numbers are constants to an inner trace.
#
# ## Exercises
#
# Solutions: [solutions/05-derivatives-of-derivatives.py](solutions/05-derivatives-of-derivatives.py).


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
# **Exercise 5.1 (a third derivative).** Write `tanh_third(x)`, the third derivative of
# `tanh` at `x`, by nesting `tg.grad`. The check compares it with the formula you get by
# differentiating `tanh' = 1 - tanh²` twice more by hand.

# %% tags=["exercise-5.1"]
def tanh_third(x):
    raise NotImplementedError  # your code here


# %%
def test_5_1():
    for x in (-1.3, 0.0, 0.5, 2.0):
        t = math.tanh(x)
        by_hand = (1 - t * t) * (6 * t * t - 2)
        assert math.isclose(tanh_third(x), by_hand, rel_tol=1e-12, abs_tol=1e-12), (
            f"at x = {x}: you have {tanh_third(x)}, the formula gives {by_hand}")


check("exercise 5.1", test_5_1)

# %% [markdown]
# **Exercise 5.2 (cure the confusion).** Write `tagged_derivative(f)`, a forward-mode
# derivative with dual numbers like `derivative` above, but in which every call of the
# returned function uses its own tag (a counter is enough), so that nesting works. An
# operation on two duals of different tags must treat the dual of the *outer* (older)
# tag as a constant of the inner one. The value and the tangent of a dual may
# themselves be duals of an outer tag. Only `+` and `*` are needed.

# %% tags=["exercise-5.2"]
def tagged_derivative(f):
    raise NotImplementedError  # your code here


# %%
def test_5_2():
    d = tagged_derivative
    cases = [
        ("d/dx x*x*x at 2", d(lambda x: x * x * x)(2.0), 12.0),
        ("d/dx [x * d/dy (x + y)] at 1",
         d(lambda x: x * d(lambda y: x + y)(1.0))(1.0), 1.0),
        ("d/dx [x * d/dy (x * y)] at 3",
         d(lambda x: x * d(lambda y: x * y)(2.0))(3.0), 6.0),
        ("second derivative of x*x*x at 2", d(d(lambda x: x * x * x))(2.0), 12.0),
    ]
    for what, got, expected in cases:
        assert got == expected, f"{what}: you have {got}, the answer is {expected}"


check("exercise 5.2", test_5_2)

# %% [markdown]
# **Exercise 5.3 (second derivatives at work).** Newton's method finds a minimum of a
# smooth convex function by repeating `x ← x - f'(x) / f''(x)`. Write
# `newton_minimum(f, x0, steps=20)` using `tg.grad` for both derivatives, and return
# the final `x`.

# %% tags=["exercise-5.3"]
def newton_minimum(f, x0, steps=20):
    raise NotImplementedError  # your code here


# %%
def test_5_3():
    def f(x):
        return tg.exp(x) + x * x  # convex; f'(x) = e^x + 2x is zero near -0.3517

    x = newton_minimum(f, 1.0)
    low, high = -1.0, 0.0  # bisection on f' = e^x + 2x, independent of tapegrad
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if math.exp(mid) + 2 * mid < 0 else (low, mid)
    assert math.isclose(x, low, abs_tol=1e-12), (
        f"you have x = {x}, the minimum is at {low}")


check("exercise 5.3", test_5_3)
