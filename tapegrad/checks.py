"""Checking derivatives against finite differences.

Offers :func:`check_grad` (tapegrad's: the largest relative error of ``grad``
against central differences, leaf by leaf, or every record's rule with
``per_record=True``) and :func:`check_grads` (JAX's signature and meaning:
directional checks of forward and reverse mode up to a given order, raising
``AssertionError`` on a mismatch).
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Sequence
from typing import Any, Callable, Union

from .pytree import TreeDef, tree_flatten, tree_unflatten
from .transforms import _argnums_tuple, grad, jvp, trace, vjp
from .viz import RuleMismatchError, describe_record, unchecked_records

__all__ = ["check_grad", "check_grads"]

ArgNums = Union[int, Sequence[int]]


# ---------------------------------------------------------------------------
# Scalar coordinates of a pytree of numbers and arrays.
# ---------------------------------------------------------------------------


def _coordinates(leaves: list) -> list[tuple[int, Any]]:
    """(leaf, element index) for every number in the leaves (arrays element by element)."""
    coords: list[tuple[int, Any]] = []
    for k, leaf in enumerate(leaves):
        shape = getattr(leaf, "shape", None)
        if shape:
            np = sys.modules["numpy"]
            coords.extend((k, idx) for idx in np.ndindex(*shape))
        else:
            coords.append((k, None))
    return coords


def _value_at(leaf: Any, idx: Any) -> float:
    return float(leaf) if idx is None else float(leaf[idx])


def _moved(leaves: list, k: int, idx: Any, delta: float) -> list:
    """The leaves with one coordinate moved by ``delta`` (arrays copied, never changed)."""
    moved = list(leaves)
    if idx is None:
        moved[k] = float(leaves[k]) + delta
    else:
        array = leaves[k].copy()
        array[idx] += delta
        moved[k] = array
    return moved


def check_grad(
    f: Callable[..., Any], *args: Any, argnums: ArgNums = 0, eps: float = 1e-6,
    per_record: bool = False,
) -> float:
    """The largest relative error between ``grad(f)`` and central finite differences.

    Each differentiated number ``x`` (every element of an array) is nudged to
    ``x ± eps`` and (f(x+eps) - f(x-eps)) / (2 eps) compared with the gradient; the
    error for one number is ``|g - fd| / max(1, |g|, |fd|)``. With
    ``per_record=True`` every record's derivative rule is instead checked at its
    recorded inputs, and the first disagreeing record raises ``AssertionError``
    naming it.

    >>> check_grad(lambda x: x ** 3, 2.0) < 1e-6
    True
    """
    if per_record:
        return check_records(f, *args, argnums=argnums, eps=eps)
    nums = _argnums_tuple(argnums, len(args), "check_grad")
    grads = grad(f, argnums=nums)(*args)
    worst = 0.0
    for n, g_tree in zip(nums, grads):
        leaves, treedef = tree_flatten(args[n])
        g_leaves = tree_flatten(g_tree)[0]
        for k, idx in _coordinates(leaves):
            fd = (_nudged(f, args, n, leaves, treedef, k, idx, eps)
                  - _nudged(f, args, n, leaves, treedef, k, idx, -eps)) / (2 * eps)
            g = _value_at(g_leaves[k], idx)
            worst = max(worst, abs(g - fd) / max(1.0, abs(g), abs(fd)))
    return worst


def _nudged(f: Callable, args: tuple, n: int, leaves: list, treedef: TreeDef, k: int, idx: Any,
            delta: float) -> float:
    """f(*args) with one coordinate of argument n moved by delta."""
    new_args = list(args)
    new_args[n] = tree_unflatten(treedef, _moved(leaves, k, idx, delta))
    return float(f(*new_args))


def check_records(f: Callable[..., Any], *args: Any, argnums: Any = 0, eps: float = 1e-6,
                  tol: float = 1e-4) -> float:
    """Check every record's derivative rule against central differences at its inputs.

    Returns the largest relative error; raises :class:`~tapegrad.viz.RuleMismatchError`
    naming the first record (in tape order) whose partials disagree by more than
    ``tol``. A custom-rule record that cannot be re-evaluated on its own is checked
    through the whole function: when every other record is right, a gradient that
    disagrees with finite differences can only come from a custom rule.

    >>> import tapegrad as tg
    >>> check_records(lambda x, y: tg.tanh(x * y) / y, 0.5, 2.0) < 1e-6
    True
    """
    tape = trace(f, argnums=argnums)(*args)
    worst, unchecked = unchecked_records(tape, eps, tol)
    if unchecked:
        whole = check_grad(f, *args, argnums=argnums, eps=eps)
        if whole > tol:
            which = "; ".join(describe_record(tape, k) for k in unchecked)
            raise RuleMismatchError(
                f"the gradient of {getattr(f, '__name__', 'f')} disagrees with finite "
                f"differences (relative error {whole:.2g}) although every built-in rule on its "
                f"tape agrees, so the custom_vjp rule is wrong at: {which}. Check that its bwd "
                "returns d output / d input times the cotangent g."
            )
        worst = max(worst, whole)
    return worst


# ---------------------------------------------------------------------------
# JAX's check_grads.
# ---------------------------------------------------------------------------


def _random_like(tree: Any, rng: random.Random) -> Any:
    """A random direction with the structure, shapes and dtypes of ``tree``."""
    leaves, treedef = tree_flatten(tree)
    out = []
    for leaf in leaves:
        shape = getattr(leaf, "shape", None)
        if shape is not None and hasattr(leaf, "dtype"):
            np = sys.modules["numpy"]
            values = [rng.gauss(0.0, 1.0) for _ in range(int(np.prod(shape)))]
            out.append(np.asarray(values, dtype=leaf.dtype).reshape(shape))
        else:
            out.append(rng.gauss(0.0, 1.0))
    return tree_unflatten(treedef, out)


def _axpy(a: float, x: Any, y: Any) -> Any:
    """y + a * x, leaf by leaf."""
    xs, treedef = tree_flatten(x)
    ys, _ = tree_flatten(y)
    return tree_unflatten(treedef, [yv + a * xv for xv, yv in zip(xs, ys)])


def _inner(x: Any, y: Any) -> float:
    """The sum of the products of the numbers of two pytrees of one structure."""
    total = 0.0
    for a, b in zip(tree_flatten(x)[0], tree_flatten(y)[0]):
        if hasattr(a, "shape") or hasattr(b, "shape"):
            np = sys.modules["numpy"]
            total += float(np.sum(np.asarray(a) * np.asarray(b)))
        else:
            total += float(a) * float(b)
    return total


def _assert_close(what: str, got: Any, expected: Any, atol: float, rtol: float) -> None:
    for a, b in zip(tree_flatten(got)[0], tree_flatten(expected)[0]):
        np = sys.modules.get("numpy")
        if np is not None and (hasattr(a, "shape") or hasattr(b, "shape")):
            a_, b_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
            bad = np.abs(a_ - b_) > atol + rtol * np.abs(b_)
            if bad.any():
                raise AssertionError(f"check_grads: {what}: got {a_}, expected {b_} "
                                     f"(atol={atol}, rtol={rtol})")
        elif not math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=atol):
            raise AssertionError(f"check_grads: {what}: got {float(a)!r}, expected "
                                 f"{float(b)!r} (atol={atol}, rtol={rtol})")


def check_grads(
    f: Callable[..., Any], args: Sequence[Any], order: int, modes: Sequence[str] = ("fwd", "rev"),
    atol: float | None = None, rtol: float | None = None, eps: float | None = None,
) -> None:
    """Check the derivatives of ``f`` at ``args`` up to ``order``, as ``jax.test_util.check_grads``.

    Forward mode (``"fwd"``): the JVP along a random direction ``v`` equals the
    central difference ``(f(x + eps v) - f(x - eps v)) / 2 eps``. Reverse mode
    (``"rev"``): the VJP agrees with the JVP, ``<u, J v> == <J^T u, v>`` for random
    ``u`` and ``v``. For ``order`` 2 the same checks are applied to the derivative
    functions themselves. Raises ``AssertionError`` on a mismatch and returns None.
    Directions come from a fixed seed, so a failure repeats.

    >>> import tapegrad as tg
    >>> check_grads(lambda x, y: tg.tanh(x * y), (0.5, 2.0), order=2)
    """
    args = tuple(args)
    if order not in (1, 2):
        raise ValueError(f"check_grads: order must be 1 or 2, got {order!r}")
    unknown = set(modes) - {"fwd", "rev"}
    if unknown or not modes:
        raise ValueError(f"check_grads: modes must be a subset of ('fwd', 'rev'), got {modes!r}")
    eps = 1e-4 if eps is None else eps
    atol = 1e-5 if atol is None else atol
    rtol = 1e-5 if rtol is None else rtol
    rng = random.Random(0)
    _check_order(f, args, order, tuple(modes), atol, rtol, eps, rng)


def _check_order(f: Callable[..., Any], args: tuple, order: int, modes: tuple, atol: float,
                 rtol: float, eps: float, rng: random.Random) -> None:
    v = _random_like(args, rng)
    if "fwd" in modes:
        _, jv = jvp(f, args, v)
        numeric = _scaled_difference(f(*_axpy(eps, v, args)), f(*_axpy(-eps, v, args)), eps)
        _assert_close("the JVP and central differences differ", jv, numeric, atol, rtol)
        if order > 1:
            _check_order(lambda *a: jvp(f, a, v)[1], args, order - 1, modes, atol, rtol, eps,
                         rng)
    if "rev" in modes:
        out, f_vjp = vjp(f, *args)
        u = _random_like(out, rng)
        if "fwd" in modes:
            _, jv = jvp(f, args, v)
        else:  # without forward mode, J v from central differences
            jv = _scaled_difference(f(*_axpy(eps, v, args)), f(*_axpy(-eps, v, args)), eps)
        ct = f_vjp(u)
        _assert_close("the VJP is not the transpose of the JVP (<u, J v> != <J^T u, v>)",
                      _inner(ct, v), _inner(u, jv), atol, rtol)
        if order > 1:
            _check_order(lambda *a: vjp(f, *a)[1](u), args, order - 1, modes, atol, rtol, eps,
                         rng)


def _scaled_difference(up: Any, down: Any, eps: float) -> Any:
    ups, treedef = tree_flatten(up)
    downs, _ = tree_flatten(down)
    return tree_unflatten(treedef, [(a - b) / (2 * eps) for a, b in zip(ups, downs)])
