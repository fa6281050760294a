"""The transforms: grad, value_and_grad, vjp, jvp, jacrev, jacfwd, hessian, trace.

Every transform does the same three things: wrap the numbers of the chosen
arguments as traced leaves on a fresh tape, run the function once, and sweep
the tape (backwards for reverse mode, forwards for forward mode). Names and
semantics follow JAX, so ``grad(f, argnums=(0, 1))`` means what it means there.

Nesting works because each transform opens a tape one level deeper than the
enclosing one; values of outer traces are constants to inner ones, and the
inner sweep's arithmetic on them is recorded by the outer tape.
"""

from __future__ import annotations

import functools
import math
import numbers
import sys
from collections.abc import Sequence
from typing import Any, Callable, Union

import attrs

from .errors import ESCAPED_MESSAGE, CustomVJPError, EscapedTracerError, NonFiniteError
from .primitives import CUSTOM, _innermost, _nary_record
from .pytree import TreeDef, tree_flatten, tree_paths, tree_unflatten
from .tape import HOOKS, Recorder, Tape, open_recorder, pop_recorder
from .tracer import TRACER_TYPES, Tracer, check_live, primal

__all__ = [
    "grad", "value_and_grad", "vjp", "jvp", "jacrev", "jacfwd", "jacobian", "hessian",
    "trace", "custom_vjp",
]

ArgNums = Union[int, Sequence[int]]


# ---------------------------------------------------------------------------
# Wrapping arguments and unwrapping results.
# ---------------------------------------------------------------------------


def _check_leaf(tree: Any, prefix: str, k: int, leaf: Any, transform: str,
                differentiable: bool = True) -> Any:
    """Leaf k of ``tree`` as a value to trace, or an error naming its place.

    Floats, ints (as floats), NumPy scalars (as floats), float arrays and traced
    values of outer traces are leaves; integer and boolean arrays too where nothing
    is differentiated (``jit``, ``trace``).
    """
    if type(leaf) is float:
        return leaf
    if type(leaf) is Tracer or _is_array_tracer(leaf):
        if leaf._tape.closed:
            raise EscapedTracerError(ESCAPED_MESSAGE)
        return leaf
    if type(leaf) is int:
        return float(leaf)
    np = sys.modules.get("numpy")
    if np is not None and isinstance(leaf, np.ndarray):
        kind = leaf.dtype.kind
        if kind == "f" or (not differentiable and kind in "iub"):
            return leaf
        what = "an integer or boolean array" if kind in "iub" else f"a {leaf.dtype} array"
        raise TypeError(
            f"{transform}: the differentiated argument {_leaf_path(tree, prefix, k)} is "
            f"{what}, which has no derivative. Pass integer data (labels, indices) in an "
            "argument that is not in argnums, or convert it with .astype(float)."
        )
    if isinstance(leaf, numbers.Real) and not isinstance(leaf, bool) and not (
            np is not None and isinstance(leaf, np.bool_)):
        return float(leaf)  # a NumPy scalar: traced as a float, its gradient cast back
    raise TypeError(
        f"{transform}: the differentiated argument {_leaf_path(tree, prefix, k)} is "
        f"{type(leaf).__name__} {leaf!r}, but only numbers (int, float, NumPy scalars) and "
        "float arrays can be leaves. Pass numbers there, or move the value to an argument "
        "that is not in argnums (or close over it)."
    )


def _leaf_path(tree: Any, prefix: str, k: int) -> str:
    return tree_paths(tree, prefix=prefix, only=k)[0][0]


def _is_array_tracer(x: Any) -> bool:
    return type(x) in TRACER_TYPES and type(x) is not Tracer


_FLOAT_ONLY = {float}


def _argnums_tuple(argnums: ArgNums, nargs: int, transform: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for n in nums:
        if not isinstance(n, int) or not -nargs <= n < nargs:
            raise ValueError(
                f"{transform}: argnums={argnums!r} does not fit a call with {nargs} positional "
                "argument(s)"
            )
    return tuple(n % nargs for n in nums)


_ARRAYS: list = []


def _array_support() -> Any:
    """The array layer, imported on first use (only when NumPy values meet a transform)."""
    if not _ARRAYS:
        from . import arrays

        _ARRAYS.append(arrays)
    return _ARRAYS[0]


class _Traced:
    """One traced call in progress: the recorder and the wrapped arguments.

    ``argnums`` may repeat an argument (``(0, 0)``, as JAX allows): it is wrapped
    once and its gradient is given at every position that asks for it.
    """

    def __init__(self, args: tuple, argnums: tuple[int, ...], transform: str,
                 names: Sequence[str] | None = None, guards: bool = False,
                 differentiable: bool = True) -> None:
        self.rec: Recorder = open_recorder(guards=guards)
        self.argnums = argnums
        self.treedefs: list[TreeDef] = []
        self.leaf_indices: list[list[int]] = []
        # Per differentiated argument: None when every leaf is a Python float (the fast
        # case), else the original leaves, so that gradients take each leaf's type back.
        self.originals: list[list | None] = []
        new_args = list(args)
        label_iter = iter(names) if names is not None else None
        new = object.__new__
        seen: dict[int, int] = {}
        try:
            for n in argnums:
                if n in seen:  # the same argument asked for twice: the same leaves
                    first = seen[n]
                    self.treedefs.append(self.treedefs[first])
                    self.leaf_indices.append(self.leaf_indices[first])
                    self.originals.append(self.originals[first])
                    continue
                seen[n] = len(self.treedefs)
                leaves, treedef = tree_flatten(args[n])
                originals = None
                if set(map(type, leaves)) <= _FLOAT_ONLY:
                    values = leaves
                else:
                    values = [_check_leaf(args[n], f"args[{n}]", k, leaf, transform,
                                          differentiable) for k, leaf in enumerate(leaves)]
                    originals = leaves
                labels = None
                if label_iter is not None:
                    labels = [next(label_iter, None) for _ in values]
                indices = self.rec.leaves(values, labels)
                wrapped = []
                for i, value in zip(indices, values):
                    if type(value) is float or type(value) is Tracer:
                        t = new(Tracer)
                        t._tape = self.rec
                        t._index = i
                        t._value = value
                    else:  # an array, or a traced array of an outer trace
                        self.rec.arrays = True
                        t = _array_support()._new_array(self.rec, i, value)
                    wrapped.append(t)
                self.treedefs.append(treedef)
                self.leaf_indices.append(list(indices))
                self.originals.append(originals)
                new_args[n] = tree_unflatten(treedef, wrapped)
        except BaseException:
            self.abort()
            raise
        self.args = tuple(new_args)

    def run(self, f: Callable, kwargs: dict) -> Any:
        try:
            return f(*self.args, **kwargs)
        except BaseException:
            self.abort()
            raise
        finally:
            pop_recorder(self.rec)

    def abort(self) -> None:
        pop_recorder(self.rec)
        self.rec.close()

    def output_index(self, out: Any) -> int:
        """The record index of an output of this trace, or -1 if it is a constant."""
        if type(out) is Tracer or _is_array_tracer(out):
            if out._tape is self.rec:
                return out._index
            check_live(out)  # an outer trace's value is a constant; anything else is an error
        return -1

    def unwrap(self, out: Any) -> Any:
        """The value of an output as seen outside this trace."""
        if (type(out) is Tracer or _is_array_tracer(out)) and out._tape is self.rec:
            return out._value
        return out

    def finish(self, out: Any, transform: str, allow_bool: bool = False
               ) -> tuple[Tape, list, TreeDef, list[int]]:
        """Close the trace on output pytree ``out``.

        Returns the frozen tape, the output leaves, their structure, and each
        leaf's record index (-1 for a constant). Every leaf must be a number or an
        array (or, with ``allow_bool``, a bool: ``jit`` passes those through).
        """
        try:
            out_leaves, out_def = tree_flatten(out)
            for k, leaf in enumerate(out_leaves):
                if not _is_output_leaf(leaf, allow_bool):
                    raise TypeError(
                        f"{transform}: the function returned {type(leaf).__name__} {leaf!r} at "
                        f"{_leaf_path(out, 'output', k)}; outputs must be numbers, arrays or "
                        "pytrees (tuples, lists, dicts, ...) of them"
                    )
            roots = [self.output_index(x) for x in out_leaves]
            tape = self.rec.freeze()
        except BaseException:
            self.rec.close()
            raise
        return tape, out_leaves, out_def, roots

    def gradients(self, adj: list) -> tuple:
        """Per differentiated argument, the adjoints of its leaves in its own structure,
        each of its leaf's type: float for a float, an array of the leaf's shape and
        dtype for an array, the NumPy scalar type for a NumPy scalar."""
        out = []
        for td, idx, originals in zip(self.treedefs, self.leaf_indices, self.originals):
            if originals is None:
                values = [adj[i] for i in idx]
                if any(type(v) is not float and type(v) is not Tracer for v in values):
                    values = [_as_leaf_type(v, 0.0) for v in values]
            else:
                values = [_as_leaf_type(adj[i], leaf) for i, leaf in zip(idx, originals)]
            out.append(tree_unflatten(td, values))
        return tuple(out)


def _is_output_leaf(leaf: Any, allow_bool: bool) -> bool:
    if type(leaf) is Tracer or _is_array_tracer(leaf):
        return True
    if isinstance(leaf, bool):
        return allow_bool
    if isinstance(leaf, numbers.Number) and not isinstance(leaf, complex):
        return True
    np = sys.modules.get("numpy")
    return np is not None and isinstance(leaf, (np.ndarray, np.generic)) and (
        leaf.dtype.kind in "fiu" or allow_bool and leaf.dtype.kind == "b")


def _as_leaf_type(g: Any, leaf: Any) -> Any:
    """An adjoint in the type of its leaf (a traced adjoint of an outer trace stays as it is)."""
    if type(g) is Tracer or _is_array_tracer(g):
        return g
    if type(leaf) is float or type(leaf) is int:
        return float(g)
    np = sys.modules.get("numpy")
    # An array leaf, or a traced array of an outer trace whose adjoint here does not
    # depend on that trace (the gradient of a linear function): an array of its shape.
    if np is not None and (isinstance(leaf, np.ndarray) or _is_array_tracer(leaf)):
        if type(g) is np.ndarray and g.dtype == leaf.dtype and g.shape == leaf.shape:
            return g
        if type(g) is float and g == 0.0:
            return np.zeros(leaf.shape, dtype=leaf.dtype)
        g = np.asarray(g)
        if g.shape != leaf.shape:
            g = np.broadcast_to(g, leaf.shape).copy()
        return g.astype(leaf.dtype, copy=False)
    if np is not None and isinstance(leaf, np.floating):
        return type(leaf)(g)
    return float(g)


def _scalar_output(out: Any, transform: str) -> Any:
    if type(out) is Tracer or type(out) is float or type(out) is int:
        return out
    shape = getattr(out, "shape", None)
    if shape == () and (_is_array_tracer(out) or getattr(out, "dtype", None) is not None):
        return out  # a 0-d array or NumPy scalar
    if isinstance(out, bool) or not isinstance(out, (int, float)):
        described = type(out).__name__
        if shape is not None:
            described = f"an array of shape {tuple(shape)}"
        elif isinstance(out, (list, tuple, dict)):
            described += f" with {len(out)} item(s)"
        raise TypeError(
            f"{transform} needs a function that returns a single scalar, but it returned "
            f"{described}. Reduce it to one number (tnp.sum, tnp.mean), or for several "
            "outputs use tg.vjp (one cotangent per output) or tg.jacobian / tg.jacrev / "
            "tg.jacfwd (all partial derivatives)."
        )
    return float(out)


def _seed(root_value: Any) -> Any:
    """The cotangent 1 of a scalar output: a float, or a 0-d array of the output's dtype."""
    if type(root_value) is float or type(root_value) is Tracer:
        return 1.0
    return _array_support().np.ones((), dtype=root_value.dtype)


def _check_finite(tape: Tape, adj: list, transform: str) -> None:
    """debug_nans: stop at the first record whose value or adjoint is not finite."""
    describe_record = HOOKS["describe"]  # viz.describe_record (viz sits above this module)

    for k in range(len(tape)):
        bad = _non_finite(tape.values[k])
        if bad:
            raise NonFiniteError(
                f"{transform}(debug_nans=True): the value of record %{k} {bad}: "
                f"{describe_record(tape, k)}"
            )
    for k in range(len(tape) - 1, -1, -1):
        bad = _non_finite(adj[k])
        if bad:
            raise NonFiniteError(
                f"{transform}(debug_nans=True): the adjoint of record %{k} {bad} in the "
                f"reverse sweep: {describe_record(tape, k)}"
            )


def _non_finite(value: Any) -> str:
    """'' for a finite number or array; else 'is nan', or 'has nan at index (1, 0)'."""
    value = primal(value)
    if not hasattr(value, "shape") or value.shape == ():
        v = float(value)
        return "" if math.isfinite(v) else f"is {v}"
    np = _array_support().np
    finite = np.isfinite(value)
    if finite.all():
        return ""
    where = tuple(int(i) for i in np.argwhere(~finite)[0])
    return f"has {float(value[where])} at index {where}"


# ---------------------------------------------------------------------------
# Reverse mode.
# ---------------------------------------------------------------------------


def value_and_grad(
    f: Callable[..., Any], argnums: ArgNums = 0, has_aux: bool = False, debug_nans: bool = False
) -> Callable[..., Any]:
    """A function that returns ``(f(*args), gradient)``, from one run of ``f``.

    The gradient has the structure of the argument(s) chosen by ``argnums`` (a
    tuple of gradients when ``argnums`` is a tuple). With ``has_aux=True``, ``f``
    returns ``(value, aux)`` and the result is ``((value, aux), gradient)``.
    With ``debug_nans=True`` a non-finite value or adjoint raises
    :class:`~tapegrad.errors.NonFiniteError` naming the record.

    >>> value_and_grad(lambda x, y: x * y + y)(2.0, 3.0)
    (9.0, 3.0)
    >>> value_and_grad(lambda x, y: x * y + y, argnums=(0, 1))(2.0, 3.0)
    (9.0, (3.0, 3.0))
    """
    return _value_and_grad(f, argnums, has_aux, debug_nans, "value_and_grad")


def _value_and_grad(f: Callable[..., Any], argnums: ArgNums, has_aux: bool, debug_nans: bool,
                    name: str) -> Callable[..., Any]:

    @functools.wraps(f)
    def value_and_grad_f(*args: Any, **kwargs: Any) -> Any:
        nums = _argnums_tuple(argnums, len(args), name)
        call = _Traced(args, nums, name)
        result = call.run(f, kwargs)
        try:
            if has_aux:
                if not (isinstance(result, (tuple, list)) and len(result) == 2):
                    raise TypeError(
                        f"{name}(has_aux=True) needs f to return a pair (value, aux), "
                        f"got {type(result).__name__}"
                    )
                out, aux = result
            else:
                out, aux = result, None
            out = _scalar_output(out, name)
            root = call.output_index(out)
            tape = call.rec.freeze()
            adj = tape.backward({root: _seed(out)}) if root >= 0 else [0.0] * len(tape)
            if debug_nans:
                _check_finite(tape, adj, name)
        except BaseException:
            call.rec.close()
            raise
        grads = call.gradients(adj)
        grads = grads[0] if isinstance(argnums, int) else grads
        value = call.unwrap(out)
        if type(value) is int:
            value = float(value)
        if has_aux:
            return (value, _unwrap_tree(aux, call)), grads
        return value, grads

    return value_and_grad_f


def _unwrap_tree(tree: Any, call: _Traced) -> Any:
    leaves, treedef = tree_flatten(tree)
    return tree_unflatten(treedef, [call.unwrap(x) for x in leaves])


def grad(
    f: Callable[..., Any], argnums: ArgNums = 0, has_aux: bool = False, debug_nans: bool = False
) -> Callable[..., Any]:
    """The gradient of a scalar function, in the structure of its argument(s).

    ``f`` runs once while its operations are recorded on a tape; the tape is then
    swept backwards to get every partial derivative. ``argnums`` chooses the
    argument(s) to differentiate; with ``has_aux=True`` ``f`` returns
    ``(value, aux)`` and the result is ``(gradient, aux)``.

    >>> import tapegrad as tg
    >>> grad(lambda x: x ** 3)(2.0)
    12.0
    >>> grad(lambda p: p["w"] * p["b"])({"w": 2.0, "b": 5.0})
    {'b': 2.0, 'w': 5.0}
    >>> round(grad(grad(tg.sin))(1.0), 6)  # second derivative: -sin(1)
    -0.841471
    """
    vg = _value_and_grad(f, argnums, has_aux, debug_nans, "grad")

    @functools.wraps(f)
    def grad_f(*args: Any, **kwargs: Any) -> Any:
        value, grads = vg(*args, **kwargs)
        if has_aux:
            return grads, value[1]
        return grads

    return grad_f


def vjp(f: Callable[..., Any], *primals: Any, has_aux: bool = False) -> tuple:
    """Run ``f(*primals)`` and return ``(out, vjp_fn)``.

    ``out`` may be any pytree of scalars. ``vjp_fn(cotangent)``, with a cotangent
    of the structure of ``out``, returns a tuple with one cotangent per primal:
    the vector-Jacobian product. It can be called many times; each call is one
    reverse sweep over the same tape.

    >>> out, f_vjp = vjp(lambda x, y: (x * y, x + y), 2.0, 3.0)
    >>> out
    (6.0, 5.0)
    >>> f_vjp((1.0, 0.0))
    (3.0, 2.0)
    """
    name = "vjp"
    call = _Traced(primals, tuple(range(len(primals))), name)
    result = call.run(f, {})
    out, aux = result, None
    if has_aux:
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            call.rec.close()
            raise TypeError(f"vjp(has_aux=True) needs f to return a pair (out, aux), got "
                            f"{type(result).__name__}")
        out, aux = result
    tape, out_leaves, out_def, roots = call.finish(out, name)
    out_values = [_as_float(call.unwrap(x)) for x in out_leaves]
    values = tree_unflatten(out_def, out_values)

    def vjp_fn(cotangent: Any) -> tuple:
        ct_leaves, ct_def = tree_flatten(cotangent)
        if ct_def != out_def:
            raise ValueError(
                f"vjp_fn: the cotangent has structure {ct_def!r}, but the output of f has "
                f"structure {out_def!r}; pass one number (or array) per output"
            )
        seeds: dict[int, Any] = {}
        for k, (root, g, v) in enumerate(zip(roots, ct_leaves, out_values)):
            g = _check_leaf(cotangent, "cotangent", k, g, "vjp_fn")
            g = _check_same_shape("vjp_fn: cotangent", k, g, v)
            if root >= 0:
                seeds[root] = seeds[root] + g if root in seeds else g
        adj = tape.backward(seeds) if seeds else [0.0] * len(tape)
        return call.gradients(adj)

    if has_aux:
        return values, vjp_fn, _unwrap_tree(aux, call)
    return values, vjp_fn


def _as_float(v: Any) -> Any:
    return float(v) if type(v) is int else v


def _shape(v: Any) -> tuple:
    return tuple(getattr(v, "shape", ()))


def _check_same_shape(what: str, k: int, given: Any, expected: Any) -> Any:
    """``given`` in the shape of ``expected``: a number stands for an array full of it
    (a cotangent 1.0 for an array output); any other shape is an error."""
    if _shape(given) == _shape(expected):
        return given
    if _shape(given) != ():
        raise ValueError(f"{what} {k} has shape {_shape(given)}, but the value it goes with "
                         f"has shape {_shape(expected)}")
    arrays = _array_support()
    if type(given) is Tracer or _is_array_tracer(given):
        return arrays.broadcast_to(given, _shape(expected))
    kind = arrays.np.dtype(expected.dtype).kind
    return arrays.np.full(_shape(expected), given,
                          dtype=expected.dtype if kind == "f" else arrays.np.float64)


# ---------------------------------------------------------------------------
# Forward mode.
# ---------------------------------------------------------------------------


def jvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> tuple:
    """Forward mode: ``(f(*primals), J @ tangents)``.

    The function is recorded once, then the tape is swept forwards, carrying the
    tangent of every record (the directional derivative along ``tangents``).

    >>> jvp(lambda x, y: x * y, (2.0, 3.0), (1.0, 0.0))
    (6.0, 3.0)
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(
            f"jvp: {len(primals)} primal(s) but {len(tangents)} tangent(s); pass one each"
        )
    call = _Traced(primals, tuple(range(len(primals))), "jvp")
    tape, out_leaves, out_def, roots = call.finish(call.run(f, {}), "jvp")
    seeds: dict[int, Any] = {}
    for n, t in enumerate(tangents):
        t_leaves, t_def = tree_flatten(t)
        if t_def != call.treedefs[n]:
            raise ValueError(
                f"jvp: tangent {n} has structure {t_def!r} but primal {n} has "
                f"{call.treedefs[n]!r}"
            )
        p_leaves = tree_flatten(primals[n])[0]
        for k, (i, tl, pl) in enumerate(zip(call.leaf_indices[n], t_leaves, p_leaves)):
            seeds[i] = _check_same_shape(f"jvp: tangents[{n}] leaf", k,
                                         _check_leaf(t, f"tangents[{n}]", k, tl, "jvp"), pl)
    tan = tape.forward(seeds)
    values = [_as_float(call.unwrap(x)) for x in out_leaves]
    tangents_out = [_as_leaf_type(tan[root] if root >= 0 else 0.0, v)
                    for root, v in zip(roots, values)]
    return tree_unflatten(out_def, values), tree_unflatten(out_def, tangents_out)


# ---------------------------------------------------------------------------
# Jacobians and Hessians.
# ---------------------------------------------------------------------------


def _unit_vectors(value: Any) -> list:
    """The basis to seed one sweep per element: ``[1.0]`` for a scalar, one-hot arrays
    of the value's shape and dtype for an array."""
    shape = _shape(value)
    if type(value) is float or type(value) is Tracer or not hasattr(value, "dtype"):
        return [1.0]
    np = _array_support().np
    dtype = value.dtype if value.dtype.kind == "f" else np.float64
    basis = []
    for e in range(int(np.prod(shape))):
        unit = np.zeros(shape, dtype=dtype)
        unit.flat[e] = 1.0
        basis.append(unit)
    return basis


def _assemble(parts: list, out_value: Any, in_value: Any, inputs_last: bool) -> Any:
    """d out / d in as one value of shape ``out.shape + in.shape`` (a float for scalars).

    ``parts`` holds one piece per element of the swept side: per output element
    (reverse mode, each of the input's shape) or per input element (forward mode,
    each of the output's shape).
    """
    out_shape, in_shape = _shape(out_value), _shape(in_value)
    if parts and not out_shape and not in_shape and not hasattr(parts[0], "shape"):
        return parts[0]
    arrays = _array_support()
    if not parts:  # an empty output or input: a Jacobian without elements
        dtype = getattr(out_value, "dtype", None)
        return arrays.np.zeros(out_shape + in_shape, dtype=dtype if dtype is not None and
                               dtype.kind == "f" else arrays.np.float64)
    # Forward mode stacks the output-shaped pieces along a last axis, reverse mode the
    # input-shaped pieces along a first one; either way a reshape gives out + in shape.
    stacked = arrays.stack(parts, axis=-1 if inputs_last else 0)
    return arrays.reshape(stacked, out_shape + in_shape)


def _jacobian(f: Callable, argnums: ArgNums, mode: str) -> Callable:
    name = "jacrev" if mode == "rev" else "jacfwd"

    @functools.wraps(f)
    def jac_f(*args: Any, **kwargs: Any) -> Any:
        nums = _argnums_tuple(argnums, len(args), name)
        call = _Traced(args, nums, name)
        tape, out_leaves, out_def, roots = call.finish(call.run(f, kwargs), name)
        out_values = [_as_float(call.unwrap(x)) for x in out_leaves]
        in_values = [tree_flatten(args[n])[0] for n in nums]
        # rows[o][a][l] = d out_o / d leaf l of argument a
        rows: list = [[[None] * len(leaves) for leaves in in_values] for _ in roots]
        if mode == "rev":  # one reverse sweep per output element
            for o, (root, v) in enumerate(zip(roots, out_values)):
                sweeps = [call.gradients(tape.backward({root: unit}) if root >= 0
                                         else [0.0] * len(tape))
                          for unit in _unit_vectors(v)]
                for a, leaves in enumerate(in_values):
                    for col, leaf in enumerate(leaves):
                        pieces = [tree_flatten(grads[a])[0][col] for grads in sweeps]
                        rows[o][a][col] = _assemble(pieces, v, leaf, inputs_last=False)
        else:  # one forward sweep per input element
            for a, (idx, leaves) in enumerate(zip(call.leaf_indices, in_values)):
                for col, (i, leaf) in enumerate(zip(idx, leaves)):
                    per_output: list = [[] for _ in roots]
                    for unit in _unit_vectors(leaf):
                        tan = tape.forward({i: unit})
                        for o, (root, v) in enumerate(zip(roots, out_values)):
                            per_output[o].append(
                                _as_leaf_type(tan[root] if root >= 0 else 0.0, v))
                    for o, v in enumerate(out_values):
                        rows[o][a][col] = _assemble(per_output[o], v, leaf, inputs_last=True)
        jacobians: list[Any] = []
        for row in rows:
            parts = tuple(tree_unflatten(td, r) for td, r in zip(call.treedefs, row))
            jacobians.append(parts[0] if isinstance(argnums, int) else parts)
        return tree_unflatten(out_def, jacobians)

    return jac_f


def jacrev(f: Callable[..., Any], argnums: ArgNums = 0) -> Callable[..., Any]:
    """The Jacobian by reverse mode: one reverse sweep per output.

    The result has the output's structure, each output leaf holding the gradient
    of that output (in the argument's structure).

    >>> jacrev(lambda x: (x * x, 3.0 * x))(2.0)
    (4.0, 3.0)
    """
    return _jacobian(f, argnums, "rev")


def jacfwd(f: Callable[..., Any], argnums: ArgNums = 0) -> Callable[..., Any]:
    """The Jacobian by forward mode: one forward sweep per input leaf.

    Same result structure as :func:`jacrev`; cheaper when there are fewer inputs
    than outputs.

    >>> jacfwd(lambda p: p[0] * p[1])((2.0, 5.0))
    (5.0, 2.0)
    """
    return _jacobian(f, argnums, "fwd")


jacobian = jacrev


def hessian(f: Callable[..., Any], argnums: ArgNums = 0) -> Callable[..., Any]:
    """The matrix of second derivatives of a scalar function: ``jacfwd(jacrev(f))``.

    For a pytree argument the result is nested twice: ``H[a][b]`` is
    d²f / (da db).

    >>> hessian(lambda p: p[0] ** 2 * p[1])((1.0, 3.0))
    ((6.0, 2.0), (2.0, 0.0))
    """
    return jacfwd(jacrev(f, argnums), argnums)


# ---------------------------------------------------------------------------
# Looking at tapes.
# ---------------------------------------------------------------------------


def trace(
    f: Callable[..., Any], argnums: ArgNums | None = None, names: Sequence[str] | None = None
) -> Callable[..., Tape]:
    """A function that records one call of ``f`` and returns its :class:`Tape`.

    All positional arguments are traced unless ``argnums`` says otherwise.
    ``names`` labels the input leaves, in order, for printing and pictures.
    When the output is a scalar the tape is also swept backwards, so its reverse
    view shows adjoints.

    >>> tape = trace(lambda x, y: x * y, names=("x", "y"))(2.0, 3.0)
    >>> print(tape)
    x = input                        # 2
    y = input                        # 3
    %2 = x * y                       # 6
    """

    @functools.wraps(f)
    def trace_f(*args: Any, **kwargs: Any) -> Tape:
        nums = tuple(range(len(args))) if argnums is None else _argnums_tuple(
            argnums, len(args), "trace")
        call = _Traced(args, nums, "trace", names=names)
        tape, _, _, roots = call.finish(call.run(f, kwargs), "trace")
        inputs = tuple(i for idx in call.leaf_indices for i in idx)
        tape = attrs.evolve(tape, outputs=tuple(roots), inputs=inputs, timings=tape.timings)
        if len(roots) == 1 and roots[0] >= 0 and _shape(tape.values[roots[0]]) == ():
            tape.timings["adjoints"] = tape.backward({roots[0]: _seed(tape.values[roots[0]])})
        return tape

    return trace_f


# ---------------------------------------------------------------------------
# User-defined primitives.
# ---------------------------------------------------------------------------


class custom_vjp:
    """Give a function its own derivative rule, as ``jax.custom_vjp`` does.

    Decorate the function, then call ``.defvjp(fwd, bwd)``: ``fwd(*args)`` returns
    ``(out, residuals)``; ``bwd(residuals, g)`` returns a tuple with one
    cotangent per positional argument, for output cotangent ``g``. Arguments and
    outputs are scalars, arrays, or pytrees of them; a cotangent has its
    argument's shape. ``bwd`` is called during the reverse sweep with the real
    cotangent, so it may do anything (such as clip); forward mode and per-record
    checks use ``bwd(residuals, 1.0)`` for scalars and, for arrays, the gradient in
    ``g`` of ``<bwd(residuals, g), tangent>``, which are the derivative only when
    ``bwd`` is linear in ``g``. Write ``bwd`` with tapegrad operations (tapegrad.numpy
    for arrays) to keep higher derivatives and forward mode available.

    >>> import tapegrad as tg
    >>> @custom_vjp
    ... def clip_gradient(x):
    ...     return x
    >>> clip_gradient.defvjp(lambda x: (x, None), lambda res, g: (max(-1.0, min(1.0, g)),))
    >>> tg.grad(lambda x: 5.0 * clip_gradient(x))(2.0)
    1.0
    """

    def __init__(self, fun: Callable[..., Any]) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.fwd: Callable[..., Any] | None = None
        self.bwd: Callable[..., Any] | None = None

    def defvjp(self, fwd: Callable[..., Any], bwd: Callable[..., Any]) -> None:
        """Set the forward function (returning residuals) and the backward rule."""
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args: Any) -> Any:
        leaves, treedefs = [], []
        for a in args:
            lv, td = tree_flatten(a)
            leaves.append(lv)
            treedefs.append(td)
        flat = [x for lv in leaves for x in lv]
        rec = _innermost_of_any(flat)  # raises for a tracer of a closed or foreign trace
        if rec is None:
            return self.fun(*args)
        if self.fwd is None or self.bwd is None:
            raise TypeError(
                f"custom_vjp function {self.fun.__name__!r} was differentiated before "
                "defvjp(fwd, bwd) was called on it"
            )

        def ours(x: Any) -> bool:
            return (type(x) is Tracer or _is_array_tracer(x)) and x._tape is rec

        def inner(x: Any) -> Any:
            return x._value if ours(x) else x

        inner_args = [tree_unflatten(td, [inner(x) for x in lv])
                      for td, lv in zip(treedefs, leaves)]
        name = self.fun.__name__
        out, residuals = self.fwd(*inner_args)
        _check_not_closed_over(rec, name, "fwd", (out, residuals))
        if _innermost(tree_flatten(inner_args)[0]) is not None:
            # The arguments are traced by an outer trace too: there, the value is
            # this same function again, so that its rule (not fwd's own operations)
            # is what the outer trace differentiates. fwd above gave the residuals.
            out = self(*inner_args)
        out_leaves, out_def = tree_flatten(out)
        positions = [(k, x._index) for k, x in enumerate(flat) if ours(x)]
        indices = tuple(i for _, i in positions)
        bwd = self.bwd
        n_args = len(args)
        arrays = any(_is_array_tracer(flat[k]) for k, _ in positions) or any(
            _is_array_value(v) for v in out_leaves)
        # The cotangent of the outputs bwd is not asked about: 0.0, or zeros of an array's shape.
        zeros = [_zeros_of(v) if arrays else 0.0 for v in out_leaves]

        def rule_for(o: int, check: bool = True) -> Callable[[Any], tuple]:
            def cotangents(g: Any) -> tuple:
                seed = tree_unflatten(out_def, [g if p == o else zeros[p]
                                                for p in range(len(out_leaves))])
                try:
                    cts = bwd(residuals, seed)
                except EscapedTracerError:
                    raise CustomVJPError(
                        f"custom_vjp bwd of {name!r} used a traced value of the finished trace "
                        f"that differentiated {name!r}: bwd closes over a traced variable. "
                        f"Pass that variable to {name!r} as an argument, or return it from "
                        "fwd as a residual."
                    ) from None
                if not isinstance(cts, tuple) or len(cts) != n_args:
                    raise TypeError(
                        f"custom_vjp bwd of {name!r} must return a tuple with one cotangent "
                        f"per positional argument ({n_args}), got {cts!r}"
                    )
                if check:
                    _check_not_closed_over(rec, name, "bwd", cts)
                flat_ct = [c for ct, td in zip(cts, treedefs) for c in _ct_leaves(ct, td)]
                if arrays:
                    for k, _ in positions:
                        _check_cotangent_shape(name, k, flat_ct[k], flat[k])
                return tuple(flat_ct[k] for k, _ in positions)

            return cotangents

        fun = self.fun

        def value_for(o: int) -> Callable[..., Any]:
            def value(*operands: Any) -> Any:
                # The function itself with its traced operands moved (per-record checks).
                moved = list(flat)
                for (k, _), v in zip(positions, operands):
                    moved[k] = v
                it = iter(moved)
                new_args = [tree_unflatten(td, [inner(next(it)) for _ in lv])
                            for td, lv in zip(treedefs, leaves)]
                return tree_flatten(fun(*new_args))[0][o]

            return value

        if arrays:
            # Array operands or outputs: records of the array table's custom_vjp entry,
            # whose reverse rule is bwd and whose forward rule is derived from it.
            layer = _array_support()
            values = tuple(flat[k]._value for k, _ in positions)
            results = [layer.custom_record(
                rec, indices, values, {"value": value_for(o), "rule": rule_for(o),
                                       "forward": _forward_from_vjp(rule_for(o, check=False),
                                                                    value),
                                       "name": name}, _as_array(value))
                for o, value in enumerate(out_leaves)]
        else:
            results = [_nary_record(rec, CUSTOM, _as_float(value),
                                    (indices, rule_for(o), name, value_for(o)))
                       for o, value in enumerate(out_leaves)]
        return tree_unflatten(out_def, results)


def _innermost_of_any(flat: Sequence[Any]) -> Recorder | None:
    """The innermost open trace among traced scalars and traced arrays (checked live)."""
    rec = _innermost(flat)
    for x in flat:
        if _is_array_tracer(x):
            r = check_live(x)
            if rec is None or r.level > rec.level:
                rec = r
    return rec


def _is_array_value(v: Any) -> bool:
    np = sys.modules.get("numpy")
    return _is_array_tracer(v) or (np is not None and isinstance(v, np.ndarray))


def _zeros_of(v: Any) -> Any:
    if not _is_array_value(v):
        return 0.0
    np = _array_support().np
    return np.zeros(v.shape, dtype=v.dtype if v.dtype.kind == "f" else np.float64)


def _as_array(v: Any) -> Any:
    """An output of a custom_vjp function as an array (a number becomes 0-d)."""
    if _is_array_value(v):
        return v
    layer = _array_support()
    if type(v) is Tracer:  # of an outer trace: a 0-d traced array there
        return layer.multiply(v, layer.np.ones(()))
    return layer.np.asarray(v, dtype=layer.np.float64)


def _check_cotangent_shape(name: str, k: int, ct: Any, operand: Any) -> None:
    if type(ct) is float and ct == 0.0:
        return  # no contribution
    if _shape(ct) != _shape(operand):
        raise ValueError(f"custom_vjp bwd of {name!r} returned a cotangent of shape "
                         f"{_shape(ct)} for argument leaf {k}, which has shape "
                         f"{_shape(operand)}: return one cotangent of each argument's shape")


def _forward_from_vjp(rule: Callable[[Any], tuple], out: Any) -> Callable[[list], Any]:
    """A custom_vjp record's forward rule from its reverse one.

    bwd gives ``J^T g``; the tangent ``J t`` is the gradient in ``g`` of
    ``<bwd(g), t>``, a linear function of ``g`` when bwd is a vector-Jacobian
    product (linear in g). bwd must then be written with tapegrad operations.
    """

    def tangent(tangents: list) -> Any:
        layer = _array_support()

        def pairing(g: Any) -> Any:
            total: Any = 0.0
            for c, t in zip(rule(g), tangents):
                if t is not None and not (type(c) is float and c == 0.0):
                    total = total + layer.sum(layer.multiply(c, t))
            return total

        zero = _zeros_of(out) if _is_array_value(out) else layer.np.zeros(())
        return grad(pairing)(zero)

    return tangent


def _check_not_closed_over(rec: Recorder, name: str, part: str, tree: Any) -> None:
    """A custom rule's result must not hold traced values of the trace it is part of.

    Such a value comes from a closure over a traced variable: the rule would return
    a placeholder of a finished trace and drop that variable's derivative.
    """
    for leaf in tree_flatten(tree)[0]:
        if type(leaf) in TRACER_TYPES and leaf._tape.level >= rec.level:
            raise CustomVJPError(
                f"custom_vjp {part} of {name!r} returned a traced value of the trace that "
                f"is differentiating {name!r}: {part} uses (closes over) a traced variable "
                f"that is not one of {name!r}'s arguments, so its derivative would be lost. "
                f"Pass that variable to {name!r} as an argument instead (and give bwd a "
                "cotangent for it)."
            )


def _ct_leaves(ct: Any, treedef: TreeDef) -> list:
    if ct is None:
        return [0.0] * treedef.num_leaves
    leaves, td = tree_flatten(ct)
    if len(leaves) != treedef.num_leaves:
        raise ValueError("custom_vjp bwd returned a cotangent whose structure does not match "
                         "its argument")
    return leaves
