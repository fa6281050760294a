"""Helpers for the array tests: finite differences over arrays, tolerances, small data.

Central differences here perturb one element at a time, so they are only for the
small arrays (a few dozen elements) that the tests draw.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np
from hypothesis import settings

# The array tests run many primitives each; few examples per primitive keep the suite fast.
# TAPEGRAD_EXAMPLES=20 (say) multiplies them for a thorough run by hand.
_SCALE = int(os.environ.get("TAPEGRAD_EXAMPLES", "1"))
EACH = settings(max_examples=12 * _SCALE, deadline=None)
EACH_FEW = settings(max_examples=6 * _SCALE, deadline=None)

STEP = 1e-6


def weights(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Fixed, irregular cotangent weights of ``shape`` (so that a sum does not hide a
    permutation or a missing factor)."""
    rng = np.random.default_rng(seed + 7 * len(shape) + int(np.prod(shape)))
    return rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)


def nudged(x: Any, flat_index: int, h: float) -> tuple[np.ndarray, float]:
    """``x`` with one element moved by ``h``, in x's dtype, and the move actually made."""
    moved = np.array(x, dtype=np.asarray(x).dtype, copy=True)
    before = float(moved.flat[flat_index])
    moved.flat[flat_index] = before + h
    return moved, float(moved.flat[flat_index]) - before


def numeric_gradient(loss: Callable[..., Any], args: tuple, k: int,
                     step: float = STEP) -> np.ndarray:
    """d loss / d args[k] by central differences, element by element (in float64)."""
    x = np.asarray(args[k])
    out = np.zeros(x.shape, dtype=np.float64)
    for e in range(x.size):
        h = step * max(1.0, abs(float(x.flat[e])))
        up, dup = nudged(x, e, h)
        down, ddown = nudged(x, e, -h)
        hi = float(loss(*_replace(args, k, up)))
        lo = float(loss(*_replace(args, k, down)))
        out.flat[e] = (hi - lo) / (dup - ddown)
    return out


def numeric_directional(f: Callable[..., Any], args: tuple, positions: tuple[int, ...],
                        tangents: tuple, step: float = STEP) -> np.ndarray:
    """(f(x + h t) - f(x - h t)) / 2h: the derivative of f along the tangents."""
    scale = max([1.0] + [float(np.max(np.abs(args[k]), initial=0.0)) for k in positions])
    h = step * scale
    up, down = list(args), list(args)
    for k, t in zip(positions, tangents):
        up[k] = np.asarray(args[k] + h * t)  # 0-d stays an array, not a NumPy scalar
        down[k] = np.asarray(args[k] - h * t)
    hi = np.asarray(f(*up), dtype=np.float64)
    lo = np.asarray(f(*down), dtype=np.float64)
    return (hi - lo) / (2.0 * h)


def _replace(args: tuple, k: int, value: Any) -> tuple:
    new = list(args)
    new[k] = value
    return tuple(new)


def assert_fd_close(analytic: Any, numeric: Any, scale: float, what: str,
                    rtol: float = 1e-6) -> None:
    """A derivative agrees with its finite-difference estimate.

    ``scale`` is the size of the differenced function's values: the estimate's
    rounding error grows with it (about 1e-10 * scale for a step of 1e-6).
    """
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    assert analytic.shape == numeric.shape, f"{what}: shape {analytic.shape} != {numeric.shape}"
    np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=1e-8 + 1e-8 * scale,
                               err_msg=what)


def assert_same(a: Any, b: Any, what: str, rtol: float = 1e-12) -> None:
    """Two computations of one value agree to rounding (NaN matches NaN), shape included."""
    a = np.asarray(a)
    b = np.asarray(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    if a.dtype.kind == "b" or b.dtype.kind == "b":
        assert np.array_equal(a, b), what
        return
    np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol,
                               atol=rtol, equal_nan=True, err_msg=what)


def check_gradient(f: Callable[..., Any], *args: Any, argnums: tuple[int, ...] = (0,),
                   step: float = STEP, rtol: float = 1e-6) -> tuple:
    """``tg.grad`` of ``sum(w * f(*args))`` against central differences, per operand in
    ``argnums``; returns the gradients. Each gradient has its operand's shape and dtype."""
    import tapegrad as tg
    import tapegrad.numpy as tnp

    out = np.asarray(f(*args))
    w = weights(out.shape)

    def loss(*a: Any) -> Any:
        return tnp.sum(f(*a) * w)

    grads = tg.grad(loss, argnums=argnums)(*args)
    scale = float(np.sum(np.abs(w * out)))
    for k, g in zip(argnums, grads):
        x = np.asarray(args[k])
        assert np.shape(g) == x.shape, f"operand {k}: gradient shape {np.shape(g)}"
        assert np.asarray(g).dtype == x.dtype, f"operand {k}: gradient dtype {np.asarray(g).dtype}"
        assert_fd_close(g, numeric_gradient(loss, args, k, step), scale, f"d/d operand {k}", rtol)
    return grads
