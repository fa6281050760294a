"""Every entry of the array table against central differences, NumPy, forward mode and jit.

The tests loop over ``tapegrad.arrays.ARRAY_PRIMITIVES``: an entry added to the
table without test data here fails ``test_every_entry_has_test_data`` (and each
per-entry test). A case draws operands of hypothesis-generated shapes
(broadcasting between operands of different shapes, ``axis``/``keepdims`` for
reductions, every kind of index for indexing) and says how the entry is reached
from the public API, which operands are differentiated, and what plain NumPy
computes for it (the reference, written independently of the implementation).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
from arraycheck import (
    EACH,
    EACH_FEW,
    STEP,
    assert_fd_close,
    assert_same,
    numeric_directional,
    numeric_gradient,
    weights,
)
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tapegrad as tg
import tapegrad.numpy as tnp
from tapegrad import arrays as tga
from tapegrad.arrays import ARRAY_PRIMITIVES


@dataclass(frozen=True)
class Case:
    """One drawn use of a table entry."""

    fn: Callable[..., Any]  # reaches the entry through the public API; NumPy or traced
    args: tuple  # NumPy operands
    diff: tuple[int, ...]  # the float operands to differentiate
    reference: Callable[..., Any]  # the value by plain NumPy, independent of tapegrad
    step: float = STEP
    rtol: float = 1e-6

    def with_diff(self, dargs: tuple) -> tuple:
        """The operands with the differentiated ones replaced by ``dargs``."""
        new = list(self.args)
        for k, v in zip(self.diff, dargs):
            new[k] = v
        return tuple(new)

    def of_diff(self) -> Callable[..., Any]:
        """The entry as a function of the differentiated operands only."""
        return lambda *dargs: self.fn(*self.with_diff(dargs))


# ---------------------------------------------------------------------------
# Strategies for operands.
# ---------------------------------------------------------------------------

SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)
SHAPES_1D_UP = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3)


def reals(lo: float, hi: float, away: float = 0.0) -> st.SearchStrategy[float]:
    s = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    return s.filter(lambda v: abs(v) >= away) if away else s


def grid(offset: float = 0.0) -> st.SearchStrategy[float]:
    """Values on a grid of 0.01 (plus ``offset``): distinct draws are far from each other,
    so a max/min has no tie within a finite-difference step."""
    return st.integers(-300, 300).map(lambda k: k / 100.0 + offset)


def array_of(shape: Any, elements: st.SearchStrategy[float], unique: bool = False,
             dtype: Any = np.float64) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(dtype, shape, elements=elements, unique=unique)


def axis_choice(ndim: int) -> st.SearchStrategy[Any]:
    """None, one axis (negative too), or a tuple of distinct axes (maybe empty)."""
    if ndim == 0:
        return st.sampled_from([None, ()])
    one = st.integers(-ndim, ndim - 1)
    many = st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim).flatmap(
        lambda axes: st.tuples(*[st.sampled_from([a, a - ndim]) for a in axes]))
    return st.one_of(st.none(), one, many)


# ---------------------------------------------------------------------------
# Cases, by entry name.
# ---------------------------------------------------------------------------

CASES: dict[str, Callable[[], st.SearchStrategy[Case]]] = {}


def case(*names: str) -> Callable:
    def register(builder: Callable[[str], st.SearchStrategy[Case]]) -> Callable:
        for name in names:
            CASES[name] = lambda name=name: builder(name)
        return builder

    return register


# Elementwise unary entries: (public function, NumPy reference, operand domain).
UNARY: dict[str, tuple[Callable, Callable, tuple[float, float, float]]] = {
    "negative": (tnp.negative, np.negative, (-5.0, 5.0, 0.0)),
    "exp": (tnp.exp, np.exp, (-5.0, 5.0, 0.0)),
    "expm1": (tnp.expm1, np.expm1, (-5.0, 5.0, 0.0)),
    "log": (tnp.log, np.log, (0.05, 10.0, 0.0)),
    "log1p": (tnp.log1p, np.log1p, (-0.9, 10.0, 0.0)),
    "sqrt": (tnp.sqrt, np.sqrt, (0.05, 10.0, 0.0)),
    "tanh": (tnp.tanh, np.tanh, (-4.0, 4.0, 0.0)),
    "sin": (tnp.sin, np.sin, (-6.0, 6.0, 0.0)),
    "cos": (tnp.cos, np.cos, (-6.0, 6.0, 0.0)),
    "tan": (tnp.tan, np.tan, (-1.3, 1.3, 0.0)),
    "sigmoid": (tnp.sigmoid, lambda x: 1.0 / (1.0 + np.exp(-x)), (-30.0, 30.0, 0.0)),
    "softplus": (tnp.softplus, lambda x: np.log1p(np.exp(x)), (-20.0, 20.0, 0.0)),
    "log_sigmoid": (tnp.log_sigmoid, lambda x: -np.log1p(np.exp(-x)), (-20.0, 20.0, 0.0)),
    "absolute": (tnp.abs, np.abs, (-5.0, 5.0, 0.1)),
    "relu": (tnp.relu, lambda x: np.maximum(x, 0.0), (-5.0, 5.0, 0.1)),
    # Without derivative: the tests check a zero gradient and the value.
    "sign": (tnp.sign, np.sign, (-5.0, 5.0, 0.1)),
    "step": (tg.step, lambda x: (x > 0).astype(np.float64), (-5.0, 5.0, 0.1)),
    "floor": (tnp.floor, np.floor, (-5.0, 5.0, 0.0)),
    "isnan": (tnp.isnan, np.isnan, (-5.0, 5.0, 0.0)),
    "isfinite": (tnp.isfinite, np.isfinite, (-5.0, 5.0, 0.0)),
    "stop_gradient": (tnp.stop_gradient, lambda x: x, (-5.0, 5.0, 0.0)),
    "logical_not": (tnp.logical_not, np.logical_not, (-2.0, 2.0, 0.0)),
}


@case(*UNARY)
def _unary_case(name: str) -> st.SearchStrategy[Case]:
    fn, reference, (lo, hi, away) = UNARY[name]
    return SHAPES.flatmap(lambda shape: array_of(shape, reals(lo, hi, away))).map(
        lambda x: Case(fn, (x,), (0,), reference))


# Binary elementwise entries (operands of shapes that broadcast together).
BINARY: dict[str, tuple[Callable, Callable, tuple, tuple]] = {
    "add": (operator.add, np.add, reals(-5, 5), reals(-5, 5)),
    "subtract": (operator.sub, np.subtract, reals(-5, 5), reals(-5, 5)),
    "multiply": (operator.mul, np.multiply, reals(-5, 5), reals(-5, 5)),
    "divide": (operator.truediv, np.divide, reals(-5, 5), reals(-4, 4, 0.5)),
    "power": (operator.pow, np.power, reals(0.2, 3.0), reals(-2.5, 2.5)),
    # Never tied: the second operand sits between the first one's grid points.
    "maximum": (tnp.maximum, np.maximum, grid(), grid(0.005)),
    "minimum": (tnp.minimum, np.minimum, grid(), grid(0.005)),
    "less": (operator.lt, np.less, grid(), grid(0.005)),
    "less_equal": (operator.le, np.less_equal, grid(), grid(0.005)),
    "greater": (operator.gt, np.greater, grid(), grid(0.005)),
    "greater_equal": (operator.ge, np.greater_equal, grid(), grid(0.005)),
    "equal": (operator.eq, np.equal, grid(), grid()),
    "not_equal": (operator.ne, np.not_equal, grid(), grid()),
    "logical_and": (tnp.logical_and, np.logical_and, reals(-1, 1), reals(-1, 1)),
    "logical_or": (tnp.logical_or, np.logical_or, reals(-1, 1), reals(-1, 1)),
}


@case(*BINARY)
def _binary_case(name: str) -> st.SearchStrategy[Case]:
    fn, reference, left, right = BINARY[name]

    @st.composite
    def draw(draw: Any) -> Case:
        shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
        x = draw(array_of(shapes.input_shapes[0], left))
        y = draw(array_of(shapes.input_shapes[1], right))
        # Both operands traced, or one of them a constant (on either side).
        diff = draw(st.sampled_from([(0, 1), (0,), (1,)]))
        return Case(fn, (x, y), diff, reference)

    return draw()


@case("where")
def _where_case(name: str) -> st.SearchStrategy[Case]:
    @st.composite
    def draw(draw: Any) -> Case:
        shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3))
        c = draw(hnp.arrays(np.bool_, shapes.input_shapes[0]))
        x = draw(array_of(shapes.input_shapes[1], reals(-5, 5)))
        y = draw(array_of(shapes.input_shapes[2], reals(-5, 5)))
        diff = draw(st.sampled_from([(1, 2), (1,), (2,)]))
        return Case(tnp.where, (c, x, y), diff, np.where)

    return draw()


@case("matmul")
def _matmul_case(name: str) -> st.SearchStrategy[Case]:
    @st.composite
    def draw(draw: Any) -> Case:
        n, k, m = (draw(st.integers(1, 3)) for _ in range(3))
        batches = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=2))
        bx, by = batches.input_shapes
        # Vectors on either side (1-D operands), matrices, and stacks of matrices.
        x_vector, y_vector = draw(st.sampled_from([(False, False), (True, False),
                                                   (False, True), (True, True)]))
        xs = (k,) if x_vector else bx + (n, k)
        ys = (k,) if y_vector else by + (k, m)
        x = draw(array_of(xs, reals(-3, 3)))
        y = draw(array_of(ys, reals(-3, 3)))
        fn = draw(st.sampled_from([operator.matmul, tnp.matmul]))
        diff = draw(st.sampled_from([(0, 1), (0,), (1,)]))
        return Case(fn, (x, y), diff, np.matmul)

    return draw()


EINSUMS = [
    "ij,jk->ik", "ij,jk", "i,i->", "i,j->ij", "ij->ji", "ij->", "ij,j->i", "ij,ij->i",
    "bij,bjk->bik", "ij,k->ik", "ij,kj->ki",
    # three operands
    "ij,jk,kl->il", "i,ij,j->", "ij,j,k->ik", "ab,bc,ca->",
]


@case("einsum")
def _einsum_case(name: str) -> st.SearchStrategy[Case]:
    @st.composite
    def draw(draw: Any) -> Case:
        spec = draw(st.sampled_from(EINSUMS))
        letters = sorted(set(spec) - set(",->"))
        size = {c: draw(st.integers(1, 3)) for c in letters}
        terms = spec.split("->")[0].split(",")
        args = tuple(draw(array_of(tuple(size[c] for c in t), reals(-2, 2))) for t in terms)
        diff = draw(st.sampled_from([tuple(range(len(args)))] + [(i,) for i in
                                                                 range(len(args))]))
        return Case(lambda *xs: tnp.einsum(spec, *xs), args, diff,
                    lambda *xs: np.einsum(spec, *xs))

    return draw()


REDUCTIONS: dict[str, tuple[Callable, Callable, st.SearchStrategy, bool]] = {
    "sum": (tnp.sum, np.sum, reals(-5, 5), False),
    "max": (tnp.max, np.max, grid(), True),
    "min": (tnp.min, np.min, grid(), True),
    "prod": (tnp.prod, np.prod, reals(-2, 2, 0.3), False),
    "logsumexp": (tnp.logsumexp,
                  lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis,
                                                          keepdims=keepdims)),
                  reals(-5, 5), False),
}


@case(*REDUCTIONS)
def _reduction_case(name: str) -> st.SearchStrategy[Case]:
    fn, reference, elements, unique = REDUCTIONS[name]

    @st.composite
    def draw(draw: Any) -> Case:
        shape = draw(SHAPES)
        axis = draw(axis_choice(len(shape)))
        keepdims = draw(st.booleans())
        if name == "max" and axis is None and not keepdims and draw(st.booleans()):
            fn_ = lambda x: x.max()  # noqa: E731  # the method, as NumPy users write it
        elif name == "sum" and draw(st.booleans()):
            fn_ = lambda x: x.sum(axis=axis, keepdims=keepdims)  # noqa: E731
        else:
            fn_ = lambda x: fn(x, axis=axis, keepdims=keepdims)  # noqa: E731
        x = draw(array_of(shape, elements, unique=unique))
        return Case(fn_, (x,), (0,), lambda x: reference(x, axis=axis, keepdims=keepdims))

    return draw()


@case("argmax", "argmin")
def _arg_case(name: str) -> st.SearchStrategy[Case]:
    fn, reference = (tnp.argmax, np.argmax) if name == "argmax" else (tnp.argmin, np.argmin)

    @st.composite
    def draw(draw: Any) -> Case:
        shape = draw(SHAPES_1D_UP)
        axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1))
        x = draw(array_of(shape, grid(), unique=True))
        return Case(lambda x: fn(x, axis), (x,), (0,), lambda x: reference(x, axis=axis))

    return draw()


@case("reshape")
def _reshape_case(name: str) -> st.SearchStrategy[Case]:
    @st.composite
    def draw(draw: Any) -> Case:
        shape = draw(SHAPES)
        target = list(draw(st.permutations(list(shape))))
        for _ in range(draw(st.integers(0, 2))):
            target.insert(draw(st.integers(0, len(target))), 1)
        if tuple(target) == shape:
            target.append(1)
        if target and draw(st.booleans()):
            target[draw(st.integers(0, len(target) - 1))] = -1
        target_t = tuple(target)
        style = draw(st.sampled_from(["tnp", "method", "method-args", "ravel"]))
        if style == "tnp":
            fn = lambda x: tnp.reshape(x, target_t)  # noqa: E731
        elif style == "method":
            fn = lambda x: x.reshape(target_t)  # noqa: E731
        elif style == "method-args":
            fn = lambda x: x.reshape(*target_t)  # noqa: E731
        else:
            fn = lambda x: x.ravel()  # noqa: E731
            if len(shape) == 1:
                shape = shape + (1,)
        x = draw(array_of(shape, reals(-5, 5)))
        return Case(fn, (x,), (0,), fn)  # NumPy's own reshape is the reference

    return draw()


@case("transpose")
def _transpose_case(name: str) -> st.SearchStrategy[Case]:
    @st.composite
    def draw(draw: Any) -> Case:
        shape = draw(SHAPES_1D_UP)
        axes = tuple(draw(st.permutations(range(len(shape)))))
        axes = tuple(a - len(shape) if draw(st.booleans()) else a for a in axes)
        style = draw(st.sampled_from(["T", "tnp", "tnp-default", "method", "swapaxes"]))
        if style == "T":
            fn = lambda x: x.T  # noqa: E731
        elif style == "tnp":
            fn = lambda x: tnp.transpose(x, axes)  # noqa: E731
        elif style == "tnp-default":
            fn = lambda x: tnp.transpose(x)  # noqa: E731
        elif style == "method":
            fn = lambda x: x.transpose(*axes)  # noqa: E731
        else:
            fn = lambda x: tnp.swapaxes(x, 0, -1)  # noqa: E731
        reference = {"T": lambda x: x.T, "tnp": lambda x: np.transpose(x, axes),
                     "tnp-default": np.transpose, "method": lambda x: x.transpose(*axes),
                     "swapaxes": lambda x: np.swapaxes(x, 0, -1)}[style]
        x = draw(array_of(shape, reals(-5, 5)))
        return Case(fn, (x,), (0,), reference)

    return draw()


@case("broadcast_to")
def _broadcast_to_case(name: str) -> st.SearchStrategy[Case]:
    @st.composite
    def draw(draw: Any) -> Case:
        shape = draw(SHAPES)
        lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
        target = lead + tuple(draw(st.integers(1, 3)) if n == 1 else n for n in shape)
        if target == shape:
            target = (2,) + target
        x = draw(array_of(shape, reals(-5, 5)))
        return Case(lambda x: tnp.broadcast_to(x, target), (x,), (0,),
                    lambda x: np.broadcast_to(x, target))

    return draw()


@case("astype")
def _astype_case(name: str) -> st.SearchStrategy[Case]:
    @st.composite
    def draw(draw: Any) -> Case:
        shape = draw(SHAPES)
        source, target = draw(st.sampled_from([(np.float64, np.float32),
                                               (np.float32, np.float64)]))
        x = draw(array_of(shape, reals(-5, 5), dtype=source))
        how = draw(st.sampled_from(["tnp", "method"]))
        fn = ((lambda x: tnp.astype(x, target)) if how == "tnp"
              else (lambda x: x.astype(target)))
        # float32 values: a longer step and a looser tolerance for the estimate.
        return Case(fn, (x,), (0,), lambda x: x.astype(target), step=1e-2, rtol=1e-4)

    return draw()


# -- indices ----------------------------------------------------------------------------


@st.composite
def basic_index(draw: Any, shape: tuple[int, ...]) -> Any:
    """Ints (negative too), slices (negative steps, out-of-range bounds), None, Ellipsis."""
    parts: list[Any] = []
    for n in shape:
        kind = draw(st.sampled_from(["int", "slice", "all"]))
        if kind == "int":
            parts.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            bound = st.none() | st.integers(-n - 1, n + 1)
            parts.append(slice(draw(bound), draw(bound),
                               draw(st.sampled_from([None, 1, 2, -1, -2]))))
        else:
            parts.append(slice(None))
    if parts and draw(st.booleans()):  # leave out trailing axes
        parts = parts[:draw(st.integers(0, len(parts)))]
    for _ in range(draw(st.integers(0, 2))):
        parts.insert(draw(st.integers(0, len(parts))), None)
    if draw(st.booleans()):  # an Ellipsis standing for the axes after some position
        cut = draw(st.integers(0, len(parts)))
        parts = parts[:cut] + [Ellipsis]
    if len(parts) == 1 and draw(st.booleans()):
        return parts[0]
    return tuple(parts)


@st.composite
def array_index(draw: Any, shape: tuple[int, ...]) -> Any:
    """Integer arrays (with repeats, negative entries), beside slices and ints."""
    axis = draw(st.integers(0, len(shape) - 1))
    n = shape[axis]
    idx_shape = draw(st.sampled_from([(draw(st.integers(1, 4)),), (2, 2)]))
    idx = draw(hnp.arrays(np.int64, idx_shape, elements=st.integers(-n, n - 1)))
    as_list = draw(st.booleans()) and idx.ndim == 1
    parts: list[Any] = [slice(None)] * axis + [idx.tolist() if as_list else idx]
    if axis + 1 < len(shape) and draw(st.booleans()):  # a second array, broadcast with it
        m = shape[axis + 1]
        parts.append(draw(hnp.arrays(np.int64, idx_shape, elements=st.integers(-m, m - 1))))
    elif axis + 1 < len(shape) and draw(st.booleans()):
        parts.append(slice(None, None, -1))
    return tuple(parts) if len(parts) > 1 or draw(st.booleans()) else parts[0]


@st.composite
def mask_index(draw: Any, shape: tuple[int, ...]) -> Any:
    """A constant boolean mask over the first axis, or over the leading axes."""
    ndim = draw(st.integers(1, len(shape)))
    mask = draw(hnp.arrays(np.bool_, shape[:ndim]))
    if ndim == 1 and len(shape) > 1 and draw(st.booleans()):
        return (mask, slice(None, None, -1))
    return mask


@case("getitem")
def _getitem_case(name: str) -> st.SearchStrategy[Case]:
    @st.composite
    def draw(draw: Any) -> Case:
        shape = draw(SHAPES_1D_UP)
        kind = draw(st.sampled_from(["basic", "array", "mask", "scalar"]))
        if kind == "basic":
            index = draw(basic_index(shape))
        elif kind == "array":
            index = draw(array_index(shape))
        elif kind == "mask":
            index = draw(mask_index(shape))
        else:  # NumPy integer scalars as indices
            index = tuple(np.int64(draw(st.integers(-n, n - 1))) for n in shape)
        x = draw(array_of(shape, reals(-5, 5)))
        return Case(lambda x: x[index], (x,), (0,), lambda x: x[index])

    return draw()


@case("index_add")
def _index_add_case(name: str) -> st.SearchStrategy[Case]:
    # The scatter-add, getitem's adjoint, as a function of the values scattered.
    @st.composite
    def draw(draw: Any) -> Case:
        shape = draw(SHAPES_1D_UP)
        index = draw(array_index(shape) if draw(st.booleans()) else basic_index(shape))
        template, arrays = tga._split_index(index)
        arrays = [np.asarray(a) for a in arrays]
        g = draw(array_of(np.zeros(shape)[index].shape, reals(-5, 5)))

        def fn(g: Any) -> Any:
            return tga._index_add(g, *arrays, index=template, shape=shape, dtype="float64")

        def reference(g: Any) -> Any:
            out = np.zeros(shape)
            np.add.at(out, index, g)
            return out

        return Case(fn, (g,), (0,), reference)

    return draw()


@case("concatenate")
def _concatenate_case(name: str) -> st.SearchStrategy[Case]:
    @st.composite
    def draw(draw: Any) -> Case:
        base = draw(SHAPES_1D_UP)
        axis = draw(st.integers(-len(base), len(base) - 1))
        count = draw(st.integers(1, 3))
        shapes = [tuple(draw(st.integers(1, 3)) if i == axis % len(base) else n
                        for i, n in enumerate(base)) for _ in range(count)]
        args = tuple(draw(array_of(s, reals(-5, 5))) for s in shapes)
        diff = draw(st.sampled_from([tuple(range(count)), (0,)]))
        return Case(lambda *xs: tnp.concatenate(xs, axis=axis), args, diff,
                    lambda *xs: np.concatenate(xs, axis=axis))

    return draw()


@tg.custom_vjp
def tanh_affine(x: Any, w: Any) -> Any:
    """tanh(x @ w) with a hand-written rule: the table's custom_vjp entry."""
    return tnp.tanh(x @ w)


def _tanh_affine_fwd(x: Any, w: Any) -> tuple:
    out = tnp.tanh(x @ w)
    return out, (x, w, out)


def _tanh_affine_bwd(residuals: tuple, g: Any) -> tuple:
    x, w, out = residuals
    gz = g * (1.0 - out * out)
    return gz @ w.T, x.T @ gz


tanh_affine.defvjp(_tanh_affine_fwd, _tanh_affine_bwd)


@case("custom_vjp")
def _custom_vjp_case(name: str) -> st.SearchStrategy[Case]:
    @st.composite
    def draw(draw: Any) -> Case:
        n, k, m = (draw(st.integers(1, 3)) for _ in range(3))
        x = draw(array_of((n, k), reals(-2, 2)))
        w = draw(array_of((k, m), reals(-2, 2)))
        diff = draw(st.sampled_from([(0, 1), (0,), (1,)]))
        return Case(tanh_affine, (x, w), diff, lambda x, w: np.tanh(x @ w))

    return draw()


# ---------------------------------------------------------------------------
# The tests.
# ---------------------------------------------------------------------------

NAMES = sorted(ARRAY_PRIMITIVES)
DIFFERENTIABLE = [n for n in NAMES if ARRAY_PRIMITIVES[n].differentiable]
NO_DERIVATIVE = [n for n in NAMES if not ARRAY_PRIMITIVES[n].differentiable]


def cases(name: str) -> st.SearchStrategy[Case]:
    if name not in CASES:
        pytest.fail(f"the array primitive {name!r} has no test data: add a case for it in "
                    f"tests/test_array_rules.py")
    return CASES[name]()


def loss_of(case: Case) -> tuple[Callable[..., Any], np.ndarray]:
    """sum(w * f(args)) with fixed irregular weights w: a scalar whose gradient is the
    vector-Jacobian product with w."""
    out = np.asarray(case.reference(*case.args))
    w = weights(out.shape)
    return (lambda *args: tnp.sum(case.fn(*args) * w)), w


def records(case: Case) -> set[str]:
    """The operations on the tape of one traced call of the case."""
    return {r.op for r in tg.trace(case.fn, argnums=case.diff)(*case.args)}


def test_every_entry_has_test_data() -> None:
    missing = sorted(set(ARRAY_PRIMITIVES) - set(CASES))
    assert not missing, f"array primitives without test data: {missing}"
    stale = sorted(set(CASES) - set(ARRAY_PRIMITIVES))
    assert not stale, f"test data for entries no longer in the table: {stale}"


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@EACH
@given(data=st.data())
def test_gradient_matches_central_differences(name: str, data: Any) -> None:
    case = data.draw(cases(name))
    value = case.fn(*case.args)
    assert_same(value, case.reference(*case.args), f"{name}: value against NumPy", 1e-12)
    assert name in records(case), f"{name}: the case does not reach the entry"
    loss, w = loss_of(case)
    scale = float(np.sum(np.abs(w * np.asarray(value, dtype=np.float64))))
    grads = tg.grad(loss, argnums=case.diff)(*case.args)
    for k, g in zip(case.diff, grads):
        x = case.args[k]
        assert isinstance(g, np.ndarray), f"{name}: gradient is {type(g).__name__}"
        assert g.shape == x.shape and g.dtype == x.dtype, (
            f"{name}: gradient {g.dtype}{list(g.shape)} for operand {x.dtype}{list(x.shape)}")
        numeric = numeric_gradient(loss, case.args, k, case.step)
        assert_fd_close(g, numeric, scale, f"{name}: d/d operand {k}", case.rtol)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@EACH
@given(data=st.data())
def test_forward_mode_matches_differences_and_reverse(name: str, data: Any) -> None:
    case = data.draw(cases(name))
    f = case.of_diff()
    primals = tuple(case.args[k] for k in case.diff)
    tangents = tuple(weights(np.shape(p), seed=11 + i) for i, p in enumerate(primals))
    tangents = tuple(t.astype(p.dtype) for t, p in zip(tangents, primals))
    value, tangent = tg.jvp(f, primals, tangents)
    assert_same(value, case.fn(*case.args), f"{name}: jvp's value")
    out = np.asarray(case.fn(*case.args))
    numeric = numeric_directional(case.fn, case.args, case.diff, tangents, case.step)
    assert np.shape(tangent) == out.shape
    assert_fd_close(tangent, numeric, float(np.max(np.abs(out), initial=1.0)),
                    f"{name}: jvp", case.rtol)
    # <w, J t> == <J^T w, t>: forward and reverse mode compute one Jacobian.
    loss, w = loss_of(case)
    grads = tg.grad(loss, argnums=case.diff)(*case.args)
    forward = float(np.sum(w * np.asarray(tangent, dtype=np.float64)))
    reverse = sum(float(np.sum(g.astype(np.float64) * t)) for g, t in zip(grads, tangents))
    in_float64 = all(p.dtype == np.float64 for p in primals) and out.dtype == np.float64
    tol = 1e-10 if in_float64 else 1e-5
    assert abs(forward - reverse) <= tol * (1 + abs(forward) + abs(reverse)), (
        f"{name}: forward {forward} != reverse {reverse}")


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@EACH_FEW
@given(data=st.data())
def test_jacfwd_equals_jacrev(name: str, data: Any) -> None:
    case = data.draw(cases(name))
    f = case.of_diff()
    primals = tuple(case.args[k] for k in case.diff)
    argnums = tuple(range(len(primals)))
    forward = tg.jacfwd(f, argnums=argnums)(*primals)
    reverse = tg.jacrev(f, argnums=argnums)(*primals)
    out_shape = np.shape(case.fn(*case.args))
    for k, (jf, jr, p) in enumerate(zip(forward, reverse, primals)):
        assert np.shape(jf) == out_shape + p.shape, f"{name}: jacfwd shape, operand {k}"
        assert_same(jf, jr, f"{name}: jacfwd vs jacrev, operand {k}", 1e-12)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@EACH_FEW
@given(data=st.data())
def test_hessian_vector_product_matches_differences_of_the_gradient(name: str,
                                                                     data: Any) -> None:
    case = data.draw(cases(name))
    loss, _ = loss_of(case)
    argnums = tuple(range(len(case.diff)))

    def gradient(*dargs: Any) -> Any:
        return tg.grad(lambda *d: loss(*case.with_diff(d)), argnums=argnums)(*dargs)

    primals = tuple(case.args[k] for k in case.diff)
    tangents = tuple(weights(np.shape(p), seed=3 + i).astype(p.dtype)
                     for i, p in enumerate(primals))
    _, hvp = tg.jvp(gradient, primals, tangents)
    for i in argnums:
        numeric = numeric_directional(lambda *d, i=i: gradient(*d)[i], primals, argnums,
                                      tangents, 1e-5)
        scale = float(np.max(np.abs(gradient(*primals)[i]), initial=1.0))
        assert_fd_close(hvp[i], numeric, 100 * scale, f"{name}: hvp, operand {i}", 1e-5)


@pytest.mark.parametrize("name", NAMES)
@EACH_FEW
@given(data=st.data())
def test_jit_equals_eager(name: str, data: Any) -> None:
    case = data.draw(cases(name))
    fast = tg.jit(case.fn)
    assert_same(fast(*case.args), case.fn(*case.args), f"{name}: jit value")
    assert fast.traces == 1, f"{name}: jit ran eagerly instead of compiling"
    loss, _ = loss_of(case)
    fast_grad = tg.jit(tg.grad(loss, argnums=case.diff))
    for k, (a, b) in enumerate(zip(fast_grad(*case.args),
                                   tg.grad(loss, argnums=case.diff)(*case.args))):
        assert_same(a, b, f"{name}: jit gradient {k}")
        assert a.dtype == b.dtype
    assert fast_grad.traces == 1


@pytest.mark.parametrize("name", NO_DERIVATIVE)
@EACH
@given(data=st.data())
def test_entries_without_derivative_give_zero_and_numpy_values(name: str, data: Any) -> None:
    case = data.draw(cases(name))
    assert_same(case.fn(*case.args), case.reference(*case.args), f"{name}: value", 0.0)
    assert name in records(case), f"{name}: the case does not reach the entry"
    loss, _ = loss_of(case)
    for k, g in zip(case.diff, tg.grad(loss, argnums=case.diff)(*case.args)):
        x = case.args[k]
        assert g.shape == x.shape and g.dtype == x.dtype
        assert not np.any(g), f"{name}: nonzero gradient through an entry without derivative"
