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
from collections.abc import Sequence
from typing import Any, Callable, Union

import attrs

from .errors import NonFiniteError
from .primitives import CUSTOM, _innermost, _nary_record
from .pytree import TreeDef, tree_flatten, tree_paths, tree_unflatten
from .tape import Recorder, Tape, open_recorder, pop_recorder
from .tracer import Tracer, check_live, primal

__all__ = [
    "grad", "value_and_grad", "vjp", "jvp", "jacrev", "jacfwd", "jacobian", "hessian",
    "trace", "check_grad", "custom_vjp",
]

ArgNums = Union[int, Sequence[int]]


# ---------------------------------------------------------------------------
# Wrapping arguments and unwrapping results.
# ---------------------------------------------------------------------------


def _check_leaf(tree: Any, prefix: str, k: int, leaf: Any, transform: str) -> Any:
    """Leaf k of ``tree`` as a float (or outer tracer), or a TypeError naming its place."""
    if type(leaf) is float or type(leaf) is Tracer:
        return leaf
    if type(leaf) is int:
        return float(leaf)
    if isinstance(leaf, bool) or not isinstance(leaf, (int, float)):
        path = tree_paths(tree, prefix=prefix)[k][0]
        raise TypeError(
            f"{transform}: the differentiated argument {path} is {type(leaf).__name__} "
            f"{leaf!r}, but only numbers (int or float) can be leaves. Pass numbers there, or "
            "move the value to an argument that is not in argnums (or close over it)."
        )
    return float(leaf)


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


class _Traced:
    """One traced call in progress: the recorder and the wrapped arguments."""

    def __init__(self, args: tuple, argnums: tuple[int, ...], transform: str,
                 names: Sequence[str] | None = None, guards: bool = False) -> None:
        self.rec: Recorder = open_recorder(guards=guards)
        self.argnums = argnums
        self.treedefs: list[TreeDef] = []
        self.leaf_indices: list[list[int]] = []
        new_args = list(args)
        label_iter = iter(names) if names is not None else None
        new = object.__new__
        try:
            for n in argnums:
                leaves, treedef = tree_flatten(args[n])
                if set(map(type, leaves)) <= _FLOAT_ONLY:
                    values = leaves
                else:
                    values = [_check_leaf(args[n], f"args[{n}]", k, leaf, transform)
                              for k, leaf in enumerate(leaves)]
                labels = None
                if label_iter is not None:
                    labels = [next(label_iter, None) for _ in values]
                indices = self.rec.leaves(values, labels)
                wrapped = []
                for i, value in zip(indices, values):
                    t = new(Tracer)
                    t._tape = self.rec
                    t._index = i
                    t._value = value
                    wrapped.append(t)
                self.treedefs.append(treedef)
                self.leaf_indices.append(list(indices))
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
        """The record index of a scalar output of this trace, or -1 if it is a constant."""
        if type(out) is Tracer:
            if out._tape is self.rec:
                return out._index
            check_live(out)  # an outer trace's value is a constant; anything else is an error
        return -1

    def unwrap(self, out: Any) -> Any:
        """The value of an output as seen outside this trace."""
        if type(out) is Tracer and out._tape is self.rec:
            return out._value
        return out

    def finish(self, out: Any, transform: str) -> tuple[Tape, list, TreeDef, list[int]]:
        """Close the trace on output pytree ``out``.

        Returns the frozen tape, the output leaves, their structure, and each
        leaf's record index (-1 for a constant). Every leaf must be a scalar.
        """
        try:
            out_leaves, out_def = tree_flatten(out)
            for k, leaf in enumerate(out_leaves):
                if type(leaf) is not Tracer and (
                        isinstance(leaf, bool) or not isinstance(leaf, (int, float))):
                    raise TypeError(
                        f"{transform}: output leaf {k} of the function is "
                        f"{type(leaf).__name__} {leaf!r}; outputs must be numbers or "
                        "pytrees (tuples, lists, dicts, ...) of numbers"
                    )
            roots = [self.output_index(x) for x in out_leaves]
            tape = self.rec.freeze()
        except BaseException:
            self.rec.close()
            raise
        return tape, out_leaves, out_def, roots

    def gradients(self, adj: list) -> tuple:
        """Per differentiated argument, the adjoints of its leaves in its own structure."""
        return tuple(
            tree_unflatten(td, [adj[i] for i in idx])
            for td, idx in zip(self.treedefs, self.leaf_indices)
        )


def _scalar_output(out: Any, transform: str) -> Any:
    if type(out) is Tracer or type(out) is float or type(out) is int:
        return out
    if isinstance(out, bool) or not isinstance(out, (int, float)):
        described = type(out).__name__
        if isinstance(out, (list, tuple, dict)):
            described += f" with {len(out)} item(s)"
        raise TypeError(
            f"{transform} needs a function that returns a single scalar, but it returned "
            f"{described}. For a function with several outputs use tg.vjp (one cotangent "
            "per output) or tg.jacobian / tg.jacrev / tg.jacfwd (all partial derivatives)."
        )
    return float(out)


def _check_finite(tape: Tape, adj: list, transform: str) -> None:
    """debug_nans: stop at the first record whose value or adjoint is not finite."""
    from .viz import describe_record

    for k in range(len(tape)):
        v = float(primal(tape.values[k]))
        if not math.isfinite(v):
            raise NonFiniteError(
                f"{transform}(debug_nans=True): the value of record %{k} is {v}: "
                f"{describe_record(tape, k)}"
            )
    for k in range(len(tape) - 1, -1, -1):
        g = float(primal(adj[k]))
        if not math.isfinite(g):
            raise NonFiniteError(
                f"{transform}(debug_nans=True): the adjoint of record %{k} is {g} in the "
                f"reverse sweep: {describe_record(tape, k)}"
            )


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
            adj = tape.backward({root: 1.0}) if root >= 0 else [0.0] * len(tape)
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
    values = tree_unflatten(out_def, [_as_float(call.unwrap(x)) for x in out_leaves])

    def vjp_fn(cotangent: Any) -> tuple:
        ct_leaves, ct_def = tree_flatten(cotangent)
        if ct_def != out_def:
            raise ValueError(
                f"vjp_fn: the cotangent has structure {ct_def!r}, but the output of f has "
                f"structure {out_def!r}; pass one number per output"
            )
        seeds: dict[int, Any] = {}
        for k, (root, g) in enumerate(zip(roots, ct_leaves)):
            g = _check_leaf(cotangent, "cotangent", k, g, "vjp_fn")
            if root >= 0:
                seeds[root] = seeds[root] + g if root in seeds else g
        adj = tape.backward(seeds) if seeds else [0.0] * len(tape)
        return call.gradients(adj)

    if has_aux:
        return values, vjp_fn, _unwrap_tree(aux, call)
    return values, vjp_fn


def _as_float(v: Any) -> Any:
    return float(v) if type(v) is int else v


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
        for k, (i, tl) in enumerate(zip(call.leaf_indices[n], t_leaves)):
            seeds[i] = _check_leaf(t, f"tangents[{n}]", k, tl, "jvp")
    tan = tape.forward(seeds)
    values = [_as_float(call.unwrap(x)) for x in out_leaves]
    tangents_out = [tan[root] if root >= 0 else 0.0 for root in roots]
    return tree_unflatten(out_def, values), tree_unflatten(out_def, tangents_out)


# ---------------------------------------------------------------------------
# Jacobians and Hessians.
# ---------------------------------------------------------------------------


def _jacobian(f: Callable, argnums: ArgNums, mode: str) -> Callable:
    name = "jacrev" if mode == "rev" else "jacfwd"

    @functools.wraps(f)
    def jac_f(*args: Any, **kwargs: Any) -> Any:
        nums = _argnums_tuple(argnums, len(args), name)
        call = _Traced(args, nums, name)
        tape, _, out_def, roots = call.finish(call.run(f, kwargs), name)
        n_in = [len(idx) for idx in call.leaf_indices]
        # rows[o][a][l] = d out_o / d leaf l of argument a
        if mode == "rev":
            rows = []
            for root in roots:
                adj = tape.backward({root: 1.0}) if root >= 0 else None
                rows.append([[adj[i] if adj else 0.0 for i in idx] for idx in call.leaf_indices])
        else:
            rows = [[[0.0] * m for m in n_in] for _ in roots]
            for a, idx in enumerate(call.leaf_indices):
                for col, i in enumerate(idx):
                    tan = tape.forward({i: 1.0})
                    for o, root in enumerate(roots):
                        rows[o][a][col] = tan[root] if root >= 0 else 0.0
        per_output = []
        for row in rows:
            parts = tuple(tree_unflatten(td, r) for td, r in zip(call.treedefs, row))
            per_output.append(parts[0] if isinstance(argnums, int) else parts)
        return tree_unflatten(out_def, per_output)

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
        if len(roots) == 1 and roots[0] >= 0:
            tape.timings["adjoints"] = tape.backward({roots[0]: 1.0})
        return tape

    return trace_f


def check_grad(
    f: Callable[..., Any], *args: Any, argnums: ArgNums = 0, eps: float = 1e-6,
    per_record: bool = False,
) -> float:
    """The largest relative error between ``grad(f)`` and central finite differences.

    Each differentiated leaf ``x`` is nudged to ``x ± eps`` and
    (f(x+eps) - f(x-eps)) / (2 eps) compared with the gradient; the error for one
    leaf is ``|g - fd| / max(1, |g|, |fd|)``. With ``per_record=True`` every
    record's derivative rule is instead checked at its recorded inputs, and the
    first disagreeing record raises ``AssertionError`` naming it.

    >>> check_grad(lambda x: x ** 3, 2.0) < 1e-6
    True
    """
    if per_record:
        from .viz import check_records

        return check_records(f, *args, argnums=argnums, eps=eps)
    nums = _argnums_tuple(argnums, len(args), "check_grad")
    grads = grad(f, argnums=nums)(*args)
    worst = 0.0
    for n, g_tree in zip(nums, grads):
        leaves, treedef = tree_flatten(args[n])
        g_leaves = tree_flatten(g_tree)[0]
        for k in range(len(leaves)):
            fd = (_nudged(f, args, n, leaves, treedef, k, eps)
                  - _nudged(f, args, n, leaves, treedef, k, -eps)) / (2 * eps)
            g = float(g_leaves[k])
            worst = max(worst, abs(g - fd) / max(1.0, abs(g), abs(fd)))
    return worst


def _nudged(f: Callable, args: tuple, n: int, leaves: list, treedef: TreeDef, k: int,
            delta: float) -> float:
    """f(*args) with leaf k of argument n moved by delta."""
    moved = list(leaves)
    moved[k] = float(moved[k]) + delta
    new_args = list(args)
    new_args[n] = tree_unflatten(treedef, moved)
    return float(f(*new_args))


# ---------------------------------------------------------------------------
# User-defined primitives.
# ---------------------------------------------------------------------------


class custom_vjp:
    """Give a function its own derivative rule, as ``jax.custom_vjp`` does.

    Decorate the function, then call ``.defvjp(fwd, bwd)``: ``fwd(*args)`` returns
    ``(out, residuals)``; ``bwd(residuals, g)`` returns a tuple with one
    cotangent per positional argument, for output cotangent ``g``. Arguments and
    outputs are scalars or pytrees of scalars. ``bwd`` is called during the
    reverse sweep with the real cotangent, so it may do anything (such as clip);
    forward mode and per-record checks use ``bwd(residuals, 1.0)``, which is the
    derivative only when ``bwd`` is linear in ``g``. Write ``bwd`` with tapegrad
    operations to keep higher derivatives available.

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
        rec = _innermost(flat)  # raises for a tracer of a closed or foreign trace
        if rec is None:
            return self.fun(*args)
        if self.fwd is None or self.bwd is None:
            raise TypeError(
                f"custom_vjp function {self.fun.__name__!r} was differentiated before "
                "defvjp(fwd, bwd) was called on it"
            )

        def inner(x: Any) -> Any:
            return x._value if type(x) is Tracer and x._tape is rec else x

        inner_args = [tree_unflatten(td, [inner(x) for x in lv])
                      for td, lv in zip(treedefs, leaves)]
        out, residuals = self.fwd(*inner_args)
        out_leaves, out_def = tree_flatten(out)
        positions = [(k, x._index) for k, x in enumerate(flat)
                     if type(x) is Tracer and x._tape is rec]
        indices = tuple(i for _, i in positions)
        bwd = self.bwd
        name = self.fun.__name__
        n_args = len(args)

        def rule_for(o: int) -> Callable[[Any], tuple]:
            def cotangents(g: Any) -> tuple:
                seed = tree_unflatten(out_def, [g if p == o else 0.0
                                                for p in range(len(out_leaves))])
                cts = bwd(residuals, seed)
                if not isinstance(cts, tuple) or len(cts) != n_args:
                    raise TypeError(
                        f"custom_vjp bwd of {name!r} must return a tuple with one cotangent "
                        f"per positional argument ({n_args}), got {cts!r}"
                    )
                flat_ct = [c for ct, td in zip(cts, treedefs) for c in _ct_leaves(ct, td)]
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

        results = [_nary_record(rec, CUSTOM, _as_float(value),
                                (indices, rule_for(o), name, value_for(o)))
                   for o, value in enumerate(out_leaves)]
        return tree_unflatten(out_def, results)


def _ct_leaves(ct: Any, treedef: TreeDef) -> list:
    if ct is None:
        return [0.0] * treedef.num_leaves
    leaves, td = tree_flatten(ct)
    if len(leaves) != treedef.num_leaves:
        raise ValueError("custom_vjp bwd returned a cotangent whose structure does not match "
                         "its argument")
    return leaves
